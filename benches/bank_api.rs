//! Throughput of the reference bank API over loopback: verified transfers per second (JWT signature
//! and claims check, binding check, ledger commit) and account listings per second, with 1 and N
//! concurrent clients, all measured side by side in one run so the ratios are meaningful on a noisy
//! machine. Tokens are minted before timing starts.
//!
//! The server is the release `bankguard dev` binary in a child process, with its data directory in a
//! temp dir; the measuring client runs here, in the bench process, so the two share no runtime, no
//! allocator and no scheduler queue. The bank API trusts a test issuer served from this process, which
//! signs RS256 and ES256 tokens alike (the dev authorization server signs ES256 only); the bank
//! fetches its keys once, during the warm-up.
//!
//! `cargo bench --bench bank_api` (env: `BENCH_REQUESTS`, default 2000 per row; `BENCH_CLIENTS`, default
//! "1,8"; `BENCH_SERVER`, another `bankguard` binary to measure, e.g. a copy built before a change).

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Reply, Signing, TestIssuer, Transfer, send};

const PAIRS: [(&str, &str, &str); 4] = [
    ("alice", "acc_alice_sav", "acc_alice_chk"),
    ("alice", "acc_alice_chk", "acc_bob_chk"),
    ("bob", "acc_bob_sav", "acc_bob_chk"),
    ("bob", "acc_bob_chk", "acc_alice_sav"),
];

