//! The reference bank API: a protected resource server over a real SQLite ledger.
//!
//! It is the last line of defence of the whole product: whatever the MCP server or a model does,
//! money moves only on a request bearing an access token that this module verifies itself (see
//! [`token`]) and that approves exactly that transfer (see [`transfers`]). It shares no code path
//! with the client side; the two meet only over HTTP, as they would with a real bank.
//!
//! | route | needs |
//! |---|---|
//! | `GET /api/users/{sub}/accounts` | `read:accounts` |
//! | `GET /api/accounts/{id}` (a payee: name, masked number, currency) | `read:accounts` |
//! | `POST /api/transfers` | `create:transfer`, owner `sub`, matching `authorization_details`, unused `jti`, `Idempotency-Key` |
//! | `GET /api/transfers/{id}` | the owner's token, or `read:accounts` |
//! | `GET /api/users/{sub}/idempotency-keys/{key}` (what was answered under a key: executed, refused, or 404 nothing) | `sub`'s own token, or `read:accounts` |

mod accounts;
mod extract;
mod idempotency;
pub mod jwks;
pub mod ledger;
mod problem;
pub mod token;
mod transfers;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

pub use accounts::{AccountList, AccountView};
pub use idempotency::MAX_IDEMPOTENCY_KEY_LEN;
pub use ledger::{Ledger, LedgerError, TransferView};
pub use transfers::{MAX_MEMO_CHARS, REPLAYED_HEADER};

use crate::config::{BankApiConfig, Config};
use crate::devstack::seed;
use crate::money::MinorUnits;
use token::{Expectations, TokenVerifier};

/// What every request handler shares.
pub struct AppState {
    ledger: Ledger,
    verifier: TokenVerifier,
    max_transfer: MinorUnits,
    require_transaction_binding: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BankApiError {
    #[error("cannot create the data directory {path} or make it private: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// The bank API, ready to serve.
pub struct BankApi {
    state: Arc<AppState>,
}

impl BankApi {
    /// Opens (and on first start creates and seeds) the ledger in the data directory; accepts tokens
    /// from `issuer`.
    pub async fn open(config: &Config, issuer: &str) -> Result<Self, BankApiError> {
        crate::data_dir::prepare(&config.data_dir)
            .map_err(|source| BankApiError::DataDir { path: config.data_dir.display().to_string(), source })?;
        let ledger = Ledger::open(&config.data_dir, seed::USERS).await?;
        Self::with_ledger(&config.bank_api, issuer, ledger)
    }

    fn with_ledger(config: &BankApiConfig, issuer: &str, ledger: Ledger) -> Result<Self, BankApiError> {
        // The bank only ever calls the issuer (discovery and JWKS).
        let http = crate::http_client::builder_for([issuer]).build()?;
        let expected = Expectations {
            issuer: issuer.to_owned(),
            audience: config.audience.clone(),
            require_at_jwt_typ: config.require_at_jwt_typ,
            accepted_client_ids: config.accepted_client_ids.clone(),
        };
        let verifier = TokenVerifier::new(expected, http, Duration::from_secs(config.jwks_refetch_interval_seconds));
        let state = AppState {
            ledger,
            verifier,
            max_transfer: config.max_transfer(),
            require_transaction_binding: config.require_transaction_binding,
        };
        Ok(Self { state: Arc::new(state) })
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/users/{sub}/accounts", get(accounts::list))
            .route("/api/accounts/{id}", get(accounts::payee))
            .route("/api/transfers", post(transfers::create))
            .route("/api/transfers/{id}", get(transfers::get))
            .route("/api/users/{sub}/idempotency-keys/{key}", get(idempotency::lookup))
            .with_state(self.state.clone())
    }
}
