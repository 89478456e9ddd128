//! Row structs for the diesel schema and their conversions to and from the domain types.
//!
//! A row that does not convert (a malformed id, e-mail or timestamp written by something other
//! than this adapter) is reported as `StoreError::Unexpected`, never silently repaired.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use domain::model::{
    AuditAction, AuditEvent, AuditEventId, AuditTarget, Credentials, Email, MailKind, Membership,
    NewSession, NewUser, PasswordHash, PersonName, Preferences, Role, SealedMail, Session,
    SessionId, Tenant, TenantId, TenantRole, TenantSlug, TokenHash, User, UserId, Username,
};
use domain::ports::{ActionPurpose, ActionToken, ClaimedMail, StoreError, StoredActionToken};
use uuid::Uuid;

use crate::schema::{
    action_tokens, audit_events, memberships, outbox, refresh_tokens, sessions, tenants, users,
};

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

/// Serialises a JSON object for a `TEXT` column checked by `json_valid`.
pub(crate) fn json_text(
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, StoreError> {
    serde_json::to_string(map).map_err(|e| StoreError::Unexpected(Box::new(e)))
}

/// Reads a JSON object column back.
fn json_object(
    column: &str,
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    match serde_json::from_str(text).map_err(|e| corrupt(column, e))? {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(corrupt(column, "not a JSON object")),
    }
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
    password_changed_at: i64,
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
            password_changed_at: from_micros("users.password_changed_at", row.password_changed_at)?,
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

/// A user to insert. A new user has no preferences yet, no login and version 1. Every column
/// is given (`None` is NULL, not DEFAULT), so rows can be inserted many per statement.
#[derive(Debug, Insertable)]
#[diesel(table_name = users, check_for_backend(Sqlite), treat_none_as_default_value = false)]
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
    password_changed_at: i64,
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
            password_changed_at: micros(user.created_at),
        }
    }
}

/// The columns a `UserChanges` may set; `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users, check_for_backend(Sqlite))]
pub(crate) struct UserChangeset {
    pub(crate) first_name: Option<String>,
    pub(crate) last_name: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) preferences: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) role: Option<&'static str>,
    pub(crate) is_active: Option<bool>,
    pub(crate) email_verified: Option<bool>,
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
    pub(crate) tenant_id: Option<String>,
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
            tenant_id: session.tenant.map(|t| t.to_string()),
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
            tenant: row
                .tenant_id
                .map(|t| tenant_id("sessions.tenant_id", &t))
                .transpose()?,
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

/// Parses a stored tenant id.
pub(crate) fn tenant_id(column: &str, value: &str) -> Result<TenantId, StoreError> {
    parse_uuid(column, value).map(TenantId::from_uuid)
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

/// A stored one-time token, read whole.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = action_tokens, check_for_backend(Sqlite))]
pub(crate) struct ActionTokenRow {
    pub(crate) token_hash: String,
    pub(crate) user_id: String,
    pub(crate) purpose: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) used_at: Option<i64>,
}

impl TryFrom<ActionTokenRow> for StoredActionToken {
    type Error = StoreError;

    fn try_from(row: ActionTokenRow) -> Result<Self, Self::Error> {
        let purpose = [ActionPurpose::VerifyEmail, ActionPurpose::ResetPassword]
            .into_iter()
            .find(|p| p.as_str() == row.purpose)
            .ok_or_else(|| corrupt("action_tokens.purpose", &row.purpose))?;
        Ok(Self {
            token: ActionToken {
                hash: TokenHash::new(row.token_hash),
                user_id: user_id("action_tokens.user_id", &row.user_id)?,
                purpose,
                created_at: from_micros("action_tokens.created_at", row.created_at)?,
                expires_at: from_micros("action_tokens.expires_at", row.expires_at)?,
            },
            used_at: from_micros_opt("action_tokens.used_at", row.used_at)?,
        })
    }
}

