//! `AccountService`: profile updates (validation, policy, versions) and password changes.

use secrecy::ExposeSecret;
use serde_json::json;

use super::fixture::{
    ALICE, Calls, Fixture, PASSWORD, SESSION, SESSION_2, SESSION_3, STORED_HASH, admin, alice, bob,
    client, credentials, event, fields, inactive, messages, now, principal, principal_from_client,
    secret,
};
use crate::model::{
    AuditAction, AuditTarget, Journal, PersonName, Preferences, ProfileChanges, User, UserVersion,
    Username,
};
use crate::ports::{StoreError, UniqueField, UserChanges, UserUpdate};
use crate::services::{ChangePasswordError, ProfileUpdate, UpdateProfileError};

// ----- update_profile -------------------------------------------------------------------------

fn update() -> ProfileUpdate {
    ProfileUpdate {
        first_name: Some("  Ada ".to_owned()),
        last_name: None,
        username: Some("ada.l".to_owned()),
        preferences: Some(json!({"theme": "dark"})),
    }
}

fn expected_changes() -> ProfileChanges {
    ProfileChanges {
        first_name: Some(PersonName::parse("Ada").unwrap()),
        last_name: None,
        username: Some(Username::parse("ada.l").unwrap()),
        preferences: Some(Preferences::parse(json!({"theme": "dark"})).unwrap()),
    }
}

fn updated_alice() -> User {
    let mut user = alice();
    user.first_name = PersonName::parse("Ada").unwrap();
    user.username = Username::parse("ada.l").unwrap();
    user.version += 1;
    user.updated_at = now();
    user
}

/// The store is asked once to apply [`expected_changes`] (and nothing but profile changes) to
/// Alice with `if_match`, and answers `outcome`; the journal of that call is returned.
fn store_update(
    fx: &mut Fixture,
    if_match: Option<UserVersion>,
    outcome: fn() -> Result<User, StoreError>,
) -> Calls<Journal> {
    let journals = Calls::new();
    let recorder = journals.clone();
    let expected_changes = UserChanges {
        profile: expected_changes(),
        email: None,
        role: None,
        is_active: None,
    };
    fx.users
        .expect_update()
        .withf(move |id, changes, expected, at, _| {
            *id == ALICE && *changes == expected_changes && *expected == if_match && *at == now()
        })
        .times(1)
        .returning(move |_, _, _, _, journal| {
            recorder.record(journal);
            outcome().map(|user| UserUpdate {
                user,
                revoked: vec![],
            })
        });
    journals
}

#[tokio::test]
async fn update_profile_applies_the_validated_changes_with_the_callers_version() {
    for if_match in [Some(4), None] {
        let mut fx = Fixture::new();
        store_update(&mut fx, if_match, || Ok(updated_alice()));

        let user = fx
            .account()
            .update_profile(&principal(alice(), SESSION), ALICE, update(), if_match)
            .await
            .unwrap();

        assert_eq!(user, updated_alice(), "if_match {if_match:?}");
    }
}

#[tokio::test]
async fn an_empty_update_writes_nothing_but_still_checks_the_version() {
    for (if_match, fresh) in [
        (None, true),
        (Some(alice().version), true),
        (Some(99), false),
    ] {
        let mut fx = Fixture::new();
        fx.users.expect_update().never();
        fx.users
            .expect_find_by_id()
            .withf(|id| *id == ALICE)
            .times(1)
            .returning(|_| Ok(Some(alice())));

        let result = fx
            .account()
            .update_profile(
                &principal(alice(), SESSION),
                ALICE,
                ProfileUpdate::default(),
                if_match,
            )
            .await;

        if fresh {
            assert_eq!(result.unwrap(), alice(), "if_match {if_match:?}");
        } else {
            assert!(matches!(
                result,
                Err(UpdateProfileError::PreconditionFailed)
            ));
        }
    }
}

#[tokio::test]
async fn update_profile_reports_each_invalid_field_and_stores_nothing() {
    let mut fx = Fixture::new();
    fx.users.expect_update().never();
    let invalid = ProfileUpdate {
        first_name: Some("x".repeat(101)),
        last_name: Some("tab\tinside".to_owned()),
        username: Some("no spaces".to_owned()),
        preferences: Some(json!(["not", "an", "object"])),
    };

    let error = fx
        .account()
        .update_profile(&principal(alice(), SESSION), ALICE, invalid, None)
        .await
        .unwrap_err();

    let UpdateProfileError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(
        fields(&errors),
        ["first_name", "last_name", "preferences", "username"]
    );
}

