//! `POST /bc-authorize`: the CIBA backchannel authentication request (CIBA Core §7).
//!
//! The client authenticates as registered; then the request is checked in the order a person would
//! debug it: scope, user hint, binding message, expiry, audience and scopes, authorization details,
//! ping token. Each refusal is the spec's error code with a description that says what to fix.
//!
//! **A resend is a retry, not a second approval.** When a client's answer is lost (a timeout, a
//! reset), it cannot know whether the request was created, and the holder may already be looking at
//! it. So when the same client asks again for the same user with byte-identical `scope`,
//! `binding_message`, `authorization_details`, `audience`/`resource`, `requested_expiry` and user hint,
//! the details carry an `intentId`, and the earlier request has not been exchanged or expired, the
//! answer is that request again: the same `auth_req_id`, the `expires_in` it has left and its current
//! `interval`; a decision the holder already gave applies to it (a ping client's new
//! `client_notification_token` replaces the earlier one: it listens on the one it sent last).
//! Anything else (another binding message or amount, no `intentId`, an earlier request already
//! exchanged or expired) is a new request, as before.
//! Auth0 does not do this; there every request is a fresh authorization.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::AuthzState;
use super::error::{ErrorCode, OAuthError};
use super::form::OAuthForm;
use super::store::{BackchannelRequest, Created, Status, now_ms};
use crate::authorization_details::{ACTION_INITIATE, PAYMENT_INITIATION, PaymentInitiation, check_memo};
use crate::config::{DeliveryMode, GrantType};
use crate::devstack::seed::{self, SeedUser};
use crate::money::{Currency, MinorUnits};
use crate::secrets;

/// Longest binding message, in characters (Auth0's limit).
pub const MAX_BINDING_MESSAGE_CHARS: usize = 64;
/// The `requested_expiry` of a request that sends none, in seconds.
pub const DEFAULT_REQUESTED_EXPIRY: i64 = 300;
/// Longest `requested_expiry`, in seconds: three days, as bankguard's `mcp.requested_expiry_seconds`
/// allows (Auth0 delivers such requests by email rather than by push).
pub const MAX_REQUESTED_EXPIRY: i64 = 259_200;

#[derive(Debug, Default, Deserialize)]
pub struct BackchannelForm {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    pub client_notification_token: Option<String>,
    pub login_hint: Option<String>,
    pub login_hint_token: Option<String>,
    pub id_token_hint: Option<String>,
    pub binding_message: Option<String>,
    pub requested_expiry: Option<String>,
    pub authorization_details: Option<String>,
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub request: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BackchannelResponse {
    pub auth_req_id: String,
    pub expires_in: i64,
    pub interval: i64,
}

pub async fn authorize(
    State(state): State<Arc<AuthzState>>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm<BackchannelForm>,
) -> Result<Json<BackchannelResponse>, OAuthError> {
    let client = state.clients.authenticate(
        &headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
        GrantType::Ciba,
    )?;
    if form.request.is_some() {
        return Err(OAuthError::invalid_request("signed request objects are not supported; send plain parameters"));
    }
    let scope = checked_openid_scope(form.scope.as_deref())?;
    let user = identify_user(&state, &form, &client.id)?;
    let binding_message = checked_binding_message(form.binding_message.as_deref())?;
    let expires_in = checked_requested_expiry(form.requested_expiry.as_deref())?;
    let audience = checked_audience(&state, &form, &scope)?;
    let authorization_details = form.authorization_details.as_deref().map(checked_authorization_details).transpose()?;
    let retry_key =
        authorization_details.as_ref().filter(|details| names_an_intent(details)).map(|_| resend_fingerprint(&form));
    let client_notification_token = match client.delivery_mode {
        DeliveryMode::Ping => Some(checked_notification_token(form.client_notification_token.as_deref())?),
        DeliveryMode::Poll => None,
    };

    let now = now_ms() / 1000;
    let request = BackchannelRequest {
        auth_req_id: secrets::random_token(32),
        client_id: client.id.clone(),
        subject: user.subject.to_owned(),
        scope: scope.join(" "),
        audience,
        binding_message: binding_message.to_owned(),
        authorization_details: authorization_details.map(|details| details.to_string()),
        client_notification_token,
        created_at: now,
        expires_at: now + expires_in,
        interval_seconds: state.poll_interval_seconds,
        last_polled_at_ms: None,
        status: Status::Pending,
        decided_at: None,
        redeemed: false,
        notified: false,
        retry_key,
    };
    let answered = match state.store.create(&request, now).await.map_err(OAuthError::server_error)? {
        Created::New => {
            tracing::info!(client = %client.id, user = user.subject, binding_message, "backchannel authentication requested");
            request
        }
        Created::Resent(earlier) => {
            tracing::info!(client = %client.id, user = user.subject, binding_message, "a resend of a pending request");
            *earlier
        }
    };
    Ok(Json(BackchannelResponse {
        expires_in: answered.expires_at - now,
        interval: answered.interval_seconds,
        auth_req_id: answered.auth_req_id,
    }))
}

/// Whether some detail carries a non-empty `intentId`: the client's own name for this one approval,
/// which makes an identical request a resend rather than a second transfer.
fn names_an_intent(details: &Value) -> bool {
    let intent_id = |detail: &Value| detail.get("intentId").and_then(Value::as_str).is_some_and(|id| !id.is_empty());
    details.as_array().is_some_and(|details| details.iter().any(intent_id))
}

/// A fingerprint of every parameter that shapes the approval, exactly as sent (absent and empty
/// differ), so only a byte-identical request is recognised as a resend.
fn resend_fingerprint(form: &BackchannelForm) -> String {
    let parameters = [
        &form.scope,
        &form.login_hint,
        &form.id_token_hint,
        &form.binding_message,
        &form.authorization_details,
        &form.audience,
        &form.resource,
        &form.requested_expiry,
    ];
    let encoded = serde_json::to_vec(&parameters).expect("strings serialise");
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, Sha256::digest(encoded))
}

