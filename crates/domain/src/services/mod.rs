//! Use-case services: each public method is one use case, with its own error enum.

mod account;
mod auth;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod tests_support;

use std::sync::Arc;

pub use account::{AccountService, ChangePasswordError, ProfileUpdate, UpdateProfileError};
pub use auth::{
    AuthError, AuthService, ClientInfo, IssuedTokens, LoginError, LoginRequest, LogoutError,
    RefreshError, RegisterError, Registration, ResendVerificationError, VerifyEmailError,
};

use crate::model::{SessionId, User};
use crate::policy::Actor;
use crate::ports::{
    Clock, IdGenerator, LoginThrottle, Mailer, PasswordHasher, PasswordStrength, SecureRandom,
    SessionStore, TokenCodec, TokenRevocation, UserStore,
};

/// Every port the use cases need, as shared trait objects. Cloning is cheap.
#[derive(Clone)]
pub struct Ports {
    /// User accounts.
    pub users: Arc<dyn UserStore>,
    /// Login sessions.
    pub sessions: Arc<dyn SessionStore>,
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
    /// E-mail.
    pub mailer: Arc<dyn Mailer>,
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

/// An authenticated caller: the user as stored now, and the session their token belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The user, read fresh from the store for this request.
    pub user: User,
    /// The session of the access token.
    pub session_id: SessionId,
}

impl Principal {
    /// The policy view of the caller.
    #[must_use]
    pub fn actor(&self) -> Actor {
        Actor::of(&self.user)
    }
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
