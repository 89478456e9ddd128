//! `UserAdminService`: who may list, create, read, change, delete and unlock accounts; the
//! order in which a deactivation or deletion ends the user's sessions; and the journals.

use serde_json::json;

use super::fixture::{
    ADMIN, ALICE, BOB, Calls, Fixture, PASSWORD, SESSION, SESSION_2, SESSION_3, STORED_HASH,
    TENANT, acme, action_token, admin, alice, assert_carries_no_token, assert_carries_token, bob,
    client, denied, event, fields, first_page, generated_id, inactive, now, principal,
    principal_from_client, revocation_error, sealed_mail, secret, stored, tenant, token, user,
};
use crate::model::{
    ActionPurpose, AuditAction, AuditTarget, Email, Journal, MailKind, PersonName, ProfileChanges,
    Role, SessionId, TenantRole, User, UserId, UserVersion,
};
use crate::ports::{
    LastAdmin, MockLoginThrottle, Paged, StoreError, UniqueField, UserChanges, UserFilter,
    UserSort, UserUpdate,
};
use crate::services::{
    Conflict, ManageError, ProfileUpdate, Registration, UserAdminService, UserUpdateInput,
};

use TenantRole::{Admin as A, Member as M, Moderator as Mo, Viewer as V};

/// A session opened concurrently with a deactivation: the store revokes it, the fast path
/// learns of it only from the store's answer.
const SESSION_4: SessionId = SessionId::from_uuid(uuid::Uuid::from_u128(0x5E55_0004));

fn page_of(users: Vec<User>) -> Paged<User> {
    let total = users.len() as u64;
    Paged {
        items: users,
        total,
    }
}

// ----- admin-only operations ------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum AdminOp {
    List,
    Create,
    Delete,
    Unlock,
}

fn registration() -> Registration {
    Registration {
        email: "Carol@Example.com".to_owned(),
        username: "carol".to_owned(),
        password: secret(PASSWORD),
        first_name: None,
        last_name: None,
    }
}

async fn call(service: &UserAdminService, caller: User, op: AdminOp) -> Result<(), ManageError> {
    let who = principal_from_client(caller, SESSION);
    match op {
        AdminOp::List => service
            .list(
                &who,
                UserFilter::default(),
                None,
                UserSort::default(),
                first_page(),
            )
            .await
            .map(drop),
        AdminOp::Create => service
            .create(&who, registration(), Role::User)
            .await
            .map(drop),
        AdminOp::Delete => service.delete(&who, BOB).await,
        AdminOp::Unlock => service.unlock(&who, BOB).await,
    }
}

#[tokio::test]
async fn listing_creating_deleting_and_unlocking_are_for_system_admins_only() {
    let ops = [
        (AdminOp::List, "user.list"),
        (AdminOp::Create, "user.create"),
        (AdminOp::Delete, "user.delete"),
        (AdminOp::Unlock, "user.unlock"),
    ];
    for (op, operation) in ops {
        for caller in [alice(), inactive(admin())] {
            let mut fx = Fixture::new();
            fx.users.expect_list().never();
            fx.users.expect_insert().never();
            fx.users.expect_delete().never();
            fx.users.expect_find_by_id().never();
            fx.hasher.expect_hash().never();
            fx.tenants.expect_find().never();
            fx.no_revocation();
            let mut throttle = MockLoginThrottle::new();
            throttle.expect_clear().never();
            fx.throttle = Some(throttle);
            let appended = fx.appended.clone();
            let caller_id = caller.id;

            let result = call(&fx.user_admin(), caller, op).await;

            let case = format!("{op:?} by {caller_id:?}");
            assert!(
                matches!(result, Err(ManageError::Forbidden)),
                "{case}: {result:?}"
            );
            // The policy is asked about the caller's own account for list and create.
            let target = match op {
                AdminOp::List | AdminOp::Create => caller_id,
                AdminOp::Delete | AdminOp::Unlock => BOB,
            };
            assert_eq!(
                appended.all(),
                [denied(
                    1,
                    caller_id,
                    operation,
                    AuditTarget::User(target),
                    None
                )],
                "{case}"
            );
        }
    }
}

// ----- list -----------------------------------------------------------------------------------

fn filter() -> UserFilter {
    UserFilter {
        q: Some("ada".to_owned()),
        role: Some(Role::User),
        is_active: Some(true),
        tenant: None,
    }
}

#[tokio::test]
async fn list_passes_the_filter_sort_and_page_through() {
    let mut fx = Fixture::new();
    fx.tenants.expect_find().never();
    fx.users
        .expect_list()
        .withf(|f, sort, page| *f == filter() && *sort == UserSort::Email && *page == first_page())
        .times(1)
        .returning(|_, _, _| Ok(page_of(vec![alice(), bob()])));

    let page = fx
        .user_admin()
        .list(
            &principal(admin(), SESSION),
            filter(),
            None,
            UserSort::Email,
            first_page(),
        )
        .await
        .unwrap();

    assert_eq!(page, page_of(vec![alice(), bob()]));
}

