//! Password guessing: an account's e-mail address and username share one window of login
//! failures (and its lock answers exactly as a wrong password does, so that it tells nothing
//! about which names belong together), and a stolen access token gives no unlimited guesses
//! at the current password through `POST /users/me/password`.

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{PASSWORD, Stack, TestApp, spawn_app_with};

/// An app whose per-address rate limit cannot answer for the lockout.
async fn app() -> TestApp {
    spawn_app_with(
        Stack::from_env(),
        tempfile::tempdir().expect("temp dir"),
        &[("UMS_RATE_LIMIT_ENABLED", "false")],
    )
    .await
}

async fn login(app: &TestApp, login: &str, password: &str) -> crate::helpers::TestResponse {
    app.post(
        "/api/v1/auth/login",
        json!({"login": login, "password": password}),
    )
    .await
}

#[actix_web::test]
async fn an_accounts_names_share_one_window_and_its_lock_answers_like_a_wrong_password() {
    let app = app().await;
    let (root, _) = app.admin("root").await;
    let user = app.register("nora@example.com", "nora").await;
    let id = user["id"].as_str().unwrap();
    // Another account, never locked: what a wrong password is answered with.
    app.register("otto@example.com", "otto").await;

    // The limit (5) used up through the username...
    for _ in 0..5 {
        assert_eq!(
            login(&app, "nora", "a wrong guess 1").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // ...leaves no fresh window for the e-mail address: even the right password is refused,
    // with the answer of a wrong password to an account that is not locked, and of a name
    // that is nobody's.
    let locked = login(&app, "nora@example.com", PASSWORD).await;
    let locked_wrong = login(&app, "nora@example.com", "a wrong guess 2").await;
    let wrong = login(&app, "otto@example.com", "a wrong guess 3").await;
    let nobody = login(&app, "nobody@example.com", "a wrong guess 4").await;
    for (what, response) in [
        ("locked, right password", &locked),
        ("locked, wrong password", &locked_wrong),
        ("unlocked, wrong password", &wrong),
        ("nobody", &nobody),
    ] {
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(response.body["type"], nobody.body["type"], "{what}");
        assert_eq!(response.body["title"], nobody.body["title"], "{what}");
        assert_eq!(response.body["detail"], nobody.body["detail"], "{what}");
        assert_eq!(response.header("retry-after"), None, "{what}");
        assert_eq!(
            response.header("www-authenticate"),
            nobody.header("www-authenticate"),
            "{what}"
        );
    }

    // The wrong password was compared on an account that is not locked: its right one works.
    app.login("otto@example.com", PASSWORD).await;

    // An administrator's unlock clears the account's window too.
    let unlocked = app
        .send(
            Method::POST,
            &format!("/api/v1/users/{id}/unlock"),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(unlocked.status, StatusCode::NO_CONTENT);
    app.login("nora@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn a_success_clears_the_accounts_window() {
    let app = app().await;
    app.register("omar@example.com", "omar").await;
    for _ in 0..4 {
        login(&app, "omar", "a wrong guess").await;
    }
    app.login("omar@example.com", PASSWORD).await;
    // Had the success left the account's four failures, these would take it past the limit
    // and the right password below would be refused.
    for _ in 0..4 {
        assert_eq!(
            login(&app, "omar@example.com", "a wrong guess")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    app.login("omar", PASSWORD).await;
}

async fn change_password(
    app: &TestApp,
    token: &str,
    current: &str,
    new: &str,
) -> crate::helpers::TestResponse {
    app.send(
        Method::POST,
        "/api/v1/users/me/password",
        Some(token),
        Some(json!({"current_password": current, "new_password": new})),
    )
    .await
}

#[actix_web::test]
async fn password_change_confirmations_are_limited_per_account_like_logins() {
    let app = app().await;
    let (token, _) = app.signed_in("pia").await;
    let new_password = "another fine passphrase 7";

    // A confirmed current password clears the count (here the new one is then refused).
    for _ in 0..4 {
        let wrong = change_password(&app, &token, "a wrong guess", new_password).await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let weak = change_password(&app, &token, PASSWORD, "password1234").await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        weak.body["errors"]["new_password"].is_array(),
        "{}",
        weak.text
    );

    for _ in 0..5 {
        let wrong = change_password(&app, &token, "a wrong guess", new_password).await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(wrong.body["errors"]["current_password"].is_array());
    }
    let limited = change_password(&app, &token, "a wrong guess", new_password).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.text
    );
    let retry: i64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=15 * 60).contains(&retry), "{retry}");
    // Nothing is checked while it lasts, the right password included.
    let right = change_password(&app, &token, PASSWORD, new_password).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    // Logging in is another window: the password is unchanged.
    app.login("pia", PASSWORD).await;
}
