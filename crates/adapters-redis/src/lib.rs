//! Redis adapters, shared by every UMS instance behind one load balancer: the session
//! revocation list ([`RedisRevocation`]), the user cache ([`RedisUserCache`]), the
//! failed-login throttle ([`RedisLoginThrottle`]) and the rate limiter ([`RedisRateLimiter`]),
//! all on one [`RedisClient`] (a deadpool-redis pool whose every call is bounded by a
//! timeout).
//!
//! Keys, each under the configured prefix (default `ums:`):
//!
//! | key                          | value                      | expires                  |
//! |------------------------------|----------------------------|--------------------------|
//! | `{prefix}revoked:{session}`  | `1`                        | at the revocation's `until` (never shortened) |
//! | `{prefix}user:{user_id}`     | JSON of the user, `"v":1`  | after the cache TTL      |
//! | `{prefix}gen:{user_id}`      | the user's invalidation generation (a counter) | an hour after the latest invalidation or miss |
//! | `{prefix}throttle:{key}`     | failed logins in the current window (a counter) | when the window ends (set by its first failure) |
//! | `{prefix}ratelimit:{key}`    | the key's GCRA arrival time (µs on the server's clock) | when that time passes (the key is idle) |

mod cache;
mod client;
mod ratelimit;
mod revocation;
mod throttle;

pub use cache::RedisUserCache;
pub use client::{MIN_REDIS_VERSION, RedisClient, RedisError, RedisSettings, redact_url};
pub use ratelimit::RedisRateLimiter;
pub use revocation::RedisRevocation;
pub use throttle::RedisLoginThrottle;
