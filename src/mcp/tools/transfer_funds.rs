//! `transfer_funds`: moves money only after the account holder approves this exact transfer on their
//! own device (CIBA). Destructive and open-world.
//!
//! 1. Validate every argument, first without the network, then against the bank: a bad request is a
//!    tool error and the provider is never asked to approve it.
//! 2. Build the approval from the validated values only ([`TransferIntent`]).
//! 3. Record the intent (`requesting`) and hand it to the runner ([`lifecycle`](crate::mcp::lifecycle)),
//!    which asks the provider, waits, and on approval executes the transfer in the background, so
//!    it finishes even when the client stops waiting.
//! 4. Follow the intent with progress notifications for at most `max_wait_seconds`, then answer with
//!    the outcome, or with a pending result that points to `get_transfer_status`.
//! 5. An explicit cancellation (`notifications/cancelled`) is stored before the call is let go; the
//!    approval is then never redeemed. A client that merely goes away leaves the transfer pending.
//!
//! With an `idempotency_key`, a repeated call with the same arguments follows the first call's intent
//! (no second approval request, no second transfer); different arguments are a tool error.

use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::super::BankguardServer;
use super::super::follow::{Followed, follow};
use super::super::holder::Holder;
use super::super::intent::{AccountLabel, TransferIntent};
use super::super::lifecycle::audit::AuditTerms;
use super::super::lifecycle::{Admission, Claim, StoreError, StoredIntent};
use super::super::policy::Refusal;
use super::super::progress::ProgressReporter;
use super::ToolFailure;
use super::arguments::{AccountId, Arguments, CurrencyCode, DecimalAmount, IdempotencyKey, Memo, present};
use super::outcome::{TransferStatusOutput, transfer_result};
use crate::bank::Account;
use crate::display_text::DisplayText;
use crate::money::{Currency, MinorUnits};

const DESCRIPTION: &str = "Transfer money between bank accounts. The account holder approves every transfer \
    on their own phone before it happens, so do not ask for confirmation in the chat: call this tool and tell the \
    user to check their device. The call waits for the decision and returns the executed transfer, or says that it \
    was declined or expired and that no money moved. If the outcome is not settled yet (status pending, executing or \
    outcome_unknown) it returns an intent_id: call get_transfer_status with it, and never send the transfer again.";

/// The schema and the checks of each field come from its type (see [`super::arguments`]).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferArgs {
    /// Id of the account to send money from: one of the holder's accounts from list_accounts.
    pub from_account_id: AccountId,
    /// Id of the account to send money to.
    pub to_account_id: AccountId,
    /// The amount as a decimal string with at most two decimal places and no currency sign, spaces or thousands separators, e.g. "25", "25.5" or "1250.00".
    pub amount: DecimalAmount,
    /// ISO 4217 currency code in capitals such as "USD". Optional: defaults to the source account's currency, and must match both accounts.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "CurrencyCode")]
    pub currency: Option<CurrencyCode>,
    /// A note for the recipient, shown to the account holder when they approve: at most 140 characters, without line breaks, tabs, bidirectional controls or invisible characters such as zero-width spaces. Optional.
    #[serde(default)]
    pub memo: Memo,
    /// Optional. Any unique string (at most 255 visible ASCII characters) that makes a retry safe: repeating the call with the same key and arguments returns the same transfer intent and never asks or pays twice.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "IdempotencyKey")]
    pub idempotency_key: Option<IdempotencyKey>,
}

/// What the bank said: the terms as the holder will see them, whether the destination is one of
/// the holder's own accounts, and the source's available balance.
struct AtTheBank {
    intent: TransferIntent,
    to_own_account: bool,
    available: MinorUnits,
}

/// The arguments after the checks that need no network.
struct Checked {
    amount: MinorUnits,
    currency: Option<Currency>,
    memo: Option<DisplayText>,
}

#[tool_router(router = transfer_funds_router, vis = "pub(crate)")]
impl BankguardServer {
    #[tool(
        name = "transfer_funds",
        title = "Transfer funds (approved on the holder's device)",
        description = DESCRIPTION,
        output_schema = schema_for_output::<TransferStatusOutput>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = true)
    )]
    pub async fn transfer_funds(
        &self,
        Parameters(arguments): Parameters<Arguments<TransferArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match self.transfer(arguments, &context).await {
            Ok(Some(record)) => transfer_result(&record),
            // rmcp sends no response for a cancelled request; this result goes nowhere.
            Ok(None) => {
                CallToolResult::error(vec![ContentBlock::text("the call was cancelled or its client went away")])
            }
            Err(failure) => CallToolResult::error(vec![ContentBlock::text(failure.to_string())]),
        })
    }
}

