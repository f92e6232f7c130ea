//! Throughput of the reference bank API over loopback: verified transfers per second (JWT signature
//! and claims check, binding check, ledger commit) and account listings per second, with 1 and N
//! concurrent clients, all measured side by side in one run so the ratios are meaningful on a noisy
//! machine. Tokens are minted before timing starts.
//!
//! `cargo bench --bench bank_api` (env: `BENCH_REQUESTS`, default 2000 per row; `BENCH_CLIENTS`, default "1,8").

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{BankStack, Signing, Transfer};

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
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run(requests, &clients));
}

async fn run(requests: usize, client_counts: &[usize]) {
    let bank = Arc::new(BankStack::start().await);
    eprintln!("warming up…");
    run_jobs(&bank, transfer_jobs(&bank, 50, Signing::Rs256), 4).await;

    let mut rows = Vec::new();
    for &clients in client_counts {
        for (label, signing) in [("transfer, RS256 token", Signing::Rs256), ("transfer, ES256 token", Signing::Es256)] {
            let jobs = transfer_jobs(&bank, requests, signing);
            rows.push(measure(&bank, label, clients, jobs).await);
        }
        let token = bank.issuer.read_token();
        let jobs = (0..requests).map(|i| Job::List { user: PAIRS[i % 4].0, token: token.clone() }).collect();
        rows.push(measure(&bank, "list accounts", clients, jobs).await);
    }

    println!("bank API over loopback, {requests} requests per row, tokens minted before timing");
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
        && let (Some(one), Some(many)) = (rate("transfer, RS256 token", first), rate("transfer, RS256 token", last))
    {
        println!("  RS256 transfers, {last} clients / {first} client(s) = {:.2}", many / one);
    }
}

/// Transfers of 0.01 around a cycle of accounts, so no account ever runs dry.
fn transfer_jobs(bank: &BankStack, count: usize, signing: Signing) -> Vec<Job> {
    (0..count)
        .map(|i| {
            let (subject, from, to) = PAIRS[i % PAIRS.len()];
            let transfer = Transfer::new(from, to, "0.01");
            let token = bank.issuer.sign(&bank.issuer.approval_claims(subject, &transfer), signing);
            Job::Transfer { transfer, token }
        })
        .collect()
}

async fn measure(bank: &Arc<BankStack>, label: &str, clients: usize, jobs: Vec<Job>) -> Row {
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
async fn run_jobs(bank: &Arc<BankStack>, jobs: Vec<Job>, clients: usize) -> Vec<Duration> {
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
                    let reply = match &job {
                        Job::Transfer { transfer, token } => {
                            bank.post_transfer(Some(token), Some(&transfer.intent_id), &transfer.body()).await
                        }
                        Job::List { user, token } => {
                            bank.get(&format!("/api/users/{user}/accounts"), Some(token)).await
                        }
                    };
                    latencies.push(started.elapsed());
                    assert!(reply.status == 200 || reply.status == 201, "{:?}", reply.body);
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
