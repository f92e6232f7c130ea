//! `list_accounts` over Streamable HTTP against a direct GET of the bank endpoint it wraps, side by
//! side in one run (interleaved, medians), on both protocol versions rmcp serves: the cost bankguard
//! adds to a read. The real dev stack and MCP server run on loopback in this process.
//!
//! `cargo bench --bench mcp_http` (env: `BENCH_CALLS`, default 400 per row).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use support::mcp::{McpStack, Recorder};

fn main() {
    let calls: usize = std::env::var("BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run(calls));
}

async fn run(calls: usize) {
    let stack = McpStack::start().await;
    let legacy = Recorder::default().serve(StreamableHttpClientTransport::from_uri(stack.url())).await.unwrap();
    let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
    let modern = Recorder::default()
        .serve_with_lifecycle(StreamableHttpClientTransport::from_uri(stack.url()), lifecycle)
        .await
        .unwrap();
    let token = stack.dev.read_token().await;
    let http = bankguard::http_client::builder().build().unwrap();
    let direct_url = format!("{}/users/alice/accounts", stack.dev.bank_api());
    let list = || CallToolRequestParams::new("list_accounts").with_arguments(serde_json::Map::new());

    let (mut direct, mut old, mut new) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..calls + 20 {
        let started = Instant::now();
        let reply = http.get(&direct_url).bearer_auth(&token).send().await.unwrap();
        assert!(reply.status().is_success());
        reply.bytes().await.unwrap();
        let direct_took = started.elapsed();

        let started = Instant::now();
        assert_ne!(legacy.call_tool(list()).await.unwrap().is_error, Some(true));
        let old_took = started.elapsed();

        let started = Instant::now();
        assert_ne!(modern.call_tool(list()).await.unwrap().is_error, Some(true));
        let new_took = started.elapsed();
        if round >= 20 {
            direct.push(direct_took);
            old.push(old_took);
            new.push(new_took);
        }
    }
    let base = percentile(&mut direct, 50);
    let heading = format!("path (interleaved, {calls} calls each)");
    println!("{heading:<48} {:>10} {:>10} {:>8}", "p50", "p99", "× direct");
    for (label, samples) in [
        ("direct GET of the bank endpoint", &mut direct),
        ("list_accounts, Streamable HTTP, 2025-11-25", &mut old),
        ("list_accounts, Streamable HTTP, 2026-07-28", &mut new),
    ] {
        let (p50, p99) = (percentile(samples, 50), percentile(samples, 99));
        println!(
            "{label:<48} {:>8.2}ms {:>8.2}ms {:>7.2}×",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            p50.as_secs_f64() / base.as_secs_f64()
        );
    }
}

fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}
