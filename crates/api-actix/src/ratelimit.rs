//! Per-client rate limiting of the auth endpoints: a middleware on the `/api/v1/auth` scope
//! that counts every `POST` under it (except ending sessions) against the client address's
//! budget, and answers 429 with `Retry-After` once it is spent; and the OpenAPI modifier that
//! documents the 429 on every operation it covers.
//!
//! The limit is by route, not by handler, so routes added to the scope later are covered as
//! soon as they exist. The per-login-name lockout (`LoginThrottle`, in the domain) is
//! separate and still applies: this bounds how many names, tokens and passwords one client
//! address can try, that bounds how often one name can be tried from anywhere.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{ResponseError as _, web};
use chrono::TimeDelta;
use domain::ports::{RateDecision, RateLimit, RateLimiter};
use utoipa::Modify;
use utoipa::openapi::{HeaderBuilder, OpenApi as OpenApiDoc, RefOr, ResponseBuilder};

use crate::client_ip::client_ip;
use crate::problem::ApiError;

/// The scope whose `POST`s are limited.
pub const AUTH_SCOPE: &str = "/api/v1/auth";

/// Paths under [`AUTH_SCOPE`] that are never limited: ending one's sessions must always work
/// (they need a valid access token, so they are no way to guess anything).
pub const UNLIMITED: [&str; 2] = ["/logout", "/logout-all"];

/// Whether a request of `method` to `path_in_scope` (the path after [`AUTH_SCOPE`], as the
/// router decoded it) is counted.
#[must_use]
pub fn is_limited(method: &Method, path_in_scope: &str) -> bool {
    method == Method::POST && !UNLIMITED.contains(&path_in_scope)
}

/// Whether the documented operation `method` `path` (a full path template) is counted.
#[must_use]
pub fn is_limited_route(method: &Method, path: &str) -> bool {
    path.strip_prefix(AUTH_SCOPE)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .is_some_and(|rest| is_limited(method, rest))
}

/// The limiter and limit of the auth endpoints, registered as `web::Data` for
/// [`limit_auth`].
#[derive(Clone)]
pub struct AuthRateLimit {
    limiter: Arc<dyn RateLimiter>,
    limit: Option<RateLimit>,
}

impl fmt::Debug for AuthRateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRateLimit")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl AuthRateLimit {
    /// Counts auth requests in `limiter` under `limit`; `None` counts nothing.
    #[must_use]
    pub fn new(limiter: Arc<dyn RateLimiter>, limit: Option<RateLimit>) -> Self {
        Self { limiter, limit }
    }

    /// The limit, for the log.
    #[must_use]
    pub fn describe(&self) -> String {
        describe(self.limit)
    }
}

/// A limit as operators configure it, for the log: `30/min, burst 10 per client address`.
#[must_use]
pub fn describe(limit: Option<RateLimit>) -> String {
    match limit {
        None => "off".to_owned(),
        Some(limit) => {
            let burst = f64::from(limit.burst.max(1));
            let seconds = limit.period.num_milliseconds() as f64 / 1000.0;
            let per_minute = if seconds > 0.0 {
                burst * 60.0 / seconds
            } else {
                f64::INFINITY
            };
            format!(
                "{per_minute:.0}/min, burst {} per client address",
                limit.burst
            )
        }
    }
}

/// The key a client address is counted under: an IPv4 address as it is, an IPv6 address by
/// its /64 (what one subscriber is typically given, so a client cannot take a fresh budget
/// with each of its addresses).
#[must_use]
pub fn client_key(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => format!("auth:ip:{v4}"),
        Some(IpAddr::V6(v6)) => {
            let network = u128::from(v6) & !(u128::MAX >> 64);
            format!("auth:ip:{}/64", std::net::Ipv6Addr::from(network))
        }
        None => "auth:ip:unknown".to_owned(),
    }
}

/// `retry_after` in whole seconds, rounded up, at least 1 (the `Retry-After` header).
#[must_use]
pub fn retry_after_secs(retry_after: TimeDelta) -> i64 {
    let whole = retry_after.num_seconds();
    let secs = if retry_after > TimeDelta::seconds(whole) {
        whole.saturating_add(1)
    } else {
        whole
    };
    secs.max(1)
}

/// The middleware of the [`AUTH_SCOPE`] scope: counts each limited request (see
/// [`is_limited`]) for its client address ([`client_ip`], the same address sessions and the
/// audit trail record), and answers 429 with `Retry-After` when the budget is spent, 503 if
/// the limiter fails (the composition root gives it a fallback, so it does not).
///
/// # Errors
/// Passes through errors of the inner service.
pub async fn limit_auth(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if !is_limited(req.method(), req.match_info().unprocessed()) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let Some(config) = req.app_data::<web::Data<AuthRateLimit>>().cloned() else {
        return Ok(refuse(
            req,
            &ApiError::Internal("the auth rate limit is not configured".into()),
        ));
    };
    let Some(limit) = config.limit else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let key = client_key(client_ip(req.request()));
    match config.limiter.acquire(&key, limit).await {
        Ok(RateDecision::Allowed) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Ok(RateDecision::Limited { retry_after }) => {
            tracing::debug!(%key, %retry_after, "auth request rate limited");
            Ok(refuse(
                req,
                &ApiError::TooManyRequests(retry_after_secs(retry_after)),
            ))
        }
        Err(error) => Ok(refuse(req, &ApiError::Unavailable(Box::new(error)))),
    }
}

