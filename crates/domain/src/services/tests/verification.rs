//! `verify_email` and `resend_verification`: spending and re-sending e-mail verification tokens.

use chrono::{DateTime, TimeDelta, Utc};

use super::fixture::{
    ALICE, Calls, Fixture, SESSION, alice, client, digest, event, now, principal, secret, token,
};
use crate::model::{AuditAction, AuditTarget, Journal, User};
use crate::ports::{ActionPurpose, ActionToken, MailError, StoreError, StoredActionToken};
use crate::services::{ClientInfo, ResendVerificationError, VerifyEmailError};

const MAILED: &str = "the-token-from-the-mail";

fn unverified() -> User {
    let mut user = alice();
    user.email_verified = false;
    user
}

/// Alice's verification token for [`MAILED`], issued an hour ago, valid for `remaining`, and
/// spent at `used_at`.
fn stored_token(
    purpose: ActionPurpose,
    remaining: TimeDelta,
    used_at: Option<DateTime<Utc>>,
) -> StoredActionToken {
    StoredActionToken {
        token: ActionToken {
            hash: digest(MAILED),
            user_id: ALICE,
            purpose,
            created_at: now() - TimeDelta::hours(1),
            expires_at: now() + remaining,
        },
        used_at,
    }
}

/// The store is asked once for the digest of [`MAILED`] and answers `found`.
fn lookup(fx: &mut Fixture, found: Option<StoredActionToken>) {
    fx.users
        .expect_find_action_token()
        .withf(|hash| *hash == digest(MAILED))
        .times(1)
        .returning(move |_| Ok(found.clone()));
}

/// The store is asked once to spend the digest of [`MAILED`] for Alice, at the fixed time, and
/// answers `spent`; the journal of that call is returned.
fn spend(fx: &mut Fixture, spent: bool) -> Calls<Journal> {
    let journals = Calls::new();
    let recorder = journals.clone();
    fx.users
        .expect_verify_email()
        .withf(|hash, user, at, _| *hash == digest(MAILED) && *user == ALICE && *at == now())
        .times(1)
        .returning(move |_, _, _, journal| {
            recorder.record(journal);
            Ok(spent)
        });
    journals
}

#[tokio::test]
async fn verify_email_spends_the_digest_of_the_presented_token() {
    let mut fx = Fixture::new();
    lookup(
        &mut fx,
        Some(stored_token(
            ActionPurpose::VerifyEmail,
            TimeDelta::hours(23),
            None,
        )),
    );
    spend(&mut fx, true);

    let verified = fx
        .auth()
        .verify_email(&secret(MAILED), &ClientInfo::default())
        .await
        .unwrap();

    assert_eq!(verified, ALICE);
}

#[tokio::test]
async fn verify_email_records_the_verification_in_the_same_call_that_spends_the_token() {
    let mut fx = Fixture::new();
    lookup(
        &mut fx,
        Some(stored_token(
            ActionPurpose::VerifyEmail,
            TimeDelta::hours(23),
            None,
        )),
    );
    let journals = spend(&mut fx, true);
    let appended = fx.appended.clone();

    fx.auth()
        .verify_email(&secret(MAILED), &client())
        .await
        .unwrap();

    let verified = event(
        1,
        AuditAction::UserEmailVerified,
        Some(ALICE),
        AuditTarget::User(ALICE),
        &client(),
    );
    assert_eq!(journals.all(), [Journal::of(verified)]);
    let text = format!("{:?}", journals.all());
    assert!(
        !text.contains(MAILED) && !text.contains(digest(MAILED).as_str()),
        "never the token: {text}"
    );
    assert!(appended.all().is_empty());
}

#[tokio::test]
async fn verify_email_with_an_unknown_spent_expired_or_foreign_token_is_refused_unspent() {
    let cases = [
        ("unknown", None),
        (
            "spent",
            Some(stored_token(
                ActionPurpose::VerifyEmail,
                TimeDelta::hours(23),
                Some(now() - TimeDelta::minutes(5)),
            )),
        ),
        (
            "expired this instant",
            Some(stored_token(
                ActionPurpose::VerifyEmail,
                TimeDelta::zero(),
                None,
            )),
        ),
        (
            "expired",
            Some(stored_token(
                ActionPurpose::VerifyEmail,
                -TimeDelta::seconds(1),
                None,
            )),
        ),
        (
            "for a password reset",
            Some(stored_token(
                ActionPurpose::ResetPassword,
                TimeDelta::hours(1),
                None,
            )),
        ),
    ];
    for (case, found) in cases {
        let mut fx = Fixture::new();
        lookup(&mut fx, found);
        fx.users.expect_verify_email().never();
        let appended = fx.appended.clone();

        let error = fx
            .auth()
            .verify_email(&secret(MAILED), &client())
            .await
            .unwrap_err();

        assert!(
            matches!(error, VerifyEmailError::InvalidToken),
            "{case}: {error:?}"
        );
        assert!(appended.all().is_empty(), "{case}");
    }
}

