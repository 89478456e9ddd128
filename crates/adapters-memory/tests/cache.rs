//! `MemoryUserCache` against the shared `UserCache` contract, plus what is particular to an
//! in-process cache: exact expiry against its clock, and bounded memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use adapters_memory::MemoryUserCache;
use chrono::{DateTime, TimeDelta, Utc};
use domain::model::{User, UserId};
use domain::ports::{CacheGeneration, CacheLookup, Clock, Readiness, UserCache};
use ums_tests::contract::cache as contract;
use uuid::Uuid;

/// A clock that moves only when told to.
#[derive(Debug)]
struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            DateTime::parse_from_rfc3339("2025-01-01T12:00:00Z")
                .unwrap()
                .to_utc(),
        )))
    }

    fn advance(&self, by: TimeDelta) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn fresh() -> MemoryUserCache {
    MemoryUserCache::new(ManualClock::new())
}

/// A user with a fresh id.
fn user() -> User {
    User {
        id: UserId::from_uuid(Uuid::now_v7()),
        ..contract::user_with_defaults()
    }
}

/// The cached user, if any.
async fn get(cache: &MemoryUserCache, id: UserId) -> Option<User> {
    match cache.get(id).await.unwrap() {
        CacheLookup::Hit(user) => Some(user),
        CacheLookup::Miss(_) => None,
    }
}

/// The generation of a miss.
async fn generation(cache: &MemoryUserCache, id: UserId) -> CacheGeneration {
    match cache.get(id).await.unwrap() {
        CacheLookup::Miss(seen) => seen,
        CacheLookup::Hit(user) => panic!("{id} is cached: {user:?}"),
    }
}

/// Fills the cache as `CachedStore` does on a miss: the generation of a miss, then a put
/// with it, which must be stored.
async fn fill(cache: &MemoryUserCache, user: &User, ttl: TimeDelta) {
    let seen = generation(cache, user.id).await;
    assert!(cache.put(user, ttl, seen).await.unwrap(), "put refused");
}

mod shared_contract {
    use super::*;

    #[tokio::test]
    async fn unknown_user_is_a_miss() {
        contract::unknown_user_is_a_miss(fresh()).await;
    }

    #[tokio::test]
    async fn every_field_round_trips() {
        contract::every_field_round_trips(fresh()).await;
    }

    #[tokio::test]
    async fn put_overwrites() {
        contract::put_overwrites(fresh()).await;
    }

    #[tokio::test]
    async fn invalidate_removes() {
        contract::invalidate_removes(fresh()).await;
    }

    #[tokio::test]
    async fn users_are_independent() {
        contract::users_are_independent(fresh()).await;
    }

    #[tokio::test]
    async fn non_positive_ttl_caches_nothing() {
        contract::non_positive_ttl_caches_nothing(fresh()).await;
    }

    #[tokio::test]
    async fn put_after_invalidate_is_refused() {
        contract::put_after_invalidate_is_refused(fresh()).await;
    }

    #[tokio::test]
    async fn put_with_the_current_generation_is_stored() {
        contract::put_with_the_current_generation_is_stored(fresh()).await;
    }

    #[tokio::test]
    async fn invalidate_changes_the_generation() {
        contract::invalidate_changes_the_generation(fresh()).await;
    }

    #[tokio::test]
    async fn a_read_overtaken_by_an_invalidation_is_not_cached() {
        contract::a_read_overtaken_by_an_invalidation_is_not_cached(fresh()).await;
    }

    #[tokio::test]
    async fn entries_expire_after_their_ttl() {
        let clock = ManualClock::new();
        let cache = MemoryUserCache::new(clock.clone());
        contract::entries_expire_after_their_ttl(cache, async |by| clock.advance(by)).await;
    }

    #[tokio::test]
    async fn run_all_passes_too() {
        let clock = ManualClock::new();
        let fresh = || MemoryUserCache::new(clock.clone());
        contract::run_all(fresh, async |by| clock.advance(by)).await;
    }
}

