//! What the bank accepts besides the embedded provider's exact spelling: `typ` as RFC 7515 §4.1.9 lets a
//! provider write `at+jwt`, the client named by Auth0's `azp`, and, set in `bank_api`, a provider that
//! sends `typ: JWT` access tokens to another client id. The refusals are in `refusals_change_nothing.rs`.

use serde_json::{Value, json};

use crate::support::{BankStack, Signing, Transfer};

/// Asks for `transfer` with an approval whose claims and header were changed as a provider would.
async fn transfer_with(
    bank: &BankStack,
    transfer: &Transfer,
    claims: impl FnOnce(&mut Value),
    header: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> crate::support::Reply {
    let mut approval = bank.issuer.approval_claims("alice", transfer);
    claims(&mut approval);
    let token = bank.issuer.sign_with_header(&approval, Signing::Rs256, header);
    bank.post_transfer(Some(&token), Some(&transfer.intent_id), &transfer.body()).await
}

#[tokio::test]
async fn at_jwt_in_any_spelling_and_the_client_named_by_azp_are_accepted() {
    let bank = BankStack::start().await;
    for typ in ["application/at+jwt", "AT+JWT", "Application/At+Jwt"] {
        let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "1.00");
        let reply = transfer_with(&bank, &transfer, |_| {}, |h| drop(h.insert("typ".into(), json!(typ)))).await;
        assert_eq!(reply.status, 201, "typ {typ}: {:?}", reply.body);
    }
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "2.00");
    let by_azp = |c: &mut Value| {
        let client = c.as_object_mut().unwrap().remove("client_id").unwrap();
        c["azp"] = client;
    };
    let reply = transfer_with(&bank, &transfer, by_azp, |_| {}).await;
    assert_eq!(reply.status, 201, "azp: {:?}", reply.body);
    assert_eq!(bank.balances().await["acc_alice_chk"], "2495.00");
}

#[tokio::test]
async fn a_bank_set_for_another_provider_accepts_its_typ_jwt_tokens_for_its_client_only() {
    let bank = BankStack::start_with(|config| {
        config.bank_api.require_at_jwt_typ = false;
        config.bank_api.accepted_client_ids = vec!["auth0-client-id".into()];
    })
    .await;
    let before = bank.ledger_balances().await;
    let theirs = |c: &mut Value| c["client_id"] = json!("auth0-client-id");

    let jwt = Transfer::new("acc_alice_chk", "acc_bob_chk", "3.00");
    let reply = transfer_with(&bank, &jwt, theirs, |h| drop(h.insert("typ".into(), json!("JWT")))).await;
    assert_eq!(reply.status, 201, "typ JWT: {:?}", reply.body);
    let untyped = Transfer::new("acc_alice_chk", "acc_bob_chk", "4.00");
    let reply = transfer_with(&bank, &untyped, theirs, |h| drop(h.remove("typ"))).await;
    assert_eq!(reply.status, 201, "no typ: {:?}", reply.body);

    // The client list replaces the default: the embedded MCP client's tokens are refused, reads included.
    let ours = Transfer::new("acc_alice_chk", "acc_bob_chk", "5.00");
    let reply = transfer_with(&bank, &ours, |_| {}, |_| {}).await;
    assert_eq!((reply.status, reply.code()), (401, "invalid_token"), "{:?}", reply.body);
    let reply = bank.get("/api/users/alice/accounts", Some(&bank.issuer.read_token())).await;
    assert_eq!((reply.status, reply.code()), (401, "invalid_token"), "{:?}", reply.body);
    // And `crit` is refused whatever the settings.
    let critical = Transfer::new("acc_alice_chk", "acc_bob_chk", "6.00");
    let crit = |h: &mut serde_json::Map<String, Value>| {
        h.insert("crit".into(), json!(["exp_ext"]));
        h.insert("exp_ext".into(), json!(1));
    };
    let reply = transfer_with(&bank, &critical, theirs, crit).await;
    assert_eq!((reply.status, reply.code()), (401, "invalid_token"), "{:?}", reply.body);

    let after = bank.ledger_balances().await;
    assert_eq!(after["acc_alice_chk"], before["acc_alice_chk"] - 700, "only the two tokens of its client moved money");
}
