//! `list_accounts`: the account holder's accounts and balances. Read-only and idempotent; it calls
//! the bank with the server's own client-credentials token (`read:accounts`).

use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::super::BankguardServer;
use super::arguments::Arguments;
use super::{ToolFailure, structured};
use crate::bank::Account;

const DESCRIPTION: &str = "List the account holder's bank accounts with their ids, names, types, masked numbers, \
                           currencies and balances. Use the ids with transfer_funds.";

/// No arguments: anything sent is refused, as for every tool (`additionalProperties: false`).
/// `properties: {}` is kept explicit: some clients expect every object schema to name its properties.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("properties" = {}))]
pub struct NoArguments {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AccountsOutput {
    /// The account holder's accounts.
    pub accounts: Vec<Account>,
}

#[tool_router(router = list_accounts_router, vis = "pub(crate)")]
impl BankguardServer {
    #[tool(
        name = "list_accounts",
        title = "List bank accounts",
        description = DESCRIPTION,
        output_schema = schema_for_output::<AccountsOutput>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    pub async fn list_accounts(
        &self,
        Parameters(arguments): Parameters<Arguments<NoArguments>>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        if let Err(refused) = arguments.check() {
            return Ok(CallToolResult::error(vec![ContentBlock::text(refused.to_string())]));
        }
        Ok(match self.accounts(&context).await {
            Ok(accounts) => {
                let lines: Vec<String> = accounts
                    .iter()
                    .map(|a| format!("{} ({}, {}): {} {}", a.name, a.masked_number, a.id, a.balance, a.currency))
                    .collect();
                let output = AccountsOutput { accounts };
                structured(&output, lines.join("\n"))
            }
            Err(failure) => CallToolResult::error(vec![ContentBlock::text(failure.to_string())]),
        })
    }
}

impl BankguardServer {
    /// The accounts of the holder this call acts for.
    pub(crate) async fn accounts(&self, context: &RequestContext<RoleServer>) -> Result<Vec<Account>, ToolFailure> {
        let holder = self.holder(context)?;
        Ok(self.backends.bank.accounts(&holder.bank_user).await?)
    }
}
