//! UMS storage on bundled SQLite (diesel + r2d2): the embedded default store.
//!
//! [`SqliteStore`] implements the domain's [`UserStore`](domain::ports::UserStore),
//! [`SessionStore`](domain::ports::SessionStore), [`TenantStore`](domain::ports::TenantStore)
//! and [`AuditLog`](domain::ports::AuditLog) ports on one database file, and
//! [`ServiceAccountStore`](domain::ports::ServiceAccountStore) on the same file.
//!
//! - Diesel is synchronous, so every pool checkout and query runs on tokio's blocking pool
//!   ([`tokio::task::spawn_blocking`]), inside the caller's tracing span.
//! - Every pooled connection gets `journal_mode=WAL` (readers never wait for the writer),
//!   `foreign_keys=ON`, `busy_timeout=5000` and `synchronous=NORMAL`.
//! - Every write of more than one row runs in one `BEGIN IMMEDIATE` transaction, which takes
//!   the write lock up front: writers queue (up to the busy timeout) instead of failing with
//!   "database is locked" when a read turns into a write.
//! - A method given a [`Journal`](domain::model::Journal) inserts its audit events, one-time
//!   tokens and outbox mail in the same transaction as the change, so either all commit or
//!   none does. The same file holds the [`Outbox`](domain::ports::Outbox) the mail goes to;
//!   claims are serialised by `BEGIN IMMEDIATE`, so no two return the same message.
//! - The last-administrator guards count and then write inside one `BEGIN IMMEDIATE`
//!   transaction; since that serialises writers, concurrent changes cannot together remove
//!   the last administrator.
//! - Timestamps are stored as microseconds since the Unix epoch, so sub-microsecond precision
//!   is dropped.
//! - A call whose future is dropped still runs to completion (commit or rollback) on the
//!   blocking pool; it is never left half-done.

mod admins;
mod audit;
mod error;
mod outbox;
mod rows;
mod schema;
mod service_accounts;
mod sessions;
mod tenants;
mod users;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use domain::ports::{PageRequest, StoreError};

pub use error::SqliteError;

use error::{TxError, db_error};

/// The migrations in `migrations/sqlite`, compiled into the binary.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Set on every connection the pool opens. `busy_timeout` comes first, so that switching a
/// fresh file to WAL waits for, rather than fails against, a concurrent connection.
const PRAGMAS: &str = "PRAGMA busy_timeout = 5000; \
                       PRAGMA journal_mode = WAL; \
                       PRAGMA foreign_keys = ON; \
                       PRAGMA synchronous = NORMAL;";

type SqlitePool = Pool<ConnectionManager<SqliteConnection>>;

/// The SQLite store: a cheap-to-clone handle on a pool of connections to one database file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One permit per pooled connection, taken before work goes to a blocking thread, so an
    /// exhausted pool makes callers wait on the async side, not pile up blocked threads.
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    /// How long a caller waits for a permit (the pool's connection timeout).
    wait: Duration,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.pool.state();
        f.debug_struct("SqliteStore")
            .field("max_size", &self.pool.max_size())
            .field("connections", &state.connections)
            .field("idle_connections", &state.idle_connections)
            .finish()
    }
}

/// The settings SQLite reports for one pooled connection; see
/// [`SqliteStore::connection_pragmas`].
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ConnectionPragmas {
    /// `PRAGMA journal_mode`, lower-case: `wal` for a file database.
    #[diesel(sql_type = Text)]
    pub journal_mode: String,
    /// `PRAGMA foreign_keys`: 1 when enforced.
    #[diesel(sql_type = BigInt)]
    pub foreign_keys: i64,
    /// `PRAGMA busy_timeout`, in milliseconds.
    #[diesel(sql_type = BigInt)]
    pub busy_timeout: i64,
    /// `PRAGMA synchronous`: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
    #[diesel(sql_type = BigInt)]
    pub synchronous: i64,
}

