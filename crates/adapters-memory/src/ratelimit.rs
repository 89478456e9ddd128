//! `MemoryRateLimiter`: the [`RateLimiter`] port as a bounded map of GCRA arrival times behind
//! a mutex; and `FallbackRateLimiter`, which enforces a stricter in-process limit while a
//! shared limiter (Redis) cannot be reached, and says so in the log once per outage.

use std::fmt;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use domain::ports::{Clock, RateBudget, RateDecision, RateLimit, RateLimitError, RateLimiter};

use crate::bounded::{BoundedMap, Expiring};

/// The shortest period: a shorter (or non-positive) one is taken as this, as the port says.
const MIN_PERIOD: TimeDelta = TimeDelta::milliseconds(1);

/// The longest period: a longer one is cut to this (a century), as the Redis adapter does.
const MAX_PERIOD: TimeDelta = TimeDelta::days(100 * 365);

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// An instant or a duration in nanoseconds: wide enough that no sum of a clock reading and a
/// century overflows.
type Nanos = i128;

fn duration_nanos(delta: TimeDelta) -> Nanos {
    Nanos::from(delta.num_seconds()) * NANOS_PER_SECOND + Nanos::from(delta.subsec_nanos())
}

fn instant_nanos(at: DateTime<Utc>) -> Nanos {
    Nanos::from(at.timestamp()) * NANOS_PER_SECOND + Nanos::from(at.timestamp_subsec_nanos())
}

/// A positive number of nanoseconds as a `TimeDelta` (saturating).
fn delta(nanos: Nanos) -> TimeDelta {
    TimeDelta::nanoseconds(i64::try_from(nanos).unwrap_or(i64::MAX))
}

/// A limit as GCRA parameters: each request moves a key's theoretical arrival time (TAT)
/// `interval` later, and a request is allowed when the TAT it would leave is at most
/// `tolerance` ahead of now. `interval` is `period / burst` rounded up to the nanosecond (so
/// the rate is never above the one asked for) and `tolerance` is `burst` intervals (so the
/// whole burst is always allowed at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gcra {
    interval: Nanos,
    tolerance: Nanos,
}

impl Gcra {
    fn of(limit: RateLimit) -> Self {
        let burst = Nanos::from(limit.burst.max(1));
        let period = duration_nanos(limit.period.clamp(MIN_PERIOD, MAX_PERIOD));
        let interval = (period + burst - 1) / burst;
        Self {
            interval,
            tolerance: interval * burst,
        }
    }
}

/// A key's TAT: once it is not after now the key is idle, exactly as if absent, so such
/// entries can be dropped at any time without changing a decision; the busy keys closest to
/// idle are those of the smallest TAT.
impl Expiring for Nanos {
    type Instant = Nanos;

    fn expires_at(&self) -> Nanos {
        *self
    }
}

/// Rate limits held in this process's memory, for a single instance (and as the fallback of a
/// shared limiter, see [`FallbackRateLimiter`]).
///
/// The generic cell rate algorithm (GCRA): each key keeps one instant, its theoretical arrival
/// time (TAT). A request computes `max(TAT, now) + period / burst` and is allowed when that is
/// at most `period` ahead of now (then it becomes the TAT); otherwise it is refused, the TAT
/// is left alone, and `retry_after` is how far past `period` it would have been. So a key idle
/// for `period` has its whole burst, and earns one request back every `period / burst`. The
/// time is read from the clock given to [`new`](Self::new), at nanosecond resolution; a
/// `burst` of 0 is taken as 1, a `period` under a millisecond as a millisecond and one over a
/// century as a century.
///
/// Memory is bounded, so a client trying many keys cannot grow it without limit: a key whose
/// TAT has passed is idle and indistinguishable from an absent one, so idle keys are swept
/// from the whole map once it has doubled in size since the last sweep; and it never holds
/// more than its capacity of keys. When a new key finds it full of busy keys, those closest to
/// idle are evicted first, down to nine tenths of the capacity; an evicted key starts again
/// with a whole burst, which is the price of the bound.
///
/// The decision and the update are made under one lock, held for a map operation only (never
/// across an `.await`), so concurrent requests are each counted once; the budgets of one
/// [`acquire_all`](RateLimiter::acquire_all) are decided and counted together under it, and
/// [`check_all`](RateLimiter::check_all) decides the same way and writes nothing. Never
/// fails.
pub struct MemoryRateLimiter {
    clock: Arc<dyn Clock>,
    /// Each key's TAT.
    arrivals: Mutex<BoundedMap<Nanos>>,
}

