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

#[test]
fn help_explains_each_subcommand() {
    let output = bankguard().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("dev") && help.contains("reference bank API"), "{help}");
    assert!(help.contains("--config"));
}

#[test]
fn a_bad_environment_value_stops_start_up_naming_the_key_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = bankguard()
        .current_dir(dir.path())
        .env("BANKGUARD_BANK_API__LISTEN", "not-an-address")
        .arg("dev")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("bank_api.listen") && stderr.contains("BANKGUARD_BANK_API__LISTEN"), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(!dir.path().join(".bankguard").exists(), "nothing is created before the configuration is valid");
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
        let output = bankguard().current_dir(dir.path()).arg("dev").output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{toml}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(key), "{toml}: {stderr}");
    }
    let output = bankguard().args(["--config", "/nonexistent/bankguard.toml", "dev"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not exist"));
}

#[tokio::test]
async fn dev_serves_the_bank_api_on_loopback_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bankguard()
        .current_dir(dir.path())
        .env("BANKGUARD_BANK_API__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .arg("dev")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.trim().strip_prefix("bank API").map(|rest| rest.trim().to_owned()))
    })
    .await
    .unwrap()
    .expect("dev prints the bank API URL");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let reply = reqwest_client().get(format!("{url}/users/alice/accounts")).send().await.unwrap();
    assert_eq!(reply.status(), 401);
    assert_eq!(reply.headers()["www-authenticate"], "Bearer realm=\"bankguard-bank\"");
    assert!(dir.path().join(".bankguard/bank.sqlite").exists());

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    let logs = String::from_utf8(output.stderr).unwrap();
    assert!(logs.contains("seeded the demo ledger") && logs.contains("shutting down"), "logs go to stderr: {logs}");
}

fn reqwest_client() -> reqwest::Client {
    bankguard::http_client::builder().build().unwrap()
}
