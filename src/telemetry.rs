//! Logging: `tracing` to stderr, filtered by `RUST_LOG`.
//!
//! stdout belongs to the MCP stdio transport, so nothing in the crate prints logs anywhere else.
//! What is logged never includes tokens, secrets or client credentials: callers log ids and outcomes.
//!
//! By default bankguard logs at `info` and its dependencies only at `warn`: rmcp logs every
//! message it handles at `info` as a whole `Debug` structure, and hyper's connection pool chatters
//! at `debug`. `RUST_LOG=bankguard=debug` shows bankguard's own detail without theirs; `RUST_LOG`
//! replaces the default entirely. SQL statements are not logged at all (see `sqlite`).

use tracing_subscriber::EnvFilter;

/// The filter used when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str = "warn,bankguard=info";

/// Installs the global subscriber once; later calls (e.g. from tests) are no-ops.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_filter_keeps_dependencies_at_warn_and_bankguard_at_info() {
        let filter = EnvFilter::new(DEFAULT_FILTER);
        assert_eq!(filter.max_level_hint(), Some(tracing::level_filters::LevelFilter::INFO));
        let text = filter.to_string();
        assert!(text.contains("bankguard=info") && text.split(',').any(|directive| directive == "warn"), "{text}");
    }
}
