//! `/api/v1/auth`: registration, login, token refresh, logout, e-mail verification.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use domain::services::{LoginRequest, Registration};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::dto::UserResponse;
use crate::extract::{ApiJson, Authenticated, Client};
use crate::problem::ApiError;
use crate::state::AppState;

/// A self-registration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserForRegister {
    /// E-mail address; unique regardless of case.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 3-32 characters of letters, digits, `_`, `.`, `-`; unique regardless of case.
    #[schema(example = "ada")]
    pub username: String,
    /// At least 10 characters (configurable), at most 72 bytes, not easily guessable.
    #[schema(value_type = String, example = "correct horse battery staple", format = Password)]
    pub password: SecretString,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
}

/// Registers a new account and e-mails a verification token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = UserForRegister,
    responses(
        (status = 201, description = "Registered", body = UserResponse,
         headers(("Location" = String, description = "The new user's URL"))),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 409, description = "E-mail address or username already taken"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Invalid fields, including a guessable password"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn register(
    state: web::Data<AppState>,
    Client(client): Client,
    body: ApiJson<UserForRegister>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    let user = state
        .auth
        .register(
            Registration {
                email: body.email,
                username: body.username,
                password: body.password,
                first_name: body.first_name,
                last_name: body.last_name,
            },
            &client,
        )
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/users/{}", user.id)))
        .json(UserResponse::from(user)))
}

/// Credentials for a login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginForm {
    /// E-mail address or username.
    #[schema(example = "ada@example.com")]
    pub login: String,
    /// Password.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// A tenant slug or id to scope the token to (claims `tenant` and `tenant_role`); it must
    /// be an active tenant the user is a member of.
    pub tenant: Option<String>,
    /// Keep the session for 30 days instead of 7.
    #[serde(default)]
    pub remember_me: bool,
}

/// A token pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// JWT access token for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque refresh token; single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Seconds until the session, and so the refresh token, expires.
    pub refresh_expires_in: i64,
    /// Whether the password is older than `UMS_PASSWORD_MAX_AGE_DAYS` (always `false` when
    /// that is not set). While it is `true`, the access token is good only for
    /// `GET /api/v1/users/me`, `POST /api/v1/users/me/password` and logging out; everything
    /// else answers 403 `urn:ums:problem:password-change-required`. Once the password is
    /// changed, the same token works everywhere again.
    #[schema(example = false)]
    pub password_change_required: bool,
    /// The user.
    pub user: UserResponse,
}

fn token_response(tokens: domain::services::IssuedTokens) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(TokenResponse {
            access_token: tokens.access_token.expose_secret().to_owned(),
            refresh_token: tokens.refresh_token.expose_secret().to_owned(),
            token_type: "Bearer",
            expires_in: tokens.expires_in,
            refresh_expires_in: tokens.refresh_expires_in,
            password_change_required: tokens.password_change_required,
            user: UserResponse::from(tokens.user),
        })
}

/// Logs in by e-mail address or username; opens a session.
///
/// A wrong login name, a wrong password and an inactive account all give the same 401, in
/// about the same time. After too many failures for one login name (5 in 15 minutes by
/// default, known name or not) the name is locked: 429 with `Retry-After`, before any password
/// check, until the window ends. The attempts on an account are also counted together,
/// whichever of its names they use; beyond the same limit the account refuses every
/// password with the usual 401 (not 429, which would tell that two names are one account's).
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginForm,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 401, description = "Wrong login or password, inactive account, or too many \
                                      failures on the account under any of its names"),
        (status = 403, description = "The requested tenant is unknown, inactive or not one of \
                                      the user's (one answer for all three); or, with \
                                      UMS_REQUIRE_VERIFIED_EMAIL, the address is not verified \
                                      yet (type urn:ums:problem:email-not-verified)"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Invalid fields"),
        (status = 429, description = "Too many failed logins for this login name",
         headers(("Retry-After" = String, description = "Seconds until the lock ends"))),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn login(
    state: web::Data<AppState>,
    Client(client): Client,
    body: ApiJson<LoginForm>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    let tokens = state
        .auth
        .login(LoginRequest {
            login: body.login,
            password: body.password,
            remember_me: body.remember_me,
            tenant: body.tenant,
            client,
        })
        .await?;
    Ok(token_response(tokens))
}

/// A refresh token to exchange.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshForm {
    /// The refresh token from the last login or refresh.
    #[schema(value_type = String)]
    pub refresh_token: SecretString,
}

