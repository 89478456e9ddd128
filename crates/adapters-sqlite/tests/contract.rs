//! The port contract suite and SQLite-specific checks, against a fresh database file each.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use adapters_sqlite::SqliteStore;
use chrono::DateTime;
use diesel::prelude::*;
use domain::model::{Email, Journal, NewUser, PasswordHash, PersonName, Role, UserId, Username};
use domain::ports::UserStore;
use tempfile::TempDir;
use uuid::Uuid;

const POOL_SIZE: u32 = 4;
const TIMEOUT: Duration = Duration::from_secs(10);

/// A migrated store on a new file in a new temporary directory (kept alive by the guard).
async fn fresh() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("ums.db");
    let store = SqliteStore::open(path.to_str().expect("UTF-8 path"), POOL_SIZE, TIMEOUT)
        .expect("open the store");
    store.run_migrations().expect("migrate");
    (store, dir)
}

/// Makes every later insert into `audit_events` fail, through a connection of its own to the
/// guard's database file, so that the contract can check that no change outlives its journal.
fn break_audit(dir: &TempDir) {
    let path = dir.path().join("ums.db");
    let mut conn = SqliteConnection::establish(path.to_str().expect("UTF-8 path"))
        .expect("a direct connection");
    diesel::sql_query(
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
         BEGIN SELECT RAISE(ABORT, 'audit insert refused by the test'); END;",
    )
    .execute(&mut conn)
    .expect("install the trigger");
}

ums_tests::store_contract_tests!(fresh, break_audit);
ums_tests::service_account_contract_tests!(fresh, break_audit);

