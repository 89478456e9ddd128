//! HTTP routes, one module per resource, registered in [`configure`].

pub mod audit;
pub mod auth;
pub mod dto;
pub mod health;
pub mod introspect;
pub mod me;
pub mod tenants;
pub mod users;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::problem::ApiError;
use crate::state::AppState;

/// Registers every route. Each one is also listed in [`crate::openapi::ApiDoc`].
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/auth")
            // Per-client-address rate limit of every POST but logout (see `crate::ratelimit`).
            .wrap(actix_web::middleware::from_fn(crate::ratelimit::limit_auth))
            .route("/register", web::post().to(auth::register))
            .route("/login", web::post().to(auth::login))
            .route("/refresh", web::post().to(auth::refresh))
            .route("/logout", web::post().to(auth::logout))
            .route("/logout-all", web::post().to(auth::logout_all))
            .route("/verify-email", web::post().to(auth::verify_email))
            .route(
                "/verify-email/resend",
                web::post().to(auth::resend_verification),
            )
            .route("/password/forgot", web::post().to(auth::forgot_password))
            .route("/password/reset", web::post().to(auth::reset_password))
            .route("/introspect", web::post().to(introspect::introspect)),
    )
    .service(
        web::scope("/api/v1/users/me")
            .route("", web::get().to(me::get_me))
            .route("", web::patch().to(me::update_me))
            .route("", web::delete().to(me::delete_me))
            .route("/password", web::post().to(me::change_password))
            .route("/tenants", web::get().to(me::my_tenants))
            .route("/sessions", web::get().to(me::list_sessions))
            .route("/sessions/{id}", web::delete().to(me::end_session)),
    )
    // After `/users/me`, which the `{id}` routes must not take.
    .service(
        web::scope("/api/v1/users")
            .route("", web::get().to(users::list))
            .route("", web::post().to(users::create))
            .route("/{id}", web::get().to(users::get))
            .route("/{id}", web::patch().to(users::update))
            .route("/{id}", web::delete().to(users::delete))
            .route("/{id}/unlock", web::post().to(users::unlock))
            .route("/{id}/tenants", web::get().to(users::tenants)),
    )
    .service(
        web::scope("/api/v1/tenants")
            .route("", web::get().to(tenants::list))
            .route("", web::post().to(tenants::create))
            .route("/{tenant}", web::get().to(tenants::get))
            .route("/{tenant}", web::patch().to(tenants::update))
            .route("/{tenant}", web::delete().to(tenants::delete))
            .route("/{tenant}/members", web::get().to(tenants::members))
            .route("/{tenant}/members", web::post().to(tenants::add_member))
            .route(
                "/{tenant}/members/{user_id}",
                web::patch().to(tenants::change_role),
            )
            .route(
                "/{tenant}/members/{user_id}",
                web::delete().to(tenants::remove_member),
            ),
    )
    .route("/api/v1/audit", web::get().to(audit::list))
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
