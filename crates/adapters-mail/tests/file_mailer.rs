//! `FileMailer`: what a written message looks like, file naming, header injection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use adapters_mail::{FileMailer, FileMailerError};
use chrono::DateTime;
use domain::model::Email;
use domain::ports::{Mailer, OutgoingMail};

const FROM: &str = "UMS <no-reply@ums.example>";

fn mail(subject: &str, text: &str) -> OutgoingMail {
    OutgoingMail {
        to: Email::parse("ada@example.com").unwrap(),
        subject: subject.to_owned(),
        text: text.to_owned(),
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
fn only_message(dir: &Path) -> String {
    let files = files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::read_to_string(&files[0]).unwrap()
}

/// The header lines and the body of a message.
fn split(message: &str) -> (Vec<&str>, &str) {
    let (head, body) = message
        .split_once("\r\n\r\n")
        .expect("a blank line after the headers");
    (head.split("\r\n").collect(), body)
}

fn header<'a>(headers: &[&'a str], name: &str) -> &'a str {
    let prefix = format!("{name}: ");
    let found: Vec<&str> = headers
        .iter()
        .filter_map(|h| h.strip_prefix(prefix.as_str()))
        .collect();
    assert_eq!(found.len(), 1, "exactly one {name} header in {headers:?}");
    found[0]
}

#[tokio::test]
async fn writes_an_rfc5322_message() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = FileMailer::new(dir.path().to_owned(), FROM.to_owned()).unwrap();
    mailer
        .send(mail(
            "Confirm your e-mail address",
            "Hello ada,\n\nYour token:\n\nabc123\n",
        ))
        .await
        .unwrap();

    let files = files(dir.path());
    assert_eq!(files.len(), 1);
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(name.ends_with(".eml"), "{name}");

    let message = only_message(dir.path());
    assert!(
        !message.replace("\r\n", "").contains(['\r', '\n']),
        "every line ends in CRLF"
    );
    let (headers, body) = split(&message);
    assert_eq!(header(&headers, "From"), FROM);
    assert_eq!(header(&headers, "To"), "ada@example.com");
    assert_eq!(header(&headers, "Subject"), "Confirm your e-mail address");
    assert!(DateTime::parse_from_rfc2822(header(&headers, "Date")).is_ok());
    let id = header(&headers, "Message-ID");
    assert!(id.starts_with('<') && id.ends_with("@ums.example>"), "{id}");
    assert!(
        name.contains(&id[1..37]),
        "the file is named after the Message-ID's UUID"
    );
    assert_eq!(header(&headers, "MIME-Version"), "1.0");
    assert_eq!(
        header(&headers, "Content-Type"),
        "text/plain; charset=utf-8"
    );
    assert_eq!(header(&headers, "Content-Transfer-Encoding"), "8bit");
    assert_eq!(headers.len(), 8, "{headers:?}");
    assert_eq!(body, "Hello ada,\r\n\r\nYour token:\r\n\r\nabc123\r\n");
}

#[tokio::test]
async fn creates_the_folder_and_leaves_no_temporary_file() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("mail").join("outbox");
    let mailer = FileMailer::new(dir.clone(), FROM.to_owned()).unwrap();
    assert_eq!(mailer.dir(), dir);
    mailer.send(mail("Hi", "body")).await.unwrap();
    let files = files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "eml");
}

#[tokio::test]
async fn messages_never_collide_and_sort_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = FileMailer::new(dir.path().to_owned(), FROM.to_owned()).unwrap();
    for n in 0..20 {
        mailer
            .send(mail(&format!("message {n:02}"), "same body"))
            .await
            .unwrap();
    }
    let subjects: Vec<String> = files(dir.path())
        .iter()
        .map(|path| {
            let message = std::fs::read_to_string(path).unwrap();
            header(&split(&message).0, "Subject").to_owned()
        })
        .collect();
    let expected: Vec<String> = (0..20).map(|n| format!("message {n:02}")).collect();
    assert_eq!(subjects, expected, "one file each, in the order sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_messages_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = Arc::new(FileMailer::new(dir.path().to_owned(), FROM.to_owned()).unwrap());
    let tasks: Vec<_> = (0..64)
        .map(|n| {
            let mailer = Arc::clone(&mailer);
            tokio::spawn(async move { mailer.send(mail(&format!("m{n}"), "x")).await.unwrap() })
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
        let mailer = FileMailer::new(dir.path().to_owned(), FROM.to_owned()).unwrap();
        mailer.send(mail(subject, "body")).await.unwrap();
        let message = only_message(dir.path());
        let (headers, body) = split(&message);
        assert!(
            headers
                .iter()
                .all(|h| !h.to_ascii_lowercase().starts_with("bcc")),
            "{headers:?}"
        );
        let kept = header(&headers, "Subject");
        assert!(
            kept.starts_with("Hello ") && kept.ends_with(" Bcc: x@evil.example"),
            "{kept}"
        );
        assert_eq!(headers.len(), 8);
        assert_eq!(body, "body\r\n");
    }
}

#[tokio::test]
async fn a_non_ascii_subject_is_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = FileMailer::new(dir.path().to_owned(), FROM.to_owned()).unwrap();
    mailer
        .send(mail("Bestätigen Sie Ihre Adresse", "Grüße"))
        .await
        .unwrap();
    let message = only_message(dir.path());
    let (head, body) = message.split_once("\r\n\r\n").unwrap();
    assert!(head.is_ascii(), "{head}");
    assert!(
        head.contains("Subject: =?utf-8?Q?Best=C3=A4tigen_Sie_Ihre_Adresse?="),
        "{head}"
    );
    assert_eq!(body, "Grüße\r\n", "the body stays UTF-8 (8bit)");
}

#[test]
fn refuses_a_sender_that_could_inject_headers() {
    let dir = PathBuf::from("unused");
    assert_eq!(
        FileMailer::new(
            dir.clone(),
            "a@example.com\r\nBcc: x@evil.example".to_owned()
        )
        .err(),
        Some(FileMailerError::InvalidFrom)
    );
    assert_eq!(
        FileMailer::new(dir.clone(), "  ".to_owned()).err(),
        Some(FileMailerError::EmptyFrom)
    );
    assert!(FileMailer::new(dir, "no-reply@example.com".to_owned()).is_ok());
}

#[tokio::test]
async fn an_unwritable_folder_is_a_mail_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "a file where the folder should be").unwrap();
    let mailer = FileMailer::new(blocker, FROM.to_owned()).unwrap();
    assert!(mailer.send(mail("Hi", "body")).await.is_err());
}

/// A message carries one-time tokens: only its owner may read the file.
#[cfg(unix)]
#[tokio::test]
async fn messages_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let mailer = FileMailer::new(dir.path().to_owned(), FROM.to_owned()).unwrap();
    mailer.send(mail("Secret", "token: abc")).await.unwrap();
    for file in files(dir.path()) {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
}
