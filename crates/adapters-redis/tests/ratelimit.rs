//! `RedisRateLimiter` against the shared `RateLimiter` contract, on the server of
//! `TEST_REDIS_URL` (each test under a fresh key prefix, deleted afterwards), plus what is
//! particular to Redis: the key layout and its expiry, values it did not write, several
//! instances sharing one server; and the in-process fallback the service wraps it in, over a
//! Redis that is down (a closed port, and a throwaway `redis-server` stopped and started).
//!
//! Without `TEST_REDIS_URL` the tests on it return at once (see `ums_tests::support::env`);
//! the fallback tests on a closed port always run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_memory::{FallbackRateLimiter, stricter_limit};
use adapters_redis::{RedisClient, RedisError, RedisRateLimiter, RedisSettings};
use chrono::{DateTime, TimeDelta, Utc};
use domain::ports::{Clock, RateBudget, RateDecision, RateLimit, RateLimiter};
use ums_tests::contract::ratelimit as contract;
use ums_tests::support::redis::{RedisServer, SyncRedis, TestRedis, free_port, unique_prefix};
use uuid::Uuid;

fn connect(url: &str, prefix: &str, timeout: Duration) -> RedisClient {
    RedisClient::connect(RedisSettings {
        url: url.to_owned(),
        pool_size: 4,
        command_timeout: timeout,
        key_prefix: prefix.to_owned(),
    })
    .unwrap()
}

fn limiter(redis: &TestRedis) -> RedisRateLimiter {
    RedisRateLimiter::new(connect(&redis.url, &redis.prefix, Duration::from_secs(2)))
}

