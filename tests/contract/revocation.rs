//! Contract checks for `TokenRevocation`.
//!
//! Every check takes a fresh adapter and `now`, the instant the adapter takes for the present
//! (the value of its clock; `Utc::now()` for an adapter whose expiry is kept by a server, such
//! as Redis key TTLs). The untimed checks only ever revoke `until` [`MARGIN`] before or after
//! `now` and decide within milliseconds, so they hold for real TTLs and for clocks that
//! disagree by less than the margin. The timed checks also take `advance`, an async callback
//! that lets time pass for the adapter (moving its test clock, or sleeping for a server's
//! TTLs); they revoke for [`SHORT`] and wait [`SHORT`] + [`SLACK`], so they need the adapter's
//! clock to agree with `now` to well within [`SLACK`]. Session ids are fresh UUIDs, so checks
//! may share one server and run in parallel.
//!
//! Run each check as its own test (so a failure names the property), or all of them with
//! [`run_all`] (untimed) and [`run_timed`]. A check panics, naming the broken property, when
//! the adapter breaks it.

use chrono::{DateTime, TimeDelta, Utc};
use domain::model::SessionId;
use domain::ports::TokenRevocation;
use uuid::Uuid;

/// How far before or after `now` the checks place `until`.
pub const MARGIN: TimeDelta = TimeDelta::hours(1);

/// How far after `now` the timed checks place a short `until` that they then wait out.
pub const SHORT: TimeDelta = TimeDelta::milliseconds(400);

/// How much longer than [`SHORT`] the timed checks wait (a server's expiry may lag).
pub const SLACK: TimeDelta = TimeDelta::milliseconds(300);

fn fresh_session() -> SessionId {
    SessionId::from_uuid(Uuid::now_v7())
}

async fn revoke(list: &impl TokenRevocation, session: SessionId, until: DateTime<Utc>) {
    if let Err(error) = list.revoke(session, until).await {
        panic!("revoke({session}, {until}) failed: {error:?}");
    }
}

async fn is_revoked(list: &impl TokenRevocation, session: SessionId) -> bool {
    match list.is_revoked(session).await {
        Ok(revoked) => revoked,
        Err(error) => panic!("is_revoked({session}) failed: {error:?}"),
    }
}

/// A session never revoked is not revoked.
pub async fn unknown_session_is_not_revoked(list: impl TokenRevocation, _now: DateTime<Utc>) {
    assert!(
        !is_revoked(&list, fresh_session()).await,
        "a session that was never revoked is reported revoked"
    );
}

/// A session revoked until a future instant is revoked now.
pub async fn revoked_session_is_revoked(list: impl TokenRevocation, now: DateTime<Utc>) {
    let session = fresh_session();
    revoke(&list, session, now + MARGIN).await;
    assert!(
        is_revoked(&list, session).await,
        "a session revoked until {} is not reported revoked at {now}",
        now + MARGIN
    );
}

/// Revoking a revoked session again, with the same or a later `until`, succeeds and it stays
/// revoked.
pub async fn revoking_twice_is_harmless(list: impl TokenRevocation, now: DateTime<Utc>) {
    let session = fresh_session();
    revoke(&list, session, now + MARGIN).await;
    revoke(&list, session, now + MARGIN).await;
    assert!(
        is_revoked(&list, session).await,
        "revoked twice, then not revoked"
    );
    revoke(&list, session, now + MARGIN * 2).await;
    assert!(
        is_revoked(&list, session).await,
        "revoked again with a later `until`, then not revoked"
    );
}

/// A later call with an earlier `until`, even one already past, never shortens a revocation
/// (a Redis adapter must not overwrite a longer TTL, e.g. use `PEXPIREAT ... GT`, and must
/// not write, or delete, for an `until` that has passed).
pub async fn earlier_until_does_not_cancel_a_revocation(
    list: impl TokenRevocation,
    now: DateTime<Utc>,
) {
    let session = fresh_session();
    revoke(&list, session, now + MARGIN).await;
    revoke(&list, session, now - MARGIN).await;
    assert!(
        is_revoked(&list, session).await,
        "revoking again with an `until` in the past cancelled a live revocation"
    );
}

