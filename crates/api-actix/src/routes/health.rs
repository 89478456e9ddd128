//! Operations endpoints: liveness, readiness, the OpenAPI document and Swagger UI.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// How long one dependency may take to answer the readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

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

/// Readiness: whether every dependency answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessReport {
    /// `ready` or `unavailable`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Each dependency (`database`, `cache`): `up` or `down`.
    #[schema(example = json!({"database": "up", "cache": "up"}))]
    pub dependencies: BTreeMap<&'static str, &'static str>,
}

/// Readiness: 200 when the database and the cache answer within 2 seconds, else 503 naming
/// the dependency that does not.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Every dependency answers", body = ReadinessReport),
        (status = 503, description = "A dependency does not answer", body = ReadinessReport),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let mut probes = tokio::task::JoinSet::new();
    for (name, probe) in &state.readiness {
        let (name, probe) = (*name, probe.clone());
        probes.spawn(async move {
            let up = match tokio::time::timeout(PROBE_TIMEOUT, probe.ready()).await {
                Ok(Ok(())) => true,
                Ok(Err(error)) => {
                    tracing::warn!(dependency = name, error = %error, "not ready");
                    false
                }
                Err(_) => {
                    tracing::warn!(dependency = name, "readiness probe timed out");
                    false
                }
            };
            (name, up)
        });
    }
    let mut dependencies = BTreeMap::new();
    while let Some(result) = probes.join_next().await {
        if let Ok((name, up)) = result {
            dependencies.insert(name, if up { "up" } else { "down" });
        }
    }
    let all_up = dependencies.len() == state.readiness.len()
        && dependencies.values().all(|state| *state == "up");
    let report = ReadinessReport {
        status: if all_up { "ready" } else { "unavailable" },
        dependencies,
    };
    let mut response = if all_up {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(report)
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
