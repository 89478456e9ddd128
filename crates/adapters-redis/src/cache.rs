//! `RedisUserCache`: the [`UserCache`] port as JSON values with a TTL, shared by every
//! instance, so an invalidation by one is seen by all; filled by compare-and-set against a
//! per-user invalidation generation, so no instance can write back a user read before one.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use deadpool_redis::redis;
use domain::model::{Email, PersonName, Preferences, Role, User, UserId, UserVersion, Username};
use domain::ports::{CacheError, CacheGeneration, CacheLookup, UserCache};
use serde::{Deserialize, Serialize};

use crate::{RedisClient, RedisError};

/// The version of [`CachedUser`]'s format. Bump it when the format changes: entries of
/// another version are then read as misses (and deleted), so instances of two releases can
/// share a server during a rolling deploy without misreading each other's entries.
const FORMAT: u32 = 2;

/// `get`: `KEYS[1]` the user's entry, `KEYS[2]` its generation, `ARGV[1]` the generation
/// key's lifetime in milliseconds. Replies `{1, entry}` on a hit, `{0, generation}` on a miss
/// (`"0"` when the generation key is absent), and on a miss pushes the generation key's
/// expiry to `ARGV[1]` from now, so that it outlives the `put` this miss leads to.
const GET_SCRIPT: &str = r"
local entry = redis.call('GET', KEYS[1])
if entry then return {1, entry} end
local generation = redis.call('GET', KEYS[2])
if not generation then return {0, '0'} end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return {0, generation}
";

/// `put`: `KEYS[1]` the user's entry, `KEYS[2]` its generation, `ARGV[1]` the generation
/// seen (decimal), `ARGV[2]` the entry, `ARGV[3]` its TTL in milliseconds (positive).
/// Stores and replies 1 only if the generation is still the one seen (an absent key is
/// `"0"`); otherwise writes nothing and replies 0.
const PUT_SCRIPT: &str = r"
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
";

/// Users cached as keys `{prefix}user:{user_id}` holding a versioned JSON document of every
/// field of [`User`], expiring after the `ttl` given to `put` (in whole milliseconds, rounded
/// down; a `ttl` under a millisecond caches nothing and removes any older entry), and each
/// user's invalidation generation as `{prefix}gen:{user_id}`, a counter.
///
/// # Commands
///
/// - `get`: one Lua script (`EVAL`): `GET` the entry; on a miss, `GET` the generation (an
///   absent key is 0) and, if the key exists, `PEXPIRE` it to
///   [`GENERATION_TTL`](Self::GENERATION_TTL) from now. A hit writes nothing.
/// - `put`: one Lua script: `GET` the generation and, only if it still equals the one seen,
///   `SET` the entry `PX ttl`. A script runs atomically, so no `invalidate` can fall between
///   the check and the write. (A `ttl` under a millisecond is a plain `DEL` of the entry.)
/// - `invalidate`: `MULTI`, `DEL` the entry, `INCR` the generation, `PEXPIRE` it to
///   [`GENERATION_TTL`](Self::GENERATION_TTL), `EXEC`.
///
/// # Why an expiring generation is safe
///
/// A generation key lives an hour after its latest `INCR` or miss, and an absent key reads
/// as 0, so a counter can restart: a key at 1 that expires and is incremented again is at 1
/// again. That would let a `seen` of 1 match after an invalidation, if the key could expire
/// between a `get` and its `put`. It cannot, as long as the `put` comes less than an hour
/// after its `get` (`CachedStore` puts right after one store read, which its pool and
/// command timeouts bound to seconds):
///
/// - if the key existed when `get` read `g`, the same script pushed its expiry to an hour
///   after that read, and every `INCR` since pushed it later still, so the key is there at
///   the `put`; only `INCR` changes it, so it equals `g` exactly when no `invalidate` came
///   in between;
/// - if the key was absent (`g` = 0), an `invalidate` since then created it at 1 or more,
///   expiring an hour after that `invalidate`, so after the `put`: the `put` sees a non-zero
///   value and is refused.
///
/// Refreshing on the miss, not only on `INCR`, is what makes the first case hold: without it
/// a key last incremented almost an hour before a `get` could expire a moment after it, and
/// the next `invalidate` recreate it at the very value that `get` saw.
///
/// This relies on keys not vanishing before they expire, by the server's clock: run Redis
/// without eviction (`maxmemory-policy noeviction`, its default, or a memory limit never
/// reached). An evicted generation key would restart its count just as an early expiry
/// would, and writes lost outright (a failover to a lagging replica) lose invalidations
/// whatever the scheme. During a rolling deploy, instances of an older release still put
/// unconditionally, so the race stays open until they are gone.
///
/// A value that no longer reads back as a valid user (another format version, a field the
/// domain's constructors now refuse, corrupt data) is a miss and is deleted. A generation key
/// that does not hold a counter (never written by this adapter) fails `get` with a
/// [`CacheError`], so nothing is cached for that user. Every call fails with a [`CacheError`]
/// wrapping a [`RedisError`] within the client's command timeout when Redis cannot answer.
///
/// A user's two keys are in different hash slots: this adapter needs a single server (or
/// primary), not Redis Cluster.
#[derive(Debug, Clone)]
pub struct RedisUserCache {
    client: RedisClient,
}

