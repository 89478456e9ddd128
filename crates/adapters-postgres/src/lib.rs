//! UMS storage on PostgreSQL (diesel + r2d2): the production store.
//!
//! [`PostgresStore`] implements the domain's [`UserStore`](domain::ports::UserStore),
//! [`SessionStore`](domain::ports::SessionStore), [`TenantStore`](domain::ports::TenantStore),
//! [`AuditLog`](domain::ports::AuditLog), [`Readiness`](domain::ports::Readiness) and
//! [`ServiceAccountStore`](domain::ports::ServiceAccountStore) ports on one database,
//! behaving exactly as the SQLite adapter does (the shared contract suite checks both).
//!
//! - **Blocking work, bounded.** Diesel is synchronous, so every pool checkout and query runs
//!   on tokio's blocking pool ([`tokio::task::spawn_blocking`]), inside the caller's tracing
//!   span. Before spawning, a call takes a permit from a semaphore with as many permits as the
//!   pool has connections, waiting at most `connect_timeout`: when every connection is busy,
//!   callers wait on the async side and then fail with `StoreError::Unavailable`, instead of
//!   piling up blocked threads that wait for a connection.
//! - **Every connection** gets `SET statement_timeout` (from [`PgPoolSettings`]) and
//!   `SET TIME ZONE 'UTC'`; each connection attempt is bounded by libpq's `connect_timeout`,
//!   taken from the settings unless the URL sets it.
//! - **A change and its journal are one transaction**: the audit events, one-time tokens and
//!   outbox mail a store method is given are inserted in the transaction that makes the
//!   change, so on any error none of them is written. The [`Outbox`](domain::ports::Outbox)
//!   is claimed with `FOR UPDATE SKIP LOCKED`, so concurrent claims, from any number of
//!   instances, never return the same message and never wait for one another.
//! - **No change removes the last administrator**, even under concurrency: the guarded
//!   transactions are serialised by locks taken in one fixed order (an advisory lock for
//!   system administrators, then the tenant rows by id for tenant administrators, then the
//!   user row); `src/guards.rs` describes the protocol.
//! - **Every multi-row change is one transaction** (READ COMMITTED). Refresh-token rotation
//!   locks the token row, then its session row (`SELECT ... FOR NO KEY UPDATE`), so of
//!   concurrent presenters of one token exactly one rotates, and a revocation either precedes
//!   the rotation or waits for it. One-time e-mail tokens are spent with
//!   `UPDATE ... WHERE used_at IS NULL RETURNING`.
//! - **Lists** read their page and their total in one `REPEATABLE READ` read-only
//!   transaction, so the two agree. The user search repeats the expression of the trigram
//!   index `users_search_trgm_idx` verbatim (with `LIKE` wildcards in `q` escaped, and both
//!   sides folded by PostgreSQL's own `lower()`, whatever the database's locale), and orders
//!   e-mail addresses and usernames by code point (`COLLATE "C"`), as SQLite does.
//! - **Timestamps** are `timestamptz`, kept to the microsecond (sub-microsecond precision is
//!   dropped, as the SQLite adapter drops it).
//! - **Secrets**: the URL's password never appears in an error, a log line or `Debug`.
//! - A call whose future is dropped still runs to completion (commit or rollback) on the
//!   blocking pool, holding its permit until then; it is never left half-done.
//! - libpq is compiled in (pq-sys `bundled`, with OpenSSL `vendored` for TLS): building needs
//!   neither libpq-dev nor libssl-dev.

mod audit;
mod conninfo;
mod error;
mod guards;
mod outbox;
mod rows;
mod schema;
mod service_accounts;
mod sessions;
mod tenants;
mod users;

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, HandleError, Pool};
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use domain::BoxError;
use domain::ports::StoreError;
use tokio::sync::Semaphore;

pub use error::PostgresError;

use conninfo::{ConnInfo, Redactor};
use error::{TxError, db_error};

/// The migrations in `migrations/postgres`, compiled into the binary.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Key of the session-level advisory lock taken while migrating, so that instances starting
/// together apply each migration once ("UMS-MIGR" in ASCII).
const MIGRATION_LOCK: i64 = 0x554d_532d_4d49_4752;

/// The longest `statement_timeout` PostgreSQL accepts, in milliseconds.
const MAX_STATEMENT_TIMEOUT_MS: u128 = i32::MAX as u128;

