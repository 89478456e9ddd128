//! `Outbox` for [`PostgresStore`]: the durable mail outbox the journals write into, claimed,
//! marked and purged by the delivery workers of every instance.
//!
//! A claim is one statement: `UPDATE outbox SET lease_until = .. WHERE id IN (SELECT id ..
//! ORDER BY created_at, id LIMIT n FOR UPDATE SKIP LOCKED) RETURNING ..`. The subquery locks
//! the due rows it picks and skips those another claim has locked, so concurrent claims never
//! return the same message and never wait for each other; a row leased by a claim that has
//! committed is no longer due, so later claims pass it over too. A leased message of a kind
//! the adapter does not know is given up in the claim's transaction (`failed_at`,
//! `last_error = "unknown kind <k>"`), so it cannot stop delivery.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamptz};
use domain::model::MailKind;
use domain::ports::{ClaimedMail, Outbox, OutboxStatus, StoreError};
use uuid::Uuid;

use crate::error::{TxError, db_error};
use crate::rows::OutboxRow;
use crate::schema::outbox;
use crate::{PostgresStore, snapshot, total, transaction};

/// Undelivered and not given up: what `outbox_pending_idx` holds.
type Pending =
    diesel::dsl::And<diesel::dsl::IsNull<outbox::sent_at>, diesel::dsl::IsNull<outbox::failed_at>>;

fn pending() -> Pending {
    outbox::sent_at.is_null().and(outbox::failed_at.is_null())
}

/// `NotFound` unless a message with this id exists.
fn exists(conn: &mut PgConnection, id: Uuid) -> Result<(), TxError> {
    let found: bool =
        diesel::select(diesel::dsl::exists(outbox::table.find(id))).get_result(conn)?;
    if found {
        Ok(())
    } else {
        Err(StoreError::NotFound.into())
    }
}

/// Gives up, at `now`, the just leased messages of a kind this adapter does not know
/// (written by a newer version, or by hand): they could never be delivered, and must not hold
/// up the others. Each is logged at error level with its id and kind, loses the lease and
/// keeps the kind in `last_error`. Returns the other rows. The claim's transaction holds the
/// rows' locks, so no other claim sees them in between.
fn give_up_unknown_kinds(
    conn: &mut PgConnection,
    leased: Vec<(OutboxRow, String)>,
    now: DateTime<Utc>,
) -> Result<Vec<OutboxRow>, TxError> {
    let mut known = Vec::with_capacity(leased.len());
    for (row, kind) in leased {
        if MailKind::parse(&kind).is_some() {
            known.push(row);
            continue;
        }
        tracing::error!(
            mail_id = %row.id,
            kind = ?kind,
            "an outbox message of an unknown kind is given up"
        );
        diesel::update(outbox::table.find(row.id))
            .set((
                outbox::failed_at.eq(now),
                outbox::last_error.eq(format!("unknown kind {kind}")),
                outbox::lease_until.eq(None::<DateTime<Utc>>),
            ))
            .execute(conn)?;
    }
    Ok(known)
}

