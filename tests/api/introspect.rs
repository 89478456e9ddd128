//! `POST /api/v1/auth/introspect` (RFC 7662) as a resource server uses it: a service account
//! (HTTP Basic) or a system administrator (Bearer) asks whether a token is active; anything
//! but an active access token is exactly `{"active": false}`, and the roles reported are the
//! live ones.

use actix_web::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, PASSWORD, TestApp, TestResponse, spawn_app};

const PATH: &str = "/api/v1/auth/introspect";

/// A service account created as `ums create-service-client` does; (client id, secret).
pub(crate) async fn service_client(app: &TestApp, name: &str) -> (String, String) {
    use secrecy::ExposeSecret as _;
    let services = api_actix::startup::compose(&app.settings())
        .await
        .expect("compose the services");
    let created = services
        .service_accounts
        .create_service_client(
            domain::services::NewServiceClient {
                name: name.to_owned(),
                description: None,
            },
            &domain::services::command_line(),
        )
        .await
        .expect("create the service account");
    (
        created.account.client_id.to_string(),
        created.secret.expose_secret().to_owned(),
    )
}

/// The `Authorization` header of HTTP Basic credentials.
pub(crate) fn basic(client_id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}")))
}

/// Introspects `token` with `authorization` as the `Authorization` header.
async fn ask(app: &TestApp, authorization: &str, token: &str) -> TestResponse {
    app.send_with(
        Method::POST,
        PATH,
        None,
        Some(json!({ "token": token })),
        &[("Authorization", authorization)],
    )
    .await
}

/// Introspects as the service account, expecting an answer; returns its body.
async fn answer(app: &TestApp, credentials: &(String, String), token: &str) -> Value {
    let response = ask(app, &basic(&credentials.0, &credentials.1), token).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    response.body
}