#[tokio::test]
async fn update_profile_reports_only_the_invalid_field() {
    let mut fx = Fixture::new();
    fx.users.expect_update().never();
    let mut one_bad = update();
    one_bad.username = Some("x".to_owned());

    let error = fx
        .account()
        .update_profile(&principal(alice(), SESSION), ALICE, one_bad, None)
        .await
        .unwrap_err();

    let UpdateProfileError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["username"]);
    assert!(
        messages(&errors, "username").contains("3 to 32"),
        "{errors}"
    );
}

#[tokio::test]
async fn update_profile_of_another_user_is_forbidden_to_a_non_admin() {
    for caller in [bob(), inactive(admin())] {
        let mut fx = Fixture::new();
        fx.users.expect_update().never();

        let error = fx
            .account()
            .update_profile(&principal(caller.clone(), SESSION), ALICE, update(), None)
            .await
            .unwrap_err();

        assert!(
            matches!(error, UpdateProfileError::Forbidden),
            "{}: {error:?}",
            caller.username
        );
    }
}

#[tokio::test]
async fn update_profile_of_another_user_is_allowed_to_an_admin() {
    let mut fx = Fixture::new();
    store_update(&mut fx, Some(4), || Ok(updated_alice()));

    let user = fx
        .account()
        .update_profile(&principal(admin(), SESSION), ALICE, update(), Some(4))
        .await
        .unwrap();

    assert_eq!(user.id, ALICE);
}

/// Alice updates her own profile with `If-Match: 4`, and the store answers `outcome`.
async fn refused_by_store(outcome: fn() -> Result<User, StoreError>) -> UpdateProfileError {
    let mut fx = Fixture::new();
    store_update(&mut fx, Some(4), outcome);
    fx.account()
        .update_profile(&principal(alice(), SESSION), ALICE, update(), Some(4))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn update_profile_with_a_stale_version_fails_its_precondition() {
    let error = refused_by_store(|| Err(StoreError::StaleVersion)).await;
    assert!(
        matches!(error, UpdateProfileError::PreconditionFailed),
        "{error:?}"
    );
}

#[tokio::test]
async fn update_profile_of_an_unknown_user_is_not_found() {
    let error = refused_by_store(|| Err(StoreError::NotFound)).await;
    assert!(matches!(error, UpdateProfileError::NotFound), "{error:?}");
}

#[tokio::test]
async fn update_profile_to_a_taken_username_is_refused() {
    let error = refused_by_store(|| Err(StoreError::Duplicate(UniqueField::Username))).await;
    assert!(
        matches!(error, UpdateProfileError::UsernameTaken),
        "{error:?}"
    );
}

#[tokio::test]
async fn update_profile_reports_an_unavailable_store_as_unavailable() {
    let error = refused_by_store(|| Err(StoreError::Unavailable("pool timed out".into()))).await;
    assert!(
        matches!(error, UpdateProfileError::Unavailable(_)),
        "{error:?}"
    );
}

// ----- change_password ------------------------------------------------------------------------

const NEW_PASSWORD: &str = "a much longer new passphrase";

/// The store has Alice's credentials and the hasher says whether `current` matches them.
fn current_password_check(fx: &mut Fixture, matches: bool) {
    fx.users
        .expect_find_credentials_by_id()
        .withf(|id| *id == ALICE)
        .times(1)
        .returning(|_| Ok(Some(credentials(alice()))));
    fx.hasher
        .expect_verify()
        .withf(|candidate, hash| {
            candidate.expose_secret() == PASSWORD && hash.as_str() == STORED_HASH
        })
        .times(1)
        .returning(move |_, _| Ok(matches));
}

/// Nothing is hashed or changed.
fn nothing_changed(fx: &mut Fixture) {
    fx.hasher.expect_hash().never();
    fx.users.expect_change_password().never();
    fx.revocation.expect_revoke().never();
}

#[tokio::test]
async fn change_password_with_a_wrong_current_password_names_current_password() {
    let mut fx = Fixture::new();
    current_password_check(&mut fx, false);
    fx.strength.expect_estimate().never();
    nothing_changed(&mut fx);

    let error = fx
        .account()
        .change_password(
            &principal(alice(), SESSION),
            &secret(PASSWORD),
            secret(NEW_PASSWORD),
        )
        .await
        .unwrap_err();

    let ChangePasswordError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["current_password"]);
}

