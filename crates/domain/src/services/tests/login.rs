//! `AuthService::login`: lookup by e-mail or username, password check, session and tokens.

use secrecy::ExposeSecret;

use super::fixture::{
    Calls, Fixture, PASSWORD, STORED_HASH, admin, alice, credentials, digest, generated_id,
    inactive, now, secret, token,
};
use crate::model::{Email, NewSession, SessionId, User, Username};
use crate::ports::{AccessClaims, Login, StoreError};
use crate::services::{ClientInfo, LoginError, LoginRequest};

fn request(login: &str, password: &str) -> LoginRequest {
    LoginRequest {
        login: login.to_owned(),
        password: secret(password),
        remember_me: false,
        client: ClientInfo::default(),
    }
}

/// The store knows `user` under `login`, with [`STORED_HASH`].
fn known(fx: &mut Fixture, login: Login, user: User) {
    fx.users
        .expect_find_credentials()
        .withf(move |l| *l == login)
        .times(1)
        .returning(move |_| Ok(Some(credentials(user.clone()))));
}

/// The hasher is asked once whether [`PASSWORD`] matches [`STORED_HASH`], and answers `matches`.
fn password_matches(fx: &mut Fixture, matches: bool) {
    fx.hasher
        .expect_verify()
        .withf(|candidate, hash| {
            candidate.expose_secret() == PASSWORD && hash.as_str() == STORED_HASH
        })
        .times(1)
        .returning(move |_, _| Ok(matches));
    fx.hasher.expect_verify_dummy().never();
}

/// Sessions are created and the access token is issued as `signed-access-token`; both are
/// recorded.
fn accept_session(fx: &mut Fixture) -> (Calls<NewSession>, Calls<AccessClaims>) {
    let sessions = Calls::new();
    let recorder = sessions.clone();
    fx.sessions.expect_create().times(1).returning(move |new| {
        recorder.record(new);
        Ok(())
    });
    let claims = Calls::new();
    let recorder = claims.clone();
    fx.tokens.expect_issue().times(1).returning(move |c| {
        recorder.record(c.clone());
        Ok("signed-access-token".to_owned())
    });
    (sessions, claims)
}

/// No session is opened and no token issued.
fn no_session(fx: &mut Fixture) {
    fx.sessions.expect_create().never();
    fx.tokens.expect_issue().never();
}

fn by_username(name: &str) -> Login {
    Login::Username(Username::parse(name).unwrap())
}

#[tokio::test]
async fn login_by_email_looks_up_the_normalised_address() {
    let mut fx = Fixture::new();
    known(
        &mut fx,
        Login::Email(Email::parse("alice@example.com").unwrap()),
        alice(),
    );
    password_matches(&mut fx, true);
    accept_session(&mut fx);

    let issued = fx
        .auth()
        .login(request("  Alice@Example.COM ", PASSWORD))
        .await
        .unwrap();

    assert_eq!(issued.user.id, alice().id);
}

#[tokio::test]
async fn login_by_username_looks_up_the_username() {
    let mut fx = Fixture::new();
    known(&mut fx, by_username("alice"), alice());
    password_matches(&mut fx, true);
    accept_session(&mut fx);

    let issued = fx.auth().login(request("alice", PASSWORD)).await.unwrap();

    assert_eq!(issued.user.id, alice().id);
}

