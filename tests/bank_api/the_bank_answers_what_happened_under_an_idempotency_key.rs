//! `GET /api/users/{sub}/idempotency-keys/{key}`: before it reports a transfer as failed, the MCP server
//! asks the bank what happened under the key. The bank answers executed (the transfer, as the POST
//! returned it), refused (the refusal the POST gave), or 404: nothing, so no transfer exists for it.

use bankguard::bank::{BankClient, BankError, RequestOutcome, TransferReceipt};
use bankguard::ciba::types::Secret;
use serde_json::json;

use crate::support::{BankStack, Transfer, new_intent_id};

fn path(user: &str, key: &str) -> String {
    format!("/api/users/{user}/idempotency-keys/{key}")
}

#[tokio::test]
async fn an_executed_request_is_answered_with_the_transfer_the_post_returned() {
    let bank = BankStack::start().await;
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25").with_memo("Dinner");
    let posted = bank.approved_transfer("alice", &transfer).await;
    assert_eq!(posted.status, 201, "{:?}", posted.body);

    for (who, token) in [("the MCP server", bank.issuer.read_token()), ("alice", bank.issuer.own_token("alice"))] {
        let answer = bank.get(&path("alice", &transfer.intent_id), Some(&token)).await;
        assert_eq!(answer.status, 200, "{who}: {:?}", answer.body);
        assert_eq!(
            answer.body,
            json!({"idempotency_key": transfer.intent_id, "outcome": "executed", "transfer": posted.body}),
            "{who}"
        );
    }
}

#[tokio::test]
async fn a_refused_request_is_answered_with_its_refusal() {
    let bank = BankStack::start().await;
    let overdraft = Transfer::new("acc_alice_chk", "acc_bob_chk", "2500.01");
    let posted = bank.approved_transfer("alice", &overdraft).await;
    assert_eq!((posted.status, posted.code()), (422, "insufficient_funds"));

    let answer = bank.idempotency_lookup("alice", &overdraft.intent_id).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        answer.body,
        json!({
            "idempotency_key": overdraft.intent_id, "outcome": "refused",
            "refusal": {"status": 422, "code": "insufficient_funds", "detail": posted.body["detail"]},
        })
    );
}

#[tokio::test]
async fn a_key_with_nothing_recorded_is_a_404_and_so_is_an_unknown_user() {
    let bank = BankStack::start().await;
    let never_used = bank.idempotency_lookup("alice", &new_intent_id()).await;
    assert_eq!((never_used.status, never_used.code()), (404, "unknown_idempotency_key"));
    assert_eq!(never_used.header("content-type"), "application/problem+json");

    // Refused before the bank judged it (an approval of another amount): nothing recorded either.
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25");
    let mut approved = transfer.clone();
    approved.amount = "24.99";
    let token = bank.issuer.approval_token("alice", &approved);
    let mismatch = bank.post_transfer(Some(&token), Some(&transfer.intent_id), &transfer.body()).await;
    assert_eq!((mismatch.status, mismatch.code()), (403, "authorization_details_mismatch"));
    let unjudged = bank.idempotency_lookup("alice", &transfer.intent_id).await;
    assert_eq!((unjudged.status, unjudged.code()), (404, "unknown_idempotency_key"));

    let unknown_user = bank.idempotency_lookup("mallory", &transfer.intent_id).await;
    assert_eq!((unknown_user.status, unknown_user.code()), (404, "unknown_user"));

    for key in ["x".repeat(256), "two%20words".to_owned()] {
        let invalid = bank.idempotency_lookup("alice", &key).await;
        assert_eq!((invalid.status, invalid.code()), (400, "invalid_idempotency_key"), "{key}");
    }
}

#[tokio::test]
async fn only_the_user_or_a_reader_of_accounts_may_ask_and_keys_are_per_user() {
    let bank = BankStack::start().await;
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25");
    assert_eq!(bank.approved_transfer("alice", &transfer).await.status, 201);
    let bobs_token = bank.issuer.own_token("bob");

    let bob_asks_about_alice = bank.get(&path("alice", &transfer.intent_id), Some(&bobs_token)).await;
    assert_eq!((bob_asks_about_alice.status, bob_asks_about_alice.code()), (403, "not_owner"));
    assert!(bob_asks_about_alice.header("www-authenticate").contains("error=\"insufficient_scope\""));

    let under_bobs_name = bank.get(&path("bob", &transfer.intent_id), Some(&bobs_token)).await;
    assert_eq!((under_bobs_name.status, under_bobs_name.code()), (404, "unknown_idempotency_key"));
    let reader_under_bobs_name = bank.idempotency_lookup("bob", &transfer.intent_id).await;
    assert_eq!((reader_under_bobs_name.status, reader_under_bobs_name.code()), (404, "unknown_idempotency_key"));

    let anonymous = bank.get(&path("alice", &transfer.intent_id), None).await;
    assert_eq!((anonymous.status, anonymous.code()), (401, "missing_token"));
}

#[tokio::test]
async fn the_bank_client_tells_executed_refused_and_nothing_apart() {
    let bank = BankStack::start().await;
    let client = BankClient::new(&format!("{}/api", bank.base_url), bank.http.clone());
    let reader = Secret::new(bank.issuer.read_token());
    let executed = Transfer::new("acc_alice_chk", "acc_bob_chk", "25");
    let posted = bank.approved_transfer("alice", &executed).await;
    assert_eq!(posted.status, 201);
    let overdraft = Transfer::new("acc_alice_chk", "acc_bob_chk", "2475.01");
    let refused = bank.approved_transfer("alice", &overdraft).await;
    assert_eq!(refused.status, 422);

    let receipt: TransferReceipt = serde_json::from_value(posted.body.clone()).unwrap();
    assert_eq!(
        client.request_outcome("alice", &executed.intent_id, &reader).await.unwrap(),
        Some(RequestOutcome::Executed(receipt))
    );
    assert_eq!(
        client.request_outcome("alice", &overdraft.intent_id, &reader).await.unwrap(),
        Some(RequestOutcome::Refused {
            status: 422,
            code: "insufficient_funds".into(),
            detail: refused.body["detail"].as_str().unwrap().into(),
        })
    );
    assert_eq!(client.request_outcome("alice", &new_intent_id(), &reader).await.unwrap(), None);

    let unknown_user = client.request_outcome("mallory", &executed.intent_id, &reader).await.unwrap_err();
    assert!(matches!(&unknown_user, BankError::Refused { status: 404, code, .. } if code == "unknown_user"));
    assert!(!unknown_user.is_transient(), "the bank said no");

    let stranger = Secret::new(bank.issuer.own_token("bob"));
    let forbidden = client.request_outcome("alice", &executed.intent_id, &stranger).await.unwrap_err();
    assert!(matches!(forbidden, BankError::Refused { status: 403, .. }) && !forbidden.is_transient());

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let nowhere = BankClient::new(&format!("http://{closed}/api"), bank.http.clone());
    let unreachable = nowhere.request_outcome("alice", &executed.intent_id, &reader).await.unwrap_err();
    assert!(matches!(unreachable, BankError::Unreachable { .. }) && unreachable.is_transient());
}
