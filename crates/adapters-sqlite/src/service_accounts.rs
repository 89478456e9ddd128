//! `ServiceAccountStore` for [`SqliteStore`]: service accounts and the digests of their
//! secrets (never a secret itself: the table's CHECK admits only a hex SHA-256).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::Sqlite;
use domain::model::{
    ClientId, Journal, ServiceAccount, ServiceAccountCredentials, ServiceAccountId,
    ServiceAccountName, TokenHash,
};
use domain::ports::{PageRequest, Paged, ServiceAccountStore, StoreError, UniqueField};

use crate::audit::write_journal;
use crate::error::{TxError, db_error};
use crate::rows::{corrupt, from_micros, micros};
use crate::schema::service_accounts;
use crate::{SqliteStore, immediate, limit_offset, total};

/// A service account row, read and written whole.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = service_accounts, check_for_backend(Sqlite))]
struct ServiceAccountRow {
    id: String,
    name: String,
    description: String,
    client_id: String,
    secret_hash: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

/// A service account row without its digest, for lists.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = service_accounts, check_for_backend(Sqlite))]
struct AccountRow {
    id: String,
    name: String,
    description: String,
    client_id: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl From<&ServiceAccountCredentials> for ServiceAccountRow {
    fn from(credentials: &ServiceAccountCredentials) -> Self {
        let account = &credentials.account;
        Self {
            id: account.id.to_string(),
            name: account.name.as_str().to_owned(),
            description: account.description.clone(),
            client_id: account.client_id.as_str().to_owned(),
            secret_hash: credentials.secret_hash.as_str().to_owned(),
            created_at: micros(account.created_at),
            last_used_at: account.last_used_at.map(micros),
        }
    }
}

impl TryFrom<AccountRow> for ServiceAccount {
    type Error = StoreError;

    fn try_from(row: AccountRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: ServiceAccountId::from_uuid(
                uuid::Uuid::parse_str(&row.id).map_err(|e| corrupt("service_accounts.id", e))?,
            ),
            name: ServiceAccountName::parse(&row.name)
                .map_err(|e| corrupt("service_accounts.name", e))?,
            description: row.description,
            client_id: ClientId::parse(&row.client_id)
                .map_err(|e| corrupt("service_accounts.client_id", e))?,
            created_at: from_micros("service_accounts.created_at", row.created_at)?,
            last_used_at: row
                .last_used_at
                .map(|at| from_micros("service_accounts.last_used_at", at))
                .transpose()?,
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

/// `Duplicate(ServiceAccountName)` for a violation of `service_accounts_name_key` (SQLite names
/// an index on an expression by its name), the generic translation otherwise.
fn insert_error(error: DieselError) -> TxError {
    match &error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info
                .message()
                .ends_with("index 'service_accounts_name_key'") =>
        {
            TxError::Store(StoreError::Duplicate(UniqueField::ServiceAccountName))
        }
        _ => TxError::Db(error),
    }
}

/// The account with this id, read inside the current transaction.
fn load(conn: &mut SqliteConnection, id: &str) -> Result<ServiceAccount, TxError> {
    let row = service_accounts::table
        .find(id)
        .select(AccountRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| {
            StoreError::Unexpected(
                format!("service account {id} vanished inside its own transaction").into(),
            )
        })?;
    Ok(ServiceAccount::try_from(row)?)
}

#[async_trait::async_trait]
impl ServiceAccountStore for SqliteStore {
    async fn create(
        &self,
        account: ServiceAccountCredentials,
        journal: Journal,
    ) -> Result<ServiceAccount, StoreError> {
        let row = ServiceAccountRow::from(&account);
        self.run(move |conn| {
            immediate(conn, |conn| {
                diesel::insert_into(service_accounts::table)
                    .values(&row)
                    .execute(conn)
                    .map_err(insert_error)?;
                write_journal(conn, &journal)?;
                load(conn, &row.id)
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
        let id = id.to_string();
        let at = micros(at);
        self.run(move |conn| {
            let exists: bool =
                diesel::select(diesel::dsl::exists(service_accounts::table.find(&id)))
                    .get_result(conn)
                    .map_err(db_error)?;
            if !exists {
                return Err(StoreError::NotFound);
            }
            // Never backwards: a concurrent, later touch wins.
            diesel::update(
                service_accounts::table.find(&id).filter(
                    service_accounts::last_used_at
                        .is_null()
                        .or(service_accounts::last_used_at.lt(at)),
                ),
            )
            .set(service_accounts::last_used_at.eq(at))
            .execute(conn)
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn list(&self, page: PageRequest) -> Result<Paged<ServiceAccount>, StoreError> {
        let (limit, offset) = limit_offset(page);
        self.run(move |conn| {
            conn.transaction(|conn| {
                let rows: Vec<AccountRow> = service_accounts::table
                    .select(AccountRow::as_select())
                    .order_by(service_accounts::created_at.asc())
                    .then_order_by(service_accounts::id.asc())
                    .limit(limit)
                    .offset(offset)
                    .load(conn)?;
                let count: i64 = service_accounts::table.count().get_result(conn)?;
                Ok::<_, TxError>((rows, count))
            })
            .map_err(StoreError::from)
            .and_then(|(rows, count)| {
                Ok(Paged {
                    items: rows
                        .into_iter()
                        .map(ServiceAccount::try_from)
                        .collect::<Result<_, _>>()?,
                    total: total(count)?,
                })
            })
        })
        .await
    }

    async fn delete(&self, id: ServiceAccountId, journal: Journal) -> Result<(), StoreError> {
        let id = id.to_string();
        self.run(move |conn| {
            immediate(conn, |conn| {
                let deleted = diesel::delete(service_accounts::table.find(&id)).execute(conn)?;
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
