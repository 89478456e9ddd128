//! Contract checks for the administrators' side of `UserStore`: `update` of e-mail, role and
//! activity (with the last-administrator guards), `delete`, and the searchable, sortable,
//! paginated `list`; and for its one-time tokens: `issue_action_token` (with its resend
//! cooldown and its re-check of the recipient), `reset_password` and `change_password` (which
//! spend every reset token of the user) and `purge_action_tokens`. The conventions and decisions are
//! those of [`stores`](super::stores).
//!
//! # Decisions beyond the rustdoc of the port
//!
//! - The cooldown of `issue_action_token` counts every token of the user and purpose created
//!   at or after `quiet_since`, spent or not.
//! - `reset_password` bumps the version and sets `updated_at`, as `change_password` does, and
//!   revokes every unrevoked session, expired or not.
//! - `purge_action_tokens` deletes tokens spent or expired strictly before `before`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::model::{
    AuditAction, AuditEvent, AuditTarget, Journal, MailKind, NewUser, PersonName, ProfileChanges,
    RefreshRotation, Role, SessionId, TenantRef, TenantRole, User, UserId,
};
use domain::ports::{
    ActionPurpose, ActionToken, IssueOutcome, LastAdmin, Login, SessionStore, StoreError,
    TenantAdmin, TenantStore, UniqueField, UserChanges, UserFilter, UserSort, UserStore,
};

use super::fixtures::{
    ALL, LATER, Store, action_token, add_member, as_sessions, as_tenants, as_users,
    assert_no_events, assert_no_mail, at, claimed_ids, create, create_tenant, email, event,
    event_id, events, find_session, find_user, insert, issue, journal, mail, mail_id, name,
    new_session, new_tenant, new_user, page, password_hash, session_id, sorted, tenant_id, token,
    user_id, user_n, username,
};

/// Only `is_active`.
fn activity(is_active: bool) -> UserChanges {
    UserChanges {
        is_active: Some(is_active),
        ..UserChanges::default()
    }
}

/// Only `role`.
fn role(role: Role) -> UserChanges {
    UserChanges {
        role: Some(role),
        ..UserChanges::default()
    }
}

/// Applies `changes` with no expected version and no journal.
async fn update<S: UserStore>(store: &S, id: UserId, changes: UserChanges, when: i64) -> User {
    store
        .update(id, changes, None, at(when), Journal::default())
        .await
        .unwrap_or_else(|e| panic!("update of {id}: {e:?}"))
        .user
}

/// Asserts that `result` is `LastAdmin(expected)`, that `id` is unchanged and that no audit
/// event was written; `why` names the rule.
async fn assert_refused<S: Store, T: std::fmt::Debug>(
    store: &S,
    result: Result<T, StoreError>,
    expected: LastAdmin,
    id: UserId,
    before: &User,
    why: &str,
) {
    match result {
        Err(StoreError::LastAdmin(got)) if got == expected => {}
        other => panic!("{why}: expected LastAdmin({expected:?}), got {other:?}"),
    }
    assert_eq!(
        &find_user(store, id).await,
        before,
        "{why}: nothing was written"
    );
    assert_no_events(store, &format!("{why}: no journal")).await;
}

/// `update` sets the e-mail address (marking it unverified), the system role and the
/// activity, each alone or together with profile changes, bumping the version each time; the
/// address the user already has is no change of address.
pub async fn update_changes_email_role_and_activity<S>(store: S)
where
    S: Store,
{
    let ada = insert(
        &store,
        NewUser {
            email_verified: true,
            ..new_user(1, "ada@example.com", "ada")
        },
    )
    .await;
    // Another active admin, so that ada may be demoted and deactivated.
    insert(&store, user_n(9, Role::Admin, true)).await;

    let moved = as_users(&store)
        .update(
            user_id(1),
            UserChanges {
                email: Some(email("Ada.King@Example.org")),
                ..UserChanges::default()
            },
            Some(1),
            at(10),
            Journal::default(),
        )
        .await
        .expect("a new address")
        .user;
    let expected = User {
        email: email("ada.king@example.org"),
        email_verified: false,
        updated_at: at(10),
        version: 2,
        ..ada.clone()
    };
    assert_eq!(moved, expected, "a new address is unverified");
    assert_eq!(find_user(&store, user_id(1)).await, expected);
    let found = store
        .find_credentials(&Login::Email(email("ada.king@example.org")))
        .await
        .expect("find_credentials")
        .expect("found by the new address");
    assert_eq!(found.user, expected);
    assert!(
        store
            .find_credentials(&Login::Email(email("ada@example.com")))
            .await
            .expect("find_credentials")
            .is_none(),
        "the old address is free"
    );

    let grace = insert(
        &store,
        NewUser {
            email_verified: true,
            ..new_user(2, "grace@example.com", "grace")
        },
    )
    .await;
    let same = as_users(&store)
        .update(
            user_id(2),
            UserChanges {
                email: Some(email("GRACE@example.com")),
                profile: ProfileChanges {
                    first_name: Some(name("Grace")),
                    ..ProfileChanges::default()
                },
                ..UserChanges::default()
            },
            None,
            at(11),
            Journal::default(),
        )
        .await
        .expect("the address the user has")
        .user;
    assert_eq!(
        same,
        User {
            first_name: name("Grace"),
            updated_at: at(11),
            version: 2,
            ..grace
        },
        "re-sending the current address keeps it verified"
    );

    let promoted = update(&store, user_id(1), role(Role::Admin), 20).await;
    assert_eq!(
        promoted,
        User {
            role: Role::Admin,
            updated_at: at(20),
            version: 3,
            ..expected.clone()
        }
    );
    let deactivated = update(&store, user_id(1), activity(false), 30).await;
    assert_eq!(
        deactivated,
        User {
            is_active: false,
            updated_at: at(30),
            version: 4,
            ..promoted.clone()
        }
    );
    let everything = UserChanges {
        profile: ProfileChanges {
            last_name: Some(name("King")),
            ..ProfileChanges::default()
        },
        email: Some(email("countess@example.org")),
        role: Some(Role::User),
        is_active: Some(true),
    };
    let restored = as_users(&store)
        .update(user_id(1), everything, Some(4), at(40), Journal::default())
        .await
        .expect("everything at once")
        .user;
    let expected = User {
        email: email("countess@example.org"),
        last_name: name("King"),
        role: Role::User,
        is_active: true,
        email_verified: false,
        updated_at: at(40),
        version: 5,
        ..deactivated
    };
    assert_eq!(restored, expected);
    assert_eq!(find_user(&store, user_id(1)).await, expected);
    assert_eq!(restored.created_at, ada.created_at);
}

/// Moving to another user's address is `Duplicate(Email)`; when both the new address and the
/// new username are taken, it is the e-mail that is reported. Nothing is written, not even
/// the other changes or the journal.
pub async fn update_to_a_taken_email_is_a_duplicate<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let bob = insert(&store, new_user(2, "bob@example.com", "bob")).await;
    insert(&store, new_user(3, "carol@example.com", "carol")).await;
    for (login, why) in [
        (None, "the address alone"),
        (Some(username("Carol")), "the address and the username"),
    ] {
        for expected_version in [None, Some(1)] {
            let change = UserChanges {
                profile: ProfileChanges {
                    first_name: Some(name("Robert")),
                    username: login.clone(),
                    ..ProfileChanges::default()
                },
                email: Some(email("ADA@example.com")),
                ..UserChanges::default()
            };
            let result = as_users(&store)
                .update(
                    user_id(2),
                    change,
                    expected_version,
                    at(10),
                    journal(1, AuditAction::UserUpdated),
                )
                .await;
            assert!(
                matches!(result, Err(StoreError::Duplicate(UniqueField::Email))),
                "{why}, {expected_version:?}: expected Duplicate(Email), got {result:?}"
            );
            assert_eq!(
                find_user(&store, user_id(2)).await,
                bob,
                "{why}: nothing was written"
            );
        }
    }
    assert_no_events(&store, "a refused update writes no journal").await;
}

/// Deactivating revokes (at `at`) every unrevoked session of the user, expired ones included,
/// and returns exactly their ids; other users' sessions and earlier revocations are
/// untouched, and an update that does not deactivate revokes nothing. `is_active:
/// Some(false)` revokes even when the user was inactive already.
pub async fn update_deactivation_revokes_the_live_sessions<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    create(&store, new_session(2, user_id(1), 0, 1000)).await;
    create(&store, new_session(3, user_id(1), 0, 5)).await;
    create(&store, new_session(4, user_id(2), 0, 1000)).await;
    assert!(
        store
            .revoke(user_id(1), session_id(2), at(5), Journal::default())
            .await
            .expect("revoke")
    );

    for (changes, why) in [
        (
            UserChanges {
                profile: ProfileChanges {
                    first_name: Some(name("Augusta")),
                    ..ProfileChanges::default()
                },
                ..UserChanges::default()
            },
            "a profile change",
        ),
        (activity(true), "activating an active user"),
        (role(Role::Admin), "a promotion"),
    ] {
        let updated = as_users(&store)
            .update(user_id(1), changes, None, at(7), Journal::default())
            .await
            .expect("update");
        assert_eq!(updated.revoked, Vec::<SessionId>::new(), "{why}");
        assert_eq!(
            find_session(&store, session_id(1)).await.revoked_at,
            None,
            "{why}"
        );
    }
    // Another active admin, so that ada may be deactivated.
    insert(&store, user_n(9, Role::Admin, true)).await;

    let updated = as_users(&store)
        .update(
            user_id(1),
            activity(false),
            None,
            at(10),
            Journal::default(),
        )
        .await
        .expect("deactivate");
    assert!(!updated.user.is_active);
    assert_eq!(sorted(updated.revoked), vec![session_id(1), session_id(3)]);
    for (n, expected) in [
        (1, Some(at(10))),
        (2, Some(at(5))),
        (3, Some(at(10))),
        (4, None),
    ] {
        assert_eq!(
            find_session(&store, session_id(n)).await.revoked_at,
            expected,
            "session {n}"
        );
    }

    // An inactive user gets no new session: a login that checked the password before the
    // deactivation is refused by `create`. Deactivating again then finds nothing live.
    let refused = as_sessions(&store)
        .create(new_session(5, user_id(1), 20, 1000), Journal::default())
        .await;
    assert!(
        matches!(refused, Err(StoreError::Changed)),
        "a session of an inactive user: {refused:?}"
    );
    let again = as_users(&store)
        .update(
            user_id(1),
            activity(false),
            None,
            at(30),
            Journal::default(),
        )
        .await
        .expect("deactivate again");
    assert_eq!(again.revoked, Vec::<SessionId>::new());
}

/// Demoting or deactivating the last active system administrator is `LastAdmin(System)` and
/// writes nothing; an inactive administrator does not count, and may be demoted; with
/// another active administrator, it is allowed.
pub async fn update_refuses_to_remove_the_last_active_system_admin<S>(store: S)
where
    S: Store,
{
    let last = insert(&store, user_n(1, Role::Admin, true)).await;
    insert(&store, user_n(2, Role::Admin, false)).await;
    insert(&store, user_n(3, Role::User, true)).await;
    let refused = [
        (role(Role::User), "demoting the last active admin"),
        (activity(false), "deactivating the last active admin"),
        (
            UserChanges {
                role: Some(Role::Admin),
                is_active: Some(false),
                ..UserChanges::default()
            },
            "deactivating the last active admin, keeping the role",
        ),
        (
            UserChanges {
                role: Some(Role::User),
                is_active: Some(false),
                ..UserChanges::default()
            },
            "demoting and deactivating the last active admin",
        ),
    ];
    for (changes, why) in refused.clone() {
        let result = as_users(&store)
            .update(
                user_id(1),
                changes,
                Some(1),
                at(10),
                journal(1, AuditAction::UserUpdated),
            )
            .await;
        assert_refused(&store, result, LastAdmin::System, user_id(1), &last, why).await;
    }

    // Changes that leave the admin an active admin are allowed.
    for (changes, why) in [
        (role(Role::Admin), "re-sending the role"),
        (activity(true), "re-sending the activity"),
    ] {
        let kept = update(&store, user_id(1), changes, 11).await;
        assert!(kept.role == Role::Admin && kept.is_active, "{why}");
    }

    // The inactive admin is no active admin: demoting them removes none.
    let demoted = update(&store, user_id(2), role(Role::User), 12).await;
    assert_eq!(demoted.role, Role::User, "an inactive admin may be demoted");
    update(&store, user_id(2), role(Role::Admin), 13).await;

    // Another active admin makes it allowed.
    update(&store, user_id(3), role(Role::Admin), 20).await;
    let demoted = update(&store, user_id(1), role(Role::User), 21).await;
    assert_eq!(
        demoted.role,
        Role::User,
        "allowed with another active admin"
    );

    // Now user 3 is the last active one.
    let last = find_user(&store, user_id(3)).await;
    for (changes, why) in refused {
        let result = as_users(&store)
            .update(
                user_id(3),
                changes,
                None,
                at(30),
                journal(2, AuditAction::UserUpdated),
            )
            .await;
        assert_refused(&store, result, LastAdmin::System, user_id(3), &last, why).await;
    }
    update(&store, user_id(2), activity(true), 40).await;
    let deactivated = update(&store, user_id(3), activity(false), 41).await;
    assert!(
        !deactivated.is_active,
        "allowed once the other admin is active"
    );
}

