//! OAuth 2.0 / CIBA error responses (RFC 6749 §5.2 and §4.1.2.1, CIBA Core §13 and §11, RFC 8707
//! §2, RFC 7591 §3.2.2): one type, one translation to HTTP, so every endpoint answers
//! `{"error", "error_description"}` with the status the specs give that code. (Errors of `/authorize`
//! travel back in the redirect instead; `authorize` turns the same type into query parameters.)

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

/// The error codes this server uses, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    /// `basic`: the client tried HTTP Basic, so the 401 carries a Basic challenge (RFC 6749 §5.2).
    InvalidClient {
        basic: bool,
    },
    UnauthorizedClient,
    InvalidScope,
    UnknownUserId,
    InvalidBindingMessage,
    InvalidAuthorizationDetails,
    UnsupportedGrantType,
    InvalidGrant,
    AuthorizationPending,
    /// The interval the client must now use, in seconds; also sent as `Retry-After`, as Auth0 does.
    SlowDown {
        interval: u64,
    },
    ExpiredToken,
    AccessDenied,
    ServerError,
    /// RFC 6749 §4.1.2.1: `/authorize` with a `response_type` other than `code`.
    UnsupportedResponseType,
    /// RFC 8707 §2: the `resource` is unknown, or not one this grant may name.
    InvalidTarget,
    /// RFC 7591 §3.2.2: a registration's redirect URI is not acceptable.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: some other registration metadata is not acceptable.
    InvalidClientMetadata,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::InvalidScope => "invalid_scope",
            Self::UnknownUserId => "unknown_user_id",
            Self::InvalidBindingMessage => "invalid_binding_message",
            Self::InvalidAuthorizationDetails => "invalid_authorization_details",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidGrant => "invalid_grant",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown { .. } => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
            Self::AccessDenied => StatusCode::FORBIDDEN,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self { code, description: description.into() }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn server_error(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "authorization server failure");
        Self::new(ErrorCode::ServerError, "the authorization server failed; see its log")
    }

    /// The same error, for the token endpoint: CIBA §11 answers `access_denied` there with 400.
    pub fn at_token_endpoint(self) -> TokenEndpointError {
        TokenEndpointError(self)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        self.into_response_with(status)
    }
}

impl OAuthError {
    fn into_response_with(self, status: StatusCode) -> Response {
        let mut body = json!({"error": self.code.as_str(), "error_description": self.description});
        if let ErrorCode::SlowDown { interval } = self.code {
            body["interval"] = json!(interval);
        }
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self.code {
            ErrorCode::InvalidClient { basic: true } => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"bankguard-dev\""));
            }
            ErrorCode::SlowDown { interval } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(interval));
            }
            _ => {}
        }
        response
    }
}

/// An error from `/oauth/token`, where every code but `invalid_client` is a 400 (RFC 6749 §5.2).
#[derive(Debug)]
pub struct TokenEndpointError(pub OAuthError);

impl IntoResponse for TokenEndpointError {
    fn into_response(self) -> Response {
        let status = match self.0.code {
            ErrorCode::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        self.0.into_response_with(status)
    }
}

impl From<OAuthError> for TokenEndpointError {
    fn from(error: OAuthError) -> Self {
        Self(error)
    }
}
