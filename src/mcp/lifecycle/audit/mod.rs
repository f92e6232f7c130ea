//! The audit trail: an append-only, hash-chained record of every decision about a transfer, kept
//! in the intent store beside the intents (`audit_entries`), and heads of the chain signed by the
//! server's own key (`signed_heads`, [`crate::mcp::server_key`]).
//!
//! - One entry per lifecycle transition and per creation, written by [`super::store::IntentStore`]
//!   in the same database transaction as the change it records, and one per policy refusal. Each
//!   entry is an [`AuditRecord`] built field by field from the intent's terms and the event: the
//!   lifecycle state itself is never serialised into the log, because `executing` and
//!   `outcome_unknown` carry the approval's token. No secret and no token is ever written.
//! - [`HeadClaims`]: what a signed head says, as a compact JWS of type [`HEAD_TYPE`] signed with the
//!   server's key (ES256, generated into the data directory on first start).
//! - [`verify`]: what `bankguard audit verify` checks, on entries and heads as read from the store.
//!
//! # The chain, precisely
//!
//! Entry `seq` (1, 2, 3 … with no gaps) stores `prev_hash`, the `hash` of entry `seq - 1` (for entry
//! 1, [`GENESIS_HASH`], 64 zeros), and its own `hash`:
//!
//! ```text
//! hash = lowercase hex( SHA-256( canonical JSON of the AuditRecord ) )
//! ```
//!
//! The canonical JSON is the [`AuditRecord`] (which includes `seq` and `prev_hash`) serialised by
//! `serde_json` without whitespace: an object whose keys are in lexicographic (byte) order at every
//! level, each field always present (an absent value is `null`) except `client`, which is left out
//! when unknown (entries written before clients were recorded have none, and keep their hashes), integers as JSON integers (amounts
//! in minor units), strings in UTF-8 with `serde_json`'s escaping (only `"`, `\` and control
//! characters are escaped). The key order is the fields' declaration order, which is alphabetical; a
//! test checks it. Editing any field of any entry changes its hash; deleting an entry leaves a gap
//! in `seq` and breaks the next entry's `prev_hash`; rewriting the chain from some entry onwards
//! contradicts the next signed head; removing the tail leaves a signed head beyond the log's end.
//! Only the entries after the last signed head can be removed without a trace, which is why heads
//! are signed every [`HEAD_SIGNING_INTERVAL`] while the chain grows and at every clean shutdown.

pub mod verify;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::state::{Event, IntentState};
use super::store::StoredIntent;
use crate::clock::Millis;
use crate::mcp::holder::Holder;
use crate::mcp::intent::TransferIntent;
use crate::money::{Currency, MinorUnits};

pub use verify::{ChainReport, Finding};

/// The JWS `typ` of a signed head.
pub const HEAD_TYPE: &str = "bankguard-audit-head";

/// What a signed head says: the chain's entry `seq` has `hash`, as of `iat` (seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadClaims {
    pub hash: String,
    pub iat: i64,
    pub seq: i64,
}

impl HeadClaims {
    /// The head at entry `seq` with `hash`, signed at `at` with `key`, as a compact JWS.
    pub fn sign(key: &crate::mcp::server_key::ServerKey, seq: i64, hash: &str, at: Millis) -> String {
        key.sign(HEAD_TYPE, &Self { hash: hash.to_owned(), iat: at.0.div_euclid(1000), seq })
    }
}

/// How often a runner signs the head of the chain when it moved (and always at shutdown). An
/// attacker with write access to the database can remove the entries written since the last
/// signed head without it being detected, so this bounds what can silently disappear.
pub const HEAD_SIGNING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// The intent was recorded; its approval request is about to be sent.
    Created,
    /// The provider accepted the approval request: the holder is being asked.
    ApprovalRequested,
    Approved,
    Denied,
    Expired,
    Cancelled,
    /// The bank executed the transfer (`details.transfer_id`).
    Executed,
    /// The bank refused the request; whether anything moved is confirmed by a lookup.
    BankRefused,
    /// The bank did not answer; whether anything moved is confirmed by a lookup.
    BankUnanswered,
    /// The approval was redeemed by someone who did not record it; confirmed by a lookup.
    ApprovalLost,
    /// A lookup under the intent's `Idempotency-Key` answered (`details.lookup`: found, refused, nothing).
    Reconciled,
    /// The approval request could not be made; nothing moved.
    Failed,
    /// The money policy refused the transfer before any approval request (`details.rule`).
    PolicyRefused,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::ApprovalRequested => "approval_requested",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Executed => "executed",
            Self::BankRefused => "bank_refused",
            Self::BankUnanswered => "bank_unanswered",
            Self::ApprovalLost => "approval_lost",
            Self::Reconciled => "reconciled",
            Self::Failed => "failed",
            Self::PolicyRefused => "policy_refused",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

