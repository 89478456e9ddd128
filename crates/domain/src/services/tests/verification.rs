//! `verify_email` and `resend_verification`: spending and re-sending e-mail verification tokens.

use super::fixture::{ALICE, Fixture, SESSION, alice, digest, now, principal, secret, token};
use crate::model::User;
use crate::ports::{ActionPurpose, MailError, StoreError};
use crate::services::{ResendVerificationError, VerifyEmailError};

const MAILED: &str = "the-token-from-the-mail";

fn unverified() -> User {
    let mut user = alice();
    user.email_verified = false;
    user
}

#[tokio::test]
async fn verify_email_spends_the_digest_of_the_presented_token() {
    let mut fx = Fixture::new();
    fx.users
        .expect_verify_email()
        .withf(|hash, at| *hash == digest(MAILED) && *at == now())
        .times(1)
        .returning(|_, _| Ok(Some(ALICE)));

    let verified = fx.auth().verify_email(&secret(MAILED)).await.unwrap();

    assert_eq!(verified, ALICE);
}

#[tokio::test]
async fn verify_email_with_an_unknown_spent_or_expired_token_is_refused() {
    let mut fx = Fixture::new();
    fx.users
        .expect_verify_email()
        .withf(|hash, _| *hash == digest(MAILED))
        .times(1)
        .returning(|_, _| Ok(None));

    let error = fx.auth().verify_email(&secret(MAILED)).await.unwrap_err();

    assert!(matches!(error, VerifyEmailError::InvalidToken), "{error:?}");
}

#[tokio::test]
async fn verify_email_reports_an_unavailable_store_as_unavailable() {
    let mut fx = Fixture::new();
    fx.users
        .expect_verify_email()
        .times(1)
        .returning(|_, _| Err(StoreError::Unavailable("pool timed out".into())));

    let error = fx.auth().verify_email(&secret(MAILED)).await.unwrap_err();

    assert!(
        matches!(error, VerifyEmailError::Unavailable(_)),
        "{error:?}"
    );
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
