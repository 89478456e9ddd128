//! Contract checks for `UserCache`.
//!
//! Every check takes a fresh adapter; the one about expiry also takes `advance`, an async
//! callback that lets time pass for the adapter: an adapter on a test clock moves the clock,
//! one whose expiry is kept by a server (Redis key TTLs) sleeps. The checks sleep for at most
//! [`SHORT_TTL`] + [`SLACK`] in all, and only put entries with a [`SHORT_TTL`] that they read
//! back at once, so a slow machine does not make them flaky. User ids are fresh UUIDs, so
//! checks may share one server and run in parallel.
//!
//! Puts carry the generation of a miss, as `CachedStore` does: a check first takes the
//! user's generation from a `get` that missed, then puts with it. The checks of the
//! generation (`put_after_invalidate_is_refused`, `put_with_the_current_generation_is_stored`,
//! `invalidate_changes_the_generation`, `a_read_overtaken_by_an_invalidation_is_not_cached`)
//! are the defence against a stale user being written back into the cache.
//!
//! Run each check as its own test (so a failure names the property), or all of them with
//! [`run_all`]. A check panics, naming the broken property, when the adapter breaks it.

use chrono::{DateTime, TimeDelta, Utc};
use domain::model::{Email, PersonName, Preferences, Role, User, UserId, Username};
use domain::ports::{CacheGeneration, CacheLookup, UserCache};
use uuid::Uuid;

/// A time to live no check waits out: the entry must still be there.
pub const LONG_TTL: TimeDelta = TimeDelta::hours(1);

/// A time to live the expiry check waits out. Entries are read back right after being put
/// with it, well within it.
pub const SHORT_TTL: TimeDelta = TimeDelta::milliseconds(600);

/// How much longer than [`SHORT_TTL`] the expiry check waits (a server's expiry may lag).
pub const SLACK: TimeDelta = TimeDelta::milliseconds(300);

fn at(rfc3339: &str) -> DateTime<Utc> {
    match DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => t.to_utc(),
        Err(error) => panic!("bad test timestamp {rfc3339}: {error}"),
    }
}

fn fresh_id() -> UserId {
    UserId::from_uuid(Uuid::now_v7())
}

/// A user with a fresh id and every field set to a value other than its default: names with
/// non-ASCII letters, nested preferences (with values JSON encoders commonly get wrong:
/// a float that needs every digit, an integer beyond 2^53, escapes, `null`), the admin role,
/// a verified address, a last login, a version above 1 and microsecond timestamps.
#[must_use]
pub fn user_with_every_field_set() -> User {
    let preferences = serde_json::json!({
        "theme": "dark",
        "locale": "fr-CA",
        "notifications": {
            "email": true,
            "push": false,
            "digest": { "hour": 7, "days": ["mon", "thu"], "quiet": null }
        },
        "ratio": 0.1,
        "precise": 8.477_443_011_185_386e46,
        "tiny": 5e-324,
        "big": 9_007_199_254_740_993_u64,
        "negative": -42,
        "text": "quote \" backslash \\ newline \n tab \t unicode é ✓ 日本",
        "empty": {}
    });
    User {
        id: fresh_id(),
        email: parse(Email::parse("ada.lovelace+ums@example.co.uk")),
        username: parse(Username::parse("Ada_L.ove-1")),
        first_name: parse(PersonName::parse("Ada Zoë")),
        last_name: parse(PersonName::parse("King-Noël, Countess of Lovelace")),
        role: Role::Admin,
        is_active: true,
        email_verified: true,
        preferences: parse(Preferences::parse(preferences)),
        created_at: at("2024-02-29T23:59:59.123456Z"),
        updated_at: at("2025-06-30T08:15:00.000001Z"),
        last_login_at: Some(at("2025-07-01T00:00:00.999999Z")),
        version: 42,
        password_changed_at: at("2025-03-31T12:00:00.654321Z"),
    }
}

