//! The current user: reading, profile changes with ETag/If-Match, password change.

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app};

#[actix_web::test]
async fn profile_update_changes_only_the_allowed_fields() {
    let app = spawn_app().await;
    let (access, _) = app.signed_in("edsger").await;
    let before = app.get("/api/v1/users/me", &access).await;
    let etag = before.header("etag").unwrap().to_owned();

    let updated = app
        .send_with(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&access),
            Some(json!({"first_name": "Edsger", "last_name": "Dijkstra", "preferences": {"theme": "dark"}})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.body["first_name"], "Edsger");
    assert_eq!(updated.body["preferences"], json!({"theme": "dark"}));
    let new_etag = updated.header("etag").unwrap().to_owned();
    assert_ne!(new_etag, etag);

    // The old ETag is stale now: 412, nothing written.
    let stale = app
        .send_with(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&access),
            Some(json!({"first_name": "Overwritten"})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let now = app.get("/api/v1/users/me", &access).await;
    assert_eq!(now.body["first_name"], "Edsger");
    assert_eq!(now.header("etag"), Some(new_etag.as_str()));
}

#[actix_web::test]
async fn mass_assignment_is_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let (access, _) = app.signed_in("mallory").await;
    for body in [
        json!({"role": "admin"}),
        json!({"first_name": "M", "is_active": false}),
        json!({"email_verified": true}),
        json!({"email": "other@example.com"}),
    ] {
        let response = app
            .send(
                Method::PATCH,
                "/api/v1/users/me",
                Some(&access),
                Some(body.clone()),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(response.body["errors"].is_object(), "{}", response.text);
    }
    let me = app.get("/api/v1/users/me", &access).await;
    assert_eq!(me.body["role"], "user");
    assert_eq!(me.body["first_name"], "");
    assert_eq!(me.body["email_verified"], false);
    assert_eq!(me.body["email"], "mallory@example.com");
}

#[actix_web::test]
async fn profile_validation_and_username_conflicts() {
    let app = spawn_app().await;
    app.register("taken@example.com", "taken").await;
    let (access, _) = app.signed_in("barbara").await;
    let conflict = app
        .send(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&access),
            Some(json!({"username": "TAKEN"})),
        )
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    let invalid = app
        .send(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&access),
            Some(json!({"username": "no spaces", "preferences": [1, 2]})),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(invalid.body["errors"]["username"].is_array());
    assert!(invalid.body["errors"]["preferences"].is_array());
    // U+0000 cannot be stored by every store (PostgreSQL's jsonb): refused alike everywhere.
    let nul = app
        .send(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&access),
            Some(json!({"preferences": {"note": "a\u{0}b"}})),
        )
        .await;
    assert_eq!(nul.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(nul.body["errors"]["preferences"].is_array());
    let renamed = app
        .send(
            Method::PATCH,
            "/api/v1/users/me",
            Some(&access),
            Some(json!({"username": "Babs"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK);
    app.login("babs", PASSWORD).await;
}

#[actix_web::test]
async fn password_change_keeps_this_session_and_ends_the_others() {
    let app = spawn_app().await;
    let (current, _) = app.signed_in("ken").await;
    let other = app.login("ken", PASSWORD).await;
    let other_access = other["access_token"].as_str().unwrap();
    let other_refresh = other["refresh_token"].as_str().unwrap();

    let wrong = app
        .send(
            Method::POST,
            "/api/v1/users/me/password",
            Some(&current),
            Some(json!({"current_password": "wrong password", "new_password": "another fine passphrase 7"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body["errors"]["current_password"].is_array());

    let weak = app
        .send(
            Method::POST,
            "/api/v1/users/me/password",
            Some(&current),
            Some(json!({"current_password": PASSWORD, "new_password": "password1234"})),
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body["errors"]["new_password"].is_array());

    let new_password = "another fine passphrase 7";
    let changed = app
        .send(
            Method::POST,
            "/api/v1/users/me/password",
            Some(&current),
            Some(json!({"current_password": PASSWORD, "new_password": new_password})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.text);

    assert_eq!(
        app.get("/api/v1/users/me", &current).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/users/me", other_access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": other_refresh}),
        )
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);

    let old = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "ken", "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    app.login("ken", new_password).await;
}

#[actix_web::test]
async fn the_device_list_shows_live_sessions_and_ends_one_at_once() {
    let app = spawn_app().await;
    let (laptop, _) = app.signed_in("devi").await;
    let phone = app
        .send_with(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "devi", "password": PASSWORD})),
            &[("User-Agent", "PhoneApp/2.0")],
        )
        .await;
    assert_eq!(phone.status, StatusCode::OK);
    let phone = phone.body["access_token"].as_str().unwrap().to_owned();
    let (other, _) = app.signed_in("othello").await;

    let listed = app.get("/api/v1/users/me/sessions", &laptop).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["total"], 2);
    let items = listed.body["items"].as_array().unwrap();
    // Newest first: the phone's, then this one.
    assert_eq!(items[0]["user_agent"], "PhoneApp/2.0");
    assert_eq!(items[0]["current"], false);
    assert_eq!(items[1]["current"], true);
    assert!(items[1]["ip"].is_string() && items[1]["expires_at"].is_string());
    let phone_session = items[0]["id"].as_str().unwrap().to_owned();

    // Another user cannot end it, and learns nothing: the same 404 as for no session.
    let foreign = app
        .send(
            Method::DELETE,
            &format!("/api/v1/users/me/sessions/{phone_session}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/api/v1/users/me", &phone).await.status,
        StatusCode::OK
    );

    let ended = app
        .send(
            Method::DELETE,
            &format!("/api/v1/users/me/sessions/{phone_session}"),
            Some(&laptop),
            None,
        )
        .await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/users/me", &phone).await.status,
        StatusCode::UNAUTHORIZED,
        "the phone's token stops working at once"
    );
    let again = app
        .send(
            Method::DELETE,
            &format!("/api/v1/users/me/sessions/{phone_session}"),
            Some(&laptop),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "no longer live");
    let now = app.get("/api/v1/users/me/sessions", &laptop).await;
    assert_eq!(now.body["total"], 1);
    assert_eq!(now.body["items"][0]["current"], true);
    let garbage = app
        .send(
            Method::DELETE,
            "/api/v1/users/me/sessions/nope",
            Some(&laptop),
            None,
        )
        .await;
    assert_eq!(garbage.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn closing_ones_account_needs_the_password_ends_everything_and_keeps_the_event() {
    let app = spawn_app().await;
    let (access, refresh) = app.signed_in("quinn").await;
    let me = app.get("/api/v1/users/me", &access).await;
    let id = me.body["id"].as_str().unwrap().to_owned();

    let wrong = app
        .send(
            Method::DELETE,
            "/api/v1/users/me",
            Some(&access),
            Some(json!({"password": "not my password"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong.body["errors"]["password"].is_array(),
        "{}",
        wrong.text
    );
    let missing = app
        .send(
            Method::DELETE,
            "/api/v1/users/me",
            Some(&access),
            Some(json!({})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);

    let closed = app
        .send(
            Method::DELETE,
            "/api/v1/users/me",
            Some(&access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(closed.status, StatusCode::NO_CONTENT, "{}", closed.text);
    assert_eq!(
        app.get("/api/v1/users/me", &access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refreshed = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED);
    let login = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "quinn", "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);

    // The personal data is gone (the address and name are free again); the event stays.
    app.register("quinn@example.com", "quinn").await;
    let (root, _) = app.admin("root").await;
    let events = app
        .get(
            &format!("/api/v1/audit?target={id}&action=user.deleted"),
            &root,
        )
        .await;
    assert_eq!(events.status, StatusCode::OK);
    let event = &events.body["items"][0];
    assert_eq!(event["actor_id"], id.as_str());
    assert_eq!(event["details"]["self_service"], true);
    assert!(
        !events.text.contains("quinn@example.com"),
        "{}",
        events.text
    );
}

#[actix_web::test]
async fn the_last_administrator_cannot_close_their_account() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    let refused = app
        .send(
            Method::DELETE,
            "/api/v1/users/me",
            Some(&root),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(
        app.get("/api/v1/users/me", &root).await.status,
        StatusCode::OK
    );
}
