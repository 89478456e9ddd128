//! `MemoryRateLimiter` against the shared `RateLimiter` contract (on a manual clock, and once
//! on the real one), plus what is particular to an in-process limiter: exact decisions against
//! its clock, and bounded memory; and `FallbackRateLimiter` over a primary that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use adapters_memory::{FallbackRateLimiter, MemoryRateLimiter, stricter_limit};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use domain::ports::{Clock, RateBudget, RateDecision, RateLimit, RateLimitError, RateLimiter};
use ums_tests::contract::ratelimit as contract;
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

#[derive(Debug)]
struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A limiter on a fresh manual clock, and the clock.
fn fresh() -> (MemoryRateLimiter, Arc<ManualClock>) {
    let clock = ManualClock::new();
    (MemoryRateLimiter::new(clock.clone()), clock)
}

fn key() -> String {
    format!("auth:ip:{}", Uuid::now_v7().simple())
}

fn limit(burst: u32, period: TimeDelta) -> RateLimit {
    RateLimit { burst, period }
}

async fn decide(limiter: &impl RateLimiter, key: &str, limit: RateLimit) -> RateDecision {
    limiter.acquire(key, limit).await.unwrap()
}

fn limited(retry_after: TimeDelta) -> RateDecision {
    RateDecision::Limited { retry_after }
}

mod shared_contract {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_allowed_then_limited() {
        contract::a_burst_is_allowed_then_limited(fresh().0).await;
    }

    #[tokio::test]
    async fn refused_requests_are_not_counted() {
        contract::refused_requests_are_not_counted(fresh().0).await;
    }

    #[tokio::test]
    async fn keys_are_independent() {
        contract::keys_are_independent(fresh().0).await;
    }

    #[tokio::test]
    async fn each_call_names_its_limit() {
        contract::each_call_names_its_limit(fresh().0).await;
    }

    #[tokio::test]
    async fn extreme_limits_are_accepted() {
        contract::extreme_limits_are_accepted(fresh().0).await;
    }

    #[tokio::test]
    async fn the_burst_refills_after_the_period() {
        let (limiter, clock) = fresh();
        contract::the_burst_refills_after_the_period(limiter, async |by| clock.advance(by)).await;
    }

