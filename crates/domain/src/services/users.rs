//! User administration: listing and searching accounts, creating, reading, changing and
//! deleting them, and clearing lockouts.
//!
//! A user the caller may not see ([`policy::can_view_user`]) is answered as one that does not
//! exist. Only system administrators change `email`, `role` and `is_active`, and nobody raises
//! their own role. Deactivating or deleting a user ends their sessions at once: the store
//! revokes (or deletes) them in the change's transaction, every request requires its user to
//! exist and be active, and the sessions then go on the fast-path revocation list too.

use super::manage::{ManageError, denied, shared_roles, store_outcome};
use super::{AuthService, ClientInfo, Ports, Principal, ProfileUpdate, Registration};
use crate::ValidationErrors;
use crate::model::{
    AuditAction, AuditTarget, Email, Journal, PersonName, Preferences, ProfileChanges, Role,
    TenantRef, User, UserId, UserVersion, Username,
};
use crate::policy::{self, UserAdminAction};
use crate::ports::{PageRequest, Paged, UserChanges, UserFilter, UserSort};
use crate::settings::AuthSettings;

/// A change to a user, as received; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct UserUpdateInput {
    /// Names, username, preferences.
    pub profile: ProfileUpdate,
    /// New e-mail address (system administrators only).
    pub email: Option<String>,
    /// New system role (system administrators only).
    pub role: Option<Role>,
    /// Activate or deactivate (system administrators only).
    pub is_active: Option<bool>,
}

/// The user administration use cases.
#[derive(Debug, Clone)]
pub struct UserAdminService {
    ports: Ports,
    auth: AuthService,
}

impl UserAdminService {
    /// A service over `ports`.
    #[must_use]
    pub fn new(ports: Ports, settings: AuthSettings) -> Self {
        let auth = AuthService::new(ports.clone(), settings);
        Self { ports, auth }
    }

    async fn require(
        &self,
        principal: &Principal,
        target: UserId,
        action: UserAdminAction,
        operation: &'static str,
    ) -> Result<(), ManageError> {
        if policy::can_administer_user(&principal.actor(), target, action) {
            Ok(())
        } else {
            Err(denied(
                &self.ports,
                principal,
                operation,
                AuditTarget::User(target),
                None,
            )
            .await)
        }
    }

    /// The user, if the caller may see them. With a token scoped to a tenant, only the
    /// caller's role in that tenant counts, and only if the user is a member of it too.
    async fn visible(&self, principal: &Principal, id: UserId) -> Result<User, ManageError> {
        let shared = shared_roles(&self.ports, principal, id).await?;
        if !policy::can_view_user(&principal.actor(), id, &shared) {
            return Err(ManageError::NotFound);
        }
        self.ports
            .users
            .find_by_id(id)
            .await?
            .ok_or(ManageError::NotFound)
    }

    /// One page of users matching `filter` and, with `tenant`, members of that tenant
    /// (system administrators only; an unknown tenant has no members).
    ///
    /// # Errors
    /// `Forbidden` for anyone else.
    pub async fn list(
        &self,
        principal: &Principal,
        mut filter: UserFilter,
        tenant: Option<&TenantRef>,
        sort: UserSort,
        page: PageRequest,
    ) -> Result<Paged<User>, ManageError> {
        self.require(
            principal,
            principal.user.id,
            UserAdminAction::List,
            "user.list",
        )
        .await?;
        if let Some(reference) = tenant {
            let Some(found) = self.ports.tenants.find(reference).await? else {
                return Ok(Paged {
                    items: Vec::new(),
                    total: 0,
                });
            };
            filter.tenant = Some(found.id);
        }
        Ok(self.ports.users.list(filter, sort, page).await?)
    }

    /// Creates a user with `role` (system administrators only). The address starts
    /// unverified, and a verification e-mail is sent as on registration.
    ///
    /// # Errors
    /// `Forbidden`, `Invalid`, `Conflict` (e-mail or username taken).
    pub async fn create(
        &self,
        principal: &Principal,
        input: Registration,
        role: Role,
    ) -> Result<User, ManageError> {
        self.require(
            principal,
            principal.user.id,
            UserAdminAction::Create,
            "user.create",
        )
        .await?;
        Ok(self
            .auth
            .create_user(
                input,
                role,
                false,
                Some(principal.user.id),
                &principal.client,
            )
            .await?)
    }

    /// The user, for themselves, system administrators, and admins and moderators of a
    /// tenant the user belongs to.
    ///
    /// # Errors
    /// `NotFound` for anyone else.
    pub async fn get(&self, principal: &Principal, id: UserId) -> Result<User, ManageError> {
        self.visible(principal, id).await
    }