impl RedisUserCache {
    /// How long a generation key lives after its latest `INCR`, or after the latest miss
    /// that read it. It must exceed, by far, the longest time between a `get` and the `put`
    /// that follows it (one store read: seconds at most); the type's documentation says why
    /// that is enough.
    pub const GENERATION_TTL: Duration = Duration::from_secs(60 * 60);

    /// The user cache on `client`'s server, under its key prefix.
    #[must_use]
    pub fn new(client: RedisClient) -> Self {
        Self { client }
    }

    fn key(&self, id: UserId) -> String {
        self.client.key("user", id)
    }

    fn generation_key(&self, id: UserId) -> String {
        self.client.key("gen", id)
    }
}

/// [`RedisUserCache::GENERATION_TTL`] in milliseconds, as Redis takes it.
fn generation_ttl_millis() -> u64 {
    u64::try_from(RedisUserCache::GENERATION_TTL.as_millis()).unwrap_or(u64::MAX)
}

/// The stored form of a [`User`]: every field, as the domain's constructors read them back.
#[derive(Debug, Serialize, Deserialize)]
struct CachedUser {
    v: u32,
    id: UserId,
    email: String,
    username: String,
    first_name: String,
    last_name: String,
    role: Role,
    is_active: bool,
    email_verified: bool,
    preferences: serde_json::Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
    version: UserVersion,
    password_changed_at: DateTime<Utc>,
}

/// Just the format version, read first so another format is a clean miss.
#[derive(Deserialize)]
struct FormatTag {
    v: u32,
}

impl From<&User> for CachedUser {
    fn from(user: &User) -> Self {
        // Destructured, so a field added to `User` does not compile until it is cached.
        let User {
            id,
            email,
            username,
            first_name,
            last_name,
            role,
            is_active,
            email_verified,
            preferences,
            created_at,
            updated_at,
            last_login_at,
            version,
            password_changed_at,
        } = user;
        Self {
            v: FORMAT,
            id: *id,
            email: email.as_str().to_owned(),
            username: username.as_str().to_owned(),
            first_name: first_name.as_str().to_owned(),
            last_name: last_name.as_str().to_owned(),
            role: *role,
            is_active: *is_active,
            email_verified: *email_verified,
            preferences: serde_json::Value::Object(preferences.as_map().clone()),
            created_at: *created_at,
            updated_at: *updated_at,
            last_login_at: *last_login_at,
            version: *version,
            password_changed_at: *password_changed_at,
        }
    }
}

