//! The `Idempotency-Key`: its syntax, and `GET /api/users/{sub}/idempotency-keys/{key}`, what the bank
//! answered to `sub`'s transfer request sent under `key`.
//!
//! A client that lost the answer to `POST /api/transfers` (a timeout, a crash) asks here before it
//! reports anything: `executed` with the transfer exactly as the POST returned it, `refused` with the
//! refusal the POST gave (the token that asked is spent), or `404 unknown_idempotency_key`: the bank has
//! recorded nothing under this key, so no transfer exists for it. Readable with `read:accounts` (the MCP
//! server's own token) or by the user's own token.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Serialize;

use super::AppState;
use super::extract::Bearer;
use super::ledger::{RecordedOutcome, RecordedRefusal, TransferView};
use super::problem::ApiError;
use crate::scopes::READ_ACCOUNTS;

/// Longest `Idempotency-Key`, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// A well-formed `Idempotency-Key`: 1 to [`MAX_IDEMPOTENCY_KEY_LEN`] visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key of a transfer request, which must carry one.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        let Some(value) = headers.get("idempotency-key") else {
            return Err(ApiError::bad_request(
                "missing_idempotency_key",
                "send an Idempotency-Key header so a retried request cannot move money twice",
            ));
        };
        Self::parse(value.to_str().unwrap_or_default())
    }

    pub fn parse(key: &str) -> Result<Self, ApiError> {
        let visible_ascii = key.bytes().all(|b| b.is_ascii_graphic());
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN || !visible_ascii {
            return Err(ApiError::bad_request(
                "invalid_idempotency_key",
                format!("the Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
            ));
        }
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The answer of the lookup.
#[derive(Debug, Serialize)]
pub struct KeyOutcome {
    pub idempotency_key: String,
    #[serde(flatten)]
    pub outcome: OutcomeView,
}

#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OutcomeView {
    Executed { transfer: TransferView },
    Refused { refusal: RecordedRefusal },
}

pub async fn lookup(
    State(state): State<Arc<AppState>>,
    Bearer(token): Bearer,
    Path((subject, key)): Path<(String, String)>,
) -> Result<Json<KeyOutcome>, ApiError> {
    if token.subject != subject && !token.has_scope(READ_ACCOUNTS) {
        return Err(ApiError::NotOwner("this user's Idempotency-Keys"));
    }
    let key = IdempotencyKey::parse(&key)?;
    if !state.ledger.has_user(&subject).await? {
        return Err(ApiError::not_found("unknown_user", format!("there is no user {subject:?}")));
    }
    let outcome = state.ledger.recorded_outcome(&subject, key.as_str()).await?.ok_or_else(|| {
        ApiError::not_found(
            "unknown_idempotency_key",
            format!("nothing is recorded under this Idempotency-Key for {subject:?}: no transfer exists for it"),
        )
    })?;
    let outcome = match outcome {
        RecordedOutcome::Executed(transfer) => OutcomeView::Executed { transfer },
        RecordedOutcome::Refused(refusal) => OutcomeView::Refused { refusal },
    };
    Ok(Json(KeyOutcome { idempotency_key: key.into_string(), outcome }))
}
