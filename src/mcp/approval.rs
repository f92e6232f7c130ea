//! The life of one approval: ask the provider, then wait and execute in the background, so the
//! outcome does not depend on how long the client is willing to keep a tool call open.
//!
//! [`start`] sends the backchannel request for a recorded intent and spawns the one task that may
//! redeem its approval: it waits (poll, `slow_down`, ping, expiry), and on approval sends the transfer
//! to the bank with the intent id as `Idempotency-Key`, then records the outcome. [`follow`] lets a
//! tool call watch an intent for a while, with progress, without owning it.
//!
//! The waiting task holds a lease on its intent and renews it. [`supervise`] takes over intents whose
//! runner stopped (a restart, a crash, a stdio client that went away) once their lease has run out,
//! so an approval given meanwhile still executes, once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Backends;
use super::backends::PingRegistration;
use super::intent::TransferIntent;
use super::intents::{IntentRecord, IntentStatus, labels, now_ms};
use super::progress::ProgressReporter;
use super::tools::ToolFailure;
use crate::bank::TransferOrder;
use crate::ciba::request::{ApprovalRequest, StartedApproval};
use crate::ciba::types::{AuthReqId, Secret};
use crate::ciba::wait::ApprovalOutcome;

/// How often a runner renews its lease, and the supervisor looks for intents to take over.
const RENEW_LEASE_EVERY: Duration = Duration::from_secs(5);
/// Attempts at sending an approved transfer to an unreachable bank.
const EXECUTE_ATTEMPTS: u32 = 3;
/// How often a watcher re-reads the store, for intents another process is running.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// The cancel switches of the approvals this process is running.
#[derive(Default)]
pub struct RunningApprovals {
    cancels: Mutex<HashMap<String, CancellationToken>>,
}

impl RunningApprovals {
    /// Stops waiting for `intent_id`: its approval will not be redeemed.
    pub fn cancel(&self, intent_id: &str) {
        if let Some(cancel) = self.cancels.lock().expect("running approvals").get(intent_id) {
            cancel.cancel();
        }
    }
}

/// Asks the provider to approve the recorded `intent` and starts the background wait.
pub async fn start(backends: &Arc<Backends>, intent: &TransferIntent) -> Result<StartedApproval, ToolFailure> {
    let notification_token = backends.pings.as_ref().map(|_| Secret::new(crate::secrets::random_token(32)));
    let ping = backends.pings.as_ref().zip(notification_token.as_ref()).map(|(pings, token)| pings.register(token));
    let request = ApprovalRequest {
        scope: backends.approval_scope.clone(),
        login_hint: backends.login_hint.clone(),
        binding_message: intent.binding_message(),
        audience: backends.audience.clone(),
        requested_expiry: Some(backends.requested_expiry),
        authorization_details: Some(intent.authorization_details()),
        client_notification_token: notification_token,
    };
    let started = match backends.ciba.start(&request, &crate::clock::Clock::system()).await {
        Ok(started) => started,
        Err(error) => {
            let reason = error.to_string();
            backends.intents.finish(&intent.id, IntentStatus::Failed, None, Some(&reason)).await?;
            return Err(error.into());
        }
    };
    let expires_at_ms = now_ms() + started.expires_in.as_millis() as i64;
    let auth_req_id = started.auth_req_id.as_str();
    let interval = started.interval.as_secs();
    backends.intents.mark_pending(&intent.id, auth_req_id, interval, expires_at_ms, &backends.runner).await?;
    tracing::info!(reference = %intent.reference, intent = %intent.id, "approval requested");
    spawn_runner(backends.clone(), intent.clone(), started.clone(), ping);
    Ok(started)
}

