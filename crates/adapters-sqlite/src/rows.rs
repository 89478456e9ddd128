//! Row structs for the diesel schema and their conversions to and from the domain types.
//!
//! A row that does not convert (a malformed id, e-mail or timestamp written by something other
//! than this adapter) is reported as `StoreError::Unexpected`, never silently repaired.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use domain::model::{
    Credentials, Email, NewSession, NewUser, PasswordHash, PersonName, Preferences, Role, Session,
    SessionId, User, UserId, Username,
};
use domain::ports::{ActionToken, StoreError};
use uuid::Uuid;

use crate::schema::{action_tokens, refresh_tokens, sessions, users};

/// Microseconds since the Unix epoch, the stored form of every timestamp.
pub(crate) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// Reads a stored timestamp back.
pub(crate) fn from_micros(column: &str, value: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(value)
        .ok_or_else(|| corrupt(column, format!("{value} is out of range")))
}

fn from_micros_opt(column: &str, value: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    value.map(|v| from_micros(column, v)).transpose()
}

fn parse_uuid(column: &str, value: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(value).map_err(|e| corrupt(column, e))
}

/// A stored value the domain refuses.
pub(crate) fn corrupt(column: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(format!("invalid value in column {column}: {why}").into())
}

/// A user row without its password hash.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(Sqlite))]
pub(crate) struct UserRow {
    id: String,
    email: String,
    username: String,
    first_name: String,
    last_name: String,
    role: String,
    is_active: bool,
    email_verified: bool,
    preferences: String,
    created_at: i64,
    updated_at: i64,
    last_login_at: Option<i64>,
    version: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        let preferences: serde_json::Value =
            serde_json::from_str(&row.preferences).map_err(|e| corrupt("users.preferences", e))?;
        Ok(Self {
            id: UserId::from_uuid(parse_uuid("users.id", &row.id)?),
            email: Email::parse(&row.email).map_err(|e| corrupt("users.email", e))?,
            username: Username::parse(&row.username).map_err(|e| corrupt("users.username", e))?,
            first_name: PersonName::parse(&row.first_name)
                .map_err(|e| corrupt("users.first_name", e))?,
            last_name: PersonName::parse(&row.last_name)
                .map_err(|e| corrupt("users.last_name", e))?,
            role: row
                .role
                .parse::<Role>()
                .map_err(|e| corrupt("users.role", e))?,
            is_active: row.is_active,
            email_verified: row.email_verified,
            preferences: Preferences::parse(preferences)
                .map_err(|e| corrupt("users.preferences", e))?,
            created_at: from_micros("users.created_at", row.created_at)?,
            updated_at: from_micros("users.updated_at", row.updated_at)?,
            last_login_at: from_micros_opt("users.last_login_at", row.last_login_at)?,
            version: row.version,
        })
    }
}

/// Converts a user row and its password hash, as selected by
/// `(UserRow::as_select(), users::password_hash)`.
pub(crate) fn credentials((row, hash): (UserRow, String)) -> Result<Credentials, StoreError> {
    Ok(Credentials {
        user: User::try_from(row)?,
        password_hash: PasswordHash::new(hash),
    })
}

/// A user to insert. A new user has no preferences yet, no login and version 1.
#[derive(Debug, Insertable)]
#[diesel(table_name = users, check_for_backend(Sqlite))]
pub(crate) struct NewUserRow<'a> {
    id: String,
    email: &'a str,
    username: &'a str,
    password_hash: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    role: &'static str,
    is_active: bool,
    email_verified: bool,
    preferences: &'static str,
    created_at: i64,
    updated_at: i64,
    last_login_at: Option<i64>,
    version: i64,
}

impl<'a> From<&'a NewUser> for NewUserRow<'a> {
    fn from(user: &'a NewUser) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.as_str(),
            username: user.username.as_str(),
            password_hash: user.password_hash.as_str(),
            first_name: user.first_name.as_str(),
            last_name: user.last_name.as_str(),
            role: user.role.as_str(),
            is_active: user.is_active,
            email_verified: user.email_verified,
            preferences: "{}",
            created_at: micros(user.created_at),
            updated_at: micros(user.created_at),
            last_login_at: None,
            version: 1,
        }
    }
}

