//! Request extractors: JSON bodies with field-level errors, the authenticated caller,
//! `If-Match` versions and client information.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, web};
use domain::services::{AuthError, ClientInfo, Principal};
use domain::{ValidationErrors, model::UserVersion};
use serde::de::DeserializeOwned;

use crate::problem::ApiError;
use crate::state::AppState;

type LocalFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

/// A JSON request body. Wrong content type and malformed JSON are 400, a body over the limit
/// 413, and well-formed JSON of the wrong shape (unknown field, missing field, wrong type) 422
/// naming the field.
///
/// The body is read while the other extractors run, but its verdict waits for
/// [`ApiJson::parse`], which handlers call first thing: actix resolves extractors concurrently,
/// and a bad body must not be reported before authentication has been decided (a revoked
/// token with a bad body is a 401, not a 422).
#[derive(Debug)]
pub struct ApiJson<T>(Result<T, ApiError>);

impl<T> ApiJson<T> {
    /// The body, or why it is not acceptable.
    ///
    /// # Errors
    /// 400, 413 or 422 as described on the type.
    pub fn parse(self) -> Result<T, ApiError> {
        self.0
    }
}

fn is_json(req: &HttpRequest) -> bool {
    req.mime_type().ok().flatten().is_some_and(|mime| {
        mime.type_() == "application"
            && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(64 * 1024, |state| state.max_body_bytes);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let verdict = async {
                let body = body
                    .await
                    .map_err(|error| match error.as_error::<PayloadError>() {
                        Some(PayloadError::Overflow) => ApiError::PayloadTooLarge(limit),
                        _ => ApiError::BadRequest("The request body could not be read.".to_owned()),
                    })?;
                if !json {
                    return Err(ApiError::BadRequest(
                        "The request body must be JSON, sent with Content-Type: application/json."
                            .to_owned(),
                    ));
                }
                parse_json(&body)
            }
            .await;
            Ok(ApiJson(verdict))
        })
    }
}

/// Deserialises a body, turning serde's errors into client-safe 400/422 errors.
///
/// # Errors
/// [`ApiError::BadRequest`] for malformed JSON; [`ApiError::Validation`] for the wrong shape.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Syntax first (400), then the shape: a body is always a JSON object (serde would also
    // accept an array for a struct), then the fields (422).
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|error| {
        ApiError::BadRequest(format!("Malformed JSON: {}.", without_position(&error)))
    })?;
    if !value.is_object() {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = without_position(&inner);
        let backticked = message.split('`').nth(1).map(str::to_owned);
        let (field, text) = if let (Some(name), true) =
            (backticked.as_ref(), message.starts_with("unknown field"))
        {
            (
                join_path(&path, name),
                "is not a recognised field".to_owned(),
            )
        } else if let (Some(name), true) =
            (backticked.as_ref(), message.starts_with("missing field"))
        {
            (join_path(&path, name), "is required".to_owned())
        } else if path == "." {
            ("body".to_owned(), message)
        } else {
            (path, message)
        };
        ApiError::Validation(ValidationErrors::single(&field, text))
    })
}

fn join_path(path: &str, field: &str) -> String {
    if path == "." || path.is_empty() {
        field.to_owned()
    } else if path == field || path.ends_with(&format!(".{field}")) {
        path.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// serde_json's message without " at line L column C".
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The caller, authenticated by a bearer access token.
///
/// A caller whose password is past its maximum age is let through only to the operations
/// the policy allows meanwhile (told apart by the method and the matched route template,
/// see [`crate::password_age`]); any other is 403 `urn:ums:problem:password-change-required`.
#[derive(Debug)]
pub struct Authenticated(pub Principal);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        let client = client_info(req);
        let operation =
            crate::password_age::operation(req.method(), req.match_pattern().as_deref());
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            let token = token?;
            let principal = state
                .auth
                .authenticate(&token, client)
                .await
                .map_err(|error| match error {
                    AuthError::Unauthenticated(reason) => ApiError::unauthorized(
                        format!("The access token is not accepted: {reason}."),
                        true,
                    ),
                    AuthError::Unavailable(source) => ApiError::Unavailable(source),
                    AuthError::Unexpected(source) => ApiError::Internal(source),
                })?;
            crate::password_age::admit(&principal, operation)?;
            Ok(Authenticated(principal))
        })
    }
}

fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "This endpoint needs an access token: Authorization: Bearer <token>.",
            false,
        ));
    };
    let value = value.to_str().unwrap_or_default();
    let mut parts = value.splitn(2, ' ');
    match (parts.next(), parts.next().map(str::trim)) {
        (Some(scheme), Some(token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() =>
        {
            Ok(token.to_owned())
        }
        _ => Err(ApiError::unauthorized(
            "The Authorization header must be: Bearer <token>.",
            true,
        )),
    }
}

/// The version a client expects, from `If-Match: "<version>"` (`*` or no header: any).
///
/// Like [`ApiJson`], its verdict waits for [`IfMatch::version`], called after authentication:
/// a malformed header must not answer 412 to a caller whose token is refused.
#[derive(Debug)]
pub struct IfMatch(Result<Option<UserVersion>, ApiError>);

impl IfMatch {
    /// The expected version (`None`: any), or 412 for a header that names none.
    ///
    /// # Errors
    /// [`ApiError::PreconditionFailed`] for a malformed `If-Match`.
    pub fn version(self) -> Result<Option<UserVersion>, ApiError> {
        self.0
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verdict = match req.headers().get(header::IF_MATCH) {
            None => Ok(None),
            Some(value) => match value.to_str().map(str::trim) {
                Ok("*") => Ok(None),
                Ok(tag) => tag
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .and_then(|t| t.parse::<UserVersion>().ok())
                    .map(Some)
                    .ok_or(ApiError::PreconditionFailed),
                Err(_) => Err(ApiError::PreconditionFailed),
            },
        };
        std::future::ready(Ok(Self(verdict)))
    }
}

/// A response builder for a versioned resource: `status`, its `ETag`, `Cache-Control:
/// no-store`, and on 201 the `Location` it was created at.
#[must_use]
pub fn versioned(
    status: actix_web::http::StatusCode,
    version: UserVersion,
    location: impl FnOnce() -> String,
) -> actix_web::HttpResponseBuilder {
    let mut response = actix_web::HttpResponse::build(status);
    response
        .insert_header((header::ETAG, etag(version)))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if status == actix_web::http::StatusCode::CREATED {
        response.insert_header((header::LOCATION, location()));
    }
    response
}

/// The strong ETag of a version.
#[must_use]
pub fn etag(version: UserVersion) -> String {
    format!("\"{version}\"")
}

/// The client's user agent and address (the TCP peer, or the client a trusted proxy names:
/// see [`crate::client_ip`]).
#[derive(Debug)]
pub struct Client(pub ClientInfo);

impl FromRequest for Client {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self(client_info(req))))
    }
}

/// The client of a request: its user agent, address ([`crate::client_ip::client_ip`], the one
/// the rate limits count) and request id.
fn client_info(req: &HttpRequest) -> ClientInfo {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ip = crate::client_ip::client_ip(req).map(|ip| ip.to_string());
    ClientInfo {
        user_agent,
        ip,
        request_id: crate::problem::current_request_id(),
    }
}

/// Largest `per_page` of any list.
pub const MAX_PER_PAGE: u32 = 100;
/// `per_page` when none is given.
pub const DEFAULT_PER_PAGE: u32 = 20;

/// A query string, taken apart parameter by parameter: a handler takes what it knows,
/// collecting every bad value under its parameter's name, and [`QueryParams::finish`] refuses
/// whatever is left (an unknown or repeated parameter) with the same 422.
#[derive(Debug)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
    errors: ValidationErrors,
}

