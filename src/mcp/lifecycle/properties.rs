//! Property test of the lifecycle: random sequences of what can happen to one transfer (the holder
//! approves or denies, the call is cancelled, time passes, the server crashes and another takes
//! over, the provider or the bank fails before or after doing its part, a write does not reach the
//! disk, a request sent earlier lands late at the bank) are played against a model of the provider
//! and the bank. The intent moves only through [`transition`], and the runner's answers are read by
//! the runner's own functions. Whatever the sequence: the bank executes at most once, nothing
//! executes after a cancel or a denial, and `failed` is never written while money moved or can
//! still move.

use proptest::prelude::*;

use super::runner::{lookup_answered, transfer_answered};
use super::state::{Event, IN_FLIGHT_GRACE, IntentState, transition};
use crate::bank::{BankError, RequestOutcome, TransferReceipt};
use crate::ciba::types::{AuthReqId, Secret};
use crate::clock::Millis;

/// How long the reference bank keeps accepting a token after its `exp`.
const BANK_LEEWAY_MS: i64 = 60_000;
const LIFETIME_MS: i64 = 300_000;

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    /// The request never reaches its server (reset, 503 from a proxy, timeout before sending).
    LostBefore,
    /// The server does its part, the answer is lost (5xx, reset or timeout after commit).
    LostAfter,
    /// The request reaches the bank only later (stuck in a queue), within the in-flight grace.
    Delayed,
    /// The outcome is not written to disk (disk full), or the process dies before writing it.
    NotRecorded,
    /// Something on the way (a gateway, a misbehaving bank) answers 4xx without the bank recording it.
    RefusedOnTheWay,
}

#[derive(Debug, Clone)]
enum Action {
    Tick(u32),
    Cancel,
    HolderDecides(bool),
    FundsAvailable(bool),
    /// The process dies; another runner takes the intent over.
    Crash,
    /// The runner performs the side effect the state calls for.
    Step(Fault),
    /// A delayed request lands at the bank.
    DelayedLands,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::None),
        1 => Just(Fault::LostBefore),
        1 => Just(Fault::LostAfter),
        1 => Just(Fault::Delayed),
        1 => Just(Fault::NotRecorded),
        1 => Just(Fault::RefusedOnTheWay),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => (1u32..200).prop_map(Action::Tick),
        1 => Just(Action::Cancel),
        2 => any::<bool>().prop_map(Action::HolderDecides),
        1 => any::<bool>().prop_map(Action::FundsAvailable),
        1 => Just(Action::Crash),
        6 => fault().prop_map(Action::Step),
        1 => Just(Action::DelayedLands),
    ]
}

#[derive(Debug, Default)]
struct Device {
    asked: bool,
    decision: Option<bool>,
    redeemed: bool,
    expires_at: i64,
}

#[derive(Debug)]
enum Stored {
    Executed(Box<TransferReceipt>),
    Refused,
}

#[derive(Debug)]
struct World {
    now: Millis,
    created_at: Millis,
    state: IntentState,
    device: Device,
    funds: bool,
    /// What the bank recorded under the intent's key, and how many transfers it executed.
    bank: Option<Stored>,
    executions: u32,
    /// Requests on their way to the bank: the token's expiry and when they were sent.
    delayed: Vec<(i64, Millis)>,
    /// The runner's memory: the start of its last unanswered attempt.
    unanswered: Option<Millis>,
    cancel_stored: bool,
}

impl World {
    fn new() -> Self {
        Self {
            now: Millis(1_000_000),
            created_at: Millis(1_000_000),
            state: IntentState::Requesting,
            device: Device::default(),
            funds: true,
            bank: None,
            executions: 0,
            delayed: Vec::new(),
            unanswered: None,
            cancel_stored: false,
        }
    }

    fn record(&mut self, event: Event, fault: Fault) {
        if matches!(fault, Fault::NotRecorded) {
            return;
        }
        if let Ok(next) = transition(&self.state, event, self.now) {
            self.state = next;
        }
    }

    /// The bank's handling of one transfer request sent with a token that expires at `token_exp`.
    fn bank_handles(&mut self, token_exp: i64) -> Result<TransferReceipt, BankError> {
        if self.now.0 > token_exp + BANK_LEEWAY_MS {
            return Err(refused(401, "invalid_token"));
        }
        match &self.bank {
            Some(Stored::Executed(receipt)) => Ok((**receipt).clone()),
            Some(Stored::Refused) => Err(refused(422, "insufficient_funds")),
            None if self.funds => {
                self.executions += 1;
                let receipt = receipt();
                self.bank = Some(Stored::Executed(Box::new(receipt.clone())));
                Ok(receipt)
            }
            None => {
                self.bank = Some(Stored::Refused);
                Err(refused(422, "insufficient_funds"))
            }
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Tick(seconds) => {
                self.now = Millis(self.now.0 + i64::from(seconds) * 1000);
                // A request still not at the bank after the grace never arrives.
                let now = self.now;
                self.delayed.retain(|(_, sent)| now < sent.plus(IN_FLIGHT_GRACE));
            }
            Action::Cancel => {
                if let Ok(next) = transition(&self.state, Event::Cancel, self.now) {
                    self.state = next;
                    self.cancel_stored = true;
                }
            }
            Action::HolderDecides(approve) => {
                if self.device.asked && self.device.decision.is_none() && self.now.0 < self.device.expires_at {
                    self.device.decision = Some(approve);
                }
            }
            Action::FundsAvailable(funds) => self.funds = funds,
            Action::Crash => {
                // The new runner cannot know whether a request of the old one is still under way.
                self.unanswered = matches!(self.state, IntentState::Executing { .. }).then_some(self.now);
            }
            Action::DelayedLands => {
                if let Some((token_exp, _)) = self.delayed.pop() {
                    let _ = self.bank_handles(token_exp);
                }
            }
            Action::Step(fault) => self.step(fault),
        }
    }

