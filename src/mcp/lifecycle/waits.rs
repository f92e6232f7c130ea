//! The waits for holders' decisions: one scheduler drives every pending approval of the process.
//!
//! A pending approval spends minutes doing nothing, and a server may hold ten thousand of them.
//! As a task each, every one kept a future, a timer and its intent in memory; here each is a
//! [`Waiting`] record of a few hundred bytes (the `auth_req_id`, its [`Pacing`], its cancellation)
//! in one queue ordered by due time. One task sleeps until the earliest is due, then starts its poll
//! under one of the client's poll turns; a poll that decides nothing puts the record back. A ping
//! moves its record to the front. When a wait ends, the runner picks the intent up again.
//!
//! Ping tokens are looked up by their SHA-256, so finding the wait a ping is for takes one hash
//! lookup whatever the number of waits, and reveals nothing about other tokens through timing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use sha2::{Digest, Sha256};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::store::PingDigest;
use crate::ciba::types::{AuthReqId, Secret};
use crate::ciba::wait::{ApprovalOutcome, Pacing};
use crate::ciba::{CibaClient, CibaError};
use crate::clock::{Clock, Millis};

/// One pending approval the scheduler drives.
pub struct Waiting {
    pub intent_id: Arc<str>,
    pub auth_req_id: AuthReqId,
    pub pacing: Pacing,
    /// Fired by a cancellation of the intent or by shutdown.
    pub cancel: CancellationToken,
    /// Ping mode: the request's notification token, registered until the wait ends.
    pub ping: Option<PingRegistration>,
}

/// How a wait ended.
pub enum WaitEnd {
    /// The provider decided (or refused for good).
    Answered(Result<ApprovalOutcome, CibaError>),
    /// Cancelled, or the server is stopping: the store says what happened.
    Stopped,
}

/// Called with each wait that ended; the runner's way back in.
pub type Resume = Arc<dyn Fn(Waiting, WaitEnd) + Send + Sync>;

pub struct Waits {
    ciba: Arc<CibaClient>,
    clock: Clock,
    queue: Mutex<Queue>,
    /// Wakes the scheduler: a new wait, or one that became due at once.
    changed: Notify,
}

#[derive(Default)]
struct Queue {
    /// Due time and sequence number of every queued wait, earliest first.
    order: BTreeSet<(Millis, u64)>,
    queued: HashMap<u64, (Millis, Waiting)>,
    by_intent: HashMap<Arc<str>, u64>,
    next: u64,
    /// Ping mode: the intent each registered notification token belongs to, by the token's SHA-256.
    tokens: HashMap<[u8; 32], Arc<str>>,
    /// Intents pinged while their wait was not queued (a poll in flight, or not yet pending): their
    /// next poll is at once.
    pinged: HashSet<Arc<str>>,
}

/// Keeps a notification token registered; dropped when its wait ends.
pub struct PingRegistration {
    waits: Weak<Waits>,
    digest: [u8; 32],
}

impl Drop for PingRegistration {
    fn drop(&mut self) {
        if let Some(waits) = self.waits.upgrade() {
            let mut queue = waits.queue.lock().expect("wait queue");
            if let Some(intent) = queue.tokens.remove(&self.digest) {
                queue.pinged.remove(&intent);
            }
        }
    }
}

/// The SHA-256 of a notification token: how waits, the store and other replicas name it.
pub fn digest(token: &str) -> PingDigest {
    Sha256::digest(token.as_bytes()).into()
}

impl PingRegistration {
    pub fn digest(&self) -> &PingDigest {
        &self.digest
    }
}

impl Waits {
    pub fn new(ciba: Arc<CibaClient>, clock: Clock) -> Self {
        Self { ciba, clock, queue: Mutex::default(), changed: Notify::new() }
    }

    /// Registers the notification token sent with `intent_id`'s approval request, so a ping
    /// carrying it (even one that arrives before the request is recorded as pending) ends its wait.
    pub fn expect_ping(self: &Arc<Self>, token: &Secret, intent_id: &str) -> PingRegistration {
        self.expect_ping_digest(digest(token.expose()), intent_id)
    }

    /// Registers a notification token by its digest (for an intent taken over from another runner).
    pub fn expect_ping_digest(self: &Arc<Self>, digest: PingDigest, intent_id: &str) -> PingRegistration {
        self.queue.lock().expect("wait queue").tokens.insert(digest, Arc::from(intent_id));
        PingRegistration { waits: Arc::downgrade(self), digest }
    }

    /// A ping carrying `token` arrived: the wait it belongs to polls at once. False if no wait
    /// registered that token.
    pub fn ping(&self, token: &str) -> bool {
        self.ping_digest(&digest(token))
    }

