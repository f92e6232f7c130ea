//! Where intents are kept: SQLite in the data directory (`mcp.sqlite`, readable by its owner only,
//! [`crate::data_dir`], because an executing intent holds the approval's token), or one PostgreSQL
//! database shared by every `bankguard serve` replica (`mcp.store_url`, [`postgres`]).
//!
//! Every change of state goes through [`IntentStore::apply`], which runs [`transition`] and writes
//! the result as a compare-and-set on the intent's `version`: two processes (or a runner and a
//! cancelling tool call) can never both move the same intent. Leases are one heartbeat per server
//! process in `runners`; [`IntentStore::claim_stale`] hands the open intents of a silent runner to
//! another, bumping their version so the silent one can no longer write.
//!
//! Both stores run the same statements (sqlx binds `$1 …` on SQLite too) but for the few places
//! where PostgreSQL serves several processes: a per-holder lock around the pending limit, `FOR
//! UPDATE SKIP LOCKED` when claiming, the database's clock for heartbeats, and `LISTEN/NOTIFY`,
//! which carries changes of status, pings and hand-backs to every replica ([`StoreEvent`]).
//!
//! [`IntentStore::create`] and [`IntentStore::apply`] append the change's audit entry
//! ([`crate::mcp::lifecycle::audit`]) in the same transaction as the change itself ([`audit`]): a
//! transition without its entry, or an entry without its transition, cannot be committed.

mod postgres;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OnceCell, broadcast, watch};

use self::audit::AuditAppend;
use self::consent::SealReceipt;
use super::audit::AuditDraft;
use super::state::{Event, IntentState, NoTransition, Status, transition};
use crate::clock::{Clock, Millis};
use crate::mcp::holder::Holder;
use crate::mcp::intent::{AccountLabel, TransferIntent};
use crate::mcp::policy::{self, Refusal, Rules, Usage};
use crate::mcp::server_key::ServerKey;
use crate::money::MinorUnits;
use crate::sqlite::{BEGIN_WRITE, Database, DatabaseError};

pub use postgres::PostgresLocation;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mcp");

/// The MCP server's file inside the data directory.
pub const DATABASE_FILE: &str = "mcp.sqlite";

/// A server process that drives intents, by its id in `runners`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunnerId(pub String);

impl RunnerId {
    pub fn new() -> Self {
        Self(format!("run_{}", uuid::Uuid::new_v4().simple()))
    }
}

impl Default for RunnerId {
    fn default() -> Self {
        Self::new()
    }
}

/// One intent as stored: its terms, who it belongs to, where it is, and who drives it.
#[derive(Debug, Clone)]
pub struct StoredIntent {
    pub terms: TransferIntent,
    /// The holder's user id at the bank.
    pub owner: String,
    /// The holder's subject at the provider, when it is not `owner`.
    pub holder_subject: Option<String>,
    pub idempotency_key: Option<String>,
    pub fingerprint: String,
    pub state: IntentState,
    pub version: i64,
    pub runner: Option<String>,
    pub created_at: Millis,
    /// Ping mode: the SHA-256 of the notification token sent with the approval request, so a ping
    /// to any replica finds the wait, and a runner that takes the intent over still hears it.
    pub ping_digest: Option<PingDigest>,
    /// What the money policy's limits left when the intent was recorded, if any counted.
    pub policy_note: Option<String>,
    /// Once completed: the server's signed receipt ([`crate::mcp::consent::receipt`]).
    pub server_receipt: Option<String>,
    /// The MCP client that asked for the transfer ([`Holder::client`]).
    pub client: Option<String>,
}

/// The SHA-256 of a CIBA `client_notification_token`.
pub type PingDigest = [u8; 32];

impl StoredIntent {
    pub fn id(&self) -> &str {
        &self.terms.id
    }

    pub fn status(&self) -> Status {
        self.state.status()
    }

