//! Checks that need the crate's private parts against a real server: each migration's down.sql
//! reverses its up.sql, and logins are looked up through the unique indexes. Skipped (with a
//! note on stderr) when `TEST_DATABASE_URL` is unset; failed under `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_migrations::MigrationHarness;
use ums_tests::support::env::test_database_url;
use ums_tests::support::postgres::TestDatabase;

use crate::schema::users;
use crate::users::lower;
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

/// Every object of the `public` schema but diesel's own bookkeeping table, one line each:
/// columns with type, nullability and default; constraints with their definition; indexes
/// with theirs; any other relation, function, type or extension by name.
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
         SELECT 'function ' || oid::regprocedure::text FROM pg_proc \
          WHERE pronamespace = 'public'::regnamespace \
         UNION ALL \
         SELECT 'type ' || typname FROM pg_type \
          WHERE typnamespace = 'public'::regnamespace AND typtype IN ('e', 'd', 'r', 'm') \
         UNION ALL \
         SELECT 'extension ' || extname FROM pg_extension \
         ORDER BY line",
    )
    .load::<Line>(conn)
    .unwrap()
    .into_iter()
    .map(|l| l.line)
    .collect()
}

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
        assert_ne!(before, after, "{version} changes the schema");
        conn.revert_last_migration(MIGRATIONS).unwrap();
        assert_eq!(
            schema(&mut conn),
            before,
            "{version}: down.sql reverses up.sql"
        );
        conn.run_next_migration(MIGRATIONS).unwrap();
        assert_eq!(
            schema(&mut conn),
            after,
            "{version}: up.sql after down.sql rebuilds the same schema"
        );
        steps += 1;
    }
    assert!(steps >= 1, "there is at least one migration");
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
        vec!["20261121000000".to_owned()]
    );
    let mut conn = PgConnection::establish(&database.url).unwrap();
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
        "CREATE INDEX action_tokens_user_id_idx",
        "CHECK ((jsonb_typeof(preferences) = 'object'::text))",
        "CHECK ((role = ANY (ARRAY['admin'::text, 'user'::text])))",
        "CHECK ((purpose = ANY (ARRAY['verify_email'::text, 'reset_password'::text])))",
        "FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE",
        "FOREIGN KEY (session_id) REFERENCES sessions(id) ON DELETE CASCADE",
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
