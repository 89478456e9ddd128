//! Errors: `PostgresError` for opening and migrating the store, and the translation of diesel
//! errors into the domain's `StoreError` at the port boundary.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use domain::BoxError;
use domain::ports::{StoreError, UniqueField};

/// Failure to open, configure or migrate the PostgreSQL store.
///
/// No variant ever holds the connection URL's password: the database is named by the URL with
/// its password replaced by `***`, and libpq's messages are scrubbed of it.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// A pool of zero connections, or a zero or too long timeout, was asked for.
    #[error("invalid PostgreSQL pool settings: {0}")]
    InvalidSettings(&'static str),
    /// The first connection could not be established (server unreachable, authentication
    /// refused, unknown database, malformed URL).
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    Connect {
        /// The URL, password redacted.
        target: String,
        /// libpq's reason, password redacted.
        reason: String,
    },
    /// A connection refused the session settings every connection needs.
    #[error("cannot configure PostgreSQL connections to {target}: {reason}")]
    Configure {
        /// The URL, password redacted.
        target: String,
        /// The server's reason.
        reason: String,
    },
    /// The pool could not establish its connections in time.
    #[error("cannot build the PostgreSQL connection pool for {target}: {reason}")]
    Pool {
        /// The URL, password redacted.
        target: String,
        /// Why, password redacted.
        reason: String,
    },
    /// No connection could be checked out of the pool in time.
    #[error("no PostgreSQL connection available: {0}")]
    Checkout(String),
    /// Applying or reverting a migration failed.
    #[error("PostgreSQL migration failed")]
    Migration(#[source] BoxError),
}

/// An error inside a transaction: either a domain outcome decided there (`NotFound`, ...) or a
/// database error, so that `?` works on both and either rolls back.
#[derive(Debug)]
pub(crate) enum TxError {
    /// Decided by the adapter's own logic.
    Store(StoreError),
    /// Reported by PostgreSQL or diesel.
    Db(DieselError),
    /// What the transaction locked turned out not to be all it needed (a membership changed
    /// between reading and locking): roll back and run it again from the start, so that locks
    /// are always taken in the same order. See `crate::retrying_transaction`.
    Retry,
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
            TxError::Retry => StoreError::Unavailable(
                "the rows to lock kept changing; the transaction gave up".into(),
            ),
        }
    }
}

/// Translates a diesel error.
///
/// - A unique violation (SQLSTATE 23505) of `users_email_key`, `users_username_key`,
///   `tenants_slug_key` or `memberships_pkey`, told apart by constraint name, is `Duplicate`;
///   of any other constraint, `Unexpected`.
/// - A lost connection, a statement cancelled by `statement_timeout` (57014) or a lock
///   timeout (55P03), a deadlock (40P01) and a serialization failure (40001) are
///   `Unavailable`: worth retrying.
/// - Anything else is `Unexpected`.
pub(crate) fn db_error(error: DieselError) -> StoreError {
    match &error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            match duplicate_field(info.constraint_name()) {
                Some(field) => StoreError::Duplicate(field),
                None => StoreError::Unexpected(Box::new(error)),
            }
        }
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::SerializationFailure,
            _,
        ) => StoreError::Unavailable(Box::new(error)),
        DieselError::DatabaseError(_, info) if is_transient(info.message()) => {
            StoreError::Unavailable(Box::new(error))
        }
        _ => StoreError::Unexpected(Box::new(error)),
    }
}

/// Which unique field a violated constraint guards.
fn duplicate_field(constraint: Option<&str>) -> Option<UniqueField> {
    match constraint? {
        "users_email_key" => Some(UniqueField::Email),
        "users_username_key" => Some(UniqueField::Username),
        "tenants_slug_key" => Some(UniqueField::Slug),
        "memberships_pkey" => Some(UniqueField::Membership),
        _ => None,
    }
}

/// Whether a server message reports a cancelled statement or a deadlock.
///
/// Diesel exposes no SQLSTATE but those it maps to a `DatabaseErrorKind`, so these are told by
/// their primary message ("canceling statement due to statement timeout", "... lock timeout",
/// "... user request"; "deadlock detected"), which assumes the server's `lc_messages` is
/// English (the default). Under another language they are `Unexpected` instead.
fn is_transient(message: &str) -> bool {
    message.starts_with("canceling statement due to") || message.starts_with("deadlock detected")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn recognises_every_unique_index_by_name() {
        assert_eq!(
            duplicate_field(Some("users_email_key")),
            Some(UniqueField::Email)
        );
        assert_eq!(
            duplicate_field(Some("users_username_key")),
            Some(UniqueField::Username)
        );
        assert_eq!(
            duplicate_field(Some("tenants_slug_key")),
            Some(UniqueField::Slug)
        );
        assert_eq!(
            duplicate_field(Some("memberships_pkey")),
            Some(UniqueField::Membership)
        );
        assert_eq!(duplicate_field(Some("users_pkey")), None);
        assert_eq!(duplicate_field(None), None);
        // A unique violation whose constraint is not known is not a duplicate of a field.
        let error = database_error(DatabaseErrorKind::UniqueViolation, "duplicate key");
        assert!(matches!(db_error(error), StoreError::Unexpected(_)));
    }

    #[test]
    fn timeouts_and_lost_connections_are_unavailable() {
        for error in [
            database_error(
                DatabaseErrorKind::Unknown,
                "canceling statement due to statement timeout",
            ),
            database_error(
                DatabaseErrorKind::Unknown,
                "canceling statement due to lock timeout",
            ),
            database_error(DatabaseErrorKind::Unknown, "deadlock detected"),
            database_error(DatabaseErrorKind::ClosedConnection, "server closed"),
            database_error(DatabaseErrorKind::UnableToSendCommand, "no connection"),
            database_error(DatabaseErrorKind::SerializationFailure, "could not"),
        ] {
            assert!(matches!(db_error(error), StoreError::Unavailable(_)));
        }
        let other = database_error(DatabaseErrorKind::CheckViolation, "violates check");
        assert!(matches!(db_error(other), StoreError::Unexpected(_)));
        assert!(matches!(
            db_error(DieselError::NotFound),
            StoreError::Unexpected(_)
        ));
    }
}
