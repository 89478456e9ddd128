//! `Outbox` for [`SqliteStore`]: the durable mail outbox the journals write into, claimed,
//! marked and purged by the delivery worker.
//!
//! A claim selects the due messages and leases them in one `BEGIN IMMEDIATE` transaction:
//! that holds the write lock from its first statement, so concurrent claims (from this
//! process or another one on the same file) run one after the other and never return the
//! same message. A due message of a kind the adapter does not know is given up in that
//! transaction (`failed_at`, `last_error = "unknown kind <k>"`), so it cannot stop delivery.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use domain::model::MailKind;
use domain::ports::{ClaimedMail, Outbox, OutboxStatus, StoreError};
use uuid::Uuid;

use crate::error::TxError;
use crate::rows::{OutboxRow, micros};
use crate::schema::outbox;
use crate::{SqliteStore, immediate, total};

/// Undelivered and not given up: what `outbox_pending_idx` holds.
type Pending =
    diesel::dsl::And<diesel::dsl::IsNull<outbox::sent_at>, diesel::dsl::IsNull<outbox::failed_at>>;

fn pending() -> Pending {
    outbox::sent_at.is_null().and(outbox::failed_at.is_null())
}

/// The ids and kinds of at most `limit` messages due at `now`, oldest first (ties by id): the
/// query `claim` runs, which reads `outbox_pending_idx` in order.
pub(crate) fn due_query(
    now: DateTime<Utc>,
    limit: u32,
) -> outbox::BoxedQuery<'static, Sqlite, (diesel::sql_types::Text, diesel::sql_types::Text)> {
    let now = micros(now);
    outbox::table
        .filter(pending())
        .filter(outbox::next_attempt_at.le(now))
        .filter(
            outbox::lease_until
                .is_null()
                .or(outbox::lease_until.le(now)),
        )
        .order((outbox::created_at.asc(), outbox::id.asc()))
        .limit(i64::from(limit))
        .select((outbox::id, outbox::kind))
        .into_boxed()
}

/// Gives up, at `now`, the due messages of a kind this adapter does not know (written by a
/// newer version, or by hand): they could never be delivered, and must not hold up the
/// others. Each is logged at error level with its id and kind and keeps the kind in
/// `last_error`. Returns the ids of the others.
fn give_up_unknown_kinds(
    conn: &mut SqliteConnection,
    due: Vec<(String, String)>,
    now: DateTime<Utc>,
) -> Result<Vec<String>, TxError> {
    let mut known = Vec::with_capacity(due.len());
    for (id, kind) in due {
        if MailKind::parse(&kind).is_some() {
            known.push(id);
            continue;
        }
        tracing::error!(
            mail_id = %id,
            kind = ?kind,
            "an outbox message of an unknown kind is given up"
        );
        diesel::update(outbox::table.find(&id))
            .set((
                outbox::failed_at.eq(micros(now)),
                outbox::last_error.eq(format!("unknown kind {kind}")),
                outbox::lease_until.eq(None::<i64>),
            ))
            .execute(conn)?;
    }
    Ok(known)
}

/// `NotFound` unless a message with this id exists.
fn exists(conn: &mut SqliteConnection, id: &str) -> Result<(), TxError> {
    let found: bool =
        diesel::select(diesel::dsl::exists(outbox::table.find(id))).get_result(conn)?;
    if found {
        Ok(())
    } else {
        Err(StoreError::NotFound.into())
    }
}

