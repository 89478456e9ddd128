//! Account use cases for a signed-in user: profile changes and password change.

use secrecy::{ExposeSecret, SecretString};

use super::{AuthService, Ports, Principal, accept_new_password, infrastructure_errors};
use crate::model::{
    AuditAction, AuditTarget, Journal, PasswordHash, PersonName, Preferences, ProfileChanges, User,
    UserId, UserVersion, Username,
};
use crate::policy;
use crate::ports::{StoreError, UniqueField, UserChanges};
use crate::settings::AuthSettings;
use crate::{BoxError, ValidationErrors};

/// A profile update, as received; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    /// New given name (empty clears it).
    pub first_name: Option<String>,
    /// New family name (empty clears it).
    pub last_name: Option<String>,
    /// New username.
    pub username: Option<String>,
    /// New preferences object, replacing the old one.
    pub preferences: Option<serde_json::Value>,
}

/// Why a profile update failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateProfileError {
    /// A field is invalid.
    #[error("invalid profile update: {0}")]
    Invalid(ValidationErrors),
    /// The policy refused it.
    #[error("not allowed")]
    Forbidden,
    /// No such user.
    #[error("user not found")]
    NotFound,
    /// The username is taken by someone else.
    #[error("the username is already taken")]
    UsernameTaken,
    /// The caller's `If-Match` version is stale.
    #[error("the user was changed by someone else")]
    PreconditionFailed,
    /// A dependency is down.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("profile update failed")]
    Unexpected(#[source] BoxError),
}

/// Why a password change failed.
#[derive(Debug, thiserror::Error)]
pub enum ChangePasswordError {
    /// The new password is unacceptable, or the current one is wrong or was changed (or the
    /// account deactivated, or the session ended) since it was confirmed (`current_password`).
    #[error("invalid password change: {0}")]
    Invalid(ValidationErrors),
    /// The policy refused it.
    #[error("not allowed")]
    Forbidden,
    /// The account was deleted or deactivated since the request was authenticated.
    #[error("the account no longer exists or is inactive")]
    AccountGone,
    /// Too many attempts to confirm the current password within the login window; nothing
    /// was checked. Counted per account, with the login lockout's limits.
    #[error("too many attempts; retry in {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds until the window ends.
        retry_after_secs: i64,
    },
    /// A dependency is down.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("password change failed")]
    Unexpected(#[source] BoxError),
}

infrastructure_errors!(UpdateProfileError, ChangePasswordError);

/// One of the caller's sessions, as their device list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSession {
    /// The session.
    pub session: crate::model::Session,
    /// Whether it is the one the request came with.
    pub current: bool,
}

/// Use cases on one's own account.
#[derive(Debug, Clone)]
pub struct AccountService {
    pub(super) ports: Ports,
    pub(super) settings: AuthSettings,
    pub(super) auth: AuthService,
}

/// What confirming the caller's current password found.
pub(super) enum Confirmation {
    /// The password is right: it matches this hash, the one stored when it was checked. The
    /// change the confirmation allows is made only while it is still the stored one (the
    /// store re-checks it in the change's transaction), so that a change confirmed against a
    /// password that was reset meanwhile cannot commit after the reset.
    Confirmed(PasswordHash),
    /// The password is wrong.
    Wrong,
    /// Too many attempts in the window; nothing was checked.
    Locked {
        /// Seconds until the window ends.
        retry_after_secs: i64,
    },
    /// The account was deleted or deactivated.
    Gone,
}

/// The answer to a change confirmed with a password that the store then found replaced (or
/// the account deactivated, or the session ended) meanwhile: the field's password is no
/// longer the one to give; a 422, like a wrong password, since the request cannot succeed
/// as sent. (Not 409: nothing the client could re-read and merge; it must sign in again.)
pub(super) fn changed_meanwhile(field: &'static str) -> ValidationErrors {
    ValidationErrors::single(field, "was changed meanwhile; sign in again")
}

impl AccountService {
    /// Confirms `user`'s current password, counting the attempt per account before the check
    /// (as login attempts are), so that a stolen access token allows no more guesses than a
    /// login does; a success clears the count.
    pub(super) async fn confirm_password<E>(
        &self,
        user: UserId,
        password: &SecretString,
    ) -> Result<Confirmation, E>
    where
        E: From<StoreError> + From<crate::ports::ThrottleError> + From<crate::ports::HashError>,
    {
        let attempts = super::auth::password_throttle_key(user);
        let window = self
            .ports
            .throttle
            .count_attempt(&attempts, self.settings.login_window)
            .await?;
        if window.failures > self.settings.login_max_failures {
            return Ok(Confirmation::Locked {
                retry_after_secs: super::auth::retry_after_secs(
                    window,
                    self.ports.clock.now(),
                    &self.settings,
                ),
            });
        }
        let credentials = match self.ports.users.find_credentials_by_id(user).await? {
            Some(credentials) if credentials.user.is_active => credentials,
            _ => return Ok(Confirmation::Gone),
        };
        if !self
            .ports
            .hasher
            .verify(password, &credentials.password_hash)
            .await?
        {
            return Ok(Confirmation::Wrong);
        }
        self.ports.throttle.clear(&attempts).await?;
        Ok(Confirmation::Confirmed(credentials.password_hash))
    }
}

