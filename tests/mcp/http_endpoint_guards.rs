//! The Streamable HTTP endpoint refuses DNS-rebinding `Host`s and foreign `Origin`s with 403.

use serde_json::json;

use crate::support::mcp::McpStack;

async fn initialize(stack: &McpStack, headers: &[(&str, &str)]) -> u16 {
    let http = bankguard::http_client::builder().build().unwrap();
    let mut request = http
        .post(stack.url())
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}}}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_foreign_host_or_origin_is_refused_and_loopback_ones_are_served() {
    let stack = McpStack::start().await;
    let port = stack.server.address.port();

    assert_eq!(initialize(&stack, &[("host", "evil.example")]).await, 403);
    assert_eq!(initialize(&stack, &[("host", &format!("attacker.example:{port}"))]).await, 403);
    assert_eq!(initialize(&stack, &[("origin", "https://evil.example")]).await, 403);
    assert_eq!(initialize(&stack, &[("origin", "http://evil.example:6274")]).await, 403);

    assert_eq!(initialize(&stack, &[]).await, 200);
    assert_eq!(initialize(&stack, &[("origin", "http://localhost:6274")]).await, 200, "the MCP Inspector's origin");
    assert_eq!(initialize(&stack, &[("host", &format!("localhost:{port}"))]).await, 200);
}

#[tokio::test]
async fn the_http_server_binds_loopback_by_default() {
    let config = bankguard::config::Config::default();
    assert!(config.mcp.listen.ip().is_loopback());
    assert!(config.authz.listen.ip().is_loopback() && config.bank_api.listen.ip().is_loopback());
}
