//! The approval device: the page that plays the account holder's phone, and the JSON API behind
//! `bankguard pending|approve|deny`.
//!
//! Both reach the same [`RequestStore::decide`](super::store::RequestStore::decide). The page is for a
//! browser on this machine: it answers only to a loopback `Host` (no DNS rebinding), and its Approve
//! and Deny forms carry a CSRF token and must come from the page's own origin. The JSON API needs the
//! device token that `bankguard dev` writes to the data directory (mode 0600).
//!
//! After a decision the page redirects to itself (so a reload never decides twice) with an opaque
//! key to the [`Confirmation`] it keeps in memory, which names the request and what happened; the
//! request's id never appears in a URL. The holder's recent decisions come from the store.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::AuthzState;
use super::form::OAuthForm;
use super::local_browser::{Refusal, require_loopback_host, same_origin};
use super::page;
use super::request_view::{self, Confirmation, DecidedRequest, HistoryEntry, Outcome, Settled, TransferView};
use super::store::{BackchannelRequest, DecideError, Decision, Status, now_ms};
use crate::devstack::seed::SeedUser;
use crate::secrets;

/// The device token file inside the data directory.
pub const DEVICE_TOKEN_FILE: &str = "device-token";
/// How many settled requests the page lists per holder.
const HISTORY_LENGTH: u32 = 10;
/// How many confirmations the page remembers (for reloads), all holders together.
const CONFIRMATIONS_KEPT: usize = 32;

/// A pending request as the device shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingApproval {
    pub auth_req_id: String,
    pub user: String,
    pub client_id: String,
    /// The client's `client_name`, else its id.
    #[serde(default)]
    pub client_name: String,
    pub binding_message: String,
    /// The code at the end of the binding message ("K7Q2"), which the client's messages repeat.
    #[serde(default)]
    pub reference: Option<String>,
    /// The transfer in plain words, if the request describes one.
    pub summary: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl PendingApproval {
    pub fn from_request(request: &BackchannelRequest, client_name: &str) -> Self {
        Self {
            auth_req_id: request.auth_req_id.clone(),
            user: request.subject.clone(),
            client_id: request.client_id.clone(),
            client_name: client_name.to_owned(),
            binding_message: request.binding_message.clone(),
            reference: request_view::reference(&request.binding_message).map(str::to_owned),
            summary: request
                .authorization_details
                .as_deref()
                .and_then(TransferView::from_details)
                .map(|transfer| transfer.summary()),
            created_at: request.created_at,
            expires_at: request.expires_at,
        }
    }
}

/// The last few confirmations, each under a random key the page's URL carries.
#[derive(Default)]
pub struct Confirmations(Mutex<VecDeque<(String, Confirmation)>>);

impl Confirmations {
    fn remember(&self, confirmation: Confirmation) -> String {
        let key = secrets::random_token(16);
        let mut kept = self.0.lock().expect("confirmations");
        if kept.len() == CONFIRMATIONS_KEPT {
            kept.pop_front();
        }
        kept.push_back((key.clone(), confirmation));
        key
    }

