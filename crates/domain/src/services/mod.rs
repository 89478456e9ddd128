//! Use-case services: each public method is one use case, with its own error enum.

mod account;
mod audit;
mod auth;
mod closing;
mod mail;
mod maintenance;
mod manage;
mod recovery;
mod service_accounts;
mod tenants;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod tests_support;
mod users;

use std::sync::Arc;

pub use account::{
    AccountService, ChangePasswordError, DeviceSession, ProfileUpdate, UpdateProfileError,
};
pub use audit::AuditService;
pub use auth::{
    AuthError, AuthService, ClientInfo, IssuedTokens, LoginError, LoginRequest, LogoutError,
    RefreshError, RegisterError, Registration,
};
pub use closing::DeleteAccountError;
pub use mail::{DeliveryReport, DeliverySettings, MailDelivery};
pub use maintenance::{Maintenance, PurgeReport, RetentionSettings};
pub use manage::{Conflict, ManageError};
pub use recovery::{
    ForgotPasswordError, ResendVerificationError, ResetPasswordError, ResetRequest,
    VerifyEmailError,
};
pub use service_accounts::{
    ActiveToken, ClientAuthError, CreatedServiceClient, IntrospectError, Introspection,
    IntrospectionCaller, NewServiceClient, ServiceAccountService, ServiceClient,
};
pub use tenants::{
    AdminInput, MAX_DESCRIPTION, MAX_DOMAIN, MAX_NAME, MemberRef, NewTenantInput, TenantService,
    TenantUpdate,
};
pub use users::{UserAdminService, UserUpdateInput, command_line};

use crate::model::{
    AuditAction, AuditEvent, AuditEventId, AuditTarget, SessionId, TenantId, TenantRole, User,
    UserId,
};
use crate::policy::Actor;
use crate::ports::{
    AuditLog, Clock, IdGenerator, LoginThrottle, MailSeal, Mailer, Outbox, PasswordHasher,
    PasswordStrength, SecureRandom, SessionStore, TenantStore, TokenCodec, TokenRevocation,
    UserStore,
};

/// Every port the use cases need, as shared trait objects. Cloning is cheap.
#[derive(Clone)]
pub struct Ports {
    /// User accounts.
    pub users: Arc<dyn UserStore>,
    /// Login sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Tenants and memberships.
    pub tenants: Arc<dyn TenantStore>,
    /// The audit trail, for events without a change of their own.
    pub audit: Arc<dyn AuditLog>,
    /// Password hashing.
    pub hasher: Arc<dyn PasswordHasher>,
    /// Password strength estimation.
    pub strength: Arc<dyn PasswordStrength>,
    /// Access-token signing.
    pub tokens: Arc<dyn TokenCodec>,
    /// Fast-path session revocation.
    pub revocation: Arc<dyn TokenRevocation>,
    /// Failed-login counters.
    pub throttle: Arc<dyn LoginThrottle>,
    /// E-mail delivery (used by the outbox worker only: use cases queue mail in journals).
    pub mailer: Arc<dyn Mailer>,
    /// The durable outbox the journals' mail goes to.
    pub outbox: Arc<dyn Outbox>,
    /// Encryption of queued mail.
    pub seal: Arc<dyn MailSeal>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Identifiers.
    pub ids: Arc<dyn IdGenerator>,
    /// Random tokens.
    pub random: Arc<dyn SecureRandom>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ports { .. }")
    }
}

/// An authenticated caller: the user as stored now, the session their token belongs to, the
/// tenant it is scoped to, and where the request came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The user, read fresh from the store for this request.
    pub user: User,
    /// The session of the access token.
    pub session_id: SessionId,
    /// The tenant the token is scoped to, with the role its claim names (authorization
    /// re-reads the live membership).
    pub tenant: Option<(TenantId, TenantRole)>,
    /// The request's client, for the audit trail.
    pub client: ClientInfo,
    /// Whether the user's password is past `AuthSettings::password_max_age`, decided for this
    /// request ([`policy::password_change_required`](crate::policy::password_change_required)):
    /// until it is changed, only what
    /// [`policy::allowed_while_password_change_required`](crate::policy::allowed_while_password_change_required)
    /// admits may be done.
    pub password_change_required: bool,
}

