//! The typed HTTP client of the bank API: list a user's accounts, look up an account, make a
//! transfer, and ask what became of a transfer request sent under an `Idempotency-Key`. Client side
//! only; the bank is reached over HTTP exactly as a real one would be.
//!
//! What the bank guarantees, and a caller may rely on: the same key with the same order gets the same
//! outcome (never a second transfer); [`BankClient::request_outcome`] answers executed, refused, or
//! `None` (the bank recorded nothing under the key, so no transfer exists for it). A
//! [`BankError::is_transient`] error says nothing about the transfer: ask again, do not report failure.
//!
//! Tokens are passed in as [`Secret`]s and sent only in the `Authorization` header. Refusals keep the
//! bank's `code` and `detail` (RFC 9457 problem bodies), which never contain the token.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ciba::types::Secret;

/// One of the account holder's accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Account {
    /// The account id to use in transfer_funds.
    pub id: String,
    /// The account's name, e.g. "Everyday Checking".
    pub name: String,
    /// "checking" or "savings".
    #[serde(rename = "type")]
    pub kind: String,
    /// The account number with all but the last digits hidden.
    pub masked_number: String,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The balance as an exact decimal string, e.g. "2500.00".
    pub balance: String,
    /// What can be transferred now, as an exact decimal string.
    pub available_balance: String,
}

/// Any account, as `GET /api/accounts/{id}` describes it to a payer: no balance, no owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payee {
    pub id: String,
    pub name: String,
    pub masked_number: String,
    pub currency: String,
}

/// What `POST /api/transfers` is asked to do.
#[derive(Debug, Clone, Serialize)]
pub struct TransferOrder<'a> {
    pub from_account_id: &'a str,
    pub to_account_id: &'a str,
    pub amount: String,
    pub currency: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memo: Option<&'a str>,
}

/// An executed transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferReceipt {
    pub id: String,
    pub status: String,
    pub from_account_id: String,
    pub to_account_id: String,
    pub amount: String,
    pub currency: String,
    #[serde(default)]
    pub memo: Option<String>,
    pub created_at: String,
    pub from_account_balance_after: String,
}

/// What the bank did with a transfer request sent under an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOutcome {
    /// The transfer was executed; the receipt is the one the transfer request returned.
    Executed(TransferReceipt),
    /// The bank refused the transfer (the refusal the request got); the approval token is spent.
    Refused { status: u16, code: String, detail: String },
}

#[derive(Debug, thiserror::Error)]
pub enum BankError {
    #[error("the bank API at {url} could not be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the bank API refused ({status} {code}): {detail}")]
    Refused { status: u16, code: String, detail: String },
    #[error("the bank API at {url} answered HTTP {status} with an unreadable body")]
    BadResponse { url: String, status: u16 },
}

impl BankError {
    /// Whether the bank may answer differently if asked again: it could not be reached, answered
    /// something unreadable, was overloaded (429) or failed (5xx). Anything else is the bank's answer.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::BadResponse { .. } => true,
            Self::Refused { status, .. } => *status >= 500 || *status == 429,
        }
    }
}

/// The code of the bank's 404 that means "nothing is recorded under this Idempotency-Key".
const UNKNOWN_IDEMPOTENCY_KEY: &str = "unknown_idempotency_key";

#[derive(Deserialize)]
struct Problem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    detail: String,
}

#[derive(Deserialize)]
struct AccountList {
    accounts: Vec<Account>,
}

/// `GET /api/users/{sub}/idempotency-keys/{key}`.
#[derive(Deserialize)]
struct KeyOutcome {
    idempotency_key: String,
    #[serde(flatten)]
    outcome: OutcomeBody,
}

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum OutcomeBody {
    Executed { transfer: TransferReceipt },
    Refused { refusal: RefusalBody },
}

#[derive(Deserialize)]
struct RefusalBody {
    status: u16,
    code: String,
    detail: String,
}

