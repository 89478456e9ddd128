//! Contract checks that a change and its journal commit together: after `break_audit` (a
//! trigger making every insert into `audit_events` fail), each journal-writing method must
//! fail and leave its change unwritten. The conventions and decisions are those of
//! [`stores`](super::stores); the macro passes `break_audit` as `|| break_audit(&guard)`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::model::{AuditAction, PasswordHash, ProfileChanges, Role, TenantRef, TenantRole};
use domain::ports::{
    ActionPurpose, ActionToken, Assumed, Login, SessionStore, StoreError, TenantAdmin,
    TenantChanges, TenantStore, UserChanges, UserStore,
};

use super::fixtures::{
    Store, add_member, assert_no_events, at, create, create_tenant, email, find_session,
    find_tenant, find_user, insert, journal, membership, name, new_session, new_tenant, new_user,
    password_hash, session_id, slug, tenant_id, token, user_id, username,
};

/// Panics unless `result` is the failure of the refused audit insert (`Unexpected`, as any
/// database error the store cannot name): not an outcome of the store's own rules (`NotFound`,
/// `Duplicate`, ...), which would mean the call failed before it got to its journal, and the
/// check would prove nothing. `method` names the call.
fn assert_failed<T: std::fmt::Debug>(result: Result<T, StoreError>, method: &str) {
    assert!(
        matches!(result, Err(StoreError::Unexpected(_))),
        "{method} must fail with the refused audit insert, got {result:?}"
    );
}

/// Checks that the trigger is in place (an append fails) and that no event was written.
async fn assert_audit_refused<S: Store>(store: &S, method: &str) {
    let append = store.append(journal(99, AuditAction::AccessDenied)).await;
    assert!(
        append.is_err(),
        "break_audit must make every insert into audit_events fail, got {append:?}"
    );
    assert_no_events(store, &format!("{method}: no event is written")).await;
}

/// `insert` with a refused journal fails and stores no user.
pub async fn insert_fails_whole_when_its_journal_fails<S>(store: S, break_audit: impl FnOnce())
where
    S: Store,
{
    break_audit();
    let result = store
        .insert(
            new_user(1, "ada@example.com", "ada"),
            journal(1, AuditAction::UserRegistered),
        )
        .await;
    assert_failed(result, "UserStore::insert");
    assert_eq!(
        store.find_by_id(user_id(1)).await.expect("find_by_id"),
        None,
        "the user was not stored"
    );
    assert!(
        store
            .find_credentials(&Login::Email(email("ada@example.com")))
            .await
            .expect("find_credentials")
            .is_none(),
        "the user was not stored"
    );
    assert_audit_refused(&store, "UserStore::insert").await;
}

/// `insert_many` with a refused journal fails and stores none of the users.
pub async fn insert_many_fails_whole_when_its_journal_fails<S>(store: S, break_audit: impl FnOnce())
where
    S: Store,
{
    break_audit();
    let batch = (1..=3)
        .map(|n| new_user(n, &format!("bulk{n}@example.com"), &format!("bulk{n}")))
        .collect();
    let result = store
        .insert_many(batch, journal(1, AuditAction::UserCreated))
        .await;
    assert_failed(result, "UserStore::insert_many");
    for n in 1..=3 {
        assert_eq!(
            store.find_by_id(user_id(n)).await.expect("find_by_id"),
            None,
            "user {n} was not stored"
        );
    }
    assert_audit_refused(&store, "UserStore::insert_many").await;
}

/// `update` (profile, e-mail, role and a deactivation) with a refused journal fails and
/// changes nothing: the user is as before and their sessions are live.
pub async fn update_fails_whole_when_its_journal_fails<S>(store: S, break_audit: impl FnOnce())
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    let before = find_user(&store, user_id(1)).await;
    break_audit();
    let changes = UserChanges {
        profile: ProfileChanges {
            first_name: Some(name("Augusta")),
            username: Some(username("countess")),
            ..ProfileChanges::default()
        },
        email: Some(email("countess@example.com")),
        role: Some(Role::Admin),
        is_active: Some(false),
    };
    let result = UserStore::update(
        &store,
        user_id(1),
        changes,
        Some(1),
        at(10),
        journal(1, AuditAction::UserUpdated),
    )
    .await;
    assert_failed(result, "UserStore::update");
    assert_eq!(
        find_user(&store, user_id(1)).await,
        before,
        "the user is unchanged"
    );
    assert_eq!(
        find_session(&store, session_id(1)).await.revoked_at,
        None,
        "the session was not revoked"
    );
    assert_audit_refused(&store, "UserStore::update").await;
}

