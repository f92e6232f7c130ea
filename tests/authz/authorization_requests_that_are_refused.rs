//! `/authorize` refuses what it must. Until the client and its redirect URI are known good, the
//! person gets an error page and the browser goes nowhere; after that, the error goes back to the
//! client's redirect URI with `state` and `iss`. No refusal leaves a sign-in behind.

use crate::signing_in_with_a_code_and_pkce::{CLIENT, REDIRECT_URI, dev_with_public_client};
use crate::support::sign_in::{Page, Pkce, authorization_url, redirect_parameters};

/// A valid request's parameters, with `changes` replacing, adding or (with an empty value) removing some.
fn parameters<'a>(resource: &'a str, challenge: &'a str, changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut parameters = vec![
        ("response_type", "code"),
        ("client_id", CLIENT),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "mcp:tools"),
        ("resource", resource),
        ("state", "st4te"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    parameters.retain(|(name, _)| !changes.iter().any(|(changed, _)| changed == name));
    parameters.extend(changes.iter().filter(|(_, value)| !value.is_empty()));
    parameters
}

#[tokio::test]
async fn a_bad_client_or_redirect_uri_gets_an_error_page_and_no_redirect() {
    let dev = dev_with_public_client().await;
    let resource = dev.config.mcp_resource();
    let pkce = Pkce::new();
    for (changes, shown) in [
        (vec![("redirect_uri", "http://127.0.0.1:1/elsewhere")], "not one this client registered"),
        (vec![("redirect_uri", "http://127.0.0.1:1/callback/")], "not one this client registered"),
        (vec![("redirect_uri", "")], "no redirect_uri"),
        (vec![("client_id", "nobody")], "no client is registered"),
        (vec![("client_id", "")], "no client_id"),
        // The MCP server's own CIBA client does not sign users in.
        (vec![("client_id", "bankguard-mcp")], "may not use the authorization code grant"),
    ] {
        let url = authorization_url(dev.issuer(), &parameters(&resource, &pkce.challenge, &changes)).await;
        let page = Page::get(&url).await;
        assert_eq!(page.status, 400, "{changes:?}: {}", page.html);
        assert_eq!(page.location, None, "{changes:?}");
        assert!(page.html.contains(shown) && page.html.contains("Development sign-in"), "{changes:?}: {}", page.html);
    }
}

#[tokio::test]
async fn without_s256_pkce_a_code_response_type_or_a_known_resource_and_scope_the_error_goes_back_to_the_client() {
    let dev = dev_with_public_client().await;
    let resource = dev.config.mcp_resource();
    let bank = dev.config.bank_api.audience.clone();
    let pkce = Pkce::new();
    for (changes, error) in [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain"), ("code_challenge", pkce.verifier.as_str())], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "too-short")], "invalid_request"),
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![("response_type", "")], "invalid_request"),
        (vec![("resource", "http://127.0.0.1:1/not-an-api")], "invalid_target"),
        (vec![("resource", "")], "invalid_target"),
        // The bank API's tokens come only from an approval on the device, never from a sign-in.
        (vec![("resource", bank.as_str()), ("scope", "create:transfer")], "invalid_target"),
        (vec![("scope", "mcp:tools create:transfer")], "invalid_scope"),
    ] {
        let url = authorization_url(dev.issuer(), &parameters(&resource, &pkce.challenge, &changes)).await;
        let page = Page::get(&url).await;
        assert_eq!(page.status, 303, "{changes:?}: {}", page.html);
        let answer = redirect_parameters(&page, REDIRECT_URI);
        assert_eq!(answer.get("error").map(String::as_str), Some(error), "{changes:?}: {answer:?}");
        assert!(answer.get("error_description").is_some_and(|d| !d.is_empty()), "{answer:?}");
        assert_eq!(answer.get("state").map(String::as_str), Some("st4te"), "{answer:?}");
        assert_eq!(answer.get("iss").map(String::as_str), Some(dev.issuer()), "{answer:?}");
        assert!(!answer.contains_key("code"));
    }
}

#[tokio::test]
async fn a_parameter_sent_twice_is_refused() {
    let dev = dev_with_public_client().await;
    let resource = dev.config.mcp_resource();
    let pkce = Pkce::new();
    let mut twice = parameters(&resource, &pkce.challenge, &[]);
    twice.push(("redirect_uri", REDIRECT_URI));
    let page = Page::get(&authorization_url(dev.issuer(), &twice).await).await;
    assert_eq!((page.status, page.location.as_deref()), (400, None), "{}", page.html);

    let mut twice = parameters(&resource, &pkce.challenge, &[]);
    twice.push(("scope", "mcp:tools"));
    let page = Page::get(&authorization_url(dev.issuer(), &twice).await).await;
    assert_eq!(redirect_parameters(&page, REDIRECT_URI).get("error").map(String::as_str), Some("invalid_request"));
}