/// Exchanges a refresh token for a new pair; the presented token is spent.
///
/// Presenting a spent refresh token again revokes the whole session.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshForm,
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 401, description = "Invalid, expired, revoked or reused refresh token"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Invalid fields"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn refresh(
    state: web::Data<AppState>,
    Client(client): Client,
    body: ApiJson<RefreshForm>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    let tokens = state.auth.refresh(&body.refresh_token, &client).await?;
    Ok(token_response(tokens))
}

/// Ends the current session at once: its access and refresh tokens stop working.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn logout(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    state.auth.logout(&principal).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ends every session of the current user.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout-all",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session ended"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn logout_all(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    state.auth.logout_all(&principal).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An e-mailed verification token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailForm {
    /// The token from the verification e-mail.
    #[schema(value_type = String)]
    pub token: SecretString,
}

/// Verifies the e-mail address with the token that was e-mailed; single use.
#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-email",
    tag = "auth",
    request_body = VerifyEmailForm,
    responses(
        (status = 204, description = "Address verified"),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Unknown, used or expired token"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn verify_email(
    state: web::Data<AppState>,
    Client(client): Client,
    body: ApiJson<VerifyEmailForm>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    state.auth.verify_email(&body.token, &client).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// E-mails the current user a new verification token (nothing when already verified), at
/// most once per cooldown (`UMS_VERIFY_RESEND_COOLDOWN_SECS`).
#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-email/resend",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A new token is queued for delivery (or the address is verified)"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 429, description = "One was sent within the cooldown; see Retry-After"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn resend_verification(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    state.auth.resend_verification(&principal).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// A forgotten-password request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordForm {
    /// The account's e-mail address.
    #[schema(example = "ada@example.com")]
    pub email: String,
}

/// Asks for a password-reset e-mail. The answer is the same, and comes as fast, whether or not
/// the address is an account's: the work is done after the response, and only an active
/// account's mailbox receives a message (at most one per cooldown).
#[utoipa::path(
    post,
    path = "/api/v1/auth/password/forgot",
    tag = "auth",
    request_body = ForgotPasswordForm,
    responses(
        (status = 202, description = "If the address is an account's, a reset link is on its way"),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Not an e-mail address"),
    )
)]
pub async fn forgot_password(
    state: web::Data<AppState>,
    Client(client): Client,
    body: ApiJson<ForgotPasswordForm>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    // A malformed address is refused at once (that reveals nothing about accounts).
    domain::model::Email::parse(&body.email)
        .map_err(|error| ApiError::invalid("email", error.to_string()))?;
    let auth = state.auth.clone();
    // A slot first: when every slot is busy, the answer waits for one, the same for every
    // address, rather than leaving an unbounded number of tasks behind.
    let slot =
        match tokio::time::timeout(FORGOT_SLOT_WAIT, state.forgot_slots.clone().acquire_owned())
            .await
        {
            Ok(Ok(slot)) => slot,
            // Every slot busy for long (the store is slow): the request is dropped, and the
            // answer is the same as ever.
            _ => {
                tracing::warn!("password reset request dropped: every slot is busy");
                return Ok(forgot_accepted());
            }
        };
    // Done after answering, so the answer takes as long for every address: looking an
    // account up and queueing its mail would otherwise show in the response time.
    actix_web::rt::spawn(async move {
        if let Err(error) = auth.forgot_password(&body.email, &client).await {
            let cause = std::error::Error::source(&error).map(ToString::to_string);
            tracing::error!(error = %error, cause = ?cause, "password reset request failed");
        }
        drop(slot);
    });
    Ok(forgot_accepted())
}

/// Longest wait for a slot of the forgotten-password work.
const FORGOT_SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The one answer to a forgotten-password request.
fn forgot_accepted() -> HttpResponse {
    HttpResponse::Accepted().json(serde_json::json!({
        "detail": "If the address belongs to an account, a message with a reset link is on its way."
    }))
}

/// A password reset.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordForm {
    /// The token from the reset e-mail.
    #[schema(value_type = String)]
    pub token: SecretString,
    /// The new password.
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// Sets a new password with an e-mailed reset token (single use, 1 hour). Every session of the
/// account ends, its lockout is cleared, its address counts as verified, and a notice is
/// e-mailed.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password/reset",
    tag = "auth",
    request_body = ResetPasswordForm,
    responses(
        (status = 204, description = "Password set; every session revoked"),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Unknown, used or expired token, or a refused password"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn reset_password(
    state: web::Data<AppState>,
    Client(client): Client,
    body: ApiJson<ResetPasswordForm>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    state
        .auth
        .reset_password(
            domain::services::ResetRequest {
                token: body.token,
                new_password: body.new_password,
            },
            &client,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