/// `delete` with a refused journal fails and deletes nothing: the user, their session and
/// their membership stay.
pub async fn delete_fails_whole_when_its_journal_fails<S>(store: S, break_audit: impl FnOnce())
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let session = create(&store, new_session(1, user_id(1), 0, 1000)).await;
    let before = find_user(&store, user_id(1)).await;
    create_tenant(&store, new_tenant(1, "lab", 0), None).await;
    add_member(&store, tenant_id(1), user_id(1), TenantRole::Member, 0).await;
    break_audit();
    let result = UserStore::delete(&store, user_id(1), journal(1, AuditAction::UserDeleted)).await;
    assert_failed(result, "UserStore::delete");
    assert_eq!(
        find_user(&store, user_id(1)).await,
        before,
        "the user stays"
    );
    assert_eq!(
        find_session(&store, session_id(1)).await,
        session,
        "the session stays"
    );
    assert_eq!(
        store
            .role_of(tenant_id(1), user_id(1))
            .await
            .expect("role_of"),
        Some(TenantRole::Member),
        "the membership stays"
    );
    assert_audit_refused(&store, "UserStore::delete").await;
}

/// `change_password` with a refused journal fails: the old hash stays and no session is
/// revoked.
pub async fn change_password_fails_whole_when_its_journal_fails<S>(
    store: S,
    break_audit: impl FnOnce(),
) where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    let before = find_user(&store, user_id(1)).await;
    break_audit();
    let result = store
        .change_password(
            user_id(1),
            PasswordHash::new("$2b$04$contract.refused".to_owned()),
            None,
            at(10),
            journal(1, AuditAction::UserPasswordChanged),
        )
        .await;
    assert_failed(result, "UserStore::change_password");
    let credentials = store
        .find_credentials_by_id(user_id(1))
        .await
        .expect("find_credentials_by_id")
        .expect("the user exists");
    assert_eq!(
        credentials.password_hash,
        password_hash("user-1"),
        "the old hash stays"
    );
    assert_eq!(credentials.user, before, "the user is unchanged");
    assert_eq!(
        find_session(&store, session_id(1)).await.revoked_at,
        None,
        "the session was not revoked"
    );
    assert_audit_refused(&store, "UserStore::change_password").await;
}

/// `verify_email` with a refused journal fails: the token stays unspent and the address
/// unverified.
pub async fn verify_email_fails_whole_when_its_journal_fails<S>(
    store: S,
    break_audit: impl FnOnce(),
) where
    S: Store,
{
    let before = insert(&store, new_user(1, "ada@example.com", "ada")).await;
    store
        .insert_action_token(ActionToken {
            hash: token(1),
            user_id: user_id(1),
            purpose: ActionPurpose::VerifyEmail,
            created_at: at(0),
            expires_at: at(100),
        })
        .await
        .expect("insert_action_token");
    break_audit();
    let result = store
        .verify_email(
            &token(1),
            user_id(1),
            at(10),
            journal(1, AuditAction::UserEmailVerified),
        )
        .await;
    assert_failed(result, "UserStore::verify_email");
    assert_eq!(
        find_user(&store, user_id(1)).await,
        before,
        "the address is not verified"
    );
    let stored = store
        .find_action_token(&token(1))
        .await
        .expect("find_action_token")
        .expect("the token is stored");
    assert_eq!(stored.used_at, None, "the token is unspent");
    assert_audit_refused(&store, "UserStore::verify_email").await;
}

