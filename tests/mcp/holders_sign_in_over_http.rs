//! `mcp.auth = "oauth"`: the Streamable HTTP endpoint is an OAuth protected resource (MCP
//! authorization, RFC 9728, RFC 6750), and every call acts for the holder its access token names.
//!
//! The MCP server, the dev provider (CIBA, the holders' devices) and the bank are the real ones.
//! The MCP clients' access tokens come from a loopback issuer of the tests' own
//! ([`TestIssuer`]), configured as `mcp.oauth.issuer`: it publishes discovery and keys like any
//! provider and signs whatever a scenario needs, including tokens no honest provider would issue.

use std::time::Duration;

use bankguard::config::McpAuth;
use bankguard::devstack::device_client::DeviceClient;
use bankguard::mcp::Backends;
use bankguard::mcp::transport::RunningHttp;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::fault_proxy::FaultProxy;
use crate::support::mcp::{McpStack, call, is_error, text};
use crate::support::{AUDIENCE, Signing, TestIssuer, now};

const ACCEPT: &str = "application/json, text/event-stream";

/// The stack with holders signing in at `issuer`; calls answer "pending" after a second.
async fn signed_in_stack(issuer: &TestIssuer, max_pending: usize) -> McpStack {
    let issuer = issuer.url.clone();
    McpStack::start_with(|config, _| {
        config.mcp.auth = McpAuth::Oauth;
        config.mcp.oauth.issuer = Some(issuer);
        config.mcp.max_wait_seconds = 1;
        config.mcp.max_pending_per_holder = max_pending;
    })
    .await
}

/// The claims of a good access token for `subject`, issued for this MCP server.
fn claims_for(issuer: &TestIssuer, stack: &McpStack, subject: &str) -> Value {
    let mut claims = issuer.claims(subject, "mcp:tools");
    claims["aud"] = json!(stack.url());
    claims["client_id"] = json!(SIGNED_IN_CLIENT);
    claims
}

/// The client the holders' access tokens were issued to (RFC 9068 `client_id`).
const SIGNED_IN_CLIENT: &str = "an-mcp-client";

fn token_for(issuer: &TestIssuer, stack: &McpStack, subject: &str) -> String {
    issuer.sign(&claims_for(issuer, stack, subject), Signing::Es256)
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
}

fn transfer_call() -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "transfer_funds", "arguments": {
        "from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": "5.00"}}})
}

/// A POST to the endpoint, as a raw HTTP client sends it.
async fn post(stack: &McpStack, token: Option<&str>, session: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(stack.url()).header("accept", ACCEPT).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session).header("mcp-protocol-version", "2025-11-25");
    }
    request.send().await.unwrap()
}

/// Opens a session as the holder of `token` and returns its id.
async fn open_session(stack: &McpStack, token: &str) -> String {
    let opened = post(stack, Some(token), None, &initialize()).await;
    assert_eq!(opened.status(), StatusCode::OK);
    let session = opened.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post(stack, Some(token), Some(&session), &initialized).await.status(), StatusCode::ACCEPTED);
    session
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

