//! Mail: the delivery worker (`MailDelivery::deliver_due`: claim, open, send, record; retries
//! with backoff; giving up), `DeliverySettings::backoff`, the rendering of the messages, and the
//! "password changed" notice of `AccountService::change_password`.

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::fixture::{
    ALICE, Calls, FakeSeal, Fixture, PASSWORD, SESSION, SESSION_2, STORED_HASH, alice,
    assert_carries_no_token, client, credentials, event, now, principal_from_client, sealed_mail,
    secret,
};
use crate::model::{AuditAction, AuditTarget, Email, Journal, MailKind, OutgoingMail, SealedMail};
use crate::ports::{ClaimedMail, MailError, MailSeal as _, OutboxStatus, StoreError};
use crate::services::mail::{human_duration, messages};
use crate::services::{DeliveryReport, DeliverySettings, MailDelivery};
use crate::settings::AuthSettings;

// ----- DeliverySettings::backoff --------------------------------------------------------------

#[test]
fn backoff_starts_at_the_first_wait_and_doubles_after_each_failure() {
    let settings = DeliverySettings::default();
    let waits: Vec<_> = (1..=9).map(|n| settings.backoff(n).num_seconds()).collect();
    assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1280, 2560]);
}

#[test]
fn backoff_is_capped_at_the_longest_wait() {
    let settings = DeliverySettings::default();
    for failures in [10, 11, 30, 31, 64, u32::MAX] {
        assert_eq!(
            settings.backoff(failures),
            TimeDelta::hours(1),
            "{failures} failures"
        );
    }
    let settings = DeliverySettings {
        first_backoff: TimeDelta::seconds(1),
        max_backoff: TimeDelta::days(365),
        ..DeliverySettings::default()
    };
    // Past the largest doubling it stays put (no overflow, no wrap to a short wait).
    let far = settings.backoff(u32::MAX);
    assert!(far >= settings.backoff(21), "{far}");
    assert!(far <= TimeDelta::days(365), "{far}");
    assert!(far >= TimeDelta::days(12), "{far}");
}

#[test]
fn backoff_never_exceeds_a_longest_wait_below_the_first() {
    let settings = DeliverySettings {
        first_backoff: TimeDelta::minutes(10),
        max_backoff: TimeDelta::minutes(1),
        ..DeliverySettings::default()
    };
    assert_eq!(settings.backoff(1), TimeDelta::minutes(1));
}

// ----- MailDelivery::deliver_due --------------------------------------------------------------

fn mail_to(address: &str, subject: &str) -> OutgoingMail {
    OutgoingMail {
        to: Email::parse(address).unwrap(),
        subject: subject.to_owned(),
        text: format!("{subject}\n"),
        html: format!("<p>{subject}</p>"),
    }
}

/// A message id in the outbox (distinct from the generated ids).
fn message_id(n: u128) -> Uuid {
    Uuid::from_u128(0x0B0C_0000 + n)
}

/// `mail` sealed by `seal` under [`message_id(n)`](message_id), claimed after `attempts`
/// earlier attempts.
fn claimed(seal: &FakeSeal, n: u128, mail: &OutgoingMail, attempts: u32) -> ClaimedMail {
    let id = message_id(n);
    ClaimedMail {
        mail: SealedMail {
            id,
            kind: MailKind::Verification,
            created_at: now() - TimeDelta::minutes(3),
            sealed: seal.seal(id, mail).unwrap(),
        },
        attempts,
    }
}

/// The outbox hands out `due` once, at [`now`], leased for the settings' lease, at most a
/// batch of them.
fn claim(fx: &mut Fixture, settings: &DeliverySettings, due: Vec<ClaimedMail>) {
    let (lease, batch) = (settings.lease, settings.batch);
    fx.outbox
        .expect_claim()
        .withf(move |at, lease_until, limit| {
            *at == now() && *lease_until == now() + lease && *limit == batch
        })
        .times(1)
        .returning(move |_, _, _| Ok(due.clone()));
}

type Failed = (Uuid, DateTime<Utc>, String, Option<DateTime<Utc>>);

/// Records every `mark_sent` and `mark_failed`; each succeeds.
fn record_outcomes(fx: &mut Fixture) -> (Calls<(Uuid, DateTime<Utc>)>, Calls<Failed>) {
    let sent = Calls::new();
    let recorder = sent.clone();
    fx.outbox.expect_mark_sent().returning(move |id, at| {
        recorder.record((id, at));
        Ok(())
    });
    let failed = Calls::new();
    let recorder = failed.clone();
    fx.outbox
        .expect_mark_failed()
        .returning(move |id, at, reason, retry_at| {
            recorder.record((id, at, reason, retry_at));
            Ok(())
        });
    (sent, failed)
}

