use std::time::Duration;

use crate::support::{BankStack, Signing, Transfer};

#[tokio::test]
async fn a_key_rotated_in_just_after_a_fetch_is_accepted_from_its_first_token() {
    // The default window: the bank once refused good tokens here until 60 s after its last fetch.
    let bank = BankStack::start().await;
    let issuer = &bank.issuer;
    let read = |signing| issuer.sign(&issuer.claims("bankguard-mcp@clients", "read:accounts"), signing);
    assert_eq!(bank.get("/api/users/alice/accounts", Some(&read(Signing::Rs256))).await.status, 200);
    assert_eq!(issuer.jwks_fetches(), 1);

    issuer.publish_rotated_key();
    let reply = bank.get("/api/users/alice/accounts", Some(&read(Signing::Rs256UnknownKid))).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(issuer.jwks_fetches(), 2, "the first token under the new key fetched it at once");
    assert_eq!(bank.get("/api/users/alice/accounts", Some(&read(Signing::Rs256))).await.status, 200);
    assert_eq!(issuer.jwks_fetches(), 2, "and the keys are cached again");

    // A burst of forged kids: the first is looked up at once and missed, the rest cost the issuer nothing.
    let forged = read(Signing::Rs256NeverPublishedKid);
    for _ in 0..5 {
        let reply = bank.get("/api/users/alice/accounts", Some(&forged)).await;
        assert_eq!((reply.status, reply.code()), (401, "invalid_token"));
        assert!(reply.body["detail"].as_str().unwrap().contains("not published"), "{:?}", reply.body);
    }
    assert_eq!(issuer.jwks_fetches(), 3, "five forged kids, one fetch");
}

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_per_interval_after_a_miss() {
    let bank = BankStack::start_with(|config| config.bank_api.jwks_refetch_interval_seconds = 2).await;
    let issuer = &bank.issuer;
    let read = |signing| issuer.sign(&issuer.claims("bankguard-mcp@clients", "read:accounts"), signing);

    assert_eq!(bank.get("/api/users/alice/accounts", Some(&read(Signing::Rs256))).await.status, 200);
    assert_eq!(issuer.jwks_fetches(), 1, "keys are fetched once and cached");
    assert_eq!(bank.get("/api/users/alice/accounts", Some(&read(Signing::Es256))).await.status, 200);
    assert_eq!(issuer.jwks_fetches(), 1);

    // Tokens under a key the provider has not published yet: the first one fetches at once (though the
    // keys were fetched a moment ago) and misses; a burst of them causes no more fetches.
    let rotated = read(Signing::Rs256UnknownKid);
    for _ in 0..5 {
        let reply = bank.get("/api/users/alice/accounts", Some(&rotated)).await;
        assert_eq!((reply.status, reply.code()), (401, "invalid_token"));
    }
    assert_eq!(issuer.jwks_fetches(), 2, "five unknown kids, one refetch");

    // Published now, but within the window after the miss: refused unfetched, until the window ends.
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