/// The outcome an entry records, beside the terms. Fields in alphabetical order (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDetails {
    /// An error code from the provider or the bank.
    pub code: Option<String>,
    /// For `reconciled`: what the lookup found (`found`, `refused`, `nothing`).
    pub lookup: Option<String>,
    /// Why: the refusal's or failure's words.
    pub reason: Option<String>,
    /// For `policy_refused`: the rule that refused.
    pub rule: Option<String>,
    /// The intent's status after this entry (none for a policy refusal: there is no intent).
    pub status: Option<String>,
    /// The bank's transfer id, once it executed.
    pub transfer_id: Option<String>,
}

/// The exact terms of a transfer, as the audit log records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTerms {
    pub from_account_id: String,
    pub to_account_id: String,
    pub amount: MinorUnits,
    pub currency: Currency,
    pub memo: Option<String>,
}

impl From<&TransferIntent> for AuditTerms {
    fn from(intent: &TransferIntent) -> Self {
        Self {
            from_account_id: intent.from.id.clone(),
            to_account_id: intent.to.id.clone(),
            amount: intent.amount,
            currency: intent.currency,
            memo: intent.memo.clone(),
        }
    }
}

/// One entry as hashed: everything but its own hash. Fields in alphabetical order, so that
/// `serde_json` writes the canonical encoding (see the module doc); the column names are the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub amount_minor: i64,
    /// When it was written, in milliseconds since the Unix epoch (the writing server's clock).
    pub at_ms: i64,
    pub binding_message: Option<String>,
    /// The MCP client that acted ([`Holder::client`]). The one field left out of the canonical JSON
    /// when absent (not written as `null`), so entries written before clients were recorded keep
    /// their hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    pub currency: String,
    pub details: AuditDetails,
    pub from_account_id: String,
    /// The holder's subject at the provider (the one whose device is asked).
    pub holder_subject: String,
    pub intent_id: Option<String>,
    pub kind: AuditKind,
    pub memo: Option<String>,
    /// The holder's user id at the bank.
    pub owner: String,
    pub prev_hash: String,
    pub reference: Option<String>,
    pub seq: i64,
    pub to_account_id: String,
}

impl AuditRecord {
    /// The canonical encoding the hash is taken over.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("an audit record serialises")
    }

    /// Lowercase hex SHA-256 of [`Self::canonical_json`].
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.canonical_json().as_bytes()))
    }
}

/// An entry as stored: the record and the hash it was stored with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    #[serde(flatten)]
    pub record: AuditRecord,
    pub hash: String,
}

/// An entry before it takes its place in the chain (`seq`, `prev_hash`, time).
#[derive(Debug, Clone)]
pub struct AuditDraft {
    kind: AuditKind,
    owner: String,
    holder_subject: String,
    client: Option<String>,
    intent_id: Option<String>,
    terms: AuditTerms,
    binding_message: Option<String>,
    reference: Option<String>,
    details: AuditDetails,
}

impl AuditDraft {
    /// A new intent of `holder`, recorded in `requesting`.
    pub fn created(holder: &Holder, intent: &TransferIntent) -> Self {
        Self {
            kind: AuditKind::Created,
            owner: holder.bank_user.clone(),
            holder_subject: holder.subject.clone(),
            client: holder.client.clone(),
            intent_id: Some(intent.id.clone()),
            terms: AuditTerms::from(intent),
            binding_message: Some(intent.binding_message().as_str().to_owned()),
            reference: Some(intent.reference.clone()),
            details: AuditDetails {
                status: Some(IntentState::Requesting.status().as_str().to_owned()),
                ..Default::default()
            },
        }
    }