/// The mailer answers each message with `outcome`, recording what it was handed.
fn mailer(
    fx: &mut Fixture,
    outcome: fn(Uuid) -> Result<(), MailError>,
) -> Calls<(Uuid, OutgoingMail)> {
    let calls = Calls::new();
    let recorder = calls.clone();
    fx.mailer.expect_send().returning(move |id, mail| {
        recorder.record((id, mail));
        outcome(id)
    });
    calls
}

fn worker(fx: Fixture, settings: DeliverySettings) -> MailDelivery {
    let (ports, _) = fx.ports();
    MailDelivery::new(ports, settings)
}

fn transient(why: &str) -> MailError {
    MailError::Transient(why.to_owned().into())
}

#[tokio::test]
async fn deliver_due_opens_sends_and_marks_each_claimed_message_sent() {
    let mut fx = Fixture::new();
    let settings = DeliverySettings::default();
    let first = mail_to("alice@example.com", "Confirm your e-mail address");
    let second = mail_to("bob@example.com", "Reset your password");
    let due = vec![
        claimed(&fx.sealed, 1, &first, 0),
        claimed(&fx.sealed, 2, &second, 3),
    ];
    claim(&mut fx, &settings, due);
    let handed = mailer(&mut fx, |_| Ok(()));
    let (sent, failed) = record_outcomes(&mut fx);

    let report = worker(fx, settings).deliver_due().await.unwrap();

    assert_eq!(
        report,
        DeliveryReport {
            sent: 2,
            retrying: 0,
            dead: 0
        }
    );
    // The mailer gets the opened message under its outbox id (its Message-ID).
    assert_eq!(
        handed.all(),
        [(message_id(1), first), (message_id(2), second)]
    );
    assert_eq!(sent.all(), [(message_id(1), now()), (message_id(2), now())]);
    assert!(failed.all().is_empty());
}

#[tokio::test]
async fn deliver_due_with_nothing_due_sends_nothing() {
    let mut fx = Fixture::new();
    let settings = DeliverySettings::default();
    claim(&mut fx, &settings, vec![]);
    fx.mailer.expect_send().never();
    fx.outbox.expect_mark_sent().never();
    fx.outbox.expect_mark_failed().never();

    let report = worker(fx, settings).deliver_due().await.unwrap();

    assert_eq!(report, DeliveryReport::default());
}

#[tokio::test]
async fn deliver_due_claims_with_the_configured_lease_and_batch() {
    let mut fx = Fixture::new();
    let settings = DeliverySettings {
        batch: 3,
        lease: TimeDelta::seconds(90),
        ..DeliverySettings::default()
    };
    claim(&mut fx, &settings, vec![]);

    assert!(worker(fx, settings).deliver_due().await.is_ok());
}

#[tokio::test]
async fn a_transient_failure_is_retried_after_the_backoff_of_its_failures() {
    let mut fx = Fixture::new();
    let settings = DeliverySettings::default();
    let mail = mail_to("alice@example.com", "Hello");
    // Two attempts failed before: this is the third failure.
    let due = vec![claimed(&fx.sealed, 1, &mail, 2)];
    claim(&mut fx, &settings, due);
    mailer(&mut fx, |_| Err(transient("connection refused")));
    let (sent, failed) = record_outcomes(&mut fx);
    let backoff = settings.backoff(3);
    assert_eq!(backoff, TimeDelta::seconds(40));

    let report = worker(fx, settings).deliver_due().await.unwrap();

    assert_eq!(
        report,
        DeliveryReport {
            sent: 0,
            retrying: 1,
            dead: 0
        }
    );
    assert!(sent.all().is_empty());
    let [(id, at, reason, retry_at)] = failed.all().try_into().unwrap();
    assert_eq!(
        (id, at, retry_at),
        (message_id(1), now(), Some(now() + backoff))
    );
    assert_eq!(reason, "mail could not be sent now: connection refused");
}

