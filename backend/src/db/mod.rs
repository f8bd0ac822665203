//! The data layer: one diesel codebase over SQLite (embedded default) and PostgreSQL, chosen by the
//! scheme of `DATABASE_URL`; an r2d2 pool; embedded migrations per backend; [`Db::run`], which
//! runs blocking queries off the async executor, and [`Db::run_background`], which runs bulk
//! reads on low-priority threads.

pub mod admin;
pub mod audit;
pub mod batch;
pub mod batch_pg;
pub mod changes;
pub mod contacts;
pub mod messages;
pub mod models;
pub mod rooms;
pub mod schema;
pub mod sessions;
pub mod tokens;
pub mod uploads;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryResult};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use diesel::r2d2;

use crate::background::Background;
use crate::error::ApiError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// A parsed `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// A file path (or `:memory:`).
    Sqlite(String),
    Postgres(String),
}

impl DbUrl {
    pub fn parse(url: &str) -> Result<DbUrl, String> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, e.g. sqlite://data/letschat.db".into());
            }
            Ok(DbUrl::Sqlite(path.to_owned()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DbUrl::Postgres(url.to_owned()))
        } else {
            Err(format!(
                "'{}' must start with sqlite:// or postgres://",
                redact(url)
            ))
        }
    }

    /// Where files that belong with the database (such as a generated secret) are kept.
    pub fn data_dir(&self) -> PathBuf {
        match self {
            DbUrl::Sqlite(path) => Path::new(path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            DbUrl::Postgres(_) => PathBuf::from("data"),
        }
    }
}

/// A URL with any password removed, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

/// Opens connections of the backend the URL names (never guessing), with SQLite's pragmas set.
#[derive(Debug)]
pub struct Manager {
    url: DbUrl,
}

/// Seconds a SQLite writer waits for the lock before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        match &self.url {
            DbUrl::Postgres(url) => PgConnection::establish(url)
                .map(DbConnection::Postgresql)
                .map_err(r2d2::Error::ConnectionError),
            DbUrl::Sqlite(path) => {
                let mut conn =
                    SqliteConnection::establish(path).map_err(r2d2::Error::ConnectionError)?;
                // WAL lets readers run beside the writer; FULL syncs the WAL on every commit so an
                // acknowledged write survives a power loss.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = FULL;
                     PRAGMA foreign_keys = ON;"
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking()
            || <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(conn)
    }
}

pub type Pool = r2d2::Pool<Manager>;
pub type PoolError = r2d2::PoolError;

/// Handle to the database: a pool plus the knowledge of which backend it is.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    backend: Backend,
    /// One per pooled connection that [`Db::run`] may use (the message writer keeps one).
    permits: Arc<tokio::sync::Semaphore>,
    /// Low-priority threads for [`Db::run_background`], and one permit per thread.
    background: Background,
    background_slots: Arc<tokio::sync::Semaphore>,
}

/// Threads for [`Db::run_background`]: as many as cores, so bulk reads of several users use
/// every core messaging leaves idle.
fn background_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Connections of the pool: open (in use or idle), idle, and the most it opens.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DbInitError {
    #[error("cannot create the data folder {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("cannot prepare the database: {0}")]
    Query(#[from] DieselError),
    #[error("migrations failed: {0}")]
    Migrations(String),
    #[error("cannot build the connection pool: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("cannot start the background threads: {0}")]
    Threads(std::io::Error),
}

impl Db {
    /// Connects once directly (so the real error surfaces), runs the migrations, builds the pool.
    pub fn connect(url: &str, pool_size: u32) -> Result<Db, DbInitError> {
        let parsed = DbUrl::parse(url).map_err(DbInitError::Migrations)?;
        let backend = match &parsed {
            DbUrl::Sqlite(path) => {
                if let Some(dir) = Path::new(path)
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| DbInitError::DataDir(dir.display().to_string(), e))?;
                }
                Backend::Sqlite
            }
            DbUrl::Postgres(_) => Backend::Postgres,
        };
        let manager = Manager { url: parsed };
        let mut first = r2d2::ManageConnection::connect(&manager).map_err(|e| match e {
            r2d2::Error::ConnectionError(c) => DbInitError::Connect(c),
            r2d2::Error::QueryError(q) => DbInitError::Query(q),
        })?;
        run_migrations(&mut first)?;
        drop(first);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1.min(pool_size)))
            .connection_timeout(Duration::from_secs(5))
            .build(manager)?;
        let permits = Arc::new(tokio::sync::Semaphore::new(
            pool_size.saturating_sub(1).max(1) as usize,
        ));
        let threads = background_threads();
        Ok(Db {
            pool,
            backend,
            permits,
            background: Background::start(threads).map_err(DbInitError::Threads)?,
            background_slots: Arc::new(tokio::sync::Semaphore::new(threads)),
        })
    }

    /// A connection for a long-lived blocking owner (the message writer). Blocks.
    pub fn get(&self) -> Result<r2d2::PooledConnection<Manager>, PoolError> {
        self.pool.get()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool's connections as they are now (for the metrics endpoint).
    pub fn pool_stats(&self) -> PoolStats {
        let state = self.pool.state();
        PoolStats {
            open: state.connections,
            idle: state.idle_connections,
            max: self.pool.max_size(),
        }
    }

    /// Runs `f` with a pooled connection on a blocking thread. Callers wait for a connection
    /// here, as tasks, before a thread is taken: a storm of requests (thousands of clients
    /// reconnecting at once) queues in memory instead of parking hundreds of threads on the pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Unavailable)?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| ApiError::internal(format!("database task failed: {e}")))?
    }

    /// Runs `f` like [`Db::run`], on one of the low-priority background threads (see
    /// [`crate::background`]): for bulk reads, such as a user's whole list of rooms, whose CPU
    /// must not delay messaging. `f` may also render its result (to JSON), so that work stays off
    /// the async executor too. At most one job per background thread holds a connection; others
    /// wait here, as tasks.
    pub async fn run_background<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let slot = Arc::clone(&self.background_slots)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Unavailable)?;
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Unavailable)?;
        let pool = self.pool.clone();
        self.background
            .run(move || {
                let _held = (slot, permit);
                let mut conn = pool.get()?;
                f(&mut conn)
            })
            .await
            .ok_or(ApiError::Unavailable)?
    }
}

