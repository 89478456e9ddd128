//! `forgot_password` and `reset_password`: a reset token and its mail issued together (or not
//! at all, without telling whether the address is an account's), and a reset that spends the
//! token, revokes every session (the fast path first), clears the lockout and queues a notice.

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::ExposeSecret;

use super::fixture::{
    ALICE, Calls, Fixture, SESSION, SESSION_2, SESSION_3, STORED_HASH, action_token, alice,
    assert_carries_no_token, assert_carries_token, client, credentials, digest, event, fields,
    generated_id, inactive, messages, now, sealed_mail, secret, token,
};
use crate::model::{
    AuditAction, AuditTarget, Email, Journal, MailKind, SessionId, TokenHash, UserId,
};
use crate::ports::{
    ActionPurpose, ActionToken, IssueOutcome, Login, MailSeal as _, MockLoginThrottle, StoreError,
    StoredActionToken, ThrottleError,
};
use crate::services::{ForgotPasswordError, ResetPasswordError, ResetRequest};

// ----- forgot_password ------------------------------------------------------------------------

type Issued = (ActionToken, Email, Option<DateTime<Utc>>, Journal);

/// The store looks up the active account for `alice@example.com` once and finds `found`.
fn lookup_alice(fx: &mut Fixture, found: Option<crate::model::User>) {
    fx.users
        .expect_find_credentials()
        .withf(
            |login| matches!(login, Login::Email(email) if email.as_str() == "alice@example.com"),
        )
        .times(1)
        .returning(move |_| Ok(found.clone().map(credentials)));
}

/// The store is asked once to issue a token and answers `outcome`; the calls are returned.
fn issue(fx: &mut Fixture, outcome: fn() -> Result<IssueOutcome, StoreError>) -> Calls<Issued> {
    let calls = Calls::new();
    let recorder = calls.clone();
    fx.users.expect_issue_action_token().times(1).returning(
        move |token, to, quiet_since, journal| {
            recorder.record((token, to.clone(), quiet_since, journal));
            outcome()
        },
    );
    calls
}

/// Nothing is issued, sealed or sent, and no event recorded.
fn nothing_issued(fx: &mut Fixture) {
    fx.users.expect_issue_action_token().never();
    fx.mailer.expect_send().never();
}

/// Whether a message was sealed at all (the first would have the first id).
fn anything_sealed(sealed: &super::fixture::FakeSeal) -> bool {
    sealed
        .open(generated_id(1), generated_id(1).as_bytes())
        .is_ok()
}

#[tokio::test]
async fn forgot_password_issues_a_reset_token_with_its_mail_and_event() {
    let mut fx = Fixture::new();
    lookup_alice(&mut fx, Some(alice()));
    let issued = issue(&mut fx, || Ok(IssueOutcome::Issued));
    fx.mailer.expect_send().never();
    let sealed = fx.sealed.clone();
    let appended = fx.appended.clone();
    let cooldown = fx.settings.mail_cooldown;
    let reset_ttl = fx.settings.reset_ttl;
    assert_eq!(reset_ttl, TimeDelta::hours(1), "the default lifetime");
    let link = fx.settings.reset_link(&token(1));

    fx.auth()
        .forgot_password(" Alice@Example.com ", &client())
        .await
        .unwrap();

    let [(token_issued, to, quiet_since, journal)] = issued.all().try_into().unwrap();
    assert_eq!(
        token_issued,
        action_token(1, ALICE, ActionPurpose::ResetPassword, reset_ttl),
        "only the digest, for a reset, for an hour"
    );
    // The store re-checks, as it issues, that this is still the account's address.
    assert_eq!(to, alice().email, "the address the message goes to");
    assert_eq!(quiet_since, Some(now() - cooldown));
    // The event and the message commit with the token; nobody is signed in, so no actor.
    let requested = event(
        1,
        AuditAction::UserPasswordResetRequested,
        None,
        AuditTarget::User(ALICE),
        &client(),
    );
    assert_eq!(
        journal,
        Journal::of(requested).with_mail(sealed_mail(2, MailKind::PasswordReset))
    );
    let [mail] = sealed.of(&journal).try_into().unwrap();
    assert_eq!(
        link,
        format!("http://localhost:8080/reset-password?token={}", token(1))
    );
    assert_carries_token(
        &mail,
        "alice@example.com",
        "Reset your password",
        &link,
        &token(1),
    );
    assert!(mail.text.contains("expires in 1 hour"), "{}", mail.text);
    assert!(mail.text.contains("Hello alice,"), "{}", mail.text);
    assert!(appended.all().is_empty(), "{:?}", appended.all());
}

