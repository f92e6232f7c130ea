//! Streamable HTTP sessions are bounded: at most `mcp.max_sessions` live at once, a new one beyond
//! that is refused with 503, a JSON-RPC error and `Retry-After`, and a session silent for
//! `mcp.session_idle_seconds` is closed, which frees its place.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::mcp::McpStack;

const ACCEPT: &str = "application/json, text/event-stream";

fn initialize(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
        "capabilities": {}, "clientInfo": {"name": "session-probe", "version": "1"}}})
}

/// `initialize` without a session: the reply, and the session id it opened if any.
async fn open_session(stack: &McpStack, id: u64) -> (reqwest::Response, Option<String>) {
    let http = bankguard::http_client::builder().build().unwrap();
    let reply = http.post(stack.url()).header("accept", ACCEPT).json(&initialize(id)).send().await.unwrap();
    let session = reply.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_owned());
    if let Some(session) = &session {
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let sent = in_session(stack, session).json(&initialized).send().await.unwrap();
        assert_eq!(sent.status(), 202);
    }
    (reply, session)
}

fn in_session(stack: &McpStack, session: &str) -> reqwest::RequestBuilder {
    bankguard::http_client::builder()
        .build()
        .unwrap()
        .post(stack.url())
        .header("accept", ACCEPT)
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
}

/// `tools/list` in `session`: its HTTP status, and the body once it is complete.
async fn list_tools(stack: &McpStack, session: &str) -> (u16, String) {
    let reply = in_session(stack, session)
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.text().await.unwrap())
}

#[tokio::test]
async fn a_session_beyond_the_bound_is_refused_with_503_and_an_idle_one_expires_and_frees_its_place() {
    let stack = McpStack::start_with(|config, _| {
        config.mcp.max_sessions = 2;
        config.mcp.session_idle_seconds = 2;
        config.mcp.max_wait_seconds = 1;
    })
    .await;

    let (first, Some(first_session)) = open_session(&stack, 1).await else { panic!("a first session") };
    let (second, Some(second_session)) = open_session(&stack, 2).await else { panic!("a second session") };
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));

    let (refused, none) = open_session(&stack, 3).await;
    assert_eq!(refused.status(), 503);
    assert!(none.is_none(), "no session is opened");
    assert_eq!(refused.headers()["retry-after"], "2");
    assert_eq!(refused.headers()["content-type"], "application/json");
    let answer: Value = refused.json().await.unwrap();
    assert_eq!((answer["jsonrpc"].as_str(), &answer["id"]), (Some("2.0"), &json!(3)), "{answer}");
    assert_eq!(answer["error"]["code"], -32000, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("maximum of 2 MCP sessions"), "{answer}");

    // The sessions already open are served as before.
    let (status, body) = list_tools(&stack, &first_session).await;
    assert_eq!(status, 200);
    assert!(body.contains("transfer_funds"), "{body}");

    // Ending a session frees its place at once.
    let http = bankguard::http_client::builder().build().unwrap();
    let deleted = http.delete(stack.url()).header("mcp-session-id", &second_session).send().await.unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let (third, Some(_)) = open_session(&stack, 4).await else { panic!("a place was freed") };
    assert_eq!(third.status(), 200);

    // Sessions that see no message for session_idle_seconds are closed and free their places.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(list_tools(&stack, &first_session).await.0, 404, "the idle session is gone");
    for id in [5, 6] {
        let (reply, session) = open_session(&stack, id).await;
        assert_eq!((reply.status().as_u16(), session.is_some()), (200, true), "session {id}");
    }
}
