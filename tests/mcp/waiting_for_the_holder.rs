//! The wait itself: progress while the holder decides, the provider's `slow_down`, and ping.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::dev::{PING_CLIENT, ping_client};
use crate::support::fault_proxy::FaultProxy;
use crate::support::mcp::{McpStack, call, is_error, text};

fn transfer_args() -> serde_json::Value {
    json!({"from_account_id": "acc_alice_sav", "to_account_id": "acc_alice_chk", "amount": "100"})
}

#[tokio::test]
async fn progress_arrives_at_least_every_few_seconds_while_the_holder_decides() {
    let stack = McpStack::start().await; // progress every 5 s
    let (client, recorder) = stack.http_client().await;
    let holder = stack.decide_next("approve", Duration::from_secs(12));

    let started = Instant::now();
    let result = call(&client, "transfer_funds", transfer_args()).await;

    holder.await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(12));
    assert!(!is_error(&result), "{}", text(&result));
    let progress = recorder.progress.lock().unwrap().clone();
    assert!(progress.len() >= 3, "one on request, then every 5 s: {progress:?}");
    assert!(progress.windows(2).all(|w| w[1].progress > w[0].progress), "progress increases: {progress:?}");
    assert!(progress.iter().all(|p| p.total == Some(300.0)), "total is the approval lifetime");
    let reference = result.structured_content.unwrap()["reference"].as_str().unwrap().to_owned();
    assert!(
        progress[1]
            .message
            .as_deref()
            .unwrap()
            .starts_with(&format!("Waiting for approval on your device — Reference {reference}, 4:"))
    );
}