#[tokio::test]
async fn forgot_password_uses_the_configured_reset_link() {
    let mut fx = Fixture::new();
    fx.settings.reset_password_url = Some("https://app.example.com/#/reset/{token}".to_owned());
    fx.settings.reset_ttl = TimeDelta::minutes(30);
    lookup_alice(&mut fx, Some(alice()));
    let issued = issue(&mut fx, || Ok(IssueOutcome::Issued));
    let sealed = fx.sealed.clone();

    fx.auth()
        .forgot_password("alice@example.com", &client())
        .await
        .unwrap();

    let [(token_issued, _, _, journal)] = issued.all().try_into().unwrap();
    assert_eq!(token_issued.expires_at, now() + TimeDelta::minutes(30));
    let [mail] = sealed.of(&journal).try_into().unwrap();
    assert_carries_token(
        &mail,
        "alice@example.com",
        "Reset your password",
        &format!("https://app.example.com/#/reset/{}", token(1)),
        &token(1),
    );
    assert!(mail.text.contains("expires in 30 minutes"), "{}", mail.text);
}

#[tokio::test]
async fn forgot_password_for_an_unknown_address_answers_ok_and_writes_nothing() {
    let mut fx = Fixture::new();
    lookup_alice(&mut fx, None);
    nothing_issued(&mut fx);
    let sealed = fx.sealed.clone();
    let appended = fx.appended.clone();

    fx.auth()
        .forgot_password("alice@example.com", &client())
        .await
        .unwrap();

    assert!(!anything_sealed(&sealed));
    assert!(appended.all().is_empty(), "{:?}", appended.all());
}

#[tokio::test]
async fn forgot_password_for_an_inactive_account_answers_ok_and_writes_nothing() {
    let mut fx = Fixture::new();
    lookup_alice(&mut fx, Some(inactive(alice())));
    nothing_issued(&mut fx);
    let sealed = fx.sealed.clone();
    let appended = fx.appended.clone();

    fx.auth()
        .forgot_password("alice@example.com", &client())
        .await
        .unwrap();

    assert!(!anything_sealed(&sealed));
    assert!(appended.all().is_empty(), "{:?}", appended.all());
}

#[tokio::test]
async fn forgot_password_with_a_malformed_address_names_email_and_looks_nothing_up() {
    for raw in ["not-an-email", "", "alice@"] {
        let mut fx = Fixture::new();
        fx.users.expect_find_credentials().never();
        nothing_issued(&mut fx);

        let error = fx.auth().forgot_password(raw, &client()).await.unwrap_err();

        let ForgotPasswordError::Invalid(errors) = error else {
            panic!("{raw:?}: expected Invalid, got {error:?}");
        };
        assert_eq!(fields(&errors), ["email"], "{raw:?}");
        assert!(!messages(&errors, "email").is_empty(), "{raw:?}");
    }
}

#[tokio::test]
async fn forgot_password_within_the_cooldown_answers_ok_and_records_nothing_else() {
    let mut fx = Fixture::new();
    lookup_alice(&mut fx, Some(alice()));
    // One went out within the cooldown: the store writes nothing (neither token, event nor
    // mail), and the caller cannot tell.
    issue(&mut fx, || Ok(IssueOutcome::Cooldown));
    fx.mailer.expect_send().never();
    let appended = fx.appended.clone();

    fx.auth()
        .forgot_password("alice@example.com", &client())
        .await
        .unwrap();

    assert!(appended.all().is_empty(), "{:?}", appended.all());
}

