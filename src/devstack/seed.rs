//! The demo people and their accounts: one seed, the single source of truth for the bank API's
//! ledger and (from the authorization server on) the identity provider's users.
//!
//! Subjects and account ids are stable across machines so that docs, examples and tests can name them.

/// A person who can hold accounts and approve transfers.
#[derive(Debug, Clone, Copy)]
pub struct SeedUser {
    pub subject: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub accounts: &'static [SeedAccount],
}

/// An account opened on first start with an opening balance.
#[derive(Debug, Clone, Copy)]
pub struct SeedAccount {
    pub id: &'static str,
    pub name: &'static str,
    pub kind: AccountKind,
    pub masked_number: &'static str,
    pub currency: &'static str,
    /// A decimal string in the account's currency.
    pub opening_balance: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    Checking,
    Savings,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Checking => "checking",
            Self::Savings => "savings",
        }
    }
}

pub const USERS: &[SeedUser] = &[
    SeedUser {
        subject: "alice",
        name: "Alice Martin",
        email: "alice@example.com",
        accounts: &[
            SeedAccount {
                id: "acc_alice_chk",
                name: "Everyday Checking",
                kind: AccountKind::Checking,
                masked_number: "CHK-4821",
                currency: "USD",
                opening_balance: "2500.00",
            },
            SeedAccount {
                id: "acc_alice_sav",
                name: "Rainy Day Savings",
                kind: AccountKind::Savings,
                masked_number: "SAV-7390",
                currency: "USD",
                opening_balance: "12000.00",
            },
            SeedAccount {
                id: "acc_alice_eur",
                name: "Euro Travel",
                kind: AccountKind::Checking,
                masked_number: "CHK-1156",
                currency: "EUR",
                opening_balance: "800.00",
            },
        ],
    },
    SeedUser {
        subject: "bob",
        name: "Bob Okafor",
        email: "bob@example.com",
        accounts: &[
            SeedAccount {
                id: "acc_bob_chk",
                name: "Checking",
                kind: AccountKind::Checking,
                masked_number: "CHK-3307",
                currency: "USD",
                opening_balance: "1200.00",
            },
            SeedAccount {
                id: "acc_bob_sav",
                name: "Savings",
                kind: AccountKind::Savings,
                masked_number: "SAV-9012",
                currency: "USD",
                opening_balance: "5000.00",
            },
        ],
    },
];
