//! The floor for an rmcp stdio server: two trivial tools and nothing else (no configuration, no
//! storage, no network). The benchmark suite (`scripts/bench.sh`) compares bankguard's cold start and
//! memory with it; `scripts/bench.sh` builds it with `cargo build --release --example bare_rmcp`.
//!
//! It uses only what bankguard's own rmcp features give a server (`server`, `macros`,
//! `transport-io`), in the shape of the rust-sdk's own examples.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{ServiceExt, schemars, tool, tool_router};
use serde::Deserialize;

struct Bare;

#[derive(Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    text: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct AddArgs {
    /// The first addend.
    left: i64,
    /// The second addend.
    right: i64,
}

#[tool_router(server_handler)]
impl Bare {
    #[tool(description = "Returns the text it is given.")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }

    #[tool(description = "Adds two integers.")]
    fn add(&self, Parameters(AddArgs { left, right }): Parameters<AddArgs>) -> String {
        left.wrapping_add(right).to_string()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    Bare.serve(rmcp::transport::stdio()).await?.waiting().await?;
    Ok(())
}
