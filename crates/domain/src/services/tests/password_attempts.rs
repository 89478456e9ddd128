//! `AccountService::change_password` against guessing and races: the attempts to confirm the
//! current password are counted per account like login attempts (a stolen access token gives
//! no unlimited guesses), and a change racing the account's deletion answers what it means
//! (401), not a 403 or a 500.

use chrono::TimeDelta;
use secrecy::ExposeSecret;

use super::fixture::{
    ALICE, Fixture, PASSWORD, SESSION, STORED_HASH, alice, credentials, fields, inactive, now,
    principal, secret, settings,
};
use crate::model::UserId;
use crate::ports::{AttemptWindow, MockLoginThrottle, StoreError, ThrottleError};
use crate::services::ChangePasswordError;

const NEW_PASSWORD: &str = "a much longer new passphrase";

/// The key the password confirmations of `user` are counted under.
fn password_key(user: UserId) -> String {
    format!("password:{user}")
}

/// The throttle counts one attempt on Alice's password key (with the login window) and answers
/// `failures`, its window ending in 15 minutes less 1.5 s; it is cleared `clears` times.
fn counting(failures: u32, clears: usize) -> MockLoginThrottle {
    let mut throttle = MockLoginThrottle::new();
    throttle
        .expect_count_attempt()
        .withf(|key, window| *key == password_key(ALICE) && *window == settings().login_window)
        .times(1)
        .returning(move |_, window| {
            Ok(AttemptWindow {
                failures,
                resets_at: Some(now() + window - TimeDelta::milliseconds(1500)),
            })
        });
    throttle
        .expect_clear()
        .withf(|key| *key == password_key(ALICE))
        .times(clears)
        .returning(|_| Ok(()));
    throttle.expect_check().never();
    throttle
}

/// Alice's credentials are read once and the hasher says whether [`PASSWORD`] matches them.
fn current_password_check(fx: &mut Fixture, matches: bool) {
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
        .returning(move |_, _| Ok(matches));
}

/// Nothing is hashed or changed.
fn nothing_changed(fx: &mut Fixture) {
    fx.hasher.expect_hash().never();
    fx.users.expect_change_password().never();
    fx.revocation.expect_revoke().never();
}

async fn change(fx: Fixture, new: &str) -> Result<(), ChangePasswordError> {
    fx.account()
        .change_password(&principal(alice(), SESSION), &secret(PASSWORD), secret(new))
        .await
}

#[tokio::test]
async fn beyond_the_limit_the_current_password_is_not_checked_and_the_answer_says_when_to_retry() {
    let mut fx = Fixture::new();
    fx.throttle = Some(counting(settings().login_max_failures + 1, 0));
    fx.users.expect_find_credentials_by_id().never();
    fx.hasher.expect_verify().never();
    nothing_changed(&mut fx);

    let error = change(fx, NEW_PASSWORD).await.unwrap_err();

    // 15 minutes less 1.5 s, rounded up.
    let expected = settings().login_window.num_seconds() - 1;
    assert!(
        matches!(error, ChangePasswordError::TooManyAttempts { retry_after_secs } if retry_after_secs == expected),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_last_allowed_attempt_is_checked_and_a_wrong_password_keeps_its_count() {
    let mut fx = Fixture::new();
    fx.throttle = Some(counting(settings().login_max_failures, 0));
    current_password_check(&mut fx, false);
    fx.strength.expect_estimate().never();
    nothing_changed(&mut fx);

    let error = change(fx, NEW_PASSWORD).await.unwrap_err();

    let ChangePasswordError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["current_password"]);
}

/// The count is cleared as soon as the current password is confirmed, even when the new one
/// is then refused.
#[tokio::test]
async fn a_confirmed_current_password_clears_the_count() {
    let mut fx = Fixture::new();
    fx.throttle = Some(counting(3, 1));
    current_password_check(&mut fx, true);
    fx.strength.expect_estimate().never();
    nothing_changed(&mut fx);

    let error = change(fx, PASSWORD).await.unwrap_err();

    let ChangePasswordError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["new_password"]);
}

#[tokio::test]
async fn an_unreachable_throttle_fails_the_change_closed() {
    let mut fx = Fixture::new();
    let mut throttle = MockLoginThrottle::new();
    throttle
        .expect_count_attempt()
        .returning(|_, _| Err(ThrottleError("down".into())));
    throttle.expect_clear().never();
    fx.throttle = Some(throttle);
    fx.users.expect_find_credentials_by_id().never();
    fx.hasher.expect_verify().never();
    nothing_changed(&mut fx);

    let error = change(fx, NEW_PASSWORD).await.unwrap_err();

    assert!(
        matches!(error, ChangePasswordError::Unavailable(_)),
        "{error:?}"
    );
}

// ----- races with the account's deletion ----------------------------------------------------

/// Deleted (no credentials any more) or deactivated since the request was authenticated:
/// 401 material, not a 403 or a 500; no password is checked.
#[tokio::test]
async fn a_change_for_an_account_deleted_or_deactivated_meanwhile_is_account_gone() {
    for stored in [None, Some(credentials(inactive(alice())))] {
        let mut fx = Fixture::new();
        let answer = stored.clone();
        fx.users
            .expect_find_credentials_by_id()
            .times(1)
            .returning(move |_| Ok(answer.clone()));
        fx.hasher.expect_verify().never();
        nothing_changed(&mut fx);

        let error = change(fx, NEW_PASSWORD).await.unwrap_err();

        assert!(
            matches!(error, ChangePasswordError::AccountGone),
            "{stored:?}: {error:?}"
        );
    }
}

/// Deleted between the password check and the store's change: `NotFound` from the store is
/// the account gone, not an unexpected failure.
#[tokio::test]
async fn a_change_whose_account_is_deleted_before_the_store_writes_is_account_gone() {
    let mut fx = Fixture::new();
    current_password_check(&mut fx, true);
    fx.strength_scores(4, None);
    fx.hashes(NEW_PASSWORD);
    fx.sessions
        .expect_live_for_user()
        .times(1)
        .returning(|_| Ok(Vec::new()));
    fx.users
        .expect_change_password()
        .times(1)
        .returning(|_, _, _, _, _, _| Err(StoreError::NotFound));
    fx.revocation.expect_revoke().never();

    let error = change(fx, NEW_PASSWORD).await.unwrap_err();

    assert!(
        matches!(error, ChangePasswordError::AccountGone),
        "{error:?}"
    );
}
