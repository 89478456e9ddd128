//! The production [`Clock`] and [`IdGenerator`]: the system clock and UUID v7.

use chrono::{DateTime, SubsecRound as _, Utc};
use domain::ports::{Clock, IdGenerator};
use uuid::Uuid;

/// The system's wall clock, in UTC, truncated to microseconds: the precision every store keeps,
/// so a timestamp the service returns equals the one it stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// Time-ordered UUID v7 identifiers (millisecond timestamp, then random bits).
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Ids;

impl IdGenerator for UuidV7Ids {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_unique_and_ordered() {
        let ids: Vec<Uuid> = (0..1000).map(|_| UuidV7Ids.new_id()).collect();
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "time-ordered and distinct"
        );
    }

    #[test]
    fn the_clock_follows_the_system_time() {
        let before = Utc::now().trunc_subsecs(6);
        let now = SystemClock.now();
        assert!(before <= now && now <= Utc::now());
        assert_eq!(
            now.timestamp_subsec_nanos() % 1000,
            0,
            "microsecond precision"
        );
    }
}
