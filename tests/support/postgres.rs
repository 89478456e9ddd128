//! A fresh PostgreSQL database per test: created with a random name, dropped afterwards.
//!
//! ```ignore
//! let Some(server) = ums_tests::support::env::test_database_url() else {
//!     return; // not configured: skipped (a failure under CI=true)
//! };
//! let database = TestDatabase::create(&server);
//! // ... connect to `database.url`, migrate, test ...
//! // dropped with `DROP DATABASE ... WITH (FORCE)` when `database` goes out of scope
//! ```
//!
//! The code is synchronous (diesel); each test calls it once, so blocking the runtime for the
//! few milliseconds it takes is harmless.

use diesel::{Connection, PgConnection, RunQueryDsl};

/// A database created for one test, dropped (connections still open to it are terminated)
/// when this value is dropped.
pub struct TestDatabase {
    /// URL of the new database: the server URL with its database name replaced.
    pub url: String,
    /// Name of the new database: `ums_test_` and 32 hexadecimal digits.
    pub name: String,
    /// The server URL it was created through, used again to drop it.
    server_url: String,
}

impl TestDatabase {
    /// Connects to `server_url` (a libpq URI of any database the user may connect to, such
    /// as `postgres://postgres@127.0.0.1:5432/postgres`, or a key/value string), creates a
    /// new, empty database with a random name and returns it.
    ///
    /// # Panics
    /// When the server cannot be reached or refuses `CREATE DATABASE`: a test that needs a
    /// database cannot go on without one.
    #[must_use]
    pub fn create(server_url: &str) -> Self {
        let name = format!("ums_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = PgConnection::establish(server_url)
            .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL server: {e}"));
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        Self {
            url: with_database(server_url, &name),
            name,
            server_url: server_url.to_owned(),
        }
    }
}

impl Drop for TestDatabase {
    /// Drops the database, terminating any connection still open to it. Never panics: a
    /// database left behind (server gone) only costs disk space, and its name says what it is.
    fn drop(&mut self) {
        let Ok(mut conn) = PgConnection::establish(&self.server_url) else {
            eprintln!("could not drop the test database {}", self.name);
            return;
        };
        let dropped = diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn);
        if let Err(e) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

impl std::fmt::Debug for TestDatabase {
    /// Shows the name only: the URLs may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// `server_url` naming database `name` instead of its own.
fn with_database(server_url: &str, name: &str) -> String {
    let Some((scheme, rest)) = server_url.split_once("://") else {
        // A key/value string: a later keyword overrides an earlier one.
        return format!("{server_url} dbname={name}");
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |at| &tail[at..]);
    format!("{scheme}://{authority}/{name}{query}")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_only_the_database_name() {
        for (server, expected) in [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/x",
            ),
            ("postgres://localhost", "postgres://localhost/x"),
            ("postgres://localhost/", "postgres://localhost/x"),
            (
                "postgresql://u:p@h/db?sslmode=disable",
                "postgresql://u:p@h/x?sslmode=disable",
            ),
            (
                "postgres://h?sslmode=disable",
                "postgres://h/x?sslmode=disable",
            ),
            ("host=h user=u", "host=h user=u dbname=x"),
        ] {
            assert_eq!(with_database(server, "x"), expected, "{server}");
        }
    }
}
