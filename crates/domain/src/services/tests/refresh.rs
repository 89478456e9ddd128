//! `AuthService::refresh`: rotation, reuse detection, dead tokens and vanished users.

use chrono::TimeDelta;
use secrecy::ExposeSecret;

use super::fixture::{
    ALICE, Fixture, SESSION, alice, digest, inactive, now, secret, session, token,
};
use crate::model::{RefreshRotation, Role};
use crate::ports::StoreError;
use crate::services::RefreshError;

const PRESENTED: &str = "the-presented-refresh-token";

/// The store is asked once to rotate exactly the presented digest into the replacement's
/// digest, at the fixed time, and answers `outcome`.
fn rotation(fx: &mut Fixture, outcome: RefreshRotation) {
    fx.sessions
        .expect_rotate_refresh_token()
        .withf(|presented, replacement, at| {
            *presented == digest(PRESENTED) && *replacement == digest(&token(1)) && *at == now()
        })
        .times(1)
        .returning(move |_, _, _| Ok(outcome.clone()));
}

/// The session is revoked once in the store (for its user) and once on the fast path, until
/// the last access token issued for it has expired.
fn expect_session_revoked(fx: &mut Fixture) {
    fx.sessions
        .expect_revoke()
        .withf(|user, id, at| *user == ALICE && *id == SESSION && *at == now())
        .times(1)
        .returning(|_, _, _| Ok(true));
    let until = now() + fx.settings.revocation_window();
    fx.revocation
        .expect_revoke()
        .withf(move |id, u| *id == SESSION && *u == until)
        .times(1)
        .returning(|_, _| Ok(()));
}

#[tokio::test]
async fn refresh_rotates_the_token_and_issues_a_new_pair() {
    let mut fx = Fixture::new();
    rotation(
        &mut fx,
        RefreshRotation::Rotated(session(SESSION, ALICE, TimeDelta::days(3))),
    );
    let mut promoted = alice();
    promoted.role = Role::Admin;
    let fresh = promoted.clone();
    fx.users
        .expect_find_by_id()
        .withf(|id| *id == ALICE)
        .times(1)
        .returning(move |_| Ok(Some(fresh.clone())));
    let access_ttl = fx.settings.access_ttl;
    fx.tokens
        .expect_issue()
        .withf(move |c| {
            c.user_id == ALICE
                && c.session_id == SESSION
                && c.role == Role::Admin
                && c.issued_at == now()
                && c.expires_at == now() + access_ttl
        })
        .times(1)
        .returning(|_| Ok("new-access-token".to_owned()));
    fx.no_revocation();

    let issued = fx.auth().refresh(&secret(PRESENTED)).await.unwrap();

    assert_eq!(issued.access_token.expose_secret(), "new-access-token");
    assert_eq!(
        issued.refresh_token.expose_secret(),
        token(1),
        "the replacement, not the presented token"
    );
    assert_eq!(issued.session_id, SESSION);
    assert_eq!(issued.expires_in, access_ttl.num_seconds());
    assert_eq!(
        issued.refresh_expires_in,
        TimeDelta::days(3).num_seconds(),
        "the session's own remaining lifetime"
    );
    assert_eq!(issued.user, promoted, "the user as stored now");
}

#[tokio::test]
async fn refresh_with_a_reused_token_revokes_the_whole_session() {
    let mut fx = Fixture::new();
    rotation(
        &mut fx,
        RefreshRotation::Reused(session(SESSION, ALICE, TimeDelta::days(3))),
    );
    expect_session_revoked(&mut fx);
    fx.users.expect_find_by_id().never();
    fx.tokens.expect_issue().never();

    let error = fx.auth().refresh(&secret(PRESENTED)).await.unwrap_err();

    assert!(matches!(error, RefreshError::Reused), "{error:?}");
}

#[tokio::test]
async fn refresh_with_a_dead_or_unknown_token_is_refused_without_revoking_anything() {
    let mut dead = session(SESSION, ALICE, TimeDelta::days(3));
    dead.revoked_at = Some(now() - TimeDelta::hours(2));
    for outcome in [RefreshRotation::Dead(dead), RefreshRotation::Unknown] {
        let mut fx = Fixture::new();
        rotation(&mut fx, outcome.clone());
        fx.no_revocation();
        fx.users.expect_find_by_id().never();
        fx.tokens.expect_issue().never();

        let error = fx.auth().refresh(&secret(PRESENTED)).await.unwrap_err();

        assert!(
            matches!(error, RefreshError::InvalidToken),
            "{outcome:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn refresh_for_an_inactive_or_vanished_user_is_refused_and_revokes_the_session() {
    for stored_user in [Some(inactive(alice())), None] {
        let mut fx = Fixture::new();
        rotation(
            &mut fx,
            RefreshRotation::Rotated(session(SESSION, ALICE, TimeDelta::days(3))),
        );
        let answer = stored_user.clone();
        fx.users
            .expect_find_by_id()
            .withf(|id| *id == ALICE)
            .times(1)
            .returning(move |_| Ok(answer.clone()));
        expect_session_revoked(&mut fx);
        fx.tokens.expect_issue().never();

        let error = fx.auth().refresh(&secret(PRESENTED)).await.unwrap_err();

        assert!(
            matches!(error, RefreshError::InvalidToken),
            "user {stored_user:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn refresh_reports_an_unavailable_store_as_unavailable() {
    let mut fx = Fixture::new();
    fx.sessions
        .expect_rotate_refresh_token()
        .times(1)
        .returning(|_, _, _| Err(StoreError::Unavailable("pool timed out".into())));
    fx.tokens.expect_issue().never();

    let error = fx.auth().refresh(&secret(PRESENTED)).await.unwrap_err();

    assert!(matches!(error, RefreshError::Unavailable(_)), "{error:?}");
}
