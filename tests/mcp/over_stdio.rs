//! `bankguard serve` over stdio, as a desktop client or IDE starts it; what it lets out; and how it
//! answers lines that are not MCP messages.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

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
    // The one JWS the client may see (and rmcp's debug log may show) is the server's own receipt,
    // which is not a credential; no token reaches either.
    let receipt = transfer.structured_content.as_ref().unwrap()["receipt"].as_str().unwrap().to_owned();
    assert!(receipt_type(&receipt) == "bankguard-receipt", "{receipt}");
    for (what, text) in [("the client", transcript.replace(&receipt, "")), ("the logs", logs.replace(&receipt, ""))] {
        assert!(!text.contains("eyJ"), "a JWT reached {what}");
        assert!(!text.contains(&secret), "the client secret reached {what}");
    }
}

/// The `typ` in a compact JWS's header.
fn receipt_type(jws: &str) -> String {
    use base64::Engine;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jws.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<serde_json::Value>(&header).unwrap()["typ"].as_str().unwrap_or_default().to_owned()
}

/// `bankguard serve` with its stdin and stdout in the test's hands, line by line.
struct RawStdio {
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl RawStdio {
    fn spawn(stack: &McpStack, log: &std::path::Path) -> Self {
        let mut child = stack
            .serve_command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        Self { _child: child, stdin, stdout: BufReader::new(stdout).lines() }
    }

    async fn write_line(&mut self, line: &str) {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The next line on stdout, which must be one JSON-RPC message.
    async fn next_message(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), self.stdout.next_line())
            .await
            .expect("the server answers within 10 s")
            .unwrap()
            .expect("stdout is open");
        let message: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("stdout carries only JSON: {line}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
        message
    }

    /// Sends `tools/list` with `id` and checks it is answered with the three tools.
    async fn still_serves(&mut self, id: u64) {
        self.write_line(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}).to_string()).await;
        let answer = self.next_message().await;
        assert_eq!(answer["id"], id, "{answer}");
        assert_eq!(answer["result"]["tools"].as_array().map(Vec::len), Some(3), "{answer}");
    }
}

#[tokio::test]
async fn over_stdio_a_line_that_is_not_a_message_gets_its_json_rpc_error_and_the_next_request_is_served() {
    let stack = McpStack::start().await;
    let mut server = RawStdio::spawn(&stack, &stack.dev.data_path("serve-stderr.log"));
    server
        .write_line(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
                "capabilities": {}, "clientInfo": {"name": "raw-lines", "version": "1"}}})
            .to_string(),
        )
        .await;
    assert_eq!(server.next_message().await["result"]["serverInfo"]["name"], "bankguard");
    server.write_line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;

    for (n, (line, code, id)) in [
        ("this is not json", -32700, Value::Null),
        (r#"{"jsonrpc":"2.0","id":1,"method":"tools/list""#, -32700, Value::Null),
        (r#"{"id":2,"method":"tools/list"}"#, -32600, json!(2)),
        (r#"[{"jsonrpc":"2.0","id":3,"method":"tools/list"}]"#, -32600, Value::Null),
        (r#"{"jsonrpc":"2.0","id":"four","method":"tools/list","params":[]}"#, -32600, json!("four")),
        ("42", -32600, Value::Null),
    ]
    .into_iter()
    .enumerate()
    {
        server.write_line(line).await;
        let answer = server.next_message().await;
        assert_eq!(answer["error"]["code"], code, "{line} -> {answer}");
        assert_eq!(answer.get("id"), Some(&id), "{line} -> {answer}: the id, null when unreadable");
        server.still_serves(100 + n as u64).await;
    }

    // A notification is never answered, not even one that cannot be read: the next line on stdout
    // is the answer to the next request.
    server.write_line(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":[]}"#).await;
    server.still_serves(200).await;
}

#[tokio::test]
async fn over_stdio_the_server_acts_for_the_configured_holder_even_where_http_clients_sign_in() {
    let stack = McpStack::start().await;
    let mut command = stack.serve_command();
    command.env("BANKGUARD_MCP__AUTH", "oauth").env("BANKGUARD_MCP__USER", "bob");
    let log = std::fs::File::create(stack.dev.data_path("serve-stderr.log")).unwrap();
    let (transport, _) = rmcp::transport::TokioChildProcess::builder(command).stderr(log).spawn().unwrap();
    let client = rmcp::ServiceExt::serve(crate::support::mcp::Recorder::default(), transport).await.unwrap();

    let accounts = call(&client, "list_accounts", json!({})).await;

    assert!(!is_error(&accounts), "{}", text(&accounts));
    assert!(text(&accounts).contains("acc_bob_chk") && !text(&accounts).contains("acc_alice"), "{}", text(&accounts));
}
