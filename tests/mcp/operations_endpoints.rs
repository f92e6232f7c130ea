//! What an operator's probes and Prometheus see on the MCP server's listener: `/healthz` while the
//! process answers, `/readyz` while the intent store is readable and fully migrated, and `/metrics`
//! counting approvals, decisions and transfers without naming anyone. None of them asks for a token.
//!
//! The faults are real: a second connection to the server's own store file removes a migration's
//! record or hides a table, as a half-finished migration or a damaged database would.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bankguard::config::McpAuth;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnectOptions;

use crate::support::TestIssuer;
use crate::support::mcp::{McpStack, call, is_error, text};

const REQUESTS: &str = "bankguard_approval_requests_total";
const DECISIONS: &str = "bankguard_approval_decisions_total";
const DECISION_SECONDS_COUNT: &str = "bankguard_approval_decision_seconds_count";
const EXECUTED: &str = "bankguard_transfers_executed_total";
const CANCELLED: &str = "bankguard_transfers_cancelled_total";
const BANK_CALLS_COUNT: &str = "bankguard_bank_call_seconds_count";
const OPEN: &str = "bankguard_open_intents";

fn transfer_args(amount: &str) -> serde_json::Value {
    json!({"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": amount, "memo": "Rent"})
}

/// `GET path` on the MCP server's listener, with `headers` and no token: the status and the body.
async fn get(stack: &McpStack, path: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().get(format!("http://{}{path}", stack.server.address));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// One sample of the exposition: `name{label="value",…} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape of `/metrics`, parsed line by line.
struct Exposition {
    text: String,
    samples: Vec<Sample>,
}

impl Exposition {
    fn parse(text: String) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value in {line:?}"));
                let (name, labels) = match series.split_once('{') {
                    Some((name, labels)) => (name, parse_labels(labels.strip_suffix('}').expect("closing brace"))),
                    None => (series, BTreeMap::new()),
                };
                let value = value.parse().unwrap_or_else(|_| panic!("not a number in {line:?}"));
                Sample { name: name.to_owned(), labels, value }
            })
            .collect();
        Self { text, samples }
    }

    /// The value of the one sample named `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let found: Vec<&Sample> = self.samples.iter().filter(|s| s.name == name && s.labels == wanted).collect();
        assert_eq!(found.len(), 1, "{name}{labels:?} should be there once in:\n{}", self.text);
        found[0].value
    }

    /// The sum over every sample named `name`, whatever its labels.
    fn total(&self, name: &str) -> f64 {
        self.samples.iter().filter(|s| s.name == name).map(|s| s.value).sum()
    }
}

/// `key="value",…`, with the format's escapes (`\\`, `\"`, `\n`).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("no label value in {text:?}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, escaped)) => value.push(escaped),
                    None => panic!("dangling escape in {text:?}"),
                },
                Some((at, '"')) => break at,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {text:?}"),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..].strip_prefix(',').unwrap_or(&after[end + 1..]);
    }
    labels
}