#[tokio::test]
async fn list_with_a_tenant_lists_its_members() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    let expected = UserFilter {
        tenant: Some(TENANT),
        ..filter()
    };
    fx.users
        .expect_list()
        .withf(move |f, _, _| *f == expected)
        .times(1)
        .returning(|_, _, _| Ok(page_of(vec![bob()])));

    let page = fx
        .user_admin()
        .list(
            &principal(admin(), SESSION),
            filter(),
            Some(&acme()),
            UserSort::default(),
            first_page(),
        )
        .await
        .unwrap();

    assert_eq!(page, page_of(vec![bob()]));
}

#[tokio::test]
async fn list_of_an_unknown_tenant_is_an_empty_page() {
    let mut fx = Fixture::new();
    fx.no_tenant();
    fx.users.expect_list().never();

    let page = fx
        .user_admin()
        .list(
            &principal(admin(), SESSION),
            filter(),
            Some(&acme()),
            UserSort::default(),
            first_page(),
        )
        .await
        .unwrap();

    assert_eq!(page, page_of(vec![]));
}

// ----- create ---------------------------------------------------------------------------------

/// The store inserts one user and the journal is recorded.
fn store_insert(fx: &mut Fixture, outcome: Option<StoreError>) -> Calls<Journal> {
    let journals = Calls::new();
    let recorder = journals.clone();
    let outcome = std::sync::Mutex::new(outcome);
    fx.users
        .expect_insert()
        .times(1)
        .returning(move |new, journal| {
            recorder.record(journal);
            match outcome.lock().unwrap().take() {
                Some(error) => Err(error),
                None => Ok(stored(&new)),
            }
        });
    journals
}

#[tokio::test]
async fn an_admin_creates_a_user_with_the_role_asked_and_queues_a_verification() {
    let mut fx = Fixture::new();
    fx.strength_scores(4, None);
    fx.hashes(PASSWORD);
    let journals = Calls::new();
    let recorder = journals.clone();
    fx.users
        .expect_insert()
        .withf(|new, _| {
            new.role == Role::Admin
                && !new.email_verified
                && new.email.as_str() == "carol@example.com"
                && new.password_hash.as_str() == STORED_HASH
        })
        .times(1)
        .returning(move |new, journal| {
            recorder.record(journal);
            Ok(stored(&new))
        });
    fx.users.expect_issue_action_token().never();
    fx.mailer.expect_send().never();
    let sealed = fx.sealed.clone();
    let verification_ttl = fx.settings.verification_ttl;
    let link = fx.settings.verification_link(&token(1));

    let user = fx
        .user_admin()
        .create(
            &principal_from_client(admin(), SESSION),
            registration(),
            Role::Admin,
        )
        .await
        .unwrap();

    let user_id = UserId::from_uuid(generated_id(1));
    assert_eq!(user.id, user_id);
    assert_eq!(user.role, Role::Admin);
    let expected = event(
        2,
        AuditAction::UserCreated,
        Some(ADMIN),
        AuditTarget::User(user_id),
        &client(),
    )
    .with("role", "admin");
    let expected = Journal::of(expected)
        .with_token(action_token(
            1,
            user_id,
            ActionPurpose::VerifyEmail,
            verification_ttl,
        ))
        .with_mail(sealed_mail(3, MailKind::Verification));
    let [journal] = journals.all().try_into().unwrap();
    assert_eq!(journal, expected);
    let [mail] = sealed.of(&journal).try_into().unwrap();
    assert_carries_token(
        &mail,
        "carol@example.com",
        "Confirm your e-mail address",
        &link,
        &token(1),
    );
}

#[tokio::test]
async fn creating_a_user_never_calls_the_mailer() {
    // The verification is queued with the insert: a mail server that is down cannot fail it.
    let mut fx = Fixture::new();
    fx.strength_scores(4, None);
    fx.hashes(PASSWORD);
    let journals = store_insert(&mut fx, None);
    fx.users.expect_issue_action_token().never();
    fx.mailer.expect_send().never();

    let result = fx
        .user_admin()
        .create(&principal(admin(), SESSION), registration(), Role::User)
        .await;

    assert!(result.is_ok(), "{result:?}");
    let [journal] = journals.all().try_into().unwrap();
    assert_eq!(journal.mail.len(), 1);
}

#[tokio::test]
async fn create_maps_invalid_fields_and_taken_addresses() {
    let mut fx = Fixture::new();
    fx.users.expect_insert().never();
    let mut bad = registration();
    bad.username = "no spaces".to_owned();
    let error = fx
        .user_admin()
        .create(&principal(admin(), SESSION), bad, Role::User)
        .await
        .unwrap_err();
    let ManageError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["username"]);

    let mut fx = Fixture::new();
    fx.strength_scores(4, None);
    fx.hashes(PASSWORD);
    store_insert(&mut fx, Some(StoreError::Duplicate(UniqueField::Email)));
    fx.mailer.expect_send().never();
    let error = fx
        .user_admin()
        .create(&principal(admin(), SESSION), registration(), Role::User)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ManageError::Conflict(Conflict::EmailTaken)),
        "{error:?}"
    );
}

