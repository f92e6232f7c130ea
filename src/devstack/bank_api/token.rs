//! Access-token verification: the one place the bank API decides whether a bearer token is genuine.
//!
//! [`TokenVerifier::verify`] lists every requirement in order. The header first, before any key is
//! looked up: `alg` RS256 or ES256 (never `none`, never HS*); no `crit`, since the bank understands no
//! extension header parameter (RFC 7515 §4.1.11); `typ` `at+jwt` (RFC 9068 §2.1, if
//! `bank_api.require_at_jwt_typ`); a `kid`. Then an RS256 or ES256 signature by the key the issuer
//! publishes under that `kid`, `iss` exactly the configured issuer, `aud` containing our audience,
//! `exp`/`nbf` within 60 s of leeway, `sub` and `jti` present, and a client (`client_id`, or `azp`)
//! in `bank_api.accepted_client_ids`. What a token may *do* (scope, ownership, transaction binding,
//! single use) is decided by the route that uses it, on the [`AccessToken`] returned here.

use std::collections::HashSet;
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
/// The header parameters RFC 7515 §4.1 registers for JWS (JWA registers none more for JWS): `crit`
/// must never name them (§4.1.11).
const REGISTERED_HEADER_PARAMETERS: [&str; 11] =
    ["alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit"];
/// RFC 9068 §2.1's media type, without the `application/` prefix RFC 7515 §4.1.9 lets producers omit.
const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// What a token must be besides genuine: the configured issuer, audience, type and clients.
pub struct Expectations {
    pub issuer: String,
    pub audience: String,
    /// Require `typ: at+jwt` (RFC 9068 §2.1).
    pub require_at_jwt_typ: bool,
    /// The `client_id`/`azp` values accepted.
    pub accepted_client_ids: Vec<String>,
}

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
    #[error("the token's header marks extension parameters critical (crit), and this API understands none")]
    CriticalExtension,
    #[error(
        "the token's crit header is malformed (RFC 7515 section 4.1.11: a non-empty array naming extension parameters \
         present in the header)"
    )]
    MalformedCrit,
    #[error("the token is not an RFC 9068 access token: its header {0}, not typ at+jwt")]
    NotAnAccessToken(&'static str),
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
    #[error("the token was issued to a client this API does not accept (client_id/azp)")]
    ClientNotAccepted,
    #[error("tokens cannot be checked right now: {0}")]
    KeysUnavailable(String),
}

pub struct TokenVerifier {
    keys: JwksCache,
    validation_template: Validation,
    require_at_jwt_typ: bool,
    accepted_client_ids: Vec<String>,
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
struct UnverifiedHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<serde_json::Value>,
    crit: Option<serde_json::Value>,
    /// Every parameter name in the header, for checking what `crit` names.
    names: HashSet<String>,
}

impl TokenVerifier {
    pub fn new(expected: Expectations, http: reqwest::Client, jwks_refetch_interval: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&expected.issuer]);
        validation.set_audience(&[&expected.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Self {
            keys: JwksCache::new(expected.issuer, http, jwks_refetch_interval),
            validation_template: validation,
            require_at_jwt_typ: expected.require_at_jwt_typ,
            accepted_client_ids: expected.accepted_client_ids,
        }
    }

    pub async fn verify(&self, token: &str) -> Result<AccessToken, TokenError> {
        let header = read_header(token)?;
        if !ACCEPTED_ALGORITHMS.contains(&header.alg.as_str()) {
            return Err(TokenError::UnsupportedAlgorithm(header.alg.chars().take(16).collect()));
        }
        check_crit(&header)?;
        if self.require_at_jwt_typ {
            check_access_token_type(header.typ.as_ref())?;
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
        let client_id = self.accepted_client(claims.client_id, claims.azp)?;
        Ok(AccessToken {
            subject: claims.sub,
            jti,
            client_id: Some(client_id),
            expires_at: claims.exp,
            scopes: claims.scope.unwrap_or_default().split_ascii_whitespace().map(str::to_owned).collect(),
            authorization_details: claims.authorization_details.unwrap_or_default(),
        })
    }

    /// The token's client, if accepted. RFC 9068 names it `client_id`, Auth0's own profile `azp`; a
    /// token carrying both must be accepted under both.
    fn accepted_client(&self, client_id: Option<String>, azp: Option<String>) -> Result<String, TokenError> {
        let accepted = |id: &String| self.accepted_client_ids.contains(id);
        let (id, also) = match (client_id, azp) {
            (None, None) => return Err(TokenError::MissingClaim("client_id (or azp)")),
            (Some(id), azp) => (id, azp),
            (None, Some(azp)) => (azp, None),
        };
        if accepted(&id) && also.as_ref().is_none_or(accepted) { Ok(id) } else { Err(TokenError::ClientNotAccepted) }
    }
}

fn read_header(token: &str) -> Result<UnverifiedHeader, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| TokenError::Malformed)?;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    let names = header.keys().cloned().collect();
    let alg = match header.remove("alg") {
        Some(serde_json::Value::String(alg)) => alg,
        _ => return Err(TokenError::Malformed),
    };
    let kid = match header.remove("kid") {
        None => None,
        Some(serde_json::Value::String(kid)) => Some(kid),
        Some(_) => return Err(TokenError::Malformed),
    };
    Ok(UnverifiedHeader { alg, kid, typ: header.remove("typ"), crit: header.remove("crit"), names })
}

