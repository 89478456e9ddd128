//! `UserStore` for [`SqliteStore`]: accounts, credentials and one-time action tokens.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::model::{
    Credentials, NewUser, PasswordHash, ProfileChanges, SessionId, User, UserId, UserVersion,
};
use domain::ports::{ActionPurpose, ActionToken, Login, StoreError, UniqueField, UserStore};

use crate::error::{TxError, db_error};
use crate::rows::{
    self, ActionTokenRow, NewActionTokenRow, NewUserRow, ProfileChangeset, UserRow, micros,
};
use crate::schema::{action_tokens, sessions, users};
use crate::{SqliteStore, immediate};

diesel::define_sql_function! {
    /// SQLite's ASCII lower-casing; `lower(username)` is what `users_username_key` indexes.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// The user with this id, read inside the current connection (or transaction).
fn load_user(conn: &mut SqliteConnection, id: &str) -> Result<Option<User>, TxError> {
    let row = users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(User::try_from).transpose()?)
}

/// The user with this id, which the current transaction has just written.
fn reload_user(conn: &mut SqliteConnection, id: &str) -> Result<User, TxError> {
    load_user(conn, id)?.ok_or_else(|| {
        TxError::Store(StoreError::Unexpected(
            format!("user {id} vanished inside its own transaction").into(),
        ))
    })
}

fn user_exists(conn: &mut SqliteConnection, id: &str) -> Result<bool, TxError> {
    Ok(diesel::select(diesel::dsl::exists(users::table.find(id))).get_result(conn)?)
}

#[async_trait::async_trait]
impl UserStore for SqliteStore {
    #[tracing::instrument(name = "sqlite.users.insert", level = "debug", skip_all, fields(user_id = %user.id))]
    async fn insert(&self, user: NewUser) -> Result<User, StoreError> {
        let email = user.email.as_str().to_owned();
        let result = self
            .run(move |conn| {
                immediate(conn, |conn| {
                    diesel::insert_into(users::table)
                        .values(NewUserRow::from(&user))
                        .execute(conn)?;
                    reload_user(conn, &user.id.to_string())
                })
            })
            .await;
        match result {
            // Both may be taken; which constraint SQLite reports first is its own business, so
            // the e-mail is checked first, as in every store.
            Err(StoreError::Duplicate(_)) => {
                let taken: i64 = self
                    .run(move |conn| {
                        users::table
                            .filter(users::email.eq(email))
                            .count()
                            .get_result(conn)
                            .map_err(db_error)
                    })
                    .await?;
                Err(StoreError::Duplicate(if taken > 0 {
                    UniqueField::Email
                } else {
                    UniqueField::Username
                }))
            }
            other => other,
        }
    }

