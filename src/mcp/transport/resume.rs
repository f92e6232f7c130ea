//! `Last-Event-ID`, handed to rmcp as the id of the event the client has *not* received yet.
//!
//! A client whose SSE stream broke resumes it with `GET /mcp` and the id of the last event it
//! received; the server replays what was sent after that event (MCP Streamable HTTP,
//! "Resumability and Redelivery"). rmcp 3.11's in-memory sessions (no event store) replay from
//! that event on, so the client got the event it already had a second time: a progress line with a
//! stale time left, or a response twice. The gate therefore hands rmcp the id of the next event.
//! `tests/mcp/resuming_a_stream.rs` checks that a resumed stream goes on with exactly the next
//! event, so an rmcp that fixes this itself (and would then skip one) fails it.

use axum::http::{HeaderMap, HeaderValue};

/// The header a resuming client sends.
pub const LAST_EVENT_ID: &str = "last-event-id";

/// Rewrites `Last-Event-ID` (`<index>` or `<index>/<request id>`, rmcp's form) to the next
/// index. Any other value is left for rmcp to refuse.
pub fn ask_for_the_next_event(headers: &mut HeaderMap) {
    let next = headers.get(LAST_EVENT_ID).and_then(|value| value.to_str().ok()).and_then(next_event_id);
    if let Some(next) = next.and_then(|next| HeaderValue::from_str(&next).ok()) {
        headers.insert(LAST_EVENT_ID, next);
    }
}

/// The id of the event after `id` on the same stream.
fn next_event_id(id: &str) -> Option<String> {
    let (index, stream) = match id.split_once('/') {
        Some((index, stream)) => (index, Some(stream)),
        None => (id, None),
    };
    let next = index.parse::<usize>().ok()?.checked_add(1)?;
    Some(match stream {
        Some(stream) => format!("{next}/{stream}"),
        None => next.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_event_keeps_its_stream_and_anything_else_is_left_alone() {
        assert_eq!(next_event_id("2/0").as_deref(), Some("3/0"));
        assert_eq!(next_event_id("9/17").as_deref(), Some("10/17"));
        assert_eq!(next_event_id("4").as_deref(), Some("5"));
        for unreadable in ["", "x/0", "-1/0", "18446744073709551615"] {
            assert_eq!(next_event_id(unreadable), None, "{unreadable:?}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(LAST_EVENT_ID, HeaderValue::from_static("not-an-id"));
        ask_for_the_next_event(&mut headers);
        assert_eq!(headers[LAST_EVENT_ID], "not-an-id", "rmcp refuses it, as before");
        headers.insert(LAST_EVENT_ID, HeaderValue::from_static("7/2"));
        ask_for_the_next_event(&mut headers);
        assert_eq!(headers[LAST_EVENT_ID], "8/2");
    }
}