/// Deactivating the last active administrator of a tenant is `LastAdmin(Tenant(t))` and
/// writes nothing (the user's sessions stay live); an inactive second administrator or an
/// active moderator does not count, an active second administrator does. The system guard
/// is checked first.
pub async fn update_refuses_to_deactivate_a_tenants_last_active_admin<S>(store: S)
where
    S: Store,
{
    insert(&store, user_n(9, Role::Admin, true)).await;
    create_tenant(
        &store,
        new_tenant(2, "other-lab", 0),
        Some(TenantAdmin::Existing(user_id(9))),
    )
    .await;
    let system = find_user(&store, user_id(9)).await;
    let result = as_users(&store)
        .update(user_id(9), activity(false), None, at(5), Journal::default())
        .await;
    assert_refused(
        &store,
        result,
        LastAdmin::System,
        user_id(9),
        &system,
        "the last system admin, who is also a tenant's last admin",
    )
    .await;

    insert(&store, user_n(1, Role::User, true)).await;
    insert(&store, user_n(2, Role::User, true)).await;
    insert(&store, user_n(3, Role::User, true)).await;
    create_tenant(
        &store,
        new_tenant(1, "lab", 0),
        Some(TenantAdmin::Existing(user_id(1))),
    )
    .await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    let refuse = |why: &'static str| {
        let store = &store;
        async move {
            let before = find_user(store, user_id(1)).await;
            let result = as_users(store)
                .update(
                    user_id(1),
                    activity(false),
                    None,
                    at(10),
                    journal(1, AuditAction::UserUpdated),
                )
                .await;
            assert_refused(
                store,
                result,
                LastAdmin::Tenant(tenant_id(1)),
                user_id(1),
                &before,
                why,
            )
            .await;
            assert_eq!(
                find_session(store, session_id(1)).await.revoked_at,
                None,
                "{why}: the sessions stay live"
            );
        }
    };
    refuse("the only admin of the tenant").await;

    add_member(&store, tenant_id(1), user_id(2), TenantRole::Admin, 1).await;
    update(&store, user_id(2), activity(false), 2).await;
    add_member(&store, tenant_id(1), user_id(3), TenantRole::Moderator, 3).await;
    refuse("an inactive admin and an active moderator do not count").await;

    let promoted = update(&store, user_id(1), role(Role::Admin), 4).await;
    assert_eq!(
        promoted.role,
        Role::Admin,
        "a system role change does not touch the tenants"
    );

    update(&store, user_id(2), activity(true), 20).await;
    let deactivated = update(&store, user_id(1), activity(false), 21).await;
    assert!(
        !deactivated.is_active,
        "allowed with another active admin of the tenant"
    );
}

/// Of two concurrent changes removing the only two active system administrators (demotions,
/// or a demotion and a deactivation), exactly one succeeds and the other is
/// `LastAdmin(System)`; repeated so that the calls really overlap.
pub async fn concurrent_demotions_of_the_only_two_admins_leave_one<S>(store: S)
where
    S: Store,
{
    const ROUNDS: i64 = 12;
    insert(&store, user_n(1, Role::Admin, true)).await;
    insert(&store, user_n(2, Role::Admin, true)).await;
    let admins = UserFilter {
        role: Some(Role::Admin),
        is_active: Some(true),
        ..UserFilter::default()
    };
    for round in 0..ROUNDS {
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let second = if round % 2 == 0 {
            role(Role::User)
        } else {
            activity(false)
        };
        let tasks: Vec<_> = [(1, role(Role::User)), (2, second)]
            .into_iter()
            .map(|(n, changes)| {
                let store = store.clone();
                let start = std::sync::Arc::clone(&start);
                tokio::spawn(async move {
                    start.wait().await;
                    let journal = journal(
                        u128::try_from(round * 2 + n).expect("small"),
                        AuditAction::UserUpdated,
                    );
                    as_users(&store)
                        .update(user_id(n as u128), changes, None, at(round), journal)
                        .await
                })
            })
            .collect();
        let mut succeeded = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(_) => succeeded += 1,
                Err(StoreError::LastAdmin(LastAdmin::System)) => {}
                Err(other) => panic!("round {round}: expected LastAdmin(System), got {other:?}"),
            }
        }
        assert_eq!(succeeded, 1, "round {round}: exactly one change succeeds");
        let left = as_users(&store)
            .list(admins.clone(), UserSort::CreatedAt, ALL)
            .await
            .expect("list");
        assert_eq!(left.total, 1, "round {round}: one active admin is left");
        assert_eq!(
            events(&store).await.len() as i64,
            round + 1,
            "round {round}: only the change that succeeded wrote its journal"
        );
        for n in [1, 2] {
            update(
                &store,
                user_id(n),
                UserChanges {
                    role: Some(Role::Admin),
                    is_active: Some(true),
                    ..UserChanges::default()
                },
                round,
            )
            .await;
        }
    }
}

/// `delete` removes the user with their sessions (and refresh tokens), action tokens and
/// memberships, leaves other users' and the audit events about the user; the address and
/// username are free again; a second delete is `NotFound` and writes no journal.
pub async fn delete_removes_the_user_with_sessions_tokens_and_memberships<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    create(&store, new_session(2, user_id(1), 0, 1000)).await;
    let bobs = create(&store, new_session(3, user_id(2), 0, 1000)).await;
    let bob = find_user(&store, user_id(2)).await;
    issue(
        &store,
        ActionToken {
            hash: token(10),
            user_id: user_id(1),
            purpose: ActionPurpose::VerifyEmail,
            created_at: at(0),
            expires_at: at(100),
        },
    )
    .await;
    create_tenant(
        &store,
        new_tenant(1, "lab", 0),
        Some(TenantAdmin::Existing(user_id(2))),
    )
    .await;
    add_member(&store, tenant_id(1), user_id(1), TenantRole::Member, 1).await;
    let about_ada = AuditEvent {
        actor: Some(user_id(1)),
        target: AuditTarget::User(user_id(1)),
        ..event(1, AuditAction::UserLogin)
    };
    store
        .append(Journal::of(about_ada.clone()))
        .await
        .expect("append");

    let deleted = AuditEvent {
        actor: Some(user_id(2)),
        target: AuditTarget::User(user_id(1)),
        ..event(2, AuditAction::UserDeleted)
    };
    as_users(&store)
        .delete(user_id(1), None, Journal::of(deleted.clone()))
        .await
        .expect("delete");
    assert_eq!(
        store.find_by_id(user_id(1)).await.expect("find_by_id"),
        None
    );
    for n in [1, 2] {
        assert_eq!(
            as_sessions(&store).find(session_id(n)).await.expect("find"),
            None,
            "session {n} went with the user"
        );
        let rotation = store
            .rotate_refresh_token(&token(n), &token(100 + n), at(10))
            .await
            .expect("rotate");
        assert_eq!(
            rotation,
            RefreshRotation::Unknown,
            "session {n}'s refresh token went with it"
        );
    }
    assert!(
        store
            .find_action_token(&token(10))
            .await
            .expect("find_action_token")
            .is_none(),
        "the action tokens went with the user"
    );
    assert_eq!(
        store
            .role_of(tenant_id(1), user_id(1))
            .await
            .expect("role_of"),
        None,
        "the membership went with the user"
    );
    assert!(
        store
            .tenants_of(user_id(1))
            .await
            .expect("tenants_of")
            .is_empty()
    );
    let members = store.members(tenant_id(1), ALL).await.expect("members");
    assert_eq!(members.total, 1);
    assert_eq!(members.items[0].user, bob, "the other member stays");
    assert_eq!(
        find_session(&store, session_id(3)).await,
        bobs,
        "another user's session stays"
    );
    assert_eq!(
        events(&store).await,
        vec![deleted, about_ada],
        "the events about the user stay, and the journal is written"
    );

    let again = as_users(&store)
        .delete(user_id(1), None, journal(3, AuditAction::UserDeleted))
        .await;
    assert!(
        matches!(again, Err(StoreError::NotFound)),
        "expected NotFound, got {again:?}"
    );
    assert_eq!(
        events(&store).await.len(),
        2,
        "a refused delete writes no journal"
    );
    let missing = as_users(&store)
        .delete(user_id(9), None, journal(4, AuditAction::UserDeleted))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound)),
        "expected NotFound, got {missing:?}"
    );

    insert(&store, new_user(5, "ada@example.com", "ADA")).await;
}

/// Deleting the last active system administrator is `LastAdmin(System)`, and the last active
/// administrator of a tenant `LastAdmin(Tenant(t))`, writing nothing (the membership stays);
/// inactive administrators may be deleted and do not count; with another active
/// administrator, it is allowed.
pub async fn delete_refuses_to_remove_the_last_active_admin<S>(store: S)
where
    S: Store,
{
    let last = insert(&store, user_n(1, Role::Admin, true)).await;
    insert(&store, user_n(2, Role::Admin, false)).await;
    let result = as_users(&store)
        .delete(user_id(1), None, journal(1, AuditAction::UserDeleted))
        .await;
    assert_refused(
        &store,
        result,
        LastAdmin::System,
        user_id(1),
        &last,
        "deleting the last active system admin",
    )
    .await;
    as_users(&store)
        .delete(user_id(2), None, Journal::default())
        .await
        .expect("an inactive admin may be deleted");
    insert(&store, user_n(3, Role::Admin, true)).await;
    as_users(&store)
        .delete(user_id(1), None, Journal::default())
        .await
        .expect("allowed with another active system admin");

    insert(&store, user_n(4, Role::User, true)).await;
    insert(&store, user_n(5, Role::User, false)).await;
    insert(&store, user_n(6, Role::User, true)).await;
    create_tenant(
        &store,
        new_tenant(1, "lab", 0),
        Some(TenantAdmin::Existing(user_id(4))),
    )
    .await;
    add_member(&store, tenant_id(1), user_id(5), TenantRole::Admin, 1).await;
    let tenant_admin = find_user(&store, user_id(4)).await;
    let result = as_users(&store)
        .delete(user_id(4), None, journal(2, AuditAction::UserDeleted))
        .await;
    assert_refused(
        &store,
        result,
        LastAdmin::Tenant(tenant_id(1)),
        user_id(4),
        &tenant_admin,
        "deleting a tenant's last active admin",
    )
    .await;
    assert_eq!(
        store
            .role_of(tenant_id(1), user_id(4))
            .await
            .expect("role_of"),
        Some(TenantRole::Admin),
        "the membership stays"
    );
    as_users(&store)
        .delete(user_id(5), None, Journal::default())
        .await
        .expect("an inactive tenant admin may be deleted");
    add_member(&store, tenant_id(1), user_id(6), TenantRole::Admin, 2).await;
    as_users(&store)
        .delete(user_id(4), None, Journal::default())
        .await
        .expect("allowed with another active admin of the tenant");
    assert!(
        as_tenants(&store)
            .find(&TenantRef::Id(tenant_id(1)))
            .await
            .expect("find")
            .is_some()
    );
}