fn refuse<B>(req: ServiceRequest, error: &ApiError) -> ServiceResponse<EitherBody<B>> {
    req.into_response(error.error_response())
        .map_into_right_body()
}

/// Documents the 429 (with `Retry-After`) on every operation [`limit_auth`] counts. Listed
/// before the shared conventions, which then make it a problem document with `X-Request-Id`.
#[derive(Debug)]
pub struct RateLimitDocs;

/// What the added (or extended) 429 says.
const LIMITED: &str = "Too many requests from this client address";

impl Modify for RateLimitDocs {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        for (path, item) in &mut openapi.paths.paths {
            let Some(operation) = item.post.as_mut() else {
                continue;
            };
            if !is_limited_route(&Method::POST, path) {
                continue;
            }
            let response = operation
                .responses
                .responses
                .entry("429".to_owned())
                .or_insert_with(|| ResponseBuilder::new().description(LIMITED).build().into());
            if let RefOr::T(response) = response {
                if !response.description.contains(LIMITED) {
                    response.description = format!("{}; or: {LIMITED}", response.description);
                }
                response.headers.insert(
                    "Retry-After".to_owned(),
                    HeaderBuilder::new()
                        .description(Some("Seconds to wait before trying again"))
                        .build(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn posts_under_the_auth_scope_are_limited_except_ending_sessions() {
        for path in [
            "/login",
            "/register",
            "/refresh",
            "/password/forgot",
            "/password/reset",
            "/verify-email",
            "/verify-email/resend",
            "/introspect",
            "/anything-added-later",
            "",
            "/logout/",
        ] {
            assert!(is_limited(&Method::POST, path), "{path}");
            assert!(is_limited_route(
                &Method::POST,
                &format!("{AUTH_SCOPE}{path}")
            ));
        }
        for path in ["/logout", "/logout-all"] {
            assert!(!is_limited(&Method::POST, path), "{path}");
        }
        assert!(!is_limited(&Method::GET, "/login"));
        assert!(!is_limited_route(&Method::POST, "/api/v1/authx/login"));
        assert!(!is_limited_route(&Method::POST, "/api/v1/users"));
        assert!(!is_limited_route(&Method::POST, "/api/v1/auth/logout"));
    }

    #[test]
    fn client_keys_group_ipv6_by_its_64() {
        let ip = |text: &str| Some(text.parse::<IpAddr>().unwrap());
        assert_eq!(client_key(ip("203.0.113.9")), "auth:ip:203.0.113.9");
        assert_eq!(client_key(ip("::ffff:203.0.113.9")), "auth:ip:203.0.113.9");
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            "auth:ip:2001:db8:1:2::/64"
        );
        assert_eq!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:2:ffff::"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(None), "auth:ip:unknown");
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(retry_after_secs(TimeDelta::seconds(2)), 2);
        assert_eq!(retry_after_secs(TimeDelta::milliseconds(2_001)), 3);
        assert_eq!(retry_after_secs(TimeDelta::nanoseconds(2_000_000_001)), 3);
        assert_eq!(retry_after_secs(TimeDelta::milliseconds(1)), 1);
        assert_eq!(retry_after_secs(TimeDelta::zero()), 1);
        assert_eq!(
            retry_after_secs(TimeDelta::MAX),
            TimeDelta::MAX.num_seconds() + 1
        );
    }

    #[test]
    fn limits_are_described_as_configured() {
        let limit = RateLimit {
            burst: 10,
            period: TimeDelta::seconds(20),
        };
        assert_eq!(describe(Some(limit)), "30/min, burst 10 per client address");
        assert_eq!(describe(None), "off");
    }

    #[test]
    fn the_document_gives_every_limited_operation_a_429_with_retry_after() {
        let doc = serde_json::to_value(crate::openapi::document()).unwrap();
        let mut limited = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let too_many = &operation["responses"]["429"];
                if is_limited_route(&method, path) {
                    limited += 1;
                    assert!(
                        too_many["description"].as_str().unwrap().contains(LIMITED),
                        "{method} {path}: {too_many}"
                    );
                    assert!(
                        too_many["headers"]["Retry-After"].is_object(),
                        "{method} {path}: {too_many}"
                    );
                    assert!(
                        too_many["content"]["application/problem+json"].is_object(),
                        "{method} {path}: {too_many}"
                    );
                } else if path.starts_with(AUTH_SCOPE) {
                    assert!(too_many.is_null(), "{method} {path} documents a 429");
                }
            }
        }
        assert!(limited >= 5, "only {limited} limited operations documented");
    }
}
