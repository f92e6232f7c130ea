use std::collections::BTreeMap;

use futures::future::join_all;

use crate::support::{BankStack, Transfer};

const ACCOUNTS: [(&str, &str); 4] =
    [("acc_alice_chk", "alice"), ("acc_alice_sav", "alice"), ("acc_bob_chk", "bob"), ("acc_bob_sav", "bob")];

fn total_minor(balances: &BTreeMap<String, String>) -> i64 {
    ACCOUNTS.iter().map(|(id, _)| bankguard::money::MinorUnits::parse_decimal(&balances[*id]).unwrap().0).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_transfers_among_four_accounts_conserve_money() {
    let bank = BankStack::start().await;
    let before = bank.balances().await;

    // A fixed pseudo-random mix of pairs and amounts, large enough that some transfers overdraw.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    let amounts: Vec<&'static str> =
        (0..200).map(|_| &*Box::leak(format!("{}.{:02}", 1 + next(3000), next(100)).into_boxed_str())).collect();
    let requests: Vec<(Transfer, String)> = amounts
        .into_iter()
        .map(|amount| {
            let from = next(4) as usize;
            let to = (from + 1 + next(3) as usize) % 4;
            let transfer = Transfer::new(ACCOUNTS[from].0, ACCOUNTS[to].0, amount);
            let token = bank.issuer.approval_token(ACCOUNTS[from].1, &transfer);
            (transfer, token)
        })
        .collect();

    let replies = join_all(
        requests
            .iter()
            .map(|(transfer, token)| bank.post_transfer(Some(token), Some(&transfer.intent_id), &transfer.body())),
    )
    .await;

    let succeeded = replies.iter().filter(|r| r.status == 201).count();
    let overdrawn = replies.iter().filter(|r| r.status == 422).count();
    assert_eq!(succeeded + overdrawn, 200, "only successes and insufficient funds are expected");
    assert!(succeeded > 0 && overdrawn > 0, "the mix must exercise both: {succeeded} ok, {overdrawn} overdrawn");

    let after = bank.balances().await;
    assert_eq!(total_minor(&after), total_minor(&before), "money was created or destroyed");
    assert!(after.values().all(|b| !b.starts_with('-')), "a balance went negative: {after:?}");
    assert_eq!(bank.transfer_rows().await as usize, succeeded);

    // Replaying the ledger entries from the opening balances gives today's balances.
    let ledger = bank.ledger().await;
    let net: Vec<(String, i64)> =
        sqlx::query_as("SELECT account_id, sum(amount_minor) FROM ledger_entries GROUP BY account_id")
            .fetch_all(&ledger)
            .await
            .unwrap();
    for (account, delta) in net {
        let opening = bankguard::money::MinorUnits::parse_decimal(&before[&account]).unwrap().0;
        let now = bankguard::money::MinorUnits::parse_decimal(&after[&account]).unwrap().0;
        assert_eq!(opening + delta, now, "{account}");
    }
}