/// A tenant row, read and written whole.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants, check_for_backend(Sqlite))]
pub(crate) struct TenantRow {
    id: String,
    name: String,
    slug: String,
    description: String,
    domain: String,
    settings: String,
    is_active: bool,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

impl TryFrom<&Tenant> for TenantRow {
    type Error = StoreError;

    fn try_from(tenant: &Tenant) -> Result<Self, Self::Error> {
        Ok(Self {
            id: tenant.id.to_string(),
            name: tenant.name.clone(),
            slug: tenant.slug.as_str().to_owned(),
            description: tenant.description.clone(),
            domain: tenant.domain.clone(),
            settings: json_text(&tenant.settings)?,
            is_active: tenant.is_active,
            created_at: micros(tenant.created_at),
            updated_at: micros(tenant.updated_at),
            version: tenant.version,
        })
    }
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;

    fn try_from(row: TenantRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: tenant_id("tenants.id", &row.id)?,
            name: row.name,
            slug: TenantSlug::parse(&row.slug).map_err(|e| corrupt("tenants.slug", e))?,
            description: row.description,
            domain: row.domain,
            settings: json_object("tenants.settings", &row.settings)?,
            is_active: row.is_active,
            created_at: from_micros("tenants.created_at", row.created_at)?,
            updated_at: from_micros("tenants.updated_at", row.updated_at)?,
            version: row.version,
        })
    }
}

/// The columns a `TenantChanges` may set; `None` leaves a column as it is.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = tenants, check_for_backend(Sqlite))]
pub(crate) struct TenantChangeset {
    pub(crate) name: Option<String>,
    pub(crate) slug: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) domain: Option<String>,
    pub(crate) settings: Option<String>,
    pub(crate) is_active: Option<bool>,
}

/// A membership row, read and written whole.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = memberships, check_for_backend(Sqlite))]
pub(crate) struct MembershipRow {
    pub(crate) tenant_id: String,
    pub(crate) user_id: String,
    pub(crate) role: String,
    pub(crate) created_at: i64,
}

impl From<&Membership> for MembershipRow {
    fn from(membership: &Membership) -> Self {
        Self {
            tenant_id: membership.tenant_id.to_string(),
            user_id: membership.user_id.to_string(),
            role: membership.role.as_str().to_owned(),
            created_at: micros(membership.created_at),
        }
    }
}

impl TryFrom<MembershipRow> for Membership {
    type Error = StoreError;

    fn try_from(row: MembershipRow) -> Result<Self, Self::Error> {
        Ok(Self {
            tenant_id: tenant_id("memberships.tenant_id", &row.tenant_id)?,
            user_id: user_id("memberships.user_id", &row.user_id)?,
            role: tenant_role(&row.role)?,
            created_at: from_micros("memberships.created_at", row.created_at)?,
        })
    }
}

/// Parses a stored membership role.
pub(crate) fn tenant_role(value: &str) -> Result<TenantRole, StoreError> {
    value
        .parse::<TenantRole>()
        .map_err(|e| corrupt("memberships.role", e))
}

/// An audit event row to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events, check_for_backend(Sqlite))]
pub(crate) struct AuditEventRow {
    id: String,
    at: i64,
    actor_id: Option<String>,
    tenant_id: Option<String>,
    action: &'static str,
    target_type: Option<&'static str>,
    target_id: Option<String>,
    ip: Option<String>,
    request_id: Option<String>,
    details: String,
}

/// An audit event row as read back (the action and target type as stored text).
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(Sqlite))]
pub(crate) struct StoredAuditEventRow {
    id: String,
    at: i64,
    actor_id: Option<String>,
    tenant_id: Option<String>,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    ip: Option<String>,
    request_id: Option<String>,
    details: String,
}

impl TryFrom<&AuditEvent> for AuditEventRow {
    type Error = StoreError;

