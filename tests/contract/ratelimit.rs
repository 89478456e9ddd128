//! Contract checks for `RateLimiter`.
//!
//! Every check takes a fresh adapter. Most use limits over [`LONG`], which no check waits
//! out, so their decisions do not depend on how fast the machine is; the refill checks also
//! take `advance`, an async callback that lets time pass for the adapter (moving its test
//! clock, or sleeping for a server's clock), and use periods of about a second, waiting a
//! little more than the time they expect to be refilled. `retry_after` is compared with
//! [`TOLERANCE`] either way: a server counts in microseconds, a round trip away. Keys are
//! fresh (a UUID in each), so checks may share one server and run in parallel.
//!
//! Run each check as its own test (so a failure names the property), or all of them with
//! [`run_all`]. A check panics, naming the broken property, when the adapter breaks it.

use std::sync::Arc;

use chrono::TimeDelta;
use domain::ports::{RateBudget, RateDecision, RateLimit, RateLimiter};
use uuid::Uuid;

/// A period no check waits out.
pub const LONG: TimeDelta = TimeDelta::hours(1);

/// How much sooner than expected a `retry_after` may be (time passes between the calls, and a
/// server reads its own clock), and how much later (rounding to the adapter's resolution).
pub const TOLERANCE: TimeDelta = TimeDelta::milliseconds(250);

/// How much longer than the expected refill the refill checks wait (a slow machine, a round
/// trip). Below half the shortest interval they use, so a second request is not earned back.
pub const SLACK: TimeDelta = TimeDelta::milliseconds(150);

/// How many concurrent requests the atomicity check makes on one key.
pub const CONCURRENT: u32 = 32;

/// The burst of the atomicity check: fewer than [`CONCURRENT`].
pub const CONCURRENT_BURST: u32 = 8;

/// A key no other check (or run) uses, shaped like the service's.
fn fresh_key() -> String {
    format!("auth:ip:{}", Uuid::now_v7().simple())
}

fn limit(burst: u32, period: TimeDelta) -> RateLimit {
    RateLimit { burst, period }
}

async fn acquire(limiter: &impl RateLimiter, key: &str, limit: RateLimit) -> RateDecision {
    match limiter.acquire(key, limit).await {
        Ok(decision) => decision,
        Err(error) => panic!("acquire({key:?}, {limit:?}) failed: {error:?}"),
    }
}

async fn acquire_all(limiter: &impl RateLimiter, budgets: &[RateBudget]) -> RateDecision {
    match limiter.acquire_all(budgets).await {
        Ok(decision) => decision,
        Err(error) => panic!("acquire_all({budgets:?}) failed: {error:?}"),
    }
}

async fn check_all(limiter: &impl RateLimiter, budgets: &[RateBudget]) -> RateDecision {
    match limiter.check_all(budgets).await {
        Ok(decision) => decision,
        Err(error) => panic!("check_all({budgets:?}) failed: {error:?}"),
    }
}

/// The `retry_after` of a refusal; panics, saying `what`, on an allowed request.
fn refused(decision: RateDecision, what: &str) -> TimeDelta {
    match decision {
        RateDecision::Limited { retry_after } => {
            assert!(
                retry_after > TimeDelta::zero(),
                "{what}: refused with a retry_after of {retry_after}"
            );
            retry_after
        }
        RateDecision::Allowed => panic!("{what}: allowed"),
    }
}

/// Asserts `n` requests in a row are allowed.
async fn allows(limiter: &impl RateLimiter, key: &str, limit: RateLimit, n: u32, what: &str) {
    for i in 1..=n {
        assert_eq!(
            acquire(limiter, key, limit).await,
            RateDecision::Allowed,
            "{what}: request {i} of {n} under {limit:?} was refused"
        );
    }
}

/// Asserts the next request is refused; returns its `retry_after` (positive).
async fn refuses(limiter: &impl RateLimiter, key: &str, limit: RateLimit, what: &str) -> TimeDelta {
    match acquire(limiter, key, limit).await {
        RateDecision::Limited { retry_after } => {
            assert!(
                retry_after > TimeDelta::zero(),
                "{what}: refused with a retry_after of {retry_after}"
            );
            retry_after
        }
        RateDecision::Allowed => panic!("{what}: a request over {limit:?} was allowed"),
    }
}

