//! Typed protocol values, so a binding message cannot be passed where a login hint belongs, and
//! secrets and tokens have no `Debug` or `Display` that prints them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A value that must never be printed: a client secret or an access token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The handle of one backchannel authentication request. It is only useful with client credentials,
/// but still not logged.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthReqId(String);

impl AuthReqId {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthReqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthReqId(<redacted>)")
    }
}

/// Shown on the account holder's device: at most 64 characters of `[A-Za-z0-9 +-_.,:#]`, the
/// intersection Auth0 accepts. Built by the server, never taken from model text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingMessage(String);

impl BindingMessage {
    pub const MAX_CHARS: usize = 64;

    pub fn new(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.chars().count() > Self::MAX_CHARS {
            return Err(format!("a binding message has 1 to {} characters", Self::MAX_CHARS));
        }
        if !text.chars().all(Self::allowed) {
            return Err("a binding message may only contain letters, digits, spaces and + - _ . , : #".into());
        }
        Ok(Self(text.to_owned()))
    }

    pub fn allowed(c: char) -> bool {
        c.is_ascii_alphanumeric() || " +-_.,:#".contains(c)
    }

    /// `text` with every character the message may not hold removed.
    pub fn sanitize(text: &str) -> String {
        text.chars().filter(|c| Self::allowed(*c)).collect()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How the account holder is named to the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginHint(String);

impl LoginHint {
    /// A plain subject or email.
    pub fn plain(subject: &str) -> Self {
        Self(subject.to_owned())
    }

    /// Auth0's form: `{"format":"iss_sub","iss":"https://tenant/","sub":"auth0|…"}`.
    pub fn iss_sub(issuer: &str, subject: &str) -> Self {
        Self(serde_json::json!({"format": "iss_sub", "iss": issuer, "sub": subject}).to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_request_ids_never_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(<redacted>)");
        assert!(!format!("{:?}", AuthReqId::new("abc123")).contains("abc123"));
    }

    #[test]
    fn binding_messages_keep_to_the_portable_characters() {
        assert!(BindingMessage::new("Transfer 25.00 USD CHK-4821 to SAV-9012 #K7Q2").is_ok());
        assert!(BindingMessage::new("Pay $25").is_err());
        assert!(BindingMessage::new(&"x".repeat(65)).is_err());
        assert!(BindingMessage::new("").is_err());
        assert_eq!(BindingMessage::sanitize("••••/4821$"), "4821");
    }

    #[test]
    fn iss_sub_hints_are_auth0_json() {
        let hint = LoginHint::iss_sub("https://tenant.auth0.com/", "auth0|123");
        let parsed: serde_json::Value = serde_json::from_str(hint.as_str()).unwrap();
        assert_eq!(parsed, serde_json::json!({"format":"iss_sub","iss":"https://tenant.auth0.com/","sub":"auth0|123"}));
    }
}
