//! bankguard: an MCP server that lets AI assistants work with a bank account without ever being able
//! to move money on their own. Every transfer is approved by the account holder on a separate device
//! through OpenID Connect CIBA, and the bank accepts only a token that approves exactly that transfer.
//!
//! # Map of the crate
//!
//! Shared vocabulary (both sides may use it):
//! - [`money`]: exact amounts in integer minor units, and their decimal strings.
//! - [`display_text`]: text a person reads on the approval device (memos): nothing invisible or reordering, NFC.
//! - [`authorization_details`]: the RFC 9396 `payment_initiation` detail that binds an approval to one transfer.
//! - [`scopes`]: the OAuth scopes of the bank API.
//! - [`config`]: typed configuration (TOML file + `BANKGUARD_*` variables) and every default.
//! - [`telemetry`]: logs to stderr through `tracing`.
//! - [`http_client`]: the one builder of outbound HTTP clients.
//! - [`http_server`]: the one way HTTP is served: axum, with `TCP_NODELAY` on every connection.
//! - [`secrets`]: random secrets, private files, constant-time comparison.
//! - [`data_dir`]: the data directory and its files, the owner's alone (0700, 0600).
//! - [`sqlite`]: how SQLite databases are opened (owner-only files, WAL, migrations, one writer).
//! - [`clock`]: the one source of time, so tests move a manual clock instead of sleeping.
//!
//! Client side, the product: what an AI client talks to and what it talks to.
//! - [`mcp`]: the MCP server (rmcp): `list_accounts`, `transfer_funds`, `get_transfer_status`, progress, cancellation,
//!   stdio and Streamable HTTP (with `/healthz`, `/readyz` and `/metrics` beside `/mcp`).
//! - [`ciba`]: the CIBA client that asks the account holder's approval.
//! - [`provider_keys`]: an authorization server's published signing keys, fetched and cached.
//! - [`bank`]: the typed client of the bank API.
//! - [`check`]: `bankguard check`, the effective configuration and whether the provider, the bank API
//!   and the data directory agree with it.
//!
//! Server side, the embedded default that stands in for Auth0 and a real bank:
//! - [`devstack`]: the authorization server ([`devstack::authz`]: CIBA for approvals, sign-in for MCP
//!   clients), the reference bank API
//!   ([`devstack::bank_api`]) and the demo seed.
//!
//! The two sides never import each other; they meet over HTTP. The CLI (`src/main.rs`) wires them
//! together: `bankguard serve`, `check`, `migrate`, `audit`, `keys`, `evidence`, `dev`, `demo`, `pending`, `approve`,
//! `deny`.

pub mod authorization_details;
pub mod bank;
pub mod check;
pub mod ciba;
pub mod clock;
pub mod config;
pub mod data_dir;
pub mod devstack;
pub mod display_text;
pub mod http_client;
pub mod http_server;
pub mod mcp;
pub mod money;
pub mod provider_keys;
pub mod scopes;
pub mod secrets;
pub mod sqlite;
pub mod telemetry;
