//! bankguard against an independent CIBA provider: node `oidc-provider` (pinned in
//! `tests/interop/oidc-provider/package-lock.json`, configured by `provider.mjs`, run by Node 22 from `.peers/`).
//!
//! Each test starts `provider.mjs`, the real bank API trusting that provider's issuer (it fetches the keys through
//! discovery and the JWKS, as it would Auth0's), and bankguard's MCP server pointed at the provider, then drives the
//! MCP server with an rmcp client. `provider.mjs` plays the holder's phone through its `/test/*` routes.
//!
//! oidc-provider sends no `interval`, so bankguard polls every 5 s (CIBA Core §7.3): the holder approves or
//! declines at once, and the request that must expire asks for 8 s.
//!
//! Peers missing? Run `scripts/install-peers.sh`.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use bankguard::config::{ClientAuthMethod, Config, DeliveryMode, McpAuth};
use bankguard::devstack::bank_api::BankApi;
use bankguard::mcp::Backends;
use bankguard::mcp::transport::RunningHttp;
use support::mcp::{Client, Recorder, call, is_error, text};
use support::peers::OAuthSdk;

const PEER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/oidc-provider");
const NODE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.peers/node22/node_modules/.bin/node");
/// The bank API's identifier at the provider, as `provider.mjs` registers it.
const AUDIENCE: &str = "urn:bankguard:bank-api";
/// The clients `provider.mjs` registers (client_secret_basic, CIBA + client credentials).
const POLL_CLIENT: (&str, &str) = ("bankguard-interop", "interop-secret-0123456789abcdef");
const PING_CLIENT: (&str, &str) = ("bankguard-interop-ping", "interop-ping-secret-0123456789ab");
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Node 22 and the installed oidc-provider, which must be the pinned version; fails (never skips) without them.
fn node() -> PathBuf {
    let missing = |what: &str| -> ! { panic!("{what} is missing: run scripts/install-peers.sh") };
    if !Path::new(NODE).is_file() {
        missing(&format!("Node 22 ({NODE})"));
    }
    let read = |path: &Path| -> Value {
        let text = std::fs::read_to_string(path).unwrap_or_else(|_| missing(&path.display().to_string()));
        serde_json::from_str(&text).unwrap()
    };
    let wanted = read(&Path::new(PEER_DIR).join("package.json"))["dependencies"]["oidc-provider"].clone();
    let installed = read(&Path::new(PEER_DIR).join("node_modules/oidc-provider/package.json"))["version"].clone();
    assert_eq!(
        installed, wanted,
        "node_modules holds another oidc-provider than package.json pins: run scripts/install-peers.sh"
    );
    PathBuf::from(NODE)
}

/// `node provider.mjs` on an ephemeral loopback port; killed when dropped. Its log is printed if a test fails.
struct OidcProvider {
    issuer: String,
    http: reqwest::Client,
    log: Arc<Mutex<String>>,
    _child: Child,
    // Held open: the script exits when its stdin closes, and its stdout must stay readable.
    _stdin: ChildStdin,
    _stdout: BufReader<ChildStdout>,
}

impl OidcProvider {
    /// `ping_endpoint`: where the ping client's notifications go (bankguard's `/ciba/notify`);
    /// `mcp_resource`: bankguard's MCP endpoint, for MCP clients that sign in here.
    async fn start(ping_endpoint: &str, mcp_resource: &str) -> Self {
        let mut child = tokio::process::Command::new(node())
            .arg("provider.mjs")
            .args(["--port", "0", "--ping-endpoint", ping_endpoint, "--mcp-resource", mcp_resource])
            .current_dir(PEER_DIR)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start node provider.mjs");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first_line = String::new();
        let read = tokio::time::timeout(STARTUP_TIMEOUT, stdout.read_line(&mut first_line)).await;
        let issuer = first_line.trim().to_owned();
        if !matches!(read, Ok(Ok(n)) if n > 0) || !issuer.starts_with("http://127.0.0.1:") {
            tokio::time::sleep(Duration::from_millis(200)).await; // let stderr drain
            panic!("provider.mjs printed no issuer URL ({read:?}, {issuer:?}); its log:\n{}", log.lock().unwrap());
        }
        Self {
            issuer,
            http: bankguard::http_client::builder().build().unwrap(),
            log,
            _stdin: child.stdin.take().unwrap(),
            _stdout: stdout,
            _child: child,
        }
    }

