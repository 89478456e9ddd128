//! `ServiceAccountStore` for [`PostgresStore`]: service accounts and the digests of their
//! secrets (never a secret itself: the table's CHECK admits only a hex SHA-256).

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use domain::model::{
    ClientId, Journal, ServiceAccount, ServiceAccountCredentials, ServiceAccountId,
    ServiceAccountName, TokenHash,
};
use domain::ports::{PageRequest, Paged, ServiceAccountStore, StoreError, UniqueField};
use uuid::Uuid;

use crate::audit::write_journal;
use crate::error::{TxError, db_error};
use crate::rows::corrupt;
use crate::schema::service_accounts;
use crate::{PostgresStore, limit_offset, snapshot, total, transaction};

/// A service account row, read and written whole.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = service_accounts, check_for_backend(Pg))]
struct ServiceAccountRow {
    id: Uuid,
    name: String,
    description: String,
    client_id: String,
    secret_hash: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

/// A service account row without its digest, for lists and for what `create` returns.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = service_accounts, check_for_backend(Pg))]
struct AccountRow {
    id: Uuid,
    name: String,
    description: String,
    client_id: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl From<&ServiceAccountCredentials> for ServiceAccountRow {
    fn from(credentials: &ServiceAccountCredentials) -> Self {
        let account = &credentials.account;
        Self {
            id: *account.id.as_uuid(),
            name: account.name.as_str().to_owned(),
            description: account.description.clone(),
            client_id: account.client_id.as_str().to_owned(),
            secret_hash: credentials.secret_hash.as_str().to_owned(),
            created_at: account.created_at,
            last_used_at: account.last_used_at,
        }
    }
}

impl TryFrom<AccountRow> for ServiceAccount {
    type Error = StoreError;

    fn try_from(row: AccountRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: ServiceAccountId::from_uuid(row.id),
            name: ServiceAccountName::parse(&row.name)
                .map_err(|e| corrupt("service_accounts.name", e))?,
            description: row.description,
            client_id: ClientId::parse(&row.client_id)
                .map_err(|e| corrupt("service_accounts.client_id", e))?,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        })
    }
}

impl TryFrom<ServiceAccountRow> for ServiceAccountCredentials {
    type Error = StoreError;

    fn try_from(row: ServiceAccountRow) -> Result<Self, Self::Error> {
        let secret_hash = TokenHash::new(row.secret_hash);
        let account = ServiceAccount::try_from(AccountRow {
            id: row.id,
            name: row.name,
            description: row.description,
            client_id: row.client_id,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        })?;
        Ok(Self {
            account,
            secret_hash,
        })
    }
}

/// `Duplicate(ServiceAccountName)` for a violation of `service_accounts_name_key`, the generic
/// translation otherwise.
fn insert_error(error: DieselError) -> TxError {
    match &error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some("service_accounts_name_key") =>
        {
            TxError::Store(StoreError::Duplicate(UniqueField::ServiceAccountName))
        }
        _ => TxError::Db(error),
    }
}

#[async_trait::async_trait]
impl ServiceAccountStore for PostgresStore {
    async fn create(
        &self,
        account: ServiceAccountCredentials,
        journal: Journal,
    ) -> Result<ServiceAccount, StoreError> {
        let row = ServiceAccountRow::from(&account);
        self.run(move |conn| {
            transaction(conn, |conn| {
                let stored = diesel::insert_into(service_accounts::table)
                    .values(&row)
                    .returning(AccountRow::as_returning())
                    .get_result(conn)
                    .map_err(insert_error)?;
                write_journal(conn, &journal)?;
                Ok(ServiceAccount::try_from(stored)?)
            })
        })
        .await
    }

    async fn find_by_client_id(
        &self,
        client_id: &ClientId,
    ) -> Result<Option<ServiceAccountCredentials>, StoreError> {
        let client_id = client_id.as_str().to_owned();
        self.run(move |conn| {
            service_accounts::table
                .filter(service_accounts::client_id.eq(client_id))
                .select(ServiceAccountRow::as_select())
                .first(conn)
                .optional()
                .map_err(db_error)?
                .map(ServiceAccountCredentials::try_from)
                .transpose()
        })
        .await
    }

    async fn touch(&self, id: ServiceAccountId, at: DateTime<Utc>) -> Result<(), StoreError> {
        let id = *id.as_uuid();
        self.run(move |conn| {
            // One statement: `GREATEST` ignores NULL, so a first use sets it and a later call
            // never moves it back.
            let updated = diesel::update(service_accounts::table.find(id))
                .set(
                    service_accounts::last_used_at.eq(diesel::dsl::sql::<
                        diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
                    >(
                        "GREATEST(last_used_at, "
                    )
                    .bind::<diesel::sql_types::Timestamptz, _>(at)
                    .sql(")")),
                )
                .execute(conn)
                .map_err(db_error)?;
            if updated == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn list(&self, page: PageRequest) -> Result<Paged<ServiceAccount>, StoreError> {
        let (limit, offset) = limit_offset(page);
        self.run(move |conn| {
            snapshot(conn, |conn| {
                let rows: Vec<AccountRow> = service_accounts::table
                    .select(AccountRow::as_select())
                    .order_by(service_accounts::created_at.asc())
                    .then_order_by(service_accounts::id.asc())
                    .limit(limit)
                    .offset(offset)
                    .load(conn)?;
                let count: i64 = service_accounts::table.count().get_result(conn)?;
                let items = rows
                    .into_iter()
                    .map(ServiceAccount::try_from)
                    .collect::<Result<_, _>>()?;
                Ok(Paged {
                    items,
                    total: total(count),
                })
            })
        })
        .await
    }

    async fn delete(&self, id: ServiceAccountId, journal: Journal) -> Result<(), StoreError> {
        let id = *id.as_uuid();
        self.run(move |conn| {
            transaction(conn, |conn| {
                let deleted = diesel::delete(service_accounts::table.find(id)).execute(conn)?;
                if deleted == 0 {
                    return Err(StoreError::NotFound.into());
                }
                write_journal(conn, &journal)?;
                Ok(())
            })
        })
        .await
    }
}
