//! `/api/v1/users/me`: the signed-in user's own account.

use actix_web::{HttpResponse, web};
use domain::services::ProfileUpdate;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::dto::{MembershipPage, SessionPage, TenantSummary, UserResponse};
use crate::extract::{ApiJson, Authenticated, IfMatch, QueryParams, versioned};
use crate::problem::ApiError;
use crate::state::AppState;

/// One of the user's tenant memberships.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantMembership {
    /// The tenant.
    pub tenant: TenantSummary,
    /// The user's role in it: admin, moderator, member or viewer.
    #[schema(example = "member", pattern = "^(admin|moderator|member|viewer)$")]
    pub role: String,
}

/// The current user, with their tenant memberships.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// The account.
    #[serde(flatten)]
    pub user: UserResponse,
    /// Tenant memberships, oldest first.
    pub tenants: Vec<TenantMembership>,
}

fn user_with_etag(
    user: domain::model::User,
    tenants: Option<Vec<domain::ports::TenantMembership>>,
) -> HttpResponse {
    let mut response = versioned(actix_web::http::StatusCode::OK, user.version, String::new);
    match tenants {
        Some(tenants) => response.json(MeResponse {
            user: UserResponse::from(user),
            tenants: tenants
                .into_iter()
                .map(|entry| TenantMembership {
                    tenant: TenantSummary::from(&entry.tenant),
                    role: entry.membership.role.as_str().to_owned(),
                })
                .collect(),
        }),
        None => response.json(UserResponse::from(user)),
    }
}

/// The current user.
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The current user with their tenant memberships", body = MeResponse,
         headers(("ETag" = String, description = "Version, for If-Match"))),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn get_me(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let tenants = state.tenants.mine(&principal).await?;
    Ok(user_with_etag(principal.user, Some(tenants)))
}

/// The current user's tenant memberships, with tenant summaries, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/users/me/tenants",
    tag = "me",
    security(("bearer" = [])),
    params(
        ("page" = Option<u32>, Query, description = "1-based page number"),
        ("per_page" = Option<u32>, Query, description = "Items per page, 1 to 100 (default 20)"),
    ),
    responses(
        (status = 200, description = "A page of memberships with their tenants", body = MembershipPage),
        (status = 400, description = "Malformed query string"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 422, description = "Invalid or unknown query parameters"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn my_tenants(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    mut query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let page = query.page();
    query.finish()?;
    let tenants = state.tenants.mine(&principal).await?;
    Ok(HttpResponse::Ok().json(super::users::page_of(page, tenants)))
}

/// Profile fields to change; absent fields stay as they are. Role, e-mail, activity and
/// verification cannot be set here.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserForUpdate {
    /// New given name (empty clears it).
    pub first_name: Option<String>,
    /// New family name (empty clears it).
    pub last_name: Option<String>,
    /// New username.
    pub username: Option<String>,
    /// New preferences object, replacing the old one.
    #[schema(value_type = Option<Object>)]
    pub preferences: Option<serde_json::Value>,
}

/// Changes the current user's profile. Send `If-Match` with the ETag last read to avoid
/// overwriting a concurrent change.
#[utoipa::path(
    patch,
    path = "/api/v1/users/me",
    tag = "me",
    security(("bearer" = [])),
    request_body = UserForUpdate,
    params(("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    responses(
        (status = 200, description = "The updated user", body = UserResponse,
         headers(("ETag" = String, description = "New version"))),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 409, description = "Username taken"),
        (status = 412, description = "If-Match does not match the current version"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Invalid or unknown fields"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn update_me(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    if_match: IfMatch,
    body: ApiJson<UserForUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    let if_match = if_match.version()?;
    let target = principal.user.id;
    let user = state
        .account
        .update_profile(
            &principal,
            target,
            ProfileUpdate {
                first_name: body.first_name,
                last_name: body.last_name,
                username: body.username,
                preferences: body.preferences,
            },
            if_match,
        )
        .await?;
    Ok(user_with_etag(user, None))
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    #[schema(value_type = String, format = Password)]
    pub current_password: SecretString,
    /// The new password (same rules as at registration).
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// The password that confirms closing the account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountDeletion {
    /// The current password.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// Closes the caller's account: it is deleted with its sessions, tokens and memberships (the
/// audit trail keeps its events, by id). The password is confirmed as for a password change,
/// with the same per-account limit.
#[utoipa::path(
    delete,
    path = "/api/v1/users/me",
    tag = "me",
    security(("bearer" = [])),
    request_body = AccountDeletion,
    responses(
        (status = 204, description = "Account deleted; every session ended"),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 409, description = "The last active administrator of the system or of a tenant"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Wrong password"),
        (status = 429, description = "Too many attempts to confirm the password",
         headers(("Retry-After" = String, description = "Seconds until the window ends"))),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn delete_me(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    body: ApiJson<AccountDeletion>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    state.account.delete_me(&principal, &body.password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Changes the password; every other session of the user ends. Attempts to confirm the
/// current password are counted per account like failed logins (`UMS_LOGIN_MAX_FAILURES`
/// within `UMS_LOGIN_WINDOW_SECS`): beyond them, 429 with `Retry-After`.
#[utoipa::path(
    post,
    path = "/api/v1/users/me/password",
    tag = "me",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Password changed"),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Wrong current password, or unacceptable new one"),
        (status = 429, description = "Too many attempts to confirm the current password (counted per account, with the login lockout's limits); nothing was checked",
         headers(("Retry-After" = String, description = "Seconds until the window ends"))),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn change_password(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    body: ApiJson<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    state
        .account
        .change_password(&principal, &body.current_password, body.new_password)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The current user's live sessions (their devices), newest first; `current` marks the one
/// of this request.
#[utoipa::path(
    get,
    path = "/api/v1/users/me/sessions",
    tag = "me",
    security(("bearer" = [])),
    params(
        ("page" = Option<u32>, Query, description = "1-based page number"),
        ("per_page" = Option<u32>, Query, description = "Items per page, 1 to 100 (default 20)"),
    ),
    responses(
        (status = 200, description = "A page of sessions", body = SessionPage),
        (status = 400, description = "Malformed query string"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 422, description = "Invalid or unknown query parameters"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn list_sessions(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    mut query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let page = query.page();
    query.finish()?;
    let sessions = state.account.sessions(&principal, page).await?;
    Ok(HttpResponse::Ok().json(SessionPage::of(page, sessions)))
}

/// Ends one of the current user's sessions (another device, or this one): its access and
/// refresh tokens stop working at once, on every instance.
#[utoipa::path(
    delete,
    path = "/api/v1/users/me/sessions/{id}",
    tag = "me",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The session")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 404, description = "Not a live session of the current user"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn end_session(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = uuid::Uuid::parse_str(&path)
        .map(domain::model::SessionId::from_uuid)
        .map_err(|_| ApiError::NotFound)?;
    state.account.end_session(&principal, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
