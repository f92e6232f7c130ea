//! The money policy: the limits a transfer is held to before its holder is asked, read from
//! configuration only (`[mcp.policy]`), so nothing a model says can widen them.
//!
//! [`Policy::rules_for`] resolves one holder's rules (their override where one is set, else the
//! general rule). Two kinds of check follow, both before any approval request:
//! - [`Rules::check_amount`] and [`Rules::check_payee`]: what needs only the transfer (the
//!   per-transfer maximum, the payee lists);
//! - [`Rules::admit`]: what needs the holder's recent use ([`Usage`]: the rolling 24-hour total and
//!   count in the transfer's currency, and the approval requests of the last hour). The store runs it
//!   inside the transaction that records the intent, under the holder's lock, so concurrent calls,
//!   on any replica, cannot together pass a limit each would pass alone.
//!
//! A refusal ([`Refusal`]) names its rule and what remains, and is a tool error: nothing reaches the
//! provider.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::clock::Millis;
use crate::config::{PayeeMode, PolicyConfig, PolicyRules};
use crate::mcp::intent::TransferIntent;
use crate::money::{Currency, MinorUnits};

/// The window of the daily total and count.
pub const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// The window of the approval-request cap.
pub const HOUR: Duration = Duration::from_secs(60 * 60);

/// The configured policy, valid once the configuration validated.
#[derive(Debug, Clone)]
pub struct Policy {
    config: PolicyConfig,
    default_max_transfer: MinorUnits,
}

/// One holder's rules, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub max_transfer: MinorUnits,
    pub daily_total: BTreeMap<Currency, MinorUnits>,
    pub daily_count: Option<u32>,
    pub approval_requests_per_hour: Option<u32>,
    pub payees: PayeeMode,
    pub allowed_payees: Vec<String>,
    pub denied_payees: Vec<String>,
    pub own_accounts_allowed: bool,
}

/// A holder's recent use, as the store counts it at the moment of the check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// The sum of the holder's transfers in this currency in the last 24 hours that moved money or
    /// still may (asked for and not denied, expired, cancelled or failed).
    pub day_total: MinorUnits,
    /// How many such transfers.
    pub day_count: u32,
    /// When the oldest of those in the window was asked for (the window frees up 24 hours later).
    pub day_oldest: Option<Millis>,
    /// Approval requests sent to the holder's device in the last hour, whatever became of them.
    pub hour_requests: u32,
    /// When the oldest of those was sent.
    pub hour_oldest: Option<Millis>,
}

/// Why a transfer was refused before its holder was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Refused by the money policy ({rule}): {detail}. Nothing was sent to the account holder.")]
pub struct Refusal {
    /// The rule's name as configured under `[mcp.policy]`.
    pub rule: &'static str,
    /// What the rule allows and what remains.
    pub detail: String,
}

impl Policy {
    pub fn new(config: PolicyConfig, default_max_transfer: MinorUnits) -> Self {
        Self { config, default_max_transfer }
    }

    /// The rules of the holder whose user id at the bank is `bank_user`.
    pub fn rules_for(&self, bank_user: &str) -> Rules {
        let general = &self.config.rules;
        let own = self.config.holders.get(bank_user);
        let amount = |text: &str| MinorUnits::parse_decimal(text).unwrap_or_default();
        Rules {
            max_transfer: pick(own, general, |r| r.max_transfer_amount.clone())
                .map_or(self.default_max_transfer, |m| amount(&m)),
            daily_total: pick(own, general, |r| r.daily_total.clone())
                .unwrap_or_default()
                .iter()
                .filter_map(|(currency, total)| Some((currency.parse().ok()?, amount(total))))
                .collect(),
            daily_count: pick(own, general, |r| r.daily_count),
            approval_requests_per_hour: pick(own, general, |r| r.approval_requests_per_hour),
            payees: pick(own, general, |r| r.payees).unwrap_or_default(),
            allowed_payees: pick(own, general, |r| r.allowed_payees.clone()).unwrap_or_default(),
            denied_payees: pick(own, general, |r| r.denied_payees.clone()).unwrap_or_default(),
            own_accounts_allowed: pick(own, general, |r| r.own_accounts_allowed).unwrap_or(true),
        }
    }
}

impl Rules {
    /// The per-transfer maximum.
    pub fn check_amount(&self, amount: MinorUnits) -> Result<(), Refusal> {
        if amount > self.max_transfer {
            return Err(Refusal {
                rule: "max_transfer_amount",
                detail: format!("{amount} is over the limit of {} per transfer", self.max_transfer),
            });
        }
        Ok(())
    }

