//! The N-pending run of [`scale`](crate::scale) on three deployments side by side: one `serve` on
//! SQLite, one on PostgreSQL, and three replicas on one PostgreSQL store. For each: RSS and CPU of
//! every replica while N approvals wait (the N calls spread over the replicas), `list_accounts`
//! p50/p99 on the first replica, and how long an approval takes to reach a `get_transfer_status`
//! call waiting on another replica (on the same one with a single replica): the holder approves on
//! the device, the provider pings the first replica, the replica that asked executes the transfer,
//! and the waiting call returns `completed`. Then every request is approved and the bank's ledger
//! must hold exactly N transfers.
//!
//! PostgreSQL: the server `scripts/bench.sh` starts (`scripts/postgres.sh`), a fresh database per
//! deployment. Knobs: `BENCH_REPLICA_PENDING` (10000), `BENCH_REPLICA_IDLE_SECONDS` (60, one ping
//! fallback interval), `BENCH_PROPAGATIONS` (20).

use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

use crate::report::{Figure, Report, Samples, Table, knob};
use crate::scale::{
    Client, approve_all, client_of, cpu_ticks, read_accounts, request_transfers, status_mib, ticks_per_second,
    transfers_once,
};
use crate::stack::{DevOptions, DevProcess, HttpServe, PING_CLIENT, free_port};
use crate::support::intent_store::TestStore;
use crate::{Section, runtime};

pub const SECTION: Section = Section { name: "replicas", run };

const READS: usize = 200;

#[derive(Clone, Copy)]
enum Deployment {
    Sqlite,
    Postgres { replicas: usize },
}

impl Deployment {
    fn name(self) -> String {
        match self {
            Self::Sqlite => "1 × SQLite".into(),
            Self::Postgres { replicas } => format!("{replicas} × PostgreSQL"),
        }
    }

    fn replicas(self) -> usize {
        match self {
            Self::Sqlite => 1,
            Self::Postgres { replicas } => replicas,
        }
    }
}

struct Measured {
    deployment: Deployment,
    rss: Vec<f64>,
    cpu: Vec<f64>,
    reads: Samples,
    propagation: Samples,
    completed: i64,
    completed_in: Duration,
}

fn run(report: &mut Report) {
    let n = knob("BENCH_REPLICA_PENDING", 10_000);
    let idle = Duration::from_secs(knob("BENCH_REPLICA_IDLE_SECONDS", 60) as u64);
    let rounds = knob("BENCH_PROPAGATIONS", 20);
    report.section(
        "N pending approvals on one store: SQLite, PostgreSQL, three PostgreSQL replicas (ping mode)",
        &format!(
            "N = {n} `transfer_funds` calls spread over the replicas, an idle window of {} s, RSS at its end and \
             CPU over it per replica; {READS} `list_accounts` on the first replica; {rounds} approvals each \
             awaited by a `get_transfer_status` call on another replica (the same one with one replica), timed \
             from the device's answer to the call's; then all N approved.",
            idle.as_secs()
        ),
    );
    let runtime = runtime();
    let deployments = [Deployment::Sqlite, Deployment::Postgres { replicas: 1 }, Deployment::Postgres { replicas: 3 }];
    let measured: Vec<Measured> =
        deployments.iter().map(|&deployment| runtime.block_on(measure(deployment, n, idle, rounds))).collect();

    let mut table = Table::new(&[
        "deployment",
        "RSS per replica",
        "CPU per replica while waiting",
        "list_accounts p50 / p99",
        "approval → call on another replica p50 / p99",
        "completed",
    ]);
    for m in &measured {
        let each = |values: &[f64], show: &dyn Fn(f64) -> String| {
            values.iter().map(|v| show(*v)).collect::<Vec<_>>().join(", ")
        };
        table.row(vec![
            m.deployment.name(),
            each(&m.rss, &|mib| Figure::MiB(mib).to_string()),
            each(&m.cpu, &|share| format!("{:.2} %", share * 100.0)),
            format!("{} / {}", Figure::Time(m.reads.median()), Figure::Time(m.reads.percentile(99))),
            format!("{} / {}", Figure::Time(m.propagation.median()), Figure::Time(m.propagation.percentile(99))),
            format!("{} of {n} in {}", m.completed, Figure::Time(m.completed_in)),
        ]);
    }
    table.print();
    if let [sqlite, postgres, three] = &measured[..] {
        report.compare(
            &format!("`list_accounts` p99 with {n} pending, one replica on PostgreSQL"),
            Figure::Time(postgres.reads.percentile(99)),
            ("on SQLite", Figure::Time(sqlite.reads.percentile(99))),
            None,
        );
        report.compare(
            "approval → waiting call on another replica, p50",
            Figure::Time(three.propagation.median()),
            ("one replica on PostgreSQL, same replica", Figure::Time(postgres.propagation.median())),
            None,
        );
    }
}

