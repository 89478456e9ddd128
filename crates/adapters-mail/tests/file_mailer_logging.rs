//! `FileMailer` logs where it wrote a message, never the message. Alone in its own test binary:
//! a thread-local tracing subscriber misses events when other tests in the same process use the
//! same call sites concurrently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::sync::{Arc, Mutex};

use adapters_mail::FileMailer;
use domain::model::{Email, OutgoingMail};
use domain::ports::Mailer;

const FROM: &str = "UMS <no-reply@ums.example>";

fn mail(subject: &str, text: &str) -> OutgoingMail {
    OutgoingMail {
        to: Email::parse("ada@example.com").unwrap(),
        subject: subject.to_owned(),
        text: text.to_owned(),
        html: format!("<p>{text}</p>"),
    }
}

fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect()
}

/// Collects what the fmt subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_the_path_never_the_body() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let mailer = FileMailer::new(dir.path().to_owned(), FROM).unwrap();
    mailer
        .send(
            uuid::Uuid::now_v7(),
            mail("Reset your password", "token: s3cr3t-t0ken-value"),
        )
        .await
        .unwrap();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let path = files(dir.path()).remove(0);
    assert!(log.contains(&path.display().to_string()), "{log}");
    assert!(!log.contains("s3cr3t-t0ken-value"), "{log}");
}
