//! The embedded default: everything a fresh machine needs to run the whole flow locally.
//!
//! Server side only. Nothing here is imported by the client side (`ciba`, `bank`, `mcp`); they meet
//! over HTTP exactly as they would with Auth0 and a real bank.
//!
//! - [`authz`]: the authorization server: CIBA and the approval page that plays the phone, and the
//!   sign-in (authorization code with PKCE) of MCP clients.
//! - [`bank_api`]: the reference bank API, a resource server over a SQLite ledger.
//! - [`seed`]: the demo users and accounts, the one source of truth for both servers.

pub mod authz;
pub mod bank_api;
pub mod device_client;
pub mod seed;

use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::http_server::{BindError, ListenSetting};
use authz::AuthorizationServer;
use authz::clients::ClientCredentials;
use bank_api::BankApi;

/// Written to the data directory while `bankguard dev` runs, so `bankguard approve` can find it.
pub const RUNNING_FILE: &str = "dev-stack.json";

/// Where a running dev stack listens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunningStack {
    pub issuer: String,
    pub bank_api: String,
    pub device: String,
}

impl RunningStack {
    pub fn read(data_dir: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(data_dir.join(RUNNING_FILE))?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevStackError {
    #[error("cannot create the data directory {path} or make it private: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cannot read the address of the listener for {address}: {source}")]
    LocalAddress { address: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Authz(#[from] authz::AuthzError),
    #[error(transparent)]
    BankApi(#[from] bank_api::BankApiError),
    #[error("cannot write {path}: {source}")]
    RunningFile { path: String, source: std::io::Error },
}

/// The authorization server and the bank API, running in this process on loopback.
pub struct DevStack {
    pub running: RunningStack,
    pub authz_address: SocketAddr,
    pub bank_api_address: SocketAddr,
    pub mcp_client: ClientCredentials,
    stop: watch::Sender<bool>,
    servers: JoinSet<()>,
    /// The ping and expiry loop; aborted when the stack is dropped.
    _background: JoinSet<()>,
}

impl DevStack {
    /// Binds both servers (port 0 picks free ports), opens their state and starts serving.
    pub async fn start(config: &Config) -> Result<Self, DevStackError> {
        crate::data_dir::prepare(&config.data_dir)
            .map_err(|source| DevStackError::DataDir { path: config.data_dir.display().to_string(), source })?;
        let authz_listener = crate::http_server::bind(config.authz.listen, ListenSetting::AUTHZ).await?;
        let authz_address = local_address(&authz_listener, config.authz.listen)?;
        // The issuer identifier is derived from where the server really listens.
        let issuer = format!("http://{authz_address}");
        let authz = AuthorizationServer::open(config, &issuer).await?;
        let bank_issuer = config.bank_api.issuer.clone().unwrap_or_else(|| issuer.clone());
        let bank = BankApi::open(config, &bank_issuer).await?;
        let bank_listener = crate::http_server::bind(config.bank_api.listen, ListenSetting::BANK_API).await?;
        let bank_api_address = local_address(&bank_listener, config.bank_api.listen)?;

        let (stop, stopped) = watch::channel(false);
        let mut servers = JoinSet::new();
        servers.spawn(serve(authz_listener, authz.router(), stopped.clone()));
        servers.spawn(serve(bank_listener, bank.router(), stopped));
        let mut background = JoinSet::new();
        background.spawn(authz.background());

        let running = RunningStack {
            device: format!("{issuer}/device"),
            issuer,
            bank_api: format!("http://{bank_api_address}/api"),
        };
        let path = config.data_dir.join(RUNNING_FILE);
        let json = serde_json::to_vec_pretty(&running).expect("RunningStack serialises");
        crate::secrets::write_private_file(&path, &json)
            .map_err(|source| DevStackError::RunningFile { path: path.display().to_string(), source })?;
        let mcp_client = authz.mcp_client().clone();
        Ok(Self { running, authz_address, bank_api_address, mcp_client, stop, servers, _background: background })
    }

    /// Stops accepting connections, lets requests in flight finish (up to a few seconds), then stops
    /// the background loop.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let drained = async { while self.servers.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drained).await;
    }
}

fn local_address(listener: &TcpListener, wanted: SocketAddr) -> Result<SocketAddr, DevStackError> {
    let address = listener.local_addr().map_err(|source| DevStackError::LocalAddress { address: wanted, source })?;
    if !address.ip().is_loopback() {
        tracing::warn!(%address, "listening beyond loopback: anyone who can reach this address can call it");
    }
    Ok(address)
}

async fn serve(listener: TcpListener, router: Router, mut stopped: watch::Receiver<bool>) {
    let shutdown = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    if let Err(error) = crate::http_server::serve(listener, router, shutdown).await {
        tracing::error!(%error, "server stopped with an error");
    }
}
