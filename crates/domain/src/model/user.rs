//! The user account and the values that describe it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Email, PasswordHash, UserId, Username};

/// A user's system-wide role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May do everything everywhere.
    Admin,
    /// An ordinary account.
    User,
}

impl Role {
    /// The role's wire and storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of: admin, user")]
pub struct RoleError;

impl FromStr for Role {
    type Err = RoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "user" => Ok(Self::User),
            _ => Err(RoleError),
        }
    }
}

/// A first or last name: trimmed, at most 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonName(String);

impl PersonName {
    /// Validates a name. An empty string is allowed and means "not given".
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim();
        if name.chars().count() > 100 {
            return Err("must be at most 100 characters long");
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free-form user preferences: always a JSON object, at most 16 KiB serialised.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Preferences(serde_json::Map<String, serde_json::Value>);

impl Preferences {
    /// Largest serialised size accepted.
    pub const MAX_BYTES: usize = 16 * 1024;

    /// Validates preferences.
    ///
    /// # Errors
    /// A message when the value is not an object or is too large.
    pub fn parse(value: serde_json::Value) -> Result<Self, &'static str> {
        match value {
            serde_json::Value::Object(map) => {
                if serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len()) > Self::MAX_BYTES {
                    Err("must be at most 16 KiB when serialised")
                } else if map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
                    // PostgreSQL's jsonb cannot store U+0000; refuse it everywhere alike.
                    Err("must not contain the NUL character (\\u0000)")
                } else {
                    Ok(Self(map))
                }
            }
            _ => Err("must be a JSON object"),
        }
    }

    /// The preferences as a JSON object.
    #[must_use]
    pub fn as_map(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0
    }

    /// Consumes the preferences into a JSON value.
    #[must_use]
    pub fn into_value(self) -> serde_json::Value {
        serde_json::Value::Object(self.0)
    }
}

fn has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(has_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Optimistic-concurrency version of a user row; bumped on every change. Exposed as the ETag.
pub type UserVersion = i64;

/// A user account as the rest of the system sees it. It never carries the password hash.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Identifier (UUID v7).
    pub id: UserId,
    /// Normalised e-mail address, unique.
    pub email: Email,
    /// Username, unique regardless of case.
    pub username: Username,
    /// Given name, possibly empty.
    pub first_name: PersonName,
    /// Family name, possibly empty.
    pub last_name: PersonName,
    /// System role.
    pub role: Role,
    /// Whether the account may log in.
    pub is_active: bool,
    /// Whether the e-mail address has been proven.
    pub email_verified: bool,
    /// Free-form preferences.
    pub preferences: Preferences,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// When the account last changed.
    pub updated_at: DateTime<Utc>,
    /// When the user last logged in.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version.
    pub version: UserVersion,
    /// When the password was last set: at creation, by a change or by a reset. Past
    /// `AuthSettings::password_max_age` the user must change it (see
    /// [`policy::password_change_required`](crate::policy::password_change_required)).
    pub password_changed_at: DateTime<Utc>,
}

/// A user and the hash of their password, read for login and password changes only.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The account.
    pub user: User,
    /// Its password hash.
    pub password_hash: PasswordHash,
}

/// A user to be created.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Identifier chosen by the [`IdGenerator`](crate::ports::IdGenerator).
    pub id: UserId,
    /// E-mail address.
    pub email: Email,
    /// Username.
    pub username: Username,
    /// Given name.
    pub first_name: PersonName,
    /// Family name.
    pub last_name: PersonName,
    /// System role.
    pub role: Role,
    /// Whether the account may log in.
    pub is_active: bool,
    /// Whether the e-mail address is already proven.
    pub email_verified: bool,
    /// Hash of the initial password.
    pub password_hash: PasswordHash,
    /// Creation time; also the first `updated_at`.
    pub created_at: DateTime<Utc>,
}

/// Changes to a user's own profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileChanges {
    /// New given name.
    pub first_name: Option<PersonName>,
    /// New family name.
    pub last_name: Option<PersonName>,
    /// New username.
    pub username: Option<Username>,
    /// New preferences (replacing the old ones whole).
    pub preferences: Option<Preferences>,
}

impl ProfileChanges {
    /// True when nothing would change.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.first_name.is_none()
            && self.last_name.is_none()
            && self.username.is_none()
            && self.preferences.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in [Role::Admin, Role::User] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!("root".parse::<Role>(), Err(RoleError));
    }

    #[test]
    fn preferences_must_be_a_small_object() {
        assert!(Preferences::parse(serde_json::json!({"theme": "dark"})).is_ok());
        assert!(Preferences::parse(serde_json::json!(["dark"])).is_err());
        assert!(Preferences::parse(serde_json::json!({"x": "y".repeat(17 * 1024)})).is_err());
        assert!(Preferences::parse(serde_json::json!({"a": {"b": ["ok", "n\u{0}ul"]}})).is_err());
        assert!(Preferences::parse(serde_json::json!({"k\u{0}": 1})).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            PersonName::parse("  Ada ").map(|n| n.0),
            Ok("Ada".to_owned())
        );
        assert!(PersonName::parse(&"x".repeat(101)).is_err());
        assert!(PersonName::parse("a\u{0}b").is_err());
    }
}
