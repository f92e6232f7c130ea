//! What every integration test shares.
//!
//! - [`BankStack`]: the real bank API on an ephemeral loopback port, its SQLite ledger in a temp dir,
//!   trusting a [`TestIssuer`]: a loopback provider that serves a real discovery document and JWKS and
//!   mints any token a test needs, including the malformed and malicious ones the real authorization
//!   server never would. The bank API cannot tell it is a test.
//! - [`dev::Dev`]: the real dev stack (authorization server + bank API) and a CIBA client's calls.
//! - [`browser::Browser`]: headless Chromium, for the approval page.
//! - [`sign_in::sign_in`]: a user signing in to an MCP client (authorization code with PKCE) through
//!   the real sign-in and consent pages, as a headless client's redirect handler would.
//! - [`fault_proxy::FaultProxy`]: a TCP-level proxy in front of an upstream that injects network faults.
#![allow(dead_code)]

pub mod browser;
pub mod dev;
pub mod fault_proxy;
pub mod faulty;
pub mod intent_store;
pub mod mcp;
pub mod peers;
pub mod sign_in;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use aws_lc_rs::{hmac, rsa};
use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use bankguard::authorization_details::{PaymentInitiation, TransferTerms};
use bankguard::config::Config;
use bankguard::devstack::bank_api::BankApi;
use bankguard::money::MinorUnits;

pub const AUDIENCE: &str = "urn:bankguard:bank-api";
pub const MCP_CLIENT_ID: &str = "bankguard-mcp";

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// How a test token is signed.
#[derive(Clone, Copy, Debug)]
pub enum Signing {
    /// RS256 with the published RSA key (`kid` rsa-1).
    Rs256,
    /// ES256 with the published P-256 key (`kid` ec-1).
    Es256,
    /// RS256 by a key nobody published, claiming the published `kid`.
    Rs256ForgedWithPublishedKid,
    /// RS256 by a key nobody published, under its own unknown `kid`.
    Rs256UnknownKid,
    /// `alg: none`, no signature.
    None,
    /// HS256 keyed with the published RSA public key: the classic algorithm-confusion attack.
    Hs256WithPublicKey,
    /// ES256 header and signature, but pointing at the RSA key's `kid`.
    Es256UnderRsaKid,
    /// A valid RS256 signature but no `kid` in the header.
    Rs256WithoutKid,
    /// RS256 by a key nobody published, under a `kid` the issuer never publishes (not even on rotation).
    Rs256NeverPublishedKid,
}

/// Keys are generated once per test binary: RSA generation is the slow part.
struct Keys {
    rsa: RsaKeyPair,
    rsa_jwk: Value,
    rsa_public_pem: String,
    ec: EcdsaKeyPair,
    ec_jwk: Value,
    stranger_rsa: RsaKeyPair,
    stranger_rsa_jwk: Value,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (rsa, rsa_jwk, rsa_public_pem) = rsa_key("rsa-1");
        let (stranger_rsa, stranger_rsa_jwk, _) = rsa_key("rsa-rotated");
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        // SEC 1 uncompressed point: 0x04, x, y.
        let point = ec.public_key().as_ref();
        let ec_jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Keys { rsa, rsa_jwk, rsa_public_pem, ec, ec_jwk, stranger_rsa, stranger_rsa_jwk }
    })
}

/// A 2048-bit RSA key, its JWK, and its public key as SPKI PEM (what the HMAC-confusion attack keys with).
fn rsa_key(kid: &str) -> (RsaKeyPair, Value, String) {
    let private = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let public: &rsa::PublicKey = private.public_key();
    let jwk = json!({
        "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    });
    let spki: PublicKeyX509Der = public.as_der().unwrap();
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in STANDARD.encode(spki.as_ref()).as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    (private, jwk, pem)
}

/// What signs a test token: a key pair (its type says RS256 or ES256), or HMAC-SHA256 with a secret.
enum Signer<'a> {
    Rsa(&'a RsaKeyPair),
    Ec(&'a EcdsaKeyPair),
    Hmac(&'a [u8]),
}

impl Signer<'_> {
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Signer::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature).unwrap();
                signature
            }
            // The FIXED algorithm gives JWS's r || s (RFC 7518 §3.4), not DER.
            Signer::Ec(key) => key.sign(&SystemRandom::new(), message).unwrap().as_ref().to_vec(),
            Signer::Hmac(secret) => hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), message).as_ref().to_vec(),
        }
    }
}

