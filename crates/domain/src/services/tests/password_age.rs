//! The password-age rule in the use cases: login, refresh and authentication say whether the
//! password must be changed, only past `password_max_age` and only when it is set, decided
//! from the user as stored now.

use chrono::TimeDelta;
use secrecy::ExposeSecret as _;
use uuid::Uuid;

use super::fixture::{
    ALICE, Fixture, PASSWORD, SESSION, STORED_HASH, alice, client, credentials, digest, now,
    secret, session, token,
};
use crate::model::{RefreshRotation, Role, Session, StoredRefreshToken, User, Username};
use crate::ports::{AccessClaims, Login};
use crate::services::{ClientInfo, LoginRequest};

/// Alice's password was set 100 days ago (see [`alice`]). Each maximum age with whether it
/// makes a change required: only a maximum age shorter than the password's age does.
fn cases() -> [(Option<TimeDelta>, bool); 4] {
    [
        (None, false),
        (Some(TimeDelta::days(90)), true),
        // Exactly as old as allowed is not past it.
        (Some(TimeDelta::days(100)), false),
        (Some(TimeDelta::days(365)), false),
    ]
}

fn with_max_age(max_age: Option<TimeDelta>) -> Fixture {
    let mut fx = Fixture::new();
    fx.settings.password_max_age = max_age;
    fx
}

/// A successful login of `user` by username: found, password right, session opened, token
/// signed.
fn login_succeeds(fx: &mut Fixture, user: User) {
    let login = Login::Username(user.username.clone());
    fx.users
        .expect_find_credentials()
        .withf(move |l| *l == login)
        .times(1)
        .returning(move |_| Ok(Some(credentials(user.clone()))));
    fx.hasher
        .expect_verify()
        .withf(|candidate, hash| {
            candidate.expose_secret() == PASSWORD && hash.as_str() == STORED_HASH
        })
        .times(1)
        .returning(|_, _| Ok(true));
    fx.sessions
        .expect_create()
        .times(1)
        .returning(|_, _| Ok(()));
    fx.tokens
        .expect_issue()
        .times(1)
        .returning(|_| Ok("signed-access-token".to_owned()));
}

fn login_request(user: &User) -> LoginRequest {
    LoginRequest {
        login: user.username.as_str().to_owned(),
        password: secret(PASSWORD),
        remember_me: false,
        tenant: None,
        client: ClientInfo::default(),
    }
}

#[tokio::test]
async fn login_says_a_change_is_required_only_past_a_configured_maximum_age() {
    for (max_age, required) in cases() {
        let mut fx = with_max_age(max_age);
        login_succeeds(&mut fx, alice());

        let issued = fx.auth().login(login_request(&alice())).await.unwrap();

        assert_eq!(issued.password_change_required, required, "{max_age:?}");
        assert_eq!(
            issued.access_token.expose_secret(),
            "signed-access-token",
            "{max_age:?}: the login succeeds all the same"
        );
    }
}

#[tokio::test]
async fn a_password_set_just_now_needs_no_change_even_under_the_shortest_age() {
    let mut fx = with_max_age(Some(TimeDelta::days(1)));
    let fresh = User {
        password_changed_at: now(),
        username: Username::parse("fresh").unwrap(),
        ..alice()
    };
    login_succeeds(&mut fx, fresh.clone());

    let issued = fx.auth().login(login_request(&fresh)).await.unwrap();

    assert!(!issued.password_change_required);
}

const PRESENTED: &str = "the-presented-refresh-token";

/// Alice's live, unspent token, not on the list; the store answers `user` for her now; the
/// rotation succeeds and the access token is signed.
fn refresh_succeeds(fx: &mut Fixture, user: User) {
    let live = session(SESSION, ALICE, TimeDelta::days(3));
    let found = live.clone();
    fx.sessions
        .expect_find_refresh_token()
        .withf(|presented| *presented == digest(PRESENTED))
        .times(1)
        .returning(move |_| {
            Ok(Some(StoredRefreshToken {
                session: found.clone(),
                used_at: None,
            }))
        });
    fx.revocation
        .expect_is_revoked()
        .withf(|id| *id == SESSION)
        .times(1)
        .returning(|_| Ok(false));
    fx.users
        .expect_find_by_id()
        .withf(|id| *id == ALICE)
        .times(1)
        .returning(move |_| Ok(Some(user.clone())));
    fx.tokens
        .expect_issue()
        .times(1)
        .returning(|_| Ok("new-access-token".to_owned()));
    fx.sessions
        .expect_rotate_refresh_token()
        .withf(|presented, replacement, at| {
            *presented == digest(PRESENTED) && *replacement == digest(&token(1)) && *at == now()
        })
        .times(1)
        .returning(move |_, _, _| {
            Ok(RefreshRotation::Rotated(Session {
                last_used_at: now(),
                ..live.clone()
            }))
        });
}

#[tokio::test]
async fn refresh_says_a_change_is_required_only_past_a_configured_maximum_age() {
    for (max_age, required) in cases() {
        let mut fx = with_max_age(max_age);
        refresh_succeeds(&mut fx, alice());

        let issued = fx
            .auth()
            .refresh(&secret(PRESENTED), &ClientInfo::default())
            .await
            .unwrap();

        assert_eq!(issued.password_change_required, required, "{max_age:?}");
    }
}

#[tokio::test]
async fn refresh_decides_from_the_password_as_stored_now() {
    // Changed since the login: the user the store answers now is what counts.
    let mut fx = with_max_age(Some(TimeDelta::days(90)));
    let changed = User {
        password_changed_at: now() - TimeDelta::minutes(1),
        ..alice()
    };
    refresh_succeeds(&mut fx, changed);

    let issued = fx
        .auth()
        .refresh(&secret(PRESENTED), &ClientInfo::default())
        .await
        .unwrap();

    assert!(!issued.password_change_required);
}

const BEARER: &str = "header.payload.signature";

/// A valid token of Alice's, not on the list, and `user` as the store answers for her now.
fn authenticates(fx: &mut Fixture, user: User) {
    fx.tokens
        .expect_verify()
        .withf(|token| token == BEARER)
        .times(1)
        .returning(|_| {
            Ok(AccessClaims {
                user_id: ALICE,
                session_id: SESSION,
                token_id: Uuid::from_u128(0x7070),
                role: Role::User,
                tenant: None,
                issued_at: now() - TimeDelta::minutes(5),
                expires_at: now() + TimeDelta::minutes(10),
            })
        });
    fx.revocation
        .expect_is_revoked()
        .withf(|id| *id == SESSION)
        .times(1)
        .returning(|_| Ok(false));
    fx.users
        .expect_find_by_id()
        .withf(|id| *id == ALICE)
        .times(1)
        .returning(move |_| Ok(Some(user.clone())));
}

#[tokio::test]
async fn every_request_decides_afresh_from_the_stored_user() {
    for (max_age, required) in cases() {
        let mut fx = with_max_age(max_age);
        authenticates(&mut fx, alice());

        let principal = fx.auth().authenticate(BEARER, client()).await.unwrap();

        assert_eq!(principal.password_change_required, required, "{max_age:?}");
    }
    // The same token once the password has been changed: no longer restricted.
    let mut fx = with_max_age(Some(TimeDelta::days(90)));
    authenticates(
        &mut fx,
        User {
            password_changed_at: now() - TimeDelta::seconds(1),
            ..alice()
        },
    );

    let principal = fx.auth().authenticate(BEARER, client()).await.unwrap();

    assert!(!principal.password_change_required);
}