async fn scrape(stack: &McpStack) -> Exposition {
    let (status, body) = get(stack, "/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Exposition::parse(body)
}

/// Scrapes until `settled` holds (the runner counts a move just after the store signals it, so a
/// tool result can arrive a moment before the count), for at most ten seconds.
async fn scrape_until(stack: &McpStack, settled: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = scrape(stack).await;
        if settled(&metrics) {
            return metrics;
        }
        assert!(Instant::now() < deadline, "the metrics never settled:\n{}", metrics.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server on SQLite whatever store this run uses: the faults below are made in its file.
async fn on_sqlite() -> McpStack {
    McpStack::start_with(|config, _| {
        config.mcp.store_url = None;
        config.mcp.store_password = None;
    })
    .await
}

/// A second connection to the MCP server's own intent store (SQLite).
async fn intent_store(stack: &McpStack) -> SqlitePool {
    let options = SqliteConnectOptions::new().filename(stack.dev.data_path("mcp.sqlite"));
    SqlitePool::connect_with(options).await.unwrap()
}

#[tokio::test]
async fn a_running_server_is_alive_and_ready_and_the_probes_answer_only_get() {
    let stack = McpStack::start().await;

    assert_eq!(get(&stack, "/healthz", &[]).await, (StatusCode::OK, "ok\n".to_owned()));
    assert_eq!(get(&stack, "/readyz", &[]).await, (StatusCode::OK, "ready\n".to_owned()));
    let posted = reqwest::Client::new().post(format!("http://{}/healthz", stack.server.address)).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn where_holders_sign_in_the_probes_and_metrics_still_need_no_token() {
    let issuer = TestIssuer::start().await;
    let issuer_url = issuer.url.clone();
    let stack = McpStack::start_with(|config, _| {
        config.mcp.auth = McpAuth::Oauth;
        config.mcp.oauth.issuer = Some(issuer_url);
    })
    .await;

    let mcp = reqwest::Client::new()
        .post(stack.url())
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), StatusCode::UNAUTHORIZED, "the MCP endpoint itself still wants a token");

    // A monitoring system names the server by its own host name; the MCP endpoint's gate is not in front.
    let monitor = [("host", "bankguard.monitoring.internal")];
    for headers in [&[][..], &monitor[..]] {
        assert_eq!(get(&stack, "/healthz", headers).await, (StatusCode::OK, "ok\n".to_owned()));
        assert_eq!(get(&stack, "/readyz", headers).await, (StatusCode::OK, "ready\n".to_owned()));
        let (status, body) = get(&stack, "/metrics", headers).await;
        assert_eq!(status, StatusCode::OK);
        let metrics = Exposition::parse(body);
        assert_eq!(metrics.value(REQUESTS, &[]), 0.0);
        assert_eq!(metrics.value(OPEN, &[("status", "pending")]), 0.0);
    }
}

#[tokio::test]
async fn readiness_fails_with_the_reason_while_a_migration_is_missing_or_the_store_cannot_be_read() {
    let stack = on_sqlite().await;
    let store = intent_store(&stack).await;
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version DESC LIMIT 2")
        .fetch_all(&store)
        .await
        .unwrap();
    let (latest, previous) = (versions[0], versions[1]);

    // The last migration's record disappears, as if it had never been applied.
    sqlx::query("CREATE TABLE parked_migration AS SELECT * FROM _sqlx_migrations WHERE version = ?")
        .bind(latest)
        .execute(&store)
        .await
        .unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = ?").bind(latest).execute(&store).await.unwrap();

    let expected = format!(
        "not ready: the transfer intent store is at migration {previous}, and this build needs {latest}: run `bankguard migrate`\n"
    );
    assert_eq!(get(&stack, "/readyz", &[]).await, (StatusCode::SERVICE_UNAVAILABLE, expected));
    assert_eq!(get(&stack, "/healthz", &[]).await.0, StatusCode::OK, "alive all the same: a restart would not help");

    sqlx::query("INSERT INTO _sqlx_migrations SELECT * FROM parked_migration").execute(&store).await.unwrap();
    sqlx::query("DROP TABLE parked_migration").execute(&store).await.unwrap();
    assert_eq!(get(&stack, "/readyz", &[]).await.0, StatusCode::OK);

    // The migrations' table cannot be read at all: the database's own words stay in the log.
    sqlx::query("ALTER TABLE _sqlx_migrations RENAME TO parked_migrations").execute(&store).await.unwrap();

    let (status, body) = get(&stack, "/readyz", &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "not ready: the transfer intent store cannot be read\n");
    let data_dir = stack.dev.data_dir.path().display().to_string();
    for detail in [data_dir.as_str(), "mcp.sqlite", "_sqlx_migrations", "no such table"] {
        assert!(!body.contains(detail), "{detail:?} in {body:?}");
    }

    sqlx::query("ALTER TABLE parked_migrations RENAME TO _sqlx_migrations").execute(&store).await.unwrap();
    assert_eq!(get(&stack, "/readyz", &[]).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_metrics_count_each_approval_its_decision_and_the_transfer_executed() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;
    let device = stack.dev.device();

    // One transfer the holder approves; while it waits on their device, it is the one pending intent.
    let (approved, waiting) = tokio::join!(call(&client, "transfer_funds", transfer_args("25")), async {
        let waiting = scrape_until(&stack, |m| m.value(OPEN, &[("status", "pending")]) == 1.0).await;
        let request = loop {
            if let Some(request) = device.pending(None).await.unwrap().into_iter().next() {
                break request;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        device.decide(None, Some(&request.auth_req_id), "approve").await.unwrap();
        waiting
    });
    assert!(!is_error(&approved), "{}", text(&approved));
    assert_eq!(waiting.value(REQUESTS, &[]), 1.0);
    assert_eq!(waiting.value(OPEN, &[("status", "requesting")]), 0.0);
    assert_eq!(waiting.total(DECISIONS), 0.0);

    // One the holder declines.
    let holder = stack.decide_next("deny", Duration::from_millis(100));
    let denied = call(&client, "transfer_funds", transfer_args("30")).await;
    holder.await.unwrap();
    assert!(is_error(&denied), "{}", text(&denied));

    let after = scrape_until(&stack, |m| m.total(DECISIONS) == 2.0 && m.value(EXECUTED, &[]) == 1.0).await;
    assert_eq!(after.value(REQUESTS, &[]), 2.0);
    assert_eq!(after.value(DECISIONS, &[("decision", "approved")]), 1.0);
    assert_eq!(after.value(DECISIONS, &[("decision", "denied")]), 1.0);
    assert_eq!(after.value(DECISIONS, &[("decision", "expired")]), 0.0);
    assert_eq!(after.value(EXECUTED, &[]), 1.0);
    assert_eq!(after.value(CANCELLED, &[]), 0.0);
    assert_eq!(after.total(DECISION_SECONDS_COUNT), 2.0);
    assert_eq!(after.value(DECISION_SECONDS_COUNT, &[("decision", "approved")]), 1.0);
    assert!(after.value(BANK_CALLS_COUNT, &[("call", "transfer")]) >= 1.0);
    assert_eq!(after.value(BANK_CALLS_COUNT, &[("call", "lookup")]), 0.0, "no outcome was ever unknown");
    for status in ["requesting", "pending", "executing", "outcome_unknown"] {
        assert_eq!(after.value(OPEN, &[("status", status)]), 0.0, "{status}");
    }
}

#[tokio::test]
async fn the_metrics_name_no_holder_account_reference_or_intent() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;
    let holder = stack.decide_next("approve", Duration::from_millis(100));
    let result = call(&client, "transfer_funds", transfer_args("12.34")).await;
    holder.await.unwrap();
    assert!(!is_error(&result), "{}", text(&result));
    let output = result.structured_content.unwrap();
    let reference = output["reference"].as_str().unwrap();
    let intent_id = output["intent_id"].as_str().unwrap();
    let transfer_id = output["transfer"]["transfer_id"].as_str().unwrap();

    let metrics = scrape_until(&stack, |m| m.value(EXECUTED, &[]) == 1.0).await;

    for personal in ["alice", "acc_alice_chk", "acc_bob_chk", "CHK-4821", "CHK-3307", intent_id, transfer_id, "12.34"] {
        assert!(!metrics.text.contains(personal), "{personal:?} in the metrics:\n{}", metrics.text);
    }
    // The reference is four characters, which a number could contain: look for it wherever words are.
    let words = metrics.text.lines().filter(|line| line.starts_with('#')).map(str::to_owned);
    let names_and_labels = metrics.samples.iter().flat_map(|sample| {
        let labels = sample.labels.iter().map(|(key, value)| format!("{key}={value}"));
        std::iter::once(sample.name.clone()).chain(labels).collect::<Vec<_>>()
    });
    for word in words.chain(names_and_labels) {
        assert!(!word.contains(reference), "the reference {reference} in {word:?}");
    }
    // Every label takes one of a fixed set of values, whatever the transfer was.
    for sample in &metrics.samples {
        for (key, value) in &sample.labels {
            let fixed = match key.as_str() {
                "decision" => ["approved", "denied", "expired"].contains(&value.as_str()),
                "result" => ["executed", "failed", "retried"].contains(&value.as_str()),
                "call" => ["transfer", "lookup"].contains(&value.as_str()),
                "status" => ["requesting", "pending", "executing", "outcome_unknown"].contains(&value.as_str()),
                "le" => value == "+Inf" || value.parse::<f64>().is_ok(),
                _ => false,
            };
            assert!(fixed, "{}{{{key}={value:?}}}", sample.name);
        }
    }
}

#[tokio::test]
async fn a_scrape_that_cannot_read_the_store_still_reports_the_counters() {
    let stack = on_sqlite().await;
    let (client, _) = stack.http_client().await;
    let holder = stack.decide_next("deny", Duration::from_millis(100));
    assert!(is_error(&call(&client, "transfer_funds", transfer_args("5")).await));
    holder.await.unwrap();
    scrape_until(&stack, |m| m.total(DECISIONS) == 1.0).await;
    let store = intent_store(&stack).await;

    sqlx::query("ALTER TABLE transfer_intents RENAME TO parked_intents").execute(&store).await.unwrap();
    let metrics = scrape(&stack).await;
    sqlx::query("ALTER TABLE parked_intents RENAME TO transfer_intents").execute(&store).await.unwrap();

    assert_eq!(metrics.value(REQUESTS, &[]), 1.0);
    assert_eq!(metrics.value(DECISIONS, &[("decision", "denied")]), 1.0);
    assert_eq!(metrics.total(OPEN), 0.0);
    assert!(!metrics.text.contains(OPEN), "no gauge is made up when the store cannot be counted");
    assert_eq!(scrape(&stack).await.value(OPEN, &[("status", "pending")]), 0.0, "back once the store reads again");
}
