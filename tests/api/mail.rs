//! Mail through the durable outbox, end to end over a real SMTP server (the test support's
//! sink): verification, resend cooldown, forgotten password and reset, the notices of a
//! changed password or address, delivery that survives a refusing or silent server, and
//! several instances delivering each message once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use serde_json::json;
use ums_tests::support::smtp::{Mode, SmtpSink};

use crate::helpers::{PASSWORD, Stack, parse_mail, spawn_app, spawn_app_with, token_from_mail};

const NEW_PASSWORD: &str = "quartz harbour lantern 77";

#[actix_web::test]
async fn registration_mails_a_verification_link_and_token_that_work_once() {
    let app = spawn_app().await;
    app.register("vera@example.com", "vera").await;
    let mails = app.wait_for_mails(1).await;
    let (to, subject, text, html) = parse_mail(&mails[0]);
    assert_eq!(to, "vera@example.com");
    assert_eq!(subject, "Confirm your e-mail address");
    let token = token_from_mail(&mails[0]);
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    let link = format!("http://localhost:8080/verify-email?token={token}");
    assert!(text.contains(&link), "{text}");
    assert!(html.contains(&link), "{html}");
    let received = &app.smtp.as_ref().unwrap().received()[0];
    assert_eq!(received.to, vec!["vera@example.com".to_owned()]);

    let bad = app
        .post("/api/v1/auth/verify-email", json!({"token": "bogus"}))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body["errors"]["token"].is_array());
    let ok = app
        .post("/api/v1/auth/verify-email", json!({"token": token}))
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    let again = app
        .post("/api/v1/auth/verify-email", json!({"token": token}))
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);

    let tokens = app.login("vera", PASSWORD).await;
    assert_eq!(tokens["user"]["email_verified"], true);
    // Verified already: 202, and nothing is sent.
    let access = tokens["access_token"].as_str().unwrap();
    let resend = app
        .send(
            Method::POST,
            "/api/v1/auth/verify-email/resend",
            Some(access),
            None,
        )
        .await;
    assert_eq!(resend.status, StatusCode::ACCEPTED);
    app.assert_mail_count(1).await;
}

