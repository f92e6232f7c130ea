//! The metadata documents: OAuth 2.0 Authorization Server Metadata (RFC 8414) at
//! `/.well-known/oauth-authorization-server`, which MCP clients read, and OpenID Connect Discovery at
//! `/.well-known/openid-configuration`, which the CIBA client (and Auth0-shaped tooling) reads; and
//! the JWKS both point to.
//!
//! Both documents are built from one [`AuthorizationServerMetadata`], the OpenID one adding its
//! members to it, so the two can never name different endpoints.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;

use super::AuthzState;
use super::apis::OPENID_SCOPES;
use crate::authorization_details::PAYMENT_INITIATION;
use crate::config::{ClientAuthMethod, DeliveryMode, GrantType};

pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
pub const AUTHORIZATION_SERVER_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const BACKCHANNEL_PATH: &str = "/bc-authorize";
pub const AUTHORIZE_PATH: &str = "/authorize";
pub const REGISTRATION_PATH: &str = "/register";
/// The one PKCE method accepted (OAuth 2.1 §4.1.1: `plain` is not offered).
pub const PKCE_S256: &str = "S256";

/// RFC 8414 §2, with `authorization_response_iss_parameter_supported` (RFC 9207 §3) and
/// `client_id_metadata_document_supported` (OAuth Client ID Metadata Document draft).
#[derive(Debug, Serialize)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub registration_endpoint: String,
    pub scopes_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub authorization_response_iss_parameter_supported: bool,
    pub client_id_metadata_document_supported: bool,
}

/// OpenID Connect Discovery 1.0 §3: the OAuth metadata plus the CIBA Core §4 and RFC 9396 §10 members.
#[derive(Debug, Serialize)]
pub struct ProviderMetadata {
    #[serde(flatten)]
    pub oauth: AuthorizationServerMetadata,
    pub backchannel_authentication_endpoint: String,
    pub backchannel_token_delivery_modes_supported: Vec<&'static str>,
    pub backchannel_user_code_parameter_supported: bool,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub authorization_details_types_supported: Vec<&'static str>,
}

impl AuthorizationServerMetadata {
    pub fn of(state: &AuthzState) -> Self {
        let issuer = state.issuer.clone();
        let mut scopes = OPENID_SCOPES.to_vec();
        scopes.extend(state.apis.all_scopes());
        Self {
            authorization_endpoint: format!("{issuer}{AUTHORIZE_PATH}"),
            token_endpoint: format!("{issuer}{TOKEN_PATH}"),
            jwks_uri: format!("{issuer}{JWKS_PATH}"),
            registration_endpoint: format!("{issuer}{REGISTRATION_PATH}"),
            issuer,
            scopes_supported: scopes,
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: GrantType::ALL.iter().map(|grant| grant.as_str()).collect(),
            token_endpoint_auth_methods_supported: [
                ClientAuthMethod::ClientSecretBasic,
                ClientAuthMethod::ClientSecretPost,
                ClientAuthMethod::None,
            ]
            .iter()
            .map(|method| method.as_str())
            .collect(),
            code_challenge_methods_supported: vec![PKCE_S256],
            authorization_response_iss_parameter_supported: true,
            client_id_metadata_document_supported: true,
        }
    }
}

/// `GET /.well-known/oauth-authorization-server`.
pub async fn authorization_server_metadata(State(state): State<Arc<AuthzState>>) -> Json<AuthorizationServerMetadata> {
    Json(AuthorizationServerMetadata::of(&state))
}

/// `GET /.well-known/openid-configuration`.
pub async fn metadata(State(state): State<Arc<AuthzState>>) -> Json<ProviderMetadata> {
    let oauth = AuthorizationServerMetadata::of(&state);
    Json(ProviderMetadata {
        backchannel_authentication_endpoint: format!("{}{BACKCHANNEL_PATH}", oauth.issuer),
        oauth,
        backchannel_token_delivery_modes_supported: vec![DeliveryMode::Poll.as_str(), DeliveryMode::Ping.as_str()],
        backchannel_user_code_parameter_supported: false,
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: vec!["ES256"],
        authorization_details_types_supported: vec![PAYMENT_INITIATION],
    })
}

pub async fn jwks(State(state): State<Arc<AuthzState>>) -> Json<Value> {
    Json(state.key.jwks())
}
