//! Contract checks for `LoginThrottle`.
//!
//! Every check takes a fresh adapter and `now`, a callback reading the clock the adapter
//! reports `resets_at` by (its test clock; `Utc::now` for an adapter that adds a server's
//! remaining TTL to this process's clock, as Redis does). The checks read `now` before and
//! after each call and allow [`TOLERANCE`] either side, so they hold for a server's
//! millisecond TTLs and round trips as well as for an exact test clock. Windows are
//! [`LONG`], which no check waits out, except in the expiry check, which also takes
//! `advance`, an async callback that lets time pass for the adapter (moving its test clock,
//! or sleeping for a server's TTLs): it opens windows of [`SHORT`] and waits [`SHORT`] +
//! [`SLACK`], the only real wait of the suite. Keys are fresh (a UUID in each), so checks may
//! share one server and run in parallel.
//!
//! Run each check as its own test (so a failure names the property), or all of them with
//! [`run_all`]. A check panics, naming the broken property, when the adapter breaks it.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use domain::ports::{AttemptWindow, LoginThrottle};
use uuid::Uuid;

/// A window no check waits out.
pub const LONG: TimeDelta = TimeDelta::hours(1);

/// A window the expiry check waits out. It is read back right after being opened, well within
/// it.
pub const SHORT: TimeDelta = TimeDelta::milliseconds(500);

/// How much longer than [`SHORT`] the expiry check waits (a server's expiry may lag).
pub const SLACK: TimeDelta = TimeDelta::milliseconds(300);

/// How far a reported `resets_at` may be from the expected instant: a server's TTL is counted
/// in milliseconds and read a round trip away from this process's clock.
pub const TOLERANCE: TimeDelta = TimeDelta::milliseconds(250);

/// How many concurrent failures the atomicity check records on one key.
pub const CONCURRENT: u32 = 32;

/// A key no other check (or run) uses, shaped like the domain's.
fn fresh_key() -> String {
    format!("login:{}@example.com", Uuid::now_v7().simple())
}

async fn check(throttle: &impl LoginThrottle, key: &str) -> AttemptWindow {
    match throttle.check(key).await {
        Ok(window) => window,
        Err(error) => panic!("check({key:?}) failed: {error:?}"),
    }
}

async fn fail(throttle: &impl LoginThrottle, key: &str, window: TimeDelta) -> AttemptWindow {
    match throttle.count_attempt(key, window).await {
        Ok(window) => window,
        Err(error) => panic!("count_attempt({key:?}, {window}) failed: {error:?}"),
    }
}

async fn clear(throttle: &impl LoginThrottle, key: &str) {
    if let Err(error) = throttle.clear(key).await {
        panic!("clear({key:?}) failed: {error:?}");
    }
}

/// The end of a window, which every window an adapter reports must have.
fn resets_at(window: AttemptWindow, what: &str) -> DateTime<Utc> {
    match window.resets_at {
        Some(at) => at,
        None => panic!(
            "{what}: a window with {} failures has no end",
            window.failures
        ),
    }
}

/// Asserts `at` is within [`TOLERANCE`] of `expected`.
fn assert_near(at: DateTime<Utc>, expected: DateTime<Utc>, what: &str) {
    let off = at - expected;
    assert!(
        off.abs() <= TOLERANCE,
        "{what}: resets_at is {at}, {off} from the expected {expected}"
    );
}

/// Records one failure on `key` with no live window, asserting it opens one: a count of 1,
/// ending `window` after the call (between `now` before and after it, with [`TOLERANCE`]).
async fn open(
    throttle: &impl LoginThrottle,
    key: &str,
    window: TimeDelta,
    now: impl Fn() -> DateTime<Utc>,
    what: &str,
) -> DateTime<Utc> {
    let before = now();
    let opened = fail(throttle, key, window).await;
    let after = now();
    assert_eq!(
        opened.failures, 1,
        "{what}: the first failure of a window counted {}",
        opened.failures
    );
    let at = resets_at(opened, what);
    assert!(
        before + window - TOLERANCE <= at && at <= after + window + TOLERANCE,
        "{what}: a window of {window} opened between {before} and {after} ends at {at}"
    );
    at
}

