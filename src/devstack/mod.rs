//! The embedded default: everything a fresh machine needs to run the whole flow locally.
//!
//! Server side only. Nothing here is imported by the client side (`ciba`, `bank`, `mcp`); they meet
//! over HTTP exactly as they would with Auth0 and a real bank.
//!
//! - [`bank_api`]: the reference bank API, a resource server over a SQLite ledger.
//! - [`seed`]: the demo users and accounts, the one source of truth for both servers.

pub mod bank_api;
pub mod seed;

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

/// A server bound to its address and running in the background.
pub struct RunningServer {
    pub address: SocketAddr,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds `address` (port 0 picks a free port) and serves `router` until `shutdown` completes.
pub async fn spawn_server(
    address: SocketAddr,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<RunningServer> {
    let listener = TcpListener::bind(address).await?;
    let address = listener.local_addr()?;
    if !address.ip().is_loopback() {
        tracing::warn!(%address, "listening beyond loopback: anyone who can reach this address can call it");
    }
    let task = tokio::spawn(async move { axum::serve(listener, router).with_graceful_shutdown(shutdown).await });
    Ok(RunningServer { address, task })
}