#[async_trait::async_trait]
impl Outbox for SqliteStore {
    #[tracing::instrument(name = "sqlite.outbox.claim", level = "debug", skip_all, fields(limit))]
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ClaimedMail>, StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                let due: Vec<(String, String)> = due_query(now, limit).load(conn)?;
                let ids = give_up_unknown_kinds(conn, due, now)?;
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
                    .set(outbox::lease_until.eq(micros(lease_until)))
                    .execute(conn)?;
                let rows: Vec<OutboxRow> = outbox::table
                    .filter(outbox::id.eq_any(&ids))
                    .order((outbox::created_at.asc(), outbox::id.asc()))
                    .select(OutboxRow::as_select())
                    .load(conn)?;
                Ok(rows
                    .into_iter()
                    .map(ClaimedMail::try_from)
                    .collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.outbox.mark_sent", level = "debug", skip_all, fields(mail_id = %id))]
    async fn mark_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                let id = id.to_string();
                // A second report of the same delivery keeps the first one's time.
                let marked =
                    diesel::update(outbox::table.find(&id).filter(outbox::sent_at.is_null()))
                        .set((
                            outbox::sent_at.eq(micros(at)),
                            outbox::payload.eq(None::<Vec<u8>>),
                            outbox::lease_until.eq(None::<i64>),
                            outbox::failed_at.eq(None::<i64>),
                        ))
                        .execute(conn)?;
                if marked == 0 {
                    exists(conn, &id)?;
                }
                Ok(())
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.outbox.mark_failed", level = "debug", skip_all, fields(mail_id = %id))]
    async fn mark_failed(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        reason: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                let id = id.to_string();
                // A delivered message stays delivered, whatever a late attempt reports.
                let undelivered = outbox::table.find(&id).filter(outbox::sent_at.is_null());
                let common = (
                    outbox::attempts.eq(outbox::attempts + 1),
                    outbox::last_error.eq(&reason),
                    outbox::lease_until.eq(None::<i64>),
                );
                let marked = match retry_at {
                    Some(retry_at) => diesel::update(undelivered)
                        .set((common, outbox::next_attempt_at.eq(micros(retry_at))))
                        .execute(conn)?,
                    None => diesel::update(undelivered)
                        .set((common, outbox::failed_at.eq(micros(at))))
                        .execute(conn)?,
                };
                if marked == 0 {
                    exists(conn, &id)?;
                }
                Ok(())
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.outbox.status", level = "debug", skip_all)]
    async fn status(&self, dead_since: DateTime<Utc>) -> Result<OutboxStatus, StoreError> {
        self.run(move |conn| {
            // One read transaction, so that the three counts see the same snapshot.
            conn.transaction(|conn| {
                let pending_count: i64 =
                    outbox::table.filter(pending()).count().get_result(conn)?;
                let retrying: i64 = outbox::table
                    .filter(pending())
                    .filter(outbox::attempts.gt(0))
                    .count()
                    .get_result(conn)?;
                let dead: i64 = outbox::table
                    .filter(outbox::failed_at.ge(micros(dead_since)))
                    .count()
                    .get_result(conn)?;
                Ok::<_, TxError>(OutboxStatus {
                    pending: total(pending_count)?,
                    retrying: total(retrying)?,
                    dead: total(dead)?,
                })
            })
            .map_err(StoreError::from)
        })
        .await
    }

    #[tracing::instrument(
        name = "sqlite.outbox.purge_before",
        level = "debug",
        skip_all,
        fields(limit)
    )]
    async fn purge_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                let done = diesel::alias!(outbox as done);
                let batch = done
                    .filter(
                        done.field(outbox::sent_at)
                            .lt(micros(before))
                            .or(done.field(outbox::failed_at).lt(micros(before))),
                    )
                    .limit(i64::from(limit))
                    .select(done.field(outbox::id));
                let deleted = diesel::delete(outbox::table)
                    .filter(outbox::id.eq_any(batch))
                    .execute(conn)?;
                Ok(deleted as u64)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use diesel_migrations::MigrationHarness;

    use super::*;
    use crate::query_plan;

    /// A claim reads the pending messages' partial index in its order: no scan of the
    /// delivered ones, no sort.
    #[test]
    fn a_claim_reads_the_pending_index_in_order() -> Result<(), domain::BoxError> {
        let mut conn = SqliteConnection::establish(":memory:")?;
        conn.run_pending_migrations(crate::MIGRATIONS)?;
        let now = DateTime::from_timestamp(1_800_000_000, 0).ok_or("in range")?;
        let plan = query_plan(&mut conn, &due_query(now, 20))?;
        assert!(
            plan.contains("USING INDEX outbox_pending_idx") && !plan.contains("TEMP B-TREE"),
            "{plan}"
        );
        Ok(())
    }
}
