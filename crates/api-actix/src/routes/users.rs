//! `/api/v1/users`: user administration. A user the caller may not see answers 404, exactly
//! as one that does not exist.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use domain::model::{Role, TenantRef, User};
use domain::ports::{PageRequest, Paged, UserFilter, UserSort};
use domain::services::{ProfileUpdate, Registration, UserUpdateInput};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::dto::{MembershipPage, UserPage, UserResponse};
use crate::extract::{ApiJson, Authenticated, IfMatch, QueryParams, user_id, versioned};
use crate::problem::ApiError;
use crate::state::AppState;

fn user_with_etag(status: StatusCode, user: User) -> HttpResponse {
    versioned(status, user.version, || {
        format!("/api/v1/users/{}", user.id)
    })
    .json(UserResponse::from(user))
}

fn system_role(raw: &str) -> Result<Role, String> {
    raw.parse::<Role>().map_err(|error| error.to_string())
}

/// Longest `q` accepted.
const MAX_QUERY: usize = 200;

/// Every user, searched and filtered (system administrators only).
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    security(("bearer" = [])),
    params(
        ("q" = Option<String>, Query, description = "Case-insensitive substring of the e-mail, username, first or last name"),
        ("role" = Option<String>, Query, description = "`admin` or `user`"),
        ("is_active" = Option<bool>, Query, description = "`true` or `false`"),
        ("tenant" = Option<String>, Query, description = "Members of this tenant (id or slug)"),
        ("sort" = Option<String>, Query, description = "`created_at`, `-created_at` (default), `email` or `username`"),
        ("page" = Option<u32>, Query, description = "1-based page number"),
        ("per_page" = Option<u32>, Query, description = "Items per page, 1 to 100 (default 20)"),
    ),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = 400, description = "Malformed query string"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 403, description = "Not a system administrator"),
        (status = 422, description = "Invalid or unknown query parameters, named"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    mut query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let page = query.page();
    let q = query.parse("q", |raw| {
        let q = raw.trim();
        if q.chars().count() > MAX_QUERY {
            Err(format!("must be at most {MAX_QUERY} characters long"))
        } else if q.contains('\0') {
            Err("must not contain the NUL character".to_owned())
        } else {
            Ok(q.to_owned())
        }
    });
    let role = query.parse("role", system_role);
    let is_active = query.parse("is_active", |raw| match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false"),
    });
    let tenant = query.parse("tenant", |raw| {
        TenantRef::parse(raw).map_err(|_| "must be a tenant id or slug")
    });
    let sort = query
        .parse("sort", |raw| match raw {
            "created_at" => Ok(UserSort::CreatedAt),
            "-created_at" => Ok(UserSort::CreatedAtDesc),
            "email" => Ok(UserSort::Email),
            "username" => Ok(UserSort::Username),
            _ => Err("must be one of: created_at, -created_at, email, username"),
        })
        .unwrap_or_default();
    query.finish()?;
    let filter = UserFilter {
        q: q.filter(|q| !q.is_empty()),
        role,
        is_active,
        tenant: None,
    };
    let users = state
        .users
        .list(&principal, filter, tenant.as_ref(), sort, page)
        .await?;
    Ok(HttpResponse::Ok().json(UserPage::of(page, users)))
}

/// A user created by an administrator.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserForCreate {
    /// E-mail address; unique regardless of case.
    #[schema(example = "grace@example.com")]
    pub email: String,
    /// Username; unique regardless of case.
    #[schema(example = "grace")]
    pub username: String,
    /// Initial password (the registration rules apply).
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// `admin` or `user` (default).
    pub role: Option<String>,
}

/// Creates a user (system administrators only). The address starts unverified; a
/// verification e-mail is sent.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    security(("bearer" = [])),
    request_body = UserForCreate,
    responses(
        (status = 201, description = "Created", body = UserResponse,
         headers(("Location" = String, description = "The user's URL"),
                 ("ETag" = String, description = "Version, for If-Match"))),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 403, description = "Not a system administrator"),
        (status = 409, description = "E-mail address or username taken"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Invalid or unknown fields"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    body: ApiJson<UserForCreate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    let role = match body.role.as_deref() {
        None => Role::User,
        Some(raw) => system_role(raw).map_err(|message| ApiError::invalid("role", message))?,
    };
    let user = state
        .users
        .create(
            &principal,
            Registration {
                email: body.email,
                username: body.username,
                password: body.password,
                first_name: body.first_name,
                last_name: body.last_name,
            },
            role,
        )
        .await?;
    Ok(user_with_etag(StatusCode::CREATED, user))
}

