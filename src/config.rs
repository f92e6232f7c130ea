//! Typed configuration: one TOML file plus `BANKGUARD_*` environment variables, validated at start-up.
//!
//! Every default lives here and nowhere else. Sources, later ones winning:
//! 1. the defaults below (a fresh machine needs no file);
//! 2. the TOML file given with `--config` / `BANKGUARD_CONFIG`, or `./bankguard.toml` if it exists;
//! 3. environment variables: `BANKGUARD_DATA_DIR`, and `BANKGUARD_<SECTION>__<KEY>` for keys in a
//!    section, e.g. `BANKGUARD_BANK_API__LISTEN=127.0.0.1:9000`.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default, and the nearest known
//! key is suggested), and every error names the key and where its value came from (`config/sources.rs`).
//! `bankguard.example.toml` and `docs/configuration.md` document every key; tests keep both in step
//! with [`Config::default`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::money::MinorUnits;

mod sources;
pub use sources::{ConfigError, EnvVars, LoadedConfig, Origin, env_var};

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "bankguard.toml";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where SQLite databases, keys and generated credentials live; created on first start. Default:
    /// the user's own ([`crate::data_dir::default_location`], e.g. `~/.local/share/bankguard`), the
    /// same for every command wherever it starts.
    pub data_dir: PathBuf,
    pub mcp: McpConfig,
    pub authz: AuthzConfig,
    pub bank_api: BankApiConfig,
}

/// `bankguard serve`: the MCP server, its CIBA client and its bank client.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// Where `--transport http` listens (endpoint `/mcp`). Loopback unless you mean to expose it.
    pub listen: SocketAddr,
    /// `Host` header values accepted over HTTP (DNS-rebinding protection); ports are not compared.
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted over HTTP; a request with another `Origin` gets 403. `:*` matches any port.
    pub allowed_origins: Vec<String>,
    /// The most HTTP sessions open at once, 1 to 100000; an `initialize` beyond it gets 503 with
    /// `Retry-After`. Each session holds memory until it is deleted or idles out.
    pub max_sessions: usize,
    /// An HTTP session that sees no message for this long is closed (the client must `initialize`
    /// again), 1 to 86400 seconds and more than `max_wait_seconds`, the longest silent tool call.
    pub session_idle_seconds: u64,
    /// The OpenID provider. Unset: the embedded authorization server at `authz.listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Endpoint overrides for providers without discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_authentication_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    pub client_id: String,
    /// The client secret. Prefer the environment (`BANKGUARD_MCP__CLIENT_SECRET`) or `client_secret_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// A file holding the secret: plain text, or JSON with a `client_secret` field.
    /// Unset (and no `client_secret`): `<data_dir>/mcp-client.json`, written by `bankguard dev`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    pub client_auth_method: ClientAuthMethod,
    /// The bank API's identifier at the provider (`audience`). Unset: `bank_api.audience`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The scope asked for with every transfer approval (`openid` is always added).
    pub transfer_scope: String,
    /// The scope of the server's own client-credentials token for listing accounts.
    pub read_scope: String,
    /// The account holder this server acts for (their subject at the provider and the bank).
    pub user: String,
    /// How the holder is named in `login_hint`: `plain` (the subject) or `iss_sub` (Auth0's JSON form).
    pub login_hint_format: LoginHintFormat,
    /// The bank API's base URL. Unset: the embedded bank API at `bank_api.listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_api_url: Option<String>,
    /// How long the holder has to approve (`requested_expiry`), 1 to 259200 seconds (three days).
    /// Auth0 sends a request that may wait longer than 300 s through its email channel instead of a
    /// Guardian push. A tool call waits at most `max_wait_seconds` and then answers "pending"; the
    /// wait goes on in the background and `get_transfer_status` follows it.
    pub requested_expiry_seconds: u64,
    /// `poll`, or `ping` (HTTP transport only: the provider calls `/ciba/notify` on this server).
    pub delivery_mode: DeliveryMode,
    /// The largest transfer the server will ask approval for, as a decimal string.
    pub max_transfer_amount: String,
    /// Progress notifications are sent at least this often while waiting, 1 to 10 seconds.
    pub progress_interval_seconds: u64,
    /// The longest a tool call waits for the holder before it returns a pending result (the wait
    /// goes on in the background), 1 to 300 seconds. Most clients give up on a call after 60 s.
    pub max_wait_seconds: u64,
    /// Who a call over Streamable HTTP acts for: `none` (the configured `user`, loopback only) or
    /// `oauth` (the holder whose access token the request carries). Stdio always acts for `user`.
    pub auth: McpAuth,
    /// The MCP endpoint as an OAuth protected resource, used with `auth = "oauth"`.
    pub oauth: McpOAuthConfig,
    /// The limits every transfer is held to before its holder is asked (`[mcp.policy]`).
    pub policy: PolicyConfig,
    /// Only the tools whose annotations say they are read-only are listed and callable: for
    /// deployments that answer questions and never move money.
    pub read_only: bool,
    /// The most approval requests one holder may have waiting at once, 1 to 100000; one more
    /// transfer is refused with a tool error and nothing reaches the provider.
    pub max_pending_per_holder: usize,
    /// Where transfer intents are kept. Unset: SQLite in the data directory (one machine). A
    /// `postgres://` URL: that database, shared by every `bankguard serve` replica (see
    /// docs/deployment.md). Leave the password out of it: use `store_password_file`,
    /// `BANKGUARD_MCP__STORE_PASSWORD`, `PGPASSWORD` or `~/.pgpass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_url: Option<String>,
    /// The PostgreSQL password. Prefer the environment (`BANKGUARD_MCP__STORE_PASSWORD`) or
    /// `store_password_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_password: Option<String>,
    /// A file holding the PostgreSQL password (its first line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_password_file: Option<PathBuf>,
    /// The most connections to PostgreSQL per server process (besides the one that listens for
    /// other replicas), 1 to 1000.
    pub store_max_connections: u32,
    /// How often each server process records that it is alive, 1 to 60 seconds. The pending
    /// transfers of a process silent for three heartbeats are taken over by another `bankguard
    /// serve` on the same store.
    pub heartbeat_seconds: u64,
    /// In ping mode, the token endpoint is polled only when a ping arrives, once just before the
    /// request expires, and otherwise at most once per this many seconds (in case a ping was lost),
    /// 5 to 600.
    pub ping_fallback_poll_seconds: u64,
}

