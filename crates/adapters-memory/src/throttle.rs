//! `MemoryLoginThrottle`: the [`LoginThrottle`] port as a bounded map of fixed windows behind
//! a mutex.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use domain::ports::{AttemptWindow, Clock, LoginThrottle, ThrottleError};

/// Below this many keys the map is never swept for expired windows.
const MIN_SWEEP_LEN: usize = 1024;

/// The shortest window opened: a shorter (or non-positive) one is taken as this, as the Redis
/// adapter does, whose expiries count in milliseconds.
const MIN_WINDOW: TimeDelta = TimeDelta::milliseconds(1);

#[derive(Debug, Clone, Copy)]
struct Window {
    failures: u32,
    /// The first instant the window no longer counts.
    resets_at: DateTime<Utc>,
}

impl Window {
    fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.resets_at
    }
}

impl From<Window> for AttemptWindow {
    fn from(window: Window) -> Self {
        Self {
            failures: window.failures,
            resets_at: Some(window.resets_at),
        }
    }
}

#[derive(Debug)]
struct Windows {
    map: HashMap<String, Window>,
    /// Make room when a new key finds the map this large (or at the capacity). Set after each
    /// sweep to twice the windows left (at least [`MIN_SWEEP_LEN`]), so a sweep of `n`
    /// windows follows at least `n / 2` new keys: amortised O(1) per new key.
    sweep_at: usize,
}

impl Windows {
    /// Drops the expired windows, then, if `capacity` are still held, the ones that end
    /// soonest, down to nine tenths of `capacity` and always at least one below it, so the
    /// key about to be added fits and evictions too are amortised.
    fn make_room(&mut self, now: DateTime<Utc>, capacity: usize) {
        self.map.retain(|_, window| window.is_live(now));
        if self.map.len() >= capacity {
            let target = (capacity - capacity / 10).min(capacity - 1);
            let excess = self.map.len() - target;
            let mut by_end: Vec<(DateTime<Utc>, &String)> = self
                .map
                .iter()
                .map(|(key, window)| (window.resets_at, key))
                .collect();
            // Only the `excess` soonest-ending windows need to be found, not sorted: O(n).
            if excess < by_end.len() {
                by_end.select_nth_unstable(excess);
                by_end.truncate(excess);
            }
            let victims: Vec<String> = by_end.into_iter().map(|(_, key)| key.clone()).collect();
            for key in victims {
                self.map.remove(&key);
            }
        }
        self.sweep_at = (self.map.len() * 2).max(MIN_SWEEP_LEN);
    }
}

/// Failed-login counters held in this process's memory, for a single instance.
///
/// Each key has at most one fixed window: the first failure with no live window opens one
/// that ends `window` later (by the clock given to [`new`](Self::new)); later failures count
/// into it without moving its end, whatever `window` they carry; once the clock reaches its
/// end it reads as [`AttemptWindow::default`] and the next failure opens a new window at 1.
/// A `window` under a millisecond (zero or negative included) is taken as one millisecond,
/// the Redis adapter's resolution; one too long to represent ends at the end of time. A count
/// saturates at `u32::MAX`.
///
/// Memory is bounded, so an attacker trying many login names cannot grow it without limit:
/// expired windows are dropped when met by `check` or `count_attempt`, and swept from the
/// whole map once it has doubled in size since the last sweep; and it never holds more than
/// its capacity of keys. When a new key finds it full, expired windows go first, then those
/// that end soonest (the oldest, as every login window has the same length), down to nine
/// tenths of the capacity. An evicted key's count restarts at its next failure: someone who
/// can try more names than the capacity within one window can thus reset the count of a name
/// they are not trying, which is the price of the bound. Memory per key is its text (the
/// domain bounds it to a few hundred characters) and a few dozen bytes.
///
/// The count and the window's end are read and written under one lock, so concurrent
/// failures are all counted; the lock is held for a map operation only (never across an
/// `.await`). Never fails.
pub struct MemoryLoginThrottle {
    clock: Arc<dyn Clock>,
    capacity: usize,
    windows: Mutex<Windows>,
}

impl fmt::Debug for MemoryLoginThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLoginThrottle")
            .field("keys", &self.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl MemoryLoginThrottle {
    /// The capacity of [`new`](Self::new): 100 000 keys.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty throttle of at most [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) keys that
    /// reads the time from `clock`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_capacity(clock, Self::DEFAULT_CAPACITY)
    }

    /// An empty throttle of at most `capacity` keys (at least one).
    #[must_use]
    pub fn with_capacity(clock: Arc<dyn Clock>, capacity: usize) -> Self {
        Self {
            clock,
            capacity: capacity.max(1),
            windows: Mutex::new(Windows {
                map: HashMap::new(),
                sweep_at: MIN_SWEEP_LEN,
            }),
        }
    }

    /// Keys held, including expired windows not yet swept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys it holds.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The map, even if a thread panicked while holding it: every critical section leaves it
    /// consistent (one insert, update, remove or retain at a time), so its data is still sound.
    fn lock(&self) -> MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl LoginThrottle for MemoryLoginThrottle {
    async fn check(&self, key: &str) -> Result<AttemptWindow, ThrottleError> {
        let now = self.clock.now();
        let mut windows = self.lock();
        match windows.map.get(key) {
            Some(window) if window.is_live(now) => Ok((*window).into()),
            Some(_) => {
                windows.map.remove(key);
                Ok(AttemptWindow::default())
            }
            None => Ok(AttemptWindow::default()),
        }
    }

    async fn count_attempt(
        &self,
        key: &str,
        window: TimeDelta,
    ) -> Result<AttemptWindow, ThrottleError> {
        let now = self.clock.now();
        let mut windows = self.lock();
        if let Some(current) = windows.map.get_mut(key) {
            if current.is_live(now) {
                current.failures = current.failures.saturating_add(1);
                return Ok((*current).into());
            }
            // Expired: a new window opens below, in place (the map does not grow).
        } else if windows.map.len() >= windows.sweep_at || windows.map.len() >= self.capacity {
            windows.make_room(now, self.capacity);
        }
        let opened = Window {
            failures: 1,
            resets_at: now
                .checked_add_signed(window.max(MIN_WINDOW))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        };
        windows.map.insert(key.to_owned(), opened);
        Ok(opened.into())
    }

    async fn clear(&self, key: &str) -> Result<(), ThrottleError> {
        self.lock().map.remove(key);
        Ok(())
    }
}
