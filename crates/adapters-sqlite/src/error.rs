//! Errors: `SqliteError` for opening and migrating the store, and the translation of diesel
//! errors into the domain's `StoreError` at the port boundary.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use domain::BoxError;
use domain::ports::{StoreError, UniqueField};

/// Failure to open, configure or migrate the SQLite database.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// A pool of zero connections, or a zero connection timeout, was asked for.
    #[error("invalid SQLite pool settings: {0}")]
    InvalidSettings(&'static str),
    /// The database file could not be opened or created.
    #[error("cannot open the SQLite database at {path:?}")]
    Open {
        /// The path as given (after removing a `sqlite://` prefix).
        path: String,
        /// Why.
        #[source]
        source: diesel::ConnectionError,
    },
    /// A connection refused the pragmas every connection needs.
    #[error("cannot configure the SQLite database at {path:?}")]
    Configure {
        /// The path as given (after removing a `sqlite://` prefix).
        path: String,
        /// Why.
        #[source]
        source: DieselError,
    },
    /// The pool could not establish its connections in time.
    #[error("cannot build the SQLite connection pool for {path:?}")]
    Pool {
        /// The path as given (after removing a `sqlite://` prefix).
        path: String,
        /// Why.
        #[source]
        source: diesel::r2d2::PoolError,
    },
    /// No connection could be checked out of the pool in time.
    #[error("no SQLite connection available")]
    Checkout(#[source] diesel::r2d2::PoolError),
    /// Applying or reverting a migration failed.
    #[error("SQLite migration failed")]
    Migration(#[source] BoxError),
}

/// An error inside a transaction: either a domain outcome decided there (`NotFound`,
/// `StaleVersion`, ...) or a database error, so that `?` works on both and either rolls back.
#[derive(Debug)]
pub(crate) enum TxError {
    /// Decided by the adapter's own logic.
    Store(StoreError),
    /// Reported by SQLite.
    Db(DieselError),
}

impl From<DieselError> for TxError {
    fn from(error: DieselError) -> Self {
        Self::Db(error)
    }
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<TxError> for StoreError {
    fn from(error: TxError) -> Self {
        match error {
            TxError::Store(error) => error,
            TxError::Db(error) => db_error(error),
        }
    }
}

/// Translates a diesel error: a unique violation of a users', tenants' or memberships' unique
/// index becomes `Duplicate`, a lock that `busy_timeout` could not wait out becomes
/// `Unavailable`, and anything else is `Unexpected`.
pub(crate) fn db_error(error: DieselError) -> StoreError {
    match &error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            match duplicate_field(info.message()) {
                Some(field) => StoreError::Duplicate(field),
                None => StoreError::Unexpected(Box::new(error)),
            }
        }
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) if is_busy(info.message()) => {
            StoreError::Unavailable(Box::new(error))
        }
        _ => StoreError::Unexpected(Box::new(error)),
    }
}

/// Which unique field a SQLite unique-constraint message names.
///
/// SQLite names the columns of an index on plain columns (`UNIQUE constraint failed:
/// users.email`) and the index itself for an index on an expression (`UNIQUE constraint
/// failed: index 'users_username_key'`); both forms of every index are recognised. The
/// memberships' primary key is named by its two columns.
fn duplicate_field(message: &str) -> Option<UniqueField> {
    let targets = message.strip_prefix("UNIQUE constraint failed: ")?.trim();
    if targets == "memberships.tenant_id, memberships.user_id" {
        return Some(UniqueField::Membership);
    }
    match targets {
        "users.email" | "index 'users_email_key'" => Some(UniqueField::Email),
        "users.username" | "index 'users_username_key'" => Some(UniqueField::Username),
        "tenants.slug" | "index 'tenants_slug_key'" => Some(UniqueField::Slug),
        _ => None,
    }
}

/// Whether SQLite gave up waiting for a lock (`SQLITE_BUSY` / `SQLITE_LOCKED`).
fn is_busy(message: &str) -> bool {
    message.starts_with("database is locked") || message.starts_with("database table is locked")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_both_message_forms_of_every_unique_index() {
        for (message, field) in [
            (
                "UNIQUE constraint failed: users.email",
                Some(UniqueField::Email),
            ),
            (
                "UNIQUE constraint failed: index 'users_email_key'",
                Some(UniqueField::Email),
            ),
            (
                "UNIQUE constraint failed: users.username",
                Some(UniqueField::Username),
            ),
            (
                "UNIQUE constraint failed: index 'users_username_key'",
                Some(UniqueField::Username),
            ),
            (
                "UNIQUE constraint failed: tenants.slug",
                Some(UniqueField::Slug),
            ),
            (
                "UNIQUE constraint failed: index 'tenants_slug_key'",
                Some(UniqueField::Slug),
            ),
            (
                "UNIQUE constraint failed: memberships.tenant_id, memberships.user_id",
                Some(UniqueField::Membership),
            ),
            ("UNIQUE constraint failed: memberships.tenant_id", None),
            ("UNIQUE constraint failed: users.id", None),
            ("UNIQUE constraint failed: tenants.id", None),
            ("UNIQUE constraint failed: refresh_tokens.token_hash", None),
            ("something else about users.email", None),
        ] {
            assert_eq!(duplicate_field(message), field, "{message}");
        }
    }

    #[test]
    fn a_lock_timeout_is_unavailable() {
        let error = DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("database is locked".to_owned()),
        );
        assert!(matches!(db_error(error), StoreError::Unavailable(_)));
    }
}
