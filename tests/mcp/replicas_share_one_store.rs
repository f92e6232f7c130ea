//! Several `bankguard serve --transport http` replicas (the built binary, separate processes) on one
//! PostgreSQL intent store, as behind a load balancer: any replica finishes what another started,
//! exactly once, and hears what the others did at once. Every test uses the run's PostgreSQL server
//! (`scripts/postgres.sh`), whichever store the rest of the suite uses.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::dev::{PING_CLIENT, ping_client};
use crate::support::faulty::{FaultyStack, Serve, status, structured, transfer_args};
use crate::support::intent_store::TestStore;
use crate::support::mcp::{call, text};

/// Replicas on a fresh PostgreSQL database, with `configure`'s changes to the dev stack.
async fn stack_with(configure: impl FnOnce(&mut bankguard::config::Config)) -> FaultyStack {
    FaultyStack::start_on(TestStore::fresh_postgres().await, configure).await
}

/// A replica whose heartbeat goes stale only after three of these: long enough that no takeover in
/// a test can come from staleness unless the test waits for it.
async fn replica(stack: &FaultyStack, max_wait: u64, heartbeat_seconds: u64) -> Serve {
    let mut command = stack.command(&["--transport", "http", "--listen", "127.0.0.1:0"], max_wait);
    command.env("BANKGUARD_MCP__HEARTBEAT_SECONDS", heartbeat_seconds.to_string());
    stack.spawn_serve(command).await
}

#[tokio::test]
async fn a_replica_killed_while_the_holder_decides_is_finished_by_another_exactly_once() {
    let stack = stack_with(|_| {}).await;
    let a = replica(&stack, 1, 1).await;
    let b = replica(&stack, 1, 1).await;
    let c = replica(&stack, 1, 1).await;

    let pending = structured(&call(&a.client().await, "transfer_funds", transfer_args("30.00")).await);
    assert_eq!(pending["status"], "pending", "{pending}");
    let intent = pending["intent_id"].as_str().unwrap().to_owned();
    a.kill().await;
    stack.decide_latest("approve").await;

    // Three silent heartbeats (3 s) later, B or C claims the intent and executes the approval.
    assert!(stack.until_status(&intent, "completed", Duration::from_secs(30)).await, "{}\n{}", b.logs(), c.logs());
    for survivor in [&b, &c] {
        let answer = status(&survivor.client().await, &intent, 0).await;
        assert_eq!(structured(&answer)["status"], "completed", "{}", text(&answer));
    }
    assert_eq!(stack.bank_transfers().await, 1, "executed exactly once");
    assert_eq!(stack.dev.balances().await["acc_alice_chk"], "2470.00");
    assert_eq!(stack.approval_requests().await, 1, "the holder was asked once");
}

#[tokio::test]
async fn one_idempotency_key_sent_to_three_replicas_at_once_asks_once_and_moves_money_once() {
    let stack = stack_with(|_| {}).await;
    let replicas = [replica(&stack, 30, 1).await, replica(&stack, 30, 1).await, replica(&stack, 30, 1).await];
    let mut clients = Vec::new();
    for replica in &replicas {
        clients.push(replica.client().await);
    }
    let mut arguments = transfer_args("42.00");
    arguments["idempotency_key"] = json!("rent-2026-12");

    let calls = clients.iter().map(|client| call(client, "transfer_funds", arguments.clone()));
    let (results, _) = tokio::join!(futures::future::join_all(calls), stack.decide_latest("approve"));

    let answers: Vec<_> = results.iter().map(structured).collect();
    for answer in &answers {
        assert_eq!(answer["status"], "completed", "{answer}");
        assert_eq!(answer["intent_id"], answers[0]["intent_id"], "one intent for the key");
    }
    assert_eq!(stack.approval_requests().await, 1, "one approval request");
    assert_eq!(stack.bank_transfers().await, 1, "one transfer");
    assert_eq!(stack.dev.balances().await["acc_alice_chk"], "2458.00");
}

