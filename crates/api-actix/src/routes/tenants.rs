//! `/api/v1/tenants`: tenants (organisations; "labs" in some deployments), their members and
//! roles. `{tenant}` is a tenant's id or slug. A tenant the caller is not a member of answers
//! 404, exactly as one that does not exist.

use actix_web::{HttpResponse, web};
use domain::model::{TenantRole, UserId};
use domain::services::{AdminInput, MemberRef, NewTenantInput, Registration, TenantUpdate};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::dto::{MembershipPage, MembershipResponse, TenantPage, TenantResponse};
use crate::extract::{
    ApiJson, Authenticated, IfMatch, QueryParams, tenant_ref, user_id, versioned,
};
use crate::problem::ApiError;
use crate::state::AppState;

fn tenant_with_etag(
    status: actix_web::http::StatusCode,
    tenant: domain::model::Tenant,
) -> HttpResponse {
    versioned(status, tenant.version, || {
        format!("/api/v1/tenants/{}", tenant.id)
    })
    .json(TenantResponse::from(tenant))
}

fn role(raw: &str) -> Result<TenantRole, ApiError> {
    raw.parse::<TenantRole>()
        .map_err(|error| ApiError::invalid("role", error.to_string()))
}

/// The tenants the caller can see: all of them for a system administrator, their own
/// otherwise; oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    tag = "tenants",
    security(("bearer" = [])),
    params(
        ("page" = Option<u32>, Query, description = "1-based page number"),
        ("per_page" = Option<u32>, Query, description = "Items per page, 1 to 100 (default 20)"),
    ),
    responses(
        (status = 200, description = "A page of tenants", body = TenantPage),
        (status = 400, description = "Malformed query string"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 422, description = "Invalid or unknown query parameters"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    mut query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let page = query.page();
    query.finish()?;
    let tenants = state.tenants.list(&principal, page).await?;
    Ok(HttpResponse::Ok().json(TenantPage::of(page, tenants)))
}

/// The first admin of a new tenant: either `{user_id}` of an existing user, or the fields of
/// a user to create (`email`, `username`, `password`, optional names).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantAdminForm {
    /// An existing user.
    pub user_id: Option<Uuid>,
    /// A new user's e-mail address.
    pub email: Option<String>,
    /// A new user's username.
    pub username: Option<String>,
    /// A new user's password.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    /// A new user's given name.
    pub first_name: Option<String>,
    /// A new user's family name.
    pub last_name: Option<String>,
}

impl TenantAdminForm {
    fn into_input(self) -> Result<AdminInput, ApiError> {
        let new_fields = self.email.is_some()
            || self.username.is_some()
            || self.password.is_some()
            || self.first_name.is_some()
            || self.last_name.is_some();
        match (self.user_id, new_fields) {
            (Some(_), true) => Err(ApiError::invalid(
                "admin",
                "give either user_id or the fields of a new user, not both",
            )),
            (Some(id), false) => Ok(AdminInput::Existing(UserId::from_uuid(id))),
            (None, _) => {
                let mut errors = domain::ValidationErrors::new();
                for (field, missing) in [
                    ("admin.email", self.email.is_none()),
                    ("admin.username", self.username.is_none()),
                    ("admin.password", self.password.is_none()),
                ] {
                    if missing {
                        errors.add(field, "is required for a new admin");
                    }
                }
                let (Some(email), Some(username), Some(password)) =
                    (self.email, self.username, self.password)
                else {
                    return Err(ApiError::Validation(errors));
                };
                Ok(AdminInput::New(Registration {
                    email,
                    username,
                    password,
                    first_name: self.first_name,
                    last_name: self.last_name,
                }))
            }
        }
    }
}