/// `SessionStore::create` with a refused journal fails: no session, no refresh token, and
/// the login is not recorded.
pub async fn session_create_fails_whole_when_its_journal_fails<S>(
    store: S,
    break_audit: impl FnOnce(),
) where
    S: Store,
{
    let before = insert(&store, new_user(1, "ada@example.com", "ada")).await;
    break_audit();
    let result = SessionStore::create(
        &store,
        new_session(1, user_id(1), 10, 1000),
        journal(1, AuditAction::UserLogin),
    )
    .await;
    assert_failed(result, "SessionStore::create");
    assert_eq!(
        SessionStore::find(&store, session_id(1))
            .await
            .expect("find"),
        None,
        "no session"
    );
    assert_eq!(
        store
            .rotate_refresh_token(&token(1), &token(2), at(11))
            .await
            .expect("rotate"),
        domain::model::RefreshRotation::Unknown,
        "no refresh token"
    );
    assert_eq!(
        find_user(&store, user_id(1)).await,
        before,
        "the login is not recorded"
    );
    assert_audit_refused(&store, "SessionStore::create").await;
}

/// `revoke` of a live session with a refused journal fails, and the session stays live.
pub async fn session_revoke_fails_whole_when_its_journal_fails<S>(
    store: S,
    break_audit: impl FnOnce(),
) where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let session = create(&store, new_session(1, user_id(1), 0, 1000)).await;
    break_audit();
    let result = store
        .revoke(
            user_id(1),
            session_id(1),
            at(10),
            journal(1, AuditAction::UserLogout),
        )
        .await;
    assert_failed(result, "SessionStore::revoke");
    assert_eq!(
        find_session(&store, session_id(1)).await,
        session,
        "the session stays live"
    );
    assert_audit_refused(&store, "SessionStore::revoke").await;
}

/// `revoke_all` with a refused journal fails, and every session stays live.
pub async fn session_revoke_all_fails_whole_when_its_journal_fails<S>(
    store: S,
    break_audit: impl FnOnce(),
) where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    create(&store, new_session(2, user_id(1), 0, 1000)).await;
    break_audit();
    let result = store
        .revoke_all(user_id(1), at(10), journal(1, AuditAction::SessionRevoked))
        .await;
    assert_failed(result, "SessionStore::revoke_all");
    for n in [1, 2] {
        assert_eq!(
            find_session(&store, session_id(n)).await.revoked_at,
            None,
            "session {n} stays live"
        );
    }
    assert_audit_refused(&store, "SessionStore::revoke_all").await;
}

/// `TenantStore::create` with a refused journal fails and writes nothing: with a new admin,
/// neither the tenant nor the user; with an existing admin, neither the tenant nor the
/// membership.
pub async fn tenant_create_fails_whole_when_its_journal_fails<S>(
    store: S,
    break_audit: impl FnOnce(),
) where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    break_audit();
    let result = TenantStore::create(
        &store,
        new_tenant(1, "lab", 0),
        Some(TenantAdmin::New(new_user(2, "bob@example.com", "bob"))),
        journal(1, AuditAction::TenantCreated),
    )
    .await;
    assert_failed(result, "TenantStore::create with a new admin");
    let result = TenantStore::create(
        &store,
        new_tenant(2, "other", 0),
        Some(TenantAdmin::Existing(user_id(1))),
        journal(2, AuditAction::TenantCreated),
    )
    .await;
    assert_failed(result, "TenantStore::create with an existing admin");
    for (id, raw_slug) in [(1, "lab"), (2, "other")] {
        assert_eq!(
            TenantStore::find(&store, &TenantRef::Id(tenant_id(id)))
                .await
                .expect("find"),
            None,
            "tenant {id} was not stored"
        );
        assert_eq!(
            TenantStore::find(&store, &TenantRef::Slug(slug(raw_slug)))
                .await
                .expect("find"),
            None,
            "tenant {id} was not stored"
        );
    }
    assert_eq!(
        store.find_by_id(user_id(2)).await.expect("find_by_id"),
        None,
        "the new admin was not stored"
    );
    assert!(
        store
            .tenants_of(user_id(1))
            .await
            .expect("tenants_of")
            .is_empty(),
        "the existing admin's membership was not stored"
    );
    assert_audit_refused(&store, "TenantStore::create").await;
}

