//! The cost of one access-token check, the part of the bank API that depends on the JWT backend:
//! `jsonwebtoken::decode` of an RS256 and an ES256 access token (signature, then claims), with keys
//! built from a published JWKS exactly as the bank API builds them, and the bank's expectations
//! (issuer, audience, required claims, leeway). Nothing else: no HTTP, no ledger.
//!
//! Each row runs batches of verifications and reports the median batch's time per verification,
//! which a noisy shared machine disturbs less than a mean.
//!
//! `cargo bench --bench token_checks` (env: `BENCH_BATCHES`, default 31; `BENCH_BATCH_SIZE`, default 200).

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Instant;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use support::{AUDIENCE, Signing, TestIssuer, Transfer};

/// The claims the bank API reads from every token.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Claims {
    sub: String,
    exp: i64,
    jti: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    authorization_details: Option<Vec<serde_json::Value>>,
}

fn main() {
    let batches: usize = std::env::var("BENCH_BATCHES").ok().and_then(|v| v.parse().ok()).unwrap_or(31);
    let batch_size: usize = std::env::var("BENCH_BATCH_SIZE").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    // The test issuer serves its JWKS over loopback; the keys are read from there, as the bank reads them.
    let (issuer, jwks) = runtime.block_on(async {
        let issuer = TestIssuer::start().await;
        let http = bankguard::http_client::builder().build().unwrap();
        let jwks: JwkSet = http.get(format!("{}/jwks", issuer.url)).send().await.unwrap().json().await.unwrap();
        (issuer, jwks)
    });
    let key = |kid: &str| DecodingKey::from_jwk(jwks.find(kid).unwrap()).unwrap();
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25.00");
    let claims = issuer.approval_claims("alice", &transfer);

    println!("access-token checks (jsonwebtoken::decode), {batches} batches of {batch_size}, median batch");
    println!("{:<8} {:>14} {:>14} {:>14}", "alg", "µs / check", "fastest batch", "checks/s");
    let mut medians = Vec::new();
    for (label, algorithm, signing, kid) in
        [("RS256", Algorithm::RS256, Signing::Rs256, "rsa-1"), ("ES256", Algorithm::ES256, Signing::Es256, "ec-1")]
    {
        let token = issuer.sign(&claims, signing);
        let key = key(kid);
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&issuer.url]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 60;
        let check = || jsonwebtoken::decode::<Claims>(black_box(&token), &key, &validation).unwrap();
        for _ in 0..batch_size {
            black_box(check());
        }
        let mut per_check: Vec<f64> = (0..batches)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..batch_size {
                    black_box(check());
                }
                started.elapsed().as_secs_f64() * 1e6 / batch_size as f64
            })
            .collect();
        per_check.sort_by(f64::total_cmp);
        let median = per_check[per_check.len() / 2];
        println!("{label:<8} {median:>14.1} {:>14.1} {:>14.0}", per_check[0], 1e6 / median);
        medians.push(median);
    }
    println!("ES256 / RS256 time per check = {:.2}", medians[1] / medians[0]);
}
