//! `get_transfer_status`: the outcome of a transfer intent that `transfer_funds` left pending
//! (completed with the transfer, denied, expired, cancelled, failed with a reason, or not known
//! yet while the bank is asked), or still pending after waiting up to `wait_seconds`, with progress
//! while it waits. Read-only; it sees only the intents of
//! the holder this server acts for.

use std::time::Duration;

use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::super::BankguardServer;
use super::super::follow::{Followed, follow};
use super::ToolFailure;
use super::arguments::{Arguments, IntentId, WaitSeconds};
use super::outcome::{TransferStatusOutput, status_result};

const DESCRIPTION: &str = "Get the outcome of a transfer that transfer_funds reported as pending: completed (with the \
    executed transfer), denied, expired, cancelled, failed (with the reason), outcome_unknown (the bank is being asked; do \
    not retry), or still pending. It can wait up to wait_seconds \
    for the account holder's decision. Do not ask the user to confirm in chat; they decide on their own device.";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusArgs {
    /// The intent_id that transfer_funds returned.
    pub intent_id: IntentId,
    /// How long to wait for the holder's decision before answering, 0 to 45 seconds. Optional: 0 answers at once.
    #[serde(default)]
    pub wait_seconds: WaitSeconds,
}

#[tool_router(router = get_transfer_status_router, vis = "pub(crate)")]
impl BankguardServer {
    #[tool(
        name = "get_transfer_status",
        title = "Get a transfer's status",
        description = DESCRIPTION,
        output_schema = schema_for_output::<TransferStatusOutput>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    pub async fn get_transfer_status(
        &self,
        Parameters(arguments): Parameters<Arguments<StatusArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match self.transfer_status(arguments, &context).await {
            Ok(Some(result)) => result,
            Ok(None) => CallToolResult::error(vec![ContentBlock::text("cancelled")]),
            Err(failure) => CallToolResult::error(vec![ContentBlock::text(failure.to_string())]),
        })
    }
}

impl BankguardServer {
    async fn transfer_status(
        &self,
        arguments: Arguments<StatusArgs>,
        context: &RequestContext<RoleServer>,
    ) -> Result<Option<CallToolResult>, ToolFailure> {
        let args = arguments.check()?;
        let backends = &self.backends;
        backends.start().await?;
        let intent_id = args.intent_id.as_str();
        let holder = self.holder(context)?;
        let intent = backends.store().get(&holder.bank_user, intent_id).await?.ok_or_else(|| {
            ToolFailure::Invalid(format!("There is no transfer intent {intent_id:?} for this account holder."))
        })?;
        let mut progress = self.progress(context, backends.limits.requested_expiry, &intent);
        let bound = Duration::from_secs(args.wait_seconds.0);
        let every = backends.limits.progress_interval;
        match follow(backends.store(), intent, bound, every, &context.ct, Some(&mut progress)).await? {
            Followed::Settled(intent) => Ok(Some(status_result(&intent))),
            Followed::Stopped => Ok(None),
        }
    }
}
