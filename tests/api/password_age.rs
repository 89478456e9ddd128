//! Password age (`UMS_PASSWORD_MAX_AGE_DAYS`): past it, login still succeeds but says
//! `password_change_required`, and the token is good only for reading one's account, changing
//! the password and logging out, until the password is changed; then the same token works
//! everywhere again.
//!
//! A password cannot be made old by waiting, so [`age_password`] sets its time back in the
//! store the app runs on, through the store's own port (`change_password` with the same hash
//! and a past `at`), before the user's first authenticated request (so no cache holds the
//! user yet).

use actix_web::http::{Method, StatusCode};
use chrono::{TimeDelta, Utc};
use domain::model::{Journal, UserId};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Stack, TestApp, TestResponse, spawn_app_with};

const PROBLEM: &str = "urn:ums:problem:password-change-required";
const NEW_PASSWORD: &str = "another fine passphrase 7";

async fn app_with_max_age(days: &str) -> TestApp {
    spawn_app_with(
        Stack::from_env(),
        tempfile::tempdir().expect("temp dir"),
        &[("UMS_PASSWORD_MAX_AGE_DAYS", days)],
    )
    .await
}

/// Makes the password of `user` (a registration's response body) `days` old, keeping it.
async fn age_password(app: &TestApp, user: &Value, days: i64) {
    let id = UserId::from_uuid(user["id"].as_str().unwrap().parse().unwrap());
    let store = api_actix::startup::open_store(&app.settings())
        .await
        .expect("open the app's store");
    let credentials = store
        .users
        .find_credentials_by_id(id)
        .await
        .unwrap()
        .expect("the user exists");
    store
        .users
        .change_password(
            id,
            credentials.password_hash.clone(),
            credentials.password_hash,
            None,
            Utc::now() - TimeDelta::days(days),
            Journal::default(),
        )
        .await
        .expect("set the password's time back");
}

fn assert_change_required(response: &TestResponse, what: &str) {
    assert_eq!(
        response.status,
        StatusCode::FORBIDDEN,
        "{what}: {}",
        response.text
    );
    assert_eq!(response.body["type"], PROBLEM, "{what}");
    let detail = response.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("POST /api/v1/users/me/password"),
        "{what}: the detail says how to proceed: {detail}"
    );
}

/// Requests the overdue token must be refused, and allowed again once the password changed,
/// with the status each then answers.
fn restricted() -> Vec<(Method, &'static str, Option<Value>, StatusCode)> {
    vec![
        (
            Method::PATCH,
            "/api/v1/users/me",
            Some(json!({"first_name": "Olga"})),
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/v1/users/me/sessions",
            None,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/v1/users/me/tenants",
            None,
            StatusCode::OK,
        ),
        (Method::GET, "/api/v1/tenants", None, StatusCode::OK),
        // Refused for the password before the role is looked at.
        (Method::GET, "/api/v1/users", None, StatusCode::FORBIDDEN),
    ]
}

