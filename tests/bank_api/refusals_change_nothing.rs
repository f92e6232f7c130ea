//! Every way a transfer request can be refused before the bank judges it: the status, the error code,
//! the RFC 6750 challenge, and proof that no balance moved, nothing was recorded under the key and the
//! approval is still good. The bank's own refusals (accounts, ownership, currency, limits, funds) spend
//! the token instead: see `a_refused_token_is_consumed_and_its_refusal_replayed.rs`.

use serde_json::{Value, json};

use crate::support::{BankStack, Signing, Transfer, new_intent_id, now};

struct Case {
    name: &'static str,
    token: Option<String>,
    idempotency_key: Option<String>,
    body: Value,
    status: u16,
    code: &'static str,
    /// Words the problem's `detail` must contain ("" when any explanation will do).
    says: &'static str,
}

fn edited(claims: &Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut claims = claims.clone();
    edit(&mut claims);
    claims
}

#[tokio::test]
async fn every_refusal_says_why_and_moves_no_money() {
    let bank = BankStack::start().await;
    let issuer = &bank.issuer;
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25.00");
    let approval = issuer.approval_claims("alice", &transfer);
    let sign = |claims: &Value| issuer.sign(claims, Signing::Rs256);
    let good_token = sign(&approval);
    let key = Some(transfer.intent_id.clone());

    // A token approving a transfer that differs from the requested one in a single field.
    let approving = |change: fn(&mut Transfer)| {
        let mut approved = transfer.clone();
        change(&mut approved);
        sign(&issuer.approval_claims("alice", &approved))
    };
    // A memo the holder could misread, approved exactly as it is sent: the token and body agree.
    let approved_memo = |name, memo: &'static str| {
        let approved = transfer.clone().with_memo(memo);
        let token = sign(&issuer.approval_claims("alice", &approved));
        Case {
            name,
            token: Some(token),
            idempotency_key: key.clone(),
            body: approved.body(),
            status: 400,
            code: "invalid_memo",
            says: "memo",
        }
    };
    // The requested body with one field replaced, sent with a valid approval of the original.
    let body_with = |field: &str, value: Value| {
        let mut body = transfer.body();
        body[field] = value;
        body
    };

    // Spend one token so its reuse can be tried; its approval carries no intentId, so only `jti` stops it.
    let mut reusable = transfer.clone();
    reusable.amount = "1.00";
    let mut reusable_claims = issuer.approval_claims("alice", &reusable);
    reusable_claims["authorization_details"][0].as_object_mut().unwrap().remove("intentId");
    let spent_token = sign(&reusable_claims);
    let first_use = bank.post_transfer(Some(&spent_token), Some(&new_intent_id()), &reusable.body()).await;
    assert_eq!(first_use.status, 201, "{:?}", first_use.body);

    let case = |name, token: Option<String>, body: Value, status, code| Case {
        name,
        token,
        idempotency_key: key.clone(),
        body,
        status,
        code,
        says: "",
    };
    let token_case = |name, claims: Value, signing| {
        case(name, Some(issuer.sign(&claims, signing)), transfer.body(), 401, "invalid_token")
    };
    // The approval, signed by the provider's key under a header that `edit` changed; refused saying `says`.
    let header_case = |name, says, edit: fn(&mut serde_json::Map<String, Value>)| Case {
        says,
        ..case(
            name,
            Some(issuer.sign_with_header(&approval, Signing::Rs256, edit)),
            transfer.body(),
            401,
            "invalid_token",
        )
    };
    // The approval with its claims changed by `edit`, genuinely signed; refused saying `says`.
    let claims_case =
        |name, says, edit: fn(&mut Value)| Case { says, ..token_case(name, edited(&approval, edit), Signing::Rs256) };

    let cases = vec![
        // No usable credentials.
        case("no Authorization header", None, transfer.body(), 401, "missing_token"),
        Case {
            name: "Basic instead of Bearer",
            token: None,
            idempotency_key: key.clone(),
            body: json!("basic"),
            status: 401,
            code: "missing_token",
            says: "",
        },
        case("a token that is not a JWT", Some("not-a-jwt".into()), transfer.body(), 401, "invalid_token"),
        // Signature and key.
        token_case(
            "signed by an unpublished key under a published kid",
            approval.clone(),
            Signing::Rs256ForgedWithPublishedKid,
        ),
        token_case("an unknown kid", approval.clone(), Signing::Rs256UnknownKid),
        token_case("no kid", approval.clone(), Signing::Rs256WithoutKid),
        token_case("alg none", approval.clone(), Signing::None),
        token_case("HS256 keyed with the public key", approval.clone(), Signing::Hs256WithPublicKey),
        token_case("ES256 under the RSA key's kid", approval.clone(), Signing::Es256UnderRsaKid),
        case(
            "a tampered payload",
            Some({
                let mut parts: Vec<String> = good_token.split('.').map(str::to_owned).collect();
                let forged = edited(&approval, |c| c["sub"] = json!("bob"));
                parts[1] =
                    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, forged.to_string());
                parts.join(".")
            }),
            transfer.body(),
            401,
            "invalid_token",
        ),
        // Claims.
        token_case("another issuer", edited(&approval, |c| c["iss"] = json!("https://evil.example/")), Signing::Rs256),
        token_case(
            "the issuer without exact match",
            edited(&approval, |c| c["iss"] = json!(format!("{}/", issuer.url))),
            Signing::Rs256,
        ),
        token_case(
            "another audience",
            edited(&approval, |c| c["aud"] = json!("https://other-api.example")),
            Signing::Rs256,
        ),
        token_case(
            "no audience",
            edited(&approval, |c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
            Signing::Rs256,
        ),
        token_case("expired beyond the leeway", edited(&approval, |c| c["exp"] = json!(now() - 61)), Signing::Rs256),
        token_case(
            "not valid before a minute from now",
            edited(&approval, |c| c["nbf"] = json!(now() + 120)),
            Signing::Rs256,
        ),
        token_case(
            "no jti",
            edited(&approval, |c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            Signing::Rs256,
        ),
        token_case(
            "no sub",
            edited(&approval, |c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
            Signing::Rs256,
        ),
        token_case(
            "no exp",
            edited(&approval, |c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            Signing::Rs256,
        ),
        // The header: RFC 7515 §4.1.11 `crit` (the bank understands no extension) and RFC 9068 §2.1 `typ`.
        header_case("crit naming an extension the bank does not know", "crit", |h| {
            h.insert("crit".into(), json!(["urn:example:must-understand"]));
            h.insert("urn:example:must-understand".into(), json!(true));
        }),
        header_case("crit naming the unencoded-payload extension (RFC 7797 b64)", "crit", |h| {
            h.insert("crit".into(), json!(["b64"]));
            h.insert("b64".into(), json!(false));
        }),
        header_case("crit that is not an array", "crit", |h| {
            h.insert("crit".into(), json!("exp_ext"));
            h.insert("exp_ext".into(), json!(1));
        }),
        header_case("crit that is empty", "crit", |h| {
            h.insert("crit".into(), json!([]));
        }),
        header_case("crit naming a registered header parameter", "crit", |h| {
            h.insert("crit".into(), json!(["kid"]));
        }),
        header_case("crit naming a parameter the header lacks", "crit", |h| {
            h.insert("crit".into(), json!(["exp_ext"]));
        }),
        header_case("typ JWT (a JWT, not an access token)", "at+jwt", |h| {
            h.insert("typ".into(), json!("JWT"));
        }),
        header_case("no typ", "at+jwt", |h| {
            h.remove("typ");
        }),
        header_case("typ of a logout token the same provider signs", "at+jwt", |h| {
            h.insert("typ".into(), json!("logout+jwt"));
        }),
        // The client the token was issued to.
        claims_case("issued to another client", "client", |c| c["client_id"] = json!("other-app")),
        claims_case("issued to another client, named by azp (Auth0's profile)", "client", |c| {
            c.as_object_mut().unwrap().remove("client_id");
            c["azp"] = json!("other-app");
        }),
        claims_case("client_id ours but azp another client", "client", |c| c["azp"] = json!("other-app")),
        claims_case("no client_id and no azp", "client_id", |c| {
            c.as_object_mut().unwrap().remove("client_id");
        }),
        case("a token that already moved money", Some(spent_token.clone()), reusable.body(), 401, "invalid_token"),
        // Authority.
        case(
            "read:accounts instead of create:transfer",
            Some(sign(&edited(&approval, |c| c["scope"] = json!("openid read:accounts")))),
            transfer.body(),
            403,
            "insufficient_scope",
        ),
        // Transaction binding, one field at a time.
        case(
            "approval for another amount",
            Some(approving(|t| t.amount = "25.01")),
            transfer.body(),
            403,
            "authorization_details_mismatch",
        ),
        case(
            "approval for another currency",
            Some(approving(|t| t.currency = "EUR")),
            transfer.body(),
            403,
            "authorization_details_mismatch",
        ),
        case(
            "approval from another account",
            Some(approving(|t| t.from = "acc_alice_sav")),
            transfer.body(),
            403,
            "authorization_details_mismatch",
        ),
        case(
            "approval to another account",
            Some(approving(|t| t.to = "acc_bob_sav")),
            transfer.body(),
            403,
            "authorization_details_mismatch",
        ),
        case(
            "approval with another memo",
            Some(approving(|t| t.memo = Some("gift"))),
            transfer.body(),
            403,
            "authorization_details_mismatch",
        ),
        case(
            "approval for another intent",
            Some(approving(|t| t.intent_id = "int_other".into())),
            transfer.body(),
            403,
            "authorization_details_mismatch",
        ),
        case(
            "no authorization_details",
            Some(sign(&edited(&approval, |c| {
                c.as_object_mut().unwrap().remove("authorization_details");
            }))),
            transfer.body(),
            403,
            "authorization_details_mismatch",
        ),
        case(
            "two payment approvals in one token",
            Some(sign(&edited(&approval, |c| {
                let detail = c["authorization_details"][0].clone();
                c["authorization_details"] = json!([detail.clone(), detail]);
            }))),
            transfer.body(),
            403,
            "authorization_details_mismatch",
        ),
        case(
            "a malformed payment approval",
            Some(sign(&edited(&approval, |c| c["authorization_details"][0]["instructedAmount"] = json!(25)))),
            transfer.body(),
            403,
            "authorization_details_mismatch",
        ),
        // The request itself.
        case("malformed JSON", Some(good_token.clone()), json!("raw:{\"from_account_id\":"), 400, "malformed_json"),
        case(
            "amount as a JSON number",
            Some(good_token.clone()),
            body_with("amount", json!(25.0)),
            400,
            "malformed_json",
        ),
        case("an unknown field", Some(good_token.clone()), body_with("fee", json!("0")), 400, "malformed_json"),
        case("amount zero", Some(good_token.clone()), body_with("amount", json!("0.00")), 400, "invalid_amount"),
        case("amount negative", Some(good_token.clone()), body_with("amount", json!("-25.00")), 400, "invalid_amount"),
        case("three decimals", Some(good_token.clone()), body_with("amount", json!("25.001")), 400, "invalid_amount"),
        case("amount in words", Some(good_token.clone()), body_with("amount", json!("twenty")), 400, "invalid_amount"),
        case(
            "amount in exponent form",
            Some(good_token.clone()),
            body_with("amount", json!("2.5e1")),
            400,
            "invalid_amount",
        ),
        case(
            "same account twice",
            Some(good_token.clone()),
            body_with("to_account_id", json!("acc_alice_chk")),
            400,
            "same_account",
        ),
        case(
            "a currency that is not a code",
            Some(good_token.clone()),
            body_with("currency", json!("dollars")),
            400,
            "invalid_currency",
        ),
        case(
            "a memo of 141 characters",
            Some(good_token.clone()),
            body_with("memo", json!("x".repeat(141))),
            400,
            "invalid_memo",
        ),
        case(
            "a memo with a control character",
            Some(good_token.clone()),
            body_with("memo", json!("line\nbreak")),
            400,
            "invalid_memo",
        ),
        approved_memo("a memo with a right-to-left override", "Rent \u{202E}0001"),
        approved_memo("a memo with a left-to-right isolate", "\u{2066}Rent\u{2069}"),
        approved_memo("a memo with a right-to-left isolate", "Rent\u{2067}"),
        approved_memo("a memo with a first-strong isolate", "Re\u{2068}nt"),
        approved_memo("a memo with a zero-width space", "Re\u{200B}nt"),
        approved_memo("a memo with a zero-width joiner", "Re\u{200D}nt"),
        approved_memo("a memo with a byte-order mark", "\u{FEFF}Rent"),
        approved_memo("a memo with a soft hyphen", "Re\u{AD}nt"),
        approved_memo("a memo with a Hangul filler", "\u{3164}"),
        approved_memo("a memo not in NFC", "Cafe\u{301}"),
        Case {
            name: "no Idempotency-Key",
            token: Some(good_token.clone()),
            idempotency_key: None,
            body: transfer.body(),
            status: 400,
            code: "missing_idempotency_key",
            says: "",
        },
        Case {
            name: "an Idempotency-Key with spaces",
            token: Some(good_token.clone()),
            idempotency_key: Some("two words".into()),
            body: transfer.body(),
            status: 400,
            code: "invalid_idempotency_key",
            says: "",
        },
    ];
    assert!(cases.len() >= 62, "{} cases", cases.len());

    let before = bank.balances().await;
    let rows_before = bank.transfer_rows().await;
    for case in cases {
        let reply = send(&bank, &case).await;
        assert_eq!((reply.status, reply.code()), (case.status, case.code), "{}: {}", case.name, reply.body);
        assert_eq!(reply.header("content-type"), "application/problem+json", "{}", case.name);
        let detail = reply.body["detail"].as_str().unwrap_or_default();
        assert!(!detail.is_empty(), "{}: no detail", case.name);
        assert!(detail.contains(case.says), "{}: the detail {detail:?} does not say {:?}", case.name, case.says);
        let challenge = reply.header("www-authenticate");
        if let Some(token) = case.token.as_deref().filter(|token| token.len() > 16) {
            let signature = token.rsplit('.').next().unwrap_or_default();
            for told in [reply.body.to_string(), challenge.to_owned()] {
                assert!(!told.contains(token), "{}: the token is echoed", case.name);
                assert!(signature.len() < 16 || !told.contains(signature), "{}: the signature is echoed", case.name);
            }
        }
        match case.status {
            401 if case.code == "missing_token" => assert_eq!(challenge, "Bearer realm=\"bankguard-bank\""),
            401 => assert!(challenge.contains("error=\"invalid_token\""), "{}: {challenge}", case.name),
            403 => assert!(challenge.contains("error=\"insufficient_scope\""), "{}: {challenge}", case.name),
            _ => assert_eq!(challenge, "", "{}", case.name),
        }
        assert_eq!(bank.balances().await, before, "{}: a balance changed", case.name);
    }
    assert_eq!(bank.transfer_rows().await, rows_before);
    let lookup = bank
        .get(&format!("/api/users/alice/idempotency-keys/{}", transfer.intent_id), Some(&issuer.read_token()))
        .await;
    assert_eq!((lookup.status, lookup.code()), (404, "unknown_idempotency_key"), "refusals recorded nothing");

    // The original approval still works: refusals consumed nothing.
    let reply = bank.post_transfer(Some(&good_token), key.as_deref(), &transfer.body()).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}

async fn send(bank: &BankStack, case: &Case) -> crate::support::Reply {
    let mut request = bank.http.post(format!("{}/api/transfers", bank.base_url));
    request = match &case.body {
        Value::String(raw) if raw == "basic" => request.basic_auth("bankguard-mcp", Some("secret")).json(&json!({})),
        Value::String(raw) if raw.starts_with("raw:") => {
            request.header("content-type", "application/json").body(raw["raw:".len()..].to_owned())
        }
        body => request.json(body),
    };
    if let Some(token) = &case.token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = &case.idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    crate::support::send(request).await
}
