//! The CIBA client: how bankguard asks an OpenID provider for the account holder's approval.
//!
//! Client side only; it talks to Auth0, node oidc-provider, Keycloak or the embedded dev server over
//! HTTP and imports nothing from `devstack`. Split as the protocol is:
//! - [`discovery`]: the provider's endpoints, from `{issuer}/.well-known/openid-configuration` or config;
//! - [`request`]: the backchannel authentication request (`/bc-authorize`);
//! - [`wait`]: polling the token endpoint (interval, `slow_down`, expiry) and waking on a ping;
//! - [`client_credentials`]: the server's own token for reading accounts, cached;
//! - [`types`] and [`error`]: typed values and failures, each failure transient or final.
//!
//! Client authentication is `client_secret_basic` or `client_secret_post`, whichever the client is
//! registered for. Secrets and tokens are [`types::Secret`]s and are never logged.

pub mod client_credentials;
pub mod discovery;
pub mod error;
pub mod request;
pub mod types;
pub mod wait;

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::ClientAuthMethod;
use discovery::Endpoints;
pub use error::{CibaError, ProviderRefusal};
use types::Secret;

/// Who we are at the provider and where it is.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub issuer: String,
    /// Overrides for providers without discovery, or with endpoints elsewhere.
    pub backchannel_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub client_id: String,
    pub client_secret: Secret,
    pub auth_method: ClientAuthMethod,
}

pub struct CibaClient {
    settings: ProviderSettings,
    http: reqwest::Client,
    endpoints: tokio::sync::OnceCell<Endpoints>,
    /// `client_secret_basic`: the `Authorization` header, built once (marked sensitive, so it is
    /// never printed); `None` for `client_secret_post`.
    basic_authorization: Option<reqwest::header::HeaderValue>,
    /// Bounds the polls in flight (see [`MAX_POLLS_IN_FLIGHT`]).
    polls: std::sync::Arc<tokio::sync::Semaphore>,
}

/// The most token-endpoint polls one server has in flight at once.
///
/// Redeeming an approval is not idempotent: a poll whose answer is lost (our timeout, while the
/// provider is still working through a queue) may have consumed the grant, and the approval is then
/// lost for good. When thousands of holders approve at once (thousands of pings together), the polls
/// queue here, where waiting costs nothing, instead of at the provider, where a request waiting
/// longer than our timeout loses an approval. Measured by the suite's scale section: with every ping
/// answered by an immediate poll, 888 of 10,000 approvals were lost to timeouts at the provider.
///
/// The bound is also the most polls per round trip a server can make, so it must not be small: at 8,
/// a poll-mode server with 10,000 pending requests (2,000 polls a second at a 5 s interval) fell
/// seconds behind whenever redeeming polls, which wait for the provider's writer, held the turns
/// (measured by the suite's polling section). 64 in flight queue well under a second at the
/// embedded provider, and against a provider 100 ms away still allow 640 polls a second.
pub const MAX_POLLS_IN_FLIGHT: usize = 64;

/// An answer from the provider: the success body, or its OAuth error with any `Retry-After`. Anything
/// else (no answer, a body that does not parse) is a [`CibaError`] that keeps the HTTP status, so
/// [`CibaError::is_transient`] can tell "not now" from "no".
pub enum ProviderAnswer<T> {
    Success(T),
    Refused { refusal: ProviderRefusal, retry_after: Option<u64>, interval: Option<u64> },
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    interval: Option<u64>,
}

impl CibaClient {
    pub fn new(settings: ProviderSettings, http: reqwest::Client) -> Self {
        let polls = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_POLLS_IN_FLIGHT));
        let basic_authorization = (settings.auth_method == ClientAuthMethod::ClientSecretBasic).then(|| {
            // RFC 6749 §2.3.1: each part is form-urlencoded before Basic encoding.
            let encode = |part: &str| url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
            let credentials = format!("{}:{}", encode(&settings.client_id), encode(settings.client_secret.expose()));
            let mut value =
                reqwest::header::HeaderValue::try_from(format!("Basic {}", BASE64_STANDARD.encode(credentials)))
                    .expect("Base64 is a valid header value");
            value.set_sensitive(true);
            value
        });
        Self { settings, http, endpoints: tokio::sync::OnceCell::new(), basic_authorization, polls }
    }

    /// The endpoints, discovered on first use (a provider that starts later is found then).
    async fn endpoints(&self) -> Result<&Endpoints, CibaError> {
        self.endpoints.get_or_try_init(|| discovery::resolve(&self.http, &self.settings)).await
    }

    /// POSTs an authenticated form to one of the provider's endpoints.
    async fn post_form<T: DeserializeOwned>(
        &self,
        url: &reqwest::Url,
        mut form: Vec<(&str, String)>,
    ) -> Result<ProviderAnswer<T>, CibaError> {
        let mut request = self.http.post(url.clone());
        match &self.basic_authorization {
            Some(authorization) => request = request.header(reqwest::header::AUTHORIZATION, authorization.clone()),
            None => {
                form.push(("client_id", self.settings.client_id.clone()));
                form.push(("client_secret", self.settings.client_secret.expose().to_owned()));
            }
        }
        let unreachable =
            |e: reqwest::Error| CibaError::Unreachable { url: url.to_string(), reason: crate::http_client::reason(&e) };
        let response = request.form(&form).send().await.map_err(unreachable)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map(ProviderAnswer::Success)
                .map_err(|_| CibaError::BadResponse { url: url.to_string(), status: status.as_u16() });
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(error) => Ok(ProviderAnswer::Refused {
                refusal: ProviderRefusal {
                    status: status.as_u16(),
                    error: error.error,
                    description: error.error_description,
                },
                retry_after,
                interval: error.interval,
            }),
            Err(_) => Err(CibaError::BadResponse { url: url.to_string(), status: status.as_u16() }),
        }
    }
}

/// A client (`bankguard-mcp`, `client_secret_basic`) of a provider that `router` serves on a loopback
/// port, its backchannel and token endpoints at `/bc-authorize` and `/oauth/token`.
#[cfg(test)]
pub(crate) async fn loopback_client(router: axum::Router, http: reqwest::Client) -> CibaClient {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("a bound address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let settings = ProviderSettings {
        issuer: base.clone(),
        backchannel_endpoint: Some(format!("{base}/bc-authorize")),
        token_endpoint: Some(format!("{base}/oauth/token")),
        client_id: "bankguard-mcp".into(),
        client_secret: Secret::new("secret"),
        auth_method: ClientAuthMethod::ClientSecretBasic,
    };
    CibaClient::new(settings, http)
}
