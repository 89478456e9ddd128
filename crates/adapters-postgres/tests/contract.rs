//! The port contract suite and PostgreSQL-specific checks, each against a new database.
//!
//! Needs `TEST_DATABASE_URL` (a server URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`); without it every test says so on stderr
//! and returns, and under `CI=true` fails instead.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use adapters_postgres::{PgPoolSettings, PostgresError, PostgresStore};
use chrono::DateTime;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use domain::model::{Email, NewUser, PasswordHash, PersonName, Role, UserId, Username};
use domain::ports::{Readiness, StoreError, UserStore};
use ums_tests::support::env::test_database_url;
use ums_tests::support::postgres::TestDatabase;
use uuid::Uuid;

const SETTINGS: PgPoolSettings = PgPoolSettings {
    pool_size: 4,
    connect_timeout: Duration::from_secs(10),
    statement_timeout: Duration::from_secs(10),
};

/// A migrated store on a new database (dropped with the guard), or `None` when no server is
/// configured.
async fn fresh() -> Option<(PostgresStore, TestDatabase)> {
    let server = test_database_url()?;
    let database = TestDatabase::create(&server);
    let store = PostgresStore::open(&database.url, SETTINGS).expect("open the store");
    store.run_migrations().expect("migrate");
    Some((store, database))
}

ums_tests::store_contract_tests!(optional fresh);

/// Checks of what the contract cannot see: settings, timeouts, exhaustion, secrets.
mod postgres_specific {
    use super::*;

    const PASSWORD: &str = "Pw-Secret-4711";

