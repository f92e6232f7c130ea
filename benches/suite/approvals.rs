//! Approvals: how long a `transfer_funds` call takes to return its result once the holder approves,
//! and how many times bankguard calls the provider's token endpoint for one approval, in poll mode
//! (bankguard asks the token endpoint at the interval the provider announces) and in ping mode (the
//! provider calls bankguard's `/ciba/notify` when the holder decides; HTTP transport only).
//!
//! `bankguard dev` runs in its own process with the provider's default polling interval, and two
//! `bankguard serve --transport http` processes beside it: one polling as the MCP server's own
//! client, one registered at the provider as a ping client. Each reaches the token endpoint through a
//! counting proxy of its own ([`FaultProxy`], with no fault injected), which counts only CIBA token
//! requests (`grant_type=urn:openid:params:grant-type:ciba`): the client-credentials requests for
//! bankguard's read token are not approvals. The proxy's hop is inside the measured time in both
//! modes. The holder's phone is played here: it approves through the provider's device API the
//! moment the request is pending (in poll mode that is before bankguard's first poll, so one poll
//! suffices but comes a whole interval later), or some seconds later, as a person reading the
//! request would (then poll mode polls once per interval until the approval). The clock starts as the
//! approval is sent.

use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, model::CallToolResult};

use crate::report::{Figure, Goal, Report, Samples, Table, knob, median};
use bankguard::devstack::authz::device::PendingApproval;
use bankguard::devstack::device_client::DeviceClient;

use crate::stack::{DevOptions, DevProcess, HttpServe, PING_CLIENT, free_port};
use crate::support::fault_proxy::FaultProxy;
use crate::{Section, runtime};

pub const SECTION: Section = Section { name: "approvals", run };

/// A CIBA token request's form, as every client encodes it.
const CIBA_GRANT_IN_FORM: &str = "grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba";

type Client = RunningService<RoleClient, ()>;

/// One delivery mode: its serve, the proxy in front of its token endpoint, what was measured.
struct Mode {
    name: &'static str,
    _serve: HttpServe,
    proxy: FaultProxy,
    client: Client,
    /// Approved at once: approval → result, and token calls.
    latency: Samples,
    token_calls: Vec<f64>,
    /// Approved after [`SLOW_HOLDER_SECONDS`]: approval → result, and token calls.
    slow: Vec<(Duration, usize)>,
}

