//! Proof of consent in the intent store ([`crate::mcp::consent`]): the approval as it arrived, the
//! receipt sealed with each completion, the servers' public keys, and reading it all back for an
//! evidence pack.

use super::{Backend, IntentStore, StoreError, StoredIntent};
use crate::clock::Millis;
use crate::mcp::consent::approval::{Witnessed, token_digest};
use crate::mcp::consent::receipt::{ReceiptApproval, ReceiptClaims};
use crate::mcp::lifecycle::audit::{AuditEntry, AuditRow};
use crate::mcp::lifecycle::state::IntentState;
use crate::mcp::server_key::ServerKey;

/// One intent's consent evidence, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsentRow {
    pub intent_id: String,
    pub provider_issuer: String,
    pub audience: Option<String>,
    /// The approving access token (consumed).
    pub provider_token: String,
    /// The provider's key set document as fetched when the token was checked.
    pub provider_jwks: Option<String>,
    pub token_jti: Option<String>,
    /// Why the token does not attest the approval; `None` when it does.
    pub problem: Option<String>,
    pub approved_at_ms: i64,
}

/// Everything the store holds about one completed intent's consent.
#[derive(Debug, Clone)]
pub struct ConsentRecord {
    pub intent: StoredIntent,
    pub consent: Option<ConsentRow>,
    /// The audit entries of the intent, in chain order.
    pub audit: Vec<AuditEntry>,
    /// The public key (a JWK, as registered) of the server that signed the receipt, if registered.
    pub signer_jwk: Option<String>,
}

/// Seals the receipt of a completion inside the caller's transaction, on either database: reads
/// the intent's consent row, signs, stores the receipt with the intent. Evaluates to the receipt.
macro_rules! seal_receipt {
    ($connection:expr, $key:expr, $intent:expr, $bank:expr, $entry:expr, $at:expr) => {{
        let consent: Option<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT provider_issuer, provider_token, token_jti, problem FROM consent_evidence WHERE intent_id = $1",
        )
        .bind($intent.id())
        .fetch_optional(&mut *$connection)
        .await?;
        // Only a token that attested the approval is named as its proof.
        let approval = consent.and_then(|(iss, token, jti, problem)| {
            problem.is_none().then(|| ReceiptApproval { iss, jti, token_sha256: token_digest(&token) })
        });
        let receipt = ReceiptClaims::new($intent, approval, $bank, $entry, $at).sign($key);
        sqlx::query("UPDATE transfer_intents SET server_receipt = $1 WHERE id = $2")
            .bind(&receipt)
            .bind($intent.id())
            .execute(&mut *$connection)
            .await?;
        receipt
    }};
}

pub(super) trait SealReceipt {
    /// The receipt of `intent`'s completion (`next`), recorded by `entry`, if `next` is a
    /// completion and a key signs receipts.
    async fn seal_receipt(
        &mut self,
        key: Option<&ServerKey>,
        intent: &StoredIntent,
        next: &IntentState,
        entry: &AuditEntry,
        at: Millis,
    ) -> Result<Option<String>, sqlx::Error>;
}

impl SealReceipt for sqlx::SqliteConnection {
    async fn seal_receipt(
        &mut self,
        key: Option<&ServerKey>,
        intent: &StoredIntent,
        next: &IntentState,
        entry: &AuditEntry,
        at: Millis,
    ) -> Result<Option<String>, sqlx::Error> {
        let (Some(key), IntentState::Completed { receipt: bank }) = (key, next) else { return Ok(None) };
        Ok(Some(seal_receipt!(self, key, intent, bank, entry, at)))
    }
}

impl SealReceipt for sqlx::PgConnection {
    async fn seal_receipt(
        &mut self,
        key: Option<&ServerKey>,
        intent: &StoredIntent,
        next: &IntentState,
        entry: &AuditEntry,
        at: Millis,
    ) -> Result<Option<String>, sqlx::Error> {
        let (Some(key), IntentState::Completed { receipt: bank }) = (key, next) else { return Ok(None) };
        Ok(Some(seal_receipt!(self, key, intent, bank, entry, at)))
    }
}

impl IntentStore {
    /// Keeps the approval of `intent_id` as it arrived (before the transition it causes is
    /// recorded, so a completion always finds it).
    pub async fn record_witnessed(&self, intent_id: &str, witnessed: &Witnessed) -> Result<(), StoreError> {
        let now = self.clock.now();
        with_pool!(self.backend().await?, writer, |pool| {
            sqlx::query(
                "INSERT INTO consent_evidence
                     (intent_id, provider_issuer, audience, provider_token, provider_jwks, token_jti, problem, approved_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (intent_id) DO UPDATE SET provider_issuer = $2, audience = $3, provider_token = $4,
                     provider_jwks = $5, token_jti = $6, problem = $7, approved_at_ms = $8",
            )
            .bind(intent_id)
            .bind(&witnessed.issuer)
            .bind(&witnessed.audience)
            .bind(witnessed.token.expose())
            .bind(witnessed.jwks.as_deref())
            .bind(&witnessed.jti)
            .bind(&witnessed.problem)
            .bind(now.0)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Registers this server's public key, so that evidence packs made on any replica carry it.
    pub async fn register_server_key(&self) -> Result<(), StoreError> {
        let Some(key) = &self.server_key else { return Ok(()) };
        let jwk = serde_json::to_string(key.public_jwk()).expect("a JWK serialises");
        let now = self.clock.now();
        with_pool!(self.backend().await?, writer, |pool| {
            sqlx::query(
                "INSERT INTO server_keys (kid, jwk, registered_at_ms) VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING",
            )
            .bind(key.key_id())
            .bind(&jwk)
            .bind(now.0)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The server key that signs this store's heads and receipts, if it has one.
    pub fn server_key(&self) -> Option<&ServerKey> {
        self.server_key.as_deref()
    }

    /// Everything held about `intent_id`'s consent, or `None` if there is no such intent.
    pub async fn consent_record(&self, intent_id: &str) -> Result<Option<ConsentRecord>, StoreError> {
        let Some(intent) = self.find(intent_id).await? else { return Ok(None) };
        let signer = intent
            .server_receipt
            .as_deref()
            .and_then(|jws| jsonwebtoken::decode_header(jws).ok())
            .and_then(|header| header.kid);
        let (consent, rows, signer_jwk): (Option<ConsentRow>, Vec<AuditRow>, Option<String>) =
            with_pool!(self.backend().await?, reader, |pool| {
                let consent = sqlx::query_as("SELECT * FROM consent_evidence WHERE intent_id = $1")
                    .bind(intent_id)
                    .fetch_optional(pool)
                    .await?;
                let rows = sqlx::query_as("SELECT * FROM audit_entries WHERE intent_id = $1 ORDER BY seq")
                    .bind(intent_id)
                    .fetch_all(pool)
                    .await?;
                let jwk = sqlx::query_scalar("SELECT jwk FROM server_keys WHERE kid = $1")
                    .bind(signer.as_deref().unwrap_or_default())
                    .fetch_optional(pool)
                    .await?;
                (consent, rows, jwk)
            });
        let audit = rows
            .iter()
            .map(|row| row.entry().map_err(|what| StoreError::AuditUnreadable { seq: row.seq, what }))
            .collect::<Result<_, _>>()?;
        Ok(Some(ConsentRecord { intent, consent, audit, signer_jwk }))
    }
}
