//! Signing a user in to an MCP client against the real authorization server, the way a headless
//! MCP client's redirect handler would: discover the endpoints (RFC 8414), send the user to
//! `/authorize` with PKCE `S256` and the resource, read the real sign-in and consent pages (their
//! forms and hidden inputs) and submit them as the person would, catch the redirect to the client
//! instead of following it, and exchange the code.
//!
//! [`sign_in`] does all of it and returns the [`Tokens`]; the steps are public for tests that look
//! at one of them.

use std::collections::BTreeMap;

use bankguard::config::{ClientAuthMethod, ClientConfig, DeliveryMode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use super::{Reply, send};

/// What a completed sign-in gives the client.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub scope: String,
    pub token_type: String,
}

impl Tokens {
    /// The tokens of a successful token response; panics with the reply otherwise.
    pub fn from_reply(reply: &Reply) -> Self {
        assert_eq!(reply.status, 200, "the token request failed: {}", reply.body);
        let text =
            |name: &str| reply.body[name].as_str().unwrap_or_else(|| panic!("no {name} in {}", reply.body)).to_owned();
        Self {
            access_token: text("access_token"),
            refresh_token: text("refresh_token"),
            expires_in: reply.body["expires_in"].as_i64().expect("expires_in"),
            scope: text("scope"),
            token_type: text("token_type"),
        }
    }
}

/// Signs `user` in to the public client `client_id` (registered with `redirect_uri`) for
/// `resource` and `scope`, approving on the consent page, and exchanges the code.
///
/// `resource` must be the MCP resource the dev server knows, `config.mcp_resource()` when it
/// started: with the MCP server on an ephemeral port, set `config.mcp.listen` to the bound address
/// (or `mcp.oauth.resource`) before the dev stack starts, so that it equals the server's URL.
pub async fn sign_in(
    issuer: &str,
    client_id: &str,
    redirect_uri: &str,
    user: &str,
    resource: &str,
    scope: &str,
) -> Tokens {
    let (code, pkce) = authorization_code(issuer, client_id, redirect_uri, user, resource, scope).await;
    Tokens::from_reply(&exchange_code(issuer, client_id, redirect_uri, &code, &pkce.verifier).await)
}

/// Everything [`sign_in`] does before the token request: the code, and the PKCE verifier for it.
pub async fn authorization_code(
    issuer: &str,
    client_id: &str,
    redirect_uri: &str,
    user: &str,
    resource: &str,
    scope: &str,
) -> (String, Pkce) {
    let pkce = Pkce::new();
    let request = AuthorizationRequest::new(issuer, client_id, redirect_uri, resource, scope, &pkce).await;
    (request.approve_as(user).await, pkce)
}

/// Uses `refresh_token` once; panics unless the server answers with new tokens.
pub async fn refresh(issuer: &str, client_id: &str, refresh_token: &str) -> Tokens {
    Tokens::from_reply(&refresh_reply(issuer, client_id, refresh_token).await)
}

/// A public client configured under `[[authz.clients]]` that signs users in.
pub fn public_client(id: &str, redirect_uri: &str) -> ClientConfig {
    ClientConfig {
        id: id.to_owned(),
        secret: String::new(),
        auth_method: ClientAuthMethod::None,
        redirect_uris: vec![redirect_uri.to_owned()],
        client_name: None,
        grant_types: ClientConfig::sign_in_grant_types(),
        delivery_mode: DeliveryMode::Poll,
        notification_endpoint: None,
        client_credentials_scopes: Vec::new(),
    }
}

/// A PKCE verifier and its S256 challenge (RFC 7636 §4.1, §4.2).
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let verifier = bankguard::secrets::random_token(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self { verifier, challenge }
    }
}

