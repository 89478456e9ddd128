//! `RedisLoginThrottle`: the [`LoginThrottle`] port as expiring Redis counters, so every
//! instance sharing the server counts the same failures.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use deadpool_redis::redis;
use domain::ports::{AttemptWindow, LoginThrottle, ThrottleError};

use crate::{RedisClient, RedisError};

/// `count_attempt`: `KEYS[1]` the counter, `ARGV[1]` the window in milliseconds (positive).
/// Counts one failure; the failure that creates the counter gives it the window as its
/// expiry, later ones leave the expiry alone. A counter found without an expiry (never left
/// so by this script) is restarted at 1 with the window, as if it had expired. Replies
/// `{count, pttl}` after counting.
const RECORD_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
elseif redis.call('PTTL', KEYS[1]) < 0 then
  count = 1
  redis.call('SET', KEYS[1], count, 'PX', ARGV[1])
end
return {count, redis.call('PTTL', KEYS[1])}
";

/// `check`: `KEYS[1]` the counter. Replies `{count, pttl}` with the count as the key holds it
/// (text, parsed by [`parse_count`]), or `{'0', -2}` when there is none (`PTTL`'s own answer
/// for a missing key).
const CHECK_SCRIPT: &str = r"
local count = redis.call('GET', KEYS[1])
if not count then return {'0', -2} end
return {count, redis.call('PTTL', KEYS[1])}
";

/// The longest window opened; a longer one is cut to this (a century), so the expiry stays
/// within what Redis and `chrono` can represent.
const MAX_WINDOW: TimeDelta = TimeDelta::days(100 * 365);

/// Failed-login counters as keys `{prefix}throttle:{key}`, holding the count of the current
/// window as a Redis integer and expiring when the window ends. The key text is used as it
/// is (Redis keys are binary-safe; the domain bounds its length).
///
/// # Commands
///
/// - `count_attempt`: one Lua script (`EVAL`): `INCR` the counter; if that created it (the
///   count is 1), `PEXPIRE` it to the window; reply the count and the `PTTL`. A script runs
///   atomically, so concurrent failures (from any instance) are each counted once and only
///   the first of a window sets its expiry: later failures never extend it. The window is
///   rounded up to the millisecond, and taken as at least one millisecond (a zero or negative
///   `window` too) and at most a century.
/// - `check`: one Lua script: `GET` the counter and its `PTTL`.
/// - `clear`: `DEL`.
///
/// A counter without an expiry cannot be left by these scripts; should one exist (written by
/// hand, say), `check` reads it as no window and the next failure restarts it at 1 with an
/// expiry. A key holding something other than an integer fails `check` and `count_attempt`
/// with a [`ThrottleError`].
///
/// # Time
///
/// The window's end is kept by Redis, by the server's clock; the `resets_at` reported is this
/// process's clock (read when the reply arrives) plus the `PTTL` the script read, so it can be
/// late by up to a round trip, and is off by however far the two clocks disagree for no
/// purpose but reporting (instances and server are assumed to keep time to well under a
/// second, as for the `exp` of access tokens). It moves by a millisecond or so between calls
/// in one window; the window itself does not.
///
/// Every call fails with a [`ThrottleError`] wrapping a [`RedisError`] within the client's
/// command timeout when Redis cannot answer; the domain then refuses the login (fails closed).
#[derive(Debug, Clone)]
pub struct RedisLoginThrottle {
    client: RedisClient,
}

impl RedisLoginThrottle {
    /// The login throttle on `client`'s server, under its key prefix.
    #[must_use]
    pub fn new(client: RedisClient) -> Self {
        Self { client }
    }

    fn key(&self, key: &str) -> String {
        self.client.key("throttle", key)
    }
}

fn throttle_error(error: RedisError) -> ThrottleError {
    ThrottleError(Box::new(error))
}

/// A count as `check` replies it: the decimal text of a Redis integer. Parsed here rather than
/// by redis-rs, whose conversion errors look like a broken connection, so that a key holding
/// something else is a [`RedisError::Command`], as `INCR` on it is.
fn parse_count(raw: &[u8]) -> Result<i64, ThrottleError> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .ok_or_else(|| {
            throttle_error(RedisError::Command(
                format!(
                    "throttle key holds {:?}, not a counter",
                    String::from_utf8_lossy(raw)
                )
                .into(),
            ))
        })
}