/// A new tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantForCreate {
    /// Display name, 1 to 200 characters.
    #[schema(example = "Acme Research")]
    pub name: String,
    /// Unique URL-safe name, `[a-z0-9-]{3,63}`, not shaped like a UUID.
    #[schema(example = "acme")]
    pub slug: String,
    /// Free text, up to 2000 characters.
    pub description: Option<String>,
    /// The organisation's internet domain.
    pub domain: Option<String>,
    /// Free-form settings object (at most 16 KiB).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
    /// The tenant's first admin, created or taken in the same transaction.
    pub admin: Option<TenantAdminForm>,
}

/// Creates a tenant (system administrators only), with its first admin if `admin` is given.
#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    tag = "tenants",
    security(("bearer" = [])),
    request_body = TenantForCreate,
    responses(
        (status = 201, description = "Created", body = TenantResponse,
         headers(("Location" = String, description = "The tenant's URL"),
                 ("ETag" = String, description = "Version, for If-Match"))),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 403, description = "Not a system administrator"),
        (status = 409, description = "Slug, or the new admin's e-mail or username, taken"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Invalid or unknown fields"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    body: ApiJson<TenantForCreate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    let admin = body.admin.map(TenantAdminForm::into_input).transpose()?;
    let tenant = state
        .tenants
        .create(
            &principal,
            NewTenantInput {
                name: body.name,
                slug: body.slug,
                description: body.description,
                domain: body.domain,
                settings: body.settings,
                admin,
            },
        )
        .await?;
    Ok(tenant_with_etag(
        actix_web::http::StatusCode::CREATED,
        tenant,
    ))
}

/// A tenant, for any of its members and for system administrators.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}",
    tag = "tenants",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses(
        (status = 200, description = "The tenant", body = TenantResponse,
         headers(("ETag" = String, description = "Version, for If-Match"))),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 404, description = "No such tenant, or not one of the caller's"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let reference = tenant_ref(&path)?;
    let tenant = state.tenants.get(&principal, &reference).await?;
    Ok(tenant_with_etag(actix_web::http::StatusCode::OK, tenant))
}

/// Fields of a tenant to change; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantForUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New slug.
    pub slug: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New domain.
    pub domain: Option<String>,
    /// New settings object, replacing the old one.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
    /// Activate or deactivate (system administrators only): members of an inactive tenant
    /// cannot log in scoped to it.
    pub is_active: Option<bool>,
}

/// Changes a tenant (its admins). Send `If-Match` with the ETag last read.
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}",
    tag = "tenants",
    security(("bearer" = [])),
    request_body = TenantForUpdate,
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("If-Match" = Option<String>, Header, description = "ETag of the version being changed"),
    ),
    responses(
        (status = 200, description = "The updated tenant", body = TenantResponse,
         headers(("ETag" = String, description = "New version"))),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 403, description = "Not an admin of the tenant"),
        (status = 404, description = "No such tenant, or not one of the caller's"),
        (status = 409, description = "Slug taken"),
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
    body: ApiJson<TenantForUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    let if_match = if_match.version()?;
    let reference = tenant_ref(&path)?;
    let tenant = state
        .tenants
        .update(
            &principal,
            &reference,
            TenantUpdate {
                name: body.name,
                slug: body.slug,
                description: body.description,
                domain: body.domain,
                settings: body.settings,
                is_active: body.is_active,
            },
            if_match,
        )
        .await?;
    Ok(tenant_with_etag(actix_web::http::StatusCode::OK, tenant))
}