type PgPool = Pool<ConnectionManager<PgConnection>>;

/// How [`PostgresStore::open`] sizes and bounds its connection pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgPoolSettings {
    /// Connections kept open; also the number of calls that may run at once.
    pub pool_size: u32,
    /// Longest wait for a connection: to establish one (libpq's `connect_timeout`, rounded up
    /// to whole seconds, at least 2), to check one out of the pool, and for a call to get its
    /// turn when every connection is busy.
    pub connect_timeout: Duration,
    /// Longest a single statement may run before the server cancels it (`SET
    /// statement_timeout`, rounded up to whole milliseconds); a cancelled statement is
    /// `StoreError::Unavailable`.
    pub statement_timeout: Duration,
}

/// The settings PostgreSQL reports for one pooled connection; see
/// [`PostgresStore::connection_settings`].
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ConnectionSettings {
    /// `SHOW statement_timeout`, as the server formats it (`10s`, `1500ms`).
    #[diesel(sql_type = Text)]
    pub statement_timeout: String,
    /// `SHOW TimeZone`: `UTC`.
    #[diesel(sql_type = Text)]
    pub time_zone: String,
}

/// The PostgreSQL store: a cheap-to-clone handle on a pool of connections to one database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// One permit per pooled connection; see [`PostgresStore::run`].
    permits: Arc<Semaphore>,
    settings: PgPoolSettings,
    /// The URL with its password replaced by `***`.
    shown: Arc<str>,
    redactor: Redactor,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.pool.state();
        f.debug_struct("PostgresStore")
            .field("database", &self.shown)
            .field("settings", &self.settings)
            .field("connections", &state.connections)
            .field("idle_connections", &state.idle_connections)
            .field("free_permits", &self.permits.available_permits())
            .finish()
    }
}

/// Applies the session settings to every connection the pool opens.
#[derive(Debug, Clone)]
struct SessionSettings {
    /// `SET statement_timeout = ...; SET TIME ZONE 'UTC'`.
    sql: String,
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&self.sql)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Logs the pool's failures to connect through `tracing`, password removed (r2d2's default
/// handler logs them through `log`, verbatim).
#[derive(Debug)]
struct LogConnectionErrors {
    shown: Arc<str>,
    redactor: Redactor,
}

