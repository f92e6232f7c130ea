//! What the tools talk to, built once from configuration: the CIBA client, the bank client, the
//! server's own read token, and the settings of every approval request.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::approval::RunningApprovals;
use super::intents::Intents;
use crate::bank::BankClient;
use crate::ciba::client_credentials::ClientCredentialsCache;
use crate::ciba::types::{LoginHint, Secret};
use crate::ciba::{CibaClient, ProviderSettings};
use crate::config::{Config, DeliveryMode, LoginHintFormat};
use crate::money::MinorUnits;

pub struct Backends {
    pub ciba: CibaClient,
    pub bank: BankClient,
    pub read_token: ClientCredentialsCache,
    /// The account holder this server acts for.
    pub user: String,
    pub login_hint: LoginHint,
    pub audience: Option<String>,
    /// The scope of every approval request, `openid` included.
    pub approval_scope: String,
    pub requested_expiry: u64,
    pub max_transfer: MinorUnits,
    pub progress_interval: Duration,
    /// The longest one tool call waits before answering "pending".
    pub max_wait: Duration,
    /// Every transfer this server asked approval for, and the waits it is running.
    pub intents: Intents,
    pub running: RunningApprovals,
    /// This process's name on the leases of the intents it waits for.
    pub runner: String,
    supervising: std::sync::atomic::AtomicBool,
    /// Present in ping mode: wakes the wait of the request whose notification token a ping carries.
    pub pings: Option<PingWaiters>,
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
}

/// The embedded authorization server's credentials file for the MCP client.
const EMBEDDED_CLIENT_FILE: &str = "mcp-client.json";

impl Backends {
    pub fn from_config(config: &Config, http_transport: bool) -> Result<Self, BackendsError> {
        let mcp = &config.mcp;
        if mcp.delivery_mode == DeliveryMode::Ping && !http_transport {
            return Err(BackendsError::PingNeedsHttp);
        }
        let issuer = config.mcp_issuer();
        let client_secret = client_secret(config)?;
        let http = crate::http_client::builder().build()?;
        let settings = ProviderSettings {
            issuer: issuer.clone(),
            backchannel_endpoint: mcp.backchannel_authentication_endpoint.clone(),
            token_endpoint: mcp.token_endpoint.clone(),
            client_id: mcp.client_id.clone(),
            client_secret,
            auth_method: mcp.client_auth_method,
        };
        let audience = Some(config.mcp_audience());
        let login_hint = match mcp.login_hint_format {
            LoginHintFormat::Plain => LoginHint::plain(&mcp.user),
            LoginHintFormat::IssSub => LoginHint::iss_sub(&issuer, &mcp.user),
        };
        Ok(Self {
            ciba: CibaClient::new(settings, http.clone()),
            bank: BankClient::new(&config.mcp_bank_api_url(), http),
            read_token: ClientCredentialsCache::new(audience.clone(), &mcp.read_scope),
            approval_scope: format!("openid {}", mcp.transfer_scope),
            user: mcp.user.clone(),
            login_hint,
            audience,
            requested_expiry: mcp.requested_expiry_seconds,
            max_transfer: mcp.max_transfer(),
            progress_interval: Duration::from_secs(mcp.progress_interval_seconds),
            max_wait: Duration::from_secs(mcp.max_wait_seconds),
            intents: Intents::new(config.data_dir.clone()),
            running: RunningApprovals::default(),
            runner: format!("run_{}", uuid::Uuid::new_v4().simple()),
            supervising: std::sync::atomic::AtomicBool::new(false),
            pings: (mcp.delivery_mode == DeliveryMode::Ping).then(PingWaiters::default),
        })
    }
}

impl Backends {
    /// Starts taking over intents whose runner stopped (once per process; later calls do nothing).
    pub fn supervise(self: &Arc<Self>) {
        if !self.supervising.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tokio::spawn(super::approval::supervise(self.clone()));
        }
    }
}

/// The secret from `mcp.client_secret`, `mcp.client_secret_file`, or the dev stack's credentials file.
fn client_secret(config: &Config) -> Result<Secret, BackendsError> {
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

/// Waits that a ping can end early, by their `client_notification_token`.
#[derive(Default, Clone)]
pub struct PingWaiters {
    waiting: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

/// Removes its registration when the wait ends.
pub struct PingRegistration {
    waiters: PingWaiters,
    token: String,
    pub notify: Arc<Notify>,
}

impl PingWaiters {
    pub fn register(&self, token: &Secret) -> PingRegistration {
        let notify = Arc::new(Notify::new());
        self.waiting.lock().expect("ping registry").insert(token.expose().to_owned(), notify.clone());
        PingRegistration { waiters: self.clone(), token: token.expose().to_owned(), notify }
    }

    /// Wakes the wait registered under `token`; false if there is none.
    pub fn wake(&self, token: &str) -> bool {
        let waiting = self.waiting.lock().expect("ping registry");
        let found = waiting.iter().find(|(known, _)| crate::secrets::constant_time_eq(known, token));
        match found {
            Some((_, notify)) => {
                notify.notify_one();
                true
            }
            None => false,
        }
    }
}

impl Drop for PingRegistration {
    fn drop(&mut self) {
        self.waiters.waiting.lock().expect("ping registry").remove(&self.token);
    }
}