impl fmt::Debug for MemoryRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRateLimiter")
            .field("keys", &self.len())
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl MemoryRateLimiter {
    /// The capacity of [`new`](Self::new): 100 000 keys.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty limiter of at most [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) keys that
    /// reads the time from `clock`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_capacity(clock, Self::DEFAULT_CAPACITY)
    }

    /// An empty limiter of at most `capacity` keys (at least one).
    #[must_use]
    pub fn with_capacity(clock: Arc<dyn Clock>, capacity: usize) -> Self {
        Self {
            clock,
            arrivals: Mutex::new(BoundedMap::new(capacity)),
        }
    }

    /// Keys held, including idle ones not yet swept.
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

    /// The decision for one request of `key` under `limit`, counted if allowed.
    fn decide(&self, key: &str, limit: RateLimit) -> RateDecision {
        self.decide_all(&[(key, limit)], true)
    }

    /// The decision for one request drawing on every budget of `budgets`, under one lock:
    /// allowed when each allows it (then, if `count`, counted in each), else refused with the
    /// longest wait and counted in none. A key named twice is counted twice, in order.
    fn decide_all(&self, budgets: &[(&str, RateLimit)], count: bool) -> RateDecision {
        let now = instant_nanos(self.clock.now());
        let mut arrivals = self.lock();
        // The TATs this request would leave, by key, in the order first named.
        let mut leaves: Vec<(&str, Nanos)> = Vec::with_capacity(budgets.len());
        let mut wait: Option<Nanos> = None;
        for &(key, limit) in budgets {
            let gcra = Gcra::of(limit);
            let earlier = leaves.iter().position(|(named, _)| *named == key);
            let held = match earlier {
                Some(index) => Some(leaves[index].1),
                None => arrivals.get(key).copied(),
            };
            let tat = held.map_or(now, |tat| tat.max(now));
            let ahead = tat + gcra.interval - now;
            if ahead > gcra.tolerance {
                let over = ahead - gcra.tolerance;
                wait = Some(wait.map_or(over, |longest| longest.max(over)));
                continue;
            }
            match earlier {
                Some(index) => leaves[index].1 = now + ahead,
                None => leaves.push((key, now + ahead)),
            }
        }
        if let Some(wait) = wait {
            return RateDecision::Limited {
                retry_after: delta(wait),
            };
        }
        if count {
            // A new key first makes room: idle keys, then those closest to idle.
            for (key, tat) in leaves {
                arrivals.insert(key, tat, now);
            }
        }
        RateDecision::Allowed
    }

    /// The map, even if a thread panicked while holding it: every critical section leaves it
    /// consistent (one insert, remove or retain at a time), so its data is still sound.
    fn lock(&self) -> MutexGuard<'_, BoundedMap<Nanos>> {
        self.arrivals.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `budgets` as the pairs [`MemoryRateLimiter::decide_all`] takes, each limit mapped by
/// `limit`.
fn pairs(budgets: &[RateBudget], limit: impl Fn(RateLimit) -> RateLimit) -> Vec<(&str, RateLimit)> {
    budgets
        .iter()
        .map(|budget| (budget.key.as_str(), limit(budget.limit)))
        .collect()
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn acquire(&self, key: &str, limit: RateLimit) -> Result<RateDecision, RateLimitError> {
        Ok(self.decide(key, limit))
    }

    async fn acquire_all(&self, budgets: &[RateBudget]) -> Result<RateDecision, RateLimitError> {
        Ok(self.decide_all(&pairs(budgets, |limit| limit), true))
    }

    async fn check_all(&self, budgets: &[RateBudget]) -> Result<RateDecision, RateLimitError> {
        Ok(self.decide_all(&pairs(budgets, |limit| limit), false))
    }
}

/// `limit` at one `divisor`-th of its rate, never unlimited: the burst divided (at least 1),
/// and the period scaled so that `burst / period` is exactly the fraction.
#[must_use]
pub fn stricter_limit(limit: RateLimit, divisor: u32) -> RateLimit {
    let burst = limit.burst.max(1);
    let divisor = divisor.max(1);
    let reduced = (burst / divisor).max(1);
    let period = duration_nanos(limit.period.clamp(MIN_PERIOD, MAX_PERIOD));
    let scaled = period * Nanos::from(reduced) * Nanos::from(divisor) / Nanos::from(burst);
    RateLimit {
        burst: reduced,
        period: delta(scaled),
    }
}

