//! The money policy (`[mcp.policy]`, `mcp.read_only`): every rule refuses before the holder is
//! asked, with a tool error that names the rule and what remains; the provider receives no request
//! and no balance moves. Limits come from configuration only.

use std::collections::BTreeMap;
use std::time::Duration;

use bankguard::config::{Config, PayeeMode, PolicyRules};
use serde_json::{Value, json};

use crate::support::mcp::{Client, McpStack, call, is_error, text};

fn transfer(to: &str, amount: &str) -> Value {
    json!({"from_account_id": "acc_alice_chk", "to_account_id": to, "amount": amount})
}

async fn stack_with(rules: PolicyRules, more: impl FnOnce(&mut Config)) -> McpStack {
    McpStack::start_with(|config, _| {
        config.mcp.policy.rules = rules;
        more(config);
    })
    .await
}

/// A transfer the holder approves on the device; its final status.
async fn approved(stack: &McpStack, client: &Client, arguments: Value) -> String {
    let holder = stack.decide_next("approve", Duration::from_millis(200));
    let result = call(client, "transfer_funds", arguments).await;
    holder.await.unwrap();
    result.structured_content.as_ref().map(|s| s["status"].as_str().unwrap_or_default().to_owned()).unwrap_or_default()
}

/// A transfer the holder declines.
async fn denied(stack: &McpStack, client: &Client, arguments: Value) {
    let holder = stack.decide_next("deny", Duration::from_millis(200));
    let result = call(client, "transfer_funds", arguments).await;
    holder.await.unwrap();
    assert!(is_error(&result) && text(&result).contains("declined"), "{}", text(&result));
}

/// The call is refused by `rule`, saying `remains`; nothing reached the provider since `requests`
/// and no balance moved since `balances`.
async fn refused(
    stack: &McpStack,
    client: &Client,
    arguments: Value,
    rule: &str,
    remains: &str,
    (requests, balances): (i64, &BTreeMap<String, String>),
) {
    let result = call(client, "transfer_funds", arguments).await;
    assert!(is_error(&result), "{}", text(&result));
    let message = text(&result);
    assert!(message.contains(&format!("Refused by the money policy ({rule})")), "{message}");
    assert!(message.contains(remains), "{message}");
    assert!(message.contains("Nothing was sent to the account holder"), "{message}");
    assert_eq!(stack.approval_requests().await, requests, "the provider was not asked");
    assert_eq!(&stack.dev.balances().await, balances, "nothing moved");
}

#[tokio::test]
async fn the_per_transfer_maximum_refuses_and_a_holders_override_applies_to_that_holder_only() {
    let mut stack = stack_with(PolicyRules { max_transfer_amount: Some("50.00".into()), ..Default::default() }, |c| {
        c.mcp
            .policy
            .holders
            .insert("bob".into(), PolicyRules { max_transfer_amount: Some("500.00".into()), ..Default::default() });
    })
    .await;
    let (client, _) = stack.http_client().await;
    let balances = stack.dev.balances().await;
    refused(
        &stack,
        &client,
        transfer("acc_bob_chk", "60.00"),
        "max_transfer_amount",
        "over the limit of 50.00",
        (0, &balances),
    )
    .await;
    // The refusal is in the audit trail, with its rule.
    let audit = stack.dev.intents().await.audit().await;
    let (kind, details) = audit.last().expect("an audit entry");
    assert_eq!(kind, "policy_refused");
    assert!(details.contains("max_transfer_amount"), "{details}");

    // Bob's override lets him send what alice may not.
    stack.reconfigure_server(|config| config.mcp.user = "bob".into()).await;
    let (client, _) = stack.http_client().await;
    let bobs = json!({"from_account_id": "acc_bob_chk", "to_account_id": "acc_alice_chk", "amount": "60.00"});
    assert_eq!(approved(&stack, &client, bobs).await, "completed");
}

