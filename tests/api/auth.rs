//! Registration, login, refresh rotation and reuse detection, logout, e-mail verification.

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app};

#[actix_web::test]
async fn register_login_me_refresh_reuse_logout_flow() {
    let app = spawn_app().await;

    let registered = app.register("Ada@Example.com", "ada").await;
    assert_eq!(registered["email"], "ada@example.com");
    assert_eq!(registered["role"], "user");
    assert_eq!(registered["is_active"], true);
    assert_eq!(registered["email_verified"], false);
    assert!(registered.get("password").is_none() && registered.get("password_hash").is_none());

    let tokens = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert_eq!(tokens["refresh_expires_in"], 7 * 24 * 3600);
    assert_eq!(tokens["user"]["id"], registered["id"]);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let me = app.get("/api/v1/users/me", access).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "ada");
    assert!(me.body["last_login_at"].is_string());
    assert_eq!(me.body["tenants"], json!([]));

    let rotated = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert_eq!(rotated.header("cache-control"), Some("no-store"));
    let new_access = rotated.body["access_token"].as_str().unwrap().to_owned();
    let new_refresh = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, refresh);
    assert_eq!(
        app.get("/api/v1/users/me", &new_access).await.status,
        StatusCode::OK
    );

    // The spent token again: refused, and the whole session is revoked.
    let reused = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);
    assert!(
        reused.body["detail"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    let after = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": new_refresh}),
        )
        .await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "the rotated token died with its family"
    );
    assert_eq!(
        app.get("/api/v1/users/me", &new_access).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/v1/users/me", access).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A fresh login; logout ends that session at once.
    let tokens = app.login("ada", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let out = app
        .send(Method::POST, "/api/v1/auth/logout", Some(access), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/users/me", access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let dead = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(dead.status, StatusCode::UNAUTHORIZED);
    let again = app
        .send(Method::POST, "/api/v1/auth/logout", Some(access), None)
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn logout_all_ends_every_session() {
    let app = spawn_app().await;
    let (first, first_refresh) = app.signed_in("grace").await;
    let second = app.login("grace", PASSWORD).await;
    let second = second["access_token"].as_str().unwrap();
    let out = app
        .send(Method::POST, "/api/v1/auth/logout-all", Some(second), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/users/me", &first).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/v1/users/me", second).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": first_refresh}),
        )
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    // Logging in again still works.
    app.login("grace", PASSWORD).await;
}

#[actix_web::test]
async fn registration_refuses_duplicates_regardless_of_case() {
    let app = spawn_app().await;
    app.register("linus@example.com", "linus").await;
    for (email, username) in [("LINUS@example.com", "other"), ("new@example.com", "LINUS")] {
        let response = app
            .post(
                "/api/v1/auth/register",
                json!({"email": email, "username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status, StatusCode::CONFLICT, "{email} {username}");
    }
}

#[actix_web::test]
async fn registration_names_every_invalid_field() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "not-an-email", "username": "a b", "password": "short"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["email", "username", "password"] {
        assert!(
            response.body["errors"][field].is_array(),
            "{field}: {}",
            response.text
        );
    }
}

#[actix_web::test]
async fn passwords_over_72_bytes_and_guessable_passwords_are_refused() {
    let app = spawn_app().await;
    let long = "a".repeat(73);
    let response = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "long@example.com", "username": "long", "password": long}),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response.body["errors"]["password"][0]
            .as_str()
            .unwrap()
            .contains("72 bytes")
    );

    for weak in ["password1234", "weakuser@example.com1"] {
        let response = app
            .post(
                "/api/v1/auth/register",
                json!({"email": "weakuser@example.com", "username": "weakuser", "password": weak}),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{weak}");
        assert!(
            response.body["errors"]["password"][0]
                .as_str()
                .unwrap()
                .contains("guess"),
            "{}",
            response.text
        );
    }
    // A long all-lowercase passphrase is fine: no composition rules.
    app.register("phrase@example.com", "phrase").await;
}

#[actix_web::test]
async fn login_failures_do_not_tell_which_part_was_wrong() {
    let app = spawn_app().await;
    app.register("alan@example.com", "alan").await;
    let wrong_password = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "alan", "password": "not the password"}),
        )
        .await;
    let unknown_user = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "nobody", "password": "not the password"}),
        )
        .await;
    let unknown_email = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "nobody@example.com", "password": "x"}),
        )
        .await;
    let too_long = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "alan", "password": "a".repeat(100)}),
        )
        .await;
    for response in [&wrong_password, &unknown_user, &unknown_email, &too_long] {
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        assert_eq!(response.body["detail"], wrong_password.body["detail"]);
        assert_eq!(response.body["type"], wrong_password.body["type"]);
    }
    // Login by username ignores case.
    app.login("ALAN", PASSWORD).await;
}

#[actix_web::test]
async fn remember_me_lengthens_the_session() {
    let app = spawn_app().await;
    app.register("remy@example.com", "remy").await;
    let response = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "remy", "password": PASSWORD, "remember_me": true}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["refresh_expires_in"], 30 * 24 * 3600);
    assert_eq!(response.header("cache-control"), Some("no-store"));
}

#[actix_web::test]
async fn unknown_and_garbage_refresh_tokens_are_refused() {
    let app = spawn_app().await;
    let response = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": "nope"}))
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    let response = app.post("/api/v1/auth/refresh", json!({})).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.body["errors"]["refresh_token"].is_array());
}

#[actix_web::test]
async fn repeated_failures_lock_the_login_name_with_429() {
    let app = spawn_app().await;
    app.register("lock@example.com", "locky").await;
    let wrong = json!({"login": "lock@example.com", "password": "not the password"});
    // A success before the limit clears the count.
    for _ in 0..4 {
        assert_eq!(
            app.post("/api/v1/auth/login", wrong.clone()).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    app.login("LOCK@example.com", PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(
            app.post("/api/v1/auth/login", wrong.clone()).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = app.post("/api/v1/auth/login", wrong.clone()).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=15 * 60).contains(&retry), "{retry}");
    // Even the right password is refused while locked. The username is another name, but
    // the same account, whose own window is used up too: refused as a wrong password is (a
    // 429 would tell that the two names are one account's).
    let right = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "lock@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    let by_username = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "locky", "password": PASSWORD}),
        )
        .await;
    assert_eq!(by_username.status, StatusCode::UNAUTHORIZED);

    // Unknown names lock alike, so the lock tells nothing about whether an account exists.
    let unknown = json!({"login": "ghost@example.com", "password": "whatever it is"});
    for _ in 0..5 {
        assert_eq!(
            app.post("/api/v1/auth/login", unknown.clone()).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.post("/api/v1/auth/login", unknown).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Concurrent guesses cannot slip past the limit together: each attempt is counted before its
/// password is checked.
#[actix_web::test]
async fn concurrent_failures_cannot_exceed_the_limit() {
    let app = spawn_app().await;
    app.register("race@example.com", "racer").await;
    let wrong = || {
        app.post(
            "/api/v1/auth/login",
            json!({"login": "racer", "password": "guess guess guess"}),
        )
    };
    let (a, b, c, d, e, f, g, h) = tokio::join!(
        wrong(),
        wrong(),
        wrong(),
        wrong(),
        wrong(),
        wrong(),
        wrong(),
        wrong()
    );
    let statuses = [a, b, c, d, e, f, g, h].map(|r| r.status);
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let locked = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(checked + locked, 8, "{statuses:?}");
    assert_eq!(
        checked, 5,
        "exactly the allowed number of passwords was checked: {statuses:?}"
    );
}
