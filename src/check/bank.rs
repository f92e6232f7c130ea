//! The bank API, asked what `list_accounts` asks it: the configured holder's accounts, with the
//! client-credentials token the provider check obtained. A 2xx proves the bank is reachable and
//! trusts the same issuer and audience; a refusal is shown with the bank's own reason.

use super::{Finding, key};
use crate::bank::{BankClient, BankError};
use crate::ciba::types::Secret;
use crate::config::LoadedConfig;

const BANK_API: &str = "bank API";

pub async fn check(loaded: &LoadedConfig, http: &reqwest::Client, token: Option<&Secret>) -> Finding {
    let config = &loaded.config;
    let url = config.mcp_bank_api_url();
    let user = &config.mcp.user;
    let Some(token) = token else {
        return reachable_without_token(loaded, http, &url).await;
    };
    match BankClient::new(&url, http.clone()).accounts(user, token).await {
        Ok(accounts) => Finding::pass(
            BANK_API,
            format!("{url} accepts the provider's token: {} account(s) of {user}", accounts.len()),
        ),
        Err(BankError::Refused { status: 401, code, detail }) => Finding::fail(
            BANK_API,
            format!("{url} refused the provider's token (401 {code}): {detail}"),
            format!(
                "the bank must trust issuer \"{}\" and audience \"{}\" and accept client {} (the reference bank: \
                 bank_api.issuer, bank_api.audience, bank_api.accepted_client_ids)",
                config.mcp_issuer(),
                config.mcp_audience(),
                config.mcp.client_id
            ),
        ),
        Err(BankError::Refused { status: 403, code, detail }) => Finding::fail(
            BANK_API,
            format!("{url} refused the provider's token (403 {code}): {detail}"),
            format!(
                "the token needs the scope the bank wants for reading accounts: check {}",
                key(loaded, "mcp.read_scope")
            ),
        ),
        Err(BankError::Refused { status: 404, code, detail }) => Finding::fail(
            BANK_API,
            format!("{url} knows no accounts of {user} (404 {code}): {detail}"),
            format!("check {} and {}", key(loaded, "mcp.user"), key(loaded, "mcp.bank_api_url")),
        ),
        Err(error) => Finding::fail(BANK_API, error.to_string(), unreachable_fix(loaded)),
    }
}

/// Without a token: only whether anything answers at the URL.
async fn reachable_without_token(loaded: &LoadedConfig, http: &reqwest::Client, url: &str) -> Finding {
    let probe = format!("{url}/users/{}/accounts", loaded.config.mcp.user);
    match http.get(&probe).send().await {
        Ok(response) => Finding::skipped(
            BANK_API,
            format!(
                "{url} answers (HTTP {} without a token); whether it accepts the provider's tokens needs a token, \
                 and the provider issued none",
                response.status().as_u16()
            ),
        ),
        Err(error) => Finding::fail(
            BANK_API,
            format!("the bank API at {url} could not be reached: {}", crate::http_client::reason(&error)),
            unreachable_fix(loaded),
        ),
    }
}

fn unreachable_fix(loaded: &LoadedConfig) -> String {
    match loaded.config.mcp.bank_api_url {
        None => format!(
            "mcp.bank_api_url is unset, so bankguard uses the embedded bank API at {}: start `bankguard dev`, or \
             set mcp.bank_api_url to your bank's API",
            loaded.config.mcp_bank_api_url()
        ),
        Some(_) => format!("check {}: the bank API must be reachable from here", key(loaded, "mcp.bank_api_url")),
    }
}
