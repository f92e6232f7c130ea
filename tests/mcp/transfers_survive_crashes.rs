//! `bankguard serve` killed with SIGKILL at every edge of a transfer's life, and another started on
//! the same data directory: what it reports is the truth, and money moves exactly once or not at all.

use std::time::Duration;

use crate::support::fault_proxy::{Fault, Rule};
use crate::support::faulty::{FaultyStack, status, structured, transfer_args};
use crate::support::mcp::{call, is_error, text};

const SETTLE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn killed_while_the_holder_decides_another_server_executes_the_approval_once() {
    let stack = FaultyStack::start().await;
    let first = stack.serve(1).await;
    let client = first.client().await;
    let pending = structured(&call(&client, "transfer_funds", transfer_args("30.00")).await);
    assert_eq!(pending["status"], "pending", "{pending}");
    let intent = pending["intent_id"].as_str().unwrap().to_owned();
    first.kill().await;

    let second = stack.serve(1).await;
    stack.decide_latest("approve").await;
    assert!(stack.until_status(&intent, "completed", SETTLE).await, "{}", second.logs());
    let answer = status(&second.client().await, &intent, 0).await;
    assert_eq!(structured(&answer)["status"], "completed", "{}", text(&answer));
    assert_eq!(stack.bank_transfers().await, 1);
    assert_eq!(stack.dev.balances().await["acc_alice_chk"], "2470.00");
    assert_eq!(stack.approval_requests().await, 1, "the holder was asked once");
}

#[tokio::test]
async fn killed_after_the_approval_before_the_bank_saw_the_transfer_another_server_sends_it_once() {
    let stack = FaultyStack::start().await;
    // The transfer never reaches the bank while the first server lives.
    stack.bank.inject(Rule::on("POST", "/api/transfers").always(Fault::Hang));
    let first = stack.serve(1).await;
    let client = first.client().await;
    let pending = structured(&call(&client, "transfer_funds", transfer_args("40.00")).await);
    let intent = pending["intent_id"].as_str().unwrap().to_owned();
    stack.decide_latest("approve").await;
    assert!(stack.bank.wait_for("/api/transfers", 1, SETTLE).await, "the approved transfer was sent");
    assert_eq!(stack.stored_status(&intent).await, "executing", "recorded before it was sent");
    first.kill().await;
    stack.bank.clear();

    let second = stack.serve(1).await;
    assert!(stack.until_status(&intent, "completed", SETTLE).await, "{}", second.logs());
    let answer = status(&second.client().await, &intent, 0).await;
    assert_eq!(structured(&answer)["transfer"]["source_balance_after"], "2460.00", "{}", text(&answer));
    assert_eq!(stack.bank_transfers().await, 1);
    assert_eq!(stack.dev.balances().await["acc_alice_chk"], "2460.00");
}

#[tokio::test]
async fn killed_while_the_bank_commits_the_next_server_finds_the_transfer_instead_of_paying_twice() {
    let stack = FaultyStack::start().await;
    // The bank commits; its answer is held back until the first server is dead.
    stack.bank.inject(Rule::on("POST", "/api/transfers").once(Fault::ForwardThenDelay(Duration::from_secs(60))));
    let first = stack.serve(1).await;
    let client = first.client().await;
    let pending = structured(&call(&client, "transfer_funds", transfer_args("50.00")).await);
    let intent = pending["intent_id"].as_str().unwrap().to_owned();
    stack.decide_latest("approve").await;
    assert!(stack.bank.wait_for("/api/transfers", 1, SETTLE).await);
    while stack.bank_transfers().await == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().await;

    let second = stack.serve(1).await;
    assert!(stack.until_status(&intent, "completed", SETTLE).await, "{}", second.logs());
    let answer = structured(&status(&second.client().await, &intent, 0).await);
    assert!(answer["transfer"]["transfer_id"].as_str().unwrap().starts_with("trf_"));
    assert_eq!(stack.bank_transfers().await, 1, "sent twice, executed once");
    assert_eq!(stack.dev.balances().await["acc_alice_chk"], "2450.00");
}

#[tokio::test]
async fn killed_right_after_recording_the_request_the_next_server_asks_the_holder_once() {
    let stack = FaultyStack::start().await;
    // The approval request reaches the provider, but its answer never comes back to the first server.
    stack.provider.inject(Rule::on("POST", "/bc-authorize").once(Fault::ForwardThenDelay(Duration::from_secs(60))));
    let first = stack.serve(1).await;
    let client = first.client().await;
    let call_made = tokio::spawn(async move { call(&client, "transfer_funds", transfer_args("60.00")).await });
    assert!(stack.provider.wait_for("/bc-authorize", 1, SETTLE).await);
    first.kill().await;
    call_made.abort();

    let second = stack.serve(1).await;
    // The second server resends the same request: the provider treats it as a retry.
    assert!(stack.provider.wait_for("/bc-authorize", 2, SETTLE).await, "{}", second.logs());
    stack.decide_latest("approve").await;
    let intent = stack.newest_intent().await.unwrap();
    assert!(stack.until_status(&intent, "completed", SETTLE).await, "{}", second.logs());
    let answer = status(&second.client().await, &intent, 0).await;
    assert!(text(&answer).starts_with("Transferred 60.00 USD"), "{}", text(&answer));
    assert_eq!(stack.bank_transfers().await, 1);
    assert_eq!(stack.approval_requests().await, 1, "one request on the device");
    assert_eq!(stack.dev.balances().await["acc_alice_chk"], "2440.00");
}

#[tokio::test]
async fn a_denial_given_while_no_server_runs_is_reported_and_moves_nothing() {
    let stack = FaultyStack::start().await;
    let first = stack.serve(1).await;
    let pending = structured(&call(&first.client().await, "transfer_funds", transfer_args("70.00")).await);
    let intent = pending["intent_id"].as_str().unwrap().to_owned();
    first.kill().await;
    stack.decide_latest("deny").await;

    let second = stack.serve(1).await;
    let answer = status(&second.client().await, &intent, 30).await;
    assert_eq!(structured(&answer)["status"], "denied", "{}", text(&answer));
    assert!(!is_error(&answer));
    assert!(text(&answer).contains("No money moved"));
    assert_eq!(stack.bank_transfers().await, 0);
}