/// A loopback OpenID provider that publishes discovery and JWKS, and mints tokens.
pub struct TestIssuer {
    pub url: String,
    state: Arc<IssuerState>,
}

struct IssuerState {
    base: String,
    issuer: Mutex<String>,
    published: Mutex<Vec<Value>>,
    jwks_fetches: AtomicUsize,
}

impl TestIssuer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let published = vec![keys().rsa_jwk.clone(), keys().ec_jwk.clone()];
        let state = Arc::new(IssuerState {
            base: url.clone(),
            issuer: Mutex::new(url.clone()),
            published: Mutex::new(published),
            jwks_fetches: AtomicUsize::new(0),
        });
        let router = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, state }
    }

    /// How many times the JWKS has been fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Starts publishing the key that [`Signing::Rs256UnknownKid`] signs with (a key rotation).
    pub fn publish_rotated_key(&self) {
        self.state.published.lock().unwrap().push(keys().stranger_rsa_jwk.clone());
    }

    /// Makes discovery claim another issuer identifier (a look-alike provider).
    pub fn claim_issuer(&self, issuer: &str) {
        *self.state.issuer.lock().unwrap() = issuer.to_owned();
    }

    /// Standard claims of an access token for `subject` with `scope`, valid for five minutes.
    pub fn claims(&self, subject: &str, scope: &str) -> Value {
        let now = now();
        json!({
            "iss": self.url, "sub": subject, "aud": [AUDIENCE, format!("{}/userinfo", self.url)],
            "iat": now, "nbf": now, "exp": now + 300, "jti": uuid::Uuid::new_v4().to_string(),
            "scope": scope, "client_id": MCP_CLIENT_ID,
        })
    }

    /// The MCP server's client-credentials token for reading accounts.
    pub fn read_token(&self) -> String {
        self.sign(&self.claims("bankguard-mcp@clients", "read:accounts"), Signing::Rs256)
    }

    /// Claims of an approval for exactly `transfer`, as the provider would issue after the holder approves.
    pub fn approval_claims(&self, subject: &str, transfer: &Transfer) -> Value {
        let mut claims = self.claims(subject, "openid create:transfer");
        claims["authorization_details"] = json!([transfer.binding()]);
        claims
    }

    pub fn approval_token(&self, subject: &str, transfer: &Transfer) -> String {
        self.sign(&self.approval_claims(subject, transfer), Signing::Rs256)
    }

    /// An approval of `transfer`'s terms that names no `intentId` (it is optional), so the same token can
    /// be tried under another `Idempotency-Key` and only its `jti` tells the bank it was used.
    pub fn approval_token_for_any_key(&self, subject: &str, transfer: &Transfer) -> String {
        let mut claims = self.approval_claims(subject, transfer);
        claims["authorization_details"][0].as_object_mut().unwrap().remove("intentId");
        self.sign(&claims, Signing::Rs256)
    }

    /// A token of `subject` that carries no scope: the user's own token, good for reading their own things.
    pub fn own_token(&self, subject: &str) -> String {
        self.sign(&self.claims(subject, "openid"), Signing::Rs256)
    }

    pub fn sign(&self, claims: &Value, signing: Signing) -> String {
        self.sign_with_header(claims, signing, |_| {})
    }

    /// Signs `claims` under a JOSE header that `edit` may change after it is built (`alg`, `kid` and
    /// `typ: at+jwt` as `signing` says): add `crit`, change or drop `typ`, anything the provider's key
    /// could sign, malformed or not.
    pub fn sign_with_header(
        &self,
        claims: &Value,
        signing: Signing,
        edit: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) -> String {
        let keys = keys();
        // The classic algorithm-confusion attack: HMAC keyed with the published public key.
        let confusion = Signer::Hmac(keys.rsa_public_pem.as_bytes());
        let (alg, kid, signer) = match signing {
            Signing::Rs256 => (Algorithm::RS256, Some("rsa-1"), Signer::Rsa(&keys.rsa)),
            Signing::Es256 => (Algorithm::ES256, Some("ec-1"), Signer::Ec(&keys.ec)),
            Signing::Rs256ForgedWithPublishedKid => (Algorithm::RS256, Some("rsa-1"), Signer::Rsa(&keys.stranger_rsa)),
            Signing::Rs256UnknownKid => (Algorithm::RS256, Some("rsa-rotated"), Signer::Rsa(&keys.stranger_rsa)),
            Signing::Rs256NeverPublishedKid => {
                (Algorithm::RS256, Some("rsa-never-published"), Signer::Rsa(&keys.stranger_rsa))
            }
            Signing::Hs256WithPublicKey => (Algorithm::HS256, Some("rsa-1"), confusion),
            Signing::Es256UnderRsaKid => (Algorithm::ES256, Some("rsa-1"), Signer::Ec(&keys.ec)),
            Signing::Rs256WithoutKid => (Algorithm::RS256, None, Signer::Rsa(&keys.rsa)),
            Signing::None => (Algorithm::HS256, Some("rsa-1"), confusion),
        };
        let mut header = serde_json::Map::new();
        let alg_name = if let Signing::None = signing { json!("none") } else { serde_json::to_value(alg).unwrap() };
        header.insert("alg".into(), alg_name);
        header.insert("typ".into(), json!("at+jwt"));
        if let Some(kid) = kid {
            header.insert("kid".into(), json!(kid));
        }
        edit(&mut header);
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(Value::Object(header).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match signing {
            Signing::None => String::new(),
            _ => URL_SAFE_NO_PAD.encode(signer.sign(message.as_bytes())),
        };
        format!("{message}.{signature}")
    }
}

