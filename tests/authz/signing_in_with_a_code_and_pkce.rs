//! The whole sign-in of an MCP client over plain HTTP: metadata, `/authorize`, the sign-in page,
//! consent, the code, the token, and refresh with rotation. The access token is for the MCP
//! endpoint, as alice, with `mcp:tools`, and it verifies against the published keys.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::Value;

use crate::support::dev::Dev;
use crate::support::sign_in::{self, AuthorizationRequest, Pkce, public_client};
use crate::support::{now, send};

pub const CLIENT: &str = "test-mcp-client";
pub const REDIRECT_URI: &str = "http://127.0.0.1:1/callback";

/// The dev stack with [`CLIENT`], a public client that signs users in, registered for [`REDIRECT_URI`].
pub async fn dev_with_public_client() -> Dev {
    Dev::start_with(|config| config.authz.clients.push(public_client(CLIENT, REDIRECT_URI))).await
}

async fn verified_claims(dev: &Dev, access_token: &str) -> Value {
    let jwks: JwkSet =
        serde_json::from_value(send(dev.http.get(format!("{}/.well-known/jwks.json", dev.issuer()))).await.body)
            .unwrap();
    let header = jsonwebtoken::decode_header(access_token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("the token's kid is published");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[dev.issuer()]);
    validation.set_audience(&[dev.config.mcp_resource()]);
    validation.set_required_spec_claims(&["iss", "aud", "exp", "sub", "nbf"]);
    jsonwebtoken::decode::<Value>(access_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).unwrap().claims
}

#[tokio::test]
async fn alice_signs_in_and_the_client_gets_a_token_for_the_mcp_endpoint_and_rotating_refresh_tokens() {
    let dev = dev_with_public_client().await;
    let issuer = dev.issuer();
    let resource = dev.config.mcp_resource();

    let pkce = Pkce::new();
    let request = AuthorizationRequest::new(issuer, CLIENT, REDIRECT_URI, &resource, "mcp:tools", &pkce).await;
    assert!(request.page.html.contains("Development sign-in"), "{}", request.page.html);
    assert!(request.page.offers("user", "alice") && request.page.offers("user", "bob"));
    let consent = request.page.submit(issuer, &[("user", "alice")]).await;
    assert_eq!(consent.status, 200, "{}", consent.html);
    for shown in [CLIENT, "Alice Martin", "mcp:tools", resource.as_str(), REDIRECT_URI] {
        assert!(consent.html.contains(shown), "the consent page does not show {shown}: {}", consent.html);
    }
    let redirect = consent.submit(issuer, &[("decision", "approve")]).await;
    let code = request.callback(&redirect)["code"].clone();

    let reply = sign_in::exchange_code(issuer, CLIENT, REDIRECT_URI, &code, &pkce.verifier).await;
    assert_eq!(reply.header("cache-control"), "no-store");
    let tokens = sign_in::Tokens::from_reply(&reply);
    assert_eq!((tokens.token_type.as_str(), tokens.scope.as_str()), ("Bearer", "mcp:tools"));
    assert_eq!(tokens.expires_in, dev.config.authz.token_lifetime_seconds as i64);

    let claims = verified_claims(&dev, &tokens.access_token).await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], resource.as_str());
    assert_eq!(claims["scope"], "mcp:tools");
    assert_eq!(claims["client_id"], CLIENT);
    let (iat, nbf, exp) =
        (claims["iat"].as_i64().unwrap(), claims["nbf"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
    assert!((now() - 5..=now()).contains(&iat) && nbf == iat && exp == iat + tokens.expires_in, "{claims}");
    assert!(claims["jti"].as_str().is_some_and(|jti| !jti.is_empty()));

    // Refresh rotates: a new refresh token each time, and a new access token for the same grant.
    let refreshed = sign_in::refresh(issuer, CLIENT, &tokens.refresh_token).await;
    assert_ne!(refreshed.refresh_token, tokens.refresh_token);
    assert_ne!(refreshed.access_token, tokens.access_token);
    let claims = verified_claims(&dev, &refreshed.access_token).await;
    assert_eq!((claims["sub"].as_str(), claims["scope"].as_str()), (Some("alice"), Some("mcp:tools")));
    let again = sign_in::refresh(issuer, CLIENT, &refreshed.refresh_token).await;
    assert_ne!(again.refresh_token, refreshed.refresh_token);
}

#[tokio::test]
async fn the_sign_in_helper_signs_bob_in_as_a_headless_client_would() {
    let dev = dev_with_public_client().await;
    let tokens =
        sign_in::sign_in(dev.issuer(), CLIENT, REDIRECT_URI, "bob", &dev.config.mcp_resource(), "mcp:tools").await;
    assert_eq!(verified_claims(&dev, &tokens.access_token).await["sub"], "bob");
}

#[tokio::test]
async fn denying_on_the_consent_page_sends_access_denied_back_and_no_code() {
    let dev = dev_with_public_client().await;
    let pkce = Pkce::new();
    let request =
        AuthorizationRequest::new(dev.issuer(), CLIENT, REDIRECT_URI, &dev.config.mcp_resource(), "mcp:tools", &pkce)
            .await;
    let consent = request.page.submit(dev.issuer(), &[("user", "alice")]).await;
    let redirect = consent.submit(dev.issuer(), &[("decision", "deny")]).await;
    let parameters = request.callback(&redirect);
    assert_eq!(parameters.get("error").map(String::as_str), Some("access_denied"));
    assert!(!parameters.contains_key("code"));
    // The sign-in is over: its consent form cannot be sent again.
    let again = consent.submit(dev.issuer(), &[("decision", "approve")]).await;
    assert_eq!(again.status, 400, "{}", again.html);
}
