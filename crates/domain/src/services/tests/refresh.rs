//! `AuthService::refresh`: rotation, reuse detection, dead tokens and vanished users.

use chrono::TimeDelta;
use secrecy::ExposeSecret;

use super::fixture::{
    ALICE, Calls, Fixture, SESSION, TENANT, alice, client, digest, event, inactive, now, secret,
    session, tenant, token,
};
use crate::model::{
    AuditAction, AuditTarget, Journal, RefreshRotation, Role, Session, Tenant, TenantRef,
    TenantRole,
};
use crate::ports::StoreError;
use crate::services::{ClientInfo, RefreshError};

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
/// the last access token issued for it has expired. Returns the journal of the store's call.
fn expect_session_revoked(fx: &mut Fixture) -> Calls<Journal> {
    let journals = Calls::new();
    let recorder = journals.clone();
    fx.sessions
        .expect_revoke()
        .withf(|user, id, at, _| *user == ALICE && *id == SESSION && *at == now())
        .times(1)
        .returning(move |_, _, _, journal| {
            recorder.record(journal);
            Ok(true)
        });
    let until = now() + fx.settings.revocation_window();
    fx.revocation
        .expect_revoke()
        .withf(move |id, u| *id == SESSION && *u == until)
        .times(1)
        .returning(|_, _| Ok(()));
    journals
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
    fx.tenants.expect_find().never();
    fx.tenants.expect_role_of().never();
    fx.tokens
        .expect_issue()
        .withf(move |c| {
            c.user_id == ALICE
                && c.session_id == SESSION
                && c.role == Role::Admin
                && c.tenant.is_none()
                && c.issued_at == now()
                && c.expires_at == now() + access_ttl
        })
        .times(1)
        .returning(|_| Ok("new-access-token".to_owned()));
    fx.no_revocation();

    let issued = fx
        .auth()
        .refresh(&secret(PRESENTED), &ClientInfo::default())
        .await
        .unwrap();

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

/// The event of a session revoked because its account or membership ended.
fn ended(client: &ClientInfo) -> crate::model::AuditEvent {
    event(
        1,
        AuditAction::SessionRevoked,
        None,
        AuditTarget::Session(SESSION),
        client,
    )
    .with("reason", "refresh after the account or membership ended")
}

#[tokio::test]
async fn refresh_with_a_reused_token_revokes_the_whole_session() {
    let mut fx = Fixture::new();
    rotation(
        &mut fx,
        RefreshRotation::Reused(session(SESSION, ALICE, TimeDelta::days(3))),
    );
    let journals = expect_session_revoked(&mut fx);
    fx.users.expect_find_by_id().never();
    fx.tokens.expect_issue().never();
    let appended = fx.appended.clone();

    let error = fx
        .auth()
        .refresh(&secret(PRESENTED), &ClientInfo::default())
        .await
        .unwrap_err();

    assert!(matches!(error, RefreshError::Reused), "{error:?}");
    let reused = event(
        1,
        AuditAction::RefreshReused,
        None,
        AuditTarget::Session(SESSION),
        &ClientInfo::default(),
    )
    .with("user_id", ALICE.to_string());
    assert_eq!(journals.all(), [Journal::of(reused)], "with the revocation");
    assert!(appended.all().is_empty());
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
        let appended = fx.appended.clone();

        let error = fx
            .auth()
            .refresh(&secret(PRESENTED), &ClientInfo::default())
            .await
            .unwrap_err();

        assert!(
            matches!(error, RefreshError::InvalidToken),
            "{outcome:?}: {error:?}"
        );
        assert!(appended.all().is_empty(), "{outcome:?}");
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
        let journals = expect_session_revoked(&mut fx);
        fx.tokens.expect_issue().never();
        fx.tenants.expect_find().never();

        let error = fx
            .auth()
            .refresh(&secret(PRESENTED), &ClientInfo::default())
            .await
            .unwrap_err();

        assert!(
            matches!(error, RefreshError::InvalidToken),
            "user {stored_user:?}: {error:?}"
        );
        assert_eq!(
            journals.all(),
            [Journal::of(ended(&ClientInfo::default()))],
            "user {stored_user:?}"
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

    let error = fx
        .auth()
        .refresh(&secret(PRESENTED), &ClientInfo::default())
        .await
        .unwrap_err();

    assert!(matches!(error, RefreshError::Unavailable(_)), "{error:?}");
}

// ----- tenant scope ---------------------------------------------------------------------------

/// Alice's session scoped to [`TENANT`].
fn scoped_session() -> Session {
    Session {
        tenant: Some(TENANT),
        ..session(SESSION, ALICE, TimeDelta::days(3))
    }
}

/// The session rotates and Alice is active.
fn scoped_rotation(fx: &mut Fixture) {
    rotation(fx, RefreshRotation::Rotated(scoped_session()));
    fx.users
        .expect_find_by_id()
        .withf(|id| *id == ALICE)
        .times(1)
        .returning(|_| Ok(Some(alice())));
}

#[tokio::test]
async fn refresh_of_a_scoped_session_carries_the_members_role_as_it_is_now() {
    let mut fx = Fixture::new();
    scoped_rotation(&mut fx);
    fx.tenants
        .expect_find()
        .withf(|r| *r == TenantRef::Id(TENANT))
        .times(1)
        .returning(|_| Ok(Some(tenant())));
    // Promoted in the tenant since login.
    fx.tenants
        .expect_role_of()
        .withf(|t, u| *t == TENANT && *u == ALICE)
        .times(1)
        .returning(|_, _| Ok(Some(TenantRole::Admin)));
    fx.tokens
        .expect_issue()
        .withf(|c| c.tenant == Some((TENANT, TenantRole::Admin)) && c.session_id == SESSION)
        .times(1)
        .returning(|_| Ok("scoped-access-token".to_owned()));
    fx.no_revocation();

    let issued = fx
        .auth()
        .refresh(&secret(PRESENTED), &client())
        .await
        .unwrap();

    assert_eq!(issued.access_token.expose_secret(), "scoped-access-token");
}

#[tokio::test]
async fn refresh_of_a_scoped_session_whose_membership_ended_revokes_it() {
    let mut inactive_tenant = tenant();
    inactive_tenant.is_active = false;
    // Removed from the tenant, the tenant deactivated, the tenant deleted.
    let cases: [(&str, Option<Tenant>, bool); 3] = [
        ("membership removed", Some(tenant()), true),
        ("tenant inactive", Some(inactive_tenant), false),
        ("tenant deleted", None, false),
    ];
    for (case, found, asks_role) in cases {
        let mut fx = Fixture::new();
        scoped_rotation(&mut fx);
        fx.tenants
            .expect_find()
            .withf(|r| *r == TenantRef::Id(TENANT))
            .times(1)
            .returning(move |_| Ok(found.clone()));
        fx.tenants
            .expect_role_of()
            .times(usize::from(asks_role))
            .returning(|_, _| Ok(None));
        let journals = expect_session_revoked(&mut fx);
        fx.tokens.expect_issue().never();
        let appended = fx.appended.clone();

        let error = fx
            .auth()
            .refresh(&secret(PRESENTED), &client())
            .await
            .unwrap_err();

        assert!(
            matches!(error, RefreshError::InvalidToken),
            "{case}: {error:?}"
        );
        assert_eq!(journals.all(), [Journal::of(ended(&client()))], "{case}");
        assert!(appended.all().is_empty(), "{case}");
    }
}

#[tokio::test]
async fn refresh_of_a_scoped_session_is_unavailable_when_the_tenant_store_is() {
    let mut fx = Fixture::new();
    scoped_rotation(&mut fx);
    fx.tenants
        .expect_find()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("pool timed out".into())));
    fx.no_revocation();
    fx.tokens.expect_issue().never();

    let error = fx
        .auth()
        .refresh(&secret(PRESENTED), &client())
        .await
        .unwrap_err();

    assert!(matches!(error, RefreshError::Unavailable(_)), "{error:?}");
}