/// CIBA Core §7.1: `scope` is required and must contain `openid`.
fn checked_openid_scope(scope: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let scopes: Vec<String> = scope.unwrap_or_default().split_ascii_whitespace().map(str::to_owned).collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(OAuthError::new(ErrorCode::InvalidScope, "scope must include openid"));
    }
    Ok(scopes)
}

/// Exactly one hint: `login_hint` (a subject, an email, or Auth0's `iss_sub` JSON) or our own ID token.
fn identify_user(state: &AuthzState, form: &BackchannelForm, client_id: &str) -> Result<&'static SeedUser, OAuthError> {
    let hints = [&form.login_hint, &form.login_hint_token, &form.id_token_hint];
    if hints.iter().filter(|hint| hint.is_some()).count() != 1 {
        return Err(OAuthError::invalid_request("send exactly one of login_hint, login_hint_token and id_token_hint"));
    }
    let unknown = || OAuthError::new(ErrorCode::UnknownUserId, "the hint does not identify a known user");
    if form.login_hint_token.is_some() {
        return Err(OAuthError::invalid_request("login_hint_token is not supported; use login_hint"));
    }
    let subject = match (&form.login_hint, &form.id_token_hint) {
        (Some(hint), _) => subject_from_login_hint(hint, &state.issuer)?,
        (None, Some(id_token)) => subject_from_id_token_hint(state, id_token, client_id)?,
        (None, None) => return Err(unknown()),
    };
    seed::USERS.iter().find(|user| user.subject == subject || user.email == subject).ok_or_else(unknown)
}

#[derive(Deserialize)]
struct IssSubHint {
    format: String,
    iss: String,
    sub: String,
}

fn subject_from_login_hint(hint: &str, issuer: &str) -> Result<String, OAuthError> {
    if !hint.trim_start().starts_with('{') {
        return Ok(hint.to_owned());
    }
    let parsed: IssSubHint = serde_json::from_str(hint).map_err(|_| {
        OAuthError::invalid_request("login_hint JSON must be {\"format\":\"iss_sub\",\"iss\":…,\"sub\":…}")
    })?;
    if parsed.format != "iss_sub" {
        return Err(OAuthError::invalid_request("login_hint JSON must use the iss_sub format"));
    }
    // Auth0 writes its issuer with a trailing slash; accept ours with or without one.
    if parsed.iss.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(OAuthError::new(ErrorCode::UnknownUserId, "login_hint names another issuer"));
    }
    Ok(parsed.sub)
}

/// An ID token this server issued to this client; it may have expired (it only names the user).
fn subject_from_id_token_hint(state: &AuthzState, id_token: &str, client_id: &str) -> Result<String, OAuthError> {
    #[derive(Deserialize)]
    struct Claims {
        sub: String,
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[&state.issuer]);
    validation.set_audience(&[client_id]);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "aud", "sub"]);
    jsonwebtoken::decode::<Claims>(id_token, state.key.decoding_key(), &validation)
        .map(|data| data.claims.sub)
        .map_err(|_| OAuthError::invalid_request("id_token_hint is not an ID token this server issued to this client"))
}