#[actix_web::test]
async fn an_overdue_password_confines_the_token_until_it_is_changed() {
    let app = app_with_max_age("30").await;
    let olga = app.register("olga@example.com", "olga").await;
    age_password(&app, &olga, 31).await;

    let login = app.login("olga", PASSWORD).await;
    assert_eq!(login["password_change_required"], true, "{login}");
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();

    let me = app.get("/api/v1/users/me", &access).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["username"], "olga");
    for (method, path, body, _) in restricted() {
        let response = app.send(method.clone(), path, Some(&access), body).await;
        assert_change_required(&response, &format!("{method} {path}"));
    }
    // Closing the account is refused too, and nothing is closed.
    let close = app
        .send(
            Method::DELETE,
            "/api/v1/users/me",
            Some(&access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_change_required(&close, "DELETE /api/v1/users/me");
    assert_eq!(
        app.get("/api/v1/users/me", &access).await.status,
        StatusCode::OK
    );

    // A refresh says so too, and its token is as confined.
    let refreshed = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    assert_eq!(refreshed.body["password_change_required"], true);
    let refreshed_access = refreshed.body["access_token"].as_str().unwrap().to_owned();
    assert_change_required(
        &app.get("/api/v1/tenants", &refreshed_access).await,
        "the refreshed token",
    );

    let changed = app
        .send(
            Method::POST,
            "/api/v1/users/me/password",
            Some(&access),
            Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.text);

    // The very same token works everywhere at once.
    for (method, path, body, status) in restricted() {
        let response = app.send(method.clone(), path, Some(&access), body).await;
        assert_eq!(
            response.status, status,
            "{method} {path}: {}",
            response.text
        );
        assert_ne!(response.body["type"], PROBLEM, "{method} {path}");
    }
    let login = app.login("olga", NEW_PASSWORD).await;
    assert_eq!(login["password_change_required"], false, "{login}");
}

#[actix_web::test]
async fn a_password_within_the_age_and_any_password_without_the_setting_are_unrestricted() {
    let app = app_with_max_age("30").await;
    let young = app.register("young@example.com", "young").await;
    age_password(&app, &young, 29).await;
    let login = app.login("young", PASSWORD).await;
    assert_eq!(login["password_change_required"], false, "{login}");
    let access = login["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/users/me/sessions", access).await.status,
        StatusCode::OK
    );

    let unset = spawn_app_with(
        Stack::from_env(),
        tempfile::tempdir().expect("temp dir"),
        &[],
    )
    .await;
    let ancient = unset.register("ancient@example.com", "ancient").await;
    age_password(&unset, &ancient, 3650).await;
    let login = unset.login("ancient", PASSWORD).await;
    assert_eq!(login["password_change_required"], false, "{login}");
    let access = login["access_token"].as_str().unwrap();
    let patched = unset
        .send(
            Method::PATCH,
            "/api/v1/users/me",
            Some(access),
            Some(json!({"first_name": "Old"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
}

#[actix_web::test]
async fn an_overdue_password_does_not_keep_its_owner_from_logging_out() {
    let app = app_with_max_age("1").await;
    let user = app.register("leaving@example.com", "leaving").await;
    age_password(&app, &user, 2).await;
    let login = app.login("leaving", PASSWORD).await;
    assert_eq!(login["password_change_required"], true);
    let access = login["access_token"].as_str().unwrap();

    let logout = app
        .send(Method::POST, "/api/v1/auth/logout", Some(access), None)
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.text);
    assert_eq!(
        app.get("/api/v1/users/me", access).await.status,
        StatusCode::UNAUTHORIZED,
        "the session has ended"
    );
}

/// Introspection reports an overdue user's token as active, saying it must change the
/// password; an administrator whose own password is overdue may not introspect until they
/// change it.
#[actix_web::test]
async fn introspection_reports_the_restriction_and_is_itself_restricted() {
    let app = app_with_max_age("30").await;
    let olga = app.register("olga@example.com", "olga").await;
    age_password(&app, &olga, 31).await;
    let login = app.login("olga", PASSWORD).await;
    let overdue_token = login["access_token"].as_str().unwrap().to_owned();
    let (admin, admin_id) = app.admin("root").await;

    let answer = app
        .send(
            Method::POST,
            "/api/v1/auth/introspect",
            Some(&admin),
            Some(json!({"token": overdue_token})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["active"], true, "a valid token is active");
    assert_eq!(answer.body["password_change_required"], true);
    let answer = app
        .send(
            Method::POST,
            "/api/v1/auth/introspect",
            Some(&admin),
            Some(json!({"token": admin})),
        )
        .await;
    assert_eq!(
        answer.body["password_change_required"], false,
        "{}",
        answer.text
    );

    // The administrator's own password falls due. It is set back behind the app's user
    // cache, which the next login invalidates (a login changes `last_login_at`).
    age_password(&app, &json!({"id": admin_id}), 31).await;
    let admin_login = app.login("root", PASSWORD).await;
    assert_eq!(admin_login["password_change_required"], true);
    let overdue_admin = admin_login["access_token"].as_str().unwrap();
    let refused = app
        .send(
            Method::POST,
            "/api/v1/auth/introspect",
            Some(overdue_admin),
            Some(json!({"token": overdue_token})),
        )
        .await;
    assert_change_required(&refused, "introspection by an overdue administrator");
}
