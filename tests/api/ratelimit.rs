//! The per-client-address rate limit of the auth endpoints, on whichever stack
//! `UMS_TEST_STACK` names: a flood from one address is refused with 429 and `Retry-After`,
//! forwarded headers are believed only from trusted proxies (and then each forwarded client
//! has its own budget, and is what sessions and the audit trail record, whatever broken
//! header it sent of its own), IPv6 clients are counted by their /64 and the /56 around it,
//! logout and refresh are never limited, introspection counts only its failed
//! authentications, and the limit is shared by the instances of the production stack.
//!
//! Every test spawns its app with a small budget of its own (the harness's default is one no
//! test spends).

use actix_web::http::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{PASSWORD, Stack, TestApp, TestResponse, spawn_app_with};
use crate::introspect::{basic, service_client};
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
    let verify = app
        .post(
            "/api/v1/auth/verify-email",
            json!({"token": "x".repeat(43)}),
        )
        .await;
    assert_limited(&verify, "verify-email");

    // Ending sessions and refreshing are never limited, nor is what lies outside the auth
    // endpoints.
    for path in ["/api/v1/auth/logout", "/api/v1/auth/logout-all"] {
        let response = app.send(Method::POST, path, None, None).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": "x".repeat(43)}),
        )
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED, "{}", refresh.text);
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
    let app = app_with_limit("6", "2", BEHIND_XFF_PROXY).await;
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
    // for the registration and login), an IPv6 address with a port this time.
    let c = [("X-Forwarded-For", "[2001:db8:cafe::17]:4711")];
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
        &failed_login(&app, &[("X-Forwarded-For", "2001:db8:cafe::99")]).await,
        "another address of the same /64",
    );
    assert_not_limited(
        &failed_login(&app, &[("X-Forwarded-For", "2001:db8:cafe:1::17")]).await,
        "another /64 of the same /56",
    );
    assert_not_limited(
        &failed_login(&app, &[("X-Forwarded-For", "2001:db8:beef::17")]).await,
        "another /48",
    );
}

/// Trusts the test's own address (the "proxy"), which writes `X-Forwarded-For`.
const BEHIND_XFF_PROXY: &[(&str, &str)] = &[
    ("UMS_TRUSTED_PROXIES", "127.0.0.1, ::1"),
    ("UMS_FORWARDED_HEADER", "x-forwarded-for"),
];

/// A request no limited endpoint does any work for (a verification token nobody has: 422),
/// with `headers`.
async fn cheap(app: &TestApp, headers: &[(&str, &str)]) -> TestResponse {
    app.send_with(
        Method::POST,
        "/api/v1/auth/verify-email",
        None,
        Some(json!({"token": "x".repeat(43)})),
        headers,
    )
    .await
}

/// An IPv6 client is counted by its /64 and, sixteen times as generously, by its /56: one
/// address from each of the 256 /64s of a /56 does not get 256 budgets, but about 16 (one
/// more is earned back every 3.75 s); another /56 of the same /48 has its own. (That the /48
/// binds at 256 /64 budgets is shown in the unit tests, on a clock that does not move.)
#[actix_web::test]
async fn rotating_ipv6_64s_does_not_escape_the_56() {
    // One at once per /64, refilled over a minute; 16 per /56.
    let app = app_with_limit("1", "1", BEHIND_XFF_PROXY).await;
    let mut allowed = 0;
    for net in 0..48 {
        let address = format!("2001:db8:5:{net:x}::1");
        let response = cheap(&app, &[("X-Forwarded-For", &address)]).await;
        if response.status == StatusCode::TOO_MANY_REQUESTS {
            assert_limited(&response, &address);
        } else {
            assert_eq!(
                response.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{address}: {}",
                response.text
            );
            allowed += 1;
        }
    }
    assert!(
        (16..=17).contains(&allowed),
        "48 /64s of one /56 were allowed {allowed} requests, not the /56's 16"
    );
    // A /64 that has not asked yet is refused: its /56 is spent.
    assert_limited(
        &cheap(&app, &[("X-Forwarded-For", "2001:db8:5:ff::1")]).await,
        "a fresh /64 of the spent /56",
    );
    // Another /56 of the same /48, and another /48, are not.
    for other in ["2001:db8:5:100::1", "2001:db8:6::1"] {
        assert_eq!(
            cheap(&app, &[("X-Forwarded-For", other)]).await.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{other}"
        );
    }
}

