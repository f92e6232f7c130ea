//! Proof of consent: a completed transfer's result carries the server's signed receipt, which the
//! key the server publishes verifies; `bankguard evidence` writes a pack that `bankguard evidence
//! verify` checks from the pack alone, and that fails once its terms are altered or its token is
//! swapped for another approval's.

use std::path::Path;
use std::time::Duration;

use bankguard::mcp::consent::receipt::ReceiptClaims;
use bankguard::mcp::server_key::{JWKS_PATH, TrustedKeys};
use serde_json::{Value, json};

use crate::support::mcp::{Client, McpStack, call, text};

const TRANSFER: &str =
    r#"{"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": "25.00", "memo": "Rent share"}"#;

/// A transfer of [`TRANSFER`] the holder approves; its structured result.
async fn approved_transfer(stack: &McpStack, client: &Client) -> Value {
    let holder = stack.decide_next("approve", Duration::from_millis(200));
    let result = call(client, "transfer_funds", serde_json::from_str(TRANSFER).unwrap()).await;
    holder.await.unwrap();
    let output = result.structured_content.clone().unwrap_or_default();
    assert_eq!(output["status"], "completed", "{}", text(&result));
    output
}

/// `bankguard <args>` on this stack's data directory and store; (success, stdout, stderr).
async fn bankguard(stack: &McpStack, args: &[&str], data_dir: &Path) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_bankguard"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("BANKGUARD_")) {
        command.env_remove(key);
    }
    command.args(args).current_dir(data_dir).env("BANKGUARD_DATA_DIR", data_dir).env("RUST_LOG", "warn");
    stack.dev.store.apply_to(&mut command);
    let output = command.output().await.unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    (output.status.success(), stdout, stderr)
}

#[tokio::test]
async fn a_completed_transfer_carries_a_receipt_that_the_published_key_verifies() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;
    let output = approved_transfer(&stack, &client).await;
    let jws = output["receipt"].as_str().expect("a completed result carries a receipt");

    let published = reqwest::get(format!("{}{JWKS_PATH}", stack.url().trim_end_matches("/mcp"))).await.unwrap();
    assert_eq!(published.headers()["content-type"], "application/jwk-set+json");
    let published = published.text().await.unwrap();
    let trusted = TrustedKeys::from_jwks(&published, "the published keys").unwrap();
    let receipt = ReceiptClaims::verify(jws, &trusted).unwrap();
    assert_eq!(receipt.intent_id, output["intent_id"].as_str().unwrap());
    assert_eq!(
        (receipt.terms.amount.as_str(), receipt.terms.currency.as_str(), receipt.terms.memo.as_deref()),
        ("25.00", "USD", Some("Rent share"))
    );
    assert_eq!(receipt.terms.reference, output["reference"].as_str().unwrap());
    assert_eq!(receipt.transfer.id, output["transfer"]["transfer_id"].as_str().unwrap());
    assert_eq!(receipt.holder.bank_user, "alice");
    let approval = receipt.approval.expect("the provider's token attested the approval");
    assert_eq!(approval.iss, stack.dev.issuer());
    assert!(approval.jti.is_some_and(|jti| !jti.is_empty()));

    // The status tool shows the same receipt; `bankguard keys` prints the published key set.
    let status = call(&client, "get_transfer_status", json!({"intent_id": receipt.intent_id})).await;
    assert_eq!(status.structured_content.unwrap()["receipt"].as_str(), Some(jws));
    let (ok, printed, stderr) = bankguard(&stack, &["keys"], stack.dev.data_dir.path()).await;
    assert!(ok, "{stderr}");
    assert_eq!(serde_json::from_str::<Value>(&printed).unwrap(), serde_json::from_str::<Value>(&published).unwrap());
    assert!(!printed.contains("\"d\""), "no private part is printed");
}