#[tokio::test]
async fn a_ping_delivered_to_another_replica_ends_the_wait_at_once() {
    // The provider pings replica B; the call waits on replica A. Without the ping, A would poll
    // only after the 60 s fallback.
    let b_address = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let stack = stack_with(|config| {
        config.authz.poll_interval_seconds = 30;
        config.authz.clients.push(ping_client(&format!("http://{b_address}/ciba/notify")));
        config.bank_api.accepted_client_ids.push(PING_CLIENT.0.into());
    })
    .await;
    let ping_replica = |listen: String| {
        let mut command = stack.command(&["--transport", "http", "--listen", &listen], 30);
        command
            .env("BANKGUARD_MCP__CLIENT_ID", PING_CLIENT.0)
            .env("BANKGUARD_MCP__CLIENT_SECRET", PING_CLIENT.1)
            .env("BANKGUARD_MCP__DELIVERY_MODE", "ping")
            .env("BANKGUARD_MCP__PING_FALLBACK_POLL_SECONDS", "60");
        command
    };
    let a = stack.spawn_serve(ping_replica("127.0.0.1:0".into())).await;
    let b = stack.spawn_serve(ping_replica(b_address.to_string())).await;

    let client = a.client().await;
    let (result, approved_at) = tokio::join!(call(&client, "transfer_funds", transfer_args("12.00")), async {
        stack.decide_latest("approve").await;
        Instant::now()
    });

    assert_eq!(structured(&result)["status"], "completed", "{}\n{}", text(&result), a.logs());
    assert!(
        approved_at.elapsed() < Duration::from_secs(10),
        "completed {:?} after the approval; the fallback poll was 60 s away\n{}",
        approved_at.elapsed(),
        b.logs()
    );
    assert_eq!(stack.bank_transfers().await, 1);
}

#[tokio::test]
async fn sigterm_hands_a_pending_intent_to_another_replica_without_waiting_for_its_heartbeat() {
    let stack = stack_with(|_| {}).await;
    // Heartbeats every 30 s: a stale one would take 90 s.
    let a = replica(&stack, 1, 30).await;
    let b = replica(&stack, 1, 30).await;
    let pending = structured(&call(&a.client().await, "transfer_funds", transfer_args("7.00")).await);
    assert_eq!(pending["status"], "pending", "{pending}");
    let intent = pending["intent_id"].as_str().unwrap().to_owned();

    let stopping = Instant::now();
    let exit = a.terminate().await;
    assert!(exit.success(), "a replica stopped by SIGTERM exits cleanly: {exit:?}");
    let intents = stack.dev.intents().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while intents.runner(&intent).await.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(intents.runner(&intent).await.is_some(), "B took the intent over\n{}", b.logs());
    let taken_over_after = stopping.elapsed();

    stack.decide_latest("approve").await;
    let answer = status(&b.client().await, &intent, 20).await;
    assert_eq!(structured(&answer)["status"], "completed", "{}\n{}", text(&answer), b.logs());
    assert!(taken_over_after < Duration::from_secs(15), "taken over {taken_over_after:?} after SIGTERM, not 90 s");
    assert_eq!(stack.bank_transfers().await, 1);
    let TestStore::Postgres { password, .. } = &stack.dev.store else { panic!("replicas share PostgreSQL") };
    assert!(!b.logs().contains(password.as_str()), "the store's password never reaches a log");
}

#[tokio::test]
async fn a_session_opened_on_one_replica_is_refused_on_another_with_a_clear_error_at_once() {
    let stack = stack_with(|_| {}).await;
    let a = replica(&stack, 1, 1).await;
    let b = replica(&stack, 1, 1).await;
    let http = reqwest::Client::new();
    let post = |url: &str, session: Option<&str>, body: serde_json::Value| {
        let mut request = http
            .post(url)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("MCP-Protocol-Version", "2025-11-25");
        if let Some(session) = session {
            request = request.header("Mcp-Session-Id", session);
        }
        request.json(&body).timeout(Duration::from_secs(10)).send()
    };
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "affinity-test", "version": "0"}}});
    let opened = post(&a.url, None, initialize.clone()).await.unwrap();
    let session = opened.headers()["mcp-session-id"].to_str().unwrap().to_owned();

    // The load balancer sends the session's next request to B, which never saw it.
    let started = Instant::now();
    let elsewhere =
        post(&b.url, Some(&session), json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await.unwrap();
    assert_eq!(elsewhere.status(), reqwest::StatusCode::NOT_FOUND, "MCP: an unknown session is 404, start a new one");
    let body = elsewhere.text().await.unwrap();
    assert!(body.to_lowercase().contains("session"), "the answer says why: {body}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered at once, not a hang");

    // The client recovers as the specification says: a new session, on whichever replica it lands.
    let reopened = post(&b.url, None, initialize).await.unwrap();
    assert!(reopened.status().is_success());
    assert!(reopened.headers().contains_key("mcp-session-id"));
}

