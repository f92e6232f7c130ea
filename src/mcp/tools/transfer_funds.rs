//! `transfer_funds`: moves money only after the account holder approves this exact transfer on their
//! own device (CIBA). Destructive and open-world.
//!
//! 1. Validate every argument, first without the network, then against the bank: a bad request is a
//!    tool error and the provider is never asked to approve it.
//! 2. Build the approval from the validated values only ([`TransferIntent`]).
//! 3. Ask the provider, then wait (poll, `slow_down`, expiry, ping), with progress notifications.
//! 4. Cancellation ends the wait; a cancelled call never redeems a token or moves money.
//! 5. On approval, send the transfer to the bank with the issued token and the intent id as
//!    `Idempotency-Key`. The token goes nowhere else.

use std::time::Duration;

use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::super::BankguardServer;
use super::super::intent::{AccountLabel, TransferIntent};
use super::super::progress::ProgressReporter;
use super::{ToolFailure, structured};
use crate::bank::{Account, TransferOrder, TransferReceipt};
use crate::ciba::request::ApprovalRequest;
use crate::ciba::types::Secret;
use crate::ciba::wait::ApprovalOutcome;
use crate::money::{Currency, MinorUnits, MoneyError};

/// Longest memo, in characters.
pub const MAX_MEMO_CHARS: usize = 140;

const DESCRIPTION: &str = "Transfer money between bank accounts. The account holder approves every transfer \
    on their own phone before it happens, so do not ask for confirmation in the chat: call this tool and tell the \
    user to check their device. The call waits for the decision and returns the executed transfer, or says that it \
    was declined or expired and that no money moved.";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferArgs {
    /// Id of the account to send money from: one of the holder's accounts from list_accounts.
    pub from_account_id: String,
    /// Id of the account to send money to.
    pub to_account_id: String,
    /// The amount as a decimal string with at most two decimal places and no currency sign or thousands separators, e.g. "25", "25.5" or "1250.00".
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]{1,2})?$"))]
    #[serde(deserialize_with = "decimal_string")]
    pub amount: String,
    /// ISO 4217 currency code such as "USD". Optional: defaults to the source account's currency, and must match both accounts.
    #[serde(default)]
    pub currency: Option<String>,
    /// A note for the recipient, at most 140 printable characters. Optional.
    #[serde(default)]
    pub memo: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TransferOutput {
    /// The bank's id of the executed transfer.
    pub transfer_id: String,
    /// "completed" once the money has moved.
    pub status: String,
    /// The amount moved, as an exact decimal string.
    pub amount: String,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The account the money left.
    pub from_account_id: String,
    /// The account the money reached.
    pub to_account_id: String,
    /// The memo sent with the transfer, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    /// The source account's balance after the transfer, as an exact decimal string.
    pub source_balance_after: String,
    /// The reference code the account holder saw on their device.
    pub reference: String,
}

/// The arguments after the checks that need no network.
struct Checked {
    amount: MinorUnits,
    currency: Option<Currency>,
    memo: Option<String>,
}

#[tool_router(router = transfer_funds_router, vis = "pub(crate)")]
impl BankguardServer {
    #[tool(
        name = "transfer_funds",
        title = "Transfer funds (approved on the holder's device)",
        description = DESCRIPTION,
        output_schema = schema_for_output::<TransferOutput>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = true)
    )]
    pub async fn transfer_funds(
        &self,
        Parameters(args): Parameters<TransferArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let cancel = context.ct.clone();
        let progress_token = context.meta.get_progress_token();
        let mut progress = |lifetime, reference: &str| {
            ProgressReporter::new(context.peer.clone(), progress_token.clone(), lifetime, reference)
        };
        match self.transfer(args, &cancel, &mut progress).await {
            Ok(Some((receipt, intent))) => {
                let text = format!(
                    "Transferred {} {} from {} to {} (transfer {}, ref {}). New balance of {}: {} {}.",
                    receipt.amount,
                    receipt.currency,
                    intent.from.masked_number,
                    intent.to.masked_number,
                    receipt.id,
                    intent.reference,
                    intent.from.masked_number,
                    receipt.from_account_balance_after,
                    receipt.currency
                );
                let output = TransferOutput {
                    transfer_id: receipt.id,
                    status: receipt.status,
                    amount: receipt.amount,
                    currency: receipt.currency,
                    from_account_id: receipt.from_account_id,
                    to_account_id: receipt.to_account_id,
                    memo: receipt.memo,
                    source_balance_after: receipt.from_account_balance_after,
                    reference: intent.reference,
                };
                Ok(structured(&output, text))
            }
            // Cancelled: rmcp sends no response for a cancelled request; this result goes nowhere.
            Ok(None) => Ok(CallToolResult::error(vec![ContentBlock::text("cancelled; no money moved")])),
            Err(failure) => Ok(CallToolResult::error(vec![ContentBlock::text(failure.to_string())])),
        }
    }
}

