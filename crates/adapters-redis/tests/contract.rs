//! The Redis adapters against the shared `TokenRevocation` and `UserCache` contracts, on the
//! server of `TEST_REDIS_URL` (each test under a fresh key prefix, deleted afterwards), plus
//! what is particular to Redis: the key layout and TTLs, unreadable entries, settings that
//! are refused at once, and two instances sharing one server.
//!
//! Without `TEST_REDIS_URL` every test here returns at once (see `ums_tests::support::env`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use adapters_redis::{
    RedisClient, RedisError, RedisRevocation, RedisSettings, RedisUserCache, redact_url,
};
use chrono::{TimeDelta, Utc};
use domain::model::{SessionId, User, UserId};
use domain::ports::{CacheGeneration, CacheLookup, Readiness, TokenRevocation, UserCache};
use ums_tests::contract::{cache as cache_contract, revocation as revocation_contract};
use ums_tests::support::redis::{Reply, TestRedis};
use uuid::Uuid;

fn settings(redis: &TestRedis) -> RedisSettings {
    RedisSettings {
        url: redis.url.clone(),
        pool_size: 4,
        command_timeout: Duration::from_secs(2),
        key_prefix: redis.prefix.clone(),
    }
}

fn client(redis: &TestRedis) -> RedisClient {
    RedisClient::connect(settings(redis)).unwrap()
}

fn revocation(redis: &TestRedis) -> RedisRevocation {
    RedisRevocation::new(client(redis))
}

fn cache(redis: &TestRedis) -> RedisUserCache {
    RedisUserCache::new(client(redis))
}

async fn sleep(by: TimeDelta) {
    tokio::time::sleep(by.to_std().unwrap()).await;
}

/// Each check as its own test on a fresh prefix, skipped without `TEST_REDIS_URL`.
macro_rules! on_test_redis {
    ($($check:ident: |$redis:ident| $call:expr;)*) => {
        $(
            #[tokio::test]
            async fn $check() {
                let Some($redis) = TestRedis::from_env() else { return };
                $call.await;
            }
        )*
    };
}

mod revocation_contract_checks {
    use super::*;
    use revocation_contract as c;

    on_test_redis! {
        unknown_session_is_not_revoked:
            |r| c::unknown_session_is_not_revoked(revocation(&r), Utc::now());
        revoked_session_is_revoked: |r| c::revoked_session_is_revoked(revocation(&r), Utc::now());
        revoking_twice_is_harmless: |r| c::revoking_twice_is_harmless(revocation(&r), Utc::now());
        earlier_until_does_not_cancel_a_revocation:
            |r| c::earlier_until_does_not_cancel_a_revocation(revocation(&r), Utc::now());
        other_sessions_are_unaffected:
            |r| c::other_sessions_are_unaffected(revocation(&r), Utc::now());
        past_until_is_not_revoked: |r| c::past_until_is_not_revoked(revocation(&r), Utc::now());
        revocation_ends_after_until:
            |r| c::revocation_ends_after_until(revocation(&r), Utc::now(), sleep);
        the_latest_until_wins: |r| c::the_latest_until_wins(revocation(&r), Utc::now(), sleep);
        run_all_passes_too: |r| c::run_all(|| (revocation(&r), Utc::now()));
    }
}

mod cache_contract_checks {
    use super::*;
    use cache_contract as c;

    on_test_redis! {
        unknown_user_is_a_miss: |r| c::unknown_user_is_a_miss(cache(&r));
        every_field_round_trips: |r| c::every_field_round_trips(cache(&r));
        put_overwrites: |r| c::put_overwrites(cache(&r));
        invalidate_removes: |r| c::invalidate_removes(cache(&r));
        users_are_independent: |r| c::users_are_independent(cache(&r));
        non_positive_ttl_caches_nothing: |r| c::non_positive_ttl_caches_nothing(cache(&r));
        put_after_invalidate_is_refused: |r| c::put_after_invalidate_is_refused(cache(&r));
        put_with_the_current_generation_is_stored:
            |r| c::put_with_the_current_generation_is_stored(cache(&r));
        invalidate_changes_the_generation: |r| c::invalidate_changes_the_generation(cache(&r));
        a_read_overtaken_by_an_invalidation_is_not_cached:
            |r| c::a_read_overtaken_by_an_invalidation_is_not_cached(cache(&r));
        entries_expire_after_their_ttl: |r| c::entries_expire_after_their_ttl(cache(&r), sleep);
        run_all_passes_too: |r| c::run_all(|| cache(&r), sleep);
    }
}

