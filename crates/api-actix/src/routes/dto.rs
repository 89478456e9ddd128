//! Response bodies shared by several resources.

use chrono::{DateTime, Utc};
use domain::model::{AuditEvent, Membership, Tenant, User};
use domain::ports::{Member, Paged, TenantMembership};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A user account. Never carries a password hash or token.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    /// Identifier (UUID v7).
    pub id: Uuid,
    /// E-mail address, lower-cased.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Username.
    #[schema(example = "ada")]
    pub username: String,
    /// Given name (may be empty).
    pub first_name: String,
    /// Family name (may be empty).
    pub last_name: String,
    /// System role.
    #[schema(example = "user", pattern = "^(admin|user)$")]
    pub role: String,
    /// Whether the account may log in.
    pub is_active: bool,
    /// Whether the e-mail address has been verified.
    pub email_verified: bool,
    /// Free-form preferences (a JSON object).
    #[schema(value_type = Object)]
    pub preferences: serde_json::Value,
    /// Creation time (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
    /// Last change (RFC 3339, UTC).
    pub updated_at: DateTime<Utc>,
    /// Last login, if any.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            id: *user.id.as_uuid(),
            email: user.email.to_string(),
            username: user.username.to_string(),
            first_name: user.first_name.as_str().to_owned(),
            last_name: user.last_name.as_str().to_owned(),
            role: user.role.to_string(),
            is_active: user.is_active,
            email_verified: user.email_verified,
            preferences: user.preferences.into_value(),
            created_at: user.created_at,
            updated_at: user.updated_at,
            last_login_at: user.last_login_at,
        }
    }
}

/// A user as embedded in a membership list.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserSummary {
    /// Identifier.
    pub id: Uuid,
    /// E-mail address.
    pub email: String,
    /// Username.
    pub username: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Whether the account may log in.
    pub is_active: bool,
}

impl From<User> for UserSummary {
    fn from(user: User) -> Self {
        Self {
            id: *user.id.as_uuid(),
            email: user.email.to_string(),
            username: user.username.to_string(),
            first_name: user.first_name.as_str().to_owned(),
            last_name: user.last_name.as_str().to_owned(),
            is_active: user.is_active,
        }
    }
}

/// A tenant as embedded in a membership.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantSummary {
    /// Identifier.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// URL-safe unique name.
    pub slug: String,
    /// Whether members may log in scoped to it.
    pub is_active: bool,
}

impl From<&Tenant> for TenantSummary {
    fn from(tenant: &Tenant) -> Self {
        Self {
            id: *tenant.id.as_uuid(),
            name: tenant.name.clone(),
            slug: tenant.slug.as_str().to_owned(),
            is_active: tenant.is_active,
        }
    }
}

/// A tenant (an organisation; "lab" in some deployments).
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantResponse {
    /// Identifier (UUID v7).
    pub id: Uuid,
    /// Display name.
    #[schema(example = "Acme Research")]
    pub name: String,
    /// Unique URL-safe name, `[a-z0-9-]{3,63}`.
    #[schema(example = "acme")]
    pub slug: String,
    /// Free text (may be empty).
    pub description: String,
    /// The organisation's internet domain (may be empty).
    pub domain: String,
    /// Free-form settings (a JSON object).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// Whether members may log in scoped to it.
    pub is_active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Tenant> for TenantResponse {
    fn from(tenant: Tenant) -> Self {
        Self {
            id: *tenant.id.as_uuid(),
            name: tenant.name,
            slug: tenant.slug.as_str().to_owned(),
            description: tenant.description,
            domain: tenant.domain,
            settings: serde_json::Value::Object(tenant.settings),
            is_active: tenant.is_active,
            created_at: tenant.created_at,
            updated_at: tenant.updated_at,
        }
    }
}

/// A membership: one user's role in one tenant, with the user or the tenant embedded in lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipResponse {
    /// The tenant.
    pub tenant_id: Uuid,
    /// The member.
    pub user_id: Uuid,
    /// `admin`, `moderator`, `member` or `viewer`.
    #[schema(example = "member", pattern = "^(admin|moderator|member|viewer)$")]
    pub role: String,
    /// When the user joined.
    pub created_at: DateTime<Utc>,
    /// The member, in a tenant's member list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserSummary>,
    /// The tenant, in a user's tenant list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantSummary>,
}

