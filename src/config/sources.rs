//! Where each configuration value came from, and errors that say so.
//!
//! The defaults, the TOML file and the `BANKGUARD_*` variables are merged by figment, which tags every
//! value with the source it came from. Errors are restated from those tags (never by reading the
//! file again): each names the full dotted key and its [`Origin`], an unknown key gets the nearest
//! known key of its section as a suggestion, and `bankguard check` shows the origin of every setting.
//!
//! Environment variables are read through [`EnvVars`], a list taken once, so tests hand in their own
//! variables instead of changing the process's.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::{Config, DEFAULT_CONFIG_FILE};

/// The prefix of every configuration variable.
pub const ENV_PREFIX: &str = "BANKGUARD_";
/// Environment variables with the prefix that are not configuration keys.
const ENV_NOT_KEYS: &[&str] = &["CONFIG"];
/// How figment names values from [`EnvVars`].
const ENV_NAME: &str = "environment variable";

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    /// The variable's name, e.g. `BANKGUARD_MCP__ISSUER`.
    Env(String),
}

impl Origin {
    fn of(metadata: Option<&Metadata>, keys: &[&str]) -> Self {
        match metadata {
            Some(md) if md.name == ENV_NAME => Self::Env(md.interpolate(&Profile::Default, keys)),
            Some(Metadata { source: Some(Source::File(path)), .. }) => Self::File(path.clone()),
            _ => Self::Default,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the default"),
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

/// The variable that sets `key` (`mcp.issuer` → `BANKGUARD_MCP__ISSUER`).
pub fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {} does not exist", .0.display())]
    MissingFile(PathBuf),
    #[error("cannot read the configuration in {origin}: {reason}")]
    Unreadable { origin: Origin, reason: String },
    #[error("unknown key {key} in {origin}{}", suggestion.as_deref().map(|s| format!(" — did you mean {s}?")).unwrap_or_default())]
    UnknownKey { key: String, origin: Origin, suggestion: Option<String> },
    #[error("invalid configuration: {key}{}: {reason}", origin.as_ref().map(|o| format!(" (from {o})")).unwrap_or_default())]
    Invalid {
        key: String,
        /// Unknown when a [`Config`] built in code is validated.
        origin: Option<Origin>,
        reason: String,
    },
}

impl ConfigError {
    /// A value that fails validation; [`LoadedConfig::load`] adds its origin.
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), origin: None, reason: reason.into() }
    }

    /// Restates figment's error with the dotted key and the exact file or variable it came from.
    fn from_figment(error: figment::Error) -> Self {
        let mut keys: Vec<&str> = error.path.iter().map(String::as_str).collect();
        let origin = Origin::of(error.metadata.as_ref(), &keys);
        let one_of = |names: &[&str]| names.iter().map(|name| format!("\"{name}\"")).collect::<Vec<_>>().join(", ");
        // serde reports an unknown key of a table with flattened keys (`mcp.policy`) as a message on
        // the table, without the known ones.
        let flattened = match &error.kind {
            figment::error::Kind::Message(message) => message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.strip_suffix('`'))
                .map(|found| (found, super::flattened_table_keys(&keys.join(".")))),
            _ => None,
        };
        let unknown = match &error.kind {
            figment::error::Kind::UnknownField(found, expected) => Some((found.as_str(), expected.to_vec())),
            _ => flattened,
        };
        if let Some((found, expected)) = unknown {
            if keys.last() != Some(&found) {
                keys.push(found);
            }
            let section = &keys[..keys.len() - 1];
            let full = |name: &str| dotted(&[section, &[name]].concat());
            let suggestion = nearest(found, &expected).map(|name| match &origin {
                Origin::Env(_) => format!("{} ({})", full(name), env_var(&full(name))),
                _ => full(name),
            });
            return Self::UnknownKey { key: dotted(&keys), origin, suggestion };
        }
        let key = dotted(&keys);
        let reason = match &error.kind {
            figment::error::Kind::UnknownVariant(found, expected) => match nearest(found, expected) {
                Some(near) => format!("\"{found}\" is not one of {} — did you mean \"{near}\"?", one_of(expected)),
                None => format!("\"{found}\" is not one of {}", one_of(expected)),
            },
            figment::error::Kind::InvalidType(actual, expected)
            | figment::error::Kind::InvalidValue(actual, expected) => format!("expected {expected}, found {actual}"),
            figment::error::Kind::MissingField(field) => format!("{field} is required"),
            kind => kind.to_string(),
        };
        if key.is_empty() {
            return Self::Unreadable { origin, reason };
        }
        Self::Invalid { key, origin: Some(origin), reason }
    }
}

/// A key path as the documentation writes it: `authz.clients[0].id`.
fn dotted(keys: &[&str]) -> String {
    let mut key = String::new();
    for part in keys {
        match part.parse::<usize>() {
            Ok(index) => key.push_str(&format!("[{index}]")),
            Err(_) if key.is_empty() => key.push_str(part),
            Err(_) => {
                key.push('.');
                key.push_str(part);
            }
        }
    }
    key
}