impl std::fmt::Debug for McpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpConfig")
            .field("listen", &self.listen)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("store", &if self.store_url.is_some() { "postgres" } else { "sqlite" })
            .field("store_password", &self.store_password.as_ref().map(|_| "<redacted>"))
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// How the HTTP transport knows who a call acts for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McpAuth {
    /// Every call acts for `mcp.user`: one holder, no sign-in. Only on a loopback `listen`.
    #[default]
    None,
    /// Every request carries an access token for this server (MCP authorization, OAuth 2.1); its
    /// holder is the one the call acts for.
    Oauth,
}

/// `[mcp.oauth]`: the MCP endpoint as an OAuth 2.1 protected resource (RFC 9728).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpOAuthConfig {
    /// The authorization server whose access tokens are accepted; its metadata (RFC 8414, or
    /// OpenID discovery) names the JWKS. Unset: `mcp.issuer` (the CIBA provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// This server's resource identifier (RFC 8707): the `aud` every token must carry, and the URL
    /// clients use. Unset: `http://<the address it listens on>/mcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The scope a token must carry to use the tools.
    pub scope: String,
    /// The claim naming the holder's user id at the bank; `sub` means the subject itself.
    pub holder_claim: String,
    /// Signature algorithms accepted on access tokens.
    pub algorithms: Vec<String>,
}

impl Default for McpOAuthConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            resource: None,
            scope: crate::scopes::MCP_TOOLS.to_owned(),
            holder_claim: "sub".to_owned(),
            algorithms: vec!["RS256".to_owned(), "ES256".to_owned()],
        }
    }
}

/// `[mcp.policy]`: the limits every transfer is held to before its holder is asked, from this file
/// only (never from a tool argument). Each holder (by their user id at the bank) may override any of
/// them under `[mcp.policy.holders.<user>]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    #[serde(flatten)]
    pub rules: PolicyRules,
    /// Per-holder overrides: a rule set here replaces the one above for that holder only.
    pub holders: std::collections::BTreeMap<String, PolicyRules>,
}

/// One holder's rules (or everyone's); an unset rule does not limit (or, in an override, keeps the
/// general rule).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyRules {
    /// The largest single transfer, as a decimal string. Unset: `mcp.max_transfer_amount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_transfer_amount: Option<String>,
    /// Per currency, the most one holder may transfer in any 24 hours (decimal strings), counting
    /// every transfer asked for and not denied, expired, cancelled or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_total: Option<std::collections::BTreeMap<String, String>>,
    /// The most transfers one holder may make in any 24 hours, in each currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_count: Option<u32>,
    /// The most approval requests one holder's device receives in any hour, whatever became of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_requests_per_hour: Option<u32>,
    /// `any` destination, or only an `allow_list` of them (`allowed_payees`, and the holder's own
    /// accounts unless `own_accounts_allowed = false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payees: Option<PayeeMode>,
    /// The destination account ids allowed in `allow_list` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_payees: Option<Vec<String>>,
    /// Destination account ids never allowed, in either mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_payees: Option<Vec<String>>,
    /// In `allow_list` mode, whether the holder's own accounts count as allowed (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_accounts_allowed: Option<bool>,
}

/// The keys of a table whose struct flattens another into it, for did-you-mean: serde reports an
/// unknown key there without the known ones. Read from the structs themselves (see [`field_names`]).
fn flattened_table_keys(table: &str) -> Vec<&'static str> {
    match table {
        // The rules, flattened, and PolicyConfig's own key.
        "mcp.policy" => [field_names::<PolicyRules>(), vec!["holders"]].concat(),
        _ => Vec::new(),
    }
}

/// The fields `T` knows, as serde lists them when it refuses an unknown one (none for a struct
/// with flattened fields: serde lists nothing for those).
fn field_names<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
    use figment::providers::Serialized;
    let probe = std::collections::BTreeMap::from([("\u{0}", 0)]);
    match figment::Figment::from(Serialized::defaults(probe)).extract::<T>() {
        Err(error) => match error.kind {
            figment::error::Kind::UnknownField(_, known) => known.to_vec(),
            _ => Vec::new(),
        },
        Ok(_) => Vec::new(),
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayeeMode {
    #[default]
    Any,
    AllowList,
}

impl PolicyConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.rules.validate("mcp.policy")?;
        for (holder, rules) in &self.holders {
            rules.validate(&format!("mcp.policy.holders.{holder}"))?;
        }
        Ok(())
    }
}

