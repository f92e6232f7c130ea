//! The fault proxy against a tiny real upstream that counts what reaches it: what passes is
//! untouched, each fault is one the client's real HTTP stack feels, and the upstream's count tells
//! whether the request got through.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

use bankguard::http_client::reason;

use crate::support::fault_proxy::{Fault, FaultProxy, Rule, Times};

const PATIENCE: Duration = Duration::from_secs(5);

/// Answers every request with 201 and a JSON echo of what it received, counting them.
struct Upstream {
    url: String,
    authority: String,
    reached: Arc<AtomicUsize>,
}

impl Upstream {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let reached = Arc::new(AtomicUsize::new(0));
        let router = axum::Router::new().fallback(echo).with_state(reached.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url: format!("http://{authority}"), authority, reached }
    }

    fn reached(&self) -> usize {
        self.reached.load(Ordering::SeqCst)
    }
}

async fn echo(
    State(reached): State<Arc<AtomicUsize>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, [(&'static str, String); 1], Json<Value>) {
    let count = reached.fetch_add(1, Ordering::SeqCst) + 1;
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let echo = json!({
        "method": method.as_str(), "uri": uri.to_string(), "host": header("host"),
        "connection": header("connection"), "body": body,
    });
    (StatusCode::CREATED, [("x-upstream-count", count.to_string())], Json(echo))
}

async fn proxied() -> (Upstream, FaultProxy, reqwest::Client) {
    let upstream = Upstream::start().await;
    let proxy = FaultProxy::start(&upstream.url).await;
    (upstream, proxy, bankguard::http_client::builder().build().unwrap())
}

fn transfers(proxy: &FaultProxy) -> String {
    format!("{}/api/transfers", proxy.url())
}

#[tokio::test]
async fn unmatched_requests_pass_through_untouched() {
    let (upstream, proxy, http) = proxied().await;

    let json = http
        .post(proxy.via(&format!("{}/api/transfers?dry_run=1", upstream.url)))
        .json(&json!({"amount": "1.00"}))
        .send()
        .await
        .unwrap();
    let form = http.post(format!("{}/token", proxy.url())).form(&[("grant_type", "client_credentials")]).send();
    let form = form.await.unwrap();

    assert_eq!(json.status(), 201);
    assert_eq!(json.headers()["x-upstream-count"], "1");
    assert_eq!(json.headers()["content-type"], "application/json");
    assert_eq!(json.headers()["connection"], "close");
    assert_eq!(
        json.json::<Value>().await.unwrap(),
        json!({"method": "POST", "uri": "/api/transfers?dry_run=1", "host": upstream.authority,
               "connection": "close", "body": r#"{"amount":"1.00"}"#})
    );
    assert_eq!(form.status(), 201, "the same client again, on a fresh connection");
    assert_eq!(form.json::<Value>().await.unwrap()["body"], "grant_type=client_credentials");
    assert_eq!(upstream.reached(), 2);
    assert_eq!((proxy.seen("/api"), proxy.forwarded("/api"), proxy.seen("/")), (1, 1, 2));
    assert_eq!(proxy.log(), ["POST /api/transfers -> passed", "POST /token -> passed"]);
}

#[tokio::test]
async fn respond_without_forwarding_answers_in_place_of_an_upstream_that_never_hears_of_it() {
    let (upstream, proxy, http) = proxied().await;
    proxy.inject(Rule::on("POST", "/token").once(Fault::oauth_error(400, "slow_down")));

    let response = http.post(format!("{}/token", proxy.url())).form(&[("auth_req_id", "r1")]).send().await.unwrap();

    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"error": "slow_down"}));
    assert_eq!(upstream.reached(), 0);
    assert_eq!((proxy.seen("/token"), proxy.forwarded("/token")), (1, 0));
}

#[tokio::test]
async fn reset_without_forwarding_is_a_connection_error_for_a_request_the_upstream_never_saw() {
    let (upstream, proxy, http) = proxied().await;
    proxy.inject(Rule::on("POST", "/api/transfers").once(Fault::ResetWithoutForwarding));

    let error = http.post(transfers(&proxy)).json(&json!({})).send().await.unwrap_err();

    assert!(reason(&error).contains("Connection reset by peer"), "{}", reason(&error));
    assert_eq!(upstream.reached(), 0);
    assert_eq!(proxy.log(), ["POST /api/transfers -> ResetWithoutForwarding"]);
}

#[tokio::test]
async fn forward_then_respond_lets_the_upstream_commit_but_answers_with_the_fault() {
    let (upstream, proxy, http) = proxied().await;
    let fault = Fault::ForwardThenRespond { status: 502, body: "gateway".into(), content_type: "text/plain" };
    proxy.inject(Rule::on("POST", "/api/transfers").once(fault));

    let response = http.post(transfers(&proxy)).json(&json!({})).send().await.unwrap();

    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.text().await.unwrap(), "gateway");
    assert_eq!(upstream.reached(), 1);
    assert_eq!(proxy.forwarded("/api/transfers"), 1);
}

