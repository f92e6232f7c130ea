//! The token endpoint gives tokens for a code only to the client it was issued to, with the same
//! redirect URI and the PKCE verifier of its challenge; a refused attempt changes nothing. A code
//! that comes back after it was exchanged is refused, and the tokens issued for it are revoked.

use crate::signing_in_with_a_code_and_pkce::{CLIENT, REDIRECT_URI, dev_with_public_client};
use bankguard::config::{ClientAuthMethod, ClientConfig};

use crate::support::dev::Dev;
use crate::support::send;
use crate::support::sign_in::{self, Pkce, Tokens, public_client};

#[tokio::test]
async fn a_wrong_verifier_redirect_uri_or_client_is_refused_and_the_code_still_works_after() {
    let dev = dev_with_two_clients().await;
    let issuer = dev.issuer();
    let (code, pkce) =
        sign_in::authorization_code(issuer, CLIENT, REDIRECT_URI, "alice", &dev.config.mcp_resource(), "mcp:tools")
            .await;

    let other_verifier = Pkce::new().verifier;
    for (client, redirect_uri, verifier, why) in [
        (CLIENT, REDIRECT_URI, other_verifier.as_str(), "code_verifier does not match"),
        (CLIENT, REDIRECT_URI, "short", "code_verifier must be"),
        (CLIENT, "http://127.0.0.1:1/other", pkce.verifier.as_str(), "redirect_uri differs"),
        (OTHER_CLIENT, REDIRECT_URI, pkce.verifier.as_str(), "another client"),
    ] {
        let reply = sign_in::exchange_code(issuer, client, redirect_uri, &code, verifier).await;
        assert_eq!((reply.status, reply.body["error"].as_str()), (400, Some("invalid_grant")), "{why}: {}", reply.body);
        assert!(reply.body["error_description"].as_str().unwrap().contains(why), "{}", reply.body);
    }
    let reply = sign_in::token_request(
        issuer,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT_URI), ("client_id", CLIENT)],
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_request", "no code_verifier: {}", reply.body);

    let tokens = Tokens::from_reply(&sign_in::exchange_code(issuer, CLIENT, REDIRECT_URI, &code, &pkce.verifier).await);
    assert!(!tokens.access_token.is_empty());
}

#[tokio::test]
async fn a_reused_code_is_refused_and_the_refresh_token_issued_for_it_stops_working() {
    let dev = dev_with_public_client().await;
    let issuer = dev.issuer();
    let (code, pkce) =
        sign_in::authorization_code(issuer, CLIENT, REDIRECT_URI, "alice", &dev.config.mcp_resource(), "mcp:tools")
            .await;
    let tokens = Tokens::from_reply(&sign_in::exchange_code(issuer, CLIENT, REDIRECT_URI, &code, &pkce.verifier).await);

    let again = sign_in::exchange_code(issuer, CLIENT, REDIRECT_URI, &code, &pkce.verifier).await;
    assert_eq!((again.status, again.body["error"].as_str()), (400, Some("invalid_grant")), "{}", again.body);

    let refresh = sign_in::refresh_reply(issuer, CLIENT, &tokens.refresh_token).await;
    assert_eq!((refresh.status, refresh.body["error"].as_str()), (400, Some("invalid_grant")), "{}", refresh.body);
    assert!(refresh.body["error_description"].as_str().unwrap().contains("revoked"), "{}", refresh.body);
}

#[tokio::test]
async fn an_unknown_code_is_refused() {
    let dev = dev_with_public_client().await;
    let reply = sign_in::exchange_code(dev.issuer(), CLIENT, REDIRECT_URI, "no-such-code", &Pkce::new().verifier).await;
    assert_eq!(reply.body["error"], "invalid_grant", "{}", reply.body);
}

#[tokio::test]
async fn a_confidential_client_authenticates_for_its_code_and_without_its_secret_gets_nothing() {
    const SECRET: &str = "confidential-secret-0123456789";
    let dev = Dev::start_with(|config| {
        config.authz.clients.push(ClientConfig {
            secret: SECRET.into(),
            auth_method: ClientAuthMethod::ClientSecretBasic,
            ..public_client("confidential-agent", REDIRECT_URI)
        })
    })
    .await;
    let issuer = dev.issuer();
    let (code, pkce) = sign_in::authorization_code(
        issuer,
        "confidential-agent",
        REDIRECT_URI,
        "alice",
        &dev.config.mcp_resource(),
        "mcp:tools",
    )
    .await;
    let unauthenticated =
        sign_in::exchange_code(issuer, "confidential-agent", REDIRECT_URI, &code, &pkce.verifier).await;
    assert_eq!((unauthenticated.status, unauthenticated.body["error"].as_str()), (401, Some("invalid_client")));

    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let reply =
        send(dev.http.post(format!("{issuer}/oauth/token")).basic_auth("confidential-agent", Some(SECRET)).form(&form))
            .await;
    let tokens = Tokens::from_reply(&reply);
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", tokens.refresh_token.as_str())];
    let reply = send(
        dev.http.post(format!("{issuer}/oauth/token")).basic_auth("confidential-agent", Some(SECRET)).form(&refresh),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

const OTHER_CLIENT: &str = "other-mcp-client";

/// The dev stack with two public clients on the same redirect URI.
async fn dev_with_two_clients() -> Dev {
    Dev::start_with(|config| {
        config.authz.clients.push(public_client(CLIENT, REDIRECT_URI));
        config.authz.clients.push(public_client(OTHER_CLIENT, REDIRECT_URI));
    })
    .await
}
