//! Faults on the wire between `bankguard serve` and its peers, injected by a real proxy: what the
//! holder approved is executed once, what the bank refused is reported as refused, and nothing
//! transient is ever reported as final.

use std::time::Duration;

use crate::support::fault_proxy::{Fault, Rule, Times};
use crate::support::faulty::{FaultyStack, status, structured, transfer_args};
use crate::support::mcp::{call, is_error, text};

const SETTLE: Duration = Duration::from_secs(40);

#[tokio::test]
async fn a_lost_or_refused_approval_request_is_resent_and_the_holder_is_asked_once() {
    let stack = FaultyStack::start().await;
    stack.provider.inject(Rule::on("POST", "/bc-authorize").once(Fault::status(503, "{}")));
    // The provider records the request, but its answer is lost: the resend is the same request.
    stack.provider.inject(Rule::on("POST", "/bc-authorize").once(Fault::ForwardThenReset));
    let serve = stack.serve(30).await;
    let client = serve.client().await;
    let holder = async {
        stack.decide_latest("approve").await;
    };
    let (result, ()) = tokio::join!(call(&client, "transfer_funds", transfer_args("25.00")), holder);

    assert!(!is_error(&result), "{}\n{}", text(&result), serve.logs());
    assert_eq!(structured(&result)["status"], "completed");
    assert_eq!(stack.provider.seen("/bc-authorize"), 3);
    assert_eq!(stack.approval_requests().await, 1, "one request on the device");
    assert_eq!(stack.bank_transfers().await, 1);
}