#[actix_web::test]
async fn resends_wait_for_the_cooldown_and_the_new_token_works() {
    let app = spawn_app_with(
        Stack::from_env(),
        tempfile::tempdir().unwrap(),
        &[("UMS_VERIFY_RESEND_COOLDOWN_SECS", "1")],
    )
    .await;
    let (access, _) = app.signed_in("rosa").await;
    let too_soon = app
        .send(
            Method::POST,
            "/api/v1/auth/verify-email/resend",
            Some(&access),
            None,
        )
        .await;
    assert_eq!(
        too_soon.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        too_soon.text
    );
    assert_eq!(too_soon.header("retry-after"), Some("1"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resend = app
        .send(
            Method::POST,
            "/api/v1/auth/verify-email/resend",
            Some(&access),
            None,
        )
        .await;
    assert_eq!(resend.status, StatusCode::ACCEPTED, "{}", resend.text);
    let mails = app.wait_for_mails(2).await;
    let token = token_from_mail(&mails[1]);
    assert_ne!(token, token_from_mail(&mails[0]));
    let ok = app
        .post("/api/v1/auth/verify-email", json!({"token": token}))
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    let unauthenticated = app
        .send(Method::POST, "/api/v1/auth/verify-email/resend", None, None)
        .await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn forgot_password_answers_alike_and_mails_only_an_account() {
    let app = spawn_app().await;
    app.register("fern@example.com", "fern").await;
    app.wait_for_mails(1).await;

    let known = app
        .post(
            "/api/v1/auth/password/forgot",
            json!({"email": "FERN@example.com"}),
        )
        .await;
    let unknown = app
        .post(
            "/api/v1/auth/password/forgot",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(known.status, StatusCode::ACCEPTED);
    assert_eq!(unknown.status, StatusCode::ACCEPTED);
    assert_eq!(known.body, unknown.body, "one answer for both");
    let malformed = app
        .post(
            "/api/v1/auth/password/forgot",
            json!({"email": "not an address"}),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(malformed.body["errors"]["email"].is_array());

    let mails = app.wait_for_mails(2).await;
    let (to, subject, text, _) = parse_mail(&mails[1]);
    assert_eq!(to, "fern@example.com");
    assert_eq!(subject, "Reset your password");
    let token = token_from_mail(&mails[1]);
    assert!(
        text.contains(&format!("/reset-password?token={token}")),
        "{text}"
    );
    // Nothing went to the unknown address, and a second request within the cooldown sends
    // nothing more.
    let again = app
        .post(
            "/api/v1/auth/password/forgot",
            json!({"email": "fern@example.com"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    app.assert_mail_count(2).await;
    let recipients: Vec<String> = app.mails().iter().map(|m| parse_mail(m).0).collect();
    assert!(!recipients.contains(&"nobody@example.com".to_owned()));
}

#[actix_web::test]
async fn a_reset_sets_the_password_ends_every_session_clears_the_lockout_and_notifies() {
    let app = spawn_app().await;
    let (access, refresh) = app.signed_in("reed").await;
    // Lock the account's name with wrong passwords.
    let wrong = json!({"login": "reed", "password": "not the password"});
    let mut locked = false;
    for _ in 0..10 {
        if app.post("/api/v1/auth/login", wrong.clone()).await.status
            == StatusCode::TOO_MANY_REQUESTS
        {
            locked = true;
            break;
        }
    }
    assert!(locked, "the login name is locked");

    app.post(
        "/api/v1/auth/password/forgot",
        json!({"email": "reed@example.com"}),
    )
    .await;
    let mails = app.wait_for_mails(2).await;
    let token = token_from_mail(&mails[1]);

    let weak = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": token, "new_password": "password"}),
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        weak.body["errors"]["new_password"].is_array(),
        "{}",
        weak.text
    );
    let bogus = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": "bogus", "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(bogus.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bogus.body["errors"]["token"].is_array());

    let reset = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": token, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{}", reset.text);
    let reused = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": token, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(
        reused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "single use"
    );

    // Every session ended.
    assert_eq!(
        app.get("/api/v1/users/me", &access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refreshed = app
        .post("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED);
    // The lockout is gone, the old password too; the reset proved the address.
    let old = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "reed", "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let tokens = app.login("reed", NEW_PASSWORD).await;
    assert_eq!(tokens["user"]["email_verified"], true);

    let mails = app.wait_for_mails(3).await;
    let (to, subject, text, _) = parse_mail(&mails[2]);
    assert_eq!(to, "reed@example.com");
    assert_eq!(subject, "Your password was changed");
    assert!(text.contains("reset"), "{text}");
}

#[actix_web::test]
async fn tokens_work_only_for_their_purpose_and_within_their_lifetime() {
    let app = spawn_app_with(
        Stack::from_env(),
        tempfile::tempdir().unwrap(),
        &[("UMS_RESET_TOKEN_TTL_SECS", "1")],
    )
    .await;
    app.register("tess@example.com", "tess").await;
    let verification = token_from_mail(&app.wait_for_mails(1).await[0]);
    let as_reset = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": verification, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(as_reset.status, StatusCode::UNPROCESSABLE_ENTITY);

    app.post(
        "/api/v1/auth/password/forgot",
        json!({"email": "tess@example.com"}),
    )
    .await;
    let reset = token_from_mail(&app.wait_for_mails(2).await[1]);
    let as_verification = app
        .post("/api/v1/auth/verify-email", json!({"token": reset}))
        .await;
    assert_eq!(as_verification.status, StatusCode::UNPROCESSABLE_ENTITY);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": reset, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(expired.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.login("tess", PASSWORD).await;
}

#[actix_web::test]
async fn a_changed_password_or_address_is_announced() {
    let app = spawn_app().await;
    let (access, _) = app.signed_in("nora").await;
    app.wait_for_mails(1).await;
    let changed = app
        .send(
            Method::POST,
            "/api/v1/users/me/password",
            Some(&access),
            Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.text);
    let mails = app.wait_for_mails(2).await;
    let (to, subject, _, _) = parse_mail(&mails[1]);
    assert_eq!(
        (to.as_str(), subject.as_str()),
        ("nora@example.com", "Your password was changed")
    );

    let (admin, _) = app.admin("root").await;
    let nora = app.login("nora", NEW_PASSWORD).await;
    let id = nora["user"]["id"].as_str().unwrap();
    let moved = app
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            Some(json!({"email": "nora@new.example"})),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    assert_eq!(moved.body["email_verified"], false);
    let mails = app.wait_for_mails(4).await;
    let mut by_recipient: Vec<(String, String)> = mails[2..]
        .iter()
        .map(|m| {
            let (to, subject, _, _) = parse_mail(m);
            (to, subject)
        })
        .collect();
    by_recipient.sort();
    assert_eq!(
        by_recipient,
        vec![
            (
                "nora@example.com".to_owned(),
                "Your e-mail address was changed".to_owned()
            ),
            (
                "nora@new.example".to_owned(),
                "Confirm your e-mail address".to_owned()
            ),
        ]
    );
    let token = mails[2..]
        .iter()
        .find(|m| parse_mail(m).0 == "nora@new.example")
        .map(|m| token_from_mail(m))
        .unwrap();
    let ok = app
        .post("/api/v1/auth/verify-email", json!({"token": token}))
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
}

#[actix_web::test]
async fn a_refusing_server_delays_mail_without_failing_requests_and_shows_in_readiness() {
    let sink = Arc::new(SmtpSink::start().await);
    sink.set_mode(Mode::RefuseTransient);
    let url = sink.url();
    let mut app = spawn_app_with(
        Stack::from_env(),
        tempfile::tempdir().unwrap(),
        &[("UMS_SMTP_URL", url.as_str())],
    )
    .await;
    app.smtp = Some(sink.clone());
    app.register("rita@example.com", "rita").await;

    // The failure shows: the service stays ready, degraded, with mail down.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = app.send(Method::GET, "/health/ready", None, None).await;
        assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
        if ready.body["dependencies"]["mail"] == "down" {
            assert_eq!(ready.body["status"], "degraded");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "mail never reported down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sink.received().is_empty());

    // The server recovers: the retry delivers the message, once.
    sink.set_mode(Mode::Accept);
    let mails = app.wait_for_mails(1).await;
    assert_eq!(parse_mail(&mails[0]).0, "rita@example.com");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = app.send(Method::GET, "/health/ready", None, None).await;
        if ready.body["dependencies"]["mail"] == "up" {
            assert_eq!(ready.body["status"], "ready");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "mail never came back up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.assert_mail_count(1).await;
}

#[actix_web::test]
async fn a_silent_server_never_slows_a_request() {
    let sink = Arc::new(SmtpSink::start().await);
    sink.set_mode(Mode::Stall);
    let url = sink.url();
    let app = spawn_app_with(
        Stack::from_env(),
        tempfile::tempdir().unwrap(),
        &[
            ("UMS_SMTP_URL", url.as_str()),
            ("UMS_SMTP_TIMEOUT_SECS", "30"),
        ],
    )
    .await;
    // The worker is stuck on the silent server for 30 s; requests are not (each well within
    // one SMTP timeout, though every one of them queues a message).
    let quick = Duration::from_secs(10);
    for n in 0..3 {
        tokio::time::timeout(
            quick,
            app.register(&format!("sam{n}@example.com"), &format!("sam{n}")),
        )
        .await
        .expect("registration does not wait for the mail server");
    }
    let (access, _) = tokio::time::timeout(quick, app.signed_in("sue"))
        .await
        .expect("login does not wait for the mail server");
    let forgot = tokio::time::timeout(
        quick,
        app.post(
            "/api/v1/auth/password/forgot",
            json!({"email": "sue@example.com"}),
        ),
    )
    .await
    .expect("a reset request does not wait for the mail server");
    assert_eq!(forgot.status, StatusCode::ACCEPTED);
    assert_eq!(
        app.get("/api/v1/users/me", &access).await.status,
        StatusCode::OK
    );
    assert!(sink.received().is_empty());
}

#[actix_web::test]
async fn a_refused_recipient_is_given_up_at_once_and_says_nothing_about_the_server() {
    let sink = Arc::new(SmtpSink::start().await);
    sink.set_mode(Mode::RefusePermanent);
    let url = sink.url();
    let app = spawn_app_with(
        Stack::from_env(),
        tempfile::tempdir().unwrap(),
        &[("UMS_SMTP_URL", url.as_str())],
    )
    .await;
    app.register("gone@example.com", "gone").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sink.attempts() == 0 {
        assert!(std::time::Instant::now() < deadline, "never tried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Given up: not retried (the retry wait is 1 s here), not even once the server accepts.
    sink.set_mode(Mode::Accept);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.attempts(), 1);
    assert!(sink.received().is_empty());
    // One bad mailbox is no outage: anyone could cause it by registering one.
    let ready = app.send(Method::GET, "/health/ready", None, None).await;
    assert_eq!(ready.body["dependencies"]["mail"], "up", "{}", ready.text);
    assert_eq!(ready.body["status"], "ready");
}

#[actix_web::test]
async fn two_instances_deliver_every_message_exactly_once() {
    let app = spawn_app().await;
    let sibling = match app.stack {
        Stack::Production => app.spawn_sibling().await,
        // On the embedded stack, a second server on the same SQLite file.
        Stack::Embedded => {
            let database = format!("sqlite://{}", app.dir.path().join("ums.db").display());
            let smtp = app.smtp.as_ref().unwrap().url();
            let mut sibling = spawn_app_with(
                Stack::Embedded,
                tempfile::tempdir().unwrap(),
                &[
                    ("DATABASE_URL", database.as_str()),
                    ("UMS_SMTP_URL", smtp.as_str()),
                ],
            )
            .await;
            sibling.smtp.clone_from(&app.smtp);
            sibling
        }
    };
    for n in 0..12 {
        let instance = if n % 2 == 0 { &app } else { &sibling };
        instance
            .register(&format!("twin{n}@example.com"), &format!("twin{n}"))
            .await;
    }
    let mails = app.wait_for_mails(12).await;
    app.assert_mail_count(12).await;
    let recipients: HashSet<String> = mails.iter().map(|m| parse_mail(m).0).collect();
    assert_eq!(recipients.len(), 12, "one message per account");
    let ids: HashSet<String> = mails
        .iter()
        .map(|m| {
            mail_parser::MessageParser::default()
                .parse(m.as_bytes())
                .unwrap()
                .message_id()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 12);
}

#[actix_web::test]
async fn without_an_smtp_url_mail_goes_to_files() {
    let app = spawn_app_with(
        Stack::from_env(),
        tempfile::tempdir().unwrap(),
        &[("UMS_SMTP_URL", "")],
    )
    .await;
    assert!(app.smtp.is_none());
    app.register("fay@example.com", "fay").await;
    let mails = app.wait_for_mails(1).await;
    assert_eq!(parse_mail(&mails[0]).0, "fay@example.com");
    let token = token_from_mail(&mails[0]);
    let ok = app
        .post("/api/v1/auth/verify-email", json!({"token": token}))
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
}

/// The crash test's child: serves on the settings the parent passed (a database, an SMTP
/// server, and a worker that never polls), writes its port to a file, and waits to be killed.
#[actix_web::test]
#[ignore = "the child process of `a_message_committed_before_a_crash_is_delivered_once_after_restart`"]
async fn crash_child() {
    let dir = std::path::PathBuf::from(std::env::var("UMS_CRASH_DIR").expect("UMS_CRASH_DIR"));
    let vars: Vec<(String, String)> =
        serde_json::from_str(&std::env::var("UMS_CRASH_VARS").expect("UMS_CRASH_VARS"))
            .expect("vars as JSON");
    let overrides: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let settings = crate::helpers::test_settings(&dir, &overrides);
    let app = api_actix::Application::build(settings)
        .await
        .expect("the app builds");
    std::fs::write(dir.join("port.tmp"), app.port().to_string()).unwrap();
    std::fs::rename(dir.join("port.tmp"), dir.join("port")).unwrap();
    app.run_until_stopped().await.unwrap();
}

#[actix_web::test]
async fn a_message_committed_before_a_crash_is_delivered_once_after_restart() {
    let stack = Stack::from_env();
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(SmtpSink::start().await);
    let database = match stack {
        Stack::Production => Some(ums_tests::support::postgres::TestDatabase::create(
            &ums_tests::support::env::test_database_url().expect("TEST_DATABASE_URL"),
        )),
        Stack::Embedded => None,
    };
    let database_url = database.as_ref().map_or_else(
        || format!("sqlite://{}", dir.path().join("ums.db").display()),
        |db| db.url.clone(),
    );
    let smtp = sink.url();
    // The child commits, and its worker would deliver only in an hour: killed first.
    let child_vars = vec![
        ("DATABASE_URL".to_owned(), database_url.clone()),
        ("UMS_SMTP_URL".to_owned(), smtp.clone()),
        ("UMS_MAIL_POLL_MS".to_owned(), "3600000".to_owned()),
    ];
    let mut child = KillOnDrop(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "mail::crash_child", "--ignored", "--nocapture"])
            .env("UMS_CRASH_DIR", dir.path())
            .env(
                "UMS_CRASH_VARS",
                serde_json::to_string(&child_vars).unwrap(),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the child"),
    );
    let port_file = dir.path().join("port");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !port_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the child never started"
        );
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "the child exited early"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let port = std::fs::read_to_string(&port_file).unwrap();
    let response = awc::Client::default()
        .post(format!("http://127.0.0.1:{port}/api/v1/auth/register"))
        .send_json(&json!({"email": "kit@example.com", "username": "kit", "password": PASSWORD}))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // SIGKILL: no shutdown, no flush, nothing delivered.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(sink.received().is_empty());
    // What the database holds of the queued message, to show below that it is sealed.
    let stored = stored_mail(database.as_ref(), dir.path());

    let mut app = spawn_app_with(
        Stack::Embedded,
        tempfile::tempdir().unwrap(),
        &[
            ("DATABASE_URL", database_url.as_str()),
            ("UMS_SMTP_URL", smtp.as_str()),
        ],
    )
    .await;
    app.smtp = Some(sink.clone());
    let mails = app.wait_for_mails(1).await;
    assert_eq!(parse_mail(&mails[0]).0, "kit@example.com");
    app.assert_mail_count(1).await;
    let token = token_from_mail(&mails[0]);
    assert!(
        !contains(&stored, token.as_bytes()),
        "the queued token is sealed"
    );
    assert!(
        !contains(&stored, b"Confirm your e-mail address"),
        "the queued message is sealed"
    );
    let ok = app
        .post("/api/v1/auth/verify-email", json!({"token": token}))
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    drop(database);
}

/// Kills the child process when the test ends, whether it passed or panicked.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The queued messages' payloads (PostgreSQL), or the whole SQLite database with its
/// write-ahead log (where the payloads are, among everything else).
fn stored_mail(
    database: Option<&ums_tests::support::postgres::TestDatabase>,
    dir: &std::path::Path,
) -> Vec<u8> {
    use diesel::{Connection as _, RunQueryDsl as _};
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Binary)]
        payload: Vec<u8>,
    }
    match database {
        Some(database) => {
            let mut conn = diesel::PgConnection::establish(&database.url).unwrap();
            let rows: Vec<Row> = diesel::sql_query("SELECT payload FROM outbox")
                .load(&mut conn)
                .unwrap();
            assert_eq!(rows.len(), 1, "one message queued");
            rows.into_iter().flat_map(|row| row.payload).collect()
        }
        None => {
            let mut bytes = std::fs::read(dir.join("ums.db")).unwrap();
            if let Ok(wal) = std::fs::read(dir.join("ums.db-wal")) {
                bytes.extend(wal);
            }
            bytes
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[actix_web::test]
async fn with_verified_addresses_required_login_waits_for_the_link() {
    let app = spawn_app_with(
        Stack::from_env(),
        tempfile::tempdir().unwrap(),
        &[("UMS_REQUIRE_VERIFIED_EMAIL", "true")],
    )
    .await;
    app.register("una@example.com", "una").await;
    let refused = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "una", "password": PASSWORD}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(refused.body["type"], "urn:ums:problem:email-not-verified");
    // A wrong password says nothing about the address.
    let wrong = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "una", "password": "not the password"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    let token = token_from_mail(&app.wait_for_mails(1).await[0]);
    let ok = app
        .post("/api/v1/auth/verify-email", json!({"token": token}))
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    app.login("una", PASSWORD).await;
}
