//! The embedded authorization server: the local stand-in for Auth0 and the Guardian app, and the
//! authorization server MCP clients sign their users in with.
//!
//! Auth0-shaped, so the MCP server's CIBA client works against it and against Auth0 with only the
//! issuer changed. Server side only: it shares the seed with the bank API, never code paths with the
//! client side.
//!
//! | route | module |
//! |---|---|
//! | `GET /.well-known/oauth-authorization-server`, `GET /.well-known/openid-configuration`, `GET /.well-known/jwks.json` | [`discovery`] |
//! | `POST /bc-authorize` | [`backchannel`] |
//! | `POST /oauth/token` (CIBA and client-credentials grants; authorization code and refresh token in [`code_grant`]) | [`token_endpoint`] |
//! | `GET /device`, `GET /device/pending`, `GET /device/history`, `POST /device/decide`, `/device/api/*` | [`device`] (the phone) |
//! | `GET /authorize` | [`authorize`], then the sign-in pages `POST /authorize/sign-in`, `POST /authorize/consent` ([`sign_in`]) |
//! | `POST /register` (Dynamic Client Registration) | [`registration`] |
//!
//! MCP clients sign users in with the authorization code flow and PKCE: the client is configured,
//! registered at `/register`, or named by the URL of its metadata document ([`sign_in_clients`]);
//! the access token is for the MCP endpoint's resource ([`apis`]), and never for the bank API, whose
//! tokens come only from CIBA approvals and client credentials.
//!
//! State (signing key, the MCP server's client credentials, pending requests, registered clients,
//! codes and refresh tokens) lives in the data directory and survives restarts; sign-ins in progress
//! do not. [`ping`] announces outcomes to ping clients and expires requests.

pub mod apis;
mod authorize;
pub mod backchannel;
mod client_metadata;
pub mod clients;
mod code_grant;
pub mod device;
pub mod discovery;
mod error;
mod form;
mod grants;
mod html;
pub mod keys;
mod local_browser;
mod page;
mod ping;
mod pkce;
mod registration;
mod request_view;
mod sign_in;
mod sign_in_clients;
mod sign_in_page;
pub mod store;
mod token_endpoint;
mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::Notify;

use crate::config::Config;
use crate::scopes::{CREATE_TRANSFER, MCP_TOOLS, READ_ACCOUNTS};
use crate::secrets;
use apis::{Api, ApiCatalog, GrantedBy};
use client_metadata::ClientMetadataDocuments;
use clients::{ClientCredentials, ClientFileError, ClientRegistry};
use device::{DEVICE_TOKEN_FILE, DeviceAccess};
use grants::GrantStore;
use keys::{KeyError, SigningKey};
use registration::RegisteredClients;
use sign_in::SignIns;
use store::RequestStore;
use tokens::TokenIssuer;

pub use error::{ErrorCode, OAuthError};