#[tokio::test]
async fn change_password_to_the_same_password_names_new_password() {
    let mut fx = Fixture::new();
    current_password_check(&mut fx, true);
    fx.strength.expect_estimate().never();
    nothing_changed(&mut fx);

    let error = fx
        .account()
        .change_password(
            &principal(alice(), SESSION),
            &secret(PASSWORD),
            secret(PASSWORD),
        )
        .await
        .unwrap_err();

    let ChangePasswordError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["new_password"]);
}

#[tokio::test]
async fn change_password_to_a_weak_password_names_new_password_with_the_feedback() {
    let mut fx = Fixture::new();
    current_password_check(&mut fx, true);
    fx.strength
        .expect_estimate()
        .withf(|password, inputs| {
            password.secret().expose_secret() == NEW_PASSWORD
                && inputs.iter().any(|i| i == "alice@example.com")
                && inputs.iter().any(|i| i == "alice")
        })
        .times(1)
        .return_const(crate::ports::StrengthVerdict {
            score: 1,
            feedback: Some("Avoid your own username.".to_owned()),
        });
    nothing_changed(&mut fx);

    let error = fx
        .account()
        .change_password(
            &principal(alice(), SESSION),
            &secret(PASSWORD),
            secret(NEW_PASSWORD),
        )
        .await
        .unwrap_err();

    let ChangePasswordError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["new_password"]);
    assert!(
        messages(&errors, "new_password").contains("Avoid your own username."),
        "{errors}"
    );
}

#[tokio::test]
async fn change_password_to_a_too_short_password_names_new_password() {
    let mut fx = Fixture::new();
    current_password_check(&mut fx, true);
    fx.strength.expect_estimate().never();
    nothing_changed(&mut fx);

    let error = fx
        .account()
        .change_password(
            &principal(alice(), SESSION),
            &secret(PASSWORD),
            secret("short"),
        )
        .await
        .unwrap_err();

    let ChangePasswordError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["new_password"]);
}

#[tokio::test]
async fn change_password_stores_the_new_hash_and_revokes_every_other_session() {
    let mut fx = Fixture::new();
    current_password_check(&mut fx, true);
    fx.strength_scores(4, None);
    fx.hashes(NEW_PASSWORD);
    // SESSION_2 is live when listed; SESSION_3 appears (a login racing the change) only in the
    // store's answer: both end up on the fast path, the current session does not.
    fx.sessions
        .expect_live_for_user()
        .withf(|user| *user == ALICE)
        .times(1)
        .returning(|_| Ok(vec![SESSION, SESSION_2]));
    fx.users
        .expect_change_password()
        .withf(|id, expected, hash, keep, at, _| {
            *id == ALICE
                && expected.as_str() == STORED_HASH
                && hash.as_str() == STORED_HASH
                && *keep == Some(SESSION)
                && *at == now()
        })
        .times(1)
        .returning(|_, _, _, _, _, _| Ok(vec![SESSION_2, SESSION_3]));
    let fast_path = fx.record_fast_path();
    let until = now() + fx.settings.revocation_window();

    fx.account()
        .change_password(
            &principal(alice(), SESSION),
            &secret(PASSWORD),
            secret(NEW_PASSWORD),
        )
        .await
        .unwrap();

    assert_eq!(fast_path.all(), [(SESSION_2, until), (SESSION_3, until)]);
}

#[tokio::test]
async fn change_password_by_an_inactive_account_is_forbidden() {
    let mut fx = Fixture::new();
    fx.users.expect_find_credentials_by_id().never();
    fx.hasher.expect_verify().never();
    nothing_changed(&mut fx);

    let error = fx
        .account()
        .change_password(
            &principal(inactive(alice()), SESSION),
            &secret(PASSWORD),
            secret(NEW_PASSWORD),
        )
        .await
        .unwrap_err();

    assert!(matches!(error, ChangePasswordError::Forbidden), "{error:?}");
}