/// Asserts `retry_after` is `expected`, give or take [`TOLERANCE`] sooner and a millisecond
/// later.
fn assert_about(retry_after: TimeDelta, expected: TimeDelta, what: &str) {
    assert!(
        expected - TOLERANCE <= retry_after && retry_after <= expected + TimeDelta::milliseconds(1),
        "{what}: retry_after is {retry_after}, expected about {expected}"
    );
}

/// A fresh key allows the whole burst at once, then refuses, saying to retry after one
/// interval (`period / burst`).
pub async fn a_burst_is_allowed_then_limited(limiter: impl RateLimiter) {
    let key = fresh_key();
    let five = limit(5, LONG);
    allows(&limiter, &key, five, 5, "a fresh key").await;
    let retry_after = refuses(&limiter, &key, five, "the request after the burst").await;
    assert_about(retry_after, LONG / 5, "the request after the burst");
}

/// Refused requests are not counted: however often a client retries too early, the wait it
/// is told does not grow, and does not exceed one interval.
pub async fn refused_requests_are_not_counted(limiter: impl RateLimiter) {
    let key = fresh_key();
    let two = limit(2, LONG);
    allows(&limiter, &key, two, 2, "a fresh key").await;
    let first = refuses(&limiter, &key, two, "the first refusal").await;
    for i in 0..20 {
        let later = refuses(&limiter, &key, two, "a retry").await;
        assert!(
            later <= first,
            "retry {i}: retry_after grew from {first} to {later}: refusals were counted"
        );
        assert_about(later, LONG / 2, "a retry");
    }
}

/// Spending one key's budget leaves the others as they were.
pub async fn keys_are_independent(limiter: impl RateLimiter) {
    let (first, second, third) = (fresh_key(), fresh_key(), fresh_key());
    let two = limit(2, LONG);
    allows(&limiter, &first, two, 2, "the first key").await;
    refuses(&limiter, &first, two, "the first key, spent").await;
    allows(
        &limiter,
        &second,
        two,
        2,
        "a second key, after another was spent",
    )
    .await;
    refuses(&limiter, &second, two, "the second key, spent").await;
    refuses(
        &limiter,
        &first,
        two,
        "the first key, after another was spent",
    )
    .await;
    allows(&limiter, &third, two, 1, "a third key").await;
}

/// Each key is limited by the limit it is asked under: a key spent under a burst of 1 is not
/// spent for another key asked under a burst of 3, and a burst of 0 allows one request.
pub async fn each_call_names_its_limit(limiter: impl RateLimiter) {
    let (one, three, zero) = (fresh_key(), fresh_key(), fresh_key());
    allows(&limiter, &one, limit(1, LONG), 1, "a burst of 1").await;
    let retry = refuses(&limiter, &one, limit(1, LONG), "a spent burst of 1").await;
    assert_about(retry, LONG, "a spent burst of 1");
    allows(&limiter, &three, limit(3, LONG), 3, "a burst of 3").await;
    refuses(&limiter, &three, limit(3, LONG), "a spent burst of 3").await;
    allows(
        &limiter,
        &zero,
        limit(0, LONG),
        1,
        "a burst of 0 (taken as 1)",
    )
    .await;
    let retry = refuses(&limiter, &zero, limit(0, LONG), "a spent burst of 0").await;
    assert_about(retry, LONG, "a spent burst of 0 (taken as 1)");
}

