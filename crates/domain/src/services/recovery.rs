//! E-mail verification and password recovery: the use cases that hand a one-time token to a
//! mailbox and take it back.
//!
//! Every token is at least 256 random bits, stored only as its digest, bound to one user and
//! one purpose, spent at most once, and issued in the same transaction as the message that
//! carries it (the journal's outbox mail). Issuing honours a per-account cooldown, so neither
//! resends nor forgotten-password requests can flood a mailbox.

use chrono::TimeDelta;
use secrecy::{ExposeSecret, SecretString};

use super::auth::lockout_keys;
use super::mail::messages;
use super::{AuthService, ClientInfo, Principal, accept_new_password, infrastructure_errors};
use crate::model::{
    ActionPurpose, ActionToken, AuditAction, AuditTarget, Email, Journal, MailKind, SealedMail,
    UserId, Username,
};
use crate::ports::{IssueOutcome, Login, SealError};
use crate::{BoxError, ValidationErrors};

/// Why an e-mail verification failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyEmailError {
    /// The token is unknown, spent or expired.
    #[error("invalid or expired verification token")]
    InvalidToken,
    /// A dependency is down.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("verification failed")]
    Unexpected(#[source] BoxError),
}

/// Why a new verification e-mail was not queued.
#[derive(Debug, thiserror::Error)]
pub enum ResendVerificationError {
    /// One was sent less than the cooldown ago.
    #[error("a verification e-mail was sent recently; retry in {retry_after_secs} s")]
    TooSoon {
        /// Seconds to wait.
        retry_after_secs: i64,
    },
    /// A dependency is down.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("queueing the verification e-mail failed")]
    Unexpected(#[source] BoxError),
}

/// Why a forgotten-password request failed. Never says whether the address is an account's.
#[derive(Debug, thiserror::Error)]
pub enum ForgotPasswordError {
    /// The address is not an e-mail address at all.
    #[error("invalid request: {0}")]
    Invalid(ValidationErrors),
    /// A dependency is down.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("the reset request failed")]
    Unexpected(#[source] BoxError),
}

/// Why a password reset failed.
#[derive(Debug, thiserror::Error)]
pub enum ResetPasswordError {
    /// The token is unknown, spent, expired, or its account is gone or inactive.
    #[error("invalid or expired reset token")]
    InvalidToken,
    /// The new password is refused.
    #[error("invalid new password: {0}")]
    Invalid(ValidationErrors),
    /// A dependency is down.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("the password reset failed")]
    Unexpected(#[source] BoxError),
}

infrastructure_errors!(
    VerifyEmailError,
    ResendVerificationError,
    ForgotPasswordError,
    ResetPasswordError,
);

macro_rules! seal_errors {
    ($($error:ty),* $(,)?) => {$(
        impl From<SealError> for $error {
            fn from(error: SealError) -> Self {
                Self::Unexpected(Box::new(error))
            }
        }
    )*};
}
seal_errors!(
    ResendVerificationError,
    ForgotPasswordError,
    ResetPasswordError
);

/// A password reset, as received.
#[derive(Debug, Clone)]
pub struct ResetRequest {
    /// The token from the e-mail.
    pub token: SecretString,
    /// The new password.
    pub new_password: SecretString,
}

impl AuthService {
    /// A new one-time token for `user` and `purpose`, valid for `ttl` from now: what is stored,
    /// and the plaintext for the message.
    fn new_action_token(
        &self,
        user: UserId,
        purpose: ActionPurpose,
        ttl: TimeDelta,
    ) -> (ActionToken, SecretString) {
        let token = self.ports.random.new_token();
        let now = self.ports.clock.now();
        (
            ActionToken {
                hash: token.hash,
                user_id: user,
                purpose,
                created_at: now,
                expires_at: now + ttl,
            },
            token.plaintext,
        )
    }

    /// `journal` with a new verification token for `user` and the message that carries it
    /// to `email`.
    ///
    /// # Errors
    /// [`SealError`] when the message cannot be sealed.
    pub(crate) fn with_verification(
        &self,
        journal: Journal,
        user: UserId,
        email: &Email,
        username: &Username,
    ) -> Result<Journal, SealError> {
        let (token, sealed) = self.verification(user, email, username)?;
        Ok(journal.with_token(token).with_mail(sealed))
    }

