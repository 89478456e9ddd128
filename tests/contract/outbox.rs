//! Contract checks for `Outbox`: claiming due messages under a lease (oldest first, never the
//! same message to two claims, even concurrent ones), recording deliveries and failures, the
//! status counts and the purge. Messages are queued as the stores queue them, in the journal
//! of a change ([`queue`]); their sealed bytes are arbitrary, since the store never opens them.
//! The conventions are those of [`stores`](super::stores).
//!
//! # Decisions beyond the rustdoc of the port
//!
//! - A message is due from its `created_at` on (it is never tried before it was queued).
//! - A lease that ends at `now` has ended: the message is claimable at `lease_until`.
//! - `mark_sent` of a message delivered already keeps the first delivery time; of one given up,
//!   it records the delivery (the message is no longer dead). `mark_failed` of a delivered
//!   message changes nothing (a late report of a lapsed lease's attempt cannot undo a
//!   delivery). Neither checks who holds the lease.
//! - `OutboxStatus::pending` counts every message neither delivered nor given up, leased or
//!   not, due or not; `retrying` those of them that failed at least once; `dead` those given
//!   up at or after `dead_since`.
//! - `purge_before` deletes messages delivered or given up strictly before `before`, in no
//!   particular order; pending ones are never purged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;

use domain::model::MailKind;
use domain::ports::{ClaimedMail, Outbox, OutboxStatus, StoreError};
use uuid::Uuid;

use super::fixtures::{LATER, Store, at, claimed_ids, mail, mail_id, queue};

/// The outbox's counts, with `dead` counted from `at(dead_since)`.
async fn status<S: Outbox>(store: &S, dead_since: i64) -> OutboxStatus {
    store.status(at(dead_since)).await.expect("status")
}

/// Marks message `n` delivered at `at(when)`.
async fn sent<S: Outbox>(store: &S, n: u128, when: i64) {
    store
        .mark_sent(mail_id(n), at(when))
        .await
        .expect("mark_sent");
}

/// Records a failed attempt of message `n` at `at(when)`, to be tried again at `at(retry)`, or
/// given up with `None`.
async fn failed<S: Outbox>(store: &S, n: u128, when: i64, retry: Option<i64>) {
    store
        .mark_failed(
            mail_id(n),
            at(when),
            format!("451 attempt at {when}"),
            retry.map(at),
        )
        .await
        .expect("mark_failed");
}

/// Claims everything due at `at(now)`, leasing it until `at(lease)`.
async fn claim_leased<S: Outbox>(store: &S, now: i64, lease: i64) -> Vec<ClaimedMail> {
    store.claim(at(now), at(lease), 1000).await.expect("claim")
}

/// `claim` returns the due messages, and only those, oldest first, as they were queued (id,
/// kind, queuing time to the microsecond, sealed bytes) and never tried; while their lease
/// runs, no claim returns them again; a message queued for later becomes due at its
/// `created_at`.
pub async fn claim_returns_due_messages_oldest_first_once_per_lease<S>(store: S)
where
    S: Store,
{
    let mut precise = mail(5, MailKind::PasswordChanged, 2);
    precise.created_at += chrono::TimeDelta::microseconds(123_456);
    queue(
        &store,
        1,
        vec![
            mail(1, MailKind::Verification, 3),
            mail(2, MailKind::PasswordReset, 1),
            precise.clone(),
            mail(4, MailKind::EmailChanged, 50),
        ],
    )
    .await;
    // Message 3 is queued by another change, at the same instant as message 1.
    queue(&store, 2, vec![mail(3, MailKind::Verification, 3)]).await;

    let claimed = claim_leased(&store, 10, 70).await;
    let expected: Vec<ClaimedMail> = [
        mail(2, MailKind::PasswordReset, 1),
        precise,
        mail(1, MailKind::Verification, 3),
        mail(3, MailKind::Verification, 3),
    ]
    .into_iter()
    .map(|mail| ClaimedMail { mail, attempts: 0 })
    .collect();
    assert_eq!(
        claimed, expected,
        "the due messages, oldest first (ties by id), every field as queued"
    );
    assert_eq!(
        claimed_ids(&store, 20).await,
        Vec::<Uuid>::new(),
        "leased messages are not claimed again, and message 4 is not due yet"
    );
    assert_eq!(
        claimed_ids(&store, 50).await,
        vec![mail_id(4)],
        "a message is due from its created_at on; the others are still leased"
    );
}

