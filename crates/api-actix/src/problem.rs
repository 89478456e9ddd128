//! RFC 9457 problem documents: the one place where failures become HTTP responses.
//!
//! Domain errors map to [`ApiError`]; [`ApiError`] renders a client-safe document and logs the
//! full cause chain server-side. Nothing but the public `detail` ever reaches the client.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use domain::{BoxError, ValidationErrors};
use serde::Serialize;
use utoipa::ToSchema;

tokio::task_local! {
    /// The id of the request being served, set by the request-context middleware.
    pub static REQUEST_ID: String;
}

/// The current request's id, if called while serving one.
#[must_use]
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` when the status says it all).
    #[serde(rename = "type")]
    #[schema(example = "urn:ums:problem:validation")]
    pub problem_type: String,
    /// Short summary of the kind of problem.
    #[schema(example = "Validation failed")]
    pub title: String,
    /// The HTTP status.
    #[schema(example = 422)]
    pub status: u16,
    /// What went wrong in this case.
    pub detail: String,
    /// The request's `X-Request-Id`, to quote when reporting a problem.
    pub request_id: Option<String>,
    /// Messages by field name; on validation failures only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, Vec<String>>>,
}

/// The problem type of [`ApiError::PasswordChangeRequired`].
pub const PASSWORD_CHANGE_REQUIRED: &str = "urn:ums:problem:password-change-required";

/// A failure of an HTTP request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be read (malformed JSON, wrong content type).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: no, or an unacceptable, bearer token or credentials.
    #[error("unauthorized: {detail}")]
    Unauthorized {
        /// Client-safe explanation.
        detail: String,
        /// Whether a bearer token was presented (and refused), for `WWW-Authenticate`.
        invalid_token: bool,
    },
    /// 403: authenticated but not allowed.
    #[error("forbidden")]
    Forbidden,
    /// 403: the credentials are right but the e-mail address must be verified first.
    #[error("e-mail address not verified")]
    EmailNotVerified,
    /// 403: the password is past its maximum age and must be changed before anything but
    /// reading one's account, changing the password and logging out.
    #[error("password change required")]
    PasswordChangeRequired,
    /// 404.
    #[error("not found")]
    NotFound,
    /// 409: a conflict with the current state (duplicate value).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 412: a stale `If-Match`.
    #[error("precondition failed")]
    PreconditionFailed,
    /// 413: body over the limit.
    #[error("payload too large")]
    PayloadTooLarge(usize),
    /// 422: invalid fields.
    #[error("validation failed: {0}")]
    Validation(ValidationErrors),
    /// 429: rate limited or locked out, for this many seconds.
    #[error("too many requests")]
    TooManyRequests(i64),
    /// 503: a dependency is down; worth retrying.
    #[error("service unavailable")]
    Unavailable(#[source] BoxError),
    /// 500: a bug or an unexpected failure.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl ApiError {
    /// 401 for a request that needs a bearer token and presented none or a bad one.
    #[must_use]
    pub fn unauthorized(detail: impl Into<String>, invalid_token: bool) -> Self {
        Self::Unauthorized {
            detail: detail.into(),
            invalid_token,
        }
    }

    /// 422 on one field.
    #[must_use]
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(ValidationErrors::single(field, message))
    }

    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::BadRequest(_) => ("urn:ums:problem:bad-request", "Malformed request"),
            Self::Unauthorized { .. } => ("urn:ums:problem:unauthorized", "Not authenticated"),
            Self::Forbidden => ("urn:ums:problem:forbidden", "Not allowed"),
            Self::EmailNotVerified => (
                "urn:ums:problem:email-not-verified",
                "E-mail address not verified",
            ),
            Self::PasswordChangeRequired => (PASSWORD_CHANGE_REQUIRED, "Password change required"),
            Self::NotFound => ("about:blank", "Not Found"),
            Self::Conflict(_) => ("urn:ums:problem:conflict", "Conflict"),
            Self::PreconditionFailed => {
                ("urn:ums:problem:precondition-failed", "Precondition failed")
            }
            Self::PayloadTooLarge(_) => ("urn:ums:problem:payload-too-large", "Payload too large"),
            Self::Validation(_) => ("urn:ums:problem:validation", "Validation failed"),
            Self::TooManyRequests(_) => ("urn:ums:problem:too-many-requests", "Too many requests"),
            Self::Unavailable(_) => ("urn:ums:problem:unavailable", "Service unavailable"),
            Self::Internal(_) => ("about:blank", "Internal Server Error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::BadRequest(detail) | Self::Conflict(detail) => detail.clone(),
            Self::Unauthorized { detail, .. } => detail.clone(),
            Self::Forbidden => "You are not allowed to do this.".to_owned(),
            Self::EmailNotVerified => "Confirm your e-mail address with the link that was sent \
                                       to it, then log in again."
                .to_owned(),
            Self::PasswordChangeRequired => "Your password has expired. Change it with POST \
                                             /api/v1/users/me/password; until then this token \
                                             allows only GET /api/v1/users/me, the password \
                                             change and logging out."
                .to_owned(),
            Self::NotFound => "The resource does not exist.".to_owned(),
            Self::PreconditionFailed => {
                "The resource has changed since you read it (If-Match does not match its ETag)."
                    .to_owned()
            }
            Self::PayloadTooLarge(limit) => {
                format!("The request body is larger than the limit of {limit} bytes.")
            }
            Self::Validation(errors) => format!("Invalid request: {errors}."),
            Self::TooManyRequests(seconds) => {
                format!("Too many attempts; try again in {seconds} seconds.")
            }
            Self::Unavailable(_) => {
                "A service this request depends on is unavailable; try again shortly.".to_owned()
            }
            Self::Internal(_) => "An unexpected error occurred.".to_owned(),
        }
    }
}

/// Builds a problem response for `status`, with the given type, title and detail.
#[must_use]
pub fn problem_response(
    status: StatusCode,
    problem_type: &str,
    title: &str,
    detail: String,
    errors: Option<BTreeMap<String, Vec<String>>>,
    request_id: Option<String>,
) -> HttpResponse {
    let problem = Problem {
        problem_type: problem_type.to_owned(),
        title: title.to_owned(),
        status: status.as_u16(),
        detail,
        request_id,
        errors,
    };
    let body = serde_json::to_string(&problem).unwrap_or_else(|_| {
        format!(
            r#"{{"type":"about:blank","title":"{title}","status":{}}}"#,
            status.as_u16()
        )
    });
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, PROBLEM_JSON))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::EmailNotVerified | Self::PasswordChangeRequired => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(_) => tracing::error!(error = %error_chain(self), "request failed"),
            Self::Unavailable(_) => {
                tracing::warn!(error = %error_chain(self), "dependency unavailable")
            }
            _ => tracing::debug!(error = %self, "request refused"),
        }
        let (problem_type, title) = self.kind();
        let errors = match self {
            Self::Validation(errors) => Some(errors.fields().clone()),
            _ => None,
        };
        let mut response = problem_response(
            self.status_code(),
            problem_type,
            title,
            self.detail(),
            errors,
            current_request_id(),
        );
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized { invalid_token, .. } => {
                let challenge = if *invalid_token {
                    r#"Bearer realm="ums", error="invalid_token""#
                } else {
                    r#"Bearer realm="ums""#
                };
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::TooManyRequests(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from((*seconds).max(1)));
            }
            _ => {}
        }
        response
    }
}

/// The error and every `source()` under it, for the server log.
#[must_use]
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}
