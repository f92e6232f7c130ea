//! The MCP server's own signing key, and the public keys its signatures are checked against.
//!
//! One ES256 (P-256) key per server, generated into the data directory on first start
//! (`server-key.pem`, PKCS#8 PEM, mode 0600). It signs two things, each a compact JWS (RFC 7515)
//! whose `typ` says which, so one can never be passed off as the other:
//! - heads of the audit chain (`bankguard-audit-head`, [`crate::mcp::lifecycle::audit`]);
//! - receipts of completed transfers (`bankguard-receipt`, [`crate::mcp::consent`]).
//!
//! The header's `kid` is the key's RFC 7638 thumbprint. Anyone checks a signature with the public
//! key alone: it is published at [`JWKS_PATH`] and printed by `bankguard keys`. Replicas sharing a
//! PostgreSQL store each have their own key; each registers its public key in the store, and a
//! verifier decides which keys it trusts ([`TrustedKeys`]): its own, plus the key sets it is given.

use std::collections::BTreeMap;
use std::path::Path;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::secrets;

/// The key file inside the data directory.
pub const KEY_FILE: &str = "server-key.pem";
/// Where a server publishes its public key (a JWK set) over HTTP, beside `/mcp`.
pub const JWKS_PATH: &str = "/.well-known/bankguard-keys.json";

#[derive(Debug, thiserror::Error)]
pub enum ServerKeyError {
    #[error("server key file {path}: {reason}")]
    File { path: String, reason: String },
    #[error(
        "no server key at {path}: run this with the data directory of the server that signed (or pass the \
         server's public keys with --trusted-keys)"
    )]
    Missing { path: String },
    #[error("trusted key set {origin}: {reason}")]
    KeySet { origin: String, reason: String },
}

/// The private key. Its `Debug` shows only the key id.
pub struct ServerKey {
    encoding: EncodingKey,
    public: PublicKey,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKey").field("kid", &self.public.kid).finish_non_exhaustive()
    }
}

impl ServerKey {
    /// Loads the key from `data_dir`, generating and saving one on first start.
    pub fn load_or_generate(data_dir: &Path) -> Result<Self, ServerKeyError> {
        let path = data_dir.join(KEY_FILE);
        let file_error = |reason: String| ServerKeyError::File { path: path.display().to_string(), reason };
        crate::data_dir::prepare(data_dir).map_err(|error| file_error(error.to_string()))?;
        let (pkcs8, generated) = secrets::load_or_generate_p256(&path).map_err(file_error)?;
        let key = Self::from_pkcs8(&pkcs8).map_err(file_error)?;
        if generated {
            tracing::info!(path = %path.display(), kid = %key.key_id(), "generated this server's signing key");
        }
        Ok(key)
    }

    /// Loads the key from `data_dir`; never generates one (a verifier must not make up a key).
    pub fn load(data_dir: &Path) -> Result<Self, ServerKeyError> {
        let path = data_dir.join(KEY_FILE);
        if !path.exists() {
            return Err(ServerKeyError::Missing { path: path.display().to_string() });
        }
        Self::load_or_generate(data_dir)
    }

    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, String> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|e| format!("not a P-256 PKCS#8 key: {e}"))?;
        let secrets::P256Public { x, y, kid } = secrets::p256_public(pair.public_key().as_ref())?;
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"
        }))
        .map_err(|e| e.to_string())?;
        let public = PublicKey::from_jwk(&jwk).ok_or("the public key is not a P-256 JWK")?;
        Ok(Self { encoding: EncodingKey::from_ec_der(pkcs8), public })
    }

    /// The key's RFC 7638 thumbprint.
    pub fn key_id(&self) -> &str {
        &self.public.kid
    }

    /// The public key, as a JWK (`kid`, `use: sig`, `alg: ES256`).
    pub fn public_jwk(&self) -> &Jwk {
        &self.public.jwk
    }

    /// `claims` as a compact JWS of type `typ`, signed with this key.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> String {
        let header =
            Header { typ: Some(typ.to_owned()), kid: Some(self.public.kid.clone()), ..Header::new(Algorithm::ES256) };
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing with a valid P-256 key succeeds")
    }

    /// The keys that check this server's signatures: this key alone.
    pub fn trusted(&self) -> TrustedKeys {
        TrustedKeys { keys: BTreeMap::from([(self.public.kid.clone(), self.public.clone())]) }
    }
}

#[derive(Clone)]
struct PublicKey {
    kid: String,
    jwk: Jwk,
    decoding: DecodingKey,
}

impl PublicKey {
    /// An ES256 public key with a `kid`; anything else is not a bankguard server key.
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        let kid = jwk.common.key_id.clone()?;
        let is_p256 = matches!(&jwk.algorithm, jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(ec)
            if ec.curve == jsonwebtoken::jwk::EllipticCurve::P256);
        is_p256.then_some(())?;
        Some(Self { kid, jwk: jwk.clone(), decoding: DecodingKey::from_jwk(jwk).ok()? })
    }
}

/// The server public keys a verifier trusts, by key id.
#[derive(Clone)]
pub struct TrustedKeys {
    keys: BTreeMap<String, PublicKey>,
}

impl std::fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.keys()).finish()
    }
}