    /// The holder's subject at the provider: the one whose device is asked.
    pub fn subject(&self) -> &str {
        self.holder_subject.as_deref().unwrap_or(&self.owner)
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    owner: String,
    holder_subject: Option<String>,
    idempotency_key: Option<String>,
    request_fingerprint: String,
    reference: String,
    from_account_id: String,
    from_label: String,
    to_account_id: String,
    to_label: String,
    amount_minor: i64,
    currency: String,
    memo: Option<String>,
    state: String,
    version: i64,
    runner: Option<String>,
    created_at_ms: i64,
    ping_digest: Option<Vec<u8>>,
    policy_note: Option<String>,
    server_receipt: Option<String>,
    client: Option<String>,
}

impl Row {
    fn into_intent(self) -> Result<StoredIntent, StoreError> {
        let unreadable = |what: &str| StoreError::Unreadable { id: self.id.clone(), what: what.to_owned() };
        let state: IntentState = serde_json::from_str(&self.state).map_err(|_| unreadable("state"))?;
        let currency = self.currency.parse().map_err(|_| unreadable("currency"))?;
        Ok(StoredIntent {
            terms: TransferIntent {
                id: self.id,
                reference: self.reference,
                from: AccountLabel { id: self.from_account_id, masked_number: self.from_label },
                to: AccountLabel { id: self.to_account_id, masked_number: self.to_label },
                amount: MinorUnits(self.amount_minor),
                currency,
                memo: self.memo,
            },
            owner: self.owner,
            holder_subject: self.holder_subject,
            idempotency_key: self.idempotency_key,
            fingerprint: self.request_fingerprint,
            state,
            version: self.version,
            runner: self.runner,
            created_at: Millis(self.created_at_ms),
            ping_digest: self.ping_digest.and_then(|digest| digest.try_into().ok()),
            policy_note: self.policy_note,
            server_receipt: self.server_receipt,
            client: self.client,
        })
    }
}

/// What a new intent must pass to be recorded.
#[derive(Debug, Clone, Copy)]
pub struct Admission<'a> {
    /// The most approval requests one holder may have waiting at once.
    pub max_pending: usize,
    /// The holder's money policy, whose limits on recent use are checked as the intent is recorded.
    pub rules: Option<&'a Rules>,
}

impl Admission<'_> {
    /// Only the pending limit.
    pub fn pending_at_most(max_pending: usize) -> Self {
        Self { max_pending, rules: None }
    }
}

/// A holder's use in the policy's windows: `$1` owner, `$2` currency, `$3` a day ago, `$4` an hour ago.
/// Transfers that moved money, or still may, count toward the day; every request toward the hour.
const USAGE: &str = "SELECT
        CAST(COALESCE(SUM(CASE WHEN currency = $2 AND status NOT IN ('denied', 'expired', 'cancelled', 'failed')
                          THEN amount_minor ELSE 0 END), 0) AS BIGINT) AS day_total,
        COUNT(CASE WHEN currency = $2 AND status NOT IN ('denied', 'expired', 'cancelled', 'failed')
                   THEN 1 END) AS day_count,
        MIN(CASE WHEN currency = $2 AND status NOT IN ('denied', 'expired', 'cancelled', 'failed')
                 THEN created_at_ms END) AS day_oldest,
        COUNT(CASE WHEN created_at_ms >= $4 THEN 1 END) AS hour_requests,
        MIN(CASE WHEN created_at_ms >= $4 THEN created_at_ms END) AS hour_oldest
    FROM transfer_intents WHERE owner = $1 AND created_at_ms >= $3";

#[derive(sqlx::FromRow)]
struct UsageRow {
    day_total: i64,
    day_count: i64,
    day_oldest: Option<i64>,
    hour_requests: i64,
    hour_oldest: Option<i64>,
}

impl UsageRow {
    fn into_usage(self) -> Usage {
        let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        Usage {
            day_total: MinorUnits(self.day_total),
            day_count: count(self.day_count),
            day_oldest: self.day_oldest.map(Millis),
            hour_requests: count(self.hour_requests),
            hour_oldest: self.hour_oldest.map(Millis),
        }
    }
}

/// What a caller's `idempotency_key` already stands for.
#[derive(Debug)]
pub enum Claim {
    /// The key is new (or there was none): this call created the intent.
    Created(StoredIntent),
    /// The key was used before with the same terms: follow that intent.
    Existing(StoredIntent),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Open(#[from] DatabaseError),
    #[error("cannot open the transfer intent store: {0}")]
    Postgres(String),
    #[error("the transfer intent store failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot make {path} private: {source}")]
    Permissions { path: String, source: std::io::Error },
    #[error("idempotency_key {0:?} was already used for a different transfer")]
    KeyReused(String),
    #[error("audit entry {seq} is unreadable: {what}")]
    AuditUnreadable { seq: i64, what: String },
    #[error("the stored transfer intent {id} has an unreadable {what}")]
    Unreadable { id: String, what: String },
    #[error(
        "the transfer intent store is at migration {applied}, and this build needs {known}: run `bankguard migrate`"
    )]
    NotMigrated { applied: i64, known: i64 },
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the transfer intent {0} is not in the store")]
    Missing(String),
    #[error(
        "The account holder already has {limit} approval request(s) waiting on their device, the most allowed at \
         once. Nothing was sent for this transfer: wait until they approve, decline or let one expire (see \
         get_transfer_status), then ask again."
    )]
    TooManyPending { limit: usize },
}