impl BankguardServer {
    /// The whole transfer; `Ok(None)` when cancelled.
    async fn transfer(
        &self,
        args: TransferArgs,
        cancel: &CancellationToken,
        progress: &mut impl FnMut(Duration, &str) -> ProgressReporter,
    ) -> Result<Option<(TransferReceipt, TransferIntent)>, ToolFailure> {
        let checked = check_offline(&args, self.backends.max_transfer)?;
        let intent = self.check_with_bank(&args, checked).await?;
        let backends = &self.backends;

        let notification_token = backends.pings.as_ref().map(|_| Secret::new(crate::secrets::random_token(32)));
        let ping = backends.pings.as_ref().zip(notification_token.as_ref()).map(|(pings, token)| pings.register(token));
        let request = ApprovalRequest {
            scope: backends.approval_scope.clone(),
            login_hint: backends.login_hint.clone(),
            binding_message: intent.binding_message(),
            audience: backends.audience.clone(),
            requested_expiry: Some(backends.requested_expiry),
            authorization_details: Some(intent.authorization_details()),
            client_notification_token: notification_token,
        };
        let started = backends.ciba.start(&request).await?;
        tracing::info!(reference = %intent.reference, intent = %intent.id, "approval requested");

        let mut reporter = progress(started.expires_in, &intent.reference);
        reporter.request_sent().await;
        let wait = backends.ciba.wait(&started, ping.as_ref().map(|p| p.notify.as_ref()), cancel);
        tokio::pin!(wait);
        let mut ticker = tokio::time::interval(backends.progress_interval);
        ticker.tick().await; // the first tick is immediate; the first message was just sent
        let outcome = loop {
            tokio::select! {
                outcome = &mut wait => break outcome?,
                _ = ticker.tick() => reporter.still_waiting().await,
            }
        };

        let tokens = match outcome {
            ApprovalOutcome::Approved(tokens) => tokens,
            ApprovalOutcome::Cancelled => {
                tracing::info!(reference = %intent.reference, "cancelled while waiting; nothing will move");
                return Ok(None);
            }
            ApprovalOutcome::Denied => {
                tracing::info!(reference = %intent.reference, "declined on the device");
                return Err(ToolFailure::Invalid(format!(
                    "The account holder declined the transfer on their device (ref {}). No money moved.",
                    intent.reference
                )));
            }
            ApprovalOutcome::Expired => {
                tracing::info!(reference = %intent.reference, "expired unapproved");
                return Err(ToolFailure::Invalid(format!(
                    "The approval request expired before the account holder approved it (ref {}). No money moved.",
                    intent.reference
                )));
            }
        };
        if cancel.is_cancelled() {
            return Ok(None);
        }
        let order = TransferOrder {
            from_account_id: &intent.from.id,
            to_account_id: &intent.to.id,
            amount: intent.amount.to_decimal_string(),
            currency: intent.currency.as_str(),
            memo: intent.memo.as_deref(),
        };
        let receipt = backends.bank.transfer(&tokens.access_token, &intent.id, &order).await?;
        tracing::info!(reference = %intent.reference, transfer = %receipt.id, "transfer executed");
        Ok(Some((receipt, intent)))
    }

