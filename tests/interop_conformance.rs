//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in
//! `tests/interop/conformance/package-lock.json`, run by Node 22 from `.peers/`) against bankguard's Streamable
//! HTTP server: exactly what `bankguard serve --transport http` runs, started here on the real dev stack.
//!
//! `applicable-scenarios.txt` names the scenarios that apply (lifecycle, ping, tools listing, concurrent SSE
//! streams, Host/Origin checks); `not-applicable.txt` names the rest with the reason (they need the suite's own
//! `test_*` tools, resources or prompts, or a capability bankguard does not declare). Every scenario the suite
//! knows must be in exactly one of the two, so a renamed or new scenario fails here until someone decides.
//!
//! Peers missing? Run `scripts/install-peers.sh`.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use support::mcp::McpStack;

const SUITE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/conformance");
const NODE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.peers/node22/node_modules/.bin/node");
const PACKAGE: &str = "@modelcontextprotocol/conformance";
/// One scenario takes about a second; this only stops a hung run.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

/// The suite's CLI, run by Node 22; fails (never skips) when the peers are not installed.
fn suite() -> (PathBuf, PathBuf) {
    let missing = |what: &str| -> ! { panic!("{what} is missing: run scripts/install-peers.sh") };
    let node = PathBuf::from(NODE);
    if !node.is_file() {
        missing(&format!("Node 22 ({NODE})"));
    }
    let manifest: Value = read_json(&Path::new(SUITE_DIR).join("package.json"));
    let wanted = manifest["dependencies"][PACKAGE].as_str().expect("package.json pins the suite").to_owned();
    let package_dir = Path::new(SUITE_DIR).join("node_modules").join(PACKAGE);
    let installed_manifest = package_dir.join("package.json");
    if !installed_manifest.is_file() {
        missing(&format!("{PACKAGE} ({})", package_dir.display()));
    }
    let installed: Value = read_json(&installed_manifest);
    assert_eq!(
        installed["version"].as_str(),
        Some(wanted.as_str()),
        "{PACKAGE} in node_modules is not the pinned version: run scripts/install-peers.sh"
    );
    let bin = installed["bin"]["conformance"].as_str().expect("the suite names its CLI in package.json");
    (node, package_dir.join(bin))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The first word of every line that is neither blank nor a `#` comment, with the rest of the line.
fn read_list(file: &str) -> Vec<(String, String)> {
    let path = Path::new(SUITE_DIR).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            (name.to_owned(), rest.trim().to_owned())
        })
        .collect()
}

/// The server scenarios the suite itself lists (`conformance list --server`: lines `  - name [versions]`).
async fn listed_scenarios(node: &Path, cli: &Path) -> BTreeSet<String> {
    let output = tokio::process::Command::new(node)
        .arg(cli)
        .args(["list", "--server"])
        .current_dir(SUITE_DIR)
        .output()
        .await
        .expect("run the conformance suite's list command");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "`conformance list --server` failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names: BTreeSet<String> = stdout
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("- "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert!(!names.is_empty(), "`conformance list --server` listed no scenarios:\n{stdout}");
    names
}

/// What one scenario run produced.
struct Run {
    scenario: String,
    exit_ok: bool,
    output: String,
    checks: Vec<Value>,
}

impl Run {
    /// Why this run does not count as a pass, if it does not: a non-zero exit, a FAILURE or WARNING check,
    /// or no successful check at all.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.exit_ok {
            problems.push("the suite exited non-zero".to_owned());
        }
        for check in &self.checks {
            let status = check["status"].as_str().unwrap_or_default();
            if matches!(status, "FAILURE" | "WARNING") {
                problems.push(format!(
                    "{status} {}: {}",
                    check["id"].as_str().unwrap_or("?"),
                    check["errorMessage"].as_str().unwrap_or("(no message)")
                ));
            }
        }
        if !self.checks.iter().any(|check| check["status"] == "SUCCESS") {
            problems.push("no check succeeded".to_owned());
        }
        problems
    }
}

async fn run_scenario(node: &Path, cli: &Path, url: &str, scenario: &str) -> Run {
    let results = tempfile::tempdir().unwrap();
    let command = tokio::process::Command::new(node)
        .arg(cli)
        .args(["server", "--url", url, "--scenario", scenario, "--output-dir"])
        .arg(results.path())
        .current_dir(SUITE_DIR)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SCENARIO_TIMEOUT, command)
        .await
        .unwrap_or_else(|_| panic!("scenario {scenario} did not finish within {SCENARIO_TIMEOUT:?}"))
        .expect("run the conformance suite");
    let mut checks = Vec::new();
    for entry in std::fs::read_dir(results.path()).unwrap() {
        let file = entry.unwrap().path().join("checks.json");
        if file.is_file() {
            checks.extend(read_json(&file).as_array().cloned().unwrap_or_default());
        }
    }
    Run {
        scenario: scenario.to_owned(),
        exit_ok: output.status.success(),
        output: strip_ansi(&format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )),
        checks,
    }
}

/// The suite colours its report whatever the terminal; the test log is plain text.
fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequences (ESC [ … final byte in @..~), which is all the suite prints.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn the_scenario_lists_are_well_formed() {
    let applicable = read_list("applicable-scenarios.txt");
    let excluded = read_list("not-applicable.txt");
    assert!(!applicable.is_empty(), "applicable-scenarios.txt lists no scenario");
    for (name, rest) in &applicable {
        assert!(rest.is_empty(), "applicable-scenarios.txt: one scenario per line, found {name:?} {rest:?}");
    }
    for (name, reason) in &excluded {
        assert!(!reason.is_empty(), "not-applicable.txt: {name} needs a reason");
    }
    let mut seen = BTreeSet::new();
    for (name, _) in applicable.iter().chain(&excluded) {
        assert!(seen.insert(name.clone()), "{name} is listed twice (applicable and not, or repeated)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bankguard_passes_every_applicable_server_scenario() {
    let (node, cli) = suite();
    let applicable: Vec<String> = read_list("applicable-scenarios.txt").into_iter().map(|(name, _)| name).collect();
    let excluded: BTreeSet<String> = read_list("not-applicable.txt").into_iter().map(|(name, _)| name).collect();
    assert!(!applicable.is_empty(), "applicable-scenarios.txt lists no scenario");

    let known = listed_scenarios(&node, &cli).await;
    let unknown: Vec<&String> = applicable.iter().chain(&excluded).filter(|name| !known.contains(*name)).collect();
    assert!(
        unknown.is_empty(),
        "not scenarios of the pinned suite (renamed or removed?): {unknown:?}; it lists {known:?}"
    );
    let unclassified: Vec<&String> =
        known.iter().filter(|name| !applicable.contains(name) && !excluded.contains(*name)).collect();
    assert!(
        unclassified.is_empty(),
        "the suite has scenarios in neither applicable-scenarios.txt nor not-applicable.txt: {unclassified:?}"
    );

    let stack = McpStack::start().await;
    let url = stack.url();
    let mut runs = Vec::new();
    for scenario in &applicable {
        runs.push(run_scenario(&node, &cli, &url, scenario).await);
    }

    let mut failures = Vec::new();
    for run in &runs {
        let problems = run.problems();
        let verdict = if problems.is_empty() { "passed" } else { "FAILED" };
        println!("===== {} {verdict} ({} checks) =====\n{}", run.scenario, run.checks.len(), run.output);
        if !problems.is_empty() {
            println!("checks: {}", serde_json::to_string_pretty(&run.checks).unwrap());
            failures.push(format!("{}: {}", run.scenario, problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "conformance scenarios failed against {url}:\n{}", failures.join("\n"));
}