impl CachedUser {
    fn into_user(self) -> Result<User, String> {
        Ok(User {
            id: self.id,
            email: Email::parse(&self.email).map_err(|e| format!("email {e}"))?,
            username: Username::parse(&self.username).map_err(|e| format!("username {e}"))?,
            first_name: PersonName::parse(&self.first_name)
                .map_err(|e| format!("first_name {e}"))?,
            last_name: PersonName::parse(&self.last_name).map_err(|e| format!("last_name {e}"))?,
            role: self.role,
            is_active: self.is_active,
            email_verified: self.email_verified,
            preferences: Preferences::parse(self.preferences)
                .map_err(|e| format!("preferences {e}"))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_login_at: self.last_login_at,
            version: self.version,
            password_changed_at: self.password_changed_at,
        })
    }
}

/// The user in a cached value, or why it cannot be used.
fn decode(raw: &[u8], expected: UserId) -> Result<User, String> {
    let tag: FormatTag = serde_json::from_slice(raw).map_err(|e| format!("not a document: {e}"))?;
    if tag.v != FORMAT {
        return Err(format!(
            "format version {} (this build reads {FORMAT})",
            tag.v
        ));
    }
    let cached: CachedUser =
        serde_json::from_slice(raw).map_err(|e| format!("malformed document: {e}"))?;
    if cached.id != expected {
        return Err(format!("holds user {}", cached.id));
    }
    cached.into_user()
}

fn cache_error(error: RedisError) -> CacheError {
    CacheError(Box::new(error))
}

/// A generation as the scripts reply it: the decimal text of a counter.
fn parse_generation(raw: &[u8]) -> Result<CacheGeneration, CacheError> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .map(CacheGeneration::new)
        .ok_or_else(|| {
            cache_error(RedisError::Command(
                format!(
                    "generation key holds {:?}, not a counter",
                    String::from_utf8_lossy(raw)
                )
                .into(),
            ))
        })
}

/// What the `get` script found, before the entry is decoded.
enum RawLookup {
    Hit(Vec<u8>),
    Miss(CacheGeneration),
}

impl RedisUserCache {
    /// Runs the `get` script.
    async fn lookup(&self, id: UserId) -> Result<RawLookup, CacheError> {
        let (hit, raw): (i64, Vec<u8>) = self
            .client
            .query(
                redis::cmd("EVAL")
                    .arg(GET_SCRIPT)
                    .arg(2)
                    .arg(self.key(id))
                    .arg(self.generation_key(id))
                    .arg(generation_ttl_millis()),
            )
            .await
            .map_err(cache_error)?;
        if hit == 0 {
            parse_generation(&raw).map(RawLookup::Miss)
        } else {
            Ok(RawLookup::Hit(raw))
        }
    }
}

#[async_trait]
impl UserCache for RedisUserCache {
    async fn get(&self, id: UserId) -> Result<CacheLookup, CacheError> {
        // An unreadable entry is deleted and the lookup made again, so that the miss carries
        // a generation read (and its key refreshed) like any other. Only if another unreadable
        // entry is there again at once does the call fail.
        for attempt in 0..2 {
            let raw = match self.lookup(id).await? {
                RawLookup::Miss(seen) => return Ok(CacheLookup::Miss(seen)),
                RawLookup::Hit(raw) => raw,
            };
            let reason = match decode(&raw, id) {
                Ok(user) => return Ok(CacheLookup::Hit(user)),
                Err(reason) => reason,
            };
            tracing::warn!(user_id = %id, %reason, attempt, "unreadable user cache entry; deleting it");
            self.client
                .query::<()>(redis::cmd("DEL").arg(self.key(id)))
                .await
                .map_err(cache_error)?;
        }
        Err(cache_error(RedisError::Command(
            "unreadable user cache entries keep being written".into(),
        )))
    }

