//! `logout`, `logout_all` and `restore_revocations`: ending sessions in the store and on the
//! fast-path revocation list.

use std::collections::BTreeSet;

use chrono::TimeDelta;

use super::fixture::{
    ALICE, Calls, Fixture, SESSION, SESSION_2, SESSION_3, alice, client, event, inactive, now,
    principal, principal_from_client, revocation_error,
};
use crate::model::{AuditAction, AuditTarget, Journal};
use crate::ports::StoreError;
use crate::services::{AuthError, LogoutError};

#[tokio::test]
async fn logout_revokes_the_current_session_in_the_store_and_on_the_fast_path() {
    let mut fx = Fixture::new();
    fx.sessions
        .expect_revoke()
        .withf(|user, id, at, _| *user == ALICE && *id == SESSION && *at == now())
        .times(1)
        .returning(|_, _, _, _| Ok(true));
    fx.sessions.expect_revoke_all().never();
    let fast_path = fx.record_fast_path();
    let window = fx.settings.revocation_window();

    fx.auth()
        .logout(&principal(alice(), SESSION))
        .await
        .unwrap();

    assert_eq!(fast_path.all(), [(SESSION, now() + window)]);
}

#[tokio::test]
async fn logout_by_an_inactive_account_is_forbidden_and_revokes_nothing() {
    let mut fx = Fixture::new();
    fx.no_revocation();

    let error = fx
        .auth()
        .logout(&principal(inactive(alice()), SESSION))
        .await
        .unwrap_err();

    assert!(matches!(error, LogoutError::Forbidden), "{error:?}");
}

