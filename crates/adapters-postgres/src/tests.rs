//! Checks that need the crate's private parts against a real server: each migration's down.sql
//! reverses its up.sql, logins are looked up through the unique indexes, the user list
//! through its search and order indexes, and the live sessions through their partial index.
//! Skipped (with a note on stderr) when `TEST_DATABASE_URL` is unset; failed under `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::Text;
use diesel_migrations::MigrationHarness;
use domain::model::UserId;
use domain::ports::{PageRequest, UserFilter, UserSort, UserStore};
use ums_tests::support::env::test_database_url;
use ums_tests::support::postgres::TestDatabase;

use crate::schema::users;
use crate::sessions::live_query;
use crate::users::{filtered, lower, page_query, search_pattern};
use crate::{MIGRATIONS, PgPoolSettings, PostgresStore};

const SETTINGS: PgPoolSettings = PgPoolSettings {
    pool_size: 1,
    connect_timeout: Duration::from_secs(10),
    statement_timeout: Duration::from_secs(30),
};

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// Every object of the `public` schema but diesel's own bookkeeping table and the members of
/// extensions, one line each: columns with type, nullability and default; constraints with
/// their definition; indexes with theirs; any other relation, function or type by name.
/// Extensions are listed apart, by [`extensions`]: a migration may install one it then leaves
/// installed (see `every_down_sql_reverses_its_up_sql`).
fn schema(conn: &mut PgConnection) -> Vec<String> {
    diesel::sql_query(
        "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' \
                || is_nullable || ' ' || coalesce(column_default, '-') AS line \
           FROM information_schema.columns \
          WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' \
         UNION ALL \
         SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' \
                || pg_get_constraintdef(oid) \
           FROM pg_constraint \
          WHERE connamespace = 'public'::regnamespace \
            AND conrelid::regclass::text <> '__diesel_schema_migrations' \
         UNION ALL \
         SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes \
          WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations' \
         UNION ALL \
         SELECT 'relation ' || relkind::text || ' ' || relname FROM pg_class \
          WHERE relnamespace = 'public'::regnamespace \
            AND relname NOT LIKE '\\_\\_diesel\\_schema\\_migrations%' \
         UNION ALL \
         SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p \
          WHERE p.pronamespace = 'public'::regnamespace \
            AND NOT EXISTS (SELECT 1 FROM pg_depend d \
                             WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid \
                               AND d.deptype = 'e') \
         UNION ALL \
         SELECT 'type ' || t.typname FROM pg_type t \
          WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'r', 'm') \
            AND NOT EXISTS (SELECT 1 FROM pg_depend d \
                             WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid \
                               AND d.deptype = 'e') \
         ORDER BY line",
    )
    .load::<Line>(conn)
    .unwrap()
    .into_iter()
    .map(|l| l.line)
    .collect()
}

/// The extensions installed in the database, by name.
fn extensions(conn: &mut PgConnection) -> Vec<String> {
    diesel::sql_query("SELECT extname AS line FROM pg_extension ORDER BY extname")
        .load::<Line>(conn)
        .unwrap()
        .into_iter()
        .map(|l| l.line)
        .collect()
}