impl HandleError<diesel::r2d2::Error> for LogConnectionErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(
            database = %self.shown,
            error = %self.redactor.scrub(&error.to_string()),
            "a PostgreSQL connection failed"
        );
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (a libpq URI `postgres://user:password@host:port/db`
    /// or key/value string) with a pool of `settings.pool_size` connections.
    ///
    /// Blocks while it connects (at most about `connect_timeout` per step); call it at
    /// start-up, before serving. A first connection is made alone, so that a refused login or
    /// an unknown database is reported at once, with libpq's reason.
    ///
    /// # Errors
    /// [`PostgresError::InvalidSettings`] for a zero pool size or timeout, or a statement
    /// timeout over `i32::MAX` milliseconds; [`PostgresError::Connect`] when the first
    /// connection fails; [`PostgresError::Configure`] when the session settings are refused;
    /// [`PostgresError::Pool`] when the pool cannot open its connections in time. None of
    /// them contains the URL's password.
    pub fn open(url: &str, settings: PgPoolSettings) -> Result<Self, PostgresError> {
        let session = SessionSettings {
            sql: session_sql(&settings)?,
        };
        let info = ConnInfo::new(url, settings.connect_timeout);
        let shown: Arc<str> = Arc::from(info.shown.as_str());
        let target = || info.shown.clone();

        let mut first = PgConnection::establish(&info.url).map_err(|e| PostgresError::Connect {
            target: target(),
            reason: info.redactor.scrub(&e.to_string()),
        })?;
        first
            .batch_execute(&session.sql)
            .map_err(|e| PostgresError::Configure {
                target: target(),
                reason: info.redactor.scrub(&e.to_string()),
            })?;
        drop(first);

        let pool = Pool::builder()
            .max_size(settings.pool_size)
            .connection_timeout(settings.connect_timeout)
            .connection_customizer(Box::new(session))
            .error_handler(Box::new(LogConnectionErrors {
                shown: Arc::clone(&shown),
                redactor: info.redactor.clone(),
            }))
            .build(ConnectionManager::<PgConnection>::new(&info.url))
            .map_err(|e| PostgresError::Pool {
                target: target(),
                reason: info.redactor.scrub(&e.to_string()),
            })?;
        tracing::info!(
            database = %shown,
            pool_size = settings.pool_size,
            "opened the PostgreSQL store"
        );
        Ok(Self {
            pool,
            permits: Arc::new(Semaphore::new(settings.pool_size as usize)),
            settings,
            shown,
            redactor: info.redactor,
        })
    }

    /// Applies every migration not yet applied, returning the versions it applied, oldest
    /// first. Holds an advisory lock meanwhile, so instances starting together do not race.
    /// Blocks; call it at start-up. Each statement is bounded by the statement timeout.
    ///
    /// # Errors
    /// [`PostgresError::Checkout`] or [`PostgresError::Migration`].
    pub fn run_migrations(&self) -> Result<Vec<String>, PostgresError> {
        let applied = self.migrating(|conn| {
            Ok(conn
                .run_pending_migrations(MIGRATIONS)?
                .into_iter()
                .map(|version| version.to_string())
                .collect::<Vec<_>>())
        })?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied PostgreSQL migrations");
        }
        Ok(applied)
    }

    /// Reverts every applied migration, newest first, returning the versions it reverted.
    /// This drops every table and all data: it is for tests of the migrations themselves.
    ///
    /// # Errors
    /// [`PostgresError::Checkout`] or [`PostgresError::Migration`].
    pub fn revert_all_migrations(&self) -> Result<Vec<String>, PostgresError> {
        self.migrating(|conn| {
            Ok(conn
                .revert_all_migrations(MIGRATIONS)?
                .into_iter()
                .map(|version| version.to_string())
                .collect())
        })
    }

    /// Runs `f` on one pooled connection while holding the migration advisory lock.
    fn migrating<T>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> Result<T, BoxError>,
    ) -> Result<T, PostgresError> {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| PostgresError::Checkout(self.redactor.scrub(&e.to_string())))?;
        let advisory = |function: &str, conn: &mut PgConnection| {
            diesel::sql_query(format!("SELECT {function}($1)"))
                .bind::<BigInt, _>(MIGRATION_LOCK)
                .execute(conn)
                .map_err(|e| PostgresError::Migration(Box::new(e)))
        };
        advisory("pg_advisory_lock", &mut conn)?;
        let result = f(&mut conn).map_err(PostgresError::Migration);
        // Unlock even when `f` failed: the connection goes back to the pool.
        let unlocked = advisory("pg_advisory_unlock", &mut conn);
        let value = result?;
        unlocked?;
        Ok(value)
    }

    /// Checks that a connection can be had and answers `SELECT 1`: the readiness probe.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when no connection is free or can be established within
    /// the connection timeout, or the server does not answer; [`StoreError::Unexpected`] when
    /// the query fails otherwise.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            diesel::sql_query("SELECT 1")
                .execute(conn)
                .map(drop)
                .map_err(db_error)
        })
        .await
    }

    /// The settings of every connection in the pool, read with all of them checked out at
    /// once (so each entry is a different connection). A diagnostic for start-up logs and
    /// tests: it holds the whole pool for a moment.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the pool cannot be emptied within the connection
    /// timeout; [`StoreError::Unexpected`] when a query fails.
    pub async fn connection_settings(&self) -> Result<Vec<ConnectionSettings>, StoreError> {
        let all = self.settings.pool_size;
        let permits = tokio::time::timeout(
            self.settings.connect_timeout,
            Arc::clone(&self.permits).acquire_many_owned(all),
        )
        .await
        .map_err(|_| busy(&self.settings))?
        .map_err(|e| StoreError::Unexpected(Box::new(e)))?;
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _permits = permits;
            let _entered = span.enter();
            let mut held = Vec::new();
            for _ in 0..all {
                held.push(
                    pool.get()
                        .map_err(|e| StoreError::Unavailable(Box::new(e)))?,
                );
            }
            held.iter_mut()
                .map(|conn| {
                    diesel::sql_query(
                        "SELECT current_setting('statement_timeout') AS statement_timeout, \
                                current_setting('TimeZone') AS time_zone",
                    )
                    .get_result::<ConnectionSettings>(&mut **conn)
                    .map_err(db_error)
                })
                .collect()
        })
        .await
        .map_err(|e| StoreError::Unexpected(Box::new(e)))?
    }

    /// Runs `f` with a pooled connection on tokio's blocking pool, inside the caller's tracing
    /// span, once a permit is free.
    ///
    /// The permit is awaited on the async side, for at most `connect_timeout`, so at most
    /// `pool_size` blocking threads ever wait on or use connections; it is released when `f`
    /// returns, even if the caller stopped waiting. No permit in time, or a checkout that
    /// times out, is `Unavailable`.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = tokio::time::timeout(
            self.settings.connect_timeout,
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await
        .map_err(|_| busy(&self.settings))?
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

