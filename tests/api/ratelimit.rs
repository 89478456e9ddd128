//! The per-client-address rate limit of the auth endpoints, on whichever stack
//! `UMS_TEST_STACK` names: a flood from one address is refused with 429 and `Retry-After`,
//! forwarded headers are believed only from trusted proxies (and then each forwarded client
//! has its own budget, and is what sessions and the audit trail record), logout is never
//! limited, and the limit is shared by the instances of the production stack.
//!
//! Every test spawns its app with a small budget of its own (the harness's default is one no
//! test spends).

use actix_web::http::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{PASSWORD, Stack, TestApp, TestResponse, spawn_app_with};
use ums_tests::support::redis::RedisServer;

/// An app whose auth endpoints allow `burst` requests per client address, one more every
/// `60 / per_minute` seconds, with `more` settings on top.
async fn app_with_limit(per_minute: &str, burst: &str, more: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("UMS_RATE_LIMIT_AUTH_PER_MINUTE", per_minute),
        ("UMS_RATE_LIMIT_AUTH_BURST", burst),
    ];
    vars.extend_from_slice(more);
    spawn_app_with(
        Stack::from_env(),
        tempfile::tempdir().expect("temp dir"),
        &vars,
    )
    .await
}

/// A wrong-password login for a name nobody has, each time another (so the per-name lockout
/// never answers instead of the rate limit), sent with `headers`.
async fn failed_login(app: &TestApp, headers: &[(&str, &str)]) -> TestResponse {
    let name = format!("nobody-{}", Uuid::now_v7().simple());
    app.send_with(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"login": name, "password": "not the password"})),
        headers,
    )
    .await
}

/// Asserts `response` is the rate limit's refusal; returns its `Retry-After` in seconds.
fn assert_limited(response: &TestResponse, what: &str) -> u64 {
    assert_eq!(
        response.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{what}: {}",
        response.text
    );
    assert_eq!(
        response.body["type"], "urn:ums:problem:too-many-requests",
        "{what}"
    );
    let retry_after = response
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: 429 without Retry-After"));
    retry_after
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After {retry_after:?} is not whole seconds"))
}

fn assert_not_limited(response: &TestResponse, what: &str) {
    assert_ne!(
        response.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{what}: {}",
        response.text
    );
}

/// The sessions of the bearer of `access`, as listed to them.
async fn sessions(app: &TestApp, access: &str) -> Vec<Value> {
    let listed = app.get("/api/v1/users/me/sessions", access).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    listed.body["items"].as_array().expect("items").clone()
}

