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
use domain::model::{Email, Journal, NewUser, PasswordHash, PersonName, Role, UserId, Username};
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

/// Makes every later insert into `audit_events` fail, through a connection of its own: a
/// trigger raising an exception, which aborts the statement and so the transaction.
fn break_audit(database: &TestDatabase) {
    let mut conn = PgConnection::establish(&database.url).expect("connect to break the audit");
    conn.batch_execute(
        "CREATE FUNCTION ums_test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'audit_events refuses inserts (contract test)'; END $$; \
         CREATE TRIGGER ums_test_refuse_audit BEFORE INSERT ON audit_events \
         FOR EACH ROW EXECUTE FUNCTION ums_test_refuse_audit();",
    )
    .expect("install the trigger");
}

ums_tests::store_contract_tests!(optional fresh, break_audit);
ums_tests::service_account_contract_tests!(optional fresh, break_audit);

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
    pub(super) fn store_with(settings: PgPoolSettings) -> Option<(PostgresStore, TestDatabase)> {
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
        let stored = store.insert(user(1), Journal::default()).await.unwrap();
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
            vec![
                vec![],
                vec![],
                vec![
                    "20261121000000".to_owned(),
                    "20261203000000".to_owned(),
                    "20261203000002".to_owned(),
                    "20261203000003".to_owned(),
                    "20261204000000".to_owned(),
                    "20261204000100".to_owned(),
                    "20261204000200".to_owned()
                ]
            ]
        );
    }

    /// What the outbox port cannot show: a delivered message's sealed bytes are gone from the
    /// database, a row of a kind the adapter does not know is given up by the claim that
    /// meets it (dead from the claim's `now`, its kind in `last_error`, no lease), never
    /// delivered as something else and never in the way of the messages behind it, and a
    /// claim skips the rows another transaction has locked instead of waiting for them (`FOR
    /// UPDATE SKIP LOCKED`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_outbox_forgets_delivered_mail_skips_locked_rows_and_gives_up_unknown_kinds() {
        use domain::model::{MailKind, SealedMail};
        use domain::ports::{AuditLog, Outbox, OutboxStatus};

        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        #[derive(QueryableByName, Debug, PartialEq)]
        struct GivenUp {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
            failed_at: Option<DateTime<chrono::Utc>>,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            last_error: Option<String>,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
            lease_until: Option<DateTime<chrono::Utc>>,
            #[diesel(sql_type = diesel::sql_types::Integer)]
            attempts: i32,
        }
        let Some((store, database)) = store_with(SETTINGS) else {
            return;
        };
        let mut conn = PgConnection::establish(&database.url).unwrap();
        let kept = |conn: &mut PgConnection| {
            diesel::sql_query("SELECT count(*) AS n FROM outbox WHERE payload IS NOT NULL")
                .get_result::<Count>(conn)
                .unwrap()
                .n
        };
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let now = t0 + chrono::TimeDelta::seconds(10);
        let lease = t0 + chrono::TimeDelta::minutes(5);
        let mail = |n: u128| SealedMail {
            id: Uuid::from_u128(n),
            kind: MailKind::Verification,
            created_at: t0 + chrono::TimeDelta::seconds(i64::try_from(n).unwrap()),
            sealed: vec![0, 1, 2, 255, u8::try_from(n).unwrap()],
        };
        store
            .append(Journal::default().with_mail(mail(1)).with_mail(mail(2)))
            .await
            .unwrap();
        assert_eq!(kept(&mut conn), 2);

        // Another transaction holds the oldest row: a claim passes it over. (One that waited
        // for the lock would wait until the statement timeout, as this connection holds it
        // until after the claim, and fail.)
        conn.batch_execute(
            "BEGIN; SELECT id FROM outbox WHERE id = '00000000-0000-0000-0000-000000000001' \
             FOR UPDATE;",
        )
        .unwrap();
        let claimed = store.claim(now, lease, 10).await.unwrap();
        assert_eq!(
            claimed.iter().map(|c| c.mail.clone()).collect::<Vec<_>>(),
            vec![mail(2)],
            "the locked row is skipped"
        );
        conn.batch_execute("ROLLBACK").unwrap();
        let claimed = store.claim(now, lease, 10).await.unwrap();
        assert_eq!(claimed.len(), 1, "the released row is claimed now");
        assert_eq!(claimed[0].mail, mail(1));

        store.mark_sent(mail(1).id, lease).await.unwrap();
        assert_eq!(
            kept(&mut conn),
            1,
            "the sealed bytes are dropped on delivery"
        );

        // Two rows of unknown kinds, queued before everything else: the head of the queue.
        // (Message 2 is still leased until `lease`.)
        conn.batch_execute(
            "INSERT INTO outbox (id, kind, created_at, payload, attempts, next_attempt_at) \
             VALUES ('00000000-0000-0000-0000-000000000003', 'spam', '2000-01-01T00:00:00Z', \
                     '\\x00', 0, '2000-01-01T00:00:00Z'), \
                    ('00000000-0000-0000-0000-000000000004', 'eggs', '2000-01-01T00:00:01Z', \
                     '\\x00', 0, '2000-01-01T00:00:01Z')",
        )
        .unwrap();
        let behind = mail(5);
        store
            .append(Journal::default().with_mail(behind.clone()))
            .await
            .unwrap();
        let first = store.claim(now, lease, 1).await.unwrap();
        assert_eq!(
            first,
            vec![],
            "the unknown message at the head counts towards the limit and is not returned"
        );
        let claimed = store.claim(now, lease, 10).await.unwrap();
        assert_eq!(
            claimed.iter().map(|c| c.mail.clone()).collect::<Vec<_>>(),
            vec![behind],
            "the message behind the unknown ones is claimed"
        );
        for (id, kind) in [
            ("00000000-0000-0000-0000-000000000003", "spam"),
            ("00000000-0000-0000-0000-000000000004", "eggs"),
        ] {
            let row = diesel::sql_query(
                "SELECT failed_at, last_error, lease_until, attempts FROM outbox \
                 WHERE id = $1::uuid",
            )
            .bind::<diesel::sql_types::Text, _>(id)
            .get_result::<GivenUp>(&mut conn)
            .unwrap();
            assert_eq!(
                row,
                GivenUp {
                    failed_at: Some(now),
                    last_error: Some(format!("unknown kind {kind}")),
                    lease_until: None,
                    attempts: 0,
                },
                "{kind}: given up at the claim's now, no delivery attempted"
            );
        }
        assert_eq!(
            store.status(now).await.unwrap(),
            OutboxStatus {
                pending: 2,
                retrying: 0,
                dead: 2
            },
            "the unknown ones are dead; messages 2 and 5 pending"
        );
        let later = lease + chrono::TimeDelta::hours(1);
        let mut again: Vec<Uuid> = store
            .claim(later, later, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.mail.id)
            .collect();
        again.sort();
        assert_eq!(
            again,
            vec![mail(2).id, mail(5).id],
            "a given-up message is never claimed again"
        );
    }

    #[tokio::test]
    async fn data_survives_closing_and_reopening() {
        let Some((store, database)) = store_with(SETTINGS) else {
            return;
        };
        let stored = store.insert(user(1), Journal::default()).await.unwrap();
        drop(store);

        let reopened = PostgresStore::open(&database.url, SETTINGS).unwrap();
        assert_eq!(reopened.run_migrations().unwrap(), Vec::<String>::new());
        assert_eq!(reopened.find_by_id(stored.id).await.unwrap(), Some(stored));
    }

    // U+0000, which PostgreSQL's jsonb cannot hold, is refused by `Preferences::parse`
    // before any store sees it (domain unit test and the black-box PATCH /users/me test).
}

