//! The browser pages (the approval device, the sign-in and consent pages) are for a browser on this
//! machine: they answer only to a loopback `Host` (no DNS rebinding), and their forms must be posted
//! from their own origin.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The page is for this machine only: a DNS-rebinding page on another name is refused.
pub fn require_loopback_host(headers: &HeaderMap) -> Result<(), Refusal> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    if matches!(name, "127.0.0.1" | "localhost" | "[::1]") {
        Ok(())
    } else {
        Err(Refusal::new(StatusCode::FORBIDDEN, "this page answers only on a loopback host name"))
    }
}

/// A form post from the page itself carries our origin (or, from older clients, no Origin at all).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        None => true,
        Some(origin) => origin == format!("http://{host}"),
    }
}

/// A refusal before any work is done.
pub struct Refusal(StatusCode, &'static str);

impl Refusal {
    pub fn new(status: StatusCode, message: &'static str) -> Self {
        Self(status, message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}