impl BankguardServer {
    /// The transfer's intent as it stands when this call stops waiting; `None` when the call was
    /// cancelled or its client went away.
    async fn transfer(
        &self,
        arguments: Arguments<TransferArgs>,
        context: &RequestContext<RoleServer>,
    ) -> Result<Option<StoredIntent>, ToolFailure> {
        let backends = &self.backends;
        let args = arguments.check()?;
        let holder = self.holder(context)?;
        backends.start().await?;
        let store = backends.store();
        let owner = holder.bank_user.as_str();
        let rules = backends.policy.rules_for(owner);
        let checked = check_offline(&args)?;
        let key = args.idempotency_key.as_ref().map(IdempotencyKey::as_str);
        let fingerprint = fingerprint(&args, &checked);
        // A key seen before: follow its intent; never a second approval request.
        if let Some(key) = key
            && let Some(existing) = store.by_key(owner, key, &fingerprint).await?
        {
            return self.watch(existing, context, false).await;
        }

        let AtTheBank { intent, to_own_account, available } = self.check_with_bank(&holder, &args, checked).await?;
        if let Err(refusal) =
            rules.check_amount(intent.amount).and_then(|()| rules.check_payee(&intent.to.id, to_own_account))
        {
            return Err(self.refused(&holder, &intent, refusal).await);
        }
        if available < intent.amount {
            return Err(invalid(format!(
                "The balance of {} is too low: {} {} available, {} {} requested.",
                intent.from.id, available, intent.currency, intent.amount, intent.currency
            )));
        }
        if context.ct.is_cancelled() {
            return Ok(None);
        }
        let admission = Admission { max_pending: backends.limits.max_pending_per_holder, rules: Some(&rules) };
        match store.create(&holder, key, &fingerprint, &intent, &backends.runner.id, &admission).await {
            Ok(Claim::Existing(existing)) => self.watch(existing, context, false).await,
            Ok(Claim::Created(created)) => {
                backends.runner.drive(created.clone(), false);
                self.watch(created, context, true).await
            }
            Err(StoreError::Refused(refusal)) => Err(self.refused(&holder, &intent, refusal).await),
            Err(other) => Err(other.into()),
        }
    }

    /// A transfer the money policy refused: recorded in the audit trail, then the tool error.
    async fn refused(&self, holder: &Holder, intent: &TransferIntent, refusal: Refusal) -> ToolFailure {
        let terms = AuditTerms::from(intent);
        if let Err(error) =
            self.backends.store().record_policy_refusal(holder, &terms, refusal.rule, &refusal.detail).await
        {
            tracing::error!(%error, reference = %intent.reference, "could not record a policy refusal in the audit trail");
        }
        tracing::info!(rule = refusal.rule, reference = %intent.reference, "refused by the money policy");
        StoreError::Refused(refusal).into()
    }

    /// Follows an intent with progress. A call that created the intent (`owns`) cancels it if the
    /// client cancels the call; a call that follows another's intent (same key) leaves it be.
    async fn watch(
        &self,
        intent: StoredIntent,
        context: &RequestContext<RoleServer>,
        owns: bool,
    ) -> Result<Option<StoredIntent>, ToolFailure> {
        let backends = &self.backends;
        if owns && self.calls.follows(&context.id, intent.id()) {
            // Cancelled before the intent existed: cancel it now, before the call is let go.
            backends.runner.cancel(intent.id()).await.map_err(|e| ToolFailure::Invalid(e.to_string()))?;
            self.calls.finished(&context.id);
            return Ok(None);
        }
        let lifetime = backends.limits.requested_expiry;
        let mut progress = self.progress(context, lifetime, &intent);
        if owns {
            progress.request_sent().await;
        }
        let followed = follow(
            backends.store(),
            intent,
            backends.limits.max_wait,
            backends.limits.progress_interval,
            &context.ct,
            Some(&mut progress),
        )
        .await?;
        match followed {
            Followed::Settled(intent) => {
                self.calls.finished(&context.id);
                Ok(Some(*intent))
            }
            // The mapping stays: an explicit cancellation may still be on its way to `on_cancelled`.
            Followed::Stopped => Ok(None),
        }
    }

    pub(crate) fn progress(
        &self,
        context: &RequestContext<RoleServer>,
        lifetime: std::time::Duration,
        intent: &StoredIntent,
    ) -> ProgressReporter {
        ProgressReporter::new(
            context.peer.clone(),
            context.meta.get_progress_token(),
            lifetime,
            self.backends.store().clock().clone(),
            intent,
        )
    }

    /// The checks that need the bank: both accounts exist, the source is the holder's, and the
    /// currencies agree (the balance is compared after the money policy, whose limits come first).
    async fn check_with_bank(
        &self,
        holder: &Holder,
        args: &TransferArgs,
        checked: Checked,
    ) -> Result<AtTheBank, ToolFailure> {
        let bank = &self.backends.bank;
        let accounts = bank.accounts(&holder.bank_user).await?;
        let find = |id: &AccountId| accounts.iter().find(|a| a.id == id.as_str());
        let Some(source) = find(&args.from_account_id) else {
            return Err(match bank.payee(args.from_account_id.as_str()).await? {
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
        let to_own_account = find(&args.to_account_id).is_some();
        let (destination_label, destination_currency) = match find(&args.to_account_id) {
            Some(own) => (label(own), own.currency.clone()),
            None => {
                let payee = bank.payee(args.to_account_id.as_str()).await?;
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
        let intent = TransferIntent::new(label(source), destination_label, checked.amount, currency, checked.memo);
        Ok(AtTheBank { intent, to_own_account, available })
    }
}

/// The checks that need nothing but the arguments and the configuration; the arguments' own rules
/// have already held (see [`super::arguments`]).
fn check_offline(args: &TransferArgs) -> Result<Checked, ToolFailure> {
    let DecimalAmount(amount) = args.amount;
    if args.from_account_id == args.to_account_id {
        return Err(invalid("to_account_id: is the same account as from_account_id; send to another account.".into()));
    }
    let currency = args.currency.map(|CurrencyCode(currency)| currency);
    Ok(Checked { amount, currency, memo: args.memo.clone().into_text() })
}

/// What "the same arguments" means for an idempotency key: the parsed terms, so "25" and "25.00" agree.
fn fingerprint(args: &TransferArgs, checked: &Checked) -> String {
    serde_json::json!([
        args.from_account_id.as_str(),
        args.to_account_id.as_str(),
        checked.amount.0,
        checked.currency.map(|c| c.to_string()),
        checked.memo.as_ref().map(DisplayText::as_str)
    ])
    .to_string()
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
