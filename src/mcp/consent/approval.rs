//! The provider's side of the proof: the access token the holder's approval produced, checked
//! against the provider's published keys and against the transfer's terms.
//!
//! The same check runs twice. When the approval arrives, [`Witness`] runs it with the key set as
//! fetched from the provider then, and the token, the key set document and the outcome are kept
//! with the intent ([`Witnessed`]). Later, `bankguard evidence verify` runs it offline on the
//! pack's copies. The token has expired by then, so expiry is not part of the check: what matters is
//! that the provider signed it, for this holder, audience and payment.
//!
//! A token that fails the check at approval time does not stop the transfer (the bank verifies the
//! token itself, and is the party that refuses a payment); it is logged, and the transfer's
//! evidence then says why the provider's attestation is missing.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::authorization_details::{BindingMismatch, PAYMENT_INITIATION, PaymentInitiation, TransferTerms};
use crate::ciba::types::Secret;
use crate::provider_keys::{AuthorizationServerKeys, KeyError, PublishedKey};

/// What the token must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The provider's issuer, exactly as configured.
    pub issuer: &'a str,
    /// The audience the approval was asked for, if one was.
    pub audience: Option<&'a str>,
    /// The holder's subject at the provider: whose device was asked.
    pub subject: &'a str,
    pub terms: TransferTerms<'a>,
}

/// The claims of an approving token that the proof rests on (RFC 9068, RFC 9396).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalClaims {
    pub iss: String,
    pub sub: String,
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub aud: Option<Value>,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub authorization_details: Vec<Value>,
}

/// Why a token does not attest the holder's approval of these terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalProblem {
    #[error("the access token is not a signed JWT")]
    NotAJwt,
    #[error("the provider's key set has no key {kid:?} (the token's kid)")]
    UnknownKey { kid: String },
    #[error("the provider's keys could not be fetched")]
    KeysUnavailable,
    #[error("the token is signed with {alg:?}, which its key does not allow")]
    Algorithm { alg: Algorithm },
    #[error("the token's signature does not verify with the provider's key")]
    Signature,
    #[error("the token's claims are unreadable")]
    Claims,
    #[error("the token was issued by {found:?}, not by {expected:?}")]
    Issuer { found: String, expected: String },
    #[error("the token is not for the audience {expected:?}")]
    Audience { expected: String },
    #[error("the token names the holder {found:?}, not {expected:?}")]
    Subject { found: String, expected: String },
    #[error("the token approves no payment_initiation")]
    NoPayment,
    #[error("the token approves more than one payment_initiation")]
    SeveralPayments,
    #[error("the token's payment differs from the transfer: {0}")]
    Binding(BindingMismatch),
    #[error("the token's payment does not name the transfer intent")]
    NoIntentId,
}

/// The key id the token names, the first thing needed to find its key.
pub fn key_id(token: &str) -> Result<String, ApprovalProblem> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| ApprovalProblem::NotAJwt)?;
    header.kid.ok_or(ApprovalProblem::UnknownKey { kid: String::new() })
}

/// Checks `token` with the provider's `key` against `expected`; its claims if they attest exactly
/// this approval.
pub fn verify(token: &str, key: &PublishedKey, expected: &Expected<'_>) -> Result<ApprovalClaims, ApprovalProblem> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| ApprovalProblem::NotAJwt)?;
    if !key.algorithms.contains(&header.alg) {
        return Err(ApprovalProblem::Algorithm { alg: header.alg });
    }
    let mut validation = Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<ApprovalClaims>(token, &key.key, &validation)
        .map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => ApprovalProblem::Signature,
            _ => ApprovalProblem::Claims,
        })?
        .claims;
    if claims.iss != expected.issuer {
        return Err(ApprovalProblem::Issuer { found: claims.iss, expected: expected.issuer.to_owned() });
    }
    if let Some(audience) = expected.audience {
        let listed = match &claims.aud {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(audience)),
            _ => false,
        };
        if !listed {
            return Err(ApprovalProblem::Audience { expected: audience.to_owned() });
        }
    }
    if claims.sub != expected.subject {
        return Err(ApprovalProblem::Subject { found: claims.sub, expected: expected.subject.to_owned() });
    }
    let payments: Vec<PaymentInitiation> = claims
        .authorization_details
        .iter()
        .filter(|detail| detail.get("type").and_then(Value::as_str) == Some(PAYMENT_INITIATION))
        .map(|detail| serde_json::from_value(detail.clone()).map_err(|_| ApprovalProblem::Claims))
        .collect::<Result<_, _>>()?;
    let payment = match payments.as_slice() {
        [] => return Err(ApprovalProblem::NoPayment),
        [one] => one,
        _ => return Err(ApprovalProblem::SeveralPayments),
    };
    payment.check_matches(&expected.terms).map_err(ApprovalProblem::Binding)?;
    if payment.intent_id.is_none() {
        return Err(ApprovalProblem::NoIntentId);
    }
    Ok(claims)
}

/// Lowercase hex SHA-256 of a token: how a receipt names the exact token it rests on.
pub fn token_digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An approval as it arrived: the token, the key set it was checked with, and the outcome.
#[derive(Debug, Clone)]
pub struct Witnessed {
    pub issuer: String,
    pub audience: Option<String>,
    /// The access token (by now consumed by the bank, and soon expired).
    pub token: Secret,
    /// The provider's key set document as fetched, when a key for the token was found.
    pub jwks: Option<Arc<str>>,
    /// The token's `jti`, when it verified.
    pub jti: Option<String>,
    /// Why it did not verify; `None` when it attests the approval.
    pub problem: Option<String>,
}

/// Checks approvals as they arrive, with the provider's keys (fetched once, then cached).
pub struct Witness {
    keys: AuthorizationServerKeys,
    issuer: String,
    audience: Option<String>,
}

impl Witness {
    pub fn new(issuer: String, audience: Option<String>, http: reqwest::Client) -> Self {
        Self { keys: AuthorizationServerKeys::new(issuer.clone(), http), issuer, audience }
    }

    /// Checks `token` for the holder `subject` and `terms`, never failing: a problem is recorded.
    pub async fn witness(&self, token: &Secret, subject: &str, terms: TransferTerms<'_>) -> Witnessed {
        let expected = Expected { issuer: &self.issuer, audience: self.audience.as_deref(), subject, terms };
        let (jwks, outcome) = match key_id(token.expose()) {
            Err(problem) => (None, Err(problem)),
            Ok(kid) => match self.keys.key(&kid).await {
                Ok(key) => (Some(key.document.clone()), verify(token.expose(), &key, &expected)),
                Err(KeyError::UnknownKid) => (None, Err(ApprovalProblem::UnknownKey { kid })),
                Err(KeyError::Unavailable) => (None, Err(ApprovalProblem::KeysUnavailable)),
            },
        };
        let (jti, problem) = match outcome {
            Ok(claims) => (claims.jti, None),
            Err(problem) => {
                tracing::warn!(%problem, "the approval's token does not attest the transfer; the bank decides");
                (None, Some(problem.to_string()))
            }
        };
        Witnessed { jwks, jti, problem, ..self.unchecked(token, "") }
    }

    /// `token` kept without having been checked, and why.
    pub fn unchecked(&self, token: &Secret, why: &str) -> Witnessed {
        Witnessed {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            token: token.clone(),
            jwks: None,
            jti: None,
            problem: Some(why.to_owned()),
        }
    }
}
