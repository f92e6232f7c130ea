//! The evidence pack: one directory that proves, offline and from its own files alone, that the
//! provider attested the holder's approval of exactly a transfer's terms, and that the server's
//! receipt and the audit entries agree with it.
//!
//! | file | what it is |
//! |---|---|
//! | `manifest.json` | the intent id, the holder, the terms (with the account labels the device showed), the binding message, the provider's issuer and audience |
//! | `authorization_details.json` | the RFC 9396 details the approval request carried |
//! | `provider-token.jwt` | the provider-signed access token the approval produced (consumed by the bank, expired) |
//! | `provider-jwks.json` | the provider's key set, as fetched when the token was checked |
//! | `bank-receipt.json` | the bank's answer: the executed transfer |
//! | `server-receipt.jws` | the server's signed receipt ([`super::receipt`]) |
//! | `server-keys.json` | the public key that signed it |
//! | `audit.jsonl` | the intent's audit entries, in chain order |
//!
//! [`verify`] checks every file against the others. What no file can prove is that the two key sets
//! are really the provider's and the server's: the report names their key ids for a reviewer to
//! compare with the provider's `jwks_uri` and the server's `/.well-known/bankguard-keys.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::approval::{self, Expected};
use super::receipt::{ReceiptClaims, ReceiptHolder};
use crate::bank::TransferReceipt;
use crate::clock::Millis;
use crate::mcp::intent::{AccountLabel, TransferIntent};
use crate::mcp::lifecycle::audit::{AuditEntry, AuditKind};
use crate::mcp::lifecycle::{ConsentRecord, IntentState};
use crate::mcp::server_key::{ServerKey, TrustedKeys};
use crate::money::MinorUnits;
use crate::provider_keys::published_keys;

/// The pack's format, in its manifest.
pub const FORMAT: &str = "bankguard-evidence/1";
const MANIFEST: &str = "manifest.json";
const AUTHORIZATION_DETAILS: &str = "authorization_details.json";
const PROVIDER_TOKEN: &str = "provider-token.jwt";
const PROVIDER_JWKS: &str = "provider-jwks.json";
const BANK_RECEIPT: &str = "bank-receipt.json";
const SERVER_RECEIPT: &str = "server-receipt.jws";
const SERVER_KEYS: &str = "server-keys.json";
const AUDIT: &str = "audit.jsonl";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub intent_id: String,
    /// When the pack was written (RFC 3339).
    pub written_at: String,
    pub holder: ReceiptHolder,
    pub terms: PackTerms,
    /// The text the holder's device showed.
    pub binding_message: String,
    pub provider: PackProvider,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackTerms {
    pub from_account_id: String,
    /// The source account as the device showed it (masked).
    pub from_label: String,
    pub to_account_id: String,
    pub to_label: String,
    pub amount: String,
    pub currency: String,
    pub memo: Option<String>,
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackProvider {
    pub issuer: String,
    pub audience: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("no transfer intent {0}")]
    NoIntent(String),
    #[error("transfer intent {id} is {status}: only a completed transfer has a proof of consent")]
    NotCompleted { id: String, status: &'static str },
    #[error(
        "transfer intent {0} has no recorded approval token or no signed receipt (it completed before this server \
         kept them)"
    )]
    NotRecorded(String),
    #[error("the key that signed intent {0}'s receipt is not registered in the store and is not this server's key")]
    UnknownSigner(String),
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

/// What a pack that verified proves, and what the reviewer must still compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackReport {
    pub intent_id: String,
    pub summary: String,
    pub transfer_id: String,
    pub provider_issuer: String,
    /// The provider key that signed the approval, to compare with the provider's `jwks_uri`.
    pub provider_kid: String,
    /// The server key that signed the receipt, to compare with `bankguard keys`.
    pub server_kid: String,
    pub audit_entries: usize,
}

