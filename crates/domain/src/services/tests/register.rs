//! `AuthService::register`: validation, password strength, storage, and the verification
//! e-mail, which goes into the insert's journal (the outbox), never straight to the mailer.

use chrono::TimeDelta;
use secrecy::ExposeSecret;

use super::fixture::{
    ADMIN, Calls, Fixture, PASSWORD, STORED_HASH, action_token, assert_carries_token, client,
    event, fields, generated_id, messages, now, sealed_mail, secret, stored, token,
};
use crate::model::{AuditAction, AuditTarget, Journal, MailKind, NewUser, Role, UserId};
use crate::ports::{ActionPurpose, StoreError, UniqueField};
use crate::services::{ClientInfo, RegisterError, Registration};

fn registration() -> Registration {
    Registration {
        email: "Ada.Lovelace@Example.COM".to_owned(),
        username: "ada_l".to_owned(),
        password: secret(PASSWORD),
        first_name: Some("Ada".to_owned()),
        last_name: Some("Lovelace".to_owned()),
    }
}

/// Validation and strength pass, the password is hashed, the store accepts the user; the
/// journals of the inserts are returned.
fn accept_and_store(fx: &mut Fixture) -> Calls<Journal> {
    fx.strength_scores(4, None);
    fx.hashes(PASSWORD);
    let journals = Calls::new();
    let recorder = journals.clone();
    fx.users
        .expect_insert()
        .times(1)
        .returning(move |new, journal| {
            recorder.record(journal);
            Ok(stored(&new))
        });
    journals
}

/// Nothing is hashed, stored, issued or mailed.
fn nothing_written(fx: &mut Fixture) {
    fx.hasher.expect_hash().never();
    fx.hasher.expect_verify().never();
    fx.users.expect_insert().never();
    fx.users.expect_issue_action_token().never();
    fx.mailer.expect_send().never();
}

/// The user [`registration`] creates: the first generated id.
fn ada() -> UserId {
    UserId::from_uuid(generated_id(1))
}

#[tokio::test]
async fn register_stores_a_hashed_unverified_user_and_queues_a_verification_token_with_it() {
    let mut fx = Fixture::new();
    // Exactly the minimum score is enough.
    let min_score = fx.settings.password_rules.min_score;
    fx.strength_scores(min_score, None);
    fx.hashes(PASSWORD);
    let journals = Calls::new();
    let recorder = journals.clone();
    fx.users
        .expect_insert()
        .withf(|new, _| {
            new.id == UserId::from_uuid(generated_id(1))
                && new.email.as_str() == "ada.lovelace@example.com"
                && new.username.as_str() == "ada_l"
                && new.first_name.as_str() == "Ada"
                && new.last_name.as_str() == "Lovelace"
                && new.role == Role::User
                && new.is_active
                && !new.email_verified
                && new.password_hash.as_str() == STORED_HASH
                && new.password_hash.as_str() != PASSWORD
                && new.created_at == now()
        })
        .times(1)
        .returning(move |new, journal| {
            recorder.record(journal);
            Ok(stored(&new))
        });
    // The token and the mail go with the insert, in its transaction: nothing else is issued
    // and nothing is sent now.
    fx.users.expect_issue_action_token().never();
    fx.mailer.expect_send().never();
    let verification_ttl = fx.settings.verification_ttl;
    let link = fx.settings.verification_link(&token(1));
    let sealed = fx.sealed.clone();

    let user = fx
        .auth()
        .register(registration(), &ClientInfo::default())
        .await
        .unwrap();

    assert_eq!(user.id, ada());
    assert_eq!(user.email.as_str(), "ada.lovelace@example.com");
    assert_eq!(user.role, Role::User);
    assert!(user.is_active);
    assert!(!user.email_verified);

    let [journal] = journals.all().try_into().unwrap();
    assert_eq!(
        journal.tokens,
        [action_token(
            1,
            user.id,
            ActionPurpose::VerifyEmail,
            verification_ttl
        )],
        "only the digest is stored"
    );
    assert_ne!(journal.tokens[0].hash.as_str(), token(1));
    // Ids: the user's, the event's, then the message's.
    assert_eq!(journal.mail, [sealed_mail(3, MailKind::Verification)]);
    let [mail] = sealed.of(&journal).try_into().unwrap();
    assert_eq!(
        link,
        format!("http://localhost:8080/verify-email?token={}", token(1))
    );
    assert_carries_token(
        &mail,
        "ada.lovelace@example.com",
        "Confirm your e-mail address",
        &link,
        &token(1),
    );
    assert!(mail.text.contains("Hello ada_l"), "{}", mail.text);
}