/// A pass-through in front of the provider's endpoints that records token requests and shortens the
/// announced interval, so the client polls too fast and the real provider answers `slow_down`.
async fn impatient_proxy(provider: String, polls: Arc<Mutex<Vec<Instant>>>) -> String {
    use axum::extract::State;
    use axum::http::HeaderMap;
    #[derive(Clone)]
    struct Proxy {
        provider: String,
        http: reqwest::Client,
        polls: Arc<Mutex<Vec<Instant>>>,
    }
    async fn forward(
        State(proxy): State<Proxy>,
        uri: axum::http::Uri,
        headers: HeaderMap,
        body: String,
    ) -> axum::response::Response {
        let path = uri.path().to_owned();
        if path == "/oauth/token" && body.contains("grant-type%3Aciba") {
            proxy.polls.lock().unwrap().push(Instant::now());
        }
        let mut request = proxy.http.post(format!("{}{path}", proxy.provider)).body(body);
        for name in ["authorization", "content-type"] {
            if let Some(value) = headers.get(name) {
                request = request.header(name, value);
            }
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let retry_after = response.headers().get("retry-after").cloned();
        let mut json: serde_json::Value = response.json().await.unwrap();
        if path == "/bc-authorize" && json.get("interval").is_some() {
            json["interval"] = json!(1);
        }
        let mut reply = (status, axum::Json(json)).into_response();
        if let Some(value) = retry_after {
            reply.headers_mut().insert("retry-after", value);
        }
        reply
    }
    use axum::response::IntoResponse;
    let proxy = Proxy { provider, http: bankguard::http_client::builder().build().unwrap(), polls };
    let router = axum::Router::new().fallback(axum::routing::post(forward)).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test]
async fn after_slow_down_the_server_never_polls_faster_than_allowed() {
    let polls = Arc::new(Mutex::new(Vec::new()));
    let mut stack = McpStack::start_with(|config, _| config.authz.poll_interval_seconds = 2).await;
    let proxy = impatient_proxy(stack.dev.issuer().to_owned(), polls.clone()).await;
    // The MCP server's endpoints go through the proxy (the issuer stays the provider's).
    stack
        .reconfigure_server(|config| {
            config.mcp.backchannel_authentication_endpoint = Some(format!("{proxy}/bc-authorize"));
            config.mcp.token_endpoint = Some(format!("{proxy}/oauth/token"));
        })
        .await;
    let (client, _) = stack.http_client().await;
    let holder = stack.decide_next("approve", Duration::from_secs(13));

    let result = call(&client, "transfer_funds", transfer_args()).await;

    holder.await.unwrap();
    assert!(!is_error(&result), "{}", text(&result));
    let polls = polls.lock().unwrap().clone();
    let gaps: Vec<f64> = polls.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    // Polls 1 and 2 come 1 s apart (the shortened interval): the provider answers slow_down with
    // interval 2 + 5 = 7 s. From then on the server waits at least 7 s between polls.
    assert!(gaps.len() >= 2, "polls at {gaps:?}");
    assert!(gaps[0] < 2.0, "the first gap used the announced interval: {gaps:?}");
    assert!(gaps[1..].iter().all(|gap| *gap >= 6.9), "never faster than the grown interval: {gaps:?}");
}

#[tokio::test]
async fn a_ping_ends_the_wait_long_before_the_next_poll() {
    let stack = McpStack::start_with(|config, mcp_address| {
        config.authz.poll_interval_seconds = 30;
        config.authz.clients.push(ping_client(&format!("http://{mcp_address}/ciba/notify")));
        config.mcp.client_id = PING_CLIENT.0.into();
        config.mcp.client_secret = Some(PING_CLIENT.1.into());
        config.mcp.delivery_mode = bankguard::config::DeliveryMode::Ping;
        // The bank accepts only the clients it is told of; this MCP server is the ping client.
        config.bank_api.accepted_client_ids.push(PING_CLIENT.0.into());
    })
    .await;
    let (client, _) = stack.http_client().await;
    let holder = stack.decide_next("approve", Duration::from_millis(500));

    let started = Instant::now();
    let result = call(&client, "transfer_funds", transfer_args()).await;

    holder.await.unwrap();
    assert!(!is_error(&result), "{}", text(&result));
    assert!(started.elapsed() < Duration::from_secs(5), "done in {:?}, the next poll was 30 s away", started.elapsed());
}

#[tokio::test]
async fn in_ping_mode_the_token_endpoint_is_called_once_when_the_ping_arrives_not_at_the_interval() {
    // The provider's port is chosen first so a counting proxy can stand in front of it.
    let provider_address = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let proxy = FaultProxy::start(&format!("http://{provider_address}")).await;
    let stack = McpStack::start_with(|config, mcp_address| {
        config.authz.listen = provider_address;
        config.authz.poll_interval_seconds = 1;
        config.authz.clients.push(ping_client(&format!("http://{mcp_address}/ciba/notify")));
        config.mcp.client_id = PING_CLIENT.0.into();
        config.mcp.client_secret = Some(PING_CLIENT.1.into());
        config.mcp.delivery_mode = bankguard::config::DeliveryMode::Ping;
        config.mcp.backchannel_authentication_endpoint =
            Some(proxy.via(&format!("http://{provider_address}/bc-authorize")));
        config.mcp.token_endpoint = Some(proxy.via(&format!("http://{provider_address}/oauth/token")));
        config.bank_api.accepted_client_ids.push(PING_CLIENT.0.into());
    })
    .await;
    let (client, _) = stack.http_client().await;
    let calls_before = std::sync::Arc::new(std::sync::Mutex::new(0));
    let holder = {
        let device = stack.dev.device();
        let calls_before = calls_before.clone();
        let proxy_seen = || proxy.seen("/oauth/token");
        let seen_at_request = async move {
            let request = loop {
                if let Some(request) = device.pending(None).await.unwrap().into_iter().next() {
                    break request;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            (device, request)
        };
        async move {
            let (device, request) = seen_at_request.await;
            *calls_before.lock().unwrap() = proxy_seen();
            // The holder takes 4 s: four intervals of the provider's 1 s.
            tokio::time::sleep(Duration::from_secs(4)).await;
            device.decide(None, Some(&request.auth_req_id), "approve").await.unwrap();
        }
    };

    let (result, ()) = tokio::join!(call(&client, "transfer_funds", transfer_args()), holder);

    assert!(!is_error(&result), "{}", text(&result));
    let calls = proxy.seen("/oauth/token") - *calls_before.lock().unwrap();
    assert_eq!(calls, 1, "token-endpoint calls for one approval in ping mode: {:?}", proxy.log());
}