async fn sleep(by: TimeDelta) {
    tokio::time::sleep(by.to_std().unwrap()).await;
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

fn is_limited(decision: RateDecision) -> bool {
    matches!(decision, RateDecision::Limited { .. })
}

#[derive(Debug)]
struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Each check as its own test on a fresh prefix, skipped without `TEST_REDIS_URL`.
macro_rules! on_test_redis {
    ($($(#[$attr:meta])* $check:ident: |$redis:ident| $call:expr;)*) => {
        $(
            $(#[$attr])*
            async fn $check() {
                let Some($redis) = TestRedis::from_env() else { return };
                $call.await;
            }
        )*
    };
}

mod shared_contract {
    use super::*;
    use contract as c;

    on_test_redis! {
        #[tokio::test]
        a_burst_is_allowed_then_limited: |r| c::a_burst_is_allowed_then_limited(limiter(&r));
        #[tokio::test]
        refused_requests_are_not_counted: |r| c::refused_requests_are_not_counted(limiter(&r));
        #[tokio::test]
        keys_are_independent: |r| c::keys_are_independent(limiter(&r));
        #[tokio::test]
        each_call_names_its_limit: |r| c::each_call_names_its_limit(limiter(&r));
        #[tokio::test]
        extreme_limits_are_accepted: |r| c::extreme_limits_are_accepted(limiter(&r));
        #[tokio::test]
        the_burst_refills_after_the_period:
            |r| c::the_burst_refills_after_the_period(limiter(&r), sleep);
        #[tokio::test]
        one_request_is_earned_back_after_retry_after:
            |r| c::one_request_is_earned_back_after_retry_after(limiter(&r), sleep);
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        concurrent_requests_allow_exactly_the_burst:
            |r| c::concurrent_requests_allow_exactly_the_burst(limiter(&r));
        #[tokio::test]
        unusual_keys_work: |r| c::unusual_keys_work(limiter(&r));
        #[tokio::test]
        all_budgets_are_counted_together_or_not_at_all:
            |r| c::all_budgets_are_counted_together_or_not_at_all(limiter(&r));
        #[tokio::test]
        a_budget_named_twice_is_counted_twice:
            |r| c::a_budget_named_twice_is_counted_twice(limiter(&r));
        #[tokio::test]
        checks_count_nothing: |r| c::checks_count_nothing(limiter(&r));
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        concurrent_requests_on_several_budgets_are_atomic:
            |r| c::concurrent_requests_on_several_budgets_are_atomic(limiter(&r));
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        run_all_passes_too: |r| c::run_all(|| limiter(&r), sleep);
    }
}

/// One key per limited key, `{prefix}ratelimit:{key}` with the key text as it is, holding
/// the arrival time in microseconds and expiring when it passes; a refused request writes
/// nothing.
#[tokio::test]
async fn a_key_is_one_arrival_time_expiring_when_it_passes() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let limiter = limiter(&redis);
    let k = format!("auth:ip:Zoë {}@例え.jp", Uuid::now_v7().simple());
    let redis_key = format!("{}ratelimit:{k}", redis.prefix);
    let ten = limit(10, TimeDelta::seconds(20));
    let before = Utc::now();
    assert_eq!(decide(&limiter, &k, ten).await, RateDecision::Allowed);
    assert_eq!(redis.keys().unwrap(), vec![redis_key.clone()]);

    let mut conn = redis.connection().unwrap();
    let tat: i64 = conn
        .cmd(&["GET", &redis_key])
        .unwrap()
        .as_text()
        .unwrap()
        .parse()
        .unwrap();
    let expected = (before + TimeDelta::seconds(2)).timestamp_micros();
    assert!(
        (expected - 50_000..=expected + 1_000_000).contains(&tat),
        "the arrival time is {tat}, expected about {expected}"
    );
    let ttl = conn.cmd(&["PTTL", &redis_key]).unwrap().as_int().unwrap();
    assert!((1_000..=2_000).contains(&ttl), "PTTL {ttl}");

    for _ in 0..9 {
        assert_eq!(decide(&limiter, &k, ten).await, RateDecision::Allowed);
    }
    let spent = conn.cmd(&["GET", &redis_key]).unwrap().as_text().unwrap();
    assert!(is_limited(decide(&limiter, &k, ten).await));
    assert_eq!(
        conn.cmd(&["GET", &redis_key]).unwrap().as_text().unwrap(),
        spent,
        "a refused request changed the arrival time"
    );
    let ttl = conn.cmd(&["PTTL", &redis_key]).unwrap().as_int().unwrap();
    assert!((19_000..=20_000).contains(&ttl), "PTTL {ttl}");
}

/// A check writes nothing; a request on several budgets writes each of their keys, with its
/// own expiry; a request refused by one of them writes none.
#[tokio::test]
async fn checks_write_nothing_and_several_budgets_write_each_key() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let limiter = limiter(&redis);
    let (narrow, wide) = (key(), key());
    let budgets = [
        RateBudget::new(&narrow, limit(1, TimeDelta::seconds(20))),
        RateBudget::new(&wide, limit(10, TimeDelta::seconds(20))),
    ];
    assert_eq!(
        limiter.check_all(&budgets).await.unwrap(),
        RateDecision::Allowed
    );
    assert!(redis.keys().unwrap().is_empty(), "a check wrote a key");
    assert_eq!(
        limiter.acquire_all(&budgets).await.unwrap(),
        RateDecision::Allowed
    );
    let mut keys = redis.keys().unwrap();
    keys.sort();
    let mut expected = vec![
        format!("{}ratelimit:{narrow}", redis.prefix),
        format!("{}ratelimit:{wide}", redis.prefix),
    ];
    expected.sort();
    assert_eq!(keys, expected);
    let mut conn = redis.connection().unwrap();
    let ttl = |conn: &mut SyncRedis, key: &str| -> i64 {
        conn.cmd(&["PTTL", key]).unwrap().as_int().unwrap()
    };
    let narrow_key = format!("{}ratelimit:{narrow}", redis.prefix);
    let wide_key = format!("{}ratelimit:{wide}", redis.prefix);
    assert!((19_000..=20_000).contains(&ttl(&mut conn, &narrow_key)));
    assert!((1_000..=2_000).contains(&ttl(&mut conn, &wide_key)));
    let before = conn.cmd(&["GET", &wide_key]).unwrap().as_text().unwrap();
    assert!(is_limited(limiter.acquire_all(&budgets).await.unwrap()));
    assert_eq!(
        conn.cmd(&["GET", &wide_key]).unwrap().as_text().unwrap(),
        before,
        "a request refused by the narrow budget counted in the wide one"
    );
}

/// A key holding something that is not an arrival time (never written by the adapter) counts
/// as idle, and is overwritten by the next allowed request; one of another type fails the
/// call with a `Command` error.
#[tokio::test]
async fn keys_it_did_not_write_are_idle_or_fail() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let limiter = limiter(&redis);
    let mut conn = redis.connection().unwrap();
    let one = limit(1, TimeDelta::hours(1));

    let k = key();
    let redis_key = format!("{}ratelimit:{k}", redis.prefix);
    conn.cmd(&["SET", &redis_key, "not a number"]).unwrap();
    assert_eq!(decide(&limiter, &k, one).await, RateDecision::Allowed);
    assert!(is_limited(decide(&limiter, &k, one).await));

    let k = key();
    let redis_key = format!("{}ratelimit:{k}", redis.prefix);
    conn.cmd(&["HSET", &redis_key, "a", "b"]).unwrap();
    let error = limiter.acquire(&k, one).await.unwrap_err();
    let cause = error.0.downcast_ref::<RedisError>().unwrap();
    assert!(matches!(cause, RedisError::Command(_)), "{cause:?}");
}

/// Two instances sharing a server draw on the same budget, and a prefix keeps another
/// deployment's budgets apart.
#[tokio::test]
async fn instances_share_budgets_and_prefixes_keep_deployments_apart() {
    let (Some(one), Some(other)) = (TestRedis::from_env(), TestRedis::from_env()) else {
        return;
    };
    let (a, b) = (limiter(&one), limiter(&one));
    let k = key();
    let three = limit(3, TimeDelta::hours(1));
    assert_eq!(decide(&a, &k, three).await, RateDecision::Allowed);
    assert_eq!(decide(&b, &k, three).await, RateDecision::Allowed);
    assert_eq!(decide(&a, &k, three).await, RateDecision::Allowed);
    assert!(is_limited(decide(&b, &k, three).await));
    assert!(is_limited(decide(&a, &k, three).await));

    let elsewhere = limiter(&other);
    assert_eq!(decide(&elsewhere, &k, three).await, RateDecision::Allowed);
}

/// Many instances acquiring concurrently through small pools: exactly the burst is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_from_many_instances_allow_exactly_the_burst() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let k = key();
    let burst = limit(100, TimeDelta::hours(1));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (limiter, k) = (limiter(&redis), k.clone());
            tokio::spawn(async move {
                let mut allowed = 0;
                for _ in 0..50 {
                    if decide(&limiter, &k, burst).await == RateDecision::Allowed {
                        allowed += 1;
                    }
                }
                allowed
            })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += task.await.unwrap();
    }
    assert_eq!(allowed, 100, "400 requests under a burst of 100");
}