// ----- get: visibility ------------------------------------------------------------------------

/// `(caller, target, the caller's roles in the target's tenants, visible)`.
type Visibility = (fn() -> User, UserId, &'static [TenantRole], bool);

const VISIBILITY: [Visibility; 9] = [
    (alice, ALICE, &[], true),
    (admin, BOB, &[], true),
    (alice, BOB, &[Mo], true),
    (alice, BOB, &[A], true),
    (alice, BOB, &[V, Mo], true),
    (alice, BOB, &[M, V], false),
    (alice, BOB, &[], false),
    (inactive_alice, BOB, &[A], false),
    (inactive_admin, BOB, &[], false),
];

fn inactive_alice() -> User {
    inactive(alice())
}

fn inactive_admin() -> User {
    inactive(admin())
}

#[tokio::test]
async fn get_shows_a_user_to_themselves_system_admins_and_their_tenant_managers_only() {
    for (caller, target, shared, visible) in VISIBILITY {
        let caller = caller();
        let case = format!("{} on {target:?} sharing {shared:?}", caller.username);
        let mut fx = Fixture::new();
        fx.shared_roles(caller.id, target, shared);
        fx.users
            .expect_find_by_id()
            .withf(move |id| *id == target)
            .times(usize::from(visible))
            .returning(move |id| Ok(Some(user(id, "target", Role::User))));
        let appended = fx.appended.clone();

        let result = fx
            .user_admin()
            .get(&principal(caller, SESSION), target)
            .await;

        if visible {
            assert_eq!(result.unwrap().id, target, "{case}");
        } else {
            assert!(
                matches!(result, Err(ManageError::NotFound)),
                "{case}: {result:?}"
            );
        }
        assert!(appended.all().is_empty(), "{case}");
    }
}

#[tokio::test]
async fn get_of_an_unknown_user_is_not_found() {
    let mut fx = Fixture::new();
    fx.shared_roles(ADMIN, BOB, &[]);
    fx.users
        .expect_find_by_id()
        .times(1)
        .returning(|_| Ok(None));

    let result = fx.user_admin().get(&principal(admin(), SESSION), BOB).await;

    assert!(matches!(result, Err(ManageError::NotFound)), "{result:?}");
}

// ----- update ---------------------------------------------------------------------------------

/// The caller can see `target` (found as `current`).
fn visible(fx: &mut Fixture, caller: UserId, target: UserId, current: User, shared: &[TenantRole]) {
    fx.shared_roles(caller, target, shared);
    fx.users
        .expect_find_by_id()
        .withf(move |id| *id == target)
        .returning(move |_| Ok(Some(current.clone())));
}

type StoredUpdate = (UserId, UserChanges, Option<UserVersion>, Journal);

/// The store applies one update at [`now`] and answers `outcome`; `log` (if any) hears
/// `"update"` when it happens.
fn store_update(
    fx: &mut Fixture,
    log: Option<Calls<String>>,
    outcome: impl Fn(&User) -> Result<UserUpdate, StoreError> + Send + 'static,
) -> Calls<StoredUpdate> {
    let calls = Calls::new();
    let recorder = calls.clone();
    fx.users
        .expect_update()
        .withf(|_, _, _, at, _| *at == now())
        .times(1)
        .returning(move |id, changes, version, _, journal| {
            if let Some(log) = &log {
                log.record("update".to_owned());
            }
            recorder.record((id, changes, version, journal));
            outcome(&user(id, "target", Role::User))
        });
    calls
}

fn unchanged_sessions(user: &User) -> Result<UserUpdate, StoreError> {
    Ok(UserUpdate {
        user: user.clone(),
        revoked: vec![],
    })
}

fn user_updated(actor: UserId, target: UserId, fields: &[&str]) -> Journal {
    Journal::of(
        event(
            1,
            AuditAction::UserUpdated,
            Some(actor),
            AuditTarget::User(target),
            &client(),
        )
        .with("fields", json!(fields)),
    )
}

fn first_name(name: &str) -> ProfileUpdate {
    ProfileUpdate {
        first_name: Some(name.to_owned()),
        ..ProfileUpdate::default()
    }
}

#[tokio::test]
async fn a_user_changes_their_own_profile() {
    let mut fx = Fixture::new();
    visible(&mut fx, ALICE, ALICE, alice(), &[]);
    fx.sessions.expect_live_for_user().never();
    fx.no_revocation();
    let updates = store_update(&mut fx, None, unchanged_sessions);

    fx.user_admin()
        .update(
            &principal_from_client(alice(), SESSION),
            ALICE,
            UserUpdateInput {
                profile: first_name(" Ada "),
                ..UserUpdateInput::default()
            },
            Some(4),
        )
        .await
        .unwrap();

    let expected_changes = UserChanges {
        profile: ProfileChanges {
            first_name: Some(PersonName::parse("Ada").unwrap()),
            ..ProfileChanges::default()
        },
        ..UserChanges::default()
    };
    assert_eq!(
        updates.all(),
        [(
            ALICE,
            expected_changes,
            Some(4),
            user_updated(ALICE, ALICE, &["first_name"])
        )]
    );
}

#[tokio::test]
async fn a_user_sending_their_email_role_or_activity_is_forbidden() {
    let inputs = [
        UserUpdateInput {
            email: Some("alice@elsewhere.example".to_owned()),
            ..UserUpdateInput::default()
        },
        // Nobody raises their own role.
        UserUpdateInput {
            role: Some(Role::Admin),
            ..UserUpdateInput::default()
        },
        UserUpdateInput {
            role: Some(Role::User),
            ..UserUpdateInput::default()
        },
        UserUpdateInput {
            is_active: Some(true),
            profile: first_name("Ada"),
            ..UserUpdateInput::default()
        },
    ];
    for input in inputs {
        let mut fx = Fixture::new();
        visible(&mut fx, ALICE, ALICE, alice(), &[]);
        fx.users.expect_update().never();
        fx.no_revocation();
        let appended = fx.appended.clone();

        let result = fx
            .user_admin()
            .update(
                &principal_from_client(alice(), SESSION),
                ALICE,
                input.clone(),
                None,
            )
            .await;

        assert!(
            matches!(result, Err(ManageError::Forbidden)),
            "{input:?}: {result:?}"
        );
        assert_eq!(
            appended.all(),
            [denied(
                1,
                ALICE,
                "user.update.account_fields",
                AuditTarget::User(ALICE),
                None
            )],
            "{input:?}"
        );
    }
}

#[tokio::test]
async fn a_tenant_manager_sees_a_member_but_may_not_change_them() {
    let mut fx = Fixture::new();
    visible(&mut fx, ALICE, BOB, bob(), &[A]);
    fx.users.expect_update().never();
    let appended = fx.appended.clone();

    let result = fx
        .user_admin()
        .update(
            &principal_from_client(alice(), SESSION),
            BOB,
            UserUpdateInput {
                profile: first_name("Robert"),
                ..UserUpdateInput::default()
            },
            None,
        )
        .await;

    assert!(matches!(result, Err(ManageError::Forbidden)), "{result:?}");
    assert_eq!(
        appended.all(),
        [denied(
            1,
            ALICE,
            "user.update",
            AuditTarget::User(BOB),
            None
        )]
    );
}

#[tokio::test]
async fn update_of_a_user_the_caller_cannot_see_is_not_found() {
    for shared in [&[][..], &[M, V][..]] {
        let mut fx = Fixture::new();
        fx.shared_roles(ALICE, BOB, shared);
        fx.users.expect_find_by_id().never();
        fx.users.expect_update().never();
        let appended = fx.appended.clone();

        let result = fx
            .user_admin()
            .update(
                &principal(alice(), SESSION),
                BOB,
                UserUpdateInput {
                    is_active: Some(false),
                    ..UserUpdateInput::default()
                },
                None,
            )
            .await;

        assert!(matches!(result, Err(ManageError::NotFound)), "{result:?}");
        assert!(appended.all().is_empty());
    }
}

#[tokio::test]
async fn an_admin_changes_email_and_role() {
    let mut fx = Fixture::new();
    visible(&mut fx, ADMIN, BOB, bob(), &[]);
    fx.sessions.expect_live_for_user().never();
    fx.no_revocation();
    fx.mailer.expect_send().never();
    fx.users.expect_issue_action_token().never();
    let updates = store_update(&mut fx, None, unchanged_sessions);
    let sealed = fx.sealed.clone();
    let verification_ttl = fx.settings.verification_ttl;
    let link = fx.settings.verification_link(&token(1));

    fx.user_admin()
        .update(
            &principal_from_client(admin(), SESSION),
            BOB,
            UserUpdateInput {
                email: Some(" Robert@Example.com".to_owned()),
                role: Some(Role::Admin),
                ..UserUpdateInput::default()
            },
            None,
        )
        .await
        .unwrap();

    let expected_changes = UserChanges {
        email: Some(Email::parse("robert@example.com").unwrap()),
        role: Some(Role::Admin),
        ..UserChanges::default()
    };
    // The new address must prove itself (ids: the event, the verification, the notice); the
    // old one hears of the change; both go with the update, in its transaction.
    let expected_journal = user_updated(ADMIN, BOB, &["email", "role"])
        .with_token(action_token(
            1,
            BOB,
            ActionPurpose::VerifyEmail,
            verification_ttl,
        ))
        .with_mail(sealed_mail(2, MailKind::Verification))
        .with_mail(sealed_mail(3, MailKind::EmailChanged));
    let [(id, changes, version, journal)] = updates.all().try_into().unwrap();
    assert_eq!((id, changes, version), (BOB, expected_changes, None));
    assert_eq!(journal, expected_journal);
    let [verification, notice] = sealed.of(&journal).try_into().unwrap();
    assert_carries_token(
        &verification,
        "robert@example.com",
        "Confirm your e-mail address",
        &link,
        &token(1),
    );
    assert!(
        verification.text.contains("Hello bob"),
        "{}",
        verification.text
    );
    assert_eq!(notice.to.as_str(), "bob@example.com", "to the old address");
    assert_eq!(notice.subject, "Your e-mail address was changed");
    assert!(
        notice.text.contains("r***@example.com") && !notice.text.contains("robert@"),
        "{}",
        notice.text
    );
    assert!(
        notice.html.contains("r***@example.com") && !notice.html.contains("robert@"),
        "{}",
        notice.html
    );
    assert!(
        notice.text.contains("2025-06-15 15:06 UTC"),
        "{}",
        notice.text
    );
    assert_carries_no_token(&notice);
}

#[tokio::test]
async fn an_e_mail_change_with_a_new_username_greets_by_the_new_name() {
    let mut fx = Fixture::new();
    visible(&mut fx, ADMIN, BOB, bob(), &[]);
    let updates = store_update(&mut fx, None, unchanged_sessions);
    let sealed = fx.sealed.clone();

    fx.user_admin()
        .update(
            &principal(admin(), SESSION),
            BOB,
            UserUpdateInput {
                email: Some("robert@example.com".to_owned()),
                profile: ProfileUpdate {
                    username: Some("robert".to_owned()),
                    ..ProfileUpdate::default()
                },
                ..UserUpdateInput::default()
            },
            None,
        )
        .await
        .unwrap();

    let [(_, _, _, journal)] = updates.all().try_into().unwrap();
    let [verification, notice] = sealed.of(&journal).try_into().unwrap();
    assert!(
        verification.text.contains("Hello robert,"),
        "{}",
        verification.text
    );
    assert_eq!(notice.to.as_str(), "bob@example.com");
}

#[tokio::test]
async fn an_update_without_a_new_e_mail_queues_no_mail() {
    // The same address (in another case) or none at all: nothing to verify, nobody to tell.
    let inputs = [
        UserUpdateInput {
            email: Some("BOB@example.com".to_owned()),
            role: Some(Role::Admin),
            ..UserUpdateInput::default()
        },
        UserUpdateInput {
            profile: first_name("Robert"),
            ..UserUpdateInput::default()
        },
    ];
    for input in inputs {
        let mut fx = Fixture::new();
        visible(&mut fx, ADMIN, BOB, bob(), &[]);
        fx.mailer.expect_send().never();
        fx.users.expect_issue_action_token().never();
        let updates = store_update(&mut fx, None, unchanged_sessions);

        fx.user_admin()
            .update(&principal(admin(), SESSION), BOB, input.clone(), None)
            .await
            .unwrap();

        let [(_, _, _, journal)] = updates.all().try_into().unwrap();
        assert!(journal.tokens.is_empty(), "{input:?}: {:?}", journal.tokens);
        assert!(journal.mail.is_empty(), "{input:?}: {:?}", journal.mail);
        assert_eq!(journal.events.len(), 1, "{input:?}");
    }
}

#[tokio::test]
async fn a_refused_e_mail_change_queues_its_mail_nowhere_else() {
    let mut fx = Fixture::new();
    visible(&mut fx, ADMIN, BOB, bob(), &[]);
    fx.mailer.expect_send().never();
    fx.users.expect_issue_action_token().never();
    let updates = store_update(&mut fx, None, |_| {
        Err(StoreError::Duplicate(UniqueField::Email))
    });
    let appended = fx.appended.clone();

    let error = fx
        .user_admin()
        .update(
            &principal(admin(), SESSION),
            BOB,
            UserUpdateInput {
                email: Some("alice@example.com".to_owned()),
                ..UserUpdateInput::default()
            },
            None,
        )
        .await
        .unwrap_err();

    assert!(
        matches!(error, ManageError::Conflict(Conflict::EmailTaken)),
        "{error:?}"
    );
    // The messages went only with the refused update, so they are not sent.
    let [(_, _, _, journal)] = updates.all().try_into().unwrap();
    assert_eq!(journal.mail.len(), 2);
    assert!(appended.all().is_empty(), "{:?}", appended.all());
}

#[tokio::test]
async fn update_names_invalid_fields_and_writes_nothing() {
    let mut fx = Fixture::new();
    visible(&mut fx, ADMIN, BOB, bob(), &[]);
    fx.users.expect_update().never();
    fx.no_revocation();

    let error = fx
        .user_admin()
        .update(
            &principal(admin(), SESSION),
            BOB,
            UserUpdateInput {
                email: Some("nope".to_owned()),
                profile: ProfileUpdate {
                    username: Some("a b".to_owned()),
                    preferences: Some(json!(1)),
                    ..ProfileUpdate::default()
                },
                ..UserUpdateInput::default()
            },
            None,
        )
        .await
        .unwrap_err();

    let ManageError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["email", "preferences", "username"]);
}

