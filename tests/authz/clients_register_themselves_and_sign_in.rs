//! An MCP client that has never met this server registers itself (RFC 7591) and signs a user in
//! with the client id it got. Bad metadata gets RFC 7591's error codes and registers nothing.

use serde_json::{Value, json};

use crate::support::dev::Dev;
use crate::support::send;
use crate::support::sign_in::{self, AuthorizationRequest, Pkce};

const REDIRECT_URI: &str = "http://127.0.0.1:1/oauth/callback";

async fn register(dev: &Dev, metadata: &Value) -> crate::support::Reply {
    let endpoint = sign_in::metadata(dev.issuer()).await["registration_endpoint"].as_str().unwrap().to_owned();
    send(dev.http.post(endpoint).json(metadata)).await
}

#[tokio::test]
async fn a_registered_public_client_signs_alice_in_and_is_still_known_after_a_restart() {
    let dev = Dev::start().await;
    let reply = register(
        &dev,
        &json!({"redirect_uris": [REDIRECT_URI], "client_name": "Test Agent", "logo_uri": "https://x.example/l.png"}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let client_id = reply.body["client_id"].as_str().unwrap().to_owned();
    assert_eq!(reply.body["token_endpoint_auth_method"], "none");
    assert_eq!(reply.body["redirect_uris"], json!([REDIRECT_URI]));
    assert_eq!(reply.body["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(reply.body["client_name"], "Test Agent");
    assert!(reply.body["client_secret"].is_null());

    let resource = dev.config.mcp_resource();
    let pkce = Pkce::new();
    let request =
        AuthorizationRequest::new(dev.issuer(), &client_id, REDIRECT_URI, &resource, "mcp:tools", &pkce).await;
    let consent = request.consent_page("alice").await;
    assert!(consent.html.contains("Test Agent") && consent.html.contains(&client_id), "{}", consent.html);
    let code = request.approve(&consent).await;
    let tokens = sign_in::Tokens::from_reply(
        &sign_in::exchange_code(dev.issuer(), &client_id, REDIRECT_URI, &code, &pkce.verifier).await,
    );
    sign_in::refresh(dev.issuer(), &client_id, &tokens.refresh_token).await;

    let dev = dev.restart().await;
    sign_in::sign_in(dev.issuer(), &client_id, REDIRECT_URI, "bob", &dev.config.mcp_resource(), "mcp:tools").await;
}

#[tokio::test]
async fn bad_client_metadata_is_refused_with_the_rfc_7591_error_that_names_it() {
    let dev = Dev::start().await;
    for (metadata, error) in [
        (json!({"client_name": "No redirects"}), "invalid_redirect_uri"),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["http://app.example/cb"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["https://app.example/cb#fragment"]}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": [REDIRECT_URI], "grant_types": ["client_credentials"]}), "invalid_client_metadata"),
        (json!({"redirect_uris": [REDIRECT_URI], "response_types": ["token"]}), "invalid_client_metadata"),
        (json!({"redirect_uris": [REDIRECT_URI], "client_name": 42}), "invalid_client_metadata"),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ] {
        let reply = register(&dev, &metadata).await;
        assert_eq!((reply.status, reply.body["error"].as_str()), (400, Some(error)), "{metadata}: {}", reply.body);
        assert!(reply.body["error_description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let endpoint = format!("{}/register", dev.issuer());
    let reply = send(dev.http.post(endpoint).header("content-type", "application/json").body("{not json")).await;
    assert_eq!(reply.body["error"], "invalid_client_metadata", "{}", reply.body);
}
