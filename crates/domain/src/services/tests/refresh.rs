//! `AuthService::refresh`: rotation, reuse detection, dead tokens, vanished users, and that
//! nothing that can fail comes after the token is spent.

use chrono::TimeDelta;
use secrecy::ExposeSecret;

use super::fixture::{
    ALICE, Calls, Fixture, SESSION, TENANT, alice, client, digest, event, inactive, now,
    revocation_error, secret, session, tenant, token,
};
use crate::model::{
    AuditAction, AuditTarget, Journal, RefreshRotation, Role, Session, StoredRefreshToken, Tenant,
    TenantRef, TenantRole,
};
use crate::ports::{StoreError, TokenError};
use crate::services::{ClientInfo, RefreshError};

const PRESENTED: &str = "the-presented-refresh-token";

/// The store finds the presented digest once, as `found` (its session; spent when `used`).
fn lookup(fx: &mut Fixture, found: Option<(Session, bool)>) {
    fx.sessions
        .expect_find_refresh_token()
        .withf(|presented| *presented == digest(PRESENTED))
        .times(1)
        .returning(move |_| {
            Ok(found.clone().map(|(session, used)| StoredRefreshToken {
                session,
                used_at: used.then(|| now() - TimeDelta::minutes(5)),
            }))
        });
}

/// The fast-path list says once whether `SESSION` is revoked.
fn listed(fx: &mut Fixture, revoked: bool) {
    fx.revocation
        .expect_is_revoked()
        .withf(|id| *id == SESSION)
        .times(1)
        .returning(move |_| Ok(revoked));
}

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

/// The token is not spent.
fn never_spent(fx: &mut Fixture) {
    fx.sessions.expect_rotate_refresh_token().never();
}

/// The store finds Alice once, as `user`.
fn user_is(fx: &mut Fixture, user: Option<crate::model::User>) {
    fx.users
        .expect_find_by_id()
        .withf(|id| *id == ALICE)
        .times(1)
        .returning(move |_| Ok(user.clone()));
}

/// A live, unspent token of Alice's unscoped session, not on the list, Alice active.
fn live_token(fx: &mut Fixture) {
    lookup(
        fx,
        Some((session(SESSION, ALICE, TimeDelta::days(3)), false)),
    );
    listed(fx, false);
    user_is(fx, Some(alice()));
}

/// Access tokens are signed as `new-access-token`.
fn signs(fx: &mut Fixture) {
    fx.tokens
        .expect_issue()
        .times(1)
        .returning(|_| Ok("new-access-token".to_owned()));
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
    let found = session(SESSION, ALICE, TimeDelta::days(3));
    lookup(&mut fx, Some((found.clone(), false)));
    listed(&mut fx, false);
    rotation(
        &mut fx,
        RefreshRotation::Rotated(Session {
            last_used_at: now(),
            ..found
        }),
    );
    let mut promoted = alice();
    promoted.role = Role::Admin;
    user_is(&mut fx, Some(promoted.clone()));
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

/// The event of a spent token presented again, with the `n`-th generated id.
fn reused(n: u128) -> Journal {
    Journal::of(
        event(
            n,
            AuditAction::RefreshReused,
            None,
            AuditTarget::Session(SESSION),
            &ClientInfo::default(),
        )
        .with("user_id", ALICE.to_string()),
    )
}

#[tokio::test]
async fn refresh_with_a_spent_token_revokes_the_whole_session_without_reading_further() {
    // Even when the session is dead too: the reuse is the more alarming fact.
    let mut dead = session(SESSION, ALICE, TimeDelta::days(3));
    dead.revoked_at = Some(now() - TimeDelta::hours(1));
    for found in [session(SESSION, ALICE, TimeDelta::days(3)), dead] {
        let mut fx = Fixture::new();
        lookup(&mut fx, Some((found, true)));
        never_spent(&mut fx);
        let journals = expect_session_revoked(&mut fx);
        fx.revocation.expect_is_revoked().never();
        fx.users.expect_find_by_id().never();
        fx.tokens.expect_issue().never();
        let appended = fx.appended.clone();

        let error = fx
            .auth()
            .refresh(&secret(PRESENTED), &ClientInfo::default())
            .await
            .unwrap_err();

        assert!(matches!(error, RefreshError::Reused), "{error:?}");
        assert_eq!(journals.all(), [reused(1)], "with the revocation");
        assert!(appended.all().is_empty());
    }
}

/// Two refreshes with one token: both read it unspent, the other spends it first, so this
/// rotation sees `Reused` and revokes the session (at most one presenter is the client).
#[tokio::test]
async fn refresh_that_loses_the_rotation_to_a_concurrent_one_is_a_reuse() {
    let mut fx = Fixture::new();
    live_token(&mut fx);
    signs(&mut fx);
    rotation(
        &mut fx,
        RefreshRotation::Reused(session(SESSION, ALICE, TimeDelta::days(3))),
    );
    let journals = expect_session_revoked(&mut fx);

    let error = fx
        .auth()
        .refresh(&secret(PRESENTED), &ClientInfo::default())
        .await
        .unwrap_err();

    assert!(matches!(error, RefreshError::Reused), "{error:?}");
    // The access token signed before the rotation took the first id.
    assert_eq!(journals.all(), [reused(2)]);
}

#[tokio::test]
async fn refresh_with_a_dead_or_unknown_token_is_refused_without_revoking_anything() {
    let mut revoked = session(SESSION, ALICE, TimeDelta::days(3));
    revoked.revoked_at = Some(now() - TimeDelta::hours(2));
    let expired = session(SESSION, ALICE, TimeDelta::zero());
    for found in [Some((revoked, false)), Some((expired, false)), None] {
        let mut fx = Fixture::new();
        lookup(&mut fx, found.clone());
        never_spent(&mut fx);
        fx.no_revocation();
        fx.revocation.expect_is_revoked().never();
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
            "{found:?}: {error:?}"
        );
        assert!(appended.all().is_empty(), "{found:?}");
    }
}

