//! How the Redis adapters behave when Redis fails: against a throwaway `redis-server` this
//! test starts, stops and starts again, and against a port that accepts connections but never
//! answers. Calls must fail within (a small multiple of) the command timeout, never hang, and
//! succeed again once the server is back, without rebuilding the client.
//!
//! Needs `redis-server` on `PATH` (not `TEST_REDIS_URL`); without it the tests say so and
//! return, except under `CI=true`, where that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use adapters_redis::{
    RedisClient, RedisError, RedisLoginThrottle, RedisRevocation, RedisSettings, RedisUserCache,
};
use chrono::{TimeDelta, Utc};
use domain::BoxError;
use domain::model::SessionId;
use domain::ports::{
    CacheGeneration, CacheLookup, LoginThrottle, Readiness, TokenRevocation, UserCache,
};
use ums_tests::contract::cache::user_with_every_field_set;
use ums_tests::support::redis::{RedisServer, SilentServer, unique_prefix};
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_millis(300);

/// Generous, so a loaded machine does not flake, yet far below "hangs".
const BOUND: Duration = Duration::from_millis(5 * 300);

struct Adapters {
    client: RedisClient,
    revocation: RedisRevocation,
    cache: RedisUserCache,
    throttle: RedisLoginThrottle,
}

fn adapters(url: &str, pool_size: usize) -> Adapters {
    let client = RedisClient::connect(RedisSettings {
        url: url.to_owned(),
        pool_size,
        command_timeout: TIMEOUT,
        key_prefix: unique_prefix(),
    })
    .unwrap();
    Adapters {
        revocation: RedisRevocation::new(client.clone()),
        cache: RedisUserCache::new(client.clone()),
        throttle: RedisLoginThrottle::new(client.clone()),
        client,
    }
}

fn session() -> SessionId {
    SessionId::from_uuid(Uuid::now_v7())
}

/// The [`RedisError`] inside a port's error.
fn redis_error(error: &BoxError) -> &RedisError {
    error
        .downcast_ref::<RedisError>()
        .unwrap_or_else(|| panic!("not a RedisError: {error:?}"))
}

/// Runs `call`, asserting it fails within [`BOUND`]; returns the error.
async fn fails_fast<T, E, F>(what: &str, call: F) -> E
where
    T: std::fmt::Debug,
    F: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let result = tokio::time::timeout(BOUND * 4, call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"));
    let elapsed = started.elapsed();
    let error = match result {
        Ok(value) => panic!("{what} succeeded against a failed server: {value:?}"),
        Err(error) => error,
    };
    assert!(
        elapsed <= BOUND,
        "{what} took {elapsed:?} to fail (timeout {TIMEOUT:?})"
    );
    error
}

