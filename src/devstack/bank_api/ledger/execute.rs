//! Executing a transfer order: the one write transaction in which the bank judges a transfer and
//! either moves the money or records why not.
//!
//! A [`TransferOrder`] reaches the ledger only once the API has verified its token, scope, body and
//! Idempotency-Key, and that the token approves exactly this transfer. From there, on the single writer
//! under `BEGIN IMMEDIATE`:
//!
//! 1. an outcome already recorded under (token subject, key) is answered again if the order is the
//!    same and is a conflict if not. This comes first, so a retry is never mistaken for a replayed token;
//! 2. a token already consumed, by a transfer or by a refusal, is refused as used;
//! 3. the order is judged against the world as it is now ([`judge`]): the per-transfer maximum, both
//!    accounts exist, the subject owns the source, both hold the currency, the balance covers the amount,
//!    the destination can hold it;
//! 4. the token is consumed, and the outcome is recorded under the key: the transfer with its debit,
//!    credit and two journal entries, or the [`Refusal`] as the API words it.
//!
//! Steps 1 and 2 write nothing; step 4 commits whole or not at all.

use sqlx::SqliteConnection;

use super::recorded::{self, RecordedOutcome, RecordedRefusal};
use super::{Account, Ledger, LedgerError, TransferRow, TransferView, now_ms};
use crate::money::{Currency, MinorUnits};
use crate::sqlite::BEGIN_WRITE;

/// A transfer the API found well-formed and approved, for the ledger to judge and execute.
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

/// Why the bank turns down a well-formed, approved transfer: the state of the world, not the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    OverLimit { maximum: MinorUnits, currency: Currency },
    UnknownAccount(String),
    NotOwner,
    CurrencyMismatch { account: String, holds: String, asked: Currency },
    InsufficientFunds,
    BalanceOverflow,
}

/// What executing a transfer order produced.
#[derive(Debug, Clone)]
pub enum TransferOutcome {
    /// Money moved now.
    Executed(TransferView),
    /// The same order was executed before under this Idempotency-Key; this is its original result.
    Replayed(TransferView),
    /// Refused now: the token is consumed and the refusal recorded under the Idempotency-Key.
    Refused(Refusal),
    /// The same order was refused before under this Idempotency-Key; this is the refusal as first given.
    ReplayedRefusal(RecordedRefusal),
}

/// The balances a transfer leaves behind.
#[derive(Debug, PartialEq, Eq)]
struct Movement {
    from_balance_after: i64,
    to_balance_after: i64,
}

/// Judges `order` against its two accounts as they are now (`None`: there is no such account).
fn judge(
    order: &TransferOrder,
    from: Option<&Account>,
    to: Option<&Account>,
    maximum: MinorUnits,
) -> Result<Movement, Refusal> {
    if order.amount > maximum {
        return Err(Refusal::OverLimit { maximum, currency: order.currency });
    }
    let from = from.ok_or_else(|| Refusal::UnknownAccount(order.from_account_id.clone()))?;
    let to = to.ok_or_else(|| Refusal::UnknownAccount(order.to_account_id.clone()))?;
    if from.owner_subject != order.owner_subject {
        return Err(Refusal::NotOwner);
    }
    for account in [from, to] {
        if account.currency != order.currency.as_str() {
            return Err(Refusal::CurrencyMismatch {
                account: account.id.clone(),
                holds: account.currency.clone(),
                asked: order.currency,
            });
        }
    }
    let from_balance_after =
        from.balance_minor.checked_sub(order.amount.0).filter(|after| *after >= 0).ok_or(Refusal::InsufficientFunds)?;
    let to_balance_after = to.balance_minor.checked_add(order.amount.0).ok_or(Refusal::BalanceOverflow)?;
    Ok(Movement { from_balance_after, to_balance_after })
}

impl Ledger {
    /// Judges and executes `order` once per (subject, Idempotency-Key) and per access token; see the module doc.
    pub async fn execute_transfer(
        &self,
        order: &TransferOrder,
        maximum: MinorUnits,
    ) -> Result<TransferOutcome, LedgerError> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let fingerprint = order.fingerprint();

        if let Some(earlier) = recorded::recorded_in(&mut tx, &order.owner_subject, &order.idempotency_key).await? {
            if earlier.fingerprint != fingerprint {
                return Err(LedgerError::IdempotencyConflict);
            }
            return Ok(match earlier.outcome {
                RecordedOutcome::Executed(view) => TransferOutcome::Replayed(view),
                RecordedOutcome::Refused(refusal) => TransferOutcome::ReplayedRefusal(refusal),
            });
        }

        let consumed: Option<i64> = sqlx::query_scalar("SELECT 1 FROM consumed_tokens WHERE jti = ?")
            .bind(&order.token_jti)
            .fetch_optional(&mut *tx)
            .await?;
        if consumed.is_some() {
            return Err(LedgerError::TokenAlreadyUsed);
        }

