//! The server's receipt for a completed transfer: a compact JWS (`typ` [`RECEIPT_TYPE`], ES256, the
//! server's key) over what was executed, on whose approval, and where the audit chain records it.
//!
//! It is signed in the database transaction that records the completion (whether the runner saw
//! the bank's answer or a later lookup found the transfer), after that transition's audit entry, so
//! every completed intent has exactly one receipt and the receipt names that entry's hash. It goes
//! to the client in the `transfer_funds` / `get_transfer_status` result and into the evidence pack.

use serde::{Deserialize, Serialize};

use crate::bank::TransferReceipt;
use crate::clock::Millis;
use crate::mcp::lifecycle::StoredIntent;
use crate::mcp::lifecycle::audit::AuditEntry;
use crate::mcp::server_key::{ServerKey, TrustedKeys};

/// The JWS `typ` of a receipt.
pub const RECEIPT_TYPE: &str = "bankguard-receipt";

/// What a receipt says. Field order is the JSON order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptClaims {
    /// When the receipt was signed (seconds since the epoch).
    pub iat: i64,
    pub intent_id: String,
    pub terms: ReceiptTerms,
    /// The holder whose approval it was.
    pub holder: ReceiptHolder,
    /// The provider-signed token that approved it; `None` when the token could not be verified as
    /// the provider's attestation (the evidence says why).
    pub approval: Option<ReceiptApproval>,
    /// What the bank executed.
    pub transfer: ReceiptTransfer,
    /// The audit entry that records the execution.
    pub audit: ReceiptAudit,
}

/// The exact terms, as approved: amounts as exact decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptTerms {
    pub from_account_id: String,
    pub to_account_id: String,
    pub amount: String,
    pub currency: String,
    pub memo: Option<String>,
    pub reference: String,
    /// The text the holder's device showed.
    pub binding_message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptHolder {
    /// Their user id at the bank.
    pub bank_user: String,
    /// Their subject at the provider.
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptApproval {
    /// The provider (the token's `iss`).
    pub iss: String,
    /// The token's `jti`, when it has one.
    pub jti: Option<String>,
    /// Lowercase hex SHA-256 of the token: it names exactly one token, `jti` or not.
    pub token_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptTransfer {
    /// The bank's transfer id.
    pub id: String,
    /// When the bank executed it, as the bank said.
    pub executed_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptAudit {
    pub seq: i64,
    pub hash: String,
}

impl ReceiptTerms {
    pub fn of(intent: &StoredIntent) -> Self {
        let terms = &intent.terms;
        Self {
            from_account_id: terms.from.id.clone(),
            to_account_id: terms.to.id.clone(),
            amount: terms.amount.to_decimal_string(),
            currency: terms.currency.as_str().to_owned(),
            memo: terms.memo.clone(),
            reference: terms.reference.clone(),
            binding_message: terms.binding_message().as_str().to_owned(),
        }
    }
}

impl ReceiptClaims {
    /// The receipt for `intent`, executed as `bank` says, approved by `approval`, recorded by `entry`.
    pub fn new(
        intent: &StoredIntent,
        approval: Option<ReceiptApproval>,
        bank: &TransferReceipt,
        entry: &AuditEntry,
        at: Millis,
    ) -> Self {
        Self {
            iat: at.0.div_euclid(1000),
            intent_id: intent.id().to_owned(),
            terms: ReceiptTerms::of(intent),
            holder: ReceiptHolder { bank_user: intent.owner.clone(), subject: intent.subject().to_owned() },
            approval,
            transfer: ReceiptTransfer { id: bank.id.clone(), executed_at: bank.created_at.clone() },
            audit: ReceiptAudit { seq: entry.record.seq, hash: entry.hash.clone() },
        }
    }

    pub fn sign(&self, key: &ServerKey) -> String {
        key.sign(RECEIPT_TYPE, self)
    }

    /// What `jws` says, if a trusted server key signed it as a receipt.
    pub fn verify(jws: &str, trusted: &TrustedKeys) -> Result<Self, String> {
        trusted.verify(RECEIPT_TYPE, jws)
    }
}