/// Users 1 to 6 created one second apart: 1 admin, 2 user, 3 inactive admin, 4 inactive
/// user, 5 user in tenant 1, 6 admin in tenants 1 and 2.
async fn six_users<S: Store>(store: &S) {
    for (n, role, active) in [
        (1, Role::Admin, true),
        (2, Role::User, true),
        (3, Role::Admin, false),
        (4, Role::User, false),
        (5, Role::User, true),
        (6, Role::Admin, true),
    ] {
        insert(
            store,
            NewUser {
                created_at: at(i64::try_from(n).expect("small")),
                ..user_n(n, role, active)
            },
        )
        .await;
    }
    create_tenant(store, new_tenant(1, "lab-one", 0), None).await;
    create_tenant(store, new_tenant(2, "lab-two", 0), None).await;
    add_member(store, tenant_id(1), user_id(5), TenantRole::Member, 0).await;
    add_member(store, tenant_id(1), user_id(6), TenantRole::Admin, 0).await;
    add_member(store, tenant_id(2), user_id(6), TenantRole::Viewer, 0).await;
}

/// The ids of `list(filter, CreatedAt, ALL)`, checking that `total` counts them.
async fn listed<S: UserStore>(store: &S, filter: UserFilter) -> Vec<u128> {
    let page = store
        .list(filter.clone(), UserSort::CreatedAt, ALL)
        .await
        .expect("list");
    assert_eq!(
        page.total,
        page.items.len() as u64,
        "{filter:?}: total counts every match"
    );
    page.items
        .into_iter()
        .map(|u| u.id.as_uuid().as_u128())
        .collect()
}

/// Each filter (role, activity, tenant membership) and their combination returns exactly the
/// matching users, every field as stored, and `total` counts them.
pub async fn list_filters_by_role_activity_and_tenant<S>(store: S)
where
    S: Store,
{
    assert_eq!(
        listed(&store, UserFilter::default()).await,
        Vec::<u128>::new()
    );
    six_users(&store).await;
    let all = as_users(&store)
        .list(UserFilter::default(), UserSort::CreatedAt, ALL)
        .await
        .expect("list");
    for user in &all.items {
        assert_eq!(
            user,
            &find_user(&store, user.id).await,
            "listed users are whole"
        );
    }
    for (filter, expected) in [
        (UserFilter::default(), vec![1, 2, 3, 4, 5, 6]),
        (
            UserFilter {
                role: Some(Role::Admin),
                ..UserFilter::default()
            },
            vec![1, 3, 6],
        ),
        (
            UserFilter {
                role: Some(Role::User),
                ..UserFilter::default()
            },
            vec![2, 4, 5],
        ),
        (
            UserFilter {
                is_active: Some(true),
                ..UserFilter::default()
            },
            vec![1, 2, 5, 6],
        ),
        (
            UserFilter {
                is_active: Some(false),
                ..UserFilter::default()
            },
            vec![3, 4],
        ),
        (
            UserFilter {
                tenant: Some(tenant_id(1)),
                ..UserFilter::default()
            },
            vec![5, 6],
        ),
        (
            UserFilter {
                tenant: Some(tenant_id(2)),
                ..UserFilter::default()
            },
            vec![6],
        ),
        (
            UserFilter {
                tenant: Some(tenant_id(9)),
                ..UserFilter::default()
            },
            vec![],
        ),
        (
            UserFilter {
                role: Some(Role::Admin),
                is_active: Some(true),
                tenant: Some(tenant_id(1)),
                q: None,
            },
            vec![6],
        ),
        (
            UserFilter {
                role: Some(Role::User),
                is_active: Some(true),
                q: Some("USER5".to_owned()),
                tenant: None,
            },
            vec![5],
        ),
    ] {
        assert_eq!(listed(&store, filter.clone()).await, expected, "{filter:?}");
    }
}

/// Each sort, with ties on `created_at` broken by id (descending when newest first, so that
/// order is exactly the reverse of oldest first), and usernames ordered regardless of case.
pub async fn list_sorts_with_ties_broken_by_id<S>(store: S)
where
    S: Store,
{
    // (id, created, e-mail, username)
    for (n, created, address, login) in [
        (1, 20, "c@example.com", "delta"),
        (2, 10, "e@example.com", "Bravo"),
        (3, 20, "d@example.com", "alpha"),
        (4, 30, "a@example.com", "Charlie"),
        (5, 10, "b@example.com", "echo"),
    ] {
        insert(
            &store,
            NewUser {
                created_at: at(created),
                ..new_user(n, address, login)
            },
        )
        .await;
    }
    for (sort, expected) in [
        (UserSort::CreatedAt, vec![2, 5, 1, 3, 4]),
        (UserSort::CreatedAtDesc, vec![4, 3, 1, 5, 2]),
        (UserSort::Email, vec![4, 5, 1, 3, 2]),
        (UserSort::Username, vec![3, 2, 4, 1, 5]),
    ] {
        for _ in 0..2 {
            let page = as_users(&store)
                .list(UserFilter::default(), sort, ALL)
                .await
                .expect("list");
            let ids: Vec<u128> = page
                .items
                .iter()
                .map(|u| u.id.as_uuid().as_u128())
                .collect();
            assert_eq!(ids, expected, "{sort:?}");
            assert_eq!(page.total, 5);
        }
    }
}

/// Pages are consecutive slices of the sorted matches; `total` counts every match on every
/// page, also past the last page.
pub async fn list_paginates_with_the_total<S>(store: S)
where
    S: Store,
{
    for n in 1..=7 {
        insert(
            &store,
            NewUser {
                created_at: at(i64::try_from(n).expect("small")),
                ..user_n(n, if n % 2 == 0 { Role::Admin } else { Role::User }, true)
            },
        )
        .await;
    }
    let ids = |users: Vec<User>| -> Vec<u128> {
        users
            .into_iter()
            .map(|u| u.id.as_uuid().as_u128())
            .collect()
    };
    for (request, expected) in [
        (page(1, 3), vec![1, 2, 3]),
        (page(2, 3), vec![4, 5, 6]),
        (page(3, 3), vec![7]),
        (page(4, 3), vec![]),
        (page(1, 7), vec![1, 2, 3, 4, 5, 6, 7]),
        (page(2, 1), vec![2]),
    ] {
        let listed = as_users(&store)
            .list(UserFilter::default(), UserSort::CreatedAt, request)
            .await
            .expect("list");
        assert_eq!(ids(listed.items), expected, "{request:?}");
        assert_eq!(listed.total, 7, "{request:?}: the total counts every page");
    }
    let users = UserFilter {
        role: Some(Role::User),
        ..UserFilter::default()
    };
    for (request, expected) in [
        (page(1, 2), vec![7, 5]),
        (page(2, 2), vec![3, 1]),
        (page(3, 2), vec![]),
    ] {
        let listed = as_users(&store)
            .list(users.clone(), UserSort::CreatedAtDesc, request)
            .await
            .expect("list");
        assert_eq!(ids(listed.items), expected, "{request:?}");
        assert_eq!(listed.total, 4, "{request:?}: the total counts the matches");
    }
}

/// `q` is a substring of the e-mail, the username, the first or the last name, in any case
/// (ASCII letters); any other character matches at least itself.
pub async fn list_q_matches_each_field_in_any_case<S>(store: S)
where
    S: Store,
{
    let plain = |n: u128| new_user(n, &format!("plain{n}@example.com"), &format!("plain{n}"));
    insert(
        &store,
        NewUser {
            email: email("Zeta.Mail@example.com"),
            ..plain(1)
        },
    )
    .await;
    insert(
        &store,
        NewUser {
            username: username("KappaKing"),
            ..plain(2)
        },
    )
    .await;
    insert(
        &store,
        NewUser {
            first_name: name("Sigmund"),
            ..plain(3)
        },
    )
    .await;
    insert(
        &store,
        NewUser {
            last_name: name("Omegason"),
            ..plain(4)
        },
    )
    .await;
    insert(
        &store,
        NewUser {
            first_name: name("Élodie"),
            last_name: PersonName::default(),
            ..plain(5)
        },
    )
    .await;
    let matching = |q: &str| UserFilter {
        q: Some(q.to_owned()),
        ..UserFilter::default()
    };
    for (q, expected) in [
        ("zeta", vec![1]),
        ("ZETA.M", vec![1]),
        ("a.mail@EX", vec![1]),
        ("kappaking", vec![2]),
        ("APPAk", vec![2]),
        ("sigm", vec![3]),
        ("iGMUN", vec![3]),
        ("omegason", vec![4]),
        ("EGAS", vec![4]),
        ("Élo", vec![5]),
        ("lodie", vec![5]),
        ("LODIE", vec![5]),
        ("plain", vec![1, 2, 3, 4, 5]),
        ("lovelace", vec![1, 2, 3]),
        ("", vec![1, 2, 3, 4, 5]),
        ("nobody", vec![]),
    ] {
        assert_eq!(listed(&store, matching(q)).await, expected, "q = {q:?}");
    }
}

/// `%`, `_` and `\` in `q` match only themselves, never as `LIKE` wildcards or escapes.
pub async fn list_q_matches_wildcards_literally<S>(store: S)
where
    S: Store,
{
    let plain = |n: u128| new_user(n, &format!("plain{n}@example.com"), &format!("plain{n}"));
    for user in [
        NewUser {
            username: username("under_score"),
            ..plain(1)
        },
        NewUser {
            username: username("underXscore"),
            ..plain(2)
        },
        NewUser {
            first_name: name("100% Pure"),
            ..plain(3)
        },
        NewUser {
            first_name: name("1000 Pure"),
            ..plain(4)
        },
        NewUser {
            last_name: name("Back\\slash"),
            ..plain(5)
        },
        NewUser {
            last_name: name("Backslash"),
            ..plain(6)
        },
        NewUser {
            email: email("per%cent@example.com"),
            ..plain(7)
        },
    ] {
        insert(&store, user).await;
    }
    let matching = |q: &str| UserFilter {
        q: Some(q.to_owned()),
        ..UserFilter::default()
    };
    for (q, expected) in [
        ("_", vec![1]),
        ("r_s", vec![1]),
        ("%", vec![3, 7]),
        ("100%", vec![3]),
        ("0% p", vec![3]),
        ("r%c", vec![7]),
        ("\\", vec![5]),
        ("k\\s", vec![5]),
        ("\\%", vec![]),
        ("\\_", vec![]),
        ("%%", vec![]),
    ] {
        assert_eq!(listed(&store, matching(q)).await, expected, "q = {q:?}");
    }
}

/// `insert_many` creates every user with its journal in one transaction, each as `insert`
/// would, and all or none: one taken address or username (stored already, or twice in the
/// batch) writes nothing.
pub async fn insert_many_creates_all_or_none<S>(store: S)
where
    S: Store,
{
    let batch: Vec<NewUser> = (1..=2500)
        .map(|n| new_user(n, &format!("bulk{n}@example.com"), &format!("bulk{n}")))
        .collect();
    let created = as_users(&store)
        .insert_many(batch.clone(), journal(1, AuditAction::UserCreated))
        .await
        .expect("insert_many");
    assert_eq!(created, 2500, "more than one statement's worth of rows");
    let listed = as_users(&store)
        .list(UserFilter::default(), UserSort::CreatedAt, page(1, 1))
        .await
        .expect("list");
    assert_eq!(listed.total, 2500);
    let last = find_user(&store, user_id(2500)).await;
    assert_eq!(last.email.as_str(), "bulk2500@example.com");
    assert_eq!(last.version, 1);
    assert_eq!(events(&store).await, [event(1, AuditAction::UserCreated)]);

    for (what, clash) in [
        (
            "a stored address",
            new_user(3001, "bulk7@example.com", "fresh3001"),
        ),
        (
            "a stored username",
            new_user(3002, "fresh@example.com", "BULK8"),
        ),
    ] {
        let mut again: Vec<NewUser> = (4000..4010)
            .map(|n| new_user(n, &format!("new{n}@example.com"), &format!("new{n}")))
            .collect();
        again.push(clash);
        let refused = as_users(&store)
            .insert_many(again, journal(2, AuditAction::UserCreated))
            .await;
        assert!(
            matches!(refused, Err(StoreError::Duplicate(_))),
            "{what}: {refused:?}"
        );
        assert!(
            as_users(&store)
                .find_by_id(user_id(4000))
                .await
                .expect("find")
                .is_none(),
            "{what}: nothing written"
        );
    }
    let twice = vec![
        new_user(5001, "twin@example.com", "twin1"),
        new_user(5002, "twin@example.com", "twin2"),
    ];
    let refused = as_users(&store)
        .insert_many(twice, Journal::default())
        .await;
    assert!(
        matches!(refused, Err(StoreError::Duplicate(UniqueField::Email))),
        "{refused:?}"
    );
    assert!(
        as_users(&store)
            .find_by_id(user_id(5001))
            .await
            .expect("find")
            .is_none()
    );
    assert_eq!(events(&store).await.len(), 1, "no event of a refused batch");
}

