//! What happens to a transfer after the request reaches the holder's device.

use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ClientRequest, Request};
use rmcp::service::PeerRequestOptions;
use serde_json::json;

use crate::support::mcp::{McpStack, call, is_error, text};

fn transfer_args(amount: &str) -> serde_json::Value {
    json!({"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": amount, "memo": "Dinner"})
}

#[tokio::test]
async fn a_transfer_approved_on_the_device_moves_exactly_the_amount() {
    let stack = McpStack::start().await;
    let (client, recorder) = stack.http_client().await;
    let before = stack.dev.balances().await;
    let holder = stack.decide_next("approve", Duration::from_millis(300));

    let result = call(&client, "transfer_funds", transfer_args("25.5")).await;

    assert!(!is_error(&result), "{}", text(&result));
    let output = result.structured_content.clone().unwrap();
    assert_eq!(output["status"], "completed");
    assert_eq!(output["amount"], "25.50");
    assert_eq!(output["currency"], "USD");
    assert_eq!(output["memo"], "Dinner");
    assert_eq!(output["transfer"]["source_balance_after"], "2474.50");
    assert!(output["transfer"]["transfer_id"].as_str().unwrap().starts_with("trf_"));
    assert!(output["intent_id"].as_str().unwrap().starts_with("int_"));
    let reference = output["reference"].as_str().unwrap().to_owned();
    let seen_on_device = holder.await.unwrap();
    assert_eq!(seen_on_device, format!("Transfer 25.50 USD CHK-4821 to CHK-3307 #{reference}"));
    assert!(text(&result).contains("Transferred 25.50 USD from CHK-4821 to CHK-3307"));
    let after = stack.dev.balances().await;
    assert_eq!((before["acc_alice_chk"].as_str(), after["acc_alice_chk"].as_str()), ("2500.00", "2474.50"));
    assert_eq!((before["acc_bob_chk"].as_str(), after["acc_bob_chk"].as_str()), ("1200.00", "1225.50"));
    let first = &recorder.messages()[0];
    assert_eq!(first, &format!("Approve the transfer on your device — Reference {reference}"));
}

/// The memo is bound in NFC: the bank, which refuses any other form, executes exactly what was approved.
#[tokio::test]
async fn a_memo_in_decomposed_form_is_approved_and_executed_in_nfc() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;
    let holder = stack.decide_next("approve", Duration::from_millis(100));
    let mut arguments = transfer_args("12");
    arguments["memo"] = json!("Cafe\u{301} au lait");

    let result = call(&client, "transfer_funds", arguments).await;

    holder.await.unwrap();
    assert!(!is_error(&result), "{}", text(&result));
    let output = result.structured_content.clone().unwrap();
    assert_eq!(output["status"], "completed");
    assert_eq!(output["memo"], "Caf\u{e9} au lait");
}

#[tokio::test]
async fn a_transfer_declined_on_the_device_is_a_tool_error_and_moves_nothing() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;
    let before = stack.dev.balances().await;
    let holder = stack.decide_next("deny", Duration::from_millis(200));

    let result = call(&client, "transfer_funds", transfer_args("40")).await;

    holder.await.unwrap();
    assert!(is_error(&result));
    assert!(text(&result).contains("declined the transfer on their device"), "{}", text(&result));
    assert!(text(&result).contains("No money moved"));
    assert_eq!(stack.dev.balances().await, before);
}

#[tokio::test]
async fn a_transfer_nobody_approves_expires_and_moves_nothing() {
    let stack = McpStack::start_with(|config, _| config.mcp.requested_expiry_seconds = 2).await;
    let (client, _) = stack.http_client().await;
    let before = stack.dev.balances().await;

    let result = call(&client, "transfer_funds", transfer_args("40")).await;

    assert!(is_error(&result));
    assert!(text(&result).contains("expired before the account holder approved it"), "{}", text(&result));
    assert!(text(&result).contains("No money moved"));
    assert_eq!(stack.dev.balances().await, before);
}

#[tokio::test]
async fn a_call_cancelled_mid_wait_moves_nothing_even_when_approved_later() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;
    let before = stack.dev.balances().await;
    let request = ClientRequest::CallToolRequest(Request::new(
        CallToolRequestParams::new("transfer_funds").with_arguments(transfer_args("60").as_object().unwrap().clone()),
    ));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::with_timeout(Duration::from_secs(30)))
        .await
        .unwrap();
    // Wait until the holder has the request on their device, then cancel the call.
    let device = stack.dev.device();
    while device.pending(None).await.unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cancelled_at = std::time::Instant::now();
    handle.cancel(Some("the user changed their mind".into())).await.unwrap();

    // The server stops waiting within a second: the intent is recorded as cancelled.
    let intents = stack.dev.intents().await;
    let status = loop {
        let status = intents.statuses().await.pop().expect("one intent");
        if status == "cancelled" || cancelled_at.elapsed() > Duration::from_secs(1) {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, "cancelled", "the wait did not end within a second of the cancellation");

    // The holder approves afterwards anyway; the server must not redeem it.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let pending = device.pending(None).await.unwrap();
    assert_eq!(pending.len(), 1);
    device.decide(None, Some(&pending[0].auth_req_id), "approve").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;

    assert_eq!(stack.dev.balances().await, before, "no money moved for a cancelled call");
    assert!(cancelled_at.elapsed() >= Duration::from_secs(3));
    // The server is still serving.
    assert!(!is_error(&call(&client, "list_accounts", json!({})).await));
}

#[tokio::test]
async fn an_auth0_style_iss_sub_login_hint_reaches_the_holder() {
    let stack = McpStack::start_with(|config, _| {
        config.mcp.login_hint_format = bankguard::config::LoginHintFormat::IssSub;
    })
    .await;
    let (client, _) = stack.http_client().await;
    let holder = stack.decide_next("approve", Duration::from_millis(100));

    let result = call(&client, "transfer_funds", transfer_args("1")).await;

    holder.await.unwrap();
    assert!(!is_error(&result), "{}", text(&result));
}

#[tokio::test]
async fn an_unreachable_provider_or_bank_is_named_in_the_error() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }; // nothing listens there any more
    let mut stack = McpStack::start().await;

    stack.reconfigure_server(|config| config.mcp.bank_api_url = Some(format!("http://{closed}/api"))).await;
    let (client, _) = stack.http_client().await;
    let result = call(&client, "list_accounts", json!({})).await;
    assert!(is_error(&result));
    assert!(text(&result).contains(&format!("the bank API at http://{closed}/api")), "{}", text(&result));
    assert!(text(&result).contains("could not be reached"));

    let bank = stack.dev.bank_api().to_owned();
    stack
        .reconfigure_server(|config| {
            config.mcp.bank_api_url = Some(bank);
            config.mcp.issuer = Some(format!("http://{closed}"));
        })
        .await;
    let (client, _) = stack.http_client().await;
    let result = call(&client, "transfer_funds", transfer_args("1")).await;
    assert!(is_error(&result));
    assert!(text(&result).contains(&format!("the authorization server at http://{closed}")), "{}", text(&result));
    assert!(text(&result).contains("could not be reached"));
}
