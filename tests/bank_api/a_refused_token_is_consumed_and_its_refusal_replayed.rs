//! The bank consumes what it refuses. Once a request is a well-formed transfer approved by a genuine
//! token for exactly this body, the bank's answer is final: a refusal spends the token, is recorded
//! under the Idempotency-Key, and is given again to the same key and body, moving nothing, even after
//! the world has changed.

use futures::future::join_all;
use serde_json::json;

use crate::support::{BankStack, Transfer, new_intent_id};

#[tokio::test]
async fn an_overdraft_spends_its_token_and_stays_refused_after_the_account_is_funded() {
    let bank = BankStack::start().await;
    let overdraft = Transfer::new("acc_alice_chk", "acc_bob_chk", "3000.00"); // the account holds 2500.00
    let token = bank.issuer.approval_token_for_any_key("alice", &overdraft);

    let refused = bank.post_transfer(Some(&token), Some(&overdraft.intent_id), &overdraft.body()).await;
    assert_eq!((refused.status, refused.code()), (422, "insufficient_funds"), "{:?}", refused.body);
    assert_eq!(refused.header("idempotent-replayed"), "");

    let funding = bank.approved_transfer("alice", &Transfer::new("acc_alice_sav", "acc_alice_chk", "1000")).await;
    assert_eq!(funding.status, 201, "{:?}", funding.body);
    let funded = bank.balances().await;
    assert_eq!(funded["acc_alice_chk"], "3500.00");

    // The same request again would now be covered, but its answer was given: the refusal, word for word.
    let replay = bank.post_transfer(Some(&token), Some(&overdraft.intent_id), &overdraft.body()).await;
    assert_eq!(replay.status, 422);
    assert_eq!(replay.body, refused.body);
    assert_eq!(replay.header("idempotent-replayed"), "true");
    assert_eq!(replay.header("content-type"), "application/problem+json");

    // A fresh approval of the same transfer under the same key gets the same recorded refusal.
    let fresh = bank.issuer.approval_token("alice", &overdraft);
    let with_fresh = bank.post_transfer(Some(&fresh), Some(&overdraft.intent_id), &overdraft.body()).await;
    assert_eq!((with_fresh.status, &with_fresh.body), (422, &refused.body));
    assert_eq!(with_fresh.header("idempotent-replayed"), "true");

    // The spent token under a new key is refused as used, not judged again.
    let new_key = bank.post_transfer(Some(&token), Some(&new_intent_id()), &overdraft.body()).await;
    assert_eq!((new_key.status, new_key.code()), (401, "invalid_token"), "{:?}", new_key.body);
    assert!(new_key.body["detail"].as_str().unwrap().contains("already been used"), "{:?}", new_key.body);
    assert!(new_key.header("www-authenticate").contains("error=\"invalid_token\""));

    // Another transfer under the refused key is a conflict.
    let mut other = overdraft.clone();
    other.amount = "10.00";
    let conflict = bank
        .post_transfer(Some(&bank.issuer.approval_token("alice", &other)), Some(&overdraft.intent_id), &other.body())
        .await;
    assert_eq!((conflict.status, conflict.code()), (409, "idempotency_key_reused"));

    let after = bank.balances().await;
    assert_eq!(after, funded, "nothing moved after the funding");
    assert_eq!(
        (after["acc_alice_chk"].as_str(), after["acc_alice_sav"].as_str(), after["acc_bob_chk"].as_str()),
        ("3500.00", "11000.00", "1200.00")
    );
    assert_eq!(bank.transfer_rows().await, 1);
    assert_eq!(bank.consumed_tokens().await, 2, "the refused token and the funding one");
}

struct Case {
    name: &'static str,
    subject: &'static str,
    transfer: Transfer,
    status: u16,
    code: &'static str,
}

fn case(name: &'static str, subject: &'static str, transfer: Transfer, status: u16, code: &'static str) -> Case {
    Case { name, subject, transfer, status, code }
}

