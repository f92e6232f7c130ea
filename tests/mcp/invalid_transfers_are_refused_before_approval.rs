//! Every invalid `transfer_funds` call is a clear tool error that names the argument and the reason;
//! the holder is never asked to approve it and no balance changes. The cases come from two tables:
//! one written out, and one derived from the input schemas `tools/list` gives the client, with every
//! value each property's schema forbids.

use serde_json::{Value, json};

use crate::support::mcp::{Client, McpStack, call, is_error, text};

/// Longer than this, an error is repeating what it was sent.
const MAX_ERROR_CHARS: usize = 400;

/// In a table of changes: leave this argument out.
const LEFT_OUT: &str = "<left out>";

fn args(changes: Value) -> Value {
    let mut args = json!({"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": "25.00"});
    for (key, value) in changes.as_object().unwrap() {
        if value == LEFT_OUT {
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
        ("an empty source", json!({"from_account_id": ""}), "from_account_id: must not be empty"),
        ("a 120,000-character source", json!({"from_account_id": "a".repeat(120_000)}), "from_account_id: is 120000"),
        ("a 65-character destination", json!({"to_account_id": "a".repeat(65)}), "to_account_id: is 65 characters"),
        ("a destination with a space", json!({"to_account_id": "acc bob"}), "to_account_id: holds U+0020"),
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
        ("a currency in lower case", json!({"currency": "usd"}), "currency: must be an ISO 4217 code"),
        ("a currency with a space", json!({"currency": " USD"}), "currency: must be an ISO 4217 code"),
        ("a null currency", json!({"currency": null}), "currency: must be a string, not null"),
        ("more than the balance", json!({"amount": "2500.01"}), "too low"),
        ("a memo over 140 characters", json!({"memo": "x".repeat(141)}), "memo: is 141 characters long; at most 140"),
        ("a memo with a line break", json!({"memo": "one\ntwo"}), "memo: holds U+000A (a control character)"),
        ("a memo with a tab", json!({"memo": "one\ttwo"}), "memo: holds U+0009"),
        ("a memo with a right-to-left override", json!({"memo": "Rent \u{202E}0001"}), "memo: holds U+202E"),
        ("a memo with a left-to-right isolate", json!({"memo": "\u{2066}Rent"}), "memo: holds U+2066"),
        ("a memo with a right-to-left isolate", json!({"memo": "Rent\u{2067}"}), "memo: holds U+2067"),
        ("a memo with a first-strong isolate", json!({"memo": "Re\u{2068}nt"}), "memo: holds U+2068"),
        ("a memo with a pop directional isolate", json!({"memo": "Rent\u{2069}"}), "memo: holds U+2069"),
        ("a memo with a zero-width space", json!({"memo": "Re\u{200B}nt"}), "memo: holds U+200B"),
        ("a memo with a zero-width joiner", json!({"memo": "Re\u{200D}nt"}), "memo: holds U+200D"),
        ("a memo with a word joiner", json!({"memo": "Re\u{2060}nt"}), "memo: holds U+2060"),
        ("a memo with a byte-order mark", json!({"memo": "\u{FEFF}Rent"}), "memo: holds U+FEFF"),
        ("a memo with a soft hyphen", json!({"memo": "Re\u{AD}nt"}), "memo: holds U+00AD"),
        ("a memo with a line separator", json!({"memo": "Re\u{2028}nt"}), "memo: holds U+2028"),
        ("a memo with a Hangul filler", json!({"memo": "\u{3164}"}), "memo: holds U+3164 (an invisible filler)"),
        ("a null memo", json!({"memo": null}), "memo: must be a string, not null"),
        ("an amount with a leading space", json!({"amount": " 10"}), "amount: \" 10\" is not a plain decimal"),
        ("an amount with a trailing space", json!({"amount": "10 "}), "amount: \"10 \" is not a plain decimal"),
        ("an amount with a line break", json!({"amount": "10\n"}), "amount: \"10\\u{000A}\" is not a plain decimal"),
        ("an amount with a no-break space", json!({"amount": "\u{a0}10"}), "amount: \"\\u{00A0}10\" is not a plain"),
        ("a null idempotency_key", json!({"idempotency_key": null}), "idempotency_key: must be a string, not null"),
        ("an idempotency_key with a space", json!({"idempotency_key": "two words"}), "idempotency_key: holds U+0020"),
        ("the amount as a JSON number", json!({"amount": 25}), "amount"),
        ("no amount", json!({"amount": LEFT_OUT}), "amount: is required"),
        ("a null amount", json!({"amount": null}), "amount: must be a decimal string such as \"25.00\", not null"),
        ("an unknown argument", json!({"fee": "1"}), "fee"),
    ];
    assert!(cases.len() >= 51);

    for (name, changes, expected) in cases {
        let result = call(&client, "transfer_funds", args(changes)).await;
        assert!(is_error(&result), "{name}: {}", text(&result));
        assert!(text(&result).contains(expected), "{name}: {:?} does not say {expected:?}", text(&result));
        assert!(text(&result).chars().count() < MAX_ERROR_CHARS, "{name}: a long error");
        assert_eq!(stack.approval_requests().await, 0, "{name}: the provider was asked");
    }
    assert_eq!(stack.dev.balances().await, before);
}

/// Strings that break one rule or another; a property's pattern decides which of them it forbids.
const NEAR_MISSES: [&str; 22] = [
    " 10",
    "10 ",
    "10\n",
    "\u{a0}10",
    "\t10",
    "-5",
    "+5",
    "1,000",
    "1e3",
    "25.001",
    "$25",
    "10.",
    ".5",
    "25,50",
    "usd",
    " USD",
    "US",
    "acc alice",
    "acc\u{202E}x",
    "a\u{200B}b",
    "é",
    "",
];

/// Every value the schema of one property forbids, judged by the schema alone.
fn forbidden_values(property: &Value) -> Vec<Value> {
    let mut values = Vec::new();
    let types: Vec<&str> = match &property["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let allows = |kind: &str| types.contains(&kind) || (kind == "integer" && types.contains(&"number"));
    for (kind, value) in [
        ("null", Value::Null),
        ("string", json!("5")),
        ("integer", json!(5)),
        ("boolean", json!(true)),
        ("array", json!(["25"])),
        ("object", json!({"value": "25"})),
    ] {
        if !allows(kind) {
            values.push(value);
        }
    }
    if types == ["integer"] {
        values.push(json!(1.5));
    }
    if let Some(max) = property["maxLength"].as_u64() {
        values.push(json!("9".repeat(max as usize + 1)));
        values.push(json!("9".repeat(120_000)));
    }
    if let Some(min) = property["minLength"].as_u64().filter(|min| *min > 0) {
        values.push(json!("9".repeat(min as usize - 1)));
    }
    if let Some(pattern) = property["pattern"].as_str() {
        let pattern = regex::Regex::new(pattern).unwrap();
        values.extend(NEAR_MISSES.iter().filter(|text| !pattern.is_match(text)).map(|text| json!(text)));
        values.push(json!("9".repeat(120_000) + "\n"));
    }
    if let Some(max) = property["maximum"].as_u64() {
        values.push(json!(max + 1));
    }
    if let Some(min) = property["minimum"].as_i64() {
        values.push(json!(min - 1));
    }
    values.dedup();
    values
}

/// Valid arguments for each tool, but for the one property a case breaks.
fn valid_arguments(tool: &str) -> Value {
    match tool {
        "transfer_funds" => args(json!({})),
        "get_transfer_status" => json!({"intent_id": "int_00000000000000000000000000000000"}),
        _ => json!({}),
    }
}

async fn refused_before_approval(stack: &McpStack, client: &Client, tool: &str, arguments: Value, argument: &str) {
    let value: String = arguments[argument].to_string().chars().take(40).collect();
    let case = format!("{tool} {argument}={}", value.escape_debug());
    let result = call(client, tool, arguments.clone()).await;
    let said = text(&result);
    assert!(is_error(&result), "{case}: {said}");
    assert!(said.contains(argument), "{case}: {said:?} does not name {argument}");
    assert!(said.chars().count() < MAX_ERROR_CHARS, "{case}: a long error");
    if let Some(sent) = arguments[argument].as_str().filter(|sent| sent.chars().count() > 16) {
        let prefix: String = sent.chars().take(17).collect();
        assert!(!said.contains(&prefix), "{case}: the error repeats the value");
    }
    assert_eq!(stack.approval_requests().await, 0, "{case}: the provider was asked");
}

#[tokio::test]
async fn every_value_a_tool_schema_forbids_is_refused_before_approval() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;
    let before = stack.dev.balances().await;
    let tools = serde_json::to_value(client.list_all_tools().await.unwrap()).unwrap();

    let mut cases = 0;
    for tool in tools.as_array().unwrap() {
        let name = tool["name"].as_str().unwrap();
        let schema = &tool["inputSchema"];
        for (property, rule) in schema["properties"].as_object().into_iter().flatten() {
            for value in forbidden_values(rule) {
                let mut arguments = valid_arguments(name);
                arguments[property] = value;
                refused_before_approval(&stack, &client, name, arguments, property).await;
                cases += 1;
            }
        }
        if schema["additionalProperties"] == false {
            let mut arguments = valid_arguments(name);
            arguments["note_to_self"] = json!("x");
            refused_before_approval(&stack, &client, name, arguments, "note_to_self").await;
            cases += 1;
        }
    }
    eprintln!("{cases} cases derived from the schemas");
    assert!(cases >= 150, "{cases} cases");
    assert_eq!(stack.dev.balances().await, before);
}
