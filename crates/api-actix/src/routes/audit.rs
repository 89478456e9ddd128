//! `/api/v1/audit`: the audit trail, read-only. System administrators see every event; a
//! tenant's admins see that tenant's events when they name it in `tenant`; others get 403.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use domain::model::{AuditAction, TenantRef, UserId};
use domain::ports::AuditFilter;

use super::dto::AuditPage;
use crate::extract::{Authenticated, QueryParams};
use crate::problem::ApiError;
use crate::state::AppState;

fn instant(raw: &str) -> Result<DateTime<Utc>, &'static str> {
    DateTime::parse_from_rfc3339(raw)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| "must be an RFC 3339 timestamp, e.g. 2026-01-31T12:00:00Z")
}

fn uuid(raw: &str) -> Result<uuid::Uuid, &'static str> {
    uuid::Uuid::parse_str(raw).map_err(|_| "must be a UUID")
}

/// Audit events, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    security(("bearer" = [])),
    params(
        ("actor" = Option<uuid::Uuid>, Query, description = "Events by this user"),
        ("action" = Option<String>, Query, description = "Events of this action, e.g. `user.login_failed`"),
        ("tenant" = Option<String>, Query, description = "Events in this tenant (id or slug); required unless a system administrator"),
        ("target" = Option<uuid::Uuid>, Query, description = "Events about this user, tenant or session"),
        ("since" = Option<String>, Query, description = "At or after this RFC 3339 instant"),
        ("until" = Option<String>, Query, description = "Before this RFC 3339 instant"),
        ("page" = Option<u32>, Query, description = "1-based page number"),
        ("per_page" = Option<u32>, Query, description = "Items per page, 1 to 100 (default 20)"),
    ),
    responses(
        (status = 200, description = "A page of events", body = AuditPage),
        (status = 400, description = "Malformed query string"),
        (status = 401, description = "Missing, invalid or revoked access token"),
        (status = 403, description = "Neither a system administrator nor an admin of the named tenant, or a token scoped to another tenant"),
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
    let actor = query.parse("actor", uuid).map(UserId::from_uuid);
    let action = query.parse("action", |raw| raw.parse::<AuditAction>());
    let tenant = query.parse("tenant", |raw| {
        TenantRef::parse(raw).map_err(|_| "must be a tenant id or slug")
    });
    let target = query.parse("target", uuid);
    let since = query.parse("since", instant);
    let until = query.parse("until", instant);
    query.finish()?;
    let filter = AuditFilter {
        actor,
        action,
        tenant: None,
        target,
        since,
        until,
    };
    let events = state
        .audit
        .list(&principal, tenant.as_ref(), filter, page)
        .await?;
    Ok(HttpResponse::Ok().json(AuditPage::of(page, events)))
}