/// The cached user, if any.
async fn get(cache: &RedisUserCache, id: UserId) -> Option<User> {
    match cache.get(id).await.unwrap() {
        CacheLookup::Hit(user) => Some(user),
        CacheLookup::Miss(_) => None,
    }
}

/// The generation of a miss.
async fn generation(cache: &RedisUserCache, id: UserId) -> CacheGeneration {
    match cache.get(id).await.unwrap() {
        CacheLookup::Miss(seen) => seen,
        CacheLookup::Hit(user) => panic!("{id} is cached: {user:?}"),
    }
}

/// Fills the cache as `CachedStore` does on a miss: the generation of a miss, then a put
/// with it, which must be stored.
async fn fill(cache: &RedisUserCache, user: &User, ttl: TimeDelta) {
    let seen = generation(cache, user.id).await;
    assert!(cache.put(user, ttl, seen).await.unwrap(), "put refused");
}

fn session() -> SessionId {
    SessionId::from_uuid(Uuid::now_v7())
}

fn integer(reply: Reply) -> i64 {
    reply
        .as_int()
        .unwrap_or_else(|| panic!("not an integer: {reply:?}"))
}

#[tokio::test]
async fn a_revocation_is_one_key_expiring_at_until_rounded_up() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let list = revocation(&redis);
    let s = session();
    let until = Utc::now() + TimeDelta::minutes(15) + TimeDelta::microseconds(250);
    list.revoke(s, until).await.unwrap();

    let key = format!("{}revoked:{s}", redis.prefix);
    assert_eq!(redis.keys().unwrap(), vec![key.clone()]);
    let mut conn = redis.connection().unwrap();
    let expires = integer(conn.cmd(&["PEXPIRETIME", &key]).unwrap());
    assert_eq!(expires, until.timestamp_millis() + 1);

    // An earlier `until`, future or past, leaves the expiry alone; a later one extends it.
    list.revoke(s, until - TimeDelta::minutes(10))
        .await
        .unwrap();
    list.revoke(s, Utc::now() - TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(integer(conn.cmd(&["PEXPIRETIME", &key]).unwrap()), expires);
    let later = until + TimeDelta::minutes(5);
    list.revoke(s, later).await.unwrap();
    assert_eq!(
        integer(conn.cmd(&["PEXPIRETIME", &key]).unwrap()),
        later.timestamp_millis() + 1
    );
}

#[tokio::test]
async fn the_server_is_recent_enough_and_says_which_version_it_is() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let mut conn = redis.connection().unwrap();
    let info = match conn.cmd(&["INFO", "server"]).unwrap() {
        Reply::Bulk(Some(bytes)) => String::from_utf8(bytes).unwrap(),
        other => panic!("INFO answered {other:?}"),
    };
    let version = client(&redis).check_version().await.unwrap();
    assert!(info.contains(&format!("redis_version:{version}")), "{info}");
    let major: u32 = version.split('.').next().unwrap().parse().unwrap();
    assert!(major >= adapters_redis::MIN_REDIS_VERSION.0, "{version}");
}

