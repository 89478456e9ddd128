//! `MemoryRevocation` against the shared `TokenRevocation` contract, plus what is particular
//! to an in-process list: exact expiry against its clock, and bounded memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use adapters_memory::MemoryRevocation;
use chrono::{DateTime, TimeDelta, Utc};
use domain::model::SessionId;
use domain::ports::{Clock, Readiness, TokenRevocation};
use ums_tests::contract::revocation as contract;
use uuid::Uuid;

/// A clock that moves only when told to.
#[derive(Debug)]
struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            DateTime::parse_from_rfc3339("2025-01-01T12:00:00Z")
                .unwrap()
                .to_utc(),
        )))
    }

    fn advance(&self, by: TimeDelta) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn fresh() -> (MemoryRevocation, DateTime<Utc>) {
    let clock = ManualClock::new();
    let now = clock.now();
    (MemoryRevocation::new(clock), now)
}

fn session() -> SessionId {
    SessionId::from_uuid(Uuid::now_v7())
}

mod shared_contract {
    use super::*;

    #[tokio::test]
    async fn unknown_session_is_not_revoked() {
        let (list, now) = fresh();
        contract::unknown_session_is_not_revoked(list, now).await;
    }

    #[tokio::test]
    async fn revoked_session_is_revoked() {
        let (list, now) = fresh();
        contract::revoked_session_is_revoked(list, now).await;
    }

    #[tokio::test]
    async fn revoking_twice_is_harmless() {
        let (list, now) = fresh();
        contract::revoking_twice_is_harmless(list, now).await;
    }

    #[tokio::test]
    async fn earlier_until_does_not_cancel_a_revocation() {
        let (list, now) = fresh();
        contract::earlier_until_does_not_cancel_a_revocation(list, now).await;
    }

    #[tokio::test]
    async fn other_sessions_are_unaffected() {
        let (list, now) = fresh();
        contract::other_sessions_are_unaffected(list, now).await;
    }

    #[tokio::test]
    async fn past_until_is_not_revoked() {
        let (list, now) = fresh();
        contract::past_until_is_not_revoked(list, now).await;
    }

    #[tokio::test]
    async fn run_all_passes_too() {
        contract::run_all(fresh).await;
    }

    #[tokio::test]
    async fn revocation_ends_after_until() {
        let clock = ManualClock::new();
        let list = MemoryRevocation::new(clock.clone());
        let now = clock.now();
        contract::revocation_ends_after_until(list, now, async |by| clock.advance(by)).await;
    }

    #[tokio::test]
    async fn the_latest_until_wins() {
        let clock = ManualClock::new();
        let list = MemoryRevocation::new(clock.clone());
        let now = clock.now();
        contract::the_latest_until_wins(list, now, async |by| clock.advance(by)).await;
    }

    #[tokio::test]
    async fn run_timed_passes_too() {
        let clock = ManualClock::new();
        let fresh = || (MemoryRevocation::new(clock.clone()), clock.now());
        contract::run_timed(fresh, async |by| clock.advance(by)).await;
    }
}

#[tokio::test]
async fn always_ready() {
    let (list, _) = fresh();
    assert!(list.ready().await.is_ok());
}

#[tokio::test]
async fn revoked_up_to_and_including_until_then_forgotten() {
    let clock = ManualClock::new();
    let list = MemoryRevocation::new(clock.clone());
    let s = session();
    let until = clock.now() + TimeDelta::minutes(15);
    list.revoke(s, until).await.unwrap();

    clock.advance(TimeDelta::minutes(15));
    assert!(
        list.is_revoked(s).await.unwrap(),
        "still revoked at `until` itself"
    );
    assert_eq!(list.len(), 1);

    clock.advance(TimeDelta::nanoseconds(1));
    assert!(
        !list.is_revoked(s).await.unwrap(),
        "not revoked once `until` has passed"
    );
    assert!(
        list.is_empty(),
        "the expired entry met by is_revoked is dropped"
    );
}

#[tokio::test]
async fn the_later_until_wins() {
    let clock = ManualClock::new();
    let list = MemoryRevocation::new(clock.clone());
    let s = session();
    list.revoke(s, clock.now() + TimeDelta::minutes(30))
        .await
        .unwrap();
    list.revoke(s, clock.now() + TimeDelta::minutes(5))
        .await
        .unwrap();
    clock.advance(TimeDelta::minutes(10));
    assert!(
        list.is_revoked(s).await.unwrap(),
        "the shorter second revocation shortened the first"
    );
    clock.advance(TimeDelta::minutes(21));
    assert!(!list.is_revoked(s).await.unwrap());
}

#[tokio::test]
async fn a_revocation_already_past_is_not_stored() {
    let clock = ManualClock::new();
    let list = MemoryRevocation::new(clock.clone());
    list.revoke(session(), clock.now() - TimeDelta::seconds(1))
        .await
        .unwrap();
    assert!(list.is_empty());
}

/// A steady stream of short revocations, never looked up again: without sweeping the map
/// would hold all 100 000; with it, it stays under the sweep threshold, and no live entry is
/// ever swept.
#[tokio::test]
async fn sweeping_keeps_the_map_small_and_the_live_entries() {
    let clock = ManualClock::new();
    let list = MemoryRevocation::new(clock.clone());
    let mut recent = Vec::new();
    let mut largest = 0;
    for _ in 0..100_000 {
        let s = session();
        list.revoke(s, clock.now() + TimeDelta::seconds(10))
            .await
            .unwrap();
        clock.advance(TimeDelta::seconds(1));
        largest = largest.max(list.len());
        recent.push(s);
        if recent.len() > 10 {
            recent.remove(0);
        }
    }
    assert!(largest <= 1024, "the map grew to {largest} entries");
    for s in recent {
        assert!(list.is_revoked(s).await.unwrap(), "a live entry was swept");
    }
}

/// When many entries stay live the sweep threshold grows with them, so sweeps stay rare
/// (amortised), and the map is still bounded by twice the live entries once they expire.
#[tokio::test]
async fn sweeping_adapts_to_many_live_entries() {
    let clock = ManualClock::new();
    let list = MemoryRevocation::new(clock.clone());
    let long_lived: Vec<SessionId> = (0..5_000).map(|_| session()).collect();
    for s in &long_lived {
        list.revoke(*s, clock.now() + TimeDelta::hours(1))
            .await
            .unwrap();
    }
    assert_eq!(list.len(), 5_000, "nothing live is swept");
    clock.advance(TimeDelta::hours(2));
    let mut largest = 0;
    for _ in 0..50_000 {
        list.revoke(session(), clock.now() + TimeDelta::seconds(5))
            .await
            .unwrap();
        clock.advance(TimeDelta::seconds(1));
        largest = largest.max(list.len());
    }
    assert!(largest <= 10_000, "the map grew to {largest} entries");
    assert!(
        list.len() <= 1024,
        "the expired long-lived entries were never swept: {}",
        list.len()
    );
    for s in &long_lived {
        assert!(!list.is_revoked(*s).await.unwrap());
    }
}

#[tokio::test]
async fn concurrent_use_from_many_tasks() {
    let clock = ManualClock::new();
    let list = Arc::new(MemoryRevocation::new(clock.clone()));
    let until = clock.now() + TimeDelta::minutes(5);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let list = Arc::clone(&list);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for _ in 0..500 {
                    let s = session();
                    list.revoke(s, until).await.unwrap();
                    mine.push(s);
                }
                for s in mine {
                    assert!(list.is_revoked(s).await.unwrap());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(list.len(), 16 * 500);
}
