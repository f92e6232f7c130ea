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
pub const MAX_POLLS_IN_FLIGHT: usize = 8;

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
        Self { settings, http, endpoints: tokio::sync::OnceCell::new(), polls }
    }

    /// The endpoints, discovered on first use (a provider that starts later is found then).
    async fn endpoints(&self) -> Result<&Endpoints, CibaError> {
        self.endpoints.get_or_try_init(|| discovery::resolve(&self.http, &self.settings)).await
    }

    /// POSTs an authenticated form to one of the provider's endpoints.
    async fn post_form<T: DeserializeOwned>(
        &self,
        url: &str,
        mut form: Vec<(&str, String)>,
    ) -> Result<ProviderAnswer<T>, CibaError> {
        let mut request = self.http.post(url);
        match self.settings.auth_method {
            ClientAuthMethod::ClientSecretBasic => {
                // RFC 6749 §2.3.1: each part is form-urlencoded before Basic encoding.
                let encode = |part: &str| url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
                request = request
                    .basic_auth(encode(&self.settings.client_id), Some(encode(self.settings.client_secret.expose())));
            }
            ClientAuthMethod::ClientSecretPost => {
                form.push(("client_id", self.settings.client_id.clone()));
                form.push(("client_secret", self.settings.client_secret.expose().to_owned()));
            }
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| CibaError::Unreachable { url: url.to_owned(), reason: crate::http_client::reason(&e) })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = response
            .bytes()
            .await
            .map_err(|e| CibaError::Unreachable { url: url.to_owned(), reason: crate::http_client::reason(&e) })?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map(ProviderAnswer::Success)
                .map_err(|_| CibaError::BadResponse { url: url.to_owned(), status: status.as_u16() });
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
            Err(_) => Err(CibaError::BadResponse { url: url.to_owned(), status: status.as_u16() }),
        }
    }
}
