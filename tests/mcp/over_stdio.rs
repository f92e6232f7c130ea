//! `bankguard serve` over stdio, as a desktop client or IDE starts it; and what it lets out.

use std::time::Duration;

use serde_json::json;

use crate::support::mcp::{McpStack, call, is_error, text};

#[tokio::test]
async fn a_stdio_client_lists_accounts_and_moves_money_with_approval_and_no_token_escapes() {
    let stack = McpStack::start().await;
    let log = stack.dev.data_path("serve-stderr.log");
    let (client, recorder) = stack.stdio_client(&log).await;

    let info = client.peer_info().unwrap().clone();
    let tools = client.list_all_tools().await.unwrap();
    let accounts = call(&client, "list_accounts", json!({})).await;
    let holder = stack.decide_next("approve", Duration::from_millis(300));
    let transfer = call(
        &client,
        "transfer_funds",
        json!({"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_sav", "amount": "12.34"}),
    )
    .await;
    holder.await.unwrap();

    assert_eq!(info.server_info.as_ref().unwrap().name, "bankguard");
    assert_eq!(tools.len(), 3);
    assert!(!is_error(&accounts), "{}", text(&accounts));
    assert!(!is_error(&transfer), "{}", text(&transfer));
    let balances = stack.dev.balances().await;
    assert_eq!((balances["acc_alice_chk"].as_str(), balances["acc_bob_sav"].as_str()), ("2487.66", "5012.34"));

    client.cancel().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("transfer executed"), "debug logs were captured: {logs}");
    // Everything the client received and everything the server logged: no JWT, no client secret.
    let transcript = format!(
        "{}\n{}\n{}\n{}\n{}",
        serde_json::to_string(&info).unwrap(),
        serde_json::to_string(&tools).unwrap(),
        serde_json::to_string(&accounts).unwrap(),
        serde_json::to_string(&transfer).unwrap(),
        recorder.messages().join("\n"),
    );
    let secret = stack.dev.mcp().client_secret.clone();
    for (what, text) in [("the client", &transcript), ("the logs", &logs)] {
        assert!(!text.contains("eyJ"), "a JWT reached {what}");
        assert!(!text.contains(&secret), "the client secret reached {what}");
    }
}
