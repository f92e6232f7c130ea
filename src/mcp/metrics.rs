//! What `GET /metrics` reports, in the Prometheus text format: what this server's runner counted as
//! intents moved, and how many intents the store holds open at the moment of the scrape.
//!
//! One registry per [`Backends`](super::Backends), never a process-global one: each server counts
//! only its own work, even when several run in one process (as the integration tests do). The
//! counters and histograms are this process's since it started; the open-intent gauges are read
//! from the store at scrape time, so they are true across replicas that share one store.
//!
//! No personal data: every label takes one of a few fixed values (a decision, a bank call, a
//! status). No holder, account, reference, intent id or amount appears in a name, label or value.

use std::future::Future;
use std::time::{Duration, Instant};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::lifecycle::Status;
use crate::clock::Millis;

/// Every metric's name starts with `bankguard_`.
const PREFIX: &str = "bankguard";
/// The `Content-Type` of what [`Metrics::encode`] writes.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Seconds a holder takes to decide: from a second to the longest approval lifetimes.
const DECISION_BUCKETS: [f64; 10] = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0];
/// Seconds one bank call takes: from a fast local answer to a stalled connection.
const BANK_CALL_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// One label with one of a fixed set of values.
type Label = [(&'static str, &'static str); 1];

/// The holder's decisions, as the `decision` label names them.
const DECISIONS: [&str; 3] = ["approved", "denied", "expired"];
/// What a lookup in `outcome_unknown` led to, as the `result` label names it.
const RECONCILIATIONS: [&str; 3] = ["executed", "failed", "retried"];

/// A call to the bank whose duration is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BankCall {
    /// `POST /api/transfers`, one attempt.
    Transfer,
    /// Asking the bank what happened under an intent's `Idempotency-Key`.
    Lookup,
}

impl BankCall {
    const ALL: [BankCall; 2] = [BankCall::Transfer, BankCall::Lookup];

    fn label(self) -> Label {
        [("call", if self == BankCall::Transfer { "transfer" } else { "lookup" })]
    }
}

