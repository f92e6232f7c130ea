//! N pending approvals in one `bankguard serve --transport http` process, in ping mode: what the
//! process holds (RSS), what it spends while every holder is still deciding (CPU), how fast it still
//! answers a read (`list_accounts` p50/p99), and whether all N then complete once approved.
//!
//! For each N, a fresh `bankguard dev` and a `serve` registered there as a ping client (its default
//! settings, but `max_wait_seconds = 1` so each `transfer_funds` call answers "pending" after a
//! second, and `max_pending_per_holder` at its maximum, since one holder has all N waiting). The suite makes N `transfer_funds` calls, 256 at a time, over the 2026-07-28 protocol.
//! The idle window then lasts one ping fallback interval (`BENCH_IDLE_SECONDS`, default 60, the
//! default of `mcp.ping_fallback_poll_seconds`), so it holds the one fallback poll each request makes
//! per interval: the CPU figure is the steady state, not a quiet moment between polls. Then the holder
//! approves all N through the provider's device API (32 at a time) and the suite waits until the
//! bank's ledger holds N transfers. Token-endpoint calls (CIBA grant only) are counted by a proxy in
//! front of the provider's token endpoint, in the idle window and while the approvals complete.

use std::time::{Duration, Instant};

use futures::StreamExt;
use rmcp::RoleClient;
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::json;

use bankguard::devstack::authz::device::PendingApproval;
use bankguard::devstack::device_client::DeviceClient;

use crate::report::{Figure, Goal, Report, Samples, Table, knob};
use crate::stack::{DevOptions, DevProcess, HttpServe, PING_CLIENT, free_port};
use crate::support::fault_proxy::FaultProxy;
use crate::{Section, runtime};

pub const SECTION: Section = Section { name: "scale", run };

/// A CIBA token request's form, as every client encodes it.
const CIBA_GRANT_IN_FORM: &str = "grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba";
pub const CONCURRENT_CALLS: usize = 256;
const READS: usize = 200;

pub type Client = RunningService<RoleClient, ()>;

/// What one N measured.
struct Measured {
    pending: usize,
    created_in: Duration,
    rss_empty: f64,
    rss: f64,
    rss_anon: f64,
    idle_cpu: f64,
    idle_polls: usize,
    reads_empty: Samples,
    reads: Samples,
    completed: i64,
    completed_in: Duration,
    approval_token_calls: usize,
}

