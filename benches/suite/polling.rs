//! N pending approvals in one `serve` in poll mode: every request is polled at the provider's
//! interval until the holder decides, so the token calls each request costs should be exactly
//! ⌈T/interval⌉, T being the time from the provider's answer to `/bc-authorize` to the holder's
//! approval: one poll per interval that finds nothing, and the first poll after the approval redeems it.
//!
//! A fresh `bankguard dev` and a `serve` (its defaults, `max_wait_seconds = 1`, and
//! `max_pending_per_holder` at its maximum) whose backchannel and
//! token endpoints both go through a counting proxy that keeps connections open. The suite makes N
//! `transfer_funds` calls (256 at a time), waits until the holder has had `BENCH_POLL_HOLDER_SECONDS`
//! (20) with the newest request, approves all N (32 at a time, each approval's moment noted) and
//! waits until the bank's ledger holds N transfers. Per request, from what the proxy saw: when
//! `/bc-authorize` answered with its `auth_req_id` (T starts), each token request for it, and the
//! approval's moment (T ends). Two approvals may be ambiguous: one whose moment falls within the
//! interval's drift of a poll (CIBA has each poll wait the interval after the previous *answer*, so
//! poll k comes k answers' latency after start + k·interval), counted apart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::report::{Figure, Goal, Report, Table, knob};
use crate::scale::{CONCURRENT_CALLS, client_of, request_transfers, transfers_once};
use crate::stack::{DevOptions, DevProcess, free_port};
use crate::support::fault_proxy::FaultProxy;
use crate::{Section, runtime};

pub const SECTION: Section = Section { name: "polling", run };

/// The dev provider's polling interval (CIBA Core's default, which it announces).
const INTERVAL: Duration = Duration::from_secs(5);
/// How far a poll may come after its ideal moment (start + k·interval) and still count as on time.
const DRIFT: Duration = Duration::from_millis(500);

/// One request, as the proxy and the holder saw it.
#[derive(Default)]
struct Request {
    started: Option<Instant>,
    polls: Vec<Instant>,
    /// The provider's answer to each poll, shortened to its `error` (or "tokens").
    answers: Vec<String>,
    approved: Option<Instant>,
}

fn run(report: &mut Report) {
    let n = knob("BENCH_POLL_PENDING", 10_000);
    let holder = Duration::from_secs(knob("BENCH_POLL_HOLDER_SECONDS", 20) as u64);
    report.section(
        "N pending approvals in one `serve` (poll mode)",
        &format!(
            "N = {n}; N `transfer_funds` calls, {CONCURRENT_CALLS} at a time, each answering \"pending\" after 1 s; \
             approved {} s after the newest request (older ones waited longer); token calls per request \
             against ⌈T/interval⌉, T from the provider's answer to `/bc-authorize` to the approval, interval {} s.",
            holder.as_secs(),
            INTERVAL.as_secs()
        ),
    );
    let measured = runtime().block_on(measure(n, holder));
    let requests: Vec<&Request> = measured.requests.values().collect();
    let mut exact = 0;
    let mut ambiguous = 0;
    let mut early = 0;
    let mut calls_total = 0;
    let mut calls: Vec<usize> = Vec::new();
    let mut differences: std::collections::BTreeMap<i64, usize> = std::collections::BTreeMap::new();
    let mut first_lag: Vec<Duration> = Vec::new();
    let mut answer_kinds: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut gaps: Vec<Duration> = Vec::new();
    for request in &requests {
        let (Some(started), Some(approved)) = (request.started, request.approved) else { continue };
        let t = approved.saturating_duration_since(started);
        let expected = t.as_millis().div_ceil(INTERVAL.as_millis()) as usize;
        let made = request.polls.len();
        calls_total += made;
        calls.push(made);
        if request.polls.windows(2).any(|pair| pair[1] - pair[0] < INTERVAL - Duration::from_millis(50)) {
            early += 1;
        }
        *differences.entry(made as i64 - expected as i64).or_default() += 1;
        for answer in &request.answers {
            *answer_kinds.entry(answer.clone()).or_default() += 1;
        }
        if let Some(first) = request.polls.first() {
            first_lag.push(first.saturating_duration_since(started + INTERVAL));
        }
        gaps.extend(request.polls.windows(2).map(|pair| pair[1] - pair[0]));
        // How close the approval came to the poll boundary it fell next to.
        let boundary = started + INTERVAL * (t.as_millis() / INTERVAL.as_millis()) as u32;
        let near_boundary = approved.saturating_duration_since(boundary) < DRIFT;
        if made == expected {
            exact += 1;
        } else if near_boundary && made + 1 == expected {
            ambiguous += 1;
        }
    }
    calls.sort_unstable();
    let median = calls.get(calls.len() / 2).copied().unwrap_or(0);
    let accounted = requests.iter().filter(|r| r.started.is_some() && r.approved.is_some()).count();

    let mut table = Table::new(&[
        "pending",
        "requested in",
        "token calls",
        "per request, min / median / max",
        "= ⌈T/interval⌉",
        "one fewer, approval within 0.5 s of a boundary",
        "polls closer than the interval",
        "completed",
    ]);
    table.row(vec![
        n.to_string(),
        Figure::Time(measured.created_in).to_string(),
        calls_total.to_string(),
        format!("{} / {median} / {}", calls.first().copied().unwrap_or(0), calls.last().copied().unwrap_or(0)),
        format!("{exact} of {accounted}"),
        ambiguous.to_string(),
        early.to_string(),
        format!("{} in {}", measured.completed, Figure::Time(measured.completed_in)),
    ]);
    table.print();
    first_lag.sort_unstable();
    gaps.sort_unstable();
    let at = |v: &[Duration], p: usize| v.get(v.len().saturating_sub(1) * p / 100).copied().unwrap_or_default();
    println!(
        "Answers: {answer_kinds:?}. Token calls minus ⌈T/interval⌉, requests: {differences:?}. First poll after start + interval: p50 {:?}, \
         p99 {:?}, max {:?}. Gaps between polls: p50 {:?}, p99 {:?}, max {:?}.\n",
        at(&first_lag, 50),
        at(&first_lag, 99),
        at(&first_lag, 100),
        at(&gaps, 50),
        at(&gaps, 99),
        at(&gaps, 100)
    );

    report.compare(
        &format!("poll mode, {n} pending: requests whose token calls were ⌈T/interval⌉"),
        Figure::Count((exact + ambiguous) as f64),
        ("requests", Figure::Count(n as f64)),
        (n >= 10_000).then(|| {
            Goal::new(
                "all 10,000 (one fewer where the approval came within 0.5 s after a boundary)",
                exact + ambiguous == n,
            )
        }),
    );
    report.compare(
        &format!("poll mode: transfers completed of {n} approved"),
        Figure::Count(measured.completed as f64),
        ("approved", Figure::Count(n as f64)),
        Some(Goal::new("all", measured.completed as usize == n)),
    );
}

