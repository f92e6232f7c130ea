//! One frame from a client (a stdio line, an HTTP body) read as an MCP message, or refused with the
//! JSON-RPC 2.0 error it deserves (§5.1) instead of silence or an HTTP status rmcp picked.
//!
//! | the frame | answer |
//! |---|---|
//! | not JSON | -32700 Parse error, `id: null` |
//! | JSON, but not a JSON-RPC 2.0 message (no `"jsonrpc": "2.0"`, a batch, no `method`, …) | -32600 Invalid Request, the `id` if readable |
//!
//! A request with a well-formed envelope reaches rmcp even when its method or `params` are wrong
//! (rmcp answers it with its own error). A notification is never answered over stdio (JSON-RPC
//! forbids it), even one that cannot be read.
//! Both transports read frames here, so stdio and HTTP refuse the same frames with the same codes.

use rmcp::model::{ClientJsonRpcMessage, ErrorCode};
use serde_json::{Map, Value, json};

/// RFC 8259 §8.1 lets a parser ignore a leading byte order mark; rmcp's own reader does too.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What one frame turned out to be.
#[derive(Debug)]
pub enum Frame {
    Message(Box<ClientJsonRpcMessage>),
    Refused(FrameError),
}

/// A frame that is not an MCP message, and the JSON-RPC error that answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    pub code: ErrorCode,
    pub message: String,
    /// The frame's `id` when it could be read (a string or an integer), else `null`.
    pub id: Value,
    /// The frame is a notification (a `method` and no `id`): over stdio it gets no answer.
    pub notification: bool,
}

/// Reads one frame.
pub fn read(bytes: &[u8]) -> Frame {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    // rmcp's own type decides what a message is; only what it refuses is looked at further.
    let unreadable = match serde_json::from_slice::<ClientJsonRpcMessage>(bytes) {
        Ok(message) => return Frame::Message(Box::new(message)),
        Err(error) => error,
    };
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(error) => return Frame::Refused(FrameError::parse(&error)),
    };
    Frame::Refused(match value {
        Value::Array(_) => FrameError::invalid_request(Value::Null, "batches are not supported: send one message"),
        Value::Object(object) => refuse_object(&object, &unreadable),
        _ => FrameError::invalid_request(Value::Null, "a JSON-RPC message is an object"),
    })
}

/// Why a JSON object is not a message rmcp can read.
fn refuse_object(object: &Map<String, Value>, unreadable: &serde_json::Error) -> FrameError {
    let id = match object.get("id") {
        Some(Value::String(id)) => Value::String(id.clone()),
        Some(Value::Number(id)) if id.is_i64() || id.is_u64() => Value::Number(id.clone()),
        _ => Value::Null,
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return FrameError::invalid_request(id, "\"jsonrpc\" must be \"2.0\"");
    }
    let method = match object.get("method") {
        Some(Value::String(method)) => method,
        Some(_) => return FrameError::invalid_request(id, "\"method\" must be a string"),
        None if object.contains_key("result") || object.contains_key("error") => {
            return FrameError::invalid_request(id, "not a valid JSON-RPC response");
        }
        None => return FrameError::invalid_request(id, "a request needs a \"method\""),
    };
    if object.contains_key("result") || object.contains_key("error") {
        return FrameError::invalid_request(id, "a request carries no \"result\" or \"error\"");
    }
    let notification = !object.contains_key("id");
    let why = if !notification && id.is_null() {
        "\"id\" must be a string or an integer".to_owned()
    } else if object.get("params").is_some_and(|params| !params.is_object()) {
        "\"params\" must be an object".to_owned()
    } else {
        format!("the params of {method} cannot be read ({unreadable})")
    };
    FrameError { notification, ..FrameError::invalid_request(id, &why) }
}

impl FrameError {
    fn parse(error: &serde_json::Error) -> Self {
        Self {
            code: ErrorCode::PARSE_ERROR,
            message: format!("Parse error: not JSON ({error})"),
            id: Value::Null,
            notification: false,
        }
    }