#[tokio::test]
async fn the_last_allowed_attempt_gives_the_message_up() {
    let mut fx = Fixture::new();
    let settings = DeliverySettings::default();
    let max = settings.max_attempts;
    let mail = mail_to("alice@example.com", "Hello");
    // One before the last still retries; the last allowed one does not.
    let due = vec![
        claimed(&fx.sealed, 1, &mail, max - 2),
        claimed(&fx.sealed, 2, &mail, max - 1),
    ];
    claim(&mut fx, &settings, due);
    mailer(&mut fx, |_| Err(transient("timed out")));
    let (_, failed) = record_outcomes(&mut fx);
    let backoff = settings.backoff(max - 1);

    let report = worker(fx, settings).deliver_due().await.unwrap();

    assert_eq!(
        report,
        DeliveryReport {
            sent: 0,
            retrying: 1,
            dead: 1
        }
    );
    let retries: Vec<_> = failed
        .all()
        .into_iter()
        .map(|(id, _, _, retry_at)| (id, retry_at))
        .collect();
    assert_eq!(
        retries,
        [
            (message_id(1), Some(now() + backoff)),
            (message_id(2), None)
        ]
    );
}

#[tokio::test]
async fn a_permanent_refusal_gives_the_message_up_at_once() {
    let mut fx = Fixture::new();
    let settings = DeliverySettings::default();
    let mail = mail_to("nobody@example.com", "Hello");
    let due = vec![claimed(&fx.sealed, 1, &mail, 0)];
    claim(&mut fx, &settings, due);
    mailer(&mut fx, |_| {
        Err(MailError::Permanent("550 no such user".into()))
    });
    let (sent, failed) = record_outcomes(&mut fx);

    let report = worker(fx, settings).deliver_due().await.unwrap();

    assert_eq!(
        report,
        DeliveryReport {
            sent: 0,
            retrying: 0,
            dead: 1
        }
    );
    assert!(sent.all().is_empty());
    let [(id, at, reason, retry_at)] = failed.all().try_into().unwrap();
    assert_eq!((id, at, retry_at), (message_id(1), now(), None));
    assert_eq!(reason, "mail was refused: 550 no such user");
}