/// Limits at the edges of what can be represented work: a zero or negative period (taken as
/// a millisecond), an enormous period (cut to a century) and an enormous burst.
pub async fn extreme_limits_are_accepted(limiter: impl RateLimiter) {
    for period in [TimeDelta::zero(), TimeDelta::seconds(-1), TimeDelta::MIN] {
        let key = fresh_key();
        allows(&limiter, &key, limit(1, period), 1, "a non-positive period").await;
        if let RateDecision::Limited { retry_after } =
            acquire(&limiter, &key, limit(1, period)).await
        {
            assert!(
                retry_after <= TimeDelta::milliseconds(1) + TimeDelta::microseconds(1),
                "a period of {period} (taken as 1 ms) asks to wait {retry_after}"
            );
        }
    }
    let key = fresh_key();
    allows(
        &limiter,
        &key,
        limit(1, TimeDelta::MAX),
        1,
        "an enormous period",
    )
    .await;
    let retry = refuses(
        &limiter,
        &key,
        limit(1, TimeDelta::MAX),
        "an enormous period",
    )
    .await;
    assert!(
        retry >= TimeDelta::days(365),
        "an enormous period asks to wait only {retry}"
    );
    let key = fresh_key();
    allows(
        &limiter,
        &key,
        limit(u32::MAX, TimeDelta::MAX),
        100,
        "an enormous burst",
    )
    .await;
    allows(
        &limiter,
        &key,
        limit(u32::MAX, LONG),
        100,
        "an enormous burst",
    )
    .await;
}

/// After the whole period the whole burst is back: a key spent at once allows `burst`
/// requests again, and then refuses.
pub async fn the_burst_refills_after_the_period<A>(limiter: impl RateLimiter, advance: A)
where
    A: AsyncFn(TimeDelta),
{
    let key = fresh_key();
    let three = limit(3, TimeDelta::milliseconds(900));
    allows(&limiter, &key, three, 3, "a fresh key").await;
    refuses(&limiter, &key, three, "the spent key").await;
    advance(three.period + SLACK).await;
    allows(
        &limiter,
        &key,
        three,
        3,
        "the key a period after it was spent",
    )
    .await;
    refuses(&limiter, &key, three, "the refilled key, spent again").await;
}

/// One request is earned back after the `retry_after` a refusal gave, and only one: the next
/// is refused again, with about one interval to wait.
pub async fn one_request_is_earned_back_after_retry_after<A>(limiter: impl RateLimiter, advance: A)
where
    A: AsyncFn(TimeDelta),
{
    let key = fresh_key();
    let two = limit(2, TimeDelta::seconds(1));
    allows(&limiter, &key, two, 2, "a fresh key").await;
    let retry_after = refuses(&limiter, &key, two, "the spent key").await;
    assert_about(retry_after, two.period / 2, "the spent key");
    advance(retry_after + SLACK).await;
    allows(&limiter, &key, two, 1, "the key after its retry_after").await;
    let again = refuses(&limiter, &key, two, "the request after the one earned back").await;
    assert!(
        again > two.period / 2 - SLACK - TOLERANCE && again <= two.period / 2,
        "the request after the one earned back waits {again}, not about {}",
        two.period / 2
    );
}

/// `N` concurrent requests on a fresh key with a burst of `B` < `N`: exactly `B` are
/// allowed, and the key is spent afterwards.
pub async fn concurrent_requests_allow_exactly_the_burst(limiter: impl RateLimiter + 'static) {
    let limiter = Arc::new(limiter);
    let key = fresh_key();
    let burst = limit(CONCURRENT_BURST, LONG);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENT {
        let (limiter, key) = (Arc::clone(&limiter), key.clone());
        calls.spawn(async move { acquire(&*limiter, &key, burst).await });
    }
    let mut allowed = 0;
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(RateDecision::Allowed) => allowed += 1,
            Ok(RateDecision::Limited { .. }) => {}
            Err(error) => panic!("a concurrent acquire panicked: {error}"),
        }
    }
    assert_eq!(
        allowed, CONCURRENT_BURST,
        "{CONCURRENT} concurrent requests under a burst of {CONCURRENT_BURST} allowed {allowed}"
    );
    refuses(&*limiter, &key, burst, "the key after the concurrent burst").await;
}