/// Panics unless `body` is exactly `{"active": false}`.
fn assert_inactive(body: &Value, what: &str) {
    assert_eq!(
        body,
        &json!({"active": false}),
        "{what}: nothing but active: false"
    );
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

fn access(tokens: &Value) -> String {
    tokens["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

#[actix_web::test]
async fn an_active_token_is_described_with_its_live_roles() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    let service = service_client(&app, "billing").await;

    // An unscoped token.
    let ada = app.register("ada@example.com", "ada").await;
    let ada_id = ada["id"].as_str().unwrap().to_owned();
    let tokens = app.login("ada", PASSWORD).await;
    let token = access(&tokens);
    let issued = claims(&token);
    let body = answer(&app, &service, &token).await;
    assert_eq!(
        body,
        json!({
            "active": true,
            "token_type": "Bearer",
            "sub": ada_id,
            "username": "ada",
            "role": "user",
            "tenant": null,
            "tenant_role": null,
            "session_id": issued["sid"],
            "jti": issued["jti"],
            "iat": issued["iat"],
            "exp": issued["exp"],
            "password_change_required": false,
        })
    );

    // A token scoped to a tenant reports the tenant and the role held there now.
    let tenant = app
        .send(
            Method::POST,
            "/api/v1/tenants",
            Some(&root),
            Some(json!({"name": "Lab", "slug": "lab"})),
        )
        .await;
    assert_eq!(tenant.status, StatusCode::CREATED, "{}", tenant.text);
    let tenant_id = tenant.body["id"].as_str().unwrap().to_owned();
    let added = app
        .send(
            Method::POST,
            "/api/v1/tenants/lab/members",
            Some(&root),
            Some(json!({"user_id": ada_id, "role": "member"})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    let scoped = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "ada", "password": PASSWORD, "tenant": "lab"}),
        )
        .await;
    assert_eq!(scoped.status, StatusCode::OK, "{}", scoped.text);
    let scoped = access(&scoped.body);
    let body = answer(&app, &service, &scoped).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["tenant"], tenant_id.as_str());
    assert_eq!(body["tenant_role"], "member");
    assert_eq!(body["session_id"], claims(&scoped)["sid"]);

    // Demoted in the tenant: the same token now reports the new role, not its claim.
    let demoted = app
        .send(
            Method::PATCH,
            &format!("/api/v1/tenants/lab/members/{ada_id}"),
            Some(&root),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text);
    let body = answer(&app, &service, &scoped).await;
    assert_eq!(body["tenant_role"], "viewer");
    assert_eq!(
        claims(&scoped)["tenant_role"],
        "member",
        "the claim says otherwise"
    );

    // Removed from the tenant: the scoped token is inactive; the unscoped one is not.
    let removed = app
        .send(
            Method::DELETE,
            &format!("/api/v1/tenants/lab/members/{ada_id}"),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    assert_inactive(&answer(&app, &service, &scoped).await, "membership ended");
    assert_eq!(answer(&app, &service, &token).await["active"], true);

    // A system administrator may ask too, with a bearer token.
    let by_admin = ask(&app, &format!("Bearer {root}"), &token).await;
    assert_eq!(by_admin.status, StatusCode::OK, "{}", by_admin.text);
    assert_eq!(by_admin.body["sub"], ada_id.as_str());
}

#[actix_web::test]
async fn logged_out_deactivated_and_deleted_users_tokens_are_inactive() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    let service = service_client(&app, "billing").await;

    // Logout.
    let (bea, _) = app.signed_in("bea").await;
    assert_eq!(answer(&app, &service, &bea).await["active"], true);
    let out = app
        .send(Method::POST, "/api/v1/auth/logout", Some(&bea), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_inactive(&answer(&app, &service, &bea).await, "after logout");

    // Deactivation.
    let cy = app.register("cyd@example.com", "cyd").await;
    let cy_path = format!("/api/v1/users/{}", cy["id"].as_str().unwrap());
    let cy_token = access(&app.login("cyd", PASSWORD).await);
    assert_eq!(answer(&app, &service, &cy_token).await["active"], true);
    let off = app
        .send(
            Method::PATCH,
            &cy_path,
            Some(&root),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    assert_inactive(
        &answer(&app, &service, &cy_token).await,
        "after deactivation",
    );

    // Deletion.
    let di = app.register("dia@example.com", "dia").await;
    let di_path = format!("/api/v1/users/{}", di["id"].as_str().unwrap());
    let di_token = access(&app.login("dia", PASSWORD).await);
    assert_eq!(answer(&app, &service, &di_token).await["active"], true);
    let gone = app.send(Method::DELETE, &di_path, Some(&root), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    assert_inactive(&answer(&app, &service, &di_token).await, "after deletion");
}

#[actix_web::test]
async fn anything_but_an_active_access_token_is_inactive() {
    let app = spawn_app().await;
    let service = service_client(&app, "billing").await;
    let (token, refresh) = app.signed_in("eve").await;
    let issued = claims(&token);
    let sign = |claims: &Value, secret: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    // The same claims re-signed with the right key are active: each forgery below is
    // inactive for the one reason it names.
    assert_eq!(
        answer(&app, &service, &sign(&issued, JWT_SECRET)).await["active"],
        true
    );
    let wrong_key = sign(&issued, "another-secret-that-is-long-enough-0123456789");
    let mut expired = issued.clone();
    let now = chrono::Utc::now().timestamp();
    expired["iat"] = json!(now - 3600);
    expired["nbf"] = json!(now - 3600);
    expired["exp"] = json!(now - 1800);
    let expired = sign(&expired, JWT_SECRET);
    let mut foreign = issued.clone();
    foreign["aud"] = json!("some-other-service");
    let foreign = sign(&foreign, JWT_SECRET);
    let mut other_issuer = issued.clone();
    other_issuer["iss"] = json!("https://elsewhere.example");
    let other_issuer = sign(&other_issuer, JWT_SECRET);
    let mut unknown_session = issued.clone();
    unknown_session["sid"] = json!(uuid::Uuid::now_v7().to_string());
    let unknown_session = sign(&unknown_session, JWT_SECRET);

    for (what, candidate) in [
        ("signed with another key", wrong_key.as_str()),
        ("expired", expired.as_str()),
        ("for another audience", foreign.as_str()),
        ("of another issuer", other_issuer.as_str()),
        ("of a session that does not exist", unknown_session.as_str()),
        ("a refresh token", refresh.as_str()),
        ("garbage", "not.a.jwt"),
        ("empty", ""),
        ("a service secret", service.1.as_str()),
    ] {
        assert_inactive(&answer(&app, &service, candidate).await, what);
    }
}

#[actix_web::test]
async fn only_service_accounts_and_system_administrators_may_ask() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    let (client_id, secret) = service_client(&app, "billing").await;
    let (user, _) = app.signed_in("fay").await;

    // A wrong secret, an unknown client and malformed Basic credentials: 401, Basic.
    for (what, authorization) in [
        ("wrong secret", basic(&client_id, "not-the-secret")),
        ("no secret", basic(&client_id, "")),
        ("unknown client", basic("ums_sa_nobody", &secret)),
        ("another client's form", basic("billing", &secret)),
        ("not base64", "Basic !!!".to_owned()),
        ("no colon", format!("Basic {}", STANDARD.encode(&client_id))),
    ] {
        let response = ask(&app, &authorization, &user).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            response
                .header("www-authenticate")
                .is_some_and(|c| c.starts_with("Basic")),
            "{what}: {:?}",
            response.header("www-authenticate")
        );
        assert!(!response.text.contains(&secret), "{what}");
    }

    // No credentials, or another scheme: 401 offering both schemes.
    let none = app
        .send(Method::POST, PATH, None, Some(json!({"token": user})))
        .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    let challenges: Vec<&str> = none
        .headers
        .get_all("www-authenticate")
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer"))
            && challenges.iter().any(|c| c.starts_with("Basic")),
        "{challenges:?}"
    );
    let digest = ask(&app, "Digest username=\"x\"", &user).await;
    assert_eq!(digest.status, StatusCode::UNAUTHORIZED);

    // An invalid bearer token: 401, Bearer.
    let bad_bearer = ask(&app, "Bearer not.a.jwt", &user).await;
    assert_eq!(bad_bearer.status, StatusCode::UNAUTHORIZED);
    assert!(
        bad_bearer
            .header("www-authenticate")
            .is_some_and(|c| c.contains("invalid_token")),
        "{:?}",
        bad_bearer.header("www-authenticate")
    );

    // An ordinary user's token: 403, recorded.
    let forbidden = ask(&app, &format!("Bearer {user}"), &user).await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.text
    );
    let denied = app.get("/api/v1/audit?action=access.denied", &root).await;
    assert_eq!(denied.status, StatusCode::OK, "{}", denied.text);
    assert!(
        denied.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["details"]["operation"] == "auth.introspect"),
        "{}",
        denied.text
    );

    // The right secret and an administrator's token are answered.
    assert_eq!(
        ask(&app, &basic(&client_id, &secret), &user).await.status,
        StatusCode::OK
    );
    assert_eq!(
        ask(&app, &format!("Bearer {root}"), &user).await.status,
        StatusCode::OK
    );

    // The creation was recorded, with the client id and without the secret.
    let created = app
        .get("/api/v1/audit?action=service_account.created", &root)
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.body["total"], 1, "{}", created.text);
    assert_eq!(created.body["items"][0]["details"]["client_id"], client_id);
    assert!(!created.text.contains(&secret), "{}", created.text);
}

