//! Where intents are kept: SQLite in the data directory (`mcp.sqlite`), readable by its owner only
//! ([`crate::data_dir`]) because an executing intent holds the approval's token.
//!
//! Every change of state goes through [`IntentStore::apply`], which runs [`transition`] and writes
//! the result as a compare-and-set on the intent's `version`: two processes (or a runner and a
//! cancelling tool call) can never both move the same intent. Leases are one heartbeat per server
//! process in `runners`; [`IntentStore::claim_stale`] hands the open intents of a silent runner to
//! another, bumping their version so the silent one can no longer write.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{OnceCell, watch};

use super::state::{Event, IntentState, NoTransition, Status, transition};
use crate::clock::{Clock, Millis};
use crate::mcp::holder::Holder;
use crate::mcp::intent::{AccountLabel, TransferIntent};
use crate::money::MinorUnits;
use crate::sqlite::{Database, DatabaseError};

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
}

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
        })
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
    #[error("the transfer intent store failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot make {path} private: {source}")]
    Permissions { path: String, source: std::io::Error },
    #[error("idempotency_key {0:?} was already used for a different transfer")]
    KeyReused(String),
    #[error("the stored transfer intent {id} has an unreadable {what}")]
    Unreadable { id: String, what: String },
    #[error(
        "the transfer intent store is at migration {applied}, and this build needs {known}: run `bankguard migrate`"
    )]
    NotMigrated { applied: i64, known: i64 },
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

pub struct IntentStore {
    path: PathBuf,
    db: OnceCell<Database>,
    clock: Clock,
    /// A signal per intent changed by this process; watchers wake on every change of status.
    live: Mutex<HashMap<String, watch::Sender<Status>>>,
}

impl IntentStore {
    pub fn new(data_dir: PathBuf, clock: Clock) -> Self {
        Self { path: data_dir.join(DATABASE_FILE), db: OnceCell::new(), clock, live: Mutex::new(HashMap::new()) }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    async fn db(&self) -> Result<&Database, StoreError> {
        self.db
            .get_or_try_init(|| async {
                if let Some(dir) = self.path.parent() {
                    crate::data_dir::prepare(dir)
                        .map_err(|source| StoreError::Permissions { path: dir.display().to_string(), source })?;
                }
                Ok(Database::open(&self.path, &MIGRATIONS).await?)
            })
            .await
    }

    /// Opens the store now (so a bad data directory is reported at start, not at the first call).
    pub async fn open(&self) -> Result<(), StoreError> {
        self.db().await.map(|_| ())
    }

    /// Whether the store answers now and holds every migration this build knows (for `/readyz`).
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        let db = self.db().await?;
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(&db.reader).await?;
        let known = MIGRATIONS.iter().map(|migration| migration.version).max();
        match known {
            Some(known) if applied.unwrap_or(0) < known => {
                Err(StoreError::NotMigrated { applied: applied.unwrap_or(0), known })
            }
            _ => Ok(()),
        }
    }

