//! Logging: `tracing` to stderr, filtered by `RUST_LOG`.
//!
//! stdout belongs to the MCP stdio transport, so nothing in the crate prints logs anywhere else.
//! What is logged never includes tokens, secrets or client credentials: callers log ids and outcomes.

use tracing_subscriber::EnvFilter;

/// The filter used when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str = "info";

/// Installs the global subscriber once; later calls (e.g. from tests) are no-ops.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
