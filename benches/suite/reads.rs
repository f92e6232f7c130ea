//! A read: `list_accounts` through bankguard against a direct GET of the bank endpoint it wraps
//! (`GET {bank}/users/alice/accounts` with a read token), side by side in one run: the cost bankguard
//! adds to a read, over Streamable HTTP on both protocol versions rmcp serves (2025-11-25 with the
//! `initialize` handshake, 2026-07-28 with `server/discover`) and over stdio.
//!
//! A fifth path is the floor for any rmcp server that wraps the GET: `examples/rmcp_http_floor.rs`,
//! a bare rmcp Streamable HTTP server whose one tool makes that same GET and returns the body. What
//! bankguard adds to a read is its time over the floor's; what the floor costs over the direct GET
//! (rmcp, JSON-RPC, SSE framing and a second loopback exchange) no server built on rmcp avoids.
//!
//! `bankguard dev`, `bankguard serve --transport http`, `bankguard serve` (stdio) and the floor each
//! run in their own process; the clients run here, one of each, connected before the first round. Every
//! round calls each path once, the order rotating; the first rounds are warm-up and are dropped.

use std::time::Instant;

use rmcp::RoleClient;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};

use crate::report::{Figure, Goal, Report, Samples, Table, knob, ratio};
use crate::stack::{DevOptions, DevProcess};
use crate::{Section, block_on};

pub const SECTION: Section = Section { name: "reads", run };

const WARM_UP_ROUNDS: usize = 20;

type Client = RunningService<RoleClient, ()>;

fn run(report: &mut Report) {
    let calls = knob("BENCH_CALLS", 1000);
    report.section(
        "`list_accounts` against a direct GET of the bank endpoint",
        &format!(
            "{calls} calls per path, interleaved (the order rotating every round) after {WARM_UP_ROUNDS} \
             warm-up rounds; each path has its own client, connected before the first round. The dev \
             stack and each serve run in their own process."
        ),
    );
    let dev = DevProcess::start(DevOptions::default());
    let serve = dev.serve_http("serve-http", "127.0.0.1:0".parse().unwrap(), &[]);
    let read_token = block_on(dev.read_token());
    let floor = dev.rmcp_http_floor(&read_token);
    let paths = block_on(async {
        let floor = ().serve(StreamableHttpClientTransport::from_uri(floor.url.clone())).await.unwrap();
        let legacy = ().serve(StreamableHttpClientTransport::from_uri(serve.url.clone())).await.unwrap();
        let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
        let modern =
            ().serve_with_lifecycle(StreamableHttpClientTransport::from_uri(serve.url.clone()), lifecycle)
                .await
                .unwrap();
        let log = std::fs::File::create(dev.log("serve-stdio")).unwrap();
        let mut command = tokio::process::Command::from(dev.serve_command());
        command.arg("--transport").arg("stdio");
        let (transport, _) = TokioChildProcess::builder(command).stderr(log).spawn().unwrap();
        let stdio = ().serve(transport).await.unwrap();
        let direct = Direct {
            http: bankguard::http_client::builder().build().unwrap(),
            url: format!("{}/users/alice/accounts", dev.running.bank_api),
            token: read_token,
        };

        let mut paths = [
            ("direct GET of the bank endpoint", Samples::default()),
            ("`list_accounts`, Streamable HTTP, 2025-11-25", Samples::default()),
            ("`list_accounts`, Streamable HTTP, 2026-07-28", Samples::default()),
            ("`list_accounts`, stdio", Samples::default()),
            ("floor: bare rmcp, Streamable HTTP 2025-11-25, same GET", Samples::default()),
        ];
        for round in 0..WARM_UP_ROUNDS + calls {
            for index in 0..paths.len() {
                let path = (round + index) % paths.len();
                let started = Instant::now();
                match path {
                    0 => direct.get().await,
                    1 => list_accounts(&legacy).await,
                    2 => list_accounts(&modern).await,
                    3 => list_accounts(&stdio).await,
                    _ => list_accounts(&floor).await,
                }
                let took = started.elapsed();
                if round >= WARM_UP_ROUNDS {
                    paths[path].1.push(took);
                }
            }
        }
        for client in [legacy, modern, stdio, floor] {
            let _ = client.cancel().await;
        }
        paths
    });

    let p50 = |samples: &Samples| Figure::Time(samples.median());
    let direct = p50(&paths[0].1);
    let mut table = Table::new(&["path", "p50", "p99", "× direct (p50)"]);
    for (path, samples) in &paths {
        let p99 = Figure::Time(samples.percentile(99));
        table.row(vec![path.to_string(), p50(samples).to_string(), p99.to_string(), ratio(p50(samples), direct)]);
    }
    table.print();
    let floor = p50(&paths[4].1);
    for (path, samples) in &paths[1..4] {
        let over_http = path.contains("HTTP");
        let goal = over_http.then(|| Goal::new("≤ 1.3× direct", p50(samples).ratio_to(direct) <= 1.3));
        report.compare(&format!("{path}, p50"), p50(samples), ("direct GET", direct), goal);
    }
    for (path, samples) in paths[1..3].iter() {
        report.compare(&format!("{path}, p50"), p50(samples), ("rmcp floor", floor), None);
    }
}

/// The bank endpoint `list_accounts` wraps, called as bankguard calls it.
struct Direct {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Direct {
    async fn get(&self) {
        let reply = self.http.get(&self.url).bearer_auth(&self.token).send().await.unwrap();
        assert!(reply.status().is_success(), "the bank answered {}", reply.status());
        reply.bytes().await.unwrap();
    }
}

async fn list_accounts(client: &Client) {
    let call = CallToolRequestParams::new("list_accounts").with_arguments(serde_json::Map::new());
    let result = client.call_tool(call).await.expect("list_accounts answers");
    assert_ne!(result.is_error, Some(true), "list_accounts failed: {result:?}");
}
