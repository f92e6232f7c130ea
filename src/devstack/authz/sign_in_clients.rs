//! Who may sign a user in at `/authorize`, looked up from its `client_id` in three places, in
//! this order: a client configured under `[[authz.clients]]` with the `authorization_code` grant, a
//! client registered at `/register` ([`super::registration`]), and a client whose id is the URL of
//! its metadata document ([`super::client_metadata`]). Configured ids cannot be URLs and registered
//! ids are random, so the three never shadow one another.

use super::AuthzState;
use super::client_metadata::{self, DocumentError};
use crate::config::GrantType;

/// A client that may send a user to `/authorize`, as far as the sign-in needs to know it.
#[derive(Debug, Clone)]
pub struct SignInClient {
    pub client_id: String,
    /// Self-asserted by registered and metadata-document clients: shown beside the id, never alone.
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
}

impl SignInClient {
    /// What the consent page calls the client.
    pub fn display_name(&self) -> &str {
        self.client_name.as_deref().unwrap_or(&self.client_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientLookupError {
    #[error("no client is registered as {0:?}")]
    Unknown(String),
    #[error("the client {0:?} may not use the authorization code grant")]
    NotForSignIn(String),
    #[error("the client's metadata document {url} {source}")]
    Document { url: String, source: DocumentError },
    #[error("the authorization server could not read its clients: {0}")]
    Database(#[from] sqlx::Error),
}

pub async fn find(state: &AuthzState, client_id: &str) -> Result<SignInClient, ClientLookupError> {
    if let Some(client) = state.clients.get(client_id) {
        if !client.grant_types.contains(&GrantType::AuthorizationCode) {
            return Err(ClientLookupError::NotForSignIn(client_id.to_owned()));
        }
        return Ok(SignInClient {
            client_id: client.id.clone(),
            client_name: client.client_name.clone(),
            redirect_uris: client.redirect_uris.clone(),
        });
    }
    if let Some(client) = state.registered.get(client_id).await? {
        return Ok(client);
    }
    if let Some(url) = client_metadata::document_url(client_id) {
        return state
            .client_documents
            .client(&url)
            .await
            .map_err(|source| ClientLookupError::Document { url: url.to_string(), source });
    }
    Err(ClientLookupError::Unknown(client_id.to_owned()))
}