    fn try_from(event: &AuditEvent) -> Result<Self, Self::Error> {
        Ok(Self {
            id: event.id.to_string(),
            at: micros(event.at),
            actor_id: event.actor.map(|a| a.to_string()),
            tenant_id: event.tenant.map(|t| t.to_string()),
            action: event.action.as_str(),
            target_type: event.target.type_name(),
            target_id: event.target.id().map(|id| id.to_string()),
            ip: event.ip.clone(),
            request_id: event.request_id.clone(),
            details: json_text(&event.details)?,
        })
    }
}

impl TryFrom<StoredAuditEventRow> for AuditEvent {
    type Error = StoreError;

    fn try_from(row: StoredAuditEventRow) -> Result<Self, Self::Error> {
        let target_id = row
            .target_id
            .as_deref()
            .map(|id| parse_uuid("audit_events.target_id", id))
            .transpose()?;
        let target = match (row.target_type.as_deref(), target_id) {
            (Some("user"), Some(id)) => AuditTarget::User(UserId::from_uuid(id)),
            (Some("tenant"), Some(id)) => AuditTarget::Tenant(TenantId::from_uuid(id)),
            (Some("session"), Some(id)) => AuditTarget::Session(SessionId::from_uuid(id)),
            (None, None) => AuditTarget::None,
            (kind, id) => {
                return Err(corrupt(
                    "audit_events.target_type",
                    format!("{kind:?} with target id {id:?}"),
                ));
            }
        };
        Ok(Self {
            id: AuditEventId::from_uuid(parse_uuid("audit_events.id", &row.id)?),
            at: from_micros("audit_events.at", row.at)?,
            actor: row
                .actor_id
                .map(|a| user_id("audit_events.actor_id", &a))
                .transpose()?,
            tenant: row
                .tenant_id
                .map(|t| tenant_id("audit_events.tenant_id", &t))
                .transpose()?,
            action: row
                .action
                .parse::<AuditAction>()
                .map_err(|e| corrupt("audit_events.action", e))?,
            target,
            ip: row.ip,
            request_id: row.request_id,
            details: json_object("audit_events.details", &row.details)?,
        })
    }
}

/// A message to put in the outbox: undelivered, never tried, due at once.
#[derive(Debug, Insertable)]
#[diesel(table_name = outbox, check_for_backend(Sqlite))]
pub(crate) struct NewOutboxRow<'a> {
    id: String,
    kind: &'static str,
    created_at: i64,
    payload: &'a [u8],
    attempts: i32,
    next_attempt_at: i64,
}

impl<'a> From<&'a SealedMail> for NewOutboxRow<'a> {
    fn from(mail: &'a SealedMail) -> Self {
        Self {
            id: mail.id.to_string(),
            kind: mail.kind.as_str(),
            created_at: micros(mail.created_at),
            payload: &mail.sealed,
            attempts: 0,
            next_attempt_at: micros(mail.created_at),
        }
    }
}

/// A claimed message, as `claim` reads it.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = outbox, check_for_backend(Sqlite))]
pub(crate) struct OutboxRow {
    pub(crate) id: String,
    kind: String,
    created_at: i64,
    payload: Option<Vec<u8>>,
    attempts: i32,
}

impl TryFrom<OutboxRow> for ClaimedMail {
    type Error = StoreError;

    fn try_from(row: OutboxRow) -> Result<Self, Self::Error> {
        Ok(Self {
            mail: SealedMail {
                id: parse_uuid("outbox.id", &row.id)?,
                kind: MailKind::parse(&row.kind)
                    .ok_or_else(|| corrupt("outbox.kind", &row.kind))?,
                created_at: from_micros("outbox.created_at", row.created_at)?,
                sealed: row
                    .payload
                    .ok_or_else(|| corrupt("outbox.payload", "NULL in an undelivered message"))?,
            },
            attempts: u32::try_from(row.attempts).map_err(|e| corrupt("outbox.attempts", e))?,
        })
    }
}
