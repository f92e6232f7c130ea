//! An authorization server's published signing keys: found through its metadata, cached, and
//! fetched again when a token names a key we do not hold. Used for the access tokens MCP clients
//! sign in with (`mcp.auth = "oauth"`) and for the approvals the CIBA provider issues, whose key
//! set is kept as fetched for the transfer's evidence pack.
//!
//! The metadata is looked up as RFC 8414 defines it (`/.well-known/oauth-authorization-server`
//! inserted before the issuer's path), then as OpenID Connect Discovery does
//! (`{issuer}/.well-known/openid-configuration`), since providers serve one or the other or both.
//! Either way the document's `issuer` must equal the configured one exactly (RFC 8414 §3.3), or a
//! look-alike server could hand us its keys.
//!
//! A token whose `kid` is not cached triggers a fetch at once, so a key rotated in is accepted from
//! its first token. Only a fetch that comes back *without* the `kid` it was made for starts a quiet
//! period ([`MISS_QUIET_PERIOD`]) during which other unknown `kid`s are refused without fetching:
//! forged `kid`s cost the authorization server at most one fetch per period.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};
use url::Url;

/// After a fetch that did not find an unknown `kid`, the next one waits this long.
pub const MISS_QUIET_PERIOD: Duration = Duration::from_secs(60);
/// Until a first fetch has succeeded, a retry waits only this long.
const RETRY_BEFORE_FIRST_FETCH: Duration = Duration::from_secs(1);

/// One published key, and the algorithms it may verify.
pub struct PublishedKey {
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
    /// The key set document (JWKS) it was published in, exactly as fetched.
    pub document: Arc<str>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    #[error("the authorization server's keys could not be fetched yet")]
    Unavailable,
    #[error("the authorization server publishes no key with this kid")]
    UnknownKid,
}

pub struct AuthorizationServerKeys {
    issuer: String,
    http: reqwest::Client,
    cache: RwLock<Cache>,
    /// Held while fetching: concurrent misses wait for one fetch instead of each starting one.
    fetching: Mutex<()>,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, Arc<PublishedKey>>,
    jwks_uri: Option<String>,
    fetched_once: bool,
    last_attempt: Option<Instant>,
    last_miss: Option<Instant>,
}

/// The part of RFC 8414 / OpenID discovery metadata used here.
#[derive(Deserialize)]
struct ServerMetadata {
    issuer: String,
    jwks_uri: String,
}

impl AuthorizationServerKeys {
    pub fn new(issuer: String, http: reqwest::Client) -> Self {
        Self { issuer, http, cache: RwLock::default(), fetching: Mutex::new(()) }
    }

    /// Fetches the keys now (at start, so the first client does not wait); a failure is logged
    /// and retried when a token needs a key.
    pub async fn prefetch(&self) {
        let _fetching = self.fetching.lock().await;
        if !self.cache.read().await.fetched_once {
            self.refresh().await;
        }
    }

    /// The key published under `kid`, fetching the key set if it is not cached and a fetch is due.
    pub async fn key(&self, kid: &str) -> Result<Arc<PublishedKey>, KeyError> {
        if let Some(key) = self.cache.read().await.keys.get(kid) {
            return Ok(key.clone());
        }
        let _fetching = self.fetching.lock().await;
        let due = {
            let cache = self.cache.read().await;
            if let Some(key) = cache.keys.get(kid) {
                return Ok(key.clone());
            }
            let (since, quiet) = match cache.fetched_once {
                true => (cache.last_miss, MISS_QUIET_PERIOD),
                false => (cache.last_attempt, RETRY_BEFORE_FIRST_FETCH),
            };
            since.is_none_or(|at| at.elapsed() >= quiet)
        };
        if due {
            self.refresh().await;
        }
        let mut cache = self.cache.write().await;
        match cache.keys.get(kid) {
            Some(key) => Ok(key.clone()),
            None if !cache.fetched_once => Err(KeyError::Unavailable),
            None => {
                if due {
                    cache.last_miss = Some(Instant::now());
                }
                Err(KeyError::UnknownKid)
            }
        }
    }

    async fn refresh(&self) {
        let known = self.cache.read().await.jwks_uri.clone();
        let fetched = self.fetch(known).await;
        let mut cache = self.cache.write().await;
        cache.last_attempt = Some(Instant::now());
        match fetched {
            Ok((jwks_uri, keys)) => {
                tracing::info!(issuer = %self.issuer, keys = keys.len(), "fetched the authorization server's keys");
                *cache = Cache { keys, jwks_uri: Some(jwks_uri), fetched_once: true, ..std::mem::take(&mut *cache) };
            }
            Err(reason) => {
                tracing::warn!(issuer = %self.issuer, %reason, "could not fetch the authorization server's keys")
            }
        }
    }