fn account_ids(result: &rmcp::model::CallToolResult) -> Vec<String> {
    let accounts = result.structured_content.as_ref().unwrap()["accounts"].as_array().unwrap().clone();
    accounts.iter().map(|account| account["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_request_without_a_token_is_told_where_to_sign_in() {
    let issuer = TestIssuer::start().await;
    let stack = signed_in_stack(&issuer, 3).await;
    let origin = stack.url().trim_end_matches("/mcp").to_owned();
    let metadata_url = format!("{origin}/.well-known/oauth-protected-resource/mcp");

    let refused = post(&stack, None, None, &initialize()).await;

    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&refused), format!(r#"Bearer scope="mcp:tools", resource_metadata="{metadata_url}""#));
    let expected = json!({
        "resource": stack.url(), "authorization_servers": [issuer.url], "scopes_supported": ["mcp:tools"],
        "bearer_methods_supported": ["header"], "resource_name": "bankguard",
    });
    for url in [metadata_url, format!("{origin}/.well-known/oauth-protected-resource")] {
        let metadata: Value = reqwest::get(&url).await.unwrap().error_for_status().unwrap().json().await.unwrap();
        assert_eq!(metadata, expected, "{url}");
    }
    // Another scheme is no token either.
    let basic = reqwest::Client::new()
        .post(stack.url())
        .header("accept", ACCEPT)
        .basic_auth("alice", Some("password"))
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_bad_token_is_refused_as_the_spec_says_and_moves_nothing() {
    let issuer = TestIssuer::start().await;
    let stack = signed_in_stack(&issuer, 3).await;
    let session = open_session(&stack, &token_for(&issuer, &stack, "alice")).await;
    let balances = stack.dev.balances().await;
    let good = claims_for(&issuer, &stack, "alice");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut claims = good.clone();
        edit(&mut claims);
        claims
    };
    let sign = |claims: Value, signing| issuer.sign(&claims, signing);
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        ("not a JWT", "not-a-jwt".into(), StatusCode::UNAUTHORIZED, "invalid_token"),
        (
            "expired",
            sign(with(&|c| c["exp"] = json!(now() - 3600)), Signing::Es256),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "not valid yet",
            sign(with(&|c| c["nbf"] = json!(now() + 3600)), Signing::Es256),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "another issuer",
            sign(with(&|c| c["iss"] = json!("https://evil.example")), Signing::Es256),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "a token for the bank API",
            sign(with(&|c| c["aud"] = json!(AUDIENCE)), Signing::Es256),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "a token for another MCP server",
            sign(with(&|c| c["aud"] = json!("http://127.0.0.1:1/mcp")), Signing::Es256),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        ("alg none", sign(good.clone(), Signing::None), StatusCode::UNAUTHORIZED, "invalid_token"),
        (
            "HS256 keyed with the public key",
            sign(good.clone(), Signing::Hs256WithPublicKey),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "a foreign key under a published kid",
            sign(good.clone(), Signing::Rs256ForgedWithPublishedKid),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "a key never published",
            sign(good.clone(), Signing::Rs256NeverPublishedKid),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "no subject",
            sign(with(&|c| c.as_object_mut().unwrap().retain(|k, _| k != "sub")), Signing::Es256),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            "without the scope",
            sign(with(&|c| c["scope"] = json!("openid read:accounts")), Signing::Es256),
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        ),
    ];

    for (case, token, status, error) in cases {
        let refused = post(&stack, Some(&token), Some(&session), &transfer_call()).await;
        let header = challenge(&refused);
        assert_eq!(refused.status(), status, "{case}");
        assert!(header.starts_with(&format!(r#"Bearer error="{error}""#)), "{case}: {header}");
        assert!(header.contains("resource_metadata=\""), "{case}: {header}");
        assert_eq!(error == "insufficient_scope", header.contains(r#"scope="mcp:tools""#), "{case}: {header}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], error, "{case}");
        assert!(!body["error_description"].as_str().unwrap().contains(&token), "{case}: the token is never echoed");
    }

    assert_eq!(stack.approval_requests().await, 0, "no bad token reached the provider");
    assert_eq!(stack.dev.balances().await, balances, "and no money moved");
}

#[tokio::test]
async fn alice_and_bob_each_act_for_themselves_on_one_server() {
    let issuer = TestIssuer::start().await;
    let stack = signed_in_stack(&issuer, 3).await;
    let device = DeviceClient::for_data_dir(stack.dev.data_dir.path()).unwrap();
    let (alice, _) = stack.http_client_with_token(&token_for(&issuer, &stack, "alice")).await;
    let (bob, _) = stack.http_client_with_token(&token_for(&issuer, &stack, "bob")).await;

    let (alices, bobs) = tokio::join!(call(&alice, "list_accounts", json!({})), call(&bob, "list_accounts", json!({})));
    assert_eq!(account_ids(&alices), ["acc_alice_chk", "acc_alice_eur", "acc_alice_sav"]);
    assert_eq!(account_ids(&bobs), ["acc_bob_chk", "acc_bob_sav"]);

    // Each transfer request reaches only its own holder's device.
    let alices_args = json!({"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": "5.00",
                             "idempotency_key": "order-1"});
    let pending = call(&alice, "transfer_funds", alices_args.clone()).await;
    let alices_intent = pending.structured_content.as_ref().unwrap()["intent_id"].as_str().unwrap().to_owned();
    assert_eq!(device.pending(Some("alice")).await.unwrap().len(), 1);
    assert!(device.pending(Some("bob")).await.unwrap().is_empty());

    // bob cannot read alice's intent by its id ...
    let status = call(&bob, "get_transfer_status", json!({"intent_id": alices_intent})).await;
    assert!(is_error(&status) && text(&status).contains("no transfer intent"), "{}", text(&status));
    // ... nor through her idempotency key: with her terms he is refused, with his own it is a new intent.
    let replayed = call(&bob, "transfer_funds", alices_args).await;
    assert!(is_error(&replayed) && text(&replayed).contains("not one of the account holder's accounts"));
    let bobs_args = json!({"from_account_id": "acc_bob_chk", "to_account_id": "acc_alice_chk", "amount": "7.00",
                           "idempotency_key": "order-1"});
    let bobs_pending = call(&bob, "transfer_funds", bobs_args).await;
    let bobs_intent = bobs_pending.structured_content.as_ref().unwrap()["intent_id"].as_str().unwrap().to_owned();
    assert_ne!(bobs_intent, alices_intent);
    let bobs_requests = device.pending(Some("bob")).await.unwrap();
    assert_eq!(bobs_requests.len(), 1);
    assert!(bobs_requests[0].summary.as_deref().unwrap_or_default().contains("7.00"), "{:?}", bobs_requests[0]);
    assert_eq!(device.pending(Some("alice")).await.unwrap().len(), 1, "alice still has only her own");

    // alice's own status call sees her intent.
    let status = call(&alice, "get_transfer_status", json!({"intent_id": alices_intent})).await;
    assert!(!is_error(&status), "{}", text(&status));
}

#[tokio::test]
async fn a_session_belongs_to_the_holder_who_opened_it() {
    let issuer = TestIssuer::start().await;
    let stack = signed_in_stack(&issuer, 3).await;
    let alice = token_for(&issuer, &stack, "alice");
    let session = open_session(&stack, &alice).await;

    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let bobs_try = post(&stack, Some(&token_for(&issuer, &stack, "bob")), Some(&session), &list).await;
    assert_eq!(bobs_try.status(), StatusCode::NOT_FOUND, "bob is told the session does not exist");

    let alices = post(&stack, Some(&alice), Some(&session), &list).await;
    assert_eq!(alices.status(), StatusCode::OK);
    assert!(alices.text().await.unwrap().contains("transfer_funds"));
}

#[tokio::test]
async fn a_holder_with_three_requests_waiting_is_refused_a_fourth_until_one_is_decided() {
    let issuer = TestIssuer::start().await;
    let stack = signed_in_stack(&issuer, 3).await;
    let device = DeviceClient::for_data_dir(stack.dev.data_dir.path()).unwrap();
    let (alice, _) = stack.http_client_with_token(&token_for(&issuer, &stack, "alice")).await;
    let (bob, _) = stack.http_client_with_token(&token_for(&issuer, &stack, "bob")).await;
    let transfer =
        |from: &str, to: &str, amount: &str| json!({"from_account_id": from, "to_account_id": to, "amount": amount});
    for amount in ["1.00", "2.00", "3.00"] {
        let pending = call(&alice, "transfer_funds", transfer("acc_alice_chk", "acc_bob_chk", amount)).await;
        assert_eq!(pending.structured_content.unwrap()["status"], "pending");
    }

    let fourth = call(&alice, "transfer_funds", transfer("acc_alice_chk", "acc_bob_chk", "4.00")).await;
    assert!(is_error(&fourth), "{}", text(&fourth));
    assert!(text(&fourth).contains("already has 3 approval request(s) waiting"), "{}", text(&fourth));
    assert_eq!(stack.approval_requests().await, 3, "the fourth never reached the provider");

    // bob is not held up by alice's requests.
    let bobs = call(&bob, "transfer_funds", transfer("acc_bob_chk", "acc_alice_chk", "1.00")).await;
    assert_eq!(bobs.structured_content.unwrap()["status"], "pending");

    // Once alice declines one, she may ask again.
    let first = device.pending(Some("alice")).await.unwrap().pop().unwrap();
    device.decide(Some("alice"), Some(&first.auth_req_id), "deny").await.unwrap();
    let again = async {
        loop {
            let result = call(&alice, "transfer_funds", transfer("acc_alice_chk", "acc_bob_chk", "4.00")).await;
            if !is_error(&result) {
                return result;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let again =
        tokio::time::timeout(Duration::from_secs(20), again).await.expect("a slot frees up once one is decided");
    assert_eq!(again.structured_content.unwrap()["status"], "pending");
}

#[tokio::test]
async fn the_holder_at_the_bank_may_come_from_another_claim() {
    let issuer = TestIssuer::start().await;
    let url = issuer.url.clone();
    let stack = McpStack::start_with(|config, _| {
        config.mcp.auth = McpAuth::Oauth;
        config.mcp.oauth.issuer = Some(url);
        config.mcp.oauth.holder_claim = "https://bank.example/customer".into();
    })
    .await;
    let mut claims = claims_for(&issuer, &stack, "auth0|6f1c2a");
    claims["https://bank.example/customer"] = json!("bob");
    let (bob, _) = stack.http_client_with_token(&issuer.sign(&claims, Signing::Rs256)).await;
    assert_eq!(account_ids(&call(&bob, "list_accounts", json!({})).await), ["acc_bob_chk", "acc_bob_sav"]);

    let without = issuer.sign(&claims_for(&issuer, &stack, "auth0|6f1c2a"), Signing::Rs256);
    let refused = post(&stack, Some(&without), None, &initialize()).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&refused).contains(r#"error="invalid_token""#));
}

#[tokio::test]
async fn without_sign_in_the_endpoint_refuses_to_listen_beyond_loopback() {
    let stack = McpStack::start().await;
    let mut config = stack.config.clone();
    let beyond = RunningHttp::bind("0.0.0.0:0".parse().unwrap()).await.unwrap();
    let backends = std::sync::Arc::new(Backends::from_config(&config, true).unwrap());
    let refused = RunningHttp::start(beyond, backends, &config).await.err().expect("refused to start");
    assert!(refused.to_string().contains(r#"mcp.auth = "none""#), "{refused}");
    assert!(refused.to_string().contains(r#"set mcp.auth = "oauth""#), "{refused}");

    config.mcp.auth = McpAuth::Oauth;
    let beyond = RunningHttp::bind("0.0.0.0:0".parse().unwrap()).await.unwrap();
    let backends = std::sync::Arc::new(Backends::from_config(&config, true).unwrap());
    let started = RunningHttp::start(beyond, backends, &config).await.expect("with sign-in it may");
    started.shutdown().await.unwrap();
}

#[tokio::test]
async fn while_the_authorization_servers_keys_cannot_be_fetched_requests_are_asked_to_retry() {
    let unreachable = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", unreachable.local_addr().unwrap());
    drop(unreachable);
    let stack = McpStack::start_with(|config, _| {
        config.mcp.auth = McpAuth::Oauth;
        config.mcp.oauth.issuer = Some(issuer);
    })
    .await;
    let some_issuer = TestIssuer::start().await;

    let waiting = post(&stack, Some(&token_for(&some_issuer, &stack, "alice")), None, &initialize()).await;

    assert_eq!(waiting.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(waiting.headers()["retry-after"], "5");
    let body: Value = waiting.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn the_clients_token_never_reaches_the_provider_or_the_bank() {
    let issuer = TestIssuer::start().await;
    let mut stack = signed_in_stack(&issuer, 3).await;
    let provider = FaultProxy::start(stack.dev.issuer()).await;
    let bank = FaultProxy::start(stack.dev.bank_api()).await;
    stack
        .reconfigure_server(|config| {
            config.mcp.max_wait_seconds = 10;
            let issuer = config.mcp.issuer.clone().unwrap();
            config.mcp.backchannel_authentication_endpoint = Some(provider.via(&format!("{issuer}/bc-authorize")));
            config.mcp.token_endpoint = Some(provider.via(&format!("{issuer}/oauth/token")));
            config.mcp.bank_api_url = Some(bank.via(config.mcp.bank_api_url.as_deref().unwrap()));
        })
        .await;
    let token = token_for(&issuer, &stack, "alice");
    let (alice, _) = stack.http_client_with_token(&token).await;
    let holder = stack.decide_next("approve", Duration::from_millis(200));

    let listed = call(&alice, "list_accounts", json!({})).await;
    let moved = call(&alice, "transfer_funds", transfer_call()["params"]["arguments"].clone()).await;

    holder.await.unwrap();
    assert!(!is_error(&listed), "{}", text(&listed));
    let moved = moved.structured_content.unwrap();
    assert_eq!(moved["status"], "completed");
    // The audit trail names the client the holder's token was issued to, in every entry.
    let clients = stack.dev.intents().await.audit_clients(moved["intent_id"].as_str().unwrap()).await;
    assert_eq!(clients, vec![Some(SIGNED_IN_CLIENT.to_owned()); 4]);
    assert!(provider.seen("/") >= 3 && bank.seen("/") >= 2, "the calls went through the proxies");
    assert!(bank.seen_carrying("Bearer ey") >= 2, "the proxies see headers: the bank got the server's own tokens");
    let signature = token.rsplit('.').next().unwrap();
    assert_eq!(provider.seen_carrying(signature), 0, "the provider never saw the client's token");
    assert_eq!(bank.seen_carrying(signature), 0, "nor did the bank");
}
