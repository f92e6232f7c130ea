//! The Streamable HTTP endpoint refuses DNS-rebinding `Host`s and foreign `Origin`s with 403, a body
//! that is not a JSON-RPC message with 400 and its JSON-RPC error, and only a wrong media type with 415.

use serde_json::{Value, json};

use crate::support::mcp::McpStack;

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}"#;

/// POSTs `body` to `/mcp` as an MCP client would (both media types accepted), as JSON unless
/// `headers` name another content type.
async fn post(stack: &McpStack, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let http = bankguard::http_client::builder().build().unwrap();
    let mut request =
        http.post(stack.url()).header("accept", "application/json, text/event-stream").body(body.to_owned());
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

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
async fn a_body_that_is_not_json_rpc_gets_400_with_its_json_rpc_error_and_the_next_request_is_served() {
    let stack = McpStack::start().await;
    let batch = format!("[{INITIALIZE}]");
    for (body, code, id) in [
        ("{this is not json", -32700, Value::Null),
        ("", -32700, Value::Null),
        (r#"{"id":7,"method":"initialize","params":{}}"#, -32600, json!(7)),
        (r#"{"jsonrpc":"1.0","id":"x","method":"tools/list"}"#, -32600, json!("x")),
        (batch.as_str(), -32600, Value::Null),
        (r#"{"jsonrpc":"2.0","id":8,"method":"tools/list","params":[]}"#, -32600, json!(8)),
    ] {
        let reply = post(&stack, body, &[]).await;
        assert_eq!(reply.status(), 400, "{body}");
        assert_eq!(reply.headers()["content-type"], "application/json", "{body}");
        let answer: Value = reply.json().await.unwrap();
        assert_eq!(
            (answer["jsonrpc"].as_str(), &answer["error"]["code"]),
            (Some("2.0"), &json!(code)),
            "{body}: {answer}"
        );
        assert_eq!(answer.get("id"), Some(&id), "{body}: {answer}");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));

        assert_eq!(post(&stack, INITIALIZE, &[]).await.status(), 200, "served after {body}");
    }

    let too_large = post(&stack, &" ".repeat((4 << 20) + 1), &[]).await;
    assert_eq!(too_large.status(), 413);
    assert_eq!(too_large.json::<Value>().await.unwrap()["error"]["code"], -32600);
    assert_eq!(post(&stack, INITIALIZE, &[]).await.status(), 200, "served after a body too large");
}

#[tokio::test]
async fn only_a_wrong_media_type_gets_415_and_host_and_origin_are_checked_before_the_body() {
    let stack = McpStack::start().await;
    let port = stack.server.address.port();

    let text = post(&stack, INITIALIZE, &[("content-type", "text/plain")]).await;
    assert_eq!(text.status(), 415);
    assert_eq!(post(&stack, "{not json", &[("content-type", "text/plain")]).await.status(), 415);

    for headers in [[("host", format!("attacker.example:{port}"))], [("origin", "https://evil.example".to_owned())]] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(post(&stack, "{not json", &headers).await.status(), 403, "{headers:?}");
    }
    assert_eq!(post(&stack, INITIALIZE, &[("content-type", "application/json; charset=utf-8")]).await.status(), 200);
    assert_eq!(post(&stack, &format!("\u{feff}{INITIALIZE}"), &[]).await.status(), 200, "a byte order mark is allowed");
}

#[tokio::test]
async fn the_http_server_binds_loopback_by_default() {
    let config = bankguard::config::Config::default();
    assert!(config.mcp.listen.ip().is_loopback());
    assert!(config.authz.listen.ip().is_loopback() && config.bank_api.listen.ip().is_loopback());
}