    async fn fetch(
        &self,
        known_jwks_uri: Option<String>,
    ) -> Result<(String, HashMap<String, Arc<PublishedKey>>), String> {
        let jwks_uri = match known_jwks_uri {
            Some(uri) => uri,
            None => self.discover().await?,
        };
        let document: Arc<str> = self.get_text(&jwks_uri).await?.into();
        let keys = published_keys(&document).map_err(|e| format!("GET {jwks_uri}: {e}"))?;
        Ok((jwks_uri, keys))
    }

    /// The `jwks_uri` from the first metadata document found, RFC 8414's first.
    async fn discover(&self) -> Result<String, String> {
        let mut failures = Vec::new();
        for url in metadata_urls(&self.issuer)? {
            match self.get_json::<ServerMetadata>(&url).await {
                Ok(metadata) if metadata.issuer == self.issuer => return Ok(metadata.jwks_uri),
                Ok(metadata) => {
                    return Err(format!(
                        "{url} names issuer {:?}, not the configured {:?}",
                        metadata.issuer, self.issuer
                    ));
                }
                Err(reason) => failures.push(reason),
            }
        }
        Err(failures.join("; "))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        serde_json::from_str(&self.get_text(url).await?).map_err(|e| format!("GET {url}: unreadable JSON: {e}"))
    }

    async fn get_text(&self, url: &str) -> Result<String, String> {
        let response =
            self.http.get(url).send().await.map_err(|e| format!("GET {url}: {}", crate::http_client::reason(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}"));
        }
        response.text().await.map_err(|e| format!("GET {url}: {}", crate::http_client::reason(&e)))
    }
}

/// RFC 8414 §3.1's metadata URL for `issuer`, then OpenID Connect Discovery's.
pub fn metadata_urls(issuer: &str) -> Result<[String; 2], String> {
    let url = Url::parse(issuer).map_err(|_| format!("the issuer {issuer:?} is not a URL"))?;
    let path = url.path().trim_end_matches('/');
    let origin = url.origin().ascii_serialization();
    Ok([
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')),
    ])
}

/// The usable keys of a key set document, by `kid` (keys without one cannot be named by a token).
pub fn published_keys(document: &Arc<str>) -> Result<HashMap<String, Arc<PublishedKey>>, String> {
    let set: JwkSet = serde_json::from_str(document).map_err(|e| format!("not a JWK set: {e}"))?;
    Ok(set
        .keys
        .iter()
        .filter_map(|jwk| Some((jwk.common.key_id.clone()?, Arc::new(published_key(jwk, document.clone())?))))
        .collect())
}

/// The algorithms a published key may verify, or `None` for keys never used here: keys for
/// encryption, symmetric keys, and keys of other types or curves.
fn published_key(jwk: &Jwk, document: Arc<str>) -> Option<PublishedKey> {
    if matches!(jwk.common.public_key_use, Some(ref usage) if *usage != PublicKeyUse::Signature) {
        return None;
    }
    use Algorithm::*;
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => vec![ES256],
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P384 => vec![ES384],
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => vec![EdDSA],
        _ => return None,
    };
    // A key that declares its algorithm may verify that one only (RFC 7517 §4.4).
    let algorithms = match jwk.common.key_algorithm {
        None => family,
        Some(declared) => {
            let declared: Algorithm = declared.to_string().parse().ok()?;
            family.into_iter().filter(|a| *a == declared).collect()
        }
    };
    if algorithms.is_empty() {
        return None;
    }
    Some(PublishedKey { key: DecodingKey::from_jwk(jwk).ok()?, algorithms, document })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::KeyAlgorithm;

    use super::*;

    #[test]
    fn metadata_is_looked_up_the_rfc_8414_way_first_then_the_openid_way() {
        assert_eq!(
            metadata_urls("https://tenant.auth0.com/").unwrap(),
            [
                "https://tenant.auth0.com/.well-known/oauth-authorization-server",
                "https://tenant.auth0.com/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            metadata_urls("https://sso.example.com/realms/bank").unwrap(),
            [
                "https://sso.example.com/.well-known/oauth-authorization-server/realms/bank",
                "https://sso.example.com/realms/bank/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn a_key_that_declares_its_algorithm_verifies_that_one_only() {
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": "k", "alg": "ES256", "use": "sig",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }))
        .unwrap();
        let document: Arc<str> = Arc::from("{}");
        assert_eq!(published_key(&jwk, document.clone()).unwrap().algorithms, [Algorithm::ES256]);
        let mut mismatched = jwk.clone();
        mismatched.common.key_algorithm = Some(KeyAlgorithm::RS256);
        assert!(published_key(&mismatched, document.clone()).is_none(), "an EC key declared RS256 is never used");
        let mut encryption = jwk;
        encryption.common.public_key_use = Some(PublicKeyUse::Encryption);
        assert!(published_key(&encryption, document).is_none());
    }
}
