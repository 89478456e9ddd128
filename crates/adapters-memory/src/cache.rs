//! `MemoryUserCache`: the [`UserCache`] port as bounded maps (entries and invalidation
//! generations) behind one mutex.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use domain::BoxError;
use domain::model::{User, UserId};
use domain::ports::{CacheError, CacheGeneration, CacheLookup, Clock, Readiness, UserCache};

/// Below this many entries the map is never swept for expired entries.
const MIN_SWEEP_LEN: usize = 1024;

#[derive(Debug)]
struct Entry {
    user: User,
    /// The first instant the entry is no longer served.
    expires_at: DateTime<Utc>,
}

#[derive(Debug)]
struct Entries {
    map: HashMap<UserId, Entry>,
    /// Make room when the map reaches this size (or exceeds the capacity). Set after each
    /// sweep to twice the entries left (at least [`MIN_SWEEP_LEN`]), so a sweep of `n` entries
    /// follows at least `n / 2` inserts: amortised O(1) per insert.
    sweep_at: usize,
    /// The generation of each user invalidated since the map was last forgotten; a user not
    /// in it is at [`floor`](Self::floor).
    generations: HashMap<UserId, u64>,
    /// The generation of every user not in `generations`.
    floor: u64,
    /// The latest generation handed out: every invalidation takes the next one, so no value
    /// is ever given twice.
    last: u64,
}

/// Users cached in this process's memory, for a single instance.
///
/// An entry put with `ttl` at `t` is served while the clock reads before `t + ttl`; a `ttl`
/// of zero or less caches nothing and removes any older entry. Expired entries are dropped
/// when met by `get`, and swept from the whole map once it has doubled in size since the last
/// sweep. The map never holds more than its capacity: when a put would exceed it, expired
/// entries go first, then arbitrary others, down to nine tenths of the capacity (so evictions
/// too are amortised), never the entry just put.
///
/// Generations come from one counter for the whole cache: `invalidate` gives the user the
/// next value, so a user's generation strictly increases with each of its invalidations, and
/// a `put` compares it with `seen` under the same lock as it stores. Users never invalidated
/// share a floor value. The map of generations holds at most the capacity too: when an
/// invalidation finds it full, it is forgotten at once and the floor raised to the latest
/// value handed out. No user's generation ever decreases (the floor only rises, to at least
/// every forgotten value), so a `seen` from before an invalidation still never matches; a put
/// whose `get` came before the map was forgotten may be refused though nothing changed, which
/// costs only another miss.
///
/// Locks are held for a map operation only (never across an `.await`). Never fails, and is
/// always ready.
pub struct MemoryUserCache {
    clock: Arc<dyn Clock>,
    capacity: usize,
    entries: Mutex<Entries>,
}

impl fmt::Debug for MemoryUserCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryUserCache")
            .field("entries", &self.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl MemoryUserCache {
    /// The capacity of [`new`](Self::new): 100 000 users.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty cache of at most [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) users that
    /// reads the time from `clock`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_capacity(clock, Self::DEFAULT_CAPACITY)
    }

    /// An empty cache of at most `capacity` users (at least one).
    #[must_use]
    pub fn with_capacity(clock: Arc<dyn Clock>, capacity: usize) -> Self {
        Self {
            clock,
            capacity: capacity.max(1),
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                sweep_at: MIN_SWEEP_LEN,
                generations: HashMap::new(),
                floor: 0,
                last: 0,
            }),
        }
    }

    /// Entries held, including expired ones not yet swept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Users whose generation is remembered individually (at most the capacity).
    #[must_use]
    pub fn generations_len(&self) -> usize {
        self.lock().generations.len()
    }

    /// Whether no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries it holds.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The maps, even if a thread panicked while holding them: every critical section leaves
    /// them consistent (inserts, removals, retains, and the floor raised before the
    /// generations are forgotten), so their data is still sound.
    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Entries {
    fn generation(&self, id: UserId) -> u64 {
        self.generations.get(&id).copied().unwrap_or(self.floor)
    }

    /// Gives `id` a generation no user ever had; first forgets every generation when
    /// `capacity` are held, raising the floor so that none decreases.
    fn advance_generation(&mut self, id: UserId, capacity: usize) {
        if self.generations.len() >= capacity && !self.generations.contains_key(&id) {
            self.generations = HashMap::new();
            self.floor = self.last;
        }
        // 2^64 invalidations cannot happen; saturating keeps this free of a panic path.
        self.last = self.last.saturating_add(1);
        self.generations.insert(id, self.last);
    }

    /// Drops expired entries, then arbitrary ones other than `keep` while over `capacity`.
    fn make_room(&mut self, now: DateTime<Utc>, capacity: usize, keep: UserId) {
        self.map.retain(|_, entry| now < entry.expires_at);
        if self.map.len() > capacity {
            let target = capacity - capacity / 10;
            let excess = self.map.len() - target;
            let victims: Vec<UserId> = self
                .map
                .keys()
                .filter(|id| **id != keep)
                .take(excess)
                .copied()
                .collect();
            for id in victims {
                self.map.remove(&id);
            }
        }
        self.sweep_at = (self.map.len() * 2).max(MIN_SWEEP_LEN);
    }
}

#[async_trait]
impl UserCache for MemoryUserCache {
    async fn get(&self, id: UserId) -> Result<CacheLookup, CacheError> {
        let now = self.clock.now();
        let mut entries = self.lock();
        match entries.map.get(&id) {
            Some(entry) if now < entry.expires_at => {
                return Ok(CacheLookup::Hit(entry.user.clone()));
            }
            Some(_) => {
                entries.map.remove(&id);
            }
            None => {}
        }
        Ok(CacheLookup::Miss(CacheGeneration::new(
            entries.generation(id),
        )))
    }

    async fn put(
        &self,
        user: &User,
        ttl: TimeDelta,
        seen: CacheGeneration,
    ) -> Result<bool, CacheError> {
        let now = self.clock.now();
        let mut entries = self.lock();
        if ttl <= TimeDelta::zero() {
            entries.map.remove(&user.id);
            return Ok(false);
        }
        if entries.generation(user.id) != seen.get() {
            return Ok(false);
        }
        let expires_at = now
            .checked_add_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        entries.map.insert(
            user.id,
            Entry {
                user: user.clone(),
                expires_at,
            },
        );
        if entries.map.len() > self.capacity || entries.map.len() >= entries.sweep_at {
            entries.make_room(now, self.capacity, user.id);
        }
        Ok(true)
    }

    async fn invalidate(&self, id: UserId) -> Result<(), CacheError> {
        let mut entries = self.lock();
        entries.map.remove(&id);
        entries.advance_generation(id, self.capacity);
        Ok(())
    }
}

#[async_trait]
impl Readiness for MemoryUserCache {
    async fn ready(&self) -> Result<(), BoxError> {
        Ok(())
    }
}
