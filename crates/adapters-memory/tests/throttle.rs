//! `MemoryLoginThrottle` against the shared `LoginThrottle` contract, plus what is particular
//! to an in-process throttle: exact windows against its clock, and bounded memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use adapters_memory::MemoryLoginThrottle;
use chrono::{DateTime, TimeDelta, Utc};
use domain::ports::{AttemptWindow, Clock, LoginThrottle};
use ums_tests::contract::throttle as contract;
use uuid::Uuid;

/// A clock that moves only when told to.
#[derive(Debug)]
struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            DateTime::parse_from_rfc3339("2025-01-01T12:00:00Z")
                .unwrap()
                .to_utc(),
        )))
    }

    fn advance(&self, by: TimeDelta) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A throttle on a fresh manual clock, and the clock.
fn fresh() -> (MemoryLoginThrottle, Arc<ManualClock>) {
    let clock = ManualClock::new();
    (MemoryLoginThrottle::new(clock.clone()), clock)
}

fn key() -> String {
    format!("login:{}", Uuid::now_v7().simple())
}

const WINDOW: TimeDelta = TimeDelta::minutes(15);

mod shared_contract {
    use super::*;

    #[tokio::test]
    async fn unknown_key_reads_empty() {
        contract::unknown_key_reads_empty(fresh().0).await;
    }

    #[tokio::test]
    async fn failures_count_in_one_window() {
        let (throttle, clock) = fresh();
        contract::failures_count_in_one_window(throttle, || clock.now()).await;
    }

    #[tokio::test]
    async fn keys_are_independent() {
        let (throttle, clock) = fresh();
        contract::keys_are_independent(throttle, || clock.now()).await;
    }