impl PolicyRules {
    fn validate(&self, table: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| Err(ConfigError::invalid(format!("{table}.{key}"), reason));
        let positive = |key: &str, amount: &str| match MinorUnits::parse_decimal(amount) {
            Ok(amount) if amount.is_positive() => Ok(()),
            Ok(_) => invalid(key, "must be greater than zero".into()),
            Err(e) => invalid(key, e.to_string()),
        };
        if let Some(max) = &self.max_transfer_amount {
            positive("max_transfer_amount", max)?;
        }
        for (currency, total) in self.daily_total.iter().flatten() {
            if currency.parse::<crate::money::Currency>().is_err() {
                return invalid("daily_total", format!("{currency:?} is not an ISO 4217 currency code in capitals"));
            }
            positive(&format!("daily_total.{currency}"), total)?;
        }
        if self.daily_count == Some(0) {
            return invalid("daily_count", "must be at least 1 (set mcp.read_only to allow no transfers)".into());
        }
        if self.approval_requests_per_hour == Some(0) {
            return invalid(
                "approval_requests_per_hour",
                "must be at least 1 (set mcp.read_only to allow no transfers)".into(),
            );
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginHintFormat {
    #[default]
    Plain,
    IssSub,
}

impl McpOAuthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| Err(ConfigError::invalid(format!("mcp.oauth.{key}"), reason));
        if let Some(issuer) = &self.issuer {
            check_issuer(issuer).or_else(|reason| invalid("issuer", reason))?;
        }
        if let Some(resource) = &self.resource {
            match Url::parse(resource) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.fragment().is_none() => {}
                _ => {
                    return invalid(
                        "resource",
                        "must be an http(s) URL without a fragment, such as https://mcp.example.com/mcp",
                    );
                }
            }
        }
        if self.scope.is_empty() || self.scope.contains(char::is_whitespace) {
            return invalid("scope", "must be one scope, without spaces");
        }
        if self.holder_claim.trim().is_empty() {
            return invalid("holder_claim", "must name a claim, such as sub");
        }
        if self.algorithms.is_empty() {
            return invalid("algorithms", "must name at least one algorithm");
        }
        for algorithm in &self.algorithms {
            if !ACCESS_TOKEN_ALGORITHMS.contains(&algorithm.as_str()) {
                let known = ACCESS_TOKEN_ALGORITHMS.join(", ");
                return invalid("algorithms", &format!("{algorithm:?} is not one of {known}"));
            }
        }
        Ok(())
    }
}

/// Asymmetric JWS algorithms an access token may be signed with (never `none`, never HMAC: a
/// resource server holds no shared secret with the authorization server).
pub const ACCESS_TOKEN_ALGORITHMS: &[&str] =
    &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// The per-transfer maximum both the MCP server and the bank API default to.
pub const DEFAULT_MAX_TRANSFER: &str = "10000.00";

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4102)),
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: vec!["http://localhost:*".into(), "http://127.0.0.1:*".into(), "http://[::1]:*".into()],
            max_sessions: 1000,
            session_idle_seconds: 300,
            issuer: None,
            backchannel_authentication_endpoint: None,
            token_endpoint: None,
            client_id: MCP_CLIENT_ID.to_owned(),
            client_secret: None,
            client_secret_file: None,
            client_auth_method: ClientAuthMethod::ClientSecretBasic,
            audience: None,
            transfer_scope: crate::scopes::CREATE_TRANSFER.to_owned(),
            read_scope: crate::scopes::READ_ACCOUNTS.to_owned(),
            user: "alice".to_owned(),
            login_hint_format: LoginHintFormat::Plain,
            bank_api_url: None,
            requested_expiry_seconds: 300,
            delivery_mode: DeliveryMode::Poll,
            max_transfer_amount: DEFAULT_MAX_TRANSFER.to_owned(),
            progress_interval_seconds: 5,
            max_wait_seconds: 45,
            auth: McpAuth::None,
            oauth: McpOAuthConfig::default(),
            policy: PolicyConfig::default(),
            read_only: false,
            max_pending_per_holder: 3,
            store_url: None,
            store_password: None,
            store_password_file: None,
            store_max_connections: 10,
            heartbeat_seconds: 5,
            ping_fallback_poll_seconds: 60,
        }
    }
}

impl Config {
    /// The provider `bankguard serve` uses: configured, or the embedded one.
    pub fn mcp_issuer(&self) -> String {
        self.mcp.issuer.clone().unwrap_or_else(|| format!("http://{}", self.authz.listen))
    }

    /// The bank API `bankguard serve` uses: configured, or the embedded one.
    pub fn mcp_bank_api_url(&self) -> String {
        self.mcp.bank_api_url.clone().unwrap_or_else(|| format!("http://{}/api", self.bank_api.listen))
    }