        let now = now_ms();
        sqlx::query("INSERT INTO consumed_tokens (jti, consumed_at_ms) VALUES (?, ?)")
            .bind(&order.token_jti)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let from = account_in(&mut tx, &order.from_account_id).await?;
        let to = account_in(&mut tx, &order.to_account_id).await?;
        let (recorded, outcome) = match judge(order, from.as_ref(), to.as_ref(), maximum) {
            Ok(movement) => {
                let view = move_money(&mut tx, order, &movement, now).await?;
                (RecordedOutcome::Executed(view.clone()), TransferOutcome::Executed(view))
            }
            Err(refusal) => {
                (RecordedOutcome::Refused(RecordedRefusal::from(&refusal)), TransferOutcome::Refused(refusal))
            }
        };
        recorded::record(&mut tx, &order.owner_subject, &order.idempotency_key, &fingerprint, &recorded).await?;

        tx.commit().await?;
        Ok(outcome)
    }
}

async fn account_in(tx: &mut SqliteConnection, id: &str) -> Result<Option<Account>, LedgerError> {
    Ok(sqlx::query_as("SELECT * FROM accounts WHERE id = ?").bind(id).fetch_optional(tx).await?)
}

/// Writes a judged-good transfer: both balances, the transfer row and its two journal entries.
async fn move_money(
    tx: &mut SqliteConnection,
    order: &TransferOrder,
    movement: &Movement,
    created_at_ms: i64,
) -> Result<TransferView, LedgerError> {
    let amount = order.amount.0;
    // The balances were read in this transaction, which holds the write lock: they are still current.
    for (account, balance) in
        [(&order.from_account_id, movement.from_balance_after), (&order.to_account_id, movement.to_balance_after)]
    {
        sqlx::query("UPDATE accounts SET balance_minor = ? WHERE id = ?")
            .bind(balance)
            .bind(account)
            .execute(&mut *tx)
            .await?;
    }

    let id = format!("trf_{}", uuid::Uuid::now_v7().simple());
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
    for (account, delta, balance_after) in [
        (&order.from_account_id, -amount, movement.from_balance_after),
        (&order.to_account_id, amount, movement.to_balance_after),
    ] {
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

    let row = TransferRow {
        id,
        owner_subject: order.owner_subject.clone(),
        from_account_id: order.from_account_id.clone(),
        to_account_id: order.to_account_id.clone(),
        amount_minor: amount,
        currency: order.currency.to_string(),
        memo: order.memo.clone(),
        status: "completed".to_owned(),
        created_at_ms,
        from_account_balance_after: movement.from_balance_after,
    };
    Ok(row.into_stored().view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str, owner: &str, currency: &str, balance_minor: i64) -> Account {
        Account {
            id: id.into(),
            owner_subject: owner.into(),
            name: id.into(),
            kind: "checking".into(),
            masked_number: "CHK-0000".into(),
            currency: currency.into(),
            balance_minor,
        }
    }

    fn order(amount_minor: i64) -> TransferOrder {
        TransferOrder {
            owner_subject: "alice".into(),
            idempotency_key: "int_1".into(),
            from_account_id: "a".into(),
            to_account_id: "b".into(),
            amount: MinorUnits(amount_minor),
            currency: "USD".parse().unwrap(),
            memo: None,
            client_id: None,
            token_jti: "jti-1".into(),
        }
    }

    const MAXIMUM: MinorUnits = MinorUnits(1_000_000);

    #[test]
    fn a_covered_transfer_moves_exactly_the_amount() {
        let (from, to) = (account("a", "alice", "USD", 500), account("b", "bob", "USD", 7));
        assert_eq!(
            judge(&order(500), Some(&from), Some(&to), MAXIMUM),
            Ok(Movement { from_balance_after: 0, to_balance_after: 507 })
        );
    }

    #[test]
    fn each_state_of_the_world_has_its_refusal() {
        let usd = |id, owner, balance| account(id, owner, "USD", balance);
        let (from, to) = (usd("a", "alice", 500), usd("b", "bob", 7));
        let usd_code: Currency = "USD".parse().unwrap();
        assert_eq!(
            judge(&order(1_000_001), Some(&from), Some(&to), MAXIMUM),
            Err(Refusal::OverLimit { maximum: MAXIMUM, currency: usd_code })
        );
        assert_eq!(judge(&order(1), None, Some(&to), MAXIMUM), Err(Refusal::UnknownAccount("a".into())));
        assert_eq!(judge(&order(1), Some(&from), None, MAXIMUM), Err(Refusal::UnknownAccount("b".into())));
        assert_eq!(judge(&order(1), Some(&usd("a", "bob", 500)), Some(&to), MAXIMUM), Err(Refusal::NotOwner));
        assert_eq!(
            judge(&order(1), Some(&from), Some(&account("b", "bob", "EUR", 7)), MAXIMUM),
            Err(Refusal::CurrencyMismatch { account: "b".into(), holds: "EUR".into(), asked: usd_code })
        );
        assert_eq!(judge(&order(501), Some(&from), Some(&to), MAXIMUM), Err(Refusal::InsufficientFunds));
        assert_eq!(
            judge(&order(1), Some(&from), Some(&usd("b", "bob", i64::MAX)), MAXIMUM),
            Err(Refusal::BalanceOverflow)
        );
    }
}