/// A user with a fresh id and the other value of every field that has two: an ordinary,
/// inactive, unverified user who never logged in, with empty names and preferences.
#[must_use]
pub fn user_with_defaults() -> User {
    User {
        id: fresh_id(),
        email: parse(Email::parse("plain@example.com")),
        username: parse(Username::parse("plain")),
        first_name: PersonName::default(),
        last_name: PersonName::default(),
        role: Role::User,
        is_active: false,
        email_verified: false,
        preferences: Preferences::default(),
        created_at: at("2020-01-01T00:00:00Z"),
        updated_at: at("2020-01-01T00:00:00Z"),
        last_login_at: None,
        version: 1,
        password_changed_at: at("2020-01-01T00:00:00Z"),
    }
}

fn parse<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("bad test value: {error:?}"),
    }
}

async fn lookup(cache: &impl UserCache, id: UserId) -> CacheLookup {
    match cache.get(id).await {
        Ok(found) => found,
        Err(error) => panic!("get({id}) failed: {error:?}"),
    }
}

/// The cached user, if any.
async fn get(cache: &impl UserCache, id: UserId) -> Option<User> {
    match lookup(cache, id).await {
        CacheLookup::Hit(user) => Some(user),
        CacheLookup::Miss(_) => None,
    }
}

/// The generation of a miss; panics on a hit (naming `why` the user should not be cached).
async fn generation(cache: &impl UserCache, id: UserId, why: &str) -> CacheGeneration {
    match lookup(cache, id).await {
        CacheLookup::Miss(seen) => seen,
        CacheLookup::Hit(user) => panic!("{why}, yet {id} is cached: {user:?}"),
    }
}

/// `put`, returning whether it stored.
async fn try_put(
    cache: &impl UserCache,
    user: &User,
    ttl: TimeDelta,
    seen: CacheGeneration,
) -> bool {
    match cache.put(user, ttl, seen).await {
        Ok(stored) => stored,
        Err(error) => panic!("put({}, {ttl}, {seen:?}) failed: {error:?}", user.id),
    }
}

/// A `put` that must store: `seen` is the user's current generation and `ttl` is positive.
async fn put(cache: &impl UserCache, user: &User, ttl: TimeDelta, seen: CacheGeneration) {
    assert!(
        try_put(cache, user, ttl, seen).await,
        "a put with the current generation ({seen:?}) and a positive ttl was refused"
    );
}

/// A `put` with a `ttl` of zero or less: it must report that it stored nothing.
async fn put_nothing(cache: &impl UserCache, user: &User, ttl: TimeDelta, seen: CacheGeneration) {
    assert!(
        !try_put(cache, user, ttl, seen).await,
        "a put with a ttl of {ttl} reported that it stored"
    );
}

async fn invalidate(cache: &impl UserCache, id: UserId) {
    if let Err(error) = cache.invalidate(id).await {
        panic!("invalidate({id}) failed: {error:?}");
    }
}

/// A user never put is a miss.
pub async fn unknown_user_is_a_miss(cache: impl UserCache) {
    assert_eq!(
        get(&cache, fresh_id()).await,
        None,
        "a user never cached was found"
    );
}

/// Every field of a user comes back exactly as it was put, for users with every field set
/// and with every field at its other value.
pub async fn every_field_round_trips(cache: impl UserCache) {
    for user in [user_with_every_field_set(), user_with_defaults()] {
        let seen = generation(&cache, user.id, "never put").await;
        put(&cache, &user, LONG_TTL, seen).await;
        let cached = get(&cache, user.id).await;
        assert_eq!(
            cached.as_ref(),
            Some(&user),
            "the cached user differs from the one put"
        );
    }
}

