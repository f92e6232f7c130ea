//! `GET /api/users/{sub}/accounts`: a user's accounts, and `GET /api/accounts/{id}`: any account as a
//! payer may see it (no balance, no owner), both for holders of `read:accounts`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::Bearer;
use super::ledger::Account;
use super::problem::ApiError;
use crate::money::MinorUnits;
use crate::scopes::READ_ACCOUNTS;

#[derive(Debug, Serialize, Deserialize)]
pub struct AccountList {
    pub accounts: Vec<AccountView>,
}

/// An account as the API shows it; amounts are exact decimal strings.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub masked_number: String,
    pub currency: String,
    pub balance: String,
    /// What can be transferred now; equal to `balance` until holds exist.
    pub available_balance: String,
}

impl From<Account> for AccountView {
    fn from(account: Account) -> Self {
        let balance = MinorUnits(account.balance_minor).to_decimal_string();
        Self {
            id: account.id,
            name: account.name,
            kind: account.kind,
            masked_number: account.masked_number,
            currency: account.currency,
            available_balance: balance.clone(),
            balance,
        }
    }
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    bearer: Bearer,
    Path(subject): Path<String>,
) -> Result<Json<AccountList>, ApiError> {
    bearer.with_scope(READ_ACCOUNTS)?;
    let accounts = state
        .ledger
        .accounts_of(&subject)
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_user", format!("there is no user {subject:?}")))?;
    Ok(Json(AccountList { accounts: accounts.into_iter().map(AccountView::from).collect() }))
}

/// An account as a payer sees it before sending money: enough to check it exists and its currency.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PayeeView {
    pub id: String,
    pub name: String,
    pub masked_number: String,
    pub currency: String,
}

pub async fn payee(
    State(state): State<Arc<AppState>>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<Json<PayeeView>, ApiError> {
    bearer.with_scope(READ_ACCOUNTS)?;
    let account = state
        .ledger
        .account(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_account", format!("there is no account {id:?}")))?;
    Ok(Json(PayeeView {
        id: account.id,
        name: account.name,
        masked_number: account.masked_number,
        currency: account.currency,
    }))
}