/// `claim` returns at most `limit` messages, the oldest, and the next claim the next oldest.
pub async fn claim_takes_at_most_limit_oldest_first<S>(store: S)
where
    S: Store,
{
    let queued = (1..=5)
        .map(|n| mail(n, MailKind::Verification, i64::try_from(n).unwrap()))
        .collect();
    queue(&store, 1, queued).await;
    let mut batches = Vec::new();
    for _ in 0..4 {
        let batch: Vec<Uuid> = store
            .claim(at(10), at(100), 2)
            .await
            .expect("claim")
            .into_iter()
            .map(|c| c.mail.id)
            .collect();
        batches.push(batch);
    }
    assert_eq!(
        batches,
        vec![
            vec![mail_id(1), mail_id(2)],
            vec![mail_id(3), mail_id(4)],
            vec![mail_id(5)],
            vec![],
        ]
    );
    assert!(
        store
            .claim(at(100), at(200), 0)
            .await
            .expect("claim")
            .is_empty(),
        "a limit of 0 claims nothing"
    );
}

/// A lease that ran out (a worker that crashed) makes the message claimable again, from the
/// instant `lease_until` on, with its attempts unchanged.
pub async fn a_lapsed_lease_makes_a_message_claimable_again<S>(store: S)
where
    S: Store,
{
    queue(&store, 1, vec![mail(1, MailKind::PasswordReset, 0)]).await;
    assert_eq!(claim_leased(&store, 10, 20).await.len(), 1);
    assert_eq!(
        claimed_ids(&store, 19).await,
        Vec::<Uuid>::new(),
        "still leased"
    );
    let again = claim_leased(&store, 20, 30).await;
    assert_eq!(
        again,
        vec![ClaimedMail {
            mail: mail(1, MailKind::PasswordReset, 0),
            attempts: 0
        }],
        "claimable again once the lease ends"
    );
    assert_eq!(
        claimed_ids(&store, 25).await,
        Vec::<Uuid>::new(),
        "leased again"
    );
}

/// Eight workers claiming at once, in small batches, until nothing is left: every one of 50
/// messages is claimed by exactly one of them.
pub async fn concurrent_claims_never_return_a_message_twice<S>(store: S)
where
    S: Store,
{
    const MESSAGES: u128 = 50;
    const WORKERS: usize = 8;
    for batch in 0..5 {
        let queued = (0..10)
            .map(|i| {
                let n = batch * 10 + i + 1;
                mail(n, MailKind::Verification, i64::try_from(n % 7).unwrap())
            })
            .collect();
        queue(&store, batch, queued).await;
    }
    let store = Arc::new(store);
    let start = Arc::new(tokio::sync::Barrier::new(WORKERS));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                let mut mine = Vec::new();
                loop {
                    let batch = store.claim(at(10), at(600), 3).await.expect("claim");
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|c| c.mail.id));
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut claims = 0;
    for worker in workers {
        for id in worker.await.expect("worker") {
            claims += 1;
            assert!(seen.insert(id), "message {id} was claimed twice");
        }
    }
    let expected: HashSet<Uuid> = (1..=MESSAGES).map(mail_id).collect();
    assert_eq!(claims, MESSAGES, "every message claimed once");
    assert_eq!(seen, expected, "every message claimed");
}

