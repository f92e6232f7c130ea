//! The provider's endpoints: from configuration where given, else from OpenID discovery, whose
//! `issuer` must equal the configured one exactly (OpenID Connect Discovery §4.3).

use serde::Deserialize;

use super::ProviderSettings;
use super::error::CibaError;

#[derive(Debug, Clone)]
pub struct Endpoints {
    pub backchannel_authentication: String,
    pub token: String,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    token_endpoint: Option<String>,
    backchannel_authentication_endpoint: Option<String>,
}

pub async fn resolve(http: &reqwest::Client, settings: &ProviderSettings) -> Result<Endpoints, CibaError> {
    if let (Some(backchannel), Some(token)) = (&settings.backchannel_endpoint, &settings.token_endpoint) {
        return Ok(Endpoints { backchannel_authentication: backchannel.clone(), token: token.clone() });
    }
    let url = format!("{}/.well-known/openid-configuration", settings.issuer.trim_end_matches('/'));
    let unusable = |reason: String| CibaError::Discovery { url: url.clone(), reason };
    let response = http
        .get(&url)
        .send()
        .await
        .map_err(|e| CibaError::Unreachable { url: url.clone(), reason: crate::http_client::reason(&e) })?;
    if !response.status().is_success() {
        return Err(CibaError::BadResponse { url, status: response.status().as_u16() });
    }
    let metadata: Metadata = response.json().await.map_err(|e| unusable(e.to_string()))?;
    if metadata.issuer != settings.issuer {
        return Err(unusable(format!("it names issuer {:?}, not {:?}", metadata.issuer, settings.issuer)));
    }
    let backchannel = settings.backchannel_endpoint.clone().or(metadata.backchannel_authentication_endpoint);
    let token = settings.token_endpoint.clone().or(metadata.token_endpoint);
    match (backchannel, token) {
        (Some(backchannel_authentication), Some(token)) => Ok(Endpoints { backchannel_authentication, token }),
        (None, _) => {
            Err(unusable("it has no backchannel_authentication_endpoint: the provider does not offer CIBA".into()))
        }
        (_, None) => Err(unusable("it has no token_endpoint".into())),
    }
}
