//! The embedded CIBA authorization server: the local stand-in for Auth0 and the Guardian app.
//!
//! Auth0-shaped, so the MCP server's CIBA client works against it and against Auth0 with only the
//! issuer changed. Server side only: it shares the seed with the bank API, never code paths with the
//! client side.
//!
//! | route | module |
//! |---|---|
//! | `GET /.well-known/oauth-authorization-server`, `GET /.well-known/openid-configuration`, `GET /.well-known/jwks.json` | [`discovery`] |
//! | `POST /bc-authorize` | [`backchannel`] |
//! | `POST /oauth/token` (CIBA and client-credentials grants) | [`token_endpoint`] |
//! | `GET /device`, `POST /device/decide`, `/device/api/*` | [`device`] (the phone) |
//!
//! State (signing key, the MCP server's client credentials, pending requests) lives in the data
//! directory and survives restarts; [`ping`] announces outcomes to ping clients and expires requests.

pub mod apis;
pub mod backchannel;
pub mod clients;
pub mod device;
pub mod discovery;
mod error;
mod form;
pub mod keys;
mod page;
mod ping;
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
use clients::{ClientCredentials, ClientFileError, ClientRegistry};
use device::{DEVICE_TOKEN_FILE, DeviceAccess};
use keys::{KeyError, SigningKey};
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
        let device = DeviceAccess { csrf_token: secrets::random_token(32), device_token: secrets::random_token(32) };
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
            store,
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
            .route("/device", get(device::page))
            .route("/device/pending", get(device::pending_fragment))
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
