//! Whether an MCP client's bearer token lets its request in, and which holder it acts for.
//!
//! The same requirements the bank API puts on its own tokens, checked by code of the MCP side (the
//! client side and the server side of bankguard never share code paths): the header first, before a
//! key is looked up (an `alg` from `mcp.oauth.algorithms`, never `none` or HMAC; no `crit`, since no
//! extension is understood here; a `kid`), then the signature by the key the authorization server
//! publishes under that `kid`, `iss` exactly the configured issuer, `aud` containing this server's
//! resource identifier (RFC 8707: a token for the bank API or any other resource is refused),
//! `exp`/`nbf` with [`LEEWAY_SECONDS`], a `sub`, and the claim naming the holder at the bank. Only
//! then the scope, whose absence is a different answer (403, RFC 6750 §3.1).

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::mcp::holder::Holder;
use crate::provider_keys::{AuthorizationServerKeys, KeyError};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 60;

/// What a token must be for this server.
pub struct Expectations {
    pub issuer: String,
    /// This server's resource identifier: the `aud` a token must carry.
    pub resource: String,
    pub scope: String,
    /// The claim naming the holder's user id at the bank (`sub`: the subject itself).
    pub holder_claim: String,
    pub algorithms: Vec<Algorithm>,
}

pub struct TokenVerifier {
    keys: AuthorizationServerKeys,
    expect: Expectations,
}

/// Why a request's token does not let it in. The messages never quote the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// RFC 6750 §3.1 `invalid_token`: 401.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// A valid token without the scope the tools need: 403 `insufficient_scope`.
    #[error("the access token does not carry the scope this server needs")]
    InsufficientScope,
    /// The authorization server's keys cannot be fetched, so no token can be checked now: 503.
    #[error("the access token cannot be checked now: the authorization server's keys are unavailable")]
    KeysUnavailable,
}

/// The protected header, read before anything else.
#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// The claims used here; `iss`, `aud`, `exp` and `nbf` are checked by jsonwebtoken's [`Validation`].
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    /// RFC 9068 §2.2.3 / RFC 8693 §4.2: space-separated.
    scope: Option<String>,
    /// The array form some providers use instead.
    scp: Option<Vec<String>>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

impl TokenVerifier {
    pub fn new(keys: AuthorizationServerKeys, expect: Expectations) -> Self {
        Self { keys, expect }
    }

    pub fn keys(&self) -> &AuthorizationServerKeys {
        &self.keys
    }

    /// The holder `token` acts for, if every requirement holds.
    pub async fn verify(&self, token: &str) -> Result<Holder, Refusal> {
        use Refusal::InvalidToken;
        let header = read_header(token)?;
        if header.crit.is_some() {
            return Err(InvalidToken(
                "the access token marks header parameters critical (crit); none is understood here",
            ));
        }
        let algorithm = Algorithm::from_str(&header.alg)
            .ok()
            .filter(|algorithm| self.expect.algorithms.contains(algorithm))
            .ok_or(InvalidToken("the access token's signature algorithm is not accepted"))?;
        let kid = header.kid.ok_or(InvalidToken("the access token's header names no key (kid)"))?;
        let key = self.keys.key(&kid).await.map_err(|error| match error {
            KeyError::Unavailable => Refusal::KeysUnavailable,
            KeyError::UnknownKid => {
                InvalidToken("the access token is signed with a key the authorization server does not publish")
            }
        })?;
        if !key.algorithms.contains(&algorithm) {
            return Err(InvalidToken("the access token's algorithm does not match its key"));
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.expect.issuer]);
        validation.set_audience(&[&self.expect.resource]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|error| InvalidToken(reason(error.kind())))?
            .claims;
        let subject = claims
            .sub
            .clone()
            .filter(|sub| !sub.is_empty())
            .ok_or(InvalidToken("the access token has no subject (sub)"))?;
        let bank_user = match self.expect.holder_claim.as_str() {
            "sub" => subject.clone(),
            claim => claims
                .other
                .get(claim)
                .and_then(Value::as_str)
                .filter(|user| !user.is_empty())
                .map(str::to_owned)
                .ok_or(InvalidToken("the access token lacks the claim that names the account holder at the bank"))?,
        };
        if !claims.scopes().any(|scope| scope == self.expect.scope) {
            return Err(Refusal::InsufficientScope);
        }
        // RFC 9068 §2.2: the client the token was issued to (`azp` where a provider uses that instead).
        let client = ["client_id", "azp"]
            .iter()
            .find_map(|claim| claims.other.get(*claim).and_then(Value::as_str).filter(|id| !id.is_empty()))
            .map(str::to_owned);
        Ok(Holder { subject, bank_user, client })
    }
}

impl Claims {
    fn scopes(&self) -> impl Iterator<Item = &str> {
        let spaced = self.scope.iter().flat_map(|scope| scope.split(' '));
        spaced.chain(self.scp.iter().flatten().map(String::as_str))
    }
}

fn read_header(token: &str) -> Result<Header, Refusal> {
    const MALFORMED: Refusal = Refusal::InvalidToken("the access token is not a well-formed signed JWT");
    let mut segments = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return Err(MALFORMED);
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| MALFORMED)?;
    serde_json::from_slice(&bytes).map_err(|_| MALFORMED)
}

fn reason(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "the access token has expired",
        ErrorKind::ImmatureSignature => "the access token is not valid yet (nbf)",
        ErrorKind::InvalidIssuer => "the access token was issued by another authorization server",
        ErrorKind::InvalidAudience => "the access token is for another resource (aud), not this MCP server",
        ErrorKind::InvalidSignature => "the access token's signature does not verify",
        ErrorKind::MissingRequiredClaim(_) => "the access token lacks a required claim (exp, iss, aud or sub)",
        _ => "the access token is not a well-formed signed JWT",
    }
}
