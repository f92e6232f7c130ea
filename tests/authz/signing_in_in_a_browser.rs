//! The sign-in and consent pages in real headless Chromium: a person picks alice, reads who asks
//! for what, clicks Allow, and the browser lands on the client's redirect URI with a code the client
//! exchanges for a token.

use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::support::browser::{Browser, screenshot_path};
use crate::support::dev::Dev;
use crate::support::sign_in::{self, Pkce, authorization_url, public_client};

type Received = Arc<Mutex<Option<BTreeMap<String, String>>>>;

/// The client's redirect handler: keeps the query it was called with.
async fn callback(State(received): State<Received>, Query(query): Query<BTreeMap<String, String>>) -> &'static str {
    *received.lock().unwrap() = Some(query);
    "Signed in; you can close this window."
}

#[tokio::test]
async fn a_person_signs_in_as_alice_and_allows_the_client_in_a_browser() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect_uri = format!("http://{}/callback", listener.local_addr().unwrap());
    let received = Received::default();
    let handler = Router::new().route("/callback", get(callback)).with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, handler).await.unwrap() });
    let dev = Dev::start_with(|config| {
        config.authz.clients.push(bankguard::config::ClientConfig {
            client_name: Some("Browser Agent".into()),
            ..public_client("browser-agent", &redirect_uri)
        })
    })
    .await;
    let resource = dev.config.mcp_resource();
    let pkce = Pkce::new();
    let url = authorization_url(
        dev.issuer(),
        &[
            ("response_type", "code"),
            ("client_id", "browser-agent"),
            ("redirect_uri", &redirect_uri),
            ("scope", "mcp:tools"),
            ("resource", &resource),
            ("state", "browser-state"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;

    let browser = Browser::start().await;
    browser.goto(&url).await;
    browser.wait_for_text(".dev-banner", "Development sign-in", Duration::from_secs(5)).await;
    assert!(browser.page_text().await.contains("Browser Agent asks you to sign in"));
    browser.click(r#"button.user[value="alice"]"#).await;

    browser.wait_for_text("h1", "Allow Browser Agent?", Duration::from_secs(5)).await;
    let consent = browser.text("article.consent").await;
    for shown in [
        "Browser Agent wants to act as Alice Martin",
        "browser-agent",
        "mcp:tools",
        resource.as_str(),
        redirect_uri.as_str(),
    ] {
        assert!(consent.contains(shown), "the consent step does not show {shown:?}: {consent}");
    }
    browser.screenshot(&screenshot_path("sign-in-consent.png")).await;
    browser.click("button.approve").await;

    browser.wait_for_text("body", "Signed in", Duration::from_secs(5)).await;
    let query = received.lock().unwrap().clone().expect("the redirect handler was called");
    assert_eq!(query.get("state").map(String::as_str), Some("browser-state"));
    assert_eq!(query.get("iss").map(String::as_str), Some(dev.issuer()));
    let reply =
        sign_in::exchange_code(dev.issuer(), "browser-agent", &redirect_uri, &query["code"], &pkce.verifier).await;
    let tokens = sign_in::Tokens::from_reply(&reply);
    assert_eq!(tokens.scope, "mcp:tools");
}
