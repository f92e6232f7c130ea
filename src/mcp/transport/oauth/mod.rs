//! The MCP endpoint as an OAuth 2.1 protected resource, per the MCP authorization specification
//! (`mcp.auth = "oauth"`): every request to `/mcp` carries an access token for this server, and the
//! holder it names is the one the request's tool calls act for.
//!
//! - [`metadata`]: Protected Resource Metadata (RFC 9728), where a client learns whom to ask.
//! - [`verifier`]: the token's checks, and the [`Holder`] it yields; [`keys`]: the issuer's keys.
//! - [`require_token`], the middleware in front of the endpoint: no token (or another scheme) is
//!   401 with `WWW-Authenticate: Bearer resource_metadata="…", scope="…"`; a bad one 401
//!   `invalid_token`; one without the scope 403 `insufficient_scope` (RFC 6750 §3). A request that
//!   passes carries its [`Holder`] in its extensions, where the tools find it.
//!
//! Sessions (protocol 2025-11-25) are bound to the holder who opened them: a request naming
//! another holder's `Mcp-Session-Id` gets 404, as for a session that does not exist, so a leaked
//! session id lets nobody read another holder's progress stream. The client's token is never passed
//! on: the provider and the bank see only the server's own credentials and the holder's approval.

pub mod metadata;
pub mod verifier;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::Algorithm;
use rmcp::transport::common::http_header::HEADER_SESSION_ID;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde_json::json;

use crate::config::Config;
use crate::mcp::holder::Holder;
use crate::provider_keys::AuthorizationServerKeys;
use metadata::ResourceMetadata;
use verifier::{Expectations, Refusal, TokenVerifier};

/// Sent as `Retry-After` while the authorization server's keys cannot be fetched.
const RETRY_AFTER_SECONDS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ProtectedResourceError {
    #[error("mcp.oauth.resource {0:?} is not a URL")]
    Resource(String),
    #[error("cannot build the HTTP client for the authorization server: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// Everything the middleware and the metadata routes need.
pub struct ProtectedResource {
    verifier: TokenVerifier,
    metadata: ResourceMetadata,
    /// The absolute URL of the metadata, named in every challenge.
    metadata_url: String,
    /// The path-suffixed well-known path it is served at here.
    metadata_path: String,
    scope: String,
    sessions: SessionOwners,
}

impl ProtectedResource {
    /// The resource for an endpoint listening on `address` (its identifier: `mcp.oauth.resource`,
    /// or `http://<address>/mcp`).
    pub fn new(
        config: &Config,
        address: SocketAddr,
        live_sessions: Arc<LocalSessionManager>,
    ) -> Result<Self, ProtectedResourceError> {
        let oauth = &config.mcp.oauth;
        let issuer = config.mcp_oauth_issuer();
        let resource = config.mcp.resource_at(address);
        let (metadata_url, metadata_path) =
            metadata::location(&resource).map_err(|_| ProtectedResourceError::Resource(resource.clone()))?;
        let http = crate::http_client::builder_for([issuer.as_str()]).build()?;
        let algorithms = oauth.algorithms.iter().filter_map(|name| name.parse::<Algorithm>().ok()).collect();
        let expect = Expectations {
            issuer: issuer.clone(),
            resource: resource.clone(),
            scope: oauth.scope.clone(),
            holder_claim: oauth.holder_claim.clone(),
            algorithms,
        };
        Ok(Self {
            verifier: TokenVerifier::new(AuthorizationServerKeys::new(issuer.clone(), http), expect),
            metadata: ResourceMetadata::new(&resource, &issuer, &oauth.scope),
            metadata_url,
            metadata_path,
            scope: oauth.scope.clone(),
            sessions: SessionOwners {
                owners: Mutex::default(),
                live: live_sessions,
                prune_beyond: config.mcp.max_sessions,
            },
        })
    }

    pub fn resource(&self) -> &str {
        &self.metadata.resource
    }

    /// Fetches the authorization server's keys ahead of the first request.
    pub async fn prefetch_keys(&self) {
        self.verifier.keys().prefetch().await;
    }

    /// The metadata routes: the well-known path, and its path-suffixed form.
    pub fn metadata_routes(self: &Arc<Self>) -> Router {
        let serve = |resource: Arc<Self>| get(move || async move { Json(resource.metadata.clone()) });
        let router = Router::new().route(metadata::WELL_KNOWN_PATH, serve(self.clone()));
        if self.metadata_path == metadata::WELL_KNOWN_PATH {
            router
        } else {
            router.route(&self.metadata_path, serve(self.clone()))
        }
    }

    /// RFC 6750 §3's challenge, always naming the metadata (RFC 9728 §5.1).
    fn challenge(&self, status: StatusCode, error: Option<(&str, &str)>, scope: bool) -> Response {
        let mut parameters = Vec::new();
        if let Some((code, description)) = error {
            parameters.push(format!("error=\"{code}\""));
            parameters.push(format!("error_description=\"{description}\""));
        }
        if scope {
            parameters.push(format!("scope=\"{}\"", self.scope));
        }
        parameters.push(format!("resource_metadata=\"{}\"", self.metadata_url));
        let value = format!("Bearer {}", parameters.join(", "));
        let body = match error {
            Some((code, description)) => json!({"error": code, "error_description": description}),
            None => json!({"error": "unauthorized", "error_description": "this MCP server needs an access token: \
                see the resource_metadata in WWW-Authenticate"}),
        };
        let mut response = (status, Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The middleware: `axum::middleware::from_fn_with_state(resource, require_token)`.
pub async fn require_token(
    State(resource): State<Arc<ProtectedResource>>,
    mut request: Request,
    next: Next,
) -> Response {
    // A CORS preflight carries no credentials by design.
    if request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    let token = match bearer_token(request.headers(), request.uri().query()) {
        Ok(Some(token)) => token,
        Ok(None) => return resource.challenge(StatusCode::UNAUTHORIZED, None, true),
        Err(why) => return resource.challenge(StatusCode::BAD_REQUEST, Some(("invalid_request", why)), false),
    };
    let holder = match resource.verifier.verify(&token).await {
        Ok(holder) => holder,
        Err(refusal @ Refusal::InvalidToken(why)) => {
            tracing::info!(reason = %refusal, "refused an MCP request's access token");
            return resource.challenge(StatusCode::UNAUTHORIZED, Some(("invalid_token", why)), false);
        }
        Err(Refusal::InsufficientScope) => {
            let why = "the access token does not carry the scope this server needs";
            return resource.challenge(StatusCode::FORBIDDEN, Some(("insufficient_scope", why)), true);
        }
        Err(refusal @ Refusal::KeysUnavailable) => {
            let body = json!({"error": "temporarily_unavailable", "error_description": refusal.to_string()});
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            return response;
        }
    };
    let session = request.headers().get(HEADER_SESSION_ID).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(session) = &session
        && !resource.sessions.belongs_to(session, &holder)
    {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "session not found"}))).into_response();
    }
    request.extensions_mut().insert(holder.clone());
    let response = next.run(request).await;
    if session.is_none()
        && let Some(opened) = response.headers().get(HEADER_SESSION_ID).and_then(|v| v.to_str().ok())
    {
        resource.sessions.record(opened.to_owned(), holder).await;
    }
    response
}