#[tokio::test]
async fn an_empty_update_returns_the_user_but_still_checks_the_version() {
    for (if_match, fresh) in [(None, true), (Some(bob().version), true), (Some(3), false)] {
        let mut fx = Fixture::new();
        visible(&mut fx, ADMIN, BOB, bob(), &[]);
        fx.users.expect_update().never();

        let result = fx
            .user_admin()
            .update(
                &principal(admin(), SESSION),
                BOB,
                UserUpdateInput::default(),
                if_match,
            )
            .await;

        if fresh {
            assert_eq!(result.unwrap(), bob(), "if_match {if_match:?}");
        } else {
            assert!(
                matches!(result, Err(ManageError::PreconditionFailed)),
                "{result:?}"
            );
        }
    }
}

/// Records the order of fast-path revocations (`"revoke <session>"`) next to other calls.
fn log_fast_path(
    fx: &mut Fixture,
    log: &Calls<String>,
) -> Calls<(SessionId, chrono::DateTime<chrono::Utc>)> {
    let calls = Calls::new();
    let recorder = calls.clone();
    let log = log.clone();
    fx.revocation
        .expect_revoke()
        .returning(move |session, until| {
            log.record(format!("revoke {session:?}"));
            recorder.record((session, until));
            Ok(())
        });
    calls
}