/// Each down.sql restores the schema its up.sql found, and up.sql after it rebuilds the same
/// schema. Extensions are the one exception: `tenancy_audit` installs `pg_trgm` `IF NOT
/// EXISTS` and its down.sql leaves it (it cannot tell whether it was there before), so they
/// are only checked never to disappear.
#[test]
fn every_down_sql_reverses_its_up_sql() {
    let Some(server) = test_database_url() else {
        return;
    };
    let database = TestDatabase::create(&server);
    let mut conn = PgConnection::establish(&database.url).unwrap();
    let empty = schema(&mut conn);

    let mut steps = 0;
    while !conn.pending_migrations(MIGRATIONS).unwrap().is_empty() {
        let before = schema(&mut conn);
        let version = conn.run_next_migration(MIGRATIONS).unwrap().to_string();
        let after = schema(&mut conn);
        let installed = extensions(&mut conn);
        assert_ne!(before, after, "{version} changes the schema");
        conn.revert_last_migration(MIGRATIONS).unwrap();
        assert_eq!(
            schema(&mut conn),
            before,
            "{version}: down.sql reverses up.sql"
        );
        assert_eq!(
            extensions(&mut conn),
            installed,
            "{version}: extensions stay"
        );
        conn.run_next_migration(MIGRATIONS).unwrap();
        assert_eq!(
            schema(&mut conn),
            after,
            "{version}: up.sql after down.sql rebuilds the same schema"
        );
        steps += 1;
    }
    assert!(steps >= 2, "both migrations ran");
    let migrated = schema(&mut conn);

    // The same through the store's own API.
    let store = PostgresStore::open(&database.url, SETTINGS).unwrap();
    assert_eq!(store.run_migrations().unwrap(), Vec::<String>::new());
    let reverted = store.revert_all_migrations().unwrap();
    assert_eq!(reverted.len(), steps);
    assert_eq!(
        schema(&mut conn),
        empty,
        "reverting everything leaves nothing"
    );
    let mut applied = store.run_migrations().unwrap();
    applied.reverse();
    assert_eq!(
        applied, reverted,
        "applied oldest first, reverted newest first"
    );
    assert_eq!(schema(&mut conn), migrated);
}