/// Applies [`PRAGMAS`] to every connection the pool opens.
#[derive(Debug, Clone, Copy)]
struct SetPragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SetPragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(PRAGMAS)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path` — a plain path or
    /// `sqlite://path` — with a pool of `pool_size` connections, waiting at most
    /// `connect_timeout` for each connection to be established or checked out.
    ///
    /// Blocks while the pool connects; call it at start-up, before serving.
    ///
    /// `:memory:` is accepted but gives every pooled connection a database of its own; use a
    /// file, even a temporary one, for anything but a pool of one.
    ///
    /// # Errors
    /// [`SqliteError::InvalidSettings`] for a zero `pool_size` or `connect_timeout`;
    /// [`SqliteError::Open`] when the file cannot be opened or created (its directory must
    /// exist); [`SqliteError::Configure`] when the pragmas cannot be applied;
    /// [`SqliteError::Pool`] when the pool cannot connect in time.
    pub fn open(
        path: &str,
        pool_size: u32,
        connect_timeout: Duration,
    ) -> Result<Self, SqliteError> {
        if pool_size == 0 {
            return Err(SqliteError::InvalidSettings(
                "the pool size must be at least 1",
            ));
        }
        if connect_timeout.is_zero() {
            return Err(SqliteError::InvalidSettings(
                "the connection timeout must be positive",
            ));
        }
        let path = path.strip_prefix("sqlite://").unwrap_or(path);
        // Create the file and switch it to WAL once, alone, before the pool opens its
        // connections in parallel; this also reports a bad path with SQLite's own reason.
        let mut first = SqliteConnection::establish(path).map_err(|source| SqliteError::Open {
            path: path.to_owned(),
            source,
        })?;
        first
            .batch_execute(PRAGMAS)
            .map_err(|source| SqliteError::Configure {
                path: path.to_owned(),
                source,
            })?;
        drop(first);

        let pool = Pool::builder()
            .max_size(pool_size)
            .connection_timeout(connect_timeout)
            .connection_customizer(Box::new(SetPragmas))
            .build(ConnectionManager::<SqliteConnection>::new(path))
            .map_err(|source| SqliteError::Pool {
                path: path.to_owned(),
                source,
            })?;
        tracing::info!(path, pool_size, "opened the SQLite store");
        Ok(Self {
            pool,
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(pool_size as usize)),
            wait: connect_timeout,
        })
    }

    /// Applies every migration not yet applied, returning the versions it applied, oldest
    /// first. Blocks; call it at start-up.
    ///
    /// # Errors
    /// [`SqliteError::Checkout`] or [`SqliteError::Migration`].
    pub fn run_migrations(&self) -> Result<Vec<String>, SqliteError> {
        let mut conn = self.pool.get().map_err(SqliteError::Checkout)?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(SqliteError::Migration)?
            .into_iter()
            .map(|version| version.to_string())
            .collect::<Vec<_>>();
        if !applied.is_empty() {
            tracing::info!(?applied, "applied SQLite migrations");
        }
        Ok(applied)
    }

    /// Reverts the newest applied migration, returning its version: for tests of a migration's
    /// effect on rows written before it.
    ///
    /// # Errors
    /// [`SqliteError::Checkout`] or [`SqliteError::Migration`].
    pub fn revert_last_migration(&self) -> Result<String, SqliteError> {
        let mut conn = self.pool.get().map_err(SqliteError::Checkout)?;
        conn.revert_last_migration(MIGRATIONS)
            .map(|version| version.to_string())
            .map_err(SqliteError::Migration)
    }

    /// Reverts every applied migration, newest first, returning the versions it reverted.
    /// This drops every table and all data: it is for tests of the migrations themselves.
    ///
    /// # Errors
    /// [`SqliteError::Checkout`] or [`SqliteError::Migration`].
    pub fn revert_all_migrations(&self) -> Result<Vec<String>, SqliteError> {
        let mut conn = self.pool.get().map_err(SqliteError::Checkout)?;
        let reverted = conn
            .revert_all_migrations(MIGRATIONS)
            .map_err(SqliteError::Migration)?
            .into_iter()
            .map(|version| version.to_string())
            .collect();
        Ok(reverted)
    }

    /// Checks that a connection can be checked out and answers `SELECT 1`: the readiness
    /// probe.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when no connection is free within the connection timeout;
    /// [`StoreError::Unexpected`] when the query fails.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            diesel::sql_query("SELECT 1")
                .execute(conn)
                .map(drop)
                .map_err(db_error)
        })
        .await
    }

    /// The pragmas of every connection in the pool, read with all of them checked out at
    /// once (so each entry is a different connection). A diagnostic for start-up logs and
    /// tests: it holds the whole pool for a moment.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the pool cannot be emptied within the connection
    /// timeout; [`StoreError::Unexpected`] when a query fails.
    pub async fn connection_pragmas(&self) -> Result<Vec<ConnectionPragmas>, StoreError> {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut held = Vec::new();
            for _ in 0..pool.max_size() {
                held.push(
                    pool.get()
                        .map_err(|e| StoreError::Unavailable(Box::new(e)))?,
                );
            }
            held.iter_mut()
                .map(|conn| {
                    diesel::sql_query(
                        "SELECT (SELECT journal_mode FROM pragma_journal_mode) AS journal_mode, \
                                (SELECT foreign_keys FROM pragma_foreign_keys) AS foreign_keys, \
                                (SELECT timeout FROM pragma_busy_timeout) AS busy_timeout, \
                                (SELECT synchronous FROM pragma_synchronous) AS synchronous",
                    )
                    .get_result::<ConnectionPragmas>(&mut **conn)
                    .map_err(db_error)
                })
                .collect()
        })
        .await
        .map_err(|e| StoreError::Unexpected(Box::new(e)))?
    }

    /// Runs `f` with a pooled connection on tokio's blocking pool, inside the caller's
    /// tracing span, once a permit is free. Waiting longer than the connection timeout for a
    /// permit or a connection is `Unavailable`.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| StoreError::Unavailable("every database connection is busy".into()))?
            .map_err(|e| StoreError::Unexpected(Box::new(e)))?;
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _entered = span.enter();
            let mut conn = pool
                .get()
                .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Unexpected(Box::new(e)))?
    }
}

