//! Which real servers the tests use: `TEST_DATABASE_URL` (PostgreSQL) and `TEST_REDIS_URL`.
//!
//! `cargo xtask test` sets them (to the servers it found or started). When one is unset, the
//! tests that need it say so on stderr and return without checking anything; under `CI=true`
//! an unset variable is a failure instead, so CI can never pass by skipping.

/// The PostgreSQL server URL for tests (a maintenance database such as `postgres`), if any.
///
/// # Panics
/// When it is unset and `CI=true`.
#[must_use]
pub fn test_database_url() -> Option<String> {
    required("TEST_DATABASE_URL")
}

/// The Redis server URL for tests, if any.
///
/// # Panics
/// When it is unset and `CI=true`.
#[must_use]
pub fn test_redis_url() -> Option<String> {
    required("TEST_REDIS_URL")
}

fn required(name: &str) -> Option<String> {
    match std::env::var(name).ok().filter(|v| !v.is_empty()) {
        Some(url) => Some(url),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{name} is not set, and under CI a skipped suite is a failure"
            );
            eprintln!("skipped: {name} is not set (run `cargo xtask test` to provision it)");
            None
        }
    }
}