impl std::fmt::Display for PackReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "the evidence pack verifies: transfer intent {} ({})", self.intent_id, self.summary)?;
        writeln!(
            f,
            "  ✓ {} attested the holder's approval of exactly these terms (provider key {})",
            self.provider_issuer, self.provider_kid
        )?;
        writeln!(f, "  ✓ the bank executed transfer {} on those terms", self.transfer_id)?;
        writeln!(f, "  ✓ the server's receipt is signed (server key {}) and agrees with both", self.server_kid)?;
        writeln!(f, "  ✓ {} audit entries, each matching its hash and these terms", self.audit_entries)?;
        write!(
            f,
            "  to trust these keys, compare {} with {}'s published keys, and {} with the server's `bankguard keys`",
            self.provider_kid, self.provider_issuer, self.server_kid
        )
    }
}

/// Writes `record`'s evidence into `dir` (created; it must not exist or be empty). `own_key` is
/// this server's key, used when the signer's key was never registered in the store.
pub fn write(record: &ConsentRecord, own_key: Option<&ServerKey>, dir: &Path) -> Result<(), EvidenceError> {
    let intent = &record.intent;
    let id = intent.id().to_owned();
    let IntentState::Completed { receipt: bank } = &intent.state else {
        return Err(EvidenceError::NotCompleted { id, status: intent.status().as_str() });
    };
    let (Some(consent), Some(server_receipt)) = (&record.consent, &intent.server_receipt) else {
        return Err(EvidenceError::NotRecorded(id));
    };
    let signer = jsonwebtoken::decode_header(server_receipt).ok().and_then(|header| header.kid).unwrap_or_default();
    let server_keys = match (&record.signer_jwk, own_key) {
        (Some(jwk), _) => format!("{{\"keys\":[{jwk}]}}"),
        (None, Some(key)) if key.key_id() == signer => json(&key.trusted().jwk_set()),
        _ => return Err(EvidenceError::UnknownSigner(id)),
    };
    let terms = &intent.terms;
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        intent_id: id.clone(),
        written_at: Millis(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64),
        )
        .rfc3339(),
        holder: ReceiptHolder { bank_user: intent.owner.clone(), subject: intent.subject().to_owned() },
        terms: PackTerms {
            from_account_id: terms.from.id.clone(),
            from_label: terms.from.masked_number.clone(),
            to_account_id: terms.to.id.clone(),
            to_label: terms.to.masked_number.clone(),
            amount: terms.amount.to_decimal_string(),
            currency: terms.currency.as_str().to_owned(),
            memo: terms.memo.clone(),
            reference: terms.reference.clone(),
        },
        binding_message: terms.binding_message().as_str().to_owned(),
        provider: PackProvider { issuer: consent.provider_issuer.clone(), audience: consent.audience.clone() },
    };
    let audit: String = record
        .audit
        .iter()
        .map(|entry| serde_json::to_string(entry).expect("an audit entry serialises") + "\n")
        .collect();
    let files = [
        (MANIFEST, json(&manifest)),
        (AUTHORIZATION_DETAILS, json(&terms.authorization_details())),
        (PROVIDER_TOKEN, consent.provider_token.clone()),
        (PROVIDER_JWKS, consent.provider_jwks.clone().unwrap_or_else(|| "{\"keys\":[]}".to_owned())),
        (BANK_RECEIPT, json(bank)),
        (SERVER_RECEIPT, server_receipt.clone()),
        (SERVER_KEYS, server_keys),
        (AUDIT, audit),
    ];
    let file_error = |path: &Path, error: std::io::Error| EvidenceError::File {
        path: path.display().to_string(),
        reason: error.to_string(),
    };
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(EvidenceError::File { path: dir.display().to_string(), reason: "is not empty".into() });
    }
    // The pack holds a (consumed) token and personal data: the owner's alone, like the data directory.
    crate::data_dir::prepare(dir).map_err(|error| file_error(dir, error))?;
    for (name, contents) in files {
        let path = dir.join(name);
        crate::secrets::write_private_file(&path, contents.as_bytes()).map_err(|error| file_error(&path, error))?;
    }
    Ok(())
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("evidence serialises")
}