/// The one task that waits for this intent's approval and executes it, renewing its lease meanwhile.
fn spawn_runner(
    backends: Arc<Backends>,
    intent: TransferIntent,
    started: StartedApproval,
    ping: Option<PingRegistration>,
) {
    let cancel = CancellationToken::new();
    backends.running.cancels.lock().expect("running approvals").insert(intent.id.clone(), cancel.clone());
    tokio::spawn(async move {
        let notify = ping.as_ref().map(|registration| registration.notify.as_ref());
        let clock = crate::clock::Clock::system();
        let wait = backends.ciba.wait(&started, notify, &cancel, &clock);
        tokio::pin!(wait);
        let mut renew = tokio::time::interval(RENEW_LEASE_EVERY);
        let outcome = loop {
            tokio::select! {
                outcome = &mut wait => break Some(outcome),
                _ = renew.tick() => match backends.intents.renew_lease(&intent.id, &backends.runner).await {
                    Ok(true) => {}
                    Ok(false) => break None,
                    Err(error) => tracing::warn!(%error, "could not renew a lease; trying again"),
                },
            }
        };
        match outcome {
            Some(outcome) => {
                let (status, receipt, reason) = conclude(&backends, &intent, outcome, &cancel).await;
                if let Err(error) =
                    backends.intents.finish(&intent.id, status, receipt.as_ref(), reason.as_deref()).await
                {
                    tracing::error!(%error, intent = %intent.id, "could not record an intent's outcome");
                }
            }
            None => tracing::warn!(intent = %intent.id, "another runner took this intent over; stopped waiting"),
        }
        backends.running.cancels.lock().expect("running approvals").remove(&intent.id);
        // The ping registration (if any) ends with this task.
    });
}

/// Takes over, every few seconds, the holder's pending intents whose runner stopped renewing.
pub async fn supervise(backends: Arc<Backends>) {
    let mut every = tokio::time::interval(RENEW_LEASE_EVERY);
    loop {
        every.tick().await;
        let orphans = match backends.intents.claim_orphans(&backends.user, &backends.runner).await {
            Ok(orphans) => orphans,
            Err(error) => {
                tracing::warn!(%error, "could not look for intents to take over");
                continue;
            }
        };
        for record in orphans {
            match resume(&record) {
                Some((intent, started)) => {
                    tracing::info!(reference = %intent.reference, intent = %intent.id, "resuming the wait for an approval");
                    spawn_runner(backends.clone(), intent, started, None);
                }
                None => {
                    let reason = "the stored intent could not be resumed; no money moved";
                    let _ = backends.intents.finish(&record.id, IntentStatus::Failed, None, Some(reason)).await;
                }
            }
        }
    }
}

/// The intent and its wait, rebuilt from the store (no ping: its token was the old runner's).
fn resume(record: &IntentRecord) -> Option<(TransferIntent, StartedApproval)> {
    let (from, to) = labels(record);
    let intent = TransferIntent {
        id: record.id.clone(),
        reference: record.reference.clone(),
        from,
        to,
        amount: record.amount(),
        currency: record.currency.parse().ok()?,
        memo: record.memo.clone(),
    };
    let left = Duration::from_millis((record.expires_at_ms? - now_ms()).max(0) as u64);
    let started = StartedApproval {
        auth_req_id: AuthReqId::new(record.auth_req_id.clone()?),
        expires_at: crate::clock::Millis(record.expires_at_ms?),
        expires_in: left,
        interval: Duration::from_secs(record.interval_seconds?.max(1) as u64),
    };
    Some((intent, started))
}