    fn step(&mut self, fault: Fault) {
        let now = self.now;
        match self.state.clone() {
            IntentState::Requesting => {
                if now >= self.created_at.plus(std::time::Duration::from_millis(LIFETIME_MS as u64)) {
                    self.record(Event::RequestAbandoned { detail: "unreachable".into() }, fault);
                    return;
                }
                if matches!(fault, Fault::LostBefore | Fault::RefusedOnTheWay) {
                    return;
                }
                // The provider creates a request (the dev provider returns the same one on a retry).
                if !self.device.asked {
                    self.device = Device { asked: true, expires_at: now.0 + LIFETIME_MS, ..Device::default() };
                }
                if matches!(fault, Fault::LostAfter) {
                    return;
                }
                let event = Event::RequestAccepted {
                    auth_req_id: AuthReqId::new("req"),
                    expires_at: Millis(self.device.expires_at),
                    interval_seconds: 5,
                };
                self.record(event, fault);
            }
            IntentState::Pending { expires_at, .. } => {
                if matches!(fault, Fault::LostBefore | Fault::RefusedOnTheWay) {
                    return;
                }
                let event = if now >= expires_at {
                    Event::Expired
                } else if self.device.redeemed {
                    Event::GrantInvalid
                } else {
                    match self.device.decision {
                        None => return,
                        Some(false) => Event::Denied,
                        Some(true) => {
                            self.device.redeemed = true;
                            if matches!(fault, Fault::LostAfter) {
                                return;
                            }
                            Event::Approved { token: Secret::new("t"), token_expires_at: Millis(now.0 + LIFETIME_MS) }
                        }
                    }
                };
                self.record(event, fault);
            }
            IntentState::Executing { token_expires_at, .. } => {
                let answer = match fault {
                    Fault::LostBefore => Err(unreachable()),
                    Fault::RefusedOnTheWay => Err(refused(400, "bad_request")),
                    Fault::Delayed => {
                        self.delayed.push((token_expires_at.0, now));
                        Err(unreachable())
                    }
                    Fault::LostAfter => self.bank_handles(token_expires_at.0).and(Err(unreachable())),
                    Fault::None | Fault::NotRecorded => self.bank_handles(token_expires_at.0),
                };
                if let Some(event) = transfer_answered(answer, now, now, token_expires_at, &mut self.unanswered) {
                    self.record(event, fault);
                }
            }
            IntentState::OutcomeUnknown { .. } => {
                let answer = match (fault, &self.bank) {
                    (Fault::LostBefore | Fault::LostAfter | Fault::RefusedOnTheWay, _) => Err(()),
                    (_, Some(Stored::Executed(receipt))) => Ok(Some(RequestOutcome::Executed((**receipt).clone()))),
                    (_, Some(Stored::Refused)) => Ok(Some(RequestOutcome::Refused {
                        status: 422,
                        code: "insufficient_funds".into(),
                        detail: "low".into(),
                    })),
                    (_, None) => Ok(None),
                };
                if let Some(event) = lookup_answered(answer) {
                    self.record(event, fault);
                }
            }
            _ => {}
        }
    }

    fn check(&self) -> Result<(), TestCaseError> {
        prop_assert!(self.executions <= 1, "executed {} times", self.executions);
        if self.cancel_stored {
            prop_assert_eq!(self.executions, 0, "money moved after the cancel was stored");
        }
        match &self.state {
            IntentState::Denied | IntentState::Expired | IntentState::Cancelled => {
                prop_assert_eq!(self.executions, 0, "money moved for a {:?} intent", self.state.status());
                prop_assert!(self.delayed.is_empty());
            }
            IntentState::Failed { reason } => {
                prop_assert_eq!(self.executions, 0, "failed ({:?}) while the bank executed the transfer", reason);
                // Nothing still on its way may execute it later.
                let can_land = self.delayed.iter().any(|(exp, _)| self.now.0 <= exp + BANK_LEEWAY_MS);
                prop_assert!(
                    !can_land || matches!(self.bank, Some(Stored::Refused)),
                    "failed with a request in flight"
                );
            }
            IntentState::Completed { .. } => prop_assert_eq!(self.executions, 1),
            _ => {}
        }
        Ok(())
    }
}

fn refused(status: u16, code: &str) -> BankError {
    BankError::Refused { status, code: code.into(), detail: code.into() }
}

fn unreachable() -> BankError {
    BankError::Unreachable { url: "bank".into(), reason: "connection reset".into() }
}

fn receipt() -> TransferReceipt {
    TransferReceipt {
        id: "trf_1".into(),
        status: "completed".into(),
        from_account_id: "a".into(),
        to_account_id: "b".into(),
        amount: "1.00".into(),
        currency: "USD".into(),
        memo: None,
        created_at: "2026-11-23T00:00:00Z".into(),
        from_account_balance_after: "0.00".into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn money_moves_at_most_once_never_after_cancel_and_failed_means_nothing_moved(
        actions in proptest::collection::vec(action(), 1..80)
    ) {
        let mut world = World::new();
        for action in actions {
            world.act(action);
            world.check()?;
        }
        // However it got here: with everything answering and time passing, the intent settles,
        // and tells the truth.
        for _ in 0..40 {
            world.act(Action::Step(Fault::None));
            world.act(Action::Tick(30));
            world.check()?;
        }
        prop_assert!(world.state.is_final(), "still {:?}", world.state.status());
    }
}