/// Checks of what the contract cannot see: pragmas, migrations, files, locks.
mod sqlite_specific {
    use super::*;

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
            password_hash: PasswordHash::new("$2b$04$sqlite".to_owned()),
            created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    /// Every object in the file's schema but SQLite's own, as `(type, name, sql)`.
    fn schema(path: &str) -> Vec<(String, String, Option<String>)> {
        let mut conn = SqliteConnection::establish(path).unwrap();
        diesel::sql_query(
            "SELECT type, name, sql FROM sqlite_master \
             WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
        )
        .load::<SchemaObject>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|o| (o.r#type, o.name, o.sql))
        .collect()
    }

    #[derive(QueryableByName)]
    struct SchemaObject {
        #[diesel(sql_type = diesel::sql_types::Text)]
        r#type: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        sql: Option<String>,
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_pooled_connection_has_the_pragmas() {
        let (store, _dir) = fresh().await;
        let pragmas = store.connection_pragmas().await.unwrap();
        assert_eq!(
            pragmas.len(),
            POOL_SIZE as usize,
            "one entry per connection"
        );
        for p in pragmas {
            assert_eq!(p.journal_mode, "wal");
            assert_eq!(p.foreign_keys, 1);
            assert_eq!(p.busy_timeout, 5000);
            assert_eq!(p.synchronous, 1, "NORMAL");
        }
        store.ping().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn foreign_keys_are_enforced_on_every_connection() {
        let (store, _dir) = fresh().await;
        // Many concurrent writes spread over the pool; each must hit the foreign key (a
        // journal's token for a user that does not exist).
        let tasks: Vec<_> = (0..32u128)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let token = domain::ports::ActionToken {
                        hash: domain::model::TokenHash::new(format!("{n:064x}")),
                        user_id: UserId::from_uuid(Uuid::from_u128(999)),
                        purpose: domain::ports::ActionPurpose::VerifyEmail,
                        created_at: DateTime::from_timestamp(0, 0).unwrap(),
                        expires_at: DateTime::from_timestamp(60, 0).unwrap(),
                    };
                    domain::ports::AuditLog::append(&store, Journal::default().with_token(token))
                        .await
                })
            })
            .collect();
        for task in tasks {
            let result = task.await.unwrap();
            assert!(
                matches!(result, Err(domain::ports::StoreError::Unexpected(_))),
                "a token for a missing user must be refused, got {result:?}"
            );
        }
    }

    /// What the outbox port cannot show: a delivered message's sealed bytes are gone from the
    /// file, and a row of a kind the adapter does not know is given up by the claim that
    /// meets it (dead from the claim's `now`, its kind in `last_error`, no lease), never
    /// delivered as something else and never in the way of the messages behind it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_outbox_forgets_delivered_mail_and_gives_up_unknown_kinds() {
        use domain::model::{MailKind, SealedMail};
        use domain::ports::{AuditLog, Outbox, OutboxStatus};

        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        #[derive(QueryableByName, Debug, PartialEq)]
        struct GivenUp {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
            failed_at: Option<i64>,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            last_error: Option<String>,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
            lease_until: Option<i64>,
            #[diesel(sql_type = diesel::sql_types::Integer)]
            attempts: i32,
        }
        let (store, dir) = fresh().await;
        let path = dir.path().join("ums.db");
        let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        let kept = |conn: &mut SqliteConnection| {
            diesel::sql_query("SELECT count(*) AS n FROM outbox WHERE payload IS NOT NULL")
                .get_result::<Count>(conn)
                .unwrap()
                .n
        };
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mail = SealedMail {
            id: Uuid::from_u128(1),
            kind: MailKind::Verification,
            created_at: t0,
            sealed: b"sealed bytes".to_vec(),
        };
        store
            .append(Journal::default().with_mail(mail.clone()))
            .await
            .unwrap();
        assert_eq!(kept(&mut conn), 1);
        let claimed = store
            .claim(t0, t0 + chrono::TimeDelta::minutes(5), 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].mail, mail);
        store.mark_sent(mail.id, t0).await.unwrap();
        assert_eq!(
            kept(&mut conn),
            0,
            "the sealed bytes are dropped on delivery"
        );

        // Two rows of unknown kinds, queued before everything else: the head of the queue.
        diesel::sql_query(
            "INSERT INTO outbox (id, kind, created_at, payload, attempts, next_attempt_at) \
             VALUES ('00000000-0000-0000-0000-000000000002', 'spam', 0, x'00', 0, 0), \
                    ('00000000-0000-0000-0000-000000000003', 'eggs', 1, x'00', 0, 1)",
        )
        .execute(&mut conn)
        .unwrap();
        let behind = SealedMail {
            id: Uuid::from_u128(4),
            created_at: t0 + chrono::TimeDelta::seconds(1),
            ..mail.clone()
        };
        store
            .append(Journal::default().with_mail(behind.clone()))
            .await
            .unwrap();
        let now = t0 + chrono::TimeDelta::seconds(10);
        let lease = now + chrono::TimeDelta::minutes(5);
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
        let given_up = |conn: &mut SqliteConnection, id: &str| {
            diesel::sql_query(
                "SELECT failed_at, last_error, lease_until, attempts FROM outbox WHERE id = ?",
            )
            .bind::<diesel::sql_types::Text, _>(id)
            .get_result::<GivenUp>(conn)
            .unwrap()
        };
        let now_micros = now.timestamp_micros();
        for (id, kind) in [
            ("00000000-0000-0000-0000-000000000002", "spam"),
            ("00000000-0000-0000-0000-000000000003", "eggs"),
        ] {
            assert_eq!(
                given_up(&mut conn, id),
                GivenUp {
                    failed_at: Some(now_micros),
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
                pending: 1,
                retrying: 0,
                dead: 2
            },
            "the unknown ones are dead, the claimed one pending"
        );
        let later = lease + chrono::TimeDelta::hours(1);
        let again = store.claim(later, later, 10).await.unwrap();
        assert_eq!(
            again.iter().map(|c| c.mail.id).collect::<Vec<_>>(),
            vec![Uuid::from_u128(4)],
            "a given-up message is never claimed again"
        );
    }

    /// The search index follows every insert, change and deletion of a user (the triggers),
    /// also for users that existed before the index did (the backfill), and `q` finds users
    /// through it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_search_index_follows_the_users() {
        use domain::model::Journal;
        use domain::ports::{PageRequest, UserChanges, UserFilter, UserSort};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("search.db");
        let path = path.to_str().unwrap();
        let store = SqliteStore::open(path, 2, TIMEOUT).unwrap();
        store.run_migrations().unwrap();
        // A user from before the index: inserted (by today's code, into today's schema),
        // then the index's migration and those after it reverted, and all applied again.
        store.insert(user(1), Journal::default()).await.unwrap();
        assert_eq!(store.revert_last_migration().unwrap(), "20261204000200");
        assert_eq!(store.revert_last_migration().unwrap(), "20261204000100");
        assert_eq!(store.revert_last_migration().unwrap(), "20261204000000");
        assert_eq!(store.revert_last_migration().unwrap(), "20261203000003");
        assert_eq!(store.revert_last_migration().unwrap(), "20261203000002");
        assert_eq!(store.revert_last_migration().unwrap(), "20261203000001");
        store.run_migrations().unwrap();
        store.insert(user(2), Journal::default()).await.unwrap();

        let search = |q: &str| {
            let store = store.clone();
            let q = q.to_owned();
            async move {
                let page = store
                    .list(
                        UserFilter {
                            q: Some(q),
                            ..UserFilter::default()
                        },
                        UserSort::CreatedAt,
                        PageRequest {
                            page: 1,
                            per_page: 10,
                        },
                    )
                    .await
                    .unwrap();
                let mut ids: Vec<u128> = page
                    .items
                    .iter()
                    .map(|u| u.id.as_uuid().as_u128())
                    .collect();
                ids.sort_unstable();
                ids
            }
        };
        assert_eq!(search("user1@").await, [1], "backfilled");
        assert_eq!(search("USER2").await, [2], "inserted, any case");
        assert_eq!(search("ada").await, [1, 2]);
        store
            .update(
                UserId::from_uuid(Uuid::from_u128(1)),
                UserChanges {
                    profile: domain::model::ProfileChanges {
                        first_name: Some(PersonName::parse("Grace").unwrap()),
                        ..Default::default()
                    },
                    ..UserChanges::default()
                },
                None,
                DateTime::from_timestamp(1_800_000_100, 0).unwrap(),
                Journal::default(),
            )
            .await
            .unwrap();
        assert_eq!(search("grace").await, [1], "changed");
        assert_eq!(search("ada").await, [2]);
        store
            .delete(
                UserId::from_uuid(Uuid::from_u128(2)),
                None,
                Journal::default(),
            )
            .await
            .unwrap();
        assert!(search("user2").await.is_empty(), "deleted");
        store.insert(user(3), Journal::default()).await.unwrap();
        assert_eq!(search("user3").await, [3]);
        // Two characters have no trigram: found by the exact match alone.
        assert_eq!(search("r3").await, [3]);
        // FTS5 query syntax in q never breaks the query (an error would be a 500): it is
        // quoted as one phrase, and the exact match decides.
        for q in [
            "\"",
            "ad\"a",
            "us*",
            "user:3",
            "^user",
            "-user3",
            "(user",
            "user3 NEAR ada",
            "u OR ser",
            "\"\"\"",
            "ßİé",
        ] {
            assert!(search(q).await.is_empty(), "{q:?}");
        }
        assert_eq!(search("user3@example").await, [3]);
    }

    #[tokio::test]
    async fn migrations_go_up_down_and_up_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("migrations.db");
        let path = path.to_str().unwrap();
        let store = SqliteStore::open(path, 1, TIMEOUT).unwrap();

        let applied = store.run_migrations().unwrap();
        assert_eq!(
            applied,
            vec![
                "20261121000000".to_owned(),
                "20261203000000".to_owned(),
                "20261203000001".to_owned(),
                "20261203000002".to_owned(),
                "20261203000003".to_owned(),
                "20261204000000".to_owned(),
                "20261204000100".to_owned(),
                "20261204000200".to_owned()
            ]
        );
        assert_eq!(
            store.run_migrations().unwrap(),
            Vec::<String>::new(),
            "idempotent"
        );
        let migrated = schema(path);
        for table in [
            "users",
            "sessions",
            "refresh_tokens",
            "action_tokens",
            "tenants",
            "memberships",
            "audit_events",
            "users_search",
            "user_search_keys",
            "outbox",
            "service_accounts",
        ] {
            assert!(
                migrated
                    .iter()
                    .any(|(kind, name, _)| kind == "table" && name == table),
                "{table} exists"
            );
        }
        for index in [
            "users_email_key",
            "users_username_key",
            "users_created_at_idx",
            "sessions_user_id_idx",
            "tenants_slug_key",
            "tenants_created_at_idx",
            "memberships_user_id_idx",
            "audit_events_at_idx",
            "audit_events_tenant_idx",
            "audit_events_actor_idx",
            "audit_events_target_idx",
            "audit_events_action_idx",
            "memberships_tenant_created_idx",
            "sessions_live_idx",
            "outbox_pending_idx",
            "outbox_sent_at_idx",
            "outbox_failed_at_idx",
            "action_tokens_cooldown_idx",
            "action_tokens_used_at_idx",
            "action_tokens_expires_at_idx",
            "sessions_expires_at_idx",
            "service_accounts_name_key",
            "service_accounts_client_id_key",
            "service_accounts_created_at_idx",
        ] {
            assert!(
                migrated
                    .iter()
                    .any(|(kind, name, _)| kind == "index" && name == index),
                "{index} exists"
            );
        }
        for trigger in [
            "users_search_insert",
            "users_search_update",
            "users_search_delete",
        ] {
            assert!(
                migrated
                    .iter()
                    .any(|(kind, name, _)| kind == "trigger" && name == trigger),
                "{trigger} exists"
            );
        }
        assert!(
            migrated.iter().any(|(kind, name, sql)| kind == "table"
                && name == "sessions"
                && sql.as_deref().is_some_and(|sql| sql.contains("tenant_id"))),
            "sessions has its tenant column"
        );

        let reverted = store.revert_all_migrations().unwrap();
        let newest_first: Vec<String> = applied.iter().rev().cloned().collect();
        assert_eq!(
            reverted, newest_first,
            "every migration is reverted, newest first"
        );
        let names: Vec<_> = schema(path).into_iter().map(|(_, name, _)| name).collect();
        assert_eq!(
            names,
            vec!["__diesel_schema_migrations".to_owned()],
            "down.sql drops everything up.sql creates"
        );

        assert_eq!(store.run_migrations().unwrap(), applied);
        assert_eq!(
            schema(path),
            migrated,
            "up after down rebuilds the same schema"
        );
    }

    #[tokio::test]
    async fn data_survives_closing_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("persist.db");
        let url = format!("sqlite://{}", path.display());
        assert!(!path.exists());

        let store = SqliteStore::open(&url, 2, TIMEOUT).unwrap();
        assert!(path.exists(), "open creates the file");
        store.run_migrations().unwrap();
        let stored = store.insert(user(1), Journal::default()).await.unwrap();
        drop(store);

        let reopened = SqliteStore::open(&url, 2, TIMEOUT).unwrap();
        assert_eq!(reopened.run_migrations().unwrap(), Vec::<String>::new());
        assert_eq!(reopened.find_by_id(stored.id).await.unwrap(), Some(stored));
    }

    #[tokio::test]
    async fn bad_settings_and_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let path = path.to_str().unwrap();
        assert!(matches!(
            SqliteStore::open(path, 0, TIMEOUT),
            Err(adapters_sqlite::SqliteError::InvalidSettings(_))
        ));
        assert!(matches!(
            SqliteStore::open(path, 1, Duration::ZERO),
            Err(adapters_sqlite::SqliteError::InvalidSettings(_))
        ));
        let missing = dir.path().join("no-such-dir").join("x.db");
        assert!(matches!(
            SqliteStore::open(missing.to_str().unwrap(), 1, TIMEOUT),
            Err(adapters_sqlite::SqliteError::Open { .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_lock_held_past_the_busy_timeout_is_unavailable() {
        let (store, dir) = fresh().await;
        let path = dir.path().join("ums.db");
        let mut blocker = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        diesel::sql_query("BEGIN EXCLUSIVE")
            .execute(&mut blocker)
            .unwrap();

        let started = std::time::Instant::now();
        let result = store.insert(user(1), Journal::default()).await;
        assert!(
            matches!(result, Err(domain::ports::StoreError::Unavailable(_))),
            "got {result:?}"
        );
        assert!(
            started.elapsed() >= Duration::from_secs(4),
            "it waited for the lock"
        );

        diesel::sql_query("ROLLBACK").execute(&mut blocker).unwrap();
        store.insert(user(1), Journal::default()).await.unwrap();
    }

    /// The password-age migration gives each existing user the time of their latest password
    /// change or reset that the audit trail still holds, else their creation time; events of
    /// other kinds, of other users, or from before the creation do not count.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_password_age_migration_backfills_from_the_audit_trail() {
        use domain::model::{AuditAction, AuditEvent, AuditEventId, AuditTarget};
        use domain::ports::AuditLog;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("age.db");
        let store = SqliteStore::open(path.to_str().unwrap(), 2, TIMEOUT).unwrap();
        store.run_migrations().unwrap();
        for n in 1..=3 {
            store.insert(user(n), Journal::default()).await.unwrap();
        }
        let created = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let id = |n: u128| UserId::from_uuid(Uuid::from_u128(n));
        let event = |n: u128, secs: i64, action: AuditAction, target: AuditTarget| AuditEvent {
            id: AuditEventId::from_uuid(Uuid::from_u128(0xE000 + n)),
            at: created + chrono::TimeDelta::seconds(secs) + chrono::TimeDelta::microseconds(7),
            actor: None,
            tenant: None,
            action,
            target,
            ip: None,
            request_id: None,
            details: serde_json::Map::new(),
        };
        store
            .append(Journal {
                events: vec![
                    event(
                        1,
                        100,
                        AuditAction::UserPasswordChanged,
                        AuditTarget::User(id(1)),
                    ),
                    event(
                        2,
                        300,
                        AuditAction::UserPasswordReset,
                        AuditTarget::User(id(1)),
                    ),
                    event(
                        3,
                        200,
                        AuditAction::UserPasswordChanged,
                        AuditTarget::User(id(1)),
                    ),
                    event(
                        4,
                        500,
                        AuditAction::UserPasswordResetRequested,
                        AuditTarget::User(id(2)),
                    ),
                    event(5, 600, AuditAction::UserLogin, AuditTarget::User(id(2))),
                    event(
                        6,
                        -100,
                        AuditAction::UserPasswordChanged,
                        AuditTarget::User(id(3)),
                    ),
                ],
                ..Journal::default()
            })
            .await
            .unwrap();
        assert_eq!(store.revert_last_migration().unwrap(), "20261204000200");
        assert_eq!(store.run_migrations().unwrap(), ["20261204000200"]);

        let changed_at = |n: u128| {
            let store = store.clone();
            async move {
                store
                    .find_by_id(id(n))
                    .await
                    .unwrap()
                    .unwrap()
                    .password_changed_at
            }
        };
        assert_eq!(
            changed_at(1).await,
            created + chrono::TimeDelta::seconds(300) + chrono::TimeDelta::microseconds(7),
            "the latest change or reset"
        );
        assert_eq!(changed_at(2).await, created, "no change: the creation");
        assert_eq!(changed_at(3).await, created, "never before the creation");
    }
}
