//! `tools/list` is the contract with every model and client: snapshotted, so a change is deliberate.

use bankguard::authorization_details::MAX_MEMO_CHARS;
use bankguard::mcp::tools::arguments::{AMOUNT_PATTERN, MAX_ID_CHARS, MAX_IDEMPOTENCY_KEY_CHARS};
use serde_json::{Value, json};

use crate::support::mcp::McpStack;

#[tokio::test]
async fn tools_list_matches_the_snapshot() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;

    let tools = client.list_all_tools().await.unwrap();

    let tools = serde_json::to_value(&tools).unwrap();
    insta::assert_json_snapshot!("tools_list", tools);
}

#[tokio::test]
async fn annotations_and_schemas_say_what_each_tool_does() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;
    let tools = serde_json::to_value(client.list_all_tools().await.unwrap()).unwrap();
    let tool = |name: &str| tools.as_array().unwrap().iter().find(|t| t["name"] == name).cloned().unwrap();

    let list = tool("list_accounts");
    assert_eq!(list["annotations"]["readOnlyHint"], true);
    assert_eq!(list["annotations"]["idempotentHint"], true);
    assert!(list["outputSchema"]["properties"]["accounts"].is_object());

    let transfer = tool("transfer_funds");
    assert_eq!(transfer["annotations"]["destructiveHint"], true);
    assert_eq!(transfer["annotations"]["openWorldHint"], true);
    assert_eq!(transfer["annotations"]["readOnlyHint"], false);
    assert!(transfer["description"].as_str().unwrap().contains("do not ask for confirmation"));
    let input = &transfer["inputSchema"];
    assert_eq!(input["required"], json!(["from_account_id", "to_account_id", "amount"]));
    for (name, property) in input["properties"].as_object().unwrap() {
        assert!(property["description"].as_str().is_some_and(|d| !d.is_empty()), "{name} has no description");
    }
    assert_eq!(input["properties"]["amount"]["type"], "string");
    assert_eq!(input["properties"]["amount"]["pattern"], AMOUNT_PATTERN);
    for id in ["from_account_id", "to_account_id"] {
        assert_eq!(input["properties"][id]["maxLength"], MAX_ID_CHARS, "{id}");
    }
    assert_eq!(input["properties"]["memo"]["maxLength"], MAX_MEMO_CHARS);
    assert_eq!(input["properties"]["idempotency_key"]["maxLength"], MAX_IDEMPOTENCY_KEY_CHARS);
    assert!(input["properties"]["amount"]["description"].as_str().unwrap().contains("two decimal places"));
    for field in ["status", "intent_id", "reference", "expires_at", "transfer"] {
        assert!(transfer["outputSchema"]["properties"][field].is_object(), "transfer_funds output has {field}");
    }
    assert_eq!(Value::Bool(false), input["additionalProperties"]);
    assert!(input["properties"]["idempotency_key"]["description"].as_str().unwrap().contains("retry"));

    let status = tool("get_transfer_status");
    assert_eq!(status["annotations"]["readOnlyHint"], true);
    assert_eq!(status["inputSchema"]["required"], json!(["intent_id"]));
    assert_eq!(status["inputSchema"]["properties"]["wait_seconds"]["maximum"], 45);
    assert_eq!(status["inputSchema"]["properties"]["intent_id"]["maxLength"], MAX_ID_CHARS);
    assert_eq!(status["outputSchema"], transfer["outputSchema"], "one shape for an intent's status");
}

#[tokio::test]
async fn the_server_introduces_itself_as_bankguard() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;

    let info = client.peer_info().unwrap();

    assert_eq!(info.server_info.as_ref().unwrap().name, "bankguard");
    assert_eq!(info.server_info.as_ref().unwrap().version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.protocol_version.to_string(), "2025-11-25");
    assert!(info.capabilities.tools.is_some());
}
