use futures::future::join_all;

use crate::support::{BankStack, Transfer};

#[tokio::test]
async fn a_retry_with_the_same_key_and_body_gets_the_original_response_and_moves_nothing() {
    let bank = BankStack::start().await;
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "40");
    let token = bank.issuer.approval_token("alice", &transfer);

    let first = bank.post_transfer(Some(&token), Some(&transfer.intent_id), &transfer.body()).await;
    let balances = bank.balances().await;
    // "40.00" is the same amount as "40": the same body.
    let mut retry_body = transfer.body();
    retry_body["amount"] = "40.00".into();
    let retry = bank.post_transfer(Some(&token), Some(&transfer.intent_id), &retry_body).await;

    assert_eq!(first.status, 201);
    assert_eq!(retry.status, 201);
    assert_eq!(retry.body, first.body);
    assert_eq!(first.header("idempotent-replayed"), "");
    assert_eq!(retry.header("idempotent-replayed"), "true");
    assert_eq!(bank.balances().await, balances);
    assert_eq!(bank.transfer_rows().await, 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_conflict() {
    let bank = BankStack::start().await;
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "40");
    let first = bank.approved_transfer("alice", &transfer).await;
    assert_eq!(first.status, 201);
    let balances = bank.balances().await;

    let mut other = transfer.clone();
    other.amount = "41";
    let reply = bank.approved_transfer("alice", &other).await;

    assert_eq!((reply.status, reply.code()), (409, "idempotency_key_reused"));
    assert_eq!(bank.balances().await, balances);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_requests_with_one_key_make_exactly_one_transfer() {
    let bank = BankStack::start().await;
    let transfer = Transfer::new("acc_bob_chk", "acc_alice_chk", "12.34");
    let token = bank.issuer.approval_token("bob", &transfer);

    let replies =
        join_all((0..20).map(|_| bank.post_transfer(Some(&token), Some(&transfer.intent_id), &transfer.body()))).await;

    assert!(replies.iter().all(|r| r.status == 201), "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    let id = &replies[0].body["id"];
    assert!(replies.iter().all(|r| r.body["id"] == *id));
    assert_eq!(replies.iter().filter(|r| r.header("idempotent-replayed").is_empty()).count(), 1);
    assert_eq!(bank.transfer_rows().await, 1);
    let balances = bank.balances().await;
    assert_eq!((balances["acc_bob_chk"].as_str(), balances["acc_alice_chk"].as_str()), ("1187.66", "2512.34"));
}
