//! Generated secrets and the files that hold them.
//!
//! Secrets are random bytes (AWS-LC's generator, seeded by the OS), base64url-encoded. Files holding
//! secrets are written atomically (a temp file renamed into place) with mode 0600 from the moment
//! they exist.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A random value with `bytes` bytes of entropy, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    fill_random(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

/// Fills `buffer` with random bytes from AWS-LC's generator (seeded by the operating system). Nothing
/// sensible can go on without randomness, so its failure is a panic, as it was with `rand_core`'s `OsRng`.
pub fn fill_random(buffer: &mut [u8]) {
    aws_lc_rs::rand::fill(buffer).expect("the operating system's random number generator failed");
}

/// Writes `contents` to `path` readable and writable by the owner only.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)
}

/// The PEM label of an unencrypted PKCS#8 private key (RFC 7468 §10).
const PEM_LABEL: &str = "PRIVATE KEY";

/// The P-256 private key (PKCS#8 v1 DER) kept at `path` as a `PRIVATE KEY` PEM, generated and
/// written (0600) if the file does not exist yet; `true` with it when it was generated now. The
/// error says what is wrong with the file, without its path (the caller names the key).
pub fn load_or_generate_p256(path: &Path) -> Result<(Vec<u8>, bool), String> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    if path.exists() {
        let pem = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let pkcs8 = pem_decode(&pem).ok_or_else(|| format!("not a PEM {PEM_LABEL}"))?;
        return Ok((pkcs8, false));
    }
    let generated = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .and_then(|key| key.to_pkcs8v1())
        .map_err(|e| format!("could not generate a P-256 key: {e}"))?;
    let pkcs8 = generated.as_ref().to_vec();
    write_private_file(path, pem_encode(&pkcs8).as_bytes()).map_err(|e| e.to_string())?;
    Ok((pkcs8, true))
}

/// A P-256 public key as a JWK names it: its coordinates (base64url) and RFC 7638 thumbprint.
pub struct P256Public {
    pub x: String,
    pub y: String,
    /// The RFC 7638 JWK thumbprint, base64url: the key's id.
    pub kid: String,
}

/// The JWK coordinates and thumbprint of a SEC 1 uncompressed P-256 point (0x04, then x and y,
/// 32 bytes each), as aws-lc-rs gives a key pair's public key.
pub fn p256_public(point: &[u8]) -> Result<P256Public, String> {
    use sha2::{Digest, Sha256};
    let (x, y) = match point {
        [0x04, coordinates @ ..] if coordinates.len() == 64 => {
            (URL_SAFE_NO_PAD.encode(&coordinates[..32]), URL_SAFE_NO_PAD.encode(&coordinates[32..]))
        }
        _ => return Err("the public key is not an uncompressed P-256 point".into()),
    };
    // RFC 7638: the thumbprint hashes the required members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    Ok(P256Public { x, y, kid })
}

/// PKCS#8 DER as PEM: base64 in lines of 64 characters between the labels, LF line ends.
fn pem_encode(der: &[u8]) -> String {
    use base64::engine::general_purpose::STANDARD;
    let base64 = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {PEM_LABEL}-----\n");
    let mut rest = base64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        pem.push_str(line);
        pem.push('\n');
        rest = tail;
    }
    pem.push_str(&format!("-----END {PEM_LABEL}-----\n"));
    pem
}

/// The DER inside the first `PRIVATE KEY` block of `pem` (text around it is ignored, as RFC 7468 §2
/// allows), or `None` if there is none or its base64 is malformed.
fn pem_decode(pem: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::STANDARD;
    let (_, rest) = pem.split_once(&format!("-----BEGIN {PEM_LABEL}-----"))?;
    let (body, _) = rest.split_once(&format!("-----END {PEM_LABEL}-----"))?;
    let base64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(base64).ok()
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    // Hashing first makes the lengths equal and the comparison independent of the inputs' lengths.
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_url_safe() {
        let (a, b) = (random_token(32), random_token(32));
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn private_files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_private_file(&path, b"s3cret").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"s3cret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
