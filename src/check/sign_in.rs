//! With `mcp.auth = "oauth"`, MCP clients sign in at an authorization server before they call a
//! tool: the protected resource metadata this server would publish names it, and the clients then
//! need its metadata (RFC 8414, else OpenID discovery) to list what they use: the authorization and
//! token endpoints, PKCE with S256 (MCP clients refuse a server that does not say so), and the
//! `jwks_uri` this server verifies their tokens with.

use serde::Deserialize;

use super::{Finding, key};
use crate::config::LoadedConfig;
use crate::mcp::transport::oauth::metadata::{ResourceMetadata, location};
use crate::provider_keys::metadata_urls;

const RESOURCE: &str = "protected resource";
const SIGN_IN: &str = "sign-in server";

/// The parts of the authorization server's metadata MCP clients and this server use.
#[derive(Deserialize)]
struct ServerMetadata {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_uri: Option<String>,
    registration_endpoint: Option<String>,
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
}

pub async fn check(loaded: &LoadedConfig, http: &reqwest::Client) -> Vec<Finding> {
    let config = &loaded.config;
    let resource = config.mcp_resource();
    let issuer = config.mcp_oauth_issuer();
    let metadata = ResourceMetadata::new(&resource, &issuer, &config.mcp.oauth.scope);
    let published = match location(&metadata.resource) {
        Ok((url, _)) => Finding::pass(
            RESOURCE,
            format!(
                "{url} will name resource \"{}\", authorization server \"{issuer}\", scope {}",
                metadata.resource, config.mcp.oauth.scope
            ),
        ),
        Err(error) => {
            let fix = format!(
                "set {} to this server's URL, e.g. https://mcp.example.com/mcp",
                key(loaded, "mcp.oauth.resource")
            );
            Finding::fail(RESOURCE, format!("the resource \"{resource}\" is not a URL: {error}"), fix)
        }
    };
    let mut findings = vec![published];
    findings.extend(server(loaded, http, &issuer).await);
    findings
}

async fn server(loaded: &LoadedConfig, http: &reqwest::Client, issuer: &str) -> Vec<Finding> {
    let which = match loaded.config.mcp.oauth.issuer {
        Some(_) => key(loaded, "mcp.oauth.issuer"),
        None => "mcp.oauth.issuer (unset, so the CIBA provider mcp.issuer)".to_owned(),
    };
    let urls = match metadata_urls(issuer) {
        Ok(urls) => urls,
        Err(reason) => return vec![Finding::fail(SIGN_IN, reason, format!("set {which} to an http(s) URL"))],
    };
    let mut failures = Vec::new();
    for url in urls {
        match get_json::<ServerMetadata>(http, &url).await {
            Ok(metadata) => return judge(&url, issuer, &which, &loaded.config.mcp.oauth.scope, metadata),
            Err(reason) => failures.push(reason),
        }
    }
    vec![Finding::fail(
        SIGN_IN,
        format!("no metadata for \"{issuer}\": {}", failures.join("; ")),
        format!("check {which}: MCP clients find the sign-in server through this metadata"),
    )]
}

fn judge(url: &str, issuer: &str, which: &str, scope: &str, metadata: ServerMetadata) -> Vec<Finding> {
    if metadata.issuer != issuer {
        return vec![Finding::fail(
            SIGN_IN,
            format!("{url} names issuer \"{}\", not \"{issuer}\"", metadata.issuer),
            format!("set {which} to exactly \"{}\"", metadata.issuer),
        )];
    }
    let missing: Vec<&str> = [
        ("authorization_endpoint", metadata.authorization_endpoint.is_none()),
        ("token_endpoint", metadata.token_endpoint.is_none()),
        ("jwks_uri", metadata.jwks_uri.is_none()),
        (
            "code_challenge_methods_supported with S256",
            !metadata.code_challenge_methods_supported.iter().any(|m| m == "S256"),
        ),
    ]
    .into_iter()
    .filter_map(|(what, absent)| absent.then_some(what))
    .collect();
    if !missing.is_empty() {
        return vec![Finding::fail(
            SIGN_IN,
            format!("{url} lacks {}", missing.join(", ")),
            "MCP clients sign in with the authorization code flow and PKCE (S256): enable them at that server",
        )];
    }
    let mut findings = vec![Finding::pass(SIGN_IN, format!("{url}: authorization code with PKCE S256, jwks_uri"))];
    if metadata.registration_endpoint.is_none() {
        findings.push(Finding::warn(
            SIGN_IN,
            "no registration_endpoint",
            "MCP clients cannot register themselves: register each one at the server by hand",
        ));
    }
    if !metadata.scopes_supported.is_empty() && !metadata.scopes_supported.iter().any(|s| s == scope) {
        findings.push(Finding::warn(
            SIGN_IN,
            format!("scopes_supported does not list {scope}"),
            "MCP clients ask for that scope (mcp.oauth.scope): define it at the server",
        ));
    }
    findings
}

async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T, String> {
    let response = http.get(url).send().await.map_err(|e| format!("{url}: {}", crate::http_client::reason(&e)))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status().as_u16()));
    }
    response.json().await.map_err(|e| format!("{url}: unreadable JSON: {e}"))
}
