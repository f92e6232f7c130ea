//! How an intent is reported to the model: one structured shape for `transfer_funds` and
//! `get_transfer_status`, and a short text that says what happened and what to do next.

use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Serialize;

use super::structured;
use crate::clock::Millis;
use crate::mcp::lifecycle::{IntentState, Status, StoredIntent};

#[derive(Debug, Serialize, JsonSchema)]
pub struct TransferStatusOutput {
    /// Where the transfer is: requesting or pending (the holder has not decided yet), executing (approved; the bank is moving the money), outcome_unknown (approved; whether the bank executed it is not known yet: do not retry), completed, denied, expired, cancelled or failed.
    pub status: Status,
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
    /// Once completed: the server's signed receipt (a compact JWS, ES256) over the intent id, the terms, the holder's approval token and the bank's transfer id; verify it with the keys at /.well-known/bankguard-keys.json.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub receipt: Option<String>,
    /// Why it did not complete (denied, expired, failed or cancelled), or why its outcome is not known yet.
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

/// The intent as the model should see it now.
pub fn status_output(intent: &StoredIntent) -> TransferStatusOutput {
    let terms = &intent.terms;
    let status = intent.status();
    let (expires_at, transfer, reason) = match &intent.state {
        IntentState::Pending { expires_at, .. } => (Some(*expires_at), None, None),
        IntentState::Completed { receipt } => (
            None,
            Some(ExecutedTransfer {
                transfer_id: receipt.id.clone(),
                status: receipt.status.clone(),
                source_balance_after: receipt.from_account_balance_after.clone(),
                executed_at: receipt.created_at.clone(),
            }),
            None,
        ),
        IntentState::Failed { reason } => (None, None, Some(reason.describe())),
        IntentState::OutcomeUnknown { .. } => {
            (None, None, Some("the bank has not confirmed yet whether it executed the transfer".to_owned()))
        }
        IntentState::Denied => (None, None, Some("the account holder declined on their device".to_owned())),
        IntentState::Expired => (None, None, Some("the approval request expired before it was approved".to_owned())),
        IntentState::Cancelled => {
            (None, None, Some("the tool call was cancelled; the approval will not be used".to_owned()))
        }
        IntentState::Requesting | IntentState::Executing { .. } => (None, None, None),
    };
    TransferStatusOutput {
        status,
        intent_id: terms.id.clone(),
        reference: terms.reference.clone(),
        amount: terms.amount.to_decimal_string(),
        currency: terms.currency.to_string(),
        from_account_id: terms.from.id.clone(),
        to_account_id: terms.to.id.clone(),
        memo: terms.memo.clone(),
        expires_at: expires_at.map(Millis::rfc3339),
        transfer,
        receipt: matches!(intent.state, IntentState::Completed { .. }).then(|| intent.server_receipt.clone()).flatten(),
        reason,
    }
}

/// A sentence for each state: what happened, whether money moved, and what to do next.
pub fn describe(intent: &StoredIntent, output: &TransferStatusOutput) -> String {
    let text = describe_state(intent, output);
    match &intent.policy_note {
        Some(note) => format!("{text} Money policy: {note}."),
        None => text,
    }
}

fn describe_state(intent: &StoredIntent, output: &TransferStatusOutput) -> String {
    let terms = &intent.terms;
    let what = format!(
        "{} {} from {} to {}",
        output.amount, output.currency, terms.from.masked_number, terms.to.masked_number
    );
    let reference = &output.reference;
    let follow_up = format!("Call get_transfer_status with intent_id \"{}\"", output.intent_id);
    match &intent.state {
        IntentState::Completed { receipt } => format!(
            "Transferred {what} (transfer {}, Reference {reference}). New balance of {}: {} {}.",
            receipt.id, terms.from.masked_number, receipt.from_account_balance_after, output.currency
        ),
        IntentState::Requesting | IntentState::Pending { .. } => format!(
            "Still waiting for the account holder to approve {what} on their device (Reference {reference}, the request \
             expires at {}). The wait continues in the background and the transfer will happen once approved. \
             {follow_up} to learn the outcome; do not ask for confirmation in chat.",
            output.expires_at.as_deref().unwrap_or("in a few minutes"),
        ),
        IntentState::Executing { .. } => format!(
            "The account holder approved {what} (Reference {reference}); the bank is executing it now. {follow_up} for \
             the result; do not send the transfer again."
        ),
        IntentState::OutcomeUnknown { .. } => format!(
            "The account holder approved {what} (Reference {reference}), but it is not known yet whether the bank executed \
             it: the bank could not be asked, or has not answered. Do not retry the transfer: the server keeps asking \
             the bank, and {} will say whether the money moved.",
            follow_up.replacen("Call ", "", 1)
        ),
        IntentState::Denied => {
            format!("The account holder declined the transfer on their device (Reference {reference}). No money moved.")
        }
        IntentState::Expired => format!(
            "The approval request expired before the account holder approved it (Reference {reference}). No money moved."
        ),
        IntentState::Cancelled => format!(
            "The transfer was cancelled before it was approved (Reference {reference}). No money moved. The approval \
             request may still show on the device; it will not be executed."
        ),
        IntentState::Failed { reason } => {
            format!(
                "The transfer of {what} did not complete (Reference {reference}): {}. No money moved.",
                reason.describe()
            )
        }
    }
}

/// `transfer_funds`: completed and pending are results; every other outcome is a tool error.
/// `transfer_funds`: completed, and every state that may still complete, are results; the outcomes
/// in which no money moved are tool errors.
pub fn transfer_result(intent: &StoredIntent) -> CallToolResult {
    let output = status_output(intent);
    let text = describe(intent, &output);
    match output.status {
        Status::Denied | Status::Expired | Status::Cancelled | Status::Failed => {
            CallToolResult::error(vec![ContentBlock::text(text)])
        }
        _ => structured(&output, text),
    }
}

/// `get_transfer_status`: every outcome is an answer to the question asked.
pub fn status_result(intent: &StoredIntent) -> CallToolResult {
    let output = status_output(intent);
    let text = describe(intent, &output);
    structured(&output, text)
}