/// Runs `f` in one `BEGIN IMMEDIATE` transaction: committed when `f` returns `Ok`, rolled back
/// (nothing written) when it returns `Err`.
fn immediate<T>(
    conn: &mut SqliteConnection,
    f: impl FnOnce(&mut SqliteConnection) -> Result<T, TxError>,
) -> Result<T, StoreError> {
    conn.immediate_transaction(f).map_err(StoreError::from)
}

/// The `LIMIT` and `OFFSET` of a page (an offset past `i64::MAX` is clamped: it finds
/// nothing either way).
fn limit_offset(page: PageRequest) -> (i64, i64) {
    (
        i64::from(page.per_page),
        i64::try_from(page.offset()).unwrap_or(i64::MAX),
    )
}

/// A `COUNT(*)` as the `total` of a page.
fn total(count: i64) -> Result<u64, StoreError> {
    u64::try_from(count).map_err(|e| StoreError::Unexpected(Box::new(e)))
}

/// The plan SQLite chooses for a query diesel renders, its steps joined by `; `. The binds
/// are left unset (NULL): the plan depends on the query's shape, not on the values.
#[cfg(test)]
fn query_plan<Q>(conn: &mut SqliteConnection, query: &Q) -> Result<String, domain::BoxError>
where
    Q: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
{
    #[derive(QueryableByName)]
    struct PlanStep {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    let rendered = diesel::debug_query::<diesel::sqlite::Sqlite, _>(query).to_string();
    let sql = rendered.split(" -- binds:").next().unwrap_or_default();
    let steps = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}")).load::<PlanStep>(conn)?;
    Ok(steps
        .into_iter()
        .map(|s| s.detail)
        .collect::<Vec<_>>()
        .join("; "))
}

#[async_trait::async_trait]
impl domain::ports::Readiness for SqliteStore {
    async fn ready(&self) -> Result<(), domain::BoxError> {
        self.ping().await.map_err(Into::into)
    }
}