/// Keys with characters a store might treat specially (spaces, `:`, glob and quote
/// characters, control characters, non-ASCII letters), empty, long, and prefixes of one
/// another are each a key of their own.
pub async fn unusual_keys_work(limiter: impl RateLimiter) {
    let id = Uuid::now_v7().simple().to_string();
    let keys = [
        format!("auth:{id}"),
        format!("auth:{id}:"),
        format!("auth:{id}:2001:db8::/64"),
        format!("auth:{id} ada lovelace"),
        format!("email:zoë.{id}@例え.jp"),
        format!("auth:{id}*?[a-z]\\\"'%{{}}"),
        format!("auth:{id}\n\t\r\0"),
        id.clone(),
        format!("auth:{id}{}", "é".repeat(320)),
    ];
    let one = limit(1, LONG);
    for key in &keys {
        allows(&limiter, key, one, 1, &format!("{key:?}")).await;
    }
    for key in &keys {
        refuses(&limiter, key, one, &format!("{key:?}, spent")).await;
    }
    // The empty key is a key like any other (run once per adapter: not fresh).
    let _ = acquire(&limiter, "", one).await;
    refuses(&limiter, "", one, "the empty key, spent").await;
}

/// A request drawing on several budgets is allowed only while each allows it, and is then
/// counted in each; refused by one, it is counted in none (the others keep what they had),
/// and told the longest wait. The same key through `acquire` and `acquire_all` is one budget.
pub async fn all_budgets_are_counted_together_or_not_at_all(limiter: impl RateLimiter) {
    let (narrow, wide, other) = (fresh_key(), fresh_key(), fresh_key());
    let both = [
        RateBudget::new(&narrow, limit(2, LONG)),
        RateBudget::new(&wide, limit(4, LONG)),
    ];
    for i in 1..=2 {
        assert_eq!(
            acquire_all(&limiter, &both).await,
            RateDecision::Allowed,
            "request {i} within both budgets"
        );
    }
    // The narrow budget is spent: refused, with its wait, and the wide one is not counted.
    for _ in 0..10 {
        let wait = refused(
            acquire_all(&limiter, &both).await,
            "a request over the narrow budget",
        );
        assert_about(wait, LONG / 2, "a request over the narrow budget");
    }
    allows(
        &limiter,
        &wide,
        limit(4, LONG),
        2,
        "the wide budget after refusals by the narrow one (they were counted in it)",
    )
    .await;
    refuses(&limiter, &wide, limit(4, LONG), "the wide budget, spent").await;
    // Both spent: the longest wait is told.
    let wait = refused(acquire_all(&limiter, &both).await, "both budgets spent");
    assert_about(
        wait,
        LONG / 2,
        "both budgets spent (the narrow one waits longest)",
    );
    // Spent through `acquire_all`, refused through `acquire`: one key, one budget.
    refuses(
        &limiter,
        &narrow,
        limit(2, LONG),
        "the narrow key via acquire",
    )
    .await;
    // A spent budget refuses every request that draws on it, alongside any other.
    let with_other = [
        RateBudget::new(&other, limit(5, LONG)),
        RateBudget::new(&narrow, limit(2, LONG)),
    ];
    refused(
        acquire_all(&limiter, &with_other).await,
        "a fresh budget alongside a spent one",
    );
    allows(
        &limiter,
        &other,
        limit(5, LONG),
        5,
        "the fresh budget, refused alongside a spent one (it was counted)",
    )
    .await;
    // No budgets: nothing to refuse.
    assert_eq!(acquire_all(&limiter, &[]).await, RateDecision::Allowed);
    assert_eq!(check_all(&limiter, &[]).await, RateDecision::Allowed);
}

/// A budget named twice in one request is counted twice: a burst of 3 allows one such
/// request, not a second (which would make 4), and the key then has one left.
pub async fn a_budget_named_twice_is_counted_twice(limiter: impl RateLimiter) {
    let key = fresh_key();
    let three = limit(3, LONG);
    let twice = [RateBudget::new(&key, three), RateBudget::new(&key, three)];
    assert_eq!(acquire_all(&limiter, &twice).await, RateDecision::Allowed);
    refused(
        acquire_all(&limiter, &twice).await,
        "a second request naming the budget twice (4 of 3)",
    );
    allows(&limiter, &key, three, 1, "the one left after 2 of 3").await;
    refuses(&limiter, &key, three, "the key, spent").await;
}

