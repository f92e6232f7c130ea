//! `GET /authorize`: the start of the authorization code flow (OAuth 2.1 §4.1.1), with PKCE `S256`
//! (RFC 7636), the API named by `resource` (RFC 8707) and `iss` in every response (RFC 9207).
//!
//! The order of the checks is the spec's safety rule (RFC 6749 §4.1.2.1). Until the client and its
//! redirect URI are known good, nothing is sent anywhere: the person sees an error page (400), so the
//! server can never be made to redirect a browser to an address nobody registered. After that,
//! every error goes back to the client in the redirect ([`Callback`]), with `error`,
//! `error_description`, `state` and `iss`. A valid request starts a sign-in ([`super::sign_in`]).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use url::Url;

use super::AuthzState;
use super::discovery::PKCE_S256;
use super::error::{ErrorCode, OAuthError};
use super::html;
use super::local_browser::require_loopback_host;
use super::pkce;
use super::sign_in_clients::{self, ClientLookupError, SignInClient};
use super::sign_in_page;

/// A request that passed every check: what the user is asked to allow, and where the answer goes.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: SignInClient,
    pub callback: Callback,
    pub code_challenge: String,
    pub resource: String,
    /// Space-separated, each a scope of `resource`.
    pub scope: String,
}

/// Where the user goes back to: the client's registered redirect URI, with `state` and `iss`.
#[derive(Debug, Clone)]
pub struct Callback {
    pub redirect_uri: String,
    state: Option<String>,
    issuer: String,
}

impl Callback {
    /// RFC 6749 §4.1.2: the code, with `state` and `iss`.
    pub fn with_code(&self, code: &str) -> Response {
        self.redirect(&[("code", code)])
    }

    /// RFC 6749 §4.1.2.1: the error, with `state` and `iss`.
    pub fn with_error(&self, error: &OAuthError) -> Response {
        self.redirect(&[("error", error.code.as_str()), ("error_description", &error.description)])
    }

    fn redirect(&self, parameters: &[(&str, &str)]) -> Response {
        // Checked when the client registered it, and again before this callback was made.
        let Ok(mut url) = Url::parse(&self.redirect_uri) else {
            return OAuthError::server_error("a registered redirect URI no longer parses").into_response();
        };
        {
            let mut query = url.query_pairs_mut();
            query.extend_pairs(parameters);
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", &self.issuer);
        }
        Redirect::to(url.as_str()).into_response()
    }
}