    /// How many intents are open now, by status, whichever runner drives them (for `/metrics`).
    pub async fn open_counts(&self) -> Result<Vec<(Status, i64)>, StoreError> {
        let db = self.db().await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM transfer_intents WHERE status IN ($1, $2, $3, $4) GROUP BY status",
        )
        .bind(Status::OPEN[0])
        .bind(Status::OPEN[1])
        .bind(Status::OPEN[2])
        .bind(Status::OPEN[3])
        .fetch_all(&db.reader)
        .await?;
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
        let db = self.db().await?;
        let row: Option<Row> = sqlx::query_as("SELECT * FROM transfer_intents WHERE id = ? AND owner = ?")
            .bind(id)
            .bind(owner)
            .fetch_optional(&db.reader)
            .await?;
        row.map(Row::into_intent).transpose()
    }

    /// The intent with this id, read through the writer (so it sees this process's last write).
    pub async fn reload(&self, id: &str) -> Result<StoredIntent, StoreError> {
        let db = self.db().await?;
        let row: Option<Row> =
            sqlx::query_as("SELECT * FROM transfer_intents WHERE id = ?").bind(id).fetch_optional(&db.writer).await?;
        row.map(Row::into_intent).transpose()?.ok_or_else(|| StoreError::Missing(id.to_owned()))
    }

    /// The owner's intent recorded under `idempotency_key`, checked against `fingerprint`.
    pub async fn by_key(&self, owner: &str, key: &str, fingerprint: &str) -> Result<Option<StoredIntent>, StoreError> {
        let db = self.db().await?;
        let row: Option<Row> = sqlx::query_as("SELECT * FROM transfer_intents WHERE owner = ? AND idempotency_key = ?")
            .bind(owner)
            .bind(key)
            .fetch_optional(&db.writer)
            .await?;
        match row.map(Row::into_intent).transpose()? {
            Some(intent) if intent.fingerprint != fingerprint => Err(StoreError::KeyReused(key.to_owned())),
            other => Ok(other),
        }
    }

    /// Records a new intent in `requesting` for `holder`, driven by `runner`, unless the holder's
    /// `idempotency_key` already names one, or the holder already has `max_pending` approval
    /// requests waiting (checked in the same statement, so concurrent calls cannot overshoot it).
    pub async fn create(
        &self,
        holder: &Holder,
        idempotency_key: Option<&str>,
        fingerprint: &str,
        terms: &TransferIntent,
        runner: &RunnerId,
        max_pending: usize,
    ) -> Result<Claim, StoreError> {
        let db = self.db().await?;
        let now = self.clock.now().0;
        let state = IntentState::Requesting;
        let owner = holder.bank_user.as_str();
        let subject = (holder.subject != holder.bank_user).then_some(holder.subject.as_str());
        let inserted = sqlx::query(
            "INSERT INTO transfer_intents (id, owner, holder_subject, idempotency_key, request_fingerprint, reference,
                 from_account_id, from_label, to_account_id, to_label, amount_minor, currency, memo, status, state,
                 version, runner, created_at_ms, updated_at_ms)
             SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?
             WHERE (SELECT COUNT(*) FROM transfer_intents WHERE owner = ? AND status IN (?, ?)) < ?
             ON CONFLICT (owner, idempotency_key) DO NOTHING",
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
        .bind(state.status())
        .bind(serde_json::to_string(&state).expect("a state serialises"))
        .bind(&runner.0)
        .bind(now)
        .bind(now)
        .bind(owner)
        .bind(Status::Requesting.as_str())
        .bind(Status::Pending.as_str())
        .bind(i64::try_from(max_pending).unwrap_or(i64::MAX))
        .execute(&db.writer)
        .await?;
        if inserted.rows_affected() == 0 {
            // Either the key names an intent already (the same terms: follow it; others: refused),
            // or the holder is at the limit.
            if let Some(key) = idempotency_key
                && let Some(existing) = self.by_key(owner, key, fingerprint).await?
            {
                return Ok(Claim::Existing(existing));
            }
            return Err(StoreError::TooManyPending { limit: max_pending });
        }
        let intent = self.reload(&terms.id).await?;
        self.signal(intent.id(), intent.status());
        Ok(Claim::Created(intent))
    }

    /// Moves `intent` by `event`, if it is still as the caller last saw it (same version).
    pub async fn apply(&self, intent: &StoredIntent, event: Event) -> Result<StoredIntent, ApplyError> {
        let now = self.clock.now();
        let next = transition(&intent.state, event, now)?;
        let db = self.db().await?;
        let updated = sqlx::query(
            "UPDATE transfer_intents SET status = ?, state = ?, version = version + 1, updated_at_ms = ?
             WHERE id = ? AND version = ?",
        )
        .bind(next.status())
        .bind(serde_json::to_string(&next).expect("a state serialises"))
        .bind(now.0)
        .bind(intent.id())
        .bind(intent.version)
        .execute(&db.writer)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(ApplyError::Conflict(Box::new(self.reload(intent.id()).await?)));
        }
        let status = next.status();
        self.signal(intent.id(), status);
        Ok(StoredIntent { state: next, version: intent.version + 1, ..intent.clone() })
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

    /// Records that `runner` is alive (inserting it on first call).
    pub async fn heartbeat(&self, runner: &RunnerId) -> Result<(), StoreError> {
        let db = self.db().await?;
        let now = self.clock.now().0;
        sqlx::query(
            "INSERT INTO runners (id, started_at_ms, heartbeat_at_ms) VALUES (?1, ?2, ?2)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at_ms = excluded.heartbeat_at_ms",
        )
        .bind(&runner.0)
        .bind(now)
        .execute(&db.writer)
        .await?;
        Ok(())
    }

    /// Removes `runner`'s heartbeat and releases its open intents, so another runner takes them at
    /// once instead of waiting for the heartbeat to go stale.
    pub async fn retire(&self, runner: &RunnerId) -> Result<(), StoreError> {
        let db = self.db().await?;
        sqlx::query("UPDATE transfer_intents SET runner = NULL, version = version + 1 WHERE runner = ? AND status IN (?, ?, ?, ?)")
            .bind(&runner.0)
            .bind(Status::OPEN[0])
            .bind(Status::OPEN[1])
            .bind(Status::OPEN[2])
            .bind(Status::OPEN[3])
            .execute(&db.writer)
            .await?;
        sqlx::query("DELETE FROM runners WHERE id = ?").bind(&runner.0).execute(&db.writer).await?;
        Ok(())
    }

    /// The open intents whose runner is gone (no heartbeat since `stale_after` ago, or none at
    /// all), of `owner` or of every holder, each claimed for `runner`. Claiming bumps the version,
    /// so the old runner's writes fail from now on.
    pub async fn claim_stale(
        &self,
        owner: Option<&str>,
        runner: &RunnerId,
        stale_after: Duration,
    ) -> Result<Vec<StoredIntent>, StoreError> {
        let db = self.db().await?;
        let alive_since = self.clock.now().minus(stale_after).0;
        let rows: Vec<Row> = sqlx::query_as(
            "UPDATE transfer_intents SET runner = ?1, version = version + 1
             WHERE (?2 IS NULL OR owner = ?2) AND status IN (?4, ?5, ?6, ?7) AND (runner IS NULL OR runner <> ?1)
               AND (runner IS NULL OR runner NOT IN (SELECT id FROM runners WHERE heartbeat_at_ms >= ?3))
             RETURNING *",
        )
        .bind(&runner.0)
        .bind(owner)
        .bind(alive_since)
        .bind(Status::OPEN[0])
        .bind(Status::OPEN[1])
        .bind(Status::OPEN[2])
        .bind(Status::OPEN[3])
        .fetch_all(&db.writer)
        .await?;
        rows.into_iter().map(Row::into_intent).collect()
    }

    /// A receiver that sees this intent's changes of status made in this process from now on;
    /// read the intent again after subscribing to see those made before.
    pub fn watch(&self, id: &str, current: Status) -> watch::Receiver<Status> {
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
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ciba::types::AuthReqId;
    use crate::clock::ManualClock;

    fn terms() -> TransferIntent {
        TransferIntent::new(
            AccountLabel { id: "acc_alice_chk".into(), masked_number: "CHK-4821".into() },
            AccountLabel { id: "acc_bob_chk".into(), masked_number: "CHK-3307".into() },
            MinorUnits(2500),
            "USD".parse().unwrap(),
            None,
        )
    }

    fn alice() -> Holder {
        Holder::configured("alice")
    }

    async fn store() -> (tempfile::TempDir, IntentStore, ManualClock) {
        let dir = tempfile::tempdir().unwrap();
        let (clock, hand) = Clock::manual(Millis(1_000_000));
        let store = IntentStore::new(dir.path().to_owned(), clock);
        store.open().await.unwrap();
        (dir, store, hand)
    }

    fn accepted() -> Event {
        Event::RequestAccepted {
            auth_req_id: AuthReqId::new("req-1"),
            expires_at: Millis(1_300_000),
            interval_seconds: 5,
        }
    }

    #[tokio::test]
    async fn a_silent_runners_intents_are_taken_over_and_its_writes_refused_from_then_on() {
        let (_dir, store, hand) = store().await;
        let (old, new) = (RunnerId::new(), RunnerId::new());
        store.heartbeat(&old).await.unwrap();
        store.heartbeat(&new).await.unwrap();
        let Claim::Created(intent) = store.create(&alice(), None, "f", &terms(), &old, 10).await.unwrap() else {
            panic!("created")
        };
        let pending = store.apply(&intent, accepted()).await.unwrap();

        // While the old runner's heartbeat is fresh, nobody takes its intent.
        hand.advance(Duration::from_secs(10));
        store.heartbeat(&new).await.unwrap();
        assert!(store.claim_stale(Some("alice"), &new, Duration::from_secs(15)).await.unwrap().is_empty());

        // Silent for longer than the stale bound: the intent moves, once, to the runner that asked.
        hand.advance(Duration::from_secs(6));
        let claimed = store.claim_stale(Some("alice"), &new, Duration::from_secs(15)).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].runner.as_deref(), Some(new.0.as_str()));
        assert!(store.claim_stale(Some("alice"), &new, Duration::from_secs(15)).await.unwrap().is_empty());

        // The old runner wakes up and tries to record the approval it got: refused.
        let token = crate::ciba::types::Secret::new("t");
        let late = store.apply(&pending, Event::Approved { token, token_expires_at: Millis(2_000_000) }).await;
        assert!(matches!(late, Err(ApplyError::Conflict(current)) if current.status() == Status::Pending));
    }

    #[tokio::test]
    async fn a_runner_that_stops_cleanly_hands_its_intents_back_at_once() {
        let (_dir, store, _hand) = store().await;
        let (old, new) = (RunnerId::new(), RunnerId::new());
        store.heartbeat(&old).await.unwrap();
        store.create(&alice(), None, "f", &terms(), &old, 10).await.unwrap();
        store.retire(&old).await.unwrap();
        assert_eq!(store.claim_stale(Some("alice"), &new, Duration::from_secs(15)).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_cancel_and_an_approval_racing_for_one_intent_cannot_both_win() {
        let (_dir, store, _hand) = store().await;
        let runner = RunnerId::new();
        let Claim::Created(intent) = store.create(&alice(), None, "f", &terms(), &runner, 10).await.unwrap() else {
            panic!("created")
        };
        let pending = store.apply(&intent, accepted()).await.unwrap();
        let cancelled = store.apply_latest(pending.id(), Event::Cancel).await.unwrap();
        assert_eq!(cancelled.status(), Status::Cancelled);
        let token = crate::ciba::types::Secret::new("t");
        let approved = store.apply(&pending, Event::Approved { token, token_expires_at: Millis(2_000_000) }).await;
        assert!(matches!(approved, Err(ApplyError::Conflict(_))));
        assert_eq!(store.reload(pending.id()).await.unwrap().status(), Status::Cancelled);
    }

    #[tokio::test]
    async fn a_holder_at_the_pending_limit_is_refused_until_one_is_decided_and_others_are_not_held_up() {
        let (_dir, store, _hand) = store().await;
        let runner = RunnerId::new();
        let mut waiting = Vec::new();
        for key in ["k1", "k2", "k3"] {
            let Claim::Created(intent) = store.create(&alice(), Some(key), key, &terms(), &runner, 3).await.unwrap()
            else {
                panic!("created")
            };
            waiting.push(store.apply(&intent, accepted()).await.unwrap());
        }
        let refused = store.create(&alice(), Some("k4"), "k4", &terms(), &runner, 3).await;
        assert!(matches!(refused, Err(StoreError::TooManyPending { limit: 3 })), "{refused:?}");
        assert!(store.by_key("alice", "k4", "k4").await.unwrap().is_none(), "a refusal records nothing");

        // A retry of a key already used follows its intent, at the limit too.
        let retry = store.create(&alice(), Some("k2"), "k2", &terms(), &runner, 3).await.unwrap();
        assert!(matches!(retry, Claim::Existing(ref intent) if intent.id() == waiting[1].id()));

        // Another holder has limits of their own.
        let bob = Holder { subject: "auth0|bob".into(), bank_user: "bob".into() };
        let Claim::Created(bobs) = store.create(&bob, None, "b", &terms(), &runner, 3).await.unwrap() else {
            panic!("created")
        };
        assert_eq!((bobs.owner.as_str(), bobs.subject()), ("bob", "auth0|bob"));

        // Once one of alice's requests is decided, she may ask again.
        store.apply(&waiting[0], Event::Denied).await.unwrap();
        let again = store.create(&alice(), Some("k4"), "k4", &terms(), &runner, 3).await.unwrap();
        assert!(matches!(again, Claim::Created(ref intent) if intent.subject() == "alice"));
    }

    #[tokio::test]
    async fn a_server_for_every_holder_takes_over_every_holders_intents() {
        let (_dir, store, _hand) = store().await;
        let (old, new) = (RunnerId::new(), RunnerId::new());
        store.heartbeat(&old).await.unwrap();
        store.create(&alice(), None, "f", &terms(), &old, 10).await.unwrap();
        store.create(&Holder::configured("bob"), None, "f", &terms(), &old, 10).await.unwrap();
        store.retire(&old).await.unwrap();
        assert_eq!(store.claim_stale(Some("bob"), &new, Duration::from_secs(15)).await.unwrap().len(), 1);
        let rest = store.claim_stale(None, &new, Duration::from_secs(15)).await.unwrap();
        assert_eq!(rest.iter().map(|intent| intent.owner.as_str()).collect::<Vec<_>>(), ["alice"]);
    }

    #[tokio::test]
    async fn the_store_file_is_readable_by_its_owner_only() {
        let (dir, _store, _hand) = store().await;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(DATABASE_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
