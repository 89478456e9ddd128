//! `RedisLoginThrottle` against the shared `LoginThrottle` contract, on the server of
//! `TEST_REDIS_URL` (each test under a fresh key prefix, deleted afterwards), plus what is
//! particular to Redis: the key layout and its expiry, keys it did not write, and several
//! instances sharing one server.
//!
//! Without `TEST_REDIS_URL` every test here returns at once (see `ums_tests::support::env`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use adapters_redis::{RedisClient, RedisError, RedisLoginThrottle, RedisSettings};
use chrono::{TimeDelta, Utc};
use domain::ports::{AttemptWindow, LoginThrottle};
use ums_tests::contract::throttle as contract;
use ums_tests::support::redis::{Reply, TestRedis};
use uuid::Uuid;

fn throttle(redis: &TestRedis) -> RedisLoginThrottle {
    let client = RedisClient::connect(RedisSettings {
        url: redis.url.clone(),
        pool_size: 4,
        command_timeout: Duration::from_secs(2),
        key_prefix: redis.prefix.clone(),
    })
    .unwrap();
    RedisLoginThrottle::new(client)
}

async fn sleep(by: TimeDelta) {
    tokio::time::sleep(by.to_std().unwrap()).await;
}

fn key() -> String {
    format!("login:{}", Uuid::now_v7().simple())
}

fn integer(reply: Reply) -> i64 {
    reply
        .as_int()
        .unwrap_or_else(|| panic!("not an integer: {reply:?}"))
}

const WINDOW: TimeDelta = TimeDelta::minutes(15);

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
        unknown_key_reads_empty: |r| c::unknown_key_reads_empty(throttle(&r));
        #[tokio::test]
        failures_count_in_one_window: |r| c::failures_count_in_one_window(throttle(&r), Utc::now);
        #[tokio::test]
        keys_are_independent: |r| c::keys_are_independent(throttle(&r), Utc::now);
        #[tokio::test]
        clear_forgets_the_window: |r| c::clear_forgets_the_window(throttle(&r), Utc::now);
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        concurrent_failures_are_all_counted:
            |r| c::concurrent_failures_are_all_counted(throttle(&r), Utc::now);
        #[tokio::test]
        unusual_keys_work: |r| c::unusual_keys_work(throttle(&r), Utc::now);
        #[tokio::test]
        the_window_expires_and_counting_restarts:
            |r| c::the_window_expires_and_counting_restarts(throttle(&r), Utc::now, sleep);
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        run_all_passes_too: |r| c::run_all(|| throttle(&r), Utc::now, sleep);
    }
}

/// One key per login name, `{prefix}throttle:{key}` with the key text as it is, holding the
/// count and expiring when the first failure's window ends: later failures leave the expiry
/// alone, and `clear` deletes the key.
#[tokio::test]
async fn a_window_is_one_counter_expiring_when_the_first_failure_said() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let throttle = throttle(&redis);
    let k = format!("login:Zoë {}@例え.jp", Uuid::now_v7().simple());
    let redis_key = format!("{}throttle:{k}", redis.prefix);
    let before = Utc::now();
    throttle.count_attempt(&k, WINDOW).await.unwrap();
    assert_eq!(redis.keys().unwrap(), vec![redis_key.clone()]);

    let mut conn = redis.connection().unwrap();
    let expires = integer(conn.cmd(&["PEXPIRETIME", &redis_key]).unwrap());
    let opened = (before + WINDOW).timestamp_millis();
    assert!(
        (opened - 50..=opened + 1_000).contains(&expires),
        "expires at {expires}, the window was opened for {opened}"
    );
    throttle.count_attempt(&k, WINDOW * 4).await.unwrap();
    throttle
        .count_attempt(&k, TimeDelta::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        conn.cmd(&["GET", &redis_key]).unwrap().as_text().as_deref(),
        Some("3")
    );
    assert_eq!(
        integer(conn.cmd(&["PEXPIRETIME", &redis_key]).unwrap()),
        expires,
        "a later failure moved the expiry"
    );

    throttle.clear(&k).await.unwrap();
    assert_eq!(redis.keys().unwrap(), Vec::<String>::new());
}

/// `resets_at` is this process's clock plus the server's remaining TTL: read on a window
/// opened earlier, it still reports that window's end.
#[tokio::test]
async fn resets_at_is_the_end_the_server_keeps() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let throttle = throttle(&redis);
    let k = key();
    let redis_key = format!("{}throttle:{k}", redis.prefix);
    let mut conn = redis.connection().unwrap();
    // A window opened (by some instance) long ago, with 90 s left.
    assert_eq!(
        conn.cmd(&["SET", &redis_key, "4", "PX", "90000"]).unwrap(),
        Reply::Status("OK".into())
    );
    let before = Utc::now();
    let read = throttle.check(&k).await.unwrap();
    let after = Utc::now();
    assert_eq!(read.failures, 4);
    let at = read.resets_at.unwrap();
    assert!(
        before + TimeDelta::seconds(89) <= at && at <= after + TimeDelta::seconds(90),
        "{at}"
    );
    let counted = throttle.count_attempt(&k, WINDOW).await.unwrap();
    assert_eq!(counted.failures, 5);
    assert!((counted.resets_at.unwrap() - at).abs() <= TimeDelta::milliseconds(250));
}