#[tokio::test]
async fn a_revocation_already_past_writes_nothing() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    revocation(&redis)
        .revoke(session(), Utc::now() - TimeDelta::seconds(1))
        .await
        .unwrap();
    assert_eq!(redis.keys().unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn a_cached_user_is_one_versioned_json_key_with_the_ttl() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let cache = cache(&redis);
    let user = cache_contract::user_with_every_field_set();
    fill(&cache, &user, TimeDelta::seconds(90)).await;

    let key = format!("{}user:{}", redis.prefix, user.id);
    assert_eq!(redis.keys().unwrap(), vec![key.clone()]);
    let mut conn = redis.connection().unwrap();
    let ttl = integer(conn.cmd(&["PTTL", &key]).unwrap());
    assert!((88_000..=90_000).contains(&ttl), "PTTL {ttl}");
    let raw = conn.cmd(&["GET", &key]).unwrap().as_text().unwrap();
    let json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(json["v"], 2);
    assert_eq!(json["id"], user.id.to_string());
    assert_eq!(json["email"], user.email.as_str());
    assert_eq!(json["role"], "admin");
    assert_eq!(json["preferences"]["notifications"]["digest"]["hour"], 7);
    // Nothing about credentials is cached: the user's fields and the format, no hash.
    let mut fields: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_at",
            "email",
            "email_verified",
            "first_name",
            "id",
            "is_active",
            "last_login_at",
            "last_name",
            "password_changed_at",
            "preferences",
            "role",
            "updated_at",
            "username",
            "v",
            "version",
        ]
    );
    assert!(!raw.contains("hash"), "nothing about credentials is cached");

    // Invalidating deletes the entry and leaves the generation, at 1, for an hour.
    cache.invalidate(user.id).await.unwrap();
    let generation_key = format!("{}gen:{}", redis.prefix, user.id);
    assert_eq!(redis.keys().unwrap(), vec![generation_key.clone()]);
    assert_eq!(
        conn.cmd(&["GET", &generation_key])
            .unwrap()
            .as_text()
            .as_deref(),
        Some("1")
    );
    let ttl = integer(conn.cmd(&["PTTL", &generation_key]).unwrap());
    assert!((3_598_000..=3_600_000).contains(&ttl), "PTTL {ttl}");
    cache.invalidate(user.id).await.unwrap();
    assert_eq!(
        conn.cmd(&["GET", &generation_key])
            .unwrap()
            .as_text()
            .as_deref(),
        Some("2")
    );
}

/// Reads that miss write nothing for a user never invalidated, and a hit never touches the
/// generation; a miss pushes an existing generation's expiry back to an hour, so the key
/// outlives the put that follows it (the reason a restarting counter cannot match an old
/// generation again).
#[tokio::test]
async fn a_miss_refreshes_the_generation_and_a_hit_writes_nothing() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let cache = cache(&redis);
    let user = cache_contract::user_with_defaults();
    let seen = generation(&cache, user.id).await;
    assert_eq!(seen, CacheGeneration::new(0), "an absent generation is 0");
    assert_eq!(redis.keys().unwrap(), Vec::<String>::new(), "a miss wrote");

    cache.invalidate(user.id).await.unwrap();
    let generation_key = format!("{}gen:{}", redis.prefix, user.id);
    let mut conn = redis.connection().unwrap();
    // As if the key had been incremented almost an hour ago: 50 ms left.
    assert_eq!(
        conn.cmd(&["PEXPIRE", &generation_key, "50"])
            .unwrap()
            .as_int(),
        Some(1)
    );
    let seen = generation(&cache, user.id).await;
    let ttl = integer(conn.cmd(&["PTTL", &generation_key]).unwrap());
    assert!(
        (3_598_000..=3_600_000).contains(&ttl),
        "PTTL {ttl} after a miss"
    );

    // Long past the 50 ms, the generation is still there; a put with it is stored...
    sleep(TimeDelta::milliseconds(200)).await;
    assert!(cache.put(&user, TimeDelta::minutes(5), seen).await.unwrap());
    // ... and hits leave the generation's expiry alone.
    conn.cmd(&["PEXPIRE", &generation_key, "60000"]).unwrap();
    assert_eq!(get(&cache, user.id).await, Some(user.clone()));
    let ttl = integer(conn.cmd(&["PTTL", &generation_key]).unwrap());
    assert!(ttl <= 60_000, "a hit refreshed the generation: PTTL {ttl}");

    // And an invalidation now still outdates what was seen before it.
    cache.invalidate(user.id).await.unwrap();
    assert!(!cache.put(&user, TimeDelta::minutes(5), seen).await.unwrap());
    assert_eq!(get(&cache, user.id).await, None);
}

