//! `AccountService::delete_me`: the password is confirmed (throttled per account), the store
//! deletes the account with its journal, the sessions go on the fast path after the commit,
//! and every refusal answers what it means.

use chrono::TimeDelta;
use secrecy::ExposeSecret;

use super::fixture::{
    ALICE, Calls, Fixture, PASSWORD, SESSION, SESSION_2, STORED_HASH, alice, client, credentials,
    fields, messages, now, principal_from_client, secret, settings,
};
use crate::model::{AuditAction, AuditTarget, Journal};
use crate::ports::{AttemptWindow, LastAdmin, MockLoginThrottle, StoreError};
use crate::services::DeleteAccountError;

/// The throttle counts one attempt on Alice's password key and answers `failures`; it is
/// cleared `clears` times.
fn counting(failures: u32, clears: usize) -> MockLoginThrottle {
    let mut throttle = MockLoginThrottle::new();
    throttle
        .expect_count_attempt()
        .withf(|key, _| *key == format!("password:{ALICE}"))
        .times(1)
        .returning(move |_, window| {
            Ok(AttemptWindow {
                failures,
                resets_at: Some(now() + window),
            })
        });
    throttle
        .expect_clear()
        .withf(|key| *key == format!("password:{ALICE}"))
        .times(clears)
        .returning(|_| Ok(()));
    throttle
}

fn password_matches(fx: &mut Fixture, matches: bool) {
    fx.users
        .expect_find_credentials_by_id()
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

async fn close(fx: Fixture) -> Result<(), DeleteAccountError> {
    fx.account()
        .delete_me(&principal_from_client(alice(), SESSION), &secret(PASSWORD))
        .await
}

#[tokio::test]
async fn the_account_is_deleted_with_its_event_and_its_sessions_go_on_the_fast_path_after() {
    let mut fx = Fixture::new();
    fx.throttle = Some(counting(1, 1));
    password_matches(&mut fx, true);
    let order = Calls::<&'static str>::new();
    fx.sessions
        .expect_live_for_user()
        .times(1)
        .returning(|_| Ok(vec![SESSION, SESSION_2]));
    let journals = Calls::<Journal>::new();
    let (recorder, log) = (journals.clone(), order.clone());
    fx.users
        .expect_delete()
        // Only while the password confirmed is still Alice's.
        .withf(|id, expected_password, _| {
            *id == ALICE && expected_password.as_ref().map(|h| h.as_str()) == Some(STORED_HASH)
        })
        .times(1)
        .returning(move |_, _, journal| {
            log.record("store");
            recorder.record(journal);
            Ok(())
        });
    let log = order.clone();
    fx.revocation
        .expect_revoke()
        .times(2)
        .returning(move |_, until| {
            assert_eq!(until, now() + settings().revocation_window());
            log.record("fast path");
            Ok(())
        });

    close(fx).await.unwrap();

    assert_eq!(order.all(), ["store", "fast path", "fast path"]);
    let [journal] = journals.all().try_into().unwrap();
    let [event] = journal.events.as_slice() else {
        panic!("one event: {journal:?}");
    };
    assert_eq!(event.action, AuditAction::UserDeleted);
    assert_eq!(event.actor, Some(ALICE));
    assert_eq!(event.target, AuditTarget::User(ALICE));
    assert_eq!(event.ip, client().ip);
    assert_eq!(event.details["self_service"], true);
    assert!(journal.mail.is_empty() && journal.tokens.is_empty());
}

#[tokio::test]
async fn a_wrong_password_names_the_field_and_deletes_nothing() {
    let mut fx = Fixture::new();
    fx.throttle = Some(counting(1, 0));
    password_matches(&mut fx, false);
    fx.users.expect_delete().never();
    fx.revocation.expect_revoke().never();

    let error = close(fx).await.unwrap_err();

    let DeleteAccountError::Invalid(errors) = error else {
        panic!("{error:?}");
    };
    assert_eq!(fields(&errors), ["password"]);
}

#[tokio::test]
async fn beyond_the_limit_nothing_is_checked() {
    let mut fx = Fixture::new();
    fx.throttle = Some(counting(settings().login_max_failures + 1, 0));
    fx.users.expect_find_credentials_by_id().never();
    fx.hasher.expect_verify().never();
    fx.users.expect_delete().never();

    let error = close(fx).await.unwrap_err();

    let DeleteAccountError::TooManyAttempts { retry_after_secs } = error else {
        panic!("{error:?}");
    };
    assert_eq!(retry_after_secs, settings().login_window.num_seconds());
    assert!(TimeDelta::seconds(retry_after_secs) <= settings().login_window);
}

#[tokio::test]
async fn the_last_administrator_cannot_leave_and_keeps_their_sessions() {
    for which in [LastAdmin::System, LastAdmin::Tenant(super::fixture::TENANT)] {
        let mut fx = Fixture::new();
        fx.throttle = Some(counting(1, 1));
        password_matches(&mut fx, true);
        fx.sessions
            .expect_live_for_user()
            .returning(|_| Ok(vec![SESSION]));
        fx.users
            .expect_delete()
            .times(1)
            .returning(move |_, _, _| Err(StoreError::LastAdmin(which)));
        fx.revocation.expect_revoke().never();

        let error = close(fx).await.unwrap_err();

        assert!(
            matches!(error, DeleteAccountError::LastAdmin(found) if found == which),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn an_account_deleted_meanwhile_is_account_gone() {
    let mut fx = Fixture::new();
    fx.throttle = Some(counting(1, 1));
    password_matches(&mut fx, true);
    fx.sessions.expect_live_for_user().returning(|_| Ok(vec![]));
    fx.users
        .expect_delete()
        .times(1)
        .returning(|_, _, _| Err(StoreError::NotFound));

    let error = close(fx).await.unwrap_err();

    assert!(
        matches!(error, DeleteAccountError::AccountGone),
        "{error:?}"
    );
}

/// The race a stolen session could win: the password is confirmed, then the owner resets it
/// (ending that session) before the deletion is stored. The store, finding the confirmed hash
/// replaced (or the account deactivated), deletes nothing and answers `Changed`: a 422 on
/// `password`, the sessions left alone (none on the fast path), no event.
#[tokio::test]
async fn a_deletion_whose_confirmed_password_changed_meanwhile_names_password_and_deletes_nothing()
{
    let mut fx = Fixture::new();
    fx.throttle = Some(counting(1, 1));
    password_matches(&mut fx, true);
    fx.sessions
        .expect_live_for_user()
        .returning(|_| Ok(vec![SESSION, SESSION_2]));
    fx.users
        .expect_delete()
        .withf(|id, expected_password, _| {
            *id == ALICE && expected_password.as_ref().map(|h| h.as_str()) == Some(STORED_HASH)
        })
        .times(1)
        .returning(|_, _, _| Err(StoreError::Changed));
    fx.revocation.expect_revoke().never();
    let appended = fx.appended.clone();

    let error = close(fx).await.unwrap_err();

    let DeleteAccountError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["password"]);
    assert!(
        messages(&errors, "password").contains("changed meanwhile"),
        "{errors}"
    );
    assert!(appended.all().is_empty(), "{:?}", appended.all());
}