#[tokio::test]
async fn verify_email_with_a_token_spent_concurrently_is_refused() {
    // The lookup saw it unspent; by the time it is spent, another call has spent it.
    let mut fx = Fixture::new();
    lookup(
        &mut fx,
        Some(stored_token(
            ActionPurpose::VerifyEmail,
            TimeDelta::hours(23),
            None,
        )),
    );
    spend(&mut fx, false);
    let appended = fx.appended.clone();

    let error = fx
        .auth()
        .verify_email(&secret(MAILED), &client())
        .await
        .unwrap_err();

    assert!(matches!(error, VerifyEmailError::InvalidToken), "{error:?}");
    assert!(
        appended.all().is_empty(),
        "the refused journal is not written elsewhere"
    );
}

#[tokio::test]
async fn verify_email_reports_an_unavailable_store_as_unavailable() {
    // At the lookup, and at the spending.
    for at_lookup in [true, false] {
        let mut fx = Fixture::new();
        if at_lookup {
            fx.users
                .expect_find_action_token()
                .times(1)
                .returning(|_| Err(StoreError::Unavailable("pool timed out".into())));
            fx.users.expect_verify_email().never();
        } else {
            lookup(
                &mut fx,
                Some(stored_token(
                    ActionPurpose::VerifyEmail,
                    TimeDelta::hours(23),
                    None,
                )),
            );
            fx.users
                .expect_verify_email()
                .times(1)
                .returning(|_, _, _, _| Err(StoreError::Unavailable("pool timed out".into())));
        }

        let error = fx
            .auth()
            .verify_email(&secret(MAILED), &ClientInfo::default())
            .await
            .unwrap_err();

        assert!(
            matches!(error, VerifyEmailError::Unavailable(_)),
            "at lookup {at_lookup}: {error:?}"
        );
    }
}

#[tokio::test]
async fn resend_verification_stores_a_new_digest_and_mails_its_token() {
    let mut fx = Fixture::new();
    let verification_ttl = fx.settings.verification_ttl;
    fx.users
        .expect_insert_action_token()
        .withf(move |t| {
            t.hash == digest(&token(1))
                && t.user_id == ALICE
                && t.purpose == ActionPurpose::VerifyEmail
                && t.created_at == now()
                && t.expires_at == now() + verification_ttl
        })
        .times(1)
        .returning(|_| Ok(()));
    fx.mailer
        .expect_send()
        .withf(|mail| mail.to == unverified().email && mail.text.contains(&token(1)))
        .times(1)
        .returning(|_| Ok(()));

    fx.auth()
        .resend_verification(&principal(unverified(), SESSION))
        .await
        .unwrap();
}

#[tokio::test]
async fn resend_verification_for_a_verified_address_sends_nothing() {
    let mut fx = Fixture::new();
    fx.users.expect_insert_action_token().never();
    fx.mailer.expect_send().never();

    fx.auth()
        .resend_verification(&principal(alice(), SESSION))
        .await
        .unwrap();
}

#[tokio::test]
async fn resend_verification_reports_a_mail_failure_as_unavailable() {
    let mut fx = Fixture::new();
    fx.users
        .expect_insert_action_token()
        .times(1)
        .returning(|_| Ok(()));
    fx.mailer
        .expect_send()
        .times(1)
        .returning(|_| Err(MailError("SMTP server refused".into())));

    let error = fx
        .auth()
        .resend_verification(&principal(unverified(), SESSION))
        .await
        .unwrap_err();

    assert!(
        matches!(error, ResendVerificationError::Unavailable(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn resend_verification_sends_no_mail_when_the_token_cannot_be_stored() {
    let mut fx = Fixture::new();
    fx.users
        .expect_insert_action_token()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("pool timed out".into())));
    fx.mailer.expect_send().never();

    let error = fx
        .auth()
        .resend_verification(&principal(unverified(), SESSION))
        .await
        .unwrap_err();

    assert!(
        matches!(error, ResendVerificationError::Unavailable(_)),
        "{error:?}"
    );
}