/// A Redis that is down (nothing listens on the port): the adapter fails within its timeout,
/// and the fallback the service wraps it in decides in process at the stricter limit, never
/// unlimited, calling Redis at most once per probe interval.
#[tokio::test]
async fn a_redis_that_is_down_falls_back_to_the_stricter_in_process_limit() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let timeout = Duration::from_millis(300);
    let redis = RedisRateLimiter::new(connect(&url, &unique_prefix(), timeout));
    let ten = limit(10, TimeDelta::minutes(1));
    let error = redis.acquire(&key(), ten).await.unwrap_err();
    let cause = error.0.downcast_ref::<RedisError>().unwrap();
    assert!(
        matches!(cause, RedisError::Unavailable(_) | RedisError::Timeout(_)),
        "{cause:?}"
    );

    let limiter = FallbackRateLimiter::new(redis, Arc::new(SystemClock), 4)
        .with_probe_interval(TimeDelta::hours(1));
    let strict = stricter_limit(ten, 4);
    let k = key();
    let started = Instant::now();
    for _ in 0..strict.burst {
        assert_eq!(decide(&limiter, &k, ten).await, RateDecision::Allowed);
    }
    assert!(limiter.is_degraded());
    for _ in 0..100 {
        assert!(
            is_limited(decide(&limiter, &k, ten).await),
            "more than the stricter burst of {} was allowed while Redis is down",
            strict.burst
        );
    }
    assert!(
        started.elapsed() < timeout * 5,
        "requests waited for the Redis that is known to be down ({:?})",
        started.elapsed()
    );
    // Another key has its own budget in process.
    assert_eq!(decide(&limiter, &key(), ten).await, RateDecision::Allowed);
}

/// A real Redis that stops and comes back: limits fall back while it is down and are shared
/// again once it answers, without rebuilding anything.
#[tokio::test]
async fn the_shared_limits_come_back_with_redis() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let client = connect(&server.url(), &unique_prefix(), Duration::from_millis(300));
    let limiter = FallbackRateLimiter::new(
        RedisRateLimiter::new(client.clone()),
        Arc::new(SystemClock),
        4,
    )
    .with_probe_interval(TimeDelta::zero());
    let other = RedisRateLimiter::new(client);
    let k = key();
    let eight = limit(8, TimeDelta::hours(1));
    for _ in 0..4 {
        assert_eq!(decide(&limiter, &k, eight).await, RateDecision::Allowed);
    }
    assert!(!limiter.is_degraded());

    server.stop();
    // A quarter of the burst, in process, then refused.
    assert_eq!(decide(&limiter, &k, eight).await, RateDecision::Allowed);
    assert_eq!(decide(&limiter, &k, eight).await, RateDecision::Allowed);
    assert!(limiter.is_degraded());
    assert!(is_limited(decide(&limiter, &k, eight).await));

    server.restart();
    // Redis lost its data (no persistence): the shared budget starts again, and is shared.
    for _ in 0..4 {
        assert_eq!(decide(&limiter, &k, eight).await, RateDecision::Allowed);
    }
    assert!(!limiter.is_degraded());
    for _ in 0..4 {
        assert_eq!(decide(&other, &k, eight).await, RateDecision::Allowed);
    }
    assert!(is_limited(decide(&limiter, &k, eight).await));
}
