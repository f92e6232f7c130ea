//! Typed configuration: one TOML file plus `BANKGUARD_*` environment variables, validated at start-up.
//!
//! Every default lives here and nowhere else. Sources, later ones winning:
//! 1. the defaults below (a fresh machine needs no file);
//! 2. the TOML file given with `--config` / `BANKGUARD_CONFIG`, or `./bankguard.toml` if it exists;
//! 3. environment variables: `BANKGUARD_DATA_DIR`, and `BANKGUARD_<SECTION>__<KEY>` for keys in a
//!    section, e.g. `BANKGUARD_BANK_API__LISTEN=127.0.0.1:9000`.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default), and every error names
//! the key and where its value came from. `bankguard.example.toml` documents every key; a test keeps
//! it in step with [`Config::default`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::money::MinorUnits;

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "bankguard.toml";
const ENV_PREFIX: &str = "BANKGUARD_";
/// Environment variables with the prefix that are not configuration keys.
const ENV_NOT_KEYS: &[&str] = &["CONFIG"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where SQLite databases, keys and generated credentials live; created on first start.
    pub data_dir: PathBuf,
    pub bank_api: BankApiConfig,
}

/// The reference bank API (`devstack::bank_api`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BankApiConfig {
    /// Address to listen on. Loopback unless you mean to expose it.
    pub listen: SocketAddr,
    /// The OpenID provider whose access tokens are accepted; its discovery document names the JWKS.
    pub issuer: String,
    /// The `aud` value a token must contain.
    pub audience: String,
    /// Require a `payment_initiation` authorization detail matching each transfer exactly.
    pub require_transaction_binding: bool,
    /// The largest single transfer, as a decimal string.
    pub max_transfer_amount: String,
    /// A token with an unknown `kid` triggers a JWKS refetch at most this often.
    pub jwks_refetch_interval_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self { data_dir: PathBuf::from(".bankguard"), bank_api: BankApiConfig::default() }
    }
}

/// Address of the embedded authorization server, the bank API's default token issuer.
pub const DEV_ISSUER: &str = "http://127.0.0.1:4100";

impl Default for BankApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4101)),
            issuer: DEV_ISSUER.to_owned(),
            audience: "urn:bankguard:bank-api".to_owned(),
            require_transaction_binding: true,
            max_transfer_amount: "10000.00".to_owned(),
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {} does not exist", .0.display())]
    MissingFile(PathBuf),
    #[error("invalid configuration in {origin}: {reason}")]
    Unreadable { origin: String, reason: String },
    #[error("invalid configuration: key `{key}`{origin}: {reason}")]
    Invalid { key: String, origin: String, reason: String },
}

impl ConfigError {
    /// Restates figment's error with the dotted key and the exact file or variable it came from.
    fn from_figment(error: figment::Error) -> Self {
        let origin = match &error.metadata {
            Some(md) if md.name.contains("environment") => {
                format!("environment variable {ENV_PREFIX}{}", error.path.join("__").to_uppercase())
            }
            Some(md) => md.source.as_ref().map_or_else(|| md.name.to_string(), |source| source.to_string()),
            None => "the defaults".to_owned(),
        };
        let reason = error.kind.to_string();
        if error.path.is_empty() {
            return Self::Unreadable { origin, reason };
        }
        Self::Invalid { key: error.path.join("."), origin: format!(" (from {origin})"), reason }
    }
}

impl Config {
    /// Reads the defaults, the file and the environment, then validates the result.
    pub fn load(explicit_file: Option<&Path>) -> Result<Self, ConfigError> {
        let file = match explicit_file {
            Some(path) if !path.is_file() => return Err(ConfigError::MissingFile(path.to_owned())),
            Some(path) => Some(path.to_owned()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|path| path.is_file()),
        };
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__").ignore(ENV_NOT_KEYS));
        let config: Config = figment.extract().map_err(ConfigError::from_figment)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| {
            Err(ConfigError::Invalid { key: key.to_owned(), origin: String::new(), reason: reason.to_owned() })
        };
        let bank = &self.bank_api;
        check_issuer(&bank.issuer).or_else(|reason| invalid("bank_api.issuer", reason))?;
        if bank.audience.trim().is_empty() {
            return invalid("bank_api.audience", "must not be empty");
        }
        match MinorUnits::parse_decimal(&bank.max_transfer_amount) {
            Ok(max) if max.is_positive() => {}
            Ok(_) => return invalid("bank_api.max_transfer_amount", "must be greater than zero"),
            Err(e) => return invalid("bank_api.max_transfer_amount", &e.to_string()),
        }
        if bank.jwks_refetch_interval_seconds == 0 {
            return invalid("bank_api.jwks_refetch_interval_seconds", "must be at least 1");
        }
        if self.data_dir.as_os_str().is_empty() {
            return invalid("data_dir", "must not be empty");
        }
        Ok(())
    }
}

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
    use super::*;

    #[test]
    fn the_example_file_documents_every_key_with_its_default() {
        let example = include_str!("../bankguard.example.toml");
        let parsed: Config = Figment::new().merge(Toml::string(example)).extract().expect("example parses");
        assert_eq!(parsed, Config::default());
        let documented = toml::Value::try_from(Config::default()).unwrap();
        let example_value: toml::Value = example.parse().unwrap();
        assert_eq!(example_value, documented, "every key appears in the example, uncommented");
    }

    #[test]
    fn defaults_are_valid_and_loopback() {
        let config = Config::default();
        config.validate().unwrap();
        assert!(config.bank_api.listen.ip().is_loopback());
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let mut config = Config::default();
        config.bank_api.max_transfer_amount = "ten".into();
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("bank_api.max_transfer_amount"), "{message}");
    }
}
