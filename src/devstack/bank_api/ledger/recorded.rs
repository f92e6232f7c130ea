//! What the bank answered under each Idempotency-Key: the transfer it executed, or the refusal it gave.
//!
//! One row per (token subject, key), written in the same transaction as the outcome it records and
//! never changed afterwards. A retry with the same key and body is answered from it, and a client that
//! lost an answer reads it back ([`Ledger::recorded_outcome`]) instead of guessing.

use serde::{Deserialize, Serialize};
use sqlx::SqliteConnection;

use super::{Ledger, LedgerError, TransferView};

/// A refusal as the API first answered it, replayed word for word whatever the code says later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRefusal {
    pub status: u16,
    pub code: String,
    pub detail: String,
}

/// What was answered under an Idempotency-Key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedOutcome {
    /// Money moved; the transfer exactly as the first response showed it.
    Executed(TransferView),
    /// The bank turned the transfer down, and the token that asked is spent.
    Refused(RecordedRefusal),
}

/// A recorded outcome and the fingerprint of the request that got it.
pub(super) struct Recorded {
    pub fingerprint: String,
    pub outcome: RecordedOutcome,
}

const SELECT_RECORDED: &str = "
    SELECT request_fingerprint, outcome, response_body, refusal_status, refusal_code, refusal_detail
    FROM idempotency_keys WHERE owner_subject = ? AND key = ?";

#[derive(sqlx::FromRow)]
struct Row {
    request_fingerprint: String,
    outcome: String,
    response_body: Option<String>,
    refusal_status: Option<i64>,
    refusal_code: Option<String>,
    refusal_detail: Option<String>,
}

impl Row {
    fn into_recorded(self) -> Result<Recorded, LedgerError> {
        let outcome = match (self.outcome.as_str(), self.response_body, self.refusal_status) {
            ("executed", Some(body), None) => RecordedOutcome::Executed(
                serde_json::from_str(&body).map_err(|e| LedgerError::Corrupt(format!("a stored transfer: {e}")))?,
            ),
            ("refused", None, Some(status)) => RecordedOutcome::Refused(RecordedRefusal {
                status: u16::try_from(status)
                    .map_err(|_| LedgerError::Corrupt(format!("a stored refusal status {status}")))?,
                code: self.refusal_code.unwrap_or_default(),
                detail: self.refusal_detail.unwrap_or_default(),
            }),
            (other, ..) => return Err(LedgerError::Corrupt(format!("an idempotency record of outcome {other:?}"))),
        };
        Ok(Recorded { fingerprint: self.request_fingerprint, outcome })
    }
}

impl Ledger {
    /// What was answered under `key` to `subject`'s transfer requests; `None` if nothing was recorded.
    pub async fn recorded_outcome(&self, subject: &str, key: &str) -> Result<Option<RecordedOutcome>, LedgerError> {
        let row: Option<Row> =
            sqlx::query_as(SELECT_RECORDED).bind(subject).bind(key).fetch_optional(&self.reader).await?;
        Ok(row.map(Row::into_recorded).transpose()?.map(|recorded| recorded.outcome))
    }
}

/// The outcome recorded under (`subject`, `key`), read inside a write transaction.
pub(super) async fn recorded_in(
    tx: &mut SqliteConnection,
    subject: &str,
    key: &str,
) -> Result<Option<Recorded>, LedgerError> {
    let row: Option<Row> = sqlx::query_as(SELECT_RECORDED).bind(subject).bind(key).fetch_optional(tx).await?;
    row.map(Row::into_recorded).transpose()
}

/// Records `outcome` under (`subject`, `key`); the primary key refuses a second record.
pub(super) async fn record(
    tx: &mut SqliteConnection,
    subject: &str,
    key: &str,
    fingerprint: &str,
    outcome: &RecordedOutcome,
) -> Result<(), LedgerError> {
    let insert = match outcome {
        RecordedOutcome::Executed(view) => sqlx::query(
            "INSERT INTO idempotency_keys (owner_subject, key, request_fingerprint, outcome, transfer_id, response_body)
             VALUES (?, ?, ?, 'executed', ?, ?)",
        )
        .bind(subject)
        .bind(key)
        .bind(fingerprint)
        .bind(&view.id)
        .bind(serde_json::to_string(view).expect("a TransferView serialises")),
        RecordedOutcome::Refused(refusal) => sqlx::query(
            "INSERT INTO idempotency_keys (owner_subject, key, request_fingerprint, outcome,
                                           refusal_status, refusal_code, refusal_detail)
             VALUES (?, ?, ?, 'refused', ?, ?, ?)",
        )
        .bind(subject)
        .bind(key)
        .bind(fingerprint)
        .bind(i64::from(refusal.status))
        .bind(&refusal.code)
        .bind(&refusal.detail),
    };
    insert.execute(tx).await?;
    Ok(())
}
