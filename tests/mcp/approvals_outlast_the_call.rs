//! Approvals that take longer than a client's patience: `transfer_funds` answers "pending" after
//! `max_wait_seconds`, the wait and the transfer go on in the background, and `get_transfer_status`
//! reports the outcome. An `idempotency_key` makes retries safe. (Bounds are shortened; the shape is
//! the production one.)

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::mcp::{Client, McpStack, call, is_error, text};

fn transfer_args(key: Option<&str>) -> Value {
    let mut args = json!({"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": "30.00"});
    if let Some(key) = key {
        args["idempotency_key"] = json!(key);
    }
    args
}

async fn status(client: &Client, intent_id: &str, wait_seconds: u64) -> rmcp::model::CallToolResult {
    call(client, "get_transfer_status", json!({"intent_id": intent_id, "wait_seconds": wait_seconds})).await
}

async fn bank_transfers(stack: &McpStack) -> i64 {
    let options =
        sqlx::sqlite::SqliteConnectOptions::new().filename(stack.dev.data_path("bank.sqlite")).read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM transfers").fetch_one(&pool).await.unwrap()
}

fn structured(result: &rmcp::model::CallToolResult) -> Value {
    result.structured_content.clone().unwrap_or(Value::Null)
}

#[tokio::test]
async fn an_approval_after_the_bound_completes_in_the_background_and_is_reported_by_status() {
    let stack = McpStack::start_with(|config, _| {
        config.mcp.max_wait_seconds = 3;
        config.mcp.progress_interval_seconds = 1;
    })
    .await;
    let (client, recorder) = stack.http_client().await;
    let before = stack.dev.balances().await;
    let holder = stack.decide_next("approve", Duration::from_secs(6));

    let started = Instant::now();
    let pending = call(&client, "transfer_funds", transfer_args(None)).await;

    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(3) && waited < Duration::from_secs(5), "answered after {waited:?}");
    assert!(!is_error(&pending), "{}", text(&pending));
    let output = structured(&pending);
    assert_eq!(output["status"], "pending");
    let intent_id = output["intent_id"].as_str().unwrap().to_owned();
    assert!(output["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(output["transfer"].is_null());
    assert!(text(&pending).contains("get_transfer_status") && text(&pending).contains(&intent_id));
    assert_eq!(stack.dev.balances().await, before, "nothing moved yet");

    let answered = status(&client, &intent_id, 10).await;
    holder.await.unwrap();

    assert!(!is_error(&answered), "{}", text(&answered));
    let output = structured(&answered);
    assert_eq!(output["status"], "completed", "{output}");
    assert_eq!(output["transfer"]["source_balance_after"], "2470.00");
    assert!(text(&answered).starts_with("Transferred 30.00 USD from CHK-4821 to CHK-3307"));
    let after = stack.dev.balances().await;
    assert_eq!((after["acc_alice_chk"].as_str(), after["acc_bob_chk"].as_str()), ("2470.00", "1230.00"));
    assert!(recorder.messages().iter().any(|m| m.starts_with("Waiting for approval on your device")));

    // Asking again changes nothing.
    let again = status(&client, &intent_id, 0).await;
    assert_eq!(structured(&again)["transfer"]["transfer_id"], output["transfer"]["transfer_id"]);
    assert_eq!(bank_transfers(&stack).await, 1);
}

#[tokio::test]
async fn a_denial_or_expiry_after_the_pending_answer_is_reported_and_moves_nothing() {
    let stack = McpStack::start_with(|config, _| {
        config.mcp.max_wait_seconds = 1;
        config.mcp.requested_expiry_seconds = 4;
    })
    .await;
    let (client, _) = stack.http_client().await;
    let before = stack.dev.balances().await;

    let holder = stack.decide_next("deny", Duration::from_secs(2));
    let denied = structured(&call(&client, "transfer_funds", transfer_args(None)).await);
    assert_eq!(denied["status"], "pending");
    let denied_status = status(&client, denied["intent_id"].as_str().unwrap(), 10).await;
    holder.await.unwrap();
    assert_eq!(structured(&denied_status)["status"], "denied", "{}", text(&denied_status));
    assert!(text(&denied_status).contains("declined") && text(&denied_status).contains("No money moved"));

    let expiring = structured(&call(&client, "transfer_funds", transfer_args(None)).await);
    assert_eq!(expiring["status"], "pending");
    let expired_status = status(&client, expiring["intent_id"].as_str().unwrap(), 10).await;
    assert_eq!(structured(&expired_status)["status"], "expired", "{}", text(&expired_status));
    assert!(text(&expired_status).contains("No money moved"));

    assert_eq!(stack.dev.balances().await, before);
    assert_eq!(bank_transfers(&stack).await, 0);
}

#[tokio::test]
async fn repeated_calls_with_one_idempotency_key_ask_once_and_pay_once() {
    let stack = McpStack::start_with(|config, _| config.mcp.max_wait_seconds = 2).await;
    let (client, _) = stack.http_client().await;
    let (other_client, _) = stack.http_client().await;

    // Two clients retry the same call at once while the holder has not decided.
    let (first, second) = tokio::join!(
        call(&client, "transfer_funds", transfer_args(Some("order-4711"))),
        call(&other_client, "transfer_funds", transfer_args(Some("order-4711"))),
    );
    let (first, second) = (structured(&first), structured(&second));
    assert_eq!(first["status"], "pending");
    assert_eq!(first["intent_id"], second["intent_id"], "the same intent");
    assert_eq!(stack.approval_requests().await, 1, "one approval request at the provider");

    let holder = stack.decide_next("approve", Duration::from_millis(100));
    holder.await.unwrap();
    let third = call(&client, "transfer_funds", transfer_args(Some("order-4711"))).await;
    let third = structured(&third);
    assert_eq!(third["status"], "completed", "{third}");
    assert_eq!(third["intent_id"], first["intent_id"]);
    assert_eq!(stack.approval_requests().await, 1);
    assert_eq!(bank_transfers(&stack).await, 1, "one transfer at the bank");

    let mut different = transfer_args(Some("order-4711"));
    different["amount"] = json!("31.00");
    let refused = call(&client, "transfer_funds", different).await;
    assert!(is_error(&refused));
    assert!(
        text(&refused).contains("order-4711") && text(&refused).contains("different transfer"),
        "{}",
        text(&refused)
    );
    assert_eq!(stack.approval_requests().await, 1);
}

#[tokio::test]
async fn intents_belong_to_their_holder_and_unknown_ids_are_errors() {
    let mut stack = McpStack::start_with(|config, _| config.mcp.max_wait_seconds = 1).await;
    let (client, _) = stack.http_client().await;
    let pending = structured(&call(&client, "transfer_funds", transfer_args(None)).await);
    let intent_id = pending["intent_id"].as_str().unwrap().to_owned();
    assert!(!is_error(&status(&client, &intent_id, 0).await));
    let unknown = status(&client, "int_nope", 0).await;
    assert!(is_error(&unknown) && text(&unknown).contains("There is no transfer intent"));
    let too_long = status(&client, &intent_id, 46).await;
    assert!(is_error(&too_long) && text(&too_long).contains("at most 45"), "{}", text(&too_long));

    // A server acting for bob, on the same data directory, cannot see alice's intent.
    stack.reconfigure_server(|config| config.mcp.user = "bob".into()).await;
    let (bobs_client, _) = stack.http_client().await;
    let foreign = status(&bobs_client, &intent_id, 0).await;
    assert!(is_error(&foreign));
    assert!(text(&foreign).contains("There is no transfer intent"), "{}", text(&foreign));
}

#[tokio::test]
async fn a_pending_transfer_outlives_the_server_that_asked_for_it() {
    let stack = McpStack::start_with(|config, _| config.mcp.max_wait_seconds = 1).await;
    let before = stack.dev.balances().await;

    // A desktop client starts `bankguard serve` over stdio, asks for a transfer, and quits while it is pending.
    let log = stack.dev.data_path("serve-stderr.log");
    let (stdio, _) = stack.stdio_client(&log).await;
    let pending = structured(&call(&stdio, "transfer_funds", transfer_args(None)).await);
    assert_eq!(pending["status"], "pending", "{pending}");
    let intent_id = pending["intent_id"].as_str().unwrap().to_owned();
    stdio.cancel().await.unwrap();

    // The holder approves after that server is gone; the HTTP server on the same data directory takes the
    // intent over once the stopped server's lease runs out, and executes the transfer.
    stack.decide_next("approve", Duration::ZERO).await.unwrap();
    let (client, _) = stack.http_client().await;
    let mut answer = status(&client, &intent_id, 30).await;
    if structured(&answer)["status"] == "pending" {
        answer = status(&client, &intent_id, 30).await;
    }

    assert_eq!(structured(&answer)["status"], "completed", "{}", text(&answer));
    let after = stack.dev.balances().await;
    assert_eq!((before["acc_alice_chk"].as_str(), after["acc_alice_chk"].as_str()), ("2500.00", "2470.00"));
    assert_eq!(bank_transfers(&stack).await, 1);
}
