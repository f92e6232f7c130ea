//! What the tools talk to, built once from configuration: the bank (with the server's own read
//! token), the transfer lifecycle's runner and store, and the limits every call observes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::bank_access::BankAccess;
use super::consent::approval::Witness;
use super::lifecycle::{ApprovalSettings, IntentStore, PostgresLocation, Runner, StoreError, StoreLocation};
use super::metrics::Metrics;
use super::policy::Policy;
use super::server_key::{ServerKey, ServerKeyError};
use crate::bank::BankClient;
use crate::ciba::client_credentials::ClientCredentialsCache;
use crate::ciba::types::Secret;
use crate::ciba::{CibaClient, ProviderSettings};
use crate::clock::Clock;
use crate::config::{Config, DeliveryMode, McpAuth};
use crate::mcp::holder::{Holder, LoginHints};

pub struct Backends {
    /// The holder every call acts for unless a signed-in holder is required (`mcp.user`).
    pub configured_holder: Holder,
    /// Streamable HTTP with `mcp.auth = "oauth"`: every call acts for the holder its access token
    /// names, and a call without one is refused.
    pub signed_in_only: bool,
    pub bank: Arc<BankAccess>,
    /// Carries every transfer intent of this process through its lifecycle.
    pub runner: Arc<Runner>,
    pub limits: Limits,
    /// The money policy every transfer is held to before its holder is asked.
    pub policy: Policy,
    /// `mcp.read_only`: only the tools annotated read-only are listed and callable.
    pub read_only: bool,
    /// Ping mode: the provider's pings (`/ciba/notify`) end the runner's waits.
    pub ping_mode: bool,
    /// This server's own metrics (`GET /metrics`), which the runner counts into.
    pub metrics: Arc<Metrics>,
    started: tokio::sync::OnceCell<()>,
}

/// What every tool call observes.
#[derive(Debug, Clone)]
pub struct Limits {
    pub progress_interval: Duration,
    /// The longest one tool call waits before answering "pending".
    pub max_wait: Duration,
    /// The lifetime asked for every approval request.
    pub requested_expiry: Duration,
    /// The most approval requests one holder may have waiting at once.
    pub max_pending_per_holder: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendsError {
    #[error(
        "no client secret for {client_id}: set BANKGUARD_MCP__CLIENT_SECRET or mcp.client_secret_file, \
         or run `bankguard dev` once to create {}", default_file.display()
    )]
    NoSecret { client_id: String, default_file: std::path::PathBuf },
    #[error("cannot read the client secret file {}: {reason}", path.display())]
    SecretFile { path: std::path::PathBuf, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("ping delivery needs the HTTP transport: the provider must be able to call this server")]
    PingNeedsHttp,
    #[error("mcp.store_url {0}")]
    StoreUrl(String),
    #[error("cannot read the PostgreSQL password file {}: {reason}", path.display())]
    StorePasswordFile { path: std::path::PathBuf, reason: String },
    #[error(transparent)]
    ServerKey(#[from] ServerKeyError),
}

/// The embedded authorization server's credentials file for the MCP client.
pub const EMBEDDED_CLIENT_FILE: &str = "mcp-client.json";

impl Backends {
    pub fn from_config(config: &Config, http_transport: bool) -> Result<Self, BackendsError> {
        Self::with_clock(config, http_transport, Clock::system())
    }

    pub fn with_clock(config: &Config, http_transport: bool, clock: Clock) -> Result<Self, BackendsError> {
        let mcp = &config.mcp;
        if mcp.delivery_mode == DeliveryMode::Ping && !http_transport {
            return Err(BackendsError::PingNeedsHttp);
        }
        let issuer = config.mcp_issuer();
        let client_secret = client_secret(config)?;
        let bank_api_url = config.mcp_bank_api_url();
        let endpoints = [mcp.backchannel_authentication_endpoint.as_deref(), mcp.token_endpoint.as_deref()];
        let urls = [Some(issuer.as_str()), Some(bank_api_url.as_str())].into_iter().chain(endpoints).flatten();
        let http = crate::http_client::builder_for(urls).build()?;
        let settings = ProviderSettings {
            issuer: issuer.clone(),
            backchannel_endpoint: mcp.backchannel_authentication_endpoint.clone(),
            token_endpoint: mcp.token_endpoint.clone(),
            client_id: mcp.client_id.clone(),
            client_secret,
            auth_method: mcp.client_auth_method,
        };
        let audience = Some(config.mcp_audience());
        let login_hints = LoginHints { format: mcp.login_hint_format, issuer: issuer.clone() };
        let ciba = Arc::new(CibaClient::new(settings, http.clone()));
        let witness = Arc::new(Witness::new(issuer.clone(), audience.clone(), http.clone()));
        let bank = Arc::new(BankAccess::new(
            BankClient::new(&bank_api_url, http),
            ciba.clone(),
            ClientCredentialsCache::new(audience.clone(), &mcp.read_scope),
        ));
        let requested_expiry = Duration::from_secs(mcp.requested_expiry_seconds);
        let approval = ApprovalSettings {
            scope: format!("openid {}", mcp.transfer_scope),
            login_hints,
            audience,
            requested_expiry,
            heartbeat: Duration::from_secs(mcp.heartbeat_seconds),
            ping_fallback: Duration::from_secs(mcp.ping_fallback_poll_seconds),
        };
        let ping_mode = mcp.delivery_mode == DeliveryMode::Ping;
        let server_key = ServerKey::load_or_generate(&config.data_dir)?;
        let store = Arc::new(IntentStore::new(store_location(config)?, clock).with_server_key(Arc::new(server_key)));
        let metrics = Arc::new(Metrics::new());
        let runner = Arc::new(Runner::new(store, ciba, bank.clone(), approval, witness, ping_mode, metrics.clone()));
        Ok(Self {
            configured_holder: Holder::configured(&mcp.user),
            signed_in_only: http_transport && mcp.auth == McpAuth::Oauth,
            policy: Policy::new(mcp.policy.clone(), mcp.max_transfer()),
            read_only: mcp.read_only,
            bank,
            runner,
            limits: Limits {
                progress_interval: Duration::from_secs(mcp.progress_interval_seconds),
                max_wait: Duration::from_secs(mcp.max_wait_seconds),
                requested_expiry,
                max_pending_per_holder: mcp.max_pending_per_holder,
            },
            ping_mode,
            metrics,
            started: tokio::sync::OnceCell::new(),
        })
    }