    /// The requests waiting on the holder's phone.
    async fn pending(&self) -> Vec<Value> {
        let response = self.http.get(format!("{}/test/pending", self.issuer)).send().await.unwrap();
        assert!(response.status().is_success(), "GET /test/pending: {}", response.status());
        response.json().await.unwrap()
    }

    async fn decide(&self, auth_req_id: &str, decision: &str) {
        let response = self
            .http
            .post(format!("{}/test/decide", self.issuer))
            .json(&json!({"auth_req_id": auth_req_id, "decision": decision}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(status.is_success(), "POST /test/decide {decision}: {status} {body}");
    }

    /// The next request to reach the holder's phone, as the provider recorded it.
    async fn next_request(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(request) = self.pending().await.into_iter().next() {
                return request;
            }
            assert!(Instant::now() < deadline, "no backchannel request reached the provider");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- provider.mjs log -----\n{}", self.log.lock().unwrap());
        }
    }
}

/// oidc-provider, the real bank API trusting it, and bankguard's MCP server using it.
struct Interop {
    provider: Arc<OidcProvider>,
    bank_data: tempfile::TempDir,
    /// The bank API's base URL (ending in `/api`).
    bank_url: String,
    mcp: RunningHttp,
}

impl Interop {
    /// `configure` adjusts the MCP server's configuration after it has been pointed at the provider and the bank.
    async fn start(configure: impl FnOnce(&mut Config)) -> Self {
        let mcp_listener = RunningHttp::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mcp_address = mcp_listener.local_addr().unwrap();
        let ping_endpoint = format!("http://{mcp_address}{}", bankguard::mcp::transport::NOTIFY_PATH);
        let mcp_resource = format!("http://{mcp_address}{}", bankguard::mcp::transport::MCP_PATH);
        let provider = Arc::new(OidcProvider::start(&ping_endpoint, &mcp_resource).await);

        // The bank API trusts only oidc-provider, whose keys it finds through discovery and the JWKS.
        let bank_data = tempfile::tempdir().unwrap();
        let mut config = Config { data_dir: bank_data.path().to_owned(), ..Config::default() };
        config.bank_api.listen = "127.0.0.1:0".parse().unwrap();
        config.bank_api.issuer = Some(provider.issuer.clone());
        config.bank_api.audience = AUDIENCE.to_owned();
        // oidc-provider signs its JWT access tokens `typ: at+jwt` (the default `require_at_jwt_typ` holds) and
        // names the client that asked in `client_id`: these are the ids `provider.mjs` registers, not bankguard-mcp.
        config.bank_api.accepted_client_ids = vec![POLL_CLIENT.0.to_owned(), PING_CLIENT.0.to_owned()];
        config.validate().unwrap();
        let bank = BankApi::open(&config, &provider.issuer).await.unwrap();
        let bank_listener = tokio::net::TcpListener::bind(config.bank_api.listen).await.unwrap();
        let bank_url = format!("http://{}/api", bank_listener.local_addr().unwrap());
        let router = bank.router();
        tokio::spawn(async move { axum::serve(bank_listener, router).await });

        // bankguard's MCP server, configured as for any external provider.
        config.mcp.issuer = Some(provider.issuer.clone());
        config.mcp.client_id = POLL_CLIENT.0.to_owned();
        config.mcp.client_secret = Some(POLL_CLIENT.1.to_owned());
        config.mcp.client_auth_method = ClientAuthMethod::ClientSecretBasic;
        config.mcp.audience = Some(AUDIENCE.to_owned());
        config.mcp.bank_api_url = Some(bank_url.clone());
        config.mcp.user = "alice".to_owned();
        configure(&mut config);
        config.validate().unwrap();
        let backends = Arc::new(Backends::from_config(&config, true).unwrap());
        let mcp = RunningHttp::start(mcp_listener, backends, &config).await.unwrap();
        Self { provider, bank_data, bank_url, mcp }
    }

    async fn client(&self) -> Client {
        Recorder::default().serve(StreamableHttpClientTransport::from_uri(self.mcp.url())).await.unwrap()
    }

