//! PKCE (RFC 7636), `S256` only: the client proves at the token endpoint that it is the one that
//! started the sign-in, so a code caught on its way back through the browser is worth nothing.
//!
//! `plain` is refused (OAuth 2.1 §4.1.1): it would put the secret itself in the browser's URL.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::secrets;

/// An S256 challenge: BASE64URL(SHA-256(verifier)) without padding, always 43 characters.
const S256_CHALLENGE_CHARS: usize = 43;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)")]
    MalformedVerifier,
    #[error("code_verifier does not match the code_challenge of the authorization request")]
    Mismatch,
}

/// Whether `challenge` can be an S256 challenge at all (43 base64url characters).
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == S256_CHALLENGE_CHARS
        && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.6: the verifier, hashed, must equal the challenge sent to `/authorize`.
pub fn verify(verifier: &str, challenge: &str) -> Result<(), PkceError> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(unreserved) {
        return Err(PkceError::MalformedVerifier);
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if secrets::constant_time_eq(&computed, challenge) { Ok(()) } else { Err(PkceError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_appendix_b_example_verifies() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_s256_challenge(challenge));
        assert_eq!(verify(verifier, challenge), Ok(()));
        assert_eq!(verify(&verifier.replace('d', "e"), challenge), Err(PkceError::Mismatch));
        // `plain` would send the verifier itself as the challenge: it never matches.
        assert_eq!(verify(verifier, verifier), Err(PkceError::Mismatch));
    }

    #[test]
    fn short_long_or_odd_verifiers_and_challenges_are_refused() {
        assert_eq!(verify("short", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), Err(PkceError::MalformedVerifier));
        assert_eq!(verify(&"a".repeat(129), "x"), Err(PkceError::MalformedVerifier));
        assert_eq!(verify(&format!("{}!", "a".repeat(43)), "x"), Err(PkceError::MalformedVerifier));
        assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"));
        assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"));
    }
}