    /// The authorization server for MCP clients (`mcp.auth = "oauth"`): configured, or the CIBA provider.
    pub fn mcp_oauth_issuer(&self) -> String {
        self.mcp.oauth.issuer.clone().unwrap_or_else(|| self.mcp_issuer())
    }

    /// The MCP endpoint's resource identifier when it listens on `mcp.listen`: configured, or
    /// `http://<mcp.listen>/mcp`.
    pub fn mcp_resource(&self) -> String {
        self.mcp.resource_at(self.mcp.listen)
    }

    pub fn mcp_audience(&self) -> String {
        self.mcp.audience.clone().unwrap_or_else(|| self.bank_api.audience.clone())
    }
}

/// The embedded CIBA authorization server (`devstack::authz`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthzConfig {
    /// Address to listen on; the issuer identifier is `http://<this address>`.
    pub listen: SocketAddr,
    /// The polling interval announced to CIBA clients (`interval`), in seconds.
    pub poll_interval_seconds: u64,
    /// Lifetime of issued access and ID tokens (`expires_in`), in seconds.
    pub token_lifetime_seconds: u64,
    /// Lifetime of an authorization code (the code flow for MCP clients), 1 to 600 seconds.
    pub authorization_code_lifetime_seconds: u64,
    /// Lifetime of a refresh token, 60 to 31536000 seconds; each use rotates it, the new one lives as
    /// long again.
    pub refresh_token_lifetime_seconds: u64,
    /// Clients besides the MCP server's own, which is generated on first start.
    pub clients: Vec<ClientConfig>,
}

/// A client registered with the embedded authorization server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub id: String,
    /// At least 16 characters; empty (or left out) for a public client (`auth_method = "none"`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret: String,
    #[serde(default)]
    pub auth_method: ClientAuthMethod,
    /// Where the authorization code flow may send the user back (exact match): `https`, or `http`
    /// on a loopback host. Required for the `authorization_code` grant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    /// The name the sign-in consent page shows; the client id when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default = "ClientConfig::default_grant_types")]
    pub grant_types: Vec<GrantType>,
    #[serde(default)]
    pub delivery_mode: DeliveryMode,
    /// Where pings are sent; required for `delivery_mode = "ping"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_endpoint: Option<String>,
    /// Scopes this client may obtain with its own credentials (never `create:transfer`).
    #[serde(default = "ClientConfig::default_client_credentials_scopes")]
    pub client_credentials_scopes: Vec<String>,
}

impl ClientConfig {
    pub fn default_grant_types() -> Vec<GrantType> {
        vec![GrantType::Ciba, GrantType::ClientCredentials]
    }

    pub fn default_client_credentials_scopes() -> Vec<String> {
        vec![crate::scopes::READ_ACCOUNTS.to_owned()]
    }

    /// The grants of a public client that signs users in (an MCP client).
    pub fn sign_in_grant_types() -> Vec<GrantType> {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    }

    /// A redirect URI a client may register: an absolute `https` URL, or `http` on a loopback host
    /// (RFC 8252 §7.3), without a fragment (RFC 6749 §3.1.2). The one rule for configured and
    /// dynamically registered clients.
    pub fn check_redirect_uri(uri: &str) -> Result<Url, &'static str> {
        let url = Url::parse(uri).map_err(|_| "must be an absolute URL")?;
        if url.fragment().is_some() {
            return Err("must not have a fragment");
        }
        let loopback = match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match url.scheme() {
            "https" if url.host().is_some() => Ok(url),
            "http" if loopback => Ok(url),
            _ => Err("must be https, or http on a loopback host (localhost, 127.0.0.1, [::1])"),
        }
    }
}

/// How a client proves its identity at the token and backchannel endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    /// A public client (RFC 6749 §2.1): it has no secret and names itself with `client_id` alone.
    None,
}

impl ClientAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantType {
    #[serde(rename = "urn:openid:params:grant-type:ciba")]
    Ciba,
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// A user signs in at `/authorize` (OAuth 2.1 with PKCE).
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    #[serde(rename = "refresh_token")]
    RefreshToken,
}

impl GrantType {
    pub const ALL: [GrantType; 4] = [Self::AuthorizationCode, Self::RefreshToken, Self::Ciba, Self::ClientCredentials];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ciba => "urn:openid:params:grant-type:ciba",
            Self::ClientCredentials => "client_credentials",
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
        }
    }

    /// The grant a token request's `grant_type` names, if this server knows it.
    pub fn parse(grant_type: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|grant| grant.as_str() == grant_type)
    }
}

/// CIBA token delivery (push is not offered: FAPI-CIBA forbids it, and Auth0 does not do it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    #[default]
    Poll,
    Ping,
}

impl DeliveryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Ping => "ping",
        }
    }
}

impl Default for AuthzConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4100)),
            poll_interval_seconds: 5,
            token_lifetime_seconds: 300,
            authorization_code_lifetime_seconds: 60,
            refresh_token_lifetime_seconds: 86_400,
            clients: Vec::new(),
        }
    }
}

