//! Transfer intents: the record of every transfer the server asked a holder to approve, in SQLite in
//! the data directory (`mcp.sqlite`), and a live signal for each one that changes in this process.
//!
//! An intent outlives the tool call that created it: the call returns a pending result when the
//! client's patience runs out, the wait goes on in the background, and `get_transfer_status` reads
//! the outcome later, also after a restart. Status changes are compare-and-set (`WHERE status = …`),
//! so an intent completes at most once. Intents belong to the holder they were created for.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{OnceCell, watch};

use super::intent::{AccountLabel, TransferIntent};
use crate::bank::TransferReceipt;
use crate::money::MinorUnits;
use crate::sqlite::{Database, DatabaseError};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mcp");

/// The MCP server's file inside the data directory.
pub const DATABASE_FILE: &str = "mcp.sqlite";
/// How long a runner's claim on a pending intent holds without renewal.
pub const LEASE_MS: i64 = 15_000;

/// Where an intent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[sqlx(rename_all = "lowercase")]
pub enum IntentStatus {
    /// Validated; the approval request is being sent.
    Requesting,
    /// The holder has been asked and has not decided.
    Pending,
    /// Approved, and the bank executed the transfer.
    Completed,
    /// The holder declined on their device.
    Denied,
    /// The approval request expired undecided.
    Expired,
    /// The provider or the bank failed; see `reason`.
    Failed,
    /// The tool call was cancelled while waiting; the approval will not be used.
    Cancelled,
}

impl IntentStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Requesting | Self::Pending)
    }
}

/// One intent as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IntentRecord {
    pub id: String,
    pub owner: String,
    pub idempotency_key: Option<String>,
    pub request_fingerprint: String,
    pub reference: String,
    pub from_account_id: String,
    pub from_label: String,
    pub to_account_id: String,
    pub to_label: String,
    pub amount_minor: i64,
    pub currency: String,
    pub memo: Option<String>,
    pub status: IntentStatus,
    pub auth_req_id: Option<String>,
    pub interval_seconds: Option<i64>,
    pub expires_at_ms: Option<i64>,
    pub receipt: Option<String>,
    pub reason: Option<String>,
    pub created_at_ms: i64,
}

impl IntentRecord {
    pub fn receipt(&self) -> Option<TransferReceipt> {
        self.receipt.as_deref().and_then(|json| serde_json::from_str(json).ok())
    }

    pub fn amount(&self) -> MinorUnits {
        MinorUnits(self.amount_minor)
    }
}

/// What a caller's `idempotency_key` already stands for.
pub enum Claim {
    /// The key is new: this call owns the intent it just recorded.
    Created(IntentRecord),
    /// The key was used before with the same terms: follow that intent.
    Existing(IntentRecord),
}

#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error(transparent)]
    Open(#[from] DatabaseError),
    #[error("the transfer intent store failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("idempotency_key {0:?} was already used for a different transfer")]
    KeyReused(String),
}

pub struct Intents {
    path: PathBuf,
    db: OnceCell<Database>,
    /// A signal per intent that changes in this process; receivers wake on every status change.
    live: Mutex<HashMap<String, watch::Sender<IntentStatus>>>,
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Intents {
    pub fn new(data_dir: PathBuf) -> Self {
        Self { path: data_dir.join(DATABASE_FILE), db: OnceCell::new(), live: Mutex::new(HashMap::new()) }
    }

    async fn db(&self) -> Result<&Database, IntentError> {
        self.db
            .get_or_try_init(|| async {
                if let Some(dir) = self.path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                Database::open(&self.path, &MIGRATIONS).await
            })
            .await
            .map_err(IntentError::from)
    }

    /// The owner's intent with this id, if any.
    pub async fn get(&self, owner: &str, id: &str) -> Result<Option<IntentRecord>, IntentError> {
        let db = self.db().await?;
        Ok(sqlx::query_as("SELECT * FROM transfer_intents WHERE id = ? AND owner = ?")
            .bind(id)
            .bind(owner)
            .fetch_optional(&db.reader)
            .await?)
    }

    /// The owner's intent recorded under `idempotency_key`, checked against `fingerprint`.
    pub async fn by_key(&self, owner: &str, key: &str, fingerprint: &str) -> Result<Option<IntentRecord>, IntentError> {
        let db = self.db().await?;
        let found: Option<IntentRecord> =
            sqlx::query_as("SELECT * FROM transfer_intents WHERE owner = ? AND idempotency_key = ?")
                .bind(owner)
                .bind(key)
                .fetch_optional(&db.writer)
                .await?;
        match found {
            Some(record) if record.request_fingerprint != fingerprint => Err(IntentError::KeyReused(key.to_owned())),
            other => Ok(other),
        }
    }

    /// Records a new intent, unless the owner's `idempotency_key` already names one.
    pub async fn create(
        &self,
        owner: &str,
        idempotency_key: Option<&str>,
        fingerprint: &str,
        intent: &TransferIntent,
    ) -> Result<Claim, IntentError> {
        let db = self.db().await?;
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO transfer_intents (id, owner, idempotency_key, request_fingerprint, reference, from_account_id,
                 from_label, to_account_id, to_label, amount_minor, currency, memo, status, created_at_ms, updated_at_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'requesting', ?, ?)
             ON CONFLICT (owner, idempotency_key) DO NOTHING",
        )
        .bind(&intent.id)
        .bind(owner)
        .bind(idempotency_key)
        .bind(fingerprint)
        .bind(&intent.reference)
        .bind(&intent.from.id)
        .bind(&intent.from.masked_number)
        .bind(&intent.to.id)
        .bind(&intent.to.masked_number)
        .bind(intent.amount.0)
        .bind(intent.currency.as_str())
        .bind(&intent.memo)
        .bind(now)
        .bind(now)
        .execute(&db.writer)
        .await?;
        if inserted.rows_affected() == 0 {
            // Another call recorded this key first.
            let key = idempotency_key.unwrap_or_default();
            let existing = self.by_key(owner, key, fingerprint).await?;
            return existing.map(Claim::Existing).ok_or_else(|| IntentError::KeyReused(key.to_owned()));
        }
        let record = self.get(owner, &intent.id).await?.ok_or(sqlx::Error::RowNotFound)?;
        self.signal(&record.id, IntentStatus::Requesting);
        Ok(Claim::Created(record))
    }

