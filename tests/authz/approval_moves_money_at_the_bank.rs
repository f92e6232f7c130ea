//! End to end with the bank API: only a token approved on the device for exactly this transfer moves
//! money, and only once.

use crate::support::Transfer;
use crate::support::dev::{ClientAuth, Dev, POST_CLIENT};

async fn approved_token(dev: &Dev, transfer: &Transfer) -> String {
    let auth_req_id = dev.request_transfer_approval("alice", transfer).await;
    dev.approve(&auth_req_id).await;
    let reply = dev.poll(&auth_req_id).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_token_approved_on_the_device_moves_the_money_once() {
    let dev = Dev::start().await;
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25.00").with_memo("Dinner");
    let token = approved_token(&dev, &transfer).await;

    let reply = dev.post_transfer(&token, &transfer).await;

    assert_eq!(reply.status, 201, "{}", reply.body);
    let balances = dev.balances().await;
    assert_eq!((balances["acc_alice_chk"].as_str(), balances["acc_bob_chk"].as_str()), ("2475.00", "1225.00"));

    // The same token for a second transfer (new key, same terms otherwise) is refused.
    let mut replay = transfer.clone();
    replay.intent_id = "int_replay".into();
    let reply = dev.post_transfer(&token, &replay).await;
    assert_eq!((reply.status, reply.code()), (403, "authorization_details_mismatch"));
    assert_eq!(dev.balances().await, balances);
}

#[tokio::test]
async fn retrying_the_approved_request_returns_the_original_result_and_moves_nothing_more() {
    let dev = Dev::start().await;
    let transfer = Transfer::new("acc_alice_sav", "acc_alice_chk", "10");
    let token = approved_token(&dev, &transfer).await;
    assert_eq!(dev.post_transfer(&token, &transfer).await.status, 201);
    let balances = dev.balances().await;

    // A network retry: same token, same Idempotency-Key, same body.
    let retry = dev.post_transfer(&token, &transfer).await;
    assert_eq!(retry.status, 201, "an idempotent retry returns the original result");
    assert_eq!(retry.header("idempotent-replayed"), "true");
    assert_eq!(dev.balances().await, balances);
}

#[tokio::test]
async fn a_token_for_other_terms_moves_nothing() {
    let dev = Dev::start().await;
    let approved = Transfer::new("acc_alice_chk", "acc_bob_chk", "5.00");
    let token = approved_token(&dev, &approved).await;
    let before = dev.balances().await;

    let mut bigger = approved.clone();
    bigger.amount = "500.00";
    let reply = dev.post_transfer(&token, &bigger).await;

    assert_eq!((reply.status, reply.code()), (403, "authorization_details_mismatch"));
    assert_eq!(dev.balances().await, before);
}

#[tokio::test]
async fn a_denied_request_yields_no_token_and_moves_nothing() {
    let dev = Dev::start().await;
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "5.00");
    let before = dev.balances().await;
    let auth_req_id = dev.request_transfer_approval("alice", &transfer).await;

    dev.deny(&auth_req_id).await;
    let reply = dev.poll(&auth_req_id).await;

    assert_eq!(reply.body["error"], "access_denied");
    assert!(reply.body["access_token"].is_null());
    assert_eq!(dev.balances().await, before);
}

#[tokio::test]
async fn a_token_another_client_got_approved_moves_nothing() {
    let dev = Dev::start().await;
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "5.00");
    let before = dev.balances().await;
    // Another client registered at the same provider asks the holder, who approves exactly this transfer.
    let other = ClientAuth::Post(POST_CLIENT.0.into(), POST_CLIENT.1.into());
    let asked = dev.ask_transfer_approval(&other, "alice", &transfer, &[]).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let auth_req_id = asked.body["auth_req_id"].as_str().unwrap();
    dev.approve(auth_req_id).await;
    let grant = [("grant_type", "urn:openid:params:grant-type:ciba"), ("auth_req_id", auth_req_id)];
    let issued = dev.token(&other, &grant).await;
    assert_eq!(issued.status, 200, "{}", issued.body);

    let reply = dev.post_transfer(issued.body["access_token"].as_str().unwrap(), &transfer).await;

    assert_eq!((reply.status, reply.code()), (401, "invalid_token"), "{}", reply.body);
    assert!(reply.body["detail"].as_str().unwrap().contains("client"), "{}", reply.body);
    assert_eq!(dev.balances().await, before);
}