/// Revoking one session leaves the others alone.
pub async fn other_sessions_are_unaffected(list: impl TokenRevocation, now: DateTime<Utc>) {
    let first = fresh_session();
    let second = fresh_session();
    revoke(&list, first, now + MARGIN).await;
    assert!(
        !is_revoked(&list, second).await,
        "revoking one session revoked another"
    );
    revoke(&list, second, now + MARGIN).await;
    assert!(
        is_revoked(&list, first).await,
        "revoking a second session un-revoked the first"
    );
    assert!(
        is_revoked(&list, second).await,
        "the second revoked session is not revoked"
    );
}

/// An entry whose `until` has already passed is not reported revoked: once no access token of
/// the session can be valid, the entry has nothing left to refuse.
pub async fn past_until_is_not_revoked(list: impl TokenRevocation, now: DateTime<Utc>) {
    let session = fresh_session();
    revoke(&list, session, now - MARGIN).await;
    assert!(
        !is_revoked(&list, session).await,
        "a session revoked until {} is still reported revoked at {now}",
        now - MARGIN
    );
}

/// Runs every untimed check, each on a fresh adapter from `fresh`, which also returns the
/// adapter's `now`.
pub async fn run_all<R, F>(mut fresh: F)
where
    R: TokenRevocation,
    F: FnMut() -> (R, DateTime<Utc>),
{
    let (list, now) = fresh();
    unknown_session_is_not_revoked(list, now).await;
    let (list, now) = fresh();
    revoked_session_is_revoked(list, now).await;
    let (list, now) = fresh();
    revoking_twice_is_harmless(list, now).await;
    let (list, now) = fresh();
    earlier_until_does_not_cancel_a_revocation(list, now).await;
    let (list, now) = fresh();
    other_sessions_are_unaffected(list, now).await;
    let (list, now) = fresh();
    past_until_is_not_revoked(list, now).await;
}

/// A revocation ends once its `until` has passed (the entry has nothing left to refuse).
pub async fn revocation_ends_after_until<A>(
    list: impl TokenRevocation,
    now: DateTime<Utc>,
    advance: A,
) where
    A: AsyncFn(TimeDelta),
{
    let session = fresh_session();
    revoke(&list, session, now + SHORT).await;
    assert!(
        is_revoked(&list, session).await,
        "a session revoked until {} is not reported revoked right away",
        now + SHORT
    );
    advance(SHORT + SLACK).await;
    assert!(
        !is_revoked(&list, session).await,
        "a session revoked until {} is still reported revoked {} later",
        now + SHORT,
        SHORT + SLACK
    );
}

/// The latest `until` wins, whatever the order of the calls: revoking again with an earlier
/// (but future) `until` does not shorten a revocation (a Redis adapter must not simply
/// `SET … PXAT`), and revoking again with a later one extends it.
pub async fn the_latest_until_wins<A>(list: impl TokenRevocation, now: DateTime<Utc>, advance: A)
where
    A: AsyncFn(TimeDelta),
{
    let shortened = fresh_session();
    revoke(&list, shortened, now + MARGIN).await;
    revoke(&list, shortened, now + SHORT).await;
    let extended = fresh_session();
    revoke(&list, extended, now + SHORT).await;
    revoke(&list, extended, now + MARGIN).await;
    advance(SHORT + SLACK).await;
    assert!(
        is_revoked(&list, shortened).await,
        "revoking again with an earlier `until` shortened a revocation"
    );
    assert!(
        is_revoked(&list, extended).await,
        "revoking again with a later `until` did not extend a revocation"
    );
}

/// Runs the timed checks, each on a fresh adapter from `fresh`, which also returns the
/// adapter's `now`; `advance` lets time pass for the adapters.
pub async fn run_timed<R, F, A>(mut fresh: F, advance: A)
where
    R: TokenRevocation,
    F: FnMut() -> (R, DateTime<Utc>),
    A: AsyncFn(TimeDelta),
{
    let (list, now) = fresh();
    revocation_ends_after_until(list, now, &advance).await;
    let (list, now) = fresh();
    the_latest_until_wins(list, now, &advance).await;
}