#[async_trait::async_trait]
impl Outbox for PostgresStore {
    #[tracing::instrument(
        name = "postgres.outbox.claim",
        level = "debug",
        skip_all,
        fields(limit)
    )]
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ClaimedMail>, StoreError> {
        self.run(move |conn| {
            // In a transaction, so that a row that does not convert leaves no lease behind
            // on the others, and a message of an unknown kind is given up with the claim.
            transaction(conn, |conn| {
                // The oldest due messages, through `outbox_pending_idx` in order, without
                // those another claim has locked.
                let due = diesel::alias!(outbox as due);
                let oldest_due = due
                    .filter(due.field(outbox::sent_at).is_null())
                    .filter(due.field(outbox::failed_at).is_null())
                    .filter(due.field(outbox::next_attempt_at).le(now))
                    .filter(
                        due.field(outbox::lease_until)
                            .is_null()
                            .or(due.field(outbox::lease_until).le(now)),
                    )
                    .order((
                        due.field(outbox::created_at).asc(),
                        due.field(outbox::id).asc(),
                    ))
                    .limit(i64::from(limit))
                    .select(due.field(outbox::id))
                    .for_update()
                    .skip_locked();
                let leased: Vec<(OutboxRow, String)> =
                    diesel::update(outbox::table.filter(outbox::id.eq_any(oldest_due)))
                        .set(outbox::lease_until.eq(lease_until))
                        .returning((OutboxRow::as_returning(), outbox::kind))
                        .get_results(conn)?;
                let mut rows = give_up_unknown_kinds(conn, leased, now)?;
                // RETURNING has no order of its own.
                rows.sort_by_key(|row| (row.created_at, row.id));
                Ok(rows
                    .into_iter()
                    .map(ClaimedMail::try_from)
                    .collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.outbox.mark_sent", level = "debug", skip_all, fields(mail_id = %id))]
    async fn mark_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                // A second report of the same delivery keeps the first one's time.
                let marked =
                    diesel::update(outbox::table.find(id).filter(outbox::sent_at.is_null()))
                        .set((
                            outbox::sent_at.eq(at),
                            outbox::payload.eq(None::<Vec<u8>>),
                            outbox::lease_until.eq(None::<DateTime<Utc>>),
                            outbox::failed_at.eq(None::<DateTime<Utc>>),
                        ))
                        .execute(conn)?;
                if marked == 0 {
                    exists(conn, id)?;
                }
                Ok(())
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.outbox.mark_failed", level = "debug", skip_all, fields(mail_id = %id))]
    async fn mark_failed(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        reason: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                // A delivered message stays delivered, whatever a late attempt reports.
                let undelivered = outbox::table.find(id).filter(outbox::sent_at.is_null());
                let common = (
                    outbox::attempts.eq(outbox::attempts + 1),
                    outbox::last_error.eq(&reason),
                    outbox::lease_until.eq(None::<DateTime<Utc>>),
                );
                let marked = match retry_at {
                    Some(retry_at) => diesel::update(undelivered)
                        .set((common, outbox::next_attempt_at.eq(retry_at)))
                        .execute(conn)?,
                    None => diesel::update(undelivered)
                        .set((common, outbox::failed_at.eq(at)))
                        .execute(conn)?,
                };
                if marked == 0 {
                    exists(conn, id)?;
                }
                Ok(())
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.outbox.status", level = "debug", skip_all)]
    async fn status(&self, dead_since: DateTime<Utc>) -> Result<OutboxStatus, StoreError> {
        self.run(move |conn| {
            snapshot(conn, |conn| {
                let pending_count: i64 =
                    outbox::table.filter(pending()).count().get_result(conn)?;
                let retrying: i64 = outbox::table
                    .filter(pending())
                    .filter(outbox::attempts.gt(0))
                    .count()
                    .get_result(conn)?;
                let dead: i64 = outbox::table
                    .filter(outbox::failed_at.ge(dead_since))
                    .count()
                    .get_result(conn)?;
                Ok(OutboxStatus {
                    pending: total(pending_count),
                    retrying: total(retrying),
                    dead: total(dead),
                })
            })
        })
        .await
    }

    #[tracing::instrument(
        name = "postgres.outbox.purge_before",
        level = "debug",
        skip_all,
        fields(limit)
    )]
    async fn purge_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        self.run(move |conn| {
            // One statement, through `outbox_sent_at_idx` and `outbox_failed_at_idx`; written
            // as SQL because diesel's DSL cannot filter a DELETE by a limited subquery of the
            // same table.
            let deleted = diesel::sql_query(
                "DELETE FROM outbox WHERE id IN (\
                   SELECT id FROM outbox WHERE sent_at < $1 OR failed_at < $1 LIMIT $2)",
            )
            .bind::<Timestamptz, _>(before)
            .bind::<BigInt, _>(i64::from(limit))
            .execute(conn)
            .map_err(db_error)?;
            Ok(u64::try_from(deleted).unwrap_or_default())
        })
        .await
    }
}