/// Checks the pack in `dir` from its own files alone.
pub fn verify(dir: &Path) -> Result<PackReport, String> {
    let pack = Pack { dir: dir.to_owned() };
    let manifest: Manifest = pack.json(MANIFEST)?;
    if manifest.format != FORMAT {
        return Err(format!("{MANIFEST}: format {:?} is not {FORMAT:?}", manifest.format));
    }
    let intent = manifest.intent()?;
    let terms = intent.terms();
    // The provider's attestation.
    let token = pack.text(PROVIDER_TOKEN)?;
    let token = token.trim();
    let provider_keys =
        published_keys(&pack.text(PROVIDER_JWKS)?.into()).map_err(|e| format!("{PROVIDER_JWKS}: {e}"))?;
    let provider_kid = approval::key_id(token).map_err(|e| format!("{PROVIDER_TOKEN}: {e}"))?;
    let key = provider_keys.get(&provider_kid).ok_or_else(|| {
        format!("{PROVIDER_TOKEN}: {}", approval::ApprovalProblem::UnknownKey { kid: provider_kid.clone() })
    })?;
    let expected = Expected {
        issuer: &manifest.provider.issuer,
        audience: manifest.provider.audience.as_deref(),
        subject: &manifest.holder.subject,
        terms,
    };
    let claims = approval::verify(token, key, &expected).map_err(|e| format!("{PROVIDER_TOKEN}: {e}"))?;
    // What the device showed and what the request carried follow from the same terms.
    if manifest.binding_message != intent.binding_message().as_str() {
        return Err(format!("{MANIFEST}: the binding message does not match the terms"));
    }
    let details: serde_json::Value = pack.json(AUTHORIZATION_DETAILS)?;
    if details != intent.authorization_details() {
        return Err(format!("{AUTHORIZATION_DETAILS}: not the authorization details of these terms"));
    }

    // The bank's answer.
    let bank: TransferReceipt = pack.json(BANK_RECEIPT)?;
    let bank_amount = MinorUnits::parse_decimal(&bank.amount).map_err(|e| format!("{BANK_RECEIPT}: amount: {e}"))?;
    if bank.from_account_id != terms.from_account_id
        || bank.to_account_id != terms.to_account_id
        || bank_amount != terms.amount
        || bank.currency != terms.currency.as_str()
        || bank.memo.as_deref() != terms.memo
    {
        return Err(format!("{BANK_RECEIPT}: the executed transfer differs from the approved terms"));
    }

    // The server's receipt.
    let trusted = TrustedKeys::from_jwks(&pack.text(SERVER_KEYS)?, SERVER_KEYS).map_err(|e| e.to_string())?;
    let jws = pack.text(SERVER_RECEIPT)?;
    let receipt = ReceiptClaims::verify(jws.trim(), &trusted).map_err(|e| format!("{SERVER_RECEIPT}: {e}"))?;
    let server_kid = jsonwebtoken::decode_header(jws.trim()).ok().and_then(|h| h.kid).unwrap_or_default();
    let receipt_problem = if receipt.intent_id != manifest.intent_id {
        Some("it is for another transfer intent")
    } else if receipt.holder != manifest.holder {
        Some("it names another holder")
    } else if receipt.terms.from_account_id != terms.from_account_id
        || receipt.terms.to_account_id != terms.to_account_id
        || MinorUnits::parse_decimal(&receipt.terms.amount) != Ok(terms.amount)
        || receipt.terms.currency != terms.currency.as_str()
        || receipt.terms.memo.as_deref() != terms.memo
        || receipt.terms.reference != manifest.terms.reference
        || receipt.terms.binding_message != manifest.binding_message
    {
        Some("its terms differ from the approved terms")
    } else if receipt.transfer.id != bank.id {
        Some("it names another bank transfer")
    } else {
        match &receipt.approval {
            None => Some("it names no provider attestation"),
            Some(named)
                if named.iss != claims.iss
                    || named.jti != claims.jti
                    || named.token_sha256 != approval::token_digest(token) =>
            {
                Some("it rests on another approval token")
            }
            Some(_) => None,
        }
    };
    if let Some(problem) = receipt_problem {
        return Err(format!("{SERVER_RECEIPT}: {problem}"));
    }

    // The audit entries.
    let entries = pack.audit()?;
    check_audit(&entries, &manifest, &intent, &receipt)?;

    Ok(PackReport {
        intent_id: manifest.intent_id,
        summary: format!(
            "{} {} from {} to {}, ref {}",
            manifest.terms.amount,
            manifest.terms.currency,
            manifest.terms.from_account_id,
            manifest.terms.to_account_id,
            manifest.terms.reference
        ),
        transfer_id: bank.id,
        provider_issuer: claims.iss,
        provider_kid,
        server_kid,
        audit_entries: entries.len(),
    })
}

