//! A client whose SSE stream broke during a long `transfer_funds` resumes it with `Last-Event-ID`
//! (Streamable HTTP, 2025-11-25) and gets what was sent *after* the last event it received, not
//! that event again (which a person following along would read as a stale, repeated progress line).

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::mcp::McpStack;

const ACCEPT: &str = "application/json, text/event-stream";

/// One SSE event: its id and its JSON data (none for a priming event).
#[derive(Debug)]
struct Event {
    id: String,
    data: Option<Value>,
}

/// Reads events from an SSE response as they come, until `enough` says stop.
async fn read_events(response: &mut reqwest::Response, mut enough: impl FnMut(&[Event]) -> bool) -> Vec<Event> {
    let mut events = Vec::new();
    let mut buffer = String::new();
    while !enough(&events) {
        let chunk = tokio::time::timeout(Duration::from_secs(15), response.chunk())
            .await
            .expect("an event within 15 s")
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block.lines().find_map(|line| line.strip_prefix(name).map(|value| value.trim_start().to_owned()))
            };
            if let Some(id) = field("id:") {
                let data =
                    field("data:").filter(|data| !data.is_empty()).map(|data| serde_json::from_str(&data).unwrap());
                events.push(Event { id, data });
            }
        }
    }
    events
}

fn progress_of(event: &Event) -> Option<f64> {
    let data = event.data.as_ref()?;
    (data["method"] == "notifications/progress").then(|| data["params"]["progress"].as_f64()).flatten()
}

#[tokio::test]
async fn a_resumed_stream_goes_on_after_the_last_event_received_and_repeats_nothing() {
    let stack = McpStack::start_with(|config, _| {
        config.mcp.progress_interval_seconds = 1;
        config.mcp.max_wait_seconds = 30;
    })
    .await;
    let http = bankguard::http_client::builder().build().unwrap();
    let post = |body: Value, session: Option<&str>| {
        let mut request = http.post(stack.url()).header("accept", ACCEPT).json(&body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session).header("mcp-protocol-version", "2025-11-25");
        }
        request.send()
    };
    let initialized = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
            "capabilities": {}, "clientInfo": {"name": "resuming", "version": "1"}}}),
        None,
    )
    .await
    .unwrap();
    let session = initialized.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}), Some(&session)).await.unwrap();

    // The call streams a progress notification every second while the holder has not decided.
    let mut call = post(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "transfer_funds",
            "arguments": {"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": "3.00"},
            "_meta": {"progressToken": "transfer"}}}),
        Some(&session),
    )
    .await
    .unwrap();
    let before = read_events(&mut call, |events| events.iter().filter_map(progress_of).count() >= 2).await;
    // The connection breaks after the second progress notification.
    drop(call);
    let last = before.last().unwrap();
    let last_progress = progress_of(last).expect("the last event read is a progress notification");

    let mut resumed = http
        .get(stack.url())
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .header("last-event-id", &last.id)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let after = read_events(&mut resumed, |events| events.iter().any(|event| progress_of(event).is_some())).await;
    let next = after.iter().find(|event| event.data.is_some()).unwrap();
    assert_ne!(next.id, last.id, "the event received before the break came again: {after:?}");
    // Exactly the next one: none repeated, none skipped.
    let index = |id: &str| id.split('/').next().unwrap().parse::<usize>().unwrap();
    assert_eq!(index(&next.id), index(&last.id) + 1, "{} after {}: {after:?}", next.id, last.id);
    let next_progress = progress_of(next).expect("the next event is the next progress notification");
    assert!(next_progress > last_progress, "progress went from {last_progress} to {next_progress}: {after:?}");

    // The holder declines; the call ends and nothing moved.
    stack.dev.deny(&stack.dev.device().pending(Some("alice")).await.unwrap()[0].auth_req_id).await;
    let rest = read_events(&mut resumed, |events| {
        events.iter().any(|event| event.data.as_ref().is_some_and(|d| d["id"] == 2))
    })
    .await;
    let answer = rest.iter().find_map(|event| event.data.as_ref().filter(|d| d["id"] == 2)).unwrap();
    let said = answer["result"]["content"][0]["text"].as_str().unwrap_or_default();
    assert!(
        answer["result"]["isError"] == true && said.contains("declined") && said.contains("No money moved"),
        "{answer}"
    );
}
