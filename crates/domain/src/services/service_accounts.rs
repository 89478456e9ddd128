//! Service accounts and token introspection (RFC 7662): creating the credentials another
//! service authenticates with, authenticating them, and telling a caller whether an access
//! token is active and whose it is.
//!
//! An access token is active when every check UMS itself makes on a bearer token passes, and
//! what it reports is read live: the signature and `exp`/`nbf`/`iss`/`aud` (the codec), the
//! session on the revocation list and in the store (not revoked, not expired, the token's
//! user and tenant scope), the user (present and active), and for a scoped token the tenant
//! (present, active) and the membership, whose role *now* is reported. Anything else is
//! inactive, with nothing said about why. A dependency that cannot be read fails closed: the
//! caller gets an error (503), never an answer either way.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret as _, SecretString};

use super::manage::{ManageError, denied, store_outcome, text};
use super::{ClientInfo, MAX_DESCRIPTION, Ports, Principal, infrastructure_errors};
use crate::BoxError;
use crate::ValidationErrors;
use crate::model::{
    AuditAction, AuditTarget, ClientId, Journal, Role, ServiceAccount, ServiceAccountCredentials,
    ServiceAccountId, ServiceAccountName, SessionId, TenantId, TenantRef, TenantRole, TokenHash,
    UserId, Username, digests_match,
};
use crate::policy::{self, Introspector};
use crate::ports::{ServiceAccountStore, TokenError};

/// An account's `last_used_at` is written at most this often, so that a busy resource server
/// does not turn every introspection into a write.
const TOUCH_EVERY: TimeDelta = TimeDelta::seconds(60);

/// What the unknown-client path compares against, so that it does what the known-client path
/// does (a digest and a constant-time comparison).
const DUMMY_SECRET: &str = "ums-service-account-dummy-secret";

/// A new service account, as received.
#[derive(Debug, Clone, Default)]
pub struct NewServiceClient {
    /// Unique name (see [`ServiceAccountName`]).
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
}

/// A service account just created, with its secret: the only time the secret exists in
/// clear. Hand it over once; it cannot be read back.
#[derive(Debug, Clone)]
pub struct CreatedServiceClient {
    /// The account.
    pub account: ServiceAccount,
    /// The secret (256 random bits, URL-safe).
    pub secret: SecretString,
}

/// A service account that proved its secret for this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceClient {
    /// The account.
    pub account: ServiceAccount,
}

/// Who asks for an introspection.
#[derive(Debug, Clone, Copy)]
pub enum IntrospectionCaller<'a> {
    /// A user with a bearer access token (a system administrator may).
    User(&'a Principal),
    /// An authenticated service account.
    Service(&'a ServiceClient),
}

/// What an active access token is, as of now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    /// Whose token it is (`sub`).
    pub user_id: UserId,
    /// Their username now.
    pub username: Username,
    /// Their system role now.
    pub role: Role,
    /// The session (`sid`).
    pub session_id: SessionId,
    /// The token's id (`jti`).
    pub token_id: uuid::Uuid,
    /// The tenant the token is scoped to, with the role the user holds there now.
    pub tenant: Option<(TenantId, TenantRole)>,
    /// `iat`.
    pub issued_at: DateTime<Utc>,
    /// `exp`.
    pub expires_at: DateTime<Utc>,
    /// Whether the user's password is past its maximum age, so that UMS allows the token
    /// nothing but reading the account, changing the password and logging out
    /// ([`policy::password_change_required`]). The token is active all the same.
    pub password_change_required: bool,
}

/// The answer to an introspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    /// The token is a valid access token of a live session of an active user.
    Active(ActiveToken),
    /// Anything else: malformed, foreign, expired, revoked, of an ended session, a deleted or
    /// inactive user, an ended membership, or not an access token at all. Nothing more is
    /// said.
    Inactive,
}

/// Why a service account's credentials were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// Unknown client id or wrong secret (one answer for both).
    #[error("invalid client credentials")]
    InvalidCredentials,
    /// The store cannot be reached.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("client authentication failed")]
    Unexpected(#[source] BoxError),
}

