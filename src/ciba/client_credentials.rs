//! The server's own access token (OAuth client-credentials grant), for reading accounts. It is
//! cached and reused until shortly before it expires; concurrent callers share one fetch.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::error::CibaError;
use super::types::Secret;
use super::{CibaClient, ProviderAnswer};

/// A cached token is replaced this long before it expires, so it never expires in flight.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(30);
/// Assumed lifetime when the provider does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// One cached token for one audience and scope.
pub struct ClientCredentialsCache {
    audience: Option<String>,
    scope: String,
    cached: Mutex<Option<(Secret, Instant)>>,
}

impl ClientCredentialsCache {
    pub fn new(audience: Option<String>, scope: &str) -> Self {
        Self { audience, scope: scope.to_owned(), cached: Mutex::new(None) }
    }

    /// A valid token, from the cache or fetched now.
    pub async fn token(&self, client: &CibaClient) -> Result<Secret, CibaError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, renew_at)) = cached.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let url = client.endpoints().await?.token.clone();
        let mut form = vec![("grant_type", "client_credentials".to_owned()), ("scope", self.scope.clone())];
        if let Some(audience) = &self.audience {
            form.push(("audience", audience.clone()));
        }
        let issued_at = Instant::now();
        let response = match client.post_form::<TokenResponse>(&url, form).await? {
            ProviderAnswer::Success(response) => response,
            ProviderAnswer::Refused { refusal, .. } => return Err(CibaError::Refused(refusal)),
        };
        let lifetime = response.expires_in.map_or(DEFAULT_LIFETIME, Duration::from_secs);
        let renew_at = issued_at + lifetime.saturating_sub(RENEW_BEFORE_EXPIRY);
        *cached = Some((response.access_token.clone(), renew_at));
        Ok(response.access_token)
    }

    /// Forgets the cached token (e.g. after the resource server rejected it).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }
}
