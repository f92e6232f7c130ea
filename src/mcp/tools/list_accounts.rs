//! `list_accounts`: the account holder's accounts and balances. Read-only and idempotent; it calls
//! the bank with the server's own client-credentials token (`read:accounts`).

use rmcp::handler::server::common::schema_for_output;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{ErrorData, tool, tool_router};
use schemars::JsonSchema;
use serde::Serialize;

use super::super::BankguardServer;
use super::{ToolFailure, structured};
use crate::bank::Account;

const DESCRIPTION: &str = "List the account holder's bank accounts with their ids, names, types, masked numbers, \
                           currencies and balances. Use the ids with transfer_funds.";

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
    pub async fn list_accounts(&self) -> Result<CallToolResult, ErrorData> {
        Ok(match self.accounts().await {
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
    pub(crate) async fn accounts(&self) -> Result<Vec<Account>, ToolFailure> {
        Ok(self.backends.bank.accounts(&self.backends.user).await?)
    }
}
