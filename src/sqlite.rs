//! How bankguard opens its SQLite databases: owner-only files, WAL, full sync, foreign keys, embedded
//! migrations, and a single writer connection.
//!
//! The database file is created 0600 before SQLite opens it ([`crate::data_dir`]); SQLite gives the
//! `-wal` and `-shm` files it creates beside it the same mode, and existing ones are tightened too.
//!
//! Writes go through a pool of exactly one connection and `BEGIN IMMEDIATE`, so writers are serialised
//! in the process and never fail on a lock upgrade; reads use a separate pool and, with WAL, never wait
//! for the writer.

use std::path::Path;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// Starts a write transaction that holds the write lock from its first statement.
pub const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// One database file: a one-connection writer pool and a read-only reader pool.
#[derive(Clone, Debug)]
pub struct Database {
    pub writer: SqlitePool,
    pub reader: SqlitePool,
}

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("cannot make database {path} private to its owner: {source}")]
    Private { path: String, source: std::io::Error },
    #[error("database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("database {path} could not be migrated: {source}")]
    Migrate { path: String, source: sqlx::migrate::MigrateError },
}

impl Database {
    /// Opens (creating if needed) `path` and applies `migrations`.
    pub async fn open(path: &Path, migrations: &Migrator) -> Result<Self, DatabaseError> {
        let name = path.display().to_string();
        let open_error = |source| DatabaseError::Open { path: name.clone(), source };
        create_private(path).map_err(|source| DatabaseError::Private { path: name.clone(), source })?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // Every statement at `debug` buries the log (a dozen lines per tool call); what a
            // statement did is logged by its caller, in words.
            .disable_statement_logging();
        let writer =
            SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await.map_err(open_error)?;
        migrations.run(&writer).await.map_err(|source| DatabaseError::Migrate { path: name.clone(), source })?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(open_error)?;
        Ok(Self { writer, reader })
    }
}

/// The database file, and any `-wal` and `-shm` files already beside it, owner-only.
fn create_private(path: &Path) -> std::io::Result<()> {
    crate::data_dir::create_private_file(path)?;
    for suffix in ["-wal", "-shm"] {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        let companion = Path::new(&companion);
        if companion.exists() {
            crate::data_dir::create_private_file(companion)?;
        }
    }
    Ok(())
}
