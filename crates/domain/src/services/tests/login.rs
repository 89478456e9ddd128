//! `AuthService::login`: lookup by e-mail or username, password check, session and tokens.

use secrecy::ExposeSecret;

use super::fixture::{
    ALICE, Calls, Fixture, PASSWORD, STORED_HASH, TENANT, admin, alice, client, credentials,
    digest, event, events, generated_id, inactive, now, secret, settings, tenant, token,
};
use crate::model::{
    AuditAction, AuditTarget, Email, Journal, NewSession, SessionId, TenantRef, TenantRole,
    TenantSlug, User, Username,
};
use crate::ports::{AccessClaims, Login, StoreError};
use crate::services::{ClientInfo, LoginError, LoginRequest};

fn request(login: &str, password: &str) -> LoginRequest {
    LoginRequest {
        login: login.to_owned(),
        password: secret(password),
        remember_me: false,
        tenant: None,
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
/// recorded, each session with the journal of the same call.
fn accept_session(fx: &mut Fixture) -> (Calls<(NewSession, Journal)>, Calls<AccessClaims>) {
    let sessions = Calls::new();
    let recorder = sessions.clone();
    fx.sessions
        .expect_create()
        .times(1)
        .returning(move |new, journal| {
            recorder.record((new, journal));
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
        request_id: Some("req-1".to_owned()),
    };

    let issued = fx.auth().login(login).await.unwrap();

    // Ids: the session's, then the login event's, then the access token's.
    let session_id = SessionId::from_uuid(generated_id(1));
    let [(created, _)] = sessions.all().try_into().unwrap();
    assert_eq!(created.session.id, session_id);
    assert_eq!(created.session.user_id, alice().id);
    assert_eq!(created.session.created_at, now());
    assert_eq!(created.session.last_used_at, now());
    assert_eq!(created.session.expires_at, now() + settings.refresh_ttl);
    assert_eq!(created.session.revoked_at, None);
    assert_eq!(created.session.user_agent.as_deref(), Some("curl/8.5"));
    assert_eq!(created.session.ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(created.session.tenant, None);
    assert_eq!(
        created.refresh_token,
        digest(&token(1)),
        "only the digest is stored"
    );
    assert_eq!(
        created.verified_password.as_str(),
        STORED_HASH,
        "the store re-checks the hash the password was verified against"
    );

    let [claims] = claims.all().try_into().unwrap();
    assert_eq!(claims.user_id, alice().id);
    assert_eq!(claims.session_id, session_id);
    assert_eq!(claims.role, alice().role);
    assert_eq!(claims.tenant, None);
    assert_eq!(claims.issued_at, now());
    assert_eq!(claims.expires_at, now() + settings.access_ttl);
    assert_ne!(
        claims.token_id,
        *session_id.as_uuid(),
        "the jti is its own id"
    );
    assert_eq!(claims.token_id, generated_id(3));

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

    let [(created, _)] = sessions.all().try_into().unwrap();
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

    let [(created, _)] = sessions.all().try_into().unwrap();
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
    let appended = fx.appended.clone();

    let error = fx
        .auth()
        .login(request("alice", PASSWORD))
        .await
        .unwrap_err();

    assert!(matches!(error, LoginError::Unavailable(_)), "{error:?}");
    assert!(
        appended.all().is_empty(),
        "an outage is not a refused login: {:?}",
        appended.all()
    );
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

/// The throttle counts one attempt for Alice's account (`account:<id>`) and answers `count`.
fn counts_account(throttle: &mut MockLoginThrottle, count: u32) {
    throttle
        .expect_count_attempt()
        .withf(|key, w| *key == format!("account:{ALICE}") && *w == settings().login_window)
        .times(1)
        .returning(move |_, w| {
            Ok(AttemptWindow {
                failures: count,
                resets_at: Some(now() + w),
            })
        });
}

#[tokio::test]
async fn an_attempt_beyond_the_limit_is_refused_before_any_password_check() {
    let mut fx = Fixture::new();
    let max = fx.settings.login_max_failures;
    let window = fx.settings.login_window;
    let mut throttle = throttle_counting(max + 1, window);
    throttle.expect_clear().never();
    fx.throttle = Some(throttle);
    // The lock starts: the name is looked up once, to record the lock by account, but no
    // password is checked.
    fx.users
        .expect_find_credentials()
        .times(1)
        .returning(|_| Ok(None));
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
        if known_account {
            counts_account(&mut throttle, 1);
        }
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
    counts_account(&mut throttle, 4);
    throttle
        .expect_clear()
        .withf(|key| key == "login:ada@example.com")
        .times(1)
        .returning(|_| Ok(()));
    throttle
        .expect_clear()
        .withf(|key| *key == format!("account:{ALICE}"))
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

// ----- audit ----------------------------------------------------------------------------------

/// `request` from [`client`].
fn request_from_client(login: &str, password: &str) -> LoginRequest {
    LoginRequest {
        client: client(),
        ..request(login, password)
    }
}

/// The refused login of an unknown or unproven name, as it must be recorded: by the name as
/// typed (trimmed), with no target, no actor and no password.
fn failed_by_name(n: u128, login: &str) -> Journal {
    Journal::of(
        event(
            n,
            AuditAction::UserLoginFailed,
            None,
            AuditTarget::None,
            &client(),
        )
        .with("login", login),
    )
}

/// Nothing in the journals contains `secret`, wherever it would hide.
fn never_mentions(journals: &[Journal], secret: &str) {
    let text = format!("{journals:?}");
    assert!(!text.contains(secret), "{text}");
}

#[tokio::test]
async fn a_login_records_user_login_in_the_same_call_that_creates_the_session() {
    let mut fx = Fixture::new();
    known(&mut fx, by_username("alice"), alice());
    password_matches(&mut fx, true);
    let (sessions, _) = accept_session(&mut fx);
    let appended = fx.appended.clone();

    let issued = fx
        .auth()
        .login(request_from_client("alice", PASSWORD))
        .await
        .unwrap();

    let [(created, journal)] = sessions.all().try_into().unwrap();
    assert_eq!(created.session.id, issued.session_id);
    let expected = event(
        2,
        AuditAction::UserLogin,
        Some(ALICE),
        AuditTarget::User(ALICE),
        &client(),
    )
    .with("session_id", issued.session_id.to_string());
    assert_eq!(journal, Journal::of(expected));
    never_mentions(&[journal], PASSWORD);
    assert!(
        appended.all().is_empty(),
        "a success goes with its session only: {:?}",
        appended.all()
    );
}

#[tokio::test]
async fn a_failed_login_for_an_unknown_name_records_the_name_as_typed_and_never_the_password() {
    let mut fx = Fixture::new();
    fx.users
        .expect_find_credentials()
        .times(1)
        .returning(|_| Ok(None));
    fx.hasher
        .expect_verify_dummy()
        .times(1)
        .returning(|_| Ok(()));
    no_session(&mut fx);
    let appended = fx.appended.clone();

    let error = fx
        .auth()
        .login(request_from_client("  Nobody@Example.com ", PASSWORD))
        .await
        .unwrap_err();

    assert!(matches!(error, LoginError::InvalidCredentials), "{error:?}");
    let journals = appended.all();
    assert_eq!(journals, [failed_by_name(1, "Nobody@Example.com")]);
    never_mentions(&journals, PASSWORD);
}

#[tokio::test]
async fn a_login_name_that_cannot_be_an_account_is_recorded_all_the_same() {
    let mut fx = Fixture::new();
    fx.users.expect_find_credentials().never();
    fx.hasher
        .expect_verify_dummy()
        .times(1)
        .returning(|_| Ok(()));
    no_session(&mut fx);
    let appended = fx.appended.clone();

    let error = fx
        .auth()
        .login(request_from_client("not a login", PASSWORD))
        .await
        .unwrap_err();

    assert!(matches!(error, LoginError::InvalidCredentials), "{error:?}");
    assert_eq!(appended.all(), [failed_by_name(1, "not a login")]);
}

/// A wrong password (or an inactive account) is recorded against the account, by its id and
/// with the reason, not by the name as typed: no personal data outlives the account, and an
/// administrator finds the attempts with `?target=<id>`. (The event's actor stays empty: the
/// caller proved nothing.)
#[tokio::test]
async fn a_refused_login_of_an_existing_account_is_recorded_by_its_id() {
    for (user, password_right) in [(alice(), false), (inactive(alice()), true)] {
        let mut fx = Fixture::new();
        // Matched regardless of case by the store; recorded as typed.
        known(&mut fx, by_username("Alice"), user.clone());
        fx.hasher
            .expect_verify()
            .times(1)
            .returning(move |_, _| Ok(password_right));
        no_session(&mut fx);
        let appended = fx.appended.clone();

        let error = fx
            .auth()
            .login(request_from_client("Alice", PASSWORD))
            .await
            .unwrap_err();

        assert!(matches!(error, LoginError::InvalidCredentials), "{error:?}");
        let journals = appended.all();
        let refused = event(
            1,
            AuditAction::UserLoginFailed,
            None,
            AuditTarget::User(ALICE),
            &client(),
        )
        .with("reason", "credentials");
        assert_eq!(
            journals,
            [Journal::of(refused)],
            "active {}",
            user.is_active
        );
        never_mentions(&journals, "Alice");
        never_mentions(&journals, PASSWORD);
    }
}

#[tokio::test]
async fn a_failing_audit_trail_does_not_change_the_answer_to_a_refused_login() {
    let mut fx = Fixture::new();
    fx.audit_fails();
    known(&mut fx, by_username("alice"), alice());
    password_matches(&mut fx, false);
    no_session(&mut fx);
    let appended = fx.appended.clone();

    let error = fx
        .auth()
        .login(request_from_client("alice", PASSWORD))
        .await
        .unwrap_err();

    assert!(matches!(error, LoginError::InvalidCredentials), "{error:?}");
    let refused = event(
        1,
        AuditAction::UserLoginFailed,
        None,
        AuditTarget::User(ALICE),
        &client(),
    )
    .with("reason", "credentials");
    assert_eq!(
        appended.all(),
        [Journal::of(refused)],
        "the append was tried"
    );
}

#[tokio::test]
async fn the_first_refused_attempt_records_the_lock_once() {
    let max = settings().login_max_failures;
    let window = settings().login_window;
    for (count, locks) in [
        (max, false),
        (max + 1, true),
        (max + 2, false),
        (max + 9, false),
    ] {
        let mut fx = Fixture::new();
        let mut throttle = throttle_counting(count, window);
        throttle.expect_clear().never();
        fx.throttle = Some(throttle);
        if count <= max {
            fx.users
                .expect_find_credentials()
                .times(1)
                .returning(|_| Ok(None));
            fx.hasher
                .expect_verify_dummy()
                .times(1)
                .returning(|_| Ok(()));
        } else if locks {
            // Looked up once, to record the lock by account; no password checked.
            fx.users
                .expect_find_credentials()
                .times(1)
                .returning(|_| Ok(None));
            fx.hasher.expect_verify_dummy().never();
        } else {
            fx.users.expect_find_credentials().never();
            fx.hasher.expect_verify_dummy().never();
        }
        fx.hasher.expect_verify().never();
        no_session(&mut fx);
        let appended = fx.appended.clone();

        let error = fx
            .auth()
            .login(request_from_client(" Ada@Example.com", PASSWORD))
            .await
            .unwrap_err();

        let journals = appended.all();
        if count <= max {
            assert!(matches!(error, LoginError::InvalidCredentials), "{error:?}");
            assert_eq!(journals, [failed_by_name(1, "Ada@Example.com")]);
        } else if locks {
            assert!(
                matches!(error, LoginError::TooManyAttempts { .. }),
                "{error:?}"
            );
            let locked = event(
                1,
                AuditAction::UserLocked,
                None,
                AuditTarget::None,
                &client(),
            )
            .with("login", "Ada@Example.com");
            assert_eq!(journals, [Journal::of(locked)], "attempt {count}");
        } else {
            assert!(
                matches!(error, LoginError::TooManyAttempts { .. }),
                "{error:?}"
            );
            assert!(journals.is_empty(), "attempt {count}: {journals:?}");
        }
        never_mentions(&journals, PASSWORD);
    }
}

/// The lock of an existing account's name is recorded by the account's id, without the name.
#[tokio::test]
async fn the_lock_of_an_accounts_name_is_recorded_by_its_id() {
    let mut fx = Fixture::new();
    let max = fx.settings.login_max_failures;
    let mut throttle = MockLoginThrottle::new();
    throttle
        .expect_count_attempt()
        .withf(|key, _| key == "login:alice")
        .times(1)
        .returning(move |_, w| {
            Ok(AttemptWindow {
                failures: max + 1,
                resets_at: Some(now() + w),
            })
        });
    throttle.expect_clear().never();
    fx.throttle = Some(throttle);
    known(&mut fx, by_username("Alice"), alice());
    fx.hasher.expect_verify().never();
    no_session(&mut fx);
    let appended = fx.appended.clone();

    let error = fx
        .auth()
        .login(request_from_client("Alice", PASSWORD))
        .await
        .unwrap_err();

    assert!(
        matches!(error, LoginError::TooManyAttempts { .. }),
        "{error:?}"
    );
    let locked = event(
        1,
        AuditAction::UserLocked,
        None,
        AuditTarget::User(ALICE),
        &client(),
    );
    let journals = appended.all();
    assert_eq!(journals, [Journal::of(locked)]);
    never_mentions(&journals, "Alice");
}

/// When the name's account cannot be looked up at the lock, the lock is still refused and
/// recorded, but without the name (it may be an account's).
#[tokio::test]
async fn a_lock_whose_account_cannot_be_told_is_recorded_without_the_name() {
    let mut fx = Fixture::new();
    let max = fx.settings.login_max_failures;
    let mut throttle = throttle_counting(max + 1, fx.settings.login_window);
    throttle.expect_clear().never();
    fx.throttle = Some(throttle);
    fx.users
        .expect_find_credentials()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("down".into())));
    let appended = fx.appended.clone();

    let error = fx
        .auth()
        .login(request_from_client("ada@example.com", PASSWORD))
        .await
        .unwrap_err();

    assert!(
        matches!(error, LoginError::TooManyAttempts { .. }),
        "{error:?}"
    );
    let locked = event(
        1,
        AuditAction::UserLocked,
        None,
        AuditTarget::None,
        &client(),
    );
    let journals = appended.all();
    assert_eq!(journals, [Journal::of(locked)]);
    never_mentions(&journals, "ada@example.com");
}

#[tokio::test]
async fn a_lock_is_refused_even_when_the_audit_trail_fails() {
    let mut fx = Fixture::new();
    fx.audit_fails();
    let max = fx.settings.login_max_failures;
    let mut throttle = throttle_counting(max + 1, fx.settings.login_window);
    throttle.expect_clear().never();
    fx.throttle = Some(throttle);
    fx.users
        .expect_find_credentials()
        .times(1)
        .returning(|_| Ok(None));
    let appended = fx.appended.clone();

    let error = fx
        .auth()
        .login(request("ada@example.com", PASSWORD))
        .await
        .unwrap_err();

    assert!(
        matches!(error, LoginError::TooManyAttempts { .. }),
        "{error:?}"
    );
    assert_eq!(appended.all().len(), 1, "the append was tried");
}

// ----- tenant scope ---------------------------------------------------------------------------

fn acme() -> TenantRef {
    TenantRef::Slug(TenantSlug::parse("acme").unwrap())
}

/// The tenant store is asked once for `reference` and answers `found`.
fn tenant_lookup(fx: &mut Fixture, reference: TenantRef, found: Option<crate::model::Tenant>) {
    fx.tenants
        .expect_find()
        .withf(move |r| *r == reference)
        .times(1)
        .returning(move |_| Ok(found.clone()));
}

/// The tenant store is asked once for Alice's role in [`TENANT`] and answers `role`.
fn alices_role(fx: &mut Fixture, role: Option<TenantRole>) {
    fx.tenants
        .expect_role_of()
        .withf(|t, u| *t == TENANT && *u == ALICE)
        .times(1)
        .returning(move |_, _| Ok(role));
}

fn scoped(login: &str, tenant: &str) -> LoginRequest {
    LoginRequest {
        tenant: Some(tenant.to_owned()),
        ..request_from_client(login, PASSWORD)
    }
}

#[tokio::test]
async fn a_member_logs_in_scoped_to_the_tenant_by_slug_or_id() {
    for (named, reference) in [
        ("acme".to_owned(), acme()),
        (TENANT.to_string(), TenantRef::Id(TENANT)),
    ] {
        let mut fx = Fixture::new();
        known(&mut fx, by_username("alice"), alice());
        password_matches(&mut fx, true);
        tenant_lookup(&mut fx, reference, Some(tenant()));
        alices_role(&mut fx, Some(TenantRole::Moderator));
        let (sessions, claims) = accept_session(&mut fx);
        let appended = fx.appended.clone();

        let issued = fx.auth().login(scoped("alice", &named)).await.unwrap();

        let [claims] = claims.all().try_into().unwrap();
        assert_eq!(
            claims.tenant,
            Some((TENANT, TenantRole::Moderator)),
            "{named}"
        );
        let [(created, journal)] = sessions.all().try_into().unwrap();
        assert_eq!(created.session.tenant, Some(TENANT), "{named}");
        let expected = event(
            2,
            AuditAction::UserLogin,
            Some(ALICE),
            AuditTarget::User(ALICE),
            &client(),
        )
        .with("session_id", issued.session_id.to_string())
        .in_tenant(TENANT);
        assert_eq!(journal, Journal::of(expected), "{named}");
        assert!(appended.all().is_empty(), "{named}");
    }
}

#[tokio::test]
async fn a_login_to_an_unknown_inactive_or_foreign_tenant_is_forbidden_without_a_session() {
    let mut inactive_tenant = tenant();
    inactive_tenant.is_active = false;
    /// What the tenant store knows; given the inactive tenant.
    type TenantStoreSays = fn(&mut Fixture, crate::model::Tenant);
    let cases: [(&str, TenantStoreSays); 4] = [
        ("unknown slug", |fx, _| tenant_lookup(fx, acme(), None)),
        ("inactive tenant", |fx, t| {
            tenant_lookup(fx, acme(), Some(t));
            fx.tenants.expect_role_of().never();
        }),
        ("not a member", |fx, _| {
            tenant_lookup(fx, acme(), Some(tenant()));
            alices_role(fx, None);
        }),
        ("not a slug", |fx, _| {
            fx.tenants.expect_find().never();
        }),
    ];
    for (case, tenant_store) in cases {
        let mut fx = Fixture::new();
        known(&mut fx, by_username("alice"), alice());
        password_matches(&mut fx, true);
        tenant_store(&mut fx, inactive_tenant.clone());
        no_session(&mut fx);
        let appended = fx.appended.clone();
        let named = if case == "not a slug" {
            "Ac Me"
        } else {
            "acme"
        };

        let error = fx.auth().login(scoped("alice", named)).await.unwrap_err();

        assert!(
            matches!(error, LoginError::TenantForbidden),
            "{case}: {error:?}"
        );
        // The password matched: the refusal is the account's, by id, not by the typed name,
        // and names the tenant asked for, as typed.
        let refused = event(
            1,
            AuditAction::UserLoginFailed,
            None,
            AuditTarget::User(ALICE),
            &client(),
        )
        .with("reason", "tenant")
        .with("tenant", named);
        let journals = appended.all();
        assert_eq!(journals, [Journal::of(refused)], "{case}");
        assert!(
            !events(&journals)[0].details.contains_key("login"),
            "{case}: not by name"
        );
        never_mentions(&journals, PASSWORD);
    }
}

#[tokio::test]
async fn the_tenant_is_not_looked_at_before_the_password_matched() {
    for (user, password_right) in [(alice(), false), (inactive(alice()), true)] {
        let mut fx = Fixture::new();
        known(&mut fx, by_username("alice"), user);
        fx.hasher
            .expect_verify()
            .times(1)
            .returning(move |_, _| Ok(password_right));
        fx.tenants.expect_find().never();
        fx.tenants.expect_role_of().never();
        no_session(&mut fx);

        let error = fx.auth().login(scoped("alice", "acme")).await.unwrap_err();

        // The same answer as without a tenant: nothing about the tenant leaks.
        assert!(matches!(error, LoginError::InvalidCredentials), "{error:?}");
    }
}

#[tokio::test]
async fn a_forbidden_tenant_is_refused_even_when_the_audit_trail_fails() {
    let mut fx = Fixture::new();
    fx.audit_fails();
    known(&mut fx, by_username("alice"), alice());
    password_matches(&mut fx, true);
    tenant_lookup(&mut fx, acme(), None);
    no_session(&mut fx);

    let error = fx.auth().login(scoped("alice", "acme")).await.unwrap_err();

    assert!(matches!(error, LoginError::TenantForbidden), "{error:?}");
}

#[tokio::test]
async fn an_unreachable_tenant_store_is_unavailable_not_forbidden() {
    let mut fx = Fixture::new();
    known(&mut fx, by_username("alice"), alice());
    password_matches(&mut fx, true);
    fx.tenants
        .expect_find()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("pool timed out".into())));
    no_session(&mut fx);
    let appended = fx.appended.clone();

    let error = fx.auth().login(scoped("alice", "acme")).await.unwrap_err();

    assert!(matches!(error, LoginError::Unavailable(_)), "{error:?}");
    assert!(appended.all().is_empty(), "{:?}", appended.all());
}

// ----- per-account throttling -----------------------------------------------------------------

/// A throttle that records the keys it counts, answering `failures` for `account:` keys and 1
/// for the others; clearing any key succeeds and is recorded.
fn recording_throttle(account_failures: u32) -> (MockLoginThrottle, Calls<String>, Calls<String>) {
    let (counted, cleared) = (Calls::new(), Calls::new());
    let mut throttle = MockLoginThrottle::new();
    let recorder = counted.clone();
    throttle.expect_count_attempt().returning(move |key, w| {
        recorder.record(key.to_owned());
        let failures = if key.starts_with("account:") {
            account_failures
        } else {
            1
        };
        Ok(AttemptWindow {
            failures,
            resets_at: Some(now() + w),
        })
    });
    let recorder = cleared.clone();
    throttle.expect_clear().returning(move |key| {
        recorder.record(key.to_owned());
        Ok(())
    });
    throttle.expect_check().never();
    (throttle, counted, cleared)
}

/// The e-mail address and the username of one account are one window of guesses, not two:
/// each attempt counts for its name and for the account.
#[tokio::test]
async fn attempts_on_an_account_count_together_whichever_of_its_names_they_use() {
    let mut fx = Fixture::new();
    let (throttle, counted, cleared) = recording_throttle(1);
    fx.throttle = Some(throttle);
    fx.users
        .expect_find_credentials()
        .times(2)
        .returning(|_| Ok(Some(credentials(alice()))));
    fx.hasher
        .expect_verify()
        .times(2)
        .returning(|_, _| Ok(false));
    no_session(&mut fx);
    let auth = fx.auth();

    for login in ["alice", "Alice@Example.com"] {
        let error = auth.login(request(login, "wrong")).await.unwrap_err();
        assert!(matches!(error, LoginError::InvalidCredentials), "{error:?}");
    }

    let account = format!("account:{ALICE}");
    assert_eq!(
        counted.all(),
        [
            "login:alice".to_owned(),
            account.clone(),
            "login:alice@example.com".to_owned(),
            account,
        ]
    );
    assert!(cleared.all().is_empty(), "{:?}", cleared.all());
}

/// Beyond the limit the account refuses every password, the right one included, exactly as a
/// wrong password or an unknown name is refused (the same error after a dummy verification):
/// a 429 here would tell that this name and the one that used the window up are one account's.
/// The lock is recorded once, by the account's id.
#[tokio::test]
async fn an_account_over_its_limit_refuses_even_the_right_password_as_a_wrong_one_is_refused() {
    let max = settings().login_max_failures;
    for failures in [max + 1, max + 2] {
        let mut fx = Fixture::new();
        let (throttle, _, cleared) = recording_throttle(failures);
        fx.throttle = Some(throttle);
        known(&mut fx, by_username("alice"), alice());
        fx.hasher.expect_verify().never();
        fx.hasher
            .expect_verify_dummy()
            .withf(|candidate| candidate.expose_secret() == PASSWORD)
            .times(1)
            .returning(|_| Ok(()));
        no_session(&mut fx);
        let appended = fx.appended.clone();

        let error = fx
            .auth()
            .login(request_from_client("alice", PASSWORD))
            .await
            .unwrap_err();

        assert!(
            matches!(error, LoginError::InvalidCredentials),
            "attempt {failures}: {error:?}"
        );
        assert!(cleared.all().is_empty(), "nothing is cleared");
        let locked = event(
            1,
            AuditAction::UserLocked,
            None,
            AuditTarget::User(ALICE),
            &client(),
        )
        .with("scope", "account");
        let refused = |n| {
            event(
                n,
                AuditAction::UserLoginFailed,
                None,
                AuditTarget::User(ALICE),
                &client(),
            )
            .with("reason", "locked")
        };
        let expected = if failures == max + 1 {
            vec![Journal::of(locked), Journal::of(refused(2))]
        } else {
            vec![Journal::of(refused(1))]
        };
        assert_eq!(appended.all(), expected, "attempt {failures}");
    }
}

#[tokio::test]
async fn a_success_clears_the_names_count_and_the_accounts() {
    let mut fx = Fixture::new();
    let (throttle, _, cleared) = recording_throttle(3);
    fx.throttle = Some(throttle);
    known(&mut fx, by_username("alice"), alice());
    password_matches(&mut fx, true);
    accept_session(&mut fx);

    fx.auth().login(request("alice", PASSWORD)).await.unwrap();

    assert_eq!(
        cleared.all(),
        ["login:alice".to_owned(), format!("account:{ALICE}")]
    );
}

#[tokio::test]
async fn an_unreachable_account_counter_fails_closed_before_the_password_check() {
    let mut fx = Fixture::new();
    let mut throttle = MockLoginThrottle::new();
    throttle
        .expect_count_attempt()
        .withf(|key, _| key == "login:alice")
        .returning(|_, w| {
            Ok(AttemptWindow {
                failures: 1,
                resets_at: Some(now() + w),
            })
        });
    throttle
        .expect_count_attempt()
        .withf(|key, _| key.starts_with("account:"))
        .returning(|_, _| Err(ThrottleError("down".into())));
    fx.throttle = Some(throttle);
    known(&mut fx, by_username("alice"), alice());
    fx.hasher.expect_verify().never();
    fx.hasher.expect_verify_dummy().never();
    no_session(&mut fx);

    let error = fx
        .auth()
        .login(request("alice", PASSWORD))
        .await
        .unwrap_err();

    assert!(matches!(error, LoginError::Unavailable(_)), "{error:?}");
}

// ----- the session re-checks what the login checked --------------------------------------------

/// The password was changed or reset (the other sessions revoked), or the account deactivated
/// or deleted, between the password check and the session's creation: the store refuses the
/// session (`Changed`, `NotFound`) and the login fails as with wrong credentials, recorded by
/// the account's id, with no token issued.
#[tokio::test]
async fn a_login_whose_password_or_account_changed_meanwhile_opens_no_session() {
    let refusals: [fn() -> StoreError; 2] = [|| StoreError::Changed, || StoreError::NotFound];
    for refusal in refusals {
        let mut fx = Fixture::new();
        known(&mut fx, by_username("alice"), alice());
        password_matches(&mut fx, true);
        fx.sessions
            .expect_create()
            .withf(|new, _| new.verified_password.as_str() == STORED_HASH)
            .times(1)
            .returning(move |_, _| Err(refusal()));
        fx.tokens.expect_issue().never();
        let appended = fx.appended.clone();

        let error = fx
            .auth()
            .login(request_from_client("alice", PASSWORD))
            .await
            .unwrap_err();

        assert!(
            matches!(error, LoginError::InvalidCredentials),
            "{:?}: {error:?}",
            refusal()
        );
        let recorded = events(&appended.all());
        assert_eq!(recorded.len(), 1, "{recorded:?}");
        assert_eq!(recorded[0].action, AuditAction::UserLoginFailed);
        assert_eq!(recorded[0].target, AuditTarget::User(ALICE));
        assert_eq!(recorded[0].details["reason"], "credentials");
    }
}