/// Putting a user again (with the same, still current, generation) replaces the earlier
/// entry: the latest successful put wins.
pub async fn put_overwrites(cache: impl UserCache) {
    let first = user_with_every_field_set();
    let seen = generation(&cache, first.id, "never put").await;
    put(&cache, &first, LONG_TTL, seen).await;
    let mut second = first.clone();
    second.version += 1;
    second.username = parse(Username::parse("renamed"));
    second.preferences = parse(Preferences::parse(serde_json::json!({"theme": "light"})));
    second.last_login_at = None;
    put(&cache, &second, LONG_TTL, seen).await;
    assert_eq!(
        get(&cache, first.id).await,
        Some(second),
        "the second put did not replace the first"
    );
}

/// After `invalidate` the user is a miss; invalidating a user that is not cached is `Ok`.
pub async fn invalidate_removes(cache: impl UserCache) {
    let user = user_with_every_field_set();
    let seen = generation(&cache, user.id, "never put").await;
    put(&cache, &user, LONG_TTL, seen).await;
    invalidate(&cache, user.id).await;
    assert_eq!(
        get(&cache, user.id).await,
        None,
        "an invalidated user is still cached"
    );
    invalidate(&cache, user.id).await;
    invalidate(&cache, fresh_id()).await;
}

/// Users are independent: putting or invalidating one leaves the others as they were.
pub async fn users_are_independent(cache: impl UserCache) {
    let first = user_with_every_field_set();
    let second = user_with_defaults();
    let third = user_with_defaults();
    let seen_first = generation(&cache, first.id, "never put").await;
    let seen_second = generation(&cache, second.id, "never put").await;
    let seen_third = generation(&cache, third.id, "never put").await;
    put(&cache, &first, LONG_TTL, seen_first).await;
    put(&cache, &second, LONG_TTL, seen_second).await;
    assert_eq!(get(&cache, first.id).await.as_ref(), Some(&first));
    assert_eq!(get(&cache, second.id).await.as_ref(), Some(&second));
    invalidate(&cache, first.id).await;
    assert_eq!(get(&cache, first.id).await, None);
    assert_eq!(
        get(&cache, second.id).await,
        Some(second),
        "invalidating one user removed another"
    );
    assert!(
        try_put(&cache, &third, LONG_TTL, seen_third).await,
        "invalidating one user refused a put of another"
    );
    assert_eq!(get(&cache, third.id).await, Some(third));
}

/// A put with a zero or negative `ttl` caches nothing, and an older entry of the same user
/// is not served after it either (the cache holds a user "for at most `ttl`").
/// It reports that it stored nothing, and removes the older entry even when its `seen` is
/// no longer current.
pub async fn non_positive_ttl_caches_nothing(cache: impl UserCache) {
    let user = user_with_every_field_set();
    let seen = generation(&cache, user.id, "never put").await;
    put_nothing(&cache, &user, TimeDelta::zero(), seen).await;
    assert_eq!(get(&cache, user.id).await, None, "cached with a zero ttl");

    let other = user_with_defaults();
    let seen = generation(&cache, other.id, "never put").await;
    put(&cache, &other, LONG_TTL, seen).await;
    let mut newer = other.clone();
    newer.version += 1;
    put_nothing(&cache, &newer, TimeDelta::milliseconds(-1), seen).await;
    assert_eq!(
        get(&cache, other.id).await,
        None,
        "an older entry outlived a put with a negative ttl"
    );

    let stale = user_with_defaults();
    let old = generation(&cache, stale.id, "never put").await;
    invalidate(&cache, stale.id).await;
    let current = generation(&cache, stale.id, "just invalidated").await;
    put(&cache, &stale, LONG_TTL, current).await;
    put_nothing(&cache, &stale, TimeDelta::zero(), old).await;
    assert_eq!(
        get(&cache, stale.id).await,
        None,
        "a put with a zero ttl and an outdated generation left the entry in place"
    );
}