#[derive(Debug)]
struct Health {
    /// Whether the primary is taken to be down (its latest call failed).
    down: bool,
    /// While down, the primary is not called again before this instant.
    next_probe: DateTime<Utc>,
}

/// A shared [`RateLimiter`] (the primary) with an in-process fallback for when it fails.
///
/// While the primary answers, its decisions are the answer. When a call fails, the request is
/// decided by an in-process [`MemoryRateLimiter`] instead, under the same key at
/// one `divisor`-th of the rate ([`stricter_limit`]), never unlimited: every instance then limits on
/// its own, and the fraction keeps a few instances together at or under the shared limit. The
/// switch is logged once (a warning with the cause) when the primary starts failing, and once
/// (at info) when it answers again; while it is down it is called at most once per probe
/// interval (default one second), so requests do not each wait for its timeout. Never fails.
pub struct FallbackRateLimiter<P> {
    primary: P,
    fallback: MemoryRateLimiter,
    divisor: u32,
    clock: Arc<dyn Clock>,
    probe_interval: TimeDelta,
    health: Mutex<Health>,
}

impl<P: fmt::Debug> fmt::Debug for FallbackRateLimiter<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackRateLimiter")
            .field("primary", &self.primary)
            .field("fallback", &self.fallback)
            .field("divisor", &self.divisor)
            .field("probe_interval", &self.probe_interval)
            .field("degraded", &self.lock().down)
            .finish_non_exhaustive()
    }
}

impl<P: RateLimiter> FallbackRateLimiter<P> {
    /// The default probe interval: one second.
    pub const DEFAULT_PROBE_INTERVAL: TimeDelta = TimeDelta::seconds(1);

    /// `primary`, falling back to an in-process limiter on `clock` at one `divisor`-th of the
    /// rate (a divisor of 0 is taken as 1).
    #[must_use]
    pub fn new(primary: P, clock: Arc<dyn Clock>, divisor: u32) -> Self {
        Self {
            primary,
            fallback: MemoryRateLimiter::new(clock.clone()),
            divisor: divisor.max(1),
            clock,
            probe_interval: Self::DEFAULT_PROBE_INTERVAL,
            health: Mutex::new(Health {
                down: false,
                next_probe: DateTime::<Utc>::MIN_UTC,
            }),
        }
    }

    /// The same, calling a failed primary again at most once per `interval`.
    #[must_use]
    pub fn with_probe_interval(mut self, interval: TimeDelta) -> Self {
        self.probe_interval = interval.max(TimeDelta::zero());
        self
    }

    /// Whether requests are being decided in process because the primary failed.
    #[must_use]
    pub fn is_degraded(&self) -> bool {
        self.lock().down
    }

    /// The fraction of the rate enforced while degraded, as its divisor.
    #[must_use]
    pub fn divisor(&self) -> u32 {
        self.divisor
    }

    /// Whether to call the primary now: always while it is up; while down, once per probe
    /// interval (the caller that gets `true` is the probe).
    fn should_call_primary(&self) -> bool {
        let now = self.clock.now();
        let mut health = self.lock();
        if !health.down {
            return true;
        }
        if now < health.next_probe {
            return false;
        }
        health.next_probe = later(now, self.probe_interval);
        true
    }

    fn primary_answered(&self) {
        let mut health = self.lock();
        if health.down {
            health.down = false;
            drop(health);
            tracing::info!("the shared rate limiter answers again; enforcing the shared limits");
        }
    }

    fn primary_failed(&self, error: &RateLimitError) {
        let next_probe = later(self.clock.now(), self.probe_interval);
        let mut health = self.lock();
        health.next_probe = next_probe;
        if !health.down {
            health.down = true;
            drop(health);
            tracing::warn!(
                error = %error_chain(error),
                divisor = self.divisor,
                "the shared rate limiter is unavailable; enforcing stricter in-process limits \
                 (1/{} of the rate) until it answers again",
                self.divisor
            );
        }
    }
}

