//! The transfer intent's states and the one function that moves between them.
//!
//! ```text
//! requesting ──accepted──▶ pending ──approved──▶ executing ──bank 2xx──────────────▶ completed
//!    │  └─refused/abandoned─▶ failed   │  ├─denied──▶ denied      │  └─bank said no / outcome unclear
//!    └─cancel─▶ cancelled ◀──cancel────┘  ├─expired─▶ expired     ▼
//!                                         └─invalid_grant──▶ outcome_unknown ──lookup──▶ completed | failed
//!                                                                 └─nothing recorded, approval still good─▶ executing
//! ```
//!
//! [`transition`] is pure: the state, what happened, and the time go in; the next state or the
//! reason the event does not apply comes out. The rules that keep money honest live here, so they
//! can be property-tested:
//! - after an approval, `failed` is reached only from `outcome_unknown` on the bank's own word that
//!   no transfer exists under the intent's `Idempotency-Key` (a stored refusal, or nothing recorded
//!   once no earlier request can still be in flight and the approval can no longer be used);
//! - a cancelled, denied or expired intent never reaches `executing`;
//! - only `requesting` and `pending` can be cancelled: once the approval is redeemed, the transfer
//!   is the holder's decision and is carried through.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bank::TransferReceipt;
use crate::ciba::types::{AuthReqId, Secret};
use crate::clock::Millis;

/// How long a request to the bank that got no answer may still be executing there. A lookup that
/// finds nothing counts as proof only once this long has passed since the last such request.
pub const IN_FLIGHT_GRACE: Duration = Duration::from_secs(60);
/// How long after its `exp` a bank may still accept an approval's token (the reference bank allows
/// 60 s of clock skew). Until then, nothing recorded means "try again", not "failed".
pub const TOKEN_GRACE: Duration = Duration::from_secs(120);

/// Where one transfer intent is. Variants carry exactly what the next step needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum IntentState {
    /// Recorded before the backchannel request is sent (so a crash can never leave an unknown request).
    Requesting,
    /// The holder has been asked and has not decided.
    Pending { auth_req_id: AuthReqId, expires_at: Millis, interval_seconds: u64 },
    /// Approved: the token is stored before the transfer is sent, so any runner can finish it.
    Executing { token: Secret, token_expires_at: Millis },
    /// The bank may or may not have executed the transfer; asking it under the `Idempotency-Key`.
    OutcomeUnknown {
        /// The approval's token, while it may still be used for a retry.
        token: Option<Secret>,
        token_expires_at: Millis,
        /// Why the transfer would have failed, if the bank confirms nothing was executed.
        failure: FailureReason,
        /// Start of the last request to the bank that got no answer (it may still execute).
        unanswered_since: Option<Millis>,
    },
    /// The bank executed the transfer.
    Completed { receipt: TransferReceipt },
    /// The holder declined on their device.
    Denied,
    /// The approval request expired undecided.
    Expired,
    /// The tool call was cancelled before the approval was redeemed; it never will be.
    Cancelled,
    /// Nothing moved, and the reason.
    Failed { reason: FailureReason },
}

/// Why an intent did not complete. Every variant means: no money moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureReason {
    /// The provider refused the approval request (an OAuth error answer): the holder was never asked.
    ProviderRefused { error: String, description: Option<String> },
    /// The provider could not be reached or answered unusably until the request was given up.
    ProviderUnreachable { detail: String },
    /// The bank refused the transfer (e.g. insufficient funds), and holds no transfer under its key.
    BankRefused { code: String, detail: String },
    /// The bank could not be reached before the approval's token expired, and holds no transfer.
    BankUnreachable { detail: String },
    /// The approval was redeemed by a server that stopped before recording it; the bank holds no
    /// transfer under the key and the approval cannot be redeemed again.
    ApprovalLost,
}

