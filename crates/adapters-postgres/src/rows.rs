//! Row structs for the diesel schema and their conversions to and from the domain types.
//!
//! A row that does not convert (an e-mail, name or preferences value written by something
//! other than this adapter that the domain refuses) is reported as `StoreError::Unexpected`,
//! never silently repaired.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
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
    password_changed_at: DateTime<Utc>,
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
            password_changed_at: row.password_changed_at,
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
    password_changed_at: DateTime<Utc>,
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
            password_changed_at: user.created_at,
        }
    }
}

/// The user columns a `UserChanges` may set; `None` leaves a column as it is.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = users, check_for_backend(Pg))]
pub(crate) struct UserChangeset {
    pub(crate) first_name: Option<String>,
    pub(crate) last_name: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) preferences: Option<serde_json::Value>,
    pub(crate) email: Option<String>,
    pub(crate) email_verified: Option<bool>,
    pub(crate) role: Option<&'static str>,
    pub(crate) is_active: Option<bool>,
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
    pub(crate) tenant_id: Option<Uuid>,
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
            tenant_id: session.tenant.map(|t| *t.as_uuid()),
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
            tenant: row.tenant_id.map(TenantId::from_uuid),
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

/// A one-time token as stored.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = action_tokens, check_for_backend(Pg))]
pub(crate) struct ActionTokenRow {
    token_hash: String,
    user_id: Uuid,
    purpose: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
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
                user_id: UserId::from_uuid(row.user_id),
                purpose,
                created_at: row.created_at,
                expires_at: row.expires_at,
            },
            used_at: row.used_at,
        })
    }
}

/// A JSON object read from a `jsonb` column that the schema constrains to objects.
fn object(
    column: &str,
    value: serde_json::Value,
) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    match value {
        serde_json::Value::Object(map) => Ok(map),
        other => Err(corrupt(column, format!("not a JSON object: {other}"))),
    }
}

/// A tenant row, read and written whole.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants, check_for_backend(Pg))]
pub(crate) struct TenantRow {
    id: Uuid,
    name: String,
    slug: String,
    description: String,
    domain: String,
    settings: serde_json::Value,
    is_active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl From<&Tenant> for TenantRow {
    fn from(tenant: &Tenant) -> Self {
        Self {
            id: *tenant.id.as_uuid(),
            name: tenant.name.clone(),
            slug: tenant.slug.as_str().to_owned(),
            description: tenant.description.clone(),
            domain: tenant.domain.clone(),
            settings: serde_json::Value::Object(tenant.settings.clone()),
            is_active: tenant.is_active,
            created_at: tenant.created_at,
            updated_at: tenant.updated_at,
            version: tenant.version,
        }
    }
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;

    fn try_from(row: TenantRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: TenantId::from_uuid(row.id),
            name: row.name,
            slug: TenantSlug::parse(&row.slug).map_err(|e| corrupt("tenants.slug", e))?,
            description: row.description,
            domain: row.domain,
            settings: object("tenants.settings", row.settings)?,
            is_active: row.is_active,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        })
    }
}

/// The tenant columns a `TenantChanges` may set; `None` leaves a column as it is.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = tenants, check_for_backend(Pg))]
pub(crate) struct TenantChangeset {
    pub(crate) name: Option<String>,
    pub(crate) slug: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) domain: Option<String>,
    pub(crate) settings: Option<serde_json::Value>,
    pub(crate) is_active: Option<bool>,
}

/// A membership row, read and written whole.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = memberships, check_for_backend(Pg))]
pub(crate) struct MembershipRow {
    tenant_id: Uuid,
    user_id: Uuid,
    role: String,
    created_at: DateTime<Utc>,
}

impl From<&Membership> for MembershipRow {
    fn from(membership: &Membership) -> Self {
        Self {
            tenant_id: *membership.tenant_id.as_uuid(),
            user_id: *membership.user_id.as_uuid(),
            role: membership.role.as_str().to_owned(),
            created_at: membership.created_at,
        }
    }
}

impl TryFrom<MembershipRow> for Membership {
    type Error = StoreError;

    fn try_from(row: MembershipRow) -> Result<Self, Self::Error> {
        Ok(Self {
            tenant_id: TenantId::from_uuid(row.tenant_id),
            user_id: UserId::from_uuid(row.user_id),
            role: row
                .role
                .parse::<TenantRole>()
                .map_err(|e| corrupt("memberships.role", e))?,
            created_at: row.created_at,
        })
    }
}