    #[tokio::test]
    async fn clear_forgets_the_window() {
        let (throttle, clock) = fresh();
        contract::clear_forgets_the_window(throttle, || clock.now()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_failures_are_all_counted() {
        let (throttle, clock) = fresh();
        contract::concurrent_failures_are_all_counted(throttle, || clock.now()).await;
    }

    #[tokio::test]
    async fn unusual_keys_work() {
        let (throttle, clock) = fresh();
        contract::unusual_keys_work(throttle, || clock.now()).await;
    }

    #[tokio::test]
    async fn the_window_expires_and_counting_restarts() {
        let (throttle, clock) = fresh();
        contract::the_window_expires_and_counting_restarts(
            throttle,
            || clock.now(),
            async |by| clock.advance(by),
        )
        .await;
    }

    #[tokio::test]
    async fn run_all_passes_too() {
        let clock = ManualClock::new();
        contract::run_all(
            || MemoryLoginThrottle::new(clock.clone()),
            || clock.now(),
            async |by| clock.advance(by),
        )
        .await;
    }
}

/// The window is exact against the clock: it counts up to just before `resets_at`, and from
/// `resets_at` on reads as none (the expired entry met by `check` is dropped).
#[tokio::test]
async fn a_window_counts_until_just_before_its_end() {
    let (throttle, clock) = fresh();
    let k = key();
    let opened = throttle.count_attempt(&k, WINDOW).await.unwrap();
    let end = clock.now() + WINDOW;
    assert_eq!(
        opened,
        AttemptWindow {
            failures: 1,
            resets_at: Some(end),
        }
    );

    clock.advance(WINDOW - TimeDelta::nanoseconds(1));
    let last = throttle.count_attempt(&k, WINDOW).await.unwrap();
    assert_eq!(
        last,
        AttemptWindow {
            failures: 2,
            resets_at: Some(end),
        },
        "a failure just before the end counts into the window, without moving it"
    );

    clock.advance(TimeDelta::nanoseconds(1));
    assert_eq!(throttle.check(&k).await.unwrap(), AttemptWindow::default());
    assert!(
        throttle.is_empty(),
        "the expired window met by check is dropped"
    );
    let reopened = throttle.count_attempt(&k, WINDOW).await.unwrap();
    assert_eq!(
        reopened,
        AttemptWindow {
            failures: 1,
            resets_at: Some(end + WINDOW),
        }
    );
}

#[tokio::test]
async fn extreme_windows_neither_overflow_nor_count_nothing() {
    let (throttle, clock) = fresh();
    let forever = key();
    let opened = throttle
        .count_attempt(&forever, TimeDelta::MAX)
        .await
        .unwrap();
    assert_eq!(opened.resets_at, Some(DateTime::<Utc>::MAX_UTC));
    clock.advance(TimeDelta::days(365 * 1_000));
    assert_eq!(throttle.check(&forever).await.unwrap().failures, 1);

    // A zero or negative window is taken as a millisecond: the failure is counted in a
    // window that ends a millisecond later.
    for window in [TimeDelta::zero(), TimeDelta::seconds(-1), TimeDelta::MIN] {
        let k = key();
        let opened = throttle.count_attempt(&k, window).await.unwrap();
        assert_eq!(
            opened,
            AttemptWindow {
                failures: 1,
                resets_at: Some(clock.now() + TimeDelta::milliseconds(1)),
            },
            "window {window}"
        );
        assert_eq!(throttle.check(&k).await.unwrap().failures, 1);
        clock.advance(TimeDelta::milliseconds(1));
        assert_eq!(throttle.check(&k).await.unwrap(), AttemptWindow::default());
    }
}

/// A steady stream of names failing once and never seen again: sweeping keeps the map near
/// the live windows, not every name ever counted, and never drops a live one.
#[tokio::test]
async fn sweeping_keeps_the_map_small_and_the_live_windows() {
    let (throttle, clock) = fresh();
    let mut recent = Vec::new();
    let mut largest = 0;
    for _ in 0..50_000 {
        let k = key();
        throttle
            .count_attempt(&k, TimeDelta::seconds(10))
            .await
            .unwrap();
        clock.advance(TimeDelta::seconds(1));
        largest = largest.max(throttle.len());
        recent.push(k);
        if recent.len() > 9 {
            recent.remove(0);
        }
    }
    assert!(largest <= 1024, "the map grew to {largest} keys");
    for k in recent {
        assert_eq!(
            throttle.check(&k).await.unwrap().failures,
            1,
            "a live window was swept"
        );
    }
}

/// An attacker spraying more names than the capacity within one window: the map never
/// exceeds the capacity, the name just counted is never the one evicted, and the windows
/// that end soonest go first.
#[tokio::test]
async fn the_capacity_is_never_exceeded_and_the_oldest_windows_go_first() {
    let clock = ManualClock::new();
    let throttle = MemoryLoginThrottle::with_capacity(clock.clone(), 1_000);
    assert_eq!(throttle.capacity(), 1_000);

    let mut opened = Vec::new();
    let mut largest = 0;
    for _ in 0..20_000 {
        let k = key();
        throttle.count_attempt(&k, WINDOW).await.unwrap();
        largest = largest.max(throttle.len());
        assert_eq!(
            throttle.check(&k).await.unwrap().failures,
            1,
            "the key just counted was evicted"
        );
        opened.push(k);
        clock.advance(TimeDelta::milliseconds(1));
    }
    assert!(largest <= 1_000, "the map grew to {largest} keys");
    assert!(throttle.len() >= 900, "evicted far more than needed");
    // The newest windows survive; the oldest are gone.
    for k in opened.iter().rev().take(900) {
        assert_eq!(
            throttle.check(k).await.unwrap().failures,
            1,
            "a recent window was evicted before older ones"
        );
    }
    for k in opened.iter().take(1_000) {
        assert_eq!(
            throttle.check(k).await.unwrap(),
            AttemptWindow::default(),
            "an old window survived"
        );
    }
}

/// Expired windows make the room before any live one is evicted.
#[tokio::test]
async fn expired_windows_are_evicted_before_live_ones() {
    let clock = ManualClock::new();
    let throttle = MemoryLoginThrottle::with_capacity(clock.clone(), 1_000);
    // Long windows opened first (so the oldest), then short ones that expire.
    let mut live = Vec::new();
    for _ in 0..500 {
        let k = key();
        throttle.count_attempt(&k, WINDOW).await.unwrap();
        throttle.count_attempt(&k, WINDOW).await.unwrap();
        live.push(k);
    }
    for _ in 0..500 {
        throttle
            .count_attempt(&key(), TimeDelta::seconds(1))
            .await
            .unwrap();
    }
    assert_eq!(throttle.len(), 1_000);
    clock.advance(TimeDelta::seconds(2));
    for _ in 0..400 {
        let k = key();
        throttle.count_attempt(&k, WINDOW).await.unwrap();
        live.push(k);
    }
    assert!(throttle.len() <= 1_000);
    for k in &live[..500] {
        assert_eq!(
            throttle.check(k).await.unwrap().failures,
            2,
            "a live window was evicted while expired ones could go"
        );
    }
    for k in &live[500..] {
        assert_eq!(throttle.check(k).await.unwrap().failures, 1);
    }
}

/// A live key counted again does not evict anything, even at the capacity.
#[tokio::test]
async fn counting_a_held_key_evicts_nothing() {
    let clock = ManualClock::new();
    let throttle = MemoryLoginThrottle::with_capacity(clock.clone(), 10);
    let keys: Vec<String> = (0..10).map(|_| key()).collect();
    for k in &keys {
        throttle.count_attempt(k, WINDOW).await.unwrap();
    }
    for _ in 0..5 {
        for k in &keys {
            throttle.count_attempt(k, WINDOW).await.unwrap();
        }
    }
    assert_eq!(throttle.len(), 10);
    for k in &keys {
        assert_eq!(throttle.check(k).await.unwrap().failures, 6);
    }
}

#[tokio::test]
async fn a_zero_capacity_still_counts_the_latest_key() {
    let throttle = MemoryLoginThrottle::with_capacity(ManualClock::new(), 0);
    assert_eq!(throttle.capacity(), 1);
    let (first, second) = (key(), key());
    throttle.count_attempt(&first, WINDOW).await.unwrap();
    throttle.count_attempt(&second, WINDOW).await.unwrap();
    throttle.count_attempt(&second, WINDOW).await.unwrap();
    assert_eq!(throttle.len(), 1);
    assert_eq!(throttle.check(&second).await.unwrap().failures, 2);
    assert_eq!(throttle.check(&first).await.unwrap().failures, 0);
}

#[tokio::test]
async fn clear_frees_the_key() {
    let (throttle, _) = fresh();
    let k = key();
    throttle.count_attempt(&k, WINDOW).await.unwrap();
    assert_eq!(throttle.len(), 1);
    throttle.clear(&k).await.unwrap();
    assert!(throttle.is_empty());
}

/// Many tasks on many threads counting a few shared keys: every failure is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failures_from_many_threads_are_all_counted() {
    let (throttle, _) = fresh();
    let throttle = Arc::new(throttle);
    let keys: Vec<String> = (0..4).map(|_| key()).collect();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (throttle, keys) = (Arc::clone(&throttle), keys.clone());
            tokio::spawn(async move {
                for _ in 0..250 {
                    for k in &keys {
                        throttle.count_attempt(k, WINDOW).await.unwrap();
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for k in &keys {
        assert_eq!(throttle.check(k).await.unwrap().failures, 16 * 250);
    }
}

#[test]
fn debug_shows_the_size_not_the_keys() {
    let (throttle, _) = fresh();
    let debug = format!("{throttle:?}");
    assert!(debug.contains("MemoryLoginThrottle"), "{debug}");
    assert!(debug.contains("capacity: 100000"), "{debug}");
}