/// What every handler shares.
pub struct AuthzState {
    pub issuer: String,
    clients: ClientRegistry,
    store: RequestStore,
    key: Arc<SigningKey>,
    tokens: TokenIssuer,
    apis: ApiCatalog,
    poll_interval_seconds: i64,
    device: DeviceAccess,
    /// Wakes the ping loop when a request is decided.
    outcomes: Notify,
    http: reqwest::Client,
    /// Authorization codes and refresh tokens of signed-in users.
    grants: GrantStore,
    /// Clients registered at `/register`.
    registered: RegisteredClients,
    client_documents: ClientMetadataDocuments,
    /// Sign-ins between `/authorize` and the client's redirect URI.
    sign_ins: SignIns,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    #[error("cannot create the data directory {path} or make it private: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Clients(#[from] ClientFileError),
    #[error(transparent)]
    Database(#[from] crate::sqlite::DatabaseError),
    #[error("cannot write {path}: {source}")]
    DeviceToken { path: String, source: std::io::Error },
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

pub struct AuthorizationServer {
    state: Arc<AuthzState>,
    mcp_client: ClientCredentials,
}

impl AuthorizationServer {
    /// Opens the server's state in the data directory (creating key, client and database on first
    /// start) for the issuer identifier `issuer`.
    pub async fn open(config: &Config, issuer: &str) -> Result<Self, AuthzError> {
        let data_dir = &config.data_dir;
        crate::data_dir::prepare(data_dir)
            .map_err(|source| AuthzError::DataDir { path: data_dir.display().to_string(), source })?;
        let key = Arc::new(SigningKey::load_or_generate(data_dir)?);
        let (clients, mcp_client) = ClientRegistry::load(&config.authz, data_dir)?;
        let store = RequestStore::open(data_dir).await?;
        let device = DeviceAccess::generate();
        let device_token_path = data_dir.join(DEVICE_TOKEN_FILE);
        let _ = std::fs::remove_file(&device_token_path);
        secrets::write_private_file(&device_token_path, device.device_token.as_bytes())
            .map_err(|source| AuthzError::DeviceToken { path: device_token_path.display().to_string(), source })?;
        let tokens = TokenIssuer::new(issuer.to_owned(), key.clone(), config.authz.token_lifetime_seconds as i64);
        // The provider only ever calls its clients' ping endpoints.
        let notification_endpoints: Vec<String> =
            config.authz.clients.iter().filter_map(|client| client.notification_endpoint.clone()).collect();
        let state = AuthzState {
            issuer: issuer.to_owned(),
            clients,
            key,
            tokens,
            apis: ApiCatalog {
                apis: vec![
                    Api {
                        identifier: config.bank_api.audience.clone(),
                        scopes: vec![READ_ACCOUNTS, CREATE_TRANSFER],
                        granted_by: GrantedBy::Backchannel,
                    },
                    Api { identifier: config.mcp_resource(), scopes: vec![MCP_TOOLS], granted_by: GrantedBy::SignIn },
                ],
            },
            poll_interval_seconds: config.authz.poll_interval_seconds as i64,
            device,
            outcomes: Notify::new(),
            http: crate::http_client::builder_for(notification_endpoints.iter().map(String::as_str)).build()?,
            grants: GrantStore::new(
                store.database(),
                config.authz.authorization_code_lifetime_seconds as i64,
                config.authz.refresh_token_lifetime_seconds as i64,
            ),
            registered: RegisteredClients::new(store.database()),
            client_documents: ClientMetadataDocuments::default(),
            sign_ins: SignIns::default(),
            store,
        };
        Ok(Self { state: Arc::new(state), mcp_client })
    }

    /// The MCP server's client credentials (generated on first start).
    pub fn mcp_client(&self) -> &ClientCredentials {
        &self.mcp_client
    }

    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(discovery::DISCOVERY_PATH, get(discovery::metadata))
            .route(discovery::AUTHORIZATION_SERVER_METADATA_PATH, get(discovery::authorization_server_metadata))
            .route(discovery::JWKS_PATH, get(discovery::jwks))
            .route(discovery::BACKCHANNEL_PATH, post(backchannel::authorize))
            .route(discovery::TOKEN_PATH, post(token_endpoint::token))
            .route(discovery::AUTHORIZE_PATH, get(authorize::authorize))
            .route(sign_in::SIGN_IN_PATH, post(sign_in::pick_user))
            .route(sign_in::CONSENT_PATH, post(sign_in::decide))
            .route(discovery::REGISTRATION_PATH, post(registration::register))
            .route("/device", get(device::page))
            .route("/device/pending", get(device::pending_fragment))
            .route("/device/history", get(device::history_fragment))
            .route("/device/decide", post(device::decide_from_page))
            .route("/device/api/pending", get(device::api_pending))
            .route("/device/api/decide", post(device::api_decide))
            .with_state(self.state.clone())
    }

    /// The background loop that expires requests and delivers pings; runs until dropped.
    pub fn background(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        ping::run(self.state.clone())
    }
}
