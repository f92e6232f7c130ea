//! CIBA Core §7 and §13: every way `/bc-authorize` refuses, with the spec's code and status, and the
//! forms of user hint and client authentication it accepts.

use serde_json::json;

use crate::support::Transfer;
use crate::support::dev::{ClientAuth, Dev, MACHINE_CLIENT, POST_CLIENT, ping_client};

const AUDIENCE: &str = "urn:bankguard:bank-api";

fn payment(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut detail = Transfer::new("acc_alice_chk", "acc_bob_chk", "25.00").binding();
    edit(&mut detail);
    json!([detail]).to_string()
}

/// A name, how the client authenticates, the form, and the expected status and error code.
type Case<'a> = (&'a str, ClientAuth, Vec<(&'a str, &'a str)>, u16, &'a str);

#[tokio::test]
async fn every_invalid_backchannel_request_gets_the_spec_error_and_creates_nothing() {
    // A ping client whose endpoint is never called here.
    let dev = Dev::start_with(|config| config.authz.clients.push(ping_client("http://127.0.0.1:9/never"))).await;
    let mcp = dev.mcp_auth();
    let (mcp_id, mcp_secret) = (dev.mcp().client_id.clone(), dev.mcp().client_secret.clone());
    let ping = ClientAuth::Basic("ping-client".into(), "ping-client-secret-0123456789".into());
    let good = [("scope", "openid"), ("login_hint", "alice"), ("binding_message", "Sign in #A1")];
    let with = |changes: &[(&'static str, &'static str)]| {
        let mut params: Vec<(&str, &str)> =
            good.iter().filter(|(k, _)| !changes.iter().any(|(c, _)| c == k)).copied().collect();
        params.extend(changes.iter().filter(|(_, v)| !v.is_empty()).copied());
        params
    };
    let too_long = "x".repeat(65);
    let details_bad_amount = payment(|d| d["instructedAmount"]["amount"] = json!("25.001"));
    let details_same_accounts = payment(|d| d["creditorAccount"]["id"] = json!("acc_alice_chk"));
    let details_unknown_type = payment(|d| d["type"] = json!("account_information"));
    let details_bidi_memo = payment(|d| d["remittanceInformationUnstructured"] = json!("Rent \u{202E}0001"));
    let details_invisible_memo = payment(|d| d["remittanceInformationUnstructured"] = json!("Re\u{200B}nt"));
    let details_decomposed_memo = payment(|d| d["remittanceInformationUnstructured"] = json!("Cafe\u{301}"));

    let cases: Vec<Case> = vec![
        ("no client authentication", ClientAuth::Anonymous, with(&[]), 401, "invalid_client"),
        ("a wrong secret", ClientAuth::Basic(mcp_id.clone(), "wrong".into()), with(&[]), 401, "invalid_client"),
        ("an unknown client", ClientAuth::Basic("nobody".into(), "x".into()), with(&[]), 401, "invalid_client"),
        (
            "a Basic client authenticating by post",
            ClientAuth::Post(mcp_id.clone(), mcp_secret.clone()),
            with(&[]),
            401,
            "invalid_client",
        ),
        (
            "a post client authenticating by Basic",
            ClientAuth::Basic(POST_CLIENT.0.into(), POST_CLIENT.1.into()),
            with(&[]),
            401,
            "invalid_client",
        ),
        (
            "a client not registered for CIBA",
            ClientAuth::Basic(MACHINE_CLIENT.0.into(), MACHINE_CLIENT.1.into()),
            with(&[]),
            400,
            "unauthorized_client",
        ),
        ("scope without openid", mcp.clone(), with(&[("scope", "profile")]), 400, "invalid_scope"),
        ("no scope", mcp.clone(), with(&[("scope", "")]), 400, "invalid_scope"),
        ("no user hint", mcp.clone(), with(&[("login_hint", "")]), 400, "invalid_request"),
        ("two user hints", mcp.clone(), with(&[("id_token_hint", "eyJ.x.y")]), 400, "invalid_request"),
        (
            "login_hint_token",
            mcp.clone(),
            with(&[("login_hint", ""), ("login_hint_token", "eyJ.x.y")]),
            400,
            "invalid_request",
        ),
        (
            "an id_token_hint this server did not issue",
            mcp.clone(),
            with(&[("login_hint", ""), ("id_token_hint", "eyJ.x.y")]),
            400,
            "invalid_request",
        ),
        ("an unknown user", mcp.clone(), with(&[("login_hint", "mallory")]), 400, "unknown_user_id"),
        ("an unknown email", mcp.clone(), with(&[("login_hint", "mallory@example.com")]), 400, "unknown_user_id"),
        (
            "iss_sub of another issuer",
            mcp.clone(),
            with(&[("login_hint", r#"{"format":"iss_sub","iss":"https://tenant.auth0.com/","sub":"alice"}"#)]),
            400,
            "unknown_user_id",
        ),
        (
            "a malformed iss_sub hint",
            mcp.clone(),
            with(&[("login_hint", r#"{"format":"email"}"#)]),
            400,
            "invalid_request",
        ),
        ("no binding message", mcp.clone(), with(&[("binding_message", "")]), 400, "invalid_binding_message"),
        (
            "a binding message over 64 characters",
            mcp.clone(),
            with(&[("binding_message", too_long.clone().leak())]),
            400,
            "invalid_binding_message",
        ),
        (
            "a binding message with $",
            mcp.clone(),
            with(&[("binding_message", "Pay $25")]),
            400,
            "invalid_binding_message",
        ),
        ("a binding message with /", mcp.clone(), with(&[("binding_message", "a/b")]), 400, "invalid_binding_message"),
        ("requested_expiry 0", mcp.clone(), with(&[("requested_expiry", "0")]), 400, "invalid_request"),
        ("requested_expiry 259201", mcp.clone(), with(&[("requested_expiry", "259201")]), 400, "invalid_request"),
        ("requested_expiry not a number", mcp.clone(), with(&[("requested_expiry", "5m")]), 400, "invalid_request"),
        (
            "an unknown audience",
            mcp.clone(),
            with(&[("scope", "openid create:transfer"), ("audience", "https://other.example")]),
            400,
            "invalid_scope",
        ),
        (
            "a scope the API does not define",
            mcp.clone(),
            with(&[("scope", "openid delete:bank"), ("audience", AUDIENCE)]),
            400,
            "invalid_scope",
        ),
        (
            "an API scope without an audience",
            mcp.clone(),
            with(&[("scope", "openid create:transfer")]),
            400,
            "invalid_scope",
        ),
        (
            "audience and resource disagreeing",
            mcp.clone(),
            with(&[("audience", AUDIENCE), ("resource", "https://other.example")]),
            400,
            "invalid_request",
        ),
        (
            "authorization_details that are not JSON",
            mcp.clone(),
            with(&[("authorization_details", "payment please")]),
            400,
            "invalid_authorization_details",
        ),
        (
            "an unknown authorization details type",
            mcp.clone(),
            with(&[("authorization_details", details_unknown_type.leak())]),
            400,
            "invalid_authorization_details",
        ),
        (
            "a payment with three decimals",
            mcp.clone(),
            with(&[("authorization_details", details_bad_amount.leak())]),
            400,
            "invalid_authorization_details",
        ),
        (
            "a payment between the same account",
            mcp.clone(),
            with(&[("authorization_details", details_same_accounts.leak())]),
            400,
            "invalid_authorization_details",
        ),
        (
            "a payment memo with a bidi control",
            mcp.clone(),
            with(&[("authorization_details", details_bidi_memo.leak())]),
            400,
            "invalid_authorization_details",
        ),
        (
            "a payment memo with a zero-width space",
            mcp.clone(),
            with(&[("authorization_details", details_invisible_memo.leak())]),
            400,
            "invalid_authorization_details",
        ),
        (
            "a payment memo not in NFC",
            mcp.clone(),
            with(&[("authorization_details", details_decomposed_memo.leak())]),
            400,
            "invalid_authorization_details",
        ),
        ("a signed request object", mcp.clone(), with(&[("request", "eyJ.x.y")]), 400, "invalid_request"),
        ("a ping client without client_notification_token", ping.clone(), with(&[]), 400, "invalid_request"),
        (
            "a client_notification_token that is not a bearer token",
            ping.clone(),
            with(&[("client_notification_token", "not a token")]),
            400,
            "invalid_request",
        ),
        (
            "a parameter sent twice",
            mcp.clone(),
            [with(&[]), vec![("login_hint", "bob")]].concat(),
            400,
            "invalid_request",
        ),
        (
            "the post client's secret wrong",
            ClientAuth::Post(POST_CLIENT.0.into(), "wrong".into()),
            with(&[]),
            401,
            "invalid_client",
        ),
    ];
    assert!(cases.len() >= 39);

    for (name, auth, params, status, code) in cases {
        let reply = dev.bc_authorize(&auth, &params).await;
        assert_eq!(
            (reply.status, reply.body["error"].as_str().unwrap_or_default()),
            (status, code),
            "{name}: {}",
            reply.body
        );
        assert!(!reply.body["error_description"].as_str().unwrap_or_default().is_empty(), "{name}");
        if matches!(auth, ClientAuth::Basic(..)) && status == 401 {
            assert!(reply.header("www-authenticate").starts_with("Basic"), "{name}");
        }
    }
    assert!(dev.device().pending(None).await.unwrap().is_empty(), "no refused request is pending");
}

#[tokio::test]
async fn users_are_found_by_subject_email_iss_sub_or_an_id_token_we_issued() {
    let dev = Dev::start().await;
    let iss_sub = json!({"format": "iss_sub", "iss": format!("{}/", dev.issuer()), "sub": "bob"}).to_string();

    for (hint, user) in [("alice", "alice"), ("bob@example.com", "bob"), (iss_sub.as_str(), "bob")] {
        let reply = dev
            .bc_authorize(&dev.mcp_auth(), &[("scope", "openid"), ("login_hint", hint), ("binding_message", "Hi #1")])
            .await;
        assert_eq!(reply.status, 200, "{hint}: {}", reply.body);
        let auth_req_id = reply.body["auth_req_id"].as_str().unwrap();
        let pending = dev.device().pending(Some(user)).await.unwrap();
        assert!(pending.iter().any(|p| p.auth_req_id == auth_req_id), "{hint} names {user}");
    }

    // An ID token from an earlier approval names its user in a later request.
    let earlier = dev.request_sign_in(&[]).await;
    dev.approve(&earlier).await;
    let id_token = dev.poll(&earlier).await.body["id_token"].as_str().unwrap().to_owned();
    let reply = dev
        .bc_authorize(
            &dev.mcp_auth(),
            &[("scope", "openid"), ("id_token_hint", &id_token), ("binding_message", "Again #2")],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Another client cannot use that ID token as a hint.
    let post = ClientAuth::Post(POST_CLIENT.0.into(), POST_CLIENT.1.into());
    let reply =
        dev.bc_authorize(&post, &[("scope", "openid"), ("id_token_hint", &id_token), ("binding_message", "x")]).await;
    assert_eq!(reply.body["error"], "invalid_request");
}

#[tokio::test]
async fn both_client_authentication_methods_work_as_registered() {
    let dev = Dev::start().await;
    let params = [("scope", "openid"), ("login_hint", "alice"), ("binding_message", "Hello #B2")];

    let basic = dev.bc_authorize(&dev.mcp_auth(), &params).await;
    let post = dev.bc_authorize(&ClientAuth::Post(POST_CLIENT.0.into(), POST_CLIENT.1.into()), &params).await;

    for reply in [&basic, &post] {
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["expires_in"], 300, "the default requested_expiry");
        assert_eq!(reply.body["interval"], 1, "the configured interval");
        assert!(reply.body["auth_req_id"].as_str().unwrap().len() >= 43);
    }
    // The post client's own token requests work too.
    let auth_req_id = post.body["auth_req_id"].as_str().unwrap();
    let reply = dev
        .token(
            &ClientAuth::Post(POST_CLIENT.0.into(), POST_CLIENT.1.into()),
            &[("grant_type", "urn:openid:params:grant-type:ciba"), ("auth_req_id", auth_req_id)],
        )
        .await;
    assert_eq!(reply.body["error"], "authorization_pending");
    // requested_expiry is honoured.
    let short = dev
        .bc_authorize(
            &dev.mcp_auth(),
            &[("requested_expiry", "42"), ("scope", "openid"), ("login_hint", "alice"), ("binding_message", "x")],
        )
        .await;
    assert_eq!(short.body["expires_in"], 42);
    let three_days = dev
        .bc_authorize(
            &dev.mcp_auth(),
            &[("requested_expiry", "259200"), ("scope", "openid"), ("login_hint", "alice"), ("binding_message", "x")],
        )
        .await;
    assert_eq!(three_days.body["expires_in"], 259_200, "the longest approval Auth0 allows (by email)");
}
