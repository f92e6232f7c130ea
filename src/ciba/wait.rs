//! Waiting for the account holder (CIBA Core §10.1, §11): poll the token endpoint at the interval,
//! grow the interval by 5 s for good on `slow_down` (or more, if `Retry-After` or the body's
//! `interval` says so), stop at expiry, poll at once on a ping (the scheduler does), and never have two polls in flight:
//! the loop sends one request at a time and waits for its answer.
//!
//! **Transient is not final.** A poll that gets no answer, a 5xx or 429, a success whose body is cut
//! short, or `temporarily_unavailable` / `server_error` decided nothing: the holder may still approve
//! on their device. Such a poll is retried with exponential backoff (the first retry after the current
//! interval, then doubling, at most [`MAX_BACKOFF`] or the interval if that is longer, never before a
//! `Retry-After`) until the request expires. Only a protocol answer ends the wait early: approval,
//! `access_denied`, `expired_token`, `invalid_grant` (its own outcome, [`ApprovalOutcome::GrantInvalid`])
//! or another OAuth error code (an `Err` with [`CibaError::Refused`]).
//!
//! Every sleep and deadline is on the caller's [`Clock`], so tests drive the loop without sleeping.

use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::error::CibaError;
use super::request::StartedApproval;
use super::types::{AuthReqId, Secret};
use super::{CibaClient, ProviderAnswer};
use crate::clock::{Clock, Millis};

/// CIBA Core §11: `slow_down` adds at least this much to this and every later interval.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The longest pause between retries of a failed poll, unless the interval itself is longer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
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
    /// The holder declined (Auth0 also says this for an expired request; see [`CibaClient::wait`]).
    Denied,
    Expired,
    /// `invalid_grant`: the provider does not know this `auth_req_id` for this client, or it was
    /// already exchanged. After a poll whose answer was lost this can mean the request **was approved**
    /// and its tokens went out in that lost answer: nothing can redeem it now, and it must not be
    /// reported as a denial. Its own outcome so callers can say exactly that.
    GrantInvalid,
    /// The caller gave up (`notifications/cancelled`); no token is redeemed after this.
    Cancelled,
}

/// One token request's answer.
pub enum Poll {
    Pending,
    SlowDown {
        at_least: Duration,
    },
    /// Nothing was decided and nothing was said: try again later (not before `retry_after`, if given).
    Unavailable {
        error: CibaError,
        retry_after: Option<Duration>,
    },
    Done(ApprovalOutcome),
}

/// The pause after `failures` consecutive transient failures: the interval, doubling with each
/// failure, at most [`MAX_BACKOFF`] (or the interval, if that is longer).
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    interval.saturating_mul(1 << doublings).min(interval.max(MAX_BACKOFF))
}

/// When one request's next poll is due, and what each answer means: the interval (grown for good
/// by `slow_down`), the backoff after transient failures, the ping fallback, and the expiry. Holds
/// no connection and no future, so a process can keep thousands of them: [`CibaClient::wait`]
/// drives one, the MCP server's scheduler drives all of its waits with them.
#[derive(Debug, Clone)]
pub struct Pacing {
    interval: Duration,
    failures: u32,
    expires_at: Millis,
    /// Ping mode: at most one poll per this long while no ping arrives (a ping may be lost).
    fallback: Option<Duration>,
    next_poll: Millis,
}

impl Pacing {
    /// Pacing for `started`, first poll after one interval (or, with a ping `fallback`, after that).
    pub fn new(started: &StartedApproval, fallback: Option<Duration>, now: Millis) -> Self {
        let mut pacing =
            Self { interval: started.interval, failures: 0, expires_at: started.expires_at, fallback, next_poll: now };
        pacing.next_poll = pacing.after_pending(now);
        pacing
    }

    /// When the wait must act next: poll, or give up at expiry if that comes first.
    pub fn due(&self) -> Millis {
        self.next_poll.min(self.expires_at)
    }

    /// Whether the request has expired by `now`: nothing is polled for it any more.
    pub fn expired(&self, now: Millis) -> bool {
        now >= self.expires_at
    }

    /// The next poll after an answer that decided nothing: one interval on, or in ping mode the
    /// fallback, but never later than one interval before expiry (so the last chance is taken).
    fn after_pending(&self, now: Millis) -> Millis {
        match self.fallback {
            None => now.plus(self.interval),
            Some(fallback) => {
                let last_call = self.expires_at.minus(self.interval);
                now.plus(fallback.max(self.interval)).min(last_call).max(now.plus(self.interval))
            }
        }
    }