async fn measure(deployment: Deployment, n: usize, idle: Duration, rounds: usize) -> Measured {
    // The provider pings the first replica; it passes pings for the others' waits on.
    let first = free_port();
    let dev = DevProcess::start(DevOptions { ping_serve: Some(first), ..DevOptions::default() });
    let store = match deployment {
        Deployment::Sqlite => Vec::new(),
        Deployment::Postgres { .. } => match TestStore::fresh_postgres().await {
            TestStore::Postgres { url, password } => {
                vec![("BANKGUARD_MCP__STORE_URL", url), ("BANKGUARD_MCP__STORE_PASSWORD", password)]
            }
            TestStore::Sqlite => unreachable!("a fresh PostgreSQL database"),
        },
    };
    let replicas: Vec<HttpServe> = (0..deployment.replicas())
        .map(|i| {
            let listen = if i == 0 { first } else { free_port() };
            let mut env = vec![
                ("BANKGUARD_MCP__DELIVERY_MODE", "ping".to_owned()),
                ("BANKGUARD_MCP__CLIENT_ID", PING_CLIENT.0.into()),
                ("BANKGUARD_MCP__CLIENT_SECRET", PING_CLIENT.1.into()),
                ("BANKGUARD_MCP__MAX_WAIT_SECONDS", "1".into()),
                ("BANKGUARD_MCP__MAX_PENDING_PER_HOLDER", "100000".into()),
            ];
            env.extend(store.iter().cloned());
            dev.serve_http(&format!("replica-{i}-{}", deployment.name().replace([' ', '×'], "")), listen, &env)
        })
        .collect();
    let mut clients = Vec::new();
    for replica in &replicas {
        clients.push(client_of(replica).await);
    }
    read_accounts(&clients[0], 20).await;

    let share = n.div_ceil(replicas.len());
    let spread = clients.iter().enumerate().map(|(i, client)| request_transfers(client, share.min(n - i * share)));
    futures::future::join_all(spread).await;

    tokio::time::sleep(Duration::from_secs(2)).await;
    let ticks_before: Vec<u64> = replicas.iter().map(cpu_ticks).collect();
    let window_started = Instant::now();
    tokio::time::sleep(idle).await;
    let window = window_started.elapsed().as_secs_f64();
    let cpu = replicas
        .iter()
        .zip(&ticks_before)
        .map(|(replica, before)| (cpu_ticks(replica) - before) as f64 / ticks_per_second() / window)
        .collect();
    let rss = replicas.iter().map(|replica| status_mib(replica, "VmRSS")).collect();
    let reads = read_accounts(&clients[0], READS).await;

    let device = dev.device();
    let mut propagation = Samples::default();
    for round in 0..rounds {
        let origin = &clients[round % clients.len()];
        let follower = &clients[(round + 1) % clients.len()];
        propagation.push(approval_reaches_another_call(&device, origin, follower).await);
    }

    let started = Instant::now();
    let requests = device.pending(None).await.expect("the pending requests");
    approve_all(&device, &requests).await;
    let completed = transfers_once(&dev, n + rounds).await - rounds as i64;
    Measured { deployment, rss, cpu, reads, propagation, completed, completed_in: started.elapsed() }
}

/// One transfer asked on `origin` and awaited by `get_transfer_status` on `follower`: the time from
/// the device's answer to the approval until the waiting call returns `completed`.
async fn approval_reaches_another_call(
    device: &bankguard::devstack::device_client::DeviceClient,
    origin: &Client,
    follower: &Client,
) -> Duration {
    let pending = structured(
        call(
            origin,
            "transfer_funds",
            json!({
        "from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": "0.02"}),
        )
        .await,
    );
    let (intent, reference) =
        (pending["intent_id"].as_str().expect("an intent id"), pending["reference"].as_str().expect("a reference"));
    let waiting = call(follower, "get_transfer_status", json!({"intent_id": intent, "wait_seconds": 30}));
    let approving = async {
        // Let the follower's call start waiting first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let requests = device.pending(None).await.expect("the pending requests");
        let request = requests.iter().find(|r| r.binding_message.contains(reference)).expect("the request");
        device.decide_request(request, "approve").await.expect("an approval");
        Instant::now()
    };
    let (answer, approved_at) = tokio::join!(waiting, approving);
    let elapsed = approved_at.elapsed();
    assert_eq!(structured(answer)["status"], "completed", "the waiting call saw the outcome");
    elapsed
}

async fn call(client: &Client, tool: &str, arguments: Value) -> rmcp::model::CallToolResult {
    let params =
        CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments.as_object().expect("an object").clone());
    client.call_tool(params).await.expect("a tool result")
}

fn structured(result: rmcp::model::CallToolResult) -> Value {
    result.structured_content.unwrap_or(Value::Null)
}
