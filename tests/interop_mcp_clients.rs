//! Independent MCP clients against bankguard: the official Python SDK (`mcp`), the official TypeScript SDK
//! (`@modelcontextprotocol/sdk`) and the MCP Inspector CLI, each over stdio (the built binary, as a desktop client
//! starts it) and over Streamable HTTP, against the real dev stack. The holder decides on their device while the
//! client waits; the bank's balances say whether money moved.
//!
//! The peers are installed by `scripts/install-peers.sh` (Node 22 and the npm packages at the exact versions of
//! tests/interop/mcp-clients/package-lock.json, the Python SDK pinned in tests/interop/python/requirements.txt).
//! A missing peer fails the test; it is never skipped.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use bankguard::config::McpAuth;
use support::mcp::McpStack;
use support::peers::{INSTALL_HINT, OAuthSdk, Run, node, peer_file, python, read_json, repo, run};

/// How long the holder looks at their phone before deciding.
const DECIDE_AFTER: Duration = Duration::from_millis(300);
/// The installed version of an npm package of tests/interop/mcp-clients, which must be the one package.json pins.
fn npm_package(name: &str) -> (PathBuf, Value) {
    let pinned = read_json(&repo("tests/interop/mcp-clients/package.json"))["dependencies"][name].clone();
    let dir = repo(&format!("tests/interop/mcp-clients/node_modules/{name}"));
    let manifest = peer_file(&format!("tests/interop/mcp-clients/node_modules/{name}/package.json"), name);
    let installed = read_json(&manifest);
    assert_eq!(installed["version"], pinned, "{name} is not the version package.json pins: {INSTALL_HINT}");
    (dir, installed)
}

/// The SDKs whose client scripts tell the same story as JSON lines.
#[derive(Clone, Copy, Debug)]
enum Sdk {
    Python,
    TypeScript,
}

impl Sdk {
    /// The interpreter and the script it runs.
    fn command(self) -> (PathBuf, PathBuf) {
        match self {
            Sdk::Python => (python(), repo("tests/interop/python/mcp_client.py")),
            Sdk::TypeScript => {
                npm_package("@modelcontextprotocol/sdk");
                (node(), repo("tests/interop/mcp-clients/client.mjs"))
            }
        }
    }

