//! The `bankguard` binary as a person runs it: help, configuration errors, and `bankguard dev`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn bankguard() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bankguard"));
    // Isolate from the developer's own environment.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("BANKGUARD_")) {
        command.env_remove(key);
    }
    command
}

/// `bankguard` started in `dir`, as a user whose data directory is `dir/bankguard` (the default,
/// `$XDG_DATA_HOME/bankguard`, with `XDG_DATA_HOME` = `dir`).
fn bankguard_in(dir: &std::path::Path) -> Command {
    let mut command = bankguard();
    command.current_dir(dir).env("XDG_DATA_HOME", dir);
    command
}

#[test]
fn help_explains_each_subcommand() {
    let output = bankguard().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for (command, words) in [
        ("serve", "MCP server"),
        ("demo", "in one process"),
        ("dev", "reference bank API"),
        ("pending", "waiting for approval"),
        ("approve", "Approve a pending request"),
        ("deny", "Deny a pending request"),
        ("migrate", "migrations"),
        ("audit", "audit trail"),
    ] {
        let line = help.lines().find(|l| l.trim_start().starts_with(command)).unwrap_or_default();
        assert!(line.contains(words), "`{command}` is explained: {help}");
    }
    assert!(help.contains("--config"));
}

#[test]
fn a_bad_environment_value_stops_start_up_naming_the_key_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        bankguard_in(dir.path()).env("BANKGUARD_BANK_API__LISTEN", "not-an-address").arg("dev").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("bank_api.listen") && stderr.contains("BANKGUARD_BANK_API__LISTEN"), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(!dir.path().join("bankguard").exists(), "nothing is created before the configuration is valid");
}

#[test]
fn a_bad_file_value_or_an_unknown_key_names_the_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    for (toml, key) in [
        ("[bank_api]\nmax_transfer_amount = \"-5\"\n", "bank_api.max_transfer_amount"),
        ("[bank_api]\nissuer = \"ftp://example.com\"\n", "bank_api.issuer"),
        ("[bank_api]\nrequire_transaction_bindng = false\n", "bank_api.require_transaction_bindng"),
        ("data_dir = 5\n", "data_dir"),
    ] {
        let file = dir.path().join("bankguard.toml");
        std::fs::write(&file, toml).unwrap();
        let output = bankguard_in(dir.path()).arg("dev").output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{toml}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(key), "{toml}: {stderr}");
    }
    let output = bankguard().args(["--config", "/nonexistent/bankguard.toml", "dev"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not exist"));
}

/// A `bankguard dev` process on free ports in a temp dir, with the URLs it printed.
struct RunningDev {
    child: std::process::Child,
    dir: tempfile::TempDir,
    lines: std::collections::HashMap<String, String>,
    /// Its stderr, read as it comes: a pipe nobody reads would fill and stop the process mid-log.
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// A test that ends (or fails) without [`RunningDev::stop`] leaves no process behind holding its ports.
impl Drop for RunningDev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RunningDev {
    async fn start() -> Self {
        Self::start_command("dev", "mcpServers").await
    }

    /// Runs `subcommand` on free ports and reads what it prints until the line containing `last`.
    async fn start_command(subcommand: &str, last: &'static str) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), subcommand, last).await
    }

    /// The same in `dir`, where the data directory is `bankguard` (`XDG_DATA_HOME` is `dir`).
    async fn start_in(dir: tempfile::TempDir, subcommand: &str, last: &'static str) -> Self {
        Self::start_with_env(dir, subcommand, last, &[]).await
    }

    /// `bankguard demo` with more environment variables.
    async fn demo_with(env: &[(&str, &str)]) -> Self {
        Self::start_with_env(tempfile::tempdir().unwrap(), "demo", "mcpServers", env).await
    }

    /// The same with more environment variables.
    async fn start_with_env(
        dir: tempfile::TempDir,
        subcommand: &str,
        last: &'static str,
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = bankguard_in(dir.path())
            .env("BANKGUARD_AUTHZ__LISTEN", "127.0.0.1:0")
            .env("BANKGUARD_BANK_API__LISTEN", "127.0.0.1:0")
            .env("BANKGUARD_MCP__LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "debug")
            .envs(env.iter().copied())
            .arg(subcommand)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut logged = String::new();
            std::io::Read::read_to_string(&mut stderr_pipe, &mut logged).unwrap();
            logged
        });
        // stdout is drained to the end too: a closed pipe would fail whatever it prints later.
        let (seen, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::collections::HashMap::new();
            let mut seen = Some(seen);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((label, value)) = line.trim().split_once("  ") {
                    lines.insert(label.trim().to_owned(), value.trim().to_owned());
                }
                if line.trim_start().starts_with('{') {
                    lines.insert("json".to_owned(), line.trim().to_owned());
                }
                if line.contains(last) {
                    let _ = seen.take().map(|seen| seen.send(lines.clone()));
                }
            }
            let _ = seen.map(|seen| seen.send(lines));
        });
        let lines = tokio::task::spawn_blocking(move || lines.recv().unwrap()).await.unwrap();
        Self { child, dir, lines, stderr: Some(stderr) }
    }

    fn url(&self, label: &str) -> &str {
        self.lines.get(label).unwrap_or_else(|| panic!("dev printed no {label:?}: {:?}", self.lines))
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        bankguard_in(self.dir.path()).args(args).output().unwrap()
    }

    /// Stops it with SIGTERM and returns what it logged.
    fn stop(mut self) -> String {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
        self.stderr.take().expect("stopped once").join().unwrap()
    }
}

