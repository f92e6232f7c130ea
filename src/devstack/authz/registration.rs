//! `POST /register`: OAuth 2.0 Dynamic Client Registration (RFC 7591) for MCP clients, and the
//! clients registered there (SQLite, so they survive a restart as their holders expect).
//!
//! Only public clients register here: `token_endpoint_auth_method` `none`, the `authorization_code`
//! and `refresh_token` grants, the `code` response type. A client with a secret is configured under
//! `[[authz.clients]]` instead: the dev server hands out no secrets to whoever asks. Redirect URIs
//! follow the one rule for every client ([`ClientConfig::check_redirect_uri`]). Registration is open,
//! as MCP clients expect of a local server; every refusal is RFC 7591 §3.2.2's
//! `invalid_redirect_uri` or `invalid_client_metadata` with a description that says what to fix.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AuthzState;
use super::error::{ErrorCode, OAuthError};
use super::sign_in_clients::SignInClient;
use super::store::now_ms;
use crate::config::{ClientAuthMethod, ClientConfig, GrantType};
use crate::secrets;
use crate::sqlite::Database;

/// Every registered client id starts so (a reader of the logs sees where a client came from); the
/// rest is random, so ids can be neither guessed nor made to collide.
const CLIENT_ID_PREFIX: &str = "dyn_";
/// Limits that keep one registration small.
const MAX_REDIRECT_URIS: usize = 10;
const MAX_URI_CHARS: usize = 2000;
const MAX_CLIENT_NAME_CHARS: usize = 100;

/// The metadata a client sends (RFC 7591 §2); members this server does not use are ignored, as
/// §2 allows.
#[derive(Debug, Default, Deserialize)]
pub struct RegistrationRequest {
    pub redirect_uris: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
}

/// RFC 7591 §3.2.1: the client's registered metadata, with its new `client_id`.
#[derive(Debug, Serialize)]
pub struct RegistrationResponse {
    pub client_id: String,
    pub client_id_issued_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<&'static str>,
    pub response_types: Vec<&'static str>,
    pub token_endpoint_auth_method: &'static str,
}

/// The registered clients, in the authorization server's database.
pub struct RegisteredClients {
    db: Database,
}

impl RegisteredClients {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub async fn insert(&self, client: &SignInClient, now: i64) -> Result<(), sqlx::Error> {
        let redirect_uris = serde_json::to_string(&client.redirect_uris).expect("strings serialise");
        sqlx::query(
            "INSERT INTO registered_clients (client_id, client_name, redirect_uris, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&client.client_id)
        .bind(&client.client_name)
        .bind(redirect_uris)
        .bind(now)
        .execute(&self.db.writer)
        .await?;
        Ok(())
    }