#[actix_web::test]
async fn the_body_is_json_or_a_form_and_judged_after_authentication() {
    let app = spawn_app().await;
    let (client_id, secret) = service_client(&app, "billing").await;
    let (user, _) = app.signed_in("gus").await;
    let authorization = basic(&client_id, &secret);

    // RFC 7662's own form.
    let form = format!("token={user}&token_type_hint=access_token");
    let by_form = app
        .send_raw(
            Method::POST,
            PATH,
            None,
            Some((form.into_bytes(), "application/x-www-form-urlencoded")),
            &[("Authorization", authorization.as_str())],
        )
        .await;
    assert_eq!(by_form.status, StatusCode::OK, "{}", by_form.text);
    assert_eq!(by_form.body["active"], true);
    assert!(
        !by_form.text.contains(&user) && !by_form.text.contains(&secret),
        "no token or secret is echoed: {}",
        by_form.text
    );

    // Missing or unknown fields are 422, a body of another type 400...
    for (body, content_type, status) in [
        (
            b"{}".to_vec(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            br#"{"token": "x", "scope": "all"}"#.to_vec(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            b"token_type_hint=access_token".to_vec(),
            "application/x-www-form-urlencoded",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (b"token=x".to_vec(), "text/plain", StatusCode::BAD_REQUEST),
        (b"{".to_vec(), "application/json", StatusCode::BAD_REQUEST),
    ] {
        let response = app
            .send_raw(
                Method::POST,
                PATH,
                None,
                Some((body.clone(), content_type)),
                &[("Authorization", authorization.as_str())],
            )
            .await;
        assert_eq!(
            response.status,
            status,
            "{} {content_type}: {}",
            String::from_utf8_lossy(&body),
            response.text
        );
    }

    // ...but only for an authenticated caller: a bad body with bad credentials is a 401.
    let unauthenticated = app
        .send_raw(
            Method::POST,
            PATH,
            None,
            Some((b"{}".to_vec(), "application/json")),
            &[("Authorization", basic(&client_id, "wrong").as_str())],
        )
        .await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
}

/// The `access.denied` records of refused introspections, as a system administrator lists
/// them.
async fn introspections_denied(app: &TestApp, root: &str) -> usize {
    let denied = app.get("/api/v1/audit?action=access.denied", root).await;
    assert_eq!(denied.status, StatusCode::OK, "{}", denied.text);
    denied.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["operation"] == "auth.introspect")
        .count()
}

/// Authorization comes before the body: an ordinary user's bearer token is 403 (and recorded
/// as such) whatever the body, so the body's verdict tells a caller who may not ask nothing;
/// an administrator's, allowed, then has the body judged.
#[actix_web::test]
async fn a_caller_who_may_not_ask_is_refused_whatever_the_body() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    let (user, _) = app.signed_in("hal").await;
    let oversized = format!("{{\"token\": \"{}\"}}", "y".repeat(70 * 1024)).into_bytes();
    let bodies: [(&[u8], &str, StatusCode); 5] = [
        (b"{}", "application/json", StatusCode::UNPROCESSABLE_ENTITY),
        (
            &oversized,
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            br#"{"token": "x", "scope": "all"}"#,
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (b"{", "application/json", StatusCode::BAD_REQUEST),
        (b"token=x", "text/plain", StatusCode::BAD_REQUEST),
    ];
    for (i, (body, content_type, _)) in bodies.iter().enumerate() {
        let bearer = format!("Bearer {user}");
        let response = app
            .send_raw(
                Method::POST,
                PATH,
                None,
                Some((body.to_vec(), content_type)),
                &[("Authorization", bearer.as_str())],
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::FORBIDDEN,
            "{} {content_type}: {}",
            String::from_utf8_lossy(body),
            response.text
        );
        assert_eq!(
            introspections_denied(&app, &root).await,
            i + 1,
            "the refusal of {} was not recorded",
            String::from_utf8_lossy(body)
        );
    }
    // An administrator may ask: the body is judged, and nothing is recorded as denied.
    for (body, content_type, status) in bodies {
        let bearer = format!("Bearer {root}");
        let response = app
            .send_raw(
                Method::POST,
                PATH,
                None,
                Some((body.to_vec(), content_type)),
                &[("Authorization", bearer.as_str())],
            )
            .await;
        assert_eq!(
            response.status,
            status,
            "{} {content_type}: {}",
            String::from_utf8_lossy(body),
            response.text
        );
    }
    assert_eq!(introspections_denied(&app, &root).await, bodies.len());
}
