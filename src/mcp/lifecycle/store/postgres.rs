//! The intent store on PostgreSQL: one database that every `bankguard serve` replica shares, so any
//! replica finishes what another started.
//!
//! What one machine got for free, PostgreSQL does here:
//! - **The pending limit** is counted under a transaction-scoped advisory lock on the holder, so two
//!   replicas creating at once cannot both see room for one more.
//! - **Claims** take rows `FOR UPDATE SKIP LOCKED`: replicas claiming at once get disjoint intents.
//! - **Heartbeats** are stamped, and compared, with the database's clock, so the replicas' own
//!   clocks may disagree without one taking over another's live intents.
//! - **Changes reach every replica within milliseconds** through `LISTEN/NOTIFY`: a trigger announces
//!   each change of status (`bankguard_intents`), a replica forwards a ping it has no wait for
//!   (`bankguard_pings`), and deleting a runner's row announces its hand-back (`bankguard_handback`).
//!   Notifications are sent on commit, so nobody hears of a change it cannot read yet. If the
//!   listening connection drops, followers still re-read the store each second and waits still
//!   poll, so a lost notification delays, never loses, an outcome.

use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres, Transaction};
use tokio::sync::broadcast;

use super::{PingDigest, Row, RunnerId, Signals, StoreError, StoreEvent};
use crate::mcp::lifecycle::state::Status;

pub(super) static MIGRATIONS: Migrator = sqlx::migrate!("./migrations/mcp-postgres");

const INTENTS_CHANNEL: &str = "bankguard_intents";
const PINGS_CHANNEL: &str = "bankguard_pings";
const HANDBACK_CHANNEL: &str = "bankguard_handback";

/// A PostgreSQL database and how to sign in to it. Its `Debug` never shows the password.
#[derive(Clone)]
pub struct PostgresLocation {
    pub(super) options: PgConnectOptions,
    max_connections: u32,
}

impl std::fmt::Debug for PostgresLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLocation")
            .field("host", &self.options.get_host())
            .field("port", &self.options.get_port())
            .field("database", &self.options.get_database())
            .field("username", &self.options.get_username())
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl PostgresLocation {
    /// `url` is a `postgres://` URL (libpq's parameters, e.g. `sslmode`, apply); `password`, when
    /// given, replaces one in the URL. Without either, `PGPASSWORD` or `~/.pgpass` is used. The
    /// error never repeats the URL, which may hold a password.
    pub fn parse(url: &str, password: Option<&str>, max_connections: u32) -> Result<Self, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("must be a postgres:// URL (unset: SQLite in the data directory)".into());
        }
        let mut options: PgConnectOptions =
            url.parse().map_err(|_| "is not a valid PostgreSQL connection URL".to_owned())?;
        if let Some(password) = password {
            options = options.password(password);
        }
        // No statement in the log at `debug`: see `crate::sqlite`.
        Ok(Self { options: options.application_name("bankguard").disable_statement_logging(), max_connections })
    }
}

impl PostgresLocation {
    /// Host, port and database, for messages (never the user's password).
    pub fn server(&self) -> String {
        let database = self.options.get_database().unwrap_or("(the user's database)");
        format!("PostgreSQL at {}:{} database {database}", self.options.get_host(), self.options.get_port())
    }
}

/// An open PostgreSQL store: its pool, and the task that listens for other replicas.
pub(super) struct Shared {
    pub pool: PgPool,
    listening: tokio::task::JoinHandle<()>,
}

