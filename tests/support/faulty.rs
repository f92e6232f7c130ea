//! The whole product with faults injected for real: the dev stack (provider and bank) in this test
//! process, a [`FaultProxy`] in front of each, and `bankguard serve --transport http` processes (the
//! built binary) on one data directory, pointed at the proxies. A test kills a `serve` with SIGKILL
//! at the moment it chooses, starts another on the same data directory, and reads the truth from
//! the bank's ledger and from `get_transfer_status`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::CallToolResult;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::dev::Dev;
use super::fault_proxy::FaultProxy;
use super::intent_store::TestStore;
use super::mcp::{Client, Recorder, call};

/// The dev stack behind two fault proxies.
pub struct FaultyStack {
    pub dev: Dev,
    /// Between `serve` and the provider (`/bc-authorize`, `/oauth/token`).
    pub provider: FaultProxy,
    /// Between `serve` and the bank API.
    pub bank: FaultProxy,
    serves: std::sync::atomic::AtomicUsize,
}

/// One `bankguard serve --transport http` process.
pub struct Serve {
    pub url: String,
    pub log: PathBuf,
    child: tokio::process::Child,
}

impl FaultyStack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts the dev stack with `configure`'s changes (see [`Dev::start_with`]).
    pub async fn start_with(configure: impl FnOnce(&mut bankguard::config::Config)) -> Self {
        Self::start_on(TestStore::for_this_run().await, configure).await
    }

    /// The same, with every `serve` keeping its intents in `store` (replicas share a PostgreSQL one).
    pub async fn start_on(store: TestStore, configure: impl FnOnce(&mut bankguard::config::Config)) -> Self {
        let dev = Dev::start_on(store, configure).await;
        let provider = FaultProxy::start(dev.issuer()).await;
        let bank = FaultProxy::start(dev.bank_api()).await;
        Self { dev, provider, bank, serves: Default::default() }
    }

    /// `bankguard serve` with `args`, configured for this stack; `max_wait` bounds each tool call.
    pub fn command(&self, args: &[&str], max_wait: u64) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_bankguard"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("BANKGUARD_")) {
            command.env_remove(key);
        }
        let issuer = self.dev.issuer();
        command
            .arg("serve")
            .args(args)
            .current_dir(self.dev.data_dir.path())
            .env("BANKGUARD_DATA_DIR", self.dev.data_dir.path())
            .env("BANKGUARD_MCP__ISSUER", issuer)
            .env(
                "BANKGUARD_MCP__BACKCHANNEL_AUTHENTICATION_ENDPOINT",
                self.provider.via(&format!("{issuer}/bc-authorize")),
            )
            .env("BANKGUARD_MCP__TOKEN_ENDPOINT", self.provider.via(&format!("{issuer}/oauth/token")))
            .env("BANKGUARD_MCP__BANK_API_URL", self.bank.via(self.dev.bank_api()))
            .env("BANKGUARD_MCP__MAX_WAIT_SECONDS", max_wait.to_string())
            .env("BANKGUARD_MCP__PROGRESS_INTERVAL_SECONDS", "1")
            // Takeovers after 3 s of silence instead of 15 s.
            .env("BANKGUARD_MCP__HEARTBEAT_SECONDS", "1")
            .env("RUST_LOG", "info,bankguard=debug")
            .kill_on_drop(true);
        self.dev.store.apply_to(&mut command);
        command
    }

    /// Starts a `serve --transport http` process on the stack's data directory.
    pub async fn serve(&self, max_wait: u64) -> Serve {
        self.spawn_serve(self.command(&["--transport", "http", "--listen", "127.0.0.1:0"], max_wait)).await
    }

    /// Starts `command` (made by [`command`](Self::command) for the HTTP transport, then adjusted)
    /// and waits until it listens.
    pub async fn spawn_serve(&self, mut command: tokio::process::Command) -> Serve {
        let n = self.serves.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let log = self.dev.data_path(&format!("serve-{n}.log"));
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (url_tx, url_rx) = tokio::sync::oneshot::channel();
        let log_path = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut file = std::fs::File::create(&log_path).unwrap();
            let mut url_tx = Some(url_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                use std::io::Write;
                let _ = writeln!(file, "{line}");
                if let Some(url) = line.strip_prefix("bankguard MCP server at ").and_then(|rest| rest.split(' ').next())
                    && let Some(tx) = url_tx.take()
                {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = tokio::time::timeout(Duration::from_secs(30), url_rx)
            .await
            .unwrap_or_else(|_| panic!("serve did not start; see {}", log.display()))
            .unwrap_or_else(|_| panic!("serve exited at start: {}", std::fs::read_to_string(&log).unwrap_or_default()));
        Serve { url, log, child }
    }

    /// A read-only pool on one of the data directory's databases.
    async fn read_only(&self, file: &str) -> sqlx::SqlitePool {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(self.dev.data_path(file)).read_only(true);
        sqlx::SqlitePool::connect_with(options).await.unwrap()
    }

    /// Transfers (count) in the bank's ledger.
    pub async fn bank_transfers(&self) -> i64 {
        let pool = self.read_only("bank.sqlite").await;
        sqlx::query_scalar("SELECT count(*) FROM transfers").fetch_one(&pool).await.unwrap()
    }

    /// The status of an intent as stored (whoever drives it).
    pub async fn stored_status(&self, intent_id: &str) -> String {
        self.dev.intents().await.status(intent_id).await.expect("the intent is stored")
    }

    /// Waits (polling the store every 100 ms, at most `timeout`) until the intent is `status`.
    pub async fn until_status(&self, intent_id: &str, status: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.stored_status(intent_id).await == status {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// The holder's device: approves or denies the newest pending request.
    pub async fn decide_latest(&self, decision: &str) -> String {
        let device = self.dev.device();
        let request = loop {
            if let Some(request) = device.pending(None).await.unwrap().into_iter().next() {
                break request;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        device.decide(None, Some(&request.auth_req_id), decision).await.unwrap();
        request.binding_message
    }

    /// The newest intent's id, read from the store.
    pub async fn newest_intent(&self) -> Option<String> {
        self.dev.intents().await.newest().await
    }

    /// How many approval requests the device has seen in all.
    pub async fn approval_requests(&self) -> i64 {
        let pool = self.read_only("authz.sqlite").await;
        sqlx::query_scalar("SELECT count(*) FROM backchannel_requests").fetch_one(&pool).await.unwrap()
    }
}

impl Serve {
    pub fn pid(&self) -> u32 {
        self.child.id().expect("serve is running")
    }

    pub async fn client(&self) -> Client {
        Recorder::default().serve(StreamableHttpClientTransport::from_uri(self.url.clone())).await.unwrap()
    }

    /// SIGTERM, as an orchestrator stops a replica; returns once the process exited, with its status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.pid().to_string();
        let sent = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("serve exits after SIGTERM")
            .unwrap()
    }

    /// SIGKILL: no shutdown, no last write.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub fn transfer_args(amount: &str) -> Value {
    json!({"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": amount})
}

pub fn structured(result: &CallToolResult) -> Value {
    result.structured_content.clone().unwrap_or(Value::Null)
}

/// `get_transfer_status`, waiting up to `wait_seconds`.
pub async fn status(client: &Client, intent_id: &str, wait_seconds: u64) -> CallToolResult {
    call(client, "get_transfer_status", json!({"intent_id": intent_id, "wait_seconds": wait_seconds})).await
}
