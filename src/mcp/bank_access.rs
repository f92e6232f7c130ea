//! The bank as the MCP server uses it: the typed client plus the server's own read token
//! (client-credentials, `read:accounts`), fetched once, cached, and renewed once when the bank
//! refuses it. Transfers use the approval's token instead, which the caller passes in.

use std::sync::Arc;

use crate::bank::{Account, BankClient, BankError, Payee, RequestOutcome, TransferOrder, TransferReceipt};
use crate::ciba::CibaClient;
use crate::ciba::client_credentials::ClientCredentialsCache;
use crate::ciba::types::Secret;
use crate::mcp::tools::ToolFailure;

pub struct BankAccess {
    bank: BankClient,
    ciba: Arc<CibaClient>,
    read_token: ClientCredentialsCache,
}

/// Why the bank could not be asked: the server's own token, or the bank itself.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{0}")]
    Token(#[from] crate::ciba::CibaError),
    #[error("{0}")]
    Bank(#[from] BankError),
}

impl From<AccessError> for ToolFailure {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Token(error) => ToolFailure::Provider(error),
            AccessError::Bank(error) => ToolFailure::Bank(error),
        }
    }
}

impl BankAccess {
    pub fn new(bank: BankClient, ciba: Arc<CibaClient>, read_token: ClientCredentialsCache) -> Self {
        Self { bank, ciba, read_token }
    }

    /// Runs `call` with the read token, and once more with a fresh one if the bank refused it (401).
    async fn with_read_token<T, F, Fut>(&self, call: F) -> Result<T, AccessError>
    where
        F: Fn(Secret) -> Fut,
        Fut: std::future::Future<Output = Result<T, BankError>>,
    {
        let token = self.read_token.token(&self.ciba).await?;
        match call(token).await {
            Err(BankError::Refused { status: 401, .. }) => {
                self.read_token.forget().await;
                let token = self.read_token.token(&self.ciba).await?;
                Ok(call(token).await?)
            }
            other => Ok(other?),
        }
    }

    pub async fn accounts(&self, user: &str) -> Result<Vec<Account>, AccessError> {
        self.with_read_token(|token| async move { self.bank.accounts(user, &token).await }).await
    }

    pub async fn payee(&self, id: &str) -> Result<Option<Payee>, AccessError> {
        self.with_read_token(|token| async move { self.bank.payee(id, &token).await }).await
    }

    /// What the bank recorded under `user`'s `Idempotency-Key`: `None` means nothing, so no transfer.
    pub async fn request_outcome(&self, user: &str, key: &str) -> Result<Option<RequestOutcome>, AccessError> {
        self.with_read_token(|token| async move { self.bank.request_outcome(user, key, &token).await }).await
    }

    /// Sends an approved transfer with the approval's own token.
    pub async fn transfer(
        &self,
        approval_token: &Secret,
        idempotency_key: &str,
        order: &TransferOrder<'_>,
    ) -> Result<TransferReceipt, BankError> {
        self.bank.transfer(approval_token, idempotency_key, order).await
    }
}
