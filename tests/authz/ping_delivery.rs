//! CIBA Core §10.2: ping clients are told when the outcome is known (approved, denied or expired),
//! with their bearer token, and the ping is retried when the receiver fails.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::support::dev::{ClientAuth, Dev, PING_CLIENT, ping_client};

#[derive(Default)]
struct Received {
    pings: Vec<(String, Value)>,
    /// Refuse this many deliveries first, to exercise retries.
    fail_first: usize,
    attempts: usize,
}

/// A loopback notification endpoint that records what it receives.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received { fail_first, ..Received::default() }));
    async fn notify(State(received): State<Arc<Mutex<Received>>>, headers: HeaderMap, body: String) -> StatusCode {
        let mut received = received.lock().unwrap();
        received.attempts += 1;
        if received.attempts <= received.fail_first {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        received.pings.push((auth, serde_json::from_str(&body).unwrap_or(Value::Null)));
        StatusCode::NO_CONTENT
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ciba/notify", listener.local_addr().unwrap());
    let router = axum::Router::new().route("/ciba/notify", axum::routing::post(notify)).with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, received)
}

fn ping_auth() -> ClientAuth {
    ClientAuth::Basic(PING_CLIENT.0.into(), PING_CLIENT.1.into())
}

async fn request(dev: &Dev, notification_token: &str, expiry: &str) -> String {
    let reply = dev
        .bc_authorize(
            &ping_auth(),
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("binding_message", "Ping me #P1"),
                ("client_notification_token", notification_token),
                ("requested_expiry", expiry),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["auth_req_id"].as_str().unwrap().to_owned()
}

async fn wait_for_pings(received: &Mutex<Received>, count: usize) -> Vec<(String, Value)> {
    for _ in 0..100 {
        if received.lock().unwrap().pings.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    received.lock().unwrap().pings.clone()
}

async fn token(dev: &Dev, auth_req_id: &str) -> crate::support::Reply {
    dev.token(&ping_auth(), &[("grant_type", "urn:openid:params:grant-type:ciba"), ("auth_req_id", auth_req_id)]).await
}

#[tokio::test]
async fn an_approval_is_pinged_with_the_clients_bearer_token_and_then_redeemed() {
    let (url, received) = receiver(0).await;
    let dev = Dev::start_with(|config| config.authz.clients.push(ping_client(&url))).await;
    let auth_req_id = request(&dev, "notify-token-ABC.123", "300").await;

    dev.approve(&auth_req_id).await;
    let pings = wait_for_pings(&received, 1).await;

    assert_eq!(pings.len(), 1, "one ping");
    assert_eq!(pings[0].0, "Bearer notify-token-ABC.123");
    assert_eq!(pings[0].1, serde_json::json!({"auth_req_id": auth_req_id}));
    let reply = token(&dev, &auth_req_id).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn denial_and_expiry_are_pinged_too() {
    let (url, received) = receiver(0).await;
    let dev = Dev::start_with(|config| config.authz.clients.push(ping_client(&url))).await;
    let denied = request(&dev, "token-denied", "300").await;
    let expiring = request(&dev, "token-expiring", "1").await;

    dev.deny(&denied).await;
    let pings = wait_for_pings(&received, 2).await;

    let by_token =
        |token: &str| pings.iter().find(|(auth, _)| auth == &format!("Bearer {token}")).map(|(_, b)| b.clone());
    assert_eq!(by_token("token-denied"), Some(serde_json::json!({"auth_req_id": denied})));
    assert_eq!(by_token("token-expiring"), Some(serde_json::json!({"auth_req_id": expiring})));
    assert_eq!(token(&dev, &denied).await.body["error"], "access_denied");
    assert_eq!(token(&dev, &expiring).await.body["error"], "expired_token");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(received.lock().unwrap().pings.len(), 2, "each outcome is pinged once");
}

#[tokio::test]
async fn a_failing_receiver_gets_bounded_retries() {
    let (url, received) = receiver(2).await;
    let dev = Dev::start_with(|config| config.authz.clients.push(ping_client(&url))).await;
    let auth_req_id = request(&dev, "retry-token", "300").await;

    dev.approve(&auth_req_id).await;
    let pings = wait_for_pings(&received, 1).await;

    assert_eq!(pings.len(), 1, "delivered on the third attempt");
    assert_eq!(received.lock().unwrap().attempts, 3);

    // A receiver that never accepts is tried a bounded number of times.
    let (url, received) = receiver(usize::MAX).await;
    let dev = Dev::start_with(|config| config.authz.clients.push(ping_client(&url))).await;
    let auth_req_id = request(&dev, "never-token", "300").await;
    dev.approve(&auth_req_id).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(received.lock().unwrap().attempts, 4, "four attempts, then it gives up");
    assert_eq!(token(&dev, &auth_req_id).await.status, 200, "polling still works");
}
