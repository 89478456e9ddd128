//! Domain errors to HTTP errors: the one mapping, one `From` per operation error.

use domain::ports::LastAdmin;
use domain::services::{
    ChangePasswordError, Conflict, DeleteAccountError, ForgotPasswordError, LoginError,
    LogoutError, ManageError, RefreshError, RegisterError, ResendVerificationError,
    ResetPasswordError, UpdateProfileError, VerifyEmailError,
};

use crate::problem::ApiError;

impl From<RegisterError> for ApiError {
    fn from(error: RegisterError) -> Self {
        match error {
            RegisterError::Invalid(errors) => Self::Validation(errors),
            RegisterError::EmailTaken => {
                Self::Conflict("An account with this e-mail address already exists.".to_owned())
            }
            RegisterError::UsernameTaken => Self::Conflict("This username is taken.".to_owned()),
            RegisterError::Unavailable(source) => Self::Unavailable(source),
            RegisterError::Unexpected(source) => Self::Internal(source),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::InvalidCredentials => {
                Self::unauthorized("The login or password is incorrect.", false)
            }
            LoginError::TenantForbidden => Self::Forbidden,
            LoginError::EmailNotVerified => Self::EmailNotVerified,
            LoginError::TooManyAttempts { retry_after_secs } => {
                Self::TooManyRequests(retry_after_secs)
            }
            LoginError::Unavailable(source) => Self::Unavailable(source),
            LoginError::Unexpected(source) => Self::Internal(source),
        }
    }
}

impl From<RefreshError> for ApiError {
    fn from(error: RefreshError) -> Self {
        match error {
            RefreshError::InvalidToken => Self::unauthorized(
                "The refresh token is invalid, expired or revoked; log in again.",
                true,
            ),
            RefreshError::Reused => Self::unauthorized(
                "The refresh token was already used; the session has been revoked. Log in again.",
                true,
            ),
            RefreshError::Unavailable(source) => Self::Unavailable(source),
            RefreshError::Unexpected(source) => Self::Internal(source),
        }
    }
}

impl From<LogoutError> for ApiError {
    fn from(error: LogoutError) -> Self {
        match error {
            LogoutError::Forbidden => Self::Forbidden,
            LogoutError::Unavailable(source) => Self::Unavailable(source),
            LogoutError::Unexpected(source) => Self::Internal(source),
        }
    }
}

impl From<VerifyEmailError> for ApiError {
    fn from(error: VerifyEmailError) -> Self {
        match error {
            VerifyEmailError::InvalidToken => Self::invalid("token", "is invalid or expired"),
            VerifyEmailError::Unavailable(source) => Self::Unavailable(source),
            VerifyEmailError::Unexpected(source) => Self::Internal(source),
        }
    }
}

impl From<ResendVerificationError> for ApiError {
    fn from(error: ResendVerificationError) -> Self {
        match error {
            ResendVerificationError::TooSoon { retry_after_secs } => {
                Self::TooManyRequests(retry_after_secs)
            }
            ResendVerificationError::Unavailable(source) => Self::Unavailable(source),
            ResendVerificationError::Unexpected(source) => Self::Internal(source),
        }
    }
}

impl From<ForgotPasswordError> for ApiError {
    fn from(error: ForgotPasswordError) -> Self {
        match error {
            ForgotPasswordError::Invalid(errors) => Self::Validation(errors),
            ForgotPasswordError::Unavailable(source) => Self::Unavailable(source),
            ForgotPasswordError::Unexpected(source) => Self::Internal(source),
        }
    }
}

impl From<ResetPasswordError> for ApiError {
    fn from(error: ResetPasswordError) -> Self {
        match error {
            ResetPasswordError::InvalidToken => Self::invalid("token", "is invalid or expired"),
            ResetPasswordError::Invalid(errors) => Self::Validation(errors),
            ResetPasswordError::Unavailable(source) => Self::Unavailable(source),
            ResetPasswordError::Unexpected(source) => Self::Internal(source),
        }
    }
}

impl From<UpdateProfileError> for ApiError {
    fn from(error: UpdateProfileError) -> Self {
        match error {
            UpdateProfileError::Invalid(errors) => Self::Validation(errors),
            UpdateProfileError::Forbidden => Self::Forbidden,
            UpdateProfileError::NotFound => Self::NotFound,
            UpdateProfileError::UsernameTaken => {
                Self::Conflict("This username is taken.".to_owned())
            }
            UpdateProfileError::PreconditionFailed => Self::PreconditionFailed,
            UpdateProfileError::Unavailable(source) => Self::Unavailable(source),
            UpdateProfileError::Unexpected(source) => Self::Internal(source),
        }
    }
}

impl From<ChangePasswordError> for ApiError {
    fn from(error: ChangePasswordError) -> Self {
        match error {
            ChangePasswordError::Invalid(errors) => Self::Validation(errors),
            ChangePasswordError::Forbidden => Self::Forbidden,
            ChangePasswordError::AccountGone => {
                Self::unauthorized("The account no longer exists or is inactive.", true)
            }
            ChangePasswordError::TooManyAttempts { retry_after_secs } => {
                Self::TooManyRequests(retry_after_secs)
            }
            ChangePasswordError::Unavailable(source) => Self::Unavailable(source),
            ChangePasswordError::Unexpected(source) => Self::Internal(source),
        }
    }
}

/// The conflict message of a change that would leave no administrator.
fn last_admin(which: LastAdmin) -> String {
    match which {
        LastAdmin::System => "This would leave no active system administrator.".to_owned(),
        LastAdmin::Tenant(tenant) => {
            format!("This would leave tenant {tenant} without an active administrator.")
        }
    }
}

impl From<DeleteAccountError> for ApiError {
    fn from(error: DeleteAccountError) -> Self {
        match error {
            DeleteAccountError::Invalid(errors) => Self::Validation(errors),
            DeleteAccountError::Forbidden => Self::Forbidden,
            DeleteAccountError::LastAdmin(which) => Self::Conflict(last_admin(which)),
            DeleteAccountError::AccountGone => {
                Self::unauthorized("The account no longer exists or is inactive.", true)
            }
            DeleteAccountError::TooManyAttempts { retry_after_secs } => {
                Self::TooManyRequests(retry_after_secs)
            }
            DeleteAccountError::Unavailable(source) => Self::Unavailable(source),
            DeleteAccountError::Unexpected(source) => Self::Internal(source),
        }
    }
}

impl From<ManageError> for ApiError {
    fn from(error: ManageError) -> Self {
        match error {
            ManageError::Invalid(errors) => Self::Validation(errors),
            ManageError::Forbidden => Self::Forbidden,
            ManageError::NotFound => Self::NotFound,
            ManageError::Conflict(conflict) => Self::Conflict(match conflict {
                Conflict::EmailTaken => {
                    "An account with this e-mail address already exists.".to_owned()
                }
                Conflict::UsernameTaken => "This username is taken.".to_owned(),
                Conflict::SlugTaken => "A tenant with this slug already exists.".to_owned(),
                Conflict::AlreadyMember => {
                    "The user is a member of this tenant already.".to_owned()
                }
                Conflict::LastAdmin(which) => last_admin(which),
                Conflict::Changed => {
                    "The membership changed meanwhile; read it again and retry.".to_owned()
                }
                Conflict::ServiceAccountNameTaken => {
                    "A service account with this name already exists.".to_owned()
                }
            }),
            ManageError::PreconditionFailed => Self::PreconditionFailed,
            ManageError::Unavailable(source) => Self::Unavailable(source),
            ManageError::Unexpected(source) => Self::Internal(source),
        }
    }
}