/// `check_all` decides as `acquire_all` would and counts nothing: however often it is asked,
/// the whole burst is still there, and once the burst is spent it refuses with the same wait.
pub async fn checks_count_nothing(limiter: impl RateLimiter) {
    let (key, other) = (fresh_key(), fresh_key());
    let two = limit(2, LONG);
    let budgets = [
        RateBudget::new(&key, two),
        RateBudget::new(&other, limit(9, LONG)),
    ];
    for _ in 0..20 {
        assert_eq!(
            check_all(&limiter, &budgets).await,
            RateDecision::Allowed,
            "a check of a fresh key"
        );
    }
    allows(&limiter, &key, two, 2, "the key after 20 checks").await;
    let checked = refused(
        check_all(&limiter, &budgets).await,
        "a check of the spent key",
    );
    assert_about(checked, LONG / 2, "a check of the spent key");
    let acquired = refused(
        acquire_all(&limiter, &budgets).await,
        "a request on the spent key",
    );
    assert_about(acquired, LONG / 2, "a request on the spent key");
    assert!(
        (checked - acquired).abs() <= TOLERANCE,
        "a check waits {checked}, a request {acquired}"
    );
    allows(
        &limiter,
        &other,
        limit(9, LONG),
        9,
        "the other key after the checks and the refusal",
    )
    .await;
}

/// `N` concurrent requests drawing on a fresh narrow budget of burst `B` and a wider shared
/// one: exactly `B` are allowed, and the wider budget is counted exactly `B` times.
pub async fn concurrent_requests_on_several_budgets_are_atomic(
    limiter: impl RateLimiter + 'static,
) {
    let limiter = Arc::new(limiter);
    let (narrow, wide) = (fresh_key(), fresh_key());
    let wide_limit = limit(CONCURRENT_BURST * 2, LONG);
    let budgets = Arc::new(vec![
        RateBudget::new(&wide, wide_limit),
        RateBudget::new(&narrow, limit(CONCURRENT_BURST, LONG)),
    ]);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENT {
        let (limiter, budgets) = (Arc::clone(&limiter), Arc::clone(&budgets));
        calls.spawn(async move { acquire_all(&*limiter, &budgets).await });
    }
    let mut allowed = 0;
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(RateDecision::Allowed) => allowed += 1,
            Ok(RateDecision::Limited { .. }) => {}
            Err(error) => panic!("a concurrent acquire_all panicked: {error}"),
        }
    }
    assert_eq!(
        allowed, CONCURRENT_BURST,
        "{CONCURRENT} concurrent requests under a burst of {CONCURRENT_BURST} allowed {allowed}"
    );
    allows(
        &*limiter,
        &wide,
        wide_limit,
        CONCURRENT_BURST,
        "the wide budget after the concurrent requests (refused ones were counted in it)",
    )
    .await;
    refuses(&*limiter, &wide, wide_limit, "the wide budget, spent").await;
}

/// Runs every check, each on a fresh adapter from `fresh`; `advance` as for
/// [`the_burst_refills_after_the_period`].
pub async fn run_all<T, F, A>(mut fresh: F, advance: A)
where
    T: RateLimiter + 'static,
    F: FnMut() -> T,
    A: AsyncFn(TimeDelta),
{
    a_burst_is_allowed_then_limited(fresh()).await;
    refused_requests_are_not_counted(fresh()).await;
    keys_are_independent(fresh()).await;
    each_call_names_its_limit(fresh()).await;
    extreme_limits_are_accepted(fresh()).await;
    concurrent_requests_allow_exactly_the_burst(fresh()).await;
    unusual_keys_work(fresh()).await;
    all_budgets_are_counted_together_or_not_at_all(fresh()).await;
    a_budget_named_twice_is_counted_twice(fresh()).await;
    checks_count_nothing(fresh()).await;
    concurrent_requests_on_several_budgets_are_atomic(fresh()).await;
    the_burst_refills_after_the_period(fresh(), &advance).await;
    one_request_is_earned_back_after_retry_after(fresh(), &advance).await;
}