fn run_migrations(conn: &mut DbConnection) -> Result<(), DbInitError> {
    let result = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| DbInitError::Migrations(e.to_string()))
}

/// A read-write transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`), so
/// two writers never deadlock upgrading from a read lock; on PostgreSQL it is a plain `BEGIN`.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<DieselError>,
{
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    match f(conn) {
        Ok(value) => {
            <DbConnection as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) =
                <DbConnection as Connection>::TransactionManager::rollback_transaction(conn)
            {
                tracing::error!(error = %rollback, "rollback failed");
            }
            Err(e)
        }
    }
}

/// True when `e` is a unique-constraint violation (on either backend).
pub fn is_unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// The database's "now", as stored: UTC without an offset.
pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// Checks that the database answers (for `GET /api/health`).
pub fn ping(conn: &mut DbConnection) -> QueryResult<()> {
    conn.batch_execute("SELECT 1")
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::sql_types::BigInt;
    use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
    use diesel_migrations::MigrationHarness;

    use super::SQLITE_MIGRATIONS;

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Counts {
        #[diesel(sql_type = BigInt)]
        user_id: i64,
        #[diesel(sql_type = BigInt)]
        sent_count: i64,
    }

    /// Upgrading a database that already holds messages fills in each member's sent count.
    #[test]
    fn the_sent_counts_migration_counts_existing_messages() {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        let pending = c.pending_migrations(SQLITE_MIGRATIONS).unwrap();
        let (before, after): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|m| *m.name().to_string() < *"2026-11-25-000003");
        for m in &before {
            c.run_migration(m.as_ref()).unwrap();
        }
        c.batch_execute(
            "INSERT INTO users (id, username, username_key, display_name, display_name_key,
                                password_hash, created_at)
             VALUES (1, 'a', 'a', 'a', 'a', 'x', '2026-01-01 00:00:00'),
                    (2, 'b', 'b', 'b', 'b', 'x', '2026-01-01 00:00:00');
             INSERT INTO rooms (id, user_low, user_high, last_seq, created_at)
             VALUES (1, 1, 2, 3, '2026-01-01 00:00:00');
             INSERT INTO room_members (room_id, user_id) VALUES (1, 1), (1, 2);
             INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body, created_at)
             VALUES (1, 1, 1, 'm1', 'x', '2026-01-01 00:00:00'),
                    (1, 2, 1, 'm2', 'x', '2026-01-01 00:00:00'),
                    (1, 3, 2, 'm3', 'x', '2026-01-01 00:00:00');",
        )
        .unwrap();
        for m in &after {
            c.run_migration(m.as_ref()).unwrap();
        }
        let counts: Vec<Counts> =
            diesel::sql_query("SELECT user_id, sent_count FROM room_members ORDER BY user_id")
                .load(&mut c)
                .unwrap();
        assert_eq!(
            counts,
            vec![
                Counts {
                    user_id: 1,
                    sent_count: 2
                },
                Counts {
                    user_id: 2,
                    sent_count: 1
                }
            ]
        );
    }
}
