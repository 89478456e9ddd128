//! `UserStore` for [`PostgresStore`]: accounts, credentials and one-time action tokens.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::model::{
    Credentials, NewUser, PasswordHash, ProfileChanges, SessionId, TokenHash, User, UserId,
    UserVersion,
};
use domain::ports::{ActionPurpose, ActionToken, Login, StoreError, UniqueField, UserStore};
use uuid::Uuid;

use crate::error::db_error;
use crate::rows::{self, NewActionTokenRow, NewUserRow, ProfileChangeset, UserRow};
use crate::schema::{action_tokens, sessions, users};
use crate::{PostgresStore, transaction};

diesel::define_sql_function! {
    /// PostgreSQL's `lower(text)`: `users_email_key` and `users_username_key` index
    /// `lower(email)` and `lower(username)`, so logins are looked up with the same expression.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// The user with this id, if any.
fn load_user(conn: &mut PgConnection, id: Uuid) -> Result<Option<User>, StoreError> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
        .map_err(db_error)?
        .map(User::try_from)
        .transpose()
}

#[async_trait::async_trait]
impl UserStore for PostgresStore {
    #[tracing::instrument(name = "postgres.users.insert", level = "debug", skip_all, fields(user_id = %user.id))]
    async fn insert(&self, user: NewUser) -> Result<User, StoreError> {
        let email = user.email.as_str().to_owned();
        let result = self
            .run(move |conn| {
                diesel::insert_into(users::table)
                    .values(NewUserRow::from(&user))
                    .returning(UserRow::as_returning())
                    .get_result(conn)
                    .map_err(db_error)
                    .and_then(User::try_from)
            })
            .await;
        match result {
            // Both may be taken; which constraint PostgreSQL reports first is its own business,
            // so the e-mail is checked first, as in every store.
            Err(StoreError::Duplicate(_)) => {
                let taken: i64 = self
                    .run(move |conn| {
                        users::table
                            .filter(lower(users::email).eq(lower(email)))
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

    #[tracing::instrument(name = "postgres.users.find_by_id", level = "debug", skip_all, fields(user_id = %id))]
    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.run(move |conn| load_user(conn, *id.as_uuid())).await
    }

    #[tracing::instrument(name = "postgres.users.find_credentials", level = "debug", skip_all)]
    async fn find_credentials(&self, login: &Login) -> Result<Option<Credentials>, StoreError> {
        let login = login.clone();
        self.run(move |conn| {
            let select = (UserRow::as_select(), users::password_hash);
            let row = match &login {
                Login::Email(email) => users::table
                    .filter(lower(users::email).eq(lower(email.as_str())))
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

    #[tracing::instrument(name = "postgres.users.find_credentials_by_id", level = "debug", skip_all, fields(user_id = %id))]
    async fn find_credentials_by_id(&self, id: UserId) -> Result<Option<Credentials>, StoreError> {
        self.run(move |conn| {
            let row = users::table
                .find(id.as_uuid())
                .select((UserRow::as_select(), users::password_hash))
                .first(conn)
                .optional()
                .map_err(db_error)?;
            row.map(rows::credentials).transpose()
        })
        .await
    }

    #[tracing::instrument(name = "postgres.users.update_profile", level = "debug", skip_all, fields(user_id = %id))]
    async fn update_profile(
        &self,
        id: UserId,
        changes: ProfileChanges,
        expected_version: Option<UserVersion>,
        at: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let changeset = ProfileChangeset {
            first_name: changes.first_name.map(|n| n.as_str().to_owned()),
            last_name: changes.last_name.map(|n| n.as_str().to_owned()),
            username: changes.username.map(|n| n.as_str().to_owned()),
            preferences: changes.preferences.map(|p| p.into_value()),
        };
        self.run(move |conn| {
            let id = *id.as_uuid();
            let set = (
                changeset,
                users::version.eq(users::version + 1),
                users::updated_at.eq(at),
            );
            // One statement: the version check and the write cannot be separated.
            let target = users::table.find(id);
            let updated = match expected_version {
                Some(version) => diesel::update(target.filter(users::version.eq(version)))
                    .set(set)
                    .returning(UserRow::as_returning())
                    .get_result(conn),
                None => diesel::update(target)
                    .set(set)
                    .returning(UserRow::as_returning())
                    .get_result(conn),
            }
            .optional()
            .map_err(db_error)?;
            match updated {
                Some(row) => User::try_from(row),
                // Nothing was written; only the reason remains to be found.
                None if expected_version.is_some() && load_user(conn, id)?.is_some() => {
                    Err(StoreError::StaleVersion)
                }
                None => Err(StoreError::NotFound),
            }
        })
        .await
    }

    #[tracing::instrument(name = "postgres.users.change_password", level = "debug", skip_all, fields(user_id = %id))]
    async fn change_password(
        &self,
        id: UserId,
        hash: PasswordHash,
        keep: Option<SessionId>,
        at: DateTime<Utc>,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                let id = *id.as_uuid();
                let updated = diesel::update(users::table.find(id))
                    .set((
                        users::password_hash.eq(hash.as_str()),
                        users::version.eq(users::version + 1),
                        users::updated_at.eq(at),
                    ))
                    .execute(conn)?;
                if updated == 0 {
                    return Err(StoreError::NotFound.into());
                }
                // `id <> ALL('{}')` holds for every row, so `None` keeps nothing.
                let keep: Vec<Uuid> = keep.iter().map(|s| *s.as_uuid()).collect();
                let revoked: Vec<Uuid> = diesel::update(
                    sessions::table
                        .filter(sessions::user_id.eq(id))
                        .filter(sessions::revoked_at.is_null())
                        .filter(sessions::id.ne_all(keep)),
                )
                .set(sessions::revoked_at.eq(at))
                .returning(sessions::id)
                .get_results(conn)?;
                Ok(revoked.into_iter().map(SessionId::from_uuid).collect())
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.users.insert_action_token", level = "debug", skip_all, fields(user_id = %token.user_id))]
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

    #[tracing::instrument(name = "postgres.users.verify_email", level = "debug", skip_all)]
    async fn verify_email(
        &self,
        token: &TokenHash,
        at: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        let token = token.as_str().to_owned();
        self.run(move |conn| {
            transaction(conn, |conn| {
                // Spending is the check: of concurrent calls, the first takes the row lock and
                // the others, re-reading the row once it commits, find it spent.
                let Some(user) = diesel::update(
                    action_tokens::table
                        .find(&token)
                        .filter(action_tokens::purpose.eq(ActionPurpose::VerifyEmail.as_str()))
                        .filter(action_tokens::used_at.is_null())
                        .filter(action_tokens::expires_at.gt(at)),
                )
                .set(action_tokens::used_at.eq(at))
                .returning(action_tokens::user_id)
                .get_result::<Uuid>(conn)
                .optional()?
                else {
                    return Ok(None);
                };
                let verified = diesel::update(users::table.find(user))
                    .set((
                        users::email_verified.eq(true),
                        users::version.eq(users::version + 1),
                        users::updated_at.eq(at),
                    ))
                    .execute(conn)?;
                if verified != 1 {
                    return Err(StoreError::Unexpected(
                        format!("verifying with an unspent token changed {verified} user rows")
                            .into(),
                    )
                    .into());
                }
                Ok(Some(UserId::from_uuid(user)))
            })
        })
        .await
    }
}
