//! What can go wrong talking to the OpenID provider, with the context a person needs. Messages name
//! the provider and the reason; they never contain a secret, a token or an `auth_req_id`.
//!
//! Every failure is either **transient** ([`CibaError::is_transient`]: the provider could not answer
//! this time, and nothing was decided) or **final** (the provider gave a protocol answer, or our own
//! configuration is wrong). Only final failures end a wait; transient ones are retried.

/// `error` codes that say "not now" rather than "no" (RFC 6749 §4.1.2.1, §5.2 as providers use them).
pub const TRANSIENT_ERROR_CODES: [&str; 2] = ["temporarily_unavailable", "server_error"];

/// An OAuth error answer: `{"error": …, "error_description": …}`, and the HTTP status it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRefusal {
    pub status: u16,
    pub error: String,
    pub description: Option<String>,
}

impl ProviderRefusal {
    /// A 5xx, 429 or 408 whatever its body says, or an error code that means "try again later".
    pub fn is_transient(&self) -> bool {
        is_transient_status(self.status) || TRANSIENT_ERROR_CODES.contains(&self.error.as_str())
    }
}

impl std::fmt::Display for ProviderRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.description {
            Some(description) => write!(f, "{} ({description}), HTTP {}", self.error, self.status),
            None => write!(f, "{}, HTTP {}", self.error, self.status),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CibaError {
    /// No answer: connection refused or reset, a timeout, or a body cut off in transit.
    #[error("the authorization server at {url} could not be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the authorization server at {url} answered HTTP {status} without a usable body")]
    BadResponse { url: String, status: u16 },
    #[error("the authorization server's discovery document at {url} is unusable: {reason}")]
    Discovery { url: String, reason: String },
    #[error("the authorization server refused the request: {0}")]
    Refused(ProviderRefusal),
    #[error("the client credentials are not configured: {0}")]
    Credentials(String),
}

impl CibaError {
    /// True when asking again later may succeed and nothing was decided: the provider was unreachable,
    /// timed out or reset the connection; answered 5xx, 429 or 408 (with or without an error body);
    /// answered 2xx with a body that is unreadable or cut short (the request may well have been
    /// accepted); or answered `temporarily_unavailable` / `server_error`.
    ///
    /// False for the provider's protocol answers (`access_denied`, `invalid_grant`, `invalid_client`,
    /// `unauthorized_client`, `invalid_request`, …), for other 4xx answers without an OAuth error body
    /// (a wrong endpoint URL does not heal by waiting), and for configuration errors.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::BadResponse { status, .. } => (200..300).contains(status) || is_transient_status(*status),
            Self::Refused(refusal) => refusal.is_transient(),
            Self::Discovery { .. } | Self::Credentials(_) => false,
        }
    }
}

/// Server errors, `429 Too Many Requests` and `408 Request Timeout`.
fn is_transient_status(status: u16) -> bool {
    (500..600).contains(&status) || status == 429 || status == 408
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(status: u16, error: &str) -> CibaError {
        CibaError::Refused(ProviderRefusal { status, error: error.into(), description: None })
    }

    fn bad(status: u16) -> CibaError {
        CibaError::BadResponse { url: "https://op.example/oauth/token".into(), status }
    }

    #[test]
    fn no_answer_at_all_is_transient() {
        let reset = CibaError::Unreachable {
            url: "https://op.example/oauth/token".into(),
            reason: "error sending request: connection reset by peer".into(),
        };
        assert!(reset.is_transient());
    }

    #[test]
    fn server_errors_and_throttling_are_transient_with_or_without_an_error_body() {
        for status in [500, 502, 503, 504, 429, 408] {
            assert!(bad(status).is_transient(), "HTTP {status} without a body");
            assert!(refusal(status, "server_error").is_transient(), "HTTP {status} server_error");
            assert!(refusal(status, "access_denied").is_transient(), "HTTP {status} says nothing final");
        }
    }

    #[test]
    fn a_success_status_with_an_unreadable_body_is_transient_the_request_may_have_been_accepted() {
        for status in [200, 201, 204] {
            assert!(bad(status).is_transient(), "HTTP {status} with a truncated body");
        }
    }

    #[test]
    fn try_again_later_codes_are_transient_whatever_the_status() {
        assert!(refusal(400, "temporarily_unavailable").is_transient());
        assert!(refusal(400, "server_error").is_transient());
    }

    #[test]
    fn protocol_refusals_are_final() {
        let final_answers = [
            (400, "invalid_grant"),
            (403, "access_denied"),
            (400, "access_denied"),
            (400, "expired_token"),
            (400, "unauthorized_client"),
            (401, "invalid_client"),
            (400, "invalid_request"),
            (400, "invalid_scope"),
            (400, "unsupported_grant_type"),
        ];
        for (status, error) in final_answers {
            assert!(!refusal(status, error).is_transient(), "HTTP {status} {error}");
        }
    }

    #[test]
    fn other_client_errors_without_an_oauth_body_and_configuration_errors_are_final() {
        for status in [400, 401, 403, 404, 405] {
            assert!(!bad(status).is_transient(), "HTTP {status} without a body");
        }
        let discovery = CibaError::Discovery { url: "https://op.example".into(), reason: "no token_endpoint".into() };
        assert!(!discovery.is_transient());
        assert!(!CibaError::Credentials("no client secret".into()).is_transient());
    }

    #[test]
    fn messages_name_the_code_and_status_but_nothing_secret() {
        let refusal = ProviderRefusal { status: 400, error: "invalid_grant".into(), description: Some("used".into()) };
        assert_eq!(
            CibaError::Refused(refusal).to_string(),
            "the authorization server refused the request: invalid_grant (used), HTTP 400"
        );
    }
}