    /// Takes a poll's answer at `now`: the outcome if it decided one, `None` to poll again at
    /// [`Pacing::due`], `Err` for a final refusal.
    pub fn answered(
        &mut self,
        answer: Result<Poll, CibaError>,
        now: Millis,
    ) -> Result<Option<ApprovalOutcome>, CibaError> {
        self.next_poll = match answer? {
            Poll::Pending => {
                self.failures = 0;
                self.after_pending(now)
            }
            Poll::SlowDown { at_least } => {
                self.failures = 0;
                self.interval = (self.interval + SLOW_DOWN_STEP).max(at_least);
                tracing::debug!(interval_seconds = self.interval.as_secs(), "provider asked to slow down");
                self.after_pending(now)
            }
            Poll::Unavailable { error, retry_after } => {
                self.failures += 1;
                let pause = backoff(self.interval, self.failures).max(retry_after.unwrap_or_default());
                tracing::warn!(
                    %error,
                    failures = self.failures,
                    retry_in_seconds = pause.as_secs(),
                    "a poll for the approval failed; nothing was decided, trying again"
                );
                now.plus(pause)
            }
            // Auth0 answers an expired request with `access_denied`.
            Poll::Done(ApprovalOutcome::Denied) if self.expired(now) => return Ok(Some(ApprovalOutcome::Expired)),
            Poll::Done(outcome) => return Ok(Some(outcome)),
        };
        Ok(None)
    }
}

impl CibaClient {
    /// Waits until the request is decided, expires or `cancel` fires. Transient failures are retried
    /// until expiry (see the module doc); the only `Err` is a final protocol refusal other than
    /// `invalid_grant`, such as `unauthorized_client`, `invalid_client` or `invalid_request`.
    ///
    /// Poll mode, one request at a time. The MCP server drives its waits, ping mode included, through
    /// its scheduler (`mcp::lifecycle::waits`) on the same [`Pacing`].
    pub async fn wait(
        &self,
        started: &StartedApproval,
        cancel: &CancellationToken,
        clock: &Clock,
    ) -> Result<ApprovalOutcome, CibaError> {
        let mut pacing = Pacing::new(started, None, clock.now());
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(ApprovalOutcome::Cancelled),
                () = clock.sleep_until(pacing.due()) => {}
            }
            if cancel.is_cancelled() {
                return Ok(ApprovalOutcome::Cancelled);
            }
            if pacing.expired(clock.now()) {
                return Ok(ApprovalOutcome::Expired);
            }
            // A turn among the polls in flight; a call cancelled while it waits for one redeems nothing.
            let _turn = tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(ApprovalOutcome::Cancelled),
                turn = self.poll_turn() => turn,
            };
            // Boxed: a wait spends its life asleep, and should not carry a request's state meanwhile.
            let answer = Box::pin(self.poll(&started.auth_req_id)).await;
            if cancel.is_cancelled() {
                // Whatever the answer, a cancelled call redeems nothing.
                return Ok(ApprovalOutcome::Cancelled);
            }
            if let Some(outcome) = pacing.answered(answer, clock.now())? {
                return Ok(outcome);
            }
        }
    }

    /// A turn among the token requests this client has in flight (at most
    /// [`super::MAX_POLLS_IN_FLIGHT`]); hold it across one [`CibaClient::poll`].
    pub async fn poll_turn(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.polls.clone().acquire_owned().await.expect("the poll semaphore is never closed")
    }

    /// One token request for `auth_req_id`. `Err` only for a final refusal. Take a
    /// [`CibaClient::poll_turn`] first.
    pub async fn poll(&self, auth_req_id: &AuthReqId) -> Result<Poll, CibaError> {
        let unavailable = |error: CibaError| {
            if error.is_transient() { Ok(Poll::Unavailable { error, retry_after: None }) } else { Err(error) }
        };
        // Resolved by `start` already, unless this process resumed a wait another one began.
        let url = match self.endpoints().await {
            Ok(endpoints) => &endpoints.token,
            Err(error) => return unavailable(error),
        };
        let form = vec![("grant_type", CIBA_GRANT.to_owned()), ("auth_req_id", auth_req_id.as_str().to_owned())];
        let answer = match self.post_form::<IssuedTokens>(url, form).await {
            Ok(answer) => answer,
            Err(error) => return unavailable(error),
        };
        match answer {
            ProviderAnswer::Success(tokens) => Ok(Poll::Done(ApprovalOutcome::Approved(tokens))),
            ProviderAnswer::Refused { refusal, retry_after, .. } if refusal.is_transient() => Ok(Poll::Unavailable {
                error: CibaError::Refused(refusal),
                retry_after: retry_after.map(Duration::from_secs),
            }),
            ProviderAnswer::Refused { refusal, retry_after, interval } => match refusal.error.as_str() {
                "authorization_pending" => Ok(Poll::Pending),
                "slow_down" => Ok(Poll::SlowDown {
                    at_least: Duration::from_secs(retry_after.unwrap_or(0).max(interval.unwrap_or(0))),
                }),
                "access_denied" => Ok(Poll::Done(ApprovalOutcome::Denied)),
                "expired_token" => Ok(Poll::Done(ApprovalOutcome::Expired)),
                "invalid_grant" => Ok(Poll::Done(ApprovalOutcome::GrantInvalid)),
                _ => Err(CibaError::Refused(refusal)),
            },
        }
    }
}

#[cfg(test)]
mod tests;
