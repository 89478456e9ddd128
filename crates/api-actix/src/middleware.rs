//! The request-context middleware: `X-Request-Id`, a tracing span and access log per request,
//! and problem documents for error responses that actix produced without one (404, 405, ...).

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument as _;

use crate::problem::{PROBLEM_JSON, REQUEST_ID, problem_response};

/// The request-id header.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A client's request id is echoed if it is 1-128 characters of `[A-Za-z0-9._:-]` (safe in
/// logs and headers); otherwise a new UUID v7 is generated.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

/// Wraps every request; see the module documentation.
///
/// # Errors
/// Passes through errors of the inner service.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    let path = req.path().to_owned();
    let span = tracing::info_span!("request", request_id = %id, %method, %path);
    let response = REQUEST_ID
        .scope(id.clone(), next.call(req))
        .instrument(span.clone())
        .await?;

    let status = response.status();
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "served"
        );
    });

    // A handler's own JSON error body (a problem document, or a documented body such as the
    // readiness report) is kept; anything else actix produced is turned into a problem.
    let has_json_body = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            let v = v.as_bytes();
            v.starts_with(PROBLEM_JSON.as_bytes()) || v.starts_with(b"application/json")
        });
    let mut response = if (status.is_client_error() || status.is_server_error()) && !has_json_body {
        // An error actix produced itself (no route, wrong method, ...): give it a problem body.
        let (request, old) = response.into_parts();
        let title = status.canonical_reason().unwrap_or("Error");
        let detail = match status.as_u16() {
            404 => "No resource at this path.".to_owned(),
            405 => "This method is not allowed on this resource.".to_owned(),
            _ => title.to_owned(),
        };
        let mut new =
            problem_response(status, "about:blank", title, detail, None, Some(id.clone()));
        for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
            if let Some(value) = old.headers().get(&name) {
                new.headers_mut().insert(name, value.clone());
            }
        }
        ServiceResponse::new(request, new).map_into_right_body()
    } else {
        response.map_into_left_body()
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    Ok(response)
}