/// A journal of event `n` (`action`) and message `n` (`kind`), both at `at(n)`: what a use
/// case that mails a token hands the store.
fn mailing(n: u128, action: AuditAction, kind: MailKind) -> Journal {
    journal(n, action).with_mail(mail(n, kind, i64::try_from(n).expect("small")))
}

/// The ids of the stored events, oldest first.
async fn event_ids<S: Store>(store: &S) -> Vec<domain::model::AuditEventId> {
    let mut ids: Vec<_> = events(store).await.into_iter().map(|e| e.id).collect();
    ids.reverse();
    ids
}

/// Whether the token with digest `token(n)` is stored.
async fn stored<S: UserStore>(store: &S, n: u128) -> bool {
    store
        .find_action_token(&token(n))
        .await
        .expect("find_action_token")
        .is_some()
}

/// `issue_action_token` stores the token (every field, unspent) and writes its journal (the
/// event and the message carrying the token).
pub async fn issue_action_token_stores_the_token_with_its_journal<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let issued = action_token(1, user_id(1), ActionPurpose::ResetPassword, 5, 100);
    let journal = mailing(
        5,
        AuditAction::UserPasswordResetRequested,
        MailKind::PasswordReset,
    );
    assert_eq!(
        store
            .issue_action_token(
                issued.clone(),
                &email("ada@example.com"),
                Some(at(0)),
                journal
            )
            .await
            .expect("issue_action_token"),
        IssueOutcome::Issued,
        "no earlier token: issued"
    );
    let found = store
        .find_action_token(&token(1))
        .await
        .expect("find_action_token")
        .expect("the token is stored");
    assert_eq!(found.token, issued);
    assert_eq!(found.used_at, None);
    assert_eq!(event_ids(&store).await, vec![event_id(5)], "the event");
    assert_eq!(
        claimed_ids(&store, LATER).await,
        vec![mail_id(5)],
        "the message"
    );
}

/// Within the cooldown (a token of the same user and purpose created at or after
/// `quiet_since`) `issue_action_token` is `Cooldown` and writes nothing, neither the token nor
/// its journal; before it, for another purpose, another user, or with no cooldown, it issues.
pub async fn issue_action_token_keeps_quiet_within_the_cooldown<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    let reset = ActionPurpose::ResetPassword;
    let verify = ActionPurpose::VerifyEmail;
    for (n, user, purpose, created, quiet_since, expected, why) in [
        (1, 1, reset, 10, Some(0), true, "the first token"),
        (
            2,
            1,
            reset,
            20,
            Some(10),
            false,
            "a token was created at quiet_since",
        ),
        (
            3,
            1,
            reset,
            25,
            Some(11),
            true,
            "the last token was created before",
        ),
        (
            4,
            1,
            reset,
            26,
            Some(25),
            false,
            "the cooldown counts the newest token",
        ),
        (5, 1, verify, 27, Some(0), true, "another purpose"),
        (6, 2, reset, 28, Some(0), true, "another user"),
        (7, 1, reset, 29, None, true, "no cooldown"),
    ] {
        let journal = mailing(
            n,
            AuditAction::UserPasswordResetRequested,
            MailKind::PasswordReset,
        );
        let to = email(if user == 1 {
            "ada@example.com"
        } else {
            "bob@example.com"
        });
        let issued = store
            .issue_action_token(
                action_token(n, user_id(user), purpose, created, 1000),
                &to,
                quiet_since.map(at),
                journal,
            )
            .await
            .expect("issue_action_token");
        assert_eq!(
            issued,
            if expected {
                IssueOutcome::Issued
            } else {
                IssueOutcome::Cooldown
            },
            "token {n}: {why}"
        );
        assert_eq!(stored(&store, n).await, expected, "token {n} stored: {why}");
    }
    let written = [1, 3, 5, 6, 7];
    assert_eq!(
        event_ids(&store).await,
        written.map(event_id).to_vec(),
        "the journals of the issued tokens only"
    );
    assert_eq!(
        claimed_ids(&store, LATER).await,
        written.map(mail_id).to_vec(),
        "the messages of the issued tokens only"
    );
}

/// A token for a user that does not exist is `NotFound` and writes nothing.
pub async fn issue_action_token_for_an_unknown_user_is_not_found<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    for (n, quiet_since) in [(1, None), (2, Some(at(0)))] {
        let result = store
            .issue_action_token(
                action_token(n, user_id(9), ActionPurpose::VerifyEmail, 10, 100),
                &email("nobody@example.com"),
                quiet_since,
                mailing(n, AuditAction::UserRegistered, MailKind::Verification),
            )
            .await;
        assert!(
            matches!(result, Err(StoreError::NotFound)),
            "{quiet_since:?}: {result:?}"
        );
        assert!(!stored(&store, n).await, "no token");
    }
    assert_no_events(&store, "a refused issue writes no journal").await;
    assert_no_mail(&store, "a refused issue queues no mail").await;
}

/// Eight concurrent issues for one user and purpose with the same `quiet_since` issue exactly
/// one token, writing one journal; repeated in rounds, each after the previous cooldown.
pub async fn concurrent_issues_within_one_cooldown_issue_exactly_one<S>(store: S)
where
    S: Store,
{
    const CALLS: u128 = 8;
    const ROUNDS: u128 = 4;
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let store = std::sync::Arc::new(store);
    for round in 0..ROUNDS {
        let since = i64::try_from(round * 100).expect("small");
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(CALLS as usize));
        let tasks: Vec<_> = (0..CALLS)
            .map(|i| {
                let store = std::sync::Arc::clone(&store);
                let start = std::sync::Arc::clone(&start);
                let n = round * 100 + i + 1;
                tokio::spawn(async move {
                    start.wait().await;
                    let token =
                        action_token(n, user_id(1), ActionPurpose::ResetPassword, since + 1, 1000);
                    let journal = mailing(
                        n,
                        AuditAction::UserPasswordResetRequested,
                        MailKind::PasswordReset,
                    );
                    store
                        .issue_action_token(
                            token,
                            &email("ada@example.com"),
                            Some(at(since)),
                            journal,
                        )
                        .await
                        .expect("issue_action_token")
                })
            })
            .collect();
        let mut issued = 0;
        for task in tasks {
            match task.await.expect("task") {
                IssueOutcome::Issued => issued += 1,
                IssueOutcome::Cooldown => {}
                IssueOutcome::Stale => panic!("round {round}: the address did not change"),
            }
        }
        assert_eq!(issued, 1, "round {round}: exactly one is issued");
        let mut tokens = 0;
        for i in 0..CALLS {
            if stored(store.as_ref(), round * 100 + i + 1).await {
                tokens += 1;
            }
        }
        assert_eq!(tokens, 1, "round {round}: one token stored");
        assert_eq!(
            events(store.as_ref()).await.len() as u128,
            round + 1,
            "round {round}: one journal written"
        );
    }
    assert_eq!(
        claimed_ids(store.as_ref(), LATER).await.len() as u128,
        ROUNDS,
        "one message a round"
    );
}

/// `reset_password` with a live reset token replaces the password hash, marks the address
/// verified, bumps the version, revokes every unrevoked session of the user (returning
/// them) and writes its journal, in one go; the token works once.
pub async fn reset_password_spends_the_token_once_and_revokes_every_session<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    create(&store, new_session(2, user_id(1), 0, 20)).await;
    create(&store, new_session(3, user_id(1), 0, 1000)).await;
    create(&store, new_session(4, user_id(2), 0, 1000)).await;
    assert!(
        store
            .revoke(user_id(1), session_id(3), at(5), Journal::default())
            .await
            .expect("revoke")
    );
    issue(
        &store,
        action_token(1, user_id(1), ActionPurpose::ResetPassword, 0, 100),
    )
    .await;
    let before = find_user(&store, user_id(1)).await;
    assert!(!before.email_verified);

    let revoked = store
        .reset_password(
            &token(1),
            user_id(1),
            password_hash("reset"),
            at(50),
            mailing(
                50,
                AuditAction::UserPasswordReset,
                MailKind::PasswordChanged,
            ),
        )
        .await
        .expect("reset_password")
        .expect("the token is spendable");
    assert_eq!(
        sorted(revoked),
        vec![session_id(1), session_id(2)],
        "every unrevoked session, the expired one included"
    );
    let credentials = store
        .find_credentials_by_id(user_id(1))
        .await
        .expect("find_credentials_by_id")
        .expect("the user exists");
    assert_eq!(credentials.password_hash, password_hash("reset"));
    let after = credentials.user;
    assert!(after.email_verified, "the reset proved the mailbox");
    assert_eq!(after.version, before.version + 1);
    assert_eq!(after.updated_at, at(50));
    for (session, revoked_at) in [(1, Some(at(50))), (2, Some(at(50))), (3, Some(at(5)))] {
        assert_eq!(
            find_session(&store, session_id(session)).await.revoked_at,
            revoked_at,
            "session {session}"
        );
    }
    assert_eq!(
        find_session(&store, session_id(4)).await.revoked_at,
        None,
        "another user's session"
    );
    assert_eq!(
        store
            .find_action_token(&token(1))
            .await
            .expect("find_action_token")
            .expect("stored")
            .used_at,
        Some(at(50)),
        "spent"
    );

    let again = store
        .reset_password(
            &token(1),
            user_id(1),
            password_hash("again"),
            at(51),
            mailing(
                51,
                AuditAction::UserPasswordReset,
                MailKind::PasswordChanged,
            ),
        )
        .await
        .expect("reset_password");
    assert_eq!(again, None, "a token is spent once");
    let credentials = store
        .find_credentials_by_id(user_id(1))
        .await
        .expect("find_credentials_by_id")
        .expect("the user exists");
    assert_eq!(credentials.password_hash, password_hash("reset"));
    assert_eq!(credentials.user, after, "nothing written");
    assert_eq!(event_ids(&store).await, vec![event_id(50)]);
    assert_eq!(claimed_ids(&store, LATER).await, vec![mail_id(50)]);
    assert_eq!(
        find_user(&store, user_id(2)).await.version,
        1,
        "the other user is untouched"
    );
}

/// Expired (at or after `expires_at`), unknown, other-purpose and other users' tokens reset
/// nothing and write nothing; the refused token still works before its expiry.
pub async fn reset_password_refuses_expired_unknown_other_purpose_and_other_users_tokens<S>(
    store: S,
) where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let bob = insert(&store, new_user(2, "bob@example.com", "bob")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    let before = find_user(&store, user_id(1)).await;
    issue(
        &store,
        action_token(1, user_id(1), ActionPurpose::ResetPassword, 0, 100),
    )
    .await;
    issue(
        &store,
        action_token(2, user_id(1), ActionPurpose::VerifyEmail, 0, 100),
    )
    .await;
    for (hash, user, when, why) in [
        (token(1), 1, 100, "expired at its expiry instant"),
        (token(1), 1, 150, "expired"),
        (token(2), 1, 50, "for another purpose"),
        (token(3), 1, 50, "unknown"),
        (token(1), 2, 50, "another user's"),
    ] {
        let result = store
            .reset_password(
                &hash,
                user_id(user),
                password_hash("nope"),
                at(when),
                mailing(1, AuditAction::UserPasswordReset, MailKind::PasswordChanged),
            )
            .await
            .expect("reset_password");
        assert_eq!(result, None, "{why}");
    }
    for (id, user) in [(1, &before), (2, &bob)] {
        let credentials = store
            .find_credentials_by_id(user_id(id))
            .await
            .expect("find_credentials_by_id")
            .expect("the user exists");
        assert_eq!(&credentials.user, user, "user {id}: nothing written");
        assert_eq!(
            credentials.password_hash,
            password_hash(&format!("user-{id}"))
        );
    }
    assert_eq!(find_session(&store, session_id(1)).await.revoked_at, None);
    for n in [1, 2] {
        assert_eq!(
            store
                .find_action_token(&token(n))
                .await
                .expect("find_action_token")
                .expect("stored")
                .used_at,
            None,
            "token {n} is unspent"
        );
    }
    assert_no_events(&store, "a refused reset writes no journal").await;
    assert_no_mail(&store, "a refused reset queues no mail").await;

    let reset = store
        .reset_password(
            &token(1),
            user_id(1),
            password_hash("reset"),
            at(99),
            Journal::default(),
        )
        .await
        .expect("reset_password");
    assert_eq!(
        reset,
        Some(vec![session_id(1)]),
        "the refusals spent nothing"
    );
}

