//! The audit trail in the intent store: appending an entry inside the caller's transaction, signing
//! the chain's head, and reading entries and heads back for `bankguard audit verify` and `export`.
//!
//! One chain for every writer: on SQLite the single writer connection runs each append inside a
//! `BEGIN IMMEDIATE` transaction; on PostgreSQL each append first takes a transaction-scoped
//! advisory lock ([`AUDIT_CHAIN_LOCK`]), so replicas appending at once queue up and each reads the
//! head its predecessor committed. The lock is the last one an append takes and is held only for
//! reading the head and inserting, so it cannot deadlock with the per-holder lock or a row lock.

use std::sync::Arc;

use super::{Backend, IntentStore, StoreError};
use crate::clock::Millis;
use crate::mcp::holder::Holder;
use crate::mcp::lifecycle::audit::{
    AuditDraft, AuditEntry, AuditRow, AuditTerms, ChainReport, Finding, GENESIS_HASH, HeadClaims, SignedHead, verify,
};
use crate::mcp::server_key::{ServerKey, TrustedKeys};
use crate::sqlite::BEGIN_WRITE;

/// The advisory lock (two-key form, apart from the per-holder locks' one-key form) that
/// serialises appends to the chain across replicas.
const AUDIT_CHAIN_LOCK: (i32, i32) = (0x6267_6175, 1);

/// Appends an entry on a connection inside a transaction the caller commits.
pub(super) trait AuditAppend {
    async fn append_audit(&mut self, draft: AuditDraft, at: Millis) -> Result<AuditEntry, sqlx::Error>;
}

/// Reads the head and inserts the next entry; the same statements for both databases.
macro_rules! append_entry {
    ($connection:expr, $draft:expr, $at:expr) => {{
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *$connection)
                .await?;
        let (seq, prev_hash) = head.map_or((1, GENESIS_HASH.to_owned()), |(seq, hash)| (seq + 1, hash));
        let entry = $draft.seal(seq, prev_hash, $at);
        let record = &entry.record;
        sqlx::query(
            "INSERT INTO audit_entries (seq, at_ms, kind, owner, holder_subject, intent_id, from_account_id,
                 to_account_id, amount_minor, currency, memo, binding_message, reference, details, prev_hash, hash,
                 client)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(record.seq)
        .bind(record.at_ms)
        .bind(record.kind.as_str())
        .bind(&record.owner)
        .bind(&record.holder_subject)
        .bind(&record.intent_id)
        .bind(&record.from_account_id)
        .bind(&record.to_account_id)
        .bind(record.amount_minor)
        .bind(&record.currency)
        .bind(&record.memo)
        .bind(&record.binding_message)
        .bind(&record.reference)
        .bind(serde_json::to_string(&record.details).expect("details serialise"))
        .bind(&record.prev_hash)
        .bind(&entry.hash)
        .bind(&record.client)
        .execute(&mut *$connection)
        .await?;
        Ok(entry)
    }};
}

impl AuditAppend for sqlx::SqliteConnection {
    /// The caller's transaction began with `BEGIN IMMEDIATE` on the one writer connection: nobody
    /// else appends meanwhile.
    async fn append_audit(&mut self, draft: AuditDraft, at: Millis) -> Result<AuditEntry, sqlx::Error> {
        append_entry!(self, draft, at)
    }
}

impl AuditAppend for sqlx::PgConnection {
    async fn append_audit(&mut self, draft: AuditDraft, at: Millis) -> Result<AuditEntry, sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(AUDIT_CHAIN_LOCK.0)
            .bind(AUDIT_CHAIN_LOCK.1)
            .execute(&mut *self)
            .await?;
        append_entry!(self, draft, at)
    }
}

impl IntentStore {
    /// Signs heads of the audit chain ([`IntentStore::sign_audit_head`]) and receipts of completed
    /// transfers with `key`.
    pub fn with_server_key(mut self, key: Arc<ServerKey>) -> Self {
        self.server_key = Some(key);
        self
    }