/// An HTTP client that shows redirects instead of following them, as a redirect handler sees them.
pub fn http() -> reqwest::Client {
    bankguard::http_client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The issuer's RFC 8414 metadata.
pub async fn metadata(issuer: &str) -> Value {
    let reply = send(http().get(format!("{issuer}/.well-known/oauth-authorization-server"))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// One authorization request, sent: the sign-in page it got, and what the redirect must echo.
pub struct AuthorizationRequest {
    pub issuer: String,
    pub redirect_uri: String,
    pub state: String,
    /// The page `/authorize` answered with.
    pub page: Page,
}

impl AuthorizationRequest {
    /// Sends the browser to the authorization endpoint; panics unless the sign-in page comes back.
    pub async fn new(
        issuer: &str,
        client_id: &str,
        redirect_uri: &str,
        resource: &str,
        scope: &str,
        pkce: &Pkce,
    ) -> Self {
        let state = bankguard::secrets::random_token(12);
        let url = authorization_url(
            issuer,
            &[
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", redirect_uri),
                ("scope", scope),
                ("resource", resource),
                ("state", &state),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
        let page = Page::get(&url).await;
        assert_eq!(page.status, 200, "the authorization request was refused: {}", page.html);
        Self { issuer: issuer.to_owned(), redirect_uri: redirect_uri.to_owned(), state, page }
    }

    /// Picks `user` on the sign-in page and approves on the consent page; the code from the redirect.
    pub async fn approve_as(&self, user: &str) -> String {
        let consent = self.consent_page(user).await;
        self.approve(&consent).await
    }

    /// Picks `user` on the sign-in page; the consent page that follows.
    pub async fn consent_page(&self, user: &str) -> Page {
        let consent = self.page.submit(&self.issuer, &[("user", user)]).await;
        assert_eq!(consent.status, 200, "the sign-in page refused {user}: {}", consent.html);
        consent
    }

    /// Allows on `consent`; the code from the redirect.
    pub async fn approve(&self, consent: &Page) -> String {
        let redirect = consent.submit(&self.issuer, &[("decision", "approve")]).await;
        let parameters = self.callback(&redirect);
        parameters.get("code").cloned().unwrap_or_else(|| panic!("no code in the redirect: {parameters:?}"))
    }

    /// The query parameters of the redirect `page` is, after checking it goes to the registered
    /// redirect URI with this request's `state` and the issuer's `iss` (RFC 9207).
    pub fn callback(&self, page: &Page) -> BTreeMap<String, String> {
        assert_eq!(page.status, 303, "expected a redirect to the client: {}", page.html);
        let parameters = redirect_parameters(page, &self.redirect_uri);
        assert_eq!(parameters.get("state"), Some(&self.state), "{parameters:?}");
        assert_eq!(parameters.get("iss"), Some(&self.issuer), "{parameters:?}");
        parameters
    }
}

/// The authorization endpoint from the metadata, with `parameters`.
pub async fn authorization_url(issuer: &str, parameters: &[(&str, &str)]) -> String {
    let endpoint = metadata(issuer).await["authorization_endpoint"].as_str().unwrap().to_owned();
    Url::parse_with_params(&endpoint, parameters).unwrap().to_string()
}

/// The query parameters of a redirect, after checking it goes to `redirect_uri`.
pub fn redirect_parameters(page: &Page, redirect_uri: &str) -> BTreeMap<String, String> {
    let location = page.location.as_deref().unwrap_or_else(|| panic!("no Location: {}", page.html));
    let url = Url::parse(location).unwrap();
    let target = format!("{}{}", &url[..url::Position::BeforePath], url.path());
    assert_eq!(target, redirect_uri, "redirected elsewhere: {location}");
    url.query_pairs().into_owned().collect()
}

/// A page as a browser got it (without following redirects).
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub html: String,
}

impl Page {
    pub async fn get(url: &str) -> Self {
        Self::from(http().get(url).send().await.unwrap()).await
    }

    async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let location = response.headers().get("location").map(|value| value.to_str().unwrap().to_owned());
        Self { status, location, html: response.text().await.unwrap() }
    }

    /// The page's one form: its action and its hidden inputs.
    pub fn form(&self) -> (String, BTreeMap<String, String>) {
        let action = regex::Regex::new(r#"<form method="post" action="([^"]+)""#).unwrap();
        let action =
            action.captures(&self.html).unwrap_or_else(|| panic!("no form on the page: {}", self.html))[1].to_owned();
        let hidden = regex::Regex::new(r#"<input type="hidden" name="([^"]+)" value="([^"]*)">"#).unwrap();
        let inputs = hidden.captures_iter(&self.html).map(|c| (unescape(&c[1]), unescape(&c[2]))).collect();
        (unescape(&action), inputs)
    }

    /// Whether the page offers a submit button `name` = `value`.
    pub fn offers(&self, name: &str, value: &str) -> bool {
        self.html.contains(&format!(r#"name="{name}" value="{value}""#))
    }

    /// Submits the page's form with its hidden inputs and `choices` (the button pressed), the way a
    /// browser would; panics if the page does not offer that button.
    pub async fn submit(&self, issuer: &str, choices: &[(&str, &str)]) -> Page {
        for (name, value) in choices {
            assert!(self.offers(name, value), "the page offers no {name}={value}: {}", self.html);
        }
        let (action, mut inputs) = self.form();
        inputs.extend(choices.iter().map(|(name, value)| (name.to_string(), value.to_string())));
        self.post(issuer, &action, &inputs).await
    }

    /// Posts `inputs` to `action` on the issuer as a form.
    pub async fn post(&self, issuer: &str, action: &str, inputs: &BTreeMap<String, String>) -> Page {
        let url = Url::parse(issuer).unwrap().join(action).unwrap();
        Self::from(http().post(url).form(inputs).send().await.unwrap()).await
    }
}

/// The token request for a public client's code (RFC 6749 §4.1.3, RFC 7636 §4.5).
pub async fn exchange_code(issuer: &str, client_id: &str, redirect_uri: &str, code: &str, verifier: &str) -> Reply {
    token_request(
        issuer,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("client_id", client_id),
        ],
    )
    .await
}

/// The token request with a public client's refresh token (RFC 6749 §6).
pub async fn refresh_reply(issuer: &str, client_id: &str, refresh_token: &str) -> Reply {
    token_request(
        issuer,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)],
    )
    .await
}

pub async fn token_request(issuer: &str, form: &[(&str, &str)]) -> Reply {
    let endpoint = metadata(issuer).await["token_endpoint"].as_str().unwrap().to_owned();
    send(http().post(endpoint).form(form)).await
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}
