//! What the fault proxy does to which requests: a [`Fault`], and the [`Rule`] that picks requests for it.

use std::fmt::Display;
use std::time::Duration;

/// What happens to a request a [`Rule`] matches.
#[derive(Clone, Debug)]
pub enum Fault {
    /// The upstream never sees the request; the client gets this answer.
    RespondWithoutForwarding { status: u16, body: String, content_type: &'static str },
    /// The upstream never sees the request; the client's connection is reset.
    ResetWithoutForwarding,
    /// The upstream processes the request; the client gets this answer instead of the real one.
    ForwardThenRespond { status: u16, body: String, content_type: &'static str },
    /// The upstream processes the request; the client's connection is reset instead of answered.
    ForwardThenReset,
    /// The upstream processes the request; the client gets the real head (with the real
    /// `Content-Length`) and only the first bytes of the body, then the connection closes.
    ForwardThenTruncate { keep_body_bytes: usize },
    /// The upstream processes the request; the client gets the real answer this much later.
    ForwardThenDelay(Duration),
    /// The upstream never sees the request; the connection stays open, unanswered, until the client
    /// gives up or the proxy is dropped.
    Hang,
}

impl Fault {
    /// Answers `status` with a JSON `body` without forwarding.
    pub fn status(status: u16, body: impl Display) -> Self {
        Self::RespondWithoutForwarding { status, body: body.to_string(), content_type: "application/json" }
    }

    /// Answers an OAuth error response (RFC 6749 §5.2) such as `slow_down`, without forwarding.
    pub fn oauth_error(status: u16, error: &str) -> Self {
        Self::status(status, serde_json::json!({ "error": error }))
    }

    /// The variant's name, as [`FaultProxy::log`](super::FaultProxy::log) shows it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RespondWithoutForwarding { .. } => "RespondWithoutForwarding",
            Self::ResetWithoutForwarding => "ResetWithoutForwarding",
            Self::ForwardThenRespond { .. } => "ForwardThenRespond",
            Self::ForwardThenReset => "ForwardThenReset",
            Self::ForwardThenTruncate { .. } => "ForwardThenTruncate",
            Self::ForwardThenDelay(_) => "ForwardThenDelay",
            Self::Hang => "Hang",
        }
    }
}

/// How many matching requests a [`Rule`] applies to before it is spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    Once,
    N(u32),
    Always,
}

/// Which requests get which fault. The first live rule that matches applies; unmatched requests pass.
#[derive(Clone, Debug)]
pub struct Rule {
    /// `None` matches every method.
    pub method: Option<&'static str>,
    /// Matched against the path, without the query.
    pub path_prefix: String,
    pub fault: Fault,
    pub times: Times,
}

/// The request side of a [`Rule`], waiting for its fault: `Rule::on("POST", "/api/transfers").once(..)`.
pub struct RuleFor {
    method: Option<&'static str>,
    path_prefix: String,
}

impl Rule {
    pub fn on(method: &'static str, path_prefix: impl Into<String>) -> RuleFor {
        RuleFor { method: Some(method), path_prefix: path_prefix.into() }
    }

    pub fn on_any_method(path_prefix: impl Into<String>) -> RuleFor {
        RuleFor { method: None, path_prefix: path_prefix.into() }
    }

    pub(super) fn matches(&self, method: &str, path: &str) -> bool {
        self.method.is_none_or(|wanted| wanted == method) && path.starts_with(&self.path_prefix)
    }

    /// Counts one application; returns whether the rule is still live afterwards.
    pub(super) fn spend(&mut self) -> bool {
        match self.times {
            Times::Always => true,
            Times::Once | Times::N(0 | 1) => false,
            Times::N(n) => {
                self.times = Times::N(n - 1);
                true
            }
        }
    }
}

impl RuleFor {
    pub fn once(self, fault: Fault) -> Rule {
        self.times(Times::Once, fault)
    }

    pub fn always(self, fault: Fault) -> Rule {
        self.times(Times::Always, fault)
    }

    pub fn times(self, times: Times, fault: Fault) -> Rule {
        Rule { method: self.method, path_prefix: self.path_prefix, fault, times }
    }
}
