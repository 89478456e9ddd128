//! Contract checks for the administrators' side of `UserStore`: `update` of e-mail, role and
//! activity (with the last-administrator guards), `delete`, and the searchable, sortable,
//! paginated `list`. The conventions and decisions are those of [`stores`](super::stores).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::model::{
    AuditAction, AuditEvent, AuditTarget, Journal, NewUser, PersonName, ProfileChanges,
    RefreshRotation, Role, SessionId, TenantRef, TenantRole, User, UserId,
};
use domain::ports::{
    ActionPurpose, ActionToken, LastAdmin, Login, SessionStore, StoreError, TenantAdmin,
    TenantStore, UniqueField, UserChanges, UserFilter, UserSort, UserStore,
};

use super::fixtures::{
    ALL, Store, add_member, as_sessions, as_tenants, as_users, assert_no_events, at, create,
    create_tenant, email, event, events, find_session, find_user, insert, journal, name,
    new_session, new_tenant, new_user, page, session_id, sorted, tenant_id, token, user_id, user_n,
    username,
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

    create(&store, new_session(5, user_id(1), 20, 1000)).await;
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
    assert_eq!(
        again.revoked,
        vec![session_id(5)],
        "Some(false) revokes whatever the user's activity was"
    );
    assert_eq!(
        find_session(&store, session_id(5)).await.revoked_at,
        Some(at(30))
    );
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
    store
        .insert_action_token(ActionToken {
            hash: token(10),
            user_id: user_id(1),
            purpose: ActionPurpose::VerifyEmail,
            created_at: at(0),
            expires_at: at(100),
        })
        .await
        .expect("insert_action_token");
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
        .delete(user_id(1), Journal::of(deleted.clone()))
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
        .delete(user_id(1), journal(3, AuditAction::UserDeleted))
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
        .delete(user_id(9), journal(4, AuditAction::UserDeleted))
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
        .delete(user_id(1), journal(1, AuditAction::UserDeleted))
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
        .delete(user_id(2), Journal::default())
        .await
        .expect("an inactive admin may be deleted");
    insert(&store, user_n(3, Role::Admin, true)).await;
    as_users(&store)
        .delete(user_id(1), Journal::default())
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
        .delete(user_id(4), journal(2, AuditAction::UserDeleted))
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
        .delete(user_id(5), Journal::default())
        .await
        .expect("an inactive tenant admin may be deleted");
    add_member(&store, tenant_id(1), user_id(6), TenantRole::Admin, 2).await;
    as_users(&store)
        .delete(user_id(4), Journal::default())
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
