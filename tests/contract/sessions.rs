//! Contract checks for `SessionStore` that guard what a login and a refresh read before they
//! change anything: `create` re-checks the password hash the login verified (and that the
//! user is still active) inside its transaction, serialised with a password change; and
//! `find_refresh_token` reads a token and its session without spending it. Run by
//! [`store_contract_tests!`](crate::store_contract_tests) like every store check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use domain::model::{AuditAction, Journal, Session, StoredRefreshToken};
use domain::ports::{SessionStore, StoreError, UserChanges, UserStore};

use super::fixtures::{
    Store, as_sessions, as_users, assert_no_events, at, create, find_session, find_user, insert,
    journal, new_session, new_user, password_hash, session_id, token, user_id,
};

/// `create` refuses with `Changed`, writing nothing (no session, no refresh token, no
/// `last_login_at`, no journal), when the user's password hash is not the one the login
/// verified (never was, or was changed since) and when the user is inactive, even with the
/// right hash; with the hash the user has now it creates the session.
pub async fn create_session_refuses_a_password_changed_or_an_account_deactivated_since_the_check<
    S,
>(
    store: S,
) where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;

    let mut stale = new_session(1, user_id(1), 100, 1000);
    stale.verified_password = password_hash("never-the-users");
    let result = as_sessions(&store)
        .create(stale, journal(1, AuditAction::UserLogin))
        .await;
    assert!(
        matches!(result, Err(StoreError::Changed)),
        "a hash that is not the user's: expected Changed, got {result:?}"
    );
    assert_nothing_written(&store, 1, None).await;

    // The password changes after the login checked the old one.
    store
        .change_password(
            user_id(1),
            password_hash("user-1"),
            password_hash("changed"),
            None,
            at(50),
            Journal::default(),
        )
        .await
        .expect("change_password");
    let result = as_sessions(&store)
        .create(
            new_session(2, user_id(1), 100, 1000),
            journal(2, AuditAction::UserLogin),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Changed)),
        "a hash changed since: expected Changed, got {result:?}"
    );
    assert_nothing_written(&store, 2, None).await;

    let mut current = new_session(3, user_id(1), 100, 1000);
    current.verified_password = password_hash("changed");
    let created = create(&store, current).await;
    assert_eq!(find_session(&store, session_id(3)).await, created);
    assert_eq!(
        find_user(&store, user_id(1)).await.last_login_at,
        Some(at(100))
    );

    as_users(&store)
        .update(
            user_id(1),
            UserChanges {
                is_active: Some(false),
                ..UserChanges::default()
            },
            None,
            at(200),
            Journal::default(),
        )
        .await
        .expect("deactivate");
    let mut inactive = new_session(4, user_id(1), 300, 1000);
    inactive.verified_password = password_hash("changed");
    let result = as_sessions(&store)
        .create(inactive, journal(4, AuditAction::UserLogin))
        .await;
    assert!(
        matches!(result, Err(StoreError::Changed)),
        "an inactive user: expected Changed, got {result:?}"
    );
    assert_nothing_written(&store, 4, Some(at(100))).await;
}

/// Session `n` (and its refresh token `token(n)`) does not exist, user 1's `last_login_at`
/// is still `last_login`, and no journal was written.
async fn assert_nothing_written<S: Store>(
    store: &S,
    n: u128,
    last_login: Option<chrono::DateTime<chrono::Utc>>,
) {
    assert_eq!(
        as_sessions(store).find(session_id(n)).await.expect("find"),
        None,
        "session {n} was not created"
    );
    assert_eq!(
        store.find_refresh_token(&token(n)).await.expect("find"),
        None,
        "refresh token {n} was not stored"
    );
    assert_eq!(
        find_user(store, user_id(1)).await.last_login_at,
        last_login,
        "the refused login is not recorded on the user"
    );
    assert_no_events(store, "a refused session writes no journal").await;
}

