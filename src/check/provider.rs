//! The CIBA provider as `serve` will meet it: its discovery document, the client's credentials, and
//! the audience of the tokens it issues.
//!
//! The credentials are proven the only way a confidential client can prove them: by asking for a
//! client-credentials token for the read scope, exactly as `list_accounts` does
//! ([`ClientCredentialsCache`]). That token then shows the audience: its `aud` must include the
//! bank API's identifier, and its signature is verified with the key the provider publishes.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::{Finding, key};
use crate::authorization_details::PAYMENT_INITIATION;
use crate::ciba::client_credentials::ClientCredentialsCache;
use crate::ciba::discovery::{self, ProviderMetadata};
use crate::ciba::types::Secret;
use crate::ciba::{CibaClient, CibaError, ProviderRefusal, ProviderSettings};
use crate::config::LoadedConfig;
use crate::provider_keys::{AuthorizationServerKeys, KeyError};

const DISCOVERY: &str = "discovery";
const CIBA_ENDPOINT: &str = "CIBA endpoint";
const DELIVERY_MODE: &str = "delivery mode";
const TRANSACTION_BINDING: &str = "payment_initiation";
const CREDENTIALS: &str = "client credentials";
const AUDIENCE: &str = "audience";

/// What the provider checks found, and the read token for the bank check if one was issued.
pub struct ProviderChecks {
    pub findings: Vec<Finding>,
    pub token: Option<Secret>,
}

pub async fn check(loaded: &LoadedConfig, http: &reqwest::Client) -> ProviderChecks {
    let mut findings = Vec::new();
    let reachable = discovery(loaded, http, &mut findings).await;
    if !reachable {
        let why = "the provider's discovery document is needed first";
        findings.push(Finding::skipped(CREDENTIALS, why));
        findings.push(Finding::skipped(AUDIENCE, why));
        return ProviderChecks { findings, token: None };
    }
    let token = match credentials(loaded, http).await {
        Ok(token) => {
            findings.push(Finding::pass(CREDENTIALS, credentials_proven(loaded)));
            findings.push(audience(loaded, http, &token).await);
            Some(token)
        }
        Err(failed) => {
            findings.extend(failed);
            None
        }
    };
    ProviderChecks { findings, token }
}

/// The discovery document's findings; false if there is none to go on.
async fn discovery(loaded: &LoadedConfig, http: &reqwest::Client, findings: &mut Vec<Finding>) -> bool {
    let config = &loaded.config;
    let issuer = config.mcp_issuer();
    let url = discovery::metadata_url(&issuer);
    let overridden = config.mcp.backchannel_authentication_endpoint.is_some() && config.mcp.token_endpoint.is_some();
    let metadata = match discovery::fetch(http, &issuer).await {
        Ok(metadata) => metadata,
        Err(error) if overridden => {
            findings.push(Finding::warn(
                DISCOVERY,
                error.to_string(),
                "the endpoints come from mcp.backchannel_authentication_endpoint and mcp.token_endpoint",
            ));
            return true;
        }
        Err(error) => {
            findings.push(Finding::fail(DISCOVERY, error.to_string(), unreachable_fix(loaded, &issuer)));
            return false;
        }
    };
    if metadata.issuer != issuer {
        findings.push(Finding::fail(
            DISCOVERY,
            format!("{url} names issuer \"{}\", not \"{issuer}\"", metadata.issuer),
            format!(
                "set {} to exactly \"{}\": every token's iss must equal it, trailing slash included",
                key(loaded, "mcp.issuer"),
                metadata.issuer
            ),
        ));
        return false;
    }
    findings.push(Finding::pass(DISCOVERY, format!("{url} names issuer \"{issuer}\" exactly")));
    findings.push(ciba_endpoint(loaded, &metadata));
    findings.push(delivery_mode(loaded, &metadata));
    findings.push(transaction_binding(&metadata));
    true
}

fn unreachable_fix(loaded: &LoadedConfig, issuer: &str) -> String {
    match loaded.config.mcp.issuer {
        None => format!(
            "mcp.issuer is unset, so bankguard uses the embedded authorization server at {issuer}: start \
             `bankguard dev` with this configuration, or set mcp.issuer to your provider's issuer"
        ),
        Some(_) => format!(
            "check {}: it must be the provider's issuer, whose discovery document is served at \
             <issuer>/.well-known/openid-configuration, and the provider must be reachable from here",
            key(loaded, "mcp.issuer")
        ),
    }
}

fn ciba_endpoint(loaded: &LoadedConfig, metadata: &ProviderMetadata) -> Finding {
    if let Some(endpoint) = &loaded.config.mcp.backchannel_authentication_endpoint {
        return Finding::pass(CIBA_ENDPOINT, format!("{endpoint}, from mcp.backchannel_authentication_endpoint"));
    }
    match &metadata.backchannel_authentication_endpoint {
        Some(endpoint) => Finding::pass(CIBA_ENDPOINT, format!("backchannel_authentication_endpoint {endpoint}")),
        None => Finding::fail(
            CIBA_ENDPOINT,
            "the discovery document has no backchannel_authentication_endpoint: the provider does not offer CIBA",
            "enable CIBA at the provider (Auth0: the application's Client Initiated Backchannel Authentication \
             grant), or set mcp.backchannel_authentication_endpoint",
        ),
    }
}