    #[tokio::test]
    async fn one_request_is_earned_back_after_retry_after() {
        let (limiter, clock) = fresh();
        contract::one_request_is_earned_back_after_retry_after(limiter, async |by| {
            clock.advance(by);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_requests_allow_exactly_the_burst() {
        contract::concurrent_requests_allow_exactly_the_burst(fresh().0).await;
    }

    #[tokio::test]
    async fn unusual_keys_work() {
        contract::unusual_keys_work(fresh().0).await;
    }

    #[tokio::test]
    async fn all_budgets_are_counted_together_or_not_at_all() {
        contract::all_budgets_are_counted_together_or_not_at_all(fresh().0).await;
    }

    #[tokio::test]
    async fn a_budget_named_twice_is_counted_twice() {
        contract::a_budget_named_twice_is_counted_twice(fresh().0).await;
    }

    #[tokio::test]
    async fn checks_count_nothing() {
        contract::checks_count_nothing(fresh().0).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_requests_on_several_budgets_are_atomic() {
        contract::concurrent_requests_on_several_budgets_are_atomic(fresh().0).await;
    }

    #[tokio::test]
    async fn run_all_passes_too() {
        let clock = ManualClock::new();
        let advance = async |by| clock.advance(by);
        contract::run_all(|| MemoryRateLimiter::new(clock.clone()), advance).await;
    }

    /// The whole suite on the system clock, with real sleeps, as a server adapter runs it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn run_all_passes_on_the_real_clock() {
        let sleep = async |by: TimeDelta| tokio::time::sleep(by.to_std().unwrap()).await;
        contract::run_all(|| MemoryRateLimiter::new(Arc::new(SystemClock)), sleep).await;
    }
}

/// On an exact clock, the decisions are exactly GCRA's: 30 a minute with a burst of 10 is
/// one every 2 s, 10 at once, and a refusal says how long until the next.
#[tokio::test]
async fn decisions_are_exact_on_an_exact_clock() {
    let (limiter, clock) = fresh();
    let k = key();
    let ten = limit(10, TimeDelta::seconds(20));
    for _ in 0..10 {
        assert_eq!(decide(&limiter, &k, ten).await, RateDecision::Allowed);
    }
    assert_eq!(
        decide(&limiter, &k, ten).await,
        limited(TimeDelta::seconds(2))
    );
    clock.advance(TimeDelta::milliseconds(500));
    assert_eq!(
        decide(&limiter, &k, ten).await,
        limited(TimeDelta::milliseconds(1_500))
    );
    clock.advance(TimeDelta::milliseconds(1_500));
    assert_eq!(decide(&limiter, &k, ten).await, RateDecision::Allowed);
    assert_eq!(
        decide(&limiter, &k, ten).await,
        limited(TimeDelta::seconds(2))
    );
    // Idle for the period: the whole burst again, and never more than the burst.
    clock.advance(TimeDelta::hours(5));
    for _ in 0..10 {
        assert_eq!(decide(&limiter, &k, ten).await, RateDecision::Allowed);
    }
    assert_eq!(
        decide(&limiter, &k, ten).await,
        limited(TimeDelta::seconds(2))
    );
}

/// Idle keys are dropped before busy ones when the map is full, and the map never holds more
/// than its capacity; an idle key dropped decides as it would have.
#[tokio::test]
async fn memory_is_bounded_and_idle_keys_go_first() {
    let clock = ManualClock::new();
    let limiter = MemoryRateLimiter::with_capacity(clock.clone(), 1_000);
    let one = limit(1, TimeDelta::hours(1));
    let short = limit(1, TimeDelta::seconds(1));
    let mut busy = Vec::new();
    for _ in 0..500 {
        let k = key();
        assert_eq!(decide(&limiter, &k, one).await, RateDecision::Allowed);
        busy.push(k);
    }
    for _ in 0..500 {
        assert_eq!(decide(&limiter, &key(), short).await, RateDecision::Allowed);
    }
    assert_eq!(limiter.len(), 1_000);
    clock.advance(TimeDelta::seconds(2));
    for _ in 0..400 {
        assert_eq!(decide(&limiter, &key(), one).await, RateDecision::Allowed);
    }
    assert!(limiter.len() <= 1_000, "{} keys held", limiter.len());
    for k in &busy {
        assert!(
            matches!(decide(&limiter, k, one).await, RateDecision::Limited { .. }),
            "a busy key was evicted while idle ones could go"
        );
    }
    // Many more keys than the capacity, all busy: still bounded.
    for _ in 0..5_000 {
        decide(&limiter, &key(), one).await;
    }
    assert!(limiter.len() <= 1_000, "{} keys held", limiter.len());
}

#[tokio::test]
async fn a_zero_capacity_still_limits_the_latest_key() {
    let limiter = MemoryRateLimiter::with_capacity(ManualClock::new(), 0);
    assert_eq!(limiter.capacity(), 1);
    let one = limit(1, TimeDelta::hours(1));
    let (first, second) = (key(), key());
    assert_eq!(decide(&limiter, &first, one).await, RateDecision::Allowed);
    assert_eq!(decide(&limiter, &second, one).await, RateDecision::Allowed);
    assert!(matches!(
        decide(&limiter, &second, one).await,
        RateDecision::Limited { .. }
    ));
    assert_eq!(limiter.len(), 1);
}

#[test]
fn debug_shows_the_size_not_the_keys() {
    let (limiter, _) = fresh();
    let debug = format!("{limiter:?}");
    assert!(debug.contains("MemoryRateLimiter"), "{debug}");
    assert!(debug.contains("capacity: 100000"), "{debug}");
}

/// What a [`Primary`] does: answer `Allowed` (counting its calls) until told to fail.
#[derive(Debug, Default)]
struct Switchable {
    failing: AtomicBool,
    calls: AtomicU32,
}

/// A primary limiter the test switches between answering and failing.
#[derive(Debug, Clone)]
struct Primary(Arc<Switchable>);

impl Primary {
    fn answer(&self) -> Result<RateDecision, RateLimitError> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        if self.0.failing.load(Ordering::SeqCst) {
            Err(RateLimitError(Box::new(std::io::Error::other(
                "connection refused",
            ))))
        } else {
            Ok(RateDecision::Allowed)
        }
    }
}

#[async_trait]
impl RateLimiter for Primary {
    async fn acquire(&self, _: &str, _: RateLimit) -> Result<RateDecision, RateLimitError> {
        self.answer()
    }

    async fn acquire_all(&self, _: &[RateBudget]) -> Result<RateDecision, RateLimitError> {
        self.answer()
    }

    async fn check_all(&self, _: &[RateBudget]) -> Result<RateDecision, RateLimitError> {
        self.answer()
    }
}

/// Log lines written while a test runs, at warning and above unless told otherwise.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

/// While the primary fails, requests are decided in process at a quarter of the rate (never
/// unlimited), the primary is probed once per probe interval, the switch is logged once per
/// outage, and the primary decides again as soon as a probe succeeds.
#[tokio::test(flavor = "current_thread")]
async fn a_failing_primary_falls_back_to_a_stricter_limit_logged_once() {
    let (logs, _guard) = capture_logs();
    let clock = ManualClock::new();
    let primary = Arc::new(Switchable::default());
    let limiter = FallbackRateLimiter::new(Primary(primary.clone()), clock.clone(), 4)
        .with_probe_interval(TimeDelta::seconds(1));
    let eight = limit(8, TimeDelta::minutes(1));
    let k = key();

    for _ in 0..20 {
        assert_eq!(decide(&limiter, &k, eight).await, RateDecision::Allowed);
    }
    assert!(!limiter.is_degraded());
    assert_eq!(primary.calls.load(Ordering::SeqCst), 20);

    primary.failing.store(true, Ordering::SeqCst);
    // A quarter of 8 a minute: 2 at once, then one every 30 s.
    assert_eq!(decide(&limiter, &k, eight).await, RateDecision::Allowed);
    assert!(limiter.is_degraded());
    assert_eq!(decide(&limiter, &k, eight).await, RateDecision::Allowed);
    for _ in 0..50 {
        assert_eq!(
            decide(&limiter, &k, eight).await,
            limited(TimeDelta::seconds(30)),
            "the fallback is not a quarter of the rate"
        );
    }
    assert_eq!(
        primary.calls.load(Ordering::SeqCst),
        21,
        "a primary known to be down was called again within the probe interval"
    );
    // Other keys get their own (reduced) budget.
    assert_eq!(decide(&limiter, &key(), eight).await, RateDecision::Allowed);

    // A probe a second later fails too: still degraded, still logged once.
    clock.advance(TimeDelta::seconds(1));
    assert!(matches!(
        decide(&limiter, &k, eight).await,
        RateDecision::Limited { .. }
    ));
    assert_eq!(primary.calls.load(Ordering::SeqCst), 22);
    assert!(limiter.is_degraded());
    let text = logs.text();
    assert_eq!(
        text.matches("rate limiter is unavailable").count(),
        1,
        "the outage is not logged exactly once:\n{text}"
    );
    assert!(text.contains("WARN"), "{text}");
    assert!(
        text.contains("connection refused"),
        "the cause is not logged:\n{text}"
    );

    // Back: the next probe succeeds and the primary decides again.
    primary.failing.store(false, Ordering::SeqCst);
    clock.advance(TimeDelta::seconds(1));
    assert_eq!(decide(&limiter, &k, eight).await, RateDecision::Allowed);
    assert!(!limiter.is_degraded());
    assert_eq!(decide(&limiter, &k, eight).await, RateDecision::Allowed);
    assert_eq!(primary.calls.load(Ordering::SeqCst), 24);
    let text = logs.text();
    assert_eq!(
        text.matches("enforcing the shared limits").count(),
        1,
        "{text}"
    );

    // A second outage is logged again, once.
    primary.failing.store(true, Ordering::SeqCst);
    for _ in 0..10 {
        decide(&limiter, &k, eight).await;
    }
    let text = logs.text();
    assert_eq!(
        text.matches("rate limiter is unavailable").count(),
        2,
        "{text}"
    );
}

/// The fallback's limit is `stricter_limit`'s, for the limits the service uses.
#[tokio::test]
async fn the_fallback_enforces_the_stricter_limit() {
    let clock = ManualClock::new();
    let primary = Arc::new(Switchable::default());
    primary.failing.store(true, Ordering::SeqCst);
    let limiter = FallbackRateLimiter::new(Primary(primary), clock.clone(), 4);
    assert_eq!(limiter.divisor(), 4);
    for asked in [
        limit(10, TimeDelta::seconds(20)),
        limit(1, TimeDelta::minutes(1)),
        limit(100, TimeDelta::hours(1)),
    ] {
        let strict = stricter_limit(asked, 4);
        let k = key();
        for _ in 0..strict.burst {
            assert_eq!(decide(&limiter, &k, asked).await, RateDecision::Allowed);
        }
        assert_eq!(
            decide(&limiter, &k, asked).await,
            limited(strict.period / i32::try_from(strict.burst).unwrap()),
            "{asked:?} falls back to {strict:?}"
        );
    }
}

/// Several budgets while the primary fails: each at the stricter limit, counted together or
/// not at all, and checks count nothing; the primary answers every kind of call while up.
#[tokio::test]
async fn the_fallback_decides_several_budgets_together() {
    let clock = ManualClock::new();
    let primary = Arc::new(Switchable::default());
    let limiter = FallbackRateLimiter::new(Primary(primary.clone()), clock.clone(), 4)
        .with_probe_interval(TimeDelta::hours(1));
    let (narrow, wide) = (key(), key());
    // A quarter: 2 at once for the narrow budget, 8 for the wide one.
    let budgets = [
        RateBudget::new(&narrow, limit(8, TimeDelta::minutes(1))),
        RateBudget::new(&wide, limit(32, TimeDelta::minutes(1))),
    ];
    for _ in 0..3 {
        assert_eq!(
            limiter.acquire_all(&budgets).await.unwrap(),
            RateDecision::Allowed
        );
        assert_eq!(
            limiter.check_all(&budgets).await.unwrap(),
            RateDecision::Allowed
        );
    }
    assert_eq!(
        primary.calls.load(Ordering::SeqCst),
        6,
        "the primary decides"
    );

    primary.failing.store(true, Ordering::SeqCst);
    for _ in 0..10 {
        assert_eq!(
            limiter.check_all(&budgets).await.unwrap(),
            RateDecision::Allowed,
            "checks count nothing"
        );
    }
    assert!(limiter.is_degraded());
    for _ in 0..2 {
        assert_eq!(
            limiter.acquire_all(&budgets).await.unwrap(),
            RateDecision::Allowed
        );
    }
    for _ in 0..10 {
        assert_eq!(
            limiter.acquire_all(&budgets).await.unwrap(),
            limited(TimeDelta::seconds(30)),
            "the narrow budget at a quarter of the rate"
        );
    }
    assert_eq!(
        limiter.check_all(&budgets).await.unwrap(),
        limited(TimeDelta::seconds(30))
    );
    // The wide budget was counted twice of its 8, not by the refusals.
    let wide_strict = limit(32, TimeDelta::minutes(1));
    for _ in 0..6 {
        assert_eq!(
            decide(&limiter, &wide, wide_strict).await,
            RateDecision::Allowed
        );
    }
    assert!(matches!(
        decide(&limiter, &wide, wide_strict).await,
        RateDecision::Limited { .. }
    ));
    assert_eq!(
        primary.calls.load(Ordering::SeqCst),
        7,
        "a primary known to be down was called again within the probe interval"
    );
}