#[tokio::test]
async fn every_refusal_of_the_bank_spends_its_token_and_is_recorded_under_its_key() {
    let bank = BankStack::start().await;
    let in_euros = Transfer { currency: "EUR", ..Transfer::new("acc_alice_chk", "acc_bob_chk", "5") };
    let cases = [
        case(
            "bob approves a transfer from alice's account",
            "bob",
            Transfer::new("acc_alice_chk", "acc_bob_chk", "5"),
            403,
            "not_owner",
        ),
        case(
            "over the per-transfer maximum",
            "alice",
            Transfer::new("acc_alice_sav", "acc_alice_chk", "10000.01"),
            400,
            "amount_over_limit",
        ),
        case("an unknown source", "alice", Transfer::new("acc_nope", "acc_bob_chk", "5"), 404, "unknown_account"),
        case(
            "an unknown destination",
            "alice",
            Transfer::new("acc_alice_chk", "acc_nope", "5"),
            404,
            "unknown_account",
        ),
        case("a currency the accounts do not hold", "alice", in_euros, 400, "currency_mismatch"),
        case(
            "to an account in another currency",
            "alice",
            Transfer::new("acc_alice_chk", "acc_alice_eur", "5"),
            400,
            "currency_mismatch",
        ),
        case(
            "more than the balance",
            "alice",
            Transfer::new("acc_alice_chk", "acc_bob_chk", "2500.01"),
            422,
            "insufficient_funds",
        ),
    ];
    let before = bank.balances().await;

    for Case { name, subject, transfer, status, code } in &cases {
        let token = bank.issuer.approval_token_for_any_key(subject, transfer);
        let first = bank.post_transfer(Some(&token), Some(&transfer.intent_id), &transfer.body()).await;
        assert_eq!((first.status, first.code()), (*status, *code), "{name}: {}", first.body);
        assert_eq!(first.header("content-type"), "application/problem+json", "{name}");

        let replay = bank.post_transfer(Some(&token), Some(&transfer.intent_id), &transfer.body()).await;
        assert_eq!((replay.status, &replay.body), (*status, &first.body), "{name}: replay");
        assert_eq!(replay.header("idempotent-replayed"), "true", "{name}");
        assert_eq!(replay.header("www-authenticate"), first.header("www-authenticate"), "{name}");

        let reused = bank.post_transfer(Some(&token), Some(&new_intent_id()), &transfer.body()).await;
        assert_eq!((reused.status, reused.code()), (401, "invalid_token"), "{name}: the token is spent");

        let lookup = bank.idempotency_lookup(subject, &transfer.intent_id).await;
        assert_eq!(
            lookup.body,
            json!({
                "idempotency_key": transfer.intent_id, "outcome": "refused",
                "refusal": {"status": status, "code": code, "detail": first.body["detail"]},
            }),
            "{name}"
        );
    }

    assert_eq!(bank.balances().await, before, "a refusal moved money");
    assert_eq!(bank.transfer_rows().await, 0);
    assert_eq!(bank.consumed_tokens().await, cases.len() as i64);
    assert_eq!(bank.recorded_outcomes().await, cases.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_copies_of_a_refused_request_get_one_refusal() {
    let bank = BankStack::start().await;
    let overdraft = Transfer::new("acc_bob_chk", "acc_alice_chk", "1200.01"); // the account holds 1200.00
    let token = bank.issuer.approval_token("bob", &overdraft);

    let replies =
        join_all((0..20).map(|_| bank.post_transfer(Some(&token), Some(&overdraft.intent_id), &overdraft.body())))
            .await;

    assert!(replies.iter().all(|r| r.status == 422), "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(replies.iter().all(|r| r.body == replies[0].body));
    assert_eq!(replies.iter().filter(|r| r.header("idempotent-replayed").is_empty()).count(), 1);
    assert_eq!((bank.consumed_tokens().await, bank.recorded_outcomes().await), (1, 1));
    assert_eq!(bank.transfer_rows().await, 0);
    let balances = bank.balances().await;
    assert_eq!((balances["acc_bob_chk"].as_str(), balances["acc_alice_chk"].as_str()), ("1200.00", "2500.00"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_approvals_racing_under_one_key_make_one_transfer_and_spend_one_token() {
    let bank = BankStack::start().await;
    let transfer = Transfer::new("acc_bob_chk", "acc_alice_chk", "12.34");
    // Twenty separate approvals of the same transfer, as if the client had asked again and again.
    let tokens: Vec<String> = (0..20).map(|_| bank.issuer.approval_token("bob", &transfer)).collect();

    let replies = join_all(
        tokens.iter().map(|token| bank.post_transfer(Some(token), Some(&transfer.intent_id), &transfer.body())),
    )
    .await;

    assert!(replies.iter().all(|r| r.status == 201), "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(replies.iter().all(|r| r.body["id"] == replies[0].body["id"]));
    assert_eq!((bank.transfer_rows().await, bank.consumed_tokens().await), (1, 1), "replays spend nothing");
    let balances = bank.balances().await;
    assert_eq!((balances["acc_bob_chk"].as_str(), balances["acc_alice_chk"].as_str()), ("1187.66", "2512.34"));
}
