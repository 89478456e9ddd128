//! Operations endpoints: liveness, the OpenAPI document and Swagger UI.

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::ToSchema;

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` while the process serves requests.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// The service version.
    #[schema(example = "0.1.0")]
    pub version: &'static str,
}

/// Liveness: 200 while the process runs.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "The process is up", body = Health))
)]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// This OpenAPI document. (Documentation only: served by the Swagger UI service.)
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
#[allow(dead_code)]
pub fn openapi_json() {}

/// Swagger UI for this document, served from files built into the binary. (Documentation
/// only: the UI is served by utoipa-swagger-ui.)
#[utoipa::path(
    get,
    path = "/api/docs/",
    tag = "operations",
    responses((status = 200, description = "Swagger UI", content_type = "text/html"))
)]
#[allow(dead_code)]
pub fn swagger_ui() {}