/// PostgreSQL runs READ COMMITTED, where "count the other administrators, then write" lets
/// two concurrent removals each count the other's administrator. These race the removal of
/// the only two administrators from many tasks at once, released together by a barrier on a
/// pool of 8 connections, and check that exactly one of the two goes, that everything
/// refused wrote nothing (its audit event included), and that nothing deadlocked.
mod last_admin_races {
    use std::sync::Arc;

    use domain::model::{
        AuditAction, AuditEvent, AuditEventId, AuditTarget, Membership, Tenant, TenantId,
        TenantRef, TenantRole, TenantSlug,
    };
    use domain::ports::{
        Assumed, AuditFilter, AuditLog, LastAdmin, PageRequest, TenantStore, UserChanges,
    };
    use tokio::sync::Barrier;

    use super::postgres_specific::store_with;
    use super::*;

    const TASKS: usize = 32;
    const ROUNDS: u128 = 4;
    const RACE_SETTINGS: PgPoolSettings = PgPoolSettings {
        pool_size: 8,
        ..SETTINGS
    };

    fn new_user(n: u128, role: Role) -> NewUser {
        NewUser {
            id: UserId::from_uuid(Uuid::from_u128(n)),
            email: Email::parse(&format!("racer{n}@example.com")).unwrap(),
            username: Username::parse(&format!("racer{n}")).unwrap(),
            first_name: PersonName::default(),
            last_name: PersonName::default(),
            role,
            is_active: true,
            email_verified: true,
            password_hash: PasswordHash::new("$2b$04$postgres".to_owned()),
            created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    /// A journal of one event with a unique id, so that the written ones can be counted.
    fn journal(n: usize, target: AuditTarget) -> Journal {
        Journal::of(AuditEvent {
            id: AuditEventId::from_uuid(Uuid::now_v7()),
            at: DateTime::from_timestamp(1_800_000_100 + i64::try_from(n).unwrap(), 0).unwrap(),
            actor: None,
            tenant: None,
            action: AuditAction::UserUpdated,
            target,
            ip: None,
            request_id: None,
            details: serde_json::Map::new(),
        })
    }

    async fn audit_events(store: &PostgresStore) -> u64 {
        AuditLog::list(
            store,
            AuditFilter::default(),
            PageRequest {
                page: 1,
                per_page: 1,
            },
        )
        .await
        .unwrap()
        .total
    }

    /// Runs `op(i)` for every task index at once, returning the results in index order.
    async fn race<F, Fut, T>(op: F) -> Vec<Result<T, StoreError>>
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let barrier = Arc::new(Barrier::new(TASKS));
        let op = Arc::new(op);
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let (barrier, op) = (Arc::clone(&barrier), Arc::clone(&op));
                tokio::spawn(async move {
                    barrier.wait().await;
                    op(i).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    }

    /// Two active system administrators; half the tasks demote one or deactivate it, half
    /// the other, each expecting version 1. Exactly one call succeeds: the others on its
    /// target find the version moved on (`StaleVersion`), those on the other one find it the
    /// last administrator (`LastAdmin(System)`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn concurrent_demotions_leave_one_system_admin() {
        for round in 0..ROUNDS {
            let Some((store, _database)) = store_with(RACE_SETTINGS) else {
                return;
            };
            let admins = [1, 2].map(|n| new_user(n, Role::Admin));
            for admin in &admins {
                store
                    .insert(admin.clone(), Journal::default())
                    .await
                    .unwrap();
            }
            let ids = admins.map(|a| a.id);

            let results = race({
                let store = store.clone();
                move |i| {
                    let store = store.clone();
                    async move {
                        let target = ids[i % 2];
                        let changes = if i % 4 < 2 {
                            UserChanges {
                                role: Some(Role::User),
                                ..UserChanges::default()
                            }
                        } else {
                            UserChanges {
                                is_active: Some(false),
                                ..UserChanges::default()
                            }
                        };
                        let at = DateTime::from_timestamp(1_800_000_100, 0).unwrap();
                        let journal = journal(i, AuditTarget::User(target));
                        UserStore::update(&store, target, changes, Some(1), at, journal)
                            .await
                            .map(|_| target)
                    }
                }
            })
            .await;

            let winners: Vec<UserId> = results
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .copied()
                .collect();
            assert_eq!(
                winners.len(),
                1,
                "round {round}: exactly one wins: {results:?}"
            );
            let loser = winners[0];
            for (i, result) in results.iter().enumerate() {
                match result {
                    Ok(_) => {}
                    Err(StoreError::StaleVersion) => assert_eq!(ids[i % 2], loser, "round {round}"),
                    Err(StoreError::LastAdmin(LastAdmin::System)) => {
                        assert_ne!(ids[i % 2], loser, "round {round}");
                    }
                    Err(other) => panic!("round {round}: task {i}: {other:?}"),
                }
            }
            let remaining: Vec<_> = [ids[0], ids[1]]
                .into_iter()
                .filter(|id| *id != loser)
                .collect();
            let survivor = store.find_by_id(remaining[0]).await.unwrap().unwrap();
            assert!(survivor.role == Role::Admin && survivor.is_active && survivor.version == 1);
            assert_eq!(
                audit_events(&store).await,
                1,
                "round {round}: only the winner's event"
            );
        }
    }

    /// A tenant whose only two administrators (ordinary system users) are each the target of
    /// every kind of removal at once: a demotion, a removal from the tenant, a deactivation
    /// of the account (which locks every tenant the user administers) and its deletion.
    /// Exactly one of the two stops being an active administrator; every call on the other
    /// is refused with `LastAdmin(Tenant(t))`, and only the calls that succeeded wrote their
    /// audit event.
    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn concurrent_removals_leave_one_tenant_admin() {
        let Some((store, _database)) = store_with(RACE_SETTINGS) else {
            return;
        };
        let created = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for round in 0..ROUNDS {
            let tenant = TenantId::from_uuid(Uuid::from_u128(0x7e4a_0000 + round));
            TenantStore::create(
                &store,
                Tenant {
                    id: tenant,
                    name: format!("Lab {round}"),
                    slug: TenantSlug::parse(&format!("lab-{round}")).unwrap(),
                    description: String::new(),
                    domain: String::new(),
                    settings: serde_json::Map::new(),
                    is_active: true,
                    created_at: created,
                    updated_at: created,
                    version: 1,
                },
                None,
                Journal::default(),
            )
            .await
            .unwrap();
            let users = [1, 2].map(|n| new_user(100 + 10 * round + n, Role::User));
            for user in &users {
                store
                    .insert(user.clone(), Journal::default())
                    .await
                    .unwrap();
                store
                    .add_member(
                        Membership {
                            tenant_id: tenant,
                            user_id: user.id,
                            role: TenantRole::Admin,
                            created_at: created,
                        },
                        Assumed::default(),
                        Journal::default(),
                    )
                    .await
                    .unwrap();
            }
            let ids = users.map(|u| u.id);
            let events_before = audit_events(&store).await;

            let results = race({
                let store = store.clone();
                move |i| {
                    let store = store.clone();
                    async move {
                        let target = ids[i % 2];
                        let journal = journal(i, AuditTarget::User(target));
                        match (i / 2) % 4 {
                            0 => store
                                .change_role(
                                    tenant,
                                    target,
                                    TenantRole::Member,
                                    Assumed::default(),
                                    journal,
                                )
                                .await
                                .map(drop),
                            1 => {
                                store
                                    .remove_member(tenant, target, Assumed::default(), journal)
                                    .await
                            }
                            2 => {
                                let changes = UserChanges {
                                    is_active: Some(false),
                                    ..UserChanges::default()
                                };
                                UserStore::update(&store, target, changes, None, created, journal)
                                    .await
                                    .map(drop)
                            }
                            _ => UserStore::delete(&store, target, None, journal).await,
                        }
                    }
                }
            })
            .await;

            let members = store
                .members(
                    tenant,
                    PageRequest {
                        page: 1,
                        per_page: 10,
                    },
                )
                .await
                .unwrap()
                .items;
            let active_admins: Vec<UserId> = members
                .iter()
                .filter(|m| m.membership.role == TenantRole::Admin && m.user.is_active)
                .map(|m| m.user.id)
                .collect();
            assert_eq!(active_admins.len(), 1, "round {round}: {results:?}");
            let survivor = active_admins[0];
            let mut succeeded = 0;
            for (i, result) in results.iter().enumerate() {
                if ids[i % 2] == survivor {
                    assert!(
                        matches!(result, Err(StoreError::LastAdmin(LastAdmin::Tenant(t))) if t.as_uuid() == tenant.as_uuid()),
                        "round {round}: task {i} on the survivor: {result:?}"
                    );
                } else {
                    match result {
                        Ok(()) => succeeded += 1,
                        Err(StoreError::NotFound) => {}
                        Err(other) => panic!("round {round}: task {i}: {other:?}"),
                    }
                }
            }
            assert!(succeeded >= 1, "round {round}: {results:?}");
            assert_eq!(
                audit_events(&store).await - events_before,
                succeeded,
                "round {round}: the refused calls wrote no event"
            );
            let survivor = store.find_by_id(survivor).await.unwrap().unwrap();
            assert!(survivor.is_active && survivor.version == 1);
            assert_eq!(
                store.role_of(tenant, survivor.id).await.unwrap(),
                Some(TenantRole::Admin)
            );
            assert!(
                TenantStore::find(&store, &TenantRef::Id(tenant))
                    .await
                    .unwrap()
                    .is_some()
            );
        }
    }

    /// A deactivation of a user racing that user's promotion in a tenant and the demotion of
    /// the tenant's other admin: the deactivation cannot know, before it locks the user row,
    /// that the user is about to become an admin there, so it reads the user's admin
    /// memberships again once it holds that lock and starts over when they grew. Whatever the
    /// interleaving, the tenant keeps an active administrator.
    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn a_deactivation_racing_a_promotion_keeps_a_tenant_admin() {
        let Some((store, _database)) = store_with(RACE_SETTINGS) else {
            return;
        };
        let created = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for round in 0..40u128 {
            let tenant = TenantId::from_uuid(Uuid::from_u128(0x7e4a_1000 + round));
            TenantStore::create(
                &store,
                Tenant {
                    id: tenant,
                    name: format!("Lab {round}"),
                    slug: TenantSlug::parse(&format!("promo-{round}")).unwrap(),
                    description: String::new(),
                    domain: String::new(),
                    settings: serde_json::Map::new(),
                    is_active: true,
                    created_at: created,
                    updated_at: created,
                    version: 1,
                },
                None,
                Journal::default(),
            )
            .await
            .unwrap();
            let [admin, promoted] = [1, 2].map(|n| new_user(1000 + 10 * round + n, Role::User));
            for (user, role) in [(&admin, TenantRole::Admin), (&promoted, TenantRole::Member)] {
                store
                    .insert(user.clone(), Journal::default())
                    .await
                    .unwrap();
                store
                    .add_member(
                        Membership {
                            tenant_id: tenant,
                            user_id: user.id,
                            role,
                            created_at: created,
                        },
                        Assumed::default(),
                        Journal::default(),
                    )
                    .await
                    .unwrap();
            }
            let (admin, promoted) = (admin.id, promoted.id);
            let barrier = Arc::new(Barrier::new(3));
            let promote = tokio::spawn({
                let (store, barrier) = (store.clone(), Arc::clone(&barrier));
                async move {
                    barrier.wait().await;
                    store
                        .change_role(
                            tenant,
                            promoted,
                            TenantRole::Admin,
                            Assumed::default(),
                            Journal::default(),
                        )
                        .await
                        .map(drop)
                }
            });
            let demote = tokio::spawn({
                let (store, barrier) = (store.clone(), Arc::clone(&barrier));
                async move {
                    barrier.wait().await;
                    // Give the promotion a head start, so that the demotion often sees it.
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    store
                        .change_role(
                            tenant,
                            admin,
                            TenantRole::Member,
                            Assumed::default(),
                            Journal::default(),
                        )
                        .await
                        .map(drop)
                }
            });
            let deactivate = tokio::spawn({
                let (store, barrier) = (store.clone(), Arc::clone(&barrier));
                async move {
                    barrier.wait().await;
                    let changes = UserChanges {
                        is_active: Some(false),
                        ..UserChanges::default()
                    };
                    UserStore::update(&store, promoted, changes, None, created, Journal::default())
                        .await
                        .map(drop)
                }
            });
            let results = [
                promote.await.unwrap(),
                demote.await.unwrap(),
                deactivate.await.unwrap(),
            ];
            for result in &results {
                assert!(
                    matches!(
                        result,
                        Ok(()) | Err(StoreError::LastAdmin(LastAdmin::Tenant(_)))
                    ),
                    "round {round}: {results:?}"
                );
            }
            let members = store
                .members(
                    tenant,
                    PageRequest {
                        page: 1,
                        per_page: 10,
                    },
                )
                .await
                .unwrap()
                .items;
            assert!(
                members
                    .iter()
                    .any(|m| m.membership.role == TenantRole::Admin && m.user.is_active),
                "round {round}: no active admin left after {results:?}: {members:?}"
            );
        }
    }
}