/// The known name closest to `found`, if close enough to be a typo: a few edits away, or the start
/// of a longer name (`max_transfer` for `max_transfer_amount`).
fn nearest<'a>(found: &str, known: &[&'a str]) -> Option<&'a str> {
    let found = found.to_lowercase();
    let typo = known
        .iter()
        .map(|name| (strsim::levenshtein(&found, name), *name))
        .filter(|(distance, name)| *distance <= (name.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name);
    typo.or_else(|| known.iter().copied().find(|name| found.len() >= 4 && name.starts_with(found.as_str())))
}

/// `BANKGUARD_*` variables as configuration: `BANKGUARD_DATA_DIR` sets `data_dir`,
/// `BANKGUARD_<SECTION>__<KEY>` sets `<section>.<key>` (names are case-insensitive). Values are read
/// as figment reads any environment value (`true`, `5`, `[a, b]`, else a string).
pub struct EnvVars(Vec<(String, String)>);

impl EnvVars {
    /// This process's variables with the prefix (those whose name or value is not Unicode cannot be
    /// configuration, and are passed over rather than stopping start-up).
    pub fn from_process() -> Self {
        Self::from_pairs(
            std::env::vars_os().filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?))),
        )
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        let keys = vars.into_iter().filter_map(|(name, value)| {
            let name: String = name.into();
            let key =
                name.get(..ENV_PREFIX.len())?.eq_ignore_ascii_case(ENV_PREFIX).then(|| &name[ENV_PREFIX.len()..])?;
            let ignored = key.is_empty() || ENV_NOT_KEYS.iter().any(|not| not.eq_ignore_ascii_case(key));
            (!ignored).then(|| (key.to_lowercase().replace("__", "."), value.into()))
        });
        Self(keys.collect())
    }
}

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_NAME).interpolater(|_: &Profile, keys: &[&str]| env_var(&keys.join(".")))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, value) in &self.0 {
            let value = value.parse().unwrap_or_else(|never: std::convert::Infallible| match never {});
            insert(&mut dict, &key.split('.').collect::<Vec<_>>(), value);
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Sets `keys` (a dotted path) in `dict`, creating the tables on the way; a later variable wins.
fn insert(dict: &mut Dict, keys: &[&str], value: Value) {
    match keys {
        [] => {}
        [last] => {
            dict.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let entry = dict.entry((*first).to_owned()).or_insert_with(|| Value::from(Dict::new()));
            if entry.as_dict().is_none() {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, table) = entry {
                insert(table, rest, value);
            }
        }
    }
}

/// A configuration and where each of its values came from.
pub struct LoadedConfig {
    pub config: Config,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    figment: Figment,
}

impl LoadedConfig {
    /// Reads the defaults, the file (`explicit_file`, else `./bankguard.toml` if it exists) and the
    /// process's environment, then validates the result.
    pub fn load(explicit_file: Option<&Path>) -> Result<Self, ConfigError> {
        let file = match explicit_file {
            Some(path) if !path.is_file() => return Err(ConfigError::MissingFile(path.to_owned())),
            Some(path) => Some(path.to_owned()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|path| path.is_file()),
        };
        Self::from_sources(file, EnvVars::from_process())
    }

    /// The same from an existing file (or none) and the given variables.
    pub fn from_sources(file: Option<PathBuf>, env: EnvVars) -> Result<Self, ConfigError> {
        // An absolute path, so every message names the file wherever the reader stands.
        let file = file.map(|path| std::path::absolute(&path).unwrap_or(path));
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = &file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(env);
        let config: Config = figment.extract().map_err(ConfigError::from_figment)?;
        let loaded = Self { config, file, figment };
        match loaded.config.validate() {
            Ok(()) => Ok(loaded),
            Err(ConfigError::Invalid { key, origin: None, reason }) => {
                Err(ConfigError::Invalid { origin: Some(loaded.origin(&key)), key, reason })
            }
            Err(other) => Err(other),
        }
    }

    /// Where the value of `key` came from (`authz.clients[0].secret`: from where `authz.clients` did).
    pub fn origin(&self, key: &str) -> Origin {
        let key = key.split('[').next().unwrap_or(key);
        let keys: Vec<&str> = key.split('.').collect();
        Origin::of(self.figment.find_metadata(key), &keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: Option<&str>, env: &[(&str, &str)]) -> (Result<LoadedConfig, ConfigError>, Option<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let file = toml.map(|toml| {
            let path = dir.path().join("bankguard.toml");
            std::fs::write(&path, toml).unwrap();
            path
        });
        (LoadedConfig::from_sources(file.clone(), EnvVars::from_pairs(env.iter().copied())), file)
    }

    fn error(toml: Option<&str>, env: &[(&str, &str)]) -> (String, String) {
        let (loaded, file) = load(toml, env);
        let message = loaded.err().expect("the configuration is refused").to_string();
        (message, file.map(|f| f.display().to_string()).unwrap_or_default())
    }

    #[test]
    fn a_typo_in_the_file_names_the_key_and_file_and_suggests_the_known_key() {
        let (message, file) = error(Some("[mcp]\nisuer = \"https://tenant.auth0.com/\"\n"), &[]);
        assert_eq!(message, format!("unknown key mcp.isuer in {file} — did you mean mcp.issuer?"));

        let (message, file) = error(Some("[bank_api]\nrequire_transaction_bindng = false\n"), &[]);
        let wanted = format!(
            "unknown key bank_api.require_transaction_bindng in {file} — did you mean bank_api.require_transaction_binding?"
        );
        assert_eq!(message, wanted);
    }

    #[test]
    fn a_typo_in_the_money_policy_or_a_client_table_names_the_key_as_the_documentation_does() {
        for (toml, key, meant) in [
            ("[mcp.policy]\ndaily_cuont = 5\n", "mcp.policy.daily_cuont", "mcp.policy.daily_count"),
            ("[mcp.policy.holdres.bob]\ndaily_count = 5\n", "mcp.policy.holdres", "mcp.policy.holders"),
            (
                "[mcp.policy.holders.bob]\nmax_transfer = \"5\"\n",
                "mcp.policy.holders.bob.max_transfer",
                "mcp.policy.holders.bob.max_transfer_amount",
            ),
            ("[[authz.clients]]\nid = \"x\"\nsecrett = \"y\"\n", "authz.clients[0].secrett", "authz.clients[0].secret"),
        ] {
            let (message, file) = error(Some(toml), &[]);
            assert_eq!(message, format!("unknown key {key} in {file} — did you mean {meant}?"));
        }
    }

    #[test]
    fn a_key_nothing_like_a_known_one_gets_no_suggestion() {
        let (message, file) = error(Some("colour = \"blue\"\n"), &[]);
        assert_eq!(message, format!("unknown key colour in {file}"));
    }

    #[test]
    fn a_typo_in_an_environment_variable_names_the_variable_and_the_one_meant() {
        let (message, _) = error(None, &[("BANKGUARD_MCP__ISUER", "https://tenant.auth0.com/")]);
        assert_eq!(
            message,
            "unknown key mcp.isuer in environment variable BANKGUARD_MCP__ISUER — did you mean mcp.issuer \
             (BANKGUARD_MCP__ISSUER)?"
        );
    }

    #[test]
    fn a_bad_value_in_an_environment_variable_names_the_key_and_the_variable() {
        let (message, _) = error(None, &[("BANKGUARD_MCP__MAX_WAIT_SECONDS", "soon")]);
        assert_eq!(
            message,
            "invalid configuration: mcp.max_wait_seconds (from environment variable BANKGUARD_MCP__MAX_WAIT_SECONDS): \
             expected u64, found string \"soon\""
        );
        let (message, _) = error(None, &[("BANKGUARD_MCP__DELIVERY_MODE", "pnig")]);
        assert_eq!(
            message,
            "invalid configuration: mcp.delivery_mode (from environment variable BANKGUARD_MCP__DELIVERY_MODE): \
             \"pnig\" is not one of \"poll\", \"ping\" — did you mean \"ping\"?"
        );
    }

    #[test]
    fn a_range_error_names_where_the_value_came_from() {
        let (message, file) = error(Some("[mcp]\nmax_wait_seconds = 900\n"), &[]);
        assert_eq!(
            message,
            format!("invalid configuration: mcp.max_wait_seconds (from {file}): must be between 1 and 300")
        );

        let (message, _) = error(Some("[mcp]\nmax_wait_seconds = 900\n"), &[("BANKGUARD_MCP__MAX_WAIT_SECONDS", "0")]);
        assert!(message.contains("(from environment variable BANKGUARD_MCP__MAX_WAIT_SECONDS)"), "{message}");

        // The value at fault is the default, which a longer wait set elsewhere caught up with.
        let (message, _) = error(None, &[("BANKGUARD_MCP__MAX_WAIT_SECONDS", "300")]);
        assert_eq!(
            message,
            "invalid configuration: mcp.session_idle_seconds (from the default): must be more than mcp.max_wait_seconds"
        );
    }

    #[test]
    fn a_file_that_is_not_toml_is_named() {
        let (message, file) = error(Some("[mcp\n"), &[]);
        assert!(message.starts_with(&format!("cannot read the configuration in {file}: ")), "{message}");
    }

    #[test]
    fn every_value_knows_its_origin_and_the_environment_wins_over_the_file() {
        let toml = "data_dir = \"/srv/bankguard\"\n[mcp]\nuser = \"bob\"\nclient_id = \"from-file\"\n";
        let (loaded, file) = load(Some(toml), &[("BANKGUARD_MCP__CLIENT_ID", "from-env"), ("BANKGUARD_CONFIG", "x")]);
        let loaded = loaded.unwrap();
        let file = Origin::File(file.unwrap());
        assert_eq!(loaded.config.mcp.client_id, "from-env");
        assert_eq!(loaded.origin("mcp.client_id"), Origin::Env("BANKGUARD_MCP__CLIENT_ID".into()));
        assert_eq!((loaded.origin("mcp.user"), loaded.origin("data_dir")), (file.clone(), file));
        assert_eq!(loaded.origin("mcp.max_wait_seconds"), Origin::Default);
        assert_eq!(loaded.origin("mcp.issuer"), Origin::Default, "unset keys are the defaults' too");
    }
}
