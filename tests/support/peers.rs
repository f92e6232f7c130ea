//! The independent peers the interop tests drive (Node 22 with the npm packages, the Python SDK in its
//! virtualenv, all installed by `scripts/install-peers.sh`), and running their client scripts, which tell
//! what happened as JSON lines. A missing peer fails the test with the command that installs it; it is
//! never skipped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

/// The most one client run may take; the scripts' own tool-call timeout (30 s) is below it.
pub const CLIENT_LIMIT: Duration = Duration::from_secs(45);

pub const INSTALL_HINT: &str = "run ./scripts/install-peers.sh (it installs Node 22 into .peers/node22, the npm peers into \
                            tests/interop/*/node_modules and the Python SDK into .peers/venv)";

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `path`, which must exist, or a failure that says how to install it.
pub fn peer_file(path: &str, what: &str) -> PathBuf {
    let path = repo(path);
    assert!(path.exists(), "{what} is missing at {}: {INSTALL_HINT}", path.display());
    path
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn node() -> PathBuf {
    peer_file(".peers/node22/node_modules/.bin/node", "Node 22")
}

/// The virtualenv's Python, with the pinned MCP SDK.
pub fn python() -> PathBuf {
    peer_file(".peers/venv/bin/python", "the Python virtualenv with the MCP SDK")
}

/// What a client script printed.
pub struct Run {
    pub events: Vec<Value>,
    pub transcript: String,
}

impl Run {
    pub fn all(&self, event: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == event).collect()
    }

    pub fn one(&self, event: &str) -> &Value {
        match self.all(event).as_slice() {
            [only] => only,
            other => panic!("expected one {event} event, got {}\n{}", other.len(), self.transcript),
        }
    }

    pub fn transfer(&self, scenario: &str) -> &Value {
        let found: Vec<_> = self.all("transfer").into_iter().filter(|e| e["scenario"] == scenario).collect();
        assert_eq!(found.len(), 1, "one {scenario} transfer result\n{}", self.transcript);
        found[0]
    }

    pub fn progress_messages(&self, scenario: &str) -> Vec<String> {
        self.all("progress")
            .into_iter()
            .filter(|e| e["scenario"] == scenario)
            .filter_map(|e| e["message"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Runs `program args`, failing with everything it printed if it fails or outlives [`CLIENT_LIMIT`].
pub async fn run(program: &Path, args: &[String], home: Option<&Path>) -> Run {
    let mut command = tokio::process::Command::new(program);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("BANKGUARD_")) {
        command.env_remove(key);
    }
    if let Some(home) = home {
        command.env("HOME", home);
    }
    command
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let shown = format!("{} {}", program.display(), args.join(" "));
    let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let output = tokio::time::timeout(CLIENT_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{shown} did not finish within {CLIENT_LIMIT:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let transcript = format!("$ {shown}\n--- stdout\n{stdout}--- stderr\n{stderr}");
    let hint =
        if ["ModuleNotFoundError", "ERR_MODULE_NOT_FOUND", "Cannot find module"].iter().any(|m| stderr.contains(m)) {
            format!("\na peer is missing or incomplete: {INSTALL_HINT}")
        } else {
            String::new()
        };
    assert!(output.status.success(), "the client failed ({}){hint}\n{transcript}", output.status);
    let events = stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}\n{transcript}")))
        .collect();
    Run { events, transcript }
}

/// The official SDKs whose OAuth client scripts sign in to bankguard and tell the same story as JSON lines
/// (`tests/interop/python/mcp_oauth_client.py`, `tests/interop/mcp-clients/oauth_client.mjs`).
#[derive(Clone, Copy, Debug)]
pub enum OAuthSdk {
    Python,
    TypeScript,
}

impl OAuthSdk {
    pub const BOTH: [OAuthSdk; 2] = [OAuthSdk::Python, OAuthSdk::TypeScript];

    /// Signs in at `url` as `user` through the full flow, lists the accounts, with `transfer` asks for one
    /// (decided by the test meanwhile), then makes the SDK refresh its token.
    pub async fn sign_in_and_use(self, url: &str, user: &str, transfer: bool) -> Run {
        let (program, script) = match self {
            OAuthSdk::Python => (python(), repo("tests/interop/python/mcp_oauth_client.py")),
            OAuthSdk::TypeScript => (node(), peer_file("tests/interop/mcp-clients/oauth_client.mjs", "the TS client")),
        };
        let mut args = vec![script.display().to_string(), "--url".into(), url.into(), "--user".into(), user.into()];
        if transfer {
            args.push("--transfer".into());
        }
        run(&program, &args, None).await
    }
}