    /// The checks that need the bank: both accounts exist, the source is the holder's, the currencies
    /// agree, and the balance covers the amount.
    async fn check_with_bank(&self, args: &TransferArgs, checked: Checked) -> Result<TransferIntent, ToolFailure> {
        let accounts = self.accounts().await?;
        let find = |id: &str| accounts.iter().find(|a| a.id == id);
        let Some(source) = find(&args.from_account_id) else {
            let token = self.backends.read_token.token(&self.backends.ciba).await?;
            return Err(match self.backends.bank.payee(&args.from_account_id, &token).await? {
                Some(_) => invalid(format!(
                    "Account {} is not one of the account holder's accounts; money can only be sent from: {}.",
                    args.from_account_id,
                    ids(&accounts)
                )),
                None => invalid(format!(
                    "There is no account {}. The holder's accounts are: {}.",
                    args.from_account_id,
                    ids(&accounts)
                )),
            });
        };
        let (destination_label, destination_currency) = match find(&args.to_account_id) {
            Some(own) => (label(own), own.currency.clone()),
            None => {
                let token = self.backends.read_token.token(&self.backends.ciba).await?;
                let payee = self.backends.bank.payee(&args.to_account_id, &token).await?;
                let payee = payee.ok_or_else(|| invalid(format!("There is no account {}.", args.to_account_id)))?;
                (AccountLabel { id: payee.id, masked_number: payee.masked_number }, payee.currency)
            }
        };
        let source_currency: Currency =
            source.currency.parse().map_err(|_| invalid(format!("account {} has no usable currency", source.id)))?;
        let currency = checked.currency.unwrap_or(source_currency);
        if currency != source_currency {
            return Err(invalid(format!(
                "Account {} holds {}, not {currency}; leave currency out or use {}.",
                source.id, source.currency, source.currency
            )));
        }
        if destination_currency != currency.as_str() {
            return Err(invalid(format!(
                "Account {} holds {destination_currency} and {} holds {}; transfers between currencies are not supported.",
                args.to_account_id, source.id, source.currency
            )));
        }
        let available = MinorUnits::parse_decimal(&source.available_balance)
            .map_err(|_| invalid(format!("the bank reported an unreadable balance for {}", source.id)))?;
        if available < checked.amount {
            return Err(invalid(format!(
                "The balance of {} is too low: {} {} available, {} {} requested.",
                source.id, available, currency, checked.amount, currency
            )));
        }
        Ok(TransferIntent::new(label(source), destination_label, checked.amount, currency, checked.memo))
    }
}

/// The checks that need nothing but the arguments.
fn check_offline(args: &TransferArgs, max_transfer: MinorUnits) -> Result<Checked, ToolFailure> {
    let amount = MinorUnits::parse_decimal(args.amount.trim()).map_err(|e| match e {
        MoneyError::TooManyDecimals(_) => invalid(format!("The amount {:?} has more than two decimal places.", args.amount)),
        MoneyError::TooLarge => invalid(format!("The amount {:?} is too large.", args.amount)),
        _ => invalid(format!(
            "The amount {:?} is not a plain decimal number; write it like \"25\" or \"25.50\", without a currency sign.",
            args.amount
        )),
    })?;
    if !amount.is_positive() {
        return Err(invalid(format!("The amount must be greater than zero, not {:?}.", args.amount)));
    }
    if amount > max_transfer {
        return Err(invalid(format!("The amount {amount} is over the limit of {max_transfer} per transfer.")));
    }
    if args.from_account_id.trim().is_empty() || args.to_account_id.trim().is_empty() {
        return Err(invalid("Both from_account_id and to_account_id are required; see list_accounts.".into()));
    }
    if args.from_account_id == args.to_account_id {
        return Err(invalid("The source and destination accounts are the same.".into()));
    }
    let currency = match &args.currency {
        Some(code) => Some(code.trim().to_ascii_uppercase().parse::<Currency>().map_err(|e| invalid(e.to_string()))?),
        None => None,
    };
    let memo = match args.memo.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(memo) if memo.chars().count() > MAX_MEMO_CHARS => {
            return Err(invalid(format!("The memo is longer than {MAX_MEMO_CHARS} characters.")));
        }
        Some(memo) if memo.chars().any(char::is_control) => {
            return Err(invalid("The memo may only contain printable characters (no line breaks or tabs).".into()));
        }
        Some(memo) => Some(memo.to_owned()),
    };
    Ok(Checked { amount, currency, memo })
}

/// The amount must arrive as a string: a JSON number would already have passed through a float.
fn decimal_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Ok(text),
        serde_json::Value::Number(number) => Err(serde::de::Error::custom(format!(
            "amount must be a decimal string such as \"{number}\", not a JSON number"
        ))),
        other => {
            Err(serde::de::Error::custom(format!("amount must be a decimal string such as \"25.00\", not {other}")))
        }
    }
}

fn invalid(message: String) -> ToolFailure {
    ToolFailure::Invalid(message)
}

fn label(account: &Account) -> AccountLabel {
    AccountLabel { id: account.id.clone(), masked_number: account.masked_number.clone() }
}

fn ids(accounts: &[Account]) -> String {
    accounts.iter().map(|a| a.id.as_str()).collect::<Vec<_>>().join(", ")
}