/// `find_refresh_token` is `None` for a digest never stored; otherwise it returns the token's
/// session as stored now and when the token was spent, and changes nothing: a token read
/// (twice) still rotates, the spent token then reads as spent with the session's new
/// `last_used_at`, its replacement as unspent, and a revoked session's token is still found.
pub async fn find_refresh_token_reads_a_token_without_spending_it<S>(store: S)
where
    S: Store,
{
    assert_eq!(
        store.find_refresh_token(&token(1)).await.expect("find"),
        None
    );
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let session = create(&store, new_session(1, user_id(1), 0, 1000)).await;

    let unspent = Some(StoredRefreshToken {
        session: session.clone(),
        used_at: None,
    });
    assert_eq!(
        store.find_refresh_token(&token(1)).await.expect("find"),
        unspent
    );
    assert_eq!(
        store.find_refresh_token(&token(1)).await.expect("find"),
        unspent,
        "reading spends nothing"
    );
    assert_eq!(find_session(&store, session_id(1)).await, session);

    let rotated = store
        .rotate_refresh_token(&token(1), &token(2), at(10))
        .await
        .expect("rotate");
    let after = Session {
        last_used_at: at(10),
        ..session
    };
    assert_eq!(
        rotated,
        domain::model::RefreshRotation::Rotated(after.clone()),
        "a token that was read still rotates"
    );
    assert_eq!(
        store.find_refresh_token(&token(1)).await.expect("find"),
        Some(StoredRefreshToken {
            session: after.clone(),
            used_at: Some(at(10)),
        })
    );
    assert_eq!(
        store.find_refresh_token(&token(2)).await.expect("find"),
        Some(StoredRefreshToken {
            session: after,
            used_at: None,
        })
    );

    assert!(
        store
            .revoke(user_id(1), session_id(1), at(20), Journal::default())
            .await
            .expect("revoke")
    );
    let revoked = find_session(&store, session_id(1)).await;
    assert_eq!(
        store.find_refresh_token(&token(2)).await.expect("find"),
        Some(StoredRefreshToken {
            session: revoked,
            used_at: None,
        }),
        "a revoked session's token is found, with the session as it is now"
    );
    assert_eq!(
        store.find_refresh_token(&token(3)).await.expect("find"),
        None
    );
}

/// A login's `create` (with the hash it verified) racing a `change_password` of the same
/// user: either the session was created first and the change revoked it, or the change came
/// first and the login was refused with `Changed`. Never a live session of the old password.
/// Repeated over 16 users so that the calls really overlap.
pub async fn a_login_racing_a_password_change_never_keeps_a_session_of_the_old_password<S>(store: S)
where
    S: Store,
{
    const ROUNDS: u128 = 16;
    let store = Arc::new(store);
    let (mut created, mut refused) = (0, 0);
    for n in 1..=ROUNDS {
        insert(
            store.as_ref(),
            new_user(n, &format!("user{n}@example.com"), &format!("user{n}")),
        )
        .await;
        let start = Arc::new(tokio::sync::Barrier::new(2));
        let login = tokio::spawn({
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            async move {
                start.wait().await;
                as_sessions(store.as_ref())
                    .create(new_session(n, user_id(n), 0, 1000), Journal::default())
                    .await
            }
        });
        let change = tokio::spawn({
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            async move {
                start.wait().await;
                store
                    .change_password(
                        user_id(n),
                        password_hash(&format!("user-{n}")),
                        password_hash("changed"),
                        None,
                        at(5),
                        Journal::default(),
                    )
                    .await
            }
        });
        let login = login.await.expect("task");
        let revoked = change.await.expect("task").expect("change_password");
        match login {
            Ok(()) => {
                created += 1;
                assert_eq!(
                    find_session(store.as_ref(), session_id(n)).await.revoked_at,
                    Some(at(5)),
                    "user {n}: a session created before the change is revoked by it"
                );
                assert_eq!(revoked, [session_id(n)], "user {n}");
            }
            Err(StoreError::Changed) => {
                refused += 1;
                assert_eq!(
                    as_sessions(store.as_ref())
                        .find(session_id(n))
                        .await
                        .expect("find"),
                    None,
                    "user {n}: a refused login stores no session"
                );
                assert!(revoked.is_empty(), "user {n}: {revoked:?}");
            }
            Err(other) => panic!("user {n}: expected Ok or Changed, got {other:?}"),
        }
    }
    assert_eq!(created + refused, ROUNDS);
}