    fn user(n: u128) -> NewUser {
        NewUser {
            id: UserId::from_uuid(Uuid::from_u128(n)),
            email: Email::parse(&format!("user{n}@example.com")).unwrap(),
            username: Username::parse(&format!("user{n}")).unwrap(),
            first_name: PersonName::parse("Ada").unwrap(),
            last_name: PersonName::default(),
            role: Role::User,
            is_active: true,
            email_verified: false,
            password_hash: PasswordHash::new("$2b$04$postgres".to_owned()),
            created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    /// A new database and a migrated store on it with these settings.
    fn store_with(settings: PgPoolSettings) -> Option<(PostgresStore, TestDatabase)> {
        let server = test_database_url()?;
        let database = TestDatabase::create(&server);
        let store = PostgresStore::open(&database.url, settings).unwrap();
        store.run_migrations().unwrap();
        Some((store, database))
    }

    /// `url` (`scheme://user@host...`) with `password` added to its user info.
    fn with_password(url: &str, user: &str, password: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let hosts = rest.rsplit_once('@').map_or(rest, |(_, hosts)| hosts);
        format!("{scheme}://{user}:{password}@{hosts}")
    }

    /// The whole text of an error: `Display`, `Debug` and every source.
    fn everything_said(error: &PostgresError) -> String {
        let mut text = format!("{error} | {error:?}");
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(&format!(" | {cause} | {cause:?}"));
            source = cause.source();
        }
        text
    }

    /// Holds `ACCESS EXCLUSIVE` on `users` from a connection of its own until dropped, so
    /// every query of the store on that table waits.
    struct TableLock(PgConnection);

    impl TableLock {
        fn take(url: &str) -> Self {
            let mut conn = PgConnection::establish(url).unwrap();
            conn.batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE;")
                .unwrap();
            Self(conn)
        }

        /// Waits until `n` other sessions of the database wait for a lock.
        fn await_waiters(&mut self, n: i64) {
            #[derive(QueryableByName)]
            struct Count {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                waiting: i64,
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let count = diesel::sql_query(
                    "SELECT count(*) AS waiting FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                )
                .get_result::<Count>(&mut self.0)
                .unwrap();
                if count.waiting >= n {
                    return;
                }
                assert!(Instant::now() < deadline, "no query started waiting");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    impl Drop for TableLock {
        fn drop(&mut self) {
            let _ = self.0.batch_execute("ROLLBACK");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_pooled_connection_has_the_session_settings() {
        let Some((store, _database)) = store_with(PgPoolSettings {
            pool_size: 3,
            statement_timeout: Duration::from_millis(1500),
            ..SETTINGS
        }) else {
            return;
        };
        let settings = store.connection_settings().await.unwrap();
        assert_eq!(settings.len(), 3, "one entry per connection");
        for s in settings {
            assert_eq!(s.statement_timeout, "1500ms");
            assert_eq!(s.time_zone, "UTC");
        }
        store.ping().await.unwrap();
        Readiness::ready(&store).await.unwrap();

        let Some((store, _database)) = store_with(SETTINGS) else {
            return;
        };
        for s in store.connection_settings().await.unwrap() {
            assert_eq!(s.statement_timeout, "10s");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_statement_over_the_timeout_is_unavailable() {
        let Some((store, database)) = store_with(PgPoolSettings {
            pool_size: 1,
            statement_timeout: Duration::from_millis(500),
            ..SETTINGS
        }) else {
            return;
        };
        let lock = TableLock::take(&database.url);
        let started = Instant::now();
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            store.find_by_id(UserId::from_uuid(Uuid::from_u128(1))),
        )
        .await
        .expect("the server cancels the statement; without the timeout it would wait for ever");
        let waited = started.elapsed();
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "got {result:?}"
        );
        assert!(
            waited >= Duration::from_millis(450) && waited < Duration::from_secs(5),
            "cancelled after the statement timeout, not {waited:?}"
        );

        drop(lock);
        let stored = store.insert(user(1)).await.unwrap();
        assert_eq!(
            store.find_by_id(stored.id).await.unwrap(),
            Some(stored),
            "the connection is still usable"
        );
    }

    /// With the only connection held, further calls wait on the async side and fail with
    /// `Unavailable` after about the connection timeout. They do not occupy blocking threads
    /// meanwhile: on a runtime with two blocking threads, other blocking work (bcrypt, in the
    /// service) still runs at once, and the calls all fail together rather than one blocking
    /// thread's wait after another.
    #[test]
    fn an_exhausted_pool_fails_fast_instead_of_piling_up() {
        const WAIT: Duration = Duration::from_secs(1);
        let Some((store, database)) = store_with(PgPoolSettings {
            pool_size: 1,
            connect_timeout: WAIT,
            statement_timeout: Duration::from_secs(30),
        }) else {
            return;
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut lock = TableLock::take(&database.url);
        runtime.block_on(async move {
            // The only connection is taken by a query that waits for the lock.
            let holder = tokio::spawn({
                let store = store.clone();
                async move {
                    store
                        .find_by_id(UserId::from_uuid(Uuid::from_u128(1)))
                        .await
                }
            });
            lock.await_waiters(1);

            let started = Instant::now();
            let waiting: Vec<_> = (0..8u128)
                .map(|n| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store
                            .find_by_id(UserId::from_uuid(Uuid::from_u128(n)))
                            .await
                    })
                })
                .collect();
            // Let every call get as far as it can before other blocking work is asked for.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let other_blocking_work =
                tokio::time::timeout(Duration::from_secs(1), tokio::task::spawn_blocking(|| 42))
                    .await;
            assert_eq!(
                other_blocking_work.ok().map(Result::unwrap),
                Some(42),
                "blocking threads are free while the calls wait"
            );
            for call in waiting {
                let result = call.await.unwrap();
                assert!(
                    matches!(result, Err(StoreError::Unavailable(_))),
                    "got {result:?}"
                );
            }
            let waited = started.elapsed();
            assert!(
                waited >= WAIT && waited < WAIT * 3,
                "the calls waited about the connection timeout, together, not {waited:?}"
            );
            let ping = store.ping().await;
            assert!(
                matches!(ping, Err(StoreError::Unavailable(_))),
                "got {ping:?}"
            );

            drop(lock);
            assert_eq!(holder.await.unwrap().unwrap(), None, "the holder completes");
            store.ping().await.unwrap();
        });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_vanished_database_is_unavailable_not_a_hang() {
        const WAIT: Duration = Duration::from_secs(2);
        let Some((store, database)) = store_with(PgPoolSettings {
            pool_size: 1,
            connect_timeout: WAIT,
            ..SETTINGS
        }) else {
            return;
        };
        store.ping().await.unwrap();
        let mut server = PgConnection::establish(&test_database_url().unwrap()).unwrap();
        diesel::sql_query(format!("DROP DATABASE \"{}\" WITH (FORCE)", database.name))
            .execute(&mut server)
            .unwrap();

        let started = Instant::now();
        let result = store.ping().await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "got {result:?}"
        );
        assert!(Readiness::ready(&store).await.is_err());
        assert!(
            started.elapsed() < WAIT * 4,
            "gave up after about the connection timeout, not {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn errors_and_debug_never_show_the_password() {
        let Some(server) = test_database_url() else {
            return;
        };
        let database = TestDatabase::create(&server);
        let refused = PgPoolSettings {
            connect_timeout: Duration::from_secs(2),
            ..SETTINGS
        };
        for (url, why) in [
            (
                format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/postgres"),
                "nothing listens there",
            ),
            (
                // libpq quotes a malformed escape back in its message.
                format!("postgres://postgres:{PASSWORD}%zz@127.0.0.1:1/postgres"),
                "malformed URL",
            ),
            (
                with_password(&database.url, "ums_no_such_role", PASSWORD),
                "unknown role",
            ),
            (
                format!("host=127.0.0.1 port=1 user=postgres password={PASSWORD}"),
                "key/value form",
            ),
        ] {
            let error = PostgresStore::open(&url, refused).expect_err(why);
            let said = everything_said(&error);
            assert!(!said.contains(PASSWORD), "{why}: {said}");
            assert!(
                matches!(error, PostgresError::Connect { .. }),
                "{why}: {said}"
            );
        }

        // A server that trusts the client ignores the password; it must still not show.
        let url = with_password(&database.url, "postgres", PASSWORD);
        let store = PostgresStore::open(&url, SETTINGS).unwrap();
        let debug = format!("{store:?}");
        assert!(!debug.contains(PASSWORD), "{debug}");
        assert!(debug.contains(":***@"), "{debug}");
    }

    #[test]
    fn invalid_settings_are_refused_before_connecting() {
        let url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/postgres");
        for settings in [
            PgPoolSettings {
                pool_size: 0,
                ..SETTINGS
            },
            PgPoolSettings {
                connect_timeout: Duration::ZERO,
                ..SETTINGS
            },
            PgPoolSettings {
                statement_timeout: Duration::ZERO,
                ..SETTINGS
            },
            PgPoolSettings {
                statement_timeout: Duration::from_secs(30 * 24 * 3600),
                ..SETTINGS
            },
        ] {
            let result = PostgresStore::open(&url, settings);
            assert!(
                matches!(result, Err(PostgresError::InvalidSettings(_))),
                "{settings:?}: {result:?}"
            );
        }
    }

    #[test]
    fn instances_starting_together_apply_each_migration_once() {
        let Some(server) = test_database_url() else {
            return;
        };
        let database = TestDatabase::create(&server);
        let results: Vec<_> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        PostgresStore::open(&database.url, SETTINGS)
                            .unwrap()
                            .run_migrations()
                    })
                })
                .collect();
            starts.into_iter().map(|s| s.join().unwrap()).collect()
        });
        let mut applied: Vec<_> = results.into_iter().map(Result::unwrap).collect();
        applied.sort();
        assert_eq!(
            applied,
            vec![vec![], vec![], vec!["20261121000000".to_owned()]]
        );
    }

    #[tokio::test]
    async fn data_survives_closing_and_reopening() {
        let Some((store, database)) = store_with(SETTINGS) else {
            return;
        };
        let stored = store.insert(user(1)).await.unwrap();
        drop(store);

        let reopened = PostgresStore::open(&database.url, SETTINGS).unwrap();
        assert_eq!(reopened.run_migrations().unwrap(), Vec::<String>::new());
        assert_eq!(reopened.find_by_id(stored.id).await.unwrap(), Some(stored));
    }

    // U+0000, which PostgreSQL's jsonb cannot hold, is refused by `Preferences::parse`
    // before any store sees it (domain unit test and the black-box PATCH /users/me test).
}
