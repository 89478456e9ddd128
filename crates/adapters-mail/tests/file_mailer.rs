//! `FileMailer`: what a written message looks like (parsed back with mail-parser), file
//! naming, header injection, permissions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use adapters_mail::FileMailer;
use domain::model::{Email, OutgoingMail};
use domain::ports::{MailError, Mailer};
use mail_parser::MessageParser;
use uuid::Uuid;

const FROM: &str = "UMS <no-reply@ums.example>";

fn mail(subject: &str, text: &str) -> OutgoingMail {
    OutgoingMail {
        to: Email::parse("ada@example.com").unwrap(),
        subject: subject.to_owned(),
        text: text.to_owned(),
        html: format!("<p>{text}</p>"),
    }
}

/// Every file in `dir`, sorted by name.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The only `.eml` file in `dir`, read whole.
fn only_message(dir: &Path) -> Vec<u8> {
    let files = files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::read(&files[0]).unwrap()
}

#[tokio::test]
async fn writes_a_multipart_message_with_the_outbox_id() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = FileMailer::new(dir.path().to_owned(), FROM).unwrap();
    let id = Uuid::now_v7();
    mailer
        .send(
            id,
            mail("Confirm your e-mail address", "Hello ada,\ntoken: abc123"),
        )
        .await
        .unwrap();

    let files = files(dir.path());
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.ends_with(&format!("-{id}.eml")), "{name}");
    let raw = only_message(dir.path());
    let message = MessageParser::default().parse(&raw).unwrap();
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("UMS"));
    assert_eq!(from.address(), Some("no-reply@ums.example"));
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("ada@example.com")
    );
    assert_eq!(message.subject(), Some("Confirm your e-mail address"));
    assert_eq!(
        message.message_id(),
        Some(format!("{id}@ums.example").as_str())
    );
    assert!(message.date().is_some());
    assert_eq!(
        message
            .body_text(0)
            .unwrap()
            .replace("\r\n", "\n")
            .trim_end(),
        "Hello ada,\ntoken: abc123"
    );
    assert!(
        message.body_html(0).unwrap().contains("<p>Hello ada,"),
        "{:?}",
        message.body_html(0)
    );
}

#[tokio::test]
async fn creates_the_folder_and_leaves_no_temporary_file() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("nested").join("mail");
    let mailer = FileMailer::new(dir.clone(), FROM).unwrap();
    assert_eq!(mailer.dir(), dir);
    mailer
        .send(Uuid::now_v7(), mail("Hi", "body"))
        .await
        .unwrap();
    let files = files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "eml");
}

#[tokio::test]
async fn messages_sort_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = FileMailer::new(dir.path().to_owned(), FROM).unwrap();
    for n in 0..10 {
        mailer
            .send(
                Uuid::now_v7(),
                mail(&format!("message {n:02}"), "same body"),
            )
            .await
            .unwrap();
    }
    let subjects: Vec<String> = files(dir.path())
        .iter()
        .map(|path| {
            let raw = std::fs::read(path).unwrap();
            let message = MessageParser::default().parse(&raw).unwrap();
            message.subject().unwrap().to_owned()
        })
        .collect();
    let expected: Vec<String> = (0..10).map(|n| format!("message {n:02}")).collect();
    assert_eq!(subjects, expected, "one file each, in the order sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_messages_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = Arc::new(FileMailer::new(dir.path().to_owned(), FROM).unwrap());
    let tasks: Vec<_> = (0..64)
        .map(|n| {
            let mailer = Arc::clone(&mailer);
            tokio::spawn(async move {
                mailer
                    .send(Uuid::now_v7(), mail(&format!("m{n}"), "x"))
                    .await
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(files(dir.path()).len(), 64);
}

#[tokio::test]
async fn a_subject_cannot_inject_headers() {
    for subject in [
        "Hello\r\nBcc: x@evil.example",
        "Hello\nBcc: x@evil.example",
        "Hello\rBcc: x@evil.example",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mailer = FileMailer::new(dir.path().to_owned(), FROM).unwrap();
        mailer
            .send(Uuid::now_v7(), mail(subject, "body"))
            .await
            .unwrap();
        let raw = only_message(dir.path());
        let message = MessageParser::default().parse(&raw).unwrap();
        assert!(message.bcc().is_none(), "{subject:?}");
        let head = String::from_utf8_lossy(&raw);
        let head = head.split("\r\n\r\n").next().unwrap();
        assert!(
            head.lines()
                .all(|line| !line.to_ascii_lowercase().starts_with("bcc")),
            "{head}"
        );
    }
}

#[tokio::test]
async fn a_non_ascii_subject_and_body_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = FileMailer::new(dir.path().to_owned(), FROM).unwrap();
    mailer
        .send(Uuid::now_v7(), mail("Bestätigen Sie Ihre Adresse", "Grüße"))
        .await
        .unwrap();
    let raw = only_message(dir.path());
    let head = String::from_utf8_lossy(&raw);
    assert!(head.split("\r\n\r\n").next().unwrap().is_ascii(), "{head}");
    let message = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(message.subject(), Some("Bestätigen Sie Ihre Adresse"));
    assert_eq!(message.body_text(0).unwrap().trim_end(), "Grüße");
}

#[test]
fn refuses_a_sender_that_is_not_a_mailbox() {
    let dir = PathBuf::from("unused");
    assert!(FileMailer::new(dir.clone(), "a@example.com\r\nBcc: x@evil.example").is_err());
    assert!(FileMailer::new(dir.clone(), "  ").is_err());
    assert!(FileMailer::new(dir.clone(), "not an address").is_err());
    assert!(FileMailer::new(dir.clone(), "no-reply@example.com").is_ok());
    assert!(FileMailer::new(dir, "UMS <no-reply@example.com>").is_ok());
}

#[tokio::test]
async fn an_unwritable_folder_is_a_transient_mail_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "a file where the folder should be").unwrap();
    let mailer = FileMailer::new(blocker, FROM).unwrap();
    let error = mailer
        .send(Uuid::now_v7(), mail("Hi", "body"))
        .await
        .unwrap_err();
    assert!(matches!(error, MailError::Transient(_)), "{error:?}");
}

/// A message carries one-time tokens: only its owner may read the file.
#[cfg(unix)]
#[tokio::test]
async fn messages_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let mailer = FileMailer::new(dir.path().to_owned(), FROM).unwrap();
    mailer
        .send(Uuid::now_v7(), mail("Secret", "token: abc"))
        .await
        .unwrap();
    for file in files(dir.path()) {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
}
