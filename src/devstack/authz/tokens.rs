//! What the authorization server issues: RFC 9068 `at+jwt` access tokens and OpenID ID tokens, both
//! ES256-signed with the server's key, and the token response that carries them.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::error::OAuthError;
use super::keys::SigningKey;
use crate::secrets;

/// The successful token response (RFC 6749 §5.1, CIBA Core §10.1.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    /// For a sign-in (authorization code and refresh token grants): the next refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Echoed as Auth0 does when the request carried rich authorization details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Value>,
}

/// RFC 9068 §2.2 claims (and `nbf`), plus `authorization_details` (RFC 9396 §9.1).
#[derive(Serialize)]
struct AccessTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    client_id: &'a str,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_details: Option<&'a Value>,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
}

/// One grant's worth of tokens to issue.
pub struct Grant<'a> {
    pub subject: &'a str,
    pub client_id: &'a str,
    /// `None`: the token is for this server itself (an OpenID-only request).
    pub audience: Option<&'a str>,
    pub scope: &'a str,
    pub authorization_details: Option<&'a Value>,
    /// When the user authenticated (approved); `Some` issues an ID token too.
    pub auth_time: Option<i64>,
}

pub struct TokenIssuer {
    pub issuer: String,
    key: Arc<SigningKey>,
    lifetime_seconds: i64,
}

impl TokenIssuer {
    pub fn new(issuer: String, key: Arc<SigningKey>, lifetime_seconds: i64) -> Self {
        Self { issuer, key, lifetime_seconds }
    }

    pub fn issue(&self, grant: &Grant<'_>, now: i64) -> Result<TokenResponse, OAuthError> {
        let access = AccessTokenClaims {
            iss: &self.issuer,
            sub: grant.subject,
            aud: grant.audience.unwrap_or(&self.issuer),
            exp: now + self.lifetime_seconds,
            iat: now,
            nbf: now,
            jti: secrets::random_token(16),
            client_id: grant.client_id,
            scope: grant.scope,
            auth_time: grant.auth_time,
            authorization_details: grant.authorization_details,
        };
        let access_token = self.key.sign("at+jwt", &access).map_err(OAuthError::server_error)?;
        let id_token = match grant.auth_time {
            Some(auth_time) => {
                let claims = IdTokenClaims {
                    iss: &self.issuer,
                    sub: grant.subject,
                    aud: grant.client_id,
                    exp: now + self.lifetime_seconds,
                    iat: now,
                    auth_time,
                };
                Some(self.key.sign("JWT", &claims).map_err(OAuthError::server_error)?)
            }
            None => None,
        };
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.lifetime_seconds,
            scope: grant.scope.to_owned(),
            refresh_token: None,
            id_token,
            authorization_details: grant.authorization_details.cloned(),
        })
    }
}
