//! `RedisRateLimiter`: the [`RateLimiter`] port as one Lua script implementing GCRA on the
//! server's clock, so every instance sharing the server draws on the same budgets.

use async_trait::async_trait;
use chrono::TimeDelta;
use deadpool_redis::redis;
use domain::ports::{RateBudget, RateDecision, RateLimit, RateLimitError, RateLimiter};

use crate::{RedisClient, RedisError};

/// `KEYS` the budgets' keys, each holding its theoretical arrival time (TAT, microseconds
/// since the epoch on the server's clock); `ARGV[1]` `1` to count an allowed request or `0`
/// only to decide; then for each key in order its emission interval and its tolerance, both
/// positive microseconds. A missing key, one holding something other than a number, or a TAT
/// in the past stand for "now". The request is allowed when, for every key in order, the TAT
/// it would leave is at most the tolerance ahead of now (a key named twice is counted twice).
/// Only then, and only when counting, every new TAT is written, expiring when it passes
/// (after which the key is idle, as if absent); otherwise nothing is written. Replies
/// `{1, 0}` when allowed, `{0, retry_after_micros}` (the longest wait of the spent keys) when
/// not.
///
/// `redis.replicate_commands()` comes first: a script that writes after `TIME` (a
/// non-deterministic command) is refused by Redis before 5 unless its effects, not the
/// script, are replicated; from Redis 5 that is the default and the call is a no-op.
///
/// Numbers are Lua doubles: microseconds since the epoch plus a century (under 2^53) are exact,
/// and they are passed to Redis formatted with `%.0f` (a bare number argument may be written in
/// exponent notation, or rounded to 14 digits).
const GCRA_SCRIPT: &str = r"
redis.replicate_commands()
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local count = ARGV[1] == '1'
local leaves = {}
local order = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = leaves[key]
  if not tat then
    tat = tonumber(redis.call('GET', key))
    if not tat or tat < now then tat = now end
  end
  local ahead = tat + interval - now
  if ahead > tolerance then
    if ahead - tolerance > wait then wait = ahead - tolerance end
  else
    if not leaves[key] then order[#order + 1] = key end
    leaves[key] = now + ahead
  end
end
if wait > 0 then
  return {0, wait}
end
if count then
  for _, key in ipairs(order) do
    local tat = leaves[key]
    redis.call('SET', key, string.format('%.0f', tat),
      'PX', string.format('%.0f', math.ceil((tat - now) / 1000)))
  end
end
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
/// One Lua script (`EVAL`) per [`acquire`](RateLimiter::acquire),
/// [`acquire_all`](RateLimiter::acquire_all) or [`check_all`](RateLimiter::check_all): read
/// the server's `TIME` and the keys, decide, and on an allowed request that counts `SET` each
/// new arrival time with a `PX` expiry. A script runs atomically, so concurrent requests from
/// any number of instances are each counted once, in all their budgets or in none; a refused
/// request, and a check, write nothing. Every instance decides by the one server clock, so
/// instances whose clocks disagree still share one budget. The keys of one call are handled
/// by one script, so they must live on one server (a single Redis, or a primary with its
/// replicas; not Redis Cluster, whose slots would split them). Works from Redis 3.2 (see
/// [`GCRA_SCRIPT`]).
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

impl RedisRateLimiter {
    /// Runs [`GCRA_SCRIPT`] on `budgets`, counting an allowed request if `count`.
    async fn run(
        &self,
        budgets: &[(&str, RateLimit)],
        count: bool,
    ) -> Result<RateDecision, RateLimitError> {
        if budgets.is_empty() {
            return Ok(RateDecision::Allowed);
        }
        let mut command = redis::cmd("EVAL");
        command.arg(GCRA_SCRIPT).arg(budgets.len());
        for (key, _) in budgets {
            command.arg(self.key(key));
        }
        command.arg(i64::from(count));
        for (_, limit) in budgets {
            let (interval, tolerance) = gcra_micros(*limit);
            command.arg(interval).arg(tolerance);
        }
        let (allowed, retry_after): (i64, i64) = self
            .client
            .query(&command)
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

fn pairs(budgets: &[RateBudget]) -> Vec<(&str, RateLimit)> {
    budgets
        .iter()
        .map(|budget| (budget.key.as_str(), budget.limit))
        .collect()
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, key: &str, limit: RateLimit) -> Result<RateDecision, RateLimitError> {
        self.run(&[(key, limit)], true).await
    }

    async fn acquire_all(&self, budgets: &[RateBudget]) -> Result<RateDecision, RateLimitError> {
        self.run(&pairs(budgets), true).await
    }

    async fn check_all(&self, budgets: &[RateBudget]) -> Result<RateDecision, RateLimitError> {
        self.run(&pairs(budgets), false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(burst: u32, period: TimeDelta) -> RateLimit {
        RateLimit { burst, period }
    }

    /// Before anything else, so that writing after `TIME` works on Redis before 5 too.
    #[test]
    fn the_script_replicates_its_effects() {
        let first = GCRA_SCRIPT.lines().find(|line| !line.trim().is_empty());
        assert_eq!(first, Some("redis.replicate_commands()"));
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