#[tokio::test]
async fn register_mails_the_configured_link_with_the_token_in_it() {
    let mut fx = Fixture::new();
    fx.settings.verify_email_url = Some("https://app.example.com/verify?token={token}".into());
    let journals = accept_and_store(&mut fx);
    let sealed = fx.sealed.clone();

    assert!(
        fx.auth()
            .register(registration(), &ClientInfo::default())
            .await
            .is_ok()
    );

    let [journal] = journals.all().try_into().unwrap();
    let [mail] = sealed.of(&journal).try_into().unwrap();
    let expected_link = format!("https://app.example.com/verify?token={}", token(1));
    assert_carries_token(
        &mail,
        "ada.lovelace@example.com",
        "Confirm your e-mail address",
        &expected_link,
        &token(1),
    );
    assert!(
        !mail.text.contains("localhost"),
        "not the default link: {}",
        mail.text
    );
}

#[tokio::test]
async fn register_reports_every_invalid_field_at_once_without_touching_store_or_hasher() {
    let mut fx = Fixture::new();
    nothing_written(&mut fx);
    // A password that fails the length rule is never shown to the estimator.
    fx.strength.expect_estimate().never();
    let input = Registration {
        email: "not-an-email".to_owned(),
        username: "no spaces allowed".to_owned(),
        password: secret("short"),
        first_name: Some("Ada".to_owned()),
        last_name: Some("x".repeat(101)),
    };

    let error = fx
        .auth()
        .register(input, &ClientInfo::default())
        .await
        .unwrap_err();

    let RegisterError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(
        fields(&errors),
        ["email", "last_name", "password", "username"]
    );
    assert!(messages(&errors, "password").contains("at least 10 characters"));
}

#[tokio::test]
async fn register_refuses_a_weak_password_with_the_estimators_feedback() {
    let mut fx = Fixture::new();
    let below_minimum = fx.settings.password_rules.min_score - 1;
    fx.strength_scores(
        below_minimum,
        Some("This is similar to a commonly used password."),
    );
    nothing_written(&mut fx);

    let error = fx
        .auth()
        .register(registration(), &ClientInfo::default())
        .await
        .unwrap_err();

    let RegisterError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["password"]);
    assert!(
        messages(&errors, "password").contains("This is similar to a commonly used password."),
        "{errors}"
    );
}

#[tokio::test]
async fn register_explains_a_weak_password_even_without_feedback() {
    let mut fx = Fixture::new();
    fx.strength_scores(0, None);
    nothing_written(&mut fx);

    let error = fx
        .auth()
        .register(registration(), &ClientInfo::default())
        .await
        .unwrap_err();

    let RegisterError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["password"]);
    assert!(
        messages(&errors, "password").contains("too easy to guess"),
        "{errors}"
    );
}

#[tokio::test]
async fn register_gives_the_strength_estimator_the_users_own_words() {
    let mut fx = Fixture::new();
    fx.strength
        .expect_estimate()
        .withf(|password, inputs| {
            let has = |word: &str| inputs.iter().any(|i| i.eq_ignore_ascii_case(word));
            password.secret().expose_secret() == PASSWORD
                && has("ada.lovelace@example.com")
                && has("ada_l")
                && has("Ada")
                && has("Lovelace")
        })
        .times(1)
        .return_const(crate::ports::StrengthVerdict {
            score: 0,
            feedback: None,
        });
    nothing_written(&mut fx);

    let error = fx
        .auth()
        .register(registration(), &ClientInfo::default())
        .await
        .unwrap_err();

    assert!(matches!(error, RegisterError::Invalid(_)), "{error:?}");
}

