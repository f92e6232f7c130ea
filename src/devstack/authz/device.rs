//! The approval device: the page that plays the account holder's phone, and the JSON API behind
//! `bankguard pending|approve|deny`.
//!
//! Both reach the same [`RequestStore::decide`](super::store::RequestStore::decide). The page is for a
//! browser on this machine: it answers only to a loopback `Host` (no DNS rebinding), and its Approve
//! and Deny forms carry a CSRF token and must come from the page's own origin. The JSON API needs the
//! device token that `bankguard dev` writes to the data directory (mode 0600).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::AuthzState;
use super::form::OAuthForm;
use super::local_browser::{Refusal, require_loopback_host, same_origin};
use super::page;
use super::store::{BackchannelRequest, DecideError, Decision, now_ms};
use crate::secrets;

/// The device token file inside the data directory.
pub const DEVICE_TOKEN_FILE: &str = "device-token";

/// A pending request as the device shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingApproval {
    pub auth_req_id: String,
    pub user: String,
    pub client_id: String,
    pub binding_message: String,
    /// The transfer in plain words, if the request describes one.
    pub summary: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl PendingApproval {
    pub fn from_request(request: &BackchannelRequest) -> Self {
        Self {
            auth_req_id: request.auth_req_id.clone(),
            user: request.subject.clone(),
            client_id: request.client_id.clone(),
            binding_message: request.binding_message.clone(),
            summary: request.authorization_details.as_deref().and_then(page::transfer_summary),
            created_at: request.created_at,
            expires_at: request.expires_at,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct UserQuery {
    pub user: Option<String>,
    pub done: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    pub user: String,
    pub auth_req_id: String,
    pub decision: String,
    pub csrf: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DecisionRequest {
    pub user: String,
    pub auth_req_id: String,
    pub decision: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DecisionResult {
    pub auth_req_id: String,
    pub status: String,
}

/// `GET /device`: the user picker, or one user's pending requests.
pub async fn page(
    State(state): State<Arc<AuthzState>>,
    headers: HeaderMap,
    Query(query): Query<UserQuery>,
) -> Response {
    if let Err(refusal) = require_loopback_host(&headers) {
        return refusal.into_response();
    }
    let Some(user) = query.user.as_deref().and_then(page::find_user) else {
        return Html(page::user_picker()).into_response();
    };
    match pending_for(&state, Some(user.subject)).await {
        Ok(pending) => {
            Html(page::approvals(user, &pending, &state.device.csrf_token, query.done.as_deref())).into_response()
        }
        Err(response) => response,
    }
}

/// `GET /device/pending?user=…`: the list alone, which the page's script swaps in every few seconds.
pub async fn pending_fragment(
    State(state): State<Arc<AuthzState>>,
    headers: HeaderMap,
    Query(query): Query<UserQuery>,
) -> Response {
    if let Err(refusal) = require_loopback_host(&headers) {
        return refusal.into_response();
    }
    let Some(user) = query.user.as_deref().and_then(page::find_user) else {
        return (StatusCode::NOT_FOUND, "unknown user").into_response();
    };
    match pending_for(&state, Some(user.subject)).await {
        Ok(pending) => Html(page::pending_list(user, &pending, &state.device.csrf_token)).into_response(),
        Err(response) => response,
    }
}

/// `POST /device/decide`: Approve or Deny from the page.
pub async fn decide_from_page(
    State(state): State<Arc<AuthzState>>,
    headers: HeaderMap,
    form: Result<OAuthForm<DecisionForm>, super::error::OAuthError>,
) -> Response {
    if let Err(refusal) = require_loopback_host(&headers) {
        return refusal.into_response();
    }
    let Ok(OAuthForm(form)) = form else {
        return (StatusCode::BAD_REQUEST, "malformed decision").into_response();
    };
    if !same_origin(&headers) || !secrets::constant_time_eq(&form.csrf, &state.device.csrf_token) {
        return (StatusCode::FORBIDDEN, "this decision did not come from the approval page").into_response();
    }
    let outcome = match decide(&state, &form.user, &form.auth_req_id, &form.decision).await {
        Ok(result) => result.status,
        Err((_, message)) => message,
    };
    let target = format!("/device?user={}&done={}", urlencode(&form.user), urlencode(&outcome));
    Redirect::to(&target).into_response()
}

/// `GET /device/api/pending[?user=…]` for the CLI.
pub async fn api_pending(
    State(state): State<Arc<AuthzState>>,
    headers: HeaderMap,
    Query(query): Query<UserQuery>,
) -> Result<Json<Vec<PendingApproval>>, Response> {
    require_device_token(&state, &headers).map_err(IntoResponse::into_response)?;
    pending_for(&state, query.user.as_deref()).await.map(Json)
}

/// `POST /device/api/decide` for the CLI.
pub async fn api_decide(
    State(state): State<Arc<AuthzState>>,
    headers: HeaderMap,
    Json(request): Json<DecisionRequest>,
) -> Result<Json<DecisionResult>, Response> {
    require_device_token(&state, &headers).map_err(IntoResponse::into_response)?;
    decide(&state, &request.user, &request.auth_req_id, &request.decision)
        .await
        .map(Json)
        .map_err(|(status, message)| (status, message).into_response())
}

async fn pending_for(state: &AuthzState, user: Option<&str>) -> Result<Vec<PendingApproval>, Response> {
    let requests = state.store.pending(user, now_ms() / 1000).await.map_err(|error| {
        tracing::error!(%error, "could not read pending requests");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    })?;
    Ok(requests.iter().map(PendingApproval::from_request).collect())
}

async fn decide(
    state: &AuthzState,
    user: &str,
    auth_req_id: &str,
    decision: &str,
) -> Result<DecisionResult, (StatusCode, String)> {
    let decision = match decision {
        "approve" => Decision::Approve,
        "deny" => Decision::Deny,
        other => return Err((StatusCode::BAD_REQUEST, format!("decision must be approve or deny, not {other:?}"))),
    };
    let decided = state.store.decide(auth_req_id, user, decision, now_ms() / 1000).await.map_err(|error| {
        let status = match error {
            DecideError::NotFound(_) => StatusCode::NOT_FOUND,
            DecideError::AlreadyDecided | DecideError::Expired => StatusCode::CONFLICT,
            DecideError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, error.to_string())
    })?;
    state.outcomes.notify_one();
    let status = match decision {
        Decision::Approve => "approved",
        Decision::Deny => "denied",
    };
    tracing::info!(user, client = %decided.client_id, binding_message = %decided.binding_message, status, "decided on the device");
    Ok(DecisionResult { auth_req_id: auth_req_id.to_owned(), status: status.to_owned() })
}

fn require_device_token(state: &AuthzState, headers: &HeaderMap) -> Result<(), Refusal> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if secrets::constant_time_eq(presented, &state.device.device_token) {
        Ok(())
    } else {
        Err(Refusal::new(StatusCode::UNAUTHORIZED, "the device API needs the token in <data_dir>/device-token"))
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Secrets of the approval device, new on every start.
pub struct DeviceAccess {
    pub csrf_token: String,
    pub device_token: String,
}
