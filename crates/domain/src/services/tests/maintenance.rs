//! `Maintenance::purge`: each kind of row is purged past its own retention, batch after batch
//! until a batch comes back short, and a store failure stops the purge.

use chrono::TimeDelta;

use super::fixture::{Fixture, now};
use crate::ports::StoreError;
use crate::services::{Maintenance, PurgeReport, RetentionSettings};

fn maintenance(fx: Fixture) -> Maintenance {
    let (ports, _) = fx.ports();
    Maintenance::new(ports, RetentionSettings::default())
}

#[tokio::test]
async fn purges_each_kind_past_its_retention_until_a_batch_comes_back_short() {
    let mut fx = Fixture::new();
    let mut session_batches = vec![1000_u64, 1000, 7].into_iter();
    fx.sessions
        .expect_purge_ended()
        .withf(|before, limit| *before == now() - TimeDelta::days(1) && *limit == 1000)
        .times(3)
        .returning(move |_, _| Ok(session_batches.next().unwrap()));
    fx.users
        .expect_purge_action_tokens()
        .withf(|before, limit| *before == now() - TimeDelta::days(1) && *limit == 1000)
        .times(1)
        .returning(|_, _| Ok(0));
    fx.outbox
        .expect_purge_before()
        .withf(|before, limit| *before == now() - TimeDelta::days(7) && *limit == 1000)
        .times(1)
        .returning(|_, _| Ok(42));

    let report = maintenance(fx).purge().await.unwrap();

    assert_eq!(
        report,
        PurgeReport {
            sessions: 2007,
            tokens: 0,
            mail: 42
        }
    );
}

#[tokio::test]
async fn a_store_failure_stops_the_purge() {
    let mut fx = Fixture::new();
    fx.sessions
        .expect_purge_ended()
        .times(1)
        .returning(|_, _| Err(StoreError::Unavailable("down".into())));
    fx.users.expect_purge_action_tokens().never();
    fx.outbox.expect_purge_before().never();

    let error = maintenance(fx).purge().await.unwrap_err();

    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
}
