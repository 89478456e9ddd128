//! Contract checks that a change and its journal commit together: after `break_audit` (a
//! trigger making every insert into `audit_events` fail), each journal-writing method must
//! fail and leave its change unwritten, and the journal's one-time tokens and mail with it.
//! Without `break_audit`, the tokens and mail of a journal are stored with its change, and a
//! change the store refuses stores none. The conventions and decisions are those of
//! [`stores`](super::stores); the macro passes `break_audit` as `|| break_audit(&guard)`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use domain::model::{
    AuditAction, Journal, MailKind, PasswordHash, ProfileChanges, Role, TenantRef, TenantRole,
};
use domain::ports::{
    ActionPurpose, ActionToken, Assumed, Login, SessionStore, StoreError, TenantAdmin,
    TenantChanges, TenantStore, UserChanges, UserStore,
};

use super::fixtures::{
    Store, action_token, add_member, assert_no_events, assert_no_mail, at, claimed_ids, create,
    create_tenant, email, find_session, find_tenant, find_user, insert, issue, journal, mail,
    mail_id, membership, name, new_session, new_tenant, new_user, password_hash, session_id, slug,
    tenant_id, token, user_id, username,
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
/// changes nothing: the user is as before, their sessions are live and the one-time token
/// the change of address would have spent is unspent.
pub async fn update_fails_whole_when_its_journal_fails<S>(store: S, break_audit: impl FnOnce())
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    issue(
        &store,
        action_token(1, user_id(1), ActionPurpose::ResetPassword, 0, 1000),
    )
    .await;
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
    assert_eq!(
        store
            .find_action_token(&token(1))
            .await
            .expect("find_action_token")
            .expect("stored")
            .used_at,
        None,
        "the change of address spent no token"
    );
    assert_audit_refused(&store, "UserStore::update").await;
}

/// `delete` (guarded by the password, as a self-service deletion is) with a refused journal
/// fails and deletes nothing: the user, their session and their membership stay.
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
    let result = UserStore::delete(
        &store,
        user_id(1),
        Some(password_hash("user-1")),
        journal(1, AuditAction::UserDeleted),
    )
    .await;
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
            password_hash("user-1"),
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
    issue(
        &store,
        ActionToken {
            hash: token(1),
            user_id: user_id(1),
            purpose: ActionPurpose::VerifyEmail,
            created_at: at(0),
            expires_at: at(100),
        },
    )
    .await;
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

/// A journal of event `n`, a verification token `n` for `user` and message `n`: what a
/// change that mails a token records.
fn with_token_and_mail(n: u128, action: AuditAction, user: u128) -> Journal {
    journal(n, action)
        .with_token(action_token(
            n,
            user_id(user),
            ActionPurpose::VerifyEmail,
            0,
            1000,
        ))
        .with_mail(mail(n, MailKind::Verification, 0))
}

/// Whether the token with digest `token(n)` is stored.
async fn token_stored<S: UserStore>(store: &S, n: u128) -> bool {
    store
        .find_action_token(&token(n))
        .await
        .expect("find_action_token")
        .is_some()
}

/// The tokens and mail of a journal are stored with its change: by `insert` (a token for the
/// user it creates), `TenantStore::create` with a new admin (a token for that admin),
/// `update` and `change_password`; and the mail is due at once.
pub async fn journal_tokens_and_mail_commit_with_the_change<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(9, "admin@example.com", "admin")).await;
    store
        .insert(
            new_user(1, "ada@example.com", "ada"),
            with_token_and_mail(1, AuditAction::UserRegistered, 1),
        )
        .await
        .expect("insert");
    TenantStore::create(
        &store,
        new_tenant(1, "lab", 0),
        Some(TenantAdmin::New(new_user(2, "bob@example.com", "bob"))),
        with_token_and_mail(2, AuditAction::TenantCreated, 2),
    )
    .await
    .expect("create a tenant");
    let changes = UserChanges {
        email: Some(email("ada@example.org")),
        ..UserChanges::default()
    };
    UserStore::update(
        &store,
        user_id(1),
        changes,
        None,
        at(3),
        with_token_and_mail(3, AuditAction::UserUpdated, 1),
    )
    .await
    .expect("update");
    store
        .change_password(
            user_id(2),
            password_hash("user-2"),
            password_hash("new"),
            None,
            at(4),
            journal(4, AuditAction::UserPasswordChanged).with_mail(mail(
                4,
                MailKind::PasswordChanged,
                0,
            )),
        )
        .await
        .expect("change_password");
    // Ada's registration token was spent by her change of address; the change's own token
    // (for the new address) was stored after that, unspent.
    for (n, user, used_at) in [(1, 1, Some(at(3))), (2, 2, None), (3, 1, None)] {
        let stored = store
            .find_action_token(&token(n))
            .await
            .expect("find_action_token")
            .expect("the journal's token is stored");
        assert_eq!(stored.token.user_id, user_id(user), "token {n}");
        assert_eq!(stored.used_at, used_at, "token {n}");
    }
    assert_eq!(
        claimed_ids(&store, 0).await,
        [1, 2, 3, 4].map(mail_id).to_vec(),
        "every message, due at its created_at"
    );
}