    /// The confirmation under `key`, if it is `user`'s.
    fn recall(&self, key: &str, user: &str) -> Option<Confirmation> {
        let kept = self.0.lock().expect("confirmations");
        kept.iter()
            .find(|(kept_key, confirmation)| secrets::constant_time_eq(kept_key, key) && confirmation.user == user)
            .map(|(_, confirmation)| confirmation.clone())
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

/// `GET /device`: the user picker, or one user's page (`?user=alice`): their pending requests, the
/// confirmation of a decision just made (`&done=<key>`), and their recent decisions.
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
    let confirmation = query.done.as_deref().and_then(|key| state.device.confirmations.recall(key, user.subject));
    let (pending, history) = match tokio::try_join!(pending_for(&state, Some(user.subject)), history_for(&state, user))
    {
        Ok(lists) => lists,
        Err(response) => return response,
    };
    let view = page::HolderPage { user, pending: &pending, history: &history, csrf: &state.device.csrf_token };
    Html(page::approvals(&view, confirmation.as_ref())).into_response()
}

/// `GET /device/pending?user=…`: the list alone, which the page's script swaps in every few seconds.
pub async fn pending_fragment(
    State(state): State<Arc<AuthzState>>,
    headers: HeaderMap,
    Query(query): Query<UserQuery>,
) -> Response {
    fragment(&state, &headers, &query, Fragment::Pending).await
}

/// `GET /device/history?user=…`: the recent decisions alone, refreshed like the pending list (a
/// request decided from the terminal, or expiring, shows up without a reload).
pub async fn history_fragment(
    State(state): State<Arc<AuthzState>>,
    headers: HeaderMap,
    Query(query): Query<UserQuery>,
) -> Response {
    fragment(&state, &headers, &query, Fragment::History).await
}

/// A list of the holder's page, served alone for the page's refresh.
enum Fragment {
    Pending,
    History,
}

async fn fragment(state: &AuthzState, headers: &HeaderMap, query: &UserQuery, which: Fragment) -> Response {
    if let Err(refusal) = require_loopback_host(headers) {
        return refusal.into_response();
    }
    let Some(user) = query.user.as_deref().and_then(page::find_user) else {
        return (StatusCode::NOT_FOUND, "unknown user").into_response();
    };
    let html = match which {
        Fragment::Pending => pending_for(state, Some(user.subject))
            .await
            .map(|pending| page::pending_list(user, &pending, &state.device.csrf_token)),
        Fragment::History => history_for(state, user).await.map(|history| page::history_list(&history)),
    };
    match html {
        Ok(html) => Html(html).into_response(),
        Err(response) => response,
    }
}

/// `POST /device/decide`: Approve or Deny from the page, then back to the page with a confirmation.
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
    let confirmation = match decide(&state, &form.user, &form.auth_req_id, &form.decision).await {
        Ok((decided, _)) => Confirmation {
            user: form.user.clone(),
            outcome: match decided.status {
                Status::Approved => Outcome::Approved,
                _ => Outcome::Denied,
            },
            request: Some(DecidedRequest::of(&decided, state.clients.display_name(&decided.client_id))),
        },
        Err((_, reason)) => {
            // Say which request it was even so: it may have expired or been decided elsewhere.
            let request = state.store.find(&form.auth_req_id, &form.user).await.ok().flatten();
            Confirmation {
                user: form.user.clone(),
                outcome: Outcome::NotDecided(reason),
                request: request.map(|r| DecidedRequest::of(&r, state.clients.display_name(&r.client_id))),
            }
        }
    };
    let key = state.device.confirmations.remember(confirmation);
    let target = format!("/device?user={}&done={key}", urlencode(&form.user));
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
        .map(|(_, result)| Json(result))
        .map_err(|(status, message)| (status, message).into_response())
}

async fn pending_for(state: &AuthzState, user: Option<&str>) -> Result<Vec<PendingApproval>, Response> {
    let requests = state.store.pending(user, now_ms() / 1000).await.map_err(|error| {
        tracing::error!(%error, "could not read pending requests");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    })?;
    Ok(requests
        .iter()
        .map(|request| PendingApproval::from_request(request, state.clients.display_name(&request.client_id)))
        .collect())
}

async fn history_for(state: &AuthzState, user: &SeedUser) -> Result<Vec<HistoryEntry>, Response> {
    let now = now_ms() / 1000;
    let settled = state.store.recently_settled(user.subject, now, HISTORY_LENGTH).await.map_err(|error| {
        tracing::error!(%error, "could not read the decision history");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    })?;
    Ok(settled
        .iter()
        .filter_map(|request| {
            let settled = Settled::of(request, now)?;
            Some(HistoryEntry {
                settled,
                at: settled.at(request),
                what: request_view::what(request),
                reference: request_view::reference(&request.binding_message).map(str::to_owned),
            })
        })
        .collect())
}

/// The decision on one of `user`'s requests: the request as decided, and the result the API returns.
async fn decide(
    state: &AuthzState,
    user: &str,
    auth_req_id: &str,
    decision: &str,
) -> Result<(BackchannelRequest, DecisionResult), (StatusCode, String)> {
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
    Ok((decided, DecisionResult { auth_req_id: auth_req_id.to_owned(), status: status.to_owned() }))
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

/// Secrets of the approval device, new on every start, and the confirmations it shows.
pub struct DeviceAccess {
    pub csrf_token: String,
    pub device_token: String,
    pub confirmations: Confirmations,
}

impl DeviceAccess {
    /// Fresh secrets and no confirmations, as on every start.
    pub fn generate() -> Self {
        Self {
            csrf_token: secrets::random_token(32),
            device_token: secrets::random_token(32),
            confirmations: Confirmations::default(),
        }
    }
}
