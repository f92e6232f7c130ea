//! The bank API's errors and their one translation to HTTP: RFC 9457 `application/problem+json`
//! bodies, plus an RFC 6750 `WWW-Authenticate: Bearer …` challenge on every 401 and 403.
//!
//! Every refusal has a stable `code` in the body (for programs) and a `detail` (for people).
//! Internal failures are logged with their cause and answered with a generic 500. A refusal the
//! ledger recorded is worded here once ([`RecordedRefusal::from`]) and replayed from the record.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::ledger::{LedgerError, RecordedRefusal, Refusal};
use super::token::TokenError;
use super::transfers::REPLAYED_HEADER;
use crate::authorization_details::BindingMismatch;

/// The realm named in bearer challenges.
const REALM: &str = "bankguard-bank";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("this request needs an access token: send Authorization: Bearer <token>")]
    MissingToken,
    #[error("{0}")]
    InvalidToken(TokenError),
    #[error("this access token has already been used for a transfer request; each approval is good for one")]
    TokenAlreadyUsed,
    #[error("the access token lacks the scope {0}")]
    InsufficientScope(&'static str),
    #[error("the access token's subject does not own {0}")]
    NotOwner(&'static str),
    #[error("the access token carries no single payment_initiation authorization detail for this transfer")]
    BindingMissing,
    #[error("the access token's authorization_details do not match this transfer: {0}")]
    BindingMismatch(BindingMismatch),
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("{detail}")]
    NotFound { code: &'static str, detail: String },
    #[error("the source account's balance is lower than the amount")]
    InsufficientFunds,
    #[error("this Idempotency-Key was already used for a different transfer")]
    IdempotencyConflict,
    /// A refusal recorded under this Idempotency-Key, answered again as first given.
    #[error("{}", .0.detail)]
    Replayed(RecordedRefusal),
    #[error("access tokens cannot be checked right now; try again shortly")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest { code, detail: detail.into() }
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::NotFound { code, detail: detail.into() }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) | Self::TokenAlreadyUsed => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope(_) | Self::NotOwner(_) | Self::BindingMissing | Self::BindingMismatch(_) => {
                StatusCode::FORBIDDEN
            }
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::InsufficientFunds => StatusCode::UNPROCESSABLE_ENTITY,
            Self::IdempotencyConflict => StatusCode::CONFLICT,
            Self::Replayed(refusal) => {
                StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code; for token problems, the RFC 6750 error code.
    pub fn code(&self) -> &str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidToken(_) | Self::TokenAlreadyUsed => "invalid_token",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::NotOwner(_) => "not_owner",
            Self::BindingMissing | Self::BindingMismatch(_) => "authorization_details_mismatch",
            Self::BadRequest { code, .. } | Self::NotFound { code, .. } => code,
            Self::InsufficientFunds => "insufficient_funds",
            Self::IdempotencyConflict => "idempotency_key_reused",
            Self::Replayed(refusal) => &refusal.code,
            Self::Unavailable => "temporarily_unavailable",
            Self::Internal => "internal_error",
        }
    }

    /// RFC 6750 §3: the challenge for this refusal, if it is one.
    fn challenge(&self) -> Option<String> {
        let (error, scope) = match self {
            // No credentials at all: a bare challenge, no error code (RFC 6750 §3.1).
            Self::MissingToken => return Some(format!("Bearer realm=\"{REALM}\"")),
            Self::InvalidToken(_) | Self::TokenAlreadyUsed => ("invalid_token", None),
            Self::InsufficientScope(scope) => ("insufficient_scope", Some(*scope)),
            Self::NotOwner(_) | Self::BindingMissing | Self::BindingMismatch(_) => ("insufficient_scope", None),
            Self::Replayed(refusal) if refusal.status == 403 => ("insufficient_scope", None),
            _ => return None,
        };
        // RFC 6750 §3: error_description is printable ASCII without `"` and `\`; a header value with
        // anything else would be dropped, and the challenge with it.
        let description: String = self
            .to_string()
            .chars()
            .map(|c| match c {
                '"' | '\\' => '\'',
                ' '..='~' => c,
                _ => '?',
            })
            .collect();
        let scope = scope.map(|s| format!(", scope=\"{s}\"")).unwrap_or_default();
        Some(format!("Bearer realm=\"{REALM}\", error=\"{error}\", error_description=\"{description}\"{scope}"))
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let problem = Problem {
            problem_type: format!("urn:bankguard:problem:{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.to_string(),
            code: self.code(),
        };
        let body = serde_json::to_vec(&problem).expect("a problem serialises");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(challenge) = self.challenge().and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Self::Replayed(_) = self {
            headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        }
        response
    }
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::KeysUnavailable(_) => Self::Unavailable,
            other => Self::InvalidToken(other),
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::IdempotencyConflict => Self::IdempotencyConflict,
            LedgerError::TokenAlreadyUsed => Self::TokenAlreadyUsed,
            LedgerError::Database(_) | LedgerError::Open(_) | LedgerError::Corrupt(_) => {
                tracing::error!(%error, "ledger failure");
                Self::Internal
            }
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::OverLimit { maximum, currency } => Self::bad_request(
                "amount_over_limit",
                format!("the amount exceeds the per-transfer maximum of {maximum} {currency}"),
            ),
            Refusal::UnknownAccount(id) => Self::not_found("unknown_account", format!("there is no account {id:?}")),
            Refusal::NotOwner => Self::NotOwner("the source account"),
            Refusal::CurrencyMismatch { account, holds, asked } => {
                Self::bad_request("currency_mismatch", format!("account {account} holds {holds}, not {asked}"))
            }
            Refusal::InsufficientFunds => Self::InsufficientFunds,
            Refusal::BalanceOverflow => {
                Self::bad_request("amount_over_limit", "the destination account cannot hold this much money")
            }
        }
    }
}

/// How a refusal is recorded: exactly as it is answered the first time.
impl From<&Refusal> for RecordedRefusal {
    fn from(refusal: &Refusal) -> Self {
        let answer = ApiError::from(refusal.clone());
        Self { status: answer.status().as_u16(), code: answer.code().to_owned(), detail: answer.to_string() }
    }
}