/// `TenantStore::update` with a refused journal fails, and the tenant is as before.
pub async fn tenant_update_fails_whole_when_its_journal_fails<S>(
    store: S,
    break_audit: impl FnOnce(),
) where
    S: Store,
{
    let before = create_tenant(&store, new_tenant(1, "lab", 0), None).await;
    break_audit();
    let changes = TenantChanges {
        name: Some("Renamed".to_owned()),
        slug: Some(slug("renamed")),
        is_active: Some(false),
        ..TenantChanges::default()
    };
    let result = TenantStore::update(
        &store,
        tenant_id(1),
        changes,
        Some(1),
        at(10),
        journal(1, AuditAction::TenantUpdated),
    )
    .await;
    assert_failed(result, "TenantStore::update");
    assert_eq!(
        find_tenant(&store, tenant_id(1)).await,
        before,
        "the tenant is unchanged"
    );
    assert_audit_refused(&store, "TenantStore::update").await;
}

/// `TenantStore::delete` with a refused journal fails: the tenant and its memberships stay.
pub async fn tenant_delete_fails_whole_when_its_journal_fails<S>(
    store: S,
    break_audit: impl FnOnce(),
) where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let before = create_tenant(
        &store,
        new_tenant(1, "lab", 0),
        Some(TenantAdmin::Existing(user_id(1))),
    )
    .await;
    break_audit();
    let result =
        TenantStore::delete(&store, tenant_id(1), journal(1, AuditAction::TenantDeleted)).await;
    assert_failed(result, "TenantStore::delete");
    assert_eq!(
        find_tenant(&store, tenant_id(1)).await,
        before,
        "the tenant stays"
    );
    assert_eq!(
        store
            .role_of(tenant_id(1), user_id(1))
            .await
            .expect("role_of"),
        Some(TenantRole::Admin),
        "the membership stays"
    );
    assert_audit_refused(&store, "TenantStore::delete").await;
}

/// `add_member` with a refused journal fails, and the user is no member.
pub async fn add_member_fails_whole_when_its_journal_fails<S>(store: S, break_audit: impl FnOnce())
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    create_tenant(&store, new_tenant(1, "lab", 0), None).await;
    break_audit();
    let result = store
        .add_member(
            membership(tenant_id(1), user_id(1), TenantRole::Member, 0),
            Assumed::default(),
            journal(1, AuditAction::TenantMemberAdded),
        )
        .await;
    assert_failed(result, "TenantStore::add_member");
    assert_eq!(
        store
            .role_of(tenant_id(1), user_id(1))
            .await
            .expect("role_of"),
        None,
        "no membership"
    );
    assert_audit_refused(&store, "TenantStore::add_member").await;
}

/// `change_role` with a refused journal fails, and the role stays.
pub async fn change_role_fails_whole_when_its_journal_fails<S>(store: S, break_audit: impl FnOnce())
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    create_tenant(&store, new_tenant(1, "lab", 0), None).await;
    add_member(&store, tenant_id(1), user_id(1), TenantRole::Member, 0).await;
    break_audit();
    let result = store
        .change_role(
            tenant_id(1),
            user_id(1),
            TenantRole::Moderator,
            Assumed {
                member: Some(TenantRole::Member),
                actor: None,
            },
            journal(1, AuditAction::TenantMemberRoleChanged),
        )
        .await;
    assert_failed(result, "TenantStore::change_role");
    assert_eq!(
        store
            .role_of(tenant_id(1), user_id(1))
            .await
            .expect("role_of"),
        Some(TenantRole::Member),
        "the role stays"
    );
    assert_audit_refused(&store, "TenantStore::change_role").await;
}

/// `remove_member` with a refused journal fails, and the membership stays.
pub async fn remove_member_fails_whole_when_its_journal_fails<S>(
    store: S,
    break_audit: impl FnOnce(),
) where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    create_tenant(&store, new_tenant(1, "lab", 0), None).await;
    add_member(&store, tenant_id(1), user_id(1), TenantRole::Member, 0).await;
    break_audit();
    let result = store
        .remove_member(
            tenant_id(1),
            user_id(1),
            Assumed {
                member: Some(TenantRole::Member),
                actor: None,
            },
            journal(1, AuditAction::TenantMemberRemoved),
        )
        .await;
    assert_failed(result, "TenantStore::remove_member");
    assert_eq!(
        store
            .role_of(tenant_id(1), user_id(1))
            .await
            .expect("role_of"),
        Some(TenantRole::Member),
        "the membership stays"
    );
    assert_audit_refused(&store, "TenantStore::remove_member").await;
}
