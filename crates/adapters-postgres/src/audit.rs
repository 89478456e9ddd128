//! `AuditLog` for [`PostgresStore`], and [`write_journal`], through which every other store
//! method writes its journal in its own transaction.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamptz};
use domain::model::{AuditEvent, Journal};
use domain::ports::{AuditFilter, AuditLog, PageRequest, Paged, StoreError};

use crate::error::{TxError, db_error};
use crate::rows::{AuditEventRow, StoredAuditEventRow};
use crate::schema::audit_events;
use crate::{PostgresStore, limit_offset, snapshot, total, transaction};

/// Inserts the journal's events (one statement; nothing for an empty journal). Call it inside
/// the transaction of the change the journal records, so both commit or neither does.
pub(crate) fn write_journal(conn: &mut PgConnection, journal: &Journal) -> Result<(), TxError> {
    if journal.is_empty() {
        return Ok(());
    }
    let rows: Vec<AuditEventRow> = journal.events.iter().map(AuditEventRow::from).collect();
    diesel::insert_into(audit_events::table)
        .values(&rows)
        .execute(conn)?;
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
