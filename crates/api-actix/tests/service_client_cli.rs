//! `ums create-service-client`: prints the client id and the secret once, refuses a taken or
//! invalid name, and records the creation without the secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn ums(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ums"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("UMS_LOG", "warn")
        .env("UMS_BCRYPT_COST", "4")
        .output()
        .expect("ums runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The value after `label: ` on a line of `output`.
fn field(output: &str, label: &str) -> String {
    output
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{label}: ")))
        .unwrap_or_else(|| panic!("no {label} in {output}"))
        .trim()
        .to_owned()
}

#[test]
fn create_service_client_prints_the_credentials_once() {
    let dir = tempfile::tempdir().unwrap();
    let created = ums(
        dir.path(),
        &[
            "create-service-client",
            "--name",
            "billing",
            "--description",
            "Invoices",
        ],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let stdout = text(&created.stdout);
    let client_id = field(&stdout, "client_id");
    let secret = field(&stdout, "client_secret");
    assert!(client_id.starts_with("ums_sa_"), "{client_id}");
    assert!(
        secret.len() >= 43,
        "at least 256 bits in URL-safe base64: {secret}"
    );
    assert!(
        secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{secret}"
    );
    assert!(
        stdout.contains("will not be shown again"),
        "the operator is told: {stdout}"
    );
    assert!(
        !text(&created.stderr).contains(&secret),
        "the secret goes to stdout only"
    );

    // Stored as a digest only: the secret is nowhere in the database file.
    let database = std::fs::read(dir.path().join("ums.db")).unwrap();
    let wal = std::fs::read(dir.path().join("ums.db-wal")).unwrap_or_default();
    for bytes in [&database, &wal] {
        assert!(
            !bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "the secret is not stored in clear"
        );
    }

    // The same name again, in another case: refused, nothing printed.
    let again = ums(dir.path(), &["create-service-client", "--name", "BILLING"]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("exists already"),
        "{}",
        text(&again.stderr)
    );
    assert!(!text(&again.stdout).contains("client_secret"));

    let invalid = ums(dir.path(), &["create-service-client", "--name", "a b"]);
    assert!(!invalid.status.success());
    assert!(
        text(&invalid.stderr).contains("name"),
        "{}",
        text(&invalid.stderr)
    );
}
