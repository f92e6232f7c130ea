//! The authorization server's signing key: ES256 (P-256), generated on first start and persisted in
//! the data directory (PKCS#8 PEM, mode 0600), published in the JWKS under its RFC 7638 thumbprint.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::secrets;

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
        let secret = if path.exists() {
            let pem = std::fs::read_to_string(&path).map_err(|e| file_error(e.to_string()))?;
            p256::SecretKey::from_pkcs8_pem(&pem).map_err(|e| file_error(format!("not a P-256 PKCS#8 key: {e}")))?
        } else {
            let secret = p256::SecretKey::random(&mut rand_core::OsRng);
            let pem = secret.to_pkcs8_pem(LineEnding::LF).map_err(|e| file_error(e.to_string()))?;
            secrets::write_private_file(&path, pem.as_bytes()).map_err(|e| file_error(e.to_string()))?;
            tracing::info!(path = %path.display(), "generated the authorization server's signing key");
            secret
        };
        Self::from_secret(&secret).map_err(file_error)
    }

    fn from_secret(secret: &p256::SecretKey) -> Result<Self, String> {
        let point = secret.public_key().to_encoded_point(false);
        let (x, y) = match (point.x(), point.y()) {
            (Some(x), Some(y)) => (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y)),
            _ => return Err("the public key has no affine coordinates".into()),
        };
        // RFC 7638: the thumbprint hashes the required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let der = secret.to_pkcs8_der().map_err(|e| e.to_string())?;
        let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"});
        Ok(Self { kid, encoding: EncodingKey::from_ec_der(der.as_bytes()), decoding, jwk })
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