/// Of 8 concurrent resets with one token, exactly one succeeds (bumping the version once and
/// writing its journal once); repeated with several tokens so that the calls really overlap.
pub async fn concurrent_resets_spend_the_token_once<S>(store: S)
where
    S: Store,
{
    const CALLS: u128 = 8;
    const ROUNDS: u128 = 4;
    let mut before = insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let store = std::sync::Arc::new(store);
    for round in 0..ROUNDS {
        issue(
            store.as_ref(),
            action_token(round, user_id(1), ActionPurpose::ResetPassword, 0, 100),
        )
        .await;
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(CALLS as usize));
        let tasks: Vec<_> = (0..CALLS)
            .map(|i| {
                let store = std::sync::Arc::clone(&store);
                let start = std::sync::Arc::clone(&start);
                tokio::spawn(async move {
                    start.wait().await;
                    let n = 100 * (round + 1) + i;
                    store
                        .reset_password(
                            &token(round),
                            user_id(1),
                            password_hash(&format!("reset-{n}")),
                            at(10),
                            journal(n, AuditAction::UserPasswordReset),
                        )
                        .await
                        .expect("reset_password")
                })
            })
            .collect();
        let mut reset = 0;
        for task in tasks {
            if task.await.expect("task").is_some() {
                reset += 1;
            }
        }
        assert_eq!(reset, 1, "round {round}: exactly one spends the token");
        let after = find_user(store.as_ref(), user_id(1)).await;
        assert_eq!(
            after.version,
            before.version + 1,
            "round {round}: one version bump"
        );
        before = after;
        assert_eq!(
            events(store.as_ref()).await.len() as u128,
            round + 1,
            "round {round}: one journal written"
        );
    }
}

/// `purge_action_tokens` deletes at most `limit` tokens spent or expired strictly before
/// `before`, and no other.
pub async fn purge_action_tokens_deletes_spent_and_expired_tokens_bounded_by_limit<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    // 1: spent at 10. 2: expired at 20. 3: live. 4: spent at 50. 5: expires at 30.
    for (n, purpose, expires) in [
        (1, ActionPurpose::VerifyEmail, 1000),
        (2, ActionPurpose::ResetPassword, 20),
        (3, ActionPurpose::VerifyEmail, 1000),
        (4, ActionPurpose::ResetPassword, 1000),
        (5, ActionPurpose::ResetPassword, 30),
    ] {
        issue(&store, action_token(n, user_id(1), purpose, 0, expires)).await;
    }
    assert!(
        store
            .verify_email(&token(1), user_id(1), at(10), Journal::default())
            .await
            .expect("verify_email")
    );
    assert!(
        store
            .reset_password(
                &token(4),
                user_id(1),
                password_hash("reset"),
                at(50),
                Journal::default()
            )
            .await
            .expect("reset_password")
            .is_some()
    );
    let purge = |before: i64, limit: u32| {
        let store = store.clone();
        async move {
            store
                .purge_action_tokens(at(before), limit)
                .await
                .expect("purge_action_tokens")
        }
    };
    assert_eq!(purge(30, 1).await, 1, "bounded by the limit");
    assert_eq!(
        purge(30, 10).await,
        1,
        "the other one spent or expired before 30"
    );
    assert_eq!(purge(30, 10).await, 0, "nothing else before 30");
    for (n, kept) in [(1, false), (2, false), (3, true), (4, true), (5, true)] {
        assert_eq!(stored(&store, n).await, kept, "token {n}");
    }
    assert_eq!(purge(51, 10).await, 2, "expired at 30 and spent at 50");
    assert!(stored(&store, 3).await, "the live token stays");
    assert_eq!(
        find_user(&store, user_id(1)).await.version,
        3,
        "purging changes no user"
    );
}

/// When the token with digest `token(n)` was spent (`None`: unspent); it must be stored.
async fn used_at<S: UserStore>(store: &S, n: u128) -> Option<chrono::DateTime<chrono::Utc>> {
    store
        .find_action_token(&token(n))
        .await
        .expect("find_action_token")
        .unwrap_or_else(|| panic!("token {n} is stored"))
        .used_at
}

/// Only `email`.
fn address(raw: &str) -> UserChanges {
    UserChanges {
        email: Some(email(raw)),
        ..UserChanges::default()
    }
}

/// A change of address spends (`used_at = at`) every unspent one-time token of the user,
/// verification and password reset alike, before it writes its journal: the links mailed to
/// the old address are refused afterwards (`reset_password` is `None`, `verify_email` is
/// `false`, and neither writes anything), while the verification token that the change's own
/// journal carries for the new address stays spendable. A token spent before keeps the time
/// it was spent; another user's tokens are left alone.
pub async fn an_address_change_spends_the_users_unspent_tokens<S>(store: S)
where
    S: Store,
{
    let reset = ActionPurpose::ResetPassword;
    let verify = ActionPurpose::VerifyEmail;
    insert(
        &store,
        NewUser {
            email_verified: true,
            ..new_user(1, "ada@example.com", "ada")
        },
    )
    .await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    issue(&store, action_token(1, user_id(1), reset, 0, 1000)).await;
    issue(&store, action_token(2, user_id(1), verify, 0, 1000)).await;
    issue(&store, action_token(3, user_id(1), verify, 0, 1000)).await;
    issue(&store, action_token(4, user_id(2), reset, 0, 1000)).await;
    assert!(
        store
            .verify_email(&token(3), user_id(1), at(5), Journal::default())
            .await
            .expect("verify_email"),
        "token 3 is spent before the change"
    );

    let fresh = action_token(6, user_id(1), verify, 20, 1000);
    let moved = as_users(&store)
        .update(
            user_id(1),
            address("countess@example.org"),
            None,
            at(20),
            mailing(20, AuditAction::UserUpdated, MailKind::Verification).with_token(fresh.clone()),
        )
        .await
        .expect("a change of address")
        .user;
    assert!(!moved.email_verified, "the new address is unverified");
    for (n, spent, why) in [
        (
            1,
            Some(at(20)),
            "the old address's reset token is spent by the change",
        ),
        (
            2,
            Some(at(20)),
            "the old address's verification token is spent by the change",
        ),
        (3, Some(at(5)), "a token spent before keeps its time"),
        (4, None, "another user's token is left alone"),
        (6, None, "the token of the change's own journal is unspent"),
    ] {
        assert_eq!(used_at(&store, n).await, spent, "token {n}: {why}");
    }
    assert_eq!(
        store
            .find_action_token(&token(6))
            .await
            .expect("find_action_token")
            .expect("stored")
            .token,
        fresh
    );

    let reset_with_old = store
        .reset_password(
            &token(1),
            user_id(1),
            password_hash("attacker"),
            at(21),
            journal(21, AuditAction::UserPasswordReset),
        )
        .await
        .expect("reset_password");
    assert_eq!(
        reset_with_old, None,
        "a reset link of the old address is refused"
    );
    assert!(
        !store
            .verify_email(
                &token(2),
                user_id(1),
                at(22),
                journal(22, AuditAction::UserEmailVerified)
            )
            .await
            .expect("verify_email"),
        "a verification link of the old address is refused"
    );
    let credentials = store
        .find_credentials_by_id(user_id(1))
        .await
        .expect("find_credentials_by_id")
        .expect("the user exists");
    assert_eq!(credentials.user, moved, "the refused links wrote nothing");
    assert_eq!(credentials.password_hash, password_hash("user-1"));
    assert_eq!(
        find_session(&store, session_id(1)).await.revoked_at,
        None,
        "the refused reset revoked nothing"
    );
    assert_eq!(
        event_ids(&store).await,
        vec![event_id(20)],
        "only the change's journal"
    );
    assert_eq!(claimed_ids(&store, LATER).await, vec![mail_id(20)]);

    assert!(
        store
            .verify_email(&token(6), user_id(1), at(23), Journal::default())
            .await
            .expect("verify_email"),
        "the new address's token works"
    );
    assert!(find_user(&store, user_id(1)).await.email_verified);
    assert!(
        store
            .reset_password(
                &token(4),
                user_id(2),
                password_hash("bob-reset"),
                at(24),
                Journal::default()
            )
            .await
            .expect("reset_password")
            .is_some(),
        "another user's token still works"
    );
}

/// An update that does not change the address (none given, or the address the user has in
/// another case), and a change of address the store refuses (a stale version, a taken
/// address), spend no token: the user's reset and verification links keep working.
pub async fn an_update_that_keeps_the_address_leaves_the_tokens_alone<S>(store: S)
where
    S: Store,
{
    insert(
        &store,
        NewUser {
            email_verified: true,
            ..new_user(1, "ada@example.com", "ada")
        },
    )
    .await;
    insert(&store, new_user(2, "carol@example.com", "carol")).await;
    issue(
        &store,
        action_token(1, user_id(1), ActionPurpose::ResetPassword, 0, 1000),
    )
    .await;
    issue(
        &store,
        action_token(2, user_id(1), ActionPurpose::VerifyEmail, 0, 1000),
    )
    .await;

    let profile = UserChanges {
        profile: ProfileChanges {
            first_name: Some(name("Augusta")),
            ..ProfileChanges::default()
        },
        ..UserChanges::default()
    };
    update(&store, user_id(1), profile, 10).await;
    update(&store, user_id(1), role(Role::Admin), 11).await;
    let same = update(&store, user_id(1), address("ADA@Example.com"), 12).await;
    assert!(same.email_verified, "the same address is no change");
    for n in [1, 2] {
        assert_eq!(
            used_at(&store, n).await,
            None,
            "token {n}: no change of address"
        );
    }

    let stale = as_users(&store)
        .update(
            user_id(1),
            address("countess@example.org"),
            Some(1),
            at(13),
            journal(13, AuditAction::UserUpdated),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::StaleVersion)),
        "a stale version: {stale:?}"
    );
    let taken = as_users(&store)
        .update(
            user_id(1),
            address("carol@example.com"),
            None,
            at(14),
            journal(14, AuditAction::UserUpdated),
        )
        .await;
    assert!(
        matches!(taken, Err(StoreError::Duplicate(UniqueField::Email))),
        "a taken address: {taken:?}"
    );
    for n in [1, 2] {
        assert_eq!(
            used_at(&store, n).await,
            None,
            "token {n}: a refused change of address spends nothing"
        );
    }
    assert_no_events(&store, "the refused changes wrote no journal").await;

    assert!(
        store
            .verify_email(&token(2), user_id(1), at(20), Journal::default())
            .await
            .expect("verify_email"),
        "the verification link still works"
    );
    assert!(
        store
            .reset_password(
                &token(1),
                user_id(1),
                password_hash("reset"),
                at(21),
                Journal::default()
            )
            .await
            .expect("reset_password")
            .is_some(),
        "the reset link still works"
    );
}