#[tokio::test]
async fn replicas_sign_with_their_own_keys_and_the_chain_verifies_with_the_keys_they_publish() {
    let stack = stack_with(|_| {}).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Each replica in its own data directory, so each generates its own server key.
    let own_dir = |dir: &std::path::Path| {
        let mut command = stack.command(&["--transport", "http", "--listen", "127.0.0.1:0"], 30);
        command
            .current_dir(dir)
            .env("BANKGUARD_DATA_DIR", dir)
            .env("BANKGUARD_MCP__CLIENT_SECRET", stack.dev.mcp().client_secret.as_str());
        command
    };
    let cli = |dir: &std::path::Path, args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_bankguard"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("BANKGUARD_")) {
            command.env_remove(key);
        }
        command.args(args).current_dir(dir).env("BANKGUARD_DATA_DIR", dir).env("RUST_LOG", "warn");
        if let TestStore::Postgres { url, password } = &stack.dev.store {
            command.env("BANKGUARD_MCP__STORE_URL", url).env("BANKGUARD_MCP__STORE_PASSWORD", password);
        }
        let output = command.output().unwrap();
        let said = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), said)
    };

    // A completes a transfer and stops (signing the head); then B does the same.
    let a = stack.spawn_serve(own_dir(dir_a.path())).await;
    let client = a.client().await;
    let (approved, _) =
        tokio::join!(call(&client, "transfer_funds", transfer_args("5.00")), stack.decide_latest("approve"));
    assert_eq!(structured(&approved)["status"], "completed", "{}", a.logs());
    assert!(a.terminate().await.success());
    let b = stack.spawn_serve(own_dir(dir_b.path())).await;
    let client = b.client().await;
    let (by_b, _) =
        tokio::join!(call(&client, "transfer_funds", transfer_args("6.00")), stack.decide_latest("approve"));
    assert_eq!(structured(&by_b)["status"], "completed", "{}", b.logs());
    assert!(b.terminate().await.success());

    // A's key alone does not vouch for the head B signed; with B's published key, the chain verifies.
    let (ok, said) = cli(dir_a.path(), &["audit", "verify"]);
    assert!(!ok && said.contains("which is not a trusted server key"), "{said}");
    let (ok, b_keys) = cli(dir_b.path(), &["keys"]);
    assert!(ok, "{b_keys}");
    let b_keys_file = dir_a.path().join("replica-b-keys.json");
    std::fs::write(&b_keys_file, &b_keys).unwrap();
    let (ok, said) = cli(dir_a.path(), &["audit", "verify", "--trusted-keys", b_keys_file.to_str().unwrap()]);
    assert!(ok && said.contains("the audit log verifies"), "{said}");

    // B's transfer's evidence, made on A: the store holds the key B registered.
    let pack = dir_a.path().join("pack");
    let intent = structured(&by_b)["intent_id"].as_str().unwrap().to_owned();
    let (ok, said) = cli(dir_a.path(), &["evidence", &intent, "--out", pack.to_str().unwrap()]);
    assert!(ok, "{said}");
    let (ok, said) = cli(dir_a.path(), &["evidence", "verify", pack.to_str().unwrap()]);
    assert!(ok, "{said}");
    let b_kid =
        serde_json::from_str::<serde_json::Value>(&b_keys).unwrap()["keys"][0]["kid"].as_str().unwrap().to_owned();
    assert!(said.contains(&format!("server key {b_kid}")), "{said}");
}
