//! The `ums` command line: migrate, create-admin, openapi, config, and start-up errors naming
//! the offending variable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn ums(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ums"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("UMS_LOG", "warn")
        .env("UMS_BCRYPT_COST", "4");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("ums runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn migrate_applies_once_then_reports_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let first = ums(dir.path(), &["migrate"], &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("applied"),
        "{}",
        text(&first.stdout)
    );
    assert!(
        dir.path().join("ums.db").exists(),
        "the embedded default file is created"
    );
    let second = ums(dir.path(), &["migrate"], &[]);
    assert!(second.status.success());
    assert_eq!(text(&second.stdout).trim(), "database is up to date");
}

#[test]
fn create_admin_takes_the_password_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let password = [("UMS_ADMIN_PASSWORD", "violet elephant parachute 42")];
    let args = [
        "create-admin",
        "--email",
        "Root@Example.com",
        "--username",
        "root",
    ];
    let created = ums(dir.path(), &args, &password);
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(text(&created.stdout).contains("created administrator root"));
    assert!(
        !text(&created.stdout).contains("violet"),
        "the password is never echoed"
    );

    let again = ums(dir.path(), &args, &password);
    assert!(!again.status.success());
    let refusal = text(&again.stderr);
    assert!(
        refusal.contains("already registered") || refusal.contains("is taken"),
        "{refusal}"
    );

    let weak = ums(
        dir.path(),
        &[
            "create-admin",
            "--email",
            "b@example.com",
            "--username",
            "bee",
        ],
        &[("UMS_ADMIN_PASSWORD", "password")],
    );
    assert!(!weak.status.success());
    assert!(
        text(&weak.stderr).contains("password"),
        "{}",
        text(&weak.stderr)
    );
}

#[test]
fn openapi_prints_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let output = ums(dir.path(), &["openapi"], &[]);
    assert!(output.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(doc["paths"]["/api/v1/auth/login"]["post"].is_object());
    assert!(
        !dir.path().join("ums.db").exists(),
        "printing the document touches no database"
    );
}

#[test]
fn a_bad_variable_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("DATABASE_URL", "mysql://localhost/ums"),
        ("UMS_PORT", "http"),
        ("UMS_JWT_SECRET", "short"),
        ("REDIS_URL", "localhost"),
    ] {
        let output = ums(dir.path(), &["serve"], &[(name, value)]);
        assert_eq!(output.status.code(), Some(2), "{name}");
        assert!(
            text(&output.stderr).contains(name),
            "{name}: {}",
            text(&output.stderr)
        );
    }
}

#[test]
fn config_prints_the_effective_settings_without_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let jwt = "jwt-secret-0123456789-abcdefghijklmnop";
    let output = ums(
        dir.path(),
        &["config"],
        &[
            (
                "DATABASE_URL",
                "postgres://ums:pg-secret@db.internal:5432/ums",
            ),
            ("REDIS_URL", "redis://:redis-secret@cache.internal:6379/0"),
            (
                "UMS_SMTP_URL",
                "smtps://mailer:smtp-secret@mail.internal:465",
            ),
            ("UMS_JWT_SECRET", jwt),
            ("UMS_PORT", "9090"),
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let printed = text(&output.stdout);
    let value = |name: &str| {
        printed
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(" = ")?;
                (key.trim() == name).then(|| value.to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} in\n{printed}"))
    };
    assert_eq!(value("UMS_PORT"), "9090");
    assert_eq!(value("UMS_BCRYPT_COST"), "4");
    assert_eq!(
        value("UMS_ACCESS_TOKEN_TTL_SECS"),
        "900",
        "defaults are shown"
    );
    assert_eq!(
        value("DATABASE_URL"),
        "postgres://ums:***@db.internal:5432/ums"
    );
    assert_eq!(value("REDIS_URL"), "redis://:***@cache.internal:6379/0");
    assert_eq!(
        value("UMS_SMTP_URL"),
        "smtps://mailer:***@mail.internal:465"
    );
    assert_eq!(value("UMS_JWT_SECRET"), "(set, hidden)");
    for secret in ["pg-secret", "redis-secret", "smtp-secret", jwt] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
    let logged = text(&output.stderr);
    for secret in ["pg-secret", "redis-secret", "smtp-secret", jwt] {
        assert!(!logged.contains(secret), "{secret} logged:\n{logged}");
    }
}
