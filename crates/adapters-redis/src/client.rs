//! `RedisClient`: the connection pool the Redis adapters share, and the one helper through
//! which every command runs, bounded by the command timeout.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use deadpool_redis::redis::{self, AsyncConnectionConfig, RedisResult};
use deadpool_redis::{Connection, Manager, Pool, PoolError, Runtime};
use domain::BoxError;
use domain::ports::Readiness;

/// How to reach Redis and how long to wait for it.
///
/// `Debug` never shows the URL's password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis://[user][:password@]host[:port][/db]` (also `redis+unix:///path?db=..&pass=..`).
    /// TLS (`rediss://`) is not compiled in and is refused by [`RedisClient::connect`].
    pub url: String,
    /// Most connections held at once (each is multiplexed, so a few serve many requests).
    pub pool_size: usize,
    /// Longest a call may take, waiting for a pooled connection (or opening one) included.
    pub command_timeout: Duration,
    /// Prepended to every key, so several deployments (or tests) can share one server.
    pub key_prefix: String,
}

impl RedisSettings {
    /// The default [`pool_size`](Self::pool_size).
    pub const DEFAULT_POOL_SIZE: usize = 16;
    /// The default [`command_timeout`](Self::command_timeout).
    pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
    /// The default [`key_prefix`](Self::key_prefix).
    pub const DEFAULT_KEY_PREFIX: &'static str = "ums:";

    /// Settings for `url` with the default pool size, timeout and key prefix.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: Self::DEFAULT_POOL_SIZE,
            command_timeout: Self::DEFAULT_COMMAND_TIMEOUT,
            key_prefix: Self::DEFAULT_KEY_PREFIX.to_owned(),
        }
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redact_url(&self.url))
            .field("pool_size", &self.pool_size)
            .field("command_timeout", &self.command_timeout)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// The URL with any password replaced by `***`, fit for logs: the workspace's one redactor
/// ([`redact::redact_url`]), which masks the password of the user info (everything between
/// its first `:` and the last `@`, so an unencoded `@`, `/` or `?` in it hides nothing) and
/// secret query parameters such as `pass=` (as Unix-socket URLs carry it). Errs towards
/// hiding more when a URL is malformed.
#[must_use]
pub fn redact_url(url: &str) -> String {
    redact::redact_url(url)
}

/// Failure of a Redis call, or of [`RedisClient::connect`]. Never carries the URL's password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The settings cannot work (malformed URL, unsupported scheme, zero pool size or timeout).
    /// Reported by [`RedisClient::connect`], before any connection is tried.
    #[error("invalid Redis settings: {0}")]
    InvalidSettings(String),
    /// The call did not complete within the command timeout (server hung, or a pool
    /// exhausted by slow calls).
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// No connection could be had or kept: server down, connection refused or dropped.
    #[error("Redis is unreachable")]
    Unavailable(#[source] BoxError),
    /// The server answered with an error, or with a reply of an unexpected type.
    #[error("Redis command failed")]
    Command(#[source] BoxError),
    /// The server is older than [`MIN_REDIS_VERSION`]: the adapters use commands it lacks.
    #[error("Redis {found} is too old: UMS needs Redis {}.{} or newer (PEXPIREAT … GT, SET … PXAT)", MIN_REDIS_VERSION.0, MIN_REDIS_VERSION.1)]
    Unsupported {
        /// The version the server reported.
        found: String,
    },
}

/// The oldest Redis the adapters work with, as (major, minor).
pub const MIN_REDIS_VERSION: (u32, u32) = (7, 0);

/// The `redis_version` of an `INFO server` reply, with its (major, minor) when it parses.
fn reported_version(info: &str) -> Option<(String, Option<(u32, u32)>)> {
    let version = info
        .lines()
        .find_map(|line| line.trim().strip_prefix("redis_version:"))?
        .trim()
        .to_owned();
    let mut parts = version.split('.').map(str::parse::<u32>);
    let parsed = match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Some((major, minor)),
        _ => None,
    };
    Some((version, parsed))
}

/// A pool of connections to one Redis server, with a key prefix and a command timeout.
///
/// Cheap to clone (clones share the pool). Building it contacts no server, so a service can
/// start while Redis is down; calls fail (within the timeout) until it is back, and then
/// succeed again on fresh connections without rebuilding the client. Its [`Readiness`] is a
/// `PING` within the timeout.
#[derive(Clone)]
pub struct RedisClient {
    pool: Pool,
    command_timeout: Duration,
    key_prefix: String,
    server: String,
}