/// A put with a generation seen before an `invalidate` is refused: it reports `false`, and
/// nothing is cached, neither the user it carried nor anything else.
pub async fn put_after_invalidate_is_refused(cache: impl UserCache) {
    let user = user_with_every_field_set();
    let seen = generation(&cache, user.id, "never put").await;
    invalidate(&cache, user.id).await;
    assert!(
        !try_put(&cache, &user, LONG_TTL, seen).await,
        "a put with a generation seen before an invalidate was accepted"
    );
    assert_eq!(
        get(&cache, user.id).await,
        None,
        "a refused put cached the user"
    );

    // The same with an entry present before: the invalidation removes it, and the refused
    // put does not bring it (or its own user) back.
    let cached = user_with_defaults();
    let seen = generation(&cache, cached.id, "never put").await;
    put(&cache, &cached, LONG_TTL, seen).await;
    invalidate(&cache, cached.id).await;
    let mut changed = cached.clone();
    changed.version += 1;
    assert!(
        !try_put(&cache, &changed, LONG_TTL, seen).await,
        "a put with a generation seen before an invalidate was accepted"
    );
    assert_eq!(
        get(&cache, cached.id).await,
        None,
        "a refused put left a user cached"
    );
}

/// A put with the generation of the latest miss is stored, after an invalidation too, and
/// after several: an invalidation makes only the generations seen before it outdated.
pub async fn put_with_the_current_generation_is_stored(cache: impl UserCache) {
    let user = user_with_every_field_set();
    let seen = generation(&cache, user.id, "never put").await;
    put(&cache, &user, LONG_TTL, seen).await;
    assert_eq!(get(&cache, user.id).await.as_ref(), Some(&user));

    for round in 1..=3 {
        invalidate(&cache, user.id).await;
        let mut newer = user.clone();
        newer.version += round;
        let seen = generation(&cache, user.id, "just invalidated").await;
        put(&cache, &newer, LONG_TTL, seen).await;
        assert_eq!(
            get(&cache, user.id).await,
            Some(newer),
            "a put with the generation seen after invalidation {round} was not served"
        );
    }
}

/// An `invalidate` between two misses changes the generation they report; without one, a
/// generation from earlier still lets a put through (nothing made it outdated).
pub async fn invalidate_changes_the_generation(cache: impl UserCache) {
    let user = user_with_defaults();
    let before = generation(&cache, user.id, "never put").await;
    invalidate(&cache, user.id).await;
    let after = generation(&cache, user.id, "just invalidated").await;
    assert_ne!(before, after, "an invalidate left the generation as it was");
    invalidate(&cache, user.id).await;
    let again = generation(&cache, user.id, "just invalidated").await;
    assert_ne!(
        after, again,
        "a second invalidate left the generation as it was"
    );
    assert_ne!(
        before, again,
        "two invalidations brought an old generation back"
    );

    // Invalidating a user that is not cached (just now, never put) advances it all the same.
    let other = user_with_defaults();
    let first = generation(&cache, other.id, "never put").await;
    let second = generation(&cache, other.id, "never put").await;
    invalidate(&cache, other.id).await;
    assert!(
        !try_put(&cache, &other, LONG_TTL, first).await,
        "invalidating an uncached user did not outdate a generation seen before"
    );
    assert!(
        !try_put(&cache, &other, LONG_TTL, second).await,
        "invalidating an uncached user did not outdate a generation seen before"
    );

    // Two misses with no invalidation between: the earlier generation is still current.
    let earlier = generation(&cache, other.id, "refused puts").await;
    let _later = generation(&cache, other.id, "refused puts").await;
    put(&cache, &other, LONG_TTL, earlier).await;
    assert_eq!(get(&cache, other.id).await, Some(other));
}