#[tokio::test]
async fn an_evidence_pack_verifies_offline_and_fails_once_its_terms_or_its_token_are_changed() {
    let stack = McpStack::start().await;
    let (client, _) = stack.http_client().await;
    let first = approved_transfer(&stack, &client).await;
    // The same terms approved again: only the intent (and so the token) differs.
    let second = approved_transfer(&stack, &client).await;
    let packs = tempfile::tempdir().unwrap();
    let data_dir = stack.dev.data_dir.path();
    for (output, name) in [(&first, "first"), (&second, "second")] {
        let out = packs.path().join(name);
        let intent = output["intent_id"].as_str().unwrap();
        let (ok, _, stderr) = bankguard(&stack, &["evidence", intent, "--out", out.to_str().unwrap()], data_dir).await;
        assert!(ok, "{stderr}");
    }
    let (ok, _, stderr) = bankguard(&stack, &["evidence", "int_unknown", "--out", "elsewhere"], data_dir).await;
    assert!(!ok && stderr.contains("no transfer intent int_unknown"), "{stderr}");
    // From here on, nothing but the packs: every server is stopped.
    drop(client);
    stack.server.shutdown().await.unwrap();
    stack.dev.stack.shutdown().await;

    let first_pack = packs.path().join("first");
    let token = std::fs::read_to_string(first_pack.join("provider-token.jwt")).unwrap();
    assert_eq!(token.split('.').count(), 3, "the provider-signed JWT itself");
    let audit = std::fs::read_to_string(first_pack.join("audit.jsonl")).unwrap();
    let kinds: Vec<String> = audit
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["kind"].as_str().unwrap().into())
        .collect();
    assert_eq!(kinds, ["created", "approval_requested", "approved", "executed"]);
    // Who acted: the client, by the name it declared at initialize (nothing authenticates it here).
    for line in audit.lines() {
        assert_eq!(serde_json::from_str::<Value>(line).unwrap()["client"], "bankguard-tests (declared)", "{line}");
    }

    // Checked from the pack alone, in an empty directory with no configuration.
    let nowhere = tempfile::tempdir().unwrap();
    let verify = |dir: &Path| {
        let dir = dir.to_owned();
        let nowhere = nowhere.path().to_owned();
        async move {
            let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_bankguard"));
            for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("BANKGUARD_")) {
                command.env_remove(key);
            }
            let output = command
                .args(["evidence", "verify"])
                .arg(&dir)
                .current_dir(&nowhere)
                .env("BANKGUARD_DATA_DIR", nowhere.join("no-data"))
                .output()
                .await
                .unwrap();
            let said = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
            (output.status.success(), said)
        }
    };
    let (ok, said) = verify(&first_pack).await;
    assert!(ok, "{said}");
    assert!(said.contains("attested the holder's approval of exactly these terms"), "{said}");
    assert!(said.contains(first["transfer"]["transfer_id"].as_str().unwrap()), "{said}");

    // Altered terms: the amount in the manifest.
    let altered = copy_pack(&first_pack, &packs.path().join("altered"));
    edit_json(&altered.join("manifest.json"), |manifest| manifest["terms"]["amount"] = json!("2500.00"));
    let (ok, said) = verify(&altered).await;
    assert!(!ok && said.contains("does not verify") && said.contains("the approved amount differs"), "{said}");

    // Altered terms in the bank's receipt and the audit trail are caught too.
    let altered_bank = copy_pack(&first_pack, &packs.path().join("altered-bank"));
    edit_json(&altered_bank.join("bank-receipt.json"), |receipt| receipt["to_account_id"] = json!("acc_mallory"));
    let (ok, said) = verify(&altered_bank).await;
    assert!(!ok && said.contains("bank-receipt.json"), "{said}");
    let altered_audit = copy_pack(&first_pack, &packs.path().join("altered-audit"));
    let audit_path = altered_audit.join("audit.jsonl");
    std::fs::write(&audit_path, audit.replacen("\"amount_minor\":2500", "\"amount_minor\":250000", 1)).unwrap();
    let (ok, said) = verify(&altered_audit).await;
    assert!(!ok && said.contains("audit.jsonl") && said.contains("does not match its hash"), "{said}");

    // The token swapped for the second approval's (same terms, another intent).
    let swapped = copy_pack(&first_pack, &packs.path().join("swapped"));
    std::fs::copy(packs.path().join("second/provider-token.jwt"), swapped.join("provider-token.jwt")).unwrap();
    let (ok, said) = verify(&swapped).await;
    assert!(!ok && said.contains("the approval belongs to another transfer intent"), "{said}");

    // The server's receipt swapped for the second transfer's.
    let other_receipt = copy_pack(&first_pack, &packs.path().join("other-receipt"));
    std::fs::copy(packs.path().join("second/server-receipt.jws"), other_receipt.join("server-receipt.jws")).unwrap();
    let (ok, said) = verify(&other_receipt).await;
    assert!(!ok && said.contains("server-receipt.jws: it is for another transfer intent"), "{said}");
}

fn copy_pack(from: &Path, to: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to.to_owned()
}

fn edit_json(path: &Path, change: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    change(&mut value);
    std::fs::write(path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}
