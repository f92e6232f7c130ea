//! Registered clients and client authentication (`client_secret_basic`, `client_secret_post`).
//!
//! A client must authenticate with the method it is registered for, and only one method per request
//! (RFC 6749 §2.3). The MCP server's own client is generated on first start; its credentials go to
//! `<data_dir>/mcp-client.json` with mode 0600 and are never logged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::error::{ErrorCode, OAuthError};
use crate::config::{AuthzConfig, ClientAuthMethod, ClientConfig, DeliveryMode, GrantType, MCP_CLIENT_ID};
use crate::secrets;

/// The MCP server's credentials file inside the data directory.
pub const MCP_CLIENT_FILE: &str = "mcp-client.json";
/// The MCP server's `client_name`: what the approval device says is asking.
pub const MCP_CLIENT_NAME: &str = "bankguard MCP server";

/// What `mcp-client.json` holds.
#[derive(Clone, Serialize, Deserialize)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub token_endpoint_auth_method: ClientAuthMethod,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientFileError {
    #[error("client credentials file {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
}

pub struct ClientRegistry {
    clients: HashMap<String, ClientConfig>,
}

/// Credentials presented by a request, before they are checked.
struct Presented {
    client_id: String,
    secret: Option<String>,
    method: ClientAuthMethod,
}

impl ClientRegistry {
    /// The configured clients plus the MCP server's, generating its credentials on first start.
    pub fn load(config: &AuthzConfig, data_dir: &Path) -> Result<(Self, ClientCredentials), ClientFileError> {
        let mcp = load_or_create_mcp_credentials(&data_dir.join(MCP_CLIENT_FILE))?;
        let mut clients: HashMap<String, ClientConfig> =
            config.clients.iter().map(|client| (client.id.clone(), client.clone())).collect();
        clients.insert(
            mcp.client_id.clone(),
            ClientConfig {
                id: mcp.client_id.clone(),
                secret: mcp.client_secret.clone(),
                auth_method: mcp.token_endpoint_auth_method,
                redirect_uris: Vec::new(),
                client_name: Some(MCP_CLIENT_NAME.to_owned()),
                grant_types: ClientConfig::default_grant_types(),
                delivery_mode: DeliveryMode::Poll,
                notification_endpoint: None,
                client_credentials_scopes: ClientConfig::default_client_credentials_scopes(),
            },
        );
        Ok((Self { clients }, mcp))
    }

    pub fn get(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.get(client_id)
    }

    /// What a person is shown as the client asking: its `client_name`, else its id.
    pub fn display_name<'a>(&'a self, client_id: &'a str) -> &'a str {
        self.get(client_id).and_then(|client| client.client_name.as_deref()).unwrap_or(client_id)
    }

    /// Authenticates the request's client and checks it may use `grant`.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        form_client_id: Option<&str>,
        form_client_secret: Option<&str>,
        grant: GrantType,
    ) -> Result<&ClientConfig, OAuthError> {
        let presented = presented_credentials(headers, form_client_id, form_client_secret)?;
        let basic = presented.method == ClientAuthMethod::ClientSecretBasic;
        let invalid = |why: &str| OAuthError::new(ErrorCode::InvalidClient { basic }, why);
        let client = self.clients.get(&presented.client_id).ok_or_else(|| invalid("unknown client"))?;
        if client.auth_method == ClientAuthMethod::None {
            return Err(invalid("a public client has no secret; send client_id alone"));
        }
        let secret = presented.secret.ok_or_else(|| invalid("client authentication is required"))?;
        if !secrets::constant_time_eq(&secret, &client.secret) {
            return Err(invalid("client authentication failed"));
        }
        if client.auth_method != presented.method {
            return Err(invalid(&format!(
                "this client is registered for {}, not {}",
                client.auth_method.as_str(),
                presented.method.as_str()
            )));
        }
        may_use(client, grant)?;
        Ok(client)
    }
}