#[test]
fn the_schema_has_what_the_adapter_relies_on() {
    let Some(server) = test_database_url() else {
        return;
    };
    let database = TestDatabase::create(&server);
    let store = PostgresStore::open(&database.url, SETTINGS).unwrap();
    assert_eq!(
        store.run_migrations().unwrap(),
        vec![
            "20261121000000".to_owned(),
            "20261203000000".to_owned(),
            "20261203000002".to_owned(),
            "20261203000003".to_owned(),
            "20261204000000".to_owned(),
            "20261204000100".to_owned(),
            "20261204000200".to_owned()
        ]
    );
    let mut conn = PgConnection::establish(&database.url).unwrap();
    assert!(extensions(&mut conn).contains(&"pg_trgm".to_owned()));
    let schema = schema(&mut conn).join("\n");
    for expected in [
        "column users.id uuid NO",
        "column users.preferences jsonb NO '{}'::jsonb",
        "column users.created_at timestamp with time zone NO",
        "column users.version bigint NO 1",
        "column users.is_active boolean NO true",
        "column sessions.revoked_at timestamp with time zone YES",
        "CREATE UNIQUE INDEX users_email_key ON public.users USING btree (lower(email))",
        "CREATE UNIQUE INDEX users_username_key ON public.users USING btree (lower(username))",
        "CREATE INDEX sessions_user_id_idx ON public.sessions USING btree (user_id)",
        "CREATE INDEX sessions_revoked_at_idx ON public.sessions USING btree (revoked_at)",
        "CREATE INDEX refresh_tokens_session_id_idx",
        "CREATE INDEX action_tokens_cooldown_idx ON public.action_tokens USING btree (user_id, purpose, created_at)",
        "CHECK ((jsonb_typeof(preferences) = 'object'::text))",
        "CHECK ((role = ANY (ARRAY['admin'::text, 'user'::text])))",
        "CHECK ((purpose = ANY (ARRAY['verify_email'::text, 'reset_password'::text])))",
        "FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE",
        "FOREIGN KEY (session_id) REFERENCES sessions(id) ON DELETE CASCADE",
        // Tenancy and audit.
        "column sessions.tenant_id uuid YES -",
        "column tenants.settings jsonb NO '{}'::jsonb",
        "column tenants.version bigint NO 1",
        "column tenants.is_active boolean NO true",
        "column memberships.created_at timestamp with time zone NO",
        "column audit_events.details jsonb NO '{}'::jsonb",
        "column audit_events.actor_id uuid YES -",
        "column audit_events.target_type text YES -",
        "CREATE UNIQUE INDEX tenants_slug_key ON public.tenants USING btree (slug)",
        "constraint memberships memberships_pkey PRIMARY KEY (tenant_id, user_id)",
        "FOREIGN KEY (tenant_id) REFERENCES tenants(id) ON DELETE CASCADE",
        "CHECK ((role = ANY (ARRAY['admin'::text, 'moderator'::text, 'member'::text, 'viewer'::text])))",
        "CHECK ((jsonb_typeof(settings) = 'object'::text))",
        "CHECK ((jsonb_typeof(details) = 'object'::text))",
        "CREATE INDEX audit_events_at_idx ON public.audit_events USING btree (at, id)",
        "CREATE INDEX users_search_trgm_idx ON public.users USING gin ((((((((lower(email) || ' '::text) || lower(username)) || ' '::text) || lower(first_name)) || ' '::text) || lower(last_name))) gin_trgm_ops)",
        "CREATE INDEX users_created_at_idx ON public.users USING btree (created_at, id)",
        "CREATE INDEX users_email_c_idx ON public.users USING btree (email COLLATE \"C\", id)",
        "CREATE INDEX users_username_c_idx ON public.users USING btree (lower(username) COLLATE \"C\", id)",
        "CREATE INDEX audit_events_tenant_idx ON public.audit_events USING btree (tenant_id, at, id)",
        "CREATE INDEX audit_events_action_idx ON public.audit_events USING btree (action, at, id)",
        "CREATE INDEX memberships_tenant_created_idx ON public.memberships USING btree (tenant_id, created_at, user_id)",
        "CREATE INDEX sessions_live_idx ON public.sessions USING btree (user_id) WHERE (revoked_at IS NULL)",
        // The outbox, and the indexes of the cooldown and the purges.
        "column outbox.id uuid NO",
        "column outbox.payload bytea YES",
        "column outbox.attempts integer NO 0",
        "column outbox.next_attempt_at timestamp with time zone NO",
        "column outbox.lease_until timestamp with time zone YES",
        "CREATE INDEX outbox_pending_idx ON public.outbox USING btree (created_at, id) WHERE ((sent_at IS NULL) AND (failed_at IS NULL))",
        "CREATE INDEX outbox_sent_at_idx ON public.outbox USING btree (sent_at) WHERE (sent_at IS NOT NULL)",
        "CREATE INDEX outbox_failed_at_idx ON public.outbox USING btree (failed_at) WHERE (failed_at IS NOT NULL)",
        "CHECK (((sent_at IS NOT NULL) OR (payload IS NOT NULL)))",
        "CREATE INDEX action_tokens_used_at_idx ON public.action_tokens USING btree (used_at) WHERE (used_at IS NOT NULL)",
        "CREATE INDEX action_tokens_expires_at_idx ON public.action_tokens USING btree (expires_at)",
        "CREATE INDEX sessions_expires_at_idx ON public.sessions USING btree (expires_at)",
        // Service accounts.
        "column service_accounts.id uuid NO",
        "column service_accounts.last_used_at timestamp with time zone YES",
        "CREATE UNIQUE INDEX service_accounts_name_key ON public.service_accounts USING btree (lower(name))",
        "CREATE UNIQUE INDEX service_accounts_client_id_key ON public.service_accounts USING btree (client_id)",
        "CHECK ((secret_hash ~ '^[0-9a-f]{64}$'::text))",
        // Password age: this release always writes it; the default serves inserts of a
        // previous release during a rolling deploy.
        "column users.password_changed_at timestamp with time zone NO now()",
    ] {
        assert!(schema.contains(expected), "{expected:?} in\n{schema}");
    }
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    plan: String,
}