#[tokio::test]
async fn the_rolling_daily_total_names_what_remains_and_frees_up_after_24_hours() {
    let mut totals = BTreeMap::new();
    totals.insert("USD".to_owned(), "100.00".to_owned());
    let stack = stack_with(PolicyRules { daily_total: Some(totals), ..Default::default() }, |_| {}).await;
    let (client, _) = stack.http_client().await;
    let holder = stack.decide_next("approve", Duration::from_millis(200));
    let first = call(&client, "transfer_funds", transfer("acc_bob_chk", "60.00")).await;
    holder.await.unwrap();
    assert_eq!(first.structured_content.as_ref().unwrap()["status"], "completed");
    // The result says what the limit leaves.
    assert!(
        text(&first).ends_with("Money policy: daily_total: 40.00 of 100.00 USD left in 24 hours."),
        "{}",
        text(&first)
    );
    // A declined transfer moved nothing and does not count.
    denied(&stack, &client, transfer("acc_bob_chk", "30.00")).await;

    let balances = stack.dev.balances().await;
    let requests = stack.approval_requests().await;
    refused(
        &stack,
        &client,
        transfer("acc_bob_chk", "40.01"),
        "daily_total",
        "40.00 USD remaining",
        (requests, &balances),
    )
    .await;

    // A day later the first transfer has left the window.
    stack.dev.intents().await.age(Duration::from_secs(24 * 60 * 60 + 60)).await;
    assert_eq!(approved(&stack, &client, transfer("acc_bob_chk", "90.00")).await, "completed");
}

#[tokio::test]
async fn the_daily_count_and_the_hourly_cap_on_approval_requests_refuse_at_their_limit() {
    let stack = stack_with(
        PolicyRules { daily_count: Some(1), approval_requests_per_hour: Some(3), ..Default::default() },
        |_| {},
    )
    .await;
    let (client, _) = stack.http_client().await;
    assert_eq!(approved(&stack, &client, transfer("acc_bob_chk", "5.00")).await, "completed");
    let balances = stack.dev.balances().await;
    refused(&stack, &client, transfer("acc_bob_chk", "5.00"), "daily_count", "0 remaining", (1, &balances)).await;

    // A day later: declined requests move nothing, so they leave the daily count alone, but each
    // reached the phone, so three of them fill the hour.
    stack.dev.intents().await.age(Duration::from_secs(24 * 60 * 60 + 60)).await;
    for _ in 0..3 {
        denied(&stack, &client, transfer("acc_bob_chk", "5.00")).await;
    }
    refused(
        &stack,
        &client,
        transfer("acc_bob_chk", "5.00"),
        "approval_requests_per_hour",
        "0 remaining",
        (4, &balances),
    )
    .await;
}

#[tokio::test]
async fn payees_outside_the_allow_list_or_on_the_deny_list_are_refused_and_own_accounts_are_allowed() {
    let rules = PolicyRules {
        payees: Some(PayeeMode::AllowList),
        allowed_payees: Some(vec!["acc_bob_sav".into()]),
        denied_payees: Some(vec!["acc_bob_chk".into()]),
        ..Default::default()
    };
    let stack = stack_with(rules, |_| {}).await;
    let (client, _) = stack.http_client().await;
    let balances = stack.dev.balances().await;
    refused(&stack, &client, transfer("acc_bob_chk", "5.00"), "denied_payees", "acc_bob_chk", (0, &balances)).await;
    // bob's savings are on the allow-list; his checking is on the deny list.
    assert_eq!(approved(&stack, &client, transfer("acc_bob_sav", "5.00")).await, "completed");
    assert_eq!(approved(&stack, &client, transfer("acc_alice_sav", "5.00")).await, "completed", "own accounts");
    let balances = stack.dev.balances().await;

    // Without the holder's own accounts, an empty allow-list allows nothing.
    let strict = stack_with(
        PolicyRules {
            payees: Some(PayeeMode::AllowList),
            allowed_payees: Some(vec![]),
            own_accounts_allowed: Some(false),
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let (strict_client, _) = strict.http_client().await;
    let strict_balances = strict.dev.balances().await;
    refused(
        &strict,
        &strict_client,
        transfer("acc_alice_sav", "5.00"),
        "allowed_payees",
        "allowed: none",
        (0, &strict_balances),
    )
    .await;
    assert_eq!(stack.dev.balances().await, balances);
}

#[tokio::test]
async fn a_read_only_server_lists_only_read_only_tools_and_refuses_a_direct_transfer() {
    let stack = McpStack::start_with(|config, _| config.mcp.read_only = true).await;
    let (client, _) = stack.http_client().await;
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    assert_eq!(names, ["get_transfer_status", "list_accounts"]);
    assert!(tools.iter().all(|tool| tool.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true)));

    let balances = stack.dev.balances().await;
    let params = rmcp::model::CallToolRequestParams::new("transfer_funds")
        .with_arguments(transfer("acc_bob_chk", "5.00").as_object().unwrap().clone());
    let refused = client.call_tool(params).await.unwrap_err();
    assert!(refused.to_string().contains("tool not found"), "{refused}");
    assert_eq!(stack.approval_requests().await, 0);
    assert_eq!(stack.dev.balances().await, balances);
    let accounts = call(&client, "list_accounts", json!({})).await;
    assert!(!is_error(&accounts), "{}", text(&accounts));
}
