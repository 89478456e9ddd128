//! `require_verified_email`: a login with the right password and an unverified address opens
//! no session and says why; with the setting off, or a verified address, login goes on.

use secrecy::ExposeSecret;

use super::fixture::{Fixture, PASSWORD, STORED_HASH, alice, credentials, secret};
use crate::model::User;
use crate::services::{ClientInfo, LoginError, LoginRequest};

fn unverified() -> User {
    let mut user = alice();
    user.email_verified = false;
    user
}

fn login_checks_the_password_of(fx: &mut Fixture, user: User) {
    fx.users
        .expect_find_credentials()
        .times(1)
        .returning(move |_| Ok(Some(credentials(user.clone()))));
    fx.hasher
        .expect_verify()
        .withf(|candidate, hash| {
            candidate.expose_secret() == PASSWORD && hash.as_str() == STORED_HASH
        })
        .times(1)
        .returning(|_, _| Ok(true));
}

fn request() -> LoginRequest {
    LoginRequest {
        login: "alice".to_owned(),
        password: secret(PASSWORD),
        remember_me: false,
        tenant: None,
        client: ClientInfo::default(),
    }
}

#[tokio::test]
async fn an_unverified_address_is_refused_after_the_password_and_opens_no_session() {
    let mut fx = Fixture::new();
    fx.settings.require_verified_email = true;
    login_checks_the_password_of(&mut fx, unverified());
    fx.sessions.expect_create().never();
    fx.tokens.expect_issue().never();
    let appended = fx.appended.clone();

    let error = fx.auth().login(request()).await.unwrap_err();

    assert!(matches!(error, LoginError::EmailNotVerified), "{error:?}");
    let events = super::fixture::events(&appended.all());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].details["reason"], "unverified");
}

#[tokio::test]
async fn with_the_setting_off_an_unverified_address_logs_in() {
    let mut fx = Fixture::new();
    assert!(!fx.settings.require_verified_email, "off by default");
    login_checks_the_password_of(&mut fx, unverified());
    fx.sessions
        .expect_create()
        .times(1)
        .returning(|_, _| Ok(()));
    fx.tokens
        .expect_issue()
        .times(1)
        .returning(|_| Ok("signed".to_owned()));

    assert!(fx.auth().login(request()).await.is_ok());
}