    #[tracing::instrument(name = "sqlite.users.find_by_id", level = "debug", skip_all, fields(user_id = %id))]
    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.run(move |conn| load_user(conn, &id.to_string()).map_err(StoreError::from))
            .await
    }

    #[tracing::instrument(name = "sqlite.users.find_credentials", level = "debug", skip_all)]
    async fn find_credentials(&self, login: &Login) -> Result<Option<Credentials>, StoreError> {
        let login = login.clone();
        self.run(move |conn| {
            let select = (UserRow::as_select(), users::password_hash);
            let row = match &login {
                Login::Email(email) => users::table
                    .filter(users::email.eq(email.as_str()))
                    .select(select)
                    .first(conn),
                Login::Username(username) => users::table
                    .filter(lower(users::username).eq(lower(username.as_str())))
                    .select(select)
                    .first(conn),
            }
            .optional()
            .map_err(db_error)?;
            row.map(rows::credentials).transpose()
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.users.find_credentials_by_id", level = "debug", skip_all, fields(user_id = %id))]
    async fn find_credentials_by_id(&self, id: UserId) -> Result<Option<Credentials>, StoreError> {
        self.run(move |conn| {
            let row = users::table
                .find(id.to_string())
                .select((UserRow::as_select(), users::password_hash))
                .first(conn)
                .optional()
                .map_err(db_error)?;
            row.map(rows::credentials).transpose()
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.users.update_profile", level = "debug", skip_all, fields(user_id = %id))]
    async fn update_profile(
        &self,
        id: UserId,
        changes: ProfileChanges,
        expected_version: Option<UserVersion>,
        at: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let preferences = changes
            .preferences
            .map(|p| serde_json::to_string(p.as_map()))
            .transpose()
            .map_err(|e| StoreError::Unexpected(Box::new(e)))?;
        let changeset = ProfileChangeset {
            first_name: changes.first_name.map(|n| n.as_str().to_owned()),
            last_name: changes.last_name.map(|n| n.as_str().to_owned()),
            username: changes.username.map(|n| n.as_str().to_owned()),
            preferences,
        };
        self.run(move |conn| {
            immediate(conn, |conn| {
                let id = id.to_string();
                let set = (
                    changeset,
                    users::version.eq(users::version + 1),
                    users::updated_at.eq(micros(at)),
                );
                let target = users::table.find(&id);
                let updated = match expected_version {
                    Some(version) => diesel::update(target.filter(users::version.eq(version)))
                        .set(set)
                        .execute(conn)?,
                    None => diesel::update(target).set(set).execute(conn)?,
                };
                if updated == 0 {
                    let error = if expected_version.is_some() && user_exists(conn, &id)? {
                        StoreError::StaleVersion
                    } else {
                        StoreError::NotFound
                    };
                    return Err(error.into());
                }
                reload_user(conn, &id)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.users.change_password", level = "debug", skip_all, fields(user_id = %id))]
    async fn change_password(
        &self,
        id: UserId,
        hash: PasswordHash,
        keep: Option<SessionId>,
        at: DateTime<Utc>,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                let id = id.to_string();
                let updated = diesel::update(users::table.find(&id))
                    .set((
                        users::password_hash.eq(hash.as_str()),
                        users::version.eq(users::version + 1),
                        users::updated_at.eq(micros(at)),
                    ))
                    .execute(conn)?;
                if updated == 0 {
                    return Err(StoreError::NotFound.into());
                }
                // No session id is empty, so `id != ''` keeps nothing when `keep` is `None`.
                let keep = keep.map(|s| s.to_string()).unwrap_or_default();
                let live = sessions::table
                    .filter(sessions::user_id.eq(&id))
                    .filter(sessions::revoked_at.is_null())
                    .filter(sessions::id.ne(&keep));
                let revoked: Vec<String> = live.select(sessions::id).load(conn)?;
                diesel::update(live)
                    .set(sessions::revoked_at.eq(micros(at)))
                    .execute(conn)?;
                Ok(revoked
                    .iter()
                    .map(|s| rows::session_id(s))
                    .collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.users.insert_action_token", level = "debug", skip_all, fields(user_id = %token.user_id))]
    async fn insert_action_token(&self, token: ActionToken) -> Result<(), StoreError> {
        self.run(move |conn| {
            diesel::insert_into(action_tokens::table)
                .values(NewActionTokenRow::from(&token))
                .execute(conn)
                .map(drop)
                .map_err(db_error)
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.users.verify_email", level = "debug", skip_all)]
    async fn verify_email(
        &self,
        token: &domain::model::TokenHash,
        at: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        let token = token.as_str().to_owned();
        self.run(move |conn| {
            immediate(conn, |conn| {
                let Some(row) = action_tokens::table
                    .find(&token)
                    .select(ActionTokenRow::as_select())
                    .first(conn)
                    .optional()?
                else {
                    return Ok(None);
                };
                let spendable = row.purpose == ActionPurpose::VerifyEmail.as_str()
                    && row.used_at.is_none()
                    && micros(at) < row.expires_at;
                if !spendable {
                    return Ok(None);
                }
                let spent = diesel::update(
                    action_tokens::table
                        .find(&token)
                        .filter(action_tokens::used_at.is_null()),
                )
                .set(action_tokens::used_at.eq(micros(at)))
                .execute(conn)?;
                let verified = diesel::update(users::table.find(&row.user_id))
                    .set((
                        users::email_verified.eq(true),
                        users::version.eq(users::version + 1),
                        users::updated_at.eq(micros(at)),
                    ))
                    .execute(conn)?;
                if spent != 1 || verified != 1 {
                    return Err(StoreError::Unexpected(
                        format!(
                            "verifying with an unspent token changed {spent} token and \
                             {verified} user rows instead of one each"
                        )
                        .into(),
                    )
                    .into());
                }
                Ok(Some(rows::user_id("action_tokens.user_id", &row.user_id)?))
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use diesel::sqlite::Sqlite;
    use diesel_migrations::MigrationHarness;

    use super::*;

    #[derive(QueryableByName)]
    struct PlanStep {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }

    /// The plan SQLite chooses for a query diesel renders, with its one text bind.
    fn plan<Q>(conn: &mut SqliteConnection, query: &Q) -> Result<String, domain::BoxError>
    where
        Q: diesel::query_builder::QueryFragment<Sqlite>,
    {
        let rendered = diesel::debug_query::<Sqlite, _>(query).to_string();
        let sql = rendered.split(" -- binds:").next().unwrap_or_default();
        let steps = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .bind::<diesel::sql_types::Text, _>("x")
            .load::<PlanStep>(conn)?;
        Ok(steps
            .into_iter()
            .map(|s| s.detail)
            .collect::<Vec<_>>()
            .join("; "))
    }

    #[test]
    fn logins_are_looked_up_through_the_unique_indexes() -> Result<(), domain::BoxError> {
        let mut conn = SqliteConnection::establish(":memory:")?;
        conn.run_pending_migrations(crate::MIGRATIONS)?;

        let by_username = users::table
            .filter(lower(users::username).eq(lower("x")))
            .select(users::id);
        let by_username = plan(&mut conn, &by_username)?;
        assert!(
            by_username.contains("USING INDEX users_username_key"),
            "{by_username}"
        );

        let by_email = users::table.filter(users::email.eq("x")).select(users::id);
        let by_email = plan(&mut conn, &by_email)?;
        assert!(
            by_email.contains("USING INDEX users_email_key"),
            "{by_email}"
        );
        Ok(())
    }
}