/// A user: for themselves, system administrators, and admins and moderators of a tenant the
/// user belongs to.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user")),
    responses(
        (status = 200, description = "The user", body = UserResponse,
         headers(("ETag" = String, description = "Version, for If-Match"))),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 404, description = "No such user, or not one the caller may see"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    let user = state.users.get(&principal, id).await?;
    Ok(user_with_etag(StatusCode::OK, user))
}

/// Fields of a user to change; absent fields stay as they are. `email`, `role` and
/// `is_active` only a system administrator may send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserForAdminUpdate {
    /// New given name (empty clears it).
    pub first_name: Option<String>,
    /// New family name (empty clears it).
    pub last_name: Option<String>,
    /// New username.
    pub username: Option<String>,
    /// New preferences object, replacing the old one.
    #[schema(value_type = Option<Object>)]
    pub preferences: Option<serde_json::Value>,
    /// New e-mail address (marks it unverified).
    pub email: Option<String>,
    /// `admin` or `user`.
    pub role: Option<String>,
    /// Activate or deactivate; deactivating ends every session of the user at once.
    pub is_active: Option<bool>,
}

/// Changes a user. Send `If-Match` with the ETag last read: a stale one answers 412 and
/// changes nothing. Nobody raises their own role; the last active system administrator
/// cannot be demoted or deactivated (409).
#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}",
    tag = "users",
    security(("bearer" = [])),
    request_body = UserForAdminUpdate,
    params(
        ("id" = uuid::Uuid, Path, description = "The user"),
        ("If-Match" = Option<String>, Header, description = "ETag of the version being changed"),
    ),
    responses(
        (status = 200, description = "The updated user", body = UserResponse,
         headers(("ETag" = String, description = "New version"))),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 403, description = "Not allowed to change this user or these fields"),
        (status = 404, description = "No such user, or not one the caller may see"),
        (status = 409, description = "E-mail or username taken; or the last active administrator"),
        (status = 412, description = "If-Match does not match the current version"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Invalid or unknown fields"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn update(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    if_match: IfMatch,
    path: web::Path<String>,
    body: ApiJson<UserForAdminUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    let if_match = if_match.version()?;
    let role = body
        .role
        .as_deref()
        .map(system_role)
        .transpose()
        .map_err(|message| ApiError::invalid("role", message))?;
    let id = user_id(&path)?;
    let user = state
        .users
        .update(
            &principal,
            id,
            UserUpdateInput {
                profile: ProfileUpdate {
                    first_name: body.first_name,
                    last_name: body.last_name,
                    username: body.username,
                    preferences: body.preferences,
                },
                email: body.email,
                role,
                is_active: body.is_active,
            },
            if_match,
        )
        .await?;
    Ok(user_with_etag(StatusCode::OK, user))
}

/// Deletes a user with their sessions and memberships (system administrators only); their
/// audit events stay. The last active administrator of the system or of a tenant cannot be
/// deleted (409).
#[utoipa::path(
    delete,
    path = "/api/v1/users/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 403, description = "Not a system administrator"),
        (status = 404, description = "No such user"),
        (status = 409, description = "The last active administrator of the system or a tenant"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    state.users.delete(&principal, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Clears the login lockout of the user's e-mail address and username (system
/// administrators only).
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/unlock",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user")),
    responses(
        (status = 204, description = "Unlocked"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 403, description = "Not a system administrator"),
        (status = 404, description = "No such user"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn unlock(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    state.users.unlock(&principal, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A user's tenant memberships, visible as the user is.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}/tenants",
    tag = "users",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The user"),
        ("page" = Option<u32>, Query, description = "1-based page number"),
        ("per_page" = Option<u32>, Query, description = "Items per page, 1 to 100 (default 20)"),
    ),
    responses(
        (status = 200, description = "A page of memberships with their tenants", body = MembershipPage),
        (status = 400, description = "Malformed query string"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 404, description = "No such user, or not one the caller may see"),
        (status = 422, description = "Invalid or unknown query parameters"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn tenants(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
    mut query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let page = query.page();
    query.finish()?;
    let id = user_id(&path)?;
    let memberships = state.tenants.of_user(&principal, id).await?;
    Ok(HttpResponse::Ok().json(page_of(page, memberships)))
}

/// One page of a list held in memory (a user's tenants are few).
pub(super) fn page_of(
    page: PageRequest,
    all: Vec<domain::ports::TenantMembership>,
) -> MembershipPage {
    let total = all.len() as u64;
    let skip = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let items = all
        .into_iter()
        .skip(skip)
        .take(page.per_page as usize)
        .collect();
    MembershipPage::of(page, Paged { items, total })
}