/// A change of address racing a reset and a verification with the old address's tokens:
/// every call succeeds (none fails on a lock conflict between them), and whatever the order,
/// the user ends with the new address unverified (a reset or verification that came first is
/// undone by the change's unverifying, one that came after is refused), the old tokens spent,
/// and the new address's token spendable. Repeated with several users so that the calls
/// really overlap.
pub async fn an_address_change_racing_a_reset_and_a_verification_is_serialised<S>(store: S)
where
    S: Store,
{
    const ROUNDS: u128 = 8;
    let store = std::sync::Arc::new(store);
    for round in 0..ROUNDS {
        let user = 10 + round;
        let (reset_token, verify_token, fresh_token) = (100 * user, 100 * user + 1, 100 * user + 2);
        insert(
            store.as_ref(),
            new_user(
                user,
                &format!("old{round}@example.com"),
                &format!("racer{round}"),
            ),
        )
        .await;
        issue(
            store.as_ref(),
            action_token(
                reset_token,
                user_id(user),
                ActionPurpose::ResetPassword,
                0,
                1000,
            ),
        )
        .await;
        issue(
            store.as_ref(),
            action_token(
                verify_token,
                user_id(user),
                ActionPurpose::VerifyEmail,
                0,
                1000,
            ),
        )
        .await;
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(3));
        let change = tokio::spawn({
            let (store, start) = (std::sync::Arc::clone(&store), std::sync::Arc::clone(&start));
            async move {
                start.wait().await;
                let fresh = action_token(
                    fresh_token,
                    user_id(user),
                    ActionPurpose::VerifyEmail,
                    10,
                    1000,
                );
                as_users(store.as_ref())
                    .update(
                        user_id(user),
                        address(&format!("new{round}@example.com")),
                        None,
                        at(10),
                        Journal::default().with_token(fresh),
                    )
                    .await
                    .map(drop)
            }
        });
        let reset = tokio::spawn({
            let (store, start) = (std::sync::Arc::clone(&store), std::sync::Arc::clone(&start));
            async move {
                start.wait().await;
                store
                    .reset_password(
                        &token(reset_token),
                        user_id(user),
                        password_hash("reset"),
                        at(10),
                        Journal::default(),
                    )
                    .await
            }
        });
        let verification = tokio::spawn({
            let (store, start) = (std::sync::Arc::clone(&store), std::sync::Arc::clone(&start));
            async move {
                start.wait().await;
                store
                    .verify_email(
                        &token(verify_token),
                        user_id(user),
                        at(10),
                        Journal::default(),
                    )
                    .await
            }
        });
        let changed = change.await.expect("task");
        let reset = reset.await.expect("task");
        let verified = verification.await.expect("task");
        assert!(
            changed.is_ok() && reset.is_ok() && verified.is_ok(),
            "round {round}: every call succeeds: {changed:?}, {reset:?}, {verified:?}"
        );
        let credentials = store
            .find_credentials_by_id(user_id(user))
            .await
            .expect("find_credentials_by_id")
            .expect("the user exists");
        assert_eq!(
            credentials.user.email,
            email(&format!("new{round}@example.com")),
            "round {round}"
        );
        assert!(
            !credentials.user.email_verified,
            "round {round}: no link of the old address verified the new one ({reset:?}, {verified:?})"
        );
        let reset_applied = matches!(reset, Ok(Some(_)));
        assert_eq!(
            credentials.password_hash,
            if reset_applied {
                password_hash("reset")
            } else {
                password_hash(&format!("user-{user}"))
            },
            "round {round}: the password is the reset's exactly when the reset succeeded"
        );
        for n in [reset_token, verify_token] {
            assert_eq!(
                used_at(store.as_ref(), n).await,
                Some(at(10)),
                "round {round}: old token {n} is spent, by its call or by the change"
            );
        }
        assert_eq!(
            used_at(store.as_ref(), fresh_token).await,
            None,
            "round {round}: the new address's token is unspent"
        );
    }
}

/// `password_changed_at` is when the password was last set: the creation time for `insert`,
/// `insert_many` and a tenant's new admin, `at` for `change_password` and `reset_password`;
/// nothing else moves it (a profile change, a login, a refused reset), and every read
/// (`find_by_id`, both `find_credentials`, `list`) reports it, to the microsecond.
pub async fn password_changed_at_is_when_the_password_was_last_set<S>(store: S)
where
    S: Store,
{
    let created = at(7) + chrono::TimeDelta::microseconds(123_456);
    let ada = insert(
        &store,
        NewUser {
            created_at: created,
            ..new_user(1, "ada@example.com", "ada")
        },
    )
    .await;
    assert_eq!(ada.password_changed_at, created, "insert returns it");
    assert_eq!(
        find_user(&store, user_id(1)).await.password_changed_at,
        created
    );

    as_users(&store)
        .insert_many(
            vec![
                NewUser {
                    created_at: at(8),
                    ..new_user(2, "bob@example.com", "bob")
                },
                NewUser {
                    created_at: at(8),
                    ..new_user(3, "cyrus@example.com", "cyrus")
                },
            ],
            Journal::default(),
        )
        .await
        .expect("insert_many");
    for n in [2, 3] {
        assert_eq!(
            find_user(&store, user_id(n)).await.password_changed_at,
            at(8),
            "insert_many, user {n}"
        );
    }
    create_tenant(
        &store,
        new_tenant(1, "lab", 9),
        Some(TenantAdmin::New(NewUser {
            created_at: at(9),
            ..new_user(4, "dee@example.com", "dee")
        })),
    )
    .await;
    assert_eq!(
        find_user(&store, user_id(4)).await.password_changed_at,
        at(9),
        "a tenant's new admin"
    );

    let renamed = update(
        &store,
        user_id(1),
        UserChanges {
            profile: ProfileChanges {
                first_name: Some(name("Augusta")),
                ..ProfileChanges::default()
            },
            ..UserChanges::default()
        },
        20,
    )
    .await;
    assert_eq!(renamed.updated_at, at(20));
    assert_eq!(
        renamed.password_changed_at, created,
        "a profile change is no password change"
    );
    create(&store, new_session(1, user_id(1), 25, 1000)).await;
    assert_eq!(
        find_user(&store, user_id(1)).await.password_changed_at,
        created,
        "a login is no password change"
    );

    store
        .change_password(
            user_id(1),
            password_hash("user-1"),
            password_hash("changed"),
            Some(session_id(1)),
            at(30),
            Journal::default(),
        )
        .await
        .expect("change_password");
    let changed = find_user(&store, user_id(1)).await;
    assert_eq!(changed.password_changed_at, at(30), "change_password");
    assert_eq!(changed.updated_at, at(30));
    let by_id = store
        .find_credentials_by_id(user_id(1))
        .await
        .expect("find_credentials_by_id")
        .expect("exists");
    assert_eq!(by_id.user, changed);
    let by_login = store
        .find_credentials(&Login::Email(email("ada@example.com")))
        .await
        .expect("find_credentials")
        .expect("exists");
    assert_eq!(by_login.user, changed);
    assert_eq!(
        find_user(&store, user_id(2)).await.password_changed_at,
        at(8),
        "another user's is untouched"
    );

    issue(
        &store,
        action_token(1, user_id(1), ActionPurpose::ResetPassword, 30, 100),
    )
    .await;
    store
        .reset_password(
            &token(1),
            user_id(1),
            password_hash("reset"),
            at(40),
            Journal::default(),
        )
        .await
        .expect("reset_password")
        .expect("the token is spendable");
    let reset = find_user(&store, user_id(1)).await;
    assert_eq!(reset.password_changed_at, at(40), "reset_password");
    let refused = store
        .reset_password(
            &token(1),
            user_id(1),
            password_hash("again"),
            at(50),
            Journal::default(),
        )
        .await
        .expect("reset_password");
    assert_eq!(refused, None);
    assert_eq!(
        find_user(&store, user_id(1)).await.password_changed_at,
        at(40),
        "a refused reset sets nothing"
    );

    let listed = as_users(&store)
        .list(UserFilter::default(), UserSort::CreatedAt, ALL)
        .await
        .expect("list");
    let mut times: Vec<_> = listed
        .items
        .iter()
        .map(|user| (user.id, user.password_changed_at))
        .collect();
    times.sort();
    assert_eq!(
        times,
        vec![
            (user_id(1), at(40)),
            (user_id(2), at(8)),
            (user_id(3), at(8)),
            (user_id(4), at(9)),
        ],
        "list"
    );
}

/// `reset_password` spends, with the presented token, every other unspent reset token of the
/// user (expired or not), so that an older reset mail cannot set the password again over the
/// one just set; the user's verification tokens and another user's reset tokens are left
/// alone, and a reset token spent earlier keeps its time.
pub async fn reset_password_spends_every_other_reset_token_of_the_user<S>(store: S)
where
    S: Store,
{
    let reset = ActionPurpose::ResetPassword;
    let verify = ActionPurpose::VerifyEmail;
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    // Token 6 is spent by a first reset, before the others are issued.
    issue(&store, action_token(6, user_id(1), reset, 0, 1000)).await;
    assert!(
        store
            .reset_password(
                &token(6),
                user_id(1),
                password_hash("first"),
                at(10),
                Journal::default()
            )
            .await
            .expect("reset_password")
            .is_some()
    );
    // Three reset mails (one a cooldown), one of them expired; a verification; Bob's reset.
    issue(&store, action_token(1, user_id(1), reset, 20, 1000)).await;
    issue(&store, action_token(2, user_id(1), reset, 30, 1000)).await;
    issue(&store, action_token(3, user_id(1), reset, 15, 40)).await;
    issue(&store, action_token(4, user_id(1), verify, 20, 1000)).await;
    issue(&store, action_token(5, user_id(2), reset, 20, 1000)).await;

    let revoked = store
        .reset_password(
            &token(2),
            user_id(1),
            password_hash("owner"),
            at(50),
            mailing(
                50,
                AuditAction::UserPasswordReset,
                MailKind::PasswordChanged,
            ),
        )
        .await
        .expect("reset_password");
    assert!(revoked.is_some(), "the owner's reset with the newest mail");
    for (n, spent, why) in [
        (
            1,
            Some(at(50)),
            "an older reset token is spent with the reset",
        ),
        (2, Some(at(50)), "the presented token"),
        (3, Some(at(50)), "an expired unspent reset token too"),
        (4, None, "a verification token is left alone"),
        (5, None, "another user's reset token is left alone"),
        (6, Some(at(10)), "a token spent before keeps its time"),
    ] {
        assert_eq!(used_at(&store, n).await, spent, "token {n}: {why}");
    }
    let after = find_user(&store, user_id(1)).await;

    let again = store
        .reset_password(
            &token(1),
            user_id(1),
            password_hash("attacker"),
            at(51),
            mailing(
                51,
                AuditAction::UserPasswordReset,
                MailKind::PasswordChanged,
            ),
        )
        .await
        .expect("reset_password");
    assert_eq!(again, None, "the older reset mail is refused");
    let credentials = store
        .find_credentials_by_id(user_id(1))
        .await
        .expect("find_credentials_by_id")
        .expect("the user exists");
    assert_eq!(credentials.password_hash, password_hash("owner"));
    assert_eq!(credentials.user, after, "the refused reset wrote nothing");
    assert_eq!(event_ids(&store).await, vec![event_id(50)]);
    assert_eq!(claimed_ids(&store, LATER).await, vec![mail_id(50)]);

    assert!(
        store
            .verify_email(&token(4), user_id(1), at(52), Journal::default())
            .await
            .expect("verify_email"),
        "the verification token still works"
    );
    assert!(
        store
            .reset_password(
                &token(5),
                user_id(2),
                password_hash("bob-reset"),
                at(53),
                Journal::default()
            )
            .await
            .expect("reset_password")
            .is_some(),
        "another user's reset token still works"
    );
}