/// Required, at most 64 characters of `[A-Za-z0-9 +-_.,:#]` (Auth0's rule, hyphen taken literally).
fn checked_binding_message(message: Option<&str>) -> Result<&str, OAuthError> {
    let invalid = |why: &str| OAuthError::new(ErrorCode::InvalidBindingMessage, why);
    let message = message.filter(|m| !m.is_empty()).ok_or_else(|| invalid("binding_message is required"))?;
    if message.chars().count() > MAX_BINDING_MESSAGE_CHARS {
        return Err(invalid("binding_message is longer than 64 characters"));
    }
    if !message.chars().all(|c| c.is_ascii_alphanumeric() || " +-_.,:#".contains(c)) {
        return Err(invalid("binding_message may only contain letters, digits, spaces and + - _ . , : #"));
    }
    Ok(message)
}

fn checked_requested_expiry(requested: Option<&str>) -> Result<i64, OAuthError> {
    let Some(requested) = requested else { return Ok(DEFAULT_REQUESTED_EXPIRY) };
    match requested.parse::<i64>() {
        Ok(seconds) if (1..=MAX_REQUESTED_EXPIRY).contains(&seconds) => Ok(seconds),
        _ => Err(OAuthError::invalid_request("requested_expiry must be a whole number of seconds from 1 to 259200")),
    }
}

/// The API the access token is for (`audience`, or RFC 8707 `resource`), and every scope known for it.
fn checked_audience(
    state: &AuthzState,
    form: &BackchannelForm,
    scopes: &[String],
) -> Result<Option<String>, OAuthError> {
    let audience = match (&form.audience, &form.resource) {
        (Some(audience), Some(resource)) if audience != resource => {
            return Err(OAuthError::invalid_request("audience and resource name different APIs"));
        }
        (Some(target), _) | (None, Some(target)) => Some(target.clone()),
        (None, None) => None,
    };
    state.apis.check_scopes(audience.as_deref(), scopes.iter().map(String::as_str))?;
    Ok(audience)
}

/// A JSON array of known details; a `payment_initiation` must describe a valid transfer.
fn checked_authorization_details(text: &str) -> Result<Value, OAuthError> {
    let invalid = |why: String| OAuthError::new(ErrorCode::InvalidAuthorizationDetails, why);
    let details: Vec<Value> =
        serde_json::from_str(text).map_err(|_| invalid("authorization_details must be a JSON array".into()))?;
    if details.is_empty() {
        return Err(invalid("authorization_details must not be empty".into()));
    }
    for detail in &details {
        let detail_type = detail.get("type").and_then(Value::as_str).unwrap_or_default();
        if detail_type != PAYMENT_INITIATION {
            return Err(invalid(format!("unknown authorization details type {detail_type:?}")));
        }
        let payment: PaymentInitiation = serde_json::from_value(detail.clone())
            .map_err(|e| invalid(format!("malformed payment_initiation: {e}")))?;
        check_payment(&payment).map_err(|why| invalid(format!("payment_initiation: {why}")))?;
    }
    Ok(Value::Array(details))
}

fn check_payment(payment: &PaymentInitiation) -> Result<(), String> {
    if payment.actions != [ACTION_INITIATE] {
        return Err("actions must be [\"initiate\"]".into());
    }
    payment.instructed_amount.currency.parse::<Currency>().map_err(|e| e.to_string())?;
    let amount = MinorUnits::parse_decimal(&payment.instructed_amount.amount).map_err(|e| e.to_string())?;
    if !amount.is_positive() {
        return Err("the amount must be greater than zero".into());
    }
    let (debtor, creditor) = (&payment.debtor_account.id, &payment.creditor_account.id);
    if debtor.is_empty() || creditor.is_empty() || debtor == creditor {
        return Err("debtorAccount and creditorAccount must be two different accounts".into());
    }
    let memo = payment.remittance_information_unstructured.as_deref().unwrap_or_default();
    check_memo(memo).map_err(|e| format!("remittanceInformationUnstructured {e}"))?;
    Ok(())
}

/// CIBA Core §7.1: required for ping; a bearer token (RFC 6750 §2.1 syntax) of at most 1024 characters.
fn checked_notification_token(token: Option<&str>) -> Result<String, OAuthError> {
    let token =
        token.ok_or_else(|| OAuthError::invalid_request("client_notification_token is required for ping clients"))?;
    let body = token.trim_end_matches('=');
    let b64token = !body.is_empty() && body.chars().all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c));
    if !b64token || token.len() > 1024 {
        return Err(OAuthError::invalid_request(
            "client_notification_token must be a bearer token of at most 1024 characters",
        ));
    }
    Ok(token.to_owned())
}