/// An audit event row to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events, check_for_backend(Pg))]
pub(crate) struct AuditEventRow {
    id: Uuid,
    at: DateTime<Utc>,
    actor_id: Option<Uuid>,
    tenant_id: Option<Uuid>,
    action: &'static str,
    target_type: Option<&'static str>,
    target_id: Option<Uuid>,
    ip: Option<String>,
    request_id: Option<String>,
    details: serde_json::Value,
}

impl From<&AuditEvent> for AuditEventRow {
    fn from(event: &AuditEvent) -> Self {
        Self {
            id: *event.id.as_uuid(),
            at: event.at,
            actor_id: event.actor.map(|a| *a.as_uuid()),
            tenant_id: event.tenant.map(|t| *t.as_uuid()),
            action: event.action.as_str(),
            target_type: event.target.type_name(),
            target_id: event.target.id(),
            ip: event.ip.clone(),
            request_id: event.request_id.clone(),
            details: serde_json::Value::Object(event.details.clone()),
        }
    }
}

/// An audit event row as read back.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(Pg))]
pub(crate) struct StoredAuditEventRow {
    id: Uuid,
    at: DateTime<Utc>,
    actor_id: Option<Uuid>,
    tenant_id: Option<Uuid>,
    action: String,
    target_type: Option<String>,
    target_id: Option<Uuid>,
    ip: Option<String>,
    request_id: Option<String>,
    details: serde_json::Value,
}

impl TryFrom<StoredAuditEventRow> for AuditEvent {
    type Error = StoreError;

    fn try_from(row: StoredAuditEventRow) -> Result<Self, Self::Error> {
        let target = match (row.target_type.as_deref(), row.target_id) {
            (None, None) => AuditTarget::None,
            (Some("user"), Some(id)) => AuditTarget::User(UserId::from_uuid(id)),
            (Some("tenant"), Some(id)) => AuditTarget::Tenant(TenantId::from_uuid(id)),
            (Some("session"), Some(id)) => AuditTarget::Session(SessionId::from_uuid(id)),
            (kind, id) => {
                return Err(corrupt(
                    "audit_events.target_type",
                    format!("{kind:?} with target id {id:?}"),
                ));
            }
        };
        Ok(Self {
            id: AuditEventId::from_uuid(row.id),
            at: row.at,
            actor: row.actor_id.map(UserId::from_uuid),
            tenant: row.tenant_id.map(TenantId::from_uuid),
            action: row
                .action
                .parse::<AuditAction>()
                .map_err(|e| corrupt("audit_events.action", format!("{:?} {e}", row.action)))?,
            target,
            ip: row.ip,
            request_id: row.request_id,
            details: object("audit_events.details", row.details)?,
        })
    }
}

/// A message to put in the outbox: undelivered, never tried, due at once.
#[derive(Debug, Insertable)]
#[diesel(table_name = outbox, check_for_backend(Pg))]
pub(crate) struct NewOutboxRow<'a> {
    id: Uuid,
    kind: &'static str,
    created_at: DateTime<Utc>,
    payload: &'a [u8],
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
}

impl<'a> From<&'a SealedMail> for NewOutboxRow<'a> {
    fn from(mail: &'a SealedMail) -> Self {
        Self {
            id: mail.id,
            kind: mail.kind.as_str(),
            created_at: mail.created_at,
            payload: &mail.sealed,
            attempts: 0,
            next_attempt_at: mail.created_at,
        }
    }
}

/// A claimed message, as `claim` returns it.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = outbox, check_for_backend(Pg))]
pub(crate) struct OutboxRow {
    pub(crate) id: Uuid,
    kind: String,
    pub(crate) created_at: DateTime<Utc>,
    payload: Option<Vec<u8>>,
    attempts: i32,
}

impl TryFrom<OutboxRow> for ClaimedMail {
    type Error = StoreError;

    fn try_from(row: OutboxRow) -> Result<Self, Self::Error> {
        Ok(Self {
            mail: SealedMail {
                id: row.id,
                kind: MailKind::parse(&row.kind)
                    .ok_or_else(|| corrupt("outbox.kind", &row.kind))?,
                created_at: row.created_at,
                sealed: row
                    .payload
                    .ok_or_else(|| corrupt("outbox.payload", "NULL in an undelivered message"))?,
            },
            attempts: u32::try_from(row.attempts).map_err(|e| corrupt("outbox.attempts", e))?,
        })
    }
}