/// Why an introspection could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    /// The caller may not introspect (an authenticated user who is not a system
    /// administrator).
    #[error("not allowed")]
    Forbidden,
    /// The revocation list or the store cannot be read: no answer rather than a wrong one.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else (e.g. the token codec's key is unusable).
    #[error("introspection failed")]
    Unexpected(#[source] BoxError),
}

infrastructure_errors!(ClientAuthError, IntrospectError);

/// The service-account and introspection use cases.
#[derive(Clone)]
pub struct ServiceAccountService {
    ports: Ports,
    accounts: Arc<dyn ServiceAccountStore>,
    password_max_age: Option<TimeDelta>,
}

impl std::fmt::Debug for ServiceAccountService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountService")
            .finish_non_exhaustive()
    }
}

impl ServiceAccountService {
    /// A service over `ports`, with service accounts kept in `accounts`.
    #[must_use]
    pub fn new(ports: Ports, accounts: Arc<dyn ServiceAccountStore>) -> Self {
        Self {
            ports,
            accounts,
            password_max_age: None,
        }
    }

    /// The service, reporting in introspections whether a token's user must change their
    /// password under `max_age` (`AuthSettings::password_max_age`; `None`, the default of
    /// [`new`](Self::new): passwords do not age).
    #[must_use]
    pub fn with_password_max_age(mut self, max_age: Option<TimeDelta>) -> Self {
        self.password_max_age = max_age;
        self
    }

    /// Creates a service account for the operator at the command line
    /// (`ums create-service-client`), who has the service's configuration and so every
    /// right; recorded as `service_account.created` without an actor. Returns the account
    /// and its secret, which exists in clear only in this answer.
    ///
    /// # Errors
    /// [`ManageError::Invalid`] naming `name` or `description`;
    /// [`ManageError::Conflict`] ([`super::Conflict::ServiceAccountNameTaken`]) when another
    /// account has the name regardless of case.
    pub async fn create_service_client(
        &self,
        input: NewServiceClient,
        client: &ClientInfo,
    ) -> Result<CreatedServiceClient, ManageError> {
        let mut errors = ValidationErrors::new();
        let name = errors.check("name", ServiceAccountName::parse(&input.name));
        let description = text(
            &mut errors,
            "description",
            input.description.as_deref().unwrap_or_default(),
            MAX_DESCRIPTION,
            false,
        );
        let (Some(name), Some(description)) = (name, description) else {
            return Err(ManageError::Invalid(errors));
        };
        let id = ServiceAccountId::from_uuid(self.ports.ids.new_id());
        let client_id =
            ClientId::from_random(self.ports.random.new_token().plaintext.expose_secret())
                .map_err(|e| ManageError::Unexpected(Box::new(e)))?;
        let secret = self.ports.random.new_token();
        let account = ServiceAccount {
            id,
            name,
            description,
            client_id,
            created_at: self.ports.clock.now(),
            last_used_at: None,
        };
        let event = self
            .ports
            .event(
                AuditAction::ServiceAccountCreated,
                None,
                AuditTarget::None,
                client,
            )
            .with("service_account_id", id.to_string())
            .with("client_id", account.client_id.as_str())
            .with("name", account.name.as_str());
        let stored = self
            .accounts
            .create(
                ServiceAccountCredentials {
                    account,
                    secret_hash: secret.hash,
                },
                Journal::of(event),
            )
            .await
            .map_err(store_outcome)?;
        Ok(CreatedServiceClient {
            account: stored,
            secret: secret.plaintext,
        })
    }