    /// A new verification token for `user` and the sealed message carrying it to `email`.
    fn verification(
        &self,
        user: UserId,
        email: &Email,
        username: &Username,
    ) -> Result<(ActionToken, SealedMail), SealError> {
        let (token, plaintext) = self.new_action_token(
            user,
            ActionPurpose::VerifyEmail,
            self.settings.verification_ttl,
        );
        let mail = messages::verification(
            &self.settings,
            email,
            username.as_str(),
            plaintext.expose_secret(),
        );
        Ok((token, self.ports.seal_mail(MailKind::Verification, &mail)?))
    }

    /// Spends an e-mail verification token and marks the address verified.
    ///
    /// # Errors
    /// [`VerifyEmailError::InvalidToken`] when the token is unknown, spent or expired.
    pub async fn verify_email(
        &self,
        token: &SecretString,
        client: &ClientInfo,
    ) -> Result<UserId, VerifyEmailError> {
        let hash = self.ports.random.digest(token.expose_secret());
        let now = self.ports.clock.now();
        let Some(stored) = self.ports.users.find_action_token(&hash).await? else {
            return Err(VerifyEmailError::InvalidToken);
        };
        let user = stored.token.user_id;
        let spendable = stored.token.purpose == ActionPurpose::VerifyEmail
            && stored.used_at.is_none()
            && now < stored.token.expires_at;
        if !spendable {
            return Err(VerifyEmailError::InvalidToken);
        }
        let event = self.ports.event(
            AuditAction::UserEmailVerified,
            Some(user),
            AuditTarget::User(user),
            client,
        );
        if self
            .ports
            .users
            .verify_email(&hash, user, now, Journal::of(event))
            .await?
        {
            Ok(user)
        } else {
            // Spent by a concurrent call in between, or the account went.
            Err(VerifyEmailError::InvalidToken)
        }
    }

    /// Queues a new verification e-mail for the caller, unless their address is verified
    /// already. When the address changed (or the account was deactivated) since the caller's
    /// user was read, nothing is queued and the answer is still `Ok`: the store refuses to
    /// mail a token to an address that is no longer the account's, and the change itself
    /// queued a verification for the new one.
    ///
    /// # Errors
    /// [`ResendVerificationError::TooSoon`] within the cooldown of the previous one.
    pub async fn resend_verification(
        &self,
        principal: &Principal,
    ) -> Result<(), ResendVerificationError> {
        let user = &principal.user;
        if user.email_verified {
            return Ok(());
        }
        let (token, sealed) = self.verification(user.id, &user.email, &user.username)?;
        let quiet_since = token.created_at - self.settings.mail_cooldown;
        let journal = Journal::default().with_mail(sealed);
        match self
            .ports
            .users
            .issue_action_token(token, &user.email, Some(quiet_since), journal)
            .await?
        {
            IssueOutcome::Issued => Ok(()),
            IssueOutcome::Cooldown => Err(ResendVerificationError::TooSoon {
                retry_after_secs: self.settings.mail_cooldown.num_seconds().max(1),
            }),
            IssueOutcome::Stale => {
                tracing::info!(user_id = %user.id, "address changed or account deactivated meanwhile; no verification resent");
                Ok(())
            }
        }
    }