impl From<Membership> for MembershipResponse {
    fn from(membership: Membership) -> Self {
        Self {
            tenant_id: *membership.tenant_id.as_uuid(),
            user_id: *membership.user_id.as_uuid(),
            role: membership.role.as_str().to_owned(),
            created_at: membership.created_at,
            user: None,
            tenant: None,
        }
    }
}

impl From<Member> for MembershipResponse {
    fn from(member: Member) -> Self {
        Self {
            user: Some(UserSummary::from(member.user)),
            ..Self::from(member.membership)
        }
    }
}

impl From<TenantMembership> for MembershipResponse {
    fn from(entry: TenantMembership) -> Self {
        Self {
            tenant: Some(TenantSummary::from(&entry.tenant)),
            ..Self::from(entry.membership)
        }
    }
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventResponse {
    /// Identifier (UUID v7).
    pub id: Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who did it (absent for anonymous callers).
    pub actor_id: Option<Uuid>,
    /// The tenant it happened in.
    pub tenant_id: Option<Uuid>,
    /// What happened, e.g. `user.login_failed`, `tenant.member_added`.
    #[schema(example = "user.login")]
    pub action: String,
    /// `user`, `tenant` or `session`.
    pub target_type: Option<String>,
    /// The target's id.
    pub target_id: Option<Uuid>,
    /// The client's address.
    pub ip: Option<String>,
    /// The request's `X-Request-Id`.
    pub request_id: Option<String>,
    /// Action-specific details (never a secret).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<AuditEvent> for AuditEventResponse {
    fn from(event: AuditEvent) -> Self {
        Self {
            id: *event.id.as_uuid(),
            at: event.at,
            actor_id: event.actor.map(|id| *id.as_uuid()),
            tenant_id: event.tenant.map(|id| *id.as_uuid()),
            action: event.action.as_str().to_owned(),
            target_type: event.target.type_name().map(str::to_owned),
            target_id: event.target.id(),
            ip: event.ip,
            request_id: event.request_id,
            details: serde_json::Value::Object(event.details),
        }
    }
}

/// One of the caller's sessions (a device).
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// Identifier (`sid` in its access tokens).
    pub id: Uuid,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last login or refresh.
    pub last_used_at: DateTime<Utc>,
    /// When its refresh token stops working.
    pub expires_at: DateTime<Utc>,
    /// The client's `User-Agent` at login.
    pub user_agent: Option<String>,
    /// The client's address at login.
    pub ip: Option<String>,
    /// Whether it is the session of the request.
    pub current: bool,
}

impl From<domain::services::DeviceSession> for SessionResponse {
    fn from(device: domain::services::DeviceSession) -> Self {
        let session = device.session;
        Self {
            id: *session.id.as_uuid(),
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            expires_at: session.expires_at,
            user_agent: session.user_agent,
            ip: session.ip,
            current: device.current,
        }
    }
}

macro_rules! page_type {
    ($($(#[$doc:meta])* $name:ident of $item:ty;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            /// This page's items.
            pub items: Vec<$item>,
            /// 1-based page number.
            pub page: u32,
            /// Items per page.
            pub per_page: u32,
            /// Items on all pages.
            pub total: u64,
        }

        impl $name {
            /// The response for one page of `items`.
            pub fn of<T: Into<$item>>(page: domain::ports::PageRequest, items: Paged<T>) -> Self {
                Self {
                    items: items.items.into_iter().map(Into::into).collect(),
                    page: page.page,
                    per_page: page.per_page,
                    total: items.total,
                }
            }
        }
    )*};
}

page_type! {
    /// A page of users.
    UserPage of UserResponse;
    /// A page of tenants.
    TenantPage of TenantResponse;
    /// A page of memberships.
    MembershipPage of MembershipResponse;
    /// A page of audit events.
    AuditPage of AuditEventResponse;
    /// A page of sessions.
    SessionPage of SessionResponse;
}
