use rmcp::model::ProtocolVersion;
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::json;

use crate::support::mcp::{McpStack, Recorder, call, is_error, text};

#[tokio::test]
async fn list_accounts_returns_the_holders_accounts_structured_and_in_words() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;

    let result = call(&client, "list_accounts", json!({})).await;

    assert!(!is_error(&result), "{}", text(&result));
    let accounts = result.structured_content.as_ref().unwrap()["accounts"].as_array().unwrap().clone();
    assert_eq!(accounts.len(), 3, "alice's three accounts");
    assert_eq!(
        accounts[0],
        json!({"id": "acc_alice_chk", "name": "Everyday Checking", "type": "checking", "masked_number": "CHK-4821",
               "currency": "USD", "balance": "2500.00", "available_balance": "2500.00"})
    );
    assert!(text(&result).contains("Everyday Checking (CHK-4821, acc_alice_chk): 2500.00 USD"));
}

#[tokio::test]
async fn a_2026_07_28_client_lists_accounts_too() {
    let stack = McpStack::start().await;
    let transport = StreamableHttpClientTransport::from_uri(stack.url());
    let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
    let client = Recorder::default().serve_with_lifecycle(transport, lifecycle).await.unwrap();

    let tools = client.list_all_tools().await.unwrap();
    let result = call(&client, "list_accounts", json!({})).await;

    assert_eq!(tools.len(), 3);
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(result.structured_content.unwrap()["accounts"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn listing_never_asks_the_holder_for_anything() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;
    for _ in 0..3 {
        assert!(!is_error(&call(&client, "list_accounts", json!({})).await));
    }
    assert_eq!(stack.approval_requests().await, 0);
}

#[tokio::test]
async fn list_accounts_takes_no_arguments_and_says_so_when_given_one() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;

    let refused = call(&client, "list_accounts", json!({"user": "bob"})).await;

    assert!(is_error(&refused));
    assert_eq!(text(&refused), "\"user\": is not an argument of this tool; it takes none");
    let bare = client.call_tool(rmcp::model::CallToolRequestParams::new("list_accounts")).await.unwrap();
    assert!(!is_error(&bare), "no arguments at all is fine: {}", text(&bare));
}