    async fn put(
        &self,
        user: &User,
        ttl: TimeDelta,
        seen: CacheGeneration,
    ) -> Result<bool, CacheError> {
        let key = self.key(user.id);
        let millis = ttl.num_milliseconds();
        if millis <= 0 {
            // Nothing may be served past `ttl`, not even an older entry.
            self.client
                .query::<()>(redis::cmd("DEL").arg(&key))
                .await
                .map_err(cache_error)?;
            return Ok(false);
        }
        let json = serde_json::to_vec(&CachedUser::from(user))
            .map_err(|error| CacheError(Box::new(error)))?;
        let stored: i64 = self
            .client
            .query(
                redis::cmd("EVAL")
                    .arg(PUT_SCRIPT)
                    .arg(2)
                    .arg(&key)
                    .arg(self.generation_key(user.id))
                    .arg(seen.get())
                    .arg(json)
                    .arg(millis),
            )
            .await
            .map_err(cache_error)?;
        Ok(stored == 1)
    }

    async fn invalidate(&self, id: UserId) -> Result<(), CacheError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(self.key(id))
            .ignore()
            .cmd("INCR")
            .arg(self.generation_key(id))
            .ignore()
            .cmd("PEXPIRE")
            .arg(self.generation_key(id))
            .arg(generation_ttl_millis())
            .ignore();
        self.client
            .run(|mut connection| async move { pipe.query_async::<()>(&mut connection).await })
            .await
            .map_err(cache_error)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn user() -> User {
        User {
            id: UserId::from_uuid(uuid::Uuid::from_u128(7)),
            email: Email::parse("ada@example.com").unwrap(),
            username: Username::parse("ada").unwrap(),
            first_name: PersonName::parse("Ada").unwrap(),
            last_name: PersonName::default(),
            role: Role::Admin,
            is_active: true,
            email_verified: true,
            preferences: Preferences::parse(serde_json::json!({"a": {"b": [1, 2.5e-7]}})).unwrap(),
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            updated_at: DateTime::from_timestamp_micros(1_700_000_001_654_321).unwrap(),
            last_login_at: None,
            version: 3,
            password_changed_at: DateTime::from_timestamp_micros(1_700_000_000_777_888).unwrap(),
        }
    }

    #[test]
    fn a_user_round_trips_through_its_json() {
        let json = serde_json::to_vec(&CachedUser::from(&user())).unwrap();
        assert_eq!(decode(&json, user().id).unwrap(), user());
    }

    #[test]
    fn the_document_is_versioned() {
        let json = serde_json::to_value(CachedUser::from(&user())).unwrap();
        assert_eq!(json["v"], 2);
        assert_eq!(json["role"], "admin");
        assert_eq!(json["created_at"], "2023-11-14T22:13:20.123456Z");
    }

    #[test]
    fn other_versions_and_invalid_values_are_refused() {
        let mut json = serde_json::to_value(CachedUser::from(&user())).unwrap();
        json["v"] = 1.into();
        let err = decode(&serde_json::to_vec(&json).unwrap(), user().id).unwrap_err();
        assert!(err.contains("format version 1"), "{err}");

        let mut json = serde_json::to_value(CachedUser::from(&user())).unwrap();
        json["username"] = "no spaces allowed".into();
        let err = decode(&serde_json::to_vec(&json).unwrap(), user().id).unwrap_err();
        assert!(err.starts_with("username"), "{err}");

        let mut json = serde_json::to_value(CachedUser::from(&user())).unwrap();
        json["preferences"] = serde_json::json!([1]);
        assert!(decode(&serde_json::to_vec(&json).unwrap(), user().id).is_err());

        let other = UserId::from_uuid(uuid::Uuid::from_u128(8));
        let json = serde_json::to_vec(&CachedUser::from(&user())).unwrap();
        assert!(decode(&json, other).is_err(), "an entry for another id");

        assert!(decode(b"\xff\x00", user().id).is_err());
        assert!(decode(b"{\"v\":2}", user().id).is_err());
    }
}
