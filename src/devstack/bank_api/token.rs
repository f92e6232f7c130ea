//! Access-token verification: the one place the bank API decides whether a bearer token is genuine.
//!
//! [`TokenVerifier::verify`] lists every requirement in order: an RS256 or ES256 signature (never
//! `none`, never HS*, whatever the header claims) by a key the issuer publishes, `iss` exactly the
//! configured issuer, `aud` containing our audience, `exp`/`nbf` within 60 s of leeway, and `sub` and
//! `jti` present. What a token may *do* (scope, ownership, transaction binding, single use) is
//! decided by the route that uses it, on the [`AccessToken`] returned here.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::jwks::{JwksCache, JwksError};
use crate::authorization_details::{PAYMENT_INITIATION, PaymentInitiation};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 60;
const ACCEPTED_ALGORITHMS: [&str; 2] = ["RS256", "ES256"];

/// A verified access token: who it is for and what it carries.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub subject: String,
    pub jti: String,
    pub client_id: Option<String>,
    pub expires_at: i64,
    scopes: Vec<String>,
    authorization_details: Vec<serde_json::Value>,
}

impl AccessToken {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The token's `payment_initiation` details, parsed; a malformed one is an error, not skipped.
    pub fn payment_initiations(&self) -> Result<Vec<PaymentInitiation>, serde_json::Error> {
        self.authorization_details
            .iter()
            .filter(|detail| detail.get("type").and_then(|t| t.as_str()) == Some(PAYMENT_INITIATION))
            .map(|detail| serde_json::from_value(detail.clone()))
            .collect()
    }
}

/// Why a token was refused. The messages are safe to return: they never quote the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm {0:?} is not accepted (RS256 and ES256 only)")]
    UnsupportedAlgorithm(String),
    #[error("the token's header has no kid")]
    MissingKeyId,
    #[error("the token's key is not published by the issuer")]
    UnknownKey,
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is not meant for this API (aud)")]
    WrongAudience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token has no {0} claim")]
    MissingClaim(&'static str),
    #[error("the token's claims are malformed")]
    MalformedClaims,
    #[error("tokens cannot be checked right now: {0}")]
    KeysUnavailable(String),
}

pub struct TokenVerifier {
    keys: JwksCache,
    validation_template: Validation,
}

/// The claims this API reads. Anything else in the token is ignored.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    authorization_details: Option<Vec<serde_json::Value>>,
}

/// The JOSE header fields read before any key is chosen.
#[derive(Deserialize)]
struct UnverifiedHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

impl TokenVerifier {
    pub fn new(issuer: String, audience: &str, http: reqwest::Client, jwks_refetch_interval: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Self { keys: JwksCache::new(issuer, http, jwks_refetch_interval), validation_template: validation }
    }

    pub async fn verify(&self, token: &str) -> Result<AccessToken, TokenError> {
        let header = read_header(token)?;
        if !ACCEPTED_ALGORITHMS.contains(&header.alg.as_str()) {
            return Err(TokenError::UnsupportedAlgorithm(header.alg.chars().take(16).collect()));
        }
        let kid = header.kid.ok_or(TokenError::MissingKeyId)?;
        let key = self.keys.key(&kid).await.map_err(|e| match e {
            JwksError::UnknownKid => TokenError::UnknownKey,
            JwksError::Unavailable(reason) => TokenError::KeysUnavailable(reason),
        })?;
        // The key decides the algorithm; a header naming another one is refused, not obeyed.
        if header.alg.parse::<Algorithm>().ok() != Some(key.algorithm) {
            return Err(TokenError::AlgorithmMismatch);
        }
        let mut validation = self.validation_template.clone();
        validation.algorithms = vec![key.algorithm];
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) => {
                    TokenError::BadSignature
                }
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                ErrorKind::InvalidAudience => TokenError::WrongAudience,
                ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(match claim.as_str() {
                    "exp" => "exp",
                    "iss" => "iss",
                    "aud" => "aud",
                    _ => "sub",
                }),
                ErrorKind::InvalidAlgorithm => TokenError::AlgorithmMismatch,
                ErrorKind::Json(_) => TokenError::MalformedClaims,
                _ => TokenError::Malformed,
            })?
            .claims;
        let jti = claims.jti.filter(|jti| !jti.is_empty()).ok_or(TokenError::MissingClaim("jti"))?;
        if claims.sub.is_empty() {
            return Err(TokenError::MissingClaim("sub"));
        }
        Ok(AccessToken {
            subject: claims.sub,
            jti,
            client_id: claims.client_id.or(claims.azp),
            expires_at: claims.exp,
            scopes: claims.scope.unwrap_or_default().split_ascii_whitespace().map(str::to_owned).collect(),
            authorization_details: claims.authorization_details.unwrap_or_default(),
        })
    }
}

fn read_header(token: &str) -> Result<UnverifiedHeader, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}