#[tokio::test]
async fn register_maps_duplicates_to_taken_errors_and_queues_nothing() {
    for field in [UniqueField::Email, UniqueField::Username] {
        let mut fx = Fixture::new();
        fx.strength_scores(4, None);
        fx.hashes(PASSWORD);
        let journals = Calls::new();
        let recorder = journals.clone();
        fx.users
            .expect_insert()
            .times(1)
            .returning(move |_, journal| {
                recorder.record(journal);
                Err(StoreError::Duplicate(field))
            });
        // The token and the message went with the refused insert, and nowhere else.
        fx.users.expect_issue_action_token().never();
        fx.mailer.expect_send().never();
        fx.outbox.expect_claim().never();
        let appended = fx.appended.clone();

        let error = fx
            .auth()
            .register(registration(), &ClientInfo::default())
            .await
            .unwrap_err();

        let [refused] = journals.all().try_into().unwrap();
        assert_eq!(refused.tokens.len(), 1, "{field:?}");
        assert_eq!(refused.mail.len(), 1, "{field:?}");
        assert!(appended.all().is_empty(), "{field:?}: {:?}", appended.all());

        let as_expected = match field {
            UniqueField::Email => matches!(error, RegisterError::EmailTaken),
            UniqueField::Username => matches!(error, RegisterError::UsernameTaken),
            _ => unreachable!(),
        };
        assert!(as_expected, "{field:?} taken: got {error:?}");
    }
}

