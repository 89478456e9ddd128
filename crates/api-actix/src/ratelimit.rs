//! Per-client rate limiting of the auth endpoints: a middleware on the `/api/v1/auth` scope
//! that counts every `POST` under it (except those that cannot be used to guess anything)
//! against the client address's budget, and answers 429 with `Retry-After` once it is spent;
//! the counting of failed client authentications that introspection does itself; and the
//! OpenAPI modifier that documents the 429 on every operation either covers.
//!
//! The limit is by route, not by handler, so routes added to the scope later are covered as
//! soon as they exist. The per-login-name lockout (`LoginThrottle`, in the domain) is
//! separate and still applies: this bounds how many names, tokens and passwords one client
//! address can try, that bounds how often one name can be tried from anywhere.
//!
//! An IPv4 client is one budget. An IPv6 client draws on three at once (see
//! [`client_budgets`]): its /64, and, with larger bursts, the /56 and the /48 around it, so a
//! client given a whole /48 (a common delegation) cannot take 65,536 fresh budgets by using
//! one address of each /64; a request is allowed only while all three allow it, and counted
//! in all three or none.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, ResponseError as _, web};
use chrono::TimeDelta;
use domain::ports::{RateBudget, RateDecision, RateLimit, RateLimiter};
use utoipa::Modify;
use utoipa::openapi::{HeaderBuilder, OpenApi as OpenApiDoc, RefOr, ResponseBuilder};

use crate::client_ip::client_ip;
use crate::problem::ApiError;

/// The scope whose `POST`s are limited.
pub const AUTH_SCOPE: &str = "/api/v1/auth";

/// Paths under [`AUTH_SCOPE`] that the middleware never counts, because nothing can be
/// guessed through them: ending one's sessions needs a valid access token, a refresh a
/// 256-bit refresh token (a spent one revokes its session), and introspection a service
/// account's 256-bit secret or an administrator's access token. Counting them would only
/// refuse legitimate traffic: a resource server introspecting on every request, or an office
/// of single-page applications refreshing behind one NAT address. Introspection counts its
/// failed authentications itself ([`FAILURES_ONLY`]).
pub const UNLIMITED: [&str; 4] = ["/logout", "/logout-all", "/refresh", "/introspect"];

/// Paths under [`AUTH_SCOPE`] whose handler counts only its failed client authentications
/// against the client's budget ([`AuthRateLimit::admit`], [`AuthRateLimit::count_failure`]),
/// and refuses every request with 429 while that budget is spent.
pub const FAILURES_ONLY: [&str; 1] = ["/introspect"];

/// How many /64 budgets the budget of a /56 is worth: its burst and its rate are the /64's
/// times this.
pub const PER_56: u32 = 16;

/// How many /64 budgets the budget of a /48 is worth.
pub const PER_48: u32 = 256;

/// Whether a request of `method` to `path_in_scope` (the path after [`AUTH_SCOPE`], as the
/// router decoded it) is counted by the middleware.
#[must_use]
pub fn is_limited(method: &Method, path_in_scope: &str) -> bool {
    method == Method::POST && !UNLIMITED.contains(&path_in_scope)
}