/// A key never counted reads as no failures and no window, and reading it writes nothing.
pub async fn unknown_key_reads_empty(throttle: impl LoginThrottle) {
    let key = fresh_key();
    for _ in 0..2 {
        assert_eq!(
            check(&throttle, &key).await,
            AttemptWindow::default(),
            "a key never counted has a window"
        );
    }
}

/// Failures count 1, 2, 3 in one window, whose end is the one the first failure set: later
/// failures neither extend nor shorten it, whatever `window` they carry, and `check` reports
/// the same count and end without counting.
pub async fn failures_count_in_one_window(
    throttle: impl LoginThrottle,
    now: impl Fn() -> DateTime<Utc>,
) {
    let key = fresh_key();
    let end = open(&throttle, &key, LONG, &now, "first failure").await;
    for (expected, window) in [(2, LONG), (3, LONG * 2), (4, SHORT)] {
        let counted = fail(&throttle, &key, window).await;
        assert_eq!(
            counted.failures, expected,
            "failure {expected} of a window counted {}",
            counted.failures
        );
        assert_near(
            resets_at(counted, "a later failure"),
            end,
            &format!("failure {expected} (with a window of {window}) moved the window's end"),
        );
    }
    for _ in 0..2 {
        let read = check(&throttle, &key).await;
        assert_eq!(read.failures, 4, "check reported a different count");
        assert_near(resets_at(read, "check"), end, "check reported another end");
    }
}

/// Counting, reading and clearing one key leaves the others as they were.
pub async fn keys_are_independent(throttle: impl LoginThrottle, now: impl Fn() -> DateTime<Utc>) {
    let (first, second, third) = (fresh_key(), fresh_key(), fresh_key());
    open(&throttle, &first, LONG, &now, "first key").await;
    fail(&throttle, &first, LONG).await;
    open(
        &throttle,
        &second,
        LONG,
        &now,
        "a second key, after failures of another",
    )
    .await;
    assert_eq!(check(&throttle, &first).await.failures, 2);
    assert_eq!(
        check(&throttle, &second).await.failures,
        1,
        "failures of one key were counted for another"
    );
    assert_eq!(
        check(&throttle, &third).await,
        AttemptWindow::default(),
        "a key never counted has a window after others were"
    );
    clear(&throttle, &first).await;
    assert_eq!(check(&throttle, &first).await, AttemptWindow::default());
    assert_eq!(
        check(&throttle, &second).await.failures,
        1,
        "clearing one key cleared another"
    );
}

/// `clear` forgets the window: the key reads empty, and the next failure opens a new window
/// at 1. Clearing a key never counted, or twice, is `Ok`.
pub async fn clear_forgets_the_window(
    throttle: impl LoginThrottle,
    now: impl Fn() -> DateTime<Utc>,
) {
    let key = fresh_key();
    open(&throttle, &key, LONG, &now, "first failure").await;
    fail(&throttle, &key, LONG).await;
    clear(&throttle, &key).await;
    assert_eq!(
        check(&throttle, &key).await,
        AttemptWindow::default(),
        "a cleared key still has a window"
    );
    open(&throttle, &key, LONG, &now, "the first failure after clear").await;
    clear(&throttle, &key).await;
    clear(&throttle, &key).await;
    clear(&throttle, &fresh_key()).await;
    assert_eq!(check(&throttle, &key).await, AttemptWindow::default());
}

/// `N` concurrent failures on a fresh key are each counted once: the counts they return are
/// exactly 1 to `N`, all in one window, and the key then reads `N`.
pub async fn concurrent_failures_are_all_counted(
    throttle: impl LoginThrottle + 'static,
    now: impl Fn() -> DateTime<Utc>,
) {
    let throttle = Arc::new(throttle);
    let key = fresh_key();
    let before = now();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENT {
        let (throttle, key) = (Arc::clone(&throttle), key.clone());
        calls.spawn(async move { fail(&*throttle, &key, LONG).await });
    }
    let mut counted = Vec::new();
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(window) => counted.push(window),
            Err(error) => panic!("a concurrent count_attempt panicked: {error}"),
        }
    }
    let after = now();
    let mut counts: Vec<u32> = counted.iter().map(|w| w.failures).collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=CONCURRENT).collect::<Vec<_>>(),
        "{CONCURRENT} concurrent failures did not count 1 to {CONCURRENT} once each"
    );
    for window in counted {
        let at = resets_at(window, "a concurrent failure");
        assert!(
            before + LONG - TOLERANCE <= at && at <= after + LONG + TOLERANCE,
            "concurrent failures between {before} and {after} reported an end of {at}"
        );
    }
    assert_eq!(
        check(&*throttle, &key).await.failures,
        CONCURRENT,
        "the key does not read the {CONCURRENT} concurrent failures"
    );
}

