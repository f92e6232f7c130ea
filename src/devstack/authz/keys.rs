//! The authorization server's signing key: ES256 (P-256), generated on first start and persisted in
//! the data directory (PKCS#8 PEM, mode 0600), published in the JWKS under its RFC 7638 thumbprint.
//!
//! Generation, parsing and signing go through aws-lc-rs, the crate's one crypto library. The file is
//! a plain PKCS#8 v1 `PRIVATE KEY` PEM (RFC 5958, RFC 7468) with the same layout the `p256` crate
//! wrote before, so a data directory from an earlier version keeps its key and `kid` (a test below
//! loads one such file).

use std::path::Path;

use crate::secrets;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

/// The key file inside the data directory.
pub const KEY_FILE: &str = "authz-signing-key.pem";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key file {path}: {reason}")]
    File { path: String, reason: String },
}

pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Value,
}

impl SigningKey {
    /// Loads the key from `data_dir`, generating and saving one on first start.
    pub fn load_or_generate(data_dir: &Path) -> Result<Self, KeyError> {
        let path = data_dir.join(KEY_FILE);
        let file_error = |reason: String| KeyError::File { path: path.display().to_string(), reason };
        let (pkcs8, generated) = secrets::load_or_generate_p256(&path).map_err(file_error)?;
        if generated {
            tracing::info!(path = %path.display(), "generated the authorization server's signing key");
        }
        Self::from_pkcs8(&pkcs8).map_err(file_error)
    }

    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, String> {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|e| format!("not a P-256 PKCS#8 key: {e}"))?;
        let secrets::P256Public { x, y, kid } = secrets::p256_public(key.public_key().as_ref())?;
        let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"});
        Ok(Self { kid, encoding: EncodingKey::from_ec_der(pkcs8), decoding, jwk })
    }

    /// The public key as a JWK set.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// Signs `claims` as a JWT of the given `typ` (`at+jwt` for access tokens, `JWT` for ID tokens).
    pub fn sign(&self, typ: &str, claims: &impl Serialize) -> Result<String, jsonwebtoken::errors::Error> {
        let header = Header { typ: Some(typ.to_owned()), kid: Some(self.kid.clone()), ..Header::new(Algorithm::ES256) };
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// The key for checking this server's own tokens (e.g. an `id_token_hint`).
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key file written by the `p256` crate (bankguard before aws-lc-rs), and the `kid` it was published under.
    const P256_CRATE_KEY_FILE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJNxCc6Ynpaaa0k9i
aKJzbmROR1B916NDqQVHHIh/9bShRANCAARVA6VnGaSiRytpTXkjSvE6IMqS6qUf
XZ4AIaPQ+aDEuE1k9aciKIlsFMox2PcBJ+bFpa/eXFNWdrq2gxD/B/vH
-----END PRIVATE KEY-----
";
    const P256_CRATE_KID: &str = "E9mDEeYcq3SzoNlMDqzl6Hm1knlewsP5Gv0TTAM_7dI";

    #[test]
    fn a_key_file_written_before_aws_lc_rs_loads_with_the_same_kid() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), P256_CRATE_KEY_FILE).unwrap();
        let key = SigningKey::load_or_generate(dir.path()).unwrap();
        assert_eq!(key.kid, P256_CRATE_KID);
        assert_eq!(key.jwks()["keys"][0]["x"], "VQOlZxmkokcraU15I0rxOiDKkuqlH12eACGj0PmgxLg");
    }

    #[test]
    fn a_generated_key_is_written_as_pkcs8_pem_and_loads_again_as_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let generated = SigningKey::load_or_generate(dir.path()).unwrap();
        let pem = std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n") && pem.ends_with("-----END PRIVATE KEY-----\n"));
        assert!(pem.lines().all(|line| line.len() <= 64), "{pem}");
        let loaded = SigningKey::load_or_generate(dir.path()).unwrap();
        assert_eq!(loaded.jwks(), generated.jwks());
    }

    #[test]
    fn its_tokens_verify_with_its_own_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::load_or_generate(dir.path()).unwrap();
        let token = key.sign("at+jwt", &json!({"sub": "alice", "exp": 4_000_000_000_i64})).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Value>(&token, key.decoding_key(), &validation).unwrap().claims;
        assert_eq!(claims["sub"], "alice");
    }

    #[test]
    fn a_file_that_is_not_a_p256_pkcs8_key_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        for (contents, reason) in [
            ("hello", "not a PEM PRIVATE KEY"),
            ("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n", "not a PEM PRIVATE KEY"),
            ("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n", "not a P-256 PKCS#8 key"),
        ] {
            std::fs::write(dir.path().join(KEY_FILE), contents).unwrap();
            let error = SigningKey::load_or_generate(dir.path()).err().unwrap().to_string();
            assert!(error.contains(KEY_FILE) && error.contains(reason), "{error}");
        }
    }
}