/// The sequence a counter restarting from an expired key would get wrong: a reader misses
/// when the generation key has 100 ms left (as if last incremented almost an hour ago), and
/// the next invalidation comes after those 100 ms. Had the key expired, that invalidation
/// would recreate it at 1, the value the reader saw, and let its stale put in; the miss
/// pushed the expiry back, so the invalidation takes it to 2 and the put is refused.
#[tokio::test]
async fn a_generation_key_that_outlives_the_put_refuses_the_stale_one() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let cache = cache(&redis);
    let user = cache_contract::user_with_defaults();
    cache.invalidate(user.id).await.unwrap();
    let generation_key = format!("{}gen:{}", redis.prefix, user.id);
    let mut conn = redis.connection().unwrap();
    conn.cmd(&["PEXPIRE", &generation_key, "100"]).unwrap();

    // A reader misses at generation 1, when the key had 100 ms left...
    let seen = generation(&cache, user.id).await;
    assert_eq!(seen, CacheGeneration::new(1));
    // ... which would have expired by now, were it not refreshed by the miss,
    sleep(TimeDelta::milliseconds(300)).await;
    // ... so this invalidation takes it to 2, not back to 1,
    cache.invalidate(user.id).await.unwrap();
    assert_eq!(
        conn.cmd(&["GET", &generation_key])
            .unwrap()
            .as_text()
            .as_deref(),
        Some("2")
    );
    // ... and the reader's put is refused.
    assert!(!cache.put(&user, TimeDelta::minutes(5), seen).await.unwrap());
    assert_eq!(get(&cache, user.id).await, None);
}

/// Many instances racing: readers fill from a "store" whose version writers bump before
/// invalidating. Whatever the interleaving, once every write is invalidated no stale user is
/// left cached.
#[tokio::test]
async fn concurrent_fills_and_invalidations_leave_no_stale_user() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let base = cache_contract::user_with_defaults();
    let version = Arc::new(AtomicI64::new(1));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (cache, version, id) = (cache(&redis), Arc::clone(&version), base.id);
            tokio::spawn(async move {
                for _ in 0..100 {
                    version.fetch_add(1, Ordering::SeqCst);
                    cache.invalidate(id).await.unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (cache, version, base) = (cache(&redis), Arc::clone(&version), base.clone());
            tokio::spawn(async move {
                for _ in 0..100 {
                    if let CacheLookup::Miss(seen) = cache.get(base.id).await.unwrap() {
                        let read = User {
                            version: version.load(Ordering::SeqCst),
                            ..base.clone()
                        };
                        cache.put(&read, TimeDelta::minutes(5), seen).await.unwrap();
                    }
                }
            })
        })
        .collect();
    for task in writers.into_iter().chain(readers) {
        task.await.unwrap();
    }
    if let Some(cached) = get(&cache(&redis), base.id).await {
        assert_eq!(
            cached.version,
            version.load(Ordering::SeqCst),
            "a stale user stayed cached"
        );
    }
}