/// The plan PostgreSQL chooses for a query diesel renders, with its one text bind, when
/// sequential scans are made as expensive as they can be (the tables are empty).
fn plan<Q>(conn: &mut PgConnection, query: &Q) -> String
where
    Q: diesel::query_builder::QueryFragment<Pg>,
{
    let rendered = diesel::debug_query::<Pg, _>(query).to_string();
    let sql = rendered.split(" -- binds:").next().unwrap_or_default();
    diesel::sql_query(format!("EXPLAIN {sql}"))
        .bind::<Text, _>("x")
        .load::<PlanLine>(conn)
        .unwrap()
        .into_iter()
        .map(|l| l.plan)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn logins_are_looked_up_through_the_unique_indexes() {
    let Some(server) = test_database_url() else {
        return;
    };
    let database = TestDatabase::create(&server);
    let mut conn = PgConnection::establish(&database.url).unwrap();
    conn.run_pending_migrations(MIGRATIONS).unwrap();
    diesel::sql_query("SET enable_seqscan = off")
        .execute(&mut conn)
        .unwrap();

    let by_email = users::table
        .filter(lower(users::email).eq(lower("x")))
        .select(users::id);
    let by_email = plan(&mut conn, &by_email);
    assert!(by_email.contains("users_email_key"), "{by_email}");

    let by_username = users::table
        .filter(lower(users::username).eq(lower("x")))
        .select(users::id);
    let by_username = plan(&mut conn, &by_username);
    assert!(by_username.contains("users_username_key"), "{by_username}");
}

/// The live sessions are found through the partial index of the unrevoked ones, not through
/// `sessions_user_id_idx` (every session the user ever had), for the very query
/// `live_for_user` runs.
#[test]
fn live_sessions_are_read_from_the_partial_index() {
    let Some(server) = test_database_url() else {
        return;
    };
    let database = TestDatabase::create(&server);
    let mut conn = PgConnection::establish(&database.url).unwrap();
    conn.run_pending_migrations(MIGRATIONS).unwrap();
    diesel::sql_query("SET enable_seqscan = off")
        .execute(&mut conn)
        .unwrap();

    let plan = explain(
        &mut conn,
        live_query(UserId::from_uuid(uuid::Uuid::from_u128(1))),
    );
    assert!(plan.contains("sessions_live_idx"), "{plan}");
}

/// `EXPLAIN` of a query, with its binds sent as they are when the query runs.
#[derive(Debug)]
struct Explain<Q>(Q);

impl<Q> QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Explain<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("EXPLAIN ");
        self.0.walk_ast(out.reborrow())
    }
}

impl<Q> Query for Explain<Q> {
    type SqlType = Text;
}

impl<Q> RunQueryDsl<PgConnection> for Explain<Q> {}

/// The plan PostgreSQL chooses for `query`, one line per node.
fn explain<Q: QueryFragment<Pg>>(conn: &mut PgConnection, query: Q) -> String {
    Explain(query).load::<String>(conn).unwrap().join("\n")
}

#[test]
fn search_patterns_escape_what_like_would_read_as_a_pattern() {
    assert_eq!(search_pattern("Ada"), "%Ada%");
    assert_eq!(search_pattern("50%"), "%50\\%%");
    assert_eq!(search_pattern("a_b"), "%a\\_b%");
    assert_eq!(search_pattern("c:\\x"), "%c:\\\\x%");
    assert_eq!(search_pattern(""), "%%");
}