impl TrustedKeys {
    /// The keys of a JWK set document (`{"keys": [...]}`), e.g. another replica's `bankguard keys`.
    /// `origin` names the document in errors (a file name).
    pub fn from_jwks(document: &str, origin: &str) -> Result<Self, ServerKeyError> {
        let refused = |reason: String| ServerKeyError::KeySet { origin: origin.to_owned(), reason };
        let set: JwkSet = serde_json::from_str(document).map_err(|e| refused(format!("not a JWK set: {e}")))?;
        let mut keys = BTreeMap::new();
        for jwk in &set.keys {
            let key = PublicKey::from_jwk(jwk)
                .ok_or_else(|| refused("holds a key that is not a P-256 key with a kid".into()))?;
            keys.insert(key.kid.clone(), key);
        }
        if keys.is_empty() {
            return Err(refused("holds no key".into()));
        }
        Ok(Self { keys })
    }

    /// These keys and `other`'s.
    pub fn and(mut self, other: TrustedKeys) -> Self {
        self.keys.extend(other.keys);
        self
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The key ids, in order.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The keys as a JWK set, as published at [`JWKS_PATH`].
    pub fn jwk_set(&self) -> JwkSet {
        JwkSet { keys: self.keys.values().map(|key| key.jwk.clone()).collect() }
    }

    /// What `jws` says, if one of these keys signed it as a `typ`; otherwise why not, in words.
    /// Signed statements are not tokens: no expiry or audience is checked, only the signature.
    pub fn verify<T: DeserializeOwned>(&self, typ: &str, jws: &str) -> Result<T, String> {
        let header = jsonwebtoken::decode_header(jws).map_err(|_| "its signature is not a compact JWS".to_owned())?;
        let found_typ = header.typ.unwrap_or_default();
        if header.alg != Algorithm::ES256 || found_typ != typ {
            return Err(format!("its JWS is a {:?} {found_typ}, not an ES256 {typ}", header.alg));
        }
        let kid = header.kid.unwrap_or_default();
        let Some(key) = self.keys.get(&kid) else {
            return Err(format!("it was signed by key {kid}, which is not a trusted server key"));
        };
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<T>(jws, &key.decoding, &validation).map(|data| data.claims).map_err(|error| match error
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => "its signature does not verify".to_owned(),
            _ => "its signed claims are unreadable".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Said {
        what: String,
    }

    #[test]
    fn a_signature_verifies_with_the_key_that_made_it_for_its_type_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = ServerKey::load_or_generate(dir.path()).unwrap();
        let jws = key.sign("bankguard-test", &Said { what: "hello".into() });
        assert_eq!(key.trusted().verify::<Said>("bankguard-test", &jws), Ok(Said { what: "hello".into() }));
        let wrong_type = key.trusted().verify::<Said>("bankguard-other", &jws).unwrap_err();
        assert!(wrong_type.contains("not an ES256 bankguard-other"), "{wrong_type}");

        let other_dir = tempfile::tempdir().unwrap();
        let other = ServerKey::load_or_generate(other_dir.path()).unwrap();
        let refused = other.trusted().verify::<Said>("bankguard-test", &jws).unwrap_err();
        assert!(refused.contains(key.key_id()) && refused.contains("not a trusted"), "{refused}");

        // The same header and signature over other claims: refused.
        use base64::Engine;
        let mut parts = jws.split('.');
        let (header, _, signature) = (parts.next().unwrap(), parts.next(), parts.next().unwrap());
        let forged_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"what":"goodbye"}"#);
        let forged = format!("{header}.{forged_payload}.{signature}");
        assert_eq!(
            key.trusted().verify::<Said>("bankguard-test", &forged).unwrap_err(),
            "its signature does not verify"
        );
    }

    #[test]
    fn a_published_key_set_is_trusted_as_published() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (ServerKey::load_or_generate(a.path()).unwrap(), ServerKey::load_or_generate(b.path()).unwrap());
        let published = serde_json::to_string(&b.trusted().jwk_set()).unwrap();
        let both = a.trusted().and(TrustedKeys::from_jwks(&published, "b.json").unwrap());
        let jws = b.sign("bankguard-test", &Said { what: "from b".into() });
        assert_eq!(both.verify::<Said>("bankguard-test", &jws).unwrap().what, "from b");
        assert_eq!(both.key_ids().count(), 2);
        let not_a_set = TrustedKeys::from_jwks(r#"{"keys":[]}"#, "empty.json").unwrap_err().to_string();
        assert!(not_a_set.contains("empty.json") && not_a_set.contains("no key"), "{not_a_set}");
        assert!(!published.contains("\"d\""), "the published set holds no private part");
    }

    #[test]
    fn the_key_is_generated_once_into_a_private_file_and_never_by_a_verifier() {
        let dir = tempfile::tempdir().unwrap();
        let missing = ServerKey::load(dir.path()).unwrap_err();
        assert!(matches!(missing, ServerKeyError::Missing { .. }), "{missing}");
        let generated = ServerKey::load_or_generate(dir.path()).unwrap();
        let loaded = ServerKey::load(dir.path()).unwrap();
        assert_eq!(generated.key_id(), loaded.key_id());
        assert!(!format!("{loaded:?}").contains("PRIVATE"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
