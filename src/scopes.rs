//! The OAuth scopes of the bank API: shared vocabulary of the MCP server that requests them, the
//! authorization server that grants them and the bank API that enforces them.

/// Read any user's accounts: held by the MCP server's own client-credentials token.
pub const READ_ACCOUNTS: &str = "read:accounts";
/// Move money out of the token subject's account: granted only by the account holder's approval.
pub const CREATE_TRANSFER: &str = "create:transfer";
