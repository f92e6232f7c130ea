//! `POST /oauth/token`: the CIBA grant (CIBA Core §10.1, §11), the client-credentials grant, and
//! the authorization code and refresh token grants of a signed-in user ([`super::code_grant`]).
//!
//! The CIBA grant answers `authorization_pending` until the holder decides, `slow_down` (interval
//! +5 s for good, with `Retry-After` and `interval` as Auth0 sends them) when polled faster than the
//! interval, `access_denied`, `expired_token`, or `invalid_grant` for an `auth_req_id` that is unknown,
//! another client's or already exchanged; on approval it issues the tokens once.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::AuthzState;
use super::code_grant;
use super::error::{ErrorCode, OAuthError, TokenEndpointError};
use super::form::OAuthForm;
use super::store::{PollOutcome, now_ms};
use super::tokens::{Grant, TokenResponse};
use crate::config::GrantType;

#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub auth_req_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
}

pub async fn token(
    State(state): State<Arc<AuthzState>>,
    headers: HeaderMap,
    form: Result<OAuthForm<TokenForm>, OAuthError>,
) -> Result<Response, TokenEndpointError> {
    let OAuthForm(form) = form?;
    let grant = match form.grant_type.as_deref() {
        Some(grant_type) => GrantType::parse(grant_type).ok_or_else(|| {
            OAuthError::new(ErrorCode::UnsupportedGrantType, format!("grant_type {grant_type:?} is not supported"))
        })?,
        None => return Err(OAuthError::invalid_request("grant_type is required").into()),
    };
    let response = match grant {
        GrantType::Ciba | GrantType::ClientCredentials => {
            let client = state.clients.authenticate(
                &headers,
                form.client_id.as_deref(),
                form.client_secret.as_deref(),
                grant,
            )?;
            match grant {
                GrantType::Ciba => ciba_grant(&state, &client.id, &form).await?,
                _ => client_credentials_grant(&state, client, &form)?,
            }
        }
        GrantType::AuthorizationCode | GrantType::RefreshToken => {
            let client_id =
                state.clients.identify(&headers, form.client_id.as_deref(), form.client_secret.as_deref(), grant)?;
            match grant {
                GrantType::AuthorizationCode => code_grant::authorization_code(&state, &client_id, &form).await?,
                _ => code_grant::refresh_token(&state, &client_id, &form).await?,
            }
        }
    };
    let mut response = Json(response).into_response();
    // RFC 6749 §5.1: token responses must not be cached.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn ciba_grant(state: &AuthzState, client_id: &str, form: &TokenForm) -> Result<TokenResponse, OAuthError> {
    let auth_req_id =
        form.auth_req_id.as_deref().ok_or_else(|| OAuthError::invalid_request("auth_req_id is required"))?;
    let outcome = state.store.poll(auth_req_id, client_id, now_ms()).await.map_err(OAuthError::server_error)?;
    let (code, description) = match outcome {
        PollOutcome::Approved(request) => {
            let authorization_details = request
                .authorization_details
                .as_deref()
                .map(serde_json::from_str::<Value>)
                .transpose()
                .map_err(OAuthError::server_error)?;
            let grant = Grant {
                subject: &request.subject,
                client_id,
                audience: request.audience.as_deref(),
                scope: &request.scope,
                authorization_details: authorization_details.as_ref(),
                auth_time: Some(request.decided_at.unwrap_or(request.created_at)),
            };
            let response = state.tokens.issue(&grant, now_ms() / 1000)?;
            tracing::info!(client = client_id, user = %request.subject, "issued tokens for an approved request");
            return Ok(response);
        }
        PollOutcome::Pending => (ErrorCode::AuthorizationPending, "the account holder has not decided yet"),
        PollOutcome::SlowDown { interval_seconds } => (
            ErrorCode::SlowDown { interval: interval_seconds.unsigned_abs() },
            "polling faster than the interval; the interval has grown by 5 seconds",
        ),
        PollOutcome::Denied => (ErrorCode::AccessDenied, "the account holder denied the request"),
        PollOutcome::Expired => (ErrorCode::ExpiredToken, "the request expired before it was approved"),
        PollOutcome::InvalidGrant => {
            (ErrorCode::InvalidGrant, "auth_req_id is unknown, belongs to another client, or was already used")
        }
    };
    Err(OAuthError::new(code, description))
}

fn client_credentials_grant(
    state: &AuthzState,
    client: &crate::config::ClientConfig,
    form: &TokenForm,
) -> Result<TokenResponse, OAuthError> {
    let audience = match (&form.audience, &form.resource) {
        (Some(audience), Some(resource)) if audience != resource => {
            return Err(OAuthError::invalid_request("audience and resource name different APIs"));
        }
        (Some(target), _) | (None, Some(target)) => target.clone(),
        (None, None) => return Err(OAuthError::invalid_request("audience is required for client credentials")),
    };
    let requested: Vec<&str> = match form.scope.as_deref() {
        Some(scope) => scope.split_ascii_whitespace().collect(),
        None => client.client_credentials_scopes.iter().map(String::as_str).collect(),
    };
    state.apis.check_scopes(Some(&audience), requested.iter().copied().filter(|s| *s != "openid"))?;
    if let Some(scope) =
        requested.iter().find(|s| !client.client_credentials_scopes.iter().any(|allowed| allowed == *s))
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("this client may not obtain {scope:?} with its own credentials"),
        ));
    }
    let scope = requested.join(" ");
    let subject = format!("{}@clients", client.id);
    let grant = Grant {
        subject: &subject,
        client_id: &client.id,
        audience: Some(&audience),
        scope: &scope,
        authorization_details: None,
        auth_time: None,
    };
    state.tokens.issue(&grant, now_ms() / 1000)
}
