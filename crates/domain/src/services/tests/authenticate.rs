//! `AuthService::authenticate`: token, revocation list (fail closed) and the stored user.

use chrono::TimeDelta;
use uuid::Uuid;

use super::fixture::{
    ALICE, Fixture, SESSION, TENANT, alice, client, inactive, now, revocation_error,
};
use crate::model::{Role, TenantRole};
use crate::ports::{AccessClaims, StoreError, TokenError};
use crate::services::{AuthError, ClientInfo};

const BEARER: &str = "header.payload.signature";

fn claims() -> AccessClaims {
    AccessClaims {
        user_id: ALICE,
        session_id: SESSION,
        token_id: Uuid::from_u128(0x7070),
        role: Role::User,
        tenant: None,
        issued_at: now() - TimeDelta::minutes(5),
        expires_at: now() + TimeDelta::minutes(10),
    }
}

/// The codec accepts exactly [`BEARER`] and decodes [`claims`].
fn valid_token(fx: &mut Fixture) {
    fx.tokens
        .expect_verify()
        .withf(|token| token == BEARER)
        .times(1)
        .returning(|_| Ok(claims()));
}

/// The revocation list is asked once about [`SESSION`].
fn revoked(fx: &mut Fixture, revoked: bool) {
    fx.revocation
        .expect_is_revoked()
        .withf(|id| *id == SESSION)
        .times(1)
        .returning(move |_| Ok(revoked));
}

#[tokio::test]
async fn authenticate_refuses_an_invalid_token_without_consulting_anything_else() {
    let mut fx = Fixture::new();
    fx.tokens
        .expect_verify()
        .withf(|token| token == BEARER)
        .times(1)
        .returning(|_| Err(TokenError::Invalid("expired".to_owned())));
    fx.revocation.expect_is_revoked().never();
    fx.users.expect_find_by_id().never();

    let error = fx
        .auth()
        .authenticate(BEARER, ClientInfo::default())
        .await
        .unwrap_err();

    assert!(matches!(error, AuthError::Unauthenticated(_)), "{error:?}");
}

/// A codec that cannot work (e.g. an unusable key) refuses every token. Which error that is
/// reported as is left open: it is `Unauthenticated` today, though a server-side fault would
/// arguably be `Unexpected`.
#[tokio::test]
async fn authenticate_refuses_every_token_when_the_codec_fails() {
    let mut fx = Fixture::new();
    fx.tokens
        .expect_verify()
        .times(1)
        .returning(|_| Err(TokenError::Unexpected("unusable key".into())));
    fx.revocation.expect_is_revoked().never();
    fx.users.expect_find_by_id().never();

    let result = fx.auth().authenticate(BEARER, ClientInfo::default()).await;

    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
async fn authenticate_refuses_a_revoked_session() {
    let mut fx = Fixture::new();
    valid_token(&mut fx);
    revoked(&mut fx, true);
    fx.users.expect_find_by_id().never();

    let error = fx
        .auth()
        .authenticate(BEARER, ClientInfo::default())
        .await
        .unwrap_err();

    assert!(matches!(error, AuthError::Unauthenticated(_)), "{error:?}");
}

#[tokio::test]
async fn authenticate_fails_closed_when_the_revocation_list_cannot_be_read() {
    let mut fx = Fixture::new();
    valid_token(&mut fx);
    fx.revocation
        .expect_is_revoked()
        .times(1)
        .returning(|_| Err(revocation_error()));
    fx.users.expect_find_by_id().never();

    let result = fx.auth().authenticate(BEARER, ClientInfo::default()).await;

    assert!(
        matches!(result, Err(AuthError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn authenticate_refuses_a_missing_or_inactive_user() {
    for stored_user in [None, Some(inactive(alice()))] {
        let mut fx = Fixture::new();
        valid_token(&mut fx);
        revoked(&mut fx, false);
        let answer = stored_user.clone();
        fx.users
            .expect_find_by_id()
            .withf(|id| *id == ALICE)
            .times(1)
            .returning(move |_| Ok(answer.clone()));

        let error = fx
            .auth()
            .authenticate(BEARER, ClientInfo::default())
            .await
            .unwrap_err();

        assert!(
            matches!(error, AuthError::Unauthenticated(_)),
            "user {stored_user:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn authenticate_reports_an_unavailable_store_as_unavailable() {
    let mut fx = Fixture::new();
    valid_token(&mut fx);
    revoked(&mut fx, false);
    fx.users
        .expect_find_by_id()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("pool timed out".into())));

    let result = fx.auth().authenticate(BEARER, ClientInfo::default()).await;

    assert!(
        matches!(result, Err(AuthError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn authenticate_returns_the_user_as_stored_now_and_the_tokens_session() {
    let mut fx = Fixture::new();
    valid_token(&mut fx);
    revoked(&mut fx, false);
    // Promoted since the token was issued: the principal carries the stored role.
    let mut fresh = alice();
    fresh.role = Role::Admin;
    fresh.version = 9;
    let answer = fresh.clone();
    fx.users
        .expect_find_by_id()
        .withf(|id| *id == ALICE)
        .times(1)
        .returning(move |_| Ok(Some(answer.clone())));

    let principal = fx.auth().authenticate(BEARER, client()).await.unwrap();

    assert_eq!(principal.user, fresh);
    assert_eq!(principal.session_id, SESSION);
    assert_eq!(principal.tenant, None);
    assert_eq!(principal.client, client(), "for the audit trail");
}

#[tokio::test]
async fn authenticate_carries_the_tokens_tenant_scope() {
    let mut fx = Fixture::new();
    fx.tokens.expect_verify().times(1).returning(|_| {
        Ok(AccessClaims {
            tenant: Some((TENANT, TenantRole::Viewer)),
            ..claims()
        })
    });
    revoked(&mut fx, false);
    fx.users
        .expect_find_by_id()
        .times(1)
        .returning(|_| Ok(Some(alice())));
    // Authentication itself does not re-read the membership; authorization does.
    fx.tenants.expect_role_of().never();
    fx.tenants.expect_find().never();

    let principal = fx.auth().authenticate(BEARER, client()).await.unwrap();

    assert_eq!(principal.tenant, Some((TENANT, TenantRole::Viewer)));
}