impl FailureReason {
    /// One sentence for the model and the person reading along.
    pub fn describe(&self) -> String {
        match self {
            Self::ProviderRefused { error, description } => match description {
                Some(description) => {
                    format!("the authorization server refused the approval request: {error} ({description})")
                }
                None => format!("the authorization server refused the approval request: {error}"),
            },
            Self::ProviderUnreachable { detail } => format!(
                "the authorization server could not be reached to ask for approval ({detail}); if an approval request \
                 shows on the device, it will not be executed"
            ),
            Self::BankRefused { detail, .. } => format!("the bank refused the transfer: {detail}"),
            Self::BankUnreachable { detail } => {
                format!("the bank could not be reached before the approval expired ({detail})")
            }
            Self::ApprovalLost => "the approval was redeemed by a server that stopped before it could send the \
                                   transfer, and it cannot be used again; ask for a new transfer"
                .to_owned(),
        }
    }
}

impl IntentState {
    /// The status name stored and shown to clients.
    pub fn status(&self) -> Status {
        match self {
            Self::Requesting => Status::Requesting,
            Self::Pending { .. } => Status::Pending,
            Self::Executing { .. } => Status::Executing,
            Self::OutcomeUnknown { .. } => Status::OutcomeUnknown,
            Self::Completed { .. } => Status::Completed,
            Self::Denied => Status::Denied,
            Self::Expired => Status::Expired,
            Self::Cancelled => Status::Cancelled,
            Self::Failed { .. } => Status::Failed,
        }
    }

    pub fn is_final(&self) -> bool {
        self.status().is_final()
    }
}

/// Where a transfer is in its life (stored beside the state, and reported in tool results).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, schemars::JsonSchema)]
#[schemars(rename = "TransferStatus", description = "Where the transfer is in its life.")]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum Status {
    /// The approval request is being sent.
    Requesting,
    /// The holder has been asked and has not decided.
    Pending,
    /// Approved; the bank is executing the transfer.
    Executing,
    /// Approved, but whether the bank executed it is not known yet; do not retry.
    OutcomeUnknown,
    /// The bank executed the transfer.
    Completed,
    /// The holder declined.
    Denied,
    /// Nobody approved in time.
    Expired,
    /// Cancelled before approval.
    Cancelled,
    /// Did not complete; no money moved.
    Failed,
}

impl Status {
    pub const OPEN: [Status; 4] = [Status::Requesting, Status::Pending, Status::Executing, Status::OutcomeUnknown];

