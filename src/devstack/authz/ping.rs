//! Ping delivery (CIBA Core §10.2): when a ping client's request is approved, denied or expires, the
//! server POSTs `{"auth_req_id": …}` to the client's notification endpoint with
//! `Authorization: Bearer <client_notification_token>`, retrying a few times with backoff.
//!
//! One background loop owns this and the expiry of pending requests. It wakes every second, and at
//! once when a decision is made. Outcomes are claimed in the database before delivery, so each is
//! announced once, including ones decided before a restart.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::AuthzState;
use super::store::{BackchannelRequest, now_ms};

/// Delivery attempts per ping, and the pause before the first retry (doubling after each).
const ATTEMPTS: u32 = 4;
const FIRST_RETRY_AFTER: Duration = Duration::from_millis(250);
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub async fn run(state: Arc<AuthzState>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(SWEEP_EVERY) => {}
            () = state.outcomes.notified() => {}
        }
        if let Err(error) = state.store.expire_due(now_ms() / 1000).await {
            tracing::warn!(%error, "could not expire due requests");
        }
        match state.store.claim_unannounced().await {
            Ok(outcomes) => {
                for request in outcomes {
                    tokio::spawn(deliver(state.clone(), request));
                }
            }
            Err(error) => tracing::warn!(%error, "could not read outcomes to announce"),
        }
    }
}

async fn deliver(state: Arc<AuthzState>, request: BackchannelRequest) {
    let Some(client) = state.clients.get(&request.client_id) else { return };
    let (Some(endpoint), Some(token)) = (&client.notification_endpoint, &request.client_notification_token) else {
        return;
    };
    let body = json!({ "auth_req_id": request.auth_req_id });
    let mut pause = FIRST_RETRY_AFTER;
    for attempt in 1..=ATTEMPTS {
        match state.http.post(endpoint).bearer_auth(token).json(&body).send().await {
            Ok(response) if response.status().is_success() => {
                tracing::info!(client = %client.id, status = ?request.status, "ping delivered");
                return;
            }
            Ok(response) => tracing::warn!(client = %client.id, attempt, status = %response.status(), "ping refused"),
            Err(error) => tracing::warn!(client = %client.id, attempt, %error, "ping failed"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
    tracing::warn!(client = %client.id, "gave up delivering a ping; the client can still poll");
}