    /// The SDK's package name and the exact version the repo pins.
    fn pinned(self) -> (&'static str, String) {
        match self {
            Sdk::Python => {
                let requirements = std::fs::read_to_string(repo("tests/interop/python/requirements.txt")).unwrap();
                let version = requirements.lines().find_map(|line| line.trim().strip_prefix("mcp==")).unwrap();
                ("mcp", version.to_owned())
            }
            Sdk::TypeScript => {
                let manifest = read_json(&repo("tests/interop/mcp-clients/package.json"));
                let version = manifest["dependencies"]["@modelcontextprotocol/sdk"].as_str().unwrap().to_owned();
                ("@modelcontextprotocol/sdk", version)
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    /// The client spawns `bankguard serve` (the built binary) and speaks over its stdin and stdout.
    Stdio,
    /// The client speaks to the stack's MCP endpoint.
    StreamableHttp,
}

/// Runs `sdk`'s client script over `transport` with `scenarios` in one session, while the holder makes
/// `decisions` on their device, one per transfer, in order.
async fn run_sdk_client(
    stack: &McpStack,
    sdk: Sdk,
    transport: Transport,
    scenarios: &[&str],
    decisions: &[&'static str],
) -> Run {
    let (interpreter, script) = sdk.command();
    let mut args = vec![script.display().to_string()];
    let data_dir = stack.dev.data_dir.path();
    match transport {
        Transport::StreamableHttp => args.extend(["--transport".into(), "http".into(), "--url".into(), stack.url()]),
        Transport::Stdio => {
            args.extend(["--transport".into(), "stdio".into(), "--cwd".into(), data_dir.display().to_string()]);
            // What `McpStack::stdio_client` gives `bankguard serve`; the SDKs pass the server nothing else but
            // their short list of safe variables (PATH, HOME, ...).
            let env = [
                ("BANKGUARD_DATA_DIR", data_dir.display().to_string()),
                ("BANKGUARD_MCP__ISSUER", stack.dev.issuer().to_owned()),
                ("BANKGUARD_MCP__BANK_API_URL", stack.dev.bank_api().to_owned()),
                ("BANKGUARD_MCP__PROGRESS_INTERVAL_SECONDS", stack.config.mcp.progress_interval_seconds.to_string()),
            ];
            for (key, value) in env {
                args.extend(["--env".into(), format!("{key}={value}")]);
            }
        }
    }
    for scenario in scenarios {
        args.extend(["--scenario".into(), scenario.to_string()]);
    }
    if let Transport::Stdio = transport {
        args.extend(["--".into(), env!("CARGO_BIN_EXE_bankguard").into(), "serve".into()]);
    }

    let mut client = std::pin::pin!(run(&interpreter, &args, None));
    let holder = std::pin::pin!(async {
        for decision in decisions {
            stack.decide_next(decision, DECIDE_AFTER).await.unwrap();
        }
    });
    // Normally the holder has decided everything before the client ends; a client that ends first has failed,
    // and its output says why.
    let run = tokio::select! {
        run = &mut client => run,
        () = holder => client.await,
    };

    let (package, version) = sdk.pinned();
    let sdk_seen = &run.one("initialized")["sdk"];
    assert_eq!(
        (sdk_seen["name"].as_str(), sdk_seen["version"].as_str()),
        (Some(package), Some(version.as_str())),
        "the client ran another SDK version than the repo pins: {INSTALL_HINT}\n{}",
        run.transcript
    );
    run
}

fn alice_and_bob(balances: &BTreeMap<String, String>) -> (&str, &str) {
    (balances["acc_alice_chk"].as_str(), balances["acc_bob_chk"].as_str())
}

/// One SDK over one transport: initialize, tools/list, list_accounts, a transfer the holder approves, then one the
/// holder denies, all in one session; then what the bank says.
async fn an_sdk_client_moves_money_only_with_the_holders_approval(sdk: Sdk, transport: Transport) {
    let stack = McpStack::start().await;
    let before = stack.dev.balances().await;
    assert_eq!(alice_and_bob(&before), ("2500.00", "1200.00"));

    let run = run_sdk_client(&stack, sdk, transport, &["approved", "denied"], &["approve", "deny"]).await;

    let transcript = &run.transcript;
    let initialized = run.one("initialized");
    assert_eq!(initialized["server"]["name"], "bankguard", "{transcript}");
    let tools = run.one("tools")["names"].as_array().unwrap().clone();
    assert_eq!(tools.len(), 3, "{transcript}");
    for tool in ["list_accounts", "transfer_funds", "get_transfer_status"] {
        assert!(tools.contains(&tool.into()), "{tool}: {transcript}");
    }

    let accounts = run.one("list_accounts");
    assert_eq!(accounts["is_error"], false, "{transcript}");
    let listed: Vec<_> = accounts["structured"]["accounts"].as_array().unwrap().iter().collect();
    let checking = listed.iter().find(|a| a["id"] == "acc_alice_chk").expect("alice's checking account is listed");
    assert_eq!(checking["balance"], "2500.00", "{transcript}");
    assert_eq!(checking["currency"], "USD", "{transcript}");
    assert!(accounts["text"].as_str().unwrap().contains("CHK-4821"), "{transcript}");

    for scenario in ["approved", "denied"] {
        let messages = run.progress_messages(scenario);
        assert!(
            messages.iter().any(|m| m.starts_with("Approve the transfer on your device — Reference ")),
            "the {scenario} transfer's progress callback received the approval prompt: {messages:?}\n{transcript}"
        );
    }
    let approved = run.transfer("approved");
    assert_eq!(approved["is_error"], false, "{transcript}");
    assert!(
        approved["text"].as_str().unwrap().starts_with("Transferred 25.00 USD from CHK-4821 to CHK-3307"),
        "{transcript}"
    );
    let denied = run.transfer("denied");
    assert_eq!(denied["is_error"], true, "{transcript}");
    let denied_text = denied["text"].as_str().unwrap();
    assert!(denied_text.contains("declined the transfer on their device"), "{transcript}");
    assert!(denied_text.contains("No money moved"), "{transcript}");
    assert_eq!(run.all("done").len(), 1, "the client closed the session cleanly\n{transcript}");

    // Exactly the approved 25.00 moved; the denied 40.00 did not.
    let after = stack.dev.balances().await;
    assert_eq!(alice_and_bob(&after), ("2475.00", "1225.00"), "{transcript}");
    let untouched = |b: &BTreeMap<String, String>| {
        b.iter()
            .filter(|(id, _)| !["acc_alice_chk", "acc_bob_chk"].contains(&id.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(untouched(&after), untouched(&before), "no other account changed");
}

#[tokio::test]
async fn the_python_sdk_over_stdio_moves_money_only_with_the_holders_approval() {
    an_sdk_client_moves_money_only_with_the_holders_approval(Sdk::Python, Transport::Stdio).await;
}

#[tokio::test]
async fn the_python_sdk_over_streamable_http_moves_money_only_with_the_holders_approval() {
    an_sdk_client_moves_money_only_with_the_holders_approval(Sdk::Python, Transport::StreamableHttp).await;
}

#[tokio::test]
async fn the_typescript_sdk_over_stdio_moves_money_only_with_the_holders_approval() {
    an_sdk_client_moves_money_only_with_the_holders_approval(Sdk::TypeScript, Transport::Stdio).await;
}

#[tokio::test]
async fn the_typescript_sdk_over_streamable_http_moves_money_only_with_the_holders_approval() {
    an_sdk_client_moves_money_only_with_the_holders_approval(Sdk::TypeScript, Transport::StreamableHttp).await;
}

/// `mcp-inspector --cli URL --transport http --method METHOD ... --format json` against the stack, with a
/// throwaway HOME (the Inspector keeps a catalog and storage under ~/.mcp-inspector). Returns its JSON result.
async fn inspector_cli(stack: &McpStack, method_args: &[&str]) -> Value {
    let (dir, manifest) = npm_package("@modelcontextprotocol/inspector");
    // The launcher the package's `mcp-inspector` bin points at; `--cli` runs the CLI client in it.
    let launcher = dir.join(manifest["bin"]["mcp-inspector"].as_str().expect("the Inspector has a mcp-inspector bin"));
    let home = tempfile::tempdir().unwrap();
    let mut args =
        vec![launcher.display().to_string(), "--cli".into(), stack.url(), "--transport".into(), "http".into()];
    args.extend(method_args.iter().map(|a| a.to_string()));
    args.extend(["--format".into(), "json".into()]);
    let run = run(&node(), &args, Some(home.path())).await;
    let [output] = run.events.as_slice() else { panic!("one JSON object on stdout\n{}", run.transcript) };
    assert!(output["result"].is_object(), "{}", run.transcript);
    output["result"].clone()
}

#[tokio::test]
async fn the_mcp_inspector_cli_lists_every_tool_over_streamable_http() {
    let stack = McpStack::start().await;

    let result = inspector_cli(&stack, &["--method", "tools/list"]).await;

    let names: Vec<_> = result["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["get_transfer_status", "list_accounts", "transfer_funds"], "{result}");
}

#[tokio::test]
async fn the_mcp_inspector_cli_calls_list_accounts_over_streamable_http() {
    let stack = McpStack::start().await;

    let result = inspector_cli(&stack, &["--method", "tools/call", "--tool-name", "list_accounts"]).await;

    assert_eq!(result["isError"], false, "{result}");
    let accounts = result["structuredContent"]["accounts"].as_array().unwrap();
    let ids: Vec<_> = accounts.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"acc_alice_chk") && ids.contains(&"acc_alice_sav"), "alice's accounts: {result}");
    assert!(!ids.iter().any(|id| id.starts_with("acc_bob")), "only alice's accounts: {result}");
    let checking = accounts.iter().find(|a| a["id"] == "acc_alice_chk").unwrap();
    assert_eq!((checking["balance"].as_str(), checking["masked_number"].as_str()), (Some("2500.00"), Some("CHK-4821")));
}

/// The client-timeout problem at a tenth of its size: the Python SDK gives up on any call after 6 s (for the
/// 60 s of most clients), the server answers "pending" after 4 s (for 45 s), and the holder approves after
/// 10 s (for 70 s). The client never times out, and `get_transfer_status` reports the completed transfer.
#[tokio::test]
async fn the_python_sdk_with_a_short_read_timeout_follows_a_late_approval_to_completion() {
    let stack = McpStack::start_with(|config, _| {
        config.mcp.max_wait_seconds = 4;
        config.mcp.progress_interval_seconds = 2;
    })
    .await;
    let before = stack.dev.balances().await;
    let (interpreter, script) = Sdk::Python.command();
    let args: Vec<String> = [
        script.display().to_string(),
        "--transport".into(),
        "http".into(),
        "--url".into(),
        stack.url(),
        "--scenario".into(),
        "late".into(),
        "--read-timeout".into(),
        "6".into(),
        "--status-wait".into(),
        "4".into(),
    ]
    .into();

    let holder = stack.decide_next("approve", Duration::from_secs(10));
    let run = run(&interpreter, &args, None).await;
    holder.await.unwrap();

    let transcript = &run.transcript;
    let pending = run.transfer("late");
    assert_eq!(
        (pending["is_error"].as_bool(), pending["status"].as_str()),
        (Some(false), Some("pending")),
        "{transcript}"
    );
    let statuses: Vec<&str> = run.all("status").iter().filter_map(|s| s["status"].as_str()).collect();
    assert_eq!(statuses.last(), Some(&"completed"), "{transcript}");
    assert!(statuses[..statuses.len() - 1].iter().all(|s| *s == "pending"), "{transcript}");
    assert!(run.one("done").is_object(), "the client never timed out: {transcript}");
    let after = stack.dev.balances().await;
    assert_eq!((before["acc_alice_chk"].as_str(), after["acc_alice_chk"].as_str()), ("2500.00", "2470.00"));
    assert_eq!(after["acc_bob_chk"], "1230.00");
}

/// With `mcp.auth = "oauth"` against the embedded provider (`bankguard dev`'s authorization server), each official
/// SDK's OAuth client signs in through the whole flow: the 401, the resource metadata, the provider's metadata,
/// registration, the dev sign-in page and the consent page (filled by a headless person), code + PKCE, the token,
/// then a transfer approved on the holder's device, and a refresh.
#[tokio::test]
async fn both_sdks_sign_in_at_the_embedded_provider_and_act_for_that_holder() {
    let stack = McpStack::start_with(|config, address| {
        config.mcp.auth = McpAuth::Oauth;
        config.mcp.listen = address;
    })
    .await;
    for sdk in OAuthSdk::BOTH {
        let before = stack.dev.balances().await;
        let holder = stack.decide_next("approve", DECIDE_AFTER);

        let alice = sdk.sign_in_and_use(&stack.url(), "alice", true).await;

        let binding_message = holder.await.unwrap();
        assert!(binding_message.starts_with("Transfer 12.00 USD"), "{sdk:?}: {binding_message}");
        assert!(alice.one("signed_in")["pages"].as_u64().unwrap() >= 1, "{sdk:?}\n{}", alice.transcript);
        for listed in alice.all("list_accounts") {
            let ids = serde_json::json!(["acc_alice_chk", "acc_alice_eur", "acc_alice_sav"]);
            assert_eq!(listed["ids"], ids, "{sdk:?}\n{}", alice.transcript);
        }
        assert_eq!(alice.one("transfer")["status"], "completed", "{sdk:?}\n{}", alice.transcript);
        let after = stack.dev.balances().await;
        assert_ne!(after["acc_alice_chk"], before["acc_alice_chk"], "{sdk:?}: the money moved");
        let rotated = serde_json::json!({"event": "refreshed", "access_changed": true, "refresh_changed": true,
                                         "had_refresh_token": true});
        assert_eq!(alice.one("refreshed"), &rotated, "{sdk:?}\n{}", alice.transcript);

        let bob = sdk.sign_in_and_use(&stack.url(), "bob", false).await;
        let ids = serde_json::json!(["acc_bob_chk", "acc_bob_sav"]);
        assert_eq!(bob.all("list_accounts")[0]["ids"], ids, "{sdk:?}\n{}", bob.transcript);
    }
}