#[tokio::test]
async fn served_until_just_before_the_ttl_then_dropped() {
    let clock = ManualClock::new();
    let cache = MemoryUserCache::new(clock.clone());
    let user = user();
    fill(&cache, &user, TimeDelta::seconds(60)).await;

    clock.advance(TimeDelta::seconds(60) - TimeDelta::nanoseconds(1));
    assert_eq!(get(&cache, user.id).await, Some(user.clone()));

    clock.advance(TimeDelta::nanoseconds(1));
    assert_eq!(
        get(&cache, user.id).await,
        None,
        "served at put time + ttl: longer than ttl"
    );
    assert!(cache.is_empty(), "the expired entry met by get is dropped");
}

#[tokio::test]
async fn an_enormous_ttl_does_not_overflow() {
    let cache = fresh();
    let user = user();
    fill(&cache, &user, TimeDelta::MAX).await;
    assert_eq!(get(&cache, user.id).await, Some(user));
}

/// A steady stream of short-lived entries never read again: sweeping keeps the map near the
/// live entries, not all ever put.
#[tokio::test]
async fn sweeping_keeps_the_map_small_and_the_live_entries() {
    let clock = ManualClock::new();
    let cache = MemoryUserCache::new(clock.clone());
    let mut recent = Vec::new();
    let mut largest = 0;
    for _ in 0..50_000 {
        let user = user();
        fill(&cache, &user, TimeDelta::seconds(10)).await;
        clock.advance(TimeDelta::seconds(1));
        largest = largest.max(cache.len());
        recent.push(user);
        if recent.len() > 9 {
            recent.remove(0);
        }
    }
    assert!(largest <= 1024, "the map grew to {largest} entries");
    for user in recent {
        assert_eq!(
            get(&cache, user.id).await,
            Some(user),
            "a live entry was swept"
        );
    }
}

/// More live users than the capacity: the map never exceeds it, the entry just put is never
/// the one evicted, and expired entries are evicted before live ones.
#[tokio::test]
async fn the_capacity_is_never_exceeded() {
    let clock = ManualClock::new();
    let cache = MemoryUserCache::with_capacity(clock.clone(), 1_000);
    assert_eq!(cache.capacity(), 1_000);

    let mut largest = 0;
    for _ in 0..20_000 {
        let user = user();
        fill(&cache, &user, TimeDelta::hours(1)).await;
        largest = largest.max(cache.len());
        assert_eq!(
            get(&cache, user.id).await,
            Some(user),
            "the entry just put was evicted"
        );
    }
    assert!(largest <= 1_000, "the map grew to {largest} entries");
    assert!(cache.len() >= 900, "evicted far more than needed");

    // Fill with short-lived entries, let them expire, then add long-lived ones: the expired
    // ones make the room, so every long-lived entry put after them survives.
    let cache = MemoryUserCache::with_capacity(clock.clone(), 1_000);
    for _ in 0..1_000 {
        fill(&cache, &user(), TimeDelta::seconds(1)).await;
    }
    clock.advance(TimeDelta::seconds(2));
    let mut live = Vec::new();
    for _ in 0..800 {
        let user = user();
        fill(&cache, &user, TimeDelta::hours(1)).await;
        live.push(user);
    }
    assert!(cache.len() <= 1_000);
    for user in live {
        assert_eq!(
            get(&cache, user.id).await,
            Some(user),
            "a live entry was evicted while expired ones could go"
        );
    }
}

#[tokio::test]
async fn a_zero_capacity_still_caches_the_latest_user() {
    let cache = MemoryUserCache::with_capacity(ManualClock::new(), 0);
    let (first, second) = (user(), user());
    fill(&cache, &first, TimeDelta::hours(1)).await;
    fill(&cache, &second, TimeDelta::hours(1)).await;
    assert_eq!(cache.len(), 1);
    assert_eq!(get(&cache, second.id).await, Some(second));
}

