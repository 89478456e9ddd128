//! In-process adapters for a single UMS instance: the session revocation list.
//!
//! Nothing here is shared between processes or survives a restart; the domain's
//! `restore_revocations` rebuilds the list from the session store at start-up. Several
//! instances behind one load balancer need the Redis adapters instead.

mod revocation;

pub use revocation::MemoryRevocation;
