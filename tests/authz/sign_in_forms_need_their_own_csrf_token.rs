//! The sign-in and consent forms carry a CSRF token that only their own page has. A post with a
//! missing or wrong one, or from another origin, is refused with 403 and changes nothing: the
//! person can still finish from the real page.

use std::collections::BTreeMap;

use crate::signing_in_with_a_code_and_pkce::{CLIENT, REDIRECT_URI, dev_with_public_client};
use crate::support::sign_in::{AuthorizationRequest, Page, Pkce, http};

async fn post_with(page: &Page, issuer: &str, change: impl FnOnce(&mut BTreeMap<String, String>)) -> Page {
    let (action, mut inputs) = page.form();
    change(&mut inputs);
    page.post(issuer, &action, &inputs).await
}

#[tokio::test]
async fn a_missing_or_wrong_csrf_token_is_refused_with_403_and_changes_nothing() {
    let dev = dev_with_public_client().await;
    let issuer = dev.issuer();
    let pkce = Pkce::new();
    let request =
        AuthorizationRequest::new(issuer, CLIENT, REDIRECT_URI, &dev.config.mcp_resource(), "mcp:tools", &pkce).await;
    let sign_in_csrf = request.page.form().1["csrf"].clone();

    for change in [
        (|inputs: &mut BTreeMap<String, String>| {
            inputs.remove("csrf");
        }) as fn(&mut BTreeMap<String, String>),
        |inputs| {
            inputs.insert("csrf".into(), "forged".into());
        },
    ] {
        let refused = post_with(&request.page, issuer, |inputs| {
            change(inputs);
            inputs.insert("user".into(), "bob".into());
        })
        .await;
        assert_eq!(refused.status, 403, "{}", refused.html);
    }

    let consent = request.page.submit(issuer, &[("user", "alice")]).await;
    assert!(consent.html.contains("Alice Martin"), "the forged posts chose no one: {}", consent.html);
    let consent_csrf = consent.form().1["csrf"].clone();
    assert_ne!(consent_csrf, sign_in_csrf, "the consent page has a token of its own");

    // The sign-in page's token cannot approve, and neither can a forged one.
    for csrf in [sign_in_csrf.as_str(), "forged"] {
        let refused = post_with(&consent, issuer, |inputs| {
            inputs.insert("csrf".into(), csrf.into());
            inputs.insert("decision".into(), "approve".into());
        })
        .await;
        assert_eq!((refused.status, refused.location.as_deref()), (403, None), "{}", refused.html);
    }

    // Another site's page posting the real form is refused too.
    let (action, mut inputs) = consent.form();
    inputs.insert("decision".into(), "approve".into());
    let url = url::Url::parse(issuer).unwrap().join(&action).unwrap();
    let response = http().post(url).header("origin", "http://evil.example").form(&inputs).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);

    let redirect = consent.submit(issuer, &[("decision", "approve")]).await;
    assert!(request.callback(&redirect).contains_key("code"));
}
