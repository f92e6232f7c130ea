//! The backchannel authentication request (CIBA Core §7.1) and its acknowledgement (§7.3).

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use super::error::CibaError;
use super::types::{AuthReqId, BindingMessage, LoginHint, Secret};
use super::{CibaClient, ProviderAnswer};

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
    pub expires_at: Instant,
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
    /// Sends the backchannel authentication request.
    pub async fn start(&self, request: &ApprovalRequest) -> Result<StartedApproval, CibaError> {
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
        let sent_at = Instant::now();
        match self.post_form::<Acknowledgement>(&url, form).await? {
            ProviderAnswer::Success(ack) => {
                let expires_in = Duration::from_secs(ack.expires_in);
                Ok(StartedApproval {
                    auth_req_id: AuthReqId::new(ack.auth_req_id),
                    expires_at: sent_at + expires_in,
                    expires_in,
                    interval: ack.interval.map_or(DEFAULT_INTERVAL, Duration::from_secs),
                })
            }
            ProviderAnswer::Refused { refusal, .. } => Err(CibaError::Refused(refusal)),
        }
    }
}