fn run(report: &mut Report) {
    let rounds = knob("BENCH_APPROVALS", 5);
    let slow_rounds = knob("BENCH_SLOW_APPROVALS", 1);
    let think_seconds = knob("BENCH_HOLDER_SECONDS", 12);
    let think = Duration::from_secs(think_seconds as u64);
    report.section(
        "Approval → tool result, and token-endpoint calls per approval",
        &format!(
            "{rounds} approvals per mode made the moment the request is pending, and {slow_rounds} made \
             {think_seconds} s after it (a holder reading the request), interleaved, after one untimed approval \
             each; the provider announces its default polling interval. Latency runs from the moment \
             the approval is sent to the provider to the moment `transfer_funds` returns its result."
        ),
    );
    let ping_listen = free_port();
    let dev = DevProcess::start(DevOptions { ping_serve: Some(ping_listen), ..DevOptions::default() });
    let runtime = runtime();
    let issuer = dev.running.issuer.clone();
    let mode = |name: &'static str, listen, client_env: Vec<(&'static str, String)>| {
        let proxy = runtime.block_on(FaultProxy::start_keeping_connections(&issuer));
        let mut env = vec![
            ("BANKGUARD_MCP__BACKCHANNEL_AUTHENTICATION_ENDPOINT", format!("{issuer}/bc-authorize")),
            ("BANKGUARD_MCP__TOKEN_ENDPOINT", proxy.via(&format!("{issuer}/oauth/token"))),
        ];
        env.extend(client_env);
        let serve = dev.serve_http(&format!("serve-{name}"), listen, &env);
        let transport = || StreamableHttpClientTransport::from_uri(serve.url.clone());
        let client = runtime.block_on(async { ().serve(transport()).await }).expect("an MCP session");
        Mode {
            name,
            _serve: serve,
            proxy,
            client,
            latency: Samples::default(),
            token_calls: Vec::new(),
            slow: Vec::new(),
        }
    };
    let mut modes = [
        mode("poll", free_port(), vec![]),
        mode(
            "ping",
            ping_listen,
            vec![
                ("BANKGUARD_MCP__DELIVERY_MODE", "ping".into()),
                ("BANKGUARD_MCP__CLIENT_ID", PING_CLIENT.0.into()),
                ("BANKGUARD_MCP__CLIENT_SECRET", PING_CLIENT.1.into()),
            ],
        ),
    ];
    let device = dev.device();
    for round in 0..=rounds {
        for index in 0..modes.len() {
            let mode = &mut modes[(round + index) % 2];
            let (latency, token_calls) = runtime.block_on(approve_one(mode, &device, Duration::ZERO));
            if round > 0 {
                mode.latency.push(latency);
                mode.token_calls.push(token_calls as f64);
            }
        }
    }
    for round in 0..slow_rounds {
        for index in 0..modes.len() {
            let mode = &mut modes[(round + index) % 2];
            let measured = runtime.block_on(approve_one(mode, &device, think));
            mode.slow.push(measured);
        }
    }

    let mut table = Table::new(&["delivery mode", "holder", "approval → result, p50", "min", "max", "token calls"]);
    for mode in &modes {
        let calls = &mode.token_calls;
        table.row(vec![
            mode.name.to_owned(),
            "approves at once".to_owned(),
            Figure::Time(mode.latency.median()).to_string(),
            Figure::Time(mode.latency.percentile(0)).to_string(),
            Figure::Time(mode.latency.percentile(100)).to_string(),
            spread(calls),
        ]);
        if !mode.slow.is_empty() {
            let mut latency = Samples::default();
            mode.slow.iter().for_each(|(took, _)| latency.push(*took));
            let calls: Vec<f64> = mode.slow.iter().map(|(_, calls)| *calls as f64).collect();
            table.row(vec![
                mode.name.to_owned(),
                format!("approves after {think_seconds} s"),
                Figure::Time(latency.median()).to_string(),
                Figure::Time(latency.percentile(0)).to_string(),
                Figure::Time(latency.percentile(100)).to_string(),
                spread(&calls),
            ]);
        }
    }
    table.print();

    let [poll, ping] = &modes;
    let p50 = |mode: &Mode| Figure::Time(mode.latency.median());
    report.compare("approval → tool result, ping mode, p50", p50(ping), ("poll mode", p50(poll)), None);
    let every_ping_once =
        ping.token_calls.iter().all(|&calls| calls == 1.0) && ping.slow.iter().all(|&(_, calls)| calls == 1);
    let goal = || Goal::new("= 1 in ping mode, every approval", every_ping_once);
    let calls = |mode: &Mode| Figure::Count(median(&mode.token_calls));
    report.compare(
        "token-endpoint calls per approval, ping mode, median",
        calls(ping),
        ("poll mode", calls(poll)),
        Some(goal()),
    );
    if !ping.slow.is_empty() {
        let slow =
            |mode: &Mode| Figure::Count(median(&mode.slow.iter().map(|(_, calls)| *calls as f64).collect::<Vec<_>>()));
        let path = format!("token-endpoint calls per approval, approved after {think_seconds} s, ping mode, median");
        report.compare(&path, slow(ping), ("poll mode", slow(poll)), Some(goal()));
    }
    for mode in modes {
        let _ = runtime.block_on(mode.client.cancel());
    }
}

/// `median 1, 1–2`
fn spread(values: &[f64]) -> String {
    let fewest = values.iter().copied().fold(f64::INFINITY, f64::min);
    let most = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("median {}, {fewest}–{most}", Figure::Count(median(values)))
}

/// One `transfer_funds` call, approved on the device `think` after it is pending: the time from the
/// approval to the result, and the CIBA token requests made during the call.
async fn approve_one(mode: &Mode, device: &DeviceClient, think: Duration) -> (Duration, usize) {
    let before = mode.proxy.seen_with_body("/oauth/token", CIBA_GRANT_IN_FORM);
    let arguments =
        serde_json::json!({"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": "1.00"});
    let call = CallToolRequestParams::new("transfer_funds").with_arguments(arguments.as_object().cloned().unwrap());
    let transfer = async {
        let result = mode.client.call_tool(call).await.expect("transfer_funds answers");
        (result, Instant::now())
    };
    let holder = async {
        let request = next_pending(device).await;
        tokio::time::sleep(think).await;
        let approved_at = Instant::now();
        device.decide_request(&request, "approve").await.expect("the approval is recorded");
        approved_at
    };
    let ((result, returned_at), approved_at) = tokio::join!(transfer, holder);
    assert_eq!(status(&result), "completed", "the {} transfer did not complete: {result:?}", mode.name);
    let calls = mode.proxy.seen_with_body("/oauth/token", CIBA_GRANT_IN_FORM) - before;
    assert!(calls > 0, "no CIBA token request went through the {} proxy: {:?}", mode.name, mode.proxy.log());
    (returned_at - approved_at, calls)
}

fn status(result: &CallToolResult) -> &str {
    result.structured_content.as_ref().and_then(|content| content["status"].as_str()).unwrap_or_default()
}

/// The next request waiting for the holder, asked for every millisecond.
async fn next_pending(device: &DeviceClient) -> PendingApproval {
    loop {
        if let Some(request) = device.pending(None).await.expect("the device API answers").into_iter().next() {
            return request;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