/// Why [`IntentStore::apply`] did not write.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Someone else changed the intent first; here is how it stands now.
    #[error("the intent changed meanwhile")]
    Conflict(Box<StoredIntent>),
    #[error(transparent)]
    NoTransition(#[from] NoTransition),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ApplyError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

/// Where the intent store lives.
#[derive(Debug, Clone)]
pub enum StoreLocation {
    /// `mcp.sqlite` in this data directory: one machine.
    Sqlite(PathBuf),
    /// One PostgreSQL database shared by every replica.
    Postgres(Box<PostgresLocation>),
}

/// Something another process did that this one should act on (PostgreSQL only: SQLite serves one
/// machine, where each process hears its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// A ping for this notification token reached another replica.
    Pinged(PingDigest),
    /// A runner stopped and handed its open intents back: they can be claimed now.
    HandedBack,
    /// Notifications may have been missed (the listening connection dropped, or this process fell
    /// behind): whatever they would have said is found by looking again.
    Missed,
}

/// The database under the store, with the statements that differ.
enum Backend {
    Sqlite(Database),
    Postgres(postgres::Shared),
}

/// Runs `$body` with `$pool` bound to the backend's pool for `$which` (`writer` or `reader`); the
/// body is type-checked once per database, so one statement text serves both.
macro_rules! with_pool {
    ($backend:expr, $which:ident, |$pool:ident| $body:expr) => {
        match $backend {
            Backend::Sqlite(db) => {
                let $pool = &db.$which;
                $body
            }
            Backend::Postgres(shared) => {
                let $pool = &shared.pool;
                $body
            }
        }
    };
}

mod audit;
mod consent;

pub use consent::{ConsentRecord, ConsentRow};

pub struct IntentStore {
    location: StoreLocation,
    backend: OnceCell<Backend>,
    clock: Clock,
    /// A signal per followed intent; watchers wake on every change of status (this process's, and
    /// on PostgreSQL every replica's).
    signals: Arc<Signals>,
    events: broadcast::Sender<StoreEvent>,
    /// Signs heads of the audit chain; without it, entries are still chained but no head is signed.
    server_key: Option<Arc<ServerKey>>,
}

impl IntentStore {
    pub fn new(location: StoreLocation, clock: Clock) -> Self {
        Self {
            location,
            backend: OnceCell::new(),
            clock,
            signals: Arc::default(),
            events: broadcast::channel(1024).0,
            server_key: None,
        }
    }

