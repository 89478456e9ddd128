//! `AuditLog` for [`SqliteStore`], and [`write_journal`], which every changing method calls
//! inside its own transaction so that a change and its journal (audit events, one-time tokens,
//! outbox mail) commit or fail together.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use domain::model::{AuditEvent, Journal};
use domain::ports::{AuditFilter, AuditLog, PageRequest, Paged, StoreError};

use crate::error::TxError;
use crate::rows::{AuditEventRow, NewActionTokenRow, NewOutboxRow, StoredAuditEventRow, micros};
use crate::schema::{action_tokens, audit_events, outbox};
use crate::{SqliteStore, immediate, limit_offset, total};

/// Writes the journal on `conn`, which the caller has inside the transaction of the change it
/// records: its one-time tokens, its mail (into the outbox: never tried, due at once) and its
/// audit events, in that order. If any insert fails, the caller's `?` rolls the change and
/// everything before it back too.
///
/// A token's user must exist when this runs: callers write the journal after their change
/// (after inserting the user a token may be for).
pub(crate) fn write_journal(conn: &mut SqliteConnection, journal: &Journal) -> Result<(), TxError> {
    if journal.is_empty() {
        return Ok(());
    }
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
        let rows = journal
            .events
            .iter()
            .map(AuditEventRow::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        diesel::insert_into(audit_events::table)
            .values(&rows)
            .execute(conn)?;
    }
    Ok(())
}

/// The events matching `filter`, in no particular order.
fn filtered(filter: &AuditFilter) -> audit_events::BoxedQuery<'static, Sqlite> {
    let mut query = audit_events::table.into_boxed();
    if let Some(actor) = filter.actor {
        query = query.filter(audit_events::actor_id.eq(actor.to_string()));
    }
    if let Some(action) = filter.action {
        query = query.filter(audit_events::action.eq(action.as_str()));
    }
    if let Some(tenant) = filter.tenant {
        query = query.filter(audit_events::tenant_id.eq(tenant.to_string()));
    }
    if let Some(target) = filter.target {
        query = query.filter(audit_events::target_id.eq(target.to_string()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::at.ge(micros(since)));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::at.lt(micros(until)));
    }
    query
}

/// One page of the events matching `filter`, newest first: the query [`AuditLog::list`] runs,
/// which `audit_events_at_idx` (`at, id`) serves in index order, scanned backwards.
pub(crate) fn page_query(
    filter: &AuditFilter,
    page: PageRequest,
) -> audit_events::BoxedQuery<
    'static,
    Sqlite,
    diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<StoredAuditEventRow, Sqlite>>,
> {
    let (limit, offset) = limit_offset(page);
    filtered(filter)
        .select(StoredAuditEventRow::as_select())
        .order_by(audit_events::at.desc())
        .then_order_by(audit_events::id.desc())
        .limit(limit)
        .offset(offset)
}

#[async_trait::async_trait]
impl AuditLog for SqliteStore {
    #[tracing::instrument(name = "sqlite.audit.append", level = "debug", skip_all, fields(events = journal.events.len()))]
    async fn append(&self, journal: Journal) -> Result<(), StoreError> {
        self.run(move |conn| immediate(conn, |conn| write_journal(conn, &journal)))
            .await
    }

    #[tracing::instrument(name = "sqlite.audit.list", level = "debug", skip_all)]
    async fn list(
        &self,
        filter: AuditFilter,
        page: PageRequest,
    ) -> Result<Paged<AuditEvent>, StoreError> {
        self.run(move |conn| {
            // One read transaction, so that the page and the total see the same snapshot.
            conn.transaction(|conn| {
                let rows: Vec<StoredAuditEventRow> = page_query(&filter, page).load(conn)?;
                let count: i64 = filtered(&filter).count().get_result(conn)?;
                let items = rows
                    .into_iter()
                    .map(AuditEvent::try_from)
                    .collect::<Result<_, _>>()?;
                Ok::<_, TxError>(Paged {
                    items,
                    total: total(count)?,
                })
            })
            .map_err(StoreError::from)
        })
        .await
    }

    #[tracing::instrument(
        name = "sqlite.audit.purge_before",
        level = "debug",
        skip_all,
        fields(limit)
    )]
    async fn purge_before(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                let old = diesel::alias!(audit_events as old);
                let oldest = old
                    .filter(old.field(audit_events::at).lt(micros(before)))
                    .order((
                        old.field(audit_events::at).asc(),
                        old.field(audit_events::id).asc(),
                    ))
                    .limit(i64::from(limit))
                    .select(old.field(audit_events::id));
                let deleted = diesel::delete(audit_events::table)
                    .filter(audit_events::id.eq_any(oldest))
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

    #[test]
    fn the_newest_first_listing_reads_the_time_index_backwards() -> Result<(), domain::BoxError> {
        let mut conn = SqliteConnection::establish(":memory:")?;
        conn.run_pending_migrations(crate::MIGRATIONS)?;
        let page = PageRequest {
            page: 3,
            per_page: 50,
        };
        let unfiltered = query_plan(&mut conn, &page_query(&AuditFilter::default(), page))?;
        assert!(
            unfiltered.contains("USING INDEX audit_events_at_idx")
                && !unfiltered.contains("TEMP B-TREE"),
            "{unfiltered}"
        );
        let since = AuditFilter {
            since: DateTime::from_timestamp(1_800_000_000, 0),
            ..AuditFilter::default()
        };
        let since = query_plan(&mut conn, &page_query(&since, page))?;
        assert!(
            since.contains("USING INDEX audit_events_at_idx") && !since.contains("TEMP B-TREE"),
            "{since}"
        );
        // Each equality filter has an index in the listing's order: no sort.
        let id = uuid::Uuid::from_u128(7);
        for (filter, index) in [
            (
                AuditFilter {
                    tenant: Some(domain::model::TenantId::from_uuid(id)),
                    ..AuditFilter::default()
                },
                "audit_events_tenant_idx",
            ),
            (
                AuditFilter {
                    actor: Some(domain::model::UserId::from_uuid(id)),
                    ..AuditFilter::default()
                },
                "audit_events_actor_idx",
            ),
            (
                AuditFilter {
                    target: Some(id),
                    ..AuditFilter::default()
                },
                "audit_events_target_idx",
            ),
            (
                AuditFilter {
                    action: Some(domain::model::AuditAction::UserLogin),
                    ..AuditFilter::default()
                },
                "audit_events_action_idx",
            ),
        ] {
            let plan = query_plan(&mut conn, &page_query(&filter, page))?;
            assert!(
                plan.contains(&format!("USING INDEX {index}")) && !plan.contains("TEMP B-TREE"),
                "{index}: {plan}"
            );
        }
        Ok(())
    }
}
