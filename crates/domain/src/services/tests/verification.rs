//! `verify_email` and `resend_verification`: spending and re-sending e-mail verification tokens.

use chrono::{DateTime, TimeDelta, Utc};

use super::fixture::{
    ALICE, Calls, Fixture, SESSION, action_token, alice, assert_carries_token, client, digest,
    event, generated_id, now, principal, sealed_mail, secret, token,
};
use crate::model::{AuditAction, AuditTarget, Email, Journal, MailKind, User};
use crate::ports::{
    ActionPurpose, ActionToken, IssueOutcome, MailSeal as _, StoreError, StoredActionToken,
};
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

type Issued = (ActionToken, Email, Option<DateTime<Utc>>, Journal);

/// The store is asked once to issue a token and answers `outcome`; the calls are returned.
fn issue(fx: &mut Fixture, outcome: IssueOutcome) -> Calls<Issued> {
    let calls = Calls::new();
    let recorder = calls.clone();
    fx.users.expect_issue_action_token().times(1).returning(
        move |token, to, quiet_since, journal| {
            recorder.record((token, to.clone(), quiet_since, journal));
            Ok(outcome)
        },
    );
    calls
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
async fn resend_verification_issues_a_new_digest_with_its_mail_after_the_cooldown() {
    let mut fx = Fixture::new();
    let issued = issue(&mut fx, IssueOutcome::Issued);
    fx.mailer.expect_send().never();
    let verification_ttl = fx.settings.verification_ttl;
    let cooldown = fx.settings.mail_cooldown;
    let link = fx.settings.verification_link(&token(1));
    let sealed = fx.sealed.clone();

    fx.auth()
        .resend_verification(&principal(unverified(), SESSION))
        .await
        .unwrap();

    let [(token_issued, to, quiet_since, journal)] = issued.all().try_into().unwrap();
    assert_eq!(
        token_issued,
        action_token(1, ALICE, ActionPurpose::VerifyEmail, verification_ttl),
        "only the digest is stored"
    );
    // The store re-checks, as it issues, that this is still the account's address.
    assert_eq!(to, unverified().email, "the address the message goes to");
    // None of the same purpose may have gone out within the cooldown.
    assert_eq!(quiet_since, Some(now() - cooldown));
    // The token goes as the call's own argument, the message in its journal.
    assert!(journal.tokens.is_empty(), "{:?}", journal.tokens);
    assert!(journal.events.is_empty(), "{:?}", journal.events);
    assert_eq!(journal.mail, [sealed_mail(1, MailKind::Verification)]);
    let [mail] = sealed.of(&journal).try_into().unwrap();
    assert_carries_token(
        &mail,
        unverified().email.as_str(),
        "Confirm your e-mail address",
        &link,
        &token(1),
    );
}

#[tokio::test]
async fn resend_verification_for_a_verified_address_issues_nothing() {
    let mut fx = Fixture::new();
    fx.users.expect_issue_action_token().never();
    fx.mailer.expect_send().never();
    let sealed = fx.sealed.clone();

    fx.auth()
        .resend_verification(&principal(alice(), SESSION))
        .await
        .unwrap();

    // Nothing was even sealed (the first message would have the first id).
    assert!(
        sealed
            .open(generated_id(1), generated_id(1).as_bytes())
            .is_err()
    );
}

#[tokio::test]
async fn resend_verification_within_the_cooldown_is_too_soon() {
    let mut fx = Fixture::new();
    // The store saw a token of the same purpose since `quiet_since`, and wrote nothing.
    issue(&mut fx, IssueOutcome::Cooldown);
    fx.mailer.expect_send().never();
    let cooldown = fx.settings.mail_cooldown;

    let error = fx
        .auth()
        .resend_verification(&principal(unverified(), SESSION))
        .await
        .unwrap_err();

    let ResendVerificationError::TooSoon { retry_after_secs } = error else {
        panic!("expected TooSoon, got {error:?}");
    };
    assert_eq!(retry_after_secs, cooldown.num_seconds());
}

#[tokio::test]
async fn resend_verification_for_an_address_changed_meanwhile_answers_ok_not_too_soon() {
    let mut fx = Fixture::new();
    // The caller's user still has the old address, but an administrator changed it (which
    // queued a verification for the new one) or deactivated the account: the store writes
    // nothing, and the caller is not told to wait for a cooldown.
    let issued = issue(&mut fx, IssueOutcome::Stale);
    fx.mailer.expect_send().never();

    fx.auth()
        .resend_verification(&principal(unverified(), SESSION))
        .await
        .unwrap();

    let [(_, to, _, _)] = issued.all().try_into().unwrap();
    assert_eq!(to, unverified().email, "the address the caller's user had");
}

#[tokio::test]
async fn resend_verification_reports_an_unavailable_store_as_unavailable() {
    let mut fx = Fixture::new();
    fx.users
        .expect_issue_action_token()
        .times(1)
        .returning(|_, _, _, _| Err(StoreError::Unavailable("pool timed out".into())));
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

#[tokio::test]
async fn resend_verification_never_calls_the_mailer() {
    // Even with a mailer that would fail: the mail is only queued.
    let mut fx = Fixture::new();
    issue(&mut fx, IssueOutcome::Issued);
    fx.mailer.expect_send().never();

    assert!(
        fx.auth()
            .resend_verification(&principal(unverified(), SESSION))
            .await
            .is_ok()
    );
}
