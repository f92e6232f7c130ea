//! The server's audit key: ES256 (P-256), generated into the data directory on first start
//! (`audit-key.pem`, PKCS#8 PEM, mode 0600), used for nothing but signing heads of the audit chain.
//!
//! A signed head is a compact JWS (RFC 7515) with the header
//! `{"alg":"ES256","kid":<RFC 7638 thumbprint>,"typ":"bankguard-audit-head"}` over the payload
//! `{"hash":<the head entry's hash>,"iat":<seconds>,"seq":<the head entry's seq>}`, signed and
//! checked through `jsonwebtoken` (the crate the dev provider and the bank API use for tokens). Replicas sharing a PostgreSQL store should share one key file,
//! so that `bankguard audit verify` on any of them can check every head.

use std::path::Path;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::secrets;

/// The key file inside the data directory.
pub const KEY_FILE: &str = "audit-key.pem";
/// The JWS `typ` of a signed head.
const HEAD_TYPE: &str = "bankguard-audit-head";

#[derive(Debug, thiserror::Error)]
pub enum AuditKeyError {
    #[error("audit key file {path}: {reason}")]
    File { path: String, reason: String },
    #[error(
        "no audit key at {path}: run `bankguard audit verify` with the data directory of the server that signed \
         the log"
    )]
    Missing { path: String },
}

/// The private key that signs heads. Its `Debug` shows only the key id.
pub struct AuditKey {
    encoding: EncodingKey,
    verifier: HeadVerifier,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey").field("kid", &self.verifier.kid).finish_non_exhaustive()
    }
}

/// What a signed head says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadClaims {
    pub hash: String,
    pub iat: i64,
    pub seq: i64,
}

impl AuditKey {
    /// Loads the key from `data_dir`, generating and saving one on first start.
    pub fn load_or_generate(data_dir: &Path) -> Result<Self, AuditKeyError> {
        let path = data_dir.join(KEY_FILE);
        let file_error = |reason: String| AuditKeyError::File { path: path.display().to_string(), reason };
        crate::data_dir::prepare(data_dir).map_err(|error| file_error(error.to_string()))?;
        let (pkcs8, generated) = secrets::load_or_generate_p256(&path).map_err(file_error)?;
        let key = Self::from_pkcs8(&pkcs8).map_err(file_error)?;
        if generated {
            tracing::info!(path = %path.display(), kid = %key.key_id(), "generated the audit trail's signing key");
        }
        Ok(key)
    }

    /// Loads the key from `data_dir`; never generates one (a verifier must not make up a key).
    pub fn load(data_dir: &Path) -> Result<Self, AuditKeyError> {
        let path = data_dir.join(KEY_FILE);
        if !path.exists() {
            return Err(AuditKeyError::Missing { path: path.display().to_string() });
        }
        Self::load_or_generate(data_dir)
    }

    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, String> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|e| format!("not a P-256 PKCS#8 key: {e}"))?;
        let secrets::P256Public { x, y, kid } = secrets::p256_public(pair.public_key().as_ref())?;
        let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
        Ok(Self { encoding: EncodingKey::from_ec_der(pkcs8), verifier: HeadVerifier { kid, decoding } })
    }

    /// The key's RFC 7638 thumbprint.
    pub fn key_id(&self) -> &str {
        &self.verifier.kid
    }

    /// The head at entry `seq` with `hash`, signed at `at`, as a compact JWS.
    pub fn sign_head(&self, seq: i64, hash: &str, at: Millis) -> String {
        let header = Header {
            typ: Some(HEAD_TYPE.to_owned()),
            kid: Some(self.verifier.kid.clone()),
            ..Header::new(Algorithm::ES256)
        };
        let claims = HeadClaims { hash: hash.to_owned(), iat: at.0.div_euclid(1000), seq };
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("signing with a valid P-256 key succeeds")
    }

    /// The public half, which checks heads.
    pub fn verifier(&self) -> &HeadVerifier {
        &self.verifier
    }
}

/// Checks heads signed by one audit key.
#[derive(Clone)]
pub struct HeadVerifier {
    kid: String,
    decoding: DecodingKey,
}

impl std::fmt::Debug for HeadVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadVerifier").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl HeadVerifier {
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// What `jws` says, if this key signed it as a head; otherwise why not.
    pub fn verify(&self, jws: &str) -> Result<HeadClaims, String> {
        let header = jsonwebtoken::decode_header(jws).map_err(|_| "its signature is not a compact JWS".to_owned())?;
        let typ = header.typ.unwrap_or_default();
        if header.alg != Algorithm::ES256 || typ != HEAD_TYPE {
            return Err(format!("its JWS is a {:?} {typ}, not an ES256 {HEAD_TYPE}", header.alg));
        }
        let kid = header.kid.unwrap_or_default();
        if kid != self.kid {
            return Err(format!("it was signed by key {kid}, not by this server's audit key {}", self.kid));
        }
        // A head is not a token: no expiry or audience, only the signature and the claims.
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<HeadClaims>(jws, &self.decoding, &validation).map(|data| data.claims).map_err(|error| {
            match error.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => "its signature does not verify".to_owned(),
                _ => "its signed claims are unreadable".to_owned(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_verifies_with_the_key_that_signed_it_and_with_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::load_or_generate(dir.path()).unwrap();
        let jws = key.sign_head(7, &"a".repeat(64), Millis(1_700_000_000_123));
        assert_eq!(key.verifier().verify(&jws), Ok(HeadClaims { hash: "a".repeat(64), iat: 1_700_000_000, seq: 7 }));

        let other_dir = tempfile::tempdir().unwrap();
        let other = AuditKey::load_or_generate(other_dir.path()).unwrap();
        let refused = other.verifier().verify(&jws).unwrap_err();
        assert!(refused.contains(key.key_id()), "{refused}");

        // The same claims under another signature, or other claims under this one: refused.
        let (input, _) = jws.rsplit_once('.').unwrap();
        use base64::Engine;
        let forged_payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"hash":"b","iat":1,"seq":9}"#);
        let (header, _) = input.split_once('.').unwrap();
        let signature = jws.rsplit_once('.').unwrap().1;
        let forged = format!("{header}.{forged_payload}.{signature}");
        assert_eq!(key.verifier().verify(&forged).unwrap_err(), "its signature does not verify");
    }

    #[test]
    fn the_key_is_generated_once_into_a_private_file_and_never_by_a_verifier() {
        let dir = tempfile::tempdir().unwrap();
        let missing = AuditKey::load(dir.path()).unwrap_err();
        assert!(matches!(missing, AuditKeyError::Missing { .. }), "{missing}");
        let generated = AuditKey::load_or_generate(dir.path()).unwrap();
        let loaded = AuditKey::load(dir.path()).unwrap();
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