pub struct BankClient {
    /// The API's base URL, e.g. `http://127.0.0.1:4101/api`.
    base: String,
    http: reqwest::Client,
}

impl BankClient {
    pub fn new(base: &str, http: reqwest::Client) -> Self {
        Self { base: base.trim_end_matches('/').to_owned(), http }
    }

    pub async fn accounts(&self, user: &str, token: &Secret) -> Result<Vec<Account>, BankError> {
        let url = format!("{}/users/{}/accounts", self.base, path_segment(user));
        let list: AccountList = self.send(self.http.get(&url).bearer_auth(token.expose()), &url).await?;
        Ok(list.accounts)
    }

    /// The account with `id`, or `None` if the bank has no such account.
    pub async fn payee(&self, id: &str, token: &Secret) -> Result<Option<Payee>, BankError> {
        let url = format!("{}/accounts/{}", self.base, path_segment(id));
        match self.send(self.http.get(&url).bearer_auth(token.expose()), &url).await {
            Ok(payee) => Ok(Some(payee)),
            Err(BankError::Refused { status: 404, .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    pub async fn transfer(
        &self,
        token: &Secret,
        idempotency_key: &str,
        order: &TransferOrder<'_>,
    ) -> Result<TransferReceipt, BankError> {
        let url = format!("{}/transfers", self.base);
        let request =
            self.http.post(&url).bearer_auth(token.expose()).header("Idempotency-Key", idempotency_key).json(order);
        self.send(request, &url).await
    }

    /// What the bank did with `user`'s transfer request sent under `idempotency_key`: `None` exactly
    /// when the bank says it recorded nothing under it (`404 unknown_idempotency_key`). `token` is the
    /// user's own token or one with `read:accounts`.
    pub async fn request_outcome(
        &self,
        user: &str,
        idempotency_key: &str,
        token: &Secret,
    ) -> Result<Option<RequestOutcome>, BankError> {
        let url =
            format!("{}/users/{}/idempotency-keys/{}", self.base, path_segment(user), path_segment(idempotency_key));
        let answer: KeyOutcome = match self.send(self.http.get(&url).bearer_auth(token.expose()), &url).await {
            Ok(answer) => answer,
            Err(BankError::Refused { status: 404, code, .. }) if code == UNKNOWN_IDEMPOTENCY_KEY => return Ok(None),
            Err(other) => return Err(other),
        };
        if answer.idempotency_key != idempotency_key {
            return Err(BankError::BadResponse { url, status: 200 });
        }
        Ok(Some(match answer.outcome {
            OutcomeBody::Executed { transfer } => RequestOutcome::Executed(transfer),
            OutcomeBody::Refused { refusal } => {
                RequestOutcome::Refused { status: refusal.status, code: refusal.code, detail: refusal.detail }
            }
        }))
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder, url: &str) -> Result<T, BankError> {
        let unreachable =
            |e: reqwest::Error| BankError::Unreachable { url: url.to_owned(), reason: crate::http_client::reason(&e) };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|_| BankError::BadResponse { url: url.to_owned(), status: status.as_u16() });
        }
        let problem: Problem = serde_json::from_slice(&body)
            .map_err(|_| BankError::BadResponse { url: url.to_owned(), status: status.as_u16() })?;
        Err(BankError::Refused { status: status.as_u16(), code: problem.code, detail: problem.detail })
    }
}

fn path_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16) -> BankError {
        BankError::Refused { status, code: "x".into(), detail: "x".into() }
    }

    #[test]
    fn only_an_unanswered_or_failing_bank_is_worth_asking_again() {
        assert!(BankError::Unreachable { url: "u".into(), reason: "r".into() }.is_transient());
        assert!(BankError::BadResponse { url: "u".into(), status: 200 }.is_transient());
        assert!(refused(500).is_transient() && refused(503).is_transient() && refused(429).is_transient());
        for status in [400, 401, 403, 404, 409, 422] {
            assert!(!refused(status).is_transient(), "{status}");
        }
    }
}
