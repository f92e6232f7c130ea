//! `bankguard check`: what an operator runs before `serve`, to see the configuration bankguard will
//! use and whether the parties it talks to agree with it.
//!
//! It prints the effective settings with where each came from ([`settings`]; secrets only as set or
//! unset), then runs the checks below, each a ✓, a ⚠ (works, but worth knowing), a ✗ with the fix,
//! or a – when an earlier failure leaves nothing to check it with:
//! - [`provider`]: the provider's discovery document (CIBA endpoint, delivery mode, exact issuer,
//!   `payment_initiation`), the client's credentials (a client-credentials token for the read scope),
//!   and the audience (the token's `aud`, its signature verified with the provider's JWKS);
//! - [`bank`]: the bank API is reachable and accepts that token;
//! - [`data_dir`]: the data directory is the owner's alone;
//! - [`sign_in`]: with `mcp.auth = "oauth"`, the authorization server MCP clients sign in with.
//!
//! Every network call gives up after [`TIMEOUT`], so an unreachable party fails fast and by name.
//! The checks talk to the provider and the bank as `serve` does, through the same client code
//! ([`crate::ciba`], [`crate::bank`]); they never print a token or a secret, and never move money.

pub mod bank;
pub mod data_dir;
pub mod provider;
pub mod settings;
pub mod sign_in;

use std::fmt;
use std::time::Duration;

use crate::config::{Config, LoadedConfig, McpAuth};

/// How long any one network call of a check may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// bankguard works, but the operator should know (the advice says what to look at).
    Warn {
        advice: String,
    },
    Fail {
        fix: String,
    },
    /// Not checked: what it needs failed earlier.
    Skipped,
}

#[derive(Debug, Clone)]
pub struct Finding {
    /// The check's name, e.g. `discovery`.
    pub check: &'static str,
    /// What was found, in a sentence fragment.
    pub detail: String,
    pub verdict: Verdict,
}

impl Finding {
    pub fn pass(check: &'static str, detail: impl Into<String>) -> Self {
        Self { check, detail: detail.into(), verdict: Verdict::Pass }
    }

    pub fn warn(check: &'static str, detail: impl Into<String>, advice: impl Into<String>) -> Self {
        Self { check, detail: detail.into(), verdict: Verdict::Warn { advice: advice.into() } }
    }

    pub fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { check, detail: detail.into(), verdict: Verdict::Fail { fix: fix.into() } }
    }

    pub fn skipped(check: &'static str, detail: impl Into<String>) -> Self {
        Self { check, detail: detail.into(), verdict: Verdict::Skipped }
    }

    pub fn failed(&self) -> bool {
        matches!(self.verdict, Verdict::Fail { .. })
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { check, detail, verdict } = self;
        match verdict {
            Verdict::Pass => write!(f, "✓ {check}: {detail}"),
            Verdict::Warn { advice } => write!(f, "⚠ {check}: {detail} — {advice}"),
            Verdict::Fail { fix } => write!(f, "✗ {check}: {detail} — fix: {fix}"),
            Verdict::Skipped => write!(f, "– {check}: not checked: {detail}"),
        }
    }
}

/// A key as a fix names it: `mcp.issuer (from environment variable BANKGUARD_MCP__ISSUER)`.
pub fn key(loaded: &LoadedConfig, key: &str) -> String {
    format!("{key} (from {})", loaded.origin(key))
}

/// Runs every check in order, calling `report` with each finding as it comes (a slow check shows
/// the ones before it at once). No finding holds a secret ([`Redactions`]).
pub async fn run(loaded: &LoadedConfig, mut report: impl FnMut(&Finding)) -> Vec<Finding> {
    let redactions = Redactions::of(&loaded.config);
    let mut findings = Vec::new();
    let mut record = |new: Vec<Finding>| {
        let new: Vec<Finding> = new.into_iter().map(|finding| redactions.apply(finding)).collect();
        new.iter().for_each(&mut report);
        findings.extend(new);
    };
    let config: &Config = &loaded.config;
    let http = match http_client(config) {
        Ok(http) => http,
        Err(error) => {
            record(vec![Finding::fail("HTTP client", error.to_string(), "report this: the TLS setup failed")]);
            return findings;
        }
    };
    let provider = provider::check(loaded, &http).await;
    record(provider.findings);
    record(vec![bank::check(loaded, &http, provider.token.as_ref()).await]);
    record(vec![data_dir::check(&config.data_dir)]);
    if config.mcp.auth == McpAuth::Oauth {
        record(sign_in::check(loaded, &http).await);
    }
    findings
}

