//! How clients reach the server: stdio (stdout carries only the protocol; logs go to stderr), or
//! Streamable HTTP at `/mcp` on loopback by default, where rmcp rejects a foreign `Host` (DNS
//! rebinding) and any `Origin` outside the configured allow-list with 403.
//!
//! - [`frames`]: one frame read as an MCP message, or refused with its JSON-RPC error.
//! - [`lines`]: stdio, one message per line; a line that is not a message is answered, not dropped.
//! - [`gate`]: in front of rmcp over HTTP: bodies that are not messages get 400 and their JSON-RPC
//!   error, and the number of live sessions is bounded.
//! - [`resume`]: a stream resumed with `Last-Event-ID` goes on after that event (rmcp 3.11 sent it again).
//! - [`oauth`]: with `mcp.auth = "oauth"`, in front of the gate: the endpoint as an OAuth protected
//!   resource, each request acting for the holder its access token names. With `mcp.auth = "none"`
//!   every request acts for `mcp.user`, and the endpoint refuses to listen beyond loopback.
//!
//! In ping mode the HTTP server also exposes `POST /ciba/notify`: the provider's ping, authenticated
//! by the `client_notification_token` of one waiting request, wakes that wait at once.
//!
//! - [`operations`]: for operators, outside the token check and the gate, `GET` only:
//!   `/healthz` (200 `ok` while the process answers), `/readyz` (200 once the intent store opens and
//!   holds every migration, else 503 and the reason in one sentence, never a path or a database
//!   URL) and `/metrics` (Prometheus text: see [`crate::mcp::metrics`]).

pub mod frames;
pub mod gate;
pub mod lines;
pub mod oauth;
pub mod operations;
pub mod resume;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::routing::post;
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::cancellation::{Calls, CancelFirst};
use super::lifecycle::Runner;
use super::{Backends, BankguardServer};
use crate::config::{Config, McpAuth, McpConfig};
use gate::Gate;
use lines::LineTransport;
use oauth::ProtectedResource;

/// The MCP endpoint's path.
pub const MCP_PATH: &str = "/mcp";
/// Where providers send CIBA pings.
pub const NOTIFY_PATH: &str = "/ciba/notify";

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the MCP stdio session failed: {0}")]
    Stdio(String),
    #[error(transparent)]
    Listen(#[from] crate::http_server::BindError),
    #[error("the MCP HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error("the MCP server cannot start: {0}")]
    Start(String),
    #[error(
        "mcp.auth = \"none\" acts for mcp.user without any sign-in, so the MCP endpoint only listens on loopback, \
         and {0} is not: set mcp.auth = \"oauth\" (every client then signs in as its holder), or listen on \
         127.0.0.1"
    )]
    NoAuthBeyondLoopback(SocketAddr),
}

/// Serves one client over stdin/stdout until it disconnects, then hands the open intents back.
///
/// Cancellations are stored by the transport before rmcp sees them ([`CancelFirst`]), so a client
/// that cancels and closes stdin at once cannot make the process exit before the write. Under it,
/// [`LineTransport`] answers every line that is not an MCP message.
///
/// The intent store opens and the first heartbeat is written while the client's handshake goes on:
/// `initialize` and `tools/list` need neither, and every tool that does waits for them. If they
/// fail, the session ends with that error.
pub async fn serve_stdio(backends: Arc<Backends>) -> Result<(), TransportError> {
    let calls = Calls::default();
    let (stdin, stdout) = rmcp::transport::stdio();
    let transport = CancelFirst::new(LineTransport::new(stdin, stdout), calls.clone(), backends.runner.clone());
    // The store opens (files checked, migrations, the first heartbeat) on a task of its own, in parallel
    // with the client's handshake: its synchronous parts must not hold up reading stdin.
    let starting = tokio::spawn({
        let backends = backends.clone();
        async move { backends.start().await.map_err(|error| error.to_string()) }
    });
    let served = BankguardServer::new(backends.clone(), calls).serve(transport).await;
    let started = starting.await.unwrap_or_else(|panicked| Err(format!("starting the store failed: {panicked}")));
    let result = match (started, served) {
        (Ok(()), Ok(service)) => service.waiting().await.map(|_| ()).map_err(|e| TransportError::Stdio(e.to_string())),
        (Err(error), served) => {
            if let Ok(service) = served {
                let _ = service.cancel().await;
            }
            Err(TransportError::Start(error))
        }
        (Ok(()), Err(e)) => Err(TransportError::Stdio(e.to_string())),
    };
    backends.shutdown().await;
    result
}

