//! `POST /api/v1/auth/introspect`: token introspection (RFC 7662) for resource servers.
//!
//! The caller authenticates as a service account (`Authorization: Basic
//! base64(client_id:secret)`) or as a system administrator (`Authorization: Bearer <access
//! token>`). The body names the token, as JSON `{"token": "..."}` or, as RFC 7662 has it, a
//! form `token=...` (`application/x-www-form-urlencoded`); `token_type_hint` is accepted and
//! ignored (only access tokens are ever active). The answer is `{"active": false}` and nothing
//! else for any token that is not an active access token, and is never cached.
//!
//! The order is authentication (a failure counts against the client address's budget of the
//! auth endpoints, which is otherwise not drawn on here), authorization, then the body.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{
    FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError as _, web,
};
use base64::Engine as _;
use domain::ValidationErrors;
use domain::policy::PasswordAgeOperation;
use domain::services::{
    AuthError, ClientAuthError, IntrospectError, Introspection, IntrospectionCaller,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::client_ip::client_ip;
use crate::extract::{Client, parse_json};
use crate::problem::ApiError;
use crate::ratelimit::AuthRateLimit;
use crate::state::AppState;

/// The challenge of a refused service-account login.
const BASIC_CHALLENGE: &str = r#"Basic realm="ums", charset="UTF-8""#;

/// The token to introspect.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionForm {
    /// The token a client presented to the resource server.
    #[schema(value_type = String)]
    pub token: SecretString,
    /// RFC 7662's hint (`access_token`, `refresh_token`); accepted and ignored.
    #[schema(example = "access_token")]
    pub token_type_hint: Option<String>,
}

/// An active access token: whose it is and what it allows now. The roles are read live (a
/// demotion or a removal from the tenant shows at once), not copied from the token's claims.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveTokenResponse {
    /// Always `true`.
    #[schema(example = true)]
    pub active: bool,
    /// Always `Bearer`, as at login.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// The user's id.
    pub sub: uuid::Uuid,
    /// The user's username now.
    #[schema(example = "ada")]
    pub username: String,
    /// The user's system role now: `admin` or `user`.
    #[schema(example = "user")]
    pub role: &'static str,
    /// The tenant the token is scoped to (`null` when it is not).
    pub tenant: Option<uuid::Uuid>,
    /// The user's role in that tenant now (`null` when the token is not scoped).
    #[schema(example = "member")]
    pub tenant_role: Option<&'static str>,
    /// The session the token belongs to.
    pub session_id: uuid::Uuid,
    /// The token's id (`jti`).
    pub jti: uuid::Uuid,
    /// Issued at, in seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, in seconds since the Unix epoch.
    pub exp: i64,
    /// Whether the user's password is older than `UMS_PASSWORD_MAX_AGE_DAYS`: UMS then allows
    /// the token nothing but reading the account, changing the password and logging out
    /// (403 `urn:ums:problem:password-change-required` elsewhere). The token is active all
    /// the same; a resource server may hold it to the same rule.
    #[schema(example = false)]
    pub password_change_required: bool,
}

/// Any other token: nothing but `active: false`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InactiveTokenResponse {
    /// Always `false`.
    #[schema(example = false)]
    pub active: bool,
}

/// The answer to an introspection.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum IntrospectionResponse {
    /// The token is active.
    Active(ActiveTokenResponse),
    /// It is not.
    Inactive(InactiveTokenResponse),
}

impl From<Introspection> for IntrospectionResponse {
    fn from(answer: Introspection) -> Self {
        match answer {
            Introspection::Inactive => Self::Inactive(InactiveTokenResponse { active: false }),
            Introspection::Active(token) => Self::Active(ActiveTokenResponse {
                active: true,
                token_type: "Bearer",
                sub: *token.user_id.as_uuid(),
                username: token.username.as_str().to_owned(),
                role: token.role.as_str(),
                tenant: token.tenant.map(|(tenant, _)| *tenant.as_uuid()),
                tenant_role: token.tenant.map(|(_, role)| role.as_str()),
                session_id: *token.session_id.as_uuid(),
                jti: token.token_id,
                iat: token.issued_at.timestamp(),
                exp: token.expires_at.timestamp(),
                password_change_required: token.password_change_required,
            }),
        }
    }
}