/// The race the generation exists for: request A misses (generation `g`) and reads version 1
/// from the store; request B updates the user to version 2 and invalidates it; A then puts
/// version 1 with `g`. The put is refused and the user is still a miss, so the next reader
/// goes to the store and gets version 2, which it can cache.
pub async fn a_read_overtaken_by_an_invalidation_is_not_cached(cache: impl UserCache) {
    let v1 = user_with_every_field_set();
    let mut v2 = v1.clone();
    v2.version += 1;
    v2.is_active = false;

    let seen_by_a = generation(&cache, v1.id, "never put").await;
    // A reads v1 from the store here; B writes v2, then invalidates:
    invalidate(&cache, v1.id).await;
    assert!(
        !try_put(&cache, &v1, LONG_TTL, seen_by_a).await,
        "the stale user read before the invalidation was put back into the cache"
    );
    assert_eq!(
        get(&cache, v1.id).await,
        None,
        "the stale user read before the invalidation is served"
    );

    // The next reader misses, reads v2 and caches it.
    let seen_by_c = generation(&cache, v1.id, "the stale put was refused").await;
    put(&cache, &v2, LONG_TTL, seen_by_c).await;
    assert_eq!(get(&cache, v1.id).await, Some(v2.clone()));

    // A late put of A's, even after C's, changes nothing either.
    assert!(
        !try_put(&cache, &v1, LONG_TTL, seen_by_a).await,
        "a put with a generation from before an invalidation replaced a newer entry"
    );
    assert_eq!(
        get(&cache, v1.id).await,
        Some(v2),
        "a refused put replaced the newer entry"
    );
}

/// Each entry expires after its own `ttl`, counted from its latest put: a short-lived entry
/// is gone once its `ttl` has passed, a long-lived one put alongside is not, and a put with a
/// shorter `ttl` shortens an entry first put with a long one.
pub async fn entries_expire_after_their_ttl<A>(cache: impl UserCache, advance: A)
where
    A: AsyncFn(TimeDelta),
{
    let short = user_with_every_field_set();
    let long = user_with_defaults();
    let shortened = user_with_every_field_set();
    let seen_short = generation(&cache, short.id, "never put").await;
    let seen_long = generation(&cache, long.id, "never put").await;
    let seen_shortened = generation(&cache, shortened.id, "never put").await;
    put(&cache, &short, SHORT_TTL, seen_short).await;
    put(&cache, &long, LONG_TTL, seen_long).await;
    put(&cache, &shortened, LONG_TTL, seen_shortened).await;
    put(&cache, &shortened, SHORT_TTL, seen_shortened).await;
    assert_eq!(
        get(&cache, short.id).await.as_ref(),
        Some(&short),
        "an entry is missing right after it was put"
    );
    assert_eq!(get(&cache, shortened.id).await.as_ref(), Some(&shortened));

    advance(SHORT_TTL + SLACK).await;

    assert_eq!(
        get(&cache, short.id).await,
        None,
        "an entry outlived its ttl"
    );
    assert_eq!(
        get(&cache, shortened.id).await,
        None,
        "an entry put again with a shorter ttl kept the longer one"
    );
    assert_eq!(
        get(&cache, long.id).await,
        Some(long),
        "an entry expired before its ttl"
    );
}

/// Runs every check, each on a fresh adapter from `fresh`; `advance` as for
/// [`entries_expire_after_their_ttl`].
pub async fn run_all<C, F, A>(mut fresh: F, advance: A)
where
    C: UserCache,
    F: FnMut() -> C,
    A: AsyncFn(TimeDelta),
{
    unknown_user_is_a_miss(fresh()).await;
    every_field_round_trips(fresh()).await;
    put_overwrites(fresh()).await;
    invalidate_removes(fresh()).await;
    users_are_independent(fresh()).await;
    non_positive_ttl_caches_nothing(fresh()).await;
    put_after_invalidate_is_refused(fresh()).await;
    put_with_the_current_generation_is_stored(fresh()).await;
    invalidate_changes_the_generation(fresh()).await;
    a_read_overtaken_by_an_invalidation_is_not_cached(fresh()).await;
    entries_expire_after_their_ttl(fresh(), advance).await;
}
