//! The backchannel authentication request (CIBA Core §7.1) and its acknowledgement (§7.3).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::error::CibaError;
use super::types::{AuthReqId, BindingMessage, LoginHint, Secret};
use super::{CibaClient, ProviderAnswer};
use crate::clock::{Clock, Millis};

/// CIBA Core §7.3: without an `interval`, poll every 5 seconds.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Everything the provider is asked for: built from validated values only.
#[derive(Debug, Clone)]
pub struct ApprovalRequest {
    /// Always contains `openid`.
    pub scope: String,
    pub login_hint: LoginHint,
    pub binding_message: BindingMessage,
    pub audience: Option<String>,
    pub requested_expiry: Option<u64>,
    /// RFC 9396 authorization details, as a JSON array.
    pub authorization_details: Option<Value>,
    /// Ping mode only.
    pub client_notification_token: Option<Secret>,
}

/// The provider accepted the request; the holder is being asked.
#[derive(Debug, Clone)]
pub struct StartedApproval {
    pub auth_req_id: AuthReqId,
    /// When the provider stops accepting a decision: the time the request was sent plus `expires_in`,
    /// on the [`Clock`] it was sent by (so an answer that took long never extends it).
    pub expires_at: Millis,
    pub expires_in: Duration,
    pub interval: Duration,
}

#[derive(Deserialize)]
struct Acknowledgement {
    auth_req_id: String,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

impl CibaClient {
    /// Sends the backchannel authentication request, once. A [transient](CibaError::is_transient)
    /// failure may mean the provider accepted it and the holder is being asked anyway; resending is
    /// the caller's choice (safe against a provider that treats an identical request as a retry, as
    /// the dev provider does; Auth0 would ask the holder twice).
    pub async fn start(&self, request: &ApprovalRequest, clock: &Clock) -> Result<StartedApproval, CibaError> {
        let url = self.endpoints().await?.backchannel_authentication.clone();
        let mut form = vec![
            ("scope", request.scope.clone()),
            ("login_hint", request.login_hint.as_str().to_owned()),
            ("binding_message", request.binding_message.as_str().to_owned()),
        ];
        if let Some(audience) = &request.audience {
            form.push(("audience", audience.clone()));
        }
        if let Some(expiry) = request.requested_expiry {
            form.push(("requested_expiry", expiry.to_string()));
        }
        if let Some(details) = &request.authorization_details {
            form.push(("authorization_details", details.to_string()));
        }
        if let Some(token) = &request.client_notification_token {
            form.push(("client_notification_token", token.expose().to_owned()));
        }
        let sent_at = clock.now();
        match self.post_form::<Acknowledgement>(&url, form).await? {
            ProviderAnswer::Success(ack) => {
                let expires_in = Duration::from_secs(ack.expires_in);
                Ok(StartedApproval {
                    auth_req_id: AuthReqId::new(ack.auth_req_id),
                    expires_at: sent_at.plus(expires_in),
                    expires_in,
                    interval: ack.interval.map_or(DEFAULT_INTERVAL, Duration::from_secs),
                })
            }
            ProviderAnswer::Refused { refusal, .. } => Err(CibaError::Refused(refusal)),
        }
    }
}