#[tokio::test]
async fn forward_then_reset_lets_the_upstream_commit_but_the_client_sees_a_reset() {
    let (upstream, proxy, http) = proxied().await;
    proxy.inject(Rule::on("POST", "/api/transfers").once(Fault::ForwardThenReset));

    let error = http.post(transfers(&proxy)).json(&json!({})).send().await.unwrap_err();

    assert!(reason(&error).contains("Connection reset by peer"), "{}", reason(&error));
    assert_eq!(upstream.reached(), 1);
    assert_eq!(proxy.forwarded("/api/transfers"), 1);
    assert_eq!(proxy.log(), ["POST /api/transfers -> ForwardThenReset"]);
}

#[tokio::test]
async fn forward_then_truncate_sends_the_real_head_and_only_part_of_the_body() {
    let (upstream, proxy, http) = proxied().await;
    proxy.inject(Rule::on("POST", "/api/transfers").once(Fault::ForwardThenTruncate { keep_body_bytes: 10 }));

    let response = http.post(transfers(&proxy)).json(&json!({"memo": "x".repeat(500)})).send().await.unwrap();

    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-upstream-count"], "1");
    assert!(response.content_length().unwrap() > 500, "the real Content-Length");
    let error = response.bytes().await.unwrap_err();
    assert!(reason(&error).contains("end of file before message length reached"), "{}", reason(&error));
    assert_eq!(upstream.reached(), 1);
}

#[tokio::test]
async fn forward_then_delay_answers_for_real_but_late() {
    let (upstream, proxy, http) = proxied().await;
    let delay = Duration::from_millis(300);
    proxy.inject(Rule::on("POST", "/api/transfers").once(Fault::ForwardThenDelay(delay)));

    let started = Instant::now();
    let response = http.post(transfers(&proxy)).json(&json!({})).send().await.unwrap();

    assert!(started.elapsed() >= delay, "answered after {:?}", started.elapsed());
    assert_eq!(response.status(), 201);
    assert_eq!(upstream.reached(), 1);
}

#[tokio::test]
async fn hang_holds_the_request_unanswered_until_the_client_gives_up() {
    let (upstream, proxy, _) = proxied().await;
    let impatient = bankguard::http_client::builder().timeout(Duration::from_millis(200)).build().unwrap();
    proxy.inject(Rule::on("POST", "/api/transfers").once(Fault::Hang));

    let error = impatient.post(transfers(&proxy)).json(&json!({})).send().await.unwrap_err();

    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(upstream.reached(), 0);
    assert_eq!((proxy.seen("/api/transfers"), proxy.forwarded("/api/transfers")), (1, 0));
}

#[tokio::test]
async fn dropping_the_proxy_drops_hung_connections() {
    let (_upstream, proxy, http) = proxied().await;
    proxy.inject(Rule::on_any_method("/").always(Fault::Hang));
    let pending = tokio::spawn(http.get(transfers(&proxy)).send());
    assert!(proxy.wait_for("/api/transfers", 1, PATIENCE).await);

    drop(proxy);

    let error = pending.await.unwrap().unwrap_err();
    assert!(reason(&error).contains("connection closed before message completed"), "{}", reason(&error));
}