/// `mark_sent` ends a message: it is never claimed again, not even after its lease, and no
/// longer counts as pending. Reporting the delivery again is no error; an unknown id is
/// `NotFound`, for `mark_failed` too.
pub async fn mark_sent_delivers_a_message_once<S>(store: S)
where
    S: Store,
{
    queue(
        &store,
        1,
        vec![
            mail(1, MailKind::Verification, 0),
            mail(2, MailKind::Verification, 0),
        ],
    )
    .await;
    assert_eq!(claim_leased(&store, 10, 20).await.len(), 2);
    sent(&store, 1, 11).await;
    assert_eq!(
        claimed_ids(&store, LATER).await,
        vec![mail_id(2)],
        "the delivered message is never claimed again"
    );
    sent(&store, 1, 12).await;
    assert_eq!(
        status(&store, 0).await,
        OutboxStatus {
            pending: 1,
            retrying: 0,
            dead: 0
        }
    );
    let unknown = Uuid::from_u128(0xdead);
    assert!(
        matches!(
            store.mark_sent(unknown, at(13)).await,
            Err(StoreError::NotFound)
        ),
        "mark_sent of an unknown message"
    );
    assert!(
        matches!(
            store
                .mark_failed(unknown, at(13), "550 no".to_owned(), None)
                .await,
            Err(StoreError::NotFound)
        ),
        "mark_failed of an unknown message"
    );
}

/// `mark_failed` with a retry releases the lease, delays the message until `retry_at` and
/// counts the attempt; the message counts as pending and retrying.
pub async fn mark_failed_with_a_retry_delays_and_counts_attempts<S>(store: S)
where
    S: Store,
{
    queue(&store, 1, vec![mail(1, MailKind::PasswordReset, 0)]).await;
    assert_eq!(claim_leased(&store, 10, 1000).await.len(), 1);
    failed(&store, 1, 11, Some(40)).await;
    assert_eq!(
        claimed_ids(&store, 39).await,
        Vec::<Uuid>::new(),
        "not before retry_at"
    );
    assert_eq!(
        status(&store, 0).await,
        OutboxStatus {
            pending: 1,
            retrying: 1,
            dead: 0
        }
    );
    let again = claim_leased(&store, 40, 1000).await;
    assert_eq!(
        again,
        vec![ClaimedMail {
            mail: mail(1, MailKind::PasswordReset, 0),
            attempts: 1
        }],
        "due at retry_at although the old lease would still run: the failure released it"
    );
    failed(&store, 1, 41, Some(80)).await;
    let third = claim_leased(&store, 80, 1000).await;
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].attempts, 2, "each failure counts");
}

/// `mark_failed` without a retry gives the message up: never claimed again, not pending, and
/// dead from the instant of the failure on.
pub async fn mark_failed_without_a_retry_gives_up<S>(store: S)
where
    S: Store,
{
    queue(
        &store,
        1,
        vec![
            mail(1, MailKind::EmailChanged, 0),
            mail(2, MailKind::EmailChanged, 0),
        ],
    )
    .await;
    assert_eq!(claim_leased(&store, 10, 20).await.len(), 2);
    failed(&store, 1, 12, None).await;
    assert_eq!(
        claimed_ids(&store, LATER).await,
        vec![mail_id(2)],
        "a message given up is never claimed again"
    );
    assert_eq!(
        status(&store, 12).await,
        OutboxStatus {
            pending: 1,
            retrying: 0,
            dead: 1
        },
        "dead since the instant it was given up"
    );
    assert_eq!(status(&store, 13).await.dead, 0, "not dead since later");
}

