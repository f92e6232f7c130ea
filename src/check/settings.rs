//! The effective settings, one line each with where the value came from. Secrets (the MCP client's
//! secret, the PostgreSQL password, the embedded server's client secrets) are shown only as `set` or
//! `unset`, and a password written into a URL as `(secret)`.

use std::fmt;

use serde_json::Value;

use crate::config::{Config, LoadedConfig, Origin};

/// Keys whose value is never shown, by their last part.
const SECRET_KEYS: &[&str] = &["client_secret", "store_password", "secret"];
/// Secrets listed even when unset, since where they come from matters then.
const LISTED_SECRETS: &[&str] = &["mcp.client_secret", "mcp.store_password"];
/// How an unset key's value is found from the rest of the configuration.
type Derive = fn(&Config) -> String;
/// Keys that are unset by default and then take a value from elsewhere, shown with that value.
const DERIVED: &[(&str, Derive)] = &[
    ("mcp.issuer", Config::mcp_issuer),
    ("mcp.audience", Config::mcp_audience),
    ("mcp.bank_api_url", Config::mcp_bank_api_url),
    ("mcp.oauth.issuer", Config::mcp_oauth_issuer),
    ("mcp.oauth.resource", Config::mcp_resource),
];

/// One key, its value as shown, and its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub shown: String,
    pub origin: Origin,
}

/// Every key that has a value, in dotted form, plus the secrets that have none.
pub fn effective(loaded: &LoadedConfig) -> Vec<Setting> {
    let mut flat = Vec::new();
    // A Config always serializes (plain data, string keys).
    flatten("", &serde_json::to_value(&loaded.config).unwrap_or_default(), &mut flat);
    for key in LISTED_SECRETS {
        if !flat.iter().any(|(listed, _)| listed == key) {
            flat.push(((*key).to_owned(), Value::Null));
        }
    }
    let mut settings: Vec<Setting> = flat
        .into_iter()
        .map(|(key, value)| Setting { shown: show(&key, &value), origin: loaded.origin(&key), key })
        .collect();
    for (key, derive) in DERIVED {
        if !settings.iter().any(|setting| setting.key == *key) {
            let value = show(key, &Value::String(derive(&loaded.config)));
            settings.push(Setting {
                key: (*key).to_owned(),
                shown: format!("unset, so {value}"),
                origin: Origin::Default,
            });
        }
    }
    settings.sort_by(|a, b| a.key.cmp(&b.key));
    settings
}

fn flatten(prefix: &str, value: &Value, into: &mut Vec<(String, Value)>) {
    let join = |key: &str| if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") };
    match value {
        Value::Object(table) => table.iter().for_each(|(key, value)| flatten(&join(key), value, into)),
        // Tables in a list (`authz.clients`) one key at a time, so their secrets are found too.
        Value::Array(items) if items.iter().any(Value::is_object) => {
            for (index, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{index}]"), item, into);
            }
        }
        other => into.push((prefix.to_owned(), other.clone())),
    }
}

fn show(key: &str, value: &Value) -> String {
    let last = key.rsplit(['.', ']']).next().unwrap_or(key);
    if SECRET_KEYS.contains(&last) {
        let set = matches!(value, Value::String(s) if !s.is_empty());
        return if set { "set" } else { "unset" }.to_owned();
    }
    // A password written into a URL (`mcp.store_url`, say), replaced where it stands: the rest is
    // shown exactly as configured (an issuer must match to the character).
    if let Some(text) = value.as_str()
        && let Some(password) = super::url_password(text)
    {
        let shown = text.replacen(&format!(":{password}@"), &format!(":{}@", super::REDACTED), 1);
        return Value::String(shown).to_string();
    }
    value.to_string()
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = match &self.origin {
            Origin::Default => "default".to_owned(),
            Origin::File(path) => path.display().to_string(),
            Origin::Env(name) => format!("env {name}"),
        };
        write!(f, "{} = {}  ({origin})", self.key, self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EnvVars;

    #[test]
    fn secrets_are_shown_as_set_or_unset_and_every_setting_says_where_it_came_from() {
        let env = EnvVars::from_pairs([
            ("BANKGUARD_MCP__CLIENT_SECRET", "hunter2-client-secret"),
            ("BANKGUARD_MCP__STORE_URL", "postgres://bank:hunter2-db@db.internal/bankguard"),
            ("BANKGUARD_AUTHZ__CLIENTS", "[{id = \"other\", secret = \"hunter2-other-secret\"}]"),
        ]);
        let loaded = LoadedConfig::from_sources(None, env).unwrap();
        let settings = effective(&loaded);
        let everything = settings.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        assert!(!everything.contains("hunter2"), "{everything}");
        let find = |key: &str| settings.iter().find(|s| s.key == key).unwrap_or_else(|| panic!("{key}: {everything}"));
        assert_eq!(
            find("mcp.client_secret").to_string(),
            "mcp.client_secret = set  (env BANKGUARD_MCP__CLIENT_SECRET)"
        );
        assert_eq!(find("mcp.store_password").to_string(), "mcp.store_password = unset  (default)");
        assert_eq!(find("authz.clients[0].secret").shown, "set");
        assert_eq!(find("mcp.store_url").shown, "\"postgres://bank:(secret)@db.internal/bankguard\"");
        assert_eq!(find("mcp.max_wait_seconds").to_string(), "mcp.max_wait_seconds = 45  (default)");
        let derived = find("mcp.issuer").to_string();
        assert_eq!(derived, "mcp.issuer = unset, so \"http://127.0.0.1:4100\"  (default)");
    }
}
