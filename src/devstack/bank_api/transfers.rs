//! `POST /api/transfers` and `GET /api/transfers/{id}`.
//!
//! A transfer is refused unless, in this order: the token is genuine; it carries `create:transfer`;
//! the body is a valid transfer (exact amount within limits, short printable memo, two different
//! accounts); an `Idempotency-Key` is given; both accounts exist in the body's currency; the token's
//! subject owns the source account; and the token's `payment_initiation` detail describes exactly
//! this transfer. The ledger then executes it once per key and once per token, or not at all.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::extract::{Bearer, JsonBody};
use super::ledger::{TransferOrder, TransferOutcome};
use super::problem::ApiError;
use super::token::AccessToken;
use crate::authorization_details::TransferTerms;
use crate::money::{Currency, MinorUnits, MoneyError};
use crate::scopes::{CREATE_TRANSFER, READ_ACCOUNTS};

/// Longest memo, in characters.
pub const MAX_MEMO_CHARS: usize = 140;
/// Longest `Idempotency-Key`, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
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
    let valid = validate(&request, state.max_transfer)?;
    let idempotency_key = idempotency_key(&headers)?;

    let from = state.ledger.account(&request.from_account_id).await?;
    let from = from.ok_or_else(|| unknown_account(&request.from_account_id))?;
    let to = state.ledger.account(&request.to_account_id).await?;
    let to = to.ok_or_else(|| unknown_account(&request.to_account_id))?;
    if from.owner_subject != token.subject {
        return Err(ApiError::NotOwner("the source account"));
    }
    for account in [&from, &to] {
        if account.currency != valid.currency.as_str() {
            return Err(ApiError::bad_request(
                "currency_mismatch",
                format!("account {} holds {}, not {}", account.id, account.currency, valid.currency),
            ));
        }
    }

    let terms = TransferTerms {
        from_account_id: &request.from_account_id,
        to_account_id: &request.to_account_id,
        amount: valid.amount,
        currency: valid.currency,
        memo: request.memo.as_deref(),
        intent_id: &idempotency_key,
    };
    if state.require_transaction_binding {
        check_binding(&token, &terms)?;
    }

    let order = TransferOrder {
        owner_subject: token.subject.clone(),
        idempotency_key: idempotency_key.clone(),
        from_account_id: request.from_account_id,
        to_account_id: request.to_account_id,
        amount: valid.amount,
        currency: valid.currency,
        memo: request.memo,
        client_id: token.client_id.clone(),
        token_jti: token.jti.clone(),
    };
    let (status, view, replayed) = match state.ledger.execute_transfer(&order).await? {
        TransferOutcome::Executed(view) => {
            tracing::info!(transfer = %view.id, amount = %view.amount, currency = %view.currency, "transfer executed");
            (StatusCode::CREATED, view, false)
        }
        TransferOutcome::Replayed(view) => (StatusCode::CREATED, view, true),
    };
    let mut response = (status, Json(&view)).into_response();
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

fn validate(request: &TransferRequest, max_transfer: MinorUnits) -> Result<ValidRequest, ApiError> {
    let currency: Currency =
        request.currency.parse().map_err(|e: MoneyError| ApiError::bad_request("invalid_currency", e.to_string()))?;
    let amount = MinorUnits::parse_decimal(&request.amount)
        .map_err(|e| ApiError::bad_request("invalid_amount", e.to_string()))?;
    if !amount.is_positive() {
        return Err(ApiError::bad_request("invalid_amount", "the amount must be greater than zero"));
    }
    if amount > max_transfer {
        return Err(ApiError::bad_request(
            "amount_over_limit",
            format!("the amount exceeds the per-transfer maximum of {max_transfer} {currency}"),
        ));
    }
    if request.from_account_id == request.to_account_id {
        return Err(ApiError::bad_request("same_account", "the source and destination accounts are the same"));
    }
    if let Some(memo) = &request.memo {
        if memo.chars().count() > MAX_MEMO_CHARS {
            return Err(ApiError::bad_request(
                "invalid_memo",
                format!("the memo is longer than {MAX_MEMO_CHARS} characters"),
            ));
        }
        if memo.chars().any(char::is_control) {
            return Err(ApiError::bad_request("invalid_memo", "the memo contains control characters"));
        }
    }
    Ok(ValidRequest { amount, currency })
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Err(ApiError::bad_request(
            "missing_idempotency_key",
            "send an Idempotency-Key header so a retried request cannot move money twice",
        ));
    };
    let key = value.to_str().unwrap_or_default();
    let visible_ascii = key.bytes().all(|b| b.is_ascii_graphic());
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN || !visible_ascii {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            format!("the Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
        ));
    }
    Ok(key.to_owned())
}

/// Exactly one `payment_initiation` detail, describing exactly these terms.
fn check_binding(token: &AccessToken, terms: &TransferTerms<'_>) -> Result<(), ApiError> {
    let details = token.payment_initiations().map_err(|_| ApiError::BindingMissing)?;
    let [detail] = details.as_slice() else {
        return Err(ApiError::BindingMissing);
    };
    detail.check_matches(terms).map_err(ApiError::BindingMismatch)
}

fn unknown_account(id: &str) -> ApiError {
    ApiError::not_found("unknown_account", format!("there is no account {id:?}"))
}
