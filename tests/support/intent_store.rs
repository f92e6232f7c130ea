//! Which transfer intent store the MCP servers of a test use, and reading it as stored.
//!
//! By default, SQLite in the dev stack's data directory. With `TEST_MCP_STORE=postgres` (the second
//! run of `tests/mcp` in `scripts/test.sh`), every server of a test shares a fresh database on the
//! test run's PostgreSQL server, started by `scripts/postgres.sh` (`TEST_POSTGRES_URL`,
//! `TEST_POSTGRES_PASSWORD`). Replica tests always use PostgreSQL.

use std::path::Path;

use bankguard::config::Config;
use sqlx::Connection;

/// Where a test's MCP servers keep their intents.
#[derive(Clone, Debug)]
pub enum TestStore {
    Sqlite,
    Postgres { url: String, password: String },
}

impl TestStore {
    /// The store this run of the MCP tests uses (`TEST_MCP_STORE`).
    pub async fn for_this_run() -> Self {
        match std::env::var("TEST_MCP_STORE").as_deref() {
            Ok("postgres") => Self::fresh_postgres().await,
            Ok("sqlite") | Err(_) => Self::Sqlite,
            Ok(other) => panic!("TEST_MCP_STORE={other}: use sqlite or postgres"),
        }
    }

    /// A new, empty database on the test run's PostgreSQL server.
    pub async fn fresh_postgres() -> Self {
        let (Ok(url), Ok(password)) = (std::env::var("TEST_POSTGRES_URL"), std::env::var("TEST_POSTGRES_PASSWORD"))
        else {
            panic!(
                "this test needs a PostgreSQL server: run ./scripts/test.sh, or `eval \"$(./scripts/postgres.sh \
                 start)\"` first"
            )
        };
        let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        let mut admin = sqlx::PgConnection::connect_with(&options.password(&password)).await.unwrap();
        let name = format!("mcp_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
        let base = url.rsplit_once('/').unwrap().0;
        Self::Postgres { url: format!("{base}/{name}"), password }
    }

    /// Points `config`'s MCP server at this store (the password apart from the URL, as operators do).
    pub fn configure(&self, config: &mut Config) {
        if let Self::Postgres { url, password } = self {
            config.mcp.store_url = Some(url.clone());
            config.mcp.store_password = Some(password.clone());
        }
    }

    /// The same, for a `bankguard serve` process.
    pub fn apply_to(&self, command: &mut tokio::process::Command) {
        if let Self::Postgres { url, password } = self {
            command.env("BANKGUARD_MCP__STORE_URL", url).env("BANKGUARD_MCP__STORE_PASSWORD", password);
        }
    }

    /// The intents as stored (a connection beside the servers'; tests read it, and move time in it).
    pub async fn reader(&self, data_dir: &Path) -> StoredIntents {
        match self {
            Self::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(data_dir.join(bankguard::mcp::lifecycle::store::DATABASE_FILE));
                StoredIntents::Sqlite(sqlx::SqlitePool::connect_with(options).await.unwrap())
            }
            Self::Postgres { url, password } => {
                let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
                StoredIntents::Postgres(sqlx::PgPool::connect_with(options.password(password)).await.unwrap())
            }
        }
    }
}

/// The intents as stored, read beside the servers.
pub enum StoredIntents {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

macro_rules! on_pool {
    ($intents:expr, |$pool:ident| $body:expr) => {
        match $intents {
            StoredIntents::Sqlite($pool) => $body,
            StoredIntents::Postgres($pool) => $body,
        }
    };
}

impl StoredIntents {
    /// The intent's status, if it exists.
    pub async fn status(&self, intent_id: &str) -> Option<String> {
        on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT status FROM transfer_intents WHERE id = $1")
                .bind(intent_id)
                .fetch_optional(pool)
                .await
                .unwrap()
        })
    }

    /// Every intent's status, oldest first.
    pub async fn statuses(&self) -> Vec<String> {
        on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT status FROM transfer_intents ORDER BY created_at_ms, id")
                .fetch_all(pool)
                .await
                .unwrap()
        })
    }

    /// The newest intent's id.
    pub async fn newest(&self) -> Option<String> {
        on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT id FROM transfer_intents ORDER BY created_at_ms DESC, version DESC LIMIT 1")
                .fetch_optional(pool)
                .await
                .ok()
                .flatten()
        })
    }

    /// Moves every intent's creation `by` into the past, as if that much time had gone by.
    pub async fn age(&self, by: std::time::Duration) {
        let by = i64::try_from(by.as_millis()).unwrap();
        on_pool!(self, |pool| {
            sqlx::query("UPDATE transfer_intents SET created_at_ms = created_at_ms - $1")
                .bind(by)
                .execute(pool)
                .await
                .unwrap();
        })
    }

    /// The audit trail's entries, oldest first: their kind and details (JSON).
    pub async fn audit(&self) -> Vec<(String, String)> {
        on_pool!(self, |pool| {
            sqlx::query_as("SELECT kind, details FROM audit_entries ORDER BY seq").fetch_all(pool).await.unwrap()
        })
    }

    /// The MCP client each of the intent's audit entries names, in chain order.
    pub async fn audit_clients(&self, intent_id: &str) -> Vec<Option<String>> {
        on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT client FROM audit_entries WHERE intent_id = $1 ORDER BY seq")
                .bind(intent_id)
                .fetch_all(pool)
                .await
                .unwrap()
        })
    }

    /// The runner driving the intent now (`None` once handed back or never claimed).
    pub async fn runner(&self, intent_id: &str) -> Option<String> {
        on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT runner FROM transfer_intents WHERE id = $1")
                .bind(intent_id)
                .fetch_one(pool)
                .await
                .unwrap()
        })
    }
}
