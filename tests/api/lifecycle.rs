//! Start-up behaviour of the embedded default: data survives a restart, and with no JWT secret
//! configured one is generated once and kept beside the database; a Redis too old for the
//! adapters stops start-up with its version named.

use actix_web::http::StatusCode;

use crate::helpers::{PASSWORD, Stack, spawn_app_with};

#[actix_web::test]
async fn data_and_sessions_survive_a_restart_with_a_generated_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let unset = [("UMS_JWT_SECRET", "")];
    let app = spawn_app_with(Stack::Embedded, dir, &unset).await;
    app.register("persist@example.com", "persist").await;
    let tokens = app.login("persist", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let secret_file = path.join("ums.jwt-secret");
    let secret = std::fs::read_to_string(&secret_file).expect("secret kept beside the database");
    assert!(secret.trim().len() >= 43);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Log out, then stop the server.
    let out = app
        .send(
            actix_web::http::Method::POST,
            "/api/v1/auth/logout",
            Some(&access),
            None,
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let second = app.login("persist", PASSWORD).await;
    let live = second["access_token"].as_str().unwrap().to_owned();
    app.handle.stop(true).await;
    let dir = app.dir;

    let app = spawn_app_with(Stack::Embedded, dir, &unset).await;
    assert_eq!(
        std::fs::read_to_string(&secret_file).unwrap(),
        secret,
        "same secret reused"
    );
    // The live session's token still verifies: same secret, data kept.
    let me = app.get("/api/v1/users/me", &live).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "persist");
    // The logged-out session stays logged out across the restart.
    assert_eq!(
        app.get("/api/v1/users/me", &access).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn a_redis_older_than_7_stops_start_up_naming_its_version() {
    let aged = ums_tests::support::redis::AgedServer::start("6.2.14");
    let dir = tempfile::tempdir().unwrap();
    let url = aged.url();
    let settings = crate::helpers::test_settings(dir.path(), &[("REDIS_URL", url.as_str())]);
    let Err(error) = api_actix::Application::build(settings).await else {
        panic!("an old Redis was accepted");
    };
    let message = error.to_string();
    assert!(message.contains("REDIS_URL"), "{message}");
    assert!(message.contains("Redis 6.2.14 is too old"), "{message}");
}