    /// A ping for the token with this digest arrived (here, or at another replica).
    pub fn ping_digest(&self, digest: &PingDigest) -> bool {
        let mut queue = self.queue.lock().expect("wait queue");
        let Some(intent) = queue.tokens.get(digest).cloned() else { return false };
        match queue.by_intent.get(&intent).copied() {
            Some(seq) => queue.reschedule(seq, self.clock.now()),
            None => {
                queue.pinged.insert(intent);
            }
        }
        drop(queue);
        self.changed.notify_one();
        true
    }

    /// Queues a wait; it polls when its pacing says, or at once if a ping for it already arrived.
    pub fn schedule(&self, waiting: Waiting) {
        let mut queue = self.queue.lock().expect("wait queue");
        let due = if queue.pinged.remove(&waiting.intent_id) { self.clock.now() } else { waiting.pacing.due() };
        let earliest = queue.order.first().is_none_or(|(first, _)| due < *first);
        queue.push(due, waiting);
        drop(queue);
        if earliest {
            self.changed.notify_one();
        }
    }

    /// Takes `intent_id`'s wait out of the queue, if it is queued (not while its poll is in flight).
    pub fn remove(&self, intent_id: &str) -> Option<Waiting> {
        let mut queue = self.queue.lock().expect("wait queue");
        let seq = queue.by_intent.remove(intent_id)?;
        let (due, waiting) = queue.queued.remove(&seq)?;
        queue.order.remove(&(due, seq));
        Some(waiting)
    }

    /// How many waits are queued (not counting polls in flight).
    pub fn len(&self) -> usize {
        self.queue.lock().expect("wait queue").queued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The scheduler: until `stop`, starts each wait's poll when it is due, at most as many at once
    /// as the client has poll turns, and hands every wait that ends to `resume`. On `stop` the
    /// queued waits are dropped (the runner hands their intents back).
    pub async fn run(self: Arc<Self>, stop: CancellationToken, tasks: TaskTracker, resume: Resume) {
        'scheduling: loop {
            let next = self.queue.lock().expect("wait queue").order.first().map(|(due, _)| *due);
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                () = self.changed.notified() => {}
                () = self.clock.sleep_until(next.unwrap_or(Millis(i64::MAX))), if next.is_some() => {}
            }
            loop {
                let turn = tokio::select! {
                    biased;
                    () = stop.cancelled() => break 'scheduling,
                    turn = self.ciba.poll_turn() => turn,
                };
                let Some(waiting) = self.queue.lock().expect("wait queue").pop_due(self.clock.now()) else {
                    break;
                };
                tasks.spawn(self.clone().poll(waiting, turn, resume.clone()));
            }
        }
        let queue = std::mem::take(&mut *self.queue.lock().expect("wait queue"));
        drop(queue);
    }

    /// One poll for a wait that is due: puts it back if nothing was decided, else resumes the runner.
    async fn poll(self: Arc<Self>, mut waiting: Waiting, turn: OwnedSemaphorePermit, resume: Resume) {
        if waiting.cancel.is_cancelled() {
            return resume(waiting, WaitEnd::Stopped);
        }
        if waiting.pacing.expired(self.clock.now()) {
            return resume(waiting, WaitEnd::Answered(Ok(ApprovalOutcome::Expired)));
        }
        let answer = self.ciba.poll(&waiting.auth_req_id).await;
        drop(turn);
        if waiting.cancel.is_cancelled() {
            // Whatever the answer, a cancelled call redeems nothing.
            return resume(waiting, WaitEnd::Stopped);
        }
        match waiting.pacing.answered(answer, self.clock.now()) {
            Ok(None) => self.schedule(waiting),
            Ok(Some(outcome)) => resume(waiting, WaitEnd::Answered(Ok(outcome))),
            Err(refused) => resume(waiting, WaitEnd::Answered(Err(refused))),
        }
    }
}

impl Queue {
    fn push(&mut self, due: Millis, waiting: Waiting) {
        let seq = self.next;
        self.next += 1;
        self.order.insert((due, seq));
        self.by_intent.insert(waiting.intent_id.clone(), seq);
        self.queued.insert(seq, (due, waiting));
    }

    /// Moves a queued wait to `due` (a ping: now).
    fn reschedule(&mut self, seq: u64, due: Millis) {
        if let Some(entry) = self.queued.get_mut(&seq) {
            self.order.remove(&(entry.0, seq));
            entry.0 = due;
            self.order.insert((due, seq));
        }
    }

    /// The earliest wait, if it is due at `now`.
    fn pop_due(&mut self, now: Millis) -> Option<Waiting> {
        let &(due, seq) = self.order.first()?;
        if due > now {
            return None;
        }
        self.order.remove(&(due, seq));
        let (_, waiting) = self.queued.remove(&seq)?;
        self.by_intent.remove(&waiting.intent_id);
        Some(waiting)
    }
}

#[cfg(test)]
mod tests;
