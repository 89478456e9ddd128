//! Row structs for the diesel schema and their conversions to and from the domain types.
//!
//! A row that does not convert (an e-mail, name or preferences value written by something
//! other than this adapter that the domain refuses) is reported as `StoreError::Unexpected`,
//! never silently repaired.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use domain::model::{
    Credentials, Email, NewSession, NewUser, PasswordHash, PersonName, Preferences, Role, Session,
    SessionId, User, UserId, Username,
};
use domain::ports::{ActionToken, StoreError};
use uuid::Uuid;

use crate::schema::{action_tokens, refresh_tokens, sessions, users};

/// A stored value the domain refuses.
pub(crate) fn corrupt(column: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(format!("invalid value in column {column}: {why}").into())
}

/// A user row without its password hash.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(Pg))]
pub(crate) struct UserRow {
    id: Uuid,
    email: String,
    username: String,
    first_name: String,
    last_name: String,
    role: String,
    is_active: bool,
    email_verified: bool,
    preferences: serde_json::Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
    version: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: UserId::from_uuid(row.id),
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
            preferences: Preferences::parse(row.preferences)
                .map_err(|e| corrupt("users.preferences", e))?,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_login_at: row.last_login_at,
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
#[diesel(table_name = users, check_for_backend(Pg))]
pub(crate) struct NewUserRow<'a> {
    id: Uuid,
    email: &'a str,
    username: &'a str,
    password_hash: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    role: &'static str,
    is_active: bool,
    email_verified: bool,
    preferences: serde_json::Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
    version: i64,
}

impl<'a> From<&'a NewUser> for NewUserRow<'a> {
    fn from(user: &'a NewUser) -> Self {
        Self {
            id: *user.id.as_uuid(),
            email: user.email.as_str(),
            username: user.username.as_str(),
            password_hash: user.password_hash.as_str(),
            first_name: user.first_name.as_str(),
            last_name: user.last_name.as_str(),
            role: user.role.as_str(),
            is_active: user.is_active,
            email_verified: user.email_verified,
            preferences: Preferences::default().into_value(),
            created_at: user.created_at,
            updated_at: user.created_at,
            last_login_at: None,
            version: 1,
        }
    }
}

/// The profile columns a `ProfileChanges` may set; `None` leaves a column as it is.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = users, check_for_backend(Pg))]
pub(crate) struct ProfileChangeset {
    pub(crate) first_name: Option<String>,
    pub(crate) last_name: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) preferences: Option<serde_json::Value>,
}

/// A session row, read and written whole.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, check_for_backend(Pg))]
pub(crate) struct SessionRow {
    pub(crate) id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) last_used_at: DateTime<Utc>,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) revoked_at: Option<DateTime<Utc>>,
    pub(crate) user_agent: Option<String>,
    pub(crate) ip: Option<String>,
}

impl From<&Session> for SessionRow {
    fn from(session: &Session) -> Self {
        Self {
            id: *session.id.as_uuid(),
            user_id: *session.user_id.as_uuid(),
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            expires_at: session.expires_at,
            revoked_at: session.revoked_at,
            user_agent: session.user_agent.clone(),
            ip: session.ip.clone(),
        }
    }
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Self {
            id: SessionId::from_uuid(row.id),
            user_id: UserId::from_uuid(row.user_id),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            user_agent: row.user_agent,
            ip: row.ip,
        }
    }
}

/// A refresh token to insert, unspent.
#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens, check_for_backend(Pg))]
pub(crate) struct NewRefreshTokenRow<'a> {
    pub(crate) token_hash: &'a str,
    pub(crate) session_id: Uuid,
    pub(crate) issued_at: DateTime<Utc>,
    pub(crate) used_at: Option<DateTime<Utc>>,
}

impl<'a> NewRefreshTokenRow<'a> {
    /// The first refresh token of a new session.
    pub(crate) fn first_of(new: &'a NewSession) -> Self {
        Self {
            token_hash: new.refresh_token.as_str(),
            session_id: *new.session.id.as_uuid(),
            issued_at: new.session.created_at,
            used_at: None,
        }
    }
}

/// A one-time token to insert, unspent.
#[derive(Debug, Insertable)]
#[diesel(table_name = action_tokens, check_for_backend(Pg))]
pub(crate) struct NewActionTokenRow<'a> {
    token_hash: &'a str,
    user_id: Uuid,
    purpose: &'static str,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
}

impl<'a> From<&'a ActionToken> for NewActionTokenRow<'a> {
    fn from(token: &'a ActionToken) -> Self {
        Self {
            token_hash: token.hash.as_str(),
            user_id: *token.user_id.as_uuid(),
            purpose: token.purpose.as_str(),
            created_at: token.created_at,
            expires_at: token.expires_at,
            used_at: None,
        }
    }
}