    /// SQLite in `data_dir`.
    pub fn in_data_dir(data_dir: PathBuf, clock: Clock) -> Self {
        Self::new(StoreLocation::Sqlite(data_dir.join(DATABASE_FILE)), clock)
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Whether several processes on several machines may share this store.
    pub fn is_shared(&self) -> bool {
        matches!(self.location, StoreLocation::Postgres(_))
    }

    async fn backend(&self) -> Result<&Backend, StoreError> {
        self.backend
            .get_or_try_init(|| async {
                match &self.location {
                    StoreLocation::Sqlite(path) => {
                        if let Some(dir) = path.parent() {
                            crate::data_dir::prepare(dir).map_err(|source| StoreError::Permissions {
                                path: dir.display().to_string(),
                                source,
                            })?;
                        }
                        Ok(Backend::Sqlite(Database::open(path, &MIGRATIONS).await?))
                    }
                    StoreLocation::Postgres(location) => Ok(Backend::Postgres(
                        postgres::Shared::open(location, self.signals.clone(), self.events.clone()).await?,
                    )),
                }
            })
            .await
    }

    /// Opens the store now, applying its migrations (so a bad location is reported at start, not
    /// at the first call).
    pub async fn open(&self) -> Result<(), StoreError> {
        self.backend().await?;
        self.register_server_key().await
    }

    /// Applies the migrations this build knows and returns how many the store now holds.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let applied: i64 = with_pool!(self.backend().await?, writer, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(pool).await?
        });
        Ok(usize::try_from(applied).unwrap_or_default())
    }

    /// Closes the database connections (and on PostgreSQL stops listening); calls after this fail.
    pub async fn close(&self) {
        match self.backend.get() {
            Some(Backend::Sqlite(db)) => {
                db.writer.close().await;
                db.reader.close().await;
            }
            Some(Backend::Postgres(shared)) => shared.close().await,
            None => {}
        }
    }

    /// What other replicas did that this process should act on (see [`StoreEvent`]).
    pub fn events(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    /// Whether the store answers now and holds every migration this build knows (for `/readyz`).
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        let backend = self.backend().await?;
        let applied: Option<i64> = with_pool!(backend, reader, |pool| {
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(pool).await?
        });
        let migrator = match backend {
            Backend::Sqlite(_) => &MIGRATIONS,
            Backend::Postgres(_) => &postgres::MIGRATIONS,
        };
        let known = migrator.iter().map(|migration| migration.version).max();
        match known {
            Some(known) if applied.unwrap_or(0) < known => {
                Err(StoreError::NotMigrated { applied: applied.unwrap_or(0), known })
            }
            _ => Ok(()),
        }
    }

    /// How many intents are open now, by status, whichever runner drives them (for `/metrics`).
    pub async fn open_counts(&self) -> Result<Vec<(Status, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self.backend().await?, reader, |pool| {
            sqlx::query_as(
                "SELECT status, COUNT(*) FROM transfer_intents WHERE status IN ($1, $2, $3, $4) GROUP BY status",
            )
            .bind(Status::OPEN[0].as_str())
            .bind(Status::OPEN[1].as_str())
            .bind(Status::OPEN[2].as_str())
            .bind(Status::OPEN[3].as_str())
            .fetch_all(pool)
            .await?
        });
        Ok(Status::OPEN
            .iter()
            .map(|status| {
                let count = rows.iter().find(|(name, _)| name == status.as_str()).map_or(0, |(_, count)| *count);
                (*status, count)
            })
            .collect())
    }

    /// The owner's intent with this id, if any.
    pub async fn get(&self, owner: &str, id: &str) -> Result<Option<StoredIntent>, StoreError> {
        let row: Option<Row> = with_pool!(self.backend().await?, reader, |pool| {
            sqlx::query_as("SELECT * FROM transfer_intents WHERE id = $1 AND owner = $2")
                .bind(id)
                .bind(owner)
                .fetch_optional(pool)
                .await?
        });
        row.map(Row::into_intent).transpose()
    }

    /// The intent with this id, read through the writer (so it sees this process's last write).
    pub async fn reload(&self, id: &str) -> Result<StoredIntent, StoreError> {
        self.find(id).await?.ok_or_else(|| StoreError::Missing(id.to_owned()))
    }

    /// The intent with this id, whoever owns it, if there is one (read through the writer).
    pub async fn find(&self, id: &str) -> Result<Option<StoredIntent>, StoreError> {
        let row: Option<Row> = with_pool!(self.backend().await?, writer, |pool| {
            sqlx::query_as("SELECT * FROM transfer_intents WHERE id = $1").bind(id).fetch_optional(pool).await?
        });
        row.map(Row::into_intent).transpose()
    }

    /// The owner's intent recorded under `idempotency_key`, checked against `fingerprint`.
    pub async fn by_key(&self, owner: &str, key: &str, fingerprint: &str) -> Result<Option<StoredIntent>, StoreError> {
        let row: Option<Row> = with_pool!(self.backend().await?, writer, |pool| {
            sqlx::query_as("SELECT * FROM transfer_intents WHERE owner = $1 AND idempotency_key = $2")
                .bind(owner)
                .bind(key)
                .fetch_optional(pool)
                .await?
        });
        match row.map(Row::into_intent).transpose()? {
            Some(intent) if intent.fingerprint != fingerprint => Err(StoreError::KeyReused(key.to_owned())),
            other => Ok(other),
        }
    }

    /// Records a new intent in `requesting` for `holder`, driven by `runner`, unless the holder's
    /// `idempotency_key` already names one (then: that one), or the [`Admission`] refuses it: the
    /// holder already has `max_pending` approval requests waiting, or the money policy's limits on
    /// their recent use. Everything is checked in the transaction that records the intent, on
    /// PostgreSQL under a per-holder lock, so concurrent calls cannot overshoot a limit, whichever
    /// replicas they reach.
    pub async fn create(
        &self,
        holder: &Holder,
        idempotency_key: Option<&str>,
        fingerprint: &str,
        terms: &TransferIntent,
        runner: &RunnerId,
        admission: &Admission<'_>,
    ) -> Result<Claim, StoreError> {
        let now = self.clock.now();
        let state = IntentState::Requesting;
        let owner = holder.bank_user.as_str();
        let subject = (holder.subject != holder.bank_user).then_some(holder.subject.as_str());
        let limit = i64::try_from(admission.max_pending).unwrap_or(i64::MAX);
        // What the policy's limits leave after this transfer, recorded with it.
        let mut policy_note: Option<String> = None;
        // The same steps for both databases, in `$tx`: a known key, the policy, then the insert.
        macro_rules! admit_and_insert {
            ($tx:expr) => {{
                if let Some(key) = idempotency_key {
                    let row: Option<Row> =
                        sqlx::query_as("SELECT * FROM transfer_intents WHERE owner = $1 AND idempotency_key = $2")
                            .bind(owner)
                            .bind(key)
                            .fetch_optional(&mut *$tx)
                            .await?;
                    if let Some(existing) = row.map(Row::into_intent).transpose()? {
                        if existing.fingerprint != fingerprint {
                            return Err(StoreError::KeyReused(key.to_owned()));
                        }
                        return Ok(Claim::Existing(existing));
                    }
                }
                if let Some(rules) = admission.rules
                    && rules.counts_usage(terms.currency)
                {
                    let usage: UsageRow = sqlx::query_as(USAGE)
                        .bind(owner)
                        .bind(terms.currency.as_str())
                        .bind(now.minus(policy::DAY).0)
                        .bind(now.minus(policy::HOUR).0)
                        .fetch_one(&mut *$tx)
                        .await?;
                    let applied = rules.admit(terms, &usage.into_usage(), now).map_err(StoreError::Refused)?;
                    policy_note = (!applied.is_empty()).then(|| applied.join("; "));
                }
                sqlx::query(
                    "INSERT INTO transfer_intents (id, owner, holder_subject, idempotency_key, request_fingerprint,
                         reference, from_account_id, from_label, to_account_id, to_label, amount_minor, currency, memo,
                         status, state, version, runner, created_at_ms, updated_at_ms, policy_note, client)
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, $16, $17, $17, $21, $22
                     WHERE (SELECT COUNT(*) FROM transfer_intents WHERE owner = $2 AND status IN ($18, $19)) < $20",
                )
                .bind(&terms.id)
                .bind(owner)
                .bind(subject)
                .bind(idempotency_key)
                .bind(fingerprint)
                .bind(&terms.reference)
                .bind(&terms.from.id)
                .bind(&terms.from.masked_number)
                .bind(&terms.to.id)
                .bind(&terms.to.masked_number)
                .bind(terms.amount.0)
                .bind(terms.currency.as_str())
                .bind(&terms.memo)
                .bind(state.status().as_str())
                .bind(serde_json::to_string(&state).expect("a state serialises"))
                .bind(&runner.0)
                .bind(now.0)
                .bind(Status::Requesting.as_str())
                .bind(Status::Pending.as_str())
                .bind(limit)
                .bind(&policy_note)
                .bind(&holder.client)
                .execute(&mut *$tx)
                .await?
                .rows_affected()
            }};
        }
        let draft = AuditDraft::created(holder, terms);
        let clock = now;
        let inserted = match self.backend().await? {
            Backend::Sqlite(db) => {
                // The one writer connection, holding the write lock from the first statement.
                let mut tx = db.writer.begin_with(BEGIN_WRITE).await?;
                let inserted = admit_and_insert!(tx);
                if inserted == 1 {
                    tx.append_audit(draft, clock).await?;
                }
                tx.commit().await?;
                inserted
            }
            Backend::Postgres(shared) => {
                let mut tx = shared.pool.begin().await?;
                postgres::lock_holder(&mut tx, owner).await?;
                let inserted = admit_and_insert!(tx);
                if inserted == 1 {
                    tx.append_audit(draft, clock).await?;
                }
                tx.commit().await?;
                inserted
            }
        };
        if inserted == 0 {
            return Err(StoreError::TooManyPending { limit: admission.max_pending });
        }
        let intent = self.reload(&terms.id).await?;
        self.signals.signal(intent.id(), intent.status());
        Ok(Claim::Created(intent))
    }

    /// Moves `intent` by `event`, if it is still as the caller last saw it (same version).
    pub async fn apply(&self, intent: &StoredIntent, event: Event) -> Result<StoredIntent, ApplyError> {
        let now = self.clock.now();
        let next = transition(&intent.state, event.clone(), now)?;
        // Built from the terms and the event, never from the state (which may hold a token).
        let draft = AuditDraft::transition(intent, &event, &next);
        // The same statement for both databases, built for each.
        macro_rules! update {
            () => {
                sqlx::query(
                    "UPDATE transfer_intents SET status = $1, state = $2, version = version + 1, updated_at_ms = $3
                     WHERE id = $4 AND version = $5",
                )
                .bind(next.status().as_str())
                .bind(serde_json::to_string(&next).expect("a state serialises"))
                .bind(now.0)
                .bind(intent.id())
                .bind(intent.version)
            };
        }
        // The transition, its audit entry and (for a completion) the signed receipt commit together
        // or not at all. On PostgreSQL a trigger announces the new status to every replica when this
        // commits.
        let key = self.server_key.as_deref();
        let mut receipt = None;
        let updated = match self.backend().await? {
            Backend::Sqlite(db) => {
                let mut tx = db.writer.begin_with(BEGIN_WRITE).await?;
                let updated = update!().execute(&mut *tx).await?.rows_affected();
                if updated == 1 {
                    let entry = tx.append_audit(draft, now).await?;
                    receipt = tx.seal_receipt(key, intent, &next, &entry, now).await?;
                    tx.commit().await?;
                }
                updated
            }
            Backend::Postgres(shared) => {
                let mut tx = shared.pool.begin().await?;
                let updated = update!().execute(&mut *tx).await?.rows_affected();
                if updated == 1 {
                    let entry = tx.append_audit(draft, now).await?;
                    receipt = tx.seal_receipt(key, intent, &next, &entry, now).await?;
                    tx.commit().await?;
                }
                updated
            }
        };
        if updated == 0 {
            return Err(ApplyError::Conflict(Box::new(self.reload(intent.id()).await?)));
        }
        let status = next.status();
        self.signals.signal(intent.id(), status);
        Ok(StoredIntent {
            state: next,
            version: intent.version + 1,
            server_receipt: receipt.or_else(|| intent.server_receipt.clone()),
            ..intent.clone()
        })
    }

    /// Applies `event` to the intent as it stands now, retrying on conflicts; for events any process
    /// may cause (a cancellation).
    pub async fn apply_latest(&self, id: &str, event: Event) -> Result<StoredIntent, ApplyError> {
        loop {
            let current = self.reload(id).await?;
            match self.apply(&current, event.clone()).await {
                Err(ApplyError::Conflict(_)) => continue,
                other => return other,
            }
        }
    }

    /// Remembers the notification token sent with `intent_id`'s approval request (by its digest;
    /// not a transition: the version stays).
    pub async fn record_ping_digest(&self, intent_id: &str, digest: &PingDigest) -> Result<(), StoreError> {
        with_pool!(self.backend().await?, writer, |pool| {
            sqlx::query("UPDATE transfer_intents SET ping_digest = $1 WHERE id = $2")
                .bind(digest.as_slice())
                .bind(intent_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// A ping this process has no wait for: on PostgreSQL, if an open intent was requested with
    /// that token, every replica is told (the one waiting polls at once) and this returns true.
    /// On SQLite there is no other replica to tell: false.
    pub async fn forward_ping(&self, digest: &PingDigest) -> Result<bool, StoreError> {
        match self.backend().await? {
            Backend::Sqlite(_) => Ok(false),
            Backend::Postgres(shared) => shared.forward_ping(digest).await,
        }
    }

    /// Records that `runner` is alive (inserting it on first call).
    pub async fn heartbeat(&self, runner: &RunnerId) -> Result<(), StoreError> {
        match self.backend().await? {
            Backend::Sqlite(db) => {
                sqlx::query(
                    "INSERT INTO runners (id, started_at_ms, heartbeat_at_ms) VALUES ($1, $2, $2)
                     ON CONFLICT (id) DO UPDATE SET heartbeat_at_ms = excluded.heartbeat_at_ms",
                )
                .bind(&runner.0)
                .bind(self.clock.now().0)
                .execute(&db.writer)
                .await?;
            }
            Backend::Postgres(shared) => shared.heartbeat(runner).await?,
        }
        Ok(())
    }

    /// Removes `runner`'s heartbeat and releases its open intents, so another runner takes them at
    /// once instead of waiting for the heartbeat to go stale (on PostgreSQL every replica is told).
    pub async fn retire(&self, runner: &RunnerId) -> Result<(), StoreError> {
        with_pool!(self.backend().await?, writer, |pool| {
            sqlx::query(
                "UPDATE transfer_intents SET runner = NULL, version = version + 1
                 WHERE runner = $1 AND status IN ($2, $3, $4, $5)",
            )
            .bind(&runner.0)
            .bind(Status::OPEN[0].as_str())
            .bind(Status::OPEN[1].as_str())
            .bind(Status::OPEN[2].as_str())
            .bind(Status::OPEN[3].as_str())
            .execute(pool)
            .await?;
            sqlx::query("DELETE FROM runners WHERE id = $1").bind(&runner.0).execute(pool).await?.rows_affected()
        });
        Ok(())
    }

    /// The open intents whose runner is gone (no heartbeat since `stale_after` ago, or none at
    /// all), of `owner` or of every holder, each claimed for `runner`. Claiming bumps the version,
    /// so the old runner's writes fail from now on; on PostgreSQL, replicas claiming at once skip
    /// each other's rows, so each intent goes to one of them.
    pub async fn claim_stale(
        &self,
        owner: Option<&str>,
        runner: &RunnerId,
        stale_after: Duration,
    ) -> Result<Vec<StoredIntent>, StoreError> {
        let rows: Vec<Row> = match self.backend().await? {
            Backend::Sqlite(db) => {
                let alive_since = self.clock.now().minus(stale_after).0;
                sqlx::query_as(
                    "UPDATE transfer_intents SET runner = $1, version = version + 1
                     WHERE ($2 IS NULL OR owner = $2) AND status IN ($4, $5, $6, $7)
                       AND (runner IS NULL OR runner <> $1)
                       AND (runner IS NULL OR runner NOT IN (SELECT id FROM runners WHERE heartbeat_at_ms >= $3))
                     RETURNING *",
                )
                .bind(&runner.0)
                .bind(owner)
                .bind(alive_since)
                .bind(Status::OPEN[0].as_str())
                .bind(Status::OPEN[1].as_str())
                .bind(Status::OPEN[2].as_str())
                .bind(Status::OPEN[3].as_str())
                .fetch_all(&db.writer)
                .await?
            }
            Backend::Postgres(shared) => shared.claim_stale(owner, runner, stale_after).await?,
        };
        rows.into_iter().map(Row::into_intent).collect()
    }

    /// A receiver that sees this intent's changes of status from now on (made in this process, or
    /// on PostgreSQL in any replica); read the intent again after subscribing to see those made before.
    pub fn watch(&self, id: &str, current: Status) -> watch::Receiver<Status> {
        self.signals.watch(id, current)
    }
}

/// The intents someone follows, each with the channel its followers wait on.
#[derive(Default)]
pub(crate) struct Signals {
    live: Mutex<HashMap<String, watch::Sender<Status>>>,
}

impl Signals {
    fn watch(&self, id: &str, current: Status) -> watch::Receiver<Status> {
        let mut live = self.live.lock().expect("intent signals");
        live.entry(id.to_owned()).or_insert_with(|| watch::channel(current).0).subscribe()
    }

    /// Wakes this intent's watchers, if it has any: an intent nobody follows costs nothing here
    /// (a follower re-reads the store after subscribing, so it misses no change made before).
    fn signal(&self, id: &str, status: Status) {
        let mut live = self.live.lock().expect("intent signals");
        let Some(sender) = live.get(id) else { return };
        sender.send_replace(status);
        if status.is_final() || sender.receiver_count() == 0 {
            // Receivers already subscribed still see the final value.
            live.remove(id);
        }
    }
}
#[cfg(test)]
mod tests;