/// The HTTP application: `/mcp` behind its [`gate`] (and, with `mcp.auth = "oauth"`, behind
/// [`oauth::require_token`], with the resource's metadata beside it), the [`operations`] routes
/// outside both, and `/ciba/notify` in ping mode.
pub fn http_router(
    backends: Arc<Backends>,
    config: &McpConfig,
    protected: Option<Arc<ProtectedResource>>,
    sessions: Arc<LocalSessionManager>,
    stop: CancellationToken,
) -> Router {
    let settings = StreamableHttpServerConfig::default()
        .with_allowed_hosts(config.allowed_hosts.clone())
        .with_allowed_origins(config.allowed_origins.clone())
        .with_cancellation_token(stop);
    let gate = Arc::new(Gate::new(
        sessions.clone(),
        config.max_sessions,
        config.session_idle_seconds,
        settings.max_request_body_bytes,
    ));
    let pings = backends.ping_mode.then(|| backends.runner.clone());
    let operations = operations::routes(backends.clone());
    let factory_backends = backends.clone();
    let service = StreamableHttpService::new(
        move || Ok(BankguardServer::new(factory_backends.clone(), Calls::default())),
        sessions,
        settings,
    );
    let mut router = Router::new().nest_service(MCP_PATH, service).layer(from_fn_with_state(gate, gate::guard));
    if let Some(protected) = protected {
        router = router.layer(from_fn_with_state(protected.clone(), oauth::require_token));
        router = router.merge(protected.metadata_routes());
    }
    // Merged after the layers above, so neither a token nor the gate stands in front of them.
    let router = router.merge(operations);
    match pings {
        Some(pings) => router.route(NOTIFY_PATH, post(notify).with_state(pings)),
        None => router,
    }
}

/// CIBA Core §10.2: `Authorization: Bearer <client_notification_token>`, body `{"auth_req_id": …}`.
/// Any replica may receive it: the wait ends wherever it runs.
async fn notify(State(runner): State<Arc<Runner>>, headers: HeaderMap) -> StatusCode {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !token.is_empty() && runner.ping(token).await { StatusCode::NO_CONTENT } else { StatusCode::UNAUTHORIZED }
}

/// An MCP HTTP server running in the background.
pub struct RunningHttp {
    pub address: SocketAddr,
    backends: Arc<Backends>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningHttp {
    /// Serves on an already bound listener (so callers can learn the port first).
    pub async fn start(
        listener: TcpListener,
        backends: Arc<Backends>,
        config: &Config,
    ) -> Result<Self, TransportError> {
        let address = listener.local_addr().map_err(TransportError::Http)?;
        let mut sessions = LocalSessionManager::default();
        sessions.session_config.keep_alive = Some(Duration::from_secs(config.mcp.session_idle_seconds));
        let sessions = Arc::new(sessions);
        let protected = match config.mcp.auth {
            McpAuth::None if !address.ip().is_loopback() => return Err(TransportError::NoAuthBeyondLoopback(address)),
            McpAuth::None => None,
            McpAuth::Oauth => {
                let protected = ProtectedResource::new(config, address, sessions.clone())
                    .map_err(|e| TransportError::Start(e.to_string()))?;
                tracing::info!(resource = %protected.resource(), "MCP clients sign in (mcp.auth = \"oauth\")");
                let protected = Arc::new(protected);
                // In the background: an authorization server that is slow or down does not hold up the start,
                // and a request that comes meanwhile waits for this fetch instead of starting its own.
                tokio::spawn({
                    let protected = protected.clone();
                    async move { protected.prefetch_keys().await }
                });
                Some(protected)
            }
        };
        if !address.ip().is_loopback() {
            tracing::warn!(%address, "the MCP endpoint is listening beyond loopback");
        }
        backends.start().await.map_err(|e| TransportError::Start(e.to_string()))?;
        let stop = CancellationToken::new();
        let router = http_router(backends.clone(), &config.mcp, protected, sessions, stop.child_token());
        let shutdown = stop.clone();
        let task = tokio::spawn(async move {
            crate::http_server::serve(listener, router, async move { shutdown.cancelled().await }).await
        });
        Ok(Self { address, backends, stop, task })
    }

    /// Binds `serve --transport http`'s address (`mcp.listen`, or `--listen`).
    pub async fn bind(address: SocketAddr) -> Result<TcpListener, TransportError> {
        Ok(crate::http_server::bind(address, crate::http_server::ListenSetting::MCP_SERVE).await?)
    }

    pub fn url(&self) -> String {
        format!("http://{}{MCP_PATH}", self.address)
    }

    /// Stops accepting requests and ends open sessions while handing the open intents back at once
    /// (another replica takes them without waiting for this one's heartbeat to go stale), then
    /// closes the store.
    pub async fn shutdown(self) -> Result<(), TransportError> {
        self.stop.cancel();
        let drained = async {
            match tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await {
                Ok(Ok(result)) => result.map_err(TransportError::Http),
                _ => Ok(()),
            }
        };
        let (served, ()) = tokio::join!(drained, self.backends.hand_back());
        self.backends.store().close().await;
        served
    }
}