impl FromRequest for QueryParams {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .map(|query| Self {
                pairs: query.into_inner(),
                errors: ValidationErrors::new(),
            })
            .map_err(|_| ApiError::BadRequest("The query string is malformed.".to_owned()));
        std::future::ready(result)
    }
}

impl QueryParams {
    /// The raw value of `name` (each parameter at most once).
    pub fn take(&mut self, name: &str) -> Option<String> {
        let mut values = Vec::new();
        self.pairs.retain(|(key, value)| {
            if key == name {
                values.push(value.clone());
                false
            } else {
                true
            }
        });
        if values.len() > 1 {
            self.errors.add(name, "must be given at most once");
        }
        values.into_iter().next()
    }

    /// `name` parsed by `parse`, its error message recorded under `name`.
    pub fn parse<T, E: std::fmt::Display>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let raw = self.take(name)?;
        match parse(&raw) {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors.add(name, error.to_string());
                None
            }
        }
    }

    /// `page` (from 1) and `per_page` (1 to [`MAX_PER_PAGE`]).
    pub fn page(&mut self) -> domain::ports::PageRequest {
        let page = self
            .parse("page", |raw| match raw.parse::<u32>() {
                Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
                _ => Err("must be a whole number from 1 to 1000000"),
            })
            .unwrap_or(1);
        let per_page = self
            .parse("per_page", |raw| match raw.parse::<u32>() {
                Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => Ok(n),
                _ => Err(format!("must be a whole number from 1 to {MAX_PER_PAGE}")),
            })
            .unwrap_or(DEFAULT_PER_PAGE);
        domain::ports::PageRequest { page, per_page }
    }

    /// Refuses unknown parameters and reports every recorded error.
    ///
    /// # Errors
    /// 422 naming each bad parameter.
    pub fn finish(mut self) -> Result<(), ApiError> {
        for (key, _) in std::mem::take(&mut self.pairs) {
            self.errors.add(&key, "is not a known parameter");
        }
        self.errors.into_result().map_err(ApiError::Validation)
    }
}

/// A path segment naming a user, as a UUID.
///
/// # Errors
/// 404 for anything that is not a UUID (no such user can exist).
pub fn user_id(raw: &str) -> Result<domain::model::UserId, ApiError> {
    uuid::Uuid::parse_str(raw)
        .map(domain::model::UserId::from_uuid)
        .map_err(|_| ApiError::NotFound)
}

/// A path segment naming a tenant, by id or slug.
///
/// # Errors
/// 404 for anything that is neither (no such tenant can exist).
pub fn tenant_ref(raw: &str) -> Result<domain::model::TenantRef, ApiError> {
    domain::model::TenantRef::parse(raw).map_err(|_| ApiError::NotFound)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        age: Option<u8>,
    }

    fn fields(error: ApiError) -> Vec<(String, Vec<String>)> {
        match error {
            ApiError::Validation(errors) => errors.fields().clone().into_iter().collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(
            parse_json::<Body>(b"{\"email\": "),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Body>(b"not json"),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn shape_errors_name_the_field() {
        let unknown = fields(parse_json::<Body>(br#"{"email":"a","role":"admin"}"#).unwrap_err());
        assert_eq!(
            unknown,
            vec![(
                "role".to_owned(),
                vec!["is not a recognised field".to_owned()]
            )]
        );
        let missing = fields(parse_json::<Body>(b"{}").unwrap_err());
        assert_eq!(
            missing,
            vec![("email".to_owned(), vec!["is required".to_owned()])]
        );
        let wrong = fields(parse_json::<Body>(br#"{"email":"a","age":-1}"#).unwrap_err());
        assert_eq!(wrong[0].0, "age");
        assert!(!wrong[0].1[0].contains("line"));
        let not_object = fields(parse_json::<Body>(b"[1]").unwrap_err());
        assert_eq!(not_object[0].0, "body");
    }
}