    /// `intent` moved by `event` to `next`. Only what the event observed is taken from it: never a
    /// token (an approval's token is neither named nor hinted at).
    pub fn transition(intent: &StoredIntent, event: &Event, next: &IntentState) -> Self {
        let mut details = AuditDetails::default();
        let kind = match event {
            Event::RequestAccepted { .. } => AuditKind::ApprovalRequested,
            Event::RequestRefused { error, description } => {
                details.code = Some(error.clone());
                details.reason = description.clone();
                AuditKind::Failed
            }
            Event::RequestAbandoned { detail } => {
                details.reason = Some(detail.clone());
                AuditKind::Failed
            }
            Event::Approved { .. } => AuditKind::Approved,
            Event::Denied => AuditKind::Denied,
            Event::Expired => AuditKind::Expired,
            Event::GrantInvalid => AuditKind::ApprovalLost,
            Event::Cancel => AuditKind::Cancelled,
            Event::BankExecuted { receipt } => {
                details.transfer_id = Some(receipt.id.clone());
                AuditKind::Executed
            }
            Event::BankRefused { code, detail, .. } => {
                details.code = Some(code.clone());
                details.reason = Some(detail.clone());
                AuditKind::BankRefused
            }
            Event::BankUnanswered { detail, .. } => {
                details.reason = Some(detail.clone());
                AuditKind::BankUnanswered
            }
            Event::LookupFound { receipt } => {
                details.lookup = Some("found".into());
                details.transfer_id = Some(receipt.id.clone());
                AuditKind::Reconciled
            }
            Event::LookupRefused { code, detail } => {
                details.lookup = Some("refused".into());
                details.code = Some(code.clone());
                details.reason = Some(detail.clone());
                AuditKind::Reconciled
            }
            Event::LookupNothing => {
                details.lookup = Some("nothing".into());
                AuditKind::Reconciled
            }
        };
        if details.reason.is_none()
            && let IntentState::Failed { reason } = next
        {
            details.reason = Some(reason.describe());
        }
        details.status = Some(next.status().as_str().to_owned());
        Self {
            kind,
            owner: intent.owner.clone(),
            holder_subject: intent.subject().to_owned(),
            client: intent.client.clone(),
            intent_id: Some(intent.id().to_owned()),
            terms: AuditTerms::from(&intent.terms),
            binding_message: Some(intent.terms.binding_message().as_str().to_owned()),
            reference: Some(intent.terms.reference.clone()),
            details,
        }
    }

    /// The money policy refused `terms` for `holder` under `rule` (no intent was made).
    pub fn policy_refusal(holder: &Holder, terms: &AuditTerms, rule: &str, detail: &str) -> Self {
        Self {
            kind: AuditKind::PolicyRefused,
            owner: holder.bank_user.clone(),
            holder_subject: holder.subject.clone(),
            client: holder.client.clone(),
            intent_id: None,
            terms: terms.clone(),
            binding_message: None,
            reference: None,
            details: AuditDetails {
                rule: Some(rule.to_owned()),
                reason: Some(detail.to_owned()),
                ..Default::default()
            },
        }
    }

    pub fn kind(&self) -> AuditKind {
        self.kind
    }

    /// The entry that follows the one numbered `seq - 1` whose hash is `prev_hash`.
    pub fn seal(self, seq: i64, prev_hash: String, at: Millis) -> AuditEntry {
        let AuditTerms { from_account_id, to_account_id, amount, currency, memo } = self.terms;
        let record = AuditRecord {
            amount_minor: amount.0,
            at_ms: at.0,
            binding_message: self.binding_message,
            client: self.client,
            currency: currency.as_str().to_owned(),
            details: self.details,
            from_account_id,
            holder_subject: self.holder_subject,
            intent_id: self.intent_id,
            kind: self.kind,
            memo,
            owner: self.owner,
            prev_hash,
            reference: self.reference,
            seq,
            to_account_id,
        };
        AuditEntry { hash: record.hash(), record }
    }
}

/// One `audit_entries` row as read back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub owner: String,
    pub holder_subject: String,
    pub intent_id: Option<String>,
    pub from_account_id: String,
    pub to_account_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub memo: Option<String>,
    pub binding_message: Option<String>,
    pub reference: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
    pub client: Option<String>,
}