    /// Changes a user: their own profile fields for the user themselves, every field for a
    /// system administrator. With `if_match`, only if the stored version is still that one.
    ///
    /// # Errors
    /// `NotFound` (not visible), `Forbidden` (visible but not theirs to change, or a field
    /// only an administrator may set), `Invalid`, `Conflict` (taken e-mail or username; last
    /// active administrator), `PreconditionFailed`.
    pub async fn update(
        &self,
        principal: &Principal,
        id: UserId,
        input: UserUpdateInput,
        if_match: Option<UserVersion>,
    ) -> Result<User, ManageError> {
        let current = self.visible(principal, id).await?;
        let actor = principal.actor();
        if !policy::can_update_profile(&actor, id) {
            return Err(denied(
                &self.ports,
                principal,
                "user.update",
                AuditTarget::User(id),
                None,
            )
            .await);
        }
        let admin_fields =
            input.email.is_some() || input.role.is_some() || input.is_active.is_some();
        if admin_fields {
            self.require(
                principal,
                id,
                UserAdminAction::ChangeAccountFields,
                "user.update.account_fields",
            )
            .await?;
        }
        if let Some(role) = input.role
            && !policy::can_set_system_role(&actor, id, role)
        {
            return Err(denied(
                &self.ports,
                principal,
                "user.update.role",
                AuditTarget::User(id),
                None,
            )
            .await);
        }
        let mut errors = ValidationErrors::new();
        let profile = input.profile;
        let changes = UserChanges {
            profile: ProfileChanges {
                first_name: profile
                    .first_name
                    .and_then(|v| errors.check("first_name", PersonName::parse(&v))),
                last_name: profile
                    .last_name
                    .and_then(|v| errors.check("last_name", PersonName::parse(&v))),
                username: profile
                    .username
                    .and_then(|v| errors.check("username", Username::parse(&v))),
                preferences: profile
                    .preferences
                    .and_then(|v| errors.check("preferences", Preferences::parse(v))),
            },
            email: input
                .email
                .and_then(|v| errors.check("email", Email::parse(&v))),
            role: input.role,
            is_active: input.is_active,
        };
        errors.into_result().map_err(ManageError::Invalid)?;
        if changes == UserChanges::default() {
            if if_match.is_some_and(|version| version != current.version) {
                return Err(ManageError::PreconditionFailed);
            }
            return Ok(current);
        }
        let now = self.ports.clock.now();
        let event = self
            .ports
            .event(
                AuditAction::UserUpdated,
                Some(principal.user.id),
                AuditTarget::User(id),
                &principal.client,
            )
            .with("fields", changes.field_names());
        let mut journal = Journal::of(event);
        if let Some(new) = changes.email.as_ref().filter(|new| **new != current.email) {
            // The old address hears of the change; the new one must prove itself. If the
            // change is refused, neither message is sent.
            let notice = super::mail::messages::email_changed(&current.email, &current, new, now);
            let username = changes
                .profile
                .username
                .as_ref()
                .unwrap_or(&current.username);
            journal = self
                .auth
                .with_verification(journal, id, new, username)
                .map_err(|error| ManageError::Unexpected(Box::new(error)))?
                .with_mail(
                    self.ports
                        .seal_mail(crate::model::MailKind::EmailChanged, &notice)
                        .map_err(|error| ManageError::Unexpected(Box::new(error)))?,
                );
        }
        let updated = self
            .ports
            .users
            .update(id, changes, if_match, now, journal)
            .await
            .map_err(store_outcome)?;
        // A deactivation revoked the sessions in its transaction; their tokens are refused
        // already (every request requires the user active), and go on the fast path now.
        self.fast_path(&updated.revoked, now).await;
        Ok(updated.user)
    }

    /// Deletes a user with their sessions and memberships (system administrators only); their
    /// audit events stay.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Conflict` (last active administrator of the system or of a
    /// tenant).
    pub async fn delete(&self, principal: &Principal, id: UserId) -> Result<(), ManageError> {
        self.require(principal, id, UserAdminAction::Delete, "user.delete")
            .await?;
        if self.ports.users.find_by_id(id).await?.is_none() {
            return Err(ManageError::NotFound);
        }
        let now = self.ports.clock.now();
        let live = self.auth.live_sessions::<ManageError>(id, None).await?;
        let event = self.ports.event(
            AuditAction::UserDeleted,
            Some(principal.user.id),
            AuditTarget::User(id),
            &principal.client,
        );
        // An administrator's deletion confirms no password: nothing to re-check.
        self.ports
            .users
            .delete(id, None, Journal::of(event))
            .await
            .map_err(store_outcome)?;
        // Their tokens are refused already (every request requires the user to exist); the
        // sessions go on the fast path too.
        self.fast_path(&live, now).await;
        Ok(())
    }

    /// Puts sessions that the store has just ended, with their user deactivated or deleted,
    /// on the fast-path revocation list. Unlike a logout, this comes after the store: the
    /// change may be refused (last administrator, stale version), and a session put on the
    /// list cannot be taken off it; and the tokens are refused without the list, because
    /// every request requires its user to exist and be active, as read through the user
    /// cache that the store write has just invalidated. A failure is logged, not reported:
    /// the change is committed. Only if the cache invalidation failed too (both on the same
    /// flaky Redis) can a token pass, for at most the cache TTL, and then only while Redis
    /// answers reads (when it does not, every request is refused).
    async fn fast_path(
        &self,
        sessions: &[crate::model::SessionId],
        now: chrono::DateTime<chrono::Utc>,
    ) {
        if let Err(error) = self.auth.mark_revoked::<ManageError>(sessions, now).await {
            tracing::error!(error = %error, "ended sessions not put on the revocation list; the user check refuses them");
        }
    }

    /// Clears the login lockout of the user's e-mail address and username, of the account
    /// itself, and of its password confirmations (system administrators only).
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`.
    pub async fn unlock(&self, principal: &Principal, id: UserId) -> Result<(), ManageError> {
        self.require(principal, id, UserAdminAction::Unlock, "user.unlock")
            .await?;
        let user = self
            .ports
            .users
            .find_by_id(id)
            .await?
            .ok_or(ManageError::NotFound)?;
        for key in super::auth::lockout_keys(&user) {
            self.ports.throttle.clear(&key).await?;
        }
        let event = self.ports.event(
            AuditAction::UserUnlocked,
            Some(principal.user.id),
            AuditTarget::User(id),
            &principal.client,
        );
        self.ports.record(event).await;
        Ok(())
    }
}

/// The client of a command-line action: no address, no request.
#[must_use]
pub fn command_line() -> ClientInfo {
    ClientInfo {
        user_agent: Some("ums command line".to_owned()),
        ip: None,
        request_id: None,
    }
}