/// The reference bank API (`devstack::bank_api`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BankApiConfig {
    /// Address to listen on. Loopback unless you mean to expose it.
    pub listen: SocketAddr,
    /// The OpenID provider whose access tokens are accepted; its discovery document names the JWKS.
    /// Unset: the embedded authorization server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The `aud` value a token must contain.
    pub audience: String,
    /// Require a `payment_initiation` authorization detail matching each transfer exactly.
    pub require_transaction_binding: bool,
    /// The largest single transfer, as a decimal string.
    pub max_transfer_amount: String,
    /// Require the RFC 9068 header `typ: at+jwt` (or `application/at+jwt`, any case), so that no other
    /// JWT the provider signs (an ID token, a logout token) passes for an access token. Turn it off only
    /// for a provider that sends `typ: JWT` access tokens (Keycloak by default); Auth0 sends `at+jwt`
    /// for an API on its "RFC 9068" token profile, which the bank needs anyway for `jti`.
    pub require_at_jwt_typ: bool,
    /// The clients (`client_id`, or Auth0's `azp`) whose access tokens the bank accepts, on every route:
    /// a token the provider issued to any other client is refused.
    pub accepted_client_ids: Vec<String>,
    /// A token with an unknown `kid` makes the bank fetch the issuer's keys at once, unless a fetch
    /// for an unknown `kid` came back without it less than this long ago (then it is refused unfetched).
    pub jwks_refetch_interval_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: crate::data_dir::default_location(),
            mcp: McpConfig::default(),
            authz: AuthzConfig::default(),
            bank_api: BankApiConfig::default(),
        }
    }
}

impl Default for BankApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4101)),
            issuer: None,
            audience: "urn:bankguard:bank-api".to_owned(),
            require_transaction_binding: true,
            max_transfer_amount: DEFAULT_MAX_TRANSFER.to_owned(),
            require_at_jwt_typ: true,
            accepted_client_ids: vec![MCP_CLIENT_ID.to_owned()],
            jwks_refetch_interval_seconds: 60,
        }
    }
}

impl BankApiConfig {
    /// The per-transfer maximum; valid once [`Config::validate`] has passed.
    pub fn max_transfer(&self) -> MinorUnits {
        MinorUnits::parse_decimal(&self.max_transfer_amount).unwrap_or_default()
    }
}

impl Config {
    /// Reads the defaults, the file and the environment, then validates the result (see
    /// [`LoadedConfig`] for where each value came from).
    pub fn load(explicit_file: Option<&Path>) -> Result<Self, ConfigError> {
        LoadedConfig::load(explicit_file).map(|loaded| loaded.config)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| Err(ConfigError::invalid(key, reason));
        let bank = &self.bank_api;
        if let Some(issuer) = &bank.issuer {
            check_issuer(issuer).or_else(|reason| invalid("bank_api.issuer", reason))?;
        }
        if bank.audience.trim().is_empty() {
            return invalid("bank_api.audience", "must not be empty");
        }
        match MinorUnits::parse_decimal(&bank.max_transfer_amount) {
            Ok(max) if max.is_positive() => {}
            Ok(_) => return invalid("bank_api.max_transfer_amount", "must be greater than zero"),
            Err(e) => return invalid("bank_api.max_transfer_amount", &e.to_string()),
        }
        if bank.accepted_client_ids.is_empty() {
            return invalid("bank_api.accepted_client_ids", "must name at least one client (the MCP server's)");
        }
        if bank.accepted_client_ids.iter().any(|id| id.is_empty() || id.trim() != id) {
            return invalid("bank_api.accepted_client_ids", "entries must be client ids, without surrounding spaces");
        }
        if bank.jwks_refetch_interval_seconds == 0 {
            return invalid("bank_api.jwks_refetch_interval_seconds", "must be at least 1");
        }
        self.authz.validate()?;
        self.mcp.validate()?;
        if self.data_dir.as_os_str().is_empty() {
            return invalid("data_dir", "must not be empty");
        }
        Ok(())
    }
}