/// `change_password` spends every unspent reset token of the user in its transaction, so that
/// a reset mail sent before cannot set the password over the one the owner just chose; the
/// user's verification tokens and another user's reset tokens are left alone. A refused
/// change (an unknown user) spends nothing.
pub async fn change_password_spends_the_users_unspent_reset_tokens<S>(store: S)
where
    S: Store,
{
    let reset = ActionPurpose::ResetPassword;
    let verify = ActionPurpose::VerifyEmail;
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    issue(&store, action_token(1, user_id(1), reset, 0, 1000)).await;
    issue(&store, action_token(2, user_id(1), reset, 10, 1000)).await;
    issue(&store, action_token(3, user_id(1), verify, 0, 1000)).await;
    issue(&store, action_token(4, user_id(2), reset, 0, 1000)).await;

    let unknown = store
        .change_password(
            user_id(9),
            password_hash("user-9"),
            password_hash("nobody"),
            None,
            at(20),
            Journal::default(),
        )
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound)),
        "an unknown user: {unknown:?}"
    );
    for n in 1..=4 {
        assert_eq!(
            used_at(&store, n).await,
            None,
            "token {n}: a refused change spends nothing"
        );
    }

    store
        .change_password(
            user_id(1),
            password_hash("user-1"),
            password_hash("changed"),
            Some(session_id(1)),
            at(30),
            journal(30, AuditAction::UserPasswordChanged),
        )
        .await
        .expect("change_password");
    for (n, spent, why) in [
        (1, Some(at(30)), "a reset token is spent by the change"),
        (2, Some(at(30)), "every reset token"),
        (3, None, "a verification token is left alone"),
        (4, None, "another user's reset token is left alone"),
    ] {
        assert_eq!(used_at(&store, n).await, spent, "token {n}: {why}");
    }
    let after = find_user(&store, user_id(1)).await;

    let reset_after = store
        .reset_password(
            &token(1),
            user_id(1),
            password_hash("attacker"),
            at(31),
            journal(31, AuditAction::UserPasswordReset),
        )
        .await
        .expect("reset_password");
    assert_eq!(
        reset_after, None,
        "a reset mail sent before the change is refused"
    );
    let credentials = store
        .find_credentials_by_id(user_id(1))
        .await
        .expect("find_credentials_by_id")
        .expect("the user exists");
    assert_eq!(credentials.password_hash, password_hash("changed"));
    assert_eq!(credentials.user, after, "the refused reset wrote nothing");
    assert_eq!(
        find_session(&store, session_id(1)).await.revoked_at,
        None,
        "the refused reset revoked nothing"
    );
    assert_eq!(event_ids(&store).await, vec![event_id(30)]);

    assert!(
        store
            .verify_email(&token(3), user_id(1), at(32), Journal::default())
            .await
            .expect("verify_email"),
        "the verification token still works"
    );
    assert!(
        store
            .reset_password(
                &token(4),
                user_id(2),
                password_hash("bob-reset"),
                at(33),
                Journal::default()
            )
            .await
            .expect("reset_password")
            .is_some(),
        "another user's reset token still works"
    );
}

/// `issue_action_token` for an address that is not (any more) the user's, or for an inactive
/// user, is `Stale` and writes nothing: no token, no event, no message. This is checked before
/// the cooldown. For the user's current address it issues.
pub async fn issue_action_token_for_a_stale_address_or_an_inactive_user_writes_nothing<S>(store: S)
where
    S: Store,
{
    let reset = ActionPurpose::ResetPassword;
    let verify = ActionPurpose::VerifyEmail;
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    insert(&store, new_user(3, "cyrus@example.com", "cyrus")).await;
    // Ada's address changes after a caller read her user; Bob is deactivated; Cyrus has a
    // token within the cooldown.
    update(&store, user_id(1), address("countess@example.org"), 10).await;
    update(&store, user_id(2), activity(false), 10).await;
    issue(&store, action_token(9, user_id(3), reset, 15, 1000)).await;
    for (n, user, to, purpose, quiet_since, why) in [
        (
            1,
            1,
            "ada@example.com",
            reset,
            None,
            "the old address, a reset",
        ),
        (
            2,
            1,
            "ada@example.com",
            verify,
            Some(0),
            "the old address, a verification",
        ),
        (
            3,
            1,
            "bob@example.com",
            reset,
            None,
            "another user's address",
        ),
        (4, 2, "bob@example.com", reset, None, "an inactive user"),
        (
            5,
            2,
            "bob@example.com",
            verify,
            Some(0),
            "an inactive user, a verification",
        ),
        (
            6,
            3,
            "someone@example.com",
            reset,
            Some(10),
            "a stale address within the cooldown: stale first",
        ),
    ] {
        let outcome = store
            .issue_action_token(
                action_token(n, user_id(user), purpose, 20, 1000),
                &email(to),
                quiet_since.map(at),
                mailing(
                    n,
                    AuditAction::UserPasswordResetRequested,
                    MailKind::PasswordReset,
                ),
            )
            .await
            .expect("issue_action_token");
        assert_eq!(outcome, IssueOutcome::Stale, "token {n}: {why}");
        assert!(!stored(&store, n).await, "token {n}: no token, {why}");
    }
    assert_no_events(&store, "a stale issue writes no journal").await;
    assert_no_mail(&store, "a stale issue queues no mail").await;

    let current = store
        .issue_action_token(
            action_token(7, user_id(1), reset, 20, 1000),
            &email("countess@example.org"),
            Some(at(0)),
            mailing(
                7,
                AuditAction::UserPasswordResetRequested,
                MailKind::PasswordReset,
            ),
        )
        .await
        .expect("issue_action_token");
    assert_eq!(current, IssueOutcome::Issued, "the current address");
    assert!(stored(&store, 7).await);
    assert_eq!(event_ids(&store).await, vec![event_id(7)]);
    assert_eq!(claimed_ids(&store, LATER).await, vec![mail_id(7)]);
}

/// An issue for the user's address racing a change of that address: whichever comes first, no
/// live token for the old address is left. Either the issue is `Stale` and stores nothing, or
/// it is `Issued` and the change, serialised after it, spends the token. Repeated with several
/// users so that the calls really overlap.
pub async fn an_issue_racing_an_address_change_leaves_no_live_token_for_the_old_address<S>(store: S)
where
    S: Store,
{
    const ROUNDS: u128 = 8;
    let store = std::sync::Arc::new(store);
    let mut issued = 0;
    for round in 0..ROUNDS {
        let user = 10 + round;
        let old = format!("old{round}@example.com");
        insert(
            store.as_ref(),
            new_user(user, &old, &format!("racer{round}")),
        )
        .await;
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let change = tokio::spawn({
            let (store, start) = (std::sync::Arc::clone(&store), std::sync::Arc::clone(&start));
            async move {
                start.wait().await;
                as_users(store.as_ref())
                    .update(
                        user_id(user),
                        address(&format!("new{round}@example.com")),
                        None,
                        at(10),
                        Journal::default(),
                    )
                    .await
                    .map(drop)
            }
        });
        let issue = tokio::spawn({
            let (store, start) = (std::sync::Arc::clone(&store), std::sync::Arc::clone(&start));
            async move {
                start.wait().await;
                store
                    .issue_action_token(
                        action_token(user, user_id(user), ActionPurpose::ResetPassword, 5, 1000),
                        &email(&old),
                        Some(at(0)),
                        mailing(
                            user,
                            AuditAction::UserPasswordResetRequested,
                            MailKind::PasswordReset,
                        ),
                    )
                    .await
            }
        });
        let changed = change.await.expect("task");
        let outcome = issue.await.expect("task");
        assert!(changed.is_ok(), "round {round}: the change: {changed:?}");
        match outcome {
            Ok(IssueOutcome::Issued) => {
                issued += 1;
                assert_eq!(
                    used_at(store.as_ref(), user).await,
                    Some(at(10)),
                    "round {round}: issued first, the token is spent by the change"
                );
            }
            Ok(IssueOutcome::Stale) => assert!(
                !stored(store.as_ref(), user).await,
                "round {round}: the change came first, no token"
            ),
            other => panic!("round {round}: Issued or Stale, got {other:?}"),
        }
    }
    assert_eq!(
        events(store.as_ref()).await.len(),
        issued,
        "a journal for every issued token only"
    );
}

/// Panics unless Ada (`user_id(1)`) is exactly `before`, with the password hash `hash`, her
/// sessions `live` unrevoked and her reset token `token(1)` unspent, and no event and no
/// message is stored: what a refused `change_password` leaves. `why` names the case.
async fn assert_change_refused<S: Store>(
    store: &S,
    result: Result<Vec<SessionId>, StoreError>,
    before: &User,
    hash: &str,
    live: &[u128],
    why: &str,
) {
    assert!(
        matches!(result, Err(StoreError::Changed)),
        "{why}: expected Changed, got {result:?}"
    );
    let credentials = store
        .find_credentials_by_id(user_id(1))
        .await
        .expect("find_credentials_by_id")
        .expect("the user exists");
    assert_eq!(
        credentials.password_hash,
        password_hash(hash),
        "{why}: the hash stays"
    );
    assert_eq!(
        &credentials.user, before,
        "{why}: nothing written (version, updated_at, password_changed_at)"
    );
    for &n in live {
        assert_eq!(
            find_session(store, session_id(n)).await.revoked_at,
            None,
            "{why}: session {n} is not revoked"
        );
    }
    assert_eq!(
        used_at(store, 1).await,
        None,
        "{why}: the reset token is not spent"
    );
    assert_no_events(store, why).await;
    assert_no_mail(store, why).await;
}

/// `change_password` re-checks, inside its transaction, what the caller confirmed: with an
/// `expected` hash that is not (or no longer) the user's (a reset or another change came in
/// between), for an inactive user, or keeping a session that is revoked, another user's or
/// unknown, it is `Changed` and writes nothing (not the hash, the version or
/// `password_changed_at`; no session revoked, no reset token spent, no event, no mail). With
/// the user's hash, active, keeping a session of theirs that is unrevoked (expired or not),
/// it changes the password as before.
pub async fn change_password_with_a_stale_confirmation_writes_nothing_and_is_changed<S>(store: S)
where
    S: Store,
{
    let changing = |n| {
        mailing(
            n,
            AuditAction::UserPasswordChanged,
            MailKind::PasswordChanged,
        )
    };
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    let cyrus = insert(&store, user_n(3, Role::User, false)).await;
    // Ada's sessions: 1 live, 2 revoked, 3 expired but never revoked; Bob's: 4.
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    create(&store, new_session(2, user_id(1), 0, 1000)).await;
    create(&store, new_session(3, user_id(1), 0, 5)).await;
    create(&store, new_session(4, user_id(2), 0, 1000)).await;
    assert!(
        store
            .revoke(user_id(1), session_id(2), at(2), Journal::default())
            .await
            .expect("revoke")
    );
    issue(
        &store,
        action_token(1, user_id(1), ActionPurpose::ResetPassword, 0, 1000),
    )
    .await;
    let before = find_user(&store, user_id(1)).await;

    let refused: [(&str, u128, Option<u128>, &str); 5] = [
        (
            "never-the-users",
            1,
            Some(1),
            "a hash that is not the user's",
        ),
        ("user-1", 1, Some(2), "keeping a revoked session"),
        ("user-1", 1, Some(4), "keeping another user's session"),
        ("user-1", 1, Some(99), "keeping an unknown session"),
        ("user-3", 3, None, "an inactive user"),
    ];
    for (n, (expected, user, keep, why)) in (1..).zip(refused) {
        let result = store
            .change_password(
                user_id(user),
                password_hash(expected),
                password_hash("attacker"),
                keep.map(session_id),
                at(20),
                changing(n),
            )
            .await;
        assert_change_refused(&store, result, &before, "user-1", &[1, 3], why).await;
        assert_eq!(
            find_user(&store, user_id(3)).await,
            cyrus,
            "{why}: the inactive user is untouched"
        );
        assert_eq!(find_session(&store, session_id(4)).await.revoked_at, None);
    }

    // The race: Ada's password is confirmed by whoever holds session 1; the owner resets it
    // meanwhile (ending session 1). The change confirmed against the old hash is refused,
    // with or without the session it came from.
    issue(
        &store,
        action_token(2, user_id(1), ActionPurpose::ResetPassword, 25, 1000),
    )
    .await;
    store
        .reset_password(
            &token(2),
            user_id(1),
            password_hash("owner"),
            at(30),
            Journal::default(),
        )
        .await
        .expect("reset_password")
        .expect("the token is spendable");
    let after_reset = find_user(&store, user_id(1)).await;
    for keep in [Some(session_id(1)), None] {
        let result = store
            .change_password(
                user_id(1),
                password_hash("user-1"),
                password_hash("attacker"),
                keep,
                at(31),
                changing(31),
            )
            .await;
        assert!(
            matches!(result, Err(StoreError::Changed)),
            "a change confirmed before a reset, keeping {keep:?}: expected Changed, got \
             {result:?}"
        );
        let credentials = store
            .find_credentials_by_id(user_id(1))
            .await
            .expect("find_credentials_by_id")
            .expect("the user exists");
        assert_eq!(credentials.password_hash, password_hash("owner"));
        assert_eq!(credentials.user, after_reset, "nothing written");
    }

    // The owner signs in with the new password and changes it again; a change confirmed
    // against the password set by the reset is refused too.
    let mut owner = new_session(5, user_id(1), 32, 1000);
    owner.verified_password = password_hash("owner");
    create(&store, owner).await;
    store
        .change_password(
            user_id(1),
            password_hash("owner"),
            password_hash("owner-2"),
            Some(session_id(5)),
            at(40),
            Journal::default(),
        )
        .await
        .expect("the owner's change");
    let after_change = find_user(&store, user_id(1)).await;
    let result = store
        .change_password(
            user_id(1),
            password_hash("owner"),
            password_hash("attacker"),
            Some(session_id(5)),
            at(41),
            changing(41),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Changed)),
        "a change confirmed before another change: expected Changed, got {result:?}"
    );
    assert_eq!(find_user(&store, user_id(1)).await, after_change);
    assert_no_events(&store, "refused changes write no journal").await;
    assert_no_mail(&store, "refused changes queue no mail").await;

    // The happy path, keeping an expired session that was never revoked (its access token
    // may outlive it).
    let mut expiring = new_session(6, user_id(1), 42, 43);
    expiring.verified_password = password_hash("owner-2");
    create(&store, expiring).await;
    let revoked = store
        .change_password(
            user_id(1),
            password_hash("owner-2"),
            password_hash("newest"),
            Some(session_id(6)),
            at(50),
            changing(50),
        )
        .await
        .expect("a change confirmed against the current hash");
    assert_eq!(revoked, vec![session_id(5)]);
    let credentials = store
        .find_credentials_by_id(user_id(1))
        .await
        .expect("find_credentials_by_id")
        .expect("the user exists");
    assert_eq!(credentials.password_hash, password_hash("newest"));
    assert_eq!(credentials.user.password_changed_at, at(50));
    assert_eq!(credentials.user.version, after_change.version + 1);
    assert_eq!(find_session(&store, session_id(6)).await.revoked_at, None);
    assert_eq!(event_ids(&store).await, vec![event_id(50)]);
    assert_eq!(claimed_ids(&store, LATER).await, vec![mail_id(50)]);
}

