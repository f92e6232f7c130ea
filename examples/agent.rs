//! A scripted MCP client that plays the AI agent: it lists the holder's accounts, asks for a
//! transfer, prints every progress message as it arrives, then the outcome.
//!
//! Start `bankguard demo`, open the approval page it prints, then:
//!
//! ```sh
//! cargo run --example agent -- http://127.0.0.1:4102/mcp [FROM TO AMOUNT [MEMO]]
//! ```
//!
//! Approve (or deny) on the page, or with `bankguard approve --latest`, and watch the agent finish.
//!
//! A tool call's answer is a stream that lasts as long as the server waits (up to
//! `mcp.max_wait_seconds`), so the HTTP client has no overall timeout: with one, the stream was cut
//! every 10 s, rmcp resumed it with `Last-Event-ID`, and the server (rmcp 3.11, before bankguard's
//! gate corrected the id it hands on) sent the last event again, so a progress line was printed twice
//! with a time left already past. A progress notification that does not advance its token's
//! `progress` (MCP requires it to increase) would be such a replay from any server, and is dropped.

use std::collections::HashMap;
use std::error::Error;
use std::sync::Mutex;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, ProgressNotificationParam, ProgressToken,
};
use rmcp::service::NotificationContext;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};

/// Longer than any tool call may stream: `mcp.max_wait_seconds` is at most 300.
const CALL_TIMEOUT: Duration = Duration::from_secs(330);
/// The server sends keep-alives on open streams well within this.
const SILENCE_TIMEOUT: Duration = Duration::from_secs(60);

/// Prints each progress notification the moment it arrives, once.
#[derive(Default)]
struct Agent {
    /// The latest `progress` printed for each token.
    printed: Mutex<HashMap<ProgressToken, f64>>,
}

impl Agent {
    /// Whether `progress` moves its token forward, recording it if so.
    fn advances(&self, progress: &ProgressNotificationParam) -> bool {
        let mut printed = self.printed.lock().expect("printed progress");
        let last = printed.entry(progress.progress_token.clone()).or_insert(f64::NEG_INFINITY);
        if progress.progress <= *last {
            return false;
        }
        *last = progress.progress;
        true
    }
}

impl ClientHandler for Agent {
    async fn on_progress(&self, progress: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        if self.advances(&progress) {
            println!("  … {}", progress.message.unwrap_or_default());
        }
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("bankguard-example-agent", "1.0.0"))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:4102/mcp".to_owned());
    let from = args.next().unwrap_or_else(|| "acc_alice_chk".to_owned());
    let to = args.next().unwrap_or_else(|| "acc_bob_chk".to_owned());
    let amount = args.next().unwrap_or_else(|| "25.00".to_owned());
    let memo = args.next().unwrap_or_else(|| "Dinner, sent by the example agent".to_owned());

    let http = bankguard::http_client::builder().timeout(CALL_TIMEOUT).read_timeout(SILENCE_TIMEOUT).build()?;
    let transport =
        StreamableHttpClientTransport::with_client(http, StreamableHttpClientTransportConfig::with_uri(url.clone()));
    let client = Agent::default().serve(transport).await?;
    let server = client.peer_info().and_then(|info| info.server_info.clone());
    println!("connected to {url} ({})", server.map(|s| format!("{} {}", s.name, s.version)).unwrap_or_default());

    println!("\n> list_accounts");
    let accounts = client.call_tool(CallToolRequestParams::new("list_accounts")).await?;
    println!("{}", text(&accounts));

    println!("\n> transfer_funds {amount} from {from} to {to}  (approve it on the device page)");
    let arguments = serde_json::json!({"from_account_id": from, "to_account_id": to, "amount": amount, "memo": memo});
    let request =
        CallToolRequestParams::new("transfer_funds").with_arguments(arguments.as_object().cloned().unwrap_or_default());
    let mut outcome = client.call_tool(request).await?;
    // Not settled within the server's wait bound (the holder has not decided, or the bank has not
    // answered yet): ask for the outcome until it is known. Never send the transfer again.
    while matches!(status(&outcome), Some("requesting" | "pending" | "executing" | "outcome_unknown")) {
        println!("  (not settled yet) {}", text(&outcome));
        let intent_id = outcome.structured_content.as_ref().and_then(|s| s["intent_id"].as_str()).unwrap_or_default();
        let arguments = serde_json::json!({"intent_id": intent_id, "wait_seconds": 45});
        println!("\n> get_transfer_status {intent_id}");
        let request = CallToolRequestParams::new("get_transfer_status")
            .with_arguments(arguments.as_object().cloned().unwrap_or_default());
        outcome = client.call_tool(request).await?;
    }
    let verdict = match (outcome.is_error, status(&outcome)) {
        (Some(true), _) => "refused",
        (_, Some("completed")) => "done",
        _ => "not done",
    };
    println!("{verdict}: {}", text(&outcome));

    client.cancel().await?;
    Ok(())
}

fn status(result: &rmcp::model::CallToolResult) -> Option<&str> {
    result.structured_content.as_ref().and_then(|s| s["status"].as_str())
}

fn text(result: &rmcp::model::CallToolResult) -> String {
    result.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n")
}
