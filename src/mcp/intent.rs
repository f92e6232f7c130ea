//! A transfer intent: one validated transfer the server asks the account holder to approve.
//!
//! Everything the holder sees on their device and everything the bank checks is derived here from
//! validated values, never from model text: the binding message (amount, both accounts by their
//! masked numbers, and a short reference code), the `payment_initiation` authorization detail, and
//! the intent id that becomes the bank's `Idempotency-Key`.

use crate::authorization_details::{PaymentInitiation, TransferTerms};
use crate::ciba::types::BindingMessage;
use crate::display_text::DisplayText;
use crate::money::{Currency, MinorUnits};

/// Reference codes avoid characters people confuse (0/O, 1/I/L).
const REFERENCE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const REFERENCE_LENGTH: usize = 4;

/// One account as the holder will recognise it on their device.
#[derive(Debug, Clone)]
pub struct AccountLabel {
    pub id: String,
    pub masked_number: String,
}

#[derive(Debug, Clone)]
pub struct TransferIntent {
    /// `int_…`: unique per transfer; the bank's `Idempotency-Key` and the approval's `intentId`.
    pub id: String,
    /// Shown on the device and in progress messages so the holder can match phone and chat.
    pub reference: String,
    pub from: AccountLabel,
    pub to: AccountLabel,
    pub amount: MinorUnits,
    pub currency: Currency,
    /// Checked and in NFC before it is bound (see [`DisplayText`]).
    pub memo: Option<String>,
}

impl TransferIntent {
    pub fn new(
        from: AccountLabel,
        to: AccountLabel,
        amount: MinorUnits,
        currency: Currency,
        memo: Option<DisplayText>,
    ) -> Self {
        Self {
            id: format!("int_{}", uuid::Uuid::new_v4().simple()),
            reference: new_reference(),
            from,
            to,
            amount,
            currency,
            memo: memo.map(DisplayText::into_string),
        }
    }

    /// `Transfer 25.00 USD CHK-4821 to SAV-9012 #K7Q2`, within the 64 portable characters.
    pub fn binding_message(&self) -> BindingMessage {
        let label = |account: &AccountLabel| {
            let masked: String = BindingMessage::sanitize(&account.masked_number).chars().take(12).collect();
            if masked.is_empty() { BindingMessage::sanitize(&account.id).chars().take(12).collect() } else { masked }
        };
        let text = format!(
            "Transfer {} {} {} to {} #{}",
            self.amount,
            self.currency,
            label(&self.from),
            label(&self.to),
            self.reference
        );
        BindingMessage::new(&text).unwrap_or_else(|_| {
            // Only an absurd amount could overflow 64 characters; the reference alone still binds.
            BindingMessage::new(&format!("Transfer {} #{}", self.currency, self.reference)).expect("short and portable")
        })
    }

    pub fn terms(&self) -> TransferTerms<'_> {
        TransferTerms {
            from_account_id: &self.from.id,
            to_account_id: &self.to.id,
            amount: self.amount,
            currency: self.currency,
            memo: self.memo.as_deref(),
            intent_id: &self.id,
        }
    }

    pub fn authorization_details(&self) -> serde_json::Value {
        serde_json::json!([PaymentInitiation::for_transfer(&self.terms())])
    }
}

fn new_reference() -> String {
    let mut bytes = [0u8; REFERENCE_LENGTH];
    crate::secrets::fill_random(&mut bytes);
    bytes.iter().map(|b| REFERENCE_ALPHABET[*b as usize % REFERENCE_ALPHABET.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(amount: i64) -> TransferIntent {
        TransferIntent::new(
            AccountLabel { id: "acc_alice_chk".into(), masked_number: "CHK-4821".into() },
            AccountLabel { id: "acc_bob_sav".into(), masked_number: "••••/9012".into() },
            MinorUnits(amount),
            "USD".parse().unwrap(),
            None,
        )
    }

    #[test]
    fn the_binding_message_names_amount_accounts_and_reference() {
        let intent = intent(2500);
        let message = intent.binding_message();
        assert_eq!(message.as_str(), format!("Transfer 25.00 USD CHK-4821 to 9012 #{}", intent.reference));
        assert!(intent.reference.bytes().all(|b| REFERENCE_ALPHABET.contains(&b)));
    }

    #[test]
    fn every_intent_has_its_own_id_and_reference() {
        let (a, b) = (intent(1), intent(1));
        assert_ne!(a.id, b.id);
        assert!(a.id.starts_with("int_"));
    }

    #[test]
    fn the_binding_message_always_fits() {
        let message = intent(i64::MAX).binding_message();
        assert!(message.as_str().chars().count() <= BindingMessage::MAX_CHARS);
    }
}