/// Why a request cannot even be answered with a redirect.
#[derive(Debug, thiserror::Error)]
pub enum Unredirectable {
    #[error("the request has no client_id")]
    NoClientId,
    #[error("{0}")]
    Client(#[from] ClientLookupError),
    #[error("the request has no redirect_uri")]
    NoRedirectUri,
    #[error("the redirect_uri {0:?} is not one this client registered")]
    UnregisteredRedirectUri(String),
    #[error("the parameter {0} appears more than once")]
    Repeated(&'static str),
}

/// The query parameters as sent: each may appear once (RFC 6749 §3.1); one sent empty counts as
/// absent.
struct Parameters(Vec<(String, String)>);

impl Parameters {
    fn parse(query: Option<&str>) -> Self {
        let pairs = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
        Self(pairs)
    }

    fn get(&self, name: &'static str) -> Result<Option<&str>, &'static str> {
        let mut values = self.0.iter().filter(|(key, _)| key == name).map(|(_, value)| value.as_str());
        let first = values.next();
        match values.next() {
            Some(_) => Err(name),
            None => Ok(first.filter(|value| !value.is_empty())),
        }
    }
}

/// `GET /authorize`.
pub async fn authorize(
    State(state): State<Arc<AuthzState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(refusal) = require_loopback_host(&headers) {
        return refusal.into_response();
    }
    let parameters = Parameters::parse(query.as_deref());
    let (client, callback) = match redirectable(&state, &parameters).await {
        Ok(found) => found,
        Err(problem) => {
            tracing::info!(%problem, "refused an authorization request without redirecting");
            let page = sign_in_page::problem("This sign-in link is not valid", &problem.to_string());
            return (StatusCode::BAD_REQUEST, html::guarded(page)).into_response();
        }
    };
    match checked_request(&state, &parameters, client, callback.clone()) {
        Ok(request) => {
            tracing::info!(client = %request.client.client_id, resource = %request.resource, "sign-in started");
            super::sign_in::start(&state, request)
        }
        Err(error) => {
            tracing::info!(client = ?parameters.get("client_id").ok().flatten(), error = error.code.as_str(), description = %error.description, "refused an authorization request");
            callback.with_error(&error)
        }
    }
}

/// The client and the callback to it, once both are known good.
async fn redirectable(state: &AuthzState, parameters: &Parameters) -> Result<(SignInClient, Callback), Unredirectable> {
    let client_id = parameters.get("client_id").map_err(Unredirectable::Repeated)?.ok_or(Unredirectable::NoClientId)?;
    let redirect_uri =
        parameters.get("redirect_uri").map_err(Unredirectable::Repeated)?.ok_or(Unredirectable::NoRedirectUri)?;
    let client = sign_in_clients::find(state, client_id).await?;
    // Exact string match (OAuth 2.1 §4.1.1, RFC 9700 §4.1.3).
    if !client.redirect_uris.iter().any(|registered| registered == redirect_uri) {
        return Err(Unredirectable::UnregisteredRedirectUri(redirect_uri.to_owned()));
    }
    let callback = Callback {
        redirect_uri: redirect_uri.to_owned(),
        // A repeated state is refused below; the error then goes back without one.
        state: parameters.get("state").ok().flatten().map(str::to_owned),
        issuer: state.issuer.clone(),
    };
    Ok((client, callback))
}

/// Everything after the client: response type, PKCE, resource, scope.
fn checked_request(
    state: &AuthzState,
    parameters: &Parameters,
    client: SignInClient,
    callback: Callback,
) -> Result<AuthorizationRequest, OAuthError> {
    let get =
        |name| parameters.get(name).map_err(|name| OAuthError::invalid_request(format!("{name} may appear only once")));
    get("state")?;
    match get("response_type")? {
        Some("code") => {}
        Some(other) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                format!("response_type {other:?} is not supported; use code"),
            ));
        }
        None => return Err(OAuthError::invalid_request("response_type is required; use code")),
    }
    if get("request")?.is_some() || get("request_uri")?.is_some() {
        return Err(OAuthError::invalid_request("request objects are not supported; send plain parameters"));
    }
    let code_challenge = get("code_challenge")?
        .ok_or_else(|| OAuthError::invalid_request("code_challenge is required (PKCE, RFC 7636, with S256)"))?;
    match get("code_challenge_method")? {
        Some(PKCE_S256) => {}
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "code_challenge_method {other:?} is not supported; use S256"
            )));
        }
        None => return Err(OAuthError::invalid_request("code_challenge_method is required; use S256")),
    }
    if !pkce::is_s256_challenge(code_challenge) {
        return Err(OAuthError::invalid_request("code_challenge must be an S256 challenge: 43 base64url characters"));
    }
    let resource = get("resource")?.ok_or_else(|| {
        OAuthError::new(ErrorCode::InvalidTarget, "resource is required: the URL of the MCP server (RFC 8707)")
    })?;
    let api = state.apis.sign_in_api(resource).ok_or_else(|| {
        OAuthError::new(ErrorCode::InvalidTarget, format!("{resource:?} is not a resource users sign in to here"))
    })?;
    let mut scopes: Vec<&str> = get("scope")?.unwrap_or_default().split_ascii_whitespace().collect();
    if scopes.is_empty() {
        scopes = api.scopes.clone();
    }
    if let Some(unknown) = scopes.iter().find(|scope| !api.scopes.contains(scope)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("scope {unknown:?} is not defined for {resource}"),
        ));
    }
    Ok(AuthorizationRequest {
        client,
        callback,
        code_challenge: code_challenge.to_owned(),
        resource: resource.to_owned(),
        scope: scopes.join(" "),
    })
}
