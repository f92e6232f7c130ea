//! Every invalid `transfer_funds` call is a clear tool error; the holder is never asked to approve it
//! and no balance changes.

use serde_json::{Value, json};

use crate::support::mcp::{McpStack, call, is_error, text};

fn args(changes: Value) -> Value {
    let mut args = json!({"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": "25.00"});
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            args.as_object_mut().unwrap().remove(key);
        } else {
            args[key] = value.clone();
        }
    }
    args
}

#[tokio::test]
async fn invalid_arguments_are_tool_errors_that_ask_nobody_and_move_nothing() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;
    let before = stack.dev.balances().await;
    let cases = [
        ("zero", json!({"amount": "0"}), "greater than zero"),
        ("negative", json!({"amount": "-5"}), "greater than zero"),
        ("three decimals", json!({"amount": "25.001"}), "more than two decimal places"),
        ("words", json!({"amount": "twenty"}), "not a plain decimal"),
        ("a currency sign", json!({"amount": "$25"}), "not a plain decimal"),
        ("a thousands separator", json!({"amount": "1,000"}), "not a plain decimal"),
        ("an exponent", json!({"amount": "1e3"}), "not a plain decimal"),
        ("empty", json!({"amount": ""}), "not a plain decimal"),
        ("over the limit", json!({"amount": "10000.01"}), "over the limit"),
        ("absurdly large", json!({"amount": "99999999999999999999"}), "too large"),
        ("the same account twice", json!({"to_account_id": "acc_alice_chk"}), "the same"),
        ("an empty source", json!({"from_account_id": ""}), "required"),
        ("an unknown source", json!({"from_account_id": "acc_nope"}), "There is no account acc_nope"),
        (
            "someone else's source",
            json!({"from_account_id": "acc_bob_sav"}),
            "not one of the account holder's accounts",
        ),
        ("an unknown destination", json!({"to_account_id": "acc_nope"}), "There is no account acc_nope"),
        ("a currency the source does not hold", json!({"currency": "EUR"}), "holds USD, not EUR"),
        ("a destination in another currency", json!({"to_account_id": "acc_alice_eur"}), "between currencies"),
        ("not a currency code", json!({"currency": "dollars"}), "ISO 4217"),
        ("more than the balance", json!({"amount": "2500.01"}), "too low"),
        ("a memo over 140 characters", json!({"memo": "x".repeat(141)}), "longer than 140"),
        ("a memo with a line break", json!({"memo": "one\ntwo"}), "printable"),
        ("the amount as a JSON number", json!({"amount": 25}), "amount"),
        ("no amount", json!({"amount": null}), "amount"),
        ("an unknown argument", json!({"fee": "1"}), "fee"),
    ];
    assert!(cases.len() >= 20);

    for (name, changes, expected) in cases {
        let result = call(&client, "transfer_funds", args(changes)).await;
        assert!(is_error(&result), "{name}: {}", text(&result));
        assert!(text(&result).contains(expected), "{name}: {:?} does not say {expected:?}", text(&result));
        assert_eq!(stack.approval_requests().await, 0, "{name}: the provider was asked");
    }
    assert_eq!(stack.dev.balances().await, before);
}