fn delivery_mode(loaded: &LoadedConfig, metadata: &ProviderMetadata) -> Finding {
    let mode = loaded.config.mcp.delivery_mode.as_str();
    let offered = &metadata.backchannel_token_delivery_modes_supported;
    if offered.iter().any(|offered| offered == mode) {
        return Finding::pass(
            DELIVERY_MODE,
            format!("{mode} is in backchannel_token_delivery_modes_supported ({})", offered.join(", ")),
        );
    }
    let fix = match offered.as_slice() {
        [] => "the provider lists no backchannel_token_delivery_modes_supported: enable CIBA there".to_owned(),
        _ => format!("set {} to one of: {}", key(loaded, "mcp.delivery_mode"), offered.join(", ")),
    };
    Finding::fail(DELIVERY_MODE, format!("the provider does not offer {mode} delivery"), fix)
}

/// A warning, not a failure: RFC 9396 makes the metadata optional (a provider may accept the type
/// without listing it), and a bank that does not require transaction binding works without it.
fn transaction_binding(metadata: &ProviderMetadata) -> Finding {
    let listed = metadata.authorization_details_types_supported.iter().flatten().any(|t| t == PAYMENT_INITIATION);
    if listed {
        return Finding::pass(TRANSACTION_BINDING, "authorization_details_types_supported includes it");
    }
    Finding::warn(
        TRANSACTION_BINDING,
        "the discovery document does not list it in authorization_details_types_supported",
        "bankguard sends a payment_initiation authorization detail with every approval, and a bank that requires \
         transaction binding (bank_api.require_transaction_binding) refuses a transfer whose token lacks it: make \
         sure the provider accepts the type and copies it into the access token",
    )
}

/// The client-credentials token, or the findings that say why there is none.
async fn credentials(loaded: &LoadedConfig, http: &reqwest::Client) -> Result<Secret, Vec<Finding>> {
    let config = &loaded.config;
    let client_secret = crate::mcp::backends::client_secret(config).map_err(|error| {
        let fix = "set BANKGUARD_MCP__CLIENT_SECRET, or mcp.client_secret_file to a file holding it";
        vec![Finding::fail(CREDENTIALS, error.to_string(), fix), Finding::skipped(AUDIENCE, "no token")]
    })?;
    let settings = ProviderSettings {
        issuer: config.mcp_issuer(),
        backchannel_endpoint: config.mcp.backchannel_authentication_endpoint.clone(),
        token_endpoint: config.mcp.token_endpoint.clone(),
        client_id: config.mcp.client_id.clone(),
        client_secret,
        auth_method: config.mcp.client_auth_method,
    };
    let client = CibaClient::new(settings, http.clone());
    let cache = ClientCredentialsCache::new(Some(config.mcp_audience()), &config.mcp.read_scope);
    cache.token(&client).await.map_err(|error| match error {
        CibaError::Refused(refusal) if about_audience(&refusal) => vec![
            Finding::skipped(
                CREDENTIALS,
                "the token request failed on the audience (below), so it proves nothing here",
            ),
            Finding::fail(
                AUDIENCE,
                format!("the provider refused a token for \"{}\": {refusal}", config.mcp_audience()),
                audience_fix(loaded),
            ),
        ],
        CibaError::Refused(refusal) => {
            let detail = format!("the provider refused the token request: {refusal}");
            vec![
                Finding::fail(CREDENTIALS, detail, refusal_fix(loaded, &refusal)),
                Finding::skipped(AUDIENCE, "no token"),
            ]
        }
        other => vec![
            Finding::fail(CREDENTIALS, other.to_string(), "make the provider's token endpoint reachable from here"),
            Finding::skipped(AUDIENCE, "no token"),
        ],
    })
}

/// RFC 8707's `invalid_target`, or another refusal whose description names the audience.
fn about_audience(refusal: &ProviderRefusal) -> bool {
    let description = refusal.description.as_deref().unwrap_or_default().to_lowercase();
    refusal.error == "invalid_target" || description.contains("audience") || description.contains("resource")
}

fn credentials_proven(loaded: &LoadedConfig) -> String {
    let mcp = &loaded.config.mcp;
    format!(
        "{} got a token for {} ({}): the secret from {} is right",
        mcp.client_id,
        mcp.read_scope,
        mcp.client_auth_method.as_str(),
        secret_origin(loaded)
    )
}

/// Where `serve` reads the client secret from, said as a fix would.
fn secret_origin(loaded: &LoadedConfig) -> String {
    let config = &loaded.config;
    match (&config.mcp.client_secret, &config.mcp.client_secret_file) {
        (Some(_), _) => key(loaded, "mcp.client_secret"),
        (None, Some(file)) => format!("{} ({})", file.display(), key(loaded, "mcp.client_secret_file")),
        (None, None) => {
            let file = config.data_dir.join(crate::mcp::backends::EMBEDDED_CLIENT_FILE);
            format!("{} (written by `bankguard dev`)", std::path::absolute(&file).unwrap_or(file).display())
        }
    }
}