/// The profile columns a `ProfileChanges` may set; `None` leaves a column as it is.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = users, check_for_backend(Sqlite))]
pub(crate) struct ProfileChangeset {
    pub(crate) first_name: Option<String>,
    pub(crate) last_name: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) preferences: Option<String>,
}

/// A session row, read and written whole.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, check_for_backend(Sqlite))]
pub(crate) struct SessionRow {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) created_at: i64,
    pub(crate) last_used_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) revoked_at: Option<i64>,
    pub(crate) user_agent: Option<String>,
    pub(crate) ip: Option<String>,
}

impl From<&Session> for SessionRow {
    fn from(session: &Session) -> Self {
        Self {
            id: session.id.to_string(),
            user_id: session.user_id.to_string(),
            created_at: micros(session.created_at),
            last_used_at: micros(session.last_used_at),
            expires_at: micros(session.expires_at),
            revoked_at: session.revoked_at.map(micros),
            user_agent: session.user_agent.clone(),
            ip: session.ip.clone(),
        }
    }
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: SessionId::from_uuid(parse_uuid("sessions.id", &row.id)?),
            user_id: UserId::from_uuid(parse_uuid("sessions.user_id", &row.user_id)?),
            created_at: from_micros("sessions.created_at", row.created_at)?,
            last_used_at: from_micros("sessions.last_used_at", row.last_used_at)?,
            expires_at: from_micros("sessions.expires_at", row.expires_at)?,
            revoked_at: from_micros_opt("sessions.revoked_at", row.revoked_at)?,
            user_agent: row.user_agent,
            ip: row.ip,
        })
    }
}

/// Parses a stored session id.
pub(crate) fn session_id(value: &str) -> Result<SessionId, StoreError> {
    parse_uuid("sessions.id", value).map(SessionId::from_uuid)
}

/// Parses a stored user id.
pub(crate) fn user_id(column: &str, value: &str) -> Result<UserId, StoreError> {
    parse_uuid(column, value).map(UserId::from_uuid)
}

/// A refresh token to insert, unspent.
#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens, check_for_backend(Sqlite))]
pub(crate) struct NewRefreshTokenRow<'a> {
    pub(crate) token_hash: &'a str,
    pub(crate) session_id: &'a str,
    pub(crate) issued_at: i64,
    pub(crate) used_at: Option<i64>,
}

impl<'a> NewRefreshTokenRow<'a> {
    /// The first refresh token of a new session.
    pub(crate) fn first_of(new: &'a NewSession, session_id: &'a str) -> Self {
        Self {
            token_hash: new.refresh_token.as_str(),
            session_id,
            issued_at: micros(new.session.created_at),
            used_at: None,
        }
    }
}

/// A one-time token to insert, unspent.
#[derive(Debug, Insertable)]
#[diesel(table_name = action_tokens, check_for_backend(Sqlite))]
pub(crate) struct NewActionTokenRow<'a> {
    token_hash: &'a str,
    user_id: String,
    purpose: &'static str,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

impl<'a> From<&'a ActionToken> for NewActionTokenRow<'a> {
    fn from(token: &'a ActionToken) -> Self {
        Self {
            token_hash: token.hash.as_str(),
            user_id: token.user_id.to_string(),
            purpose: token.purpose.as_str(),
            created_at: micros(token.created_at),
            expires_at: micros(token.expires_at),
            used_at: None,
        }
    }
}

/// The columns of an action token that decide whether it may be spent.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = action_tokens, check_for_backend(Sqlite))]
pub(crate) struct ActionTokenRow {
    pub(crate) user_id: String,
    pub(crate) purpose: String,
    pub(crate) expires_at: i64,
    pub(crate) used_at: Option<i64>,
}