#[tokio::test]
async fn a_once_rule_faults_the_first_matching_request_then_lets_the_next_pass() {
    let (upstream, proxy, http) = proxied().await;
    proxy.inject(Rule::on("POST", "/api/transfers").once(Fault::status(503, json!({"code": "unavailable"}))));

    let other_method = http.get(transfers(&proxy)).send().await.unwrap();
    let first = http.post(transfers(&proxy)).json(&json!({})).send().await.unwrap();
    let second = http.post(transfers(&proxy)).json(&json!({})).send().await.unwrap();

    let statuses = [&other_method, &first, &second].map(|response| response.status().as_u16());
    assert_eq!(statuses, [201, 503, 201]);
    assert_eq!(first.json::<Value>().await.unwrap(), json!({"code": "unavailable"}));
    assert_eq!(upstream.reached(), 2);
    assert_eq!(
        proxy.log(),
        [
            "GET /api/transfers -> passed",
            "POST /api/transfers -> RespondWithoutForwarding",
            "POST /api/transfers -> passed"
        ]
    );
}

#[tokio::test]
async fn the_first_live_rule_applies_until_spent_and_clear_removes_them_all() {
    let (upstream, proxy, http) = proxied().await;
    proxy.inject(Rule::on_any_method("/api").times(Times::N(2), Fault::status(500, "{}")));
    proxy.inject(Rule::on_any_method("/api").always(Fault::status(429, "{}")));

    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(http.get(transfers(&proxy)).send().await.unwrap().status().as_u16());
    }
    proxy.clear();
    statuses.push(http.get(transfers(&proxy)).send().await.unwrap().status().as_u16());

    assert_eq!(statuses, [500, 500, 429, 429, 201]);
    assert_eq!(upstream.reached(), 1);
}

#[tokio::test]
async fn wait_for_wakes_when_the_request_arrives_not_when_it_is_answered() {
    let (_upstream, proxy, http) = proxied().await;
    proxy.inject(Rule::on("POST", "/api/transfers").once(Fault::Hang));

    let pending = tokio::spawn(http.post(transfers(&proxy)).json(&json!({})).send());

    assert!(proxy.wait_for("/api/transfers", 1, PATIENCE).await);
    assert!(!pending.is_finished(), "still hanging");
    assert!(!proxy.wait_for("/api/transfers", 2, Duration::from_millis(50)).await, "only one was sent");
    pending.abort();
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_bad_gateway() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let proxy = FaultProxy::start(&url).await;

    let response = bankguard::http_client::builder().build().unwrap().get(proxy.url()).send().await.unwrap();

    assert_eq!(response.status(), 502);
    assert_eq!((proxy.seen("/"), proxy.forwarded("/")), (1, 0));
}

#[tokio::test]
async fn via_routes_an_upstream_url_through_the_proxy_keeping_its_path() {
    let (upstream, proxy, _) = proxied().await;

    assert_eq!(proxy.via(&upstream.url), proxy.url());
    assert_eq!(proxy.via(&format!("{}/api", upstream.url)), format!("{}/api", proxy.url()));
    assert_eq!(proxy.via(&format!("{}/api/transfers?x=1", upstream.url)), format!("{}/api/transfers?x=1", proxy.url()));
}

#[tokio::test]
async fn a_proxy_keeping_connections_carries_a_pooled_clients_requests_on_one_connection_until_a_fault() {
    let upstream = Upstream::start().await;
    let (closing, keeping) =
        (FaultProxy::start(&upstream.url).await, FaultProxy::start_keeping_connections(&upstream.url).await);
    let http = bankguard::http_client::builder().build().unwrap();

    for proxy in [&closing, &keeping] {
        for n in 0..5 {
            let response = http.post(transfers(proxy)).body(format!("request {n}")).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            assert_eq!(response.json::<Value>().await.unwrap()["body"], format!("request {n}"));
        }
    }
    assert_eq!(closing.connections(), 5, "one exchange per connection");
    assert_eq!(keeping.connections(), 1, "the pooled connection carried all five");
    assert_eq!(keeping.seen("/api/transfers"), 5, "each request is still seen");

    keeping.inject(Rule::on("POST", "/api/transfers").once(Fault::ForwardThenReset));
    assert!(http.post(transfers(&keeping)).send().await.is_err(), "the fault is felt");
    let after = http.post(transfers(&keeping)).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::CREATED);
    assert_eq!(keeping.connections(), 2, "a faulted exchange ends its connection");
}
