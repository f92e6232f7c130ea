//! In front of rmcp's Streamable HTTP service at `/mcp`: every POST body is read once (bounded) and
//! handed on unchanged, so that
//! - a body that is not an MCP message is answered `400` with its JSON-RPC error (see
//!   [`super::frames`]), where rmcp answers `415` with plain text as if the media type were wrong;
//! - an `initialize` that would open a session beyond `mcp.max_sessions` is answered `503` with a
//!   JSON-RPC error and `Retry-After`. Sessions end when the client deletes them or after
//!   `mcp.session_idle_seconds` without a message (rmcp's keep-alive); an abandoned one holds memory
//!   until then, so their number is bounded.
//!
//! A `GET` that resumes a stream has its `Last-Event-ID` moved on by one (see [`super::resume`]).
//!
//! rmcp keeps every check it makes before reading the body, in its order: a foreign `Host` or
//! `Origin` (403), a missing `Accept` (406), a wrong `Content-Type` (415). A body we cannot read is
//! therefore still handed to rmcp, and only rmcp's own "cannot read this body" is replaced.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, ErrorCode};
use rmcp::transport::common::http_header::{HEADER_SESSION_ID, JSON_MIME_TYPE};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::frames::{self, Frame, FrameError};

/// JSON-RPC's implementation-defined server error: no session can be opened now.
pub const TOO_MANY_SESSIONS: ErrorCode = ErrorCode(-32000);

/// What the gate needs to know: the live sessions, and the bounds.
pub struct Gate {
    sessions: Arc<LocalSessionManager>,
    max_sessions: usize,
    /// Sent as `Retry-After`: the longest an abandoned session can hold its place.
    retry_after_seconds: u64,
    max_body_bytes: usize,
    /// Held while a session is opened, so concurrent `initialize`s cannot overshoot the bound.
    admitting: Mutex<()>,
}

impl Gate {
    pub fn new(
        sessions: Arc<LocalSessionManager>,
        max_sessions: usize,
        retry_after_seconds: u64,
        max_body_bytes: usize,
    ) -> Self {
        Self { sessions, max_sessions, retry_after_seconds, max_body_bytes, admitting: Mutex::new(()) }
    }

    /// Opens the session (by letting rmcp serve `initialize`) if the bound allows one more.
    async fn admit(&self, id: Value, open: impl Future<Output = Response>) -> Response {
        let _admitting = self.admitting.lock().await;
        let live = self.sessions.sessions.read().await.len();
        if live >= self.max_sessions {
            tracing::warn!(live, max_sessions = self.max_sessions, "refused a new MCP session: the server is full");
            let message = format!(
                "the server already holds its maximum of {} MCP sessions; retry later, or end an unused \
                 session (DELETE /mcp with its Mcp-Session-Id)",
                self.max_sessions
            );
            let answer =
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": TOO_MANY_SESSIONS.0, "message": message}});
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(answer)).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(self.retry_after_seconds));
            return response;
        }
        open.await
    }
}

/// The middleware: `axum::middleware::from_fn_with_state(gate, guard)`.
pub async fn guard(State(gate): State<Arc<Gate>>, mut request: Request, next: Next) -> Response {
    if request.method() == Method::GET {
        super::resume::ask_for_the_next_event(request.headers_mut());
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, gate.max_body_bytes).await else {
        let error = FrameError::too_long(gate.max_body_bytes);
        return (StatusCode::PAYLOAD_TOO_LARGE, Json(error.answer())).into_response();
    };
    // rmcp's body reader, unlike its stdio one, refuses a byte order mark: it is dropped here.
    let body = if body.starts_with(frames::UTF8_BOM) { body.slice(frames::UTF8_BOM.len()..) } else { body };
    let frame = frames::read(&body);
    let declared_json = declares_json(&parts.headers);
    let in_session = parts.headers.contains_key(HEADER_SESSION_ID);
    let request = Request::from_parts(parts, Body::from(body));
    match frame {
        Frame::Refused(error) => {
            let response = next.run(request).await;
            if response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE && declared_json {
                refused(&error)
            } else {
                response
            }
        }
        Frame::Message(message) => match initialize_id(&message) {
            Some(id) if !in_session => gate.admit(id, next.run(request)).await,
            _ => next.run(request).await,
        },
    }
}

/// A body that is not an MCP message: 400 with the JSON-RPC error.
fn refused(error: &FrameError) -> Response {
    (StatusCode::BAD_REQUEST, Json(error.answer())).into_response()
}

/// The id of an `initialize` request, the one message that opens a session.
fn initialize_id(message: &ClientJsonRpcMessage) -> Option<Value> {
    match message {
        ClientJsonRpcMessage::Request(request) if matches!(request.request, ClientRequest::InitializeRequest(_)) => {
            Some(request.id.clone().into_json_value())
        }
        _ => None,
    }
}

/// `Content-Type: application/json` (parameters allowed), as rmcp checks it.
fn declares_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).is_some_and(|value| {
        let essence = value.split_once(';').map_or(value, |(essence, _)| essence);
        essence.trim().eq_ignore_ascii_case(JSON_MIME_TYPE)
    })
}