/// A delivery stands: a failure reported after it (the attempt of a lapsed lease) changes
/// nothing; and a delivery reported after the message was given up makes it delivered.
pub async fn a_delivery_outranks_a_failure<S>(store: S)
where
    S: Store,
{
    queue(
        &store,
        1,
        vec![
            mail(1, MailKind::Verification, 0),
            mail(2, MailKind::Verification, 0),
        ],
    )
    .await;
    assert_eq!(claim_leased(&store, 10, 20).await.len(), 2);
    sent(&store, 1, 11).await;
    failed(&store, 1, 12, None).await;
    failed(&store, 1, 12, Some(13)).await;
    failed(&store, 2, 12, None).await;
    sent(&store, 2, 14).await;
    assert_eq!(
        status(&store, 0).await,
        OutboxStatus::default(),
        "both delivered: nothing pending, nothing dead"
    );
    assert_eq!(claimed_ids(&store, LATER).await, Vec::<Uuid>::new());
}

/// `status` counts every undelivered message that will still be tried (leased, due or
/// delayed), those that failed before, and those given up since the instant asked.
pub async fn status_counts_pending_retrying_and_dead<S>(store: S)
where
    S: Store,
{
    assert_eq!(status(&store, 0).await, OutboxStatus::default(), "empty");
    let mut queued: Vec<_> = (1..=7)
        .map(|n| mail(n, MailKind::Verification, 0))
        .collect();
    queued.push(mail(8, MailKind::Verification, 200));
    queue(&store, 1, queued).await;
    // 1, 2: leased, never tried. 3, 4: failed, delayed. 5: given up at 20, 6 at 30.
    // 7: delivered. 8: not due yet.
    assert_eq!(claim_leased(&store, 10, 100).await.len(), 7);
    failed(&store, 3, 11, Some(500)).await;
    failed(&store, 4, 11, Some(500)).await;
    failed(&store, 5, 20, None).await;
    failed(&store, 6, 30, None).await;
    sent(&store, 7, 12).await;
    assert_eq!(
        status(&store, 0).await,
        OutboxStatus {
            pending: 5,
            retrying: 2,
            dead: 2
        }
    );
    assert_eq!(status(&store, 25).await.dead, 1, "given up at 30 only");
    assert_eq!(status(&store, 31).await.dead, 0);
}

/// `purge_before` deletes at most `limit` messages delivered or given up strictly before
/// `before`, and never a pending one; a purged message is gone (`NotFound`).
pub async fn purge_before_deletes_only_finished_messages_bounded_by_limit<S>(store: S)
where
    S: Store,
{
    let queued = (1..=6)
        .map(|n| mail(n, MailKind::Verification, 0))
        .collect();
    queue(&store, 1, queued).await;
    assert_eq!(claim_leased(&store, 1, 2).await.len(), 6);
    sent(&store, 1, 10).await;
    sent(&store, 2, 11).await;
    sent(&store, 3, 12).await;
    failed(&store, 4, 13, None).await;
    failed(&store, 5, 5, Some(6)).await;
    // 6 stays pending, its lease lapsed.

    let purge = |before: i64, limit: u32| {
        let store = store.clone();
        async move {
            Outbox::purge_before(&store, at(before), limit)
                .await
                .expect("purge_before")
        }
    };
    assert_eq!(purge(12, 1).await, 1, "bounded by the limit");
    assert_eq!(
        purge(12, 10).await,
        1,
        "the other one before 12 (not the one at 12)"
    );
    assert_eq!(purge(12, 10).await, 0, "nothing else before 12");
    assert_eq!(
        purge(LATER, 10).await,
        2,
        "delivered at 12 and given up at 13"
    );
    assert_eq!(purge(LATER, 10).await, 0, "pending messages stay");
    for n in 1..=4 {
        assert!(
            matches!(
                store.mark_sent(mail_id(n), at(20)).await,
                Err(StoreError::NotFound)
            ),
            "message {n} is gone"
        );
    }
    assert_eq!(
        claimed_ids(&store, 100).await,
        vec![mail_id(5), mail_id(6)],
        "the pending messages are still there"
    );
    assert_eq!(
        status(&store, 0).await,
        OutboxStatus {
            pending: 2,
            retrying: 1,
            dead: 0
        }
    );
}
