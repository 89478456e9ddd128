//! `RedisRateLimiter`: the [`RateLimiter`] port as one Lua script implementing GCRA on the
//! server's clock, so every instance sharing the server draws on the same budgets.

use async_trait::async_trait;
use chrono::TimeDelta;
use deadpool_redis::redis;
use domain::ports::{RateDecision, RateLimit, RateLimitError, RateLimiter};

use crate::{RedisClient, RedisError};

/// `KEYS[1]` the key's theoretical arrival time (TAT, microseconds since the epoch on the
/// server's clock); `ARGV[1]` the emission interval and `ARGV[2]` the tolerance, both positive
/// microseconds. A missing key, one holding something other than a number, or a TAT in the
/// past stand for "now". The request is allowed when the TAT it would leave is at most the
/// tolerance ahead of now: the TAT is then written, expiring when it passes (after which the
/// key is idle, as if absent). Otherwise nothing is written. Replies `{1, 0}` when allowed,
/// `{0, retry_after_micros}` when not.
///
/// Numbers are Lua doubles: microseconds since the epoch plus a century (under 2^53) are exact,
/// and they are passed to Redis formatted with `%.0f` (a bare number argument may be written in
/// exponent notation, or rounded to 14 digits).
const ACQUIRE_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local ahead = tat + interval - now
if ahead > tolerance then
  return {0, ahead - tolerance}
end
redis.call('SET', KEYS[1], string.format('%.0f', now + ahead),
  'PX', string.format('%.0f', math.ceil(ahead / 1000)))
return {1, 0}
";

/// The shortest period, as the port says: a shorter (or non-positive) one is taken as this.
const MIN_PERIOD: TimeDelta = TimeDelta::milliseconds(1);

/// The longest period; a longer one is cut to this (a century), so every number the script
/// handles is exact in a Lua double.
const MAX_PERIOD: TimeDelta = TimeDelta::days(100 * 365);

/// Rate limits as keys `{prefix}ratelimit:{key}`, each holding the key's theoretical arrival
/// time (GCRA) in microseconds on the server's clock, and expiring when it passes. The key
/// text is used as it is (Redis keys are binary-safe).
///
/// # Commands
///
/// One Lua script (`EVAL`) per [`acquire`](RateLimiter::acquire): read the server's `TIME`
/// and the key, decide, and on an allowed request `SET` the new arrival time with a `PX`
/// expiry. A script runs atomically, so concurrent requests from any number of instances are
/// each counted once; a refused request writes nothing. Every instance decides by the one
/// server clock, so instances whose clocks disagree still share one budget.
///
/// The interval is `period / burst` rounded up to the microsecond (so the rate is never above
/// the one asked for) and the tolerance `burst` intervals (so the whole burst is allowed at
/// once); a `burst` of 0 is taken as 1, a `period` under a millisecond as a millisecond and one
/// over a century as a century.
///
/// Fails with a [`RateLimitError`] wrapping a [`RedisError`] within the client's command
/// timeout when Redis cannot answer; the composition root wraps this adapter in a fallback
/// that then limits in process, more strictly.
#[derive(Debug, Clone)]
pub struct RedisRateLimiter {
    client: RedisClient,
}

impl RedisRateLimiter {
    /// The rate limiter on `client`'s server, under its key prefix.
    #[must_use]
    pub fn new(client: RedisClient) -> Self {
        Self { client }
    }

    fn key(&self, key: &str) -> String {
        self.client.key("ratelimit", key)
    }
}

/// The emission interval and the tolerance of `limit`, in microseconds.
fn gcra_micros(limit: RateLimit) -> (i64, i64) {
    let burst = i64::from(limit.burst.max(1));
    let period = limit
        .period
        .clamp(MIN_PERIOD, MAX_PERIOD)
        .num_microseconds()
        .unwrap_or(i64::MAX / 2);
    let interval = (period + burst - 1) / burst;
    (interval, interval * burst)
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, key: &str, limit: RateLimit) -> Result<RateDecision, RateLimitError> {
        let (interval, tolerance) = gcra_micros(limit);
        let (allowed, retry_after): (i64, i64) = self
            .client
            .query(
                redis::cmd("EVAL")
                    .arg(ACQUIRE_SCRIPT)
                    .arg(1)
                    .arg(self.key(key))
                    .arg(interval)
                    .arg(tolerance),
            )
            .await
            .map_err(|error: RedisError| RateLimitError(Box::new(error)))?;
        Ok(if allowed == 1 {
            RateDecision::Allowed
        } else {
            RateDecision::Limited {
                retry_after: TimeDelta::microseconds(retry_after.max(1)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(burst: u32, period: TimeDelta) -> RateLimit {
        RateLimit { burst, period }
    }

    #[test]
    fn limits_are_whole_microseconds_allowing_the_whole_burst() {
        assert_eq!(
            gcra_micros(limit(30, TimeDelta::minutes(1))),
            (2_000_000, 60_000_000)
        );
        assert_eq!(
            gcra_micros(limit(3, TimeDelta::seconds(1))),
            (333_334, 1_000_002)
        );
        assert_eq!(
            gcra_micros(limit(0, TimeDelta::seconds(1))),
            (1_000_000, 1_000_000)
        );
        assert_eq!(gcra_micros(limit(1, TimeDelta::zero())), (1_000, 1_000));
        assert_eq!(gcra_micros(limit(1, TimeDelta::MIN)), (1_000, 1_000));
        let century = 100 * 365 * 86_400 * 1_000_000;
        assert_eq!(gcra_micros(limit(1, TimeDelta::MAX)), (century, century));
        let (interval, tolerance) = gcra_micros(limit(u32::MAX, TimeDelta::MAX));
        assert!(interval >= 1);
        assert_eq!(tolerance / interval, i64::from(u32::MAX));
        assert!(tolerance < 1 << 53, "exact in a Lua double");
    }
}
