//! Who a tool call acts for: the account holder whose accounts it reads, whose intents it owns and
//! whose device is asked to approve.
//!
//! Over stdio, and over Streamable HTTP with `mcp.auth = "none"`, that is always the configured
//! `mcp.user`. With `mcp.auth = "oauth"` it is the holder named by the access token the HTTP request
//! carries: [`super::transport::oauth`] verifies the token and puts the [`Holder`] into the request's
//! extensions, where rmcp hands it to the tool (inside the request's `http::request::Parts`).

use rmcp::RoleServer;
use rmcp::service::RequestContext;

use crate::ciba::types::LoginHint;
use crate::config::LoginHintFormat;

/// One account holder, as the provider and the bank each know them, and the MCP client acting for
/// them in this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Their subject at the provider: what the CIBA `login_hint` names.
    pub subject: String,
    /// Their user id at the bank: whose accounts are listed, and the owner of their intents.
    pub bank_user: String,
    /// The client acting for them, as the audit trail records it: the OAuth `client_id` its access
    /// token names (authenticated), or `"<name> (declared)"`, the name it gave at `initialize`
    /// (anyone can claim any name), or `None` when neither is known.
    pub client: Option<String>,
}

impl Holder {
    /// The configured holder (`mcp.user`), the same at the provider and at the bank.
    pub fn configured(user: &str) -> Self {
        Self { subject: user.to_owned(), bank_user: user.to_owned(), client: None }
    }

    /// The same holder, acting through the client that declared itself as `name` at `initialize`.
    pub fn through_declared_client(mut self, name: Option<&str>) -> Self {
        if self.client.is_none() {
            self.client = name.filter(|name| !name.is_empty()).map(|name| format!("{name} (declared)"));
        }
        self
    }

    /// The holder a request's verified access token named, if the HTTP layer put one there.
    pub fn signed_in(context: &RequestContext<RoleServer>) -> Option<&Holder> {
        context.extensions.get::<axum::http::request::Parts>().and_then(|parts| parts.extensions.get::<Holder>())
    }
}

/// How a holder's subject becomes the CIBA `login_hint` (`mcp.login_hint_format`).
#[derive(Debug, Clone)]
pub struct LoginHints {
    pub format: LoginHintFormat,
    /// The CIBA provider's issuer, for Auth0's `iss_sub` form.
    pub issuer: String,
}

impl LoginHints {
    pub fn for_subject(&self, subject: &str) -> LoginHint {
        match self.format {
            LoginHintFormat::Plain => LoginHint::plain(subject),
            LoginHintFormat::IssSub => LoginHint::iss_sub(&self.issuer, subject),
        }
    }
}