impl AuditRow {
    /// The entry the row holds, or what makes it unreadable.
    pub fn entry(&self) -> Result<AuditEntry, String> {
        let kind = AuditKind::parse(&self.kind).ok_or_else(|| format!("its kind {:?} is unknown", self.kind))?;
        let details: AuditDetails =
            serde_json::from_str(&self.details).map_err(|error| format!("its details are unreadable ({error})"))?;
        Ok(AuditEntry {
            record: AuditRecord {
                amount_minor: self.amount_minor,
                at_ms: self.at_ms,
                binding_message: self.binding_message.clone(),
                client: self.client.clone(),
                currency: self.currency.clone(),
                details,
                from_account_id: self.from_account_id.clone(),
                holder_subject: self.holder_subject.clone(),
                intent_id: self.intent_id.clone(),
                kind,
                memo: self.memo.clone(),
                owner: self.owner.clone(),
                prev_hash: self.prev_hash.clone(),
                reference: self.reference.clone(),
                seq: self.seq,
                to_account_id: self.to_account_id.clone(),
            },
            hash: self.hash.clone(),
        })
    }
}

/// One `signed_heads` row: the chain's head at `seq` with `hash`, signed as a compact JWS.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SignedHead {
    pub seq: i64,
    pub hash: String,
    pub signed_at_ms: i64,
    pub key_id: String,
    pub jws: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AuditRecord {
        AuditDraft::policy_refusal(
            &Holder::configured("alice"),
            &AuditTerms {
                from_account_id: "acc_alice_chk".into(),
                to_account_id: "acc_bob_chk".into(),
                amount: MinorUnits(2500),
                currency: "USD".parse().unwrap(),
                memo: Some("rent \"May\"".into()),
            },
            "per_transfer_max",
            "over 1000.00 USD",
        )
        .seal(1, GENESIS_HASH.into(), Millis(1_000))
        .record
    }

    /// `value` written with the keys of every object sorted explicitly (whatever order
    /// `serde_json`'s map keeps), no whitespace.
    fn sorted(value: &serde_json::Value) -> String {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let members: Vec<String> = keys
                    .into_iter()
                    .map(|key| format!("{}:{}", serde_json::Value::String(key.clone()), sorted(&map[key])))
                    .collect();
                format!("{{{}}}", members.join(","))
            }
            other => other.to_string(),
        }
    }

    #[test]
    fn the_canonical_encoding_has_sorted_keys_every_field_and_no_whitespace() {
        let json = record().canonical_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(json, sorted(&value));
        assert_eq!(value.as_object().unwrap().len(), 15, "every field present, null when absent: {json}");
        assert_eq!(value["details"].as_object().unwrap().len(), 6, "{json}");
        assert!(json.contains(r#""intent_id":null"#) && json.contains(r#""amount_minor":2500"#), "{json}");
    }

    #[test]
    fn the_client_is_recorded_when_known_and_left_out_when_not_so_older_entries_keep_their_hashes() {
        let without = record();
        assert!(!without.canonical_json().contains("client"), "{}", without.canonical_json());
        let holder = Holder::configured("alice").through_declared_client(Some("Claude Code"));
        let terms = AuditTerms {
            from_account_id: without.from_account_id.clone(),
            to_account_id: without.to_account_id.clone(),
            amount: MinorUnits(without.amount_minor),
            currency: "USD".parse().unwrap(),
            memo: without.memo.clone(),
        };
        let with = AuditDraft::policy_refusal(&holder, &terms, "per_transfer_max", "over 1000.00 USD")
            .seal(1, GENESIS_HASH.into(), Millis(1_000))
            .record;
        let json = with.canonical_json();
        assert!(json.contains(r#""binding_message":null,"client":"Claude Code (declared)","currency""#), "{json}");
        assert_eq!(json, sorted(&serde_json::from_str(&json).unwrap()));
        assert_ne!(with.hash(), without.hash(), "the client is covered by the hash");
    }

    #[test]
    fn the_hash_is_sha256_of_the_canonical_encoding_and_changes_with_every_field() {
        let record = record();
        let expected = hex(&Sha256::digest(record.canonical_json().as_bytes()));
        assert_eq!(record.hash(), expected);
        assert_eq!(record.hash().len(), 64);
        let mut changed = record.clone();
        changed.amount_minor += 1;
        assert_ne!(changed.hash(), record.hash());
        let mut changed = record.clone();
        changed.prev_hash = "1".repeat(64);
        assert_ne!(changed.hash(), record.hash());
        let mut changed = record.clone();
        changed.details.rule = Some("daily_total".into());
        assert_ne!(changed.hash(), record.hash());
    }
}