    pub fn is_final(self) -> bool {
        !Self::OPEN.contains(&self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requesting => "requesting",
            Self::Pending => "pending",
            Self::Executing => "executing",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::Completed => "completed",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

/// What happened to an intent. Each comes from one observed fact: a provider or bank answer, the
/// tool call's cancellation, or the runner giving up on an unreachable provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `/bc-authorize` accepted the request.
    RequestAccepted { auth_req_id: AuthReqId, expires_at: Millis, interval_seconds: u64 },
    /// `/bc-authorize` answered with an OAuth error.
    RequestRefused { error: String, description: Option<String> },
    /// `/bc-authorize` could not be completed until the runner gave up.
    RequestAbandoned { detail: String },
    /// The token endpoint issued the approval's token.
    Approved { token: Secret, token_expires_at: Millis },
    /// `access_denied`.
    Denied,
    /// `expired_token`, or the expiry passed.
    Expired,
    /// `invalid_grant` for a pending request: someone redeemed it, and did not record it.
    GrantInvalid,
    /// The tool call was cancelled.
    Cancel,
    /// The bank answered 2xx with the executed transfer.
    BankExecuted { receipt: TransferReceipt },
    /// The bank refused this request. `unanswered_since`: the start of the last earlier request that
    /// got no answer (it may still execute), if any.
    BankRefused { code: String, detail: String, unanswered_since: Option<Millis> },
    /// The bank could not be reached (or answered unusably) until the token expired.
    BankUnanswered { detail: String, since: Millis },
    /// The lookup by `Idempotency-Key` found the executed transfer.
    LookupFound { receipt: TransferReceipt },
    /// The lookup found a refusal stored under the key: no transfer exists, or ever will.
    LookupRefused { code: String, detail: String },
    /// The lookup found nothing recorded under the key.
    LookupNothing,
}

/// Why an event does not move the intent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoTransition {
    #[error("the intent is already {}", .0.as_str())]
    Final(Status),
    #[error("the approval was already redeemed; the transfer is being carried out")]
    TooLate,
    #[error("a lookup that finds nothing proves nothing until {}", .0.rfc3339())]
    TooEarly(Millis),
    #[error("{event} does not apply to an intent that is {}", .status.as_str())]
    NotApplicable { status: Status, event: &'static str },
}

/// The one place that decides where `state` goes when `event` happens at `now`.
pub fn transition(state: &IntentState, event: Event, now: Millis) -> Result<IntentState, NoTransition> {
    use IntentState as S;
    if state.is_final() {
        return Err(NoTransition::Final(state.status()));
    }
    let not_applicable = |event: &Event| NoTransition::NotApplicable { status: state.status(), event: event.name() };
    Ok(match (state, event) {
        (S::Requesting | S::Pending { .. }, Event::Cancel) => S::Cancelled,
        (_, Event::Cancel) => return Err(NoTransition::TooLate),

        (S::Requesting, Event::RequestAccepted { auth_req_id, expires_at, interval_seconds }) => {
            S::Pending { auth_req_id, expires_at, interval_seconds }
        }
        (S::Requesting, Event::RequestRefused { error, description }) => {
            S::Failed { reason: FailureReason::ProviderRefused { error, description } }
        }
        (S::Requesting, Event::RequestAbandoned { detail }) => {
            S::Failed { reason: FailureReason::ProviderUnreachable { detail } }
        }

        (S::Pending { .. }, Event::Approved { token, token_expires_at }) => S::Executing { token, token_expires_at },
        (S::Pending { .. }, Event::Denied) => S::Denied,
        (S::Pending { .. }, Event::Expired) => S::Expired,
        // Someone redeemed it. Nobody sends a transfer without recording `executing` first, so none
        // can be in flight; still, only the bank's word makes it `failed`.
        (S::Pending { .. }, Event::GrantInvalid) => S::OutcomeUnknown {
            token: None,
            token_expires_at: now,
            failure: FailureReason::ApprovalLost,
            unanswered_since: None,
        },

        (
            S::Executing { .. } | S::OutcomeUnknown { .. },
            Event::BankExecuted { receipt } | Event::LookupFound { receipt },
        ) => S::Completed { receipt },
        // The token is not used again: the bank said no to it.
        (S::Executing { token_expires_at, .. }, Event::BankRefused { code, detail, unanswered_since }) => {
            S::OutcomeUnknown {
                token: None,
                token_expires_at: *token_expires_at,
                failure: FailureReason::BankRefused { code, detail },
                unanswered_since,
            }
        }
        (S::Executing { token, token_expires_at }, Event::BankUnanswered { detail, since }) => S::OutcomeUnknown {
            token: Some(token.clone()),
            token_expires_at: *token_expires_at,
            failure: FailureReason::BankUnreachable { detail },
            unanswered_since: Some(since),
        },
        (S::OutcomeUnknown { .. }, Event::LookupRefused { code, detail }) => {
            S::Failed { reason: FailureReason::BankRefused { code, detail } }
        }
        (S::OutcomeUnknown { token, token_expires_at, failure, unanswered_since }, Event::LookupNothing) => {
            if let Some(since) = unanswered_since {
                let settled = since.plus(IN_FLIGHT_GRACE);
                if now < settled {
                    return Err(NoTransition::TooEarly(settled));
                }
            }
            match token {
                // Nothing happened at the bank and the approval is still good: send it again under
                // the same key.
                Some(token) if now < token_expires_at.plus(TOKEN_GRACE) => {
                    S::Executing { token: token.clone(), token_expires_at: *token_expires_at }
                }
                _ => S::Failed { reason: failure.clone() },
            }
        }
        (_, event) => return Err(not_applicable(&event)),
    })
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Self::RequestAccepted { .. } => "request accepted",
            Self::RequestRefused { .. } => "request refused",
            Self::RequestAbandoned { .. } => "request abandoned",
            Self::Approved { .. } => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::GrantInvalid => "invalid grant",
            Self::Cancel => "cancel",
            Self::BankExecuted { .. } => "bank executed",
            Self::BankRefused { .. } => "bank refused",
            Self::BankUnanswered { .. } => "bank unanswered",
            Self::LookupFound { .. } => "lookup found",
            Self::LookupRefused { .. } => "lookup refused",
            Self::LookupNothing => "lookup found nothing",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = Millis(1_000_000);

    fn executing() -> IntentState {
        IntentState::Executing { token: Secret::new("t"), token_expires_at: NOW.plus(Duration::from_secs(300)) }
    }

    #[test]
    fn a_cancel_counts_until_the_approval_is_redeemed_and_never_after() {
        assert_eq!(transition(&IntentState::Requesting, Event::Cancel, NOW), Ok(IntentState::Cancelled));
        let pending = transition(
            &IntentState::Requesting,
            Event::RequestAccepted { auth_req_id: AuthReqId::new("r"), expires_at: NOW, interval_seconds: 5 },
            NOW,
        )
        .unwrap();
        assert_eq!(transition(&pending, Event::Cancel, NOW), Ok(IntentState::Cancelled));
        assert_eq!(transition(&executing(), Event::Cancel, NOW), Err(NoTransition::TooLate));
    }

    #[test]
    fn a_bank_refusal_is_failed_only_once_the_bank_confirms_it_holds_nothing() {
        let refused =
            Event::BankRefused { code: "insufficient_funds".into(), detail: "low".into(), unanswered_since: None };
        let unknown = transition(&executing(), refused, NOW).unwrap();
        assert_eq!(unknown.status(), Status::OutcomeUnknown);
        let found = transition(&unknown, Event::LookupFound { receipt: receipt() }, NOW).unwrap();
        assert_eq!(found.status(), Status::Completed, "the bank's record wins over the refusal we heard");
        let nothing = transition(&unknown, Event::LookupNothing, NOW).unwrap();
        assert!(matches!(nothing, IntentState::Failed { reason: FailureReason::BankRefused { .. } }));
    }

    #[test]
    fn nothing_recorded_proves_nothing_while_an_unanswered_request_may_still_execute() {
        let unanswered = Event::BankUnanswered { detail: "reset".into(), since: NOW };
        let at_expiry = NOW.plus(Duration::from_secs(300));
        let unknown = transition(&executing(), unanswered, at_expiry).unwrap();
        let settled = NOW.plus(IN_FLIGHT_GRACE);
        assert_eq!(transition(&unknown, Event::LookupNothing, NOW), Err(NoTransition::TooEarly(settled)));
        // After the grace, with the token still good: send it again under the same key.
        assert_eq!(transition(&unknown, Event::LookupNothing, at_expiry).unwrap().status(), Status::Executing);
        // Once the token can no longer be used: failed, nothing moved.
        let late = at_expiry.plus(TOKEN_GRACE);
        assert!(matches!(
            transition(&unknown, Event::LookupNothing, late),
            Ok(IntentState::Failed { reason: FailureReason::BankUnreachable { .. } })
        ));
    }

    #[test]
    fn final_states_do_not_move() {
        for state in [IntentState::Denied, IntentState::Expired, IntentState::Cancelled] {
            assert_eq!(transition(&state, Event::LookupNothing, NOW), Err(NoTransition::Final(state.status())));
        }
    }

    fn receipt() -> TransferReceipt {
        serde_json::from_value(serde_json::json!({"id": "trf_1", "status": "completed", "from_account_id": "a",
            "to_account_id": "b", "amount": "1.00", "currency": "USD", "created_at": "2026-11-23T00:00:00Z",
            "from_account_balance_after": "0.00"}))
        .unwrap()
    }
}
