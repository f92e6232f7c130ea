//! The runner: the one part of a server process that carries intents through their lifecycle.
//!
//! For each open intent it drives, it performs the side effect its state calls for, turns the
//! answer into an [`Event`], and records the transition before the next side effect:
//!
//! | state | side effect | retried while |
//! |---|---|---|
//! | `requesting` | `POST /bc-authorize` | the provider is unreachable or answers unusably, until the request would have expired |
//! | `pending` | poll the token endpoint (or wake on a ping) | polls fail transiently (inside [`CibaClient::wait`]) |
//! | `executing` | `POST /api/transfers` with the intent id as `Idempotency-Key` | the bank does not answer, until the token expires |
//! | `outcome_unknown` | ask the bank what happened under the key | the bank cannot be asked (forever, with backoff) |
//!
//! One heartbeat per process (not a write per intent) keeps its claim on every intent it drives;
//! the supervisor claims the open intents of runners whose heartbeat went stale. A runner whose
//! own heartbeat could not be written stops starting side effects until it can, and every write
//! is a compare-and-set on the intent's version, so a runner that was taken over can never act.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::state::{Event, IntentState, NoTransition};
use super::store::{ApplyError, IntentStore, RunnerId, StoreEvent, StoredIntent};
use super::waits::{PingRegistration, Resume, WaitEnd, Waiting, Waits};
use crate::bank::{BankError, RequestOutcome, TransferOrder};
use crate::ciba::request::{ApprovalRequest, StartedApproval};
use crate::ciba::types::Secret;
use crate::ciba::wait::{ApprovalOutcome, Pacing};
use crate::ciba::{CibaClient, CibaError};
use crate::clock::{Clock, Millis};
use crate::mcp::bank_access::BankAccess;
use crate::mcp::consent::approval::Witness;
use crate::mcp::holder::LoginHints;
use crate::mcp::metrics::{BankCall, Metrics};

/// A runner silent for this many heartbeats is presumed gone; its intents are taken over.
pub const STALE_AFTER_HEARTBEATS: u32 = 3;
/// Assumed lifetime of an approval's token when the provider does not say.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
const MAX_PROVIDER_PAUSE: Duration = Duration::from_secs(30);
const MAX_BANK_PAUSE: Duration = Duration::from_secs(30);
const MAX_RECONCILE_PAUSE: Duration = Duration::from_secs(60);
const MAX_STORE_PAUSE: Duration = Duration::from_secs(10);
/// The longest an approval waits for the provider's keys before its transfer goes on without the
/// provider's attestation being checked.
const WITNESS_TIMEOUT: Duration = Duration::from_secs(5);

/// What every approval request of this server says besides the transfer itself.
#[derive(Debug, Clone)]
pub struct ApprovalSettings {
    /// Always contains `openid`.
    pub scope: String,
    /// How the holder of each intent is named in its `login_hint`.
    pub login_hints: LoginHints,
    pub audience: Option<String>,
    pub requested_expiry: Duration,
    /// How often the runner records that it is alive (`mcp.heartbeat_seconds`).
    pub heartbeat: Duration,
    /// In ping mode, at most one poll per this long while no ping arrives (`mcp.ping_fallback_poll_seconds`).
    pub ping_fallback: Duration,
}

