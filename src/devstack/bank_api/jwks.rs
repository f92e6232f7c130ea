//! The issuer's signing keys: found through OpenID discovery, cached, refetched on an unknown `kid`.
//!
//! Discovery (`{issuer}/.well-known/openid-configuration`) names the `jwks_uri`; its `issuer` must
//! equal the configured one exactly (OpenID Connect Discovery §4.3), or a look-alike provider could
//! hand us its keys. Only RSA and P-256 keys meant for signatures are kept.
//!
//! A token whose `kid` is not cached makes us fetch the key set at once, so a key the provider has
//! just rotated in is accepted from its first token, however recently we last fetched. What is
//! limited is the fetch that *misses*: once a fetch for an unknown `kid` comes back without it, further
//! unknown `kid`s are refused without a fetch until the refetch interval has passed since that miss.
//! Forged `kid`s therefore cost the provider at most one fetch per interval, and a genuine new key
//! waits at most one interval, only if its first token came before the provider published it (or
//! within an interval of a forged one).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

const RETRY_UNTIL_FIRST_FETCH: Duration = Duration::from_secs(1);

/// A key that may verify tokens signed with exactly one algorithm.
pub struct VerificationKey {
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum JwksError {
    /// No keys have ever been fetched, so no token can be checked.
    #[error("the token issuer's keys could not be fetched: {0}")]
    Unavailable(String),
    #[error("no key with this kid is published by the issuer")]
    UnknownKid,
}

pub struct JwksCache {
    issuer: String,
    http: reqwest::Client,
    refetch_interval: Duration,
    snapshot: RwLock<Snapshot>,
    /// Held while fetching, so concurrent misses wait for one fetch instead of starting their own.
    fetching: Mutex<()>,
}

#[derive(Default)]
struct Snapshot {
    keys: HashMap<String, Arc<VerificationKey>>,
    jwks_uri: Option<String>,
    last_attempt: Option<Instant>,
    /// When a fetch last came back without the unknown `kid` it was made for: the start of the quiet window.
    last_miss: Option<Instant>,
    fetched_ever: bool,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    jwks_uri: String,
}

impl JwksCache {
    pub fn new(issuer: String, http: reqwest::Client, refetch_interval: Duration) -> Self {
        Self { issuer, http, refetch_interval, snapshot: RwLock::default(), fetching: Mutex::new(()) }
    }

    /// The key for `kid`, fetching the key set first if it is not cached and the interval allows.
    pub async fn key(&self, kid: &str) -> Result<Arc<VerificationKey>, JwksError> {
        if let Some(key) = self.snapshot.read().await.keys.get(kid) {
            return Ok(key.clone());
        }
        let _fetching = self.fetching.lock().await;
        let due = {
            let snapshot = self.snapshot.read().await;
            if let Some(key) = snapshot.keys.get(kid) {
                return Ok(key.clone());
            }
            if snapshot.fetched_ever {
                snapshot.last_miss.is_none_or(|at| at.elapsed() >= self.refetch_interval)
            } else {
                // Until a first fetch succeeds there is nothing to protect, so retry sooner.
                let wait = RETRY_UNTIL_FIRST_FETCH.min(self.refetch_interval);
                snapshot.last_attempt.is_none_or(|at| at.elapsed() >= wait)
            }
        };
        if due {
            self.refetch().await;
        }
        let mut snapshot = self.snapshot.write().await;
        if due && snapshot.fetched_ever && !snapshot.keys.contains_key(kid) {
            snapshot.last_miss = Some(Instant::now());
        }
        match snapshot.keys.get(kid) {
            Some(key) => Ok(key.clone()),
            None if !snapshot.fetched_ever => {
                Err(JwksError::Unavailable("no successful fetch yet; see the server log for the cause".to_owned()))
            }
            None => Err(JwksError::UnknownKid),
        }
    }

    async fn refetch(&self) {
        let jwks_uri = self.snapshot.read().await.jwks_uri.clone();
        let result = self.fetch(jwks_uri).await;
        let mut snapshot = self.snapshot.write().await;
        snapshot.last_attempt = Some(Instant::now());
        match result {
            Ok((jwks_uri, keys)) => {
                tracing::info!(issuer = %self.issuer, keys = keys.len(), "fetched the issuer's signing keys");
                snapshot.keys = keys;
                snapshot.jwks_uri = Some(jwks_uri);
                snapshot.fetched_ever = true;
            }
            Err(reason) => tracing::warn!(issuer = %self.issuer, %reason, "could not fetch the issuer's signing keys"),
        }
    }

    async fn fetch(
        &self,
        known_jwks_uri: Option<String>,
    ) -> Result<(String, HashMap<String, Arc<VerificationKey>>), String> {
        let jwks_uri = match known_jwks_uri {
            Some(uri) => uri,
            None => {
                let url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
                let discovery: DiscoveryDocument = self.get_json(&url).await?;
                if discovery.issuer != self.issuer {
                    return Err(format!(
                        "discovery at {url} names issuer {:?}, not the configured {:?}",
                        discovery.issuer, self.issuer
                    ));
                }
                discovery.jwks_uri
            }
        };
        let set: JwkSet = self.get_json(&jwks_uri).await?;
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, Arc::new(verification_key(jwk)?))))
            .collect();
        Ok((jwks_uri, keys))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self.http.get(url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}"));
        }
        response.json().await.map_err(|e| format!("GET {url}: unreadable JSON: {e}"))
    }
}

/// The algorithm a published key may be used with, or `None` for keys we do not accept:
/// encryption keys, symmetric keys, other curves, and keys whose declared `alg` is not RS256/ES256.
fn verification_key(jwk: &Jwk) -> Option<VerificationKey> {
    if matches!(jwk.common.public_key_use, Some(ref usage) if *usage != PublicKeyUse::Signature) {
        return None;
    }
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
        _ => return None,
    };
    let declared_matches = match jwk.common.key_algorithm {
        None => true,
        Some(KeyAlgorithm::RS256) => algorithm == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => algorithm == Algorithm::ES256,
        Some(_) => false,
    };
    if !declared_matches {
        return None;
    }
    Some(VerificationKey { algorithm, key: DecodingKey::from_jwk(jwk).ok()? })
}