fn run(report: &mut Report) {
    let sizes: Vec<usize> = std::env::var("BENCH_PENDING")
        .unwrap_or_else(|_| "100,1000,10000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("BENCH_PENDING: comma-separated counts"))
        .collect();
    let idle = Duration::from_secs(knob("BENCH_IDLE_SECONDS", 60) as u64);
    report.section(
        "N pending approvals in one `serve` (ping mode)",
        &format!(
            "N = {sizes:?}; N `transfer_funds` calls, {CONCURRENT_CALLS} at a time, each answering \"pending\" after 1 s; \
             then an idle window of {} s (one ping fallback interval), RSS at its end (anonymous memory \
             in brackets; the rest is the binary's code and other file pages), CPU of the serve process \
             over it; then {READS} `list_accounts` calls; then every request approved and the bank's \
             ledger watched until it holds N transfers.",
            idle.as_secs()
        ),
    );
    let runtime = runtime();
    let measured: Vec<Measured> = sizes.iter().map(|&n| runtime.block_on(measure(n, idle))).collect();

    let mut table = Table::new(&[
        "pending",
        "requested in",
        "RSS (anon)",
        "KiB per pending",
        "CPU while waiting",
        "fallback polls in the window",
        "list_accounts p50 / p99",
        "with none pending",
        "completed",
        "token calls per approval",
    ]);
    for m in &measured {
        table.row(vec![
            m.pending.to_string(),
            Figure::Time(m.created_in).to_string(),
            format!("{} ({})", Figure::MiB(m.rss), Figure::MiB(m.rss_anon)),
            format!("{:.2}", (m.rss - m.rss_empty) * 1024.0 / m.pending as f64),
            format!("{:.2} %", m.idle_cpu * 100.0),
            m.idle_polls.to_string(),
            format!("{} / {}", Figure::Time(m.reads.median()), Figure::Time(m.reads.percentile(99))),
            format!("{} / {}", Figure::Time(m.reads_empty.median()), Figure::Time(m.reads_empty.percentile(99))),
            format!("{} in {}", m.completed, Figure::Time(m.completed_in)),
            format!("{:.2}", m.approval_token_calls as f64 / m.pending as f64),
        ]);
    }
    table.print();

    let (Some(smallest), Some(largest)) =
        (measured.iter().min_by_key(|m| m.pending), measured.iter().max_by_key(|m| m.pending))
    else {
        return;
    };
    let n = largest.pending;
    report.compare(
        &format!("RSS of `serve` with {n} pending approvals"),
        Figure::MiB(largest.rss),
        ("the same serve with none pending", Figure::MiB(largest.rss_empty)),
        (n >= 10_000).then(|| Goal::new("≤ 64 MiB at 10,000", largest.rss <= 64.0)),
    );
    report.compare(
        &format!("CPU of `serve` while {n} approvals wait (% of a core)"),
        Figure::Count(largest.idle_cpu * 100.0),
        (&format!("{} pending", smallest.pending), Figure::Count(smallest.idle_cpu * 100.0)),
        (n >= 10_000).then(|| Goal::new("≤ 2 % at 10,000", largest.idle_cpu <= 0.02)),
    );
    report.compare(
        &format!("`list_accounts` p99 with {n} pending"),
        Figure::Time(largest.reads.percentile(99)),
        ("none pending", Figure::Time(largest.reads_empty.percentile(99))),
        (n >= 10_000).then(|| Goal::new("≤ 5 ms at 10,000", largest.reads.percentile(99) <= Duration::from_millis(5))),
    );
    report.compare(
        &format!("transfers completed of {n} approved"),
        Figure::Count(largest.completed as f64),
        ("approved", Figure::Count(n as f64)),
        Some(Goal::new("all", largest.completed as usize == n)),
    );
}

async fn measure(n: usize, idle: Duration) -> Measured {
    let listen = free_port();
    let dev = DevProcess::start(DevOptions { ping_serve: Some(listen), ..DevOptions::default() });
    let issuer = dev.running.issuer.clone();
    let proxy = FaultProxy::start_keeping_connections(&issuer).await;
    let serve = dev.serve_http(
        &format!("serve-{n}-pending"),
        listen,
        &[
            ("BANKGUARD_MCP__BACKCHANNEL_AUTHENTICATION_ENDPOINT", format!("{issuer}/bc-authorize")),
            ("BANKGUARD_MCP__TOKEN_ENDPOINT", proxy.via(&format!("{issuer}/oauth/token"))),
            ("BANKGUARD_MCP__DELIVERY_MODE", "ping".into()),
            ("BANKGUARD_MCP__CLIENT_ID", PING_CLIENT.0.into()),
            ("BANKGUARD_MCP__CLIENT_SECRET", PING_CLIENT.1.into()),
            ("BANKGUARD_MCP__MAX_WAIT_SECONDS", "1".into()),
            // One holder with N requests waiting: the per-holder bound is lifted to its maximum.
            ("BANKGUARD_MCP__MAX_PENDING_PER_HOLDER", "100000".into()),
        ],
    );
    let client = client_of(&serve).await;
    read_accounts(&client, 20).await;
    let reads_empty = read_accounts(&client, READS).await;
    let rss_empty = status_mib(&serve, "VmRSS");

    let created_in = request_transfers(&client, n).await;

    tokio::time::sleep(Duration::from_secs(2)).await;
    let polls_before = proxy.seen_with_body("/oauth/token", CIBA_GRANT_IN_FORM);
    let (ticks_before, window_started) = (cpu_ticks(&serve), Instant::now());
    tokio::time::sleep(idle).await;
    let idle_cpu =
        (cpu_ticks(&serve) - ticks_before) as f64 / ticks_per_second() / window_started.elapsed().as_secs_f64();
    let idle_polls = proxy.seen_with_body("/oauth/token", CIBA_GRANT_IN_FORM) - polls_before;
    let (rss, rss_anon) = (status_mib(&serve, "VmRSS"), status_mib(&serve, "RssAnon"));
    let reads = read_accounts(&client, READS).await;

    let calls_before = proxy.seen_with_body("/oauth/token", CIBA_GRANT_IN_FORM);
    let started = Instant::now();
    let device = dev.device();
    let requests = device.pending(None).await.expect("the pending requests");
    assert_eq!(requests.len(), n, "requests pending at the provider");
    approve_all(&device, &requests).await;
    let completed = transfers_once(&dev, n).await;
    let completed_in = started.elapsed();
    let approval_token_calls = proxy.seen_with_body("/oauth/token", CIBA_GRANT_IN_FORM) - calls_before;
    Measured {
        pending: n,
        created_in,
        rss_empty,
        rss,
        rss_anon,
        idle_cpu,
        idle_polls,
        reads_empty,
        reads,
        completed,
        completed_in,
        approval_token_calls,
    }
}

/// An MCP client of `serve` on the stateless 2026-07-28 protocol.
pub async fn client_of(serve: &HttpServe) -> Client {
    let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
    ().serve_with_lifecycle(StreamableHttpClientTransport::from_uri(serve.url.clone()), lifecycle)
        .await
        .expect("an MCP client")
}

/// `n` `transfer_funds` calls, [`CONCURRENT_CALLS`] at a time, each answered "pending"; how long they took.
pub async fn request_transfers(client: &Client, n: usize) -> Duration {
    let started = Instant::now();
    let answered =
        futures::stream::iter(0..n).map(|_| request_transfer(client)).buffer_unordered(CONCURRENT_CALLS).count().await;
    assert_eq!(answered, n);
    started.elapsed()
}

async fn request_transfer(client: &Client) {
    let arguments = json!({"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": "0.01"});
    let params = CallToolRequestParams::new("transfer_funds").with_arguments(arguments.as_object().unwrap().clone());
    let result = client.call_tool(params).await.expect("a tool result");
    assert_ne!(result.is_error, Some(true), "{result:?}");
}

pub async fn read_accounts(client: &Client, calls: usize) -> Samples {
    let mut samples = Samples::default();
    for _ in 0..calls {
        let started = Instant::now();
        let params = CallToolRequestParams::new("list_accounts").with_arguments(Default::default());
        let result = client.call_tool(params).await.expect("a tool result");
        assert_ne!(result.is_error, Some(true), "{result:?}");
        samples.push(started.elapsed());
    }
    samples
}

/// Approves every one of `requests` on the device, 32 at a time.
pub async fn approve_all(device: &DeviceClient, requests: &[PendingApproval]) {
    futures::stream::iter(requests)
        .map(|request| async move { device.decide_request(request, "approve").await.expect("an approval") })
        .buffer_unordered(32)
        .count()
        .await;
}

/// Watches the bank's ledger until it holds `n` transfers (or a generous deadline passes); the count.
pub async fn transfers_once(dev: &DevProcess, n: usize) -> i64 {
    let ledger = ledger(dev).await;
    let deadline = Instant::now() + Duration::from_secs(120 + n as u64 / 50);
    let mut completed = 0;
    while Instant::now() < deadline {
        completed = sqlx::query_scalar("SELECT count(*) FROM transfers").fetch_one(&ledger).await.expect("a count");
        if completed as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    completed
}

async fn ledger(dev: &DevProcess) -> sqlx::SqlitePool {
    let options =
        sqlx::sqlite::SqliteConnectOptions::new().filename(dev.data_dir().join("bank.sqlite")).read_only(true);
    sqlx::SqlitePool::connect_with(options).await.expect("the bank's ledger")
}

/// A `/proc/<pid>/status` field given in kB, in MiB.
pub fn status_mib(serve: &HttpServe, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", serve.pid())).expect("the serve process");
    let line = status.lines().find(|line| line.starts_with(field)).expect("the field");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()).expect("a size in kB") / 1024.0
}

/// User + system time of the process, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
pub fn cpu_ticks(serve: &HttpServe) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", serve.pid())).expect("the serve process");
    // After the parenthesised command name come the fields from 3 (state) on.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a command name") + 2..].split(' ').collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

pub fn ticks_per_second() -> f64 {
    let output = std::process::Command::new("getconf").arg("CLK_TCK").output().expect("getconf");
    String::from_utf8_lossy(&output.stdout).trim().parse().expect("CLK_TCK")
}
