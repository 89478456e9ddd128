//! `AuditLog` for [`PostgresStore`], and [`write_journal`], through which every other store
//! method writes its journal (audit events, one-time tokens, outbox mail) in its own
//! transaction.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamptz};
use domain::model::{AuditEvent, Journal};
use domain::ports::{AuditFilter, AuditLog, PageRequest, Paged, StoreError};

use crate::error::{TxError, db_error};
use crate::rows::{AuditEventRow, NewActionTokenRow, NewOutboxRow, StoredAuditEventRow};
use crate::schema::{action_tokens, audit_events, outbox};
use crate::{PostgresStore, limit_offset, snapshot, total, transaction};

/// Writes the journal: its one-time tokens, its mail (into the outbox: never tried, due at
/// once) and its audit events, in that order, one statement each (nothing for an empty part).
/// Call it inside the transaction of the change the journal records, so all of it commits with
/// the change or none of it does.
///
/// A token's user must exist when this runs: callers write the journal after their change
/// (after inserting the user a token may be for).
pub(crate) fn write_journal(conn: &mut PgConnection, journal: &Journal) -> Result<(), TxError> {
    if !journal.tokens.is_empty() {
        let tokens: Vec<NewActionTokenRow<'_>> =
            journal.tokens.iter().map(NewActionTokenRow::from).collect();
        diesel::insert_into(action_tokens::table)
            .values(&tokens)
            .execute(conn)?;
    }
    if !journal.mail.is_empty() {
        let mail: Vec<NewOutboxRow<'_>> = journal.mail.iter().map(NewOutboxRow::from).collect();
        diesel::insert_into(outbox::table)
            .values(&mail)
            .execute(conn)?;
    }
    if !journal.events.is_empty() {
        let rows: Vec<AuditEventRow> = journal.events.iter().map(AuditEventRow::from).collect();
        diesel::insert_into(audit_events::table)
            .values(&rows)
            .execute(conn)?;
    }
    Ok(())
}

/// The events matching `filter`, unordered.
fn filtered(filter: &AuditFilter) -> audit_events::BoxedQuery<'static, Pg> {
    let mut query = audit_events::table.into_boxed();
    if let Some(actor) = filter.actor {
        query = query.filter(audit_events::actor_id.eq(*actor.as_uuid()));
    }
    if let Some(action) = filter.action {
        query = query.filter(audit_events::action.eq(action.as_str()));
    }
    if let Some(tenant) = filter.tenant {
        query = query.filter(audit_events::tenant_id.eq(*tenant.as_uuid()));
    }
    if let Some(target) = filter.target {
        query = query.filter(audit_events::target_id.eq(target));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::at.lt(until));
    }
    query
}

#[async_trait::async_trait]
impl AuditLog for PostgresStore {
    #[tracing::instrument(name = "postgres.audit.append", level = "debug", skip_all, fields(events = journal.events.len()))]
    async fn append(&self, journal: Journal) -> Result<(), StoreError> {
        self.run(move |conn| transaction(conn, |conn| write_journal(conn, &journal)))
            .await
    }

    #[tracing::instrument(name = "postgres.audit.list", level = "debug", skip_all)]
    async fn list(
        &self,
        filter: AuditFilter,
        page: PageRequest,
    ) -> Result<Paged<AuditEvent>, StoreError> {
        let (limit, offset) = limit_offset(page);
        self.run(move |conn| {
            snapshot(conn, |conn| {
                let count: i64 = filtered(&filter).count().get_result(conn)?;
                let rows: Vec<StoredAuditEventRow> = filtered(&filter)
                    .order((audit_events::at.desc(), audit_events::id.desc()))
                    .limit(limit)
                    .offset(offset)
                    .select(StoredAuditEventRow::as_select())
                    .load(conn)?;
                let items = rows
                    .into_iter()
                    .map(AuditEvent::try_from)
                    .collect::<Result<_, _>>()?;
                Ok(Paged {
                    items,
                    total: total(count),
                })
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.audit.purge_before", level = "debug", skip_all)]
    async fn purge_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        self.run(move |conn| {
            // The oldest first, through `audit_events_at_idx`. One statement, so a concurrent
            // purge cannot make it report rows it did not delete; written as SQL because
            // diesel's DSL cannot filter a DELETE by a subquery of the same table.
            let deleted = diesel::sql_query(
                "DELETE FROM audit_events WHERE id IN (\
                   SELECT id FROM audit_events WHERE at < $1 ORDER BY at, id LIMIT $2)",
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