    /// A line longer than the transport holds in memory; it was dropped unread.
    pub fn too_long(limit: usize) -> Self {
        Self::invalid_request(Value::Null, &format!("the message is longer than {limit} bytes"))
    }

    fn invalid_request(id: Value, why: &str) -> Self {
        Self { code: ErrorCode::INVALID_REQUEST, message: format!("Invalid Request: {why}"), id, notification: false }
    }

    /// The JSON-RPC error response: `id` is always present, `null` when it could not be read.
    pub fn answer(&self) -> Value {
        json!({"jsonrpc": "2.0", "id": self.id, "error": {"code": self.code.0, "message": self.message}})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(frame: &str) -> FrameError {
        match read(frame.as_bytes()) {
            Frame::Refused(error) => error,
            Frame::Message(message) => panic!("{frame} was read as {message:?}"),
        }
    }

    #[test]
    fn mcp_messages_are_read_as_rmcp_reads_them() {
        for frame in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"ping\"}",
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":2,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"vendor/extension","params":{"x":1}}"#,
        ] {
            assert!(matches!(read(frame.as_bytes()), Frame::Message(_)), "{frame}");
        }
    }

    #[test]
    fn what_is_not_json_is_a_parse_error_without_an_id() {
        for frame in ["not json", "{\"jsonrpc\":\"2.0\",", "{'id': 1}", "   "] {
            let error = refused(frame);
            assert_eq!((error.code, &error.id), (ErrorCode::PARSE_ERROR, &Value::Null), "{frame}");
        }
    }

    #[test]
    fn json_that_is_not_json_rpc_is_an_invalid_request_with_the_id_when_readable() {
        for (frame, id) in [
            (r#"{"id":7,"method":"tools/list"}"#, json!(7)),
            (r#"{"jsonrpc":"1.0","id":"x","method":"tools/list"}"#, json!("x")),
            (r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#, Value::Null),
            ("[]", Value::Null),
            ("42", Value::Null),
            (r#"{"jsonrpc":"2.0","id":8,"method":1}"#, json!(8)),
            (r#"{"jsonrpc":"2.0","id":9}"#, json!(9)),
            (r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#, Value::Null),
            (r#"{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}"#, Value::Null),
            (r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}"#, Value::Null),
            (r#"{"jsonrpc":"2.0","id":10,"method":"tools/list","params":"all"}"#, json!(10)),
            (r#"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":[]}"#, json!(12)),
            (r#"{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"_meta":5}}"#, json!(13)),
        ] {
            let error = refused(frame);
            assert_eq!(
                (error.code, &error.id, error.notification),
                (ErrorCode::INVALID_REQUEST, &id, false),
                "{frame}"
            );
        }
    }

    #[test]
    fn a_request_with_a_sound_envelope_goes_to_rmcp_whatever_its_params() {
        let frame = r#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":5}}"#;
        assert!(matches!(read(frame.as_bytes()), Frame::Message(_)), "rmcp answers it with its own error");
    }

    #[test]
    fn a_notification_that_cannot_be_read_is_marked_so_that_stdio_leaves_it_unanswered() {
        for frame in [
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":[]}"#,
            r#"{"jsonrpc":"2.0","method":"x","params":{"_meta":5}}"#,
        ] {
            let error = refused(frame);
            assert!(error.notification && error.code == ErrorCode::INVALID_REQUEST, "{frame}");
        }
    }

    #[test]
    fn the_answer_always_names_the_id_even_when_null() {
        let answer = refused("nope").answer();
        assert_eq!(answer["jsonrpc"], "2.0");
        assert_eq!(answer["id"], Value::Null);
        assert!(answer.as_object().unwrap().contains_key("id"));
        assert_eq!(answer["error"]["code"], -32700);
    }
}