#[tokio::test]
async fn forgot_password_for_an_address_changed_or_deactivated_meanwhile_answers_ok() {
    let mut fx = Fixture::new();
    lookup_alice(&mut fx, Some(alice()));
    // Between the lookup and the issue an administrator moved the account to another address
    // (or deactivated it): the store writes nothing, and the caller is answered as for an
    // address that is no account's.
    let issued = issue(&mut fx, || Ok(IssueOutcome::Stale));
    fx.mailer.expect_send().never();
    let appended = fx.appended.clone();

    fx.auth()
        .forgot_password("alice@example.com", &client())
        .await
        .unwrap();

    let [(_, to, _, _)] = issued.all().try_into().unwrap();
    assert_eq!(to.as_str(), "alice@example.com", "the address looked up");
    assert!(appended.all().is_empty(), "{:?}", appended.all());
}

#[tokio::test]
async fn forgot_password_for_an_account_deleted_meanwhile_answers_ok() {
    let mut fx = Fixture::new();
    lookup_alice(&mut fx, Some(alice()));
    issue(&mut fx, || Err(StoreError::NotFound));
    let appended = fx.appended.clone();

    fx.auth()
        .forgot_password("alice@example.com", &client())
        .await
        .unwrap();

    assert!(appended.all().is_empty(), "{:?}", appended.all());
}

#[tokio::test]
async fn forgot_password_reports_an_unavailable_store_as_unavailable() {
    for at_lookup in [true, false] {
        let mut fx = Fixture::new();
        if at_lookup {
            fx.users
                .expect_find_credentials()
                .times(1)
                .returning(|_| Err(StoreError::Unavailable("pool timed out".into())));
            nothing_issued(&mut fx);
        } else {
            lookup_alice(&mut fx, Some(alice()));
            issue(&mut fx, || {
                Err(StoreError::Unavailable("pool timed out".into()))
            });
        }

        let error = fx
            .auth()
            .forgot_password("alice@example.com", &client())
            .await
            .unwrap_err();

        assert!(
            matches!(error, ForgotPasswordError::Unavailable(_)),
            "at lookup {at_lookup}: {error:?}"
        );
    }
}

// ----- reset_password -------------------------------------------------------------------------

const MAILED: &str = "the-reset-token-from-the-mail";
const NEW_PASSWORD: &str = "a brand new passphrase";

fn request(new_password: &str) -> ResetRequest {
    ResetRequest {
        token: secret(MAILED),
        new_password: secret(new_password),
    }
}

/// Alice's token for [`MAILED`], issued ten minutes ago, valid for `remaining`, spent at
/// `used_at`.
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
            created_at: now() - TimeDelta::minutes(10),
            expires_at: now() + remaining,
        },
        used_at,
    }
}

fn spendable() -> Option<StoredActionToken> {
    Some(stored_token(
        ActionPurpose::ResetPassword,
        TimeDelta::minutes(50),
        None,
    ))
}

/// The store is asked once for the digest of [`MAILED`] and answers `found`.
fn lookup_token(fx: &mut Fixture, found: Option<StoredActionToken>) {
    fx.users
        .expect_find_action_token()
        .withf(|hash| *hash == digest(MAILED))
        .times(1)
        .returning(move |_| Ok(found.clone()));
}

/// The store finds Alice (by the token's user) as `found`.
fn find_alice(fx: &mut Fixture, found: Option<crate::model::User>) {
    fx.users
        .expect_find_by_id()
        .withf(|id| *id == ALICE)
        .times(1)
        .returning(move |_| Ok(found.clone()));
}

/// No password is hashed or set, no session revoked, no lockout cleared.
fn nothing_reset(fx: &mut Fixture) {
    fx.hasher.expect_hash().never();
    fx.users.expect_reset_password().never();
    fx.sessions.expect_live_for_user().never();
    fx.revocation.expect_revoke().never();
    fx.mailer.expect_send().never();
    let mut throttle = MockLoginThrottle::new();
    throttle.expect_clear().never();
    fx.throttle = Some(throttle);
}

