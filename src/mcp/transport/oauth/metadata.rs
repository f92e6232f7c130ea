//! Protected Resource Metadata (RFC 9728): how an MCP client that got a 401 finds the authorization
//! server to sign in with, and what to ask it for.
//!
//! Served at `/.well-known/oauth-protected-resource` and at the path-suffixed form RFC 9728 §3.1
//! derives from the resource identifier (`/.well-known/oauth-protected-resource/mcp` for `…/mcp`),
//! which is the URL every 401 names in `WWW-Authenticate: Bearer resource_metadata="…"`.

use serde::Serialize;
use url::Url;

/// The well-known path, before any path suffix.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// RFC 9728 §2.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceMetadata {
    pub resource: String,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub bearer_methods_supported: Vec<&'static str>,
    pub resource_name: &'static str,
}

impl ResourceMetadata {
    pub fn new(resource: &str, authorization_server: &str, scope: &str) -> Self {
        Self {
            resource: resource.to_owned(),
            authorization_servers: vec![authorization_server.to_owned()],
            scopes_supported: vec![scope.to_owned()],
            // RFC 6750 §2.1 only: OAuth 2.1 forbids tokens in the query string.
            bearer_methods_supported: vec!["header"],
            resource_name: "bankguard",
        }
    }
}

/// Where the metadata of `resource` is (RFC 9728 §3.1), and the path it is served at here.
pub fn location(resource: &str) -> Result<(String, String), url::ParseError> {
    let url = Url::parse(resource)?;
    let path = format!("{WELL_KNOWN_PATH}{}", url.path().trim_end_matches('/'));
    Ok((format!("{}{path}", url.origin().ascii_serialization()), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_inserts_the_well_known_path_before_the_resource_path() {
        let (url, path) = location("https://mcp.bank.example.com/mcp").unwrap();
        assert_eq!(url, "https://mcp.bank.example.com/.well-known/oauth-protected-resource/mcp");
        assert_eq!(path, "/.well-known/oauth-protected-resource/mcp");
        let (url, _) = location("http://127.0.0.1:4102/").unwrap();
        assert_eq!(url, "http://127.0.0.1:4102/.well-known/oauth-protected-resource");
    }
}