// ----- audit ----------------------------------------------------------------------------------

#[tokio::test]
async fn update_profile_records_user_updated_naming_the_fields_in_the_same_call() {
    // By herself, and by an administrator.
    for caller in [alice(), admin()] {
        let mut fx = Fixture::new();
        let journals = store_update(&mut fx, Some(4), || Ok(updated_alice()));
        let appended = fx.appended.clone();

        fx.account()
            .update_profile(
                &principal_from_client(caller.clone(), SESSION),
                ALICE,
                update(),
                Some(4),
            )
            .await
            .unwrap();

        let updated = event(
            1,
            AuditAction::UserUpdated,
            Some(caller.id),
            AuditTarget::User(ALICE),
            &client(),
        )
        .with("fields", json!(["first_name", "username", "preferences"]));
        assert_eq!(
            journals.all(),
            [Journal::of(updated)],
            "{}",
            caller.username
        );
        let text = format!("{:?}", journals.all());
        assert!(
            !text.contains("ada.l") && !text.contains("dark"),
            "names, not values: {text}"
        );
        assert!(appended.all().is_empty());
    }
}

#[tokio::test]
async fn a_refused_or_empty_profile_update_records_nothing() {
    type Outcome = Result<User, UpdateProfileError>;
    /// A case, the change, the caller, and the answer it expects.
    type Case = (
        &'static str,
        ProfileUpdate,
        fn() -> User,
        fn(&Outcome) -> bool,
    );
    let refused: [Case; 3] = [
        ("empty", ProfileUpdate::default(), alice, |r| r.is_ok()),
        (
            "invalid",
            ProfileUpdate {
                username: Some("x".to_owned()),
                ..update()
            },
            alice,
            |r| matches!(r, Err(UpdateProfileError::Invalid(_))),
        ),
        ("forbidden", update(), bob, |r| {
            matches!(r, Err(UpdateProfileError::Forbidden))
        }),
    ];
    for (case, change, caller, as_expected) in refused {
        let mut fx = Fixture::new();
        fx.users.expect_update().never();
        fx.users
            .expect_find_by_id()
            .returning(|_| Ok(Some(alice())));
        let appended = fx.appended.clone();

        let outcome = fx
            .account()
            .update_profile(
                &principal_from_client(caller(), SESSION),
                ALICE,
                change,
                None,
            )
            .await;

        assert!(as_expected(&outcome), "{case}: {outcome:?}");
        assert!(appended.all().is_empty(), "{case}: {:?}", appended.all());
    }
}

#[tokio::test]
async fn change_password_records_the_change_in_the_same_call_and_never_a_secret() {
    let mut fx = Fixture::new();
    current_password_check(&mut fx, true);
    fx.strength_scores(4, None);
    fx.hashes(NEW_PASSWORD);
    fx.sessions
        .expect_live_for_user()
        .times(1)
        .returning(|_| Ok(vec![]));
    let journals = Calls::new();
    let recorder = journals.clone();
    fx.users
        .expect_change_password()
        .times(1)
        .returning(move |_, _, _, _, _, journal| {
            recorder.record(journal);
            Ok(vec![])
        });
    fx.revocation.expect_revoke().never();
    let appended = fx.appended.clone();

    fx.account()
        .change_password(
            &principal_from_client(alice(), SESSION),
            &secret(PASSWORD),
            secret(NEW_PASSWORD),
        )
        .await
        .unwrap();

    let changed = event(
        1,
        AuditAction::UserPasswordChanged,
        Some(ALICE),
        AuditTarget::User(ALICE),
        &client(),
    );
    let journals: Vec<Journal> = journals.all();
    // With the "password changed" notice (see tests/mail.rs for its content).
    let notice = super::fixture::sealed_mail(2, crate::model::MailKind::PasswordChanged);
    assert_eq!(journals, [Journal::of(changed).with_mail(notice)]);
    let text = format!("{journals:?}");
    for secret in [PASSWORD, NEW_PASSWORD, STORED_HASH] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(appended.all().is_empty());
}

