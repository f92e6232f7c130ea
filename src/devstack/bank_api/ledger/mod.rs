//! The ledger: SQLite through `sqlx`, the only code that reads or writes the bank's tables.
//!
//! - this file: opening and seeding the ledger, and the reads (accounts, transfers, users);
//! - [`execute`]: the one write transaction that judges a transfer order and moves money or records a refusal;
//! - [`recorded`]: what was answered under each Idempotency-Key, as stored and as read back.
//!
//! Writes are serialised through the single writer of [`Database`] (`BEGIN IMMEDIATE`), so a decision
//! taken on rows read inside a write transaction still holds when that transaction writes.

mod execute;
mod recorded;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::sqlite::SqlitePool;

use crate::devstack::seed::SeedUser;
use crate::money::MinorUnits;
use crate::sqlite::{BEGIN_WRITE, Database, DatabaseError};

pub use execute::{Refusal, TransferOrder, TransferOutcome};
pub use recorded::{RecordedOutcome, RecordedRefusal};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/bank_api");

/// The bank's file inside the data directory.
pub const DATABASE_FILE: &str = "bank.sqlite";

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger database failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Open(#[from] DatabaseError),
    #[error("the ledger holds a record it cannot read: {0}")]
    Corrupt(String),
    #[error("this Idempotency-Key was already used for a different transfer")]
    IdempotencyConflict,
    #[error("this access token has already been used for a transfer request")]
    TokenAlreadyUsed,
}

#[derive(Clone)]
pub struct Ledger {
    writer: SqlitePool,
    reader: SqlitePool,
}

/// An account as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Account {
    pub id: String,
    pub owner_subject: String,
    pub name: String,
    pub kind: String,
    pub masked_number: String,
    pub currency: String,
    pub balance_minor: i64,
}

/// A transfer as the API shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct TransferView {
    pub id: String,
    pub status: String,
    pub from_account_id: String,
    pub to_account_id: String,
    pub amount: String,
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    pub created_at: String,
    /// The source account's balance right after this transfer.
    pub from_account_balance_after: String,
}

#[derive(sqlx::FromRow)]
struct TransferRow {
    id: String,
    owner_subject: String,
    from_account_id: String,
    to_account_id: String,
    amount_minor: i64,
    currency: String,
    memo: Option<String>,
    status: String,
    created_at_ms: i64,
    from_account_balance_after: i64,
}

impl TransferRow {
    fn into_stored(self) -> StoredTransfer {
        let view = TransferView {
            id: self.id,
            status: self.status,
            from_account_id: self.from_account_id,
            to_account_id: self.to_account_id,
            amount: MinorUnits(self.amount_minor).to_decimal_string(),
            currency: self.currency,
            memo: self.memo,
            created_at: format_timestamp_ms(self.created_at_ms),
            from_account_balance_after: MinorUnits(self.from_account_balance_after).to_decimal_string(),
        };
        StoredTransfer { owner_subject: self.owner_subject, view }
    }
}

/// A transfer's owner and its public view.
pub struct StoredTransfer {
    pub owner_subject: String,
    pub view: TransferView,
}

impl Ledger {
    /// Opens (creating if needed) the ledger in `data_dir`, migrates it, and seeds it on first start.
    pub async fn open(data_dir: &Path, seed: &[SeedUser]) -> Result<Self, LedgerError> {
        let Database { writer, reader } = Database::open(&data_dir.join(DATABASE_FILE), &MIGRATIONS).await?;
        let ledger = Self { writer, reader };
        ledger.seed_if_empty(seed).await?;
        Ok(ledger)
    }

    async fn seed_if_empty(&self, seed: &[SeedUser]) -> Result<(), LedgerError> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&mut *tx).await?;
        if users > 0 {
            return Ok(());
        }
        for user in seed {
            sqlx::query("INSERT INTO users (subject, name, email) VALUES (?, ?, ?)")
                .bind(user.subject)
                .bind(user.name)
                .bind(user.email)
                .execute(&mut *tx)
                .await?;
            for account in user.accounts {
                sqlx::query(
                    "INSERT INTO accounts (id, owner_subject, name, kind, masked_number, currency, balance_minor)
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(account.id)
                .bind(user.subject)
                .bind(account.name)
                .bind(account.kind.as_str())
                .bind(account.masked_number)
                .bind(account.currency)
                .bind(
                    MinorUnits::parse_decimal(account.opening_balance)
                        .expect("seed balances are valid decimal strings")
                        .0,
                )
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        tracing::info!(users = seed.len(), "seeded the demo ledger");
        Ok(())
    }

    /// The user's accounts, or `None` if there is no such user.
    pub async fn accounts_of(&self, subject: &str) -> Result<Option<Vec<Account>>, LedgerError> {
        if !self.has_user(subject).await? {
            return Ok(None);
        }
        let accounts = sqlx::query_as("SELECT * FROM accounts WHERE owner_subject = ? ORDER BY id")
            .bind(subject)
            .fetch_all(&self.reader)
            .await?;
        Ok(Some(accounts))
    }

    pub async fn has_user(&self, subject: &str) -> Result<bool, LedgerError> {
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE subject = ?")
            .bind(subject)
            .fetch_optional(&self.reader)
            .await?;
        Ok(known.is_some())
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>, LedgerError> {
        Ok(sqlx::query_as("SELECT * FROM accounts WHERE id = ?").bind(id).fetch_optional(&self.reader).await?)
    }

    pub async fn transfer(&self, id: &str) -> Result<Option<StoredTransfer>, LedgerError> {
        let row: Option<TransferRow> =
            sqlx::query_as(TRANSFER_VIEW_QUERY).bind(id).fetch_optional(&self.reader).await?;
        Ok(row.map(TransferRow::into_stored))
    }
}

const TRANSFER_VIEW_QUERY: &str = "
    SELECT t.id, t.owner_subject, t.from_account_id, t.to_account_id, t.amount_minor, t.currency, t.memo, t.status,
           t.created_at_ms, e.balance_after_minor AS from_account_balance_after
    FROM transfers t JOIN ledger_entries e ON e.transfer_id = t.id AND e.account_id = t.from_account_id
    WHERE t.id = ?";

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn format_timestamp_ms(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(at).to_string()
}
