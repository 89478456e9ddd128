//! Audit events: one record of every state change and security event, named by the dotted
//! actions of the API contract (`user.login_failed`, `tenant.member_added`, ...). The same
//! events are what later work publishes to webhooks and a message broker, so the model is
//! general: an action, who did it, in which tenant, to what, and JSON details.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::{AuditEventId, TenantId, UserId};

macro_rules! audit_actions {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// What an audit event records.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($(#[$doc])* $variant,)*
        }

        impl AuditAction {
            /// Every action.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The dotted wire and storage name.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

audit_actions! {
    /// A user registered themselves.
    UserRegistered = "user.registered",
    /// A login succeeded.
    UserLogin = "user.login",
    /// A login was refused (the login name is recorded, never the password).
    UserLoginFailed = "user.login_failed",
    /// A login name was locked after too many failures.
    UserLocked = "user.locked",
    /// A lockout was cleared by an administrator.
    UserUnlocked = "user.unlocked",
    /// A session ended by logout (`details.all_sessions` for logout everywhere).
    UserLogout = "user.logout",
    /// A session was ended other than by logging out with it: its owner ended it from another
    /// device, or a refresh came after the account or the membership of its tenant ended.
    SessionRevoked = "session.revoked",
    /// A spent refresh token was presented again.
    RefreshReused = "session.refresh_reused",
    /// A password was changed.
    UserPasswordChanged = "user.password_changed",
    /// An e-mail address was verified.
    UserEmailVerified = "user.email_verified",
    /// A password-reset e-mail was queued for an account (never recorded for an unknown
    /// address).
    UserPasswordResetRequested = "user.password_reset_requested",
    /// A password was set with a reset token; every session was revoked.
    UserPasswordReset = "user.password_reset",
    /// An administrator created a user.
    UserCreated = "user.created",
    /// A user's fields changed (the details name the fields, never secret values).
    UserUpdated = "user.updated",
    /// A user was deleted.
    UserDeleted = "user.deleted",
    /// A tenant was created.
    TenantCreated = "tenant.created",
    /// A tenant's fields changed.
    TenantUpdated = "tenant.updated",
    /// A tenant was deleted.
    TenantDeleted = "tenant.deleted",
    /// A user joined a tenant.
    TenantMemberAdded = "tenant.member_added",
    /// A member's role changed.
    TenantMemberRoleChanged = "tenant.member_role_changed",
    /// A member left or was removed.
    TenantMemberRemoved = "tenant.member_removed",
    /// An administrative request was refused (403).
    AccessDenied = "access.denied",
    /// A service account was created (`details`: its `client_id` and `name`, never the secret).
    ServiceAccountCreated = "service_account.created",
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown action name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a known audit action")]
pub struct AuditActionError;

impl FromStr for AuditAction {
    type Err = AuditActionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|action| action.as_str() == s)
            .ok_or(AuditActionError)
    }
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditTarget {
    /// A user account.
    User(UserId),
    /// A tenant.
    Tenant(TenantId),
    /// A login session.
    Session(super::SessionId),
    /// Nothing that exists (e.g. a failed login for an unknown name).
    None,
}

impl AuditTarget {
    /// The target's type name (`user`, `tenant`, `session`), `None` for no target.
    #[must_use]
    pub const fn type_name(self) -> Option<&'static str> {
        match self {
            Self::User(_) => Some("user"),
            Self::Tenant(_) => Some("tenant"),
            Self::Session(_) => Some("session"),
            Self::None => None,
        }
    }

    /// The target's id.
    #[must_use]
    pub fn id(self) -> Option<uuid::Uuid> {
        match self {
            Self::User(id) => Some(*id.as_uuid()),
            Self::Tenant(id) => Some(*id.as_uuid()),
            Self::Session(id) => Some(*id.as_uuid()),
            Self::None => None,
        }
    }
}

/// One audit record. Append-only: nothing changes or deletes it but retention.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Identifier (UUID v7, so ids sort by time).
    pub id: AuditEventId,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who did it; `None` for an anonymous caller (registration, failed login).
    pub actor: Option<UserId>,
    /// The tenant it happened in, if any.
    pub tenant: Option<TenantId>,
    /// What happened.
    pub action: AuditAction,
    /// What it happened to.
    pub target: AuditTarget,
    /// The client's address, if known.
    pub ip: Option<String>,
    /// The request that caused it, if any.
    pub request_id: Option<String>,
    /// Action-specific details (field names changed, roles, login names): never a password,
    /// token, hash or secret.
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl AuditEvent {
    /// The event, in `tenant`.
    #[must_use]
    pub fn in_tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// The event with one more detail.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// What a change records with it, committed in the same transaction as the change: its audit
/// events, the one-time tokens it issues and the mail it sends (through the transactional
/// outbox; later also webhooks and broker events). The domain decides what goes in; the store
/// makes it atomic with the change, so there is no change without its record, no e-mailed
/// token that was not stored, and no stored token whose message was lost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Journal {
    /// Audit events to append.
    pub events: Vec<AuditEvent>,
    /// One-time tokens to store (their digests), for users that exist once the change is made.
    pub tokens: Vec<super::ActionToken>,
    /// Sealed messages to put in the outbox.
    pub mail: Vec<super::SealedMail>,
}

impl Journal {
    /// A journal of one event.
    #[must_use]
    pub fn of(event: AuditEvent) -> Self {
        Self {
            events: vec![event],
            ..Self::default()
        }
    }

    /// The journal with one more token.
    #[must_use]
    pub fn with_token(mut self, token: super::ActionToken) -> Self {
        self.tokens.push(token);
        self
    }

    /// The journal with one more message.
    #[must_use]
    pub fn with_mail(mut self, mail: super::SealedMail) -> Self {
        self.mail.push(mail);
        self
    }

    /// Whether there is nothing to record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.tokens.is_empty() && self.mail.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_and_are_distinct_dotted_names() {
        let mut seen = std::collections::HashSet::new();
        for action in AuditAction::ALL {
            assert_eq!(action.as_str().parse::<AuditAction>(), Ok(*action));
            assert!(action.as_str().contains('.'), "{action}");
            assert!(seen.insert(action.as_str()), "duplicate {action}");
        }
        assert_eq!(
            "user.exploded".parse::<AuditAction>(),
            Err(AuditActionError)
        );
    }

    #[test]
    fn targets_name_their_type_and_id() {
        let user = UserId::from_uuid(uuid::Uuid::from_u128(7));
        assert_eq!(AuditTarget::User(user).type_name(), Some("user"));
        assert_eq!(AuditTarget::User(user).id(), Some(uuid::Uuid::from_u128(7)));
        assert_eq!(AuditTarget::None.type_name(), None);
        assert_eq!(AuditTarget::None.id(), None);
    }
}
