//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client whose
//! `client_id` is an `https` URL is described by the JSON document at that URL, so an MCP client can
//! sign a user in to a server it has never registered with.
//!
//! The document is fetched by this server, which makes the fetch the dangerous part: it has a short
//! timeout, a size cap and follows no redirects, and the document must name itself (`client_id`
//! equal to the URL, character for character), so a URL cannot borrow another client's metadata. Only
//! public clients are accepted (no `client_secret`, `token_endpoint_auth_method` `none` if given), and
//! their redirect URIs follow the same rule as every other client's. Because this is the embedded
//! development server, `http` URLs on a loopback host are accepted too (a client under development
//! serves its document locally). Documents are cached briefly; failures are not.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use super::sign_in_clients::SignInClient;
use crate::config::ClientConfig;

/// How long a fetch may take, all of it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest document read; a larger one is refused.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// How long a fetched document is used before it is fetched again.
const CACHE_FOR: Duration = Duration::from_secs(60);
/// At most this many documents are cached; beyond it the cache starts afresh.
const MAX_CACHED: usize = 256;

/// The members of a metadata document this server uses.
#[derive(Debug, Clone, Deserialize)]
struct Document {
    client_id: String,
    redirect_uris: Vec<String>,
    client_name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    client_secret: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("could not be fetched: {0}")]
    Fetch(String),
    #[error("answered HTTP {0} (redirects are not followed)")]
    Status(u16),
    #[error("is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    #[error("is not client metadata JSON: {0}")]
    NotJson(String),
    #[error("names another client_id ({0:?}); it must name its own URL")]
    OtherClientId(String),
    #[error("describes a confidential client; only public clients (token_endpoint_auth_method \"none\") may use one")]
    NotPublic,
    #[error("has no redirect_uris")]
    NoRedirectUris,
    #[error("redirect URI {uri:?} {reason}")]
    RedirectUri { uri: String, reason: &'static str },
}

/// Fetches and caches metadata documents.
#[derive(Default)]
pub struct ClientMetadataDocuments {
    /// Built on the first fetch: most runs never see a metadata document, and a client that may call
    /// `https` reads the system's trust store.
    http: OnceLock<Result<reqwest::Client, String>>,
    cache: Mutex<HashMap<String, (Instant, SignInClient)>>,
}

/// The URL in `client_id`, if it is one this server treats as a metadata document: `https` with a
/// host and a path (draft §3), or `http` on a loopback host; no fragment, no credentials.
pub fn document_url(client_id: &str) -> Option<Url> {
    let url = Url::parse(client_id).ok()?;
    let loopback_http = url.scheme() == "http" && ClientConfig::check_redirect_uri(client_id).is_ok();
    let acceptable = (url.scheme() == "https" || loopback_http)
        && url.host().is_some()
        && url.path() != "/"
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    acceptable.then_some(url)
}

impl ClientMetadataDocuments {
    /// The client the document at `url` describes, from the cache or fetched now.
    pub async fn client(&self, url: &Url) -> Result<SignInClient, DocumentError> {
        if let Some(client) = self.cached(url.as_str()) {
            return Ok(client);
        }
        let client = self.fetch(url).await?;
        let mut cache = self.cache.lock().expect("metadata document cache");
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(url.as_str().to_owned(), (Instant::now() + CACHE_FOR, client.clone()));
        Ok(client)
    }

    fn cached(&self, url: &str) -> Option<SignInClient> {
        let cache = self.cache.lock().expect("metadata document cache");
        cache.get(url).filter(|(until, _)| Instant::now() < *until).map(|(_, client)| client.clone())
    }

    fn http(&self) -> Result<&reqwest::Client, DocumentError> {
        let built = self.http.get_or_init(|| {
            crate::http_client::builder()
                .timeout(FETCH_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|error| crate::http_client::reason(&error))
        });
        built.as_ref().map_err(|reason| DocumentError::Fetch(reason.clone()))
    }

    async fn fetch(&self, url: &Url) -> Result<SignInClient, DocumentError> {
        let fetch_error = |error: reqwest::Error| DocumentError::Fetch(crate::http_client::reason(&error));
        let mut response = self
            .http()?
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(fetch_error)?;
        if !response.status().is_success() {
            return Err(DocumentError::Status(response.status().as_u16()));
        }
        if response.content_length().is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64) {
            return Err(DocumentError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(DocumentError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        checked_document(url, &body)
    }
}

/// The document's client, if the document is acceptable for `url`.
fn checked_document(url: &Url, body: &[u8]) -> Result<SignInClient, DocumentError> {
    let document: Document = serde_json::from_slice(body).map_err(|error| DocumentError::NotJson(error.to_string()))?;
    if document.client_id != url.as_str() {
        return Err(DocumentError::OtherClientId(document.client_id));
    }
    let public = matches!(document.token_endpoint_auth_method.as_deref(), None | Some("none"));
    if !public || document.client_secret.is_some() {
        return Err(DocumentError::NotPublic);
    }
    if document.redirect_uris.is_empty() {
        return Err(DocumentError::NoRedirectUris);
    }
    for uri in &document.redirect_uris {
        ClientConfig::check_redirect_uri(uri)
            .map_err(|reason| DocumentError::RedirectUri { uri: uri.clone(), reason })?;
    }
    Ok(SignInClient {
        client_id: document.client_id,
        client_name: document.client_name.filter(|name| !name.trim().is_empty()),
        redirect_uris: document.redirect_uris,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_urls_with_a_path_and_loopback_http_urls_are_metadata_documents() {
        assert!(document_url("https://app.example/oauth/client.json").is_some());
        assert!(document_url("http://127.0.0.1:8123/client.json").is_some());
        assert!(document_url("http://localhost/client.json").is_some());
        for not_one in [
            "my-client",
            "https://app.example/",
            "https://app.example",
            "http://app.example/client.json",
            "https://user:pw@app.example/client.json",
            "https://app.example/client.json#x",
        ] {
            assert!(document_url(not_one).is_none(), "{not_one}");
        }
    }

    #[test]
    fn a_document_must_name_itself_be_public_and_redirect_safely() {
        let url = Url::parse("https://app.example/client.json").unwrap();
        let check = |json: &str| checked_document(&url, json.as_bytes());
        let client = check(r#"{"client_id":"https://app.example/client.json","client_name":"App","redirect_uris":["http://127.0.0.1:9/cb"]}"#).unwrap();
        assert_eq!(client.client_name.as_deref(), Some("App"));
        assert!(matches!(
            check(r#"{"client_id":"https://evil.example/client.json","redirect_uris":["http://127.0.0.1:9/cb"]}"#),
            Err(DocumentError::OtherClientId(_))
        ));
        assert!(matches!(
            check(
                r#"{"client_id":"https://app.example/client.json","redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#
            ),
            Err(DocumentError::NotPublic)
        ));
        assert!(matches!(
            check(r#"{"client_id":"https://app.example/client.json","redirect_uris":[]}"#),
            Err(DocumentError::NoRedirectUris)
        ));
        assert!(matches!(
            check(r#"{"client_id":"https://app.example/client.json","redirect_uris":["http://evil.example/cb"]}"#),
            Err(DocumentError::RedirectUri { .. })
        ));
        assert!(matches!(check("<html>"), Err(DocumentError::NotJson(_))));
    }
}