/// Values a cache of this build cannot use: another format version, a field the domain now
/// refuses, not JSON at all, not UTF-8, the wrong user. Each is a miss, and is deleted.
#[tokio::test]
async fn unreadable_entries_are_misses_and_are_deleted() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let cache = cache(&redis);
    let user = cache_contract::user_with_every_field_set();
    let key = format!("{}user:{}", redis.prefix, user.id);
    fill(&cache, &user, TimeDelta::minutes(5)).await;
    let mut conn = redis.connection().unwrap();
    let valid: serde_json::Value =
        serde_json::from_str(&conn.cmd(&["GET", &key]).unwrap().as_text().unwrap()).unwrap();

    let mut next_version = valid.clone();
    next_version["v"] = 3.into();
    // What the previous release wrote: format 1, without `password_changed_at`.
    let mut previous_version = valid.clone();
    previous_version["v"] = 1.into();
    previous_version
        .as_object_mut()
        .unwrap()
        .remove("password_changed_at");
    let mut bad_username = valid.clone();
    bad_username["username"] = "has spaces".into();
    let mut bad_preferences = valid.clone();
    bad_preferences["preferences"] = serde_json::json!("dark");
    let mut other_user = valid.clone();
    other_user["id"] = Uuid::now_v7().to_string().into();
    let mut missing_field = valid.clone();
    missing_field.as_object_mut().unwrap().remove("email");
    let values: Vec<Vec<u8>> = vec![
        next_version.to_string().into_bytes(),
        previous_version.to_string().into_bytes(),
        bad_username.to_string().into_bytes(),
        bad_preferences.to_string().into_bytes(),
        other_user.to_string().into_bytes(),
        missing_field.to_string().into_bytes(),
        b"not json".to_vec(),
        vec![0xff, 0xfe, 0x00],
    ];
    for value in values {
        let set = conn
            .command(&[b"SET", key.as_bytes(), &value, b"PX", b"60000"])
            .unwrap();
        assert_eq!(set, Reply::Status("OK".into()));
        assert_eq!(
            get(&cache, user.id).await,
            None,
            "{}",
            String::from_utf8_lossy(&value)
        );
        assert_eq!(
            integer(conn.cmd(&["EXISTS", &key]).unwrap()),
            0,
            "an unreadable entry was left in place"
        );
    }
}

#[tokio::test]
async fn two_instances_sharing_a_server_see_each_others_writes() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let (list_a, list_b) = (revocation(&redis), revocation(&redis));
    let s = session();
    list_a
        .revoke(s, Utc::now() + TimeDelta::minutes(5))
        .await
        .unwrap();
    assert!(list_b.is_revoked(s).await.unwrap());

    let (cache_a, cache_b) = (cache(&redis), cache(&redis));
    let user = cache_contract::user_with_every_field_set();
    fill(&cache_a, &user, TimeDelta::minutes(5)).await;
    assert_eq!(get(&cache_b, user.id).await, Some(user.clone()));
    cache_b.invalidate(user.id).await.unwrap();
    assert_eq!(get(&cache_a, user.id).await, None);
    // A misses, B invalidates: A's put is refused, though B is another instance.
    let seen_by_a = generation(&cache_a, user.id).await;
    cache_b.invalidate(user.id).await.unwrap();
    assert!(
        !cache_a
            .put(&user, TimeDelta::minutes(5), seen_by_a)
            .await
            .unwrap()
    );
    assert_eq!(get(&cache_b, user.id).await, None);
}

#[tokio::test]
async fn prefixes_keep_deployments_apart() {
    let (Some(one), Some(two)) = (TestRedis::from_env(), TestRedis::from_env()) else {
        return;
    };
    let s = session();
    revocation(&one)
        .revoke(s, Utc::now() + TimeDelta::minutes(5))
        .await
        .unwrap();
    assert!(!revocation(&two).is_revoked(s).await.unwrap());
    let user = cache_contract::user_with_defaults();
    fill(&cache(&one), &user, TimeDelta::minutes(5)).await;
    assert_eq!(get(&cache(&two), user.id).await, None);
    // Generations too: an invalidation under one prefix does not outdate the other's.
    let seen_by_two = generation(&cache(&two), user.id).await;
    cache(&one).invalidate(user.id).await.unwrap();
    assert!(
        cache(&two)
            .put(&user, TimeDelta::minutes(5), seen_by_two)
            .await
            .unwrap()
    );
    assert_eq!(two.keys().unwrap().len(), 1);
}

#[tokio::test]
async fn many_concurrent_calls_share_a_small_pool() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let client = RedisClient::connect(RedisSettings {
        pool_size: 2,
        ..settings(&redis)
    })
    .unwrap();
    let list = RedisRevocation::new(client.clone());
    let until = Utc::now() + TimeDelta::minutes(5);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let list = list.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    let s = session();
                    list.revoke(s, until).await.unwrap();
                    assert!(list.is_revoked(s).await.unwrap());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(redis.keys().unwrap().len(), 32 * 20);
}

#[tokio::test]
async fn ready_when_the_server_answers() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    client(&redis).ready().await.unwrap();
}

