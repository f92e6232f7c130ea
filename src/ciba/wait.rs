//! Waiting for the account holder (CIBA Core §10.1, §11): poll the token endpoint at the interval,
//! grow the interval by 5 s for good on `slow_down` (or more, if `Retry-After` or the body's
//! `interval` says so), stop at expiry, wake early on a ping, and never have two polls in flight:
//! the loop sends one request at a time and waits for its answer.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::error::CibaError;
use super::request::StartedApproval;
use super::types::{AuthReqId, Secret};
use super::{CibaClient, ProviderAnswer};

/// CIBA Core §11: `slow_down` adds at least this much to this and every later interval.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// Consecutive unreachable polls tolerated before the wait fails.
const MAX_UNREACHABLE_POLLS: u32 = 3;
pub const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

/// The tokens an approval produced. The access token is a [`Secret`]: it goes to the bank and nowhere else.
#[derive(Deserialize)]
pub struct IssuedTokens {
    pub access_token: Secret,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub scope: Option<String>,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens").field("scope", &self.scope).finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub enum ApprovalOutcome {
    Approved(IssuedTokens),
    /// The holder declined (Auth0 also says this for an expired request; see [`wait`]).
    Denied,
    Expired,
    /// The caller gave up (`notifications/cancelled`); no token is redeemed after this.
    Cancelled,
}

/// One token request's answer.
enum Poll {
    Pending,
    SlowDown { at_least: Duration },
    Done(ApprovalOutcome),
}

impl CibaClient {
    /// Waits until the request is decided, expires or `cancel` fires.
    pub async fn wait(
        &self,
        started: &StartedApproval,
        ping: Option<&Notify>,
        cancel: &CancellationToken,
    ) -> Result<ApprovalOutcome, CibaError> {
        let mut interval = started.interval;
        let mut unreachable = 0;
        let mut next_poll = Instant::now() + interval;
        loop {
            let woken_by_ping = async {
                match ping {
                    Some(ping) => ping.notified().await,
                    None => std::future::pending().await,
                }
            };
            let deadline = next_poll.min(started.expires_at);
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(ApprovalOutcome::Cancelled),
                () = woken_by_ping => {}
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
            if cancel.is_cancelled() {
                return Ok(ApprovalOutcome::Cancelled);
            }
            if Instant::now() >= started.expires_at {
                return Ok(ApprovalOutcome::Expired);
            }
            let answer = self.poll(&started.auth_req_id).await;
            if cancel.is_cancelled() {
                // Whatever the answer, a cancelled call redeems nothing.
                return Ok(ApprovalOutcome::Cancelled);
            }
            match answer {
                Ok(Poll::Pending) => unreachable = 0,
                Ok(Poll::SlowDown { at_least }) => {
                    unreachable = 0;
                    interval = (interval + SLOW_DOWN_STEP).max(at_least);
                    tracing::debug!(interval_seconds = interval.as_secs(), "provider asked to slow down");
                }
                Ok(Poll::Done(ApprovalOutcome::Denied)) if Instant::now() >= started.expires_at => {
                    return Ok(ApprovalOutcome::Expired);
                }
                Ok(Poll::Done(outcome)) => return Ok(outcome),
                Err(CibaError::Unreachable { url, reason }) => {
                    unreachable += 1;
                    if unreachable >= MAX_UNREACHABLE_POLLS {
                        return Err(CibaError::Unreachable { url, reason });
                    }
                    tracing::warn!(%url, %reason, "a poll failed; trying again at the next interval");
                }
                Err(other) => return Err(other),
            }
            next_poll = Instant::now() + interval;
        }
    }

    /// One token request for `auth_req_id`.
    async fn poll(&self, auth_req_id: &AuthReqId) -> Result<Poll, CibaError> {
        let url = self.endpoints().await?.token.clone();
        let form = vec![("grant_type", CIBA_GRANT.to_owned()), ("auth_req_id", auth_req_id.as_str().to_owned())];
        match self.post_form::<IssuedTokens>(&url, form).await? {
            ProviderAnswer::Success(tokens) => Ok(Poll::Done(ApprovalOutcome::Approved(tokens))),
            ProviderAnswer::Refused { refusal, retry_after, interval } => match refusal.error.as_str() {
                "authorization_pending" => Ok(Poll::Pending),
                "slow_down" => Ok(Poll::SlowDown {
                    at_least: Duration::from_secs(retry_after.unwrap_or(0).max(interval.unwrap_or(0))),
                }),
                "access_denied" => Ok(Poll::Done(ApprovalOutcome::Denied)),
                "expired_token" => Ok(Poll::Done(ApprovalOutcome::Expired)),
                _ => Err(CibaError::Refused(refusal)),
            },
        }
    }
}
