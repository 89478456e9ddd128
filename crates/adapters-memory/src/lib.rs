//! In-process adapters for a single UMS instance: the session revocation list, the user
//! cache and the failed-login throttle.
//!
//! Nothing here is shared between processes or survives a restart; the domain's
//! `restore_revocations` rebuilds the list from the session store at start-up, the cache
//! simply starts empty, and so do the failure counts. Several instances behind one load
//! balancer need the Redis adapters instead: an in-process cache would go on serving a user
//! another instance has changed, and each instance would allow its own quota of guesses.

mod cache;
mod revocation;
mod throttle;

pub use cache::MemoryUserCache;
pub use revocation::MemoryRevocation;
pub use throttle::MemoryLoginThrottle;