#[tokio::test]
async fn the_test_guard_deletes_its_keys() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let url = redis.url.clone();
    let prefix = redis.prefix.clone();
    let id = UserId::from_uuid(Uuid::now_v7());
    let user = domain::model::User {
        id,
        ..cache_contract::user_with_defaults()
    };
    fill(&cache(&redis), &user, TimeDelta::minutes(5)).await;
    cache(&redis).invalidate(id).await.unwrap();
    fill(&cache(&redis), &user, TimeDelta::minutes(5)).await;
    assert_eq!(
        redis.keys().unwrap().len(),
        2,
        "the entry and the generation"
    );
    drop(redis);
    let mut conn = ums_tests::support::redis::SyncRedis::open(&url).unwrap();
    for kind in ["user", "gen"] {
        let key = format!("{prefix}{kind}:{id}");
        assert_eq!(integer(conn.cmd(&["EXISTS", &key]).unwrap()), 0, "{key}");
    }
}

/// Settings that cannot work are refused by `connect`, before any connection, and no error
/// or `Debug` output carries the URL's password. These need no server.
#[test]
fn bad_settings_are_refused_at_once_without_the_password() {
    let base = RedisSettings::new("redis://:s3cret@127.0.0.1:6379/0");
    assert_eq!(base.pool_size, RedisSettings::DEFAULT_POOL_SIZE);
    assert_eq!(base.key_prefix, "ums:");
    assert!(!format!("{base:?}").contains("s3cret"));

    for (settings, what) in [
        (
            RedisSettings::new("redis://:s3cret@127.0.0.1:6379/notanumber"),
            "bad database",
        ),
        (
            RedisSettings::new("http://:s3cret@127.0.0.1/"),
            "bad scheme",
        ),
        (RedisSettings::new("s3cret"), "not a URL"),
        (
            RedisSettings::new("rediss://:s3cret@127.0.0.1:6379"),
            "TLS is not compiled in",
        ),
        (
            RedisSettings {
                pool_size: 0,
                ..base.clone()
            },
            "empty pool",
        ),
        (
            RedisSettings {
                command_timeout: Duration::ZERO,
                ..base.clone()
            },
            "zero timeout",
        ),
    ] {
        let error = RedisClient::connect(settings).expect_err(what);
        assert!(
            matches!(error, RedisError::InvalidSettings(_)),
            "{what}: {error:?}"
        );
        let mut text = format!("{error} {error:?}");
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            text.push_str(&format!(" {cause} {cause:?}"));
            source = cause.source();
        }
        assert!(!text.contains("s3cret"), "{what}: {text}");
    }

    // A well-formed URL is accepted with the server down (nothing listens on port 1).
    let client = RedisClient::connect(RedisSettings::new("redis://:s3cret@127.0.0.1:1/2")).unwrap();
    let debug = format!("{client:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("127.0.0.1:1"), "{debug}");
    assert_eq!(
        redact_url("redis://:s3cret@127.0.0.1:1/2"),
        "redis://:***@127.0.0.1:1/2"
    );
}

/// The restored marker: absent on a server that never had the list restored, or lost its
/// data; present once marked; shared by instances; separate per prefix.
#[tokio::test]
async fn a_server_that_lost_its_data_reads_as_not_restored() {
    let (Some(redis), Some(other)) = (TestRedis::from_env(), TestRedis::from_env()) else {
        return;
    };
    let list = revocation(&redis);
    assert!(
        !list.is_restored().await.unwrap(),
        "a fresh server was never restored"
    );
    list.mark_restored().await.unwrap();
    assert!(list.is_restored().await.unwrap());
    assert!(
        revocation(&redis).is_restored().await.unwrap(),
        "seen by every instance"
    );
    assert!(
        !revocation(&other).is_restored().await.unwrap(),
        "per prefix"
    );
    let s = session();
    list.revoke(s, Utc::now() + TimeDelta::minutes(5))
        .await
        .unwrap();
    // The server loses everything (a restart without persistence): the marker goes with it.
    redis.delete_keys().unwrap();
    assert!(!list.is_revoked(s).await.unwrap());
    assert!(!list.is_restored().await.unwrap(), "the loss is noticed");
}