    /// The payee lists. `to_own_account`: the destination is one of the holder's accounts.
    pub fn check_payee(&self, to_account: &str, to_own_account: bool) -> Result<(), Refusal> {
        if self.denied_payees.iter().any(|denied| denied == to_account) {
            return Err(Refusal {
                rule: "denied_payees",
                detail: format!("transfers to {to_account} are not allowed"),
            });
        }
        let allowed = self.allowed_payees.iter().any(|allowed| allowed == to_account)
            || (to_own_account && self.own_accounts_allowed);
        if self.payees == PayeeMode::AllowList && !allowed {
            let own = if self.own_accounts_allowed { " and the holder's own accounts" } else { "" };
            let list = if self.allowed_payees.is_empty() { "none".to_owned() } else { self.allowed_payees.join(", ") };
            return Err(Refusal {
                rule: "allowed_payees",
                detail: format!("{to_account} is not an allowed payee; allowed: {list}{own}"),
            });
        }
        Ok(())
    }

    /// Whether the holder's recent `usage` leaves room for `terms`, asked for at `now`; if so, what
    /// each limit that counted leaves after this transfer, for the holder's records and the model.
    pub fn admit(&self, terms: &TransferIntent, usage: &Usage, now: Millis) -> Result<Vec<String>, Refusal> {
        self.refuse_over_limits(terms, usage, now)?;
        let mut applied = Vec::new();
        if let Some(cap) = self.approval_requests_per_hour {
            let left = cap.saturating_sub(usage.hour_requests + 1);
            applied.push(format!("approval_requests_per_hour: {left} of {cap} left this hour"));
        }
        if let Some(cap) = self.daily_count {
            let left = cap.saturating_sub(usage.day_count + 1);
            applied.push(format!("daily_count: {left} of {cap} {} transfers left in 24 hours", terms.currency));
        }
        if let Some(total) = self.daily_total.get(&terms.currency) {
            let left = MinorUnits((total.0 - usage.day_total.0 - terms.amount.0).max(0));
            applied.push(format!("daily_total: {left} of {total} {} left in 24 hours", terms.currency));
        }
        Ok(applied)
    }