impl Principal {
    /// The policy view of the caller.
    #[must_use]
    pub fn actor(&self) -> Actor {
        Actor::of(&self.user)
    }
}

impl Ports {
    /// A new audit event of `action` by `actor` on `target`, now, from `client`.
    pub(crate) fn event(
        &self,
        action: AuditAction,
        actor: Option<UserId>,
        target: AuditTarget,
        client: &ClientInfo,
    ) -> AuditEvent {
        AuditEvent {
            id: AuditEventId::from_uuid(self.ids.new_id()),
            at: self.clock.now(),
            actor,
            tenant: None,
            action,
            target,
            // Bounded as the session bounds them: both come from the client.
            ip: client.ip.as_deref().map(|ip| bounded(ip, 64)),
            request_id: client.request_id.as_deref().map(|id| bounded(id, 128)),
            details: serde_json::Map::new(),
        }
    }

    /// Appends an event with no change of its own (a refused login, a denied request). The
    /// trail is best effort here: a failure is logged, and the answer to the caller stands.
    pub(crate) async fn record(&self, event: AuditEvent) {
        let action = event.action;
        if let Err(error) = self.audit.append(crate::model::Journal::of(event)).await {
            tracing::error!(%action, error = %error, "audit event not recorded");
        }
    }
}

/// At most `max` characters of `value`.
fn bounded(value: &str, max: usize) -> String {
    value.chars().take(max).collect()
}

/// Implements the conversions from port errors that every operation error shares: a store or
/// revocation list that cannot be reached is `Unavailable`, anything else `Unexpected`.
macro_rules! infrastructure_errors {
    ($($error:ty),* $(,)?) => {$(
        impl From<$crate::ports::StoreError> for $error {
            fn from(error: $crate::ports::StoreError) -> Self {
                match error {
                    $crate::ports::StoreError::Unavailable(source) => Self::Unavailable(source),
                    other => Self::Unexpected(Box::new(other)),
                }
            }
        }
        impl From<$crate::ports::HashError> for $error {
            fn from(error: $crate::ports::HashError) -> Self {
                Self::Unexpected(Box::new(error))
            }
        }
        impl From<$crate::ports::RevocationError> for $error {
            fn from(error: $crate::ports::RevocationError) -> Self {
                Self::Unavailable(Box::new(error))
            }
        }
        impl From<$crate::ports::ThrottleError> for $error {
            fn from(error: $crate::ports::ThrottleError) -> Self {
                Self::Unavailable(Box::new(error))
            }
        }
        impl From<$crate::ports::TokenError> for $error {
            fn from(error: $crate::ports::TokenError) -> Self {
                Self::Unexpected(Box::new(error))
            }
        }
    )*};
}
pub(crate) use infrastructure_errors;

/// Checks a new password against the length rules and the strength estimator, recording what
/// is wrong under `field`. `user_inputs` are the account's own words (e-mail, username, names),
/// which make a password guessable; they must already be validated (so bounded in size).
pub(crate) async fn accept_new_password(
    ports: &Ports,
    rules: &crate::model::PasswordRules,
    raw: secrecy::SecretString,
    user_inputs: &[String],
    field: &str,
    errors: &mut crate::ValidationErrors,
) -> Option<crate::model::Password> {
    let password = errors.check(field, crate::model::Password::new(raw, rules))?;
    strong_enough(ports, rules, &password, user_inputs, field, errors)
        .await
        .then_some(password)
}

/// Whether the estimator scores `password` at least `rules.min_score`; records why not.
pub(crate) async fn strong_enough(
    ports: &Ports,
    rules: &crate::model::PasswordRules,
    password: &crate::model::Password,
    user_inputs: &[String],
    field: &str,
    errors: &mut crate::ValidationErrors,
) -> bool {
    let verdict = ports.strength.estimate(password, user_inputs).await;
    if verdict.score < rules.min_score {
        let why = verdict
            .feedback
            .unwrap_or_else(|| "add more words or characters that are hard to guess".to_owned());
        errors.add(field, crate::model::PasswordError::Weak(why).to_string());
        return false;
    }
    true
}