pub struct Runner {
    pub id: RunnerId,
    store: Arc<IntentStore>,
    clock: Clock,
    ciba: Arc<CibaClient>,
    bank: Arc<BankAccess>,
    approval: ApprovalSettings,
    /// Checks each approval's token as it arrives, for the transfer's proof of consent.
    witness: Arc<Witness>,
    /// What this runner counts as intents move (for `/metrics`).
    metrics: Arc<Metrics>,
    /// Every pending approval's wait, driven by one scheduler.
    waits: Arc<Waits>,
    /// Whether approval requests ask the provider to ping (CIBA ping mode).
    ping_mode: bool,
    /// The intents this process drives, each with the switch that stops its wait after a cancel.
    driving: Mutex<HashMap<String, CancellationToken>>,
    /// Until when this runner may start side effects: its last heartbeat plus a safety margin.
    lease_until: AtomicI64,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Runner {
    pub fn new(
        store: Arc<IntentStore>,
        ciba: Arc<CibaClient>,
        bank: Arc<BankAccess>,
        approval: ApprovalSettings,
        witness: Arc<Witness>,
        ping_mode: bool,
        metrics: Arc<Metrics>,
    ) -> Self {
        let clock = store.clock().clone();
        Self {
            waits: Arc::new(Waits::new(ciba.clone(), clock)),
            ping_mode,
            id: RunnerId::new(),
            clock: store.clock().clone(),
            store,
            ciba,
            bank,
            approval,
            witness,
            metrics,
            driving: Mutex::new(HashMap::new()),
            lease_until: AtomicI64::new(0),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    pub fn store(&self) -> &Arc<IntentStore> {
        &self.store
    }

    /// The scheduler of this runner's waits (which a ping wakes).
    pub fn waits(&self) -> &Arc<Waits> {
        &self.waits
    }

    /// Writes the first heartbeat, then keeps it fresh and takes over the intents whose runner
    /// stopped: `owner`'s, or every holder's when `owner` is `None`.
    pub async fn start(self: &Arc<Self>, owner: Option<&str>) -> Result<(), super::store::StoreError> {
        self.beat().await?;
        let runner = self.clone();
        let resume: Resume = Arc::new(move |waiting, end| runner.resume(waiting, end));
        self.tasks.spawn(self.waits.clone().run(self.stop.clone(), self.tasks.clone(), resume));
        let owner: Option<Arc<str>> = owner.map(Arc::from);
        let runner = self.clone();
        let beating_for = owner.clone();
        self.tasks.spawn(async move {
            let mut next_head = runner.clock.now().plus(super::audit::HEAD_SIGNING_INTERVAL);
            loop {
                tokio::select! {
                    () = runner.stop.cancelled() => return,
                    () = runner.clock.sleep(runner.approval.heartbeat) => {}
                }
                if let Err(error) = runner.beat().await {
                    tracing::error!(%error, "could not write this server's heartbeat; pausing work until it can");
                }
                runner.take_over_stale(beating_for.as_deref()).await;
                if runner.clock.now() >= next_head {
                    runner.sign_audit_head().await;
                    next_head = runner.clock.now().plus(super::audit::HEAD_SIGNING_INTERVAL);
                }
            }
        });
        // What other replicas sharing the store did: a ping for one of our waits, a hand-back.
        let runner = self.clone();
        let mut events = self.store.events();
        self.tasks.spawn(async move {
            loop {
                let event = tokio::select! {
                    () = runner.stop.cancelled() => return,
                    event = events.recv() => event,
                };
                match event {
                    Ok(StoreEvent::Pinged(digest)) => {
                        runner.waits.ping_digest(&digest);
                    }
                    Ok(StoreEvent::HandedBack | StoreEvent::Missed) => runner.take_over_stale(owner.as_deref()).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => runner.take_over_stale(owner.as_deref()).await,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(())
    }

    /// Claims and drives the open intents whose runner stopped (`owner`'s, or every holder's).
    async fn take_over_stale(self: &Arc<Self>, owner: Option<&str>) {
        match self.store.claim_stale(owner, &self.id, self.stale_after()).await {
            Ok(claimed) => {
                for intent in claimed {
                    tracing::info!(reference = %intent.terms.reference, intent = %intent.id(),
                        status = intent.status().as_str(), "taking over a transfer intent");
                    self.drive(intent, true);
                }
            }
            Err(error) => tracing::warn!(%error, "could not look for transfer intents to take over"),
        }
    }

    /// A ping carrying `token` reached this server: wakes the wait it is for, here or (through a
    /// shared store) on the replica that runs it. False if no open intent was requested with it.
    pub async fn ping(&self, token: &str) -> bool {
        let digest = super::waits::digest(token);
        if self.waits.ping_digest(&digest) {
            return true;
        }
        match self.store.forward_ping(&digest).await {
            Ok(forwarded) => forwarded,
            Err(error) => {
                tracing::warn!(%error, "could not pass a ping on to the other servers");
                false
            }
        }
    }

    fn stale_after(&self) -> Duration {
        self.approval.heartbeat * STALE_AFTER_HEARTBEATS
    }

    async fn beat(&self) -> Result<(), super::store::StoreError> {
        let before = self.clock.now();
        self.store.heartbeat(&self.id).await?;
        // Others take over at heartbeat + stale_after; stop acting one beat before that.
        let until = before.plus(self.stale_after()).minus(self.approval.heartbeat);
        self.lease_until.fetch_max(until.0, Ordering::SeqCst);
        Ok(())
    }

    /// Stops driving, and hands this runner's open intents back so another runner takes them at once.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        for (_, cancel) in self.driving.lock().expect("driving").drain() {
            cancel.cancel();
        }
        self.tasks.close();
        if tokio::time::timeout(Duration::from_secs(5), self.tasks.wait()).await.is_err() {
            tracing::warn!("some transfer intents were still busy at shutdown; another server will resume them");
        }
        self.sign_audit_head().await;
        if let Err(error) = self.store.retire(&self.id).await {
            tracing::warn!(%error, "could not hand back this server's transfer intents; they are taken over once its heartbeat is stale");
        }
    }

    /// Signs the audit chain's head if it moved (see [`super::audit::HEAD_SIGNING_INTERVAL`]).
    async fn sign_audit_head(&self) {
        match self.store.sign_audit_head().await {
            Ok(Some(head)) => tracing::debug!(seq = head.seq, "signed the audit chain's head"),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not sign the audit chain's head; trying again later"),
        }
    }

    /// Starts carrying `intent` through its lifecycle in the background (once per intent).
    /// `taken_over`: claimed from a runner that stopped, which may have had a request in flight.
    pub fn drive(self: &Arc<Self>, intent: StoredIntent, taken_over: bool) {
        if self.stop.is_cancelled() {
            return;
        }
        // Cancelled by a stored cancellation of this intent, or by shutdown.
        let cancel = self.stop.child_token();
        {
            let mut driving = self.driving.lock().expect("driving");
            if driving.contains_key(intent.id()) {
                return;
            }
            driving.insert(intent.id().to_owned(), cancel.clone());
        }
        let runner = self.clone();
        self.tasks.spawn(runner.run(intent, taken_over, cancel, None));
    }

    /// Picks an intent up again when its wait ended, if it is still this runner's and still waiting
    /// on that request; otherwise carries on from what the store says (a cancellation ends it).
    fn resume(self: &Arc<Self>, waiting: Waiting, end: WaitEnd) {
        let runner = self.clone();
        self.tasks.spawn(async move {
            let Waiting { intent_id, auth_req_id, cancel, .. } = waiting;
            let Some(intent) = runner.reload_until_read(&intent_id).await else {
                runner.driving.lock().expect("driving").remove(&*intent_id);
                return;
            };
            let ours = intent.runner.as_deref() == Some(runner.id.0.as_str());
            let still_waiting =
                matches!(&intent.state, IntentState::Pending { auth_req_id: id, .. } if *id == auth_req_id);
            match end {
                WaitEnd::Answered(outcome) if ours && still_waiting => {
                    runner.run(intent, false, cancel, Some(outcome)).await;
                }
                _ if ours && !still_waiting => runner.run(intent, false, cancel, None).await,
                _ => {
                    runner.driving.lock().expect("driving").remove(&*intent_id);
                }
            }
        });
    }

    /// The intent as stored, read again until the store answers (a decision in hand must not be
    /// dropped for a moment's database trouble); `None` when stopping or if it does not exist.
    async fn reload_until_read(&self, intent_id: &str) -> Option<StoredIntent> {
        let mut pause = Duration::from_millis(200);
        loop {
            match self.store.reload(intent_id).await {
                Ok(intent) => return Some(intent),
                Err(super::store::StoreError::Missing(_)) => return None,
                Err(error) => {
                    tracing::error!(%error, intent = %intent_id, "could not read a transfer intent back; retrying");
                    if self.stop.is_cancelled() {
                        return None;
                    }
                    self.clock.sleep(pause).await;
                    pause = (pause * 2).min(MAX_STORE_PAUSE);
                }
            }
        }
    }

    /// Cancels the intent if its approval has not been redeemed: the cancellation is stored before
    /// this returns, and this process's wait for it stops. Returns the intent as it stands.
    pub async fn cancel(self: &Arc<Self>, intent_id: &str) -> Result<StoredIntent, ApplyError> {
        let result = self.store.apply_latest(intent_id, Event::Cancel).await;
        if result.is_ok() {
            if let Some(cancel) = self.driving.lock().expect("driving").get(intent_id) {
                cancel.cancel();
            }
            if let Some(waiting) = self.waits.remove(intent_id) {
                self.resume(waiting, WaitEnd::Stopped);
            }
        }
        match result {
            Ok(intent) => {
                self.metrics.cancelled();
                tracing::info!(reference = %intent.terms.reference, "cancelled; the approval will not be used");
                Ok(intent)
            }
            Err(ApplyError::NoTransition(_)) => Ok(self.store.reload(intent_id).await?),
            Err(other) => Err(other),
        }
    }

    /// Carries one intent until it settles, or until it waits for the holder: then its wait goes to
    /// the scheduler, this task ends, and [`Runner::resume`] starts a new one with the `decided`
    /// outcome. Each side effect is boxed, so a task in flight holds this loop's few locals, not the
    /// kilobytes of state of a request in flight.
    async fn run(
        self: Arc<Self>,
        mut intent: StoredIntent,
        taken_over: bool,
        cancel: CancellationToken,
        mut decided: Option<Result<ApprovalOutcome, CibaError>>,
    ) {
        // A request the previous runner sent may still be executing at the bank.
        let mut unanswered = taken_over.then(|| self.clock.now());
        let mut ping: Option<(Secret, PingRegistration)> = None;
        loop {
            if intent.state.is_final() || self.stop.is_cancelled() {
                break;
            }
            Box::pin(self.wait_for_lease()).await;
            let event = match &intent.state {
                IntentState::Requesting => {
                    let token = match (self.ping_mode, &ping) {
                        (false, _) => None,
                        (true, Some((token, _))) => Some(token.clone()),
                        (true, None) => {
                            let (token, registration) = self.ping_registration(intent.id());
                            // So a ping reaching another replica, or this intent's next runner, finds the wait.
                            if let Err(error) =
                                Box::pin(self.store.record_ping_digest(intent.id(), registration.digest())).await
                            {
                                tracing::warn!(%error, "could not record the ping token's digest; only this server will hear the ping");
                            }
                            ping = Some((token.clone(), registration));
                            Some(token)
                        }
                    };
                    Box::pin(self.request_approval(&intent, token)).await
                }
                IntentState::Pending { auth_req_id, expires_at, interval_seconds } => match decided.take() {
                    Some(outcome) => match self.decision(outcome) {
                        Some(event) => {
                            if let Event::Approved { token, .. } = &event {
                                Box::pin(self.keep_approval(&intent, token)).await;
                            }
                            event
                        }
                        None => break,
                    },
                    // Cancelled since the request was accepted: nothing to wait for; the store says what happened.
                    None if cancel.is_cancelled() => {
                        intent = match Box::pin(self.store.reload(intent.id())).await {
                            Ok(current) if current.state != intent.state => current,
                            _ => break,
                        };
                        continue;
                    }
                    None => {
                        let started = StartedApproval {
                            auth_req_id: auth_req_id.clone(),
                            expires_at: *expires_at,
                            expires_in: self.clock.now().until(*expires_at),
                            interval: Duration::from_secs((*interval_seconds).max(1)),
                        };
                        let fallback = self.ping_mode.then_some(self.approval.ping_fallback);
                        self.waits.schedule(Waiting {
                            intent_id: Arc::from(intent.id()),
                            auth_req_id: auth_req_id.clone(),
                            pacing: Pacing::new(&started, fallback, self.clock.now()),
                            cancel,
                            ping: ping.take().map(|(_, registration)| registration).or_else(|| {
                                // Taken over (or resumed after a restart): the token sent is known by its digest.
                                let digest = intent.ping_digest.filter(|_| self.ping_mode)?;
                                Some(self.waits.expect_ping_digest(digest, intent.id()))
                            }),
                        });
                        // Still driven by this runner: the scheduler hands the intent back.
                        return;
                    }
                },
                IntentState::Executing { token, token_expires_at } => {
                    match Box::pin(self.execute(&intent, token, *token_expires_at, &mut unanswered)).await {
                        Some(event) => event,
                        None => break,
                    }
                }
                IntentState::OutcomeUnknown { unanswered_since, .. } => {
                    Box::pin(self.reconcile(&intent, *unanswered_since)).await
                }
                _ => break,
            };
            match Box::pin(self.record(&intent, event)).await {
                Some(next) => {
                    match &next.state {
                        IntentState::Completed { receipt } => {
                            tracing::info!(reference = %next.terms.reference, transfer = %receipt.id, "transfer executed");
                        }
                        state if state.status() != intent.status() => {
                            tracing::info!(reference = %next.terms.reference, status = state.status().as_str(), "transfer intent moved");
                        }
                        _ => {}
                    }
                    intent = next;
                }
                None => break,
            }
        }
        self.driving.lock().expect("driving").remove(intent.id());
    }

    fn ping_registration(&self, intent_id: &str) -> (Secret, PingRegistration) {
        let token = Secret::new(crate::secrets::random_token(32));
        let registration = self.waits.expect_ping(&token, intent_id);
        (token, registration)
    }

    /// Checks the approval's token against the provider's keys and keeps it, with the key set, as
    /// the transfer's proof of consent, before the approval is recorded (so the completion's receipt
    /// can name it). Never stops the transfer: the bank is the party that verifies and refuses.
    async fn keep_approval(&self, intent: &StoredIntent, token: &Secret) {
        let witnessing = self.witness.witness(token, intent.subject(), intent.terms.terms());
        let witnessed = match tokio::time::timeout(WITNESS_TIMEOUT, witnessing).await {
            Ok(witnessed) => witnessed,
            Err(_) => self.witness.unchecked(token, "the provider's keys could not be fetched in time"),
        };
        if let Err(error) = self.store.record_witnessed(intent.id(), &witnessed).await {
            tracing::error!(%error, reference = %intent.terms.reference, "could not keep the approval's proof of consent; the receipt will name none");
        }
    }

    /// Blocks while this runner's heartbeat is too old to be sure nobody else took its intents.
    async fn wait_for_lease(&self) {
        while self.clock.now().0 >= self.lease_until.load(Ordering::SeqCst) && !self.stop.is_cancelled() {
            if let Err(error) = self.beat().await {
                tracing::warn!(%error, "waiting to renew this server's heartbeat before acting");
                self.clock.sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// Writes the transition; `None` when this runner must stop (the intent was taken over).
    async fn record(&self, intent: &StoredIntent, event: Event) -> Option<StoredIntent> {
        let mut pause = Duration::from_millis(200);
        loop {
            match self.store.apply(intent, event.clone()).await {
                Ok(next) => {
                    self.metrics.transition(intent.status(), next.status(), intent.created_at, self.clock.now());
                    return Some(next);
                }
                Err(ApplyError::Conflict(current)) => {
                    // Cancelled meanwhile, or claimed by another runner.
                    return (current.runner.as_deref() == Some(self.id.0.as_str())).then_some(*current);
                }
                Err(ApplyError::NoTransition(NoTransition::TooEarly(at))) => {
                    self.clock.sleep_until(at).await;
                    return Some(intent.clone());
                }
                Err(ApplyError::NoTransition(reason)) => {
                    tracing::warn!(%reason, intent = %intent.id(), "an answer did not apply to the transfer intent");
                    return self.store.reload(intent.id()).await.ok();
                }
                Err(ApplyError::Store(error)) => {
                    // Nothing further happens until the outcome is durable (disk full, locked file …).
                    tracing::error!(%error, intent = %intent.id(), "could not record a transfer intent's progress; retrying");
                    if self.stop.is_cancelled() {
                        return None;
                    }
                    self.clock.sleep(pause).await;
                    pause = (pause * 2).min(MAX_STORE_PAUSE);
                }
            }
        }
    }

    /// `POST /bc-authorize`, retried while the provider cannot answer, until the request would
    /// have expired anyway.
    async fn request_approval(&self, intent: &StoredIntent, notification_token: Option<Secret>) -> Event {
        let request = ApprovalRequest {
            scope: self.approval.scope.clone(),
            login_hint: self.approval.login_hints.for_subject(intent.subject()),
            binding_message: intent.terms.binding_message(),
            audience: self.approval.audience.clone(),
            requested_expiry: Some(self.approval.requested_expiry.as_secs()),
            authorization_details: Some(intent.terms.authorization_details()),
            client_notification_token: notification_token,
        };
        let give_up_at = intent.created_at.plus(self.approval.requested_expiry);
        let mut pause = Duration::from_secs(1);
        loop {
            match self.ciba.start(&request, &self.clock).await {
                Ok(started) => {
                    return Event::RequestAccepted {
                        auth_req_id: started.auth_req_id,
                        expires_at: started.expires_at,
                        interval_seconds: started.interval.as_secs(),
                    };
                }
                Err(CibaError::Refused(refusal)) => {
                    return Event::RequestRefused { error: refusal.error, description: refusal.description };
                }
                Err(error) if error.is_transient() && self.clock.now().plus(pause) < give_up_at => {
                    tracing::warn!(%error, reference = %intent.terms.reference, "the approval request did not get through; retrying");
                    self.clock.sleep(pause).await;
                    pause = (pause * 2).min(MAX_PROVIDER_PAUSE);
                }
                Err(error) => return Event::RequestAbandoned { detail: error.to_string() },
            }
        }
    }

    /// The holder's decision as an event; `None` if the wait was stopped (cancel, shutdown).
    fn decision(&self, outcome: Result<ApprovalOutcome, CibaError>) -> Option<Event> {
        Some(match outcome {
            Ok(ApprovalOutcome::Approved(tokens)) => {
                let lifetime = tokens.expires_in.map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
                Event::Approved { token: tokens.access_token, token_expires_at: self.clock.now().plus(lifetime) }
            }
            Ok(ApprovalOutcome::Denied) => Event::Denied,
            Ok(ApprovalOutcome::Expired) => Event::Expired,
            Ok(ApprovalOutcome::GrantInvalid) => Event::GrantInvalid,
            Ok(ApprovalOutcome::Cancelled) => return None,
            Err(CibaError::Refused(refusal)) => {
                Event::RequestRefused { error: refusal.error, description: refusal.description }
            }
            Err(other) => {
                Event::RequestRefused { error: "unusable_answer".into(), description: Some(other.to_string()) }
            }
        })
    }

    /// `POST /api/transfers`, retried under the same `Idempotency-Key` while the bank does not
    /// answer, until the approval's token expires.
    async fn execute(
        &self,
        intent: &StoredIntent,
        token: &Secret,
        token_expires_at: Millis,
        unanswered: &mut Option<Millis>,
    ) -> Option<Event> {
        let terms = &intent.terms;
        let amount = terms.amount.to_decimal_string();
        let order = TransferOrder {
            from_account_id: &terms.from.id,
            to_account_id: &terms.to.id,
            amount,
            currency: terms.currency.as_str(),
            memo: terms.memo.as_deref(),
        };
        let mut pause = Duration::from_millis(500);
        loop {
            self.wait_for_lease().await;
            let attempt_at = self.clock.now();
            let answer =
                self.metrics.time(BankCall::Transfer, self.bank.transfer(token, terms.id.as_str(), &order)).await;
            let reason = answer.as_ref().err().map(ToString::to_string).unwrap_or_default();
            let now = self.clock.now();
            match transfer_answered(answer, attempt_at, now, token_expires_at, unanswered) {
                Some(event) => return Some(event),
                // Stopping: the next runner sends it again under the same key.
                None if self.stop.is_cancelled() => return None,
                None => {
                    tracing::warn!(%reason, reference = %terms.reference, "the bank did not answer the transfer; retrying with the same Idempotency-Key");
                    self.clock.sleep(pause).await;
                    pause = (pause * 2).min(MAX_BANK_PAUSE);
                }
            }
        }
    }

    /// Asks the bank what happened under the intent's `Idempotency-Key`, once no request of ours
    /// can still be executing there, until it answers.
    async fn reconcile(&self, intent: &StoredIntent, unanswered_since: Option<Millis>) -> Event {
        if let Some(since) = unanswered_since {
            self.clock.sleep_until(since.plus(super::state::IN_FLIGHT_GRACE)).await;
        }
        let mut pause = Duration::from_secs(1);
        loop {
            let answer =
                self.metrics.time(BankCall::Lookup, self.bank.request_outcome(&intent.owner, intent.id())).await;
            match lookup_answered(answer) {
                Some(event) => return event,
                None => {
                    tracing::warn!(reference = %intent.terms.reference, "cannot ask the bank what happened to a transfer yet; retrying");
                    self.clock.sleep(pause).await;
                    pause = (pause * 2).min(MAX_RECONCILE_PAUSE);
                }
            }
        }
    }
}

/// The event a transfer attempt's answer makes, or `None` to try again. An attempt without a
/// trustworthy answer may have executed: it is remembered in `unanswered`, and after the token's
/// expiry the intent goes to `outcome_unknown` for the bank to settle.
pub(crate) fn transfer_answered(
    answer: Result<crate::bank::TransferReceipt, BankError>,
    attempt_at: Millis,
    now: Millis,
    token_expires_at: Millis,
    unanswered: &mut Option<Millis>,
) -> Option<Event> {
    match answer {
        Ok(receipt) => Some(Event::BankExecuted { receipt }),
        Err(error) => match refusal(&error) {
            Some((code, detail)) => Some(Event::BankRefused { code, detail, unanswered_since: *unanswered }),
            None => {
                *unanswered = Some(attempt_at);
                (now >= token_expires_at)
                    .then(|| Event::BankUnanswered { detail: error.to_string(), since: attempt_at })
            }
        },
    }
}

/// The event a lookup's answer makes, or `None` when the bank could not be asked.
pub(crate) fn lookup_answered<E>(answer: Result<Option<RequestOutcome>, E>) -> Option<Event> {
    match answer {
        Ok(Some(RequestOutcome::Executed(receipt))) => Some(Event::LookupFound { receipt }),
        Ok(Some(RequestOutcome::Refused { code, detail, .. })) => Some(Event::LookupRefused { code, detail }),
        Ok(None) => Some(Event::LookupNothing),
        Err(_) => None,
    }
}

/// A refusal the bank really gave (a 4xx other than 429), as opposed to no trustworthy answer.
fn refusal(error: &BankError) -> Option<(String, String)> {
    match error {
        BankError::Refused { status, code, detail } if *status < 500 && *status != 429 => {
            Some((code.clone(), detail.clone()))
        }
        _ => None,
    }
}
