//! `/.well-known/openid-configuration` and `/.well-known/jwks.json`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;

use super::AuthzState;
use crate::authorization_details::PAYMENT_INITIATION;
use crate::config::{ClientAuthMethod, DeliveryMode, GrantType};

pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const BACKCHANNEL_PATH: &str = "/bc-authorize";

/// OpenID Connect Discovery 1.0 §3 with the CIBA Core §4 and RFC 9396 §10 additions.
#[derive(Debug, Serialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub backchannel_authentication_endpoint: String,
    pub backchannel_token_delivery_modes_supported: Vec<&'static str>,
    pub backchannel_user_code_parameter_supported: bool,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub scopes_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub authorization_details_types_supported: Vec<&'static str>,
}

pub async fn metadata(State(state): State<Arc<AuthzState>>) -> Json<ProviderMetadata> {
    let issuer = state.issuer.clone();
    let mut scopes = vec!["openid", "profile", "email"];
    scopes.extend(state.apis.apis.iter().flat_map(|(_, scopes)| scopes.iter().copied()));
    Json(ProviderMetadata {
        jwks_uri: format!("{issuer}{JWKS_PATH}"),
        token_endpoint: format!("{issuer}{TOKEN_PATH}"),
        backchannel_authentication_endpoint: format!("{issuer}{BACKCHANNEL_PATH}"),
        issuer,
        backchannel_token_delivery_modes_supported: vec![DeliveryMode::Poll.as_str(), DeliveryMode::Ping.as_str()],
        backchannel_user_code_parameter_supported: false,
        grant_types_supported: vec![GrantType::Ciba.as_str(), GrantType::ClientCredentials.as_str()],
        token_endpoint_auth_methods_supported: vec![
            ClientAuthMethod::ClientSecretBasic.as_str(),
            ClientAuthMethod::ClientSecretPost.as_str(),
        ],
        scopes_supported: scopes,
        response_types_supported: vec!["none"],
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: vec!["ES256"],
        authorization_details_types_supported: vec![PAYMENT_INITIATION],
    })
}

pub async fn jwks(State(state): State<Arc<AuthzState>>) -> Json<Value> {
    Json(state.key.jwks())
}
