//! One file per tool, each with the same shape: its description and annotations, its arguments
//! (with a schema description on every field), its validation, the call, and its result type.
//! Every argument's rule, schema and check alike, lives in [`arguments`].

pub mod arguments;
pub mod get_transfer_status;
pub mod list_accounts;
pub mod outcome;
pub mod transfer_funds;

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;

use self::arguments::ArgumentError;
use crate::bank::BankError;
use crate::ciba::CibaError;
use crate::mcp::lifecycle::StoreError;

/// Why a tool could not do its job, in words for the model and the person reading along.
/// The messages name the failing party and the reason; they never contain a token or secret.
#[derive(Debug, thiserror::Error)]
pub enum ToolFailure {
    #[error("{0}")]
    Argument(#[from] ArgumentError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Provider(#[from] CibaError),
    #[error("{0}")]
    Bank(#[from] BankError),
    #[error("{0}")]
    Intents(#[from] StoreError),
}

/// A successful result: structured content matching the tool's `outputSchema`, and a short text.
pub fn structured(output: &impl Serialize, text: String) -> CallToolResult {
    let value = serde_json::to_value(output).expect("tool outputs serialise");
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text)];
    result
}
