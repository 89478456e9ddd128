//! `SmtpMailer` against a real SMTP server (the test support's sink): delivery, credentials
//! from the URL, the Message-ID, and how refusals and silence are classified.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use adapters_mail::{SmtpMailer, SmtpSecurity};
use domain::model::{Email, OutgoingMail};
use domain::ports::{MailError, Mailer};
use mail_parser::MessageParser;
use secrecy::SecretString;
use ums_tests::support::smtp::{Mode, SmtpSink};
use uuid::Uuid;

const FROM: &str = "UMS <no-reply@ums.example>";

fn mail() -> OutgoingMail {
    OutgoingMail {
        to: Email::parse("ada@example.com").unwrap(),
        subject: "Reset your password".to_owned(),
        text: "Hello ada,\n\ntoken: abc123\n".to_owned(),
        html: "<p>token: <code>abc123</code></p>".to_owned(),
    }
}

fn mailer(url: &str, timeout: Duration) -> SmtpMailer {
    SmtpMailer::new(&SecretString::from(url.to_owned()), FROM, timeout).unwrap()
}

#[tokio::test]
async fn delivers_a_multipart_message_to_the_server() {
    let sink = SmtpSink::start().await;
    let mailer = mailer(&sink.url(), Duration::from_secs(5));
    assert_eq!(mailer.security(), SmtpSecurity::None);
    let id = Uuid::now_v7();
    mailer.send(id, mail()).await.unwrap();

    let [received] = sink.received().try_into().unwrap();
    assert_eq!(received.from, "no-reply@ums.example");
    assert_eq!(received.to, vec!["ada@example.com".to_owned()]);
    assert_eq!(received.auth, None);
    let message = MessageParser::default().parse(&received.data).unwrap();
    assert_eq!(message.subject(), Some("Reset your password"));
    assert_eq!(
        message.message_id(),
        Some(format!("{id}@ums.example").as_str())
    );
    assert!(message.body_text(0).unwrap().contains("token: abc123"));
    assert!(
        message
            .body_html(0)
            .unwrap()
            .contains("<code>abc123</code>")
    );
}

#[tokio::test]
async fn authenticates_with_the_credentials_in_the_url() {
    let sink = SmtpSink::start().await;
    let url = format!("smtp://mailer:p%40ss%3Aword@{}", sink.addr());
    mailer(&url, Duration::from_secs(5))
        .send(Uuid::now_v7(), mail())
        .await
        .unwrap();
    let [received] = sink.received().try_into().unwrap();
    assert_eq!(received.auth.as_deref(), Some("mailer:p@ss:word"));
}

#[tokio::test]
async fn a_4xx_reply_is_transient_and_a_5xx_reply_permanent() {
    let sink = SmtpSink::start().await;
    let mailer = mailer(&sink.url(), Duration::from_secs(5));
    sink.set_mode(Mode::RefuseTransient);
    let error = mailer.send(Uuid::now_v7(), mail()).await.unwrap_err();
    assert!(matches!(error, MailError::Transient(_)), "{error:?}");
    sink.set_mode(Mode::RefusePermanent);
    let error = mailer.send(Uuid::now_v7(), mail()).await.unwrap_err();
    assert!(matches!(error, MailError::Permanent(_)), "{error:?}");
    assert!(sink.received().is_empty());
    sink.set_mode(Mode::Accept);
    mailer.send(Uuid::now_v7(), mail()).await.unwrap();
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_closed_port_fails_transiently() {
    let sink = SmtpSink::start().await;
    sink.set_mode(Mode::Stall);
    let started = std::time::Instant::now();
    let error = mailer(&sink.url(), Duration::from_millis(300))
        .send(Uuid::now_v7(), mail())
        .await
        .unwrap_err();
    assert!(matches!(error, MailError::Transient(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let silent = mailer(&format!("smtp://{closed}"), Duration::from_secs(2));
    let error = silent.send(Uuid::now_v7(), mail()).await.unwrap_err();
    assert!(matches!(error, MailError::Transient(_)), "{error:?}");
    assert!(silent.check().await.is_err());
}

#[test]
fn the_url_decides_the_transport_security() {
    assert_eq!(
        SmtpSecurity::of("smtps://u:p@mail.example:465"),
        SmtpSecurity::Tls
    );
    assert_eq!(
        SmtpSecurity::of("smtp://u:p@mail.example:587?tls=required"),
        SmtpSecurity::StartTls
    );
    assert_eq!(
        SmtpSecurity::of("smtp://mail.example?tls=opportunistic"),
        SmtpSecurity::Opportunistic
    );
    assert_eq!(SmtpSecurity::of("smtp://localhost:25"), SmtpSecurity::None);
    for url in [
        "smtps://u:p@mail.example:465",
        "smtp://mail.example:587?tls=required",
    ] {
        assert!(
            SmtpMailer::new(
                &SecretString::from(url.to_owned()),
                FROM,
                Duration::from_secs(1)
            )
            .is_ok(),
            "{url}"
        );
    }
    let refused = SmtpMailer::new(
        &SecretString::from("http://user:hunter2@mail.example".to_owned()),
        FROM,
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(!refused.to_string().contains("hunter2"), "{refused}");
}