/// Everything a reset does, in order, in one log: `"fast path <session>"`, `"store"`,
/// `"clear <key>"`.
type Log = Calls<String>;

fn name(session: SessionId) -> &'static str {
    match session {
        SESSION => "SESSION",
        SESSION_2 => "SESSION_2",
        SESSION_3 => "SESSION_3",
        _ => "another session",
    }
}

type StoredReset = (TokenHash, UserId, String, DateTime<Utc>, Journal);

/// The fast-path revocations `(session, until)`.
type FastPath = Calls<(SessionId, DateTime<Utc>)>;

/// A reset up to the store: the token is spendable, Alice active, the password strong and
/// hashed, her live sessions `live`; the store answers `revoked`. The fast path and the
/// throttle log to `log` (the throttle clears with `clear`).
fn reset_setup(
    fx: &mut Fixture,
    live: Vec<SessionId>,
    revoked: Option<Vec<SessionId>>,
    clear: fn() -> Result<(), ThrottleError>,
) -> (Log, Calls<StoredReset>, FastPath) {
    lookup_token(fx, spendable());
    find_alice(fx, Some(alice()));
    fx.strength_scores(4, None);
    fx.hashes(NEW_PASSWORD);
    fx.sessions
        .expect_live_for_user()
        .withf(|user| *user == ALICE)
        .times(1)
        .returning(move |_| Ok(live.clone()));
    let log = Log::new();
    let fast_path = Calls::new();
    let (fast_log, fast_recorder) = (log.clone(), fast_path.clone());
    fx.revocation
        .expect_revoke()
        .returning(move |session, until| {
            fast_log.record(format!("fast path {}", name(session)));
            fast_recorder.record((session, until));
            Ok(())
        });
    let resets = Calls::new();
    let (store_log, recorder) = (log.clone(), resets.clone());
    fx.users
        .expect_reset_password()
        .times(1)
        .returning(move |token, user, hash, at, journal| {
            store_log.record("store".to_owned());
            recorder.record((token.clone(), user, hash.as_str().to_owned(), at, journal));
            Ok(revoked.clone())
        });
    let mut throttle = MockLoginThrottle::new();
    let clear_log = log.clone();
    throttle.expect_clear().returning(move |key| {
        clear_log.record(format!("clear {key}"));
        clear()
    });
    fx.throttle = Some(throttle);
    (log, resets, fast_path)
}

#[tokio::test]
async fn reset_password_sets_the_new_hash_and_revokes_every_session_fast_path_first() {
    let mut fx = Fixture::new();
    // SESSION_3 opens between the listing and the store's transaction: only the store's
    // answer names it, so it goes on the fast path after.
    let (log, resets, fast_path) = reset_setup(
        &mut fx,
        vec![SESSION, SESSION_2],
        Some(vec![SESSION, SESSION_2, SESSION_3]),
        || Ok(()),
    );
    fx.mailer.expect_send().never();
    let window = fx.settings.revocation_window();
    let appended = fx.appended.clone();

    fx.auth()
        .reset_password(request(NEW_PASSWORD), &client())
        .await
        .unwrap();

    assert_eq!(
        log.all(),
        [
            "fast path SESSION",
            "fast path SESSION_2",
            "store",
            "clear login:alice@example.com",
            "clear login:alice",
            "clear account:00000000-0000-0000-0000-0000000a11ce",
            "clear password:00000000-0000-0000-0000-0000000a11ce",
            "fast path SESSION_3",
        ]
    );
    let until = now() + window;
    assert_eq!(
        fast_path.all(),
        [(SESSION, until), (SESSION_2, until), (SESSION_3, until)]
    );
    let [(token, user, hash, at, _)] = resets.all().try_into().unwrap();
    assert_eq!(token, digest(MAILED), "the digest, never the token");
    assert_eq!((user, hash.as_str(), at), (ALICE, STORED_HASH, now()));
    assert!(appended.all().is_empty(), "{:?}", appended.all());
}