#[tokio::test]
async fn register_reports_an_unavailable_store_as_unavailable() {
    let mut fx = Fixture::new();
    fx.strength_scores(4, None);
    fx.hashes(PASSWORD);
    fx.users
        .expect_insert()
        .times(1)
        .returning(|_, _| Err(StoreError::Unavailable("pool timed out".into())));
    fx.mailer.expect_send().never();

    let error = fx
        .auth()
        .register(registration(), &ClientInfo::default())
        .await
        .unwrap_err();

    assert!(matches!(error, RegisterError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn register_never_calls_the_mailer() {
    // A mail server that is down or slow cannot fail or delay a registration: the message
    // is only queued, with the user.
    let mut fx = Fixture::new();
    let journals = accept_and_store(&mut fx);
    fx.mailer.expect_send().never();
    fx.users.expect_issue_action_token().never();

    let user = fx
        .auth()
        .register(registration(), &ClientInfo::default())
        .await
        .unwrap();

    assert_eq!(user.id, ada());
    let [journal] = journals.all().try_into().unwrap();
    assert_eq!(journal.mail.len(), 1);
}

#[tokio::test]
async fn register_mentions_the_verification_lifetime_in_the_mail() {
    let mut fx = Fixture::new();
    fx.settings.verification_ttl = TimeDelta::hours(48);
    let journals = accept_and_store(&mut fx);
    let sealed = fx.sealed.clone();

    assert!(
        fx.auth()
            .register(registration(), &ClientInfo::default())
            .await
            .is_ok()
    );

    let [journal] = journals.all().try_into().unwrap();
    let [token] = journal.tokens.clone().try_into().unwrap();
    assert_eq!(token.expires_at, now() + TimeDelta::hours(48));
    let [mail] = sealed.of(&journal).try_into().unwrap();
    assert!(mail.text.contains("48 hours"), "{}", mail.text);
    assert!(mail.html.contains("48 hours"), "{}", mail.html);
}

// ----- audit ----------------------------------------------------------------------------------

/// The store accepts the user; the users and journals it was given are recorded.
fn record_insert(fx: &mut Fixture) -> Calls<(NewUser, Journal)> {
    let calls = Calls::new();
    let recorder = calls.clone();
    fx.users
        .expect_insert()
        .times(1)
        .returning(move |new, journal| {
            let user = stored(&new);
            recorder.record((new, journal));
            Ok(user)
        });
    calls
}

#[tokio::test]
async fn register_records_user_registered_in_the_same_insert_as_the_user() {
    let mut fx = Fixture::new();
    fx.strength_scores(4, None);
    fx.hashes(PASSWORD);
    let inserts = record_insert(&mut fx);
    fx.mailer.expect_send().never();
    let appended = fx.appended.clone();
    let verification_ttl = fx.settings.verification_ttl;

    let user = fx.auth().register(registration(), &client()).await.unwrap();

    // The user's id is taken first, then the event's, then the message's.
    assert_eq!(user.id, ada());
    let [(new, journal)] = inserts.all().try_into().unwrap();
    assert_eq!(new.id, user.id);
    let expected = event(
        2,
        AuditAction::UserRegistered,
        None,
        AuditTarget::User(user.id),
        &client(),
    )
    .with("role", "user");
    assert_eq!(
        journal,
        Journal::of(expected)
            .with_token(action_token(
                1,
                user.id,
                ActionPurpose::VerifyEmail,
                verification_ttl
            ))
            .with_mail(sealed_mail(3, MailKind::Verification))
    );
    assert!(
        !serde_json::Value::Object(journal.events[0].details.clone())
            .to_string()
            .contains(PASSWORD),
        "never the password"
    );
    assert!(appended.all().is_empty(), "nothing outside the insert");
}

#[tokio::test]
async fn create_user_by_an_administrator_records_user_created_with_the_actor() {
    let mut fx = Fixture::new();
    fx.strength_scores(4, None);
    fx.hashes(PASSWORD);
    let inserts = record_insert(&mut fx);
    fx.users.expect_issue_action_token().never();
    fx.mailer.expect_send().never();
    let appended = fx.appended.clone();

    let user = fx
        .auth()
        .create_user(registration(), Role::Admin, true, Some(ADMIN), &client())
        .await
        .unwrap();

    assert_eq!(user.role, Role::Admin);
    assert!(user.email_verified);
    let [(new, journal)] = inserts.all().try_into().unwrap();
    assert_eq!(new.role, Role::Admin);
    assert!(new.email_verified);
    let expected = event(
        2,
        AuditAction::UserCreated,
        Some(ADMIN),
        AuditTarget::User(user.id),
        &client(),
    )
    .with("role", "admin");
    // A verified address needs no verification: no token, no mail.
    assert_eq!(journal, Journal::of(expected));
    assert!(appended.all().is_empty());
}

#[tokio::test]
async fn create_user_without_an_actor_is_recorded_as_a_registration() {
    let mut fx = Fixture::new();
    fx.strength_scores(4, None);
    fx.hashes(PASSWORD);
    let inserts = record_insert(&mut fx);
    fx.mailer.expect_send().never();

    let user = fx
        .auth()
        .create_user(
            registration(),
            Role::Admin,
            true,
            None,
            &ClientInfo::default(),
        )
        .await
        .unwrap();

    let [(_, journal)] = inserts.all().try_into().unwrap();
    let expected = event(
        2,
        AuditAction::UserRegistered,
        None,
        AuditTarget::User(user.id),
        &ClientInfo::default(),
    )
    .with("role", "admin");
    assert_eq!(journal, Journal::of(expected));
}

#[tokio::test]
async fn an_invalid_registration_records_nothing() {
    let mut fx = Fixture::new();
    fx.strength_scores(0, None);
    nothing_written(&mut fx);
    let appended = fx.appended.clone();

    let error = fx
        .auth()
        .register(registration(), &client())
        .await
        .unwrap_err();

    assert!(matches!(error, RegisterError::Invalid(_)), "{error:?}");
    assert!(appended.all().is_empty(), "{:?}", appended.all());
}
