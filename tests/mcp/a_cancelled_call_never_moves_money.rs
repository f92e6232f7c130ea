//! What a desktop client does when the user presses stop and quits: it sends
//! `notifications/cancelled` and closes the server's stdin at once. The cancellation is stored
//! before the stdio server lets go, so neither that server nor another one on the same data
//! directory ever executes the approval the holder gives afterwards.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::faulty::{FaultyStack, status, structured};
use crate::support::mcp::text;

fn line(message: Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&message).unwrap();
    bytes.push(b'\n');
    bytes
}

#[tokio::test]
async fn cancel_and_quit_then_approve_moves_no_money_even_with_another_server_running() {
    let stack = FaultyStack::start().await;
    // Another server on the same data directory, ready to take over whatever is left open.
    let other = stack.serve(1).await;
    let other_client = other.client().await;

    for attempt in 0..3 {
        let mut child =
            stack.command(&[], 45).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "desktop", "version": "1"}}});
        stdin.write_all(&line(initialize)).await.unwrap();
        let answer = stdout.next_line().await.unwrap().unwrap();
        assert!(answer.contains("\"id\":1"), "{answer}");
        stdin.write_all(&line(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))).await.unwrap();
        let amount = format!("{}.00", 80 + attempt);
        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "transfer_funds",
            "arguments": {"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": amount}}});
        stdin.write_all(&line(call)).await.unwrap();

        // The request is on the holder's device; the user presses stop and quits.
        let device = stack.dev.device();
        let request = loop {
            if let Some(request) = device.pending(None).await.unwrap().into_iter().next() {
                break request;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 2, "reason": "the user pressed stop"}});
        stdin.write_all(&line(cancel)).await.unwrap();
        drop(stdin);
        let exited = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
        assert!(exited.is_ok(), "the stdio server exits when its client quits");

        // The holder approves anyway, on the request still shown on the device.
        device.decide(None, Some(&request.auth_req_id), "approve").await.unwrap();
        let intent = stack.newest_intent().await.unwrap();
        assert_eq!(stack.stored_status(&intent).await, "cancelled", "stored before the server let go");

        // Long enough for the other server to take over anything left open (3 heartbeats) and poll.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let answer = status(&other_client, &intent, 0).await;
        assert_eq!(structured(&answer)["status"], "cancelled", "{}", text(&answer));
        assert!(text(&answer).contains("No money moved"), "{}", text(&answer));
        assert!(text(&answer).contains("may still show on the device; it will not be executed"));
        assert_eq!(stack.bank_transfers().await, 0, "attempt {attempt}: money moved after a cancel");
    }
    assert_eq!(stack.dev.balances().await["acc_alice_chk"], "2500.00");
}