impl<P> FallbackRateLimiter<P> {
    fn lock(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl<P: RateLimiter> RateLimiter for FallbackRateLimiter<P> {
    async fn acquire(&self, key: &str, limit: RateLimit) -> Result<RateDecision, RateLimitError> {
        if self.should_call_primary() {
            match self.primary.acquire(key, limit).await {
                Ok(decision) => {
                    self.primary_answered();
                    return Ok(decision);
                }
                Err(error) => self.primary_failed(&error),
            }
        }
        Ok(self
            .fallback
            .decide(key, stricter_limit(limit, self.divisor)))
    }

    async fn acquire_all(&self, budgets: &[RateBudget]) -> Result<RateDecision, RateLimitError> {
        if self.should_call_primary() {
            match self.primary.acquire_all(budgets).await {
                Ok(decision) => {
                    self.primary_answered();
                    return Ok(decision);
                }
                Err(error) => self.primary_failed(&error),
            }
        }
        let strict = pairs(budgets, |limit| stricter_limit(limit, self.divisor));
        Ok(self.fallback.decide_all(&strict, true))
    }

    async fn check_all(&self, budgets: &[RateBudget]) -> Result<RateDecision, RateLimitError> {
        if self.should_call_primary() {
            match self.primary.check_all(budgets).await {
                Ok(decision) => {
                    self.primary_answered();
                    return Ok(decision);
                }
                Err(error) => self.primary_failed(&error),
            }
        }
        let strict = pairs(budgets, |limit| stricter_limit(limit, self.divisor));
        Ok(self.fallback.decide_all(&strict, false))
    }
}

/// `by` after `at`, or the end of time.
fn later(at: DateTime<Utc>, by: TimeDelta) -> DateTime<Utc> {
    at.checked_add_signed(by)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The error and every `source()` under it, for the log.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(burst: u32, period: TimeDelta) -> RateLimit {
        RateLimit { burst, period }
    }

    #[test]
    fn gcra_parameters_allow_the_whole_burst_and_never_a_faster_rate() {
        let g = Gcra::of(limit(3, TimeDelta::seconds(1)));
        assert_eq!(g.interval, 333_333_334);
        assert_eq!(g.tolerance, 1_000_000_002);
        let g = Gcra::of(limit(0, TimeDelta::seconds(2)));
        assert_eq!(g, Gcra::of(limit(1, TimeDelta::seconds(2))));
        assert_eq!(g.interval, 2 * NANOS_PER_SECOND);
        let g = Gcra::of(limit(1, TimeDelta::zero()));
        assert_eq!(g.interval, 1_000_000, "a millisecond at least");
        let g = Gcra::of(limit(1, TimeDelta::seconds(-3)));
        assert_eq!(g.interval, 1_000_000);
        let g = Gcra::of(limit(u32::MAX, TimeDelta::MAX));
        assert_eq!(g.tolerance / g.interval, Nanos::from(u32::MAX));
        assert!(g.tolerance >= duration_nanos(MAX_PERIOD));
    }

    #[test]
    fn the_stricter_limit_is_the_fraction_of_the_rate() {
        let minute = TimeDelta::minutes(1);
        // 10 per minute at a quarter: 2 at once, 2.5 per minute.
        let s = stricter_limit(limit(10, minute), 4);
        assert_eq!(s.burst, 2);
        assert_eq!(s.period, TimeDelta::seconds(48));
        // A burst below the divisor: one at once, over a period that many times longer.
        let s = stricter_limit(limit(1, minute), 4);
        assert_eq!(s, limit(1, TimeDelta::minutes(4)));
        let s = stricter_limit(limit(3, minute), 4);
        assert_eq!(s, limit(1, TimeDelta::seconds(80)));
        // No fraction, and the degenerate values the port allows.
        assert_eq!(stricter_limit(limit(10, minute), 1), limit(10, minute));
        assert_eq!(stricter_limit(limit(10, minute), 0), limit(10, minute));
        assert_eq!(
            stricter_limit(limit(0, minute), 2),
            limit(1, TimeDelta::minutes(2))
        );
        assert_eq!(
            stricter_limit(limit(8, TimeDelta::zero()), 2),
            limit(4, TimeDelta::milliseconds(1))
        );
        let s = stricter_limit(limit(u32::MAX, TimeDelta::MAX), u32::MAX);
        assert_eq!(s.burst, 1);
        assert!(s.period > TimeDelta::zero());
    }

    #[test]
    fn error_chains_name_every_cause() {
        let error = RateLimitError(Box::new(std::io::Error::other("connection refused")));
        assert_eq!(
            error_chain(&error),
            "rate limiter unavailable: connection refused"
        );
    }
}