#[tokio::test]
async fn logout_reports_an_unreachable_revocation_list_as_unavailable() {
    // The fast path goes first: when it fails, the store is not touched, so a retry works.
    let mut fx = Fixture::new();
    fx.sessions.expect_revoke().never();
    fx.revocation
        .expect_revoke()
        .times(1)
        .returning(|_, _| Err(revocation_error()));

    let error = fx
        .auth()
        .logout(&principal(alice(), SESSION))
        .await
        .unwrap_err();

    assert!(matches!(error, LogoutError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn logout_all_revokes_every_session_the_store_ended_and_the_current_one() {
    // The store may not return the current session (a racing logout already ended it): it
    // must still go on the fast path.
    for ended_by_store in [
        vec![SESSION_2, SESSION_3],
        vec![SESSION, SESSION_2, SESSION_3],
    ] {
        let mut fx = Fixture::new();
        let returned = ended_by_store.clone();
        fx.sessions
            .expect_live_for_user()
            .withf(|user| *user == ALICE)
            .times(1)
            .returning(|_| Ok(vec![SESSION_2]));
        fx.sessions
            .expect_revoke_all()
            .withf(|user, at, _| *user == ALICE && *at == now())
            .times(1)
            .returning(move |_, _, _| Ok(returned.clone()));
        fx.sessions.expect_revoke().never();
        let fast_path = fx.record_fast_path();
        let until = now() + fx.settings.revocation_window();

        fx.auth()
            .logout_all(&principal(alice(), SESSION))
            .await
            .unwrap();

        let calls = fast_path.all();
        let revoked: BTreeSet<_> = calls.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            revoked,
            BTreeSet::from([SESSION, SESSION_2, SESSION_3]),
            "store returned {ended_by_store:?}"
        );
        assert!(calls.iter().all(|(_, u)| *u == until), "{calls:?}");
    }
}

#[tokio::test]
async fn logout_all_reports_an_unavailable_store_and_marks_nothing() {
    let mut fx = Fixture::new();
    fx.sessions
        .expect_live_for_user()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("pool timed out".into())));
    fx.sessions.expect_revoke_all().never();
    fx.revocation.expect_revoke().never();

    let error = fx
        .auth()
        .logout_all(&principal(alice(), SESSION))
        .await
        .unwrap_err();

    assert!(matches!(error, LogoutError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn restore_revocations_puts_recently_revoked_sessions_back_on_the_fast_path() {
    let mut fx = Fixture::new();
    let window = fx.settings.revocation_window();
    assert!(
        window > fx.settings.access_ttl,
        "the window covers the codec's leeway"
    );
    let revoked_at_2 = now() - TimeDelta::minutes(10);
    let revoked_at_3 = now() - TimeDelta::minutes(1);
    fx.sessions
        .expect_revoked_since()
        .withf(move |since| *since == now() - window)
        .times(1)
        .returning(move |_| Ok(vec![(SESSION_2, revoked_at_2), (SESSION_3, revoked_at_3)]));
    let fast_path = fx.record_fast_path();
    fx.revocation
        .expect_mark_restored()
        .times(1)
        .returning(|| Ok(()));

    let restored = fx.auth().restore_revocations().await.unwrap();

    assert_eq!(restored, 2);
    assert_eq!(
        fast_path.all(),
        [
            (SESSION_2, revoked_at_2 + window),
            (SESSION_3, revoked_at_3 + window),
        ]
    );
}

#[tokio::test]
async fn restore_revocations_fails_when_the_list_cannot_be_written() {
    let mut fx = Fixture::new();
    fx.sessions
        .expect_revoked_since()
        .times(1)
        .returning(|_| Ok(vec![(SESSION_2, now())]));
    fx.revocation
        .expect_revoke()
        .times(1)
        .returning(|_, _| Err(revocation_error()));

    let error = fx.auth().restore_revocations().await.unwrap_err();

    assert!(matches!(error, AuthError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn logout_all_puts_live_sessions_on_the_fast_path_before_the_store_revokes_them() {
    let mut fx = Fixture::new();
    fx.sessions
        .expect_live_for_user()
        .times(1)
        .returning(|_| Ok(vec![SESSION, SESSION_2]));
    // The fast path fails: the store must not have revoked anything.
    fx.revocation
        .expect_revoke()
        .returning(|_, _| Err(revocation_error()));
    fx.sessions.expect_revoke_all().never();

    let error = fx
        .auth()
        .logout_all(&principal(alice(), SESSION))
        .await
        .unwrap_err();

    assert!(matches!(error, LogoutError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn an_intact_revocation_list_is_left_alone() {
    let mut fx = Fixture::new();
    fx.revocation
        .expect_is_restored()
        .times(1)
        .returning(|| Ok(true));
    fx.sessions.expect_revoked_since().never();
    fx.revocation.expect_mark_restored().never();

    assert_eq!(fx.auth().keep_revocations_restored().await.unwrap(), None);
}

#[tokio::test]
async fn a_revocation_list_that_lost_its_state_is_restored_and_marked() {
    let mut fx = Fixture::new();
    let revoked_at = now() - TimeDelta::minutes(3);
    fx.revocation
        .expect_is_restored()
        .times(1)
        .returning(|| Ok(false));
    fx.sessions
        .expect_revoked_since()
        .times(1)
        .returning(move |_| Ok(vec![(SESSION_2, revoked_at)]));
    let fast_path = fx.record_fast_path();
    fx.revocation
        .expect_mark_restored()
        .times(1)
        .returning(|| Ok(()));
    let until = revoked_at + fx.settings.revocation_window();

    assert_eq!(
        fx.auth().keep_revocations_restored().await.unwrap(),
        Some(1)
    );
    assert_eq!(fast_path.all(), [(SESSION_2, until)]);
}

// ----- audit ----------------------------------------------------------------------------------

#[tokio::test]
async fn logout_records_user_logout_in_the_call_that_revokes_the_session() {
    let mut fx = Fixture::new();
    let journals = Calls::new();
    let recorder = journals.clone();
    fx.sessions
        .expect_revoke()
        .times(1)
        .returning(move |_, _, _, journal| {
            recorder.record(journal);
            Ok(true)
        });
    fx.record_fast_path();
    let appended = fx.appended.clone();

    fx.auth()
        .logout(&principal_from_client(alice(), SESSION))
        .await
        .unwrap();

    let logout = event(
        1,
        AuditAction::UserLogout,
        Some(ALICE),
        AuditTarget::Session(SESSION),
        &client(),
    );
    assert_eq!(journals.all(), [Journal::of(logout)]);
    assert!(appended.all().is_empty());
}

#[tokio::test]
async fn logout_all_records_one_user_logout_for_every_session_in_the_revoke_all_call() {
    let mut fx = Fixture::new();
    fx.sessions
        .expect_live_for_user()
        .times(1)
        .returning(|_| Ok(vec![SESSION_2]));
    let journals = Calls::new();
    let recorder = journals.clone();
    fx.sessions
        .expect_revoke_all()
        .times(1)
        .returning(move |_, _, journal| {
            recorder.record(journal);
            Ok(vec![SESSION, SESSION_2])
        });
    fx.sessions.expect_revoke().never();
    fx.record_fast_path();
    let appended = fx.appended.clone();

    fx.auth()
        .logout_all(&principal_from_client(alice(), SESSION))
        .await
        .unwrap();

    let logout = event(
        1,
        AuditAction::UserLogout,
        Some(ALICE),
        AuditTarget::User(ALICE),
        &client(),
    )
    .with("all_sessions", true);
    assert_eq!(journals.all(), [Journal::of(logout)]);
    assert!(appended.all().is_empty());
}

#[tokio::test]
async fn a_forbidden_logout_records_nothing() {
    let mut fx = Fixture::new();
    fx.no_revocation();
    let appended = fx.appended.clone();
    let caller = principal_from_client(inactive(alice()), SESSION);

    let auth = fx.auth();
    assert!(matches!(
        auth.logout(&caller).await,
        Err(LogoutError::Forbidden)
    ));
    assert!(matches!(
        auth.logout_all(&caller).await,
        Err(LogoutError::Forbidden)
    ));
    assert!(appended.all().is_empty(), "{:?}", appended.all());
}