/// Tells whether a token is an active access token, and if so whose, with the user's system
/// role and (for a token scoped to a tenant) tenant role as they are now.
///
/// For resource servers: authenticate as a service account with HTTP Basic
/// (`client_id:client_secret`, created with `ums create-service-client`), or as a system
/// administrator with a bearer token. Anything that is not an active access token (malformed,
/// expired, signed with another key, revoked, of a logged-out session, of a deleted or
/// deactivated user, of a membership that ended, a refresh token) is `{"active": false}`,
/// with nothing else. When the revocation list or the store cannot be read the answer is
/// 503, never a guess.
///
/// Not limited per client address like the other auth endpoints: only failed
/// authentications (a wrong client id or secret, an invalid bearer token) count against the
/// address's budget, and while they have spent it every request from the address is 429.
#[utoipa::path(
    post,
    path = "/api/v1/auth/introspect",
    tag = "auth",
    security(("basic" = []), ("bearer" = [])),
    request_body(content(
        (IntrospectionForm = "application/json"),
        (IntrospectionForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Whether the token is active, and what it is if it is",
         body = IntrospectionResponse,
         headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "Malformed body, or neither JSON nor a form"),
        (status = 401, description = "No credentials, a wrong client id or secret (challenge \
                                      Basic), or an invalid access token (challenge Bearer)"),
        (status = 403, description = "The bearer token is not a system administrator's \
                                      (whatever the body)"),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "No token, or unknown fields"),
        (status = 503, description = "A dependency is unavailable"),
    )
)]
pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    Client(client): Client,
    body: IntrospectionBody,
) -> Result<HttpResponse, ApiError> {
    // Only failed client authentications count against the client address's budget (the
    // credentials are 256-bit secrets or access tokens: a resource server asking on every
    // request must not be limited); while they have spent it, nothing is checked.
    let limit = AuthRateLimit::of(&req)?;
    let ip = client_ip(&req);
    limit.admit(ip).await?;
    let credentials = match credentials(&req) {
        Ok(credentials) => credentials,
        Err(refusal) => {
            if matches!(refusal, Refusal::BadClient) {
                limit.count_failure(ip).await;
            }
            return Ok(refusal.response());
        }
    };
    // Authentication first, then authorization, then the body (whose errors would tell a
    // caller who may not ask something, and keep a refusal from being recorded).
    let answer = match credentials {
        Credentials::Bearer(token) => {
            let principal = match state.auth.authenticate(token.expose_secret(), client).await {
                Ok(principal) => principal,
                Err(error) => {
                    if matches!(error, AuthError::Unauthenticated(_)) {
                        limit.count_failure(ip).await;
                    }
                    return Err(bearer_refusal(error));
                }
            };
            // An administrator whose password must be changed may not introspect until then.
            crate::password_age::admit(&principal, PasswordAgeOperation::Other)?;
            let caller = IntrospectionCaller::User(&principal);
            let token = authorized_token(&state, caller, body).await?;
            state
                .service_accounts
                .introspect(caller, token.expose_secret())
                .await
        }
        Credentials::Basic { client_id, secret } => {
            let account = match state
                .service_accounts
                .authenticate_client(&client_id, &secret)
                .await
            {
                Ok(account) => account,
                Err(ClientAuthError::InvalidCredentials) => {
                    limit.count_failure(ip).await;
                    return Ok(Refusal::BadClient.response());
                }
                Err(ClientAuthError::Unavailable(source)) => {
                    return Err(ApiError::Unavailable(source));
                }
                Err(ClientAuthError::Unexpected(source)) => {
                    return Err(ApiError::Internal(source));
                }
            };
            let caller = IntrospectionCaller::Service(&account);
            let token = authorized_token(&state, caller, body).await?;
            state
                .service_accounts
                .introspect(caller, token.expose_secret())
                .await
        }
    };
    let answer = answer.map_err(introspect_error)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(IntrospectionResponse::from(answer)))
}

/// The token to introspect, judged only once `caller` is known to be allowed to ask.
///
/// The use case makes the decision ([`domain::policy::can_introspect`], with the
/// `access.denied` record of a refusal) as the first thing it does; a body that is not
/// acceptable is therefore answered after asking it about an empty token, which for a caller
/// that may ask is inactive at once (it is not even a JWT: nothing is looked up), and for one
/// that may not is the 403 and its record, as with a good body.
async fn authorized_token(
    state: &AppState,
    caller: IntrospectionCaller<'_>,
    body: IntrospectionBody,
) -> Result<SecretString, ApiError> {
    match body.parse() {
        Ok(token) => Ok(token),
        Err(unacceptable) => {
            state
                .service_accounts
                .introspect(caller, "")
                .await
                .map_err(introspect_error)?;
            Err(unacceptable)
        }
    }
}

fn introspect_error(error: IntrospectError) -> ApiError {
    match error {
        IntrospectError::Forbidden => ApiError::Forbidden,
        IntrospectError::Unavailable(source) => ApiError::Unavailable(source),
        IntrospectError::Unexpected(source) => ApiError::Internal(source),
    }
}

/// How the caller authenticates.
enum Credentials {
    /// A bearer access token (a system administrator's, to be allowed).
    Bearer(SecretString),
    /// A service account's client id and secret.
    Basic {
        client_id: String,
        secret: SecretString,
    },
}

/// Why the `Authorization` header was refused before anything was checked.
enum Refusal {
    /// No header, or a scheme that is neither Basic nor Bearer.
    Missing,
    /// `Bearer` without a token.
    BadBearer,
    /// Basic credentials that do not decode, or do not name a valid client and secret.
    BadClient,
}

