use crate::support::{BankStack, Signing, Transfer};

#[tokio::test]
async fn an_approved_transfer_moves_exactly_the_amount_and_is_readable_afterwards() {
    let bank = BankStack::start().await;
    let before = bank.balances().await;
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25.5").with_memo("Dinner, split 50/50");

    let reply = bank.approved_transfer("alice", &transfer).await;

    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("trf_"));
    assert_eq!(reply.body["status"], "completed");
    assert_eq!(reply.body["amount"], "25.50");
    assert_eq!(reply.body["currency"], "USD");
    assert_eq!(reply.body["memo"], "Dinner, split 50/50");
    assert_eq!(reply.body["from_account_balance_after"], "2474.50");
    assert_eq!(reply.header("location"), format!("/api/transfers/{id}"));

    let after = bank.balances().await;
    assert_eq!(before["acc_alice_chk"], "2500.00");
    assert_eq!(after["acc_alice_chk"], "2474.50");
    assert_eq!(before["acc_bob_chk"], "1200.00");
    assert_eq!(after["acc_bob_chk"], "1225.50");
    let untouched = |id: &str| before[id] == after[id];
    assert!(untouched("acc_alice_sav") && untouched("acc_alice_eur") && untouched("acc_bob_sav"));

    // The owner reads it back with the same approval token's subject; the MCP server with read:accounts.
    let owner_token = bank.issuer.sign(&bank.issuer.claims("alice", "openid"), Signing::Rs256);
    let by_owner = bank.get(&format!("/api/transfers/{id}"), Some(&owner_token)).await;
    assert_eq!(by_owner.status, 200);
    assert_eq!(by_owner.body, reply.body);
    let by_reader = bank.get(&format!("/api/transfers/{id}"), Some(&bank.issuer.read_token())).await;
    assert_eq!(by_reader.status, 200);

    let stranger = bank.issuer.sign(&bank.issuer.claims("bob", "openid"), Signing::Rs256);
    let by_stranger = bank.get(&format!("/api/transfers/{id}"), Some(&stranger)).await;
    assert_eq!((by_stranger.status, by_stranger.code()), (403, "not_owner"));
    let unknown = bank.get("/api/transfers/trf_nope", Some(&owner_token)).await;
    assert_eq!((unknown.status, unknown.code()), (404, "unknown_transfer"));
    let anonymous = bank.get(&format!("/api/transfers/{id}"), None).await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn es256_approvals_are_accepted_like_rs256_ones() {
    let bank = BankStack::start().await;
    let transfer = Transfer::new("acc_bob_sav", "acc_bob_chk", "100");
    let token = bank.issuer.sign(&bank.issuer.approval_claims("bob", &transfer), Signing::Es256);

    let reply = bank.post_transfer(Some(&token), Some(&transfer.intent_id), &transfer.body()).await;

    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let balances = bank.balances().await;
    assert_eq!((balances["acc_bob_sav"].as_str(), balances["acc_bob_chk"].as_str()), ("4900.00", "1300.00"));
}

#[tokio::test]
async fn each_transfer_leaves_two_ledger_entries_that_sum_to_zero() {
    let bank = BankStack::start().await;
    for amount in ["1", "2.25", "300.10"] {
        let reply = bank.approved_transfer("alice", &Transfer::new("acc_alice_sav", "acc_alice_chk", amount)).await;
        assert_eq!(reply.status, 201);
    }
    let ledger = bank.ledger().await;
    let per_transfer: Vec<(i64, i64)> =
        sqlx::query_as("SELECT count(*), sum(amount_minor) FROM ledger_entries GROUP BY transfer_id")
            .fetch_all(&ledger)
            .await
            .unwrap();
    assert_eq!(per_transfer, vec![(2, 0); 3]);
}

#[tokio::test]
async fn the_ledger_survives_a_restart_with_its_balances() {
    let bank = BankStack::start().await;
    let reply = bank.approved_transfer("alice", &Transfer::new("acc_alice_chk", "acc_bob_sav", "10")).await;
    assert_eq!(reply.status, 201);

    let again = bank.restarted().await;

    let balances = again.balances().await;
    assert_eq!(balances["acc_alice_chk"], "2490.00", "not re-seeded, not lost");
    assert_eq!(balances["acc_bob_sav"], "5010.00");
}

#[tokio::test]
async fn with_transaction_binding_switched_off_scope_and_ownership_still_decide() {
    let bank = BankStack::start_with(|config| config.bank_api.require_transaction_binding = false).await;
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "7");
    let unbound = bank.issuer.sign(&bank.issuer.claims("alice", "openid create:transfer"), Signing::Rs256);

    let reply = bank.post_transfer(Some(&unbound), Some(&transfer.intent_id), &transfer.body()).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);

    let bobs = bank.issuer.sign(&bank.issuer.claims("bob", "openid create:transfer"), Signing::Rs256);
    let again = Transfer::new("acc_alice_chk", "acc_bob_chk", "7");
    let reply = bank.post_transfer(Some(&bobs), Some(&again.intent_id), &again.body()).await;
    assert_eq!((reply.status, reply.code()), (403, "not_owner"));
}

#[tokio::test]
async fn by_default_an_approval_without_authorization_details_moves_nothing() {
    let bank = BankStack::start().await;
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "7");
    let unbound = bank.issuer.sign(&bank.issuer.claims("alice", "openid create:transfer"), Signing::Rs256);

    let reply = bank.post_transfer(Some(&unbound), Some(&transfer.intent_id), &transfer.body()).await;
    assert_eq!((reply.status, reply.code()), (403, "authorization_details_mismatch"));
}