impl fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClient")
            .field("server", &self.server)
            .field("pool", &self.pool.status())
            .field("command_timeout", &self.command_timeout)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl RedisClient {
    /// Builds the pool. No connection is opened until the first call.
    ///
    /// # Errors
    /// [`RedisError::InvalidSettings`] for a URL that does not parse (or asks for TLS), a
    /// zero `pool_size` or a zero `command_timeout`.
    pub fn connect(settings: RedisSettings) -> Result<Self, RedisError> {
        if settings.pool_size == 0 {
            return Err(RedisError::InvalidSettings(
                "pool_size must be at least 1".to_owned(),
            ));
        }
        let timeout = settings.command_timeout;
        if timeout.is_zero() {
            return Err(RedisError::InvalidSettings(
                "command_timeout must be positive".to_owned(),
            ));
        }
        let connection = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        // redis-rs's messages name what is wrong, never the URL itself.
        let manager = Manager::new_with_config(settings.url.as_str(), connection)
            .map_err(|error| RedisError::InvalidSettings(format!("url: {error}")))?;
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|error| RedisError::InvalidSettings(error.to_string()))?;
        Ok(Self {
            pool,
            command_timeout: timeout,
            key_prefix: settings.key_prefix,
            server: redact_url(&settings.url),
        })
    }

    /// The prefix of every key this client's adapters write.
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The longest any call may take.
    #[must_use]
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// `{prefix}{kind}:{id}`.
    pub(crate) fn key(&self, kind: &str, id: impl fmt::Display) -> String {
        format!("{}{kind}:{id}", self.key_prefix)
    }

    /// Runs `op` on a pooled connection. The whole of it, the wait for a connection (or the
    /// opening of one) included, is bounded by the command timeout: a hung or stopped server
    /// makes the call fail fast instead of piling requests up.
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T, RedisError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let call = async {
            let connection = self.pool.get().await.map_err(|error| match error {
                PoolError::Timeout(_) => RedisError::Timeout(self.command_timeout),
                PoolError::Backend(error) => self.classify(error),
                other => RedisError::Unavailable(Box::new(other)),
            })?;
            op(connection).await.map_err(|error| self.classify(error))
        };
        match tokio::time::timeout(self.command_timeout, call).await {
            Ok(result) => result,
            Err(_elapsed) => Err(RedisError::Timeout(self.command_timeout)),
        }
    }

    /// A timeout of the connection's own (its connect and response timeouts equal the
    /// command timeout) is `Timeout`; a failure to reach the server is `Unavailable`; an
    /// answer the server gave is `Command`.
    fn classify(&self, error: redis::RedisError) -> RedisError {
        if error.is_timeout() {
            RedisError::Timeout(self.command_timeout)
        } else if error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_unrecoverable_error()
        {
            RedisError::Unavailable(Box::new(error))
        } else {
            RedisError::Command(Box::new(error))
        }
    }

    /// Runs one command.
    pub(crate) async fn query<T>(&self, command: &redis::Cmd) -> Result<T, RedisError>
    where
        T: redis::FromRedisValue,
    {
        self.run(|mut connection| async move { command.query_async(&mut connection).await })
            .await
    }
}

impl RedisClient {
    /// The server's version, if it is one the adapters work with.
    ///
    /// # Errors
    /// [`RedisError::Unsupported`] for a server older than [`MIN_REDIS_VERSION`] (or one whose
    /// `INFO` names no version); `Timeout` or `Unavailable` when it cannot be asked.
    pub async fn check_version(&self) -> Result<String, RedisError> {
        let info: String = self.query(redis::cmd("INFO").arg("server")).await?;
        match reported_version(&info) {
            Some((version, Some(found))) if found >= MIN_REDIS_VERSION => Ok(version),
            Some((version, _)) => Err(RedisError::Unsupported { found: version }),
            None => Err(RedisError::Unsupported {
                found: "of unknown version".to_owned(),
            }),
        }
    }
}

#[async_trait::async_trait]
impl Readiness for RedisClient {
    async fn ready(&self) -> Result<(), BoxError> {
        let reply: String = self.query(&redis::cmd("PING")).await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(format!("unexpected PING reply {reply:?}").into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_comes_from_the_info_reply() {
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n";
        assert_eq!(
            reported_version(info),
            Some(("7.0.15".to_owned(), Some((7, 0))))
        );
        assert_eq!(
            reported_version("redis_version:6.2.14\n"),
            Some(("6.2.14".to_owned(), Some((6, 2))))
        );
        assert_eq!(
            reported_version("redis_version:unstable\n"),
            Some(("unstable".to_owned(), None))
        );
        assert_eq!(reported_version("# Server\r\nos:Linux\r\n"), None);
        let error = RedisError::Unsupported {
            found: "6.2.14".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "Redis 6.2.14 is too old: UMS needs Redis 7.0 or newer (PEXPIREAT … GT, SET … PXAT)"
        );
    }

    #[test]
    fn redaction_hides_passwords_only() {
        assert_eq!(
            redact_url("redis://:s3cret@cache:6379/2"),
            "redis://:***@cache:6379/2"
        );
        assert_eq!(
            redact_url("redis://ums:s3cret@cache/0?protocol=resp3"),
            "redis://ums:***@cache/0?protocol=resp3"
        );
        assert_eq!(
            redact_url("redis://ums@cache:6379"),
            "redis://ums@cache:6379"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=s3cret"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(redact_url("a:b@c"), "a:***@c");
        assert_eq!(redact_url("redis://:pa/ss@host"), "redis://:***@host");
        assert_eq!(redact_url("redis://:pa?ss@host"), "redis://:***@host");
        assert_eq!(
            redact_url("redis+unix:///p?db=1&pass=x:y@z"),
            "redis+unix:///p?db=1&pass=***"
        );
    }
}
