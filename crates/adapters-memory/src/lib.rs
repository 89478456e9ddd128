//! In-process adapters for a single UMS instance: the session revocation list and the user
//! cache.
//!
//! Nothing here is shared between processes or survives a restart; the domain's
//! `restore_revocations` rebuilds the list from the session store at start-up, and the cache
//! simply starts empty. Several instances behind one load balancer need the Redis adapters
//! instead: an in-process cache would go on serving a user another instance has changed.

mod cache;
mod revocation;

pub use cache::MemoryUserCache;
pub use revocation::MemoryRevocation;
