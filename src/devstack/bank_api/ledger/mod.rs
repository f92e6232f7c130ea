//! The ledger: SQLite through `sqlx`, the only code that reads or writes the bank's tables.
//!
//! Transfers are serialised through the single writer of [`Database`]. A transfer's idempotency check, token replay check, debit, credit,
//! journal rows and stored response commit in one transaction: either all of it happened or none.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::sqlite::SqlitePool;

use crate::devstack::seed::SeedUser;
use crate::money::{Currency, MinorUnits};
use crate::sqlite::{BEGIN_WRITE, Database, DatabaseError};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/bank_api");

/// The bank's file inside the data directory.
pub const DATABASE_FILE: &str = "bank.sqlite";

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger database failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Open(#[from] DatabaseError),
    #[error("the source account's balance is lower than the amount")]
    InsufficientFunds,
    #[error("the destination account cannot hold this much money")]
    BalanceOverflow,
    #[error("this Idempotency-Key was already used for a different transfer")]
    IdempotencyConflict,
    #[error("this access token has already been used for a transfer")]
    TokenAlreadyUsed,
    #[error("account {0} does not exist")]
    UnknownAccount(String),
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

/// A transfer the handler has fully validated and authorised, ready to execute.
#[derive(Debug, Clone)]
pub struct TransferOrder {
    pub owner_subject: String,
    pub idempotency_key: String,
    pub from_account_id: String,
    pub to_account_id: String,
    pub amount: MinorUnits,
    pub currency: Currency,
    pub memo: Option<String>,
    pub client_id: Option<String>,
    pub token_jti: String,
}

impl TransferOrder {
    /// What "the same body" means for idempotency: the parsed terms, so `"25"` and `"25.00"` agree.
    fn fingerprint(&self) -> String {
        serde_json::json!([self.from_account_id, self.to_account_id, self.amount.0, self.currency.as_str(), self.memo])
            .to_string()
    }
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

/// What executing a transfer order produced.
#[derive(Debug, Clone)]
pub enum TransferOutcome {
    /// Money moved now.
    Executed(TransferView),
    /// The same order was executed before under this Idempotency-Key; this is its original result.
    Replayed(TransferView),
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
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE subject = ?")
            .bind(subject)
            .fetch_optional(&self.reader)
            .await?;
        if known.is_none() {
            return Ok(None);
        }
        let accounts = sqlx::query_as("SELECT * FROM accounts WHERE owner_subject = ? ORDER BY id")
            .bind(subject)
            .fetch_all(&self.reader)
            .await?;
        Ok(Some(accounts))
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>, LedgerError> {
        Ok(sqlx::query_as("SELECT * FROM accounts WHERE id = ?").bind(id).fetch_optional(&self.reader).await?)
    }

    pub async fn transfer(&self, id: &str) -> Result<Option<StoredTransfer>, LedgerError> {
        let row: Option<TransferRow> =
            sqlx::query_as(TRANSFER_VIEW_QUERY).bind(id).fetch_optional(&self.reader).await?;
        Ok(row.map(TransferRow::into_stored))
    }

    /// Executes a validated order exactly once per (subject, Idempotency-Key) and per access token.
    pub async fn execute_transfer(&self, order: &TransferOrder) -> Result<TransferOutcome, LedgerError> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;

        let earlier: Option<(String, String)> = sqlx::query_as(
            "SELECT request_fingerprint, response_body FROM idempotency_keys WHERE owner_subject = ? AND key = ?",
        )
        .bind(&order.owner_subject)
        .bind(&order.idempotency_key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((fingerprint, response_body)) = earlier {
            if fingerprint != order.fingerprint() {
                return Err(LedgerError::IdempotencyConflict);
            }
            let view = serde_json::from_str(&response_body).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            return Ok(TransferOutcome::Replayed(view));
        }

        let spent: Option<i64> = sqlx::query_scalar("SELECT 1 FROM transfers WHERE token_jti = ?")
            .bind(&order.token_jti)
            .fetch_optional(&mut *tx)
            .await?;
        if spent.is_some() {
            return Err(LedgerError::TokenAlreadyUsed);
        }

        let amount = order.amount.0;
        let debited: Option<i64> = sqlx::query_scalar(
            "UPDATE accounts SET balance_minor = balance_minor - ?1
             WHERE id = ?2 AND currency = ?3 AND balance_minor >= ?1 RETURNING balance_minor",
        )
        .bind(amount)
        .bind(&order.from_account_id)
        .bind(order.currency.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(from_balance_after) = debited else {
            return Err(match self.account_in(&mut tx, &order.from_account_id).await? {
                None => LedgerError::UnknownAccount(order.from_account_id.clone()),
                Some(_) => LedgerError::InsufficientFunds,
            });
        };
        // SQLite turns integer overflow into a float, so the bound is checked before adding.
        let credited: Option<i64> = sqlx::query_scalar(
            "UPDATE accounts SET balance_minor = balance_minor + ?1
             WHERE id = ?2 AND currency = ?3 AND balance_minor <= 9223372036854775807 - ?1 RETURNING balance_minor",
        )
        .bind(amount)
        .bind(&order.to_account_id)
        .bind(order.currency.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(to_balance_after) = credited else {
            return Err(match self.account_in(&mut tx, &order.to_account_id).await? {
                None => LedgerError::UnknownAccount(order.to_account_id.clone()),
                Some(_) => LedgerError::BalanceOverflow,
            });
        };

        let id = format!("trf_{}", uuid::Uuid::now_v7().simple());
        let created_at_ms = now_ms();
        sqlx::query(
            "INSERT INTO transfers (id, owner_subject, from_account_id, to_account_id, amount_minor, currency,
                                    memo, status, client_id, token_jti, created_at_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'completed', ?, ?, ?)",
        )
        .bind(&id)
        .bind(&order.owner_subject)
        .bind(&order.from_account_id)
        .bind(&order.to_account_id)
        .bind(amount)
        .bind(order.currency.as_str())
        .bind(&order.memo)
        .bind(&order.client_id)
        .bind(&order.token_jti)
        .bind(created_at_ms)
        .execute(&mut *tx)
        .await?;
        for (account, delta, balance_after) in
            [(&order.from_account_id, -amount, from_balance_after), (&order.to_account_id, amount, to_balance_after)]
        {
            sqlx::query(
                "INSERT INTO ledger_entries (transfer_id, account_id, amount_minor, balance_after_minor)
                 VALUES (?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(account)
            .bind(delta)
            .bind(balance_after)
            .execute(&mut *tx)
            .await?;
        }

        let view = TransferRow {
            id: id.clone(),
            owner_subject: order.owner_subject.clone(),
            from_account_id: order.from_account_id.clone(),
            to_account_id: order.to_account_id.clone(),
            amount_minor: amount,
            currency: order.currency.to_string(),
            memo: order.memo.clone(),
            status: "completed".to_owned(),
            created_at_ms,
            from_account_balance_after: from_balance_after,
        }
        .into_stored()
        .view;
        sqlx::query(
            "INSERT INTO idempotency_keys (owner_subject, key, request_fingerprint, transfer_id, response_body)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&order.owner_subject)
        .bind(&order.idempotency_key)
        .bind(order.fingerprint())
        .bind(&id)
        .bind(serde_json::to_string(&view).expect("a TransferView serialises"))
        .execute(&mut *tx)
        .await?;

        tx.commit().await?;
        Ok(TransferOutcome::Executed(view))
    }

    async fn account_in(&self, tx: &mut sqlx::SqliteConnection, id: &str) -> Result<Option<Account>, LedgerError> {
        Ok(sqlx::query_as("SELECT * FROM accounts WHERE id = ?").bind(id).fetch_optional(tx).await?)
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