impl McpConfig {
    /// The MCP endpoint's resource identifier when it listens on `address`: `oauth.resource`, or
    /// `http://<address>/mcp`.
    pub fn resource_at(&self, address: SocketAddr) -> String {
        self.oauth.resource.clone().unwrap_or_else(|| format!("http://{address}/mcp"))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| Err(ConfigError::invalid(format!("mcp.{key}"), reason));
        for (key, value) in [
            ("issuer", &self.issuer),
            ("backchannel_authentication_endpoint", &self.backchannel_authentication_endpoint),
            ("token_endpoint", &self.token_endpoint),
            ("bank_api_url", &self.bank_api_url),
        ] {
            if let Some(url) = value {
                check_issuer(url).or_else(|reason| invalid(key, reason))?;
            }
        }
        if self.client_id.is_empty() {
            return invalid("client_id", "must not be empty");
        }
        if self.client_auth_method == ClientAuthMethod::None {
            return invalid(
                "client_auth_method",
                "the MCP server is a confidential CIBA client: use client_secret_basic or client_secret_post",
            );
        }
        if self.user.is_empty() {
            return invalid("user", "must name the account holder");
        }
        if !(1..=100_000).contains(&self.max_pending_per_holder) {
            return invalid("max_pending_per_holder", "must be between 1 and 100000");
        }
        self.oauth.validate()?;
        self.policy.validate()?;
        for (key, scope) in [("transfer_scope", &self.transfer_scope), ("read_scope", &self.read_scope)] {
            if scope.is_empty() || scope.contains(char::is_whitespace) {
                return invalid(key, "must be one scope, without spaces");
            }
        }
        if !(1..=259_200).contains(&self.requested_expiry_seconds) {
            return invalid("requested_expiry_seconds", "must be between 1 and 259200 (three days)");
        }
        if !(1..=10).contains(&self.progress_interval_seconds) {
            return invalid("progress_interval_seconds", "must be between 1 and 10");
        }
        if !(1..=300).contains(&self.max_wait_seconds) {
            return invalid("max_wait_seconds", "must be between 1 and 300");
        }
        if !(1..=1000).contains(&self.store_max_connections) {
            return invalid("store_max_connections", "must be between 1 and 1000");
        }
        if let Some(url) = &self.store_url {
            // Parsed again, with the password, when the store opens; the reason never repeats the URL.
            if let Err(reason) = crate::mcp::lifecycle::PostgresLocation::parse(url, None, 1) {
                return invalid("store_url", &reason);
            }
        }
        if self.store_password.is_some() && self.store_password_file.is_some() {
            return invalid("store_password_file", "set either store_password or store_password_file, not both");
        }
        if !(1..=60).contains(&self.heartbeat_seconds) {
            return invalid("heartbeat_seconds", "must be between 1 and 60");
        }
        if !(5..=600).contains(&self.ping_fallback_poll_seconds) {
            return invalid("ping_fallback_poll_seconds", "must be between 5 and 600");
        }
        if !(1..=100_000).contains(&self.max_sessions) {
            return invalid("max_sessions", "must be between 1 and 100000");
        }
        if !(1..=86_400).contains(&self.session_idle_seconds) {
            return invalid("session_idle_seconds", "must be between 1 and 86400");
        }
        if self.session_idle_seconds <= self.max_wait_seconds {
            // A call that waits without progress notifications is silent that long; rmcp would
            // close its session under it.
            return invalid("session_idle_seconds", "must be more than mcp.max_wait_seconds");
        }
        match MinorUnits::parse_decimal(&self.max_transfer_amount) {
            Ok(max) if max.is_positive() => {}
            Ok(_) => return invalid("max_transfer_amount", "must be greater than zero"),
            Err(e) => return invalid("max_transfer_amount", &e.to_string()),
        }
        for origin in &self.allowed_origins {
            if origin != "null" && !origin.contains("://") {
                return invalid("allowed_origins", "entries need a scheme, e.g. http://localhost:*");
            }
        }
        Ok(())
    }

    /// The per-transfer maximum; valid once [`Config::validate`] has passed.
    pub fn max_transfer(&self) -> MinorUnits {
        MinorUnits::parse_decimal(&self.max_transfer_amount).unwrap_or_default()
    }
}