/// With enough users for the planner to care, a search is answered by the trigram index and
/// the default order by `users_created_at_idx`, for the very queries `UserStore::list` runs
/// (binds included); and the escaping holds: a `%` in `q` matches only a `%`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_list_uses_its_indexes() {
    let Some(server) = test_database_url() else {
        return;
    };
    let database = TestDatabase::create(&server);
    let store = PostgresStore::open(&database.url, SETTINGS).unwrap();
    store.run_migrations().unwrap();
    let mut conn = PgConnection::establish(&database.url).unwrap();
    conn.batch_execute(
        "INSERT INTO users (id, email, username, password_hash, first_name, last_name, \
                            created_at, updated_at, password_changed_at) \
         SELECT gen_random_uuid(), 'user' || i || '@example.com', 'User' || i, 'x', \
                CASE i WHEN 5000 THEN '50% off' WHEN 7777 THEN 'Zebedee' ELSE 'First' || i END, \
                'Last' || (i % 7), \
                timestamptz '2026-01-01' + i * interval '1 second', \
                timestamptz '2026-01-01' + i * interval '1 second', \
                timestamptz '2026-01-01' + i * interval '1 second' \
           FROM generate_series(1, 20000) AS i; \
         ANALYZE users;",
    )
    .unwrap();
    let page = PageRequest {
        page: 2,
        per_page: 20,
    };

    // A rare term: the planner finds its few rows through the trigram index, then sorts
    // them. (For a term it expects in many rows, walking `users_created_at_idx` until the page
    // is full is cheaper, and it rightly does that instead.)
    let rare = UserFilter {
        q: Some("ZEBEDEE".to_owned()),
        ..UserFilter::default()
    };
    let plan = explain(&mut conn, page_query(&rare, UserSort::default(), page));
    assert!(plan.contains("users_search_trgm_idx"), "{plan}");
    // And so is its total.
    let plan = explain(&mut conn, filtered(&rare).count());
    assert!(plan.contains("users_search_trgm_idx"), "{plan}");

    let plan = explain(
        &mut conn,
        page_query(&UserFilter::default(), UserSort::default(), page),
    );
    assert!(plan.contains("users_created_at_idx"), "{plan}");
    let plan = explain(
        &mut conn,
        page_query(&UserFilter::default(), UserSort::CreatedAt, page),
    );
    assert!(plan.contains("users_created_at_idx"), "{plan}");
    // The code-point orders have indexes of their own: no sort of the whole table.
    for (sort, index) in [
        (UserSort::Email, "users_email_c_idx"),
        (UserSort::Username, "users_username_c_idx"),
    ] {
        let plan = explain(&mut conn, page_query(&UserFilter::default(), sort, page));
        assert!(plan.contains(index), "{sort:?}: {plan}");
        assert!(!plan.contains("Sort"), "{sort:?} sorts: {plan}");
    }

    let search = UserFilter {
        q: Some("User1234".to_owned()),
        ..UserFilter::default()
    };
    // `User1234` is in 11 usernames (1234, 12340..12349), and e-mails match case-insensitively.
    let first = PageRequest {
        page: 1,
        per_page: 100,
    };
    let found = store.list(search, UserSort::Username, first).await.unwrap();
    assert_eq!(found.total, 11);
    assert_eq!(found.items[0].username.as_str(), "User1234");
    let literal = UserFilter {
        q: Some("50%".to_owned()),
        ..UserFilter::default()
    };
    let found = store.list(literal, UserSort::Email, first).await.unwrap();
    assert_eq!(found.total, 1, "only the '%' matches '%'");
    assert_eq!(found.items[0].first_name.as_str(), "50% off");
    let found = store.list(rare, UserSort::default(), first).await.unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.items[0].first_name.as_str(), "Zebedee");
    // A match lies within one field: user 10 is "First10" "Last3", but no one field holds
    // "first10 last3".
    let spanning = UserFilter {
        q: Some("first10 last3".to_owned()),
        ..UserFilter::default()
    };
    let found = store
        .list(spanning, UserSort::default(), first)
        .await
        .unwrap();
    assert_eq!(found.total, 0, "no match across two fields");
}

/// The password-age migration gives each existing user the time of their latest password
/// change or reset that the audit trail still holds, else their creation time; events of
/// other kinds, of other users, or from before the creation do not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_age_migration_backfills_from_the_audit_trail() {
    use domain::model::{
        AuditAction, AuditEvent, AuditEventId, AuditTarget, Email, Journal, NewUser, PasswordHash,
        PersonName, Role, Username,
    };
    use domain::ports::AuditLog;

    let Some(server) = test_database_url() else {
        return;
    };
    let database = TestDatabase::create(&server);
    let store = PostgresStore::open(&database.url, SETTINGS).unwrap();
    store.run_migrations().unwrap();
    let created = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let id = |n: u128| UserId::from_uuid(uuid::Uuid::from_u128(n));
    for n in 1..=3 {
        store
            .insert(
                NewUser {
                    id: id(n),
                    email: Email::parse(&format!("user{n}@example.com")).unwrap(),
                    username: Username::parse(&format!("user{n}")).unwrap(),
                    first_name: PersonName::default(),
                    last_name: PersonName::default(),
                    role: Role::User,
                    is_active: true,
                    email_verified: false,
                    password_hash: PasswordHash::new("$2b$04$pg".to_owned()),
                    created_at: created,
                },
                Journal::default(),
            )
            .await
            .unwrap();
    }
    let event = |n: u128, secs: i64, action: AuditAction, target: AuditTarget| AuditEvent {
        id: AuditEventId::from_uuid(uuid::Uuid::from_u128(0xE000 + n)),
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
    let mut conn = PgConnection::establish(&database.url).unwrap();
    assert_eq!(
        conn.revert_last_migration(MIGRATIONS).unwrap().to_string(),
        "20261204000200"
    );
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
