//! The MCP server: what AI clients see. Tools `list_accounts`, `transfer_funds` and `get_transfer_status`, over stdio
//! or Streamable HTTP, built on rmcp.
//!
//! - [`tools`]: one file per tool (description, annotations, schema, validation, call, result).
//! - [`intent`]: a validated transfer and everything derived from it for the approval.
//! - [`lifecycle`]: the transfer intent's states, their one transition function, their store, and
//!   the runner that carries each intent from the approval request to the bank's answer.
//! - [`holder`]: who a call acts for: the configured `mcp.user`, or the holder who signed in.
//! - [`follow`] and [`progress`]: a tool call watching an intent, with progress notifications.
//! - [`cancellation`]: explicit cancellations, stored before they are let go.
//! - [`consent`]: proof of consent: approvals checked and kept, signed receipts, evidence packs.
//! - [`server_key`]: the server's own signing key (receipts, audit heads) and the keys it trusts.
//! - [`bank_access`]: the bank with the server's own read token.
//! - [`metrics`]: what `GET /metrics` reports (one registry per server, no personal data).
//! - [`backends`]: all of the above, built from configuration.
//! - [`transport`]: stdio, and Streamable HTTP on loopback with `Host`/`Origin` checks and the
//!   CIBA ping endpoint.
//!
//! Client side only: it reaches the provider and the bank over HTTP and never imports `devstack`.
//! The model only ever sees tool results; the issued access token stays inside [`tools::transfer_funds`].

pub mod backends;
pub mod bank_access;
pub mod cancellation;
pub mod consent;
pub mod follow;
pub mod holder;
pub mod intent;
pub mod lifecycle;
pub mod metrics;
pub mod policy;
pub mod progress;
pub mod server_key;
pub mod tools;
pub mod transport;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{CancelledNotificationParam, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{RoleServer, ServerHandler, tool_handler};

pub use backends::Backends;
use cancellation::Calls;
use holder::Holder;

/// Reported in `initialize`: bankguard's own name and version, not rmcp's.
pub const SERVER_NAME: &str = "bankguard";

const INSTRUCTIONS: &str = "Work with the user's bank accounts. list_accounts shows accounts and balances. \
    transfer_funds moves money only after the account holder approves that exact transfer on their own phone; \
    never ask for confirmation in the chat, just call it and tell the user to check their device. If it answers \
    that the approval is still pending, call get_transfer_status with the intent_id to learn the outcome.";

#[derive(Clone)]
pub struct BankguardServer {
    backends: Arc<Backends>,
    /// This connection's calls that follow an intent, for explicit cancellation.
    calls: Calls,
    tool_router: ToolRouter<Self>,
}

impl BankguardServer {
    /// A server for one connection; `calls` is shared with the transport when it watches
    /// cancellations itself (stdio).
    pub fn new(backends: Arc<Backends>, calls: Calls) -> Self {
        let mut tool_router =
            Self::list_accounts_router() + Self::transfer_funds_router() + Self::get_transfer_status_router();
        if backends.read_only {
            // The tools' own annotations decide, so a new tool cannot be forgotten in a second list.
            for tool in tool_router.list_all() {
                if tool.annotations.as_ref().and_then(|annotations| annotations.read_only_hint) != Some(true) {
                    tool_router.remove_route(&tool.name);
                }
            }
        }
        Self { backends, calls, tool_router }
    }
}

impl BankguardServer {
    /// Who this call acts for: the holder its access token named, or the configured one where
    /// holders do not sign in.
    pub(crate) fn holder(&self, context: &RequestContext<RoleServer>) -> Result<Holder, tools::ToolFailure> {
        let declared = context.peer.peer_info().map(|info| info.client_info.name.clone());
        let holder = match Holder::signed_in(context) {
            Some(holder) => holder.clone(),
            None if self.backends.signed_in_only => {
                return Err(tools::ToolFailure::Invalid(
                    "this request carries no signed-in account holder; sign in and send the access token".to_owned(),
                ));
            }
            None => self.backends.configured_holder.clone(),
        };
        Ok(holder.through_declared_client(declared.as_deref()))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for BankguardServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION"))
                    .with_title("bankguard: bank access with approval on your device"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    /// `notifications/cancelled`: the transfer the call follows is cancelled, durably.
    async fn on_cancelled(&self, notification: CancelledNotificationParam, _: NotificationContext<RoleServer>) {
        if let Some(request) = &notification.request_id {
            self.calls.cancel_durably(request, &self.backends.runner).await;
        }
    }
}
