//! How an intent is reported to the model: one structured shape for `transfer_funds` and
//! `get_transfer_status`, and a short text that says what happened and what to do next.

use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Serialize;

use super::structured;
use crate::mcp::intents::{IntentRecord, IntentStatus, now_ms};

/// How long after its expiry an intent no process finished is reported as expired.
const ABANDONED_AFTER_MS: i64 = 60_000;

#[derive(Debug, Serialize, JsonSchema)]
pub struct TransferStatusOutput {
    /// completed, pending (the holder has not decided yet), denied, expired, failed or cancelled.
    pub status: IntentStatus,
    /// The transfer intent's id: pass it to get_transfer_status.
    pub intent_id: String,
    /// The reference code shown on the holder's device.
    pub reference: String,
    /// The requested amount, as an exact decimal string.
    pub amount: String,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The account the money leaves.
    pub from_account_id: String,
    /// The account the money goes to.
    pub to_account_id: String,
    /// The memo sent with the transfer, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub memo: Option<String>,
    /// While pending: when the approval request expires (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub expires_at: Option<String>,
    /// Once completed: the transfer the bank executed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ExecutedTransfer")]
    pub transfer: Option<ExecutedTransfer>,
    /// Why it did not complete (denied, expired, failed or cancelled).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecutedTransfer {
    /// The bank's id of the executed transfer.
    pub transfer_id: String,
    /// The bank's status: "completed" once the money has moved.
    pub status: String,
    /// The source account's balance after the transfer, as an exact decimal string.
    pub source_balance_after: String,
    /// When the bank executed it (RFC 3339).
    pub executed_at: String,
}

/// The intent as the model should see it now. An intent left unfinished by a server that stopped is
/// reported expired once its approval request is long past its expiry: it can no longer move money.
pub fn status_output(record: &IntentRecord) -> TransferStatusOutput {
    let abandoned =
        !record.status.is_final() && record.expires_at_ms.is_some_and(|at| now_ms() > at + ABANDONED_AFTER_MS);
    let (status, reason) = if abandoned {
        (IntentStatus::Expired, Some("the approval request expired; no money moved".to_owned()))
    } else {
        (record.status, record.reason.clone())
    };
    TransferStatusOutput {
        status,
        intent_id: record.id.clone(),
        reference: record.reference.clone(),
        amount: record.amount().to_decimal_string(),
        currency: record.currency.clone(),
        from_account_id: record.from_account_id.clone(),
        to_account_id: record.to_account_id.clone(),
        memo: record.memo.clone(),
        expires_at: record.expires_at_ms.filter(|_| !status.is_final()).map(rfc3339),
        transfer: record.receipt().map(|receipt| ExecutedTransfer {
            transfer_id: receipt.id,
            status: receipt.status,
            source_balance_after: receipt.from_account_balance_after,
            executed_at: receipt.created_at,
        }),
        reason,
    }
}

/// A sentence for each status.
pub fn describe(record: &IntentRecord, output: &TransferStatusOutput) -> String {
    let what = format!("{} {} from {} to {}", output.amount, output.currency, record.from_label, record.to_label);
    let reference = &output.reference;
    match output.status {
        IntentStatus::Completed => {
            let transfer = output.transfer.as_ref();
            format!(
                "Transferred {what} (transfer {}, ref {reference}). New balance of {}: {} {}.",
                transfer.map_or("?", |t| t.transfer_id.as_str()),
                record.from_label,
                transfer.map_or("?", |t| t.source_balance_after.as_str()),
                output.currency
            )
        }
        IntentStatus::Pending | IntentStatus::Requesting => format!(
            "Still waiting for the account holder to approve {what} on their device (ref {reference}, the request \
             expires at {}). The wait continues in the background and the transfer will happen once approved. \
             Call get_transfer_status with intent_id \"{}\" to learn the outcome; do not ask for confirmation in chat.",
            output.expires_at.as_deref().unwrap_or("soon"),
            output.intent_id
        ),
        IntentStatus::Denied => {
            format!("The account holder declined the transfer on their device (ref {reference}). No money moved.")
        }
        IntentStatus::Expired => format!(
            "The approval request expired before the account holder approved it (ref {reference}). No money moved."
        ),
        IntentStatus::Cancelled => {
            format!("The transfer was cancelled before approval (ref {reference}). No money moved.")
        }
        IntentStatus::Failed => format!(
            "The transfer of {what} did not complete (ref {reference}): {}.",
            output.reason.as_deref().unwrap_or("unknown failure")
        ),
    }
}

/// `transfer_funds`: completed and pending are results; every other outcome is a tool error.
pub fn transfer_result(record: &IntentRecord) -> CallToolResult {
    let output = status_output(record);
    let text = describe(record, &output);
    match output.status {
        IntentStatus::Completed | IntentStatus::Pending | IntentStatus::Requesting => structured(&output, text),
        _ => CallToolResult::error(vec![ContentBlock::text(text)]),
    }
}

/// `get_transfer_status`: every outcome is an answer to the question asked.
pub fn status_result(record: &IntentRecord) -> CallToolResult {
    let output = status_output(record);
    let text = describe(record, &output);
    structured(&output, text)
}

fn rfc3339(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}
