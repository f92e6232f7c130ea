//! The benchmark suite: bankguard measured side by side, in one run, with what it is compared to.
//! `scripts/bench.sh` installs the reference servers, builds everything in release and runs it;
//! `scripts/bench.sh cold_start reads` (or `BENCH_ONLY=cold_start,reads`) runs only those sections.
//!
//! One section per file, each with the same shape: a `SECTION` naming it and a `run` that starts the
//! processes it needs, measures with interleaved rounds, prints its detail table, and adds its rows to
//! the summary printed last.
//!
//! - [`cold_start`]: spawn to `tools/list` answered over stdio, and peak RSS, against a bare rmcp
//!   server, the TypeScript SDK's server-everything and a Python SDK server.
//! - [`reads`]: `list_accounts` over Streamable HTTP (both protocol versions) and stdio against a
//!   direct GET of the bank endpoint it wraps.
//! - [`approvals`]: approval → tool result latency and token-endpoint calls per approval, poll and
//!   ping mode.
//! - [`scale`]: N pending approvals in one `serve` (ping mode): RSS, CPU while waiting, reads
//!   meanwhile, and all N completing once approved.
//! - [`polling`]: N pending approvals in poll mode: token calls per request against ⌈T/interval⌉.
//! - [`stack`]: the processes: `bankguard dev` and `bankguard serve`, configured as a user would.
//! - [`report`]: tables, medians, ratios, goals.
//!
//! Knobs (environment, defaults in brackets): `BENCH_COLD_ROUNDS` (20) starts per server;
//! `BENCH_CALLS` (1000) calls per read path; `BENCH_APPROVALS` (5) immediate approvals per delivery
//! mode, `BENCH_SLOW_APPROVALS` (1) approvals after `BENCH_HOLDER_SECONDS` (12) per mode;
//! `BENCH_PENDING` (100,1000,10000) the sizes of the scale run, `BENCH_IDLE_SECONDS` (60) its idle window;
//! `BENCH_POLL_PENDING` (10000) and `BENCH_POLL_HOLDER_SECONDS` (20) for the poll-mode run.

#[path = "../../tests/support/mod.rs"]
mod support;

mod approvals;
mod cold_start;
mod polling;
mod reads;
mod replicas;
mod report;
mod scale;
mod stack;

use std::time::Instant;

use report::Report;

/// One part of the suite, run on its own or with the others.
pub struct Section {
    /// What selects it on the command line or in `BENCH_ONLY`.
    pub name: &'static str,
    pub run: fn(&mut Report),
}

/// Every section, in the order they run. A new section is a new file and one line here.
const SECTIONS: &[Section] =
    &[cold_start::SECTION, reads::SECTION, approvals::SECTION, scale::SECTION, polling::SECTION, replicas::SECTION];

fn main() {
    let chosen = chosen_sections();
    let started = Instant::now();
    println!("# bankguard benchmark suite\n");
    let mut report = Report::default();
    for section in chosen {
        eprintln!("bench: {} ...", section.name);
        let section_started = Instant::now();
        (section.run)(&mut report);
        eprintln!("bench: {} done in {:.0?}", section.name, section_started.elapsed());
    }
    report.print_summary();
    eprintln!("bench: done in {:.0?}", started.elapsed());
}

/// The sections named on the command line or in `BENCH_ONLY` (comma-separated), or all of them.
/// Flags are cargo's (`--bench`), not ours.
fn chosen_sections() -> Vec<&'static Section> {
    let mut names: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).collect();
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        names.extend(only.split(',').map(str::trim).filter(|name| !name.is_empty()).map(str::to_owned));
    }
    if names.is_empty() {
        return SECTIONS.iter().collect();
    }
    let known: Vec<&str> = SECTIONS.iter().map(|section| section.name).collect();
    for name in &names {
        if !known.contains(&name.as_str()) {
            eprintln!("unknown section {name:?}; the sections are: {}", known.join(", "));
            std::process::exit(2);
        }
    }
    SECTIONS.iter().filter(|section| names.iter().any(|name| name == section.name)).collect()
}

/// The runtime the measuring clients run on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime")
}

/// Runs `future` to completion on a runtime of its own.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}