    /// Every account's balance in minor units, read from the ledger file (no token involved).
    async fn balances(&self) -> BTreeMap<String, i64> {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(self.bank_data.path().join(bankguard::devstack::bank_api::ledger::DATABASE_FILE))
            .read_only(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT id, balance_minor FROM accounts").fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows.into_iter().collect()
    }

    /// In the background: waits for the next request on the holder's phone, decides it, returns what the
    /// provider recorded about it.
    fn decide_next(&self, decision: &'static str) -> tokio::task::JoinHandle<Value> {
        let provider = self.provider.clone();
        tokio::spawn(async move {
            let request = provider.next_request().await;
            provider.decide(request["auth_req_id"].as_str().unwrap(), decision).await;
            request
        })
    }
}

fn transfer(from: &str, to: &str, amount: &str) -> Value {
    json!({"from_account_id": from, "to_account_id": to, "amount": amount, "memo": "Dinner"})
}

/// `balances` with `amount` (minor units) moved from `from` to `to`.
fn moved(mut balances: BTreeMap<String, i64>, from: &str, to: &str, amount: i64) -> BTreeMap<String, i64> {
    *balances.get_mut(from).unwrap() -= amount;
    *balances.get_mut(to).unwrap() += amount;
    balances
}

#[tokio::test]
async fn accounts_are_listed_with_the_providers_client_credentials_token() {
    let stack = Interop::start(|_| {}).await;
    let client = stack.client().await;

    let result = call(&client, "list_accounts", json!({})).await;

    assert!(!is_error(&result), "{}", text(&result));
    let everything = serde_json::to_string(&result).unwrap();
    for account in ["acc_alice_chk", "acc_alice_sav", "acc_alice_eur"] {
        assert!(everything.contains(account), "{account} missing from {everything}");
    }
}

#[tokio::test]
async fn an_approved_transfer_moves_exactly_the_amount() {
    let stack = Interop::start(|_| {}).await;
    let client = stack.client().await;
    let before = stack.balances().await;
    let holder = stack.decide_next("approve");

    let result = call(&client, "transfer_funds", transfer("acc_alice_chk", "acc_bob_chk", "25.00")).await;

    let request = holder.await.unwrap();
    assert!(!is_error(&result), "{}", text(&result));
    assert!(text(&result).starts_with("Transferred"), "{}", text(&result));
    // The bank executed it, so it accepted oidc-provider's token: signature by a key from its JWKS, iss, aud,
    // create:transfer, sub alice, and the payment_initiation detail the holder approved.
    assert_eq!(stack.balances().await, moved(before, "acc_alice_chk", "acc_bob_chk", 2500));
    // What reached the provider, and so the holder's phone.
    let message = request["binding_message"].as_str().unwrap();
    assert!(message.starts_with("Transfer 25.00 USD CHK-4821 to CHK-3307 #"), "{request}");
    assert_eq!(request["subject"], "alice");
    assert_eq!(request["resource"], AUDIENCE, "the audience parameter named the bank API");
    let details = request["authorization_details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{request}");
    assert_eq!(details[0]["type"], "payment_initiation");
    assert_eq!(details[0]["instructedAmount"], json!({"currency": "USD", "amount": "25.00"}));
}

#[tokio::test]
async fn a_declined_transfer_moves_nothing() {
    let stack = Interop::start(|_| {}).await;
    let client = stack.client().await;
    let before = stack.balances().await;
    let holder = stack.decide_next("deny");

    let result = call(&client, "transfer_funds", transfer("acc_alice_sav", "acc_bob_sav", "40.00")).await;

    holder.await.unwrap();
    assert!(is_error(&result), "{}", text(&result));
    assert!(text(&result).contains("declined the transfer on their device"), "{}", text(&result));
    assert_eq!(stack.balances().await, before);
}

#[tokio::test]
async fn a_transfer_nobody_approves_expires_and_moves_nothing() {
    let stack = Interop::start(|config| config.mcp.requested_expiry_seconds = 8).await;
    let client = stack.client().await;
    let before = stack.balances().await;
    let provider = stack.provider.clone();
    let seen = tokio::spawn(async move { provider.next_request().await });
    let started = Instant::now();

    let result = call(&client, "transfer_funds", transfer("acc_alice_chk", "acc_bob_chk", "60.00")).await;

    let waited = started.elapsed();
    assert!(is_error(&result), "{}", text(&result));
    assert!(text(&result).contains("expired before the account holder approved it"), "{}", text(&result));
    let request = seen.await.unwrap();
    assert_eq!(request["requested_expiry"], "8", "{request}");
    assert!(waited >= Duration::from_secs(7) && waited < Duration::from_secs(20), "waited {waited:?}, not ~8 s");
    assert_eq!(stack.balances().await, before);
    // The holder never decided, and the request has lapsed at the provider too.
    assert!(stack.provider.pending().await.is_empty());
}

#[tokio::test]
async fn in_ping_mode_the_providers_ping_ends_the_wait_before_the_first_poll() {
    let stack = Interop::start(|config| {
        config.mcp.delivery_mode = DeliveryMode::Ping;
        config.mcp.client_id = PING_CLIENT.0.to_owned();
        config.mcp.client_secret = Some(PING_CLIENT.1.to_owned());
    })
    .await;
    let client = stack.client().await;
    let before = stack.balances().await;
    let holder = stack.decide_next("approve");
    let started = Instant::now();

    let result = call(&client, "transfer_funds", transfer("acc_alice_chk", "acc_bob_chk", "12.34")).await;

    holder.await.unwrap();
    assert!(!is_error(&result), "{}", text(&result));
    assert!(text(&result).starts_with("Transferred"), "{}", text(&result));
    // Without the ping the first poll would come 5 s after the request (no `interval` from oidc-provider).
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}: the ping did not wake the wait", started.elapsed());
    assert_eq!(stack.balances().await, moved(before, "acc_alice_chk", "acc_bob_chk", 1234));
}

/// Each official SDK's OAuth client signs in at oidc-provider (an authorization server no one here wrote) and uses
/// the tools as the holder it signed in as: bankguard's resource server finds oidc-provider's keys through its
/// metadata and accepts its JWT access tokens for the MCP endpoint.
#[tokio::test]
async fn mcp_clients_sign_in_at_oidc_provider_and_act_for_that_holder() {
    let stack = Interop::start(|config| config.mcp.auth = McpAuth::Oauth).await;
    let url = stack.mcp.url();
    for sdk in OAuthSdk::BOTH {
        let before = stack.balances().await;
        let holder = stack.decide_next("approve");

        let alice = sdk.sign_in_and_use(&url, "alice", true).await;

        let request = holder.await.unwrap();
        assert_eq!(request["subject"], "alice", "{sdk:?}: the approval went to the holder who signed in");
        let signed_in = alice.one("signed_in");
        assert!(signed_in["pages"].as_u64().unwrap() >= 1, "{sdk:?} filled the sign-in page\n{}", alice.transcript);
        assert!(signed_in["client_id"].is_string(), "{sdk:?} registered itself\n{}", alice.transcript);
        for listed in alice.all("list_accounts") {
            let ids = json!(["acc_alice_chk", "acc_alice_eur", "acc_alice_sav"]);
            assert_eq!(listed["ids"], ids, "{sdk:?}\n{}", alice.transcript);
        }
        assert_eq!(alice.all("list_accounts").len(), 2, "{sdk:?}\n{}", alice.transcript);
        assert_eq!(alice.one("transfer")["status"], "completed", "{sdk:?}\n{}", alice.transcript);
        assert_eq!(stack.balances().await, moved(before, "acc_alice_chk", "acc_bob_chk", 1200));
        let refreshed = alice.one("refreshed");
        let rotated =
            json!({"event": "refreshed", "access_changed": true, "refresh_changed": true, "had_refresh_token": true});
        assert_eq!(refreshed, &rotated, "{sdk:?}\n{}", alice.transcript);

        let bob = sdk.sign_in_and_use(&url, "bob", false).await;
        assert_eq!(bob.all("list_accounts")[0]["ids"], json!(["acc_bob_chk", "acc_bob_sav"]), "{}", bob.transcript);
    }
}

/// `bankguard check` configured for oidc-provider as an operator would configure it (issuer, client, secret,
/// audience, bank API in the environment, `extra` on top); its exit status, stdout and stderr.
async fn run_check(stack: &Interop, data_dir: &Path, extra: &[(&str, &str)]) -> (Option<i32>, String, String) {
    // Awaited, not blocking: the bank API it asks runs on this test's runtime.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_bankguard"))
        .current_dir(data_dir)
        .env("BANKGUARD_DATA_DIR", data_dir)
        .env("BANKGUARD_MCP__ISSUER", &stack.provider.issuer)
        .env("BANKGUARD_MCP__CLIENT_ID", POLL_CLIENT.0)
        .env("BANKGUARD_MCP__CLIENT_SECRET", POLL_CLIENT.1)
        .env("BANKGUARD_MCP__AUDIENCE", AUDIENCE)
        .env("BANKGUARD_MCP__BANK_API_URL", &stack.bank_url)
        .envs(extra.iter().copied())
        .arg("check")
        .output()
        .await
        .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status.code(), text(output.stdout), text(output.stderr))
}