/// The path after [`AUTH_SCOPE`] of the documented operation `path` (a full path template).
fn in_scope(path: &str) -> Option<&str> {
    path.strip_prefix(AUTH_SCOPE)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether the documented operation `method` `path` (a full path template) is counted by the
/// middleware.
#[must_use]
pub fn is_limited_route(method: &Method, path: &str) -> bool {
    in_scope(path).is_some_and(|rest| is_limited(method, rest))
}

/// Whether the documented operation `method` `path` counts its failed authentications
/// ([`FAILURES_ONLY`]).
#[must_use]
pub fn is_failure_limited_route(method: &Method, path: &str) -> bool {
    method == Method::POST && in_scope(path).is_some_and(|rest| FAILURES_ONLY.contains(&rest))
}

/// The limiter and limit of the auth endpoints, registered as `web::Data` for
/// [`limit_auth`] and the handlers of [`FAILURES_ONLY`].
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

    /// The one the application registered.
    ///
    /// # Errors
    /// 500 when none is registered (a composition error: fail closed).
    pub fn of(req: &HttpRequest) -> Result<web::Data<Self>, ApiError> {
        req.app_data::<web::Data<Self>>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("the auth rate limit is not configured".into()))
    }

    /// The limit, for the log.
    #[must_use]
    pub fn describe(&self) -> String {
        describe(self.limit)
    }

    /// For a handler that counts only failures: refuses with 429 (and `Retry-After`) while
    /// the budget of the client at `ip` is spent, counting nothing, so that no more
    /// credentials are checked for it than its budget allows. With the limit off, admits.
    ///
    /// Concurrent requests that are each admitted before any of their failures is counted can
    /// together fail more often than the burst, by at most as many as arrive at once.
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`] while the budget is spent; `Unavailable` when the
    /// limiter fails (the composition root gives it a fallback, so it does not).
    pub async fn admit(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let budgets = client_budgets(ip, limit);
        match self.limiter.check_all(&budgets).await {
            Ok(RateDecision::Allowed) => Ok(()),
            Ok(RateDecision::Limited { retry_after }) => {
                tracing::debug!(key = %budgets[0].key, %retry_after, "failed authentications rate limited");
                Err(ApiError::TooManyRequests(retry_after_secs(retry_after)))
            }
            Err(error) => Err(ApiError::Unavailable(Box::new(error))),
        }
    }

    /// Counts one failed authentication of the client at `ip` against its budget. The
    /// request has failed already and is answered as such whatever this decides; a limiter
    /// that fails is logged.
    pub async fn count_failure(&self, ip: Option<IpAddr>) {
        let Some(limit) = self.limit else {
            return;
        };
        if let Err(error) = self.limiter.acquire_all(&client_budgets(ip, limit)).await {
            tracing::warn!(error = %error, "a failed authentication was not counted");
        }
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
                "{per_minute:.0}/min, burst {} per client address (IPv6: per /64, and \
                 {PER_56} times that per /56, {PER_48} times per /48)",
                limit.burst
            )
        }
    }
}

/// The budgets a request of the client at `ip` draws on under `limit`: an IPv4 address's
/// own; for an IPv6 address, its /64's (what one subscriber is typically given, so a client
/// cannot take a fresh budget with each of its addresses) under `limit`, its /56's under
/// [`PER_56`] times `limit` and its /48's under [`PER_48`] times `limit` (the same period,
/// that many times the burst, so that many times the rate): a delegated /48 or /56 has a
/// budget of its own however many /64s it spreads over, while up to that many /64 clients in
/// one provider's /48 or /56 each keep the budget of their own. An IPv4-mapped IPv6 address
/// counts as the IPv4 address.
#[must_use]
pub fn client_budgets(ip: Option<IpAddr>, limit: RateLimit) -> Vec<RateBudget> {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => vec![RateBudget::new(format!("auth:ip:{v4}"), limit)],
        Some(IpAddr::V6(v6)) => [(64, 1), (56, PER_56), (48, PER_48)]
            .into_iter()
            .map(|(prefix, times)| {
                let network = u128::from(v6) & !(u128::MAX >> prefix);
                RateBudget::new(
                    format!("auth:ip:{}/{prefix}", Ipv6Addr::from(network)),
                    RateLimit {
                        burst: limit.burst.max(1).saturating_mul(times),
                        period: limit.period,
                    },
                )
            })
            .collect(),
        None => vec![RateBudget::new("auth:ip:unknown", limit)],
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
/// audit trail record) in every budget of [`client_budgets`], and answers 429 with
/// `Retry-After` when one is spent, 503 if the limiter fails (the composition root gives it a
/// fallback, so it does not).
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
    let config = match AuthRateLimit::of(req.request()) {
        Ok(config) => config,
        Err(error) => return Ok(refuse(req, &error)),
    };
    let Some(limit) = config.limit else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let budgets = client_budgets(client_ip(req.request()), limit);
    match config.limiter.acquire_all(&budgets).await {
        Ok(RateDecision::Allowed) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Ok(RateDecision::Limited { retry_after }) => {
            tracing::debug!(key = %budgets[0].key, %retry_after, "auth request rate limited");
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

/// Documents the 429 (with `Retry-After`) on every operation [`limit_auth`] counts, and on
/// those that count their failed authentications ([`FAILURES_ONLY`]). Listed before the
/// shared conventions, which then make it a problem document with `X-Request-Id`.
#[derive(Debug)]
pub struct RateLimitDocs;

/// What the added (or extended) 429 says of an operation the middleware counts.
const LIMITED: &str = "Too many requests from this client address";

/// What it says of an operation that counts its failed authentications.
const FAILURES_LIMITED: &str = "Too many failed authentications from this client address \
                                (every request is refused until Retry-After)";

impl Modify for RateLimitDocs {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        for (path, item) in &mut openapi.paths.paths {
            let Some(operation) = item.post.as_mut() else {
                continue;
            };
            let text = if is_limited_route(&Method::POST, path) {
                LIMITED
            } else if is_failure_limited_route(&Method::POST, path) {
                FAILURES_LIMITED
            } else {
                continue;
            };
            let response = operation
                .responses
                .responses
                .entry("429".to_owned())
                .or_insert_with(|| ResponseBuilder::new().description(text).build().into());
            if let RefOr::T(response) = response {
                if !response.description.contains(text) {
                    response.description = format!("{}; or: {text}", response.description);
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
    fn posts_under_the_auth_scope_are_limited_except_those_that_guess_nothing() {
        for path in [
            "/login",
            "/register",
            "/password/forgot",
            "/password/reset",
            "/verify-email",
            "/verify-email/resend",
            "/anything-added-later",
            "",
            "/logout/",
            "/refresh/",
        ] {
            assert!(is_limited(&Method::POST, path), "{path}");
            assert!(is_limited_route(
                &Method::POST,
                &format!("{AUTH_SCOPE}{path}")
            ));
            assert!(!is_failure_limited_route(
                &Method::POST,
                &format!("{AUTH_SCOPE}{path}")
            ));
        }
        for path in ["/logout", "/logout-all", "/refresh", "/introspect"] {
            assert!(!is_limited(&Method::POST, path), "{path}");
            assert!(!is_limited_route(
                &Method::POST,
                &format!("{AUTH_SCOPE}{path}")
            ));
        }
        assert!(is_failure_limited_route(
            &Method::POST,
            "/api/v1/auth/introspect"
        ));
        assert!(!is_failure_limited_route(
            &Method::GET,
            "/api/v1/auth/introspect"
        ));
        assert!(!is_failure_limited_route(
            &Method::POST,
            "/api/v1/authx/introspect"
        ));
        assert!(!is_limited(&Method::GET, "/login"));
        assert!(!is_limited_route(&Method::POST, "/api/v1/authx/login"));
        assert!(!is_limited_route(&Method::POST, "/api/v1/users"));
        assert!(!is_limited_route(&Method::POST, "/api/v1/auth/logout"));
    }

    fn keys(budgets: &[RateBudget]) -> Vec<&str> {
        budgets.iter().map(|b| b.key.as_str()).collect()
    }

    #[test]
    fn ipv4_clients_have_one_budget_and_ipv6_clients_three_nested_ones() {
        let ip = |text: &str| Some(text.parse::<IpAddr>().unwrap());
        let limit = RateLimit {
            burst: 10,
            period: TimeDelta::seconds(20),
        };
        let v4 = client_budgets(ip("203.0.113.9"), limit);
        assert_eq!(v4, vec![RateBudget::new("auth:ip:203.0.113.9", limit)]);
        assert_eq!(client_budgets(ip("::ffff:203.0.113.9"), limit), v4);
        assert_eq!(
            client_budgets(None, limit),
            vec![RateBudget::new("auth:ip:unknown", limit)]
        );

        let v6 = client_budgets(ip("2001:db8:1:2a3:aaaa:bbbb:cccc:dddd"), limit);
        assert_eq!(
            keys(&v6),
            [
                "auth:ip:2001:db8:1:2a3::/64",
                "auth:ip:2001:db8:1:200::/56",
                "auth:ip:2001:db8:1::/48"
            ]
        );
        let bursts: Vec<u32> = v6.iter().map(|b| b.limit.burst).collect();
        assert_eq!(bursts, [10, 160, 2_560]);
        assert!(v6.iter().all(|b| b.limit.period == limit.period));

        // Another address of the /64: the same three budgets.
        assert_eq!(
            client_budgets(ip("2001:db8:1:2a3::1"), limit),
            client_budgets(ip("2001:db8:1:2a3:ffff::"), limit)
        );
        // Another /64 of the /56: its own /64, the same /56 and /48.
        let sibling = client_budgets(ip("2001:db8:1:2ff::1"), limit);
        assert_ne!(sibling[0], v6[0]);
        assert_eq!(sibling[1..], v6[1..]);
        // Another /56 of the /48: only the /48 is shared.
        let cousin = client_budgets(ip("2001:db8:1:300::1"), limit);
        assert_ne!(cousin[0], v6[0]);
        assert_ne!(cousin[1], v6[1]);
        assert_eq!(cousin[2], v6[2]);
        // Another /48: nothing shared.
        let stranger = client_budgets(ip("2001:db8:2:2a3::1"), limit);
        assert!(stranger.iter().all(|b| !v6.contains(b)));
        // Bursts never overflow.
        let huge = RateLimit {
            burst: u32::MAX,
            period: TimeDelta::seconds(1),
        };
        assert!(
            client_budgets(ip("2001:db8::1"), huge)
                .iter()
                .all(|b| b.limit.burst == u32::MAX)
        );
    }

    /// Rotating through the /64s of one /48 spends the /48's budget: 256 times the /64's
    /// burst, not 65,536 times; and another /48 is not affected.
    #[actix_web::test]
    async fn a_client_rotating_its_64s_spends_the_48() {
        #[derive(Debug)]
        struct Fixed;
        impl domain::ports::Clock for Fixed {
            fn now(&self) -> chrono::DateTime<chrono::Utc> {
                chrono::DateTime::UNIX_EPOCH
            }
        }
        let limiter = adapters_memory::MemoryRateLimiter::new(Arc::new(Fixed));
        let limit = RateLimit {
            burst: 2,
            period: TimeDelta::hours(1),
        };
        // Two /64s in each of the 256 /56s of a /48, each asked twice its burst: of these 2,048
        // requests the /64s and /56s alone would allow 1,024, the /48 allows 512.
        let mut allowed = 0;
        for net56 in 0..=255_u32 {
            for net64 in 0..2 {
                let address = format!("2001:db8:7:{net56:02x}{net64:02x}::1");
                let budgets = client_budgets(Some(address.parse().unwrap()), limit);
                for _ in 0..4 {
                    if limiter.acquire_all(&budgets).await.unwrap() == RateDecision::Allowed {
                        allowed += 1;
                    }
                }
            }
        }
        assert_eq!(allowed, 2 * PER_48, "the /48 allows 256 /64 bursts");
        // Within one /56 (16 /64s) the /56 binds first.
        let mut allowed = 0;
        for net in 0..64 {
            let address = format!("2001:db8:8:{net:x}::1");
            let budgets = client_budgets(Some(address.parse().unwrap()), limit);
            for _ in 0..2 {
                if limiter.acquire_all(&budgets).await.unwrap() == RateDecision::Allowed {
                    allowed += 1;
                }
            }
        }
        assert_eq!(allowed, 2 * PER_56, "the /56 allows 16 /64 bursts");
        let elsewhere = client_budgets(Some("2001:db8:9::1".parse().unwrap()), limit);
        assert_eq!(
            limiter.acquire_all(&elsewhere).await.unwrap(),
            RateDecision::Allowed
        );
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
        assert!(
            describe(Some(limit)).starts_with("30/min, burst 10 per client address"),
            "{}",
            describe(Some(limit))
        );
        assert!(describe(Some(limit)).contains("/48"));
        assert_eq!(describe(None), "off");
    }

    #[test]
    fn the_document_gives_every_limited_operation_a_429_with_retry_after() {
        let doc = serde_json::to_value(crate::openapi::document()).unwrap();
        let (mut limited, mut failures) = (0, 0);
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let too_many = &operation["responses"]["429"];
                let text = if is_limited_route(&method, path) {
                    limited += 1;
                    LIMITED
                } else if is_failure_limited_route(&method, path) {
                    failures += 1;
                    FAILURES_LIMITED
                } else {
                    if path.starts_with(AUTH_SCOPE) {
                        assert!(
                            too_many.is_null()
                                || !too_many["description"]
                                    .as_str()
                                    .unwrap()
                                    .contains("client address"),
                            "{method} {path} documents the address's 429: {too_many}"
                        );
                    }
                    continue;
                };
                assert!(
                    too_many["description"].as_str().unwrap().contains(text),
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
            }
        }
        assert!(limited >= 5, "only {limited} limited operations documented");
        assert_eq!(failures, 1, "introspection documents its 429");
        let refresh = &doc["paths"]["/api/v1/auth/refresh"]["post"]["responses"];
        assert!(
            refresh["429"].is_null(),
            "refresh is not limited: {refresh}"
        );
    }
}
