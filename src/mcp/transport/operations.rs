//! The routes operators and orchestrators probe, beside `/mcp` on the same listener: `GET /healthz`,
//! `GET /readyz` and `GET /metrics`; and the server's public signing key
//! (`GET /.well-known/bankguard-keys.json`), which anyone checking a transfer receipt needs.
//!
//! They sit outside the token check and the `Host`/`Origin` gate (a load balancer or Prometheus
//! sends neither a holder's token nor a browser's headers), so they tell nothing about anyone: no
//! holder, account, amount or intent, no database location and no error text that could hold one.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::mcp::Backends;
use crate::mcp::lifecycle::StoreError;
use crate::mcp::metrics;
use crate::mcp::server_key::JWKS_PATH;

pub const HEALTH_PATH: &str = "/healthz";
pub const READY_PATH: &str = "/readyz";
pub const METRICS_PATH: &str = "/metrics";

/// The four routes, each answering only `GET` (and `HEAD`).
pub fn routes(backends: Arc<Backends>) -> Router {
    Router::new()
        .route(HEALTH_PATH, get(health))
        .route(READY_PATH, get(ready))
        .route(METRICS_PATH, get(scrape))
        .route(JWKS_PATH, get(server_keys))
        .with_state(backends)
}

/// This server's public key as a JWK set: what checks its receipts and signed audit heads.
async fn server_keys(State(backends): State<Arc<Backends>>) -> Response {
    match backends.store().server_key() {
        Some(key) => {
            let body = serde_json::to_string(&key.trusted().jwk_set()).expect("a JWK set serialises");
            ([(header::CONTENT_TYPE, "application/jwk-set+json")], body).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Alive: the process answers. Touches nothing else, so a slow store never gets it restarted.
async fn health() -> &'static str {
    "ok\n"
}

/// Ready for traffic: the intent store opens (this process's heartbeat written, its runner
/// started) and holds every migration this build needs. Otherwise 503 and why, in one sentence.
async fn ready(State(backends): State<Arc<Backends>>) -> Response {
    let checked = match backends.start().await {
        Ok(()) => backends.store().check_ready().await,
        Err(error) => Err(error),
    };
    match checked {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(error) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", unready_reason(&error))).into_response()
        }
    }
}

/// The reason `/readyz` gives. A migration gap is said as it is (two version numbers); any other
/// failure may carry a path or a connection string in its text, so that goes to the log only.
fn unready_reason(error: &StoreError) -> String {
    match error {
        // Its message says how to fix it, and holds no connection detail.
        not_migrated @ StoreError::NotMigrated { .. } => not_migrated.to_string(),
        other => {
            tracing::warn!(error = %other, "readiness check: the transfer intent store cannot be read");
            "the transfer intent store cannot be read".to_owned()
        }
    }
}

/// The Prometheus text exposition. A store that cannot be read costs the open-intent gauges of
/// this scrape, not the counters.
async fn scrape(State(backends): State<Arc<Backends>>) -> Response {
    let open = match backends.store().open_counts().await {
        Ok(open) => Some(open),
        Err(error) => {
            tracing::warn!(%error, "metrics: cannot count the open transfer intents; reporting without them");
            None
        }
    };
    match backends.metrics.encode(open.as_deref()) {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::warn!(%error, "metrics: cannot encode");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
