//! The audit trail on SQLite and (where a server is given) on PostgreSQL: what is written, that
//! nothing secret is, and that every kind of tampering is caught and named.

use std::sync::Arc;

use super::super::tests::{TestStore, accepted, alice, every_store, replicas, terms};
use super::super::{Admission, Backend, Claim, IntentStore, RunnerId, StoredIntent};
use crate::bank::TransferReceipt;
use crate::ciba::types::Secret;
use crate::clock::Millis;
use crate::mcp::lifecycle::audit::{AuditEntry, AuditKind, AuditTerms, Finding, GENESIS_HASH};
use crate::mcp::lifecycle::state::Event;
use crate::mcp::server_key::ServerKey;
use crate::money::MinorUnits;

/// The store with an audit key of its own (the key's directory lives as long as the store's test).
fn keyed(store: IntentStore) -> (IntentStore, Arc<ServerKey>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(ServerKey::load_or_generate(dir.path()).unwrap());
    (store.with_server_key(key.clone()), key, dir)
}

async fn created(store: &IntentStore) -> StoredIntent {
    let Claim::Created(intent) =
        store.create(&alice(), None, "f", &terms(), &RunnerId::new(), &Admission::pending_at_most(100)).await.unwrap()
    else {
        panic!("created")
    };
    intent
}

fn receipt(id: &str) -> TransferReceipt {
    serde_json::from_value(serde_json::json!({"id": id, "status": "completed", "from_account_id": "acc_alice_chk",
        "to_account_id": "acc_bob_chk", "amount": "25.00", "currency": "USD", "created_at": "2026-11-23T00:00:00Z",
        "from_account_balance_after": "75.00"}))
    .unwrap()
}

fn refused_terms(amount: i64) -> AuditTerms {
    AuditTerms {
        from_account_id: "acc_alice_chk".into(),
        to_account_id: "acc_mallory".into(),
        amount: MinorUnits(amount),
        currency: "USD".parse().unwrap(),
        memo: None,
    }
}

async fn verify(store: &IntentStore, key: &ServerKey) -> Result<crate::mcp::lifecycle::audit::ChainReport, Finding> {
    store.verify_audit(&key.trusted()).await.unwrap()
}