#[tokio::test]
async fn login_opens_a_session_storing_only_the_refresh_digest_and_issues_an_access_token() {
    let mut fx = Fixture::new();
    known(&mut fx, by_username("alice"), alice());
    password_matches(&mut fx, true);
    let (sessions, claims) = accept_session(&mut fx);
    let settings = fx.settings.clone();
    let mut login = request("alice", PASSWORD);
    login.client = ClientInfo {
        user_agent: Some("curl/8.5".to_owned()),
        ip: Some("203.0.113.7".to_owned()),
    };

    let issued = fx.auth().login(login).await.unwrap();

    let session_id = SessionId::from_uuid(generated_id(1));
    let [created] = sessions.all().try_into().unwrap();
    assert_eq!(created.session.id, session_id);
    assert_eq!(created.session.user_id, alice().id);
    assert_eq!(created.session.created_at, now());
    assert_eq!(created.session.last_used_at, now());
    assert_eq!(created.session.expires_at, now() + settings.refresh_ttl);
    assert_eq!(created.session.revoked_at, None);
    assert_eq!(created.session.user_agent.as_deref(), Some("curl/8.5"));
    assert_eq!(created.session.ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(
        created.refresh_token,
        digest(&token(1)),
        "only the digest is stored"
    );

    let [claims] = claims.all().try_into().unwrap();
    assert_eq!(claims.user_id, alice().id);
    assert_eq!(claims.session_id, session_id);
    assert_eq!(claims.role, alice().role);
    assert_eq!(claims.issued_at, now());
    assert_eq!(claims.expires_at, now() + settings.access_ttl);
    assert_ne!(
        claims.token_id,
        *session_id.as_uuid(),
        "the jti is its own id"
    );

    assert_eq!(issued.access_token.expose_secret(), "signed-access-token");
    assert_eq!(issued.refresh_token.expose_secret(), token(1));
    assert_eq!(issued.expires_in, 15 * 60);
    assert_eq!(issued.refresh_expires_in, 7 * 24 * 3600);
    assert_eq!(issued.session_id, session_id);
    assert_eq!(issued.user.id, alice().id);
    assert_eq!(issued.user.last_login_at, Some(now()));
}

#[tokio::test]
async fn login_with_remember_me_opens_a_longer_session_and_carries_the_role() {
    let mut fx = Fixture::new();
    known(&mut fx, by_username("root"), admin());
    password_matches(&mut fx, true);
    let (sessions, claims) = accept_session(&mut fx);
    let remember_me_ttl = fx.settings.remember_me_ttl;
    let mut login = request("root", PASSWORD);
    login.remember_me = true;

    let issued = fx.auth().login(login).await.unwrap();

    let [created] = sessions.all().try_into().unwrap();
    assert_eq!(created.session.expires_at, now() + remember_me_ttl);
    assert_eq!(issued.refresh_expires_in, 30 * 24 * 3600);
    let [claims] = claims.all().try_into().unwrap();
    assert_eq!(claims.role, admin().role);
    assert_eq!(claims.user_id, admin().id);
}

#[tokio::test]
async fn login_truncates_an_overlong_user_agent() {
    let mut fx = Fixture::new();
    known(&mut fx, by_username("alice"), alice());
    password_matches(&mut fx, true);
    let (sessions, _) = accept_session(&mut fx);
    let mut login = request("alice", PASSWORD);
    login.client.user_agent = Some("é".repeat(300));

    fx.auth().login(login).await.unwrap();

    let [created] = sessions.all().try_into().unwrap();
    assert_eq!(created.session.user_agent, Some("é".repeat(256)));
}

#[tokio::test]
async fn login_with_a_wrong_password_is_refused() {
    let mut fx = Fixture::new();
    known(&mut fx, by_username("alice"), alice());
    fx.hasher
        .expect_verify()
        .withf(|candidate, hash| {
            candidate.expose_secret() == "wrong password" && hash.as_str() == STORED_HASH
        })
        .times(1)
        .returning(|_, _| Ok(false));
    fx.hasher.expect_verify_dummy().never();
    no_session(&mut fx);

    let error = fx
        .auth()
        .login(request("alice", "wrong password"))
        .await
        .unwrap_err();

    assert!(matches!(error, LoginError::InvalidCredentials), "{error:?}");
}

#[tokio::test]
async fn login_of_an_unknown_user_is_refused_after_a_dummy_verification() {
    let mut fx = Fixture::new();
    fx.users
        .expect_find_credentials()
        .withf(|l| *l == by_username("nobody"))
        .times(1)
        .returning(|_| Ok(None));
    fx.hasher
        .expect_verify_dummy()
        .withf(|candidate| candidate.expose_secret() == PASSWORD)
        .times(1)
        .returning(|_| Ok(()));
    fx.hasher.expect_verify().never();
    no_session(&mut fx);

    let error = fx
        .auth()
        .login(request("nobody", PASSWORD))
        .await
        .unwrap_err();

    assert!(matches!(error, LoginError::InvalidCredentials), "{error:?}");
}

#[tokio::test]
async fn login_that_is_neither_an_email_nor_a_username_is_not_looked_up_but_costs_the_same() {
    for login in ["not a login", "alice@", "a", "x@y"] {
        let mut fx = Fixture::new();
        fx.users.expect_find_credentials().never();
        fx.hasher
            .expect_verify_dummy()
            .withf(|candidate| candidate.expose_secret() == PASSWORD)
            .times(1)
            .returning(|_| Ok(()));
        fx.hasher.expect_verify().never();
        no_session(&mut fx);

        let error = fx.auth().login(request(login, PASSWORD)).await.unwrap_err();

        assert!(
            matches!(error, LoginError::InvalidCredentials),
            "{login:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn login_of_an_inactive_user_is_refused_after_checking_the_password() {
    let mut fx = Fixture::new();
    known(&mut fx, by_username("alice"), inactive(alice()));
    password_matches(&mut fx, true);
    no_session(&mut fx);

    let error = fx
        .auth()
        .login(request("alice", PASSWORD))
        .await
        .unwrap_err();

    assert!(matches!(error, LoginError::InvalidCredentials), "{error:?}");
}

#[tokio::test]
async fn login_reports_an_unavailable_store_as_unavailable() {
    let mut fx = Fixture::new();
    fx.users
        .expect_find_credentials()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("pool timed out".into())));
    fx.hasher.expect_verify().never();
    no_session(&mut fx);

    let error = fx
        .auth()
        .login(request("alice", PASSWORD))
        .await
        .unwrap_err();

    assert!(matches!(error, LoginError::Unavailable(_)), "{error:?}");
}

// ----- throttling ------------------------------------------------------------------------------

use crate::ports::{AttemptWindow, MockLoginThrottle, ThrottleError};

/// The throttle counts one attempt for ada@example.com and answers `count`.
fn throttle_counting(count: u32, window: chrono::TimeDelta) -> MockLoginThrottle {
    let mut throttle = MockLoginThrottle::new();
    throttle
        .expect_count_attempt()
        .withf(move |key, w| key == "login:ada@example.com" && *w == window)
        .times(1)
        .returning(move |_, w| {
            Ok(AttemptWindow {
                failures: count,
                resets_at: Some(now() + w - chrono::TimeDelta::milliseconds(1500)),
            })
        });
    throttle.expect_check().never();
    throttle
}

#[tokio::test]
async fn an_attempt_beyond_the_limit_is_refused_before_any_password_check() {
    let mut fx = Fixture::new();
    let max = fx.settings.login_max_failures;
    let window = fx.settings.login_window;
    let mut throttle = throttle_counting(max + 1, window);
    throttle.expect_clear().never();
    fx.throttle = Some(throttle);
    fx.users.expect_find_credentials().never();
    fx.hasher.expect_verify().never();
    fx.hasher.expect_verify_dummy().never();

    let error = fx
        .auth()
        .login(request("  Ada@Example.com ", PASSWORD))
        .await
        .unwrap_err();

    // 15 minutes less 1.5 s, rounded up.
    let expected = window.num_seconds() - 1;
    assert!(
        matches!(error, LoginError::TooManyAttempts { retry_after_secs } if retry_after_secs == expected),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_last_allowed_attempt_is_still_checked_and_counted_before_the_check() {
    for known_account in [true, false] {
        let mut fx = Fixture::new();
        let max = fx.settings.login_max_failures;
        let mut throttle = throttle_counting(max, fx.settings.login_window);
        throttle.expect_clear().never();
        fx.throttle = Some(throttle);
        if known_account {
            known(
                &mut fx,
                Login::Email(Email::parse("ada@example.com").unwrap()),
                alice(),
            );
            password_matches(&mut fx, false);
        } else {
            fx.users
                .expect_find_credentials()
                .times(1)
                .returning(|_| Ok(None));
            fx.hasher
                .expect_verify_dummy()
                .times(1)
                .returning(|_| Ok(()));
        }

        let error = fx
            .auth()
            .login(request("ada@example.com", PASSWORD))
            .await
            .unwrap_err();

        assert!(matches!(error, LoginError::InvalidCredentials), "{error:?}");
    }
}

#[tokio::test]
async fn a_success_clears_the_count() {
    let mut fx = Fixture::new();
    let mut throttle = throttle_counting(3, fx.settings.login_window);
    throttle
        .expect_clear()
        .withf(|key| key == "login:ada@example.com")
        .times(1)
        .returning(|_| Ok(()));
    fx.throttle = Some(throttle);
    known(
        &mut fx,
        Login::Email(Email::parse("ada@example.com").unwrap()),
        alice(),
    );
    password_matches(&mut fx, true);
    accept_session(&mut fx);

    fx.auth()
        .login(request("ada@example.com", PASSWORD))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unreachable_throttle_fails_closed() {
    let mut fx = Fixture::new();
    let mut throttle = MockLoginThrottle::new();
    throttle
        .expect_count_attempt()
        .returning(|_, _| Err(ThrottleError("down".into())));
    fx.throttle = Some(throttle);
    fx.users.expect_find_credentials().never();
    fx.hasher.expect_verify().never();

    let error = fx
        .auth()
        .login(request("ada@example.com", PASSWORD))
        .await
        .unwrap_err();

    assert!(matches!(error, LoginError::Unavailable(_)), "{error:?}");
}
