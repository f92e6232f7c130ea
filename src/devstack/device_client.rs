//! The terminal's side of the approval device: `bankguard pending|approve|deny` talk to a running
//! `bankguard dev` (or `demo`) over HTTP, found through the data directory (its address in
//! `dev-stack.json`, the device token in `device-token`).
//!
//! Run from another directory, these commands look in another data directory: when they find no
//! stack there, they say which directory they looked in, absolute, so the person sees why.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::RunningStack;
use super::authz::device::{DEVICE_TOKEN_FILE, DecisionResult, PendingApproval};
use super::seed;

#[derive(Debug, thiserror::Error)]
pub enum DeviceClientError {
    #[error(
        "no running `bankguard dev` or `bankguard demo` uses the data directory {}{}: start one, or run this \
         command with the data directory of the one that runs (data_dir in bankguard.toml, or BANKGUARD_DATA_DIR)",
        data_dir.display(),
        last_seen.as_ref().map(|url| format!(" (the last one listened at {url} and does not answer)")).unwrap_or_default()
    )]
    NotRunning { data_dir: PathBuf, last_seen: Option<String> },
    #[error("cannot reach `bankguard dev` at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("no such user {user} (known: {known})")]
    UnknownUser { user: String, known: String },
    #[error("the approval device refused: {0}")]
    Refused(String),
    #[error("{0}")]
    NoMatch(String),
}

pub struct DeviceClient {
    base: String,
    token: String,
    http: reqwest::Client,
    /// The data directory the stack was found through, absolute.
    data_dir: PathBuf,
}

impl DeviceClient {
    pub fn for_data_dir(data_dir: &Path) -> Result<Self, DeviceClientError> {
        let data_dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_owned());
        let not_running = || DeviceClientError::NotRunning { data_dir: data_dir.clone(), last_seen: None };
        let running = RunningStack::read(&data_dir).map_err(|_| not_running())?;
        let token = std::fs::read_to_string(data_dir.join(DEVICE_TOKEN_FILE)).map_err(|_| not_running())?;
        let http = crate::http_client::builder_for([running.issuer.as_str()])
            .build()
            .map_err(|e| DeviceClientError::Unreachable { url: running.issuer.clone(), reason: e.to_string() })?;
        Ok(Self { base: running.issuer, token: token.trim().to_owned(), http, data_dir })
    }

    /// Pending requests, newest first, for `user` or for everyone.
    pub async fn pending(&self, user: Option<&str>) -> Result<Vec<PendingApproval>, DeviceClientError> {
        if let Some(user) = user {
            known_user(user)?;
        }
        let mut request = self.http.get(format!("{}/device/api/pending", self.base)).bearer_auth(&self.token);
        if let Some(user) = user {
            request = request.query(&[("user", user)]);
        }
        self.send(request).await
    }

    /// Approves or denies the request whose id is `id_or_prefix`, or the newest one when `None`.
    pub async fn decide(
        &self,
        user: Option<&str>,
        id_or_prefix: Option<&str>,
        decision: &str,
    ) -> Result<(PendingApproval, DecisionResult), DeviceClientError> {
        let pending = self.pending(user).await?;
        let chosen = match id_or_prefix {
            None => {
                pending.into_iter().next().ok_or_else(|| DeviceClientError::NoMatch("nothing is pending".into()))?
            }
            Some(prefix) => {
                let mut matches = pending.into_iter().filter(|p| p.auth_req_id.starts_with(prefix));
                match (matches.next(), matches.next()) {
                    (Some(only), None) => only,
                    (None, _) => {
                        return Err(DeviceClientError::NoMatch(format!("no pending request starts with {prefix:?}")));
                    }
                    (Some(_), Some(_)) => {
                        return Err(DeviceClientError::NoMatch(format!(
                            "several pending requests start with {prefix:?}"
                        )));
                    }
                }
            }
        };
        let result = self.decide_request(&chosen, decision).await?;
        Ok((chosen, result))
    }

    /// Approves or denies exactly `request` (as listed by [`pending`](Self::pending)).
    pub async fn decide_request(
        &self,
        request: &PendingApproval,
        decision: &str,
    ) -> Result<DecisionResult, DeviceClientError> {
        let body = json!({"user": request.user, "auth_req_id": request.auth_req_id, "decision": decision});
        let request = self.http.post(format!("{}/device/api/decide", self.base)).bearer_auth(&self.token).json(&body);
        self.send(request).await
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, DeviceClientError> {
        let unreachable =
            |e: reqwest::Error| DeviceClientError::Unreachable { url: self.base.clone(), reason: e.to_string() };
        let response = request.send().await.map_err(|error| match error.is_connect() {
            // The stack that wrote dev-stack.json has stopped.
            true => {
                DeviceClientError::NotRunning { data_dir: self.data_dir.clone(), last_seen: Some(self.base.clone()) }
            }
            false => unreachable(error),
        })?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            return Err(DeviceClientError::Refused(format!("{status}: {text}")));
        }
        response.json().await.map_err(unreachable)
    }
}

/// `Ok` for a demo user, else an error that lists them.
fn known_user(user: &str) -> Result<(), DeviceClientError> {
    if seed::USERS.iter().any(|known| known.subject == user) {
        return Ok(());
    }
    let known = seed::USERS.iter().map(|known| known.subject).collect::<Vec<_>>().join(", ");
    Err(DeviceClientError::UnknownUser { user: user.to_owned(), known })
}