/// Logs `login` in with `headers`; returns the access token.
async fn login_with(app: &TestApp, login: &str, headers: &[(&str, &str)]) -> String {
    let response = app
        .send_with(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": login, "password": PASSWORD})),
            headers,
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    response.body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

/// Three at once, then one every 10 s: the fourth request from 127.0.0.1 is refused with
/// `Retry-After` (whole seconds, rounded up), whichever limited endpoint it goes to; logout
/// and endpoints outside the scope are not limited.
#[actix_web::test]
async fn a_flood_from_one_address_is_refused_with_retry_after() {
    let app = app_with_limit("6", "3", &[]).await;
    for i in 1..=3 {
        let response = failed_login(&app, &[]).await;
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "attempt {i}: {}",
            response.text
        );
    }
    let refused = failed_login(&app, &[]).await;
    let retry_after = assert_limited(&refused, "the fourth login");
    assert!(
        (1..=10).contains(&retry_after),
        "Retry-After {retry_after}, expected at most the 10 s interval"
    );
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("{retry_after} seconds")),
        "{}",
        refused.text
    );

    // The budget is the address's, not the endpoint's.
    let register = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "flood@example.com", "username": "flood", "password": PASSWORD}),
        )
        .await;
    assert_limited(&register, "register");
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": "x".repeat(43)}),
        )
        .await;
    assert_limited(&refresh, "refresh");
    let verify = app
        .post(
            "/api/v1/auth/verify-email",
            json!({"token": "x".repeat(43)}),
        )
        .await;
    assert_limited(&verify, "verify-email");

    // Ending sessions is never limited, nor is what lies outside the auth endpoints.
    for path in ["/api/v1/auth/logout", "/api/v1/auth/logout-all"] {
        let response = app.send(Method::POST, path, None, None).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let health = app.send(Method::GET, "/health", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
}

/// Once `Retry-After` has passed, the client is allowed again.
#[actix_web::test]
async fn the_client_is_allowed_again_after_retry_after() {
    // One at once, then one every 100 ms: Retry-After rounds up to 1 s.
    let app = app_with_limit("600", "1", &[]).await;
    assert_eq!(
        failed_login(&app, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refused = failed_login(&app, &[]).await;
    let retry_after = assert_limited(&refused, "the second login");
    assert_eq!(retry_after, 1);
    tokio::time::sleep(std::time::Duration::from_secs(retry_after)).await;
    assert_eq!(
        failed_login(&app, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// From a peer that is not a trusted proxy (by default none is), `X-Forwarded-For` and
/// `Forwarded` are ignored: rotating them does not give a fresh budget, and the session and
/// the audit trail record the peer's address, not the header's.
#[actix_web::test]
async fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
    let app = app_with_limit("6", "3", &[]).await;
    let spoof = [
        ("X-Forwarded-For", "203.0.113.77"),
        ("Forwarded", "for=203.0.113.77"),
    ];
    app.register("sam@example.com", "sam").await;
    let access = login_with(&app, "sam", &spoof).await;
    let listed = sessions(&app, &access).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0]["ip"], "127.0.0.1",
        "the session believed a spoofed header"
    );

    assert_eq!(
        failed_login(&app, &spoof).await.status,
        StatusCode::UNAUTHORIZED
    );
    for i in 0..5 {
        let rotated = format!("198.51.100.{i}");
        let forwarded = format!("for={rotated}");
        let response = failed_login(
            &app,
            &[("X-Forwarded-For", &rotated), ("Forwarded", &forwarded)],
        )
        .await;
        assert_limited(&response, &format!("a login claiming to be {rotated}"));
    }
    assert_limited(&failed_login(&app, &[]).await, "a login with no header");
}

/// Behind a trusted proxy (127.0.0.1 here), each forwarded client has a budget of its own,
/// keyed by the right-most address that is not a trusted proxy: what a client prepends to the
/// chain does not move it. Sessions and the audit trail record that client address.
#[actix_web::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let app = app_with_limit("6", "2", &[("UMS_TRUSTED_PROXIES", "127.0.0.1, ::1")]).await;
    let a = [("X-Forwarded-For", "203.0.113.1")];
    let b = [("X-Forwarded-For", "203.0.113.2")];
    for _ in 0..2 {
        assert_eq!(
            failed_login(&app, &a).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_limited(&failed_login(&app, &a).await, "client a, spent");
    // Whatever a prepends, its own address is the one the proxy appended.
    assert_limited(
        &failed_login(&app, &[("X-Forwarded-For", "198.51.100.9, 203.0.113.1")]).await,
        "client a, prepending another address",
    );
    assert_limited(
        &failed_login(&app, &[("X-Forwarded-For", "203.0.113.1, 127.0.0.1")]).await,
        "client a, through a second trusted proxy",
    );
    // Another client behind the same proxy, and the proxy itself, are not limited with it.
    assert_eq!(
        failed_login(&app, &b).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        failed_login(&app, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A refused request is not served: the registration a was refused is b's to make.
    let ann = json!({"email": "ann@example.com", "username": "ann", "password": PASSWORD});
    let refused = app
        .send_with(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(ann.clone()),
            &a,
        )
        .await;
    assert_limited(&refused, "client a registering");
    let registered = app
        .send_with(Method::POST, "/api/v1/auth/register", None, Some(ann), &b)
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );

    // The session and the audit trail record the forwarded client (client c: a fresh budget
    // for the registration and login), in RFC 7239 syntax this time.
    let c = [("Forwarded", r#"for="[2001:db8:cafe::17]:4711";proto=https"#)];
    let registered = app
        .send_with(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"email": "cleo@example.com", "username": "cleo", "password": PASSWORD})),
            &c,
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );
    let access = login_with(&app, "cleo", &c).await;
    let listed = sessions(&app, &access).await;
    assert_eq!(listed[0]["ip"], "2001:db8:cafe::17");
    let (root, _) = app.admin("root").await;
    let logins = app.get("/api/v1/audit?action=user.login", &root).await;
    assert_eq!(logins.status, StatusCode::OK, "{}", logins.text);
    let cleo = logins.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["actor_id"] == registered.body["id"])
        .unwrap_or_else(|| panic!("no login event of cleo: {}", logins.text));
    assert_eq!(cleo["ip"], "2001:db8:cafe::17");

    // IPv6 clients are counted by their /64: another address of cleo's /64 has spent
    // the same budget, another /64 has not.
    assert_limited(
        &failed_login(&app, &[("Forwarded", r#"for="[2001:db8:cafe::99]""#)]).await,
        "another address of the same /64",
    );
    assert_not_limited(
        &failed_login(&app, &[("Forwarded", r#"for="[2001:db8:beef::17]""#)]).await,
        "another /64",
    );
}

/// `UMS_RATE_LIMIT_ENABLED=false` turns the limit off (the per-name lockout stays).
#[actix_web::test]
async fn the_limit_can_be_turned_off() {
    let app = app_with_limit("1", "1", &[("UMS_RATE_LIMIT_ENABLED", "false")]).await;
    for i in 0..10 {
        let response = failed_login(&app, &[]).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
}

/// On the production stack the budget is kept in Redis, shared by every instance: a client
/// that spent it on one is refused by the other. (On the embedded stack each instance keeps
/// its own.)
#[actix_web::test]
async fn instances_share_the_budget_on_the_production_stack() {
    let app = app_with_limit("6", "2", &[]).await;
    let sibling = app.spawn_sibling().await;
    assert_eq!(
        failed_login(&app, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        failed_login(&sibling, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let on_app = failed_login(&app, &[]).await;
    let on_sibling = failed_login(&sibling, &[]).await;
    match app.stack {
        Stack::Production => {
            assert_limited(&on_app, "the first instance, the budget spent on both");
            assert_limited(&on_sibling, "the second instance, the budget spent on both");
        }
        Stack::Embedded => {
            assert_eq!(on_app.status, StatusCode::UNAUTHORIZED, "{}", on_app.text);
            assert_eq!(
                on_sibling.status,
                StatusCode::UNAUTHORIZED,
                "{}",
                on_sibling.text
            );
            assert_limited(&failed_login(&app, &[]).await, "the first instance, spent");
            assert_limited(
                &failed_login(&sibling, &[]).await,
                "the second instance, spent",
            );
        }
    }
}

/// Redis down: the limit falls back to a stricter one in process (a quarter of the rate, so
/// 2 of a burst of 8), never to none; Redis back: the shared limit applies again, without a
/// restart. (Its own `redis-server`, on either stack.)
#[actix_web::test]
async fn while_redis_is_down_a_stricter_limit_applies() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(
        Stack::Embedded,
        dir,
        &[
            ("REDIS_URL", &redis.url()),
            ("UMS_REDIS_TIMEOUT_MS", "200"),
            ("UMS_RATE_LIMIT_AUTH_PER_MINUTE", "8"),
            ("UMS_RATE_LIMIT_AUTH_BURST", "8"),
        ],
    )
    .await;
    // A request that needs nothing of Redis but the limit: a verification token nobody has.
    let verify = async || {
        app.post(
            "/api/v1/auth/verify-email",
            json!({"token": "x".repeat(43)}),
        )
        .await
    };
    assert_eq!(verify().await.status, StatusCode::UNPROCESSABLE_ENTITY);

    redis.stop();
    for i in 1..=2 {
        let response = verify().await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "request {i} within the fallback's burst: {}",
            response.text
        );
    }
    for _ in 0..5 {
        assert_limited(&verify().await, "beyond the fallback's burst of 2");
    }

    redis.restart();
    // The fallback calls Redis again within about a second; Redis restarted empty.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let response = verify().await;
        if response.status != StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(
                response.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{}",
                response.text
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the shared limit did not come back with Redis"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
