//! Cold start and memory: how long a stdio server takes from `exec` to answering `tools/list`, and
//! its peak resident memory by then, for bankguard beside three references: a bare rmcp server with
//! two tools (`examples/bare_rmcp.rs`, the floor for an rmcp server), the official TypeScript SDK's
//! `@modelcontextprotocol/server-everything`, and a two-tool server on the official Python SDK
//! (`benches/peers/python_server.py`).
//!
//! Each start writes `initialize`, `notifications/initialized` and `tools/list` to the new process's
//! stdin at once and stops the clock when the `tools/list` answer is read. Peak RSS is `VmHWM` from
//! `/proc/<pid>/status`, read right after that answer, before stdin is closed. bankguard serves with
//! a real configuration: a `bankguard dev` stack runs beside it, and its store (`mcp.sqlite`) already
//! exists (the untimed first start creates it). Rounds are interleaved (every server once per round,
//! the order rotating), after one untimed start of each; figures are medians.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Section;
use crate::report::{Figure, Goal, Report, Samples, Table, knob, median, ratio};
use crate::stack::{BANKGUARD, DevOptions, DevProcess, read, stop};

pub const SECTION: Section = Section { name: "cold_start", run };

/// What the servers are sent, in one write: the handshake, then the request that is timed.
const REQUESTS: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","#,
    r#""capabilities":{},"clientInfo":{"name":"bankguard-bench","version":"0"}}}"#,
    "\n",
    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    "\n",
    r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    "\n",
);

/// One server under test, and how to start it.
struct Server {
    name: &'static str,
    command: Command,
    starts: Samples,
    peak_rss_mib: Vec<f64>,
}

/// One start, measured.
struct Start {
    to_tools_list: Duration,
    peak_rss_mib: f64,
}

fn run(report: &mut Report) {
    let rounds = knob("BENCH_COLD_ROUNDS", 20);
    report.section(
        "Cold start and peak RSS (stdio)",
        &format!(
            "From spawn to the `tools/list` answer; peak RSS is VmHWM right after it. \
             {rounds} interleaved rounds after one untimed start each; medians."
        ),
    );
    let dev = DevProcess::start(DevOptions::default());
    let mut bankguard = dev.serve_command();
    bankguard.arg("--transport").arg("stdio");
    let mut servers = [
        Server::new("bankguard", bankguard),
        Server::new("bare rmcp, two tools", bare_rmcp()),
        Server::new("TypeScript SDK server-everything", typescript()),
        Server::new("Python SDK, two tools", python()),
    ];
    let log = dev.log("cold-start");
    for server in &mut servers {
        start(server, &log);
    }
    for round in 0..rounds {
        for index in 0..servers.len() {
            let server = &mut servers[(round + index) % 4];
            let measured = start(server, &log);
            server.starts.push(measured.to_tools_list);
            server.peak_rss_mib.push(measured.peak_rss_mib);
        }
    }

    let [bankguard, bare, typescript, python] = &servers;
    let mut table =
        Table::new(&["server", "to tools/list, median", "p90", "× bare rmcp", "peak RSS, median", "× bare rmcp"]);
    for server in &servers {
        table.row(vec![
            server.name.to_owned(),
            time(server).to_string(),
            Figure::Time(server.starts.percentile(90)).to_string(),
            ratio(time(server), time(bare)),
            rss(server).to_string(),
            ratio(rss(server), rss(bare)),
        ]);
    }
    table.print();

    let path = "cold start to `tools/list` answered (stdio), median";
    let goal = Goal::new("≤ 1.5× bare rmcp", time(bankguard).ratio_to(time(bare)) <= 1.5);
    report.compare(path, time(bankguard), (bare.name, time(bare)), Some(goal));
    report.compare(path, time(bankguard), (typescript.name, time(typescript)), None);
    report.compare(path, time(bankguard), (python.name, time(python)), None);
    let path = "peak RSS through `tools/list` (VmHWM), median";
    let goal = Goal::new("≤ 8 MiB", median(&bankguard.peak_rss_mib) <= 8.0);
    report.compare(path, rss(bankguard), (bare.name, rss(bare)), Some(goal));
    report.compare(path, rss(bankguard), (typescript.name, rss(typescript)), None);
    report.compare(path, rss(bankguard), (python.name, rss(python)), None);
}

fn time(server: &Server) -> Figure {
    Figure::Time(server.starts.median())
}

fn rss(server: &Server) -> Figure {
    Figure::MiB(median(&server.peak_rss_mib))
}

impl Server {
    fn new(name: &'static str, mut command: Command) -> Self {
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        Self { name, command, starts: Samples::default(), peak_rss_mib: Vec::new() }
    }
}

/// Starts `server`, times it to the `tools/list` answer, reads its peak RSS, and ends it by closing
/// stdin (killing it if it has not exited a few seconds later). Its stderr goes to `log`.
fn start(server: &mut Server, log: &Path) -> Start {
    let stderr = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("a log file");
    server.command.stderr(stderr);
    let started = Instant::now();
    let mut child = server.command.spawn().unwrap_or_else(|error| panic!("cannot start {}: {error}", server.name));
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(REQUESTS.as_bytes()).expect("the server reads its stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let answer = loop {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(30)) else {
            stop(&mut child);
            panic!("{} gave no tools/list answer within 30 s; its stderr: {}", server.name, read(log));
        };
        match serde_json::from_str::<Value>(&line) {
            Ok(message) if message["id"] == 2 => break message,
            _ => continue,
        }
    };
    let to_tools_list = started.elapsed();
    let peak_rss_mib = peak_rss_mib(child.id());
    let tools = answer["result"]["tools"].as_array().map_or(0, Vec::len);
    assert!(tools >= 2, "{} answered tools/list with {answer}", server.name);
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().expect("the child can be waited for").is_none() {
        if Instant::now() > deadline {
            stop(&mut child);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Start { to_tools_list, peak_rss_mib }
}

/// `VmHWM` of a live process, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .expect("a VmHWM line");
    kib / 1024.0
}

/// Where the peers are: built by `scripts/bench.sh`, installed by `scripts/install-peers.sh`.
fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn required(path: PathBuf, how: &str) -> PathBuf {
    assert!(path.exists(), "{} is missing: {how} (scripts/bench.sh does both)", path.display());
    path
}

fn bare_rmcp() -> Command {
    let binary = Path::new(BANKGUARD).with_file_name("examples").join("bare_rmcp");
    Command::new(required(binary, "cargo build --release --example bare_rmcp"))
}

fn typescript() -> Command {
    let node = required(repo(".peers/node22/node_modules/.bin/node"), "run scripts/install-peers.sh");
    let server = required(
        repo("benches/peers/typescript/node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
        "run scripts/install-peers.sh",
    );
    let mut command = Command::new(node);
    command.arg(server).arg("stdio");
    command
}

fn python() -> Command {
    let python = required(repo(".peers/venv/bin/python"), "run scripts/install-peers.sh");
    let mut command = Command::new(python);
    command.arg(repo("benches/peers/python_server.py"));
    command
}