/// Runs `statements` as someone with write access to the database would: the append-only trigger
/// is disabled first.
async fn tamper(store: &IntentStore, statements: &[String]) {
    match store.backend().await.unwrap() {
        Backend::Sqlite(db) => {
            for sql in ["DROP TRIGGER audit_entries_no_update", "DROP TRIGGER audit_entries_no_delete"]
                .into_iter()
                .map(str::to_owned)
                .chain(statements.iter().cloned())
            {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&db.writer).await.unwrap();
            }
        }
        Backend::Postgres(shared) => {
            let mut tx = shared.pool.begin().await.unwrap();
            for sql in std::iter::once("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only".to_owned())
                .chain(statements.iter().cloned())
            {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
    }
}

/// Eight entries, the head signed at entry 6.
async fn eight_entries_signed_at_six(store: &IntentStore) {
    for amount in 1..=6 {
        store.record_policy_refusal(&alice(), &refused_terms(amount * 100), "payee_not_allowed", "no").await.unwrap();
    }
    assert_eq!(store.sign_audit_head().await.unwrap().map(|head| head.seq), Some(6));
    assert!(store.sign_audit_head().await.unwrap().is_none(), "nothing new to sign");
    for amount in 7..=8 {
        store.record_policy_refusal(&alice(), &refused_terms(amount * 100), "payee_not_allowed", "no").await.unwrap();
    }
}

#[tokio::test]
async fn a_run_of_transfers_leaves_one_entry_per_transition_with_the_terms_and_never_a_token() {
    for (kind, TestStore { store, _dir }) in every_store().await {
        eprintln!("on {kind}");
        let (store, key, _key_dir) = keyed(store);
        let token = |n: u32| Secret::new(format!("eyJ-the-approval-token-{n}"));
        let expires = Millis(i64::MAX / 2);

        // Approved and executed.
        let intent = created(&store).await;
        let pending = store.apply(&intent, accepted()).await.unwrap();
        let executing =
            store.apply(&pending, Event::Approved { token: token(1), token_expires_at: expires }).await.unwrap();
        store.apply(&executing, Event::BankExecuted { receipt: receipt("trf_executed") }).await.unwrap();
        // Denied, expired, cancelled.
        let pending = store.apply(&created(&store).await, accepted()).await.unwrap();
        store.apply(&pending, Event::Denied).await.unwrap();
        let pending = store.apply(&created(&store).await, accepted()).await.unwrap();
        store.apply(&pending, Event::Expired).await.unwrap();
        store.apply(&created(&store).await, Event::Cancel).await.unwrap();
        // Approved, the bank silent, reconciled by a lookup that finds the transfer.
        let pending = store.apply(&created(&store).await, accepted()).await.unwrap();
        let executing =
            store.apply(&pending, Event::Approved { token: token(2), token_expires_at: expires }).await.unwrap();
        let unknown = store
            .apply(&executing, Event::BankUnanswered { detail: "connection reset".into(), since: Millis(0) })
            .await
            .unwrap();
        assert!(matches!(&unknown.state, crate::mcp::lifecycle::IntentState::OutcomeUnknown { token: Some(_), .. }));
        store.apply(&unknown, Event::LookupFound { receipt: receipt("trf_reconciled") }).await.unwrap();
        // Refused by policy: no intent.
        store
            .record_policy_refusal(&alice(), &refused_terms(900_000), "daily_total", "5.00 USD left today")
            .await
            .unwrap();

        let entries = store.audit_entries(None, None).await.unwrap();
        let kinds: Vec<AuditKind> = entries.iter().map(|entry| entry.record.kind).collect();
        use AuditKind as K;
        #[rustfmt::skip]
        assert_eq!(kinds, [
            K::Created, K::ApprovalRequested, K::Approved, K::Executed,
            K::Created, K::ApprovalRequested, K::Denied,
            K::Created, K::ApprovalRequested, K::Expired,
            K::Created, K::Cancelled,
            K::Created, K::ApprovalRequested, K::Approved, K::BankUnanswered, K::Reconciled,
            K::PolicyRefused,
        ]);
        assert_eq!(entries.iter().map(|entry| entry.record.seq).collect::<Vec<_>>(), (1..=18).collect::<Vec<_>>());

        let executed = &entries[3].record;
        assert_eq!(executed.details.transfer_id.as_deref(), Some("trf_executed"));
        assert_eq!(executed.details.status.as_deref(), Some("completed"));
        assert_eq!((executed.amount_minor, executed.currency.as_str()), (2500, "USD"));
        assert_eq!(
            (executed.from_account_id.as_str(), executed.to_account_id.as_str()),
            ("acc_alice_chk", "acc_bob_chk")
        );
        assert_eq!(executed.intent_id.as_deref(), Some(intent.id()));
        assert_eq!(executed.reference.as_deref(), Some(intent.terms.reference.as_str()));
        assert_eq!(executed.binding_message.as_deref(), Some(intent.terms.binding_message().as_str()));
        assert_eq!((executed.owner.as_str(), executed.holder_subject.as_str()), ("alice", "alice"));
        let reconciled = &entries[16].record.details;
        assert_eq!(
            (reconciled.lookup.as_deref(), reconciled.transfer_id.as_deref()),
            (Some("found"), Some("trf_reconciled"))
        );
        let refusal = &entries[17].record;
        assert_eq!((refusal.details.rule.as_deref(), refusal.intent_id.as_deref()), (Some("daily_total"), None));
        assert_eq!(refusal.amount_minor, 900_000);

        // Nothing in the table holds a token, by any column.
        let everything: Vec<String> = with_pool!(store.backend().await.unwrap(), reader, |pool| {
            sqlx::query_scalar(
                "SELECT kind || owner || holder_subject || COALESCE(intent_id, '') || from_account_id || to_account_id
                     || currency || COALESCE(memo, '') || COALESCE(binding_message, '') || COALESCE(reference, '')
                     || details || prev_hash || hash FROM audit_entries",
            )
            .fetch_all(pool)
            .await
            .unwrap()
        });
        assert_eq!(everything.len(), 18);
        assert!(everything.iter().all(|row| !row.contains("approval-token")), "{everything:?}");
        // … while the intent itself did hold one while it was executing.
        assert!(serde_json::to_string(&executing.state).unwrap().contains("approval-token"));

        store.sign_audit_head().await.unwrap();
        let report = verify(&store, &key).await.unwrap();
        assert_eq!((report.entries, report.signed_heads, report.last_signed.map(|(seq, _)| seq)), (18, 1, Some(18)));

        // Export by holder and time.
        assert!(store.audit_entries(None, Some("bob")).await.unwrap().is_empty());
        assert_eq!(store.audit_entries(Some(Millis(i64::MAX)), None).await.unwrap().len(), 0);
    }
}

#[tokio::test]
async fn the_log_refuses_updates_and_deletes_from_bankguard_itself() {
    for (kind, TestStore { store, _dir }) in every_store().await {
        eprintln!("on {kind}");
        store.record_policy_refusal(&alice(), &refused_terms(100), "payee_not_allowed", "no").await.unwrap();
        let (update, delete) = with_pool!(store.backend().await.unwrap(), writer, |pool| {
            (
                sqlx::query("UPDATE audit_entries SET amount_minor = 1").execute(pool).await.map(|_| ()),
                sqlx::query("DELETE FROM audit_entries").execute(pool).await.map(|_| ()),
            )
        });
        for refused in [update.unwrap_err(), delete.unwrap_err()] {
            assert!(refused.to_string().contains("append-only"), "{refused}");
        }
    }
}

#[tokio::test]
async fn changing_an_amount_is_detected_and_names_the_entry() {
    for (kind, TestStore { store, _dir }) in every_store().await {
        eprintln!("on {kind}");
        let (store, key, _key_dir) = keyed(store);
        eight_entries_signed_at_six(&store).await;
        assert_eq!(verify(&store, &key).await.unwrap().entries, 8);
        tamper(&store, &["UPDATE audit_entries SET amount_minor = 1 WHERE seq = 3".into()]).await;
        let finding = verify(&store, &key).await.unwrap_err();
        assert_eq!(finding.seq, 3, "{finding}");
        assert!(finding.problem.contains("do not match its hash"), "{finding}");
    }
}

#[tokio::test]
async fn deleting_an_entry_is_detected_and_names_the_missing_one() {
    for (kind, TestStore { store, _dir }) in every_store().await {
        eprintln!("on {kind}");
        let (store, key, _key_dir) = keyed(store);
        eight_entries_signed_at_six(&store).await;
        tamper(&store, &["DELETE FROM audit_entries WHERE seq = 4".into()]).await;
        let finding = verify(&store, &key).await.unwrap_err();
        assert_eq!(finding.seq, 4, "{finding}");
        assert!(finding.problem.contains("missing"), "{finding}");
    }
}

#[tokio::test]
async fn truncating_the_tail_after_a_signed_head_is_detected() {
    for (kind, TestStore { store, _dir }) in every_store().await {
        eprintln!("on {kind}");
        let (store, key, _key_dir) = keyed(store);
        eight_entries_signed_at_six(&store).await;
        tamper(&store, &["DELETE FROM audit_entries WHERE seq >= 5".into()]).await;
        let finding = verify(&store, &key).await.unwrap_err();
        assert_eq!(finding.seq, 5, "{finding}");
        assert!(
            finding.problem.contains("the log ends at entry 4") && finding.problem.contains("up to 6"),
            "{finding}"
        );
    }
}

#[tokio::test]
async fn a_chain_rewritten_with_fresh_hashes_contradicts_its_signed_head() {
    for (kind, TestStore { store, _dir }) in every_store().await {
        eprintln!("on {kind}");
        let (store, key, _key_dir) = keyed(store);
        eight_entries_signed_at_six(&store).await;
        // Change entry 2's amount and rehash it and every entry after it, as someone who knows the
        // encoding (but not the audit key) would.
        let mut prev_hash = store.audit_entries(None, None).await.unwrap()[0].hash.clone();
        let mut statements = Vec::new();
        for AuditEntry { mut record, .. } in store.audit_entries(None, None).await.unwrap().into_iter().skip(1) {
            if record.seq == 2 {
                record.amount_minor = 1;
            }
            record.prev_hash = prev_hash;
            let hash = record.hash();
            statements.push(format!(
                "UPDATE audit_entries SET amount_minor = {}, prev_hash = '{}', hash = '{hash}' WHERE seq = {}",
                record.amount_minor, record.prev_hash, record.seq
            ));
            prev_hash = hash;
        }
        tamper(&store, &statements).await;
        let finding = verify(&store, &key).await.unwrap_err();
        assert_eq!(finding.seq, 1, "the head at 6 vouches for entries 1..=6 only as a whole: {finding}");
        assert!(finding.problem.contains("rewritten"), "{finding}");
        // The chain itself is consistent: only the signature gives it away.
        assert_ne!(prev_hash, GENESIS_HASH);
    }
}

#[tokio::test]
async fn writers_appending_at_once_make_one_linear_chain() {
    // Several tasks on one store (SQLite: one writer connection), and on PostgreSQL three replicas.
    /// Stores writing to one database, and what must live as long as they do.
    type Writers = (&'static str, Vec<Arc<IntentStore>>, Box<dyn std::any::Any>);
    let mut groups: Vec<Writers> = Vec::new();
    for (kind, TestStore { store, _dir }) in every_store().await {
        groups.push((kind, vec![Arc::new(store)], Box::new(_dir)));
    }
    if let Some((database, replicas)) = replicas(3).await {
        groups.push(("three postgres replicas", replicas, Box::new(database)));
    }
    for (kind, stores, _keep) in groups {
        eprintln!("on {kind}");
        let writes = (0..30).map(|n| {
            let store = stores[n % stores.len()].clone();
            async move {
                if n % 2 == 0 {
                    store
                        .record_policy_refusal(&alice(), &refused_terms(100), "payee_not_allowed", "no")
                        .await
                        .unwrap();
                } else {
                    let intent = created(&store).await;
                    store.apply(&intent, Event::Cancel).await.unwrap();
                }
            }
        });
        futures::future::join_all(writes).await;
        let entries = stores[0].audit_entries(None, None).await.unwrap();
        assert_eq!(entries.iter().map(|entry| entry.record.seq).collect::<Vec<_>>(), (1..=45).collect::<Vec<_>>());
        let dir = tempfile::tempdir().unwrap();
        let key = ServerKey::load_or_generate(dir.path()).unwrap();
        assert_eq!(verify(&stores[0], &key).await.unwrap().entries, 45, "one linear chain");
    }
}

#[tokio::test]
async fn every_completion_seals_one_receipt_naming_its_audit_entry_and_the_approval_that_was_checked() {
    use crate::mcp::consent::approval::{Witnessed, token_digest};
    use crate::mcp::consent::evidence::{self, EvidenceError};
    use crate::mcp::consent::receipt::ReceiptClaims;
    for (kind, TestStore { store, _dir }) in every_store().await {
        eprintln!("on {kind}");
        let (store, key, _key_dir) = keyed(store);
        store.register_server_key().await.unwrap();
        let expires = Millis(i64::MAX / 2);
        let token = Secret::new("eyJ.checked.token");

        // Approved with a token that was checked, then executed.
        let pending = store.apply(&created(&store).await, accepted()).await.unwrap();
        let witnessed = Witnessed {
            issuer: "https://provider.example/".into(),
            audience: Some("https://bank.example/api".into()),
            token: token.clone(),
            jwks: Some(r#"{"keys":[]}"#.into()),
            jti: Some("jti-1".into()),
            problem: None,
        };
        store.record_witnessed(pending.id(), &witnessed).await.unwrap();
        let executing =
            store.apply(&pending, Event::Approved { token: token.clone(), token_expires_at: expires }).await.unwrap();
        assert!(executing.server_receipt.is_none(), "no receipt before the money moved");
        let completed =
            store.apply(&executing, Event::BankExecuted { receipt: receipt("trf_executed") }).await.unwrap();
        let claims = ReceiptClaims::verify(completed.server_receipt.as_deref().unwrap(), &key.trusted()).unwrap();
        let executed = store.audit_entries(None, None).await.unwrap().pop().unwrap();
        assert_eq!((claims.audit.seq, claims.audit.hash.as_str()), (executed.record.seq, executed.hash.as_str()));
        assert_eq!(executed.record.kind, AuditKind::Executed);
        assert_eq!((claims.intent_id.as_str(), claims.transfer.id.as_str()), (completed.id(), "trf_executed"));
        let approval = claims.approval.unwrap();
        assert_eq!((approval.iss.as_str(), approval.jti.as_deref()), ("https://provider.example/", Some("jti-1")));
        assert_eq!(approval.token_sha256, token_digest(token.expose()));
        assert_eq!(store.reload(completed.id()).await.unwrap().server_receipt, completed.server_receipt, "stored");
        let record = store.consent_record(completed.id()).await.unwrap().unwrap();
        assert_eq!(record.consent.unwrap().provider_token, token.expose());
        assert_eq!(record.audit.len(), 4);
        assert_eq!(record.signer_jwk.unwrap(), serde_json::to_string(key.public_jwk()).unwrap());

        // Approved with a token that was never checked, the bank silent, found by a lookup: the
        // receipt is sealed with the reconciliation and names no attestation.
        let pending = store.apply(&created(&store).await, accepted()).await.unwrap();
        let executing =
            store.apply(&pending, Event::Approved { token: token.clone(), token_expires_at: expires }).await.unwrap();
        let unknown = store
            .apply(&executing, Event::BankUnanswered { detail: "connection reset".into(), since: Millis(0) })
            .await
            .unwrap();
        assert!(unknown.server_receipt.is_none());
        let found = store.apply(&unknown, Event::LookupFound { receipt: receipt("trf_found") }).await.unwrap();
        let claims = ReceiptClaims::verify(found.server_receipt.as_deref().unwrap(), &key.trusted()).unwrap();
        assert_eq!(claims.approval, None, "no checked token, no attestation named");
        assert_eq!(claims.transfer.id, "trf_found");
        let reconciled = store.audit_entries(None, None).await.unwrap().pop().unwrap();
        assert_eq!((reconciled.record.kind, reconciled.hash), (AuditKind::Reconciled, claims.audit.hash));
        // Neither it nor an intent still pending makes an evidence pack.
        let out = tempfile::tempdir().unwrap();
        let unrecorded = store.consent_record(found.id()).await.unwrap().unwrap();
        let refused = evidence::write(&unrecorded, Some(&key), &out.path().join("a")).unwrap_err();
        assert!(matches!(refused, EvidenceError::NotRecorded(_)), "{refused}");
        let waiting = store.apply(&created(&store).await, accepted()).await.unwrap();
        let waiting = store.consent_record(waiting.id()).await.unwrap().unwrap();
        let refused = evidence::write(&waiting, Some(&key), &out.path().join("b")).unwrap_err();
        assert!(refused.to_string().contains("is pending: only a completed transfer"), "{refused}");
        assert!(store.consent_record("int_nothing").await.unwrap().is_none());
    }
}