impl AuthzConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: String, reason: &str| Err(ConfigError::invalid(key, reason));
        if self.poll_interval_seconds == 0 || self.poll_interval_seconds > 60 {
            return invalid("authz.poll_interval_seconds".into(), "must be between 1 and 60");
        }
        if self.token_lifetime_seconds < 30 || self.token_lifetime_seconds > 86_400 {
            return invalid("authz.token_lifetime_seconds".into(), "must be between 30 and 86400");
        }
        if !(1..=600).contains(&self.authorization_code_lifetime_seconds) {
            return invalid("authz.authorization_code_lifetime_seconds".into(), "must be between 1 and 600");
        }
        if !(60..=31_536_000).contains(&self.refresh_token_lifetime_seconds) {
            return invalid("authz.refresh_token_lifetime_seconds".into(), "must be between 60 and 31536000");
        }
        let mut ids = std::collections::HashSet::new();
        for (index, client) in self.clients.iter().enumerate() {
            let key = |field: &str| format!("authz.clients[{index}].{field}");
            if client.id.is_empty() || !client.id.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return invalid(key("id"), "must be non-empty visible ASCII without ':'");
            }
            if client.id == MCP_CLIENT_ID || !ids.insert(client.id.as_str()) {
                return invalid(key("id"), "is already registered");
            }
            let public = client.auth_method == ClientAuthMethod::None;
            if public && !client.secret.is_empty() {
                return invalid(key("secret"), "must be left out for a public client (auth_method = \"none\")");
            }
            if !public && client.secret.len() < 16 {
                return invalid(key("secret"), "must be at least 16 characters");
            }
            if client.grant_types.is_empty() {
                return invalid(key("grant_types"), "must allow at least one grant");
            }
            if public
                && client
                    .grant_types
                    .iter()
                    .any(|grant| matches!(grant, GrantType::Ciba | GrantType::ClientCredentials))
            {
                return invalid(
                    key("grant_types"),
                    "a public client (auth_method = \"none\") may use only authorization_code and refresh_token",
                );
            }
            if client.grant_types.contains(&GrantType::AuthorizationCode) && client.redirect_uris.is_empty() {
                return invalid(key("redirect_uris"), "is required for the authorization_code grant");
            }
            for uri in &client.redirect_uris {
                if let Err(reason) = ClientConfig::check_redirect_uri(uri) {
                    return invalid(key("redirect_uris"), &format!("{uri:?} {reason}"));
                }
            }
            if client.client_name.as_deref().is_some_and(|name| name.trim().is_empty()) {
                return invalid(key("client_name"), "must not be empty");
            }
            if client.client_credentials_scopes.iter().any(|s| s == crate::scopes::CREATE_TRANSFER) {
                return invalid(
                    key("client_credentials_scopes"),
                    "create:transfer needs the account holder's approval",
                );
            }
            match (&client.delivery_mode, &client.notification_endpoint) {
                (DeliveryMode::Ping, None) => {
                    return invalid(key("notification_endpoint"), "is required for delivery_mode = \"ping\"");
                }
                (_, Some(endpoint)) => {
                    let url = Url::parse(endpoint).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
                    if url.is_none() {
                        return invalid(key("notification_endpoint"), "must be an http(s) URL");
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The client id of the MCP server, generated by the embedded authorization server on first start.
pub const MCP_CLIENT_ID: &str = "bankguard-mcp";

/// An issuer identifier is an http(s) URL without query or fragment (OpenID Connect Discovery §2).
/// It is kept as written: `iss` must equal it character for character, trailing slash included.
fn check_issuer(issuer: &str) -> Result<(), &'static str> {
    let url = Url::parse(issuer).map_err(|_| "must be an http(s) URL such as https://tenant.auth0.com/")?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http(s) URL such as https://tenant.auth0.com/");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use figment::Figment;
    use figment::providers::{Format, Serialized, Toml};

    use super::*;

    #[test]
    fn the_example_file_documents_every_key_with_its_default() {
        let example = include_str!("../bankguard.example.toml");
        let parsed: Config = Figment::new().merge(Toml::string(example)).extract().expect("example parses");
        assert_eq!(parsed, Config::default());
        // Every key but `data_dir`, whose default is the user's own directory (shown commented out).
        let mut documented = toml::Value::try_from(Config::default()).unwrap();
        documented.as_table_mut().unwrap().remove("data_dir");
        let example_value: toml::Value = example.parse().unwrap();
        assert_eq!(example_value, documented, "every key appears in the example, uncommented");
        assert!(example.contains("\n# data_dir = \"/home/you/.local/share/bankguard\"\n"));
    }

    /// Every key of the defaults as a dotted path, with its value; a table left empty is a key too.
    fn flatten(prefix: &str, value: &toml::Value, into: &mut std::collections::BTreeMap<String, toml::Value>) {
        match value {
            toml::Value::Table(table) if !table.is_empty() => {
                for (key, value) in table {
                    let key = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                    flatten(&key, value, into);
                }
            }
            leaf => {
                into.insert(prefix.to_owned(), leaf.clone());
            }
        }
    }

    /// Whether bankguard knows `key` as `docs/configuration.md` writes it: `a.b[].c` is key `c` of the
    /// tables in list `a.b`, `<user>` any holder. Set to a placeholder value, it is refused only as
    /// unknown if it does not exist.
    fn exists(key: &str) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let loaded = match key.split_once("[].") {
            Some((list, field)) => {
                let file = dir.path().join("bankguard.toml");
                std::fs::write(&file, format!("[[{list}]]\n{field} = 1\n")).unwrap();
                LoadedConfig::from_sources(Some(file), EnvVars::from_pairs(Vec::<(String, String)>::new()))
            }
            None => {
                let key = key.replace("<user>", "bob").replace("<rule>", "daily_count");
                LoadedConfig::from_sources(None, EnvVars::from_pairs([(env_var(&key), "1")]))
            }
        };
        !matches!(loaded, Err(ConfigError::UnknownKey { .. }))
    }

    #[test]
    fn the_configuration_page_documents_every_key_with_its_default_and_variable_and_no_other() {
        let page = include_str!("../docs/configuration.md");
        let (_, tables) = page.split_once("## Every key").expect("docs/configuration.md has its key tables");
        let rows: std::collections::BTreeMap<&str, Vec<&str>> = tables
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
                (cells[0].trim_matches('`'), cells)
            })
            .collect();
        let mut defaults = std::collections::BTreeMap::new();
        flatten("", &toml::Value::try_from(Config::default()).unwrap(), &mut defaults);

        for (key, value) in &defaults {
            let row = rows.get(key.as_str()).unwrap_or_else(|| panic!("{key} is not in docs/configuration.md"));
            // The one default that depends on the user, said as a rule.
            let value = if key == "data_dir" { "$XDG_DATA_HOME/bankguard".into() } else { value.to_string() };
            assert_eq!(row[1], format!("`{value}`"), "the default of {key}");
            assert_eq!(row[2], format!("`{}`", env_var(key)), "the variable of {key}");
        }
        for key in rows.keys() {
            assert!(exists(key), "docs/configuration.md names {key}, which bankguard does not know");
        }
        assert!(!exists("mcp.isuer") && !exists("authz.clients[].colour"), "the guard itself tells");
    }

    #[test]
    fn defaults_are_valid_and_loopback() {
        let config = Config::default();
        config.validate().unwrap();
        assert!(config.bank_api.listen.ip().is_loopback());
    }

    #[test]
    fn a_session_cannot_idle_out_under_a_waiting_call() {
        let mut config = Config::default();
        config.mcp.session_idle_seconds = config.mcp.max_wait_seconds;
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("mcp.session_idle_seconds") && message.contains("max_wait_seconds"), "{message}");
        config.mcp.max_sessions = 0;
        config.mcp.session_idle_seconds = 300;
        assert!(config.validate().unwrap_err().to_string().contains("mcp.max_sessions"));
    }

    #[test]
    fn a_public_client_has_no_secret_signs_in_only_and_needs_a_safe_redirect_uri() {
        let public = ClientConfig {
            id: "my-mcp-client".into(),
            secret: String::new(),
            auth_method: ClientAuthMethod::None,
            redirect_uris: vec!["http://127.0.0.1:33418/callback".into(), "https://app.example/cb".into()],
            client_name: Some("My MCP client".into()),
            grant_types: ClientConfig::sign_in_grant_types(),
            delivery_mode: DeliveryMode::Poll,
            notification_endpoint: None,
            client_credentials_scopes: Vec::new(),
        };
        let with = |client: ClientConfig| {
            let mut config = Config::default();
            config.authz.clients = vec![client];
            config.validate().map_err(|e| e.to_string())
        };
        with(public.clone()).unwrap();
        for (client, key) in [
            (ClientConfig { secret: "a-secret-of-16-chars".into(), ..public.clone() }, "authz.clients[0].secret"),
            (ClientConfig { grant_types: ClientConfig::default_grant_types(), ..public.clone() }, "grant_types"),
            (ClientConfig { redirect_uris: Vec::new(), ..public.clone() }, "redirect_uris"),
            (ClientConfig { redirect_uris: vec!["http://app.example/cb".into()], ..public.clone() }, "redirect_uris"),
            (
                ClientConfig { redirect_uris: vec!["https://app.example/cb#x".into()], ..public.clone() },
                "redirect_uris",
            ),
        ] {
            let message = with(client).unwrap_err();
            assert!(message.contains(key), "{message}");
        }
        let toml = "[[authz.clients]]\nid = \"c\"\nauth_method = \"none\"\ngrant_types = [\"authorization_code\", \"refresh_token\"]\nredirect_uris = [\"http://localhost:9/cb\"]\n";
        let parsed: Config =
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml)).extract().unwrap();
        assert_eq!(parsed.authz.clients[0].auth_method, ClientAuthMethod::None);
        assert_eq!(parsed.authz.clients[0].secret, "");
        parsed.validate().unwrap();
    }

    #[test]
    fn the_money_policy_reads_general_rules_and_per_holder_overrides_and_refuses_unknown_keys() {
        let parse = |toml: &str| -> Result<Config, String> {
            Figment::from(Serialized::defaults(Config::default()))
                .merge(Toml::string(toml))
                .extract::<Config>()
                .map_err(|e| e.to_string())
        };
        let toml = "[mcp.policy]\ndaily_count = 5\napproval_requests_per_hour = 10\npayees = \"allow_list\"\n\
                    allowed_payees = [\"acc_bob_chk\"]\ndaily_total = { USD = \"500.00\" }\n\
                    [mcp.policy.holders.bob]\nmax_transfer_amount = \"20.00\"\npayees = \"any\"\n";
        let parsed = parse(toml).unwrap();
        parsed.validate().unwrap();
        let policy = &parsed.mcp.policy;
        assert_eq!(policy.rules.daily_count, Some(5));
        assert_eq!(policy.rules.payees, Some(PayeeMode::AllowList));
        assert_eq!(policy.rules.daily_total.as_ref().unwrap()["USD"], "500.00");
        assert_eq!(policy.holders["bob"].max_transfer_amount.as_deref(), Some("20.00"));
        assert_eq!(policy.holders["bob"].payees, Some(PayeeMode::Any));

        for (toml, key) in [
            ("[mcp.policy]\ndaily_cuont = 5\n", "daily_cuont"),
            ("[mcp.policy.holders.bob]\nmax_transfer = \"5\"\n", "max_transfer"),
        ] {
            let refused = parse(toml).err().unwrap_or_else(|| panic!("{toml} is refused"));
            assert!(refused.contains(key), "{refused}");
        }
        for (toml, key) in [
            ("[mcp.policy]\ndaily_total = { usd = \"5\" }\n", "mcp.policy.daily_total"),
            ("[mcp.policy.holders.bob]\ndaily_total = { USD = \"-5\" }\n", "mcp.policy.holders.bob.daily_total.USD"),
            ("[mcp.policy]\ndaily_count = 0\n", "mcp.policy.daily_count"),
        ] {
            let message = parse(toml).unwrap().validate().unwrap_err().to_string();
            assert!(message.contains(key), "{message}");
        }
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let mut config = Config::default();
        config.bank_api.max_transfer_amount = "ten".into();
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("bank_api.max_transfer_amount"), "{message}");
    }

    #[test]
    fn the_bank_accepts_the_mcp_servers_tokens_by_default_and_needs_some_client() {
        let mut config = Config::default();
        assert_eq!(config.bank_api.accepted_client_ids, [config.mcp.client_id.clone()]);
        assert!(config.bank_api.require_at_jwt_typ);
        config.bank_api.accepted_client_ids.clear();
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("bank_api.accepted_client_ids"), "{message}");
        config.bank_api.accepted_client_ids = vec![" bankguard-mcp".into()];
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("bank_api.accepted_client_ids"), "{message}");
    }
}