fn refusal_fix(loaded: &LoadedConfig, refusal: &ProviderRefusal) -> String {
    let mcp = &loaded.config.mcp;
    let client = &mcp.client_id;
    match refusal.error.as_str() {
        "invalid_client" => format!(
            "the provider does not accept this client id and secret, sent by {}: check {}, the secret from {}, \
             and {}",
            mcp.client_auth_method.as_str(),
            key(loaded, "mcp.client_id"),
            secret_origin(loaded),
            key(loaded, "mcp.client_auth_method"),
        ),
        "unauthorized_client" => format!(
            "allow client {client} the client_credentials grant at the provider (Auth0: the application's \
             Advanced Settings → Grant Types → Client Credentials)"
        ),
        "invalid_scope" | "access_denied" => format!(
            "let client {client} obtain {} ({}) for the API \"{}\" at the provider (Auth0: the API's Machine \
             to Machine Applications)",
            mcp.read_scope,
            key(loaded, "mcp.read_scope"),
            loaded.config.mcp_audience()
        ),
        _ => "the provider's answer above says what it wants".to_owned(),
    }
}

fn audience_fix(loaded: &LoadedConfig) -> String {
    let which = match loaded.config.mcp.audience {
        Some(_) => key(loaded, "mcp.audience"),
        None => format!("mcp.audience (unset, so {} is used)", key(loaded, "bank_api.audience")),
    };
    format!("set {which} to the bank API's identifier at the provider (Auth0: the API's Identifier)")
}

/// The token's `aud`, with its signature verified by the provider's published key where possible.
async fn audience(loaded: &LoadedConfig, http: &reqwest::Client, token: &Secret) -> Finding {
    let issuer = loaded.config.mcp_issuer();
    let audience = loaded.config.mcp_audience();
    let Some((header, claims)) = read_unverified(token.expose()) else {
        return Finding::warn(
            AUDIENCE,
            "the access token is not a JWT, so its aud cannot be read here",
            "the bank API check shows whether the bank accepts it",
        );
    };
    let auds = match &claims["aud"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let listed = format!("[{}]", auds.iter().map(|aud| format!("\"{aud}\"")).collect::<Vec<_>>().join(", "));
    if !auds.contains(&audience) {
        let detail = format!("the token's aud is {listed}, without \"{audience}\"");
        return Finding::fail(AUDIENCE, detail, audience_fix(loaded));
    }
    let keys = AuthorizationServerKeys::new(issuer.clone(), http.clone());
    let unverified = |why: &str| {
        Finding::warn(
            AUDIENCE,
            format!(
                "the token's aud {listed} includes \"{audience}\" (claims read without verifying the signature: {why})"
            ),
            "the bank API check verifies the token as the bank does",
        )
    };
    let Some(kid) = header.kid else { return unverified("the token names no key (kid)") };
    let published = match keys.key(&kid).await {
        Ok(published) => published,
        Err(KeyError::Unavailable) => return unverified("the provider's keys could not be fetched"),
        Err(KeyError::UnknownKid) => {
            return Finding::fail(
                AUDIENCE,
                format!("the token is signed with key \"{kid}\", which the provider does not publish"),
                format!("check {}: the keys come from its jwks_uri", key(loaded, "mcp.issuer")),
            );
        }
    };
    let algorithm: Algorithm = header.alg;
    let mut validation = Validation::new(algorithm);
    validation.leeway = crate::mcp::transport::oauth::verifier::LEEWAY_SECONDS;
    validation.set_issuer(&[&issuer]);
    validation.set_audience(&[&audience]);
    match jsonwebtoken::decode::<Value>(token.expose(), &published.key, &validation) {
        Ok(_) if published.algorithms.contains(&algorithm) => Finding::pass(
            AUDIENCE,
            format!(
                "the token's aud {listed} includes \"{audience}\"; its {algorithm:?} signature verifies with the provider's key \"{kid}\""
            ),
        ),
        Ok(_) => Finding::fail(
            AUDIENCE,
            format!("the token is signed {algorithm:?}, which its key \"{kid}\" is not for"),
            "the provider's tokens and keys disagree: report it to the provider",
        ),
        Err(error) => match error.kind() {
            ErrorKind::InvalidIssuer => Finding::fail(
                AUDIENCE,
                format!("the token's iss is {}, not \"{issuer}\"", claims["iss"]),
                format!("set {} to exactly the token's iss", key(loaded, "mcp.issuer")),
            ),
            kind => Finding::fail(
                AUDIENCE,
                format!("the token does not verify with the provider's key \"{kid}\": {kind:?}"),
                format!("check {} and the provider's clock and keys", key(loaded, "mcp.issuer")),
            ),
        },
    }
}

/// The header and the claims of a JWT, unverified; `None` for anything else (an opaque token).
fn read_unverified(token: &str) -> Option<(jsonwebtoken::Header, Value)> {
    use base64::Engine;
    let header = jsonwebtoken::decode_header(token).ok()?;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    Some((header, serde_json::from_slice(&bytes).ok()?))
}