impl Shared {
    /// Connects, applies the migrations (PostgreSQL's advisory lock lets replicas start together),
    /// and starts listening.
    pub async fn open(
        location: &PostgresLocation,
        signals: Arc<Signals>,
        events: broadcast::Sender<StoreEvent>,
    ) -> Result<Self, StoreError> {
        let server = location.server();
        let unreachable = |error: sqlx::Error| match error {
            sqlx::Error::PoolTimedOut => StoreError::Postgres(format!("no connection to {server} within 5 s")),
            other => StoreError::Postgres(format!("{server}: {other}")),
        };
        let pool = PgPoolOptions::new()
            // One more for the listening connection.
            .max_connections(location.max_connections + 1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(location.options.clone())
            .await
            .map_err(unreachable)?;
        MIGRATIONS.run(&pool).await.map_err(|error| StoreError::Postgres(format!("migrations failed: {error}")))?;
        let mut listener = PgListener::connect_with(&pool).await.map_err(unreachable)?;
        listener.listen_all([INTENTS_CHANNEL, PINGS_CHANNEL, HANDBACK_CHANNEL]).await.map_err(unreachable)?;
        let listening = tokio::spawn(listen(listener, signals, events));
        Ok(Self { pool, listening })
    }

    pub async fn close(&self) {
        self.listening.abort();
        self.pool.close().await;
    }

    pub async fn heartbeat(&self, runner: &RunnerId) -> Result<(), StoreError> {
        // Stamped with the database's clock, in milliseconds since the epoch, as claims compare it.
        sqlx::query(
            "INSERT INTO runners (id, started_at_ms, heartbeat_at_ms)
             VALUES ($1, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT,
                     (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at_ms = excluded.heartbeat_at_ms",
        )
        .bind(&runner.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn claim_stale(
        &self,
        owner: Option<&str>,
        runner: &RunnerId,
        stale_after: Duration,
    ) -> Result<Vec<Row>, StoreError> {
        let stale_after_ms = i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX);
        let rows = sqlx::query_as(
            "UPDATE transfer_intents SET runner = $1, version = version + 1
             WHERE id IN (
                 SELECT id FROM transfer_intents
                 WHERE ($2::TEXT IS NULL OR owner = $2) AND status IN ($4, $5, $6, $7)
                   AND (runner IS NULL OR runner <> $1)
                   AND (runner IS NULL OR runner NOT IN
                        (SELECT id FROM runners
                         WHERE heartbeat_at_ms >= (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT - $3))
                 FOR UPDATE SKIP LOCKED)
             RETURNING *",
        )
        .bind(&runner.0)
        .bind(owner)
        .bind(stale_after_ms)
        .bind(Status::OPEN[0].as_str())
        .bind(Status::OPEN[1].as_str())
        .bind(Status::OPEN[2].as_str())
        .bind(Status::OPEN[3].as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Tells every replica about a ping for an intent still waiting on its holder; false if no
    /// such intent was requested with that token.
    pub async fn forward_ping(&self, digest: &PingDigest) -> Result<bool, StoreError> {
        let forwarded = sqlx::query(
            "SELECT pg_notify('bankguard_pings', encode(ping_digest, 'base64')) FROM transfer_intents
             WHERE ping_digest = $1 AND status IN ($2, $3)",
        )
        .bind(digest.as_slice())
        .bind(Status::Requesting.as_str())
        .bind(Status::Pending.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(!forwarded.is_empty())
    }
}

/// Serialises the pending-limit check of one holder across replicas until the transaction ends.
pub(super) async fn lock_holder(tx: &mut Transaction<'_, Postgres>, owner: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(owner).execute(&mut **tx).await?;
    Ok(())
}

/// Turns other replicas' notifications into this process's signals and events, until aborted.
async fn listen(mut listener: PgListener, signals: Arc<Signals>, events: broadcast::Sender<StoreEvent>) {
    loop {
        match listener.recv().await {
            Ok(notification) => match notification.channel() {
                INTENTS_CHANNEL => {
                    let announced = notification.payload().split_once(' ');
                    match announced.and_then(|(id, status)| Some((id, parse_status(status)?))) {
                        Some((id, status)) => signals.signal(id, status),
                        None => tracing::warn!(payload = notification.payload(), "an unreadable status notification"),
                    }
                }
                PINGS_CHANNEL => match decode_digest(notification.payload()) {
                    Some(digest) => {
                        let _ = events.send(StoreEvent::Pinged(digest));
                    }
                    None => tracing::warn!("an unreadable ping notification"),
                },
                HANDBACK_CHANNEL => {
                    let _ = events.send(StoreEvent::HandedBack);
                }
                _ => {}
            },
            Err(error) => {
                // The next `recv` reconnects; until then followers and waits fall back on reading the store.
                tracing::warn!(%error, "lost the PostgreSQL notification connection; reconnecting");
                let _ = events.send(StoreEvent::Missed);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn parse_status(name: &str) -> Option<Status> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// The digest as PostgreSQL's `encode(…, 'base64')` wrote it.
fn decode_digest(encoded: &str) -> Option<PingDigest> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(encoded).ok()?.try_into().ok()
}
