//! `POST /api/transfers` and `GET /api/transfers/{id}`.
//!
//! A transfer request goes through two gates.
//!
//! **The request** is checked first, in this order: the token is genuine; it carries `create:transfer`;
//! the body is a well-formed transfer (exact positive amount, two different accounts, a currency
//! code, a memo that obeys [`check_memo`]: short, nothing invisible or reordering, already NFC); an `Idempotency-Key` is given; and the token's `payment_initiation`
//! detail describes exactly this transfer under this key. A refusal here consumes nothing and records
//! nothing: the token can still be used for the transfer it approves.
//!
//! **The bank** then judges the approved transfer against the world, in one ledger transaction (see
//! [`super::ledger`]): first, what was answered earlier under the same key (same body: that answer
//! again, with `Idempotent-Replayed: true`, whatever token is sent; another body: `409`); then whether
//! the token was already used (`401`); then the per-transfer maximum, both accounts, ownership of the
//! source, currencies, balance. From here every outcome is final: the money moves, or the refusal
//! (`amount_over_limit`, `unknown_account`, `not_owner`, `currency_mismatch`, `insufficient_funds`) is
//! recorded under the key; either way the token is consumed and can never be used again.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::extract::{Bearer, JsonBody};
use super::idempotency::IdempotencyKey;
use super::ledger::{TransferOrder, TransferOutcome, TransferView};
use super::problem::ApiError;
use super::token::AccessToken;
use crate::authorization_details::{TransferTerms, check_memo};
use crate::money::{Currency, MinorUnits, MoneyError};
use crate::scopes::{CREATE_TRANSFER, READ_ACCOUNTS};

pub use crate::authorization_details::MAX_MEMO_CHARS;
/// Set on a response that repeats an earlier one for the same `Idempotency-Key`.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub from_account_id: String,
    pub to_account_id: String,
    /// A decimal string such as `"25.00"`; JSON numbers are refused so no float ever touches money.
    pub amount: String,
    pub currency: String,
    #[serde(default)]
    pub memo: Option<String>,
}

/// A request body that passed every check that needs no database.
struct ValidRequest {
    amount: MinorUnits,
    currency: Currency,
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    bearer: Bearer,
    headers: HeaderMap,
    JsonBody(request): JsonBody<TransferRequest>,
) -> Result<Response, ApiError> {
    let token = bearer.with_scope(CREATE_TRANSFER)?;
    let valid = validate(&request)?;
    let idempotency_key = IdempotencyKey::from_headers(&headers)?;
    let terms = TransferTerms {
        from_account_id: &request.from_account_id,
        to_account_id: &request.to_account_id,
        amount: valid.amount,
        currency: valid.currency,
        memo: request.memo.as_deref(),
        intent_id: idempotency_key.as_str(),
    };
    if state.require_transaction_binding {
        check_binding(&token, &terms)?;
    }

    let order = TransferOrder {
        owner_subject: token.subject.clone(),
        idempotency_key: idempotency_key.into_string(),
        from_account_id: request.from_account_id,
        to_account_id: request.to_account_id,
        amount: valid.amount,
        currency: valid.currency,
        memo: request.memo,
        client_id: token.client_id.clone(),
        token_jti: token.jti.clone(),
    };
    match state.ledger.execute_transfer(&order, state.max_transfer).await? {
        TransferOutcome::Executed(view) => {
            tracing::info!(transfer = %view.id, amount = %view.amount, currency = %view.currency, "transfer executed");
            created(&view, false)
        }
        TransferOutcome::Replayed(view) => created(&view, true),
        TransferOutcome::Refused(refusal) => {
            let refusal = ApiError::from(refusal);
            tracing::info!(code = refusal.code(), "transfer refused; its token is consumed");
            Err(refusal)
        }
        TransferOutcome::ReplayedRefusal(refusal) => Err(ApiError::Replayed(refusal)),
    }
}

/// `201 Created` with the transfer, first given now or `replayed` from its first execution.
fn created(view: &TransferView, replayed: bool) -> Result<Response, ApiError> {
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    let location = HeaderValue::from_str(&format!("/api/transfers/{}", view.id)).map_err(|_| ApiError::Internal)?;
    response.headers_mut().insert(header::LOCATION, location);
    if replayed {
        response.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    Ok(response)
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Bearer(token): Bearer,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let transfer = state
        .ledger
        .transfer(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_transfer", format!("there is no transfer {id:?}")))?;
    if transfer.owner_subject != token.subject && !token.has_scope(READ_ACCOUNTS) {
        return Err(ApiError::NotOwner("this transfer"));
    }
    Ok(Json(transfer.view).into_response())
}

/// The checks that need no database; the bank's own limits are judged later, by the ledger.
fn validate(request: &TransferRequest) -> Result<ValidRequest, ApiError> {
    let currency: Currency =
        request.currency.parse().map_err(|e: MoneyError| ApiError::bad_request("invalid_currency", e.to_string()))?;
    let amount = MinorUnits::parse_decimal(&request.amount)
        .map_err(|e| ApiError::bad_request("invalid_amount", e.to_string()))?;
    if !amount.is_positive() {
        return Err(ApiError::bad_request("invalid_amount", "the amount must be greater than zero"));
    }
    if request.from_account_id == request.to_account_id {
        return Err(ApiError::bad_request("same_account", "the source and destination accounts are the same"));
    }
    // Refused rather than normalised: the binding and the ledger then hold exactly the approved bytes.
    if let Some(memo) = &request.memo {
        check_memo(memo).map_err(|e| ApiError::bad_request("invalid_memo", format!("the memo {e}")))?;
    }
    Ok(ValidRequest { amount, currency })
}

/// Exactly one `payment_initiation` detail, describing exactly these terms.
fn check_binding(token: &AccessToken, terms: &TransferTerms<'_>) -> Result<(), ApiError> {
    let details = token.payment_initiations().map_err(|_| ApiError::BindingMissing)?;
    let [detail] = details.as_slice() else {
        return Err(ApiError::BindingMissing);
    };
    detail.check_matches(terms).map_err(ApiError::BindingMismatch)
}