    pub async fn get(&self, client_id: &str) -> Result<Option<SignInClient>, sqlx::Error> {
        let row: Option<(String, Option<String>, String)> =
            sqlx::query_as("SELECT client_id, client_name, redirect_uris FROM registered_clients WHERE client_id = ?")
                .bind(client_id)
                .fetch_optional(&self.db.reader)
                .await?;
        Ok(row.map(|(client_id, client_name, redirect_uris)| SignInClient {
            client_id,
            client_name,
            // Written by `insert` only, from a Vec<String>.
            redirect_uris: serde_json::from_str(&redirect_uris).unwrap_or_default(),
        }))
    }
}

/// `POST /register`.
pub async fn register(
    State(state): State<Arc<AuthzState>>,
    body: Result<Json<RegistrationRequest>, JsonRejection>,
) -> Result<Response, OAuthError> {
    let Json(request) = body.map_err(|rejection| {
        OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            format!("the body must be client metadata as JSON: {}", rejection.body_text()),
        )
    })?;
    let client = checked_registration(request)?;
    let now = now_ms() / 1000;
    state.registered.insert(&client, now).await.map_err(OAuthError::server_error)?;
    tracing::info!(client = %client.client_id, name = ?client.client_name, "registered a public client");
    let response = RegistrationResponse {
        client_id: client.client_id,
        client_id_issued_at: now,
        client_name: client.client_name,
        redirect_uris: client.redirect_uris,
        grant_types: ClientConfig::sign_in_grant_types().iter().map(|grant| grant.as_str()).collect(),
        response_types: vec!["code"],
        token_endpoint_auth_method: ClientAuthMethod::None.as_str(),
    };
    let mut response = (StatusCode::CREATED, Json(response)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The registration as this server accepts it, or the first thing to fix.
pub fn checked_registration(request: RegistrationRequest) -> Result<SignInClient, OAuthError> {
    let metadata = |why: String| OAuthError::new(ErrorCode::InvalidClientMetadata, why);
    let redirect = |why: String| OAuthError::new(ErrorCode::InvalidRedirectUri, why);
    match request.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(other) => {
            return Err(metadata(format!(
                "token_endpoint_auth_method {other:?} is not offered here: register a public client (\"none\"); \
                 confidential clients are configured under [[authz.clients]]"
            )));
        }
    }
    let allowed_grants = ClientConfig::sign_in_grant_types();
    for grant in request.grant_types.iter().flatten() {
        if !GrantType::parse(grant).is_some_and(|grant| allowed_grants.contains(&grant)) {
            return Err(metadata(format!("grant_types may hold authorization_code and refresh_token, not {grant:?}")));
        }
    }
    if request.response_types.iter().flatten().any(|response_type| response_type != "code") {
        return Err(metadata("response_types may only hold \"code\"".into()));
    }
    let client_name = match request.client_name {
        Some(name) if name.trim().is_empty() || name.chars().count() > MAX_CLIENT_NAME_CHARS => {
            return Err(metadata(format!("client_name must be 1 to {MAX_CLIENT_NAME_CHARS} characters")));
        }
        Some(name) if name.chars().any(char::is_control) => {
            return Err(metadata("client_name must not contain control characters".into()));
        }
        name => name,
    };
    let redirect_uris = request.redirect_uris.unwrap_or_default();
    if redirect_uris.is_empty() || redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(redirect(format!("redirect_uris must hold 1 to {MAX_REDIRECT_URIS} URIs")));
    }
    for uri in &redirect_uris {
        if uri.len() > MAX_URI_CHARS {
            return Err(redirect(format!("redirect URIs must be at most {MAX_URI_CHARS} characters")));
        }
        ClientConfig::check_redirect_uri(uri).map_err(|reason| redirect(format!("redirect URI {uri:?} {reason}")))?;
    }
    Ok(SignInClient {
        client_id: format!("{CLIENT_ID_PREFIX}{}", secrets::random_token(16)),
        client_name,
        redirect_uris,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(redirect_uris: &[&str]) -> RegistrationRequest {
        RegistrationRequest {
            redirect_uris: Some(redirect_uris.iter().map(|uri| uri.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn a_public_client_with_loopback_or_https_redirects_is_registered_under_a_fresh_id() {
        let client = checked_registration(request(&["http://127.0.0.1:5000/cb", "https://app.example/cb"])).unwrap();
        assert!(client.client_id.starts_with(CLIENT_ID_PREFIX));
        let other = checked_registration(request(&["http://localhost/cb"])).unwrap();
        assert_ne!(client.client_id, other.client_id);
    }

    #[test]
    fn each_refusal_names_the_rfc_7591_error() {
        let code = |request| checked_registration(request).unwrap_err().code;
        assert_eq!(code(request(&[])), ErrorCode::InvalidRedirectUri);
        assert_eq!(code(RegistrationRequest::default()), ErrorCode::InvalidRedirectUri);
        assert_eq!(code(request(&["http://app.example/cb"])), ErrorCode::InvalidRedirectUri);
        assert_eq!(code(request(&["https://app.example/cb#frag"])), ErrorCode::InvalidRedirectUri);
        assert_eq!(code(request(&["not a url"])), ErrorCode::InvalidRedirectUri);
        let with = |change: fn(&mut RegistrationRequest)| {
            let mut request = request(&["http://127.0.0.1/cb"]);
            change(&mut request);
            request
        };
        assert_eq!(
            code(with(|r| r.token_endpoint_auth_method = Some("client_secret_basic".into()))),
            ErrorCode::InvalidClientMetadata
        );
        assert_eq!(
            code(with(|r| r.grant_types = Some(vec!["client_credentials".into()]))),
            ErrorCode::InvalidClientMetadata
        );
        assert_eq!(code(with(|r| r.response_types = Some(vec!["token".into()]))), ErrorCode::InvalidClientMetadata);
        assert_eq!(code(with(|r| r.client_name = Some(" ".into()))), ErrorCode::InvalidClientMetadata);
    }
}