    /// Queues a password-reset e-mail for the active account with this address, if there is
    /// one and none was queued within the cooldown. Answers the same for every well-formed
    /// address: whether one is an account's shows only in that mailbox. An account whose
    /// address changed, or that was deactivated, between the lookup and the issue is treated
    /// as an unknown address (the store re-checks both when it issues).
    ///
    /// # Errors
    /// [`ForgotPasswordError::Invalid`] when `email` is not an address at all.
    pub async fn forgot_password(
        &self,
        email: &str,
        client: &ClientInfo,
    ) -> Result<(), ForgotPasswordError> {
        let mut errors = ValidationErrors::new();
        let Some(email) = errors.check("email", Email::parse(email)) else {
            return Err(ForgotPasswordError::Invalid(errors));
        };
        let Some(found) = self
            .ports
            .users
            .find_credentials(&Login::Email(email))
            .await?
        else {
            return Ok(());
        };
        let user = found.user;
        if !user.is_active {
            return Ok(());
        }
        let (token, plaintext) = self.new_action_token(
            user.id,
            ActionPurpose::ResetPassword,
            self.settings.reset_ttl,
        );
        let mail = messages::password_reset(&self.settings, &user, plaintext.expose_secret());
        let event = self.ports.event(
            AuditAction::UserPasswordResetRequested,
            None,
            AuditTarget::User(user.id),
            client,
        );
        let journal =
            Journal::of(event).with_mail(self.ports.seal_mail(MailKind::PasswordReset, &mail)?);
        let quiet_since = token.created_at - self.settings.mail_cooldown;
        match self
            .ports
            .users
            .issue_action_token(token, &mail.to, Some(quiet_since), journal)
            .await
        {
            Ok(IssueOutcome::Issued) => Ok(()),
            Ok(IssueOutcome::Cooldown) => {
                tracing::info!(user_id = %user.id, "password reset within the cooldown; nothing sent");
                Ok(())
            }
            // Its address changed or it was deactivated meanwhile: as for an unknown address.
            Ok(IssueOutcome::Stale) => {
                tracing::info!(user_id = %user.id, "address changed or account deactivated meanwhile; no reset sent");
                Ok(())
            }
            // Deleted meanwhile: as for an unknown address.
            Err(crate::ports::StoreError::NotFound) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// Sets a new password with a reset token: the token is spent, every session revoked, the
    /// lockout of the account's login names cleared, and a notice e-mailed.
    ///
    /// # Errors
    /// [`ResetPasswordError::InvalidToken`] for an unknown, spent or expired token (or a gone
    /// or inactive account); [`ResetPasswordError::Invalid`] for a refused password.
    pub async fn reset_password(
        &self,
        request: ResetRequest,
        client: &ClientInfo,
    ) -> Result<(), ResetPasswordError> {
        let hash = self.ports.random.digest(request.token.expose_secret());
        let now = self.ports.clock.now();
        let Some(stored) = self.ports.users.find_action_token(&hash).await? else {
            return Err(ResetPasswordError::InvalidToken);
        };
        let spendable = stored.token.purpose == ActionPurpose::ResetPassword
            && stored.used_at.is_none()
            && now < stored.token.expires_at;
        if !spendable {
            return Err(ResetPasswordError::InvalidToken);
        }
        let Some(user) = self.ports.users.find_by_id(stored.token.user_id).await? else {
            return Err(ResetPasswordError::InvalidToken);
        };
        if !user.is_active {
            return Err(ResetPasswordError::InvalidToken);
        }
        let mut errors = ValidationErrors::new();
        let user_inputs: Vec<String> = [
            user.email.as_str(),
            user.username.as_str(),
            user.first_name.as_str(),
            user.last_name.as_str(),
        ]
        .into_iter()
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect();
        let Some(password) = accept_new_password(
            &self.ports,
            &self.settings.password_rules,
            request.new_password,
            &user_inputs,
            "new_password",
            &mut errors,
        )
        .await
        else {
            return Err(ResetPasswordError::Invalid(errors));
        };
        let new_hash = self.ports.hasher.hash(&password).await?;
        // The fast path first, as for every revocation: if it fails, nothing changed yet.
        let marked = self
            .mark_live_sessions_revoked::<ResetPasswordError>(user.id, None, now)
            .await?;
        let event = self.ports.event(
            AuditAction::UserPasswordReset,
            Some(user.id),
            AuditTarget::User(user.id),
            client,
        );
        let notice = messages::password_changed(&user, now, true);
        let journal =
            Journal::of(event).with_mail(self.ports.seal_mail(MailKind::PasswordChanged, &notice)?);
        let Some(revoked) = self
            .ports
            .users
            .reset_password(&hash, user.id, new_hash, now, journal)
            .await?
        else {
            // Spent by a concurrent reset in between.
            return Err(ResetPasswordError::InvalidToken);
        };
        let late: Vec<_> = revoked
            .into_iter()
            .filter(|id| !marked.contains(id))
            .collect();
        // Committed: from here on a failure is logged, not answered (a retry would find the
        // token spent).
        for key in lockout_keys(&user) {
            if let Err(error) = self.ports.throttle.clear(&key).await {
                tracing::warn!(user_id = %user.id, error = %error, "lockout not cleared after a password reset");
            }
        }
        if let Err(error) = self.mark_revoked::<ResetPasswordError>(&late, now).await {
            tracing::error!(user_id = %user.id, sessions = late.len(), error = %error, "sessions opened during a password reset are revoked in the store but not on the fast path");
        }
        Ok(())
    }
}
