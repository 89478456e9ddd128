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
    /// `ready`, `degraded` (serving, but an advisory dependency such as `mail` is failing)
    /// or `unavailable`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Each dependency (`database`, `cache`, `mail`): `up` or `down`.
    #[schema(example = json!({"database": "up", "cache": "up", "mail": "up"}))]
    pub dependencies: BTreeMap<&'static str, &'static str>,
}

/// Readiness: 200 when the database and the cache answer within 2 seconds, else 503 naming
/// the dependency that does not. `mail` is reported too (down while queued messages wait for
/// a retry after a failed delivery) but only makes the status `degraded`: a mail server that
/// is down delays mail, never requests.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Every required dependency answers", body = ReadinessReport),
        (status = 503, description = "A required dependency does not answer", body = ReadinessReport),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let (required, advisory) =
        tokio::join!(probe_all(&state.readiness), probe_all(&state.advisory));
    let all_up = required.len() == state.readiness.len() && required.values().all(|up| *up);
    let advisory_up = advisory.len() == state.advisory.len() && advisory.values().all(|up| *up);
    let dependencies = required
        .into_iter()
        .chain(advisory)
        .map(|(name, up)| (name, if up { "up" } else { "down" }))
        .collect();
    let report = ReadinessReport {
        status: match (all_up, advisory_up) {
            (false, _) => "unavailable",
            (true, false) => "degraded",
            (true, true) => "ready",
        },
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

/// Runs every probe at once, each bounded by [`PROBE_TIMEOUT`]: name to whether it answered.
async fn probe_all(
    probes: &[(&'static str, std::sync::Arc<dyn domain::ports::Readiness>)],
) -> BTreeMap<&'static str, bool> {
    let mut running = tokio::task::JoinSet::new();
    for (name, probe) in probes {
        let (name, probe) = (*name, probe.clone());
        running.spawn(async move {
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
    let mut results = BTreeMap::new();
    while let Some(result) = running.join_next().await {
        if let Ok((name, up)) = result {
            results.insert(name, up);
        }
    }
    results
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
