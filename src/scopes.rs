//! The OAuth scopes of the bank API and of the MCP endpoint: shared vocabulary of the MCP server
//! that requests or enforces them, the authorization server that grants them and the bank API that
//! enforces its own.

/// Read any user's accounts: held by the MCP server's own client-credentials token.
pub const READ_ACCOUNTS: &str = "read:accounts";
/// Move money out of the token subject's account: granted only by the account holder's approval.
pub const CREATE_TRANSFER: &str = "create:transfer";
/// Use the MCP server's tools as the signed-in holder: what an MCP client's token must carry when
/// `mcp.auth = "oauth"`.
pub const MCP_TOOLS: &str = "mcp:tools";
