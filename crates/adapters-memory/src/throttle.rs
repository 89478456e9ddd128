//! `MemoryLoginThrottle`: the [`LoginThrottle`] port as a bounded map of fixed windows behind
//! a mutex.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use domain::ports::{AttemptWindow, Clock, LoginThrottle, ThrottleError};

use crate::bounded::{BoundedMap, Expiring};

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

impl Expiring for Window {
    type Instant = DateTime<Utc>;

    fn expires_at(&self) -> DateTime<Utc> {
        self.resets_at
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
    /// Each key's window, expiring at its end.
    windows: Mutex<BoundedMap<Window>>,
}

impl fmt::Debug for MemoryLoginThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLoginThrottle")
            .field("keys", &self.len())
            .field("capacity", &self.capacity())
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
            windows: Mutex::new(BoundedMap::new(capacity)),
        }
    }

    /// Keys held, including expired windows not yet swept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys it holds.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.lock().capacity()
    }

    /// The map, even if a thread panicked while holding it: every critical section leaves it
    /// consistent (one insert, update, remove or retain at a time), so its data is still sound.
    fn lock(&self) -> MutexGuard<'_, BoundedMap<Window>> {
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl LoginThrottle for MemoryLoginThrottle {
    async fn check(&self, key: &str) -> Result<AttemptWindow, ThrottleError> {
        let now = self.clock.now();
        let mut windows = self.lock();
        match windows.get(key) {
            Some(window) if window.is_live(now) => Ok((*window).into()),
            Some(_) => {
                windows.remove(key);
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
        if let Some(current) = windows.get_mut(key)
            && current.is_live(now)
        {
            current.failures = current.failures.saturating_add(1);
            return Ok((*current).into());
        }
        // Absent or expired: a new window opens (an expired one in place: the map does not grow).
        let opened = Window {
            failures: 1,
            resets_at: now
                .checked_add_signed(window.max(MIN_WINDOW))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        };
        // A new key first makes room: expired windows, then those that end soonest.
        windows.insert(key, opened, now);
        Ok(opened.into())
    }

    async fn clear(&self, key: &str) -> Result<(), ThrottleError> {
        self.lock().remove(key);
        Ok(())
    }
}