/// RFC 7515 §4.1.11: a recipient must refuse a token whose `crit` names a parameter it does not
/// understand, and this API understands no extension, so any `crit` is refused; one that breaks the
/// section's rules (not an array, empty, naming a registered or absent parameter, twice) is malformed.
fn check_crit(header: &UnverifiedHeader) -> Result<(), TokenError> {
    let Some(crit) = &header.crit else {
        return Ok(());
    };
    let names = crit.as_array().filter(|names| !names.is_empty()).ok_or(TokenError::MalformedCrit)?;
    let mut seen = HashSet::new();
    for name in names {
        let name = name.as_str().ok_or(TokenError::MalformedCrit)?;
        if REGISTERED_HEADER_PARAMETERS.contains(&name) || !header.names.contains(name) || !seen.insert(name) {
            return Err(TokenError::MalformedCrit);
        }
    }
    Err(TokenError::CriticalExtension)
}

/// RFC 9068 §2.1: `typ` is `at+jwt`, or `application/at+jwt`; media types compare without regard to
/// case, and a `typ` without `/` stands for `application/` plus it (RFC 7515 §4.1.9).
fn check_access_token_type(typ: Option<&serde_json::Value>) -> Result<(), TokenError> {
    let typ = typ.ok_or(TokenError::NotAnAccessToken("has no typ"))?;
    let typ = typ.as_str().unwrap_or_default().to_ascii_lowercase();
    let media_type = typ.strip_prefix("application/").unwrap_or(&typ);
    if media_type == ACCESS_TOKEN_TYPE { Ok(()) } else { Err(TokenError::NotAnAccessToken("names another typ")) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn header(value: serde_json::Value) -> UnverifiedHeader {
        let token = format!("{}.e30.sig", URL_SAFE_NO_PAD.encode(value.to_string()));
        read_header(&token).unwrap()
    }

    #[test]
    fn at_jwt_is_accepted_with_or_without_its_application_prefix_in_any_case() {
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"] {
            assert!(check_access_token_type(Some(&json!(typ))).is_ok(), "{typ}");
        }
        for typ in [json!("JWT"), json!("jwt"), json!("at+jwt; x=y"), json!("text/at+jwt"), json!(""), json!(1)] {
            assert!(matches!(check_access_token_type(Some(&typ)), Err(TokenError::NotAnAccessToken(_))), "{typ}");
        }
        assert!(matches!(check_access_token_type(None), Err(TokenError::NotAnAccessToken("has no typ"))));
    }

    #[test]
    fn any_crit_is_refused_and_a_malformed_one_says_so() {
        let base = json!({"alg": "RS256", "kid": "k"});
        assert!(check_crit(&header(base.clone())).is_ok());
        let with = |crit: serde_json::Value, extra: Option<(&str, serde_json::Value)>| {
            let mut value = base.clone();
            value["crit"] = crit;
            if let Some((name, v)) = extra {
                value[name] = v;
            }
            check_crit(&header(value))
        };
        let ext = Some(("exp_ext", json!(1)));
        assert!(matches!(with(json!(["exp_ext"]), ext.clone()), Err(TokenError::CriticalExtension)));
        assert!(matches!(with(json!(["b64"]), Some(("b64", json!(false)))), Err(TokenError::CriticalExtension)));
        for malformed in [
            json!("exp_ext"),
            json!([]),
            json!(null),
            json!([1]),
            json!(["kid"]),
            json!(["alg"]),
            json!(["absent"]),
            json!(["exp_ext", "exp_ext"]),
        ] {
            assert!(matches!(with(malformed.clone(), ext.clone()), Err(TokenError::MalformedCrit)), "{malformed}");
        }
    }
}
