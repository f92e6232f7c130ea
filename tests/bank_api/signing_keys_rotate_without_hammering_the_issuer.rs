use std::time::Duration;

use crate::support::{BankStack, Signing, Transfer};

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_per_interval_and_a_rotated_key_is_picked_up() {
    let bank = BankStack::start_with(|config| config.bank_api.jwks_refetch_interval_seconds = 2).await;
    let issuer = &bank.issuer;
    let read = |signing| issuer.sign(&issuer.claims("bankguard-mcp@clients", "read:accounts"), signing);

    assert_eq!(bank.get("/api/users/alice/accounts", Some(&read(Signing::Rs256))).await.status, 200);
    assert_eq!(issuer.jwks_fetches(), 1, "keys are fetched once and cached");
    assert_eq!(bank.get("/api/users/alice/accounts", Some(&read(Signing::Es256))).await.status, 200);
    assert_eq!(issuer.jwks_fetches(), 1);

    // The provider rotates in a new key. The first token under it causes one refetch, which may be
    // too early; a burst of such tokens causes no more.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let rotated = read(Signing::Rs256UnknownKid);
    for _ in 0..5 {
        let reply = bank.get("/api/users/alice/accounts", Some(&rotated)).await;
        assert_eq!((reply.status, reply.code()), (401, "invalid_token"));
    }
    assert_eq!(issuer.jwks_fetches(), 2, "five unknown kids, one refetch");

    issuer.publish_rotated_key();
    let reply = bank.get("/api/users/alice/accounts", Some(&rotated)).await;
    assert_eq!(reply.status, 401, "still inside the refetch interval");
    assert_eq!(issuer.jwks_fetches(), 2);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reply = bank.get("/api/users/alice/accounts", Some(&rotated)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(issuer.jwks_fetches(), 3);
}

#[tokio::test]
async fn a_provider_whose_discovery_names_another_issuer_is_not_trusted() {
    let bank = BankStack::start().await;
    bank.issuer.claim_issuer("https://look-alike.example/");
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "5");
    let before = bank.ledger_balances().await;

    let reply = bank.approved_transfer("alice", &transfer).await;

    assert_eq!((reply.status, reply.code()), (503, "temporarily_unavailable"));
    assert_eq!(bank.issuer.jwks_fetches(), 0, "the JWKS of an unverified provider is never read");
    assert_eq!(bank.ledger_balances().await, before);
}