#[tokio::test]
async fn a_refused_password_change_records_nothing() {
    let mut fx = Fixture::new();
    current_password_check(&mut fx, false);
    nothing_changed(&mut fx);
    let appended = fx.appended.clone();

    let error = fx
        .account()
        .change_password(
            &principal_from_client(alice(), SESSION),
            &secret(PASSWORD),
            secret(NEW_PASSWORD),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(error, ChangePasswordError::Invalid(_)),
        "{error:?}"
    );
    assert!(appended.all().is_empty(), "{:?}", appended.all());
}

/// What the store answers, in the password-change tests below, for a hash other than the one
/// the new password hashes to.
const NEW_HASH: &str = "$2b$04$hash-of-the-new-password";

/// The password is confirmed against [`STORED_HASH`] and the new one hashed to [`NEW_HASH`];
/// SESSION_2 is live besides the caller's; the store is asked once to change the password
/// only while [`STORED_HASH`] is still Alice's (keeping SESSION), and answers `outcome`.
fn change_confirmed_against_the_stored_hash(
    fx: &mut Fixture,
    outcome: fn() -> Result<Vec<crate::model::SessionId>, StoreError>,
) {
    current_password_check(fx, true);
    fx.strength_scores(4, None);
    fx.hasher
        .expect_hash()
        .withf(|p| p.secret().expose_secret() == NEW_PASSWORD)
        .times(1)
        .returning(|_| Ok(crate::model::PasswordHash::new(NEW_HASH.to_owned())));
    fx.sessions
        .expect_live_for_user()
        .times(1)
        .returning(|_| Ok(vec![SESSION, SESSION_2]));
    fx.users
        .expect_change_password()
        .withf(|id, expected, hash, keep, _, _| {
            *id == ALICE
                && expected.as_str() == STORED_HASH
                && hash.as_str() == NEW_HASH
                && *keep == Some(SESSION)
        })
        .times(1)
        .returning(move |_, _, _, _, _, _| outcome());
}

#[tokio::test]
async fn change_password_hands_the_store_the_hash_it_confirmed_against() {
    let mut fx = Fixture::new();
    change_confirmed_against_the_stored_hash(&mut fx, || Ok(vec![SESSION_2]));
    let fast_path = fx.record_fast_path();
    let until = now() + fx.settings.revocation_window();

    fx.account()
        .change_password(
            &principal(alice(), SESSION),
            &secret(PASSWORD),
            secret(NEW_PASSWORD),
        )
        .await
        .unwrap();

    assert_eq!(fast_path.all(), [(SESSION_2, until)]);
}

/// The race a stolen session could win: the password is confirmed, and while the new one is
/// hashed the owner resets it (ending that session). The store, finding the confirmed hash
/// replaced (or the account deactivated, or the kept session ended), writes nothing and
/// answers `Changed`: a 422 on `current_password`, with no event, no mail, and no fast-path
/// revocation past those made before the store was asked (see `mark_live_sessions_revoked`).
#[tokio::test]
async fn a_password_change_whose_confirmed_password_changed_meanwhile_names_current_password_and_records_nothing()
 {
    let mut fx = Fixture::new();
    change_confirmed_against_the_stored_hash(&mut fx, || Err(StoreError::Changed));
    let fast_path = fx.record_fast_path();
    fx.mailer.expect_send().never();
    let appended = fx.appended.clone();
    let until = now() + fx.settings.revocation_window();

    let error = fx
        .account()
        .change_password(
            &principal_from_client(alice(), SESSION),
            &secret(PASSWORD),
            secret(NEW_PASSWORD),
        )
        .await
        .unwrap_err();

    let ChangePasswordError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["current_password"]);
    assert!(
        messages(&errors, "current_password").contains("changed meanwhile"),
        "{errors}"
    );
    assert!(appended.all().is_empty(), "{:?}", appended.all());
    assert_eq!(
        fast_path.all(),
        [(SESSION_2, until)],
        "only the sessions marked before the store was asked; none after the refusal"
    );
}

// ----- sessions (devices) ---------------------------------------------------------------------