fn check_audit(
    entries: &[AuditEntry],
    manifest: &Manifest,
    intent: &TransferIntent,
    receipt: &ReceiptClaims,
) -> Result<(), String> {
    let mut previous: Option<&AuditEntry> = None;
    for entry in entries {
        let record = &entry.record;
        let seq = record.seq;
        if record.hash() != entry.hash {
            return Err(format!("{AUDIT}: entry {seq} does not match its hash"));
        }
        if let Some(before) = previous
            && seq == before.record.seq + 1
            && record.prev_hash != before.hash
        {
            return Err(format!("{AUDIT}: entry {seq} does not follow entry {}", before.record.seq));
        }
        if record.intent_id.as_deref() != Some(manifest.intent_id.as_str())
            || record.owner != manifest.holder.bank_user
            || record.holder_subject != manifest.holder.subject
            || record.from_account_id != intent.from.id
            || record.to_account_id != intent.to.id
            || record.amount_minor != intent.amount.0
            || record.currency != intent.currency.as_str()
            || record.memo != intent.memo
        {
            return Err(format!("{AUDIT}: entry {seq} is about other terms"));
        }
        previous = Some(entry);
    }
    if !entries.iter().any(|entry| entry.record.kind == AuditKind::Approved) {
        return Err(format!("{AUDIT}: no entry records the approval"));
    }
    let executed = entries
        .iter()
        .find(|entry| entry.record.seq == receipt.audit.seq)
        .ok_or_else(|| format!("{AUDIT}: the entry the receipt names ({}) is missing", receipt.audit.seq))?;
    let records_execution = matches!(executed.record.kind, AuditKind::Executed | AuditKind::Reconciled)
        && executed.record.details.transfer_id.as_deref() == Some(receipt.transfer.id.as_str());
    if executed.hash != receipt.audit.hash || !records_execution {
        return Err(format!("{AUDIT}: entry {} is not the execution the receipt names", receipt.audit.seq));
    }
    Ok(())
}

impl Manifest {
    /// The terms as an intent, from which the binding message and details are derived again.
    fn intent(&self) -> Result<TransferIntent, String> {
        let terms = &self.terms;
        let amount = MinorUnits::parse_decimal(&terms.amount).map_err(|e| format!("{MANIFEST}: amount: {e}"))?;
        let currency = terms.currency.parse().map_err(|_| format!("{MANIFEST}: currency {:?}", terms.currency))?;
        Ok(TransferIntent {
            id: self.intent_id.clone(),
            reference: terms.reference.clone(),
            from: AccountLabel { id: terms.from_account_id.clone(), masked_number: terms.from_label.clone() },
            to: AccountLabel { id: terms.to_account_id.clone(), masked_number: terms.to_label.clone() },
            amount,
            currency,
            memo: terms.memo.clone(),
        })
    }
}

/// The pack's files, read with errors that name them.
struct Pack {
    dir: PathBuf,
}

impl Pack {
    fn text(&self, name: &str) -> Result<String, String> {
        std::fs::read_to_string(self.dir.join(name)).map_err(|e| format!("{name}: {e}"))
    }

    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, String> {
        serde_json::from_str(&self.text(name)?).map_err(|e| format!("{name}: unreadable: {e}"))
    }

    fn audit(&self) -> Result<Vec<AuditEntry>, String> {
        self.text(AUDIT)?
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).map_err(|e| format!("{AUDIT}: unreadable entry: {e}")))
            .collect()
    }
}