    /// Requesting → pending, with what another process needs to resume the wait, leased to `runner`.
    pub async fn mark_pending(
        &self,
        id: &str,
        auth_req_id: &str,
        interval_seconds: u64,
        expires_at_ms: i64,
        runner: &str,
    ) -> Result<(), IntentError> {
        let db = self.db().await?;
        let now = now_ms();
        sqlx::query(
            "UPDATE transfer_intents SET status = 'pending', auth_req_id = ?, interval_seconds = ?, expires_at_ms = ?,
                 runner = ?, lease_until_ms = ?, updated_at_ms = ? WHERE id = ? AND status = 'requesting'",
        )
        .bind(auth_req_id)
        .bind(interval_seconds as i64)
        .bind(expires_at_ms)
        .bind(runner)
        .bind(now + LEASE_MS)
        .bind(now)
        .bind(id)
        .execute(&db.writer)
        .await?;
        self.signal(id, IntentStatus::Pending);
        Ok(())
    }

    /// Moves an unfinished intent to a final status; false if it had already finished.
    pub async fn finish(
        &self,
        id: &str,
        status: IntentStatus,
        receipt: Option<&TransferReceipt>,
        reason: Option<&str>,
    ) -> Result<bool, IntentError> {
        let db = self.db().await?;
        let receipt = receipt.map(|r| serde_json::to_string(r).expect("a receipt serialises"));
        let updated = sqlx::query(
            "UPDATE transfer_intents SET status = ?, receipt = ?, reason = ?, auth_req_id = NULL, updated_at_ms = ?
             WHERE id = ? AND status IN ('requesting', 'pending')",
        )
        .bind(status)
        .bind(receipt)
        .bind(reason)
        .bind(now_ms())
        .bind(id)
        .execute(&db.writer)
        .await?;
        let finished = updated.rows_affected() == 1;
        if finished {
            self.signal(id, status);
        }
        Ok(finished)
    }

    /// Extends `runner`'s claim on a pending intent; false if the intent finished or another runner has it.
    pub async fn renew_lease(&self, id: &str, runner: &str) -> Result<bool, IntentError> {
        let db = self.db().await?;
        let renewed = sqlx::query(
            "UPDATE transfer_intents SET lease_until_ms = ? WHERE id = ? AND runner = ? AND status = 'pending'",
        )
        .bind(now_ms() + LEASE_MS)
        .bind(id)
        .bind(runner)
        .execute(&db.writer)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// The owner's pending intents whose runner stopped renewing its lease, each claimed for `runner`
    /// (an intent is claimed by one runner only). Intents that never got past `requesting` in time are
    /// failed: their approval request may never have been sent.
    pub async fn claim_orphans(&self, owner: &str, runner: &str) -> Result<Vec<IntentRecord>, IntentError> {
        let db = self.db().await?;
        let now = now_ms();
        sqlx::query(
            "UPDATE transfer_intents SET status = 'failed', updated_at_ms = ?1,
                 reason = 'the server stopped before the approval request was sent; no money moved'
             WHERE owner = ?2 AND status = 'requesting' AND created_at_ms < ?1 - ?3",
        )
        .bind(now)
        .bind(owner)
        .bind(LEASE_MS)
        .execute(&db.writer)
        .await?;
        Ok(sqlx::query_as(
            "UPDATE transfer_intents SET runner = ?1, lease_until_ms = ?2 + ?3
             WHERE owner = ?4 AND status = 'pending' AND auth_req_id IS NOT NULL AND expires_at_ms > ?2
               AND (lease_until_ms IS NULL OR lease_until_ms < ?2)
             RETURNING *",
        )
        .bind(runner)
        .bind(now)
        .bind(LEASE_MS)
        .bind(owner)
        .fetch_all(&db.writer)
        .await?)
    }

    /// A receiver that sees this intent's status changes made in this process.
    pub fn watch(&self, id: &str, current: IntentStatus) -> watch::Receiver<IntentStatus> {
        let mut live = self.live.lock().expect("intent signals");
        live.entry(id.to_owned()).or_insert_with(|| watch::channel(current).0).subscribe()
    }

    fn signal(&self, id: &str, status: IntentStatus) {
        let mut live = self.live.lock().expect("intent signals");
        let sender = live.entry(id.to_owned()).or_insert_with(|| watch::channel(status).0);
        sender.send_replace(status);
        if status.is_final() {
            // Receivers already subscribed still see the final value.
            live.remove(id);
        }
    }
}

/// The labels a record was created with, for messages.
pub fn labels(record: &IntentRecord) -> (AccountLabel, AccountLabel) {
    (
        AccountLabel { id: record.from_account_id.clone(), masked_number: record.from_label.clone() },
        AccountLabel { id: record.to_account_id.clone(), masked_number: record.to_label.clone() },
    )
}
