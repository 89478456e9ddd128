//! `/api/v1/users/me`: the signed-in user's own account.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use domain::services::ProfileUpdate;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::dto::UserResponse;
use crate::extract::{ApiJson, Authenticated, IfMatch, etag};
use crate::problem::ApiError;
use crate::state::AppState;

/// A tenant as listed in a membership.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantSummary {
    /// Identifier.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// URL-safe unique name.
    pub slug: String,
}

/// One of the user's tenant memberships.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantMembership {
    /// The tenant.
    pub tenant: TenantSummary,
    /// The user's role in it: admin, moderator, member or viewer.
    pub role: String,
}

/// The current user, with their tenant memberships.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// The account.
    #[serde(flatten)]
    pub user: UserResponse,
    /// Tenant memberships (always empty until tenants are available).
    pub tenants: Vec<TenantMembership>,
}

fn user_with_etag(user: domain::model::User, tenants: bool) -> HttpResponse {
    let tag = etag(user.version);
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if tenants {
        response.json(MeResponse {
            user: UserResponse::from(user),
            tenants: Vec::new(),
        })
    } else {
        response.json(UserResponse::from(user))
    }
}

/// The current user.
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    tag = "me",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The current user", body = MeResponse,
         headers(("ETag" = String, description = "Version, for If-Match"))),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn get_me(Authenticated(principal): Authenticated) -> HttpResponse {
    user_with_etag(principal.user, true)
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
    IfMatch(if_match): IfMatch,
    body: ApiJson<UserForUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
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
    Ok(user_with_etag(user, false))
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

/// Changes the password; every other session of the user ends.
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
