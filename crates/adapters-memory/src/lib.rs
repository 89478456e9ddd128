//! In-process adapters for a single UMS instance: the session revocation list, the user
//! cache, the failed-login throttle and the rate limiter (also the stricter fallback of a
//! shared one, [`FallbackRateLimiter`]).
//!
//! Nothing here is shared between processes or survives a restart; the domain's
//! `restore_revocations` rebuilds the list from the session store at start-up, the cache
//! simply starts empty, and so do the failure counts. Several instances behind one load
//! balancer need the Redis adapters instead: an in-process cache would go on serving a user
//! another instance has changed, and each instance would allow its own quota of guesses.

mod bounded;
mod cache;
mod ratelimit;
mod revocation;
mod throttle;

pub use cache::MemoryUserCache;
pub use ratelimit::{FallbackRateLimiter, MemoryRateLimiter, stricter_limit};
pub use revocation::MemoryRevocation;
pub use throttle::MemoryLoginThrottle;