/// A change the store refuses (`Duplicate`, `StaleVersion`, `NotFound`, a spent or unknown
/// token) stores none of its journal: no token, no mail.
pub async fn a_refused_change_stores_no_token_and_queues_no_mail<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let duplicate = store
        .insert(
            new_user(2, "ADA@example.com", "bob"),
            with_token_and_mail(2, AuditAction::UserRegistered, 2),
        )
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Duplicate(_))),
        "{duplicate:?}"
    );
    let stale = UserStore::update(
        &store,
        user_id(1),
        UserChanges::default(),
        Some(7),
        at(3),
        with_token_and_mail(3, AuditAction::UserUpdated, 1),
    )
    .await;
    assert!(matches!(stale, Err(StoreError::StaleVersion)), "{stale:?}");
    let unknown = store
        .change_password(
            user_id(9),
            password_hash("user-9"),
            password_hash("new"),
            None,
            at(4),
            with_token_and_mail(4, AuditAction::UserPasswordChanged, 1),
        )
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    let verified = store
        .verify_email(
            &token(99),
            user_id(1),
            at(5),
            with_token_and_mail(5, AuditAction::UserEmailVerified, 1),
        )
        .await
        .expect("verify_email");
    assert!(!verified);
    let reset = store
        .reset_password(
            &token(99),
            user_id(1),
            password_hash("new"),
            at(6),
            with_token_and_mail(6, AuditAction::UserPasswordReset, 1),
        )
        .await
        .expect("reset_password");
    assert_eq!(reset, None);
    for n in 2..=6 {
        assert!(!token_stored(&store, n).await, "token {n}");
    }
    assert_no_events(&store, "refused changes write no journal").await;
    assert_no_mail(&store, "refused changes queue no mail").await;
}

/// `issue_action_token` with a refused journal fails: no token, no mail.
pub async fn issue_action_token_fails_whole_when_its_journal_fails<S>(
    store: S,
    break_audit: impl FnOnce(),
) where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    break_audit();
    let result = store
        .issue_action_token(
            action_token(1, user_id(1), ActionPurpose::ResetPassword, 0, 100),
            &email("ada@example.com"),
            Some(at(0)),
            journal(1, AuditAction::UserPasswordResetRequested).with_mail(mail(
                1,
                MailKind::PasswordReset,
                0,
            )),
        )
        .await;
    assert_failed(result, "UserStore::issue_action_token");
    assert!(!token_stored(&store, 1).await, "the token was not stored");
    assert_no_mail(&store, "UserStore::issue_action_token: no mail").await;
    assert_audit_refused(&store, "UserStore::issue_action_token").await;
}

/// `reset_password` with a refused journal fails: the token stays unspent, the password,
/// the address's verification and the sessions as they were, and no mail is queued.
pub async fn reset_password_fails_whole_when_its_journal_fails<S>(
    store: S,
    break_audit: impl FnOnce(),
) where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    issue(
        &store,
        action_token(1, user_id(1), ActionPurpose::ResetPassword, 0, 100),
    )
    .await;
    let before = find_user(&store, user_id(1)).await;
    break_audit();
    let result = store
        .reset_password(
            &token(1),
            user_id(1),
            password_hash("reset"),
            at(10),
            journal(1, AuditAction::UserPasswordReset).with_mail(mail(
                1,
                MailKind::PasswordChanged,
                0,
            )),
        )
        .await;
    assert_failed(result, "UserStore::reset_password");
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
    let stored = store
        .find_action_token(&token(1))
        .await
        .expect("find_action_token")
        .expect("the token is stored");
    assert_eq!(stored.used_at, None, "the token is unspent");
    assert_no_mail(&store, "UserStore::reset_password: no mail").await;
    assert_audit_refused(&store, "UserStore::reset_password").await;
}

/// A change whose journal carries tokens and mail fails whole when its journal fails: the
/// change, the tokens and the mail are all absent (the store writes the tokens and the mail
/// before the events, so they are undone, not merely never written, by a working store).
pub async fn tokens_and_mail_of_a_change_fail_with_its_journal<S>(
    store: S,
    break_audit: impl FnOnce(),
) where
    S: Store,
{
    break_audit();
    let result = store
        .insert(
            new_user(1, "ada@example.com", "ada"),
            with_token_and_mail(1, AuditAction::UserRegistered, 1),
        )
        .await;
    assert_failed(result, "UserStore::insert with a token and mail");
    let result = TenantStore::create(
        &store,
        new_tenant(1, "lab", 0),
        Some(TenantAdmin::New(new_user(2, "bob@example.com", "bob"))),
        with_token_and_mail(2, AuditAction::TenantCreated, 2),
    )
    .await;
    assert_failed(result, "TenantStore::create with a token and mail");
    for n in [1, 2] {
        assert_eq!(
            store.find_by_id(user_id(n)).await.expect("find_by_id"),
            None,
            "user {n} was not stored"
        );
        assert!(!token_stored(&store, n).await, "token {n} was not stored");
    }
    assert_no_mail(&store, "no mail of a failed change").await;
    assert_audit_refused(&store, "a change with tokens and mail").await;
}
