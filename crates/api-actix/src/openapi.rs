//! The OpenAPI document, generated from the handlers' annotations, and the route table derived
//! from it (which answers 405 with `Allow` for a known path and a wrong method).

use actix_web::http::Method;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, OpenApi as OpenApiDoc, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::password_age::PasswordAgeDocs;
use crate::problem::{PROBLEM_JSON, Problem};
use crate::ratelimit::RateLimitDocs;
use crate::routes;

/// The document's definition: every path and schema the service serves.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "UMS",
        description = "User management service: registration, login with JWT access tokens and \
                       rotating refresh tokens, sessions, profiles, tenants with per-tenant roles, \
                       user administration and an audit trail. Errors are RFC 9457 problem \
                       documents.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        routes::auth::register,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::logout_all,
        routes::auth::verify_email,
        routes::auth::resend_verification,
        routes::auth::forgot_password,
        routes::auth::reset_password,
        routes::introspect::introspect,
        routes::me::get_me,
        routes::me::update_me,
        routes::me::delete_me,
        routes::me::change_password,
        routes::me::my_tenants,
        routes::me::list_sessions,
        routes::me::end_session,
        routes::users::list,
        routes::users::create,
        routes::users::get,
        routes::users::update,
        routes::users::delete,
        routes::users::unlock,
        routes::users::tenants,
        routes::tenants::list,
        routes::tenants::create,
        routes::tenants::get,
        routes::tenants::update,
        routes::tenants::delete,
        routes::tenants::members,
        routes::tenants::add_member,
        routes::tenants::change_role,
        routes::tenants::remove_member,
        routes::audit::list,
        routes::health::health,
        routes::health::ready,
        routes::health::openapi_json,
        routes::health::swagger_ui,
    ),
    components(schemas(Problem)),
    // The rate limit's 429s and the overdue password's 403s first, so that the conventions
    // make them problem documents too.
    modifiers(&RateLimitDocs, &PasswordAgeDocs, &Conventions),
    tags(
        (name = "auth", description = "Registration, login, tokens, e-mail verification"),
        (name = "me", description = "The signed-in user's own account"),
        (name = "users", description = "User administration"),
        (name = "tenants", description = "Tenants (labs), members and roles"),
        (name = "audit", description = "The audit trail"),
        (name = "operations", description = "Health and documentation"),
    )
)]
pub struct ApiDoc;

/// The generated document.
#[must_use]
pub fn document() -> OpenApiDoc {
    ApiDoc::openapi()
}

/// Applies the conventions every operation shares: error bodies (unless an operation documents
/// its own, as readiness does) are problem documents, every
/// response carries `X-Request-Id`, 401 carries `WWW-Authenticate`, 503 `Retry-After`.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        // Service accounts on `POST /api/v1/auth/introspect`: `client_id:client_secret`.
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                for (status, response) in &mut operation.responses.responses {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    response.headers.insert(
                        "X-Request-Id".to_owned(),
                        HeaderBuilder::new()
                            .description(Some("The request's id, echoed or generated"))
                            .build(),
                    );
                    let code: u16 = status.parse().unwrap_or(0);
                    // Error responses without a body of their own are problem documents.
                    if code >= 400 && response.content.is_empty() {
                        response.content.insert(
                            PROBLEM_JSON.to_owned(),
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("Problem")))
                                .build(),
                        );
                    }
                    if code == 401 {
                        response.headers.insert(
                            "WWW-Authenticate".to_owned(),
                            HeaderBuilder::new()
                                .description(Some(
                                    "The challenge: Bearer (Basic for a refused service account)",
                                ))
                                .build(),
                        );
                    }
                    if code == 503 {
                        response.headers.insert(
                            "Retry-After".to_owned(),
                            HeaderBuilder::new()
                                .description(Some("Seconds to wait"))
                                .build(),
                        );
                    }
                }
            }
        }
    }
}

