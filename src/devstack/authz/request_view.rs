//! What a backchannel request asks, in the account holder's words: the transfer its
//! `payment_initiation` detail describes, with accounts named as the holder knows them; the reference
//! code that ends its binding message (the code the AI client's progress messages repeat, so the
//! person can match chat and phone); and, once settled, what became of it.
//!
//! The pending list, the confirmation after a decision ([`Confirmation`]), the history
//! ([`HistoryEntry`]) and `bankguard pending` all say it the same way because they all read it from
//! here. Plain text only: the page escapes it.

use serde_json::Value;

use super::store::{BackchannelRequest, Status};
use crate::authorization_details::{PAYMENT_INITIATION, PaymentInitiation};
use crate::devstack::seed;

/// The transfer a request's authorization details describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferView {
    /// The amount as the detail gives it, e.g. `25.00`.
    pub amount: String,
    pub currency: String,
    /// "Everyday Checking (CHK-4821)".
    pub from: String,
    /// "Checking (CHK-3307, Bob Okafor)": the payee's account, with its holder.
    pub to: String,
    pub memo: Option<String>,
}

impl TransferView {
    /// The `payment_initiation` detail among `authorization_details` (a JSON array), if any.
    pub fn from_details(authorization_details: &str) -> Option<Self> {
        let details: Vec<Value> = serde_json::from_str(authorization_details).ok()?;
        let payment =
            details.into_iter().find(|d| d.get("type").and_then(Value::as_str) == Some(PAYMENT_INITIATION))?;
        let payment: PaymentInitiation = serde_json::from_value(payment).ok()?;
        Some(Self {
            amount: payment.instructed_amount.amount,
            currency: payment.instructed_amount.currency,
            from: describe_account(&payment.debtor_account.id, false),
            to: describe_account(&payment.creditor_account.id, true),
            memo: payment.remittance_information_unstructured,
        })
    }

    /// "25.00 USD from Everyday Checking (CHK-4821) to Checking (CHK-3307, Bob Okafor), memo “Dinner”".
    pub fn summary(&self) -> String {
        let mut summary = format!("{} {} from {} to {}", self.amount, self.currency, self.from, self.to);
        if let Some(memo) = &self.memo {
            summary.push_str(&format!(", memo “{memo}”"));
        }
        summary
    }

    /// "25.00 USD to Checking (CHK-3307, Bob Okafor)".
    pub fn amount_to_payee(&self) -> String {
        format!("{} {} to {}", self.amount, self.currency, self.to)
    }
}

fn describe_account(id: &str, with_owner: bool) -> String {
    for user in seed::USERS {
        if let Some(account) = user.accounts.iter().find(|account| account.id == id) {
            return match with_owner {
                true => format!("{} ({}, {})", account.name, account.masked_number, user.name),
                false => format!("{} ({})", account.name, account.masked_number),
            };
        }
    }
    format!("account {id}")
}

/// The reference code that ends a binding message: `K7Q2` in `Transfer 25.00 USD CHK-4821 to
/// CHK-3307 #K7Q2`. `None` when the message ends otherwise.
pub fn reference(binding_message: &str) -> Option<&str> {
    let code = binding_message.split_whitespace().last()?.strip_prefix('#')?;
    (!code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric())).then_some(code)
}

/// What a request asks for, in one line: the transfer, or the binding message of another request.
pub fn what(request: &BackchannelRequest) -> String {
    match request.authorization_details.as_deref().and_then(TransferView::from_details) {
        Some(transfer) => transfer.summary(),
        None => format!("Sign-in request “{}”", request.binding_message),
    }
}

/// How a request ended, as its history shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Approved,
    Denied,
    /// Nobody decided in time.
    Expired,
    /// Approved, but the client never collected the approval before it expired: nothing happened.
    ApprovedUnused,
}

impl Settled {
    /// `None` while the request may still be decided at `now`.
    pub fn of(request: &BackchannelRequest, now: i64) -> Option<Self> {
        match request.status {
            Status::Approved if !request.redeemed && request.expires_at <= now => Some(Self::ApprovedUnused),
            Status::Approved => Some(Self::Approved),
            Status::Denied => Some(Self::Denied),
            // Only the token endpoint marks an approved request expired, and only an unredeemed one.
            Status::Expired if request.decided_at.is_some() => Some(Self::ApprovedUnused),
            Status::Expired => Some(Self::Expired),
            Status::Pending if request.expires_at <= now => Some(Self::Expired),
            Status::Pending => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Approved => "Approved",
            Self::Denied => "Denied",
            Self::Expired => "Expired",
            Self::ApprovedUnused => "Approved, expired unused",
        }
    }

