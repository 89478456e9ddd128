//! The HTTP side of the password-age rule (`UMS_PASSWORD_MAX_AGE_DAYS`): which operation a
//! request is, as [`PasswordAgeOperation`] tells them apart (by method and route template);
//! the 403 for the others to a caller whose password is past its maximum age; and the OpenAPI
//! modifier that documents that 403 on every bearer-authenticated operation it applies to.
//!
//! Whether a change is required and what stays allowed meanwhile are decided by
//! `domain::policy`, for every request from the user as stored now: nothing of it is in the
//! access token, so a password change lifts the restriction at once, for the token the client
//! already holds too.

use actix_web::http::Method;
use domain::policy::{self, PasswordAgeOperation};
use domain::services::Principal;
use utoipa::Modify;
use utoipa::openapi::{OpenApi as OpenApiDoc, RefOr, ResponseBuilder};

use crate::problem::{ApiError, PASSWORD_CHANGE_REQUIRED};

/// The operations allowed while the password must be changed, as (method, route template).
pub const ALLOWED: [(Method, &str, PasswordAgeOperation); 4] = [
    (
        Method::GET,
        "/api/v1/users/me",
        PasswordAgeOperation::ReadOwnAccount,
    ),
    (
        Method::POST,
        "/api/v1/users/me/password",
        PasswordAgeOperation::ChangeOwnPassword,
    ),
    (
        Method::POST,
        "/api/v1/auth/logout",
        PasswordAgeOperation::EndOwnSessions,
    ),
    (
        Method::POST,
        "/api/v1/auth/logout-all",
        PasswordAgeOperation::EndOwnSessions,
    ),
];

/// The operation a request of `method` to the route template `route` (as the router matched
/// it, `None` when it matched none) is: one of [`ALLOWED`], else
/// [`PasswordAgeOperation::Other`].
#[must_use]
pub fn operation(method: &Method, route: Option<&str>) -> PasswordAgeOperation {
    ALLOWED
        .iter()
        .find(|(allowed, template, _)| allowed == method && Some(*template) == route)
        .map_or(PasswordAgeOperation::Other, |(_, _, operation)| *operation)
}

/// Lets `principal` do `operation`, unless their password must be changed first and the
/// policy does not allow `operation` meanwhile.
///
/// # Errors
/// [`ApiError::PasswordChangeRequired`] (403).
pub fn admit(principal: &Principal, operation: PasswordAgeOperation) -> Result<(), ApiError> {
    if principal.password_change_required
        && !policy::allowed_while_password_change_required(operation)
    {
        return Err(ApiError::PasswordChangeRequired);
    }
    Ok(())
}

/// Documents the 403 of an overdue password on every bearer-authenticated operation but the
/// [`ALLOWED`] ones. Listed before the shared conventions, which then make it a problem
/// document with `X-Request-Id`.
#[derive(Debug)]
pub struct PasswordAgeDocs;

/// What the added (or extended) 403 says.
const OVERDUE: &str = "The password is older than UMS_PASSWORD_MAX_AGE_DAYS and must be \
                       changed first (urn:ums:problem:password-change-required)";

impl Modify for PasswordAgeDocs {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        for (path, item) in &mut openapi.paths.paths {
            let operations = [
                (Method::GET, item.get.as_mut()),
                (Method::PUT, item.put.as_mut()),
                (Method::POST, item.post.as_mut()),
                (Method::DELETE, item.delete.as_mut()),
                (Method::PATCH, item.patch.as_mut()),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else {
                    continue;
                };
                if !takes_bearer_tokens(operation)
                    || self::operation(&method, Some(path)) != PasswordAgeOperation::Other
                {
                    continue;
                }
                let response = operation
                    .responses
                    .responses
                    .entry("403".to_owned())
                    .or_insert_with(|| ResponseBuilder::new().description(OVERDUE).build().into());
                if let RefOr::T(response) = response
                    && !response.description.contains(PASSWORD_CHANGE_REQUIRED)
                {
                    response.description = format!("{}; or: {OVERDUE}", response.description);
                }
            }
        }
    }
}

/// Whether `operation` accepts a bearer access token (its security names `bearer`).
fn takes_bearer_tokens(operation: &utoipa::openapi::path::Operation) -> bool {
    operation.security.iter().flatten().any(|requirement| {
        serde_json::to_value(requirement).is_ok_and(|value| value.get("bearer").is_some())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn requests_are_told_apart_by_method_and_route_template() {
        let cases = [
            (
                Method::GET,
                Some("/api/v1/users/me"),
                PasswordAgeOperation::ReadOwnAccount,
            ),
            (
                Method::POST,
                Some("/api/v1/users/me/password"),
                PasswordAgeOperation::ChangeOwnPassword,
            ),
            (
                Method::POST,
                Some("/api/v1/auth/logout"),
                PasswordAgeOperation::EndOwnSessions,
            ),
            (
                Method::POST,
                Some("/api/v1/auth/logout-all"),
                PasswordAgeOperation::EndOwnSessions,
            ),
            (
                Method::PATCH,
                Some("/api/v1/users/me"),
                PasswordAgeOperation::Other,
            ),
            (
                Method::DELETE,
                Some("/api/v1/users/me"),
                PasswordAgeOperation::Other,
            ),
            (
                Method::GET,
                Some("/api/v1/users/me/password"),
                PasswordAgeOperation::Other,
            ),
            (
                Method::GET,
                Some("/api/v1/users/{id}"),
                PasswordAgeOperation::Other,
            ),
            (
                Method::GET,
                Some("/api/v1/users/me/sessions"),
                PasswordAgeOperation::Other,
            ),
            (
                Method::GET,
                Some("/api/v1/tenants"),
                PasswordAgeOperation::Other,
            ),
            (
                Method::POST,
                Some("/api/v1/auth/introspect"),
                PasswordAgeOperation::Other,
            ),
            (Method::GET, None, PasswordAgeOperation::Other),
        ];
        for (method, route, expected) in cases {
            assert_eq!(operation(&method, route), expected, "{method} {route:?}");
        }
    }

    #[test]
    fn every_allowed_operation_is_a_documented_bearer_operation() {
        let doc = crate::openapi::document();
        for (method, path, _) in ALLOWED {
            let item = doc.paths.paths.get(path).expect(path);
            let operation = match method {
                Method::GET => item.get.as_ref(),
                Method::POST => item.post.as_ref(),
                _ => None,
            };
            let operation = operation.unwrap_or_else(|| panic!("{method} {path}"));
            assert!(takes_bearer_tokens(operation), "{method} {path}");
        }
    }

    #[test]
    fn the_document_gives_every_other_bearer_operation_the_403() {
        let doc = serde_json::to_value(crate::openapi::document()).unwrap();
        let mut restricted = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let bearer = operation["security"]
                    .as_array()
                    .is_some_and(|all| all.iter().any(|r| r.get("bearer").is_some()));
                let forbidden = operation["responses"]["403"]["description"]
                    .as_str()
                    .unwrap_or_default();
                let documented = forbidden.contains(PASSWORD_CHANGE_REQUIRED);
                let expected =
                    bearer && self::operation(&method, Some(path)) == PasswordAgeOperation::Other;
                assert_eq!(documented, expected, "{method} {path}: {forbidden:?}");
                if expected {
                    restricted += 1;
                    assert_eq!(
                        operation["responses"]["403"]["content"]["application/problem+json"]["schema"]
                            ["$ref"],
                        "#/components/schemas/Problem",
                        "{method} {path}"
                    );
                }
            }
        }
        assert!(restricted >= 20, "only {restricted} restricted operations");
    }
}