/// Bob's live sessions as the store reports them: two (his third, SESSION_2, was revoked
/// yesterday, so it is not among them).
fn bobs_sessions(fx: &mut Fixture) {
    fx.sessions
        .expect_live_for_user()
        .withf(|user| *user == BOB)
        .times(1)
        .returning(|_| Ok(vec![SESSION, SESSION_3]));
}

#[tokio::test]
async fn deactivating_a_user_puts_the_sessions_the_store_revoked_on_the_fast_path_after_it() {
    let mut fx = Fixture::new();
    visible(&mut fx, ADMIN, BOB, bob(), &[]);
    // The store's answer names the sessions; nobody lists them beforehand.
    fx.sessions.expect_live_for_user().never();
    let log = Calls::new();
    let fast_path = log_fast_path(&mut fx, &log);
    // The store revoked every live session, in the deactivation's transaction.
    let updates = store_update(&mut fx, Some(log.clone()), |user| {
        Ok(UserUpdate {
            user: user.clone(),
            revoked: vec![SESSION, SESSION_3, SESSION_4],
        })
    });
    let window = fx.settings.revocation_window();

    fx.user_admin()
        .update(
            &principal_from_client(admin(), SESSION_2),
            BOB,
            UserUpdateInput {
                is_active: Some(false),
                ..UserUpdateInput::default()
            },
            None,
        )
        .await
        .unwrap();

    // After the store: a refused deactivation must not leave the sessions on the list.
    assert_eq!(
        log.all(),
        [
            "update".to_owned(),
            format!("revoke {SESSION:?}"),
            format!("revoke {SESSION_3:?}"),
            format!("revoke {SESSION_4:?}"),
        ]
    );
    let until = now() + window;
    assert_eq!(
        fast_path.all(),
        [(SESSION, until), (SESSION_3, until), (SESSION_4, until)]
    );
    let [(_, changes, _, journal)] = updates.all().try_into().unwrap();
    assert_eq!(changes.is_active, Some(false));
    assert_eq!(journal, user_updated(ADMIN, BOB, &["is_active"]));
}