#[tokio::test]
async fn reset_password_journals_the_event_and_a_notice_with_the_reset() {
    let mut fx = Fixture::new();
    let (_, resets, _) = reset_setup(&mut fx, vec![], Some(vec![]), || Ok(()));
    let sealed = fx.sealed.clone();

    fx.auth()
        .reset_password(request(NEW_PASSWORD), &client())
        .await
        .unwrap();

    let [(_, _, _, _, journal)] = resets.all().try_into().unwrap();
    let reset = event(
        1,
        AuditAction::UserPasswordReset,
        Some(ALICE),
        AuditTarget::User(ALICE),
        &client(),
    );
    assert_eq!(
        journal,
        Journal::of(reset).with_mail(sealed_mail(2, MailKind::PasswordChanged))
    );
    let [notice] = sealed.of(&journal).try_into().unwrap();
    assert_eq!(notice.to.as_str(), "alice@example.com");
    assert_eq!(notice.subject, "Your password was changed");
    assert!(
        notice
            .text
            .contains("was reset with a link sent to this address"),
        "{}",
        notice.text
    );
    assert!(
        notice.text.contains("2025-06-15 15:06 UTC"),
        "{}",
        notice.text
    );
    assert_carries_no_token(&notice);
    let text = format!("{journal:?} {} {}", notice.text, notice.html);
    for secret in [MAILED, NEW_PASSWORD, STORED_HASH] {
        assert!(!text.contains(secret), "never {secret}: {text}");
    }
}

#[tokio::test]
async fn reset_password_with_an_unknown_spent_expired_or_foreign_token_is_refused_unwritten() {
    let cases = [
        ("unknown", None),
        (
            "spent",
            Some(stored_token(
                ActionPurpose::ResetPassword,
                TimeDelta::minutes(50),
                Some(now() - TimeDelta::minutes(1)),
            )),
        ),
        (
            "expired this instant",
            Some(stored_token(
                ActionPurpose::ResetPassword,
                TimeDelta::zero(),
                None,
            )),
        ),
        (
            "expired",
            Some(stored_token(
                ActionPurpose::ResetPassword,
                -TimeDelta::seconds(1),
                None,
            )),
        ),
        (
            "for an e-mail verification",
            Some(stored_token(
                ActionPurpose::VerifyEmail,
                TimeDelta::hours(23),
                None,
            )),
        ),
    ];
    for (case, found) in cases {
        let mut fx = Fixture::new();
        lookup_token(&mut fx, found);
        fx.users.expect_find_by_id().never();
        fx.strength.expect_estimate().never();
        nothing_reset(&mut fx);
        let appended = fx.appended.clone();

        let error = fx
            .auth()
            .reset_password(request(NEW_PASSWORD), &client())
            .await
            .unwrap_err();

        assert!(
            matches!(error, ResetPasswordError::InvalidToken),
            "{case}: {error:?}"
        );
        assert!(appended.all().is_empty(), "{case}");
    }
}

#[tokio::test]
async fn reset_password_for_an_inactive_or_deleted_account_is_refused_unwritten() {
    for (case, found) in [("inactive", Some(inactive(alice()))), ("deleted", None)] {
        let mut fx = Fixture::new();
        lookup_token(&mut fx, spendable());
        find_alice(&mut fx, found);
        fx.strength.expect_estimate().never();
        nothing_reset(&mut fx);

        let error = fx
            .auth()
            .reset_password(request(NEW_PASSWORD), &client())
            .await
            .unwrap_err();

        assert!(
            matches!(error, ResetPasswordError::InvalidToken),
            "{case}: {error:?}"
        );
    }
}