/// Keys with characters a store might treat specially (spaces, `:`, glob and quote
/// characters, control characters, non-ASCII letters, emoji), empty, long, and prefixes of
/// one another are each a key of their own.
pub async fn unusual_keys_work(throttle: impl LoginThrottle, now: impl Fn() -> DateTime<Utc>) {
    let id = Uuid::now_v7().simple().to_string();
    let long = format!("login:{id}{}", "é".repeat(320));
    let keys = [
        format!("login:{id}"),
        format!("login:{id}:"),
        format!("login:{id}:ada"),
        format!("login:{id} ada lovelace"),
        format!("login:zoë.{id}@例え.jp"),
        format!("login:{id} 🦀\u{200d}"),
        format!("login:{id}*?[a-z]\\\"'%{{}}"),
        format!("login:{id}\n\t\r\0"),
        id.clone(),
        long,
    ];
    // Key i fails i + 1 times.
    for (i, key) in keys.iter().enumerate() {
        open(
            &throttle,
            key,
            LONG,
            &now,
            &format!("first failure of {key:?}"),
        )
        .await;
        for _ in 0..i {
            fail(&throttle, key, LONG).await;
        }
    }
    for (i, key) in keys.iter().enumerate() {
        let read = check(&throttle, key).await;
        assert_eq!(
            usize::try_from(read.failures).ok(),
            Some(i + 1),
            "{key:?} reads {} failures",
            read.failures
        );
    }
    for key in &keys {
        clear(&throttle, key).await;
        assert_eq!(
            check(&throttle, key).await,
            AttemptWindow::default(),
            "{key:?} was not cleared"
        );
    }
    assert_eq!(
        check(&throttle, "").await,
        AttemptWindow::default(),
        "the empty key has a window"
    );
}

/// A window ends when its time is up: the key then reads empty, and the next failure opens a
/// new window at 1, ending `window` after it. A key with a long window opened alongside is
/// unaffected.
pub async fn the_window_expires_and_counting_restarts<A>(
    throttle: impl LoginThrottle,
    now: impl Fn() -> DateTime<Utc>,
    advance: A,
) where
    A: AsyncFn(TimeDelta),
{
    let (short, long) = (fresh_key(), fresh_key());
    let first_end = open(&throttle, &short, SHORT, &now, "first failure").await;
    fail(&throttle, &short, SHORT).await;
    open(&throttle, &long, LONG, &now, "a long window").await;
    assert_eq!(
        check(&throttle, &short).await.failures,
        2,
        "a window of {SHORT} did not last until read right away"
    );

    advance(SHORT + SLACK).await;

    assert_eq!(
        check(&throttle, &short).await,
        AttemptWindow::default(),
        "a window of {SHORT} still counts {} later",
        SHORT + SLACK
    );
    let second_end = open(
        &throttle,
        &short,
        SHORT,
        &now,
        "the first failure after the window ended",
    )
    .await;
    assert!(
        second_end > first_end,
        "the new window ends at {second_end}, not after the old one ({first_end})"
    );
    assert_eq!(
        check(&throttle, &long).await.failures,
        1,
        "a long window ended with a short one"
    );
}

/// Runs every check, each on a fresh adapter from `fresh`; `now` and `advance` as for
/// [`the_window_expires_and_counting_restarts`].
pub async fn run_all<T, F, N, A>(mut fresh: F, now: N, advance: A)
where
    T: LoginThrottle + 'static,
    F: FnMut() -> T,
    N: Fn() -> DateTime<Utc>,
    A: AsyncFn(TimeDelta),
{
    unknown_key_reads_empty(fresh()).await;
    failures_count_in_one_window(fresh(), &now).await;
    keys_are_independent(fresh(), &now).await;
    clear_forgets_the_window(fresh(), &now).await;
    concurrent_failures_are_all_counted(fresh(), &now).await;
    unusual_keys_work(fresh(), &now).await;
    the_window_expires_and_counting_restarts(fresh(), &now, advance).await;
}