/// Invalidations of many more users than the capacity: the generations held individually
/// never exceed it, and forgetting them never lets a generation seen before an invalidation
/// match again, whether the user had a generation of its own when read (`invalidated`) or
/// was at the shared floor (`never_invalidated`), which a counter that restarted from zero
/// would get wrong.
#[tokio::test]
async fn generations_are_bounded_and_forgetting_them_lets_no_stale_put_in() {
    let cache = MemoryUserCache::with_capacity(ManualClock::new(), 100);
    let (invalidated, never_invalidated) = (user(), user());
    cache.invalidate(invalidated.id).await.unwrap();
    let seen_invalidated = generation(&cache, invalidated.id).await;
    let seen_never = generation(&cache, never_invalidated.id).await;
    cache.invalidate(invalidated.id).await.unwrap();
    cache.invalidate(never_invalidated.id).await.unwrap();

    let mut largest = 0;
    for _ in 0..1_000 {
        cache.invalidate(user().id).await.unwrap();
        largest = largest.max(cache.generations_len());
    }
    assert!(largest <= 100, "{largest} generations held");
    assert!(cache.generations_len() < 100, "never forgotten");

    for (user, seen) in [
        (&invalidated, seen_invalidated),
        (&never_invalidated, seen_never),
    ] {
        assert!(
            !cache.put(user, TimeDelta::hours(1), seen).await.unwrap(),
            "a generation seen before an invalidation matched once generations were forgotten"
        );
        assert_eq!(get(&cache, user.id).await, None);
        // A reader that misses now can fill the cache again.
        fill(&cache, user, TimeDelta::hours(1)).await;
        assert_eq!(get(&cache, user.id).await.as_ref(), Some(user));
    }
}

/// Generations are checked and entries stored under one lock: concurrent readers racing
/// with invalidations of the same user never leave a user cached that was read (by the
/// reader's own account) before the latest invalidation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_and_invalidations_never_leave_a_stale_user() {
    use std::sync::atomic::{AtomicI64, Ordering};

    let cache = Arc::new(MemoryUserCache::new(ManualClock::new()));
    let base = user();
    // The store: the user's version, bumped by each write before its invalidation.
    let version = Arc::new(AtomicI64::new(1));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (cache, version, id) = (Arc::clone(&cache), Arc::clone(&version), base.id);
            tokio::spawn(async move {
                for _ in 0..500 {
                    version.fetch_add(1, Ordering::SeqCst);
                    cache.invalidate(id).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (cache, version, base) = (Arc::clone(&cache), Arc::clone(&version), base.clone());
            tokio::spawn(async move {
                for _ in 0..500 {
                    if let CacheLookup::Miss(seen) = cache.get(base.id).await.unwrap() {
                        let read = User {
                            version: version.load(Ordering::SeqCst),
                            ..base.clone()
                        };
                        tokio::task::yield_now().await;
                        cache.put(&read, TimeDelta::hours(1), seen).await.unwrap();
                    }
                }
            })
        })
        .collect();
    for task in writers.into_iter().chain(readers) {
        task.await.unwrap();
    }
    // Every write has been invalidated; whatever is cached now must be the latest version.
    if let Some(cached) = get(&cache, base.id).await {
        assert_eq!(
            cached.version,
            version.load(Ordering::SeqCst),
            "a stale user stayed cached"
        );
    }
}

#[tokio::test]
async fn concurrent_use_from_many_tasks() {
    let clock = ManualClock::new();
    let cache = Arc::new(MemoryUserCache::new(clock.clone()));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for _ in 0..300 {
                    let user = user();
                    fill(&cache, &user, TimeDelta::minutes(5)).await;
                    mine.push(user);
                }
                for user in &mine {
                    assert_eq!(get(&cache, user.id).await.as_ref(), Some(user));
                }
                for user in mine.iter().step_by(2) {
                    cache.invalidate(user.id).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(cache.len(), 16 * 150);
}

#[tokio::test]
async fn always_ready() {
    assert!(fresh().ready().await.is_ok());
}
