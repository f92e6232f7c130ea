//! The server's audit key: ES256 (P-256), generated into the data directory on first start
//! (`audit-key.pem`, PKCS#8 PEM, mode 0600), used for nothing but signing heads of the audit chain.
//!
//! A signed head is a compact JWS (RFC 7515) with the header
//! `{"alg":"ES256","kid":<RFC 7638 thumbprint>,"typ":"bankguard-audit-head"}` over the payload
//! `{"hash":<the head entry's hash>,"iat":<seconds>,"seq":<the head entry's seq>}`; the signature is
//! the 64-byte `r || s` form JWS uses. Replicas sharing a PostgreSQL store should share one key file,
//! so that `bankguard audit verify` on any of them can check every head.

use std::path::Path;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
    pair: EcdsaKeyPair,
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

#[derive(Serialize, Deserialize)]
struct HeadHeader {
    alg: String,
    kid: String,
    typ: String,
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
        let point = pair.public_key().as_ref().to_vec();
        let kid = secrets::p256_public(&point)?.kid;
        Ok(Self { pair, verifier: HeadVerifier { kid, point } })
    }

    /// The key's RFC 7638 thumbprint.
    pub fn key_id(&self) -> &str {
        &self.verifier.kid
    }

    /// The head at entry `seq` with `hash`, signed at `at`, as a compact JWS.
    pub fn sign_head(&self, seq: i64, hash: &str, at: Millis) -> String {
        let header = HeadHeader { alg: "ES256".into(), kid: self.verifier.kid.clone(), typ: HEAD_TYPE.into() };
        let claims = HeadClaims { hash: hash.to_owned(), iat: at.0.div_euclid(1000), seq };
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("a header serialises")),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialise"))
        );
        let signature = self
            .pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), signing_input.as_bytes())
            .expect("signing with a valid P-256 key succeeds");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    /// The public half, which checks heads.
    pub fn verifier(&self) -> &HeadVerifier {
        &self.verifier
    }
}

/// Checks heads signed by one audit key.
#[derive(Debug, Clone)]
pub struct HeadVerifier {
    kid: String,
    /// SEC 1 uncompressed point.
    point: Vec<u8>,
}

impl HeadVerifier {
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// What `jws` says, if this key signed it as a head; otherwise why not.
    pub fn verify(&self, jws: &str) -> Result<HeadClaims, String> {
        let mut parts = jws.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("its signature is not a compact JWS".into());
        };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| "its signature is not base64url".to_owned());
        let header: HeadHeader =
            serde_json::from_slice(&decode(header)?).map_err(|_| "its JWS header is unreadable".to_owned())?;
        if header.alg != "ES256" || header.typ != HEAD_TYPE {
            return Err(format!("its JWS is a {} {}, not an ES256 {HEAD_TYPE}", header.alg, header.typ));
        }
        if header.kid != self.kid {
            return Err(format!("it was signed by key {}, not by this server's audit key {}", header.kid, self.kid));
        }
        let signing_input_len = jws.len() - signature.len() - 1;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.point)
            .verify(&jws.as_bytes()[..signing_input_len], &decode(signature)?)
            .map_err(|_| "its signature does not verify".to_owned())?;
        serde_json::from_slice(&decode(payload)?).map_err(|_| "its signed claims are unreadable".to_owned())
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
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"hash":"b","iat":1,"seq":9}"#);
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