fn operations_mut(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
        item.options.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The documented routes: path templates (`{name}` matches one segment) with their methods.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<(Vec<String>, Vec<Method>)>,
}

impl RouteTable {
    /// The routes of a document.
    #[must_use]
    pub fn from_document(doc: &OpenApiDoc) -> Self {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    (item.get.is_some(), Method::GET),
                    (item.put.is_some(), Method::PUT),
                    (item.post.is_some(), Method::POST),
                    (item.delete.is_some(), Method::DELETE),
                    (item.patch.is_some(), Method::PATCH),
                    (item.head.is_some(), Method::HEAD),
                    (item.options.is_some(), Method::OPTIONS),
                    (item.trace.is_some(), Method::TRACE),
                ]
                .into_iter()
                .filter_map(|(present, method)| present.then_some(method))
                .collect();
                (segments(path), methods)
            })
            .collect();
        Self { routes }
    }

    /// The methods documented for a concrete path, empty when no template matches it.
    #[must_use]
    ///
    /// Where several templates match, the most specific wins (the one with the most literal
    /// segments), as in the router: `/users/me` is not `/users/{id}`.
    pub fn methods_for(&self, path: &str) -> Vec<Method> {
        let wanted = segments(path);
        let matching: Vec<(usize, &Vec<Method>)> = self
            .routes
            .iter()
            .filter(|(template, _)| {
                template.len() == wanted.len()
                    && template
                        .iter()
                        .zip(&wanted)
                        .all(|(t, w)| (is_parameter(t) && !w.is_empty()) || t == w)
            })
            .map(|(template, methods)| {
                let literals = template.iter().filter(|t| !is_parameter(t)).count();
                (literals, methods)
            })
            .collect();
        let best = matching.iter().map(|(literals, _)| *literals).max();
        matching
            .into_iter()
            .filter(|(literals, _)| Some(*literals) == best)
            .flat_map(|(_, methods)| methods.iter().cloned())
            .collect()
    }
}

/// Whether a template segment is a `{parameter}`.
fn is_parameter(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

/// A path's segments; a trailing slash is a segment of its own, so `/users/me/` is not
/// `/users/me`.
fn segments(path: &str) -> Vec<String> {
    path.split('/').map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table_matches_templates_and_methods() {
        let table = RouteTable::from_document(&document());
        assert_eq!(table.methods_for("/api/v1/auth/login"), vec![Method::POST]);
        let mut me = table.methods_for("/api/v1/users/me");
        me.sort_by_key(ToString::to_string);
        assert_eq!(me, vec![Method::DELETE, Method::GET, Method::PATCH]);
        // `/users/me/password` is its own template, not `/users/{id}/unlock`'s shape.
        assert_eq!(
            table.methods_for("/api/v1/users/me/password"),
            vec![Method::POST]
        );
        let mut other = table.methods_for("/api/v1/users/0192f0c1-2b3c-7d4e-8f50-617283940a1b");
        other.sort_by_key(ToString::to_string);
        assert_eq!(other, vec![Method::DELETE, Method::GET, Method::PATCH]);
        assert!(table.methods_for("/api/v1/nope").is_empty());
        assert!(
            table.methods_for("/api/v1/users/me/").is_empty(),
            "a trailing slash is another path"
        );
        assert_eq!(table.methods_for("/api/docs/"), vec![Method::GET]);
    }

    #[test]
    fn every_error_response_is_a_problem_document() {
        let doc = document();
        let json = serde_json::to_value(&doc).unwrap_or_default();
        let mut checked = 0;
        for (path, item) in json["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                for (status, response) in op["responses"].as_object().into_iter().flatten() {
                    // Readiness documents its own body for 503; every other error is a problem.
                    if path == "/health/ready" {
                        continue;
                    }
                    if status.starts_with('4') || status.starts_with('5') {
                        checked += 1;
                        assert!(
                            response["content"][PROBLEM_JSON].is_object(),
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
        assert!(checked > 10);
    }
}