    /// The CSS class of its badge.
    pub fn class(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired | Self::ApprovedUnused => "expired",
        }
    }

    /// When it settled: its decision, or its expiry.
    pub fn at(self, request: &BackchannelRequest) -> i64 {
        match self {
            Self::Approved | Self::Denied => request.decided_at.unwrap_or(request.expires_at),
            Self::Expired | Self::ApprovedUnused => request.expires_at,
        }
    }
}

/// A settled request as the history lists it.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub settled: Settled,
    /// When it was decided or expired, in seconds since the epoch.
    pub at: i64,
    pub what: String,
    pub reference: Option<String>,
}

/// What the page says after a decision: which request it was, and what happened.
#[derive(Debug, Clone)]
pub struct Confirmation {
    pub user: String,
    pub outcome: Outcome,
    /// The request as the holder saw it; `None` when they have no such request.
    pub request: Option<DecidedRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Approved,
    Denied,
    /// Nothing was decided, for this reason ("the request has expired").
    NotDecided(String),
}

#[derive(Debug, Clone)]
pub struct DecidedRequest {
    /// "25.00 USD to Checking (CHK-3307, Bob Okafor)", or the binding message of a sign-in.
    pub what: String,
    pub is_transfer: bool,
    pub reference: Option<String>,
    pub client_name: String,
}

impl DecidedRequest {
    pub fn of(request: &BackchannelRequest, client_name: &str) -> Self {
        let transfer = request.authorization_details.as_deref().and_then(TransferView::from_details);
        Self {
            is_transfer: transfer.is_some(),
            what: transfer.map_or_else(|| what(request), |t| t.amount_to_payee()),
            reference: reference(&request.binding_message).map(str::to_owned),
            client_name: client_name.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_is_the_code_after_the_last_hash() {
        assert_eq!(reference("Transfer 25.00 USD CHK-4821 to CHK-3307 #K7Q2"), Some("K7Q2"));
        assert_eq!(reference("Sign in #TEST"), Some("TEST"));
        for none in ["Transfer 25.00 USD", "#", "Pay #K7Q2 now", "Code #K7-Q2", ""] {
            assert_eq!(reference(none), None, "{none:?}");
        }
    }

    #[test]
    fn a_request_settles_by_decision_or_by_expiry_and_an_unused_approval_says_so() {
        let now = 1_000;
        let request = |status, decided_at, redeemed, expires_at| BackchannelRequest {
            auth_req_id: "r".into(),
            client_id: "c".into(),
            subject: "alice".into(),
            scope: "openid".into(),
            audience: None,
            binding_message: "Sign in #TEST".into(),
            authorization_details: None,
            client_notification_token: None,
            created_at: 0,
            expires_at,
            interval_seconds: 5,
            last_polled_at_ms: None,
            status,
            decided_at,
            redeemed,
            notified: false,
            retry_key: None,
        };
        let settled = |r: BackchannelRequest| Settled::of(&r, now);
        assert_eq!(settled(request(Status::Pending, None, false, now + 1)), None, "still open");
        assert_eq!(settled(request(Status::Pending, None, false, now)), Some(Settled::Expired), "not yet marked");
        assert_eq!(settled(request(Status::Expired, None, false, now)), Some(Settled::Expired));
        assert_eq!(settled(request(Status::Denied, Some(10), false, now + 1)), Some(Settled::Denied));
        assert_eq!(settled(request(Status::Approved, Some(10), false, now + 1)), Some(Settled::Approved));
        assert_eq!(settled(request(Status::Approved, Some(10), true, now)), Some(Settled::Approved), "used");
        assert_eq!(settled(request(Status::Approved, Some(10), false, now)), Some(Settled::ApprovedUnused));
        assert_eq!(settled(request(Status::Expired, Some(10), false, now)), Some(Settled::ApprovedUnused));
        assert_eq!(Settled::Approved.at(&request(Status::Approved, Some(10), true, now)), 10, "when decided");
        assert_eq!(Settled::Expired.at(&request(Status::Expired, None, false, now)), now, "when it expired");
    }

    #[test]
    fn a_transfer_names_both_accounts_and_the_payee() {
        let details = r#"[{"type":"payment_initiation","actions":["initiate"],
            "instructedAmount":{"currency":"USD","amount":"25.00"},
            "debtorAccount":{"id":"acc_alice_chk"},"creditorAccount":{"id":"acc_bob_chk"},
            "remittanceInformationUnstructured":"Dinner","intentId":"int_1"}]"#;
        let transfer = TransferView::from_details(details).unwrap();
        assert_eq!(
            transfer.summary(),
            "25.00 USD from Everyday Checking (CHK-4821) to Checking (CHK-3307, Bob Okafor), memo “Dinner”"
        );
        assert_eq!(transfer.amount_to_payee(), "25.00 USD to Checking (CHK-3307, Bob Okafor)");
        assert_eq!(TransferView::from_details("[]"), None);
    }
}