#[tokio::test]
async fn the_device_list_marks_the_current_session() {
    use crate::ports::Paged;
    let mut fx = Fixture::new();
    fx.sessions
        .expect_list_live()
        .withf(|user, at, page| *user == ALICE && *at == now() && page.per_page == 20)
        .times(1)
        .returning(|_, _, _| {
            Ok(Paged {
                items: vec![
                    super::fixture::session(SESSION_2, ALICE, chrono::TimeDelta::days(2)),
                    super::fixture::session(SESSION, ALICE, chrono::TimeDelta::days(3)),
                ],
                total: 7,
            })
        });

    let listed = fx
        .account()
        .sessions(&principal(alice(), SESSION), super::fixture::first_page())
        .await
        .unwrap();

    assert_eq!(listed.total, 7);
    let current: Vec<_> = listed
        .items
        .iter()
        .map(|d| (d.session.id, d.current))
        .collect();
    assert_eq!(current, [(SESSION_2, false), (SESSION, true)]);
}

#[tokio::test]
async fn ending_a_session_puts_it_on_the_fast_path_then_revokes_it_with_its_event() {
    let mut fx = Fixture::new();
    fx.sessions
        .expect_find()
        .withf(|id| *id == SESSION_2)
        .times(1)
        .returning(|id| {
            Ok(Some(super::fixture::session(
                id,
                ALICE,
                chrono::TimeDelta::days(1),
            )))
        });
    // The order of the two writes, recorded in one log.
    let order = Calls::new();
    let fast_order = order.clone();
    let fast_path = Calls::new();
    let fast_recorder = fast_path.clone();
    fx.revocation
        .expect_revoke()
        .returning(move |session, until| {
            fast_order.record("fast path");
            fast_recorder.record((session, until));
            Ok(())
        });
    let journals = Calls::new();
    let recorder = journals.clone();
    let store_order = order.clone();
    fx.sessions
        .expect_revoke()
        .withf(|user, id, at, _| *user == ALICE && *id == SESSION_2 && *at == now())
        .times(1)
        .returning(move |_, _, _, journal| {
            store_order.record("store");
            recorder.record(journal);
            Ok(true)
        });
    let window = fx.settings.revocation_window();

    fx.account()
        .end_session(&principal_from_client(alice(), SESSION), SESSION_2)
        .await
        .unwrap();

    assert_eq!(order.all(), ["fast path", "store"]);
    assert_eq!(fast_path.all(), [(SESSION_2, now() + window)]);
    let ended = event(
        1,
        AuditAction::SessionRevoked,
        Some(ALICE),
        AuditTarget::Session(SESSION_2),
        &client(),
    );
    assert_eq!(journals.all(), [Journal::of(ended)]);
}

#[tokio::test]
async fn another_users_or_a_dead_session_is_not_found_and_nothing_is_revoked() {
    let mut expired = super::fixture::session(SESSION_2, ALICE, chrono::TimeDelta::days(1));
    expired.expires_at = now() - chrono::TimeDelta::seconds(1);
    let mut revoked = super::fixture::session(SESSION_2, ALICE, chrono::TimeDelta::days(1));
    revoked.revoked_at = Some(now() - chrono::TimeDelta::hours(1));
    for found in [
        None,
        Some(super::fixture::session(
            SESSION_2,
            super::fixture::BOB,
            chrono::TimeDelta::days(1),
        )),
        Some(expired),
        Some(revoked),
    ] {
        let mut fx = Fixture::new();
        fx.sessions
            .expect_find()
            .withf(|id| *id == SESSION_2)
            .times(1)
            .returning(move |_| Ok(found.clone()));
        fx.no_revocation();

        let result = fx
            .account()
            .end_session(&principal(alice(), SESSION), SESSION_2)
            .await;

        assert!(
            matches!(result, Err(crate::services::ManageError::NotFound)),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn a_session_is_not_ended_in_the_store_when_the_fast_path_cannot_be_written() {
    let mut fx = Fixture::new();
    fx.sessions
        .expect_find()
        .withf(|id| *id == SESSION_2)
        .times(1)
        .returning(|id| {
            Ok(Some(super::fixture::session(
                id,
                ALICE,
                chrono::TimeDelta::days(1),
            )))
        });
    fx.revocation
        .expect_revoke()
        .times(1)
        .returning(|_, _| Err(super::fixture::revocation_error()));
    fx.sessions.expect_revoke().never();

    let result = fx
        .account()
        .end_session(&principal(alice(), SESSION), SESSION_2)
        .await;

    assert!(
        matches!(result, Err(crate::services::ManageError::Unavailable(_))),
        "{result:?}"
    );
}