#[tokio::test]
async fn dev_serves_the_bank_api_on_loopback_and_stops_cleanly_on_sigterm() {
    let dev = RunningDev::start().await;
    let url = dev.url("bank API").to_owned();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/api"), "{url}");
    assert!(dev.url("authorization server").starts_with("http://127.0.0.1:"));
    assert!(dev.url("approval device").ends_with("/device"));

    let reply = reqwest_client().get(format!("{url}/users/alice/accounts")).send().await.unwrap();
    assert_eq!(reply.status(), 401);
    assert_eq!(reply.headers()["www-authenticate"], "Bearer realm=\"bankguard-bank\"");
    assert!(dev.dir.path().join("bankguard/bank.sqlite").exists());

    let logs = dev.stop();
    assert!(logs.contains("seeded the demo ledger") && logs.contains("shutting down"), "logs go to stderr: {logs}");
}

#[tokio::test]
async fn pending_approve_and_deny_work_from_the_terminal_and_no_secret_reaches_the_logs() {
    let dev = RunningDev::start().await;
    let issuer = dev.url("authorization server").to_owned();
    let credentials: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dev.dir.path().join("bankguard/mcp-client.json")).unwrap())
            .unwrap();
    let (id, secret) = (credentials["client_id"].as_str().unwrap(), credentials["client_secret"].as_str().unwrap());
    let http = reqwest_client();
    let mut auth_req_ids = Vec::new();
    for (user, message) in [("alice", "First #AAA1"), ("bob", "Second #BBB2")] {
        let reply: serde_json::Value = http
            .post(format!("{issuer}/bc-authorize"))
            .basic_auth(id, Some(secret))
            .form(&[("scope", "openid"), ("login_hint", user), ("binding_message", message)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        auth_req_ids.push(reply["auth_req_id"].as_str().unwrap().to_owned());
    }

    let pending = dev.run(&["pending"]);
    let listing = String::from_utf8(pending.stdout).unwrap();
    assert!(pending.status.success());
    assert!(listing.contains("First #AAA1") && listing.contains("Second #BBB2"), "{listing}");
    let only_alice = String::from_utf8(dev.run(&["pending", "--user", "alice"]).stdout).unwrap();
    assert!(only_alice.contains("First #AAA1") && !only_alice.contains("Second #BBB2"), "{only_alice}");

    let approved = dev.run(&["approve", "--user", "alice", "--latest"]);
    assert!(String::from_utf8_lossy(&approved.stdout).starts_with("approved: "), "{approved:?}");
    let denied = dev.run(&["deny", &auth_req_ids[1][..8]]);
    assert!(String::from_utf8_lossy(&denied.stdout).starts_with("denied: "), "{denied:?}");
    // Ids are URL-safe base64: one that begins with `-` is an id, not an option.
    let dashed = dev.run(&["deny", "-Jnope"]);
    let said = String::from_utf8_lossy(&dashed.stderr);
    assert!(!dashed.status.success() && !said.contains("unexpected argument"), "{said}");
    let nothing_left = dev.run(&["approve", "--latest"]);
    assert!(!nothing_left.status.success());
    assert!(String::from_utf8_lossy(&nothing_left.stderr).contains("nothing is pending"));
    let neither = dev.run(&["approve"]);
    assert_eq!(neither.status.code(), Some(2), "an id or --latest is required");

    let poll = |auth_req_id: String| {
        http.post(format!("{issuer}/oauth/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "urn:openid:params:grant-type:ciba"), ("auth_req_id", auth_req_id.as_str())])
            .send()
    };
    let token: serde_json::Value = poll(auth_req_ids[0].clone()).await.unwrap().json().await.unwrap();
    let access_token = token["access_token"].as_str().expect("alice's approval yields a token").to_owned();
    let refusal: serde_json::Value = poll(auth_req_ids[1].clone()).await.unwrap().json().await.unwrap();
    assert_eq!(refusal["error"], "access_denied");

    let device_token = std::fs::read_to_string(dev.dir.path().join("bankguard/device-token")).unwrap();
    let logs = dev.stop();
    assert!(logs.contains("issued tokens"), "debug logs were captured: {logs}");
    for secret in [secret, device_token.trim(), access_token.as_str(), auth_req_ids[0].as_str()] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

#[tokio::test]
async fn demo_runs_everything_and_the_example_agent_moves_money_once_approved() {
    let demo = RunningDev::start_command("demo", "mcpServers").await;
    let mcp_url = demo.url("MCP endpoint").to_owned();
    assert!(mcp_url.starts_with("http://127.0.0.1:") && mcp_url.ends_with("/mcp"), "{mcp_url}");
    let device = demo.url("approval device").split_whitespace().next().unwrap();
    assert!(device.starts_with("http://127.0.0.1:") && device.ends_with("/device?user=alice"), "{device}");
    // The Inspector command pins the version the interop tests run, and runs without a prompt (`-y`).
    let package: serde_json::Value =
        serde_json::from_str(include_str!("interop/mcp-clients/package.json")).expect("the peers' package.json");
    let pinned = package["dependencies"]["@modelcontextprotocol/inspector"].as_str().unwrap();
    let inspector = demo.url("MCP Inspector");
    assert!(
        inspector.contains(&format!("npx -y @modelcontextprotocol/inspector@{pinned} --cli {mcp_url}")),
        "{inspector}"
    );
    let snippet: serde_json::Value = serde_json::from_str(&demo.lines["json"]).unwrap();
    assert_eq!(snippet["mcpServers"]["bankguard"]["args"], serde_json::json!(["serve"]));

    // The example agent, with the holder approving from the terminal once the request arrives.
    let agent = run_example_agent(&mcp_url);
    let approved = approve_latest(&demo, std::time::Duration::ZERO).await;
    let agent = agent.await.unwrap();
    let printed = String::from_utf8(agent.stdout).unwrap();

    assert!(approved.contains("25.00 USD from Everyday Checking"), "{approved}");
    assert!(agent.status.success(), "{printed}");
    assert!(printed.contains("Everyday Checking (CHK-4821, acc_alice_chk): 2500.00 USD"), "{printed}");
    assert!(printed.contains("… Approve the transfer on your device — Reference "), "progress is printed: {printed}");
    assert!(printed.contains("done: Transferred 25.00 USD from CHK-4821 to CHK-3307"), "{printed}");
    demo.stop();
}

#[test]
fn the_mcp_json_example_starts_bankguard_serve_over_stdio_and_names_the_http_endpoint() {
    let example: serde_json::Value =
        serde_json::from_str(include_str!("../mcp.json.example")).expect("mcp.json.example is JSON");
    let server = &example["mcpServers"]["bankguard"];
    assert_eq!(server["command"], "bankguard");
    assert_eq!(server["args"], serde_json::json!(["serve", "--transport", "stdio"]));
    let http = &example["mcpServers"]["bankguard-http"];
    let default = bankguard::config::Config::default();
    assert_eq!(http["url"], format!("http://{}/mcp", default.mcp.listen), "the default HTTP endpoint");
}

/// After `cargo install`, a desktop client runs the example's entry as written, from a directory of
/// its own: `serve` finds the credentials `bankguard dev` wrote (the user's data directory is the
/// default of both) and answers over stdio.
#[tokio::test]
async fn the_mcp_json_example_as_written_reaches_a_running_dev_from_any_directory() {
    // `dev` on its default ports, as `serve`'s defaults expect (no other test uses them).
    let defaults = bankguard::config::Config::default();
    let (authz, bank) = (defaults.authz.listen.to_string(), defaults.bank_api.listen.to_string());
    let env = [("BANKGUARD_AUTHZ__LISTEN", authz.as_str()), ("BANKGUARD_BANK_API__LISTEN", bank.as_str())];
    let dev = RunningDev::start_with_env(tempfile::tempdir().unwrap(), "dev", "mcpServers", &env).await;

    let example: serde_json::Value = serde_json::from_str(include_str!("../mcp.json.example")).unwrap();
    let entry = &example["mcpServers"]["bankguard"];
    // `bankguard` on the PATH, as `cargo install` puts it.
    let installed = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_bankguard"), installed.path().join("bankguard")).unwrap();
    let path = format!("{}:{}", installed.path().display(), std::env::var("PATH").unwrap_or_default());
    let elsewhere = tempfile::tempdir().unwrap();
    let mut command = Command::new(entry["command"].as_str().unwrap());
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("BANKGUARD_")) {
        command.env_remove(key);
    }
    command
        .args(entry["args"].as_array().unwrap().iter().map(|arg| arg.as_str().unwrap()))
        .envs(entry["env"].as_object().unwrap().iter().map(|(key, value)| (key, value.as_str().unwrap())))
        .env("PATH", path)
        // The same user as `dev`'s: the data directory is their default.
        .env("XDG_DATA_HOME", dev.dir.path())
        .current_dir(elsewhere.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(elsewhere.path().join("serve.log")).unwrap());
    let mut serve = command.spawn().unwrap();
    let mut stdin = serve.stdin.take().unwrap();
    let stdout = serve.stdout.take().unwrap();
    let answers = std::thread::spawn(move || {
        use std::io::Write;
        let lines = [
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"desktop","version":"1"}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_accounts","arguments":{}}}"#,
        ];
        for line in lines {
            writeln!(stdin, "{line}").unwrap();
        }
        let answer = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .map(|line| serde_json::from_str::<serde_json::Value>(&line).unwrap())
            .find(|message| message["id"] == 2);
        drop(stdin);
        answer
    });
    let answer =
        tokio::time::timeout(std::time::Duration::from_secs(30), tokio::task::spawn_blocking(move || answers.join()))
            .await
            .expect("serve answers within 30 s")
            .unwrap()
            .unwrap()
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(elsewhere.path().join("serve.log")).unwrap_or_default();
                panic!("no answer to tools/call; serve said:\n{log}\ndev said:\n{:?}", dev.lines)
            });
    let _ = serve.kill();
    let _ = serve.wait();
    let accounts = answer["result"]["structuredContent"]["accounts"].as_array().expect("accounts").len();
    assert_eq!(accounts, 3, "alice's accounts, read with the credentials dev wrote: {answer}");
}