    /// Records that the money policy refused `terms` for `holder` under `rule`, before any approval
    /// request was made (`detail`: what the holder is told, e.g. the remaining allowance).
    pub async fn record_policy_refusal(
        &self,
        holder: &Holder,
        terms: &AuditTerms,
        rule: &str,
        detail: &str,
    ) -> Result<AuditEntry, StoreError> {
        let draft = AuditDraft::policy_refusal(holder, terms, rule, detail);
        let now = self.clock.now();
        let entry = match self.backend().await? {
            Backend::Sqlite(db) => {
                let mut tx = db.writer.begin_with(BEGIN_WRITE).await?;
                let entry = tx.append_audit(draft, now).await?;
                tx.commit().await?;
                entry
            }
            Backend::Postgres(shared) => {
                let mut tx = shared.pool.begin().await?;
                let entry = tx.append_audit(draft, now).await?;
                tx.commit().await?;
                entry
            }
        };
        Ok(entry)
    }

    /// Signs the chain's head if it moved since the last signed head (any replica's); the head
    /// signed, or `None` when there was nothing new to sign or this store has no audit key.
    pub async fn sign_audit_head(&self) -> Result<Option<SignedHead>, StoreError> {
        let Some(key) = &self.server_key else { return Ok(None) };
        let now = self.clock.now();
        let signed = with_pool!(self.backend().await?, writer, |pool| {
            let head: Option<(i64, String)> =
                sqlx::query_as("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(pool)
                    .await?;
            let signed_through: Option<i64> =
                sqlx::query_scalar("SELECT MAX(seq) FROM signed_heads").fetch_one(pool).await?;
            match head {
                Some((seq, hash)) if signed_through.is_none_or(|through| through < seq) => {
                    let head = SignedHead {
                        jws: HeadClaims::sign(key, seq, &hash, now),
                        seq,
                        hash,
                        signed_at_ms: now.0,
                        key_id: key.key_id().to_owned(),
                    };
                    // Two replicas signing the same head: the first one's row stands.
                    sqlx::query(
                        "INSERT INTO signed_heads (seq, hash, signed_at_ms, key_id, jws) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (seq) DO NOTHING",
                    )
                    .bind(head.seq)
                    .bind(&head.hash)
                    .bind(head.signed_at_ms)
                    .bind(&head.key_id)
                    .bind(&head.jws)
                    .execute(pool)
                    .await?;
                    Some(head)
                }
                _ => None,
            }
        });
        Ok(signed)
    }

    /// The entries written at or after `since` (all when `None`) whose holder is `holder` (by bank
    /// user id or subject; all when `None`), in chain order.
    pub async fn audit_entries(
        &self,
        since: Option<Millis>,
        holder: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = with_pool!(self.backend().await?, reader, |pool| {
            sqlx::query_as(
                "SELECT * FROM audit_entries
                 WHERE at_ms >= $1 AND (CAST($2 AS TEXT) IS NULL OR owner = $2 OR holder_subject = $2)
                 ORDER BY seq",
            )
            .bind(since.map_or(i64::MIN, |since| since.0))
            .bind(holder)
            .fetch_all(pool)
            .await?
        });
        rows.iter().map(|row| row.entry().map_err(|what| StoreError::AuditUnreadable { seq: row.seq, what })).collect()
    }

    /// Checks the whole chain and every signed head against `trusted` (the server keys whose heads
    /// count): the store's answer is the chain's report, or the first bad entry.
    pub async fn verify_audit(&self, trusted: &TrustedKeys) -> Result<Result<ChainReport, Finding>, StoreError> {
        let (rows, heads): (Vec<AuditRow>, Vec<SignedHead>) = with_pool!(self.backend().await?, reader, |pool| {
            let rows = sqlx::query_as("SELECT * FROM audit_entries ORDER BY seq").fetch_all(pool).await?;
            let heads = sqlx::query_as("SELECT * FROM signed_heads ORDER BY seq").fetch_all(pool).await?;
            (rows, heads)
        });
        Ok(verify::verify(&rows, &heads, trusted))
    }
}

#[cfg(test)]
mod tests;