impl ClientRegistry {
    /// For the grants a public client may use (authorization code, refresh token): a client that
    /// presents credentials is authenticated as for any grant; one that presents none names itself
    /// with `client_id` alone, which is allowed for public clients only (RFC 6749 §3.2.1). A public
    /// client's id is then checked against the client the code or refresh token was issued to.
    pub fn identify(
        &self,
        headers: &HeaderMap,
        form_client_id: Option<&str>,
        form_client_secret: Option<&str>,
        grant: GrantType,
    ) -> Result<String, OAuthError> {
        if headers.contains_key(AUTHORIZATION) || form_client_secret.is_some() {
            return self
                .authenticate(headers, form_client_id, form_client_secret, grant)
                .map(|client| client.id.clone());
        }
        let client_id = form_client_id.filter(|id| !id.is_empty()).ok_or_else(|| {
            OAuthError::new(ErrorCode::InvalidClient { basic: false }, "client_id is required for a public client")
        })?;
        if let Some(client) = self.clients.get(client_id) {
            if client.auth_method != ClientAuthMethod::None {
                return Err(OAuthError::new(
                    ErrorCode::InvalidClient { basic: false },
                    format!("this client must authenticate with {}", client.auth_method.as_str()),
                ));
            }
            may_use(client, grant)?;
        }
        Ok(client_id.to_owned())
    }
}

fn may_use(client: &ClientConfig, grant: GrantType) -> Result<(), OAuthError> {
    if client.grant_types.contains(&grant) {
        return Ok(());
    }
    Err(OAuthError::new(ErrorCode::UnauthorizedClient, format!("this client may not use the {} grant", grant.as_str())))
}

fn presented_credentials(
    headers: &HeaderMap,
    form_client_id: Option<&str>,
    form_client_secret: Option<&str>,
) -> Result<Presented, OAuthError> {
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Basic"));
    let Some((_, encoded)) = basic else {
        let client_id = form_client_id.filter(|id| !id.is_empty()).ok_or_else(|| {
            OAuthError::new(ErrorCode::InvalidClient { basic: false }, "client authentication is required")
        })?;
        return Ok(Presented {
            client_id: client_id.to_owned(),
            secret: form_client_secret.map(str::to_owned),
            method: ClientAuthMethod::ClientSecretPost,
        });
    };
    if form_client_secret.is_some() {
        return Err(OAuthError::invalid_request("use one client authentication method, not Basic and a form secret"));
    }
    let malformed = || OAuthError::new(ErrorCode::InvalidClient { basic: true }, "malformed Basic credentials");
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
    let unescape = |part: &str| {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .ok_or_else(malformed)
    };
    let client_id = unescape(id)?;
    if form_client_id.is_some_and(|form_id| form_id != client_id) {
        return Err(OAuthError::invalid_request("client_id in the form differs from the Basic credentials"));
    }
    Ok(Presented { client_id, secret: Some(unescape(secret)?), method: ClientAuthMethod::ClientSecretBasic })
}

fn load_or_create_mcp_credentials(path: &Path) -> Result<ClientCredentials, ClientFileError> {
    let error = |reason: String| ClientFileError::File { path: path.to_owned(), reason };
    if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        return serde_json::from_str(&text).map_err(|e| error(format!("unreadable: {e}")));
    }
    let credentials = ClientCredentials {
        client_id: MCP_CLIENT_ID.to_owned(),
        client_secret: secrets::random_token(32),
        token_endpoint_auth_method: ClientAuthMethod::ClientSecretBasic,
    };
    let json = serde_json::to_vec_pretty(&credentials).map_err(|e| error(e.to_string()))?;
    secrets::write_private_file(path, &json).map_err(|e| error(e.to_string()))?;
    tracing::info!(path = %path.display(), client_id = MCP_CLIENT_ID, "created the MCP server's client credentials");
    Ok(credentials)
}