/// Deletes a tenant and its memberships (system administrators only); users stay.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}",
    tag = "tenants",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 403, description = "Not a system administrator"),
        (status = 404, description = "No such tenant, or not one of the caller's"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let reference = tenant_ref(&path)?;
    state.tenants.delete(&principal, &reference).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The tenant's members with their roles (members and above), oldest membership first.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/members",
    tag = "tenants",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("page" = Option<u32>, Query, description = "1-based page number"),
        ("per_page" = Option<u32>, Query, description = "Items per page, 1 to 100 (default 20)"),
    ),
    responses(
        (status = 200, description = "A page of memberships with their users", body = MembershipPage),
        (status = 400, description = "Malformed query string"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 403, description = "A viewer of the tenant"),
        (status = 404, description = "No such tenant, or not one of the caller's"),
        (status = 422, description = "Invalid or unknown query parameters"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn members(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
    mut query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let page = query.page();
    query.finish()?;
    let reference = tenant_ref(&path)?;
    let members = state.tenants.members(&principal, &reference, page).await?;
    Ok(HttpResponse::Ok().json(MembershipPage::of(page, members)))
}

/// A user to add: by `user_id` or by `email`, with a role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberForAdd {
    /// The user's id.
    pub user_id: Option<Uuid>,
    /// The user's e-mail address.
    pub email: Option<String>,
    /// `admin`, `moderator`, `member` or `viewer`.
    #[schema(example = "member")]
    pub role: String,
}

/// Adds a user to the tenant (admins; moderators for `member` and `viewer`).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/members",
    tag = "tenants",
    security(("bearer" = [])),
    request_body = MemberForAdd,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses(
        (status = 201, description = "Added", body = MembershipResponse),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 403, description = "Not allowed to grant this role"),
        (status = 404, description = "No such tenant, or not one of the caller's"),
        (status = 409, description = "A member already, or the caller's role changed meanwhile"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Invalid or unknown fields, or no such user"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn add_member(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
    body: ApiJson<MemberForAdd>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    let role = role(&body.role)?;
    let member = match (body.user_id, body.email) {
        (Some(id), None) => MemberRef::Id(UserId::from_uuid(id)),
        (None, Some(email)) => MemberRef::Email(email),
        _ => {
            return Err(ApiError::invalid(
                "user_id",
                "give exactly one of user_id and email",
            ));
        }
    };
    let reference = tenant_ref(&path)?;
    let membership = state
        .tenants
        .add_member(&principal, &reference, member, role)
        .await?;
    Ok(HttpResponse::Created().json(MembershipResponse::from(membership)))
}

/// A new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberForUpdate {
    /// `admin`, `moderator`, `member` or `viewer`.
    #[schema(example = "moderator")]
    pub role: String,
}

/// Changes a member's role. Nobody assigns a role above their own or raises their own; the
/// last active admin of a tenant cannot be demoted (409).
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}/members/{user_id}",
    tag = "tenants",
    security(("bearer" = [])),
    request_body = MemberForUpdate,
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("user_id" = Uuid, Path, description = "The member"),
    ),
    responses(
        (status = 200, description = "The membership", body = MembershipResponse),
        (status = 400, description = "Malformed JSON or not JSON"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 403, description = "Not allowed to assign this role to this member"),
        (status = 404, description = "No such tenant or member"),
        (status = 409, description = "The tenant's last active admin, or a role changed meanwhile"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Invalid or unknown fields"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn change_role(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<(String, String)>,
    body: ApiJson<MemberForUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.parse()?;
    let role = role(&body.role)?;
    let (tenant, member) = path.into_inner();
    let reference = tenant_ref(&tenant)?;
    let member = user_id(&member)?;
    let membership = state
        .tenants
        .change_role(&principal, &reference, member, role)
        .await?;
    Ok(HttpResponse::Ok().json(MembershipResponse::from(membership)))
}

/// Removes a member, or the caller leaves. The last active admin cannot be removed (409).
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/members/{user_id}",
    tag = "tenants",
    security(("bearer" = [])),
    params(
        ("tenant" = String, Path, description = "Tenant id or slug"),
        ("user_id" = Uuid, Path, description = "The member"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 403, description = "Not allowed to remove this member"),
        (status = 404, description = "No such tenant or member"),
        (status = 409, description = "The tenant's last active admin, or a role changed meanwhile"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn remove_member(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, member) = path.into_inner();
    let reference = tenant_ref(&tenant)?;
    let member = user_id(&member)?;
    state
        .tenants
        .remove_member(&principal, &reference, member)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