/// Turns the wait's outcome into the intent's final status, executing the transfer on approval.
async fn conclude(
    backends: &Backends,
    intent: &TransferIntent,
    outcome: Result<ApprovalOutcome, crate::ciba::CibaError>,
    cancel: &CancellationToken,
) -> (IntentStatus, Option<crate::bank::TransferReceipt>, Option<String>) {
    let reference = &intent.reference;
    match outcome {
        Ok(ApprovalOutcome::Approved(_)) if cancel.is_cancelled() => cancelled(reference),
        Ok(ApprovalOutcome::Approved(tokens)) => {
            let order = TransferOrder {
                from_account_id: &intent.from.id,
                to_account_id: &intent.to.id,
                amount: intent.amount.to_decimal_string(),
                currency: intent.currency.as_str(),
                memo: intent.memo.as_deref(),
            };
            match execute(backends, &tokens.access_token, &intent.id, &order).await {
                Ok(receipt) => {
                    tracing::info!(%reference, transfer = %receipt.id, "transfer executed");
                    (IntentStatus::Completed, Some(receipt), None)
                }
                Err(error) => {
                    tracing::warn!(%reference, %error, "the bank did not execute an approved transfer");
                    (IntentStatus::Failed, None, Some(error.to_string()))
                }
            }
        }
        Ok(ApprovalOutcome::Denied) => {
            tracing::info!(%reference, "declined on the device");
            (IntentStatus::Denied, None, Some("the account holder declined on their device".into()))
        }
        Ok(ApprovalOutcome::Expired) => {
            tracing::info!(%reference, "expired unapproved");
            (IntentStatus::Expired, None, Some("the approval request expired before it was approved".into()))
        }
        Ok(ApprovalOutcome::Cancelled) => cancelled(reference),
        Ok(ApprovalOutcome::GrantInvalid) => {
            tracing::warn!(%reference, "the provider no longer knows the approval request");
            let reason = "the provider no longer accepts this approval request (invalid_grant); no money moved";
            (IntentStatus::Failed, None, Some(reason.into()))
        }
        Err(error) => {
            tracing::warn!(%reference, %error, "waiting for the approval failed");
            (IntentStatus::Failed, None, Some(error.to_string()))
        }
    }
}

/// Sends the approved transfer, retrying while the bank is unreachable: the same token and the same
/// `Idempotency-Key` make a retry return the first execution, never a second one.
async fn execute(
    backends: &Backends,
    token: &Secret,
    intent_id: &str,
    order: &TransferOrder<'_>,
) -> Result<crate::bank::TransferReceipt, crate::bank::BankError> {
    let mut pause = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match backends.bank.transfer(token, intent_id, order).await {
            Err(crate::bank::BankError::Unreachable { url, reason }) if attempt < EXECUTE_ATTEMPTS => {
                tracing::warn!(%url, %reason, attempt, "the bank is unreachable; retrying the approved transfer");
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn cancelled(reference: &str) -> (IntentStatus, Option<crate::bank::TransferReceipt>, Option<String>) {
    tracing::info!(%reference, "cancelled while waiting; nothing will move");
    (IntentStatus::Cancelled, None, Some("the tool call was cancelled; the approval will not be used".into()))
}

/// How a watch ended.
pub enum Followed {
    /// The intent as stored when the watch ended: final, or still unfinished when time ran out.
    Settled(Box<IntentRecord>),
    /// The watching call was cancelled.
    Cancelled,
}

/// Watches `record` until it is final, `bound` passes or `cancel` fires, reporting progress.
pub async fn follow(
    backends: &Backends,
    record: IntentRecord,
    bound: Duration,
    cancel: &CancellationToken,
    mut progress: Option<&mut ProgressReporter>,
) -> Result<Followed, ToolFailure> {
    if record.status.is_final() {
        return Ok(Followed::Settled(Box::new(record)));
    }
    let deadline = Instant::now() + bound;
    let mut changes = backends.intents.watch(&record.id, record.status);
    let mut tick = tokio::time::interval(backends.progress_interval);
    tick.tick().await;
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(Followed::Cancelled),
            changed = changes.changed() => {
                if changed.is_err() || changes.borrow().is_final() {
                    break;
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => break,
            _ = tick.tick() => {
                if let Some(progress) = progress.as_deref_mut() {
                    progress.still_waiting().await;
                }
            }
            _ = recheck.tick() => {
                let current = backends.intents.get(&record.owner, &record.id).await?;
                if current.as_ref().is_some_and(|r| r.status.is_final()) {
                    break;
                }
            }
        }
    }
    let latest = backends.intents.get(&record.owner, &record.id).await?.unwrap_or(record);
    Ok(Followed::Settled(Box::new(latest)))
}
