//! What can go wrong talking to the OpenID provider, with the context a person needs. Messages name
//! the provider and the reason; they never contain a secret, a token or an `auth_req_id`.

/// An OAuth error answer: `{"error": …, "error_description": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRefusal {
    pub error: String,
    pub description: Option<String>,
}

impl std::fmt::Display for ProviderRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.description {
            Some(description) => write!(f, "{} ({description})", self.error),
            None => f.write_str(&self.error),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CibaError {
    #[error("the authorization server at {url} could not be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the authorization server at {url} answered HTTP {status} without a usable body")]
    BadResponse { url: String, status: u16 },
    #[error("the authorization server's discovery document at {url} is unusable: {reason}")]
    Discovery { url: String, reason: String },
    #[error("the authorization server refused the request: {0}")]
    Refused(ProviderRefusal),
    #[error("the client credentials are not configured: {0}")]
    Credentials(String),
}
