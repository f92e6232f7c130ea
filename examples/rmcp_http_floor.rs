//! The floor for a read over Streamable HTTP: a bare rmcp server whose one tool, `list_accounts`,
//! makes the same bank GET that bankguard's `list_accounts` makes, and returns the body as text.
//! Nothing else: no configuration, no store, no token fetching, no checks. The benchmark suite's
//! `reads` section (`scripts/bench.sh reads`) runs it beside bankguard, so the cost of rmcp plus a
//! second loopback exchange is measured apart from the cost bankguard adds on top.
//!
//! It serves with the crate's own listener (`TCP_NODELAY`) and outbound client builder, so the
//! comparison is of the work done per call, not of socket settings.
//!
//! Usage: `FLOOR_BANK_URL=… FLOOR_BANK_TOKEN=… rmcp_http_floor` prints
//! `rmcp floor at http://127.0.0.1:PORT/mcp` on stderr once it listens.

use rmcp::model::CallToolResult;
use rmcp::model::ContentBlock;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, tool, tool_router};

#[derive(Clone)]
struct Floor {
    http: reqwest::Client,
    url: String,
    token: String,
}

#[tool_router(server_handler)]
impl Floor {
    #[tool(description = "The bank GET that bankguard's list_accounts makes, body returned as text.")]
    async fn list_accounts(&self) -> Result<CallToolResult, ErrorData> {
        let reply = self.http.get(&self.url).bearer_auth(&self.token).send().await;
        let body = match reply {
            Ok(reply) if reply.status().is_success() => reply.text().await,
            Ok(reply) => return Ok(CallToolResult::error(vec![ContentBlock::text(reply.status().to_string())])),
            Err(error) => Err(error),
        };
        match body {
            Ok(body) => Ok(CallToolResult::success(vec![ContentBlock::text(body)])),
            Err(error) => Ok(CallToolResult::error(vec![ContentBlock::text(error.to_string())])),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let floor = Floor {
        http: bankguard::http_client::builder().build()?,
        url: std::env::var("FLOOR_BANK_URL")?,
        token: std::env::var("FLOOR_BANK_TOKEN")?,
    };
    let service = StreamableHttpService::new(
        move || Ok(floor.clone()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    eprintln!("rmcp floor at http://{}/mcp", listener.local_addr()?);
    let router = axum::Router::new().nest_service("/mcp", service);
    bankguard::http_server::serve(listener, router, std::future::pending()).await?;
    Ok(())
}
