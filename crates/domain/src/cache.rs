//! `CachedStore`: the read-through user cache as a decorator of the storage ports, so every
//! write that changes a user invalidates the cache in one place, whatever use case made it.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{
    Credentials, Email, Journal, NewSession, NewUser, PasswordHash, RefreshRotation, Session,
    SessionId, TokenHash, User, UserId, UserVersion,
};
use crate::ports::{
    ActionToken, CacheLookup, IssueOutcome, Login, PageRequest, Paged, SessionStore, StoreError,
    StoredActionToken, UserCache, UserChanges, UserFilter, UserSort, UserStore, UserUpdate,
};

/// Wraps the user and session stores with a [`UserCache`] for `find_by_id`, the lookup every
/// authenticated request makes.
///
/// Writes go to the stores first; after a successful write that changes a user (profile,
/// password, e-mail verification, login time) the user is invalidated. A miss is filled with
/// the generation the miss reported, so a read that raced with a write (it read the store
/// before the write, and puts after the write's invalidation) is refused by the cache instead
/// of caching the old user for `ttl`. A cache that fails is bypassed: reads fall back to the
/// store, and a failed invalidation is logged, the entry then living at most `ttl`.
#[derive(Clone)]
pub struct CachedStore {
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    cache: Arc<dyn UserCache>,
    ttl: TimeDelta,
}

impl std::fmt::Debug for CachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStore")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CachedStore {
    /// A cached view of the stores; entries live at most `ttl`.
    #[must_use]
    pub fn new(
        users: Arc<dyn UserStore>,
        sessions: Arc<dyn SessionStore>,
        cache: Arc<dyn UserCache>,
        ttl: TimeDelta,
    ) -> Self {
        Self {
            users,
            sessions,
            cache,
            ttl,
        }
    }

    async fn invalidate(&self, id: UserId) {
        if let Err(error) = self.cache.invalidate(id).await {
            tracing::error!(user_id = %id, error = %error, "user cache invalidation failed; entry expires by its TTL");
        }
    }
}

#[async_trait::async_trait]
impl UserStore for CachedStore {
    async fn insert(&self, user: NewUser, journal: Journal) -> Result<User, StoreError> {
        self.users.insert(user, journal).await
    }