/// `delete` with `expected_password` (a self-service deletion) re-checks it inside its
/// transaction: a hash that is no longer the user's (reset or changed since it was
/// confirmed), or an inactive user, is `Changed`, checked before the administrator guards,
/// and deletes nothing (the user, their sessions, tokens and memberships stay; no event).
/// With the user's current hash it deletes as an administrator's deletion does; an unknown
/// user is `NotFound`; without `expected_password` the inactive user is deleted.
pub async fn a_guarded_delete_with_a_stale_password_deletes_nothing_and_is_changed<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, user_n(2, Role::Admin, true)).await;
    insert(&store, user_n(3, Role::User, false)).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    create_tenant(&store, new_tenant(1, "lab", 0), None).await;
    add_member(&store, tenant_id(1), user_id(1), TenantRole::Member, 1).await;
    issue(
        &store,
        action_token(1, user_id(1), ActionPurpose::VerifyEmail, 0, 1000),
    )
    .await;
    issue(
        &store,
        action_token(2, user_id(1), ActionPurpose::ResetPassword, 0, 1000),
    )
    .await;
    let refused = |user: u128, expected: &'static str, n: u128| {
        let store = store.clone();
        async move {
            as_users(&store)
                .delete(
                    user_id(user),
                    Some(password_hash(expected)),
                    journal(n, AuditAction::UserDeleted),
                )
                .await
        }
    };
    let assert_ada_stays = |why: &'static str| {
        let store = store.clone();
        async move {
            assert!(
                store.find_by_id(user_id(1)).await.expect("find").is_some(),
                "{why}: the user stays"
            );
            assert!(
                as_sessions(&store)
                    .find(session_id(1))
                    .await
                    .expect("find")
                    .is_some(),
                "{why}: the session stays"
            );
            assert!(
                store
                    .find_action_token(&token(1))
                    .await
                    .expect("find_action_token")
                    .is_some(),
                "{why}: the tokens stay"
            );
            assert_eq!(
                store
                    .role_of(tenant_id(1), user_id(1))
                    .await
                    .expect("role_of"),
                Some(TenantRole::Member),
                "{why}: the membership stays"
            );
            assert_no_events(&store, why).await;
        }
    };

    // Confirmed, then the owner resets the password: the deletion is refused.
    store
        .reset_password(
            &token(2),
            user_id(1),
            password_hash("owner"),
            at(10),
            Journal::default(),
        )
        .await
        .expect("reset_password")
        .expect("the token is spendable");
    let result = refused(1, "user-1", 1).await;
    assert!(
        matches!(result, Err(StoreError::Changed)),
        "a deletion confirmed before a reset: expected Changed, got {result:?}"
    );
    assert_ada_stays("a deletion confirmed before a reset").await;

    // Confirmed, then the password is changed: refused too.
    store
        .change_password(
            user_id(1),
            password_hash("owner"),
            password_hash("owner-2"),
            None,
            at(20),
            Journal::default(),
        )
        .await
        .expect("change_password");
    let result = refused(1, "owner", 2).await;
    assert!(
        matches!(result, Err(StoreError::Changed)),
        "a deletion confirmed before a change: expected Changed, got {result:?}"
    );
    assert_ada_stays("a deletion confirmed before a change").await;

    // The last active system administrator: the stale password is reported first.
    let admin = find_user(&store, user_id(2)).await;
    let result = refused(2, "never-the-users", 3).await;
    assert!(
        matches!(result, Err(StoreError::Changed)),
        "a stale password before the last-administrator guard: expected Changed, got \
         {result:?}"
    );
    let result = refused(2, "user-2", 4).await;
    assert!(
        matches!(result, Err(StoreError::LastAdmin(LastAdmin::System))),
        "with the right password, the guard: expected LastAdmin(System), got {result:?}"
    );
    assert_eq!(
        find_user(&store, user_id(2)).await,
        admin,
        "nothing written"
    );

    // An inactive user, with the right password.
    let result = refused(3, "user-3", 5).await;
    assert!(
        matches!(result, Err(StoreError::Changed)),
        "an inactive user: expected Changed, got {result:?}"
    );
    assert!(
        store.find_by_id(user_id(3)).await.expect("find").is_some(),
        "the inactive user stays"
    );
    let result = refused(9, "user-9", 6).await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "an unknown user: expected NotFound, got {result:?}"
    );
    assert_ada_stays("refused deletions").await;

    // An administrator's deletion checks no password.
    as_users(&store)
        .delete(user_id(3), None, Journal::default())
        .await
        .expect("an administrator deletes an inactive user");
    assert_eq!(store.find_by_id(user_id(3)).await.expect("find"), None);

    // With the password as it is now, Ada's own deletion goes through.
    as_users(&store)
        .delete(
            user_id(1),
            Some(password_hash("owner-2")),
            journal(7, AuditAction::UserDeleted),
        )
        .await
        .expect("a deletion confirmed against the current hash");
    assert_eq!(store.find_by_id(user_id(1)).await.expect("find"), None);
    assert_eq!(
        as_sessions(&store).find(session_id(1)).await.expect("find"),
        None,
        "the session went with the user"
    );
    assert_eq!(event_ids(&store).await, vec![event_id(7)]);
}

/// A password reset racing a `change_password` confirmed against the old hash (what someone
/// who stole a session and knows the old password would keep in flight): of the two, exactly
/// one takes effect, and the change never commits after the reset. Either the reset comes
/// first (and the change is `Changed`, the reset's hash stays, the stolen session stays
/// revoked), or the change does (and spends the reset token, so the reset is refused). And
/// two changes confirmed against the same hash: exactly one commits, the other is `Changed`.
/// Each journal is written only with its change. Repeated over 16 users so that the calls
/// really overlap.
pub async fn a_reset_racing_a_change_confirmed_against_the_old_password_never_loses_to_it<S>(
    store: S,
) where
    S: Store,
{
    const ROUNDS: u128 = 16;
    let store = std::sync::Arc::new(store);
    let mut expected_events = Vec::new();
    for n in 1..=ROUNDS {
        insert(
            store.as_ref(),
            new_user(n, &format!("user{n}@example.com"), &format!("user{n}")),
        )
        .await;
        create(store.as_ref(), new_session(n, user_id(n), 0, 1000)).await;
        issue(
            store.as_ref(),
            action_token(n, user_id(n), ActionPurpose::ResetPassword, 0, 1000),
        )
        .await;
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let reset = tokio::spawn({
            let (store, start) = (std::sync::Arc::clone(&store), std::sync::Arc::clone(&start));
            async move {
                start.wait().await;
                store
                    .reset_password(
                        &token(n),
                        user_id(n),
                        password_hash("reset"),
                        at(10),
                        journal(100 * n + 1, AuditAction::UserPasswordReset),
                    )
                    .await
            }
        });
        let change = tokio::spawn({
            let (store, start) = (std::sync::Arc::clone(&store), std::sync::Arc::clone(&start));
            async move {
                start.wait().await;
                store
                    .change_password(
                        user_id(n),
                        password_hash(&format!("user-{n}")),
                        password_hash("attacker"),
                        Some(session_id(n)),
                        at(10),
                        journal(100 * n + 2, AuditAction::UserPasswordChanged),
                    )
                    .await
            }
        });
        let reset = reset.await.expect("task").expect("reset_password");
        let change = change.await.expect("task");
        let stored = store
            .find_credentials_by_id(user_id(n))
            .await
            .expect("find_credentials_by_id")
            .expect("the user exists")
            .password_hash;
        match (reset, change) {
            (Some(revoked), Err(StoreError::Changed)) => {
                assert_eq!(stored, password_hash("reset"), "user {n}: the reset stays");
                assert_eq!(revoked, vec![session_id(n)], "user {n}");
                assert_eq!(
                    find_session(store.as_ref(), session_id(n)).await.revoked_at,
                    Some(at(10)),
                    "user {n}: the stolen session stays revoked"
                );
                expected_events.push(event_id(100 * n + 1));
            }
            (None, Ok(revoked)) => {
                assert_eq!(stored, password_hash("attacker"), "user {n}");
                assert!(revoked.is_empty(), "user {n}: {revoked:?}");
                assert_eq!(
                    used_at(store.as_ref(), n).await,
                    Some(at(10)),
                    "user {n}: the change came first and spent the reset token"
                );
                expected_events.push(event_id(100 * n + 2));
            }
            (reset, change) => panic!(
                "user {n}: exactly one of the reset and the change takes effect, got \
                 reset {reset:?} and change {change:?}"
            ),
        }
    }
    for n in ROUNDS + 1..=2 * ROUNDS {
        insert(
            store.as_ref(),
            new_user(n, &format!("user{n}@example.com"), &format!("user{n}")),
        )
        .await;
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let changes: Vec<_> = [1, 2]
            .map(|i| {
                let (store, start) = (std::sync::Arc::clone(&store), std::sync::Arc::clone(&start));
                tokio::spawn(async move {
                    start.wait().await;
                    store
                        .change_password(
                            user_id(n),
                            password_hash(&format!("user-{n}")),
                            password_hash(&format!("change-{i}")),
                            None,
                            at(20),
                            journal(100 * n + i, AuditAction::UserPasswordChanged),
                        )
                        .await
                })
            })
            .into_iter()
            .collect();
        let mut won = Vec::new();
        for (i, change) in (1..).zip(changes) {
            match change.await.expect("task") {
                Ok(_) => won.push(i),
                Err(StoreError::Changed) => {}
                Err(other) => panic!("user {n}: expected Ok or Changed, got {other:?}"),
            }
        }
        let [winner] = won.as_slice() else {
            panic!("user {n}: exactly one of two changes of the same hash commits: {won:?}");
        };
        let stored = store
            .find_credentials_by_id(user_id(n))
            .await
            .expect("find_credentials_by_id")
            .expect("the user exists")
            .password_hash;
        assert_eq!(
            stored,
            password_hash(&format!("change-{winner}")),
            "user {n}"
        );
        expected_events.push(event_id(100 * n + winner));
    }
    let mut stored = event_ids(store.as_ref()).await;
    stored.sort();
    expected_events.sort();
    assert_eq!(
        stored, expected_events,
        "a journal with each change that took effect only"
    );
}