#[tokio::test]
async fn a_deactivation_stands_when_the_fast_path_cannot_be_written() {
    let mut fx = Fixture::new();
    visible(&mut fx, ADMIN, BOB, bob(), &[]);
    fx.revocation
        .expect_revoke()
        .times(1)
        .returning(|_, _| Err(revocation_error()));
    let updates = store_update(&mut fx, None, |user| {
        let mut user = user.clone();
        user.is_active = false;
        Ok(UserUpdate {
            user,
            revoked: vec![SESSION, SESSION_3],
        })
    });

    let result = fx
        .user_admin()
        .update(
            &principal(admin(), SESSION),
            BOB,
            UserUpdateInput {
                is_active: Some(false),
                ..UserUpdateInput::default()
            },
            None,
        )
        .await;

    // The change is committed (and every request requires the user active): it is reported
    // as done, not as a failure the caller would retry.
    assert!(!result.unwrap().is_active);
    assert_eq!(updates.all().len(), 1);
}

#[tokio::test]
async fn a_refused_deactivation_puts_no_session_on_the_fast_path() {
    let mut fx = Fixture::new();
    visible(&mut fx, ADMIN, ADMIN, admin(), &[]);
    fx.no_revocation();
    store_update(&mut fx, None, |_| {
        Err(StoreError::LastAdmin(LastAdmin::System))
    });

    let result = fx
        .user_admin()
        .update(
            &principal(admin(), SESSION),
            ADMIN,
            UserUpdateInput {
                is_active: Some(false),
                ..UserUpdateInput::default()
            },
            None,
        )
        .await;

    assert!(
        matches!(
            result,
            Err(ManageError::Conflict(Conflict::LastAdmin(
                LastAdmin::System
            )))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn activating_a_user_revokes_nothing() {
    let mut fx = Fixture::new();
    visible(&mut fx, ADMIN, BOB, inactive(bob()), &[]);
    fx.sessions.expect_live_for_user().never();
    fx.no_revocation();
    store_update(&mut fx, None, unchanged_sessions);

    let result = fx
        .user_admin()
        .update(
            &principal(admin(), SESSION),
            BOB,
            UserUpdateInput {
                is_active: Some(true),
                ..UserUpdateInput::default()
            },
            None,
        )
        .await;

    assert!(result.is_ok(), "{result:?}");
}

/// Whether an error is the one expected.
type Expected = fn(&ManageError) -> bool;

#[tokio::test]
async fn update_maps_the_stores_refusals() {
    let cases: [(StoreError, Expected); 4] = [
        (StoreError::LastAdmin(LastAdmin::System), |e| {
            matches!(
                e,
                ManageError::Conflict(Conflict::LastAdmin(LastAdmin::System))
            )
        }),
        (StoreError::StaleVersion, |e| {
            matches!(e, ManageError::PreconditionFailed)
        }),
        (StoreError::Duplicate(UniqueField::Username), |e| {
            matches!(e, ManageError::Conflict(Conflict::UsernameTaken))
        }),
        (StoreError::NotFound, |e| matches!(e, ManageError::NotFound)),
    ];
    for (refusal, expected) in cases {
        let mut fx = Fixture::new();
        visible(&mut fx, ADMIN, ADMIN, admin(), &[]);
        let refusal = std::sync::Mutex::new(Some(refusal));
        store_update(&mut fx, None, move |_| {
            Err(refusal.lock().unwrap().take().unwrap())
        });

        // The last administrator demotes themselves (and renames, for the username case).
        let error = fx
            .user_admin()
            .update(
                &principal(admin(), SESSION),
                ADMIN,
                UserUpdateInput {
                    role: Some(Role::User),
                    profile: ProfileUpdate {
                        username: Some("taken".to_owned()),
                        ..ProfileUpdate::default()
                    },
                    ..UserUpdateInput::default()
                },
                Some(4),
            )
            .await
            .unwrap_err();

        assert!(expected(&error), "{error:?}");
    }
}

// ----- delete ---------------------------------------------------------------------------------

#[tokio::test]
async fn delete_puts_the_users_live_sessions_on_the_fast_path_after_deleting() {
    let mut fx = Fixture::new();
    fx.users
        .expect_find_by_id()
        .withf(|id| *id == BOB)
        .returning(|_| Ok(Some(bob())));
    bobs_sessions(&mut fx);
    let log = Calls::new();
    let fast_path = log_fast_path(&mut fx, &log);
    let journals = Calls::new();
    let recorder = journals.clone();
    let delete_log = log.clone();
    fx.users
        .expect_delete()
        // An administrator confirms no password: no re-check of one.
        .withf(|id, expected_password, _| *id == BOB && expected_password.is_none())
        .times(1)
        .returning(move |_, _, journal| {
            delete_log.record("delete".to_owned());
            recorder.record(journal);
            Ok(())
        });
    let window = fx.settings.revocation_window();

    fx.user_admin()
        .delete(&principal_from_client(admin(), SESSION), BOB)
        .await
        .unwrap();

    // Listed before (the rows go with the user), put on the list after the store deleted.
    assert_eq!(
        log.all(),
        [
            "delete".to_owned(),
            format!("revoke {SESSION:?}"),
            format!("revoke {SESSION_3:?}"),
        ]
    );
    let until = now() + window;
    assert_eq!(fast_path.all(), [(SESSION, until), (SESSION_3, until)]);
    let expected = event(
        1,
        AuditAction::UserDeleted,
        Some(ADMIN),
        AuditTarget::User(BOB),
        &client(),
    );
    assert_eq!(journals.all(), [Journal::of(expected)]);
}

#[tokio::test]
async fn delete_of_an_unknown_user_is_not_found_and_revokes_nothing() {
    let mut fx = Fixture::new();
    fx.users
        .expect_find_by_id()
        .times(1)
        .returning(|_| Ok(None));
    fx.sessions.expect_live_for_user().never();
    fx.no_revocation();
    fx.users.expect_delete().never();

    let result = fx
        .user_admin()
        .delete(&principal(admin(), SESSION), BOB)
        .await;

    assert!(matches!(result, Err(ManageError::NotFound)), "{result:?}");
}

#[tokio::test]
async fn a_deletion_stands_when_the_fast_path_cannot_be_written() {
    let mut fx = Fixture::new();
    fx.users.expect_find_by_id().returning(|_| Ok(Some(bob())));
    bobs_sessions(&mut fx);
    fx.revocation
        .expect_revoke()
        .times(1)
        .returning(|_, _| Err(revocation_error()));
    fx.users
        .expect_delete()
        .times(1)
        .returning(|_, _, _| Ok(()));

    let result = fx
        .user_admin()
        .delete(&principal(admin(), SESSION), BOB)
        .await;

    assert!(result.is_ok(), "the user is gone: {result:?}");
}

#[tokio::test]
async fn deleting_the_last_admin_is_a_conflict() {
    for which in [LastAdmin::System, LastAdmin::Tenant(TENANT)] {
        let mut fx = Fixture::new();
        fx.users.expect_find_by_id().returning(|_| Ok(Some(bob())));
        // A live session that must stay usable: the refused deletion changed nothing.
        bobs_sessions(&mut fx);
        fx.revocation.expect_revoke().never();
        fx.users
            .expect_delete()
            .times(1)
            .returning(move |_, _, _| Err(StoreError::LastAdmin(which)));

        let error = fx
            .user_admin()
            .delete(&principal(admin(), SESSION), BOB)
            .await
            .unwrap_err();

        assert!(
            matches!(error, ManageError::Conflict(Conflict::LastAdmin(w)) if w == which),
            "{error:?}"
        );
    }
}

// ----- unlock ---------------------------------------------------------------------------------

#[tokio::test]
async fn unlock_clears_the_throttle_of_the_e_mail_the_username_and_the_account() {
    let mut fx = Fixture::new();
    let mut carol = user(BOB, "Carol.X", Role::User);
    carol.email = Email::parse("Carol.X@Example.com").unwrap();
    fx.users
        .expect_find_by_id()
        .withf(|id| *id == BOB)
        .times(1)
        .returning(move |_| Ok(Some(carol.clone())));
    let cleared = Calls::new();
    let recorder = cleared.clone();
    let mut throttle = MockLoginThrottle::new();
    throttle.expect_check().never();
    throttle.expect_count_attempt().never();
    throttle.expect_clear().returning(move |key| {
        recorder.record(key.to_owned());
        Ok(())
    });
    fx.throttle = Some(throttle);
    let appended = fx.appended.clone();

    fx.user_admin()
        .unlock(&principal_from_client(admin(), SESSION), BOB)
        .await
        .unwrap();

    let mut keys = cleared.all();
    keys.sort();
    assert_eq!(
        keys,
        [
            format!("account:{BOB}"),
            "login:carol.x".to_owned(),
            "login:carol.x@example.com".to_owned(),
            format!("password:{BOB}"),
        ]
    );
    let expected = event(
        1,
        AuditAction::UserUnlocked,
        Some(ADMIN),
        AuditTarget::User(BOB),
        &client(),
    );
    assert_eq!(appended.all(), [Journal::of(expected)]);
}

#[tokio::test]
async fn unlock_of_an_unknown_user_is_not_found() {
    let mut fx = Fixture::new();
    fx.users
        .expect_find_by_id()
        .times(1)
        .returning(|_| Ok(None));
    let mut throttle = MockLoginThrottle::new();
    throttle.expect_clear().never();
    fx.throttle = Some(throttle);
    let appended = fx.appended.clone();

    let result = fx
        .user_admin()
        .unlock(&principal(admin(), SESSION), BOB)
        .await;

    assert!(matches!(result, Err(ManageError::NotFound)), "{result:?}");
    assert!(appended.all().is_empty());
}

/// The fixture's tenant helpers compose with the user service too.
#[tokio::test]
async fn list_by_tenant_id_resolves_the_id() {
    let mut fx = Fixture::new();
    fx.tenants
        .expect_find()
        .withf(|r| *r == crate::model::TenantRef::Id(TENANT))
        .times(1)
        .returning(|_| Ok(Some(tenant())));
    fx.users
        .expect_list()
        .withf(|f, _, _| f.tenant == Some(TENANT))
        .times(1)
        .returning(|_, _, _| Ok(page_of(vec![])));

    let result = fx
        .user_admin()
        .list(
            &principal(admin(), SESSION),
            UserFilter::default(),
            Some(&crate::model::TenantRef::Id(TENANT)),
            UserSort::default(),
            first_page(),
        )
        .await;

    assert!(result.is_ok(), "{result:?}");
}