/// Every port's calls work.
async fn all_work(a: &Adapters) {
    let s = session();
    a.revocation
        .revoke(s, Utc::now() + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert!(a.revocation.is_revoked(s).await.unwrap());
    let user = user_with_every_field_set();
    let CacheLookup::Miss(seen) = a.cache.get(user.id).await.unwrap() else {
        panic!("a fresh user is cached");
    };
    assert!(
        a.cache
            .put(&user, TimeDelta::minutes(1), seen)
            .await
            .unwrap()
    );
    assert_eq!(
        a.cache.get(user.id).await.unwrap(),
        CacheLookup::Hit(user.clone())
    );
    a.cache.invalidate(user.id).await.unwrap();
    let key = format!("login:{}", Uuid::now_v7().simple());
    let window = TimeDelta::minutes(1);
    assert_eq!(a.throttle.check(&key).await.unwrap().failures, 0);
    assert_eq!(
        a.throttle
            .count_attempt(&key, window)
            .await
            .unwrap()
            .failures,
        1
    );
    assert_eq!(
        a.throttle
            .count_attempt(&key, window)
            .await
            .unwrap()
            .failures,
        2
    );
    assert_eq!(a.throttle.check(&key).await.unwrap().failures, 2);
    a.throttle.clear(&key).await.unwrap();
    assert_eq!(a.throttle.check(&key).await.unwrap().failures, 0);
    a.client.ready().await.unwrap();
}

/// Every port's calls fail within the bound; returns the errors for a closer look.
async fn all_fail_fast(a: &Adapters) -> Vec<BoxError> {
    let user = user_with_every_field_set();
    let mut errors = Vec::new();
    let e = fails_fast("is_revoked", a.revocation.is_revoked(session())).await;
    errors.push(e.0);
    let e = fails_fast(
        "revoke",
        a.revocation
            .revoke(session(), Utc::now() + TimeDelta::minutes(1)),
    )
    .await;
    errors.push(e.0);
    let e = fails_fast("get", a.cache.get(user.id)).await;
    errors.push(e.0);
    let e = fails_fast(
        "put",
        a.cache
            .put(&user, TimeDelta::minutes(1), CacheGeneration::default()),
    )
    .await;
    errors.push(e.0);
    let e = fails_fast("invalidate", a.cache.invalidate(user.id)).await;
    errors.push(e.0);
    let e = fails_fast("throttle check", a.throttle.check("login:ada")).await;
    errors.push(e.0);
    let e = fails_fast(
        "throttle count_attempt",
        a.throttle.count_attempt("login:ada", TimeDelta::minutes(1)),
    )
    .await;
    errors.push(e.0);
    let e = fails_fast("throttle clear", a.throttle.clear("login:ada")).await;
    errors.push(e.0);
    errors.push(fails_fast("ready", a.client.ready()).await);
    errors
}

#[tokio::test]
async fn a_stopped_server_fails_calls_fast_and_a_restarted_one_serves_them_again() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let a = adapters(&server.url(), 4);
    all_work(&a).await;

    server.stop();
    for error in all_fail_fast(&a).await {
        let error = redis_error(&error);
        assert!(
            matches!(error, RedisError::Unavailable(_)),
            "a refused connection is Unavailable, not {error:?}"
        );
    }
    // Still failing on a second round: nothing was cached as "working".
    all_fail_fast(&a).await;

    server.restart();
    all_work(&a).await;
}

#[tokio::test]
async fn a_client_built_while_the_server_is_down_works_once_it_is_up() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    server.stop();
    let a = adapters(&server.url(), 2);
    all_fail_fast(&a).await;
    server.restart();
    all_work(&a).await;
}

#[tokio::test]
async fn a_server_that_never_answers_fails_calls_within_the_timeout() {
    let silent = SilentServer::start();
    let a = adapters(&silent.url(), 2);
    for error in all_fail_fast(&a).await {
        let error = redis_error(&error);
        assert!(
            matches!(error, RedisError::Timeout(t) if *t == TIMEOUT),
            "{error:?}"
        );
    }
}

/// A server that hangs with connections open (frozen by `SIGSTOP`): calls on the pooled
/// connections and on new ones fail within the bound; once it goes on, calls succeed again.
#[tokio::test]
async fn a_server_that_hangs_fails_calls_fast_and_recovers() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let a = adapters(&server.url(), 2);
    all_work(&a).await;

    server.pause();
    for error in all_fail_fast(&a).await {
        let error = redis_error(&error);
        assert!(matches!(error, RedisError::Timeout(_)), "{error:?}");
    }

    server.resume();
    all_work(&a).await;
}

/// More concurrent calls than pooled connections, all against a hung server: waiting for a
/// connection counts against the timeout too, so none waits behind another's timeout.
#[tokio::test]
async fn queued_calls_on_a_hung_server_do_not_add_up() {
    let silent = SilentServer::start();
    let a = adapters(&silent.url(), 2);
    let started = Instant::now();
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let revocation = a.revocation.clone();
            tokio::spawn(async move { revocation.is_revoked(session()).await })
        })
        .collect();
    for call in calls {
        assert!(call.await.unwrap().is_err());
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed <= BOUND,
        "16 calls on a pool of 2 took {elapsed:?} to fail"
    );
}

#[tokio::test]
async fn a_server_older_than_redis_7_is_refused_by_its_version() {
    let aged = ums_tests::support::redis::AgedServer::start("6.2.14");
    let client = RedisClient::connect(RedisSettings {
        url: aged.url(),
        pool_size: 1,
        command_timeout: Duration::from_secs(2),
        key_prefix: "t:".to_owned(),
    })
    .unwrap();
    let error = client.check_version().await.unwrap_err();
    assert!(
        matches!(&error, RedisError::Unsupported { found } if found == "6.2.14"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("Redis 6.2.14 is too old"),
        "{error}"
    );
}