/// The check lines of `bankguard check`'s output, after the settings.
fn check_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().skip_while(|line| *line != "checks:").skip(1).map(str::trim).collect()
}

/// Every check passes: the signature of oidc-provider's token is verified with its published key, the bank trusts
/// it, and the secret is never printed.
#[tokio::test]
async fn check_passes_against_oidc_provider_and_the_bank_that_trusts_it() {
    let stack = Interop::start(|_| {}).await;
    let data_dir = tempfile::tempdir().unwrap();
    // As `serve` creates it.
    std::fs::set_permissions(data_dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();

    let (code, stdout, stderr) = run_check(&stack, data_dir.path(), &[]).await;

    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let issuer = &stack.provider.issuer;
    let expected = [
        format!("✓ discovery: {issuer}/.well-known/openid-configuration names issuer \"{issuer}\" exactly"),
        format!("✓ CIBA endpoint: backchannel_authentication_endpoint {issuer}/backchannel"),
        "✓ delivery mode: poll is in backchannel_token_delivery_modes_supported (poll, ping)".to_owned(),
        "✓ payment_initiation: authorization_details_types_supported includes it".to_owned(),
        format!(
            "✓ client credentials: {} got a token for read:accounts (client_secret_basic): the secret from \
             mcp.client_secret (from environment variable BANKGUARD_MCP__CLIENT_SECRET) is right",
            POLL_CLIENT.0
        ),
        format!(
            "✓ audience: the token's aud [\"{AUDIENCE}\"] includes \"{AUDIENCE}\"; its RS256 signature verifies with \
             the provider's key \"interop-rs256\""
        ),
        format!("✓ bank API: {} accepts the provider's token: 3 account(s) of alice", stack.bank_url),
        format!("✓ data directory: {} is the owner's alone (0700)", data_dir.path().display()),
        "all checks passed".to_owned(),
    ];
    assert_eq!(check_lines(&stdout), expected, "{stdout}");
    assert!(!stdout.contains(POLL_CLIENT.1) && !stderr.contains(POLL_CLIENT.1), "the secret was printed");
}

/// With `mcp.auth = "oauth"`, MCP clients sign in at oidc-provider: its RFC 8414 metadata is found and lists what
/// they need, dynamic registration and the scope included.
#[tokio::test]
async fn check_with_sign_in_finds_what_mcp_clients_need_in_oidc_providers_metadata() {
    let stack = Interop::start(|_| {}).await;
    let data_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(data_dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let resource = stack.mcp.url();

    let (code, stdout, stderr) = run_check(
        &stack,
        data_dir.path(),
        &[("BANKGUARD_MCP__AUTH", "oauth"), ("BANKGUARD_MCP__OAUTH__RESOURCE", &resource)],
    )
    .await;

    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let lines = check_lines(&stdout);
    let issuer = &stack.provider.issuer;
    let metadata = format!(
        "✓ sign-in server: {issuer}/.well-known/oauth-authorization-server: authorization code with PKCE S256, jwks_uri"
    );
    assert!(lines.contains(&metadata.as_str()), "{stdout}");
    assert!(
        lines.iter().any(|line| line.starts_with("✓ protected resource: ") && line.contains(&resource)),
        "{stdout}"
    );
    assert!(!lines.iter().any(|line| line.starts_with('⚠') || line.starts_with('✗')), "{stdout}");
}