/// A counter without an expiry is never left by the adapter; one written by someone else
/// reads as no window (it would otherwise lock the name for ever) and the next failure
/// restarts it at 1 with an expiry.
#[tokio::test]
async fn a_counter_without_expiry_is_treated_as_expired() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let throttle = throttle(&redis);
    let k = key();
    let redis_key = format!("{}throttle:{k}", redis.prefix);
    let mut conn = redis.connection().unwrap();
    conn.cmd(&["SET", &redis_key, "99"]).unwrap();
    assert_eq!(throttle.check(&k).await.unwrap(), AttemptWindow::default());

    let before = Utc::now();
    let opened = throttle.count_attempt(&k, WINDOW).await.unwrap();
    assert_eq!(opened.failures, 1);
    let at = opened.resets_at.unwrap();
    assert!(
        (at - (before + WINDOW)).abs() <= TimeDelta::milliseconds(250),
        "{at}"
    );
    let ttl = integer(conn.cmd(&["PTTL", &redis_key]).unwrap());
    assert!((899_000..=900_000).contains(&ttl), "PTTL {ttl}");
    assert_eq!(throttle.check(&k).await.unwrap().failures, 1);
}

/// A key holding something other than a counter (never written by this adapter) fails the
/// calls that read it with a `Command` error, and `clear` removes it.
#[tokio::test]
async fn a_key_that_is_not_a_counter_fails_and_can_be_cleared() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let throttle = throttle(&redis);
    let k = key();
    let redis_key = format!("{}throttle:{k}", redis.prefix);
    let mut conn = redis.connection().unwrap();
    conn.cmd(&["SET", &redis_key, "not a number", "PX", "60000"])
        .unwrap();

    let error = throttle.check(&k).await.unwrap_err();
    let cause = error.0.downcast_ref::<RedisError>().unwrap();
    assert!(matches!(cause, RedisError::Command(_)), "{cause:?}");
    let error = throttle.count_attempt(&k, WINDOW).await.unwrap_err();
    let cause = error.0.downcast_ref::<RedisError>().unwrap();
    assert!(matches!(cause, RedisError::Command(_)), "{cause:?}");

    throttle.clear(&k).await.unwrap();
    assert_eq!(
        throttle.count_attempt(&k, WINDOW).await.unwrap().failures,
        1
    );
}

/// Windows too short or too long for Redis are rounded into its range: a zero window still
/// counts the failure (for a millisecond), an enormous one is cut to a century.
#[tokio::test]
async fn extreme_windows_are_accepted() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let throttle = throttle(&redis);
    let k = key();
    let opened = throttle.count_attempt(&k, TimeDelta::zero()).await.unwrap();
    assert_eq!(opened.failures, 1);
    sleep(TimeDelta::milliseconds(20)).await;
    assert_eq!(throttle.check(&k).await.unwrap(), AttemptWindow::default());

    let k = key();
    let opened = throttle.count_attempt(&k, TimeDelta::MAX).await.unwrap();
    assert_eq!(opened.failures, 1);
    let century = Utc::now() + TimeDelta::days(100 * 365);
    assert!(
        (opened.resets_at.unwrap() - century).abs() <= TimeDelta::seconds(1),
        "{:?}",
        opened.resets_at
    );
}

/// Two instances sharing a server count into the same windows, and a prefix keeps another
/// deployment's counts apart.
#[tokio::test]
async fn instances_share_counts_and_prefixes_keep_deployments_apart() {
    let (Some(one), Some(other)) = (TestRedis::from_env(), TestRedis::from_env()) else {
        return;
    };
    let (a, b) = (throttle(&one), throttle(&one));
    let k = key();
    let first = a.count_attempt(&k, WINDOW).await.unwrap();
    let second = b.count_attempt(&k, WINDOW).await.unwrap();
    assert_eq!(second.failures, 2);
    assert!(
        (second.resets_at.unwrap() - first.resets_at.unwrap()).abs()
            <= TimeDelta::milliseconds(250)
    );
    assert_eq!(a.check(&k).await.unwrap().failures, 2);

    let elsewhere = throttle(&other);
    assert_eq!(elsewhere.check(&k).await.unwrap(), AttemptWindow::default());
    assert_eq!(
        elsewhere.count_attempt(&k, WINDOW).await.unwrap().failures,
        1
    );
    b.clear(&k).await.unwrap();
    assert_eq!(a.check(&k).await.unwrap(), AttemptWindow::default());
    assert_eq!(elsewhere.check(&k).await.unwrap().failures, 1);
}

/// Many instances counting concurrently through small pools: every failure is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failures_from_many_instances_are_all_counted() {
    let Some(redis) = TestRedis::from_env() else {
        return;
    };
    let k = key();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (throttle, k) = (throttle(&redis), k.clone());
            tokio::spawn(async move {
                for _ in 0..50 {
                    throttle.count_attempt(&k, WINDOW).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(throttle(&redis).check(&k).await.unwrap().failures, 8 * 50);
}
