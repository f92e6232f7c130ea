//! The transfer lifecycle: one owner for a transfer intent from the tool call to the bank's answer.
//!
//! - [`state`]: the states (an enum whose variants carry their data), the events, and the one
//!   transition function that decides every move. Pure, and property-tested.
//! - [`store`]: the intents in SQLite; each transition is a compare-and-set on the intent's version.
//!   Runners' heartbeats live beside them.
//! - [`runner`]: the process's one runner, which performs each state's side effect, records the
//!   transition before the next one, and takes over the intents of runners that stopped.
//! - [`audit`]: the append-only, hash-chained audit trail of every transition, and its signed heads.
//! - [`waits`]: the one scheduler that drives every pending approval's wait for the holder, each a
//!   small record rather than a task.
//!
//! Tools only submit intents ([`store::IntentStore::create`] then [`runner::Runner::drive`]),
//! cancel them ([`runner::Runner::cancel`]) and follow them; they never run the process.
//!
//! Write-ahead: `requesting` is stored before `/bc-authorize`, `executing` (with the approval's
//! token, so any runner can finish it) before the bank is asked to move money, `cancelled` before a
//! cancelled call is let go. After an approval, `failed` is only written on the bank's own word that
//! no transfer exists under the intent's `Idempotency-Key`; until the bank can say, the intent is
//! `outcome_unknown`.

pub mod audit;
pub mod runner;
pub mod state;
pub mod store;
pub mod waits;

#[cfg(test)]
mod properties;

pub use runner::{ApprovalSettings, Runner};
pub use state::{Event, FailureReason, IntentState, Status};
pub use store::{
    Admission, Claim, ConsentRecord, ConsentRow, IntentStore, PingDigest, PostgresLocation, RunnerId, StoreError,
    StoreEvent, StoreLocation, StoredIntent,
};
pub use waits::Waits;
