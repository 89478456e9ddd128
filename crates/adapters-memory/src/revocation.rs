//! `MemoryRevocation`: the [`TokenRevocation`] port as a map behind a mutex.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::BoxError;
use domain::model::SessionId;
use domain::ports::{Clock, Readiness, RevocationError, TokenRevocation};

/// Below this many entries the map is never swept: a sweep would cost more than it saves.
const MIN_SWEEP_LEN: usize = 1024;

#[derive(Debug)]
struct Entries {
    /// Each revoked session with the last instant it must still be reported revoked.
    until: HashMap<SessionId, DateTime<Utc>>,
    /// Sweep expired entries when the map reaches this size. After a sweep it is set to twice
    /// the entries still live (at least [`MIN_SWEEP_LEN`]), so a sweep of `n` entries follows at
    /// least `n / 2` inserts (amortised O(1) per insert), and the map never holds more than
    /// twice the most entries ever live at once, or `MIN_SWEEP_LEN`.
    sweep_at: usize,
}

impl Entries {
    fn sweep(&mut self, now: DateTime<Utc>) {
        self.until.retain(|_, until| now <= *until);
        self.sweep_at = (self.until.len() * 2).max(MIN_SWEEP_LEN);
    }
}

/// Revoked sessions held in this process's memory.
///
/// A session is reported revoked from [`revoke`](TokenRevocation::revoke) up to and including
/// its `until` instant, then forgotten. Revoking again keeps the later `until`. Expired entries
/// are dropped when met by `is_revoked`, and swept from the whole map on writes once it has
/// doubled in size since the last sweep, so memory stays proportional to the live entries.
/// A `revoke` whose `until` has already passed records nothing (but never shortens an entry).
///
/// Locks are held for a map operation only (never across an `.await`). Never fails, and is
/// always ready.
pub struct MemoryRevocation {
    clock: Arc<dyn Clock>,
    entries: Mutex<Entries>,
}

impl fmt::Debug for MemoryRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRevocation")
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

impl MemoryRevocation {
    /// An empty list that reads the time from `clock`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            entries: Mutex::new(Entries {
                until: HashMap::new(),
                sweep_at: MIN_SWEEP_LEN,
            }),
        }
    }

    /// Entries held, including expired ones not yet swept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().until.len()
    }

    /// Whether no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The map, even if a thread panicked while holding it: every critical section leaves the
    /// map consistent (one insert, remove or retain), so its data is still sound.
    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl TokenRevocation for MemoryRevocation {
    async fn revoke(
        &self,
        session: SessionId,
        until: DateTime<Utc>,
    ) -> Result<(), RevocationError> {
        let now = self.clock.now();
        let mut entries = self.lock();
        if until >= now {
            let kept = entries.until.entry(session).or_insert(until);
            *kept = (*kept).max(until);
        }
        if entries.until.len() >= entries.sweep_at {
            entries.sweep(now);
        }
        Ok(())
    }

    async fn is_revoked(&self, session: SessionId) -> Result<bool, RevocationError> {
        let now = self.clock.now();
        let mut entries = self.lock();
        match entries.until.get(&session) {
            Some(until) if now <= *until => Ok(true),
            Some(_) => {
                entries.until.remove(&session);
                Ok(false)
            }
            None => Ok(false),
        }
    }
}

#[async_trait]
impl Readiness for MemoryRevocation {
    async fn ready(&self) -> Result<(), BoxError> {
        Ok(())
    }
}