#[tokio::test]
async fn reset_password_with_a_weak_password_names_new_password_and_writes_nothing() {
    let mut fx = Fixture::new();
    lookup_token(&mut fx, spendable());
    find_alice(&mut fx, Some(alice()));
    let below_minimum = fx.settings.password_rules.min_score - 1;
    // The estimator sees the account's own words.
    fx.strength
        .expect_estimate()
        .withf(|password, inputs| {
            let has = |word: &str| inputs.iter().any(|i| i == word);
            password.secret().expose_secret() == NEW_PASSWORD
                && has("alice@example.com")
                && has("alice")
        })
        .times(1)
        .return_const(crate::ports::StrengthVerdict {
            score: below_minimum,
            feedback: Some("Add another word or two.".to_owned()),
        });
    nothing_reset(&mut fx);

    let error = fx
        .auth()
        .reset_password(request(NEW_PASSWORD), &client())
        .await
        .unwrap_err();

    let ResetPasswordError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["new_password"]);
    assert!(
        messages(&errors, "new_password").contains("Add another word or two."),
        "{errors}"
    );
}

#[tokio::test]
async fn reset_password_with_a_too_short_password_names_new_password_unestimated() {
    let mut fx = Fixture::new();
    lookup_token(&mut fx, spendable());
    find_alice(&mut fx, Some(alice()));
    fx.strength.expect_estimate().never();
    nothing_reset(&mut fx);

    let error = fx
        .auth()
        .reset_password(request("short"), &client())
        .await
        .unwrap_err();

    let ResetPasswordError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["new_password"]);
    assert!(
        messages(&errors, "new_password").contains("at least 10 characters"),
        "{errors}"
    );
}

#[tokio::test]
async fn reset_password_with_a_token_spent_concurrently_is_refused() {
    // The lookup saw it spendable; the store's transaction found it spent.
    let mut fx = Fixture::new();
    let (log, _, _) = reset_setup(&mut fx, vec![SESSION], None, || Ok(()));

    let error = fx
        .auth()
        .reset_password(request(NEW_PASSWORD), &client())
        .await
        .unwrap_err();

    assert!(
        matches!(error, ResetPasswordError::InvalidToken),
        "{error:?}"
    );
    // The fast-path mark stands (harmless: it only makes the session re-authenticate), and
    // the lockout stays.
    assert_eq!(log.all(), ["fast path SESSION", "store"]);
}

#[tokio::test]
async fn a_reset_stands_when_the_lockout_cannot_be_cleared() {
    let mut fx = Fixture::new();
    let (log, resets, _) = reset_setup(&mut fx, vec![], Some(vec![]), || {
        Err(ThrottleError("the counters are down".into()))
    });

    fx.auth()
        .reset_password(request(NEW_PASSWORD), &client())
        .await
        .unwrap();

    assert_eq!(resets.all().len(), 1);
    // Every key is tried, though the first failed.
    assert_eq!(
        log.all(),
        [
            "store",
            "clear login:alice@example.com",
            "clear login:alice",
            "clear account:00000000-0000-0000-0000-0000000a11ce",
            "clear password:00000000-0000-0000-0000-0000000a11ce",
        ]
    );
}

#[tokio::test]
async fn a_reset_whose_fast_path_fails_changes_nothing() {
    let mut fx = Fixture::new();
    lookup_token(&mut fx, spendable());
    find_alice(&mut fx, Some(alice()));
    fx.strength_scores(4, None);
    fx.hashes(NEW_PASSWORD);
    fx.sessions
        .expect_live_for_user()
        .times(1)
        .returning(|_| Ok(vec![SESSION]));
    fx.revocation
        .expect_revoke()
        .times(1)
        .returning(|_, _| Err(super::fixture::revocation_error()));
    fx.users.expect_reset_password().never();
    let mut throttle = MockLoginThrottle::new();
    throttle.expect_clear().never();
    fx.throttle = Some(throttle);

    let error = fx
        .auth()
        .reset_password(request(NEW_PASSWORD), &client())
        .await
        .unwrap_err();

    assert!(
        matches!(error, ResetPasswordError::Unavailable(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn reset_password_reports_an_unavailable_store_as_unavailable() {
    let mut fx = Fixture::new();
    fx.users
        .expect_find_action_token()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("pool timed out".into())));
    nothing_reset(&mut fx);

    let error = fx
        .auth()
        .reset_password(request(NEW_PASSWORD), &client())
        .await
        .unwrap_err();

    assert!(
        matches!(error, ResetPasswordError::Unavailable(_)),
        "{error:?}"
    );
}
