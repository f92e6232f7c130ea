use crate::support::{BankStack, Signing};

#[tokio::test]
async fn the_mcp_server_lists_a_users_accounts_with_exact_balances() {
    let bank = BankStack::start().await;

    let reply = bank.get("/api/users/alice/accounts", Some(&bank.issuer.read_token())).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let accounts = reply.body["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 3);
    let checking = accounts.iter().find(|a| a["id"] == "acc_alice_chk").unwrap();
    assert_eq!(
        *checking,
        serde_json::json!({
            "id": "acc_alice_chk", "name": "Everyday Checking", "type": "checking", "masked_number": "CHK-4821",
            "currency": "USD", "balance": "2500.00", "available_balance": "2500.00"
        })
    );
    assert!(accounts.iter().any(|a| a["currency"] == "EUR"));
}

#[tokio::test]
async fn listing_needs_read_accounts_and_a_known_user() {
    let bank = BankStack::start().await;
    let approval_only = bank.issuer.sign(&bank.issuer.claims("alice", "openid create:transfer"), Signing::Rs256);

    let without_scope = bank.get("/api/users/alice/accounts", Some(&approval_only)).await;
    assert_eq!((without_scope.status, without_scope.code()), (403, "insufficient_scope"));
    assert!(without_scope.header("www-authenticate").contains("scope=\"read:accounts\""));

    let anonymous = bank.get("/api/users/alice/accounts", None).await;
    assert_eq!((anonymous.status, anonymous.code()), (401, "missing_token"));

    let unknown = bank.get("/api/users/mallory/accounts", Some(&bank.issuer.read_token())).await;
    assert_eq!((unknown.status, unknown.code()), (404, "unknown_user"));

    // Reads too are for the accepted clients (bank_api.accepted_client_ids) only.
    let mut others = bank.issuer.claims("other-app@clients", "read:accounts");
    others["client_id"] = "other-app".into();
    let reply = bank.get("/api/users/alice/accounts", Some(&bank.issuer.sign(&others, Signing::Rs256))).await;
    assert_eq!((reply.status, reply.code()), (401, "invalid_token"), "{:?}", reply.body);
    assert!(reply.header("www-authenticate").contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn a_read_token_can_be_used_many_times() {
    let bank = BankStack::start().await;
    let token = bank.issuer.read_token();
    for _ in 0..3 {
        assert_eq!(bank.get("/api/users/bob/accounts", Some(&token)).await.status, 200);
    }
}
