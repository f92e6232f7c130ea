//! The APIs this server issues access tokens for, their scopes, and how a user grants access to each.
//!
//! Two kinds, kept apart on purpose: the bank API's tokens come only from a CIBA approval (bound to
//! one transfer) or a client's own credentials, never from a sign-in, so a signed-in MCP client can
//! never hold `create:transfer` or read every user's accounts; the MCP endpoint's tokens come only
//! from a user signing in at `/authorize` (its `resource`, RFC 8707), so no backchannel or
//! client-credentials request can mint a holder for the MCP server.

use super::error::{ErrorCode, OAuthError};

/// OpenID Connect scopes this server knows besides API scopes.
pub const OPENID_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// How a user's access to an API is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantedBy {
    /// A CIBA approval, or (with no user) the client's own credentials: the bank API.
    Backchannel,
    /// The user signing in at `/authorize` (authorization code with PKCE): the MCP endpoint.
    SignIn,
}

/// One API: its identifier (the token's `aud`), its scopes, and how access to it is granted.
#[derive(Debug, Clone)]
pub struct Api {
    pub identifier: String,
    pub scopes: Vec<&'static str>,
    pub granted_by: GrantedBy,
}

/// Every API this server knows, from the configuration: the bank API's audience and the MCP
/// endpoint's resource identifier.
pub struct ApiCatalog {
    pub apis: Vec<Api>,
}

impl ApiCatalog {
    /// Every scope of every API, for the metadata documents.
    pub fn all_scopes(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.apis.iter().flat_map(|api| api.scopes.iter().copied())
    }

    /// The API a sign-in asks for with `resource`, if it is one users sign in to.
    pub fn sign_in_api(&self, resource: &str) -> Option<&Api> {
        self.apis.iter().find(|api| api.granted_by == GrantedBy::SignIn && api.identifier == resource)
    }

    /// For a backchannel or client-credentials request: every scope must be an OpenID scope or one of
    /// `audience`'s, and `audience` must be an API granted that way.
    pub fn check_scopes<'a>(
        &self,
        audience: Option<&str>,
        scopes: impl Iterator<Item = &'a str>,
    ) -> Result<(), OAuthError> {
        let api_scopes = match audience {
            Some(audience) => Some(
                self.apis
                    .iter()
                    .find(|api| api.granted_by == GrantedBy::Backchannel && api.identifier == audience)
                    .map(|api| &api.scopes)
                    .ok_or_else(|| {
                        OAuthError::new(ErrorCode::InvalidScope, format!("unknown audience {audience:?}"))
                    })?,
            ),
            None => None,
        };
        for scope in scopes {
            let known = OPENID_SCOPES.contains(&scope) || api_scopes.is_some_and(|api| api.contains(&scope));
            if !known {
                let why = match audience {
                    Some(audience) => format!("scope {scope:?} is not defined for {audience}"),
                    None => format!("scope {scope:?} needs an audience"),
                };
                return Err(OAuthError::new(ErrorCode::InvalidScope, why));
            }
        }
        Ok(())
    }
}