/// This server's metrics. The runner counts into it ([`Metrics::transition`],
/// [`Metrics::cancelled`], [`Metrics::time`]); `GET /metrics` encodes it ([`Metrics::encode`]).
pub struct Metrics {
    registry: Registry,
    approval_requests: Counter,
    decisions: Family<Label, Counter>,
    cancelled: Counter,
    executed: Counter,
    reconciliations: Family<Label, Counter>,
    decision_seconds: Family<Label, Histogram>,
    bank_call_seconds: Family<Label, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let metrics = Self {
            approval_requests: Counter::default(),
            decisions: Family::default(),
            cancelled: Counter::default(),
            executed: Counter::default(),
            reconciliations: Family::default(),
            decision_seconds: Family::new_with_constructor(|| Histogram::new(DECISION_BUCKETS)),
            bank_call_seconds: Family::new_with_constructor(|| Histogram::new(BANK_CALL_BUCKETS)),
            registry: Registry::default(),
        };
        // Every series exists from the start, at zero, so a rate over it never starts with a gap.
        for decision in DECISIONS {
            metrics.decisions.get_or_create_owned(&[("decision", decision)]);
            metrics.decision_seconds.get_or_create_owned(&[("decision", decision)]);
        }
        for result in RECONCILIATIONS {
            metrics.reconciliations.get_or_create_owned(&[("result", result)]);
        }
        for call in BankCall::ALL {
            metrics.bank_call_seconds.get_or_create_owned(&call.label());
        }
        registry.register(
            "approval_requests",
            "Approval requests the authorization server accepted (each one reached the holder's device)",
            metrics.approval_requests.clone(),
        );
        registry.register(
            "approval_decisions",
            "Approval requests that ended on the holder's device, by decision (approved, denied, expired)",
            metrics.decisions.clone(),
        );
        registry.register(
            "transfers_cancelled",
            "Transfer intents cancelled by their tool call before the approval was redeemed",
            metrics.cancelled.clone(),
        );
        registry.register(
            "transfers_executed",
            "Transfers the bank executed, as it answered the transfer or as a later lookup found it",
            metrics.executed.clone(),
        );
        registry.register(
            "reconciliations",
            "Answered lookups of transfers whose outcome was unknown, by what they led to (executed: the bank \
             holds the transfer; failed: it holds none; retried: none yet, sent again under the same key)",
            metrics.reconciliations.clone(),
        );
        registry.register_with_unit(
            "approval_decision",
            "Time from the transfer request to the holder's decision on their device, by decision",
            Unit::Seconds,
            metrics.decision_seconds.clone(),
        );
        registry.register_with_unit(
            "bank_call",
            "Duration of each call to the bank: a transfer attempt or an outcome lookup",
            Unit::Seconds,
            metrics.bank_call_seconds.clone(),
        );
        Self { registry, ..metrics }
    }

    /// Counts what an intent's recorded move from `from` to `to` means. `created_at`: when the
    /// intent was created, for the time the holder took to decide at `now`.
    pub fn transition(&self, from: Status, to: Status, created_at: Millis, now: Millis) {
        match (from, to) {
            (Status::Requesting, Status::Pending) => {
                self.approval_requests.inc();
            }
            (Status::Pending, decided @ (Status::Executing | Status::Denied | Status::Expired)) => {
                let decision = match decided {
                    Status::Executing => "approved",
                    Status::Denied => "denied",
                    _ => "expired",
                };
                self.decisions.get_or_create(&[("decision", decision)]).inc();
                let seconds = created_at.until(now).as_secs_f64();
                self.decision_seconds.get_or_create(&[("decision", decision)]).observe(seconds);
            }
            (Status::OutcomeUnknown, next) => {
                let result = match next {
                    Status::Completed => "executed",
                    Status::Executing => "retried",
                    _ => "failed",
                };
                self.reconciliations.get_or_create(&[("result", result)]).inc();
                if next == Status::Completed {
                    self.executed.inc();
                }
            }
            (_, Status::Completed) => {
                self.executed.inc();
            }
            _ => {}
        }
    }

    /// An intent was cancelled (the cancellation is stored).
    pub fn cancelled(&self) {
        self.cancelled.inc();
    }

    /// Runs one call to the bank, and records how long it took, whatever it answered.
    pub async fn time<T>(&self, call: BankCall, request: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let answer = request.await;
        self.observe_bank_call(call, started.elapsed());
        answer
    }

    fn observe_bank_call(&self, call: BankCall, took: Duration) {
        self.bank_call_seconds.get_or_create(&call.label()).observe(took.as_secs_f64());
    }

    /// The Prometheus text exposition: this server's counters and histograms, and, when the store
    /// could be read (`open`, by status), `bankguard_open_intents`.
    pub fn encode(&self, open: Option<&[(Status, i64)]>) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.registry)?;
        if let Some(open) = open {
            let mut scraped = Registry::with_prefix(PREFIX);
            let by_status = Family::<Label, Gauge>::default();
            for (status, count) in open {
                by_status.get_or_create(&[("status", status.as_str())]).set(*count);
            }
            scraped.register(
                "open_intents",
                "Transfer intents open now in the store (all servers sharing it), by status: requesting, \
                 pending (waiting for the holder), executing, outcome_unknown (being reconciled with the bank)",
                by_status,
            );
            prometheus_text::encode(&mut text, &scraped)?;
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the one line that starts with `series` followed by a space.
    fn value(text: &str, series: &str) -> f64 {
        let lines: Vec<&str> =
            text.lines().filter(|line| line.split_once(' ').map(|(s, _)| s) == Some(series)).collect();
        assert_eq!(lines.len(), 1, "{series} in:\n{text}");
        lines[0].rsplit_once(' ').unwrap().1.parse().unwrap()
    }

    #[test]
    fn each_recorded_move_counts_once_in_what_it_means() {
        let metrics = Metrics::new();
        let created = Millis(1_000_000);
        let decided = created.plus(Duration::from_secs(12));
        metrics.transition(Status::Requesting, Status::Pending, created, created);
        metrics.transition(Status::Pending, Status::Executing, created, decided);
        metrics.transition(Status::Executing, Status::Completed, created, decided);
        metrics.transition(Status::Pending, Status::Denied, created, decided);
        metrics.transition(Status::Executing, Status::OutcomeUnknown, created, decided);
        metrics.transition(Status::OutcomeUnknown, Status::Completed, created, decided);
        metrics.transition(Status::OutcomeUnknown, Status::Executing, created, decided);
        metrics.cancelled();

        let text = metrics.encode(None).unwrap();
        assert_eq!(value(&text, "bankguard_approval_requests_total"), 1.0);
        assert_eq!(value(&text, r#"bankguard_approval_decisions_total{decision="approved"}"#), 1.0);
        assert_eq!(value(&text, r#"bankguard_approval_decisions_total{decision="denied"}"#), 1.0);
        assert_eq!(value(&text, r#"bankguard_approval_decisions_total{decision="expired"}"#), 0.0);
        assert_eq!(value(&text, "bankguard_transfers_executed_total"), 2.0);
        assert_eq!(value(&text, "bankguard_transfers_cancelled_total"), 1.0);
        assert_eq!(value(&text, r#"bankguard_reconciliations_total{result="executed"}"#), 1.0);
        assert_eq!(value(&text, r#"bankguard_reconciliations_total{result="retried"}"#), 1.0);
        assert_eq!(value(&text, r#"bankguard_reconciliations_total{result="failed"}"#), 0.0);
        assert_eq!(value(&text, r#"bankguard_approval_decision_seconds_sum{decision="approved"}"#), 12.0);
        assert_eq!(value(&text, r#"bankguard_approval_decision_seconds_bucket{decision="approved",le="10"}"#), 0.0);
        assert_eq!(value(&text, r#"bankguard_approval_decision_seconds_bucket{decision="approved",le="20"}"#), 1.0);
        assert!(!text.contains("bankguard_open_intents"), "no gauges without the store's counts");
    }

    #[tokio::test]
    async fn a_bank_call_is_timed_whatever_it_answers() {
        let metrics = Metrics::new();
        let answer: Result<(), &str> = metrics.time(BankCall::Lookup, async { Err("connection reset") }).await;
        assert!(answer.is_err());
        let text = metrics.encode(Some(&[(Status::Pending, 3), (Status::OutcomeUnknown, 1)])).unwrap();
        assert_eq!(value(&text, r#"bankguard_bank_call_seconds_count{call="lookup"}"#), 1.0);
        assert_eq!(value(&text, r#"bankguard_bank_call_seconds_count{call="transfer"}"#), 0.0);
        assert_eq!(value(&text, r#"bankguard_open_intents{status="pending"}"#), 3.0);
        assert_eq!(value(&text, r#"bankguard_open_intents{status="outcome_unknown"}"#), 1.0);
    }
}