    async fn insert_many(&self, users: Vec<NewUser>, journal: Journal) -> Result<u64, StoreError> {
        // New users are not cached: nothing to invalidate.
        self.users.insert_many(users, journal).await
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let seen = match self.cache.get(id).await {
            Ok(CacheLookup::Hit(user)) => return Ok(Some(user)),
            Ok(CacheLookup::Miss(seen)) => seen,
            Err(error) => {
                tracing::warn!(error = %error, "user cache unreadable; reading the store");
                return self.users.find_by_id(id).await;
            }
        };
        let user = self.users.find_by_id(id).await?;
        if let Some(user) = &user {
            // Stored only if no invalidation came between the miss and now: what was just
            // read may already be stale, and must not outlive the write that made it so.
            match self.cache.put(user, self.ttl, seen).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!(user_id = %id, "user invalidated while read; not cached");
                }
                Err(error) => tracing::warn!(error = %error, "user cache not written"),
            }
        }
        Ok(user)
    }

    async fn find_credentials(&self, login: &Login) -> Result<Option<Credentials>, StoreError> {
        self.users.find_credentials(login).await
    }

    async fn find_credentials_by_id(&self, id: UserId) -> Result<Option<Credentials>, StoreError> {
        self.users.find_credentials_by_id(id).await
    }

    async fn update(
        &self,
        id: UserId,
        changes: UserChanges,
        expected_version: Option<UserVersion>,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<UserUpdate, StoreError> {
        let updated = self
            .users
            .update(id, changes, expected_version, at, journal)
            .await?;
        self.invalidate(id).await;
        Ok(updated)
    }

    async fn delete(
        &self,
        id: UserId,
        expected_password: Option<PasswordHash>,
        journal: Journal,
    ) -> Result<(), StoreError> {
        self.users.delete(id, expected_password, journal).await?;
        self.invalidate(id).await;
        Ok(())
    }

    async fn list(
        &self,
        filter: UserFilter,
        sort: UserSort,
        page: PageRequest,
    ) -> Result<Paged<User>, StoreError> {
        self.users.list(filter, sort, page).await
    }

    async fn change_password(
        &self,
        id: UserId,
        expected: PasswordHash,
        hash: PasswordHash,
        keep: Option<SessionId>,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<Vec<SessionId>, StoreError> {
        let revoked = self
            .users
            .change_password(id, expected, hash, keep, at, journal)
            .await?;
        self.invalidate(id).await;
        Ok(revoked)
    }

    async fn issue_action_token(
        &self,
        token: ActionToken,
        to: &Email,
        quiet_since: Option<DateTime<Utc>>,
        journal: Journal,
    ) -> Result<IssueOutcome, StoreError> {
        // Changes no user: nothing to invalidate.
        self.users
            .issue_action_token(token, to, quiet_since, journal)
            .await
    }

    async fn reset_password(
        &self,
        token: &TokenHash,
        user: UserId,
        hash: PasswordHash,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<Option<Vec<SessionId>>, StoreError> {
        let revoked = self
            .users
            .reset_password(token, user, hash, at, journal)
            .await?;
        if revoked.is_some() {
            // The address is now verified.
            self.invalidate(user).await;
        }
        Ok(revoked)
    }

    async fn purge_action_tokens(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.users.purge_action_tokens(before, limit).await
    }

    async fn find_action_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<StoredActionToken>, StoreError> {
        self.users.find_action_token(token).await
    }

    async fn verify_email(
        &self,
        token: &TokenHash,
        user: UserId,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<bool, StoreError> {
        let verified = self.users.verify_email(token, user, at, journal).await?;
        if verified {
            self.invalidate(user).await;
        }
        Ok(verified)
    }
}

#[async_trait::async_trait]
impl SessionStore for CachedStore {
    async fn create(&self, new: NewSession, journal: Journal) -> Result<(), StoreError> {
        let user = new.session.user_id;
        self.sessions.create(new, journal).await?;
        // The user's last_login_at changed.
        self.invalidate(user).await;
        Ok(())
    }

    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.sessions.find(id).await
    }

    async fn purge_ended(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        self.sessions.purge_ended(before, limit).await
    }

    async fn find_refresh_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<crate::model::StoredRefreshToken>, StoreError> {
        self.sessions.find_refresh_token(token).await
    }

    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        replacement: &TokenHash,
        at: DateTime<Utc>,
    ) -> Result<RefreshRotation, StoreError> {
        self.sessions
            .rotate_refresh_token(presented, replacement, at)
            .await
    }

    async fn list_live(
        &self,
        user: UserId,
        at: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Paged<Session>, StoreError> {
        self.sessions.list_live(user, at, page).await
    }

    async fn live_for_user(&self, user: UserId) -> Result<Vec<SessionId>, StoreError> {
        self.sessions.live_for_user(user).await
    }

    async fn revoke(
        &self,
        user: UserId,
        id: SessionId,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<bool, StoreError> {
        self.sessions.revoke(user, id, at, journal).await
    }

    async fn revoke_all(
        &self,
        user: UserId,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.sessions.revoke_all(user, at, journal).await
    }

    async fn revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(SessionId, DateTime<Utc>)>, StoreError> {
        self.sessions.revoked_since(since).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::ports::{
        CacheError, CacheGeneration, MockSessionStore, MockUserCache, MockUserStore,
    };
    use crate::services::tests_support::{sample_user, user_id};

    fn cached(
        users: MockUserStore,
        sessions: MockSessionStore,
        cache: MockUserCache,
    ) -> CachedStore {
        CachedStore::new(
            Arc::new(users),
            Arc::new(sessions),
            Arc::new(cache),
            TimeDelta::seconds(60),
        )
    }

    #[tokio::test]
    async fn a_hit_does_not_touch_the_store() {
        let mut users = MockUserStore::new();
        users.expect_find_by_id().never();
        let mut cache = MockUserCache::new();
        cache
            .expect_get()
            .times(1)
            .returning(|_| Ok(CacheLookup::Hit(sample_user())));
        cache.expect_put().never();
        let store = cached(users, MockSessionStore::new(), cache);
        assert_eq!(
            store.find_by_id(user_id()).await.unwrap(),
            Some(sample_user())
        );
    }

    #[tokio::test]
    async fn a_miss_reads_the_store_and_fills_the_cache_with_the_generation_it_saw() {
        let mut users = MockUserStore::new();
        users
            .expect_find_by_id()
            .times(1)
            .returning(|_| Ok(Some(sample_user())));
        let mut cache = MockUserCache::new();
        cache
            .expect_get()
            .withf(|id| *id == user_id())
            .times(1)
            .returning(|_| Ok(CacheLookup::Miss(CacheGeneration::new(7))));
        cache
            .expect_put()
            .withf(|user, ttl, seen| {
                *user == sample_user()
                    && *ttl == TimeDelta::seconds(60)
                    && *seen == CacheGeneration::new(7)
            })
            .times(1)
            .returning(|_, _, _| Ok(true));
        let store = cached(users, MockSessionStore::new(), cache);
        assert_eq!(
            store.find_by_id(user_id()).await.unwrap(),
            Some(sample_user())
        );
    }

    /// The cache refuses the put (an invalidation came between the miss and the put): the
    /// user read from the store is still the answer, and nothing fails.
    #[tokio::test]
    async fn a_refused_put_still_answers_from_the_store() {
        let mut users = MockUserStore::new();
        users
            .expect_find_by_id()
            .times(1)
            .returning(|_| Ok(Some(sample_user())));
        let mut cache = MockUserCache::new();
        cache
            .expect_get()
            .times(1)
            .returning(|_| Ok(CacheLookup::Miss(CacheGeneration::new(1))));
        cache.expect_put().times(1).returning(|_, _, _| Ok(false));
        let store = cached(users, MockSessionStore::new(), cache);
        assert_eq!(
            store.find_by_id(user_id()).await.unwrap(),
            Some(sample_user())
        );
    }

    #[tokio::test]
    async fn a_failed_put_still_answers_from_the_store() {
        let mut users = MockUserStore::new();
        users
            .expect_find_by_id()
            .times(1)
            .returning(|_| Ok(Some(sample_user())));
        let mut cache = MockUserCache::new();
        cache
            .expect_get()
            .returning(|_| Ok(CacheLookup::Miss(CacheGeneration::default())));
        cache
            .expect_put()
            .times(1)
            .returning(|_, _, _| Err(CacheError("down".into())));
        let store = cached(users, MockSessionStore::new(), cache);
        assert_eq!(
            store.find_by_id(user_id()).await.unwrap(),
            Some(sample_user())
        );
    }

    #[tokio::test]
    async fn an_unknown_user_is_not_cached() {
        let mut users = MockUserStore::new();
        users.expect_find_by_id().times(1).returning(|_| Ok(None));
        let mut cache = MockUserCache::new();
        cache
            .expect_get()
            .returning(|_| Ok(CacheLookup::Miss(CacheGeneration::default())));
        cache.expect_put().never();
        let store = cached(users, MockSessionStore::new(), cache);
        assert_eq!(store.find_by_id(user_id()).await.unwrap(), None);
    }

    /// The race the generation exists for, through `CachedStore`: request A misses and reads
    /// the old user from the store; meanwhile request B updates the user and invalidates it;
    /// A's put then carries the generation of A's miss (from before B's invalidation, not one
    /// read afresh), which a cache refuses.
    #[tokio::test]
    async fn a_read_overtaken_by_an_invalidation_puts_the_generation_of_its_miss() {
        use std::sync::Mutex;

        // The cache's generation of the user, advanced by B's invalidation.
        let generation = Arc::new(Mutex::new(0_u64));
        let mut cache = MockUserCache::new();
        let g = Arc::clone(&generation);
        cache
            .expect_get()
            .times(1)
            .returning(move |_| Ok(CacheLookup::Miss(CacheGeneration::new(*g.lock().unwrap()))));
        let g = Arc::clone(&generation);
        cache
            .expect_put()
            .withf(|_, _, seen| *seen == CacheGeneration::new(0))
            .times(1)
            .returning(move |_, _, seen| Ok(seen.get() == *g.lock().unwrap()));

        let mut users = MockUserStore::new();
        let g = Arc::clone(&generation);
        users.expect_find_by_id().times(1).returning(move |_| {
            // A has read the old user; B's update and invalidation complete now.
            *g.lock().unwrap() += 1;
            Ok(Some(sample_user()))
        });
        let store = cached(users, MockSessionStore::new(), cache);
        assert_eq!(
            store.find_by_id(user_id()).await.unwrap(),
            Some(sample_user()),
            "A still answers with what it read"
        );
    }

    #[tokio::test]
    async fn a_failing_cache_is_bypassed() {
        let mut users = MockUserStore::new();
        users
            .expect_find_by_id()
            .times(1)
            .returning(|_| Ok(Some(sample_user())));
        let mut cache = MockUserCache::new();
        cache
            .expect_get()
            .returning(|_| Err(CacheError("down".into())));
        cache.expect_put().never();
        let store = cached(users, MockSessionStore::new(), cache);
        assert_eq!(
            store.find_by_id(user_id()).await.unwrap(),
            Some(sample_user())
        );
    }

    #[tokio::test]
    async fn writes_invalidate_only_after_they_succeed() {
        let mut users = MockUserStore::new();
        users.expect_update().times(1).returning(|_, _, _, _, _| {
            Ok(UserUpdate {
                user: sample_user(),
                revoked: vec![],
            })
        });
        users
            .expect_change_password()
            .times(1)
            .returning(|_, _, _, _, _, _| Err(StoreError::NotFound));
        users
            .expect_verify_email()
            .times(2)
            .returning(|token, _, _, _| Ok(token.as_str() == "spent-now"));
        // A guarded delete whose password changed meanwhile deletes nothing.
        users
            .expect_delete()
            .withf(|_, expected, _| expected.is_some())
            .times(1)
            .returning(|_, _, _| Err(StoreError::Changed));
        users
            .expect_delete()
            .withf(|_, expected, _| expected.is_none())
            .times(1)
            .returning(|_, _, _| Ok(()));
        let mut sessions = MockSessionStore::new();
        sessions.expect_create().times(1).returning(|_, _| Ok(()));
        let mut cache = MockUserCache::new();
        // update, the verification that spent a token, delete and create invalidate; the
        // failed change_password, the refused delete and the verification that spent nothing
        // do not.
        cache
            .expect_invalidate()
            .withf(|id| *id == user_id())
            .times(4)
            .returning(|_| Ok(()));
        let store = cached(users, sessions, cache);
        let now = Utc::now();
        store
            .update(
                user_id(),
                UserChanges::default(),
                None,
                now,
                Journal::default(),
            )
            .await
            .unwrap();
        assert!(
            store
                .change_password(
                    user_id(),
                    PasswordHash::new("old".into()),
                    PasswordHash::new("h".into()),
                    None,
                    now,
                    Journal::default()
                )
                .await
                .is_err()
        );
        for token in ["spent-now", "spent-before"] {
            store
                .verify_email(
                    &TokenHash::new(token.into()),
                    user_id(),
                    now,
                    Journal::default(),
                )
                .await
                .unwrap();
        }
        assert!(matches!(
            store
                .delete(
                    user_id(),
                    Some(PasswordHash::new("old".into())),
                    Journal::default()
                )
                .await,
            Err(StoreError::Changed)
        ));
        store
            .delete(user_id(), None, Journal::default())
            .await
            .unwrap();
        let session = Session {
            id: SessionId::from_uuid(uuid::Uuid::from_u128(9)),
            user_id: user_id(),
            created_at: now,
            last_used_at: now,
            expires_at: now,
            revoked_at: None,
            user_agent: None,
            ip: None,
            tenant: None,
        };
        store
            .create(
                NewSession {
                    session,
                    refresh_token: TokenHash::new("r".into()),
                    verified_password: PasswordHash::new("h".into()),
                },
                Journal::default(),
            )
            .await
            .unwrap();
    }

    /// A journal with one event, told apart by `n`.
    fn journal(n: u128) -> Journal {
        use crate::model::{AuditAction, AuditEvent, AuditEventId, AuditTarget};
        Journal::of(AuditEvent {
            id: AuditEventId::from_uuid(uuid::Uuid::from_u128(n)),
            at: sample_user().created_at,
            actor: Some(user_id()),
            tenant: None,
            action: AuditAction::UserUpdated,
            target: AuditTarget::User(user_id()),
            ip: None,
            request_id: None,
            details: serde_json::Map::new(),
        })
    }

    /// The decorator hands every write's journal to the store it wraps, unchanged: the events
    /// are written in the store's transaction or not at all.
    #[tokio::test]
    async fn writes_pass_their_journal_to_the_store_unchanged() {
        let j = |n| {
            let expected = journal(n);
            move |given: &Journal| *given == expected
        };
        let mut users = MockUserStore::new();
        let matches = j(1);
        users
            .expect_insert()
            .withf(move |_, given| matches(given))
            .times(1)
            .returning(|_, _| Ok(sample_user()));
        let matches = j(2);
        users
            .expect_update()
            .withf(move |_, _, _, _, given| matches(given))
            .times(1)
            .returning(|_, _, _, _, _| {
                Ok(UserUpdate {
                    user: sample_user(),
                    revoked: vec![],
                })
            });
        let matches = j(3);
        // With the guards (the confirmed hash, the kept session) passed through unchanged.
        users
            .expect_change_password()
            .withf(move |_, expected, hash, keep, _, given| {
                expected.as_str() == "confirmed"
                    && hash.as_str() == "h"
                    && *keep == Some(SessionId::from_uuid(uuid::Uuid::from_u128(9)))
                    && matches(given)
            })
            .times(1)
            .returning(|_, _, _, _, _, _| Ok(vec![]));
        let matches = j(4);
        users
            .expect_verify_email()
            .withf(move |_, _, _, given| matches(given))
            .times(1)
            .returning(|_, _, _, _| Ok(true));
        let matches = j(5);
        users
            .expect_delete()
            .withf(move |_, expected, given| {
                expected.as_ref().map(PasswordHash::as_str) == Some("confirmed") && matches(given)
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        let mut sessions = MockSessionStore::new();
        let matches = j(6);
        sessions
            .expect_create()
            .withf(move |_, given| matches(given))
            .times(1)
            .returning(|_, _| Ok(()));
        let matches = j(7);
        sessions
            .expect_revoke()
            .withf(move |_, _, _, given| matches(given))
            .times(1)
            .returning(|_, _, _, _| Ok(true));
        let matches = j(8);
        sessions
            .expect_revoke_all()
            .withf(move |_, _, given| matches(given))
            .times(1)
            .returning(|_, _, _| Ok(vec![]));
        let mut cache = MockUserCache::new();
        cache.expect_invalidate().returning(|_| Ok(()));
        let store = cached(users, sessions, cache);
        let now = Utc::now();
        let new_user = NewUser {
            id: user_id(),
            email: sample_user().email,
            username: sample_user().username,
            first_name: sample_user().first_name,
            last_name: sample_user().last_name,
            role: sample_user().role,
            is_active: true,
            email_verified: false,
            password_hash: PasswordHash::new("h".into()),
            created_at: now,
        };
        let session_id = SessionId::from_uuid(uuid::Uuid::from_u128(9));

        store.insert(new_user, journal(1)).await.unwrap();
        store
            .update(user_id(), UserChanges::default(), None, now, journal(2))
            .await
            .unwrap();
        store
            .change_password(
                user_id(),
                PasswordHash::new("confirmed".into()),
                PasswordHash::new("h".into()),
                Some(session_id),
                now,
                journal(3),
            )
            .await
            .unwrap();
        store
            .verify_email(&TokenHash::new("t".into()), user_id(), now, journal(4))
            .await
            .unwrap();
        store
            .delete(
                user_id(),
                Some(PasswordHash::new("confirmed".into())),
                journal(5),
            )
            .await
            .unwrap();
        store
            .create(
                NewSession {
                    session: Session {
                        id: session_id,
                        user_id: user_id(),
                        created_at: now,
                        last_used_at: now,
                        expires_at: now,
                        revoked_at: None,
                        user_agent: None,
                        ip: None,
                        tenant: None,
                    },
                    refresh_token: TokenHash::new("r".into()),
                    verified_password: PasswordHash::new("h".into()),
                },
                journal(6),
            )
            .await
            .unwrap();
        store
            .revoke(user_id(), session_id, now, journal(7))
            .await
            .unwrap();
        store.revoke_all(user_id(), now, journal(8)).await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_invalidation_does_not_fail_the_write() {
        let mut users = MockUserStore::new();
        users.expect_update().returning(|_, _, _, _, _| {
            Ok(UserUpdate {
                user: sample_user(),
                revoked: vec![],
            })
        });
        let mut cache = MockUserCache::new();
        cache
            .expect_invalidate()
            .returning(|_| Err(CacheError("down".into())));
        let store = cached(users, MockSessionStore::new(), cache);
        let updated = store
            .update(
                user_id(),
                UserChanges::default(),
                None,
                Utc::now(),
                Journal::default(),
            )
            .await
            .unwrap();
        assert_eq!(updated.user, sample_user());
    }
}
