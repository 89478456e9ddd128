//! `RedisRevocation`: the [`TokenRevocation`] port as Redis keys that expire when the
//! revocation does, so every instance sharing the server sees a logout at once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_redis::redis;
use domain::model::SessionId;
use domain::ports::{RevocationError, TokenRevocation};

use crate::RedisClient;

/// Revoked sessions as keys `{prefix}revoked:{session_id}` (value `1`), each expiring at its
/// `until` rounded up to the millisecond; `{prefix}revocations:restored` (no expiry) marks
/// that the service restored the list from its store, so a server that lost its data is
/// noticed (the marker is gone) and the list restored again.
///
/// Revoking again never shortens a revocation: the key is created with `SET … PXAT … NX` and
/// extended with `PEXPIREAT … GT`, both in one `MULTI`/`EXEC`, so concurrent revocations of
/// one session keep the latest `until`. A `revoke` whose `until` has already passed (by this
/// process's clock) writes nothing, and in particular deletes nothing. Expiry is Redis's, by
/// its own clock; instances and server are assumed to keep time to well under a second, as
/// for the `exp` of the access tokens themselves.
///
/// Every call fails with a [`RevocationError`] wrapping a [`RedisError`](crate::RedisError)
/// within the client's command timeout when Redis cannot answer; the domain then refuses the
/// request (fails closed).
#[derive(Debug, Clone)]
pub struct RedisRevocation {
    client: RedisClient,
}

impl RedisRevocation {
    /// The revocation list on `client`'s server, under its key prefix.
    #[must_use]
    pub fn new(client: RedisClient) -> Self {
        Self { client }
    }
}

/// `until` in Unix milliseconds, rounded up so the key outlives `until` itself.
fn ceil_millis(until: DateTime<Utc>) -> i64 {
    let millis = until.timestamp_millis();
    if until.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
        millis
    } else {
        millis.saturating_add(1)
    }
}

#[async_trait]
impl TokenRevocation for RedisRevocation {
    async fn revoke(
        &self,
        session: SessionId,
        until: DateTime<Utc>,
    ) -> Result<(), RevocationError> {
        if until < Utc::now() {
            return Ok(());
        }
        let key = self.client.key("revoked", session);
        let at = ceil_millis(until);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("PXAT")
            .arg(at)
            .arg("NX")
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&key)
            .arg(at)
            .arg("GT")
            .ignore();
        self.client
            .run(|mut connection| async move { pipe.query_async::<()>(&mut connection).await })
            .await
            .map_err(|error| RevocationError(Box::new(error)))
    }

    async fn is_revoked(&self, session: SessionId) -> Result<bool, RevocationError> {
        let key = self.client.key("revoked", session);
        let found: i64 = self
            .client
            .query(redis::cmd("EXISTS").arg(&key))
            .await
            .map_err(|error| RevocationError(Box::new(error)))?;
        Ok(found > 0)
    }

    async fn is_restored(&self) -> Result<bool, RevocationError> {
        let found: i64 = self
            .client
            .query(redis::cmd("EXISTS").arg(self.client.key("revocations", "restored")))
            .await
            .map_err(|error| RevocationError(Box::new(error)))?;
        Ok(found > 0)
    }

    async fn mark_restored(&self) -> Result<(), RevocationError> {
        self.client
            .query::<()>(
                redis::cmd("SET")
                    .arg(self.client.key("revocations", "restored"))
                    .arg(1),
            )
            .await
            .map_err(|error| RevocationError(Box::new(error)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn until_is_rounded_up_to_the_millisecond() {
        let whole = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap_or_default();
        assert_eq!(ceil_millis(whole), 1_700_000_000_123);
        assert_eq!(
            ceil_millis(whole + TimeDelta::nanoseconds(1)),
            1_700_000_000_124
        );
        assert_eq!(
            ceil_millis(whole + TimeDelta::microseconds(999)),
            1_700_000_000_124
        );
    }
}