#[tokio::test]
async fn a_message_that_does_not_open_is_given_up_unsent() {
    let mut fx = Fixture::new();
    let settings = DeliverySettings::default();
    let mail = mail_to("alice@example.com", "Hello");
    // Sealed under another key (this seal never saw it), and bytes moved from another row.
    let foreign = ClaimedMail {
        mail: SealedMail {
            id: message_id(1),
            kind: MailKind::PasswordReset,
            created_at: now(),
            sealed: message_id(1).as_bytes().to_vec(),
        },
        attempts: 0,
    };
    let mut moved = claimed(&fx.sealed, 2, &mail, 0);
    moved.mail.sealed = message_id(3).as_bytes().to_vec();
    claim(&mut fx, &settings, vec![foreign, moved]);
    fx.mailer.expect_send().never();
    let (sent, failed) = record_outcomes(&mut fx);

    let report = worker(fx, settings).deliver_due().await.unwrap();

    assert_eq!(
        report,
        DeliveryReport {
            sent: 0,
            retrying: 0,
            dead: 2
        }
    );
    assert!(sent.all().is_empty());
    let failed = failed.all();
    assert_eq!(
        failed
            .iter()
            .map(|(id, _, _, retry_at)| (*id, *retry_at))
            .collect::<Vec<_>>(),
        [(message_id(1), None), (message_id(2), None)]
    );
    for (_, _, reason, _) in &failed {
        assert!(
            reason.starts_with("mail was refused: mail could not be sealed or opened"),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn one_round_reports_each_outcome() {
    let mut fx = Fixture::new();
    let settings = DeliverySettings::default();
    let mail = mail_to("alice@example.com", "Hello");
    let due = vec![
        claimed(&fx.sealed, 1, &mail, 0),
        claimed(&fx.sealed, 2, &mail, 0),
        claimed(&fx.sealed, 3, &mail, 0),
    ];
    claim(&mut fx, &settings, due);
    mailer(&mut fx, |id| match id {
        id if id == message_id(1) => Ok(()),
        id if id == message_id(2) => Err(transient("busy")),
        _ => Err(MailError::Permanent("refused".into())),
    });
    let (sent, failed) = record_outcomes(&mut fx);

    let report = worker(fx, settings).deliver_due().await.unwrap();

    assert_eq!(
        report,
        DeliveryReport {
            sent: 1,
            retrying: 1,
            dead: 1
        }
    );
    assert_eq!(sent.all(), [(message_id(1), now())]);
    assert_eq!(failed.all().len(), 2);
}

#[tokio::test]
async fn the_recorded_reason_is_one_bounded_line() {
    let mut fx = Fixture::new();
    let settings = DeliverySettings::default();
    let mail = mail_to("alice@example.com", "Hello");
    let due = vec![claimed(&fx.sealed, 1, &mail, 0)];
    claim(&mut fx, &settings, due);
    mailer(&mut fx, |_| {
        Err(transient(&format!("421 busy\r\n{}", "x".repeat(1000))))
    });
    let (_, failed) = record_outcomes(&mut fx);

    worker(fx, settings).deliver_due().await.unwrap();

    let [(_, _, reason, _)] = failed.all().try_into().unwrap();
    assert!(
        reason.starts_with("mail could not be sent now: 421 busy  x"),
        "{reason}"
    );
    assert!(!reason.chars().any(char::is_control), "{reason:?}");
    assert_eq!(reason.chars().count(), 500);
}

#[tokio::test]
async fn the_recorded_reason_masks_the_addresses_a_server_echoes() {
    let mut fx = Fixture::new();
    let settings = DeliverySettings::default();
    let mail = mail_to("alice@example.com", "Hello");
    let due = vec![claimed(&fx.sealed, 1, &mail, 0)];
    claim(&mut fx, &settings, due);
    mailer(&mut fx, |_| {
        Err(transient(
            "450 4.2.1 <alice@example.com>: mailbox of alice@example.com busy",
        ))
    });
    let (_, failed) = record_outcomes(&mut fx);

    worker(fx, settings).deliver_due().await.unwrap();

    let [(_, _, reason, _)] = failed.all().try_into().unwrap();
    assert!(!reason.contains("alice"), "{reason}");
    assert!(
        reason.contains("450 4.2.1 <address>: mailbox of address busy"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_outbox_that_cannot_record_the_outcome_fails_the_round() {
    for on_sent in [true, false] {
        let mut fx = Fixture::new();
        let settings = DeliverySettings::default();
        let mail = mail_to("alice@example.com", "Hello");
        // The first message's outcome cannot be recorded: the second is left for its lease.
        let due = vec![
            claimed(&fx.sealed, 1, &mail, 0),
            claimed(&fx.sealed, 2, &mail, 0),
        ];
        claim(&mut fx, &settings, due);
        let handed = if on_sent {
            // Tried three times: the server has the message, and an unrecorded delivery is
            // sent again after its lease.
            fx.outbox
                .expect_mark_sent()
                .times(3)
                .returning(|_, _| Err(StoreError::Unavailable("outbox locked".into())));
            fx.outbox.expect_mark_failed().never();
            mailer(&mut fx, |_| Ok(()))
        } else {
            fx.outbox
                .expect_mark_failed()
                .times(1)
                .returning(|_, _, _, _| Err(StoreError::Unavailable("outbox locked".into())));
            fx.outbox.expect_mark_sent().never();
            mailer(&mut fx, |_| Err(transient("down")))
        };

        let error = worker(fx, settings).deliver_due().await.unwrap_err();

        assert!(
            matches!(error, StoreError::Unavailable(_)),
            "on sent {on_sent}: {error:?}"
        );
        assert_eq!(handed.all().len(), 1, "on sent {on_sent}");
    }
}

#[tokio::test]
async fn an_outbox_that_cannot_be_claimed_from_fails_the_round_unsent() {
    let mut fx = Fixture::new();
    fx.outbox
        .expect_claim()
        .times(1)
        .returning(|_, _, _| Err(StoreError::Unavailable("pool timed out".into())));
    fx.mailer.expect_send().never();

    let error = worker(fx, DeliverySettings::default())
        .deliver_due()
        .await
        .unwrap_err();

    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn status_counts_the_dead_of_the_last_hour() {
    let mut fx = Fixture::new();
    let status = OutboxStatus {
        pending: 4,
        retrying: 1,
        dead: 2,
    };
    fx.outbox
        .expect_status()
        .withf(|since| *since == now() - TimeDelta::hours(1))
        .times(1)
        .returning(move |_| Ok(status));

    let answered = worker(fx, DeliverySettings::default())
        .status()
        .await
        .unwrap();

    assert_eq!(answered, status);
}

// ----- the messages ---------------------------------------------------------------------------

#[test]
fn lifetimes_are_written_as_a_person_would() {
    let cases = [
        (TimeDelta::hours(24), "24 hours"),
        (TimeDelta::hours(1), "1 hour"),
        (TimeDelta::minutes(30), "30 minutes"),
        (TimeDelta::minutes(1), "1 minute"),
        (TimeDelta::minutes(90), "90 minutes"),
        (TimeDelta::minutes(120), "2 hours"),
        (TimeDelta::hours(48), "48 hours"),
    ];
    for (duration, written) in cases {
        assert_eq!(human_duration(duration), written, "{duration}");
    }
}

#[test]
fn a_link_is_escaped_in_the_html_and_verbatim_in_the_text() {
    let settings = AuthSettings {
        verify_email_url: Some("https://app.example.com/v?a=1&token={token}".to_owned()),
        ..AuthSettings::default()
    };
    let mail = messages::verification(
        &settings,
        &Email::parse("alice@example.com").unwrap(),
        "alice",
        "tok",
    );
    assert!(
        mail.text
            .contains("https://app.example.com/v?a=1&token=tok"),
        "{}",
        mail.text
    );
    assert!(
        mail.html
            .contains("href=\"https://app.example.com/v?a=1&amp;token=tok\""),
        "{}",
        mail.html
    );
    assert!(!mail.html.contains("a=1&token"), "{}", mail.html);
    assert!(mail.html.starts_with("<!DOCTYPE html>"), "{}", mail.html);
}

#[test]
fn the_e_mail_changed_notice_goes_to_the_old_address_and_only_hints_at_the_new_one() {
    let old = Email::parse("alice@example.com").unwrap();
    let new = Email::parse("alice@elsewhere.example").unwrap();
    let mail = messages::email_changed(&old, &alice(), &new, now());
    assert_eq!(mail.to, old);
    assert_eq!(mail.subject, "Your e-mail address was changed");
    // The old mailbox may be why the address changed: it learns only a hint of the new one.
    for body in [&mail.text, &mail.html] {
        assert!(body.contains("a***@elsewhere.example"), "{body}");
        assert!(!body.contains("alice@elsewhere.example"), "{body}");
        assert!(body.contains("2025-06-15 15:06 UTC"), "{body}");
    }
    assert_carries_no_token(&mail);
}

// ----- AccountService::change_password's notice ----------------------------------------------

const NEW_PASSWORD: &str = "an entirely new passphrase";

#[tokio::test]
async fn change_password_queues_a_password_changed_notice_with_the_change() {
    let mut fx = Fixture::new();
    fx.users
        .expect_find_credentials_by_id()
        .withf(|id| *id == ALICE)
        .times(1)
        .returning(|_| Ok(Some(credentials(alice()))));
    fx.hasher
        .expect_verify()
        .withf(|candidate, hash| {
            candidate.expose_secret() == PASSWORD && hash.as_str() == STORED_HASH
        })
        .times(1)
        .returning(|_, _| Ok(true));
    fx.strength_scores(4, None);
    fx.hashes(NEW_PASSWORD);
    fx.sessions
        .expect_live_for_user()
        .times(1)
        .returning(|_| Ok(vec![SESSION, SESSION_2]));
    fx.record_fast_path();
    let journals = Calls::new();
    let recorder = journals.clone();
    fx.users
        .expect_change_password()
        .withf(|id, _, _, keep, at, _| *id == ALICE && *keep == Some(SESSION) && *at == now())
        .times(1)
        .returning(move |_, _, _, _, _, journal| {
            recorder.record(journal);
            Ok(vec![SESSION_2])
        });
    // Queued, not sent.
    fx.mailer.expect_send().never();
    let sealed = fx.sealed.clone();

    fx.account()
        .change_password(
            &principal_from_client(alice(), SESSION),
            &secret(PASSWORD),
            secret(NEW_PASSWORD),
        )
        .await
        .unwrap();

    let changed = event(
        1,
        AuditAction::UserPasswordChanged,
        Some(ALICE),
        AuditTarget::User(ALICE),
        &client(),
    );
    let [journal] = journals.all().try_into().unwrap();
    assert_eq!(
        journal,
        Journal::of(changed).with_mail(sealed_mail(2, MailKind::PasswordChanged))
    );
    let [notice] = sealed.of(&journal).try_into().unwrap();
    assert_eq!(notice.to.as_str(), "alice@example.com");
    assert_eq!(notice.subject, "Your password was changed");
    assert!(
        notice
            .text
            .contains("The password of your account was changed on 2025-06-15 15:06 UTC"),
        "{}",
        notice.text
    );
    assert!(
        !notice.text.contains("was reset with a link"),
        "not a reset: {}",
        notice.text
    );
    assert_carries_no_token(&notice);
    let text = format!("{} {}", notice.text, notice.html);
    for secret in [PASSWORD, NEW_PASSWORD, STORED_HASH] {
        assert!(!text.contains(secret), "never {secret}: {text}");
    }
}