/// What no finding may show, however a message came to quote it: the client secret, the PostgreSQL
/// password, and any password written into a configured URL (which error messages name).
pub struct Redactions(Vec<String>);

/// What a redacted secret reads as.
pub const REDACTED: &str = "(secret)";

impl Redactions {
    pub fn of(config: &Config) -> Self {
        let mcp = &config.mcp;
        let urls = [Some(config.mcp_issuer()), Some(config.mcp_bank_api_url()), Some(config.mcp_oauth_issuer())]
            .into_iter()
            .chain([&mcp.backchannel_authentication_endpoint, &mcp.token_endpoint, &mcp.store_url].map(Clone::clone))
            .flatten();
        let url_passwords = urls.filter_map(|url| url_password(&url)).flat_map(|password| {
            let decoded = percent_decode(&password);
            [password, decoded]
        });
        let client_secret = crate::mcp::backends::client_secret(config).ok().map(|s| s.expose().to_owned());
        let mut secrets: Vec<String> =
            url_passwords.chain(client_secret).chain(mcp.store_password.clone()).filter(|s| !s.is_empty()).collect();
        // The longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        Self(secrets)
    }

    fn apply(&self, mut finding: Finding) -> Finding {
        let scrub = |text: &mut String| {
            for secret in &self.0 {
                *text = text.replace(secret.as_str(), REDACTED);
            }
        };
        scrub(&mut finding.detail);
        match &mut finding.verdict {
            Verdict::Warn { advice: text } | Verdict::Fail { fix: text } => scrub(text),
            Verdict::Pass | Verdict::Skipped => {}
        }
        finding
    }
}

/// The password of `url` as written in it, if it has one.
pub fn url_password(url: &str) -> Option<String> {
    url::Url::parse(url).ok()?.password().map(str::to_owned)
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map_or_else(|| text.to_owned(), |(_, value)| value.into_owned())
}

/// The client every check uses: the crate's, with [`TIMEOUT`] for connecting and for the whole call.
fn http_client(config: &Config) -> Result<reqwest::Client, reqwest::Error> {
    let issuer = config.mcp_issuer();
    let bank = config.mcp_bank_api_url();
    let sign_in = config.mcp_oauth_issuer();
    crate::http_client::builder_for([issuer.as_str(), bank.as_str(), sign_in.as_str()])
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_url_or_the_client_secret_never_reaches_a_finding() {
        let mut config = Config::default();
        config.mcp.issuer = Some("https://operator:pa%24%24word@tenant.example.com/".into());
        config.mcp.client_secret = Some("hunter2-client-secret".into());
        let redactions = Redactions::of(&config);
        let finding = Finding::fail(
            "discovery",
            "https://operator:pa%24%24word@tenant.example.com/.well-known/openid-configuration could not be reached",
            "the secret hunter2-client-secret or pa$$word",
        );
        let shown = redactions.apply(finding).to_string();
        assert_eq!(
            shown,
            "✗ discovery: https://operator:(secret)@tenant.example.com/.well-known/openid-configuration could not be \
             reached — fix: the secret (secret) or (secret)"
        );
    }

    #[test]
    fn each_verdict_reads_as_one_line_with_its_mark() {
        let lines = [
            Finding::pass("discovery", "found"),
            Finding::warn("payment_initiation", "not advertised", "see docs"),
            Finding::fail("bank API", "unreachable", "start it"),
            Finding::skipped("audience", "no token"),
        ]
        .map(|finding| finding.to_string());
        assert_eq!(
            lines,
            [
                "✓ discovery: found",
                "⚠ payment_initiation: not advertised — see docs",
                "✗ bank API: unreachable — fix: start it",
                "– audience: not checked: no token",
            ]
        );
    }
}