/// Sends `POST /api/v1/auth/verify-email` with an invalid token and the header `name` with
/// the raw bytes `value` (which `TestApp::send_with` cannot send: they are not a `&str`);
/// returns the status.
async fn cheap_with_raw_header(app: &TestApp, name: &str, value: &[u8]) -> StatusCode {
    let value = actix_web::http::header::HeaderValue::from_bytes(value).expect("a header value");
    awc::Client::default()
        .post(format!("{}/api/v1/auth/verify-email", app.base))
        .insert_header((name, value))
        .send_json(&json!({"token": "x".repeat(43)}))
        .await
        .expect("the request is answered")
        .status()
}

/// The review's cases, end to end: a client behind the trusted proxy that sends a header of
/// its own that cannot be read (a byte that is not ASCII in `X-Forwarded-For`, an unterminated
/// quote in `Forwarded`) is still counted as the address the proxy appended, not as the
/// proxy: the proxy's own budget (one request here) is left alone.
#[actix_web::test]
async fn a_clients_unreadable_header_does_not_make_it_the_proxy() {
    let app = app_with_limit("1", "1", BEHIND_XFF_PROXY).await;
    let xff = "X-Forwarded-For";
    assert_eq!(
        cheap_with_raw_header(&app, xff, b"\xff, 203.0.113.51").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        cheap_with_raw_header(&app, xff, b"1.2.3.4\xfe, 203.0.113.52").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Each was counted as itself: a second request of each is refused...
    assert_eq!(
        cheap_with_raw_header(&app, xff, b"\xff\xff, 203.0.113.51").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_limited(
        &cheap(&app, &[(xff, "203.0.113.52")]).await,
        "the second client, spent",
    );
    // ...and the proxy still has its own one.
    assert_eq!(
        cheap(&app, &[]).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_limited(&cheap(&app, &[]).await, "the proxy itself, spent");
    // Only X-Forwarded-For is read: a client's Forwarded, broken or not, changes nothing.
    assert_limited(
        &cheap(
            &app,
            &[("Forwarded", "for=198.51.100.9"), (xff, "203.0.113.51")],
        )
        .await,
        "the first client, sending a Forwarded of its own",
    );

    // Behind a proxy that writes RFC 7239 `Forwarded`: an unterminated quote the client
    // sent cannot swallow the element the proxy appended.
    let app = app_with_limit(
        "1",
        "1",
        &[
            ("UMS_TRUSTED_PROXIES", "127.0.0.1, ::1"),
            ("UMS_FORWARDED_HEADER", "forwarded"),
        ],
    )
    .await;
    let broken = [("Forwarded", r#"for="1.2.3.4, for=203.0.113.61"#)];
    assert_eq!(
        cheap(&app, &broken).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_limited(&cheap(&app, &broken).await, "the client, spent");
    let escaped = [("Forwarded", r#"for=1.2.3.4;x="\", for=203.0.113.62"#)];
    assert_eq!(
        cheap(&app, &escaped).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // X-Forwarded-For is not read in this mode: this is the proxy, which has its budget.
    assert_eq!(
        cheap(&app, &[("X-Forwarded-For", "203.0.113.63")])
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_limited(&cheap(&app, &[]).await, "the proxy itself, spent");
}

/// Refreshing and introspecting draw nothing from the address's budget: neither can guess
/// anything (they need 256-bit secrets or valid tokens), and limiting them refuses a resource
/// server that introspects every request, or an office of SPAs refreshing behind one NAT.
/// Introspection counts its failed authentications instead (a wrong client secret, an
/// invalid bearer token; not a request without credentials), and refuses every request of an
/// address whose budget is spent, the right credentials included.
#[actix_web::test]
async fn refresh_and_introspection_draw_only_failures_from_the_budget() {
    let app = app_with_limit("6", "3", BEHIND_XFF_PROXY).await;
    // From the test's own address (the proxy's budget).
    let (root, _) = app.admin("root").await;
    let (client_id, secret) = service_client(&app, "billing").await;
    let good = basic(&client_id, &secret);

    // Client a: register and log in (2 of 3), then refresh 20 times.
    let a = [("X-Forwarded-For", "203.0.113.10")];
    let registered = app
        .send_with(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"email": "ann@example.com", "username": "ann", "password": PASSWORD})),
            &a,
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text
    );
    let logged_in = app
        .send_with(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "ann", "password": PASSWORD})),
            &a,
        )
        .await;
    assert_eq!(logged_in.status, StatusCode::OK, "{}", logged_in.text);
    let mut refresh = logged_in.body["refresh_token"].as_str().unwrap().to_owned();
    for i in 1..=20 {
        let response = app
            .send_with(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": refresh})),
                &a,
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "refresh {i}: {}",
            response.text
        );
        refresh = response.body["refresh_token"].as_str().unwrap().to_owned();
    }
    let access = app
        .send_with(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
            &a,
        )
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // One left: a failed login, then the budget is spent.
    assert_eq!(
        failed_login(&app, &a).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_limited(&failed_login(&app, &a).await, "client a, spent");
    // A spent budget refuses introspection too: nothing is checked for it.
    let ask = |authorization: String, client: &'static str| {
        let app = &app;
        let access = access.clone();
        async move {
            app.send_with(
                Method::POST,
                "/api/v1/auth/introspect",
                None,
                Some(json!({ "token": access })),
                &[
                    ("Authorization", authorization.as_str()),
                    ("X-Forwarded-For", client),
                ],
            )
            .await
        }
    };
    assert_limited(
        &ask(good.clone(), "203.0.113.10").await,
        "introspection from the spent client a",
    );

    // Client b, a resource server: introspects 30 times with its secret, and an
    // administrator 10 times with a bearer token; none of it is counted.
    for i in 1..=30 {
        let response = ask(good.clone(), "203.0.113.20").await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "introspection {i}: {}",
            response.text
        );
        assert_eq!(response.body["active"], true);
    }
    for i in 1..=10 {
        let response = ask(format!("Bearer {root}"), "203.0.113.20").await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "as root, {i}: {}",
            response.text
        );
    }
    // Its failed authentications are counted: three wrong secrets spend the budget, and then
    // even the right one is refused, as is a login from the address.
    for what in ["wrong secret", "unknown client", "not base64"] {
        let authorization = match what {
            "wrong secret" => basic(&client_id, "not-the-secret"),
            "unknown client" => basic("ums_sa_nobody", &secret),
            _ => "Basic !!!".to_owned(),
        };
        let response = ask(authorization, "203.0.113.20").await;
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            response.text
        );
    }
    let refused = ask(good.clone(), "203.0.113.20").await;
    let retry_after = assert_limited(&refused, "the right secret after three failures");
    assert!((1..=10).contains(&retry_after), "Retry-After {retry_after}");
    assert_limited(
        &failed_login(&app, &[("X-Forwarded-For", "203.0.113.20")]).await,
        "a login from the address whose introspections failed",
    );

    // Client c: invalid bearer tokens count too.
    for _ in 0..3 {
        let response = ask("Bearer not.a.jwt".to_owned(), "203.0.113.30").await;
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "{}",
            response.text
        );
    }
    assert_limited(
        &ask(format!("Bearer {root}"), "203.0.113.30").await,
        "an administrator's token after three invalid ones",
    );

    // Client d: requests without credentials guess nothing and are not counted.
    for _ in 0..6 {
        let response = app
            .send_with(
                Method::POST,
                "/api/v1/auth/introspect",
                None,
                Some(json!({ "token": access })),
                &[("X-Forwarded-For", "203.0.113.40")],
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "{}",
            response.text
        );
    }
    assert_eq!(
        ask(good.clone(), "203.0.113.40").await.status,
        StatusCode::OK
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