/// `window` in whole milliseconds, rounded up, between one and [`MAX_WINDOW`].
fn window_millis(window: TimeDelta) -> i64 {
    let window = window.clamp(TimeDelta::milliseconds(1), MAX_WINDOW);
    let millis = window.num_milliseconds();
    if window > TimeDelta::milliseconds(millis) {
        millis + 1
    } else {
        millis
    }
}

/// The window a script replied, as of `now`: none unless there is a positive count with an
/// expiry (`pttl` is -2 for no key, -1 for a key without an expiry).
fn attempt_window(count: i64, pttl: i64, now: DateTime<Utc>) -> AttemptWindow {
    if count <= 0 || pttl < 0 {
        return AttemptWindow::default();
    }
    AttemptWindow {
        failures: u32::try_from(count).unwrap_or(u32::MAX),
        resets_at: Some(
            now.checked_add_signed(TimeDelta::milliseconds(pttl))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        ),
    }
}

#[async_trait]
impl LoginThrottle for RedisLoginThrottle {
    async fn check(&self, key: &str) -> Result<AttemptWindow, ThrottleError> {
        let (count, pttl): (Vec<u8>, i64) = self
            .client
            .query(
                redis::cmd("EVAL")
                    .arg(CHECK_SCRIPT)
                    .arg(1)
                    .arg(self.key(key)),
            )
            .await
            .map_err(throttle_error)?;
        Ok(attempt_window(parse_count(&count)?, pttl, Utc::now()))
    }

    async fn count_attempt(
        &self,
        key: &str,
        window: TimeDelta,
    ) -> Result<AttemptWindow, ThrottleError> {
        let (count, pttl): (i64, i64) = self
            .client
            .query(
                redis::cmd("EVAL")
                    .arg(RECORD_SCRIPT)
                    .arg(1)
                    .arg(self.key(key))
                    .arg(window_millis(window)),
            )
            .await
            .map_err(throttle_error)?;
        Ok(attempt_window(count, pttl, Utc::now()))
    }

    async fn clear(&self, key: &str) -> Result<(), ThrottleError> {
        self.client
            .query::<()>(redis::cmd("DEL").arg(self.key(key)))
            .await
            .map_err(throttle_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_milliseconds_rounded_up_within_bounds() {
        assert_eq!(window_millis(TimeDelta::minutes(15)), 900_000);
        assert_eq!(window_millis(TimeDelta::microseconds(1_500)), 2);
        assert_eq!(window_millis(TimeDelta::nanoseconds(1)), 1);
        assert_eq!(window_millis(TimeDelta::zero()), 1);
        assert_eq!(window_millis(TimeDelta::seconds(-5)), 1);
        assert_eq!(window_millis(TimeDelta::MIN), 1);
        assert_eq!(window_millis(TimeDelta::MAX), 100 * 365 * 86_400_000);
    }

    #[test]
    fn replies_without_a_live_counter_are_no_window() {
        let now = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap_or_default();
        assert_eq!(attempt_window(0, -2, now), AttemptWindow::default());
        assert_eq!(attempt_window(3, -1, now), AttemptWindow::default());
        assert_eq!(attempt_window(-1, 1_000, now), AttemptWindow::default());
        assert_eq!(
            attempt_window(3, 1_500, now),
            AttemptWindow {
                failures: 3,
                resets_at: Some(now + TimeDelta::milliseconds(1_500)),
            }
        );
        assert_eq!(attempt_window(i64::MAX, 1, now).failures, u32::MAX);
    }

    #[test]
    fn counts_are_decimal_integers() {
        assert_eq!(parse_count(b"0").ok(), Some(0));
        assert_eq!(parse_count(b"42").ok(), Some(42));
        assert_eq!(parse_count(b"-3").ok(), Some(-3));
        for raw in [&b""[..], b"1.5", b"x", b"\xff", b"99999999999999999999"] {
            assert!(parse_count(raw).is_err(), "{raw:?}");
        }
    }
}