#[test]
fn serve_without_sign_in_refuses_to_listen_beyond_loopback_and_says_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let output = bankguard_in(dir.path())
        .env("BANKGUARD_MCP__CLIENT_SECRET", "not-used")
        .args(["serve", "--transport", "http", "--listen", "0.0.0.0:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(r#"mcp.auth = "none" acts for mcp.user without any sign-in"#), "{stderr}");
    assert!(stderr.contains("0.0.0.0:"), "{stderr}");
    assert!(stderr.contains(r#"set mcp.auth = "oauth""#), "{stderr}");
}

#[test]
fn migrate_brings_the_intent_store_up_to_date_and_a_bad_store_url_never_echoes_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let known = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/mcp")).unwrap().count();
    for _ in 0..2 {
        let output = bankguard_in(dir.path()).arg("migrate").output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let said = String::from_utf8(output.stdout).unwrap();
        assert_eq!(said, format!("the SQLite transfer intent store is up to date (migrations applied: {known})\n"));
    }
    assert!(dir.path().join("bankguard/mcp.sqlite").exists());

    for (url, reason) in [
        ("mysql://bank:hunter2-secret@db.internal/x", "must be a postgres:// URL"),
        ("postgres://bank:hunter2-secret@db.internal:port/x", "is not a valid PostgreSQL connection URL"),
    ] {
        let output = bankguard_in(dir.path()).env("BANKGUARD_MCP__STORE_URL", url).arg("migrate").output().unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("mcp.store_url") && stderr.contains(reason), "{stderr}");
        assert!(!stderr.contains("hunter2"), "the password is never repeated: {stderr}");
    }
    // A server that cannot be reached: the message names where, not with what password.
    let output = bankguard_in(dir.path())
        .env("BANKGUARD_MCP__STORE_URL", "postgres://bank@127.0.0.1:1/bankguard")
        .env("BANKGUARD_MCP__STORE_PASSWORD", "hunter2-secret")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PostgreSQL at 127.0.0.1:1 database bankguard"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// Writes a run of audit entries into `dir`'s data directory through the library, as `serve`
/// would: a transfer the holder denied, a policy refusal, and a signed head. Returns how many
/// entries there are.
async fn write_audit_trail(data_dir: &std::path::Path) -> usize {
    use bankguard::ciba::types::AuthReqId;
    use bankguard::clock::{Clock, Millis};
    use bankguard::mcp::holder::Holder;
    use bankguard::mcp::intent::{AccountLabel, TransferIntent};
    use bankguard::mcp::lifecycle::audit::AuditTerms;
    use bankguard::mcp::lifecycle::{Claim, Event, IntentStore, RunnerId};
    use bankguard::mcp::server_key::ServerKey;
    use bankguard::money::MinorUnits;

    let key = std::sync::Arc::new(ServerKey::load_or_generate(data_dir).unwrap());
    let store = IntentStore::in_data_dir(data_dir.to_owned(), Clock::system()).with_server_key(key);
    let alice = Holder::configured("alice");
    let terms = TransferIntent::new(
        AccountLabel { id: "acc_alice_chk".into(), masked_number: "CHK-4821".into() },
        AccountLabel { id: "acc_bob_chk".into(), masked_number: "CHK-3307".into() },
        MinorUnits(2500),
        "USD".parse().unwrap(),
        None,
    );
    let Claim::Created(intent) = store
        .create(&alice, None, "f", &terms, &RunnerId::new(), &bankguard::mcp::lifecycle::Admission::pending_at_most(10))
        .await
        .unwrap()
    else {
        panic!("created")
    };
    let accepted = Event::RequestAccepted {
        auth_req_id: AuthReqId::new("req-1"),
        expires_at: Millis(i64::MAX / 2),
        interval_seconds: 5,
    };
    let pending = store.apply(&intent, accepted).await.unwrap();
    store.apply(&pending, Event::Denied).await.unwrap();
    let refused = AuditTerms::from(&terms);
    store
        .record_policy_refusal(&alice, &refused, "payee_not_allowed", "acc_bob_chk is not an allowed payee")
        .await
        .unwrap();
    assert!(store.sign_audit_head().await.unwrap().is_some());
    store.close().await;
    4
}

#[tokio::test]
async fn audit_verify_passes_an_intact_log_and_names_the_entry_whose_amount_was_changed() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("bankguard");
    let entries = write_audit_trail(&data_dir).await;

    let output = bankguard_in(dir.path()).args(["audit", "verify"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout} {}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.starts_with(&format!("the audit log verifies: {entries} entries")), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");

    // Export: one JSON object per line, filtered by holder and time.
    let output = bankguard_in(dir.path()).args(["audit", "export"]).output().unwrap();
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), entries);
    assert_eq!(lines.iter().map(|line| line["seq"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(
        lines.iter().map(|line| line["kind"].as_str().unwrap()).collect::<Vec<_>>(),
        ["created", "approval_requested", "denied", "policy_refused"]
    );
    assert!(lines.iter().all(|line| line["amount_minor"] == 2500 && line["hash"].as_str().unwrap().len() == 64));
    for (args, count) in [
        (&["--holder", "bob"][..], 0),
        (&["--holder", "alice"][..], entries),
        (&["--since", "2999-01-01T00:00:00Z"][..], 0),
        (&["--since", "2000-01-01T00:00:00Z", "--holder", "alice"][..], entries),
    ] {
        let output = bankguard_in(dir.path()).args(["audit", "export"]).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(String::from_utf8(output.stdout).unwrap().lines().count(), count, "{args:?}");
    }

    // Someone with the file edits an amount through a connection of their own.
    let url = format!("sqlite://{}", data_dir.join("mcp.sqlite").display());
    let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("DROP TRIGGER audit_entries_no_update").execute(&mut connection).await.unwrap();
    sqlx::query("UPDATE audit_entries SET amount_minor = 250000 WHERE seq = 2").execute(&mut connection).await.unwrap();
    connection.close().await.unwrap();

    let output = bankguard_in(dir.path()).args(["audit", "verify"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("audit entry 2:") && stderr.contains("do not match its hash"), "{stderr}");
}

#[test]
fn audit_verify_without_the_servers_key_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let output = bankguard_in(dir.path()).args(["audit", "verify"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no server key at") && stderr.contains("server-key.pem"), "{stderr}");
}

#[test]
fn approve_without_a_running_dev_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let output = bankguard_in(dir.path()).args(["approve", "--latest"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no running `bankguard dev`"));
}

/// The permission bits of everything in the data directory, the directory itself as ".".
#[cfg(unix)]
fn modes(data_dir: &std::path::Path) -> std::collections::BTreeMap<String, u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let mut modes: std::collections::BTreeMap<String, u32> = std::fs::read_dir(data_dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .map(|entry| (entry.file_name().to_string_lossy().into_owned(), mode(&entry.path())))
        .collect();
    modes.insert(".".to_owned(), mode(data_dir));
    modes
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_every_file_in_it_are_the_owners_alone() {
    use rmcp::ServiceExt;
    use rmcp::model::CallToolRequestParams;

    let demo = RunningDev::start_command("demo", "mcpServers").await;
    // Through the crate's client builder, which installs the TLS provider reqwest needs.
    let transport = rmcp::transport::StreamableHttpClientTransport::with_client(
        reqwest_client(),
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            demo.url("MCP endpoint").to_owned(),
        ),
    );
    let client = ().serve(transport).await.unwrap();
    let accounts = client
        .call_tool(CallToolRequestParams::new("list_accounts").with_arguments(serde_json::Map::new()))
        .await
        .unwrap();
    assert_ne!(accounts.is_error, Some(true), "{accounts:?}");
    client.cancel().await.unwrap();

    let data_dir = demo.dir.path().join("bankguard");
    let modes = modes(&data_dir);
    for file in [
        "authz.sqlite",
        "authz.sqlite-wal",
        "authz.sqlite-shm",
        "bank.sqlite-wal",
        "mcp.sqlite-wal",
        "authz-signing-key.pem",
        "server-key.pem",
        "mcp-client.json",
        "device-token",
        "dev-stack.json",
    ] {
        assert!(modes.contains_key(file), "{file} is there: {modes:?}");
    }
    for (name, mode) in &modes {
        let wanted = if name == "." { 0o700 } else { 0o600 };
        assert_eq!(*mode, wanted, "{name} is {mode:o}: {modes:?}");
    }
    demo.stop();
}

#[cfg(unix)]
#[tokio::test]
async fn an_existing_data_directory_open_to_others_is_tightened_on_start_and_the_log_says_so() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("bankguard");
    std::fs::create_dir(&data_dir).unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data_dir.join("notes.txt"), b"left by an older version").unwrap();
    std::fs::set_permissions(data_dir.join("notes.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();

    let dev = RunningDev::start_in(dir, "dev", "mcpServers").await;
    let modes = modes(&data_dir);
    let logs = dev.stop();

    assert_eq!((modes["."], modes["notes.txt"]), (0o700, 0o600), "{modes:?}");
    assert!(modes.values().all(|mode| mode & 0o077 == 0), "{modes:?}");
    assert!(logs.contains("tightened it to 0700"), "the log says so: {logs}");
}

fn reqwest_client() -> reqwest::Client {
    bankguard::http_client::builder().build().unwrap()
}

/// Every configured URL is plain http (the embedded default): `serve` neither needs nor reads the
/// system's trust store, so it starts and answers on a machine that has none.
#[test]
fn serve_answers_without_a_system_trust_store_when_every_url_is_http() {
    use std::io::{BufRead, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut serve = bankguard_in(dir.path())
        .args(["serve"])
        .env("BANKGUARD_DATA_DIR", dir.path())
        .env("BANKGUARD_MCP__CLIENT_SECRET", "not-used-before-a-call")
        .env("SSL_CERT_FILE", dir.path().join("no-such-bundle.pem"))
        .env("SSL_CERT_DIR", dir.path().join("no-such-dir"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = serve.stdin.take().unwrap();
    let requests = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    ];
    for request in requests {
        writeln!(stdin, "{request}").unwrap();
    }
    let mut lines = std::io::BufReader::new(serve.stdout.take().unwrap()).lines();
    let listed = lines.find(|line| line.as_ref().is_ok_and(|l| l.contains("\"id\":2")));
    drop(stdin);
    let output = serve.wait_with_output().unwrap();
    let listed = listed.and_then(Result::ok).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    assert!(listed.contains("transfer_funds"), "{listed}");
}

// -------------------------------------------------------------------------------------------------
// An operator's first hour (issue 14): what `demo` and `dev` print, the example agent through long
// waits, and what `pending`/`approve`/`deny` and a taken port say when something is in the way.
// -------------------------------------------------------------------------------------------------

/// The example agent against `mcp_url`, run in the background; its output once it ends.
fn run_example_agent(mcp_url: &str) -> tokio::task::JoinHandle<std::process::Output> {
    let agent = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples/agent");
    let mcp_url = mcp_url.to_owned();
    tokio::task::spawn_blocking(move || Command::new(agent).arg(mcp_url).output().unwrap())
}

/// `bankguard approve --latest` from the stack's directory once `after` has passed and a request is
/// pending; what it printed.
async fn approve_latest(stack: &RunningDev, after: std::time::Duration) -> String {
    tokio::time::sleep(after).await;
    for _ in 0..100 {
        let output = stack.run(&["approve", "--latest"]);
        if output.status.success() {
            return String::from_utf8(output.stdout).unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("nothing to approve arrived")
}

/// The progress lines the agent printed.
fn progress_lines(printed: &str) -> Vec<&str> {
    printed.lines().filter_map(|line| line.trim_start().strip_prefix("… ")).collect()
}

#[tokio::test]
async fn dev_prints_absolute_paths_and_a_stdio_snippet_that_uses_them() {
    let dev = RunningDev::start().await;
    let data_dir = dev.dir.path().canonicalize().unwrap().join("bankguard");
    assert_eq!(dev.url("data directory"), data_dir.display().to_string());
    assert!(dev.url("MCP client").ends_with(&format!("(secret in {}/mcp-client.json)", data_dir.display())));

    let snippet: serde_json::Value = serde_json::from_str(&dev.lines["json"]).unwrap();
    let server = &snippet["mcpServers"]["bankguard"];
    assert_eq!(server["args"], serde_json::json!(["serve"]));
    assert_eq!(server["command"], env!("CARGO_BIN_EXE_bankguard"), "this binary, by absolute path");
    assert_eq!(server["env"]["BANKGUARD_DATA_DIR"], data_dir.display().to_string());
    assert_eq!(server["env"]["BANKGUARD_MCP__ISSUER"], dev.url("authorization server"));
    assert_eq!(server["env"]["BANKGUARD_MCP__BANK_API_URL"], dev.url("bank API"));

    // An unknown holder is named as such, with the ones there are, while the stack runs.
    for args in [
        &["approve", "--user", "carol", "--latest"][..],
        &["deny", "--user", "carol", "--latest"],
        &["pending", "--user", "carol"],
    ] {
        let output = dev.run(args);
        assert!(!output.status.success(), "{args:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("no such user carol (known: alice, bob)"), "{args:?}: {said}");
    }
    dev.stop();
}

#[test]
fn the_approval_commands_name_the_data_directory_they_looked_in_when_no_stack_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().canonicalize().unwrap().join("bankguard");
    for args in [&["pending"][..], &["approve", "--latest"], &["deny", "--latest"]] {
        let output = bankguard_in(dir.path()).args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains(&format!("uses the data directory {}:", data_dir.display())), "{args:?}: {said}");
        assert!(said.contains("BANKGUARD_DATA_DIR"), "and how to point at another: {said}");
    }

    // A stack that stopped leaves its address behind: that one does not answer.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = nobody.local_addr().unwrap();
    drop(nobody);
    std::fs::create_dir(&data_dir).unwrap();
    let running = format!(
        r#"{{"issuer":"http://{address}","bank_api":"http://{address}/api","device":"http://{address}/device"}}"#
    );
    std::fs::write(data_dir.join("dev-stack.json"), running).unwrap();
    std::fs::write(data_dir.join("device-token"), "stale").unwrap();
    let output = bankguard_in(dir.path()).args(["approve", "--latest"]).output().unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains(&format!("uses the data directory {}", data_dir.display())), "{said}");
    assert!(said.contains(&format!("the last one listened at http://{address} and does not answer")), "{said}");
}

#[test]
fn an_address_in_use_names_the_setting_and_the_variable_to_change() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let free = "127.0.0.1:0";
    let in_use = format!("{address} is in use");
    for (subcommand, env, change) in [
        (
            &["serve", "--transport", "http"][..],
            [
                ("BANKGUARD_MCP__LISTEN", address.as_str()),
                ("BANKGUARD_AUTHZ__LISTEN", free),
                ("BANKGUARD_BANK_API__LISTEN", free),
            ],
            "set mcp.listen (BANKGUARD_MCP__LISTEN) or pass --listen",
        ),
        (
            &["dev"],
            [
                ("BANKGUARD_MCP__LISTEN", free),
                ("BANKGUARD_AUTHZ__LISTEN", address.as_str()),
                ("BANKGUARD_BANK_API__LISTEN", free),
            ],
            "set authz.listen (BANKGUARD_AUTHZ__LISTEN)",
        ),
        (
            &["dev"],
            [
                ("BANKGUARD_MCP__LISTEN", free),
                ("BANKGUARD_AUTHZ__LISTEN", free),
                ("BANKGUARD_BANK_API__LISTEN", address.as_str()),
            ],
            "set bank_api.listen (BANKGUARD_BANK_API__LISTEN)",
        ),
        (
            &["demo"],
            [
                ("BANKGUARD_MCP__LISTEN", address.as_str()),
                ("BANKGUARD_AUTHZ__LISTEN", free),
                ("BANKGUARD_BANK_API__LISTEN", free),
            ],
            "set mcp.listen (BANKGUARD_MCP__LISTEN)",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let output = bankguard_in(dir.path())
            .envs(env)
            .env("BANKGUARD_MCP__CLIENT_SECRET", "not-used")
            .args(subcommand)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{subcommand:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        let error = said.lines().find(|line| line.starts_with("error: ")).unwrap_or_else(|| panic!("{said}"));
        assert!(error.contains(&in_use) && error.ends_with(change), "{subcommand:?}: {error}");
    }
}

#[tokio::test]
async fn the_example_agent_prints_each_progress_line_once_while_the_holder_takes_their_time() {
    // Progress every second; the holder answers after the 10 s that used to cut the agent's stream
    // (rmcp resumed it and the last progress line came again, its time left already past).
    let demo = RunningDev::demo_with(&[("BANKGUARD_MCP__PROGRESS_INTERVAL_SECONDS", "1")]).await;
    let agent = run_example_agent(demo.url("MCP endpoint"));
    approve_latest(&demo, std::time::Duration::from_secs(13)).await;
    let printed = String::from_utf8(agent.await.unwrap().stdout).unwrap();

    assert!(printed.contains("done: Transferred 25.00 USD"), "{printed}");
    let progress = progress_lines(&printed);
    let waiting: Vec<&str> = progress.iter().copied().filter(|line| line.starts_with("Waiting for approval")).collect();
    assert!(waiting.len() >= 10, "a line a second: {printed}");
    // "…, 4:58 left" in seconds.
    let seconds_left = |line: &str| {
        let (minutes, seconds) = line.rsplit(", ").next().unwrap().trim_end_matches(" left").split_once(':').unwrap();
        minutes.parse::<u32>().unwrap() * 60 + seconds.parse::<u32>().unwrap()
    };
    let left: Vec<u32> = waiting.iter().map(|line| seconds_left(line)).collect();
    assert!(left.windows(2).all(|pair| pair[0] > pair[1]), "the time left only goes down, each line once: {left:?}");
    assert!(progress[0].starts_with("Approve the transfer on your device — Reference "), "{printed}");
    demo.stop();
}

#[tokio::test]
async fn a_three_hour_approval_outlasts_the_call_and_the_agent_follows_it_to_the_end() {
    let demo = RunningDev::demo_with(&[
        ("BANKGUARD_MCP__REQUESTED_EXPIRY_SECONDS", "10800"),
        ("BANKGUARD_MCP__MAX_WAIT_SECONDS", "2"),
        ("BANKGUARD_MCP__PROGRESS_INTERVAL_SECONDS", "1"),
    ])
    .await;
    let agent = run_example_agent(demo.url("MCP endpoint"));
    let approved = approve_latest(&demo, std::time::Duration::from_secs(4)).await;
    let printed = String::from_utf8(agent.await.unwrap().stdout).unwrap();

    assert!(approved.contains("2 h 59 min left"), "the provider took the three hours: {approved}");
    assert!(printed.contains("(not settled yet) Still waiting"), "the call answered pending: {printed}");
    assert!(printed.contains("> get_transfer_status "), "{printed}");
    assert!(
        progress_lines(&printed).iter().any(|line| line.ends_with(", 2 h 59 min left")),
        "hours, not 179:59: {printed}"
    );
    assert!(printed.contains("done: Transferred 25.00 USD"), "{printed}");
    demo.stop();
}

// ------------------------------------------------------------------------------------------------
// `bankguard check`: the effective configuration with the origin of each setting, then one line per
// check (✓, ⚠, ✗ with its fix, – when an earlier failure leaves nothing to check), against a running
// dev stack as it is and as three broken configurations see it.
// ------------------------------------------------------------------------------------------------

/// What `bankguard check` printed and how it ended.
struct CheckRun {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl CheckRun {
    /// The check lines, without the settings above them.
    fn checks(&self) -> Vec<&str> {
        self.stdout.lines().skip_while(|line| *line != "checks:").skip(1).map(str::trim).collect()
    }

    fn line(&self, check: &str) -> &str {
        let prefix = |line: &&str| line.get(4..).is_some_and(|rest| rest.starts_with(&format!("{check}:")));
        self.checks().into_iter().find(prefix).unwrap_or_else(|| panic!("no {check} line:\n{}", self.stdout))
    }

    fn assert_never_shows(&self, secrets: &[&str]) {
        for secret in secrets {
            assert!(!self.stdout.contains(secret) && !self.stderr.contains(secret), "a secret was printed: {self}");
        }
    }
}

impl std::fmt::Display for CheckRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\n{}\n{}", self.code, self.stdout, self.stderr)
    }
}

impl RunningDev {
    /// `bankguard check` in this stack's directory, pointed at it, with `env` on top.
    fn check(&self, env: &[(&str, &str)]) -> CheckRun {
        let output = bankguard_in(self.dir.path())
            .env("BANKGUARD_MCP__ISSUER", self.url("authorization server"))
            .env("BANKGUARD_MCP__BANK_API_URL", self.url("bank API"))
            .envs(env.iter().copied())
            .arg("check")
            .output()
            .unwrap();
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
        CheckRun { code: output.status.code(), stdout: text(output.stdout), stderr: text(output.stderr) }
    }

    /// The MCP client's secret that `bankguard dev` wrote.
    fn mcp_client_secret(&self) -> String {
        let file = std::fs::read_to_string(self.dir.path().join("bankguard/mcp-client.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&file).unwrap()["client_secret"].as_str().unwrap().to_owned()
    }
}

#[test]
fn check_is_explained_in_the_help() {
    let help = String::from_utf8(bankguard().arg("--help").output().unwrap().stdout).unwrap();
    let line = help.lines().find(|l| l.trim_start().starts_with("check ")).unwrap_or_default();
    assert!(line.contains("Check the configuration before serving"), "{help}");
}

#[tokio::test]
async fn check_against_the_dev_stack_passes_every_check_and_shows_where_each_setting_came_from() {
    let dev = RunningDev::start().await;

    let run = dev.check(&[]);

    assert_eq!(run.code, Some(0), "{run}");
    let checks = run.checks();
    assert_eq!(checks.last(), Some(&"all checks passed"), "{run}");
    for check in [
        "discovery",
        "CIBA endpoint",
        "delivery mode",
        "payment_initiation",
        "client credentials",
        "audience",
        "bank API",
        "data directory",
    ] {
        assert!(run.line(check).starts_with("✓ "), "{run}");
    }
    assert_eq!(checks.iter().filter(|line| line.starts_with('✓')).count(), checks.len() - 1, "{run}");
    let issuer = dev.url("authorization server");
    assert!(run.stdout.contains(&format!("  mcp.issuer = \"{issuer}\"  (env BANKGUARD_MCP__ISSUER)\n")), "{run}");
    assert!(run.stdout.contains("  mcp.user = \"alice\"  (default)\n"), "{run}");
    assert!(run.stdout.contains("  mcp.client_secret = unset  (default)\n"), "{run}");
    assert!(run.line("client credentials").contains("bankguard/mcp-client.json (written by `bankguard dev`)"));
    assert!(run.line("bank API").contains("accepts the provider's token: 3 account(s) of alice"), "{run}");
    run.assert_never_shows(&[&dev.mcp_client_secret()]);

    // With sign-in, MCP clients need the authorization server's metadata too.
    let signing_in = dev.check(&[("BANKGUARD_MCP__AUTH", "oauth")]);
    assert_eq!(signing_in.code, Some(0), "{signing_in}");
    let resource = signing_in.line("protected resource");
    assert!(
        resource.starts_with("✓ protected resource: http://127.0.0.1:4102/.well-known/oauth-protected-resource/mcp")
    );
    let metadata = format!("✓ sign-in server: {issuer}/.well-known/oauth-authorization-server: authorization code");
    assert!(signing_in.line("sign-in server").starts_with(&metadata), "{signing_in}");
    dev.stop();
}

#[tokio::test]
async fn check_names_the_failing_check_and_its_fix_for_a_wrong_secret_a_wrong_audience_and_an_unreachable_issuer() {
    let dev = RunningDev::start().await;
    let secret = dev.mcp_client_secret();

    let wrong_secret = dev.check(&[("BANKGUARD_MCP__CLIENT_SECRET", "hunter2-wrong-secret-0123")]);
    assert_eq!(wrong_secret.code, Some(1), "{wrong_secret}");
    let line = wrong_secret.line("client credentials");
    assert!(line.starts_with("✗ client credentials: the provider refused the token request: invalid_client"), "{line}");
    assert!(
        line.contains("— fix: the provider does not accept this client id and secret")
            && line.contains("mcp.client_secret (from environment variable BANKGUARD_MCP__CLIENT_SECRET)"),
        "{line}"
    );
    assert!(wrong_secret.stderr.contains("error: 1 of 8 checks failed"), "{wrong_secret}");
    wrong_secret.assert_never_shows(&["hunter2", &secret]);

    let wrong_audience = dev.check(&[("BANKGUARD_MCP__AUDIENCE", "urn:bankguard:another-api")]);
    assert_eq!(wrong_audience.code, Some(1), "{wrong_audience}");
    let line = wrong_audience.line("audience");
    assert!(line.starts_with("✗ audience: the provider refused a token for \"urn:bankguard:another-api\""), "{line}");
    assert!(
        line.contains("— fix: set mcp.audience (from environment variable BANKGUARD_MCP__AUDIENCE) to the bank API's"),
        "{line}"
    );
    wrong_audience.assert_never_shows(&[&secret]);

    // A loopback port nothing listens on: refused at once, and the message names the URL, without the password
    // someone wrote into it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let started = std::time::Instant::now();
    let unreachable = dev.check(&[("BANKGUARD_MCP__ISSUER", &format!("http://operator:hunter2@{closed}"))]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(unreachable.code, Some(1), "{unreachable}");
    let line = unreachable.line("discovery");
    let url = format!("http://operator:(secret)@{closed}/.well-known/openid-configuration");
    assert!(
        line.starts_with(&format!("✗ discovery: the authorization server at {url} could not be reached")),
        "{line}"
    );
    assert!(line.contains("— fix: check mcp.issuer (from environment variable BANKGUARD_MCP__ISSUER)"), "{line}");
    assert!(unreachable.line("client credentials").starts_with("– client credentials: not checked"), "{unreachable}");
    assert!(
        unreachable.stdout.contains(&format!("  mcp.issuer = \"http://operator:(secret)@{closed}\"")),
        "{unreachable}"
    );
    unreachable.assert_never_shows(&["hunter2"]);
    unreachable.assert_never_shows(&[&secret]);
    dev.stop();
}