#[tokio::test]
async fn failed_polls_500s_truncated_answers_resets_and_slow_down_do_not_end_the_wait() {
    let stack = FaultyStack::start().await;
    let serve = stack.serve(40).await;
    let client = serve.client().await;
    let asked = tokio::spawn({
        let client = serve.client().await;
        async move { call(&client, "transfer_funds", transfer_args("35.00")).await }
    });
    // Once the holder is being asked, every kind of failed poll, in a row.
    while stack.dev.device().pending(None).await.unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let polls = stack.provider.seen("/oauth/token");
    for fault in [
        Fault::status(500, r#"{"error":"server_error"}"#),
        Fault::ForwardThenTruncate { keep_body_bytes: 7 },
        Fault::ResetWithoutForwarding,
        Fault::oauth_error(400, "slow_down"),
    ] {
        stack.provider.inject(Rule::on("POST", "/oauth/token").times(Times::Once, fault));
    }
    assert!(stack.provider.wait_for("/oauth/token", polls + 4, SETTLE).await, "{:?}", stack.provider.log());
    stack.decide_latest("approve").await;
    let result = asked.await.unwrap();

    assert!(!is_error(&result), "{}\n{}", text(&result), serve.logs());
    assert_eq!(structured(&result)["status"], "completed", "{}", text(&result));
    assert_eq!(stack.bank_transfers().await, 1);
    drop(client);
}

#[tokio::test]
async fn a_bank_that_commits_but_answers_502_resets_or_503_is_asked_again_and_pays_once() {
    let stack = FaultyStack::start().await;
    for fault in [
        Fault::ForwardThenRespond { status: 502, body: "bad gateway".into(), content_type: "text/plain" },
        Fault::ForwardThenReset,
        Fault::status(503, r#"{"code":"temporarily_unavailable"}"#),
    ] {
        stack.bank.inject(Rule::on("POST", "/api/transfers").once(fault));
    }
    let serve = stack.serve(30).await;
    let client = serve.client().await;
    let (result, _) =
        tokio::join!(call(&client, "transfer_funds", transfer_args("45.00")), stack.decide_latest("approve"));

    assert!(!is_error(&result), "{}\n{}", text(&result), serve.logs());
    let output = structured(&result);
    assert_eq!(output["status"], "completed", "{}", text(&result));
    assert_eq!(stack.bank.seen("/api/transfers"), 4, "{:?}", stack.bank.log());
    assert_eq!(stack.bank_transfers().await, 1, "sent four times, executed once");
    assert_eq!(output["transfer"]["source_balance_after"], "2455.00");
    assert_eq!(stack.dev.balances().await["acc_bob_chk"], "1245.00");
}

#[tokio::test]
async fn a_bank_slower_than_the_client_timeout_is_asked_again_under_the_same_key() {
    let stack = FaultyStack::start().await;
    stack.bank.inject(Rule::on("POST", "/api/transfers").once(Fault::ForwardThenDelay(Duration::from_secs(20))));
    let serve = stack.serve(40).await;
    let client = serve.client().await;
    let (result, _) =
        tokio::join!(call(&client, "transfer_funds", transfer_args("55.00")), stack.decide_latest("approve"));

    assert_eq!(structured(&result)["status"], "completed", "{}\n{}", text(&result), serve.logs());
    assert_eq!(stack.bank_transfers().await, 1);
    assert_eq!(stack.dev.balances().await["acc_alice_chk"], "2445.00");
}

#[tokio::test]
async fn while_the_bank_is_down_the_approved_transfer_is_executing_never_failed_and_completes_when_it_returns() {
    let stack = FaultyStack::start().await;
    stack.bank.inject(Rule::on("POST", "/api/transfers").always(Fault::ResetWithoutForwarding));
    let serve = stack.serve(3).await;
    let client = serve.client().await;
    let (pending, _) =
        tokio::join!(call(&client, "transfer_funds", transfer_args("65.00")), stack.decide_latest("approve"));
    let intent = structured(&pending)["intent_id"].as_str().unwrap().to_owned();
    assert!(stack.bank.wait_for("/api/transfers", 2, SETTLE).await);

    let meanwhile = status(&client, &intent, 0).await;
    assert!(!is_error(&meanwhile));
    assert_eq!(structured(&meanwhile)["status"], "executing", "{}", text(&meanwhile));
    assert!(text(&meanwhile).contains("do not send the transfer again"), "{}", text(&meanwhile));

    stack.bank.clear();
    let answer = status(&client, &intent, 30).await;
    assert_eq!(structured(&answer)["status"], "completed", "{}\n{}", text(&answer), serve.logs());
    assert_eq!(stack.bank_transfers().await, 1);
}

#[tokio::test]
async fn a_transfer_the_bank_refuses_after_approval_is_failed_with_the_banks_reason_and_nothing_moved() {
    let stack = FaultyStack::start().await;
    let serve = stack.serve(2).await;
    let client = serve.client().await;
    // Both fit the balance when asked; only one fits when executed.
    let first = structured(&call(&client, "transfer_funds", transfer_args("2000.00")).await);
    let second = structured(&call(&client, "transfer_funds", transfer_args("2000.00")).await);
    let (first, second) = (first["intent_id"].as_str().unwrap(), second["intent_id"].as_str().unwrap());
    // The holder approves the first, and once it has moved the money, the second.
    let device = stack.dev.device();
    let requests = device.pending(None).await.unwrap();
    let (newest, oldest) = (&requests[0], &requests[1]);
    device.decide(None, Some(&oldest.auth_req_id), "approve").await.unwrap();
    let executed = status(&client, first, 30).await;
    device.decide(None, Some(&newest.auth_req_id), "approve").await.unwrap();
    let refused = status(&client, second, 30).await;
    assert_eq!(structured(&executed)["status"], "completed", "{}", text(&executed));
    assert_eq!(structured(&refused)["status"], "failed", "{}", text(&refused));
    assert!(text(&refused).contains("the bank refused the transfer"), "{}", text(&refused));
    assert!(text(&refused).contains("No money moved"));
    assert_eq!(stack.bank_transfers().await, 1);
    assert_eq!(stack.dev.balances().await["acc_alice_chk"], "500.00");
}