async fn discovery(State(state): State<Arc<IssuerState>>) -> Json<Value> {
    let issuer = state.issuer.lock().unwrap().clone();
    Json(json!({ "issuer": issuer, "jwks_uri": format!("{}/jwks", state.base) }))
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Json<Value> {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    Json(json!({ "keys": *state.published.lock().unwrap() }))
}

/// A transfer as a test asks for it.
#[derive(Clone, Debug)]
pub struct Transfer {
    pub from: &'static str,
    pub to: &'static str,
    pub amount: &'static str,
    pub currency: &'static str,
    pub memo: Option<&'static str>,
    /// Sent as the `Idempotency-Key`, and bound into the approval as `intentId`.
    pub intent_id: String,
}

impl Transfer {
    pub fn new(from: &'static str, to: &'static str, amount: &'static str) -> Self {
        Self { from, to, amount, currency: "USD", memo: None, intent_id: new_intent_id() }
    }

    pub fn with_memo(mut self, memo: &'static str) -> Self {
        self.memo = Some(memo);
        self
    }

    pub fn body(&self) -> Value {
        let mut body = json!({
            "from_account_id": self.from, "to_account_id": self.to,
            "amount": self.amount, "currency": self.currency,
        });
        if let Some(memo) = self.memo {
            body["memo"] = json!(memo);
        }
        body
    }

    /// The `payment_initiation` detail approving exactly this transfer.
    pub fn binding(&self) -> Value {
        let terms = TransferTerms {
            from_account_id: self.from,
            to_account_id: self.to,
            amount: MinorUnits::parse_decimal(self.amount).unwrap(),
            currency: self.currency.parse().unwrap(),
            memo: self.memo,
            intent_id: &self.intent_id,
        };
        serde_json::to_value(PaymentInitiation::for_transfer(&terms)).unwrap()
    }
}

fn test_config(data_dir: &std::path::Path, issuer: &TestIssuer) -> Config {
    let mut config = Config { data_dir: data_dir.to_owned(), ..Config::default() };
    config.bank_api.listen = "127.0.0.1:0".parse().unwrap();
    config.bank_api.issuer = Some(issuer.url.clone());
    config
}

async fn serve_bank(config: &Config, issuer: &TestIssuer) -> String {
    config.validate().unwrap();
    let api = BankApi::open(config, &issuer.url).await.unwrap();
    let listener = tokio::net::TcpListener::bind(config.bank_api.listen).await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = api.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

pub fn new_intent_id() -> String {
    format!("int_{}", uuid::Uuid::new_v4().simple())
}

/// What the bank API answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

/// The real bank API on an ephemeral loopback port, its ledger in a temp dir, and a test issuer.
pub struct BankStack {
    pub issuer: TestIssuer,
    pub base_url: String,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

impl BankStack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts with a configuration adjusted by `configure` (the issuer and port are already set).
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        let issuer = TestIssuer::start().await;
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = test_config(data_dir.path(), &issuer);
        configure(&mut config);
        let base_url = serve_bank(&config, &issuer).await;
        Self { issuer, base_url, data_dir, http: bankguard::http_client::builder().build().unwrap() }
    }

    /// A new bank API process on the same data directory (the old one keeps running, unused).
    pub async fn restarted(self) -> Self {
        let base_url = serve_bank(&test_config(self.data_dir.path(), &self.issuer), &self.issuer).await;
        Self { base_url, ..self }
    }

    /// The request is built at once, so the returned future borrows nothing.
    pub fn post_transfer(
        &self,
        token: Option<&str>,
        idempotency_key: Option<&str>,
        body: &Value,
    ) -> impl std::future::Future<Output = Reply> + use<> {
        let mut request = self.http.post(format!("{}/api/transfers", self.base_url)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        send(request)
    }

    /// Asks for `transfer` with an approval token for exactly it, signed by `subject`'s approval.
    pub async fn approved_transfer(&self, subject: &str, transfer: &Transfer) -> Reply {
        let token = self.issuer.approval_token(subject, transfer);
        self.post_transfer(Some(&token), Some(&transfer.intent_id), &transfer.body()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.http.get(format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        send(request).await
    }

    /// Every demo account's balance, read through the API.
    pub async fn balances(&self) -> BTreeMap<String, String> {
        let token = self.issuer.read_token();
        let mut balances = BTreeMap::new();
        for user in ["alice", "bob"] {
            let reply = self.get(&format!("/api/users/{user}/accounts"), Some(&token)).await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
            for account in reply.body["accounts"].as_array().unwrap() {
                balances.insert(
                    account["id"].as_str().unwrap().to_owned(),
                    account["balance"].as_str().unwrap().to_owned(),
                );
            }
        }
        balances
    }

    /// The ledger file, read directly, for counting rows.
    pub async fn ledger(&self) -> sqlx::SqlitePool {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(self.data_dir.path().join(bankguard::devstack::bank_api::ledger::DATABASE_FILE))
            .read_only(true);
        sqlx::SqlitePool::connect_with(options).await.unwrap()
    }

    /// Every account's balance in minor units, read from the ledger file without any token.
    pub async fn ledger_balances(&self) -> BTreeMap<String, i64> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT id, balance_minor FROM accounts").fetch_all(&self.ledger().await).await.unwrap();
        rows.into_iter().collect()
    }

    /// What the bank answered under `key` to `user`'s requests, asked with the MCP server's read token.
    pub async fn idempotency_lookup(&self, user: &str, key: &str) -> Reply {
        self.get(&format!("/api/users/{user}/idempotency-keys/{key}"), Some(&self.issuer.read_token())).await
    }

    /// How many access tokens the bank has spent, on transfers and on refusals.
    pub async fn consumed_tokens(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM consumed_tokens").fetch_one(&self.ledger().await).await.unwrap()
    }

    /// How many outcomes (transfers and refusals) are recorded under Idempotency-Keys.
    pub async fn recorded_outcomes(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM idempotency_keys").fetch_one(&self.ledger().await).await.unwrap()
    }

    pub async fn transfer_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM transfers").fetch_one(&self.ledger().await).await.unwrap()
    }
}

pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, headers, body }
}