/// Revoked (or expired, or deleted with its user) between the lookup and the rotation: the
/// rotation re-checks it atomically and nothing is issued.
#[tokio::test]
async fn refresh_whose_session_died_or_vanished_before_the_rotation_is_refused() {
    let mut dead = session(SESSION, ALICE, TimeDelta::days(3));
    dead.revoked_at = Some(now());
    for outcome in [
        Ok(RefreshRotation::Dead(dead)),
        Ok(RefreshRotation::Unknown),
        Err(StoreError::NotFound),
    ] {
        let case = format!("{outcome:?}");
        let mut fx = Fixture::new();
        live_token(&mut fx);
        signs(&mut fx);
        let answer = std::sync::Mutex::new(Some(outcome));
        fx.sessions
            .expect_rotate_refresh_token()
            .times(1)
            .returning(move |_, _, _| answer.lock().unwrap().take().unwrap());
        fx.no_revocation();

        let error = fx
            .auth()
            .refresh(&secret(PRESENTED), &ClientInfo::default())
            .await
            .unwrap_err();

        assert!(
            matches!(error, RefreshError::InvalidToken),
            "{case}: {error:?}"
        );
    }
}

#[tokio::test]
async fn refresh_for_an_inactive_or_vanished_user_is_refused_and_revokes_the_session() {
    // Vanished: deleted after the token was read (the revocation then finds no session).
    for stored_user in [Some(inactive(alice())), None] {
        let mut fx = Fixture::new();
        lookup(
            &mut fx,
            Some((session(SESSION, ALICE, TimeDelta::days(3)), false)),
        );
        listed(&mut fx, false);
        user_is(&mut fx, stored_user.clone());
        never_spent(&mut fx);
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

// ----- nothing fails after the token is spent --------------------------------------------------

/// Sets a fixture up for one case, given how the store fails.
type Arrange = fn(&mut Fixture, fn() -> StoreError);

/// Every read a refresh makes (the token, the revocation list, the user, the tenant scope)
/// and the signing of the access token come before the rotation: when one fails, the token
/// is still unspent, so the client's retry with it is not taken for a reuse.
#[tokio::test]
async fn a_failure_before_the_rotation_leaves_the_token_unspent() {
    let down = || StoreError::Unavailable("pool timed out".into());
    let cases: [(&str, Arrange); 5] = [
        ("the token lookup", |fx, down| {
            fx.sessions
                .expect_find_refresh_token()
                .times(1)
                .returning(move |_| Err(down()));
        }),
        ("the revocation list", |fx, _| {
            lookup(
                fx,
                Some((session(SESSION, ALICE, TimeDelta::days(3)), false)),
            );
            fx.revocation
                .expect_is_revoked()
                .times(1)
                .returning(|_| Err(revocation_error()));
        }),
        ("the user", |fx, down| {
            lookup(
                fx,
                Some((session(SESSION, ALICE, TimeDelta::days(3)), false)),
            );
            listed(fx, false);
            fx.users
                .expect_find_by_id()
                .times(1)
                .returning(move |_| Err(down()));
        }),
        ("the tenant scope", |fx, down| {
            lookup(fx, Some((scoped_session(), false)));
            listed(fx, false);
            user_is(fx, Some(alice()));
            fx.tenants
                .expect_find()
                .times(1)
                .returning(move |_| Err(down()));
        }),
        ("the membership", |fx, down| {
            lookup(fx, Some((scoped_session(), false)));
            listed(fx, false);
            user_is(fx, Some(alice()));
            fx.tenants.expect_find().returning(|_| Ok(Some(tenant())));
            fx.tenants
                .expect_role_of()
                .times(1)
                .returning(move |_, _| Err(down()));
        }),
    ];
    for (what, arrange) in cases {
        let mut fx = Fixture::new();
        arrange(&mut fx, down);
        never_spent(&mut fx);
        fx.no_revocation();
        fx.tokens.expect_issue().never();

        let error = fx
            .auth()
            .refresh(&secret(PRESENTED), &client())
            .await
            .unwrap_err();

        assert!(
            matches!(error, RefreshError::Unavailable(_)),
            "{what} down: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_failure_to_sign_the_access_token_leaves_the_refresh_token_unspent() {
    let mut fx = Fixture::new();
    live_token(&mut fx);
    fx.tokens
        .expect_issue()
        .times(1)
        .returning(|_| Err(TokenError::Unexpected("the key is unusable".into())));
    never_spent(&mut fx);
    fx.no_revocation();

    let error = fx
        .auth()
        .refresh(&secret(PRESENTED), &ClientInfo::default())
        .await
        .unwrap_err();

    assert!(matches!(error, RefreshError::Unexpected(_)), "{error:?}");
}

#[tokio::test]
async fn refresh_reports_an_unavailable_rotation_as_unavailable() {
    let mut fx = Fixture::new();
    live_token(&mut fx);
    signs(&mut fx);
    fx.sessions
        .expect_rotate_refresh_token()
        .times(1)
        .returning(|_, _, _| Err(StoreError::Unavailable("pool timed out".into())));
    fx.no_revocation();

    let error = fx
        .auth()
        .refresh(&secret(PRESENTED), &ClientInfo::default())
        .await
        .unwrap_err();

    assert!(matches!(error, RefreshError::Unavailable(_)), "{error:?}");
}

// ----- the revocation list -----------------------------------------------------------------------

/// A session on the fast-path list but live in the store (a logout whose store write failed
/// after the list's): refused, and revoked in the store too, with its event; the token is not
/// spent and no user is read.
#[tokio::test]
async fn a_session_on_the_revocation_list_is_refused_and_revoked_in_the_store_too() {
    let mut fx = Fixture::new();
    lookup(
        &mut fx,
        Some((session(SESSION, ALICE, TimeDelta::days(3)), false)),
    );
    listed(&mut fx, true);
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
    // On the list already: not put there again.
    fx.revocation.expect_revoke().never();
    never_spent(&mut fx);
    fx.users.expect_find_by_id().never();
    fx.tokens.expect_issue().never();

    let error = fx
        .auth()
        .refresh(&secret(PRESENTED), &client())
        .await
        .unwrap_err();

    assert!(matches!(error, RefreshError::InvalidToken), "{error:?}");
    let healed = event(
        1,
        AuditAction::SessionRevoked,
        None,
        AuditTarget::Session(SESSION),
        &client(),
    )
    .with("reason", "refresh of a session on the revocation list");
    assert_eq!(journals.all(), [Journal::of(healed)]);
}

#[tokio::test]
async fn a_revocation_list_that_cannot_be_read_fails_the_refresh_closed() {
    let mut fx = Fixture::new();
    lookup(
        &mut fx,
        Some((session(SESSION, ALICE, TimeDelta::days(3)), false)),
    );
    fx.revocation
        .expect_is_revoked()
        .times(1)
        .returning(|_| Err(revocation_error()));
    never_spent(&mut fx);
    fx.no_revocation();
    fx.users.expect_find_by_id().never();
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

/// The scoped session's token is live and unlisted, and Alice is active.
fn scoped_token(fx: &mut Fixture) {
    lookup(fx, Some((scoped_session(), false)));
    listed(fx, false);
    user_is(fx, Some(alice()));
}

#[tokio::test]
async fn refresh_of_a_scoped_session_carries_the_members_role_as_it_is_now() {
    let mut fx = Fixture::new();
    scoped_token(&mut fx);
    rotation(&mut fx, RefreshRotation::Rotated(scoped_session()));
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
        scoped_token(&mut fx);
        never_spent(&mut fx);
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