enum Job {
    Transfer { transfer: Transfer, token: String },
    List { user: &'static str, token: String },
}

struct Row {
    label: String,
    clients: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn main() {
    let requests: usize = std::env::var("BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let clients: Vec<usize> = std::env::var("BENCH_CLIENTS")
        .unwrap_or_else(|_| "1,8".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let binary = std::env::var("BENCH_SERVER").unwrap_or_else(|_| env!("CARGO_BIN_EXE_bankguard").to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let issuer = runtime.block_on(TestIssuer::start());
    let server = DevProcess::start(&binary, &issuer.url);
    let bank = Arc::new(BankClient {
        issuer,
        base_url: server.bank_api.clone(),
        http: bankguard::http_client::builder().build().unwrap(),
    });
    runtime.block_on(run(&bank, requests, &clients));
}

/// `bankguard dev` in a child process, on ephemeral loopback ports; stopped when dropped.
struct DevProcess {
    child: Child,
    bank_api: String,
    _temp: tempfile::TempDir,
}

impl DevProcess {
    /// Starts the dev stack with its bank API trusting `issuer`, and waits until it prints where the
    /// bank API listens (it prints once it is listening).
    fn start(binary: &str, issuer: &str) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let mut child = Command::new(binary)
            .arg("dev")
            // So that no ./bankguard.toml is read.
            .current_dir(temp.path())
            // Created by the dev stack itself, owner-only.
            .env("BANKGUARD_DATA_DIR", temp.path().join("data"))
            .env("BANKGUARD_AUTHZ__LISTEN", "127.0.0.1:0")
            .env("BANKGUARD_BANK_API__LISTEN", "127.0.0.1:0")
            .env("BANKGUARD_BANK_API__ISSUER", issuer)
            // No log line per request: warnings and errors only, on the bench's stderr.
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let bank_api = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.trim().strip_prefix("bank API") {
                        break url.trim().to_owned();
                    }
                }
                _ => panic!("{binary} dev stopped before saying where its bank API listens: {:?}", child.wait()),
            }
        };
        // Nothing more is read, but the child's stdout stays open until it exits.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, bank_api, _temp: temp }
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The load client: the bank API's base URL (ending in `/api`), an HTTP client, and the issuer that
/// mints the tokens.
struct BankClient {
    issuer: TestIssuer,
    base_url: String,
    http: reqwest::Client,
}

impl BankClient {
    async fn send(&self, job: &Job) -> Reply {
        match job {
            Job::Transfer { transfer, token } => {
                let request = self.http.post(format!("{}/transfers", self.base_url));
                let request = request.bearer_auth(token).header("Idempotency-Key", &transfer.intent_id);
                send(request.json(&transfer.body())).await
            }
            Job::List { user, token } => {
                send(self.http.get(format!("{}/users/{user}/accounts", self.base_url)).bearer_auth(token)).await
            }
        }
    }
}

async fn run(bank: &Arc<BankClient>, requests: usize, client_counts: &[usize]) {
    eprintln!("warming up…");
    run_jobs(bank, transfer_jobs(bank, 50, Signing::Rs256), 4).await;
    run_jobs(bank, transfer_jobs(bank, 50, Signing::Es256), 4).await;

    let mut rows = Vec::new();
    for &clients in client_counts {
        for (label, signing) in [("transfer, RS256 token", Signing::Rs256), ("transfer, ES256 token", Signing::Es256)] {
            let jobs = transfer_jobs(bank, requests, signing);
            rows.push(measure(bank, label, clients, jobs).await);
        }
        let token = bank.issuer.read_token();
        let jobs = (0..requests).map(|i| Job::List { user: PAIRS[i % 4].0, token: token.clone() }).collect();
        rows.push(measure(bank, "list accounts", clients, jobs).await);
    }

    println!(
        "bank API over loopback, server `bankguard dev` in a child process, {requests} requests per row, tokens minted \
         before timing"
    );
    println!("{:<24} {:>7} {:>10} {:>9} {:>9}", "operation", "clients", "req/s", "p50 ms", "p99 ms");
    for row in &rows {
        println!(
            "{:<24} {:>7} {:>10.0} {:>9.2} {:>9.2}",
            row.label,
            row.clients,
            row.per_second,
            row.p50.as_secs_f64() * 1e3,
            row.p99.as_secs_f64() * 1e3
        );
    }
    let rate = |label: &str, clients: usize| {
        rows.iter().find(|r| r.label == label && r.clients == clients).map(|r| r.per_second)
    };
    println!("ratios (same run):");
    for &clients in client_counts {
        if let (Some(list), Some(transfer)) = (rate("list accounts", clients), rate("transfer, RS256 token", clients)) {
            println!("  {clients} clients: listings / RS256 transfers = {:.2}", list / transfer);
        }
        if let (Some(es), Some(rs)) = (rate("transfer, ES256 token", clients), rate("transfer, RS256 token", clients)) {
            println!("  {clients} clients: ES256 / RS256 transfers = {:.2}", es / rs);
        }
    }
    if let (Some(&first), Some(&last)) = (client_counts.first(), client_counts.last())
        && first != last
    {
        for label in ["transfer, RS256 token", "list accounts"] {
            if let (Some(one), Some(many)) = (rate(label, first), rate(label, last)) {
                println!("  {label}: {last} clients / {first} client(s) = {:.2}", many / one);
            }
        }
    }
}

/// Transfers of 0.01 around a cycle of accounts, so no account ever runs dry.
fn transfer_jobs(bank: &BankClient, count: usize, signing: Signing) -> Vec<Job> {
    (0..count)
        .map(|i| {
            let (subject, from, to) = PAIRS[i % PAIRS.len()];
            let transfer = Transfer::new(from, to, "0.01");
            let token = bank.issuer.sign(&bank.issuer.approval_claims(subject, &transfer), signing);
            Job::Transfer { transfer, token }
        })
        .collect()
}

async fn measure(bank: &Arc<BankClient>, label: &str, clients: usize, jobs: Vec<Job>) -> Row {
    let count = jobs.len();
    let started = Instant::now();
    let mut latencies = run_jobs(bank, jobs, clients).await;
    let elapsed = started.elapsed();
    latencies.sort();
    let percentile = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Row {
        label: label.to_owned(),
        clients,
        per_second: count as f64 / elapsed.as_secs_f64(),
        p50: percentile(0.50),
        p99: percentile(0.99),
    }
}

/// Runs the jobs on `clients` concurrent tasks, each sending one request at a time; returns each latency.
async fn run_jobs(bank: &Arc<BankClient>, jobs: Vec<Job>, clients: usize) -> Vec<Duration> {
    let mut queues: Vec<Vec<Job>> = (0..clients).map(|_| Vec::new()).collect();
    for (i, job) in jobs.into_iter().enumerate() {
        queues[i % clients].push(job);
    }
    let tasks: Vec<_> = queues
        .into_iter()
        .map(|queue| {
            let bank = bank.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(queue.len());
                for job in queue {
                    let started = Instant::now();
                    let reply = bank.send(&job).await;
                    latencies.push(started.elapsed());
                    let ok = reply.status == 200 || reply.status == 201;
                    assert!(ok, "{} {}", reply.status, reply.body);
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}
