//! Closing one's own account: `DELETE /users/me` with the password. The account and its
//! personal data go (sessions, tokens, memberships with it); its audit events stay, by id.

use secrecy::SecretString;

use super::{AccountService, Principal, infrastructure_errors};
use crate::model::{AuditAction, AuditTarget, Journal};
use crate::ports::{LastAdmin, StoreError};
use crate::{BoxError, ValidationErrors, policy};

/// Why an account could not be closed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteAccountError {
    /// The password is wrong (`password`), or was changed, or the account deactivated, since
    /// it was confirmed.
    #[error("invalid request: {0}")]
    Invalid(ValidationErrors),
    /// The policy refused it.
    #[error("not allowed")]
    Forbidden,
    /// The account is the last active administrator of the system or of a tenant: someone
    /// else must be made one first.
    #[error("the last administrator ({0:?}) cannot close their account")]
    LastAdmin(LastAdmin),
    /// The account was deleted or deactivated since the request was authenticated.
    #[error("the account no longer exists or is inactive")]
    AccountGone,
    /// Too many attempts to confirm the password; nothing was checked.
    #[error("too many attempts; retry in {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds until the window ends.
        retry_after_secs: i64,
    },
    /// A dependency is down.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("closing the account failed")]
    Unexpected(#[source] BoxError),
}

infrastructure_errors!(DeleteAccountError);

impl AccountService {
    /// Deletes the caller's account after confirming their password (throttled per account
    /// as a password change is). Every session ends: the store deletes them, and they go on
    /// the fast-path list after the commit (their tokens are refused already: every request
    /// needs its user to exist).
    ///
    /// # Errors
    /// [`DeleteAccountError::Invalid`] names `password` when it is wrong, or when, by the time
    /// the deletion is stored, it is no longer the account's (changed or reset meanwhile) or
    /// the account was deactivated (nothing is deleted then);
    /// [`DeleteAccountError::LastAdmin`] for the last active administrator;
    /// [`DeleteAccountError::TooManyAttempts`], [`DeleteAccountError::AccountGone`].
    pub async fn delete_me(
        &self,
        principal: &Principal,
        password: &SecretString,
    ) -> Result<(), DeleteAccountError> {
        let user = principal.user.id;
        if !policy::can_delete_own_account(&principal.actor(), user) {
            return Err(DeleteAccountError::Forbidden);
        }
        let confirmed = match self
            .confirm_password::<DeleteAccountError>(user, password)
            .await?
        {
            super::account::Confirmation::Confirmed(hash) => hash,
            super::account::Confirmation::Wrong => {
                return Err(DeleteAccountError::Invalid(ValidationErrors::single(
                    "password",
                    "is incorrect",
                )));
            }
            super::account::Confirmation::Locked { retry_after_secs } => {
                return Err(DeleteAccountError::TooManyAttempts { retry_after_secs });
            }
            super::account::Confirmation::Gone => return Err(DeleteAccountError::AccountGone),
        };
        let now = self.ports.clock.now();
        let live = self
            .auth
            .live_sessions::<DeleteAccountError>(user, None)
            .await?;
        let event = self
            .ports
            .event(
                AuditAction::UserDeleted,
                Some(user),
                AuditTarget::User(user),
                &principal.client,
            )
            .with("self_service", true);
        // Only while the confirmed password is still the account's (and the account active):
        // a deletion confirmed with a password that a reset replaced meanwhile (ending the
        // sessions of whoever knew the old one) must not delete the account.
        match self
            .ports
            .users
            .delete(user, Some(confirmed), Journal::of(event))
            .await
        {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(DeleteAccountError::AccountGone),
            Err(StoreError::Changed) => {
                tracing::warn!(user_id = %user, "account deletion refused: the password or the account changed since the password was confirmed");
                return Err(DeleteAccountError::Invalid(
                    super::account::changed_meanwhile("password"),
                ));
            }
            Err(StoreError::LastAdmin(which)) => return Err(DeleteAccountError::LastAdmin(which)),
            Err(other) => return Err(other.into()),
        }
        if let Err(error) = self
            .auth
            .mark_revoked::<DeleteAccountError>(&live, now)
            .await
        {
            // Committed: the sessions are gone with the account, and every request needs its
            // user to exist, so their tokens are refused already.
            tracing::warn!(user_id = %user, error = %error, "closed account's sessions not put on the fast path");
        }
        Ok(())
    }
}
