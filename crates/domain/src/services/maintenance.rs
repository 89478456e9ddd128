//! Housekeeping: purging what no request needs any more (sessions that ended, one-time tokens
//! that were spent or expired, outbox messages that were delivered or given up), in bounded
//! batches so that a purge never holds long locks. The composition root runs it periodically.

use chrono::TimeDelta;

use super::Ports;
use crate::ports::StoreError;

/// Rows deleted per statement.
const BATCH: u32 = 1000;

/// How long things stay after they stopped mattering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Sessions after they expired or were revoked: longer than an access token of theirs can
    /// live, so the revocation list can still be rebuilt from them. Default 1 day.
    pub ended_sessions: TimeDelta,
    /// One-time tokens after they were spent or expired: longer than the resend cooldown.
    /// Default 1 day.
    pub spent_tokens: TimeDelta,
    /// Outbox messages after delivery or giving up (only the record: a delivered message's
    /// content is dropped at once). Default 7 days.
    pub finished_mail: TimeDelta,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            ended_sessions: TimeDelta::days(1),
            spent_tokens: TimeDelta::days(1),
            finished_mail: TimeDelta::days(7),
        }
    }
}

/// How many rows one purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Sessions (with their refresh tokens).
    pub sessions: u64,
    /// One-time tokens.
    pub tokens: u64,
    /// Outbox messages.
    pub mail: u64,
}

/// The housekeeping use case.
#[derive(Debug, Clone)]
pub struct Maintenance {
    ports: Ports,
    retention: RetentionSettings,
}

impl Maintenance {
    /// Housekeeping over `ports`.
    #[must_use]
    pub fn new(ports: Ports, retention: RetentionSettings) -> Self {
        Self { ports, retention }
    }

    /// Deletes everything past its retention, batch by batch.
    ///
    /// # Errors
    /// [`StoreError`] when a store cannot be reached; what was deleted before stays deleted.
    pub async fn purge(&self) -> Result<PurgeReport, StoreError> {
        let now = self.ports.clock.now();
        let (sessions, users, outbox) =
            (&self.ports.sessions, &self.ports.users, &self.ports.outbox);
        let ended = now - self.retention.ended_sessions;
        let spent = now - self.retention.spent_tokens;
        let finished = now - self.retention.finished_mail;
        let report = PurgeReport {
            sessions: drain(|| sessions.purge_ended(ended, BATCH)).await?,
            tokens: drain(|| users.purge_action_tokens(spent, BATCH)).await?,
            mail: drain(|| outbox.purge_before(finished, BATCH)).await?,
        };
        Ok(report)
    }
}

/// Runs `batch` until it deletes less than a full batch; the total deleted.
async fn drain<F, Fut>(mut batch: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    loop {
        let deleted = batch().await?;
        total += deleted;
        if deleted < u64::from(BATCH) {
            return Ok(total);
        }
    }
}