    pub fn store(&self) -> &Arc<IntentStore> {
        self.runner.store()
    }

    /// Opens the intent store, writes this process's first heartbeat, and starts taking over the
    /// intents whose runner stopped (the configured holder's, or every holder's when holders sign in) (once per process: later calls wait for the first to
    /// finish, then do nothing). Every tool that touches intents calls it first.
    pub async fn start(&self) -> Result<(), StoreError> {
        self.started
            .get_or_try_init(|| async {
                self.store().open().await?;
                let owner = (!self.signed_in_only).then_some(self.configured_holder.bank_user.as_str());
                self.runner.start(owner).await
            })
            .await?;
        Ok(())
    }

    /// Stops the runner and hands its open intents back for another server to take at once, then
    /// closes the store.
    pub async fn shutdown(&self) {
        self.hand_back().await;
        self.store().close().await;
    }

    /// Stops the runner and hands its open intents back; the store stays open for calls still
    /// following them (on PostgreSQL they see the replica that takes over finish them).
    pub async fn hand_back(&self) {
        if self.started.initialized() {
            self.runner.shutdown().await;
        }
    }
}

/// SQLite in the data directory, or the PostgreSQL database of `mcp.store_url` with its password
/// from `mcp.store_password`, `mcp.store_password_file`, or else libpq's `PGPASSWORD` / `~/.pgpass`.
pub fn store_location(config: &Config) -> Result<StoreLocation, BackendsError> {
    let mcp = &config.mcp;
    let Some(url) = &mcp.store_url else {
        return Ok(StoreLocation::Sqlite(config.data_dir.join(crate::mcp::lifecycle::store::DATABASE_FILE)));
    };
    let password = match (&mcp.store_password, &mcp.store_password_file) {
        (Some(password), _) => Some(Secret::new(password.clone())),
        (None, Some(path)) => {
            let error = |reason: String| BackendsError::StorePasswordFile { path: path.clone(), reason };
            let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
            let line = text.lines().next().unwrap_or_default();
            if line.is_empty() {
                return Err(error("the file is empty".into()));
            }
            Some(Secret::new(line))
        }
        (None, None) => None,
    };
    let location = PostgresLocation::parse(url, password.as_ref().map(Secret::expose), mcp.store_max_connections)
        .map_err(BackendsError::StoreUrl)?;
    Ok(StoreLocation::Postgres(Box::new(location)))
}

/// The secret from `mcp.client_secret`, `mcp.client_secret_file`, or the dev stack's credentials file.
pub fn client_secret(config: &Config) -> Result<Secret, BackendsError> {
    if let Some(secret) = &config.mcp.client_secret {
        return Ok(Secret::new(secret.clone()));
    }
    let (path, explicit) = match &config.mcp.client_secret_file {
        Some(path) => (path.clone(), true),
        None => (config.data_dir.join(EMBEDDED_CLIENT_FILE), false),
    };
    if !explicit && !path.exists() {
        return Err(BackendsError::NoSecret { client_id: config.mcp.client_id.clone(), default_file: path });
    }
    read_secret_file(&path)
}

fn read_secret_file(path: &Path) -> Result<Secret, BackendsError> {
    let error = |reason: String| BackendsError::SecretFile { path: path.to_owned(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let text = text.trim();
    if text.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(text).map_err(|_| error("unreadable JSON".into()))?;
        let secret = json["client_secret"].as_str().ok_or_else(|| error("no client_secret field".into()))?;
        return Ok(Secret::new(secret));
    }
    if text.is_empty() {
        return Err(error("the file is empty".into()));
    }
    Ok(Secret::new(text))
}