struct Measured {
    requests: HashMap<String, Request>,
    created_in: Duration,
    completed: i64,
    completed_in: Duration,
}

async fn measure(n: usize, holder: Duration) -> Measured {
    let dev = DevProcess::start(DevOptions::default());
    let issuer = dev.running.issuer.clone();
    let proxy = FaultProxy::start_keeping_connections(&issuer).await;
    let serve = dev.serve_http(
        "serve-polling",
        free_port(),
        &[
            ("BANKGUARD_MCP__BACKCHANNEL_AUTHENTICATION_ENDPOINT", proxy.via(&format!("{issuer}/bc-authorize"))),
            ("BANKGUARD_MCP__TOKEN_ENDPOINT", proxy.via(&format!("{issuer}/oauth/token"))),
            ("BANKGUARD_MCP__MAX_WAIT_SECONDS", "1".into()),
            // One holder with N requests waiting: the per-holder bound is lifted to its maximum.
            ("BANKGUARD_MCP__MAX_PENDING_PER_HOLDER", "100000".into()),
        ],
    );
    let client = client_of(&serve).await;
    let created_in = request_transfers(&client, n).await;
    tokio::time::sleep(holder).await;

    let device = dev.device();
    let pending = device.pending(None).await.expect("the pending requests");
    assert_eq!(pending.len(), n, "requests pending at the provider");
    let approved_at: Vec<(String, Instant)> = futures::stream::iter(&pending)
        .map(|request| {
            let device = &device;
            async move {
                device.decide_request(request, "approve").await.expect("an approval");
                (request.auth_req_id.clone(), Instant::now())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let approvals_started = Instant::now();
    let completed = transfers_once(&dev, n).await;
    let completed_in = approvals_started.elapsed();

    let mut requests: HashMap<String, Request> = HashMap::new();
    for seen in proxy.seen_exchanges("/bc-authorize") {
        if let Some(id) = json_auth_req_id(&seen.answer) {
            requests.entry(id).or_default().started = Some(seen.at);
        }
    }
    for seen in proxy.seen_exchanges("/oauth/token") {
        if let Some(id) = form_auth_req_id(&seen.body) {
            let request = requests.entry(id).or_default();
            request.polls.push(seen.at);
            request.answers.push(answer_kind(&seen.answer));
        }
    }
    for (id, at) in approved_at {
        requests.entry(id).or_default().approved = Some(at);
    }
    Measured { requests, created_in, completed, completed_in }
}

fn answer_kind(answer: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(answer) {
        Ok(json) if json.get("access_token").is_some() => "tokens".into(),
        Ok(json) => json["error"].as_str().unwrap_or("?").to_owned(),
        Err(_) => format!("not JSON: {}", answer.chars().take(40).collect::<String>()),
    }
}

fn json_auth_req_id(answer: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(answer).ok()?;
    json["auth_req_id"].as_str().map(str::to_owned)
}

fn form_auth_req_id(body: &str) -> Option<String> {
    url::form_urlencoded::parse(body.as_bytes()).find(|(name, _)| name == "auth_req_id").map(|(_, id)| id.into_owned())
}