    /// Authenticates a service account by its client id and secret (HTTP Basic). The
    /// presented secret's digest is compared with the stored one in constant time; an unknown
    /// or malformed client id takes the same path against a dummy digest, so the answer and
    /// its cost do not tell whether a client id exists. A success records `last_used_at`
    /// (at most about once a minute, best effort).
    ///
    /// # Errors
    /// [`ClientAuthError::InvalidCredentials`] for an unknown client id or a wrong secret;
    /// `Unavailable` when the store cannot be reached.
    pub async fn authenticate_client(
        &self,
        client_id: &str,
        secret: &SecretString,
    ) -> Result<ServiceClient, ClientAuthError> {
        let presented = self.ports.random.digest(secret.expose_secret());
        let stored = match ClientId::parse(client_id) {
            Ok(client_id) => self.accounts.find_by_client_id(&client_id).await?,
            Err(_) => None,
        };
        let Some(stored) = stored else {
            let dummy: TokenHash = self.ports.random.digest(DUMMY_SECRET);
            std::hint::black_box(digests_match(&dummy, &presented));
            return Err(ClientAuthError::InvalidCredentials);
        };
        if !stored.secret_matches(&presented) {
            return Err(ClientAuthError::InvalidCredentials);
        }
        let account = stored.account;
        let now = self.ports.clock.now();
        let due = account
            .last_used_at
            .is_none_or(|last| now - last >= TOUCH_EVERY);
        if due && let Err(error) = self.accounts.touch(account.id, now).await {
            tracing::warn!(
                service_account_id = %account.id,
                error = %error,
                "last use of a service account not recorded"
            );
        }
        Ok(ServiceClient { account })
    }

    /// Whether `token` is an active access token, and if so whose, with the roles it carries
    /// now (RFC 7662). See the module documentation for what "active" means.
    ///
    /// # Errors
    /// [`IntrospectError::Forbidden`] for a caller the policy refuses (recorded as
    /// `access.denied`); `Unavailable` when the revocation list or the store cannot be read;
    /// `Unexpected` when the token codec itself fails.
    pub async fn introspect(
        &self,
        caller: IntrospectionCaller<'_>,
        token: &str,
    ) -> Result<Introspection, IntrospectError> {
        let introspector = match caller {
            IntrospectionCaller::User(principal) => Introspector::User(principal.actor()),
            IntrospectionCaller::Service(_) => Introspector::ServiceAccount,
        };
        if !policy::can_introspect(&introspector) {
            if let IntrospectionCaller::User(principal) = caller {
                let _ = denied(
                    &self.ports,
                    principal,
                    "auth.introspect",
                    AuditTarget::None,
                    None,
                )
                .await;
            }
            return Err(IntrospectError::Forbidden);
        }
        let claims = match self.ports.tokens.verify(token) {
            Ok(claims) => claims,
            Err(TokenError::Invalid(_)) => return Ok(Introspection::Inactive),
            Err(unexpected @ TokenError::Unexpected(_)) => return Err(unexpected.into()),
        };
        if self.ports.revocation.is_revoked(claims.session_id).await? {
            return Ok(Introspection::Inactive);
        }
        let now = self.ports.clock.now();
        let scope = claims.tenant.map(|(tenant, _)| tenant);
        match self.ports.sessions.find(claims.session_id).await? {
            Some(session)
                if session.is_live(now)
                    && session.user_id == claims.user_id
                    && session.tenant == scope => {}
            _ => return Ok(Introspection::Inactive),
        }
        let Some(user) = self
            .ports
            .users
            .find_by_id(claims.user_id)
            .await?
            .filter(|user| user.is_active)
        else {
            return Ok(Introspection::Inactive);
        };
        let tenant = match scope {
            None => None,
            Some(tenant) => match self.live_role(tenant, user.id).await? {
                Some(role) => Some((tenant, role)),
                None => return Ok(Introspection::Inactive),
            },
        };
        Ok(Introspection::Active(ActiveToken {
            password_change_required: policy::password_change_required(
                &user,
                now,
                self.password_max_age,
            ),
            user_id: user.id,
            username: user.username,
            role: user.role,
            session_id: claims.session_id,
            token_id: claims.token_id,
            tenant,
            issued_at: claims.issued_at,
            expires_at: claims.expires_at,
        }))
    }

    /// `user`'s role in `tenant` now, if the tenant exists, is active and has them as a
    /// member (what a scoped login requires).
    async fn live_role(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<TenantRole>, IntrospectError> {
        match self.ports.tenants.find(&TenantRef::Id(tenant)).await? {
            Some(found) if found.is_active => Ok(self.ports.tenants.role_of(tenant, user).await?),
            _ => Ok(None),
        }
    }
}