/// The token from `Authorization: Bearer …` (RFC 6750 §2.1, the only method offered). A token in
/// the query string (§2.3, forbidden by OAuth 2.1) or in two headers is a malformed request.
fn bearer_token(headers: &HeaderMap, query: Option<&str>) -> Result<Option<String>, &'static str> {
    if query.is_some_and(|query| query.split('&').any(|pair| pair.starts_with("access_token="))) {
        return Err("send the access token in the Authorization header, never in the URL");
    }
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return match headers.contains_key(header::AUTHORIZATION) {
            true => Err("send one Authorization header"),
            false => Ok(None),
        };
    };
    let value = value.to_str().map_err(|_| "the Authorization header is not text")?;
    let Some((scheme, token)) = value.split_once(' ') else {
        return Ok(None);
    };
    let token = token.trim();
    Ok((scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned()))
}

/// Which holder opened each session.
struct SessionOwners {
    owners: Mutex<HashMap<String, Holder>>,
    live: Arc<LocalSessionManager>,
    /// Entries of sessions that ended are dropped once there are more than this many.
    prune_beyond: usize,
}

impl SessionOwners {
    /// Whether `holder` may use `session`: theirs, or one this server never opened (rmcp answers
    /// those itself).
    fn belongs_to(&self, session: &str, holder: &Holder) -> bool {
        self.owners.lock().expect("session owners").get(session).is_none_or(|owner| owner == holder)
    }

    async fn record(&self, session: String, holder: Holder) {
        let full = self.owners.lock().expect("session owners").len() >= self.prune_beyond;
        if full {
            let live = self.live.sessions.read().await;
            self.owners.lock().expect("session owners").retain(|id, _| live.contains_key(id.as_str()));
        }
        self.owners.lock().expect("session owners").insert(session, holder);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn only_one_bearer_header_carries_a_token() {
        assert_eq!(bearer_token(&headers(&["Bearer abc"]), None), Ok(Some("abc".into())));
        assert_eq!(bearer_token(&headers(&["bearer abc"]), None), Ok(Some("abc".into())));
        assert_eq!(bearer_token(&headers(&[]), None), Ok(None));
        assert_eq!(bearer_token(&headers(&["Basic YWxpY2U6cHc="]), None), Ok(None));
        assert_eq!(bearer_token(&headers(&["Bearer "]), None), Ok(None));
        assert!(bearer_token(&headers(&["Bearer a", "Bearer b"]), None).is_err());
        assert!(bearer_token(&headers(&[]), Some("x=1&access_token=abc")).is_err());
    }
}