impl Refusal {
    fn response(&self) -> HttpResponse {
        match self {
            Self::Missing => {
                let mut response = ApiError::unauthorized(
                    "This endpoint needs credentials: Authorization: Basic with a service \
                     account's client id and secret, or Bearer with a system administrator's \
                     access token.",
                    false,
                )
                .error_response();
                response.headers_mut().append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(BASIC_CHALLENGE),
                );
                response
            }
            Self::BadBearer => {
                ApiError::unauthorized("The Authorization header must be: Bearer <token>.", true)
                    .error_response()
            }
            Self::BadClient => {
                let mut response =
                    ApiError::unauthorized("The client id or secret is not accepted.", false)
                        .error_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(BASIC_CHALLENGE),
                );
                response
            }
        }
    }
}

/// The credentials in the `Authorization` header.
fn credentials(req: &HttpRequest) -> Result<Credentials, Refusal> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .ok_or(Refusal::Missing)?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(Refusal::BadBearer);
        }
        return Ok(Credentials::Bearer(SecretString::from(rest.to_owned())));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Refusal::Missing);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(Refusal::BadClient)?;
    let (client_id, secret) = decoded.split_once(':').ok_or(Refusal::BadClient)?;
    Ok(Credentials::Basic {
        client_id: client_id.to_owned(),
        secret: SecretString::from(secret.to_owned()),
    })
}

/// A refused bearer token, as the other endpoints answer it.
fn bearer_refusal(error: AuthError) -> ApiError {
    match error {
        AuthError::Unauthenticated(reason) => {
            ApiError::unauthorized(format!("The access token is not accepted: {reason}."), true)
        }
        AuthError::Unavailable(source) => ApiError::Unavailable(source),
        AuthError::Unexpected(source) => ApiError::Internal(source),
    }
}

type LocalFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

/// The introspection request body, JSON or a form. As with
/// [`ApiJson`](crate::extract::ApiJson), its verdict waits for [`IntrospectionBody::parse`],
/// called once the caller is authenticated.
#[derive(Debug)]
pub struct IntrospectionBody(Result<SecretString, ApiError>);

impl IntrospectionBody {
    /// The token to introspect, or why the body is not acceptable.
    ///
    /// # Errors
    /// 400 (malformed, or neither JSON nor a form), 413 (too large), 422 (no token, unknown
    /// or repeated fields).
    pub fn parse(self) -> Result<SecretString, ApiError> {
        self.0
    }
}

impl FromRequest for IntrospectionBody {
    type Error = ApiError;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let kind = req.mime_type().ok().flatten().map(|mime| {
            (
                mime.type_() == "application" && mime.subtype() == "json",
                mime.type_() == "application" && mime.subtype() == "x-www-form-urlencoded",
            )
        });
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
                match kind {
                    Some((true, _)) => parse_json::<IntrospectionForm>(&body).map(|f| f.token),
                    Some((_, true)) => parse_form(&body),
                    _ => Err(ApiError::BadRequest(
                        "The request body must be JSON (Content-Type: application/json) or a \
                         form (application/x-www-form-urlencoded)."
                            .to_owned(),
                    )),
                }
            }
            .await;
            Ok(Self(verdict))
        })
    }
}

/// `token=...` (with an optional `token_type_hint`) from a form body.
fn parse_form(body: &[u8]) -> Result<SecretString, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("The form is not UTF-8.".to_owned()))?;
    let pairs = web::Query::<Vec<(String, String)>>::from_query(text)
        .map_err(|_| ApiError::BadRequest("The form is malformed.".to_owned()))?
        .into_inner();
    let mut errors = ValidationErrors::new();
    let mut token = None;
    let mut hint = 0;
    for (name, value) in pairs {
        match name.as_str() {
            "token" if token.is_none() => token = Some(SecretString::from(value)),
            "token_type_hint" if hint == 0 => hint += 1,
            "token" | "token_type_hint" => errors.add(&name, "must be given at most once"),
            _ => errors.add(&name, "is not a recognised field"),
        }
    }
    if token.is_none() {
        errors.add("token", "is required");
    }
    errors.into_result().map_err(ApiError::Validation)?;
    token.ok_or_else(|| ApiError::invalid("token", "is required"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn fields(error: ApiError) -> Vec<String> {
        match error {
            ApiError::Validation(errors) => errors.fields().keys().cloned().collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn forms_name_the_token_once() {
        let token = parse_form(b"token=abc.def%2Bg&token_type_hint=access_token").unwrap();
        assert_eq!(token.expose_secret(), "abc.def+g");
        assert_eq!(fields(parse_form(b"").unwrap_err()), vec!["token"]);
        assert_eq!(
            fields(parse_form(b"token=a&token=b").unwrap_err()),
            vec!["token"]
        );
        assert_eq!(
            fields(parse_form(b"token=a&scope=all").unwrap_err()),
            vec!["scope"]
        );
        assert!(matches!(parse_form(b"\xff"), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn inactive_says_nothing_else() {
        let json =
            serde_json::to_value(IntrospectionResponse::from(Introspection::Inactive)).unwrap();
        assert_eq!(json, serde_json::json!({"active": false}));
    }
}