impl AccountService {
    /// A service over `ports`.
    #[must_use]
    pub fn new(ports: Ports, settings: AuthSettings) -> Self {
        let auth = AuthService::new(ports.clone(), settings.clone());
        Self {
            ports,
            settings,
            auth,
        }
    }

    /// Updates `target`'s profile fields. With `if_match`, only if the stored version is still
    /// that one.
    ///
    /// # Errors
    /// [`UpdateProfileError`].
    pub async fn update_profile(
        &self,
        principal: &Principal,
        target: UserId,
        update: ProfileUpdate,
        if_match: Option<UserVersion>,
    ) -> Result<User, UpdateProfileError> {
        if !policy::can_update_profile(&principal.actor(), target) {
            return Err(UpdateProfileError::Forbidden);
        }
        let mut errors = ValidationErrors::new();
        let changes = ProfileChanges {
            first_name: update
                .first_name
                .and_then(|v| errors.check("first_name", PersonName::parse(&v))),
            last_name: update
                .last_name
                .and_then(|v| errors.check("last_name", PersonName::parse(&v))),
            username: update
                .username
                .and_then(|v| errors.check("username", Username::parse(&v))),
            preferences: update
                .preferences
                .and_then(|v| errors.check("preferences", Preferences::parse(v))),
        };
        errors.into_result().map_err(UpdateProfileError::Invalid)?;
        if changes.is_empty() {
            // Nothing to write: answer with the user as stored, still honouring `if_match`.
            let user = self
                .ports
                .users
                .find_by_id(target)
                .await?
                .ok_or(UpdateProfileError::NotFound)?;
            if if_match.is_some_and(|version| version != user.version) {
                return Err(UpdateProfileError::PreconditionFailed);
            }
            return Ok(user);
        }
        let now = self.ports.clock.now();
        let changes = UserChanges {
            profile: changes,
            ..UserChanges::default()
        };
        let event = self
            .ports
            .event(
                AuditAction::UserUpdated,
                Some(principal.user.id),
                AuditTarget::User(target),
                &principal.client,
            )
            .with("fields", changes.field_names());
        match self
            .ports
            .users
            .update(target, changes, if_match, now, Journal::of(event))
            .await
        {
            Ok(updated) => Ok(updated.user),
            Err(StoreError::NotFound) => Err(UpdateProfileError::NotFound),
            Err(StoreError::StaleVersion) => Err(UpdateProfileError::PreconditionFailed),
            Err(StoreError::Duplicate(UniqueField::Username)) => {
                Err(UpdateProfileError::UsernameTaken)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Changes the caller's password, given the current one. Every other session of the user
    /// is revoked; the current one stays.
    ///
    /// # Errors
    /// [`ChangePasswordError::Invalid`] names `current_password` when it is wrong and
    /// `new_password` when the new one is unacceptable;
    /// [`ChangePasswordError::TooManyAttempts`] beyond `login_max_failures` attempts within
    /// `login_window` (`Unavailable` when the counter cannot be reached: fail closed);
    /// [`ChangePasswordError::AccountGone`] when the account was deleted or deactivated
    /// meanwhile; [`ChangePasswordError::Invalid`] naming `current_password` too when, by the
    /// time the change is stored, the confirmed password is no longer the account's (changed
    /// or reset meanwhile), the account was deactivated, or the caller's session was ended:
    /// nothing is written then.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &SecretString,
        new: SecretString,
    ) -> Result<(), ChangePasswordError> {
        let user = &principal.user;
        if !policy::can_change_password(&principal.actor(), user.id) {
            return Err(ChangePasswordError::Forbidden);
        }
        let confirmed = match self
            .confirm_password::<ChangePasswordError>(user.id, current)
            .await?
        {
            Confirmation::Confirmed(hash) => hash,
            Confirmation::Wrong => {
                return Err(ChangePasswordError::Invalid(ValidationErrors::single(
                    "current_password",
                    "is incorrect",
                )));
            }
            Confirmation::Locked { retry_after_secs } => {
                return Err(ChangePasswordError::TooManyAttempts { retry_after_secs });
            }
            Confirmation::Gone => return Err(ChangePasswordError::AccountGone),
        };
        let mut errors = ValidationErrors::new();
        if new.expose_secret() == current.expose_secret() {
            errors.add("new_password", "must differ from the current password");
            return Err(ChangePasswordError::Invalid(errors));
        }
        let inputs = vec![
            user.email.to_string(),
            user.username.to_string(),
            user.first_name.as_str().to_owned(),
            user.last_name.as_str().to_owned(),
        ];
        let Some(password) = accept_new_password(
            &self.ports,
            &self.settings.password_rules,
            new,
            &inputs,
            "new_password",
            &mut errors,
        )
        .await
        else {
            return Err(ChangePasswordError::Invalid(errors));
        };
        let hash = self.ports.hasher.hash(&password).await?;
        let now = self.ports.clock.now();
        // Fast path first (see `AuthService::mark_live_sessions_revoked`).
        let marked = self
            .auth
            .mark_live_sessions_revoked::<ChangePasswordError>(
                user.id,
                Some(principal.session_id),
                now,
            )
            .await?;
        let revoked = self
            .ports
            .users
            .change_password(
                user.id,
                confirmed,
                hash,
                Some(principal.session_id),
                now,
                Journal::of(self.ports.event(
                    AuditAction::UserPasswordChanged,
                    Some(user.id),
                    AuditTarget::User(user.id),
                    &principal.client,
                ))
                .with_mail(
                    self.ports
                        .seal_mail(
                            crate::model::MailKind::PasswordChanged,
                            &super::mail::messages::password_changed(user, now, false),
                        )
                        .map_err(|error| ChangePasswordError::Unexpected(Box::new(error)))?,
                ),
            )
            .await
            .map_err(|error| match error {
                // Deleted since its credentials were read.
                StoreError::NotFound => ChangePasswordError::AccountGone,
                // The password confirmed is no longer the stored one (changed or reset while
                // the new one was hashed), the account was deactivated, or this session was
                // ended meanwhile: nothing was written, and the caller must sign in with the
                // password as it is now.
                StoreError::Changed => {
                    tracing::warn!(user_id = %user.id, "password change refused: the password, the account or the session changed since the password was confirmed");
                    ChangePasswordError::Invalid(changed_meanwhile("current_password"))
                }
                other => other.into(),
            })?;
        let late: Vec<_> = revoked
            .into_iter()
            .filter(|id| !marked.contains(id))
            .collect();
        // Committed: a failure now is logged, not answered (a retry would find the current
        // password changed).
        if let Err(error) = self
            .auth
            .mark_revoked::<ChangePasswordError>(&late, now)
            .await
        {
            tracing::error!(user_id = %user.id, sessions = late.len(), error = %error, "sessions opened during a password change are revoked in the store but not on the fast path");
        }
        Ok(())
    }

    /// One page of the caller's live sessions (their devices), newest first.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    pub async fn sessions(
        &self,
        principal: &Principal,
        page: crate::ports::PageRequest,
    ) -> Result<crate::ports::Paged<DeviceSession>, super::ManageError> {
        let now = self.ports.clock.now();
        let listed = self
            .ports
            .sessions
            .list_live(principal.user.id, now, page)
            .await?;
        Ok(crate::ports::Paged {
            items: listed
                .items
                .into_iter()
                .map(|session| DeviceSession {
                    current: session.id == principal.session_id,
                    session,
                })
                .collect(),
            total: listed.total,
        })
    }

    /// Ends one of the caller's sessions (another device, or this one): its tokens stop
    /// working at once, on every instance.
    ///
    /// # Errors
    /// `NotFound` for a session that is not the caller's, or no longer live (the same answer
    /// for both); `Forbidden` when the policy refuses.
    pub async fn end_session(
        &self,
        principal: &Principal,
        id: crate::model::SessionId,
    ) -> Result<(), super::ManageError> {
        if !policy::can_end_sessions(&principal.actor(), principal.user.id) {
            return Err(super::ManageError::Forbidden);
        }
        let now = self.ports.clock.now();
        match self.ports.sessions.find(id).await? {
            Some(session) if session.user_id == principal.user.id && session.is_live(now) => {}
            _ => return Err(super::ManageError::NotFound),
        }
        // Fast path first, as for a logout (see `AuthService::mark_live_sessions_revoked`).
        self.auth
            .mark_revoked::<super::ManageError>(&[id], now)
            .await?;
        let event = self.ports.event(
            AuditAction::SessionRevoked,
            Some(principal.user.id),
            AuditTarget::Session(id),
            &principal.client,
        );
        self.ports
            .sessions
            .revoke(principal.user.id, id, now, Journal::of(event))
            .await?;
        Ok(())
    }
}