    fn refuse_over_limits(&self, terms: &TransferIntent, usage: &Usage, now: Millis) -> Result<(), Refusal> {
        let frees_up = |oldest: Option<Millis>, window: Duration| {
            oldest.map_or_else(String::new, |oldest| {
                let wait = now.until(oldest.plus(window));
                format!("; the oldest one leaves the window in {}", minutes(wait))
            })
        };
        if let Some(cap) = self.approval_requests_per_hour
            && usage.hour_requests >= cap
        {
            return Err(Refusal {
                rule: "approval_requests_per_hour",
                detail: format!(
                    "the holder has had {} approval requests in the last hour, the most allowed; 0 remaining{}",
                    usage.hour_requests,
                    frees_up(usage.hour_oldest, HOUR)
                ),
            });
        }
        let currency = terms.currency;
        if let Some(cap) = self.daily_count
            && usage.day_count >= cap
        {
            return Err(Refusal {
                rule: "daily_count",
                detail: format!(
                    "{} transfers in {currency} in the last 24 hours, the most allowed; 0 remaining{}",
                    usage.day_count,
                    frees_up(usage.day_oldest, DAY)
                ),
            });
        }
        if let Some(total) = self.daily_total.get(&currency) {
            let remaining = MinorUnits((total.0 - usage.day_total.0).max(0));
            if terms.amount > remaining {
                return Err(Refusal {
                    rule: "daily_total",
                    detail: format!(
                        "{} {currency} would bring the last 24 hours to {} of {} {currency}; {} {currency} remaining{}",
                        terms.amount,
                        MinorUnits(usage.day_total.0 + terms.amount.0),
                        total,
                        remaining,
                        frees_up(usage.day_oldest, DAY)
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether [`Rules::admit`] needs the holder's usage at all.
    pub fn counts_usage(&self, currency: Currency) -> bool {
        self.approval_requests_per_hour.is_some()
            || self.daily_count.is_some()
            || self.daily_total.contains_key(&currency)
    }
}

/// The holder's own rule where their override sets it, else the general one.
fn pick<T>(own: Option<&PolicyRules>, general: &PolicyRules, rule: impl Fn(&PolicyRules) -> Option<T>) -> Option<T> {
    own.and_then(&rule).or_else(|| rule(general))
}

/// A wait as a person reads it: "42 min", "3 h 5 min".
fn minutes(wait: Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60);
    match minutes {
        0..60 => format!("{minutes} min"),
        _ => format!("{} h {} min", minutes / 60, minutes % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::intent::AccountLabel;

    fn usd() -> Currency {
        "USD".parse().unwrap()
    }

    fn transfer(amount: i64) -> TransferIntent {
        TransferIntent::new(
            AccountLabel { id: "acc_alice_chk".into(), masked_number: "CHK-4821".into() },
            AccountLabel { id: "acc_bob_chk".into(), masked_number: "CHK-3307".into() },
            MinorUnits(amount),
            usd(),
            None,
        )
    }

    fn policy(toml_rules: PolicyRules, holders: &[(&str, PolicyRules)]) -> Policy {
        let holders = holders.iter().map(|(holder, rules)| (holder.to_string(), rules.clone())).collect();
        Policy::new(PolicyConfig { rules: toml_rules, holders }, MinorUnits(1_000_000))
    }

    #[test]
    fn an_override_applies_to_its_holder_only_and_unset_rules_fall_back_to_the_general_ones() {
        let general =
            PolicyRules { daily_count: Some(5), max_transfer_amount: Some("500.00".into()), ..Default::default() };
        let bob = PolicyRules { max_transfer_amount: Some("20.00".into()), ..Default::default() };
        let policy = policy(general, &[("bob", bob)]);
        assert_eq!(policy.rules_for("bob").max_transfer, MinorUnits(2000));
        assert_eq!(policy.rules_for("bob").daily_count, Some(5), "bob keeps the general count");
        assert_eq!(policy.rules_for("alice").max_transfer, MinorUnits(50_000));
        let unconfigured = Policy::new(PolicyConfig::default(), MinorUnits(1_000_000));
        assert_eq!(unconfigured.rules_for("alice").max_transfer, MinorUnits(1_000_000), "mcp.max_transfer_amount");
    }

    #[test]
    fn the_daily_total_names_what_remains_and_refuses_only_what_would_pass_it() {
        let mut daily_total = BTreeMap::new();
        daily_total.insert("USD".to_owned(), "100.00".to_owned());
        let rules =
            policy(PolicyRules { daily_total: Some(daily_total), ..Default::default() }, &[]).rules_for("alice");
        let used =
            Usage { day_total: MinorUnits(7_000), day_count: 2, day_oldest: Some(Millis(0)), ..Usage::default() };
        let now = Millis(60 * 60 * 1000);
        let applied = rules.admit(&transfer(3_000), &used, now).expect("exactly the rest is allowed");
        assert_eq!(applied, ["daily_total: 0.00 of 100.00 USD left in 24 hours"]);
        let refused = rules.admit(&transfer(3_001), &used, now).unwrap_err();
        assert_eq!(refused.rule, "daily_total");
        assert!(refused.detail.contains("30.00 USD remaining"), "{refused}");
        assert!(refused.detail.contains("leaves the window in 23 h 0 min"), "{refused}");
        assert!(refused.to_string().contains("Nothing was sent to the account holder"), "{refused}");
    }

    #[test]
    fn payees_allow_list_own_accounts_and_deny_list() {
        let rules = policy(
            PolicyRules {
                payees: Some(PayeeMode::AllowList),
                allowed_payees: Some(vec!["acc_bob_chk".into()]),
                denied_payees: Some(vec!["acc_mallory".into()]),
                ..Default::default()
            },
            &[],
        )
        .rules_for("alice");
        assert!(rules.check_payee("acc_bob_chk", false).is_ok());
        assert!(rules.check_payee("acc_alice_sav", true).is_ok(), "own accounts count as allowed");
        assert_eq!(rules.check_payee("acc_carol", false).unwrap_err().rule, "allowed_payees");
        assert_eq!(rules.check_payee("acc_mallory", false).unwrap_err().rule, "denied_payees");
        let strict = Rules { own_accounts_allowed: false, ..rules };
        assert_eq!(strict.check_payee("acc_alice_sav", true).unwrap_err().rule, "allowed_payees");
    }

    #[test]
    fn the_request_cap_and_the_daily_count_refuse_at_their_limit() {
        let rules = policy(
            PolicyRules { approval_requests_per_hour: Some(2), daily_count: Some(3), ..Default::default() },
            &[],
        )
        .rules_for("alice");
        let now = Millis(10_000_000);
        let at_cap =
            Usage { hour_requests: 2, hour_oldest: Some(Millis(10_000_000 - 30 * 60 * 1000)), ..Usage::default() };
        let refused = rules.admit(&transfer(100), &at_cap, now).unwrap_err();
        assert_eq!(refused.rule, "approval_requests_per_hour");
        assert!(refused.detail.contains("in 30 min"), "{refused}");
        assert!(rules.admit(&transfer(100), &Usage { hour_requests: 1, ..Usage::default() }, now).is_ok());
        let day = Usage { day_count: 3, ..Usage::default() };
        assert_eq!(rules.admit(&transfer(100), &day, now).unwrap_err().rule, "daily_count");
    }
}