/// Every connection stayed busy for the whole connection timeout.
fn busy(settings: &PgPoolSettings) -> StoreError {
    StoreError::Unavailable(
        format!(
            "all {} PostgreSQL connections stayed busy for {:?}",
            settings.pool_size, settings.connect_timeout
        )
        .into(),
    )
}

/// Validates the settings and renders what every connection runs first.
fn session_sql(settings: &PgPoolSettings) -> Result<String, PostgresError> {
    if settings.pool_size == 0 {
        return Err(PostgresError::InvalidSettings(
            "the pool size must be at least 1",
        ));
    }
    if settings.connect_timeout.is_zero() {
        return Err(PostgresError::InvalidSettings(
            "the connection timeout must be positive",
        ));
    }
    if settings.statement_timeout.is_zero() {
        // PostgreSQL reads 0 as "no limit"; the store promises bounded statements.
        return Err(PostgresError::InvalidSettings(
            "the statement timeout must be positive",
        ));
    }
    let millis = settings.statement_timeout.as_micros().div_ceil(1000);
    if millis > MAX_STATEMENT_TIMEOUT_MS {
        return Err(PostgresError::InvalidSettings(
            "the statement timeout must be at most 2147483647 ms",
        ));
    }
    Ok(format!(
        "SET statement_timeout = {millis}; SET TIME ZONE 'UTC';"
    ))
}

/// Runs `f` in one transaction: committed when `f` returns `Ok`, rolled back (nothing
/// written) when it returns `Err`.
fn transaction<T>(
    conn: &mut PgConnection,
    f: impl FnOnce(&mut PgConnection) -> Result<T, TxError>,
) -> Result<T, StoreError> {
    conn.transaction(f).map_err(StoreError::from)
}

/// How many times [`retrying_transaction`] starts over before giving up.
const MAX_ATTEMPTS: usize = 8;

/// Runs `f` in one transaction like [`transaction`], starting over in a new transaction each
/// time `f` returns [`TxError::Retry`] (at most [`MAX_ATTEMPTS`] times, then `Unavailable`).
/// For transactions that must take their locks in a fixed order but learn only after locking
/// that they needed one more.
fn retrying_transaction<T>(
    conn: &mut PgConnection,
    mut f: impl FnMut(&mut PgConnection) -> Result<T, TxError>,
) -> Result<T, StoreError> {
    for _ in 1..MAX_ATTEMPTS {
        match conn.transaction(&mut f) {
            Err(TxError::Retry) => tracing::debug!("the locked rows changed; starting over"),
            other => return other.map_err(StoreError::from),
        }
    }
    conn.transaction(f).map_err(StoreError::from)
}

/// Runs `f` in one `REPEATABLE READ` read-only transaction, so that every query in it sees
/// the same snapshot (a page and its total).
fn snapshot<T>(
    conn: &mut PgConnection,
    f: impl FnOnce(&mut PgConnection) -> Result<T, TxError>,
) -> Result<T, StoreError> {
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(f)
        .map_err(StoreError::from)
}

/// `LIMIT` and `OFFSET` of a page.
fn limit_offset(page: domain::ports::PageRequest) -> (i64, i64) {
    (
        i64::from(page.per_page),
        i64::try_from(page.offset()).unwrap_or(i64::MAX),
    )
}

/// A count read from PostgreSQL (never negative) as the port's `u64`.
fn total(count: i64) -> u64 {
    u64::try_from(count).unwrap_or_default()
}

#[async_trait::async_trait]
impl domain::ports::Readiness for PostgresStore {
    async fn ready(&self) -> Result<(), BoxError> {
        self.ping().await.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests;
