//! HTTP routes, one module per resource, registered in [`configure`].

pub mod auth;
pub mod dto;
pub mod health;
pub mod me;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::problem::ApiError;
use crate::state::AppState;

/// Registers every route. Each one is also listed in [`crate::openapi::ApiDoc`].
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/auth")
            .route("/register", web::post().to(auth::register))
            .route("/login", web::post().to(auth::login))
            .route("/refresh", web::post().to(auth::refresh))
            .route("/logout", web::post().to(auth::logout))
            .route("/logout-all", web::post().to(auth::logout_all))
            .route("/verify-email", web::post().to(auth::verify_email))
            .route(
                "/verify-email/resend",
                web::post().to(auth::resend_verification),
            ),
    )
    .service(
        web::scope("/api/v1/users/me")
            .route("", web::get().to(me::get_me))
            .route("", web::patch().to(me::update_me))
            .route("/password", web::post().to(me::change_password)),
    )
    .route("/health", web::get().to(health::health))
    .route("/health/ready", web::get().to(health::ready));
    // `/api/openapi.json` and `/api/docs/` are served by the Swagger UI service (startup.rs).
}

/// Answers requests no route took: 405 with `Allow` when the path is known but the method is
/// not, 404 otherwise.
pub async fn fallback(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let methods = state.routes.methods_for(req.path());
    if methods.is_empty() {
        return Err(ApiError::NotFound);
    }
    let allow = methods
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = crate::problem::problem_response(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "about:blank",
        "Method Not Allowed",
        format!("{} is not allowed here; allowed: {allow}.", req.method()),
        None,
        crate::problem::current_request_id(),
    );
    if let Ok(value) = header::HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    Ok(response)
}
