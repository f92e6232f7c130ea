//! The transaction binding: the RFC 9396 authorization detail that describes exactly one transfer.
//!
//! The MCP server builds a [`PaymentInitiation`] from validated tool arguments and sends it with the
//! CIBA request; the authorization server copies it into the access token's `authorization_details`
//! claim; the bank API compares it field by field with the transfer it is asked to make. This module
//! is the shared contract of those three parties, so it holds only the wire shape, the comparison, and
//! the memo rule the provider and the bank both apply.

use serde::{Deserialize, Serialize};

use crate::display_text::{DisplayText, DisplayTextError};
use crate::money::{Currency, MinorUnits};

/// The `type` of the one authorization detail bankguard uses.
pub const PAYMENT_INITIATION: &str = "payment_initiation";
/// The only action a transfer approval grants.
pub const ACTION_INITIATE: &str = "initiate";
/// Longest memo (`remittanceInformationUnstructured`), in characters: ISO 20022's `Max140Text`.
pub const MAX_MEMO_CHARS: usize = 140;

/// The memo rule of the parties that receive a memo (the provider, the bank): [`DisplayText`] of at
/// most [`MAX_MEMO_CHARS`], already in NFC. Text that is not NFC is refused, never normalised here:
/// the binding compares exact strings, so the approval, the request and the ledger must all hold the
/// same bytes, and the party that writes the memo (bankguard's MCP server) normalises it first.
pub fn check_memo(memo: &str) -> Result<(), DisplayTextError> {
    DisplayText::exact(memo, MAX_MEMO_CHARS).map(drop)
}

/// `{"type": "payment_initiation", "actions": ["initiate"], "instructedAmount": …, …}`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentInitiation {
    #[serde(rename = "type")]
    pub detail_type: String,
    pub actions: Vec<String>,
    pub instructed_amount: InstructedAmount,
    pub debtor_account: AccountReference,
    pub creditor_account: AccountReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remittance_information_unstructured: Option<String>,
    /// bankguard's transfer intent id; the bank API requires it to equal the `Idempotency-Key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstructedAmount {
    pub currency: String,
    /// A decimal string such as `"25.00"`; compared as exact minor units, never as text or float.
    pub amount: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountReference {
    pub id: String,
}

/// The transfer a binding is checked against.
#[derive(Clone, Copy, Debug)]
pub struct TransferTerms<'a> {
    pub from_account_id: &'a str,
    pub to_account_id: &'a str,
    pub amount: MinorUnits,
    pub currency: Currency,
    pub memo: Option<&'a str>,
    pub intent_id: &'a str,
}

/// The first field in which an approved payment differs from the requested transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BindingMismatch {
    #[error("the approval is not for initiating a payment")]
    Action,
    #[error("the approved amount differs")]
    Amount,
    #[error("the approved currency differs")]
    Currency,
    #[error("the approved source account differs")]
    DebtorAccount,
    #[error("the approved destination account differs")]
    CreditorAccount,
    #[error("the approved memo differs")]
    Memo,
    #[error("the approval belongs to another transfer intent")]
    IntentId,
}

impl PaymentInitiation {
    /// The detail for exactly these terms.
    pub fn for_transfer(terms: &TransferTerms<'_>) -> Self {
        Self {
            detail_type: PAYMENT_INITIATION.to_owned(),
            actions: vec![ACTION_INITIATE.to_owned()],
            instructed_amount: InstructedAmount {
                currency: terms.currency.to_string(),
                amount: terms.amount.to_decimal_string(),
            },
            debtor_account: AccountReference { id: terms.from_account_id.to_owned() },
            creditor_account: AccountReference { id: terms.to_account_id.to_owned() },
            remittance_information_unstructured: terms.memo.map(str::to_owned),
            intent_id: Some(terms.intent_id.to_owned()),
        }
    }

    /// Checks that this approval covers exactly `terms`. Amounts are compared as minor units,
    /// so `"25"` and `"25.00"` are the same amount, and `"25.001"` matches nothing.
    pub fn check_matches(&self, terms: &TransferTerms<'_>) -> Result<(), BindingMismatch> {
        if self.detail_type != PAYMENT_INITIATION || !self.actions.iter().any(|a| a == ACTION_INITIATE) {
            return Err(BindingMismatch::Action);
        }
        if MinorUnits::parse_decimal(&self.instructed_amount.amount) != Ok(terms.amount) {
            return Err(BindingMismatch::Amount);
        }
        if self.instructed_amount.currency != terms.currency.as_str() {
            return Err(BindingMismatch::Currency);
        }
        if self.debtor_account.id != terms.from_account_id {
            return Err(BindingMismatch::DebtorAccount);
        }
        if self.creditor_account.id != terms.to_account_id {
            return Err(BindingMismatch::CreditorAccount);
        }
        if self.remittance_information_unstructured.as_deref() != terms.memo {
            return Err(BindingMismatch::Memo);
        }
        match &self.intent_id {
            Some(intent_id) if intent_id != terms.intent_id => Err(BindingMismatch::IntentId),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> TransferTerms<'static> {
        TransferTerms {
            from_account_id: "acc_alice_chk",
            to_account_id: "acc_bob_chk",
            amount: MinorUnits(2500),
            currency: "USD".parse().unwrap(),
            memo: Some("rent"),
            intent_id: "int_1",
        }
    }

    #[test]
    fn the_wire_shape_is_rfc_9396_payment_initiation() {
        let json = serde_json::to_value(PaymentInitiation::for_transfer(&terms())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "payment_initiation", "actions": ["initiate"],
                "instructedAmount": {"currency": "USD", "amount": "25.00"},
                "debtorAccount": {"id": "acc_alice_chk"}, "creditorAccount": {"id": "acc_bob_chk"},
                "remittanceInformationUnstructured": "rent", "intentId": "int_1"
            })
        );
    }

    #[test]
    fn an_approval_matches_only_its_own_transfer() {
        let approved = PaymentInitiation::for_transfer(&terms());
        assert_eq!(approved.check_matches(&terms()), Ok(()));

        let mut same_amount_written_differently = approved.clone();
        same_amount_written_differently.instructed_amount.amount = "25".into();
        assert_eq!(same_amount_written_differently.check_matches(&terms()), Ok(()));

        let cases: [(TransferTerms, BindingMismatch); 6] = [
            (TransferTerms { amount: MinorUnits(2501), ..terms() }, BindingMismatch::Amount),
            (TransferTerms { currency: "EUR".parse().unwrap(), ..terms() }, BindingMismatch::Currency),
            (TransferTerms { from_account_id: "acc_x", ..terms() }, BindingMismatch::DebtorAccount),
            (TransferTerms { to_account_id: "acc_x", ..terms() }, BindingMismatch::CreditorAccount),
            (TransferTerms { memo: None, ..terms() }, BindingMismatch::Memo),
            (TransferTerms { intent_id: "int_2", ..terms() }, BindingMismatch::IntentId),
        ];
        for (other, mismatch) in cases {
            assert_eq!(approved.check_matches(&other), Err(mismatch));
        }
    }
}
