//! The provider's endpoints: from configuration where given, else from OpenID discovery, whose
//! `issuer` must equal the configured one exactly (OpenID Connect Discovery §4.3).

use serde::Deserialize;

use super::ProviderSettings;
use super::error::CibaError;

/// Parsed once, not at every request: a token endpoint is polled thousands of times a minute.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub backchannel_authentication: reqwest::Url,
    pub token: reqwest::Url,
}

impl Endpoints {
    fn parse(backchannel_authentication: &str, token: &str, source: &str) -> Result<Self, CibaError> {
        let parse = |endpoint: &str| {
            reqwest::Url::parse(endpoint).map_err(|error| CibaError::Discovery {
                url: source.to_owned(),
                reason: format!("{endpoint:?} is not a URL: {error}"),
            })
        };
        Ok(Self { backchannel_authentication: parse(backchannel_authentication)?, token: parse(token)? })
    }
}

/// The parts of the provider's discovery document bankguard reads (`bankguard check` reads them all).
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub token_endpoint: Option<String>,
    pub backchannel_authentication_endpoint: Option<String>,
    #[serde(default)]
    pub backchannel_token_delivery_modes_supported: Vec<String>,
    /// RFC 9396 §10; optional, so its absence says nothing either way.
    pub authorization_details_types_supported: Option<Vec<String>>,
    pub jwks_uri: Option<String>,
}

/// Where the discovery document of `issuer` is.
pub fn metadata_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

pub async fn resolve(http: &reqwest::Client, settings: &ProviderSettings) -> Result<Endpoints, CibaError> {
    if let (Some(backchannel), Some(token)) = (&settings.backchannel_endpoint, &settings.token_endpoint) {
        return Endpoints::parse(backchannel, token, "the configuration");
    }
    let url = metadata_url(&settings.issuer);
    let unusable = |reason: String| CibaError::Discovery { url: url.clone(), reason };
    let metadata = fetch(http, &settings.issuer).await?;
    if metadata.issuer != settings.issuer {
        return Err(unusable(format!("it names issuer {:?}, not {:?}", metadata.issuer, settings.issuer)));
    }
    let backchannel = settings.backchannel_endpoint.clone().or(metadata.backchannel_authentication_endpoint);
    let token = settings.token_endpoint.clone().or(metadata.token_endpoint);
    match (backchannel, token) {
        (Some(backchannel), Some(token)) => Endpoints::parse(&backchannel, &token, &url),
        (None, _) => {
            Err(unusable("it has no backchannel_authentication_endpoint: the provider does not offer CIBA".into()))
        }
        (_, None) => Err(unusable("it has no token_endpoint".into())),
    }
}

/// The discovery document of `issuer`, as the provider serves it: whether its `issuer` matches is
/// the caller's to check.
pub async fn fetch(http: &reqwest::Client, issuer: &str) -> Result<ProviderMetadata, CibaError> {
    let url = metadata_url(issuer);
    let unusable = |reason: String| CibaError::Discovery { url: url.clone(), reason };
    let unreachable =
        |e: reqwest::Error| CibaError::Unreachable { url: url.clone(), reason: crate::http_client::reason(&e) };
    let response = http.get(&url).send().await.map_err(unreachable)?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Err(CibaError::BadResponse { url, status });
    }
    let body = response.bytes().await.map_err(unreachable)?;
    serde_json::from_slice(&body).map_err(|e| match e.classify() {
        // Well-formed JSON of the wrong shape: this is not an OpenID provider's document.
        serde_json::error::Category::Data => unusable(e.to_string()),
        // Cut short or garbled in transit: an answer that did not arrive, worth asking again.
        _ => CibaError::BadResponse { url: url.clone(), status },
    })
}
