//! `UserStore` for [`SqliteStore`]: accounts, credentials, the administrators' user list and
//! one-time action tokens.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use domain::model::{
    Credentials, Email, Journal, NewUser, PasswordHash, Role, SessionId, TokenHash, User, UserId,
    UserVersion,
};
use domain::ports::{
    ActionPurpose, ActionToken, IssueOutcome, Login, PageRequest, Paged, StoreError,
    StoredActionToken, UniqueField, UserChanges, UserFilter, UserSort, UserStore, UserUpdate,
};

use crate::audit::write_journal;
use crate::error::{TxError, db_error};
use crate::rows::{
    self, ActionTokenRow, NewActionTokenRow, NewUserRow, UserChangeset, UserRow, json_text, micros,
};
use crate::schema::{action_tokens, memberships, sessions, users};
use crate::sessions::revoke_live_sessions;
use crate::{SqliteStore, admins, immediate, limit_offset, total};

diesel::define_sql_function! {
    /// SQLite's ASCII lower-casing; `lower(username)` is what `users_username_key` indexes.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// The user with this id, read inside the current connection (or transaction).
pub(crate) fn load_user(conn: &mut SqliteConnection, id: &str) -> Result<Option<User>, TxError> {
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

/// Whether `session` is an unrevoked session (expired or not) of `user`.
fn session_is_unrevoked(
    conn: &mut SqliteConnection,
    user: &str,
    session: SessionId,
) -> Result<bool, TxError> {
    Ok(diesel::select(diesel::dsl::exists(
        sessions::table
            .find(session.to_string())
            .filter(sessions::user_id.eq(user))
            .filter(sessions::revoked_at.is_null()),
    ))
    .get_result(conn)?)
}

/// Whether a user with this id exists.
pub(crate) fn user_exists(conn: &mut SqliteConnection, id: &str) -> Result<bool, TxError> {
    Ok(diesel::select(diesel::dsl::exists(users::table.find(id))).get_result(conn)?)
}

fn email_taken(conn: &mut SqliteConnection, email: &str) -> Result<bool, TxError> {
    Ok(diesel::select(diesel::dsl::exists(
        users::table.filter(users::email.eq(email)),
    ))
    .get_result(conn)?)
}

/// Inserts a user inside the caller's transaction. When both the e-mail and the username are
/// taken, every store reports the e-mail: it is checked first (safe under the write lock),
/// and the unique indexes catch the username (and the e-mail, as a backstop).
pub(crate) fn insert_user(conn: &mut SqliteConnection, user: &NewUser) -> Result<User, TxError> {
    if email_taken(conn, user.email.as_str())? {
        return Err(StoreError::Duplicate(UniqueField::Email).into());
    }
    diesel::insert_into(users::table)
        .values(NewUserRow::from(user))
        .execute(conn)?;
    reload_user(conn, &user.id.to_string())
}

/// Spends (`used_at = at`) every unspent one-time token of `user`, of `purpose` or (`None`)
/// of every purpose: a change of address spends them all, so that no link mailed to the old
/// address works after it; a password change or reset spends the reset tokens, so that no
/// older reset link sets the password again. Spent tokens keep the time they were spent.
/// Through `action_tokens_cooldown_idx`, which leads with `user_id`.
fn spend_action_tokens(
    conn: &mut SqliteConnection,
    user: &str,
    purpose: Option<ActionPurpose>,
    at: DateTime<Utc>,
) -> Result<usize, TxError> {
    let mut spend = diesel::update(action_tokens::table)
        .set(action_tokens::used_at.eq(micros(at)))
        .filter(action_tokens::user_id.eq(user))
        .filter(action_tokens::used_at.is_null())
        .into_boxed();
    if let Some(purpose) = purpose {
        spend = spend.filter(action_tokens::purpose.eq(purpose.as_str()));
    }
    Ok(spend.execute(conn)?)
}

/// `q` as a `LIKE` pattern matching it as a substring: lower-cased the way SQLite's `lower()`
/// does it (ASCII only, so that a non-ASCII letter still matches itself), with `\`, `%` and
/// `_` escaped for `ESCAPE '\'`, so that they match only themselves.
fn substring_pattern(q: &str) -> String {
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for c in q.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c.to_ascii_lowercase());
    }
    pattern.push('%');
    pattern
}

/// `q` as one FTS5 phrase: with the trigram tokenizer, rows containing it as a substring.
fn fts_phrase(q: &str) -> String {
    format!("\"{}\"", q.replace('"', "\"\""))
}

/// The users matching `filter`, in no particular order.
fn filtered(filter: &UserFilter) -> users::BoxedQuery<'static, Sqlite> {
    let mut query = users::table.into_boxed();
    if let Some(q) = &filter.q {
        // Candidates from the trigram index (a superset: it folds case more widely than the
        // exact match below), for a `q` long enough to have a trigram.
        // (A NUL cannot be quoted in an FTS5 query; the route refuses it, and the exact match
        // alone would still answer.)
        if q.chars().count() >= 3 && !q.contains('\0') {
            query = query.filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "users.id IN (SELECT k.user_id FROM users_search s \
                     JOIN user_search_keys k ON k.key = s.rowid WHERE users_search MATCH ",
                )
                .bind::<diesel::sql_types::Text, _>(fts_phrase(q))
                .sql(")"),
            );
        }
        let pattern = substring_pattern(q);
        query = query.filter(
            lower(users::email)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(users::username).like(pattern.clone()).escape('\\'))
                .or(lower(users::first_name).like(pattern.clone()).escape('\\'))
                .or(lower(users::last_name).like(pattern).escape('\\')),
        );
    }
    if let Some(role) = filter.role {
        query = query.filter(users::role.eq(role.as_str()));
    }
    if let Some(active) = filter.is_active {
        query = query.filter(users::is_active.eq(active));
    }
    if let Some(tenant) = filter.tenant {
        query = query.filter(
            users::id.eq_any(
                memberships::table
                    .filter(memberships::tenant_id.eq(tenant.to_string()))
                    .select(memberships::user_id),
            ),
        );
    }
    query
}

/// One page of the users matching `filter` in `sort` order, ties broken by id: the query
/// [`UserStore::list`] runs.
pub(crate) fn page_query(
    filter: &UserFilter,
    sort: UserSort,
    page: PageRequest,
) -> users::BoxedQuery<
    'static,
    Sqlite,
    diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<UserRow, Sqlite>>,
> {
    let query = filtered(filter).select(UserRow::as_select());
    // E-mail addresses and lower-cased usernames are unique (`users_email_key`,
    // `users_username_key`), so they have no ties to break, and their index serves the order
    // alone.
    let query = match sort {
        UserSort::CreatedAt => query
            .order_by(users::created_at.asc())
            .then_order_by(users::id.asc()),
        UserSort::CreatedAtDesc => query
            .order_by(users::created_at.desc())
            .then_order_by(users::id.desc()),
        UserSort::Email => query.order_by(users::email.asc()),
        UserSort::Username => query.order_by(lower(users::username).asc()),
    };
    let (limit, offset) = limit_offset(page);
    query.limit(limit).offset(offset)
}

#[async_trait::async_trait]
impl UserStore for SqliteStore {
    #[tracing::instrument(name = "sqlite.users.insert", level = "debug", skip_all, fields(user_id = %user.id))]
    async fn insert(&self, user: NewUser, journal: Journal) -> Result<User, StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                let stored = insert_user(conn, &user)?;
                write_journal(conn, &journal)?;
                Ok(stored)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.users.insert_many", level = "debug", skip_all, fields(count = users.len()))]
    async fn insert_many(&self, users: Vec<NewUser>, journal: Journal) -> Result<u64, StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                let mut inserted = 0;
                // 14 columns a row: 2000 rows stay under SQLite's 32766 bound parameters.
                for chunk in users.chunks(2000) {
                    let rows: Vec<NewUserRow<'_>> = chunk.iter().map(NewUserRow::from).collect();
                    inserted += diesel::insert_into(users::table)
                        .values(&rows)
                        .execute(conn)?;
                }
                write_journal(conn, &journal)?;
                Ok(inserted as u64)
            })
        })
        .await
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

    #[tracing::instrument(name = "sqlite.users.update", level = "debug", skip_all, fields(user_id = %id))]
    async fn update(
        &self,
        id: UserId,
        changes: UserChanges,
        expected_version: Option<UserVersion>,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<UserUpdate, StoreError> {
        let preferences = changes
            .profile
            .preferences
            .as_ref()
            .map(|p| json_text(p.as_map()))
            .transpose()?;
        self.run(move |conn| {
            immediate(conn, |conn| {
                let id = id.to_string();
                let current = load_user(conn, &id)?.ok_or(StoreError::NotFound)?;
                if expected_version.is_some_and(|expected| expected != current.version) {
                    return Err(StoreError::StaleVersion.into());
                }
                let active_after = changes.is_active.unwrap_or(current.is_active);
                let admin_after = changes.role.unwrap_or(current.role) == Role::Admin;
                if current.role == Role::Admin
                    && current.is_active
                    && !(admin_after && active_after)
                {
                    admins::keep_a_system_admin(conn, &id)?;
                }
                if current.is_active && !active_after {
                    admins::keep_the_admins_of_every_tenant_of(conn, &id)?;
                }
                // Only a different address is a change: re-sending the current one neither
                // collides with itself nor unverifies it.
                let new_email = changes.email.as_ref().filter(|e| **e != current.email);
                if let Some(email) = new_email
                    && email_taken(conn, email.as_str())?
                {
                    return Err(StoreError::Duplicate(UniqueField::Email).into());
                }
                let profile = &changes.profile;
                let changeset = UserChangeset {
                    first_name: profile.first_name.as_ref().map(|n| n.as_str().to_owned()),
                    last_name: profile.last_name.as_ref().map(|n| n.as_str().to_owned()),
                    username: profile.username.as_ref().map(|n| n.as_str().to_owned()),
                    preferences,
                    email: new_email.map(|e| e.as_str().to_owned()),
                    role: changes.role.map(Role::as_str),
                    is_active: changes.is_active,
                    email_verified: new_email.map(|_| false),
                };
                diesel::update(users::table.find(&id))
                    .set((
                        changeset,
                        users::version.eq(users::version + 1),
                        users::updated_at.eq(micros(at)),
                    ))
                    .execute(conn)?;
                let revoked = if changes.is_active == Some(false) {
                    revoke_live_sessions(conn, &id, None, at)?
                } else {
                    Vec::new()
                };
                // Before the journal, which may carry the new address's verification token.
                if new_email.is_some() {
                    spend_action_tokens(conn, &id, None, at)?;
                }
                write_journal(conn, &journal)?;
                Ok(UserUpdate {
                    user: reload_user(conn, &id)?,
                    revoked,
                })
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.users.delete", level = "debug", skip_all, fields(user_id = %id))]
    async fn delete(
        &self,
        id: UserId,
        expected_password: Option<PasswordHash>,
        journal: Journal,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            // BEGIN IMMEDIATE: no password change, reset or deactivation can come between the
            // re-check of the password the caller confirmed and the delete.
            immediate(conn, |conn| {
                let id = id.to_string();
                let current = load_user(conn, &id)?.ok_or(StoreError::NotFound)?;
                if let Some(expected) = &expected_password {
                    let unchanged: bool = diesel::select(diesel::dsl::exists(
                        users::table
                            .find(&id)
                            .filter(users::password_hash.eq(expected.as_str()))
                            .filter(users::is_active.eq(true)),
                    ))
                    .get_result(conn)?;
                    if !unchanged {
                        return Err(StoreError::Changed.into());
                    }
                }
                if current.role == Role::Admin && current.is_active {
                    admins::keep_a_system_admin(conn, &id)?;
                }
                if current.is_active {
                    admins::keep_the_admins_of_every_tenant_of(conn, &id)?;
                }
                // Sessions (with their refresh tokens), action tokens and memberships go by
                // their foreign keys' ON DELETE CASCADE; audit events have no foreign key.
                diesel::delete(users::table.find(&id)).execute(conn)?;
                write_journal(conn, &journal)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.users.list", level = "debug", skip_all)]
    async fn list(
        &self,
        filter: UserFilter,
        sort: UserSort,
        page: PageRequest,
    ) -> Result<Paged<User>, StoreError> {
        self.run(move |conn| {
            // One read transaction, so that the page and the total see the same snapshot.
            conn.transaction(|conn| {
                let rows: Vec<UserRow> = page_query(&filter, sort, page).load(conn)?;
                let count: i64 = filtered(&filter).count().get_result(conn)?;
                let items = rows
                    .into_iter()
                    .map(User::try_from)
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

    #[tracing::instrument(name = "sqlite.users.change_password", level = "debug", skip_all, fields(user_id = %id))]
    async fn change_password(
        &self,
        id: UserId,
        expected: PasswordHash,
        hash: PasswordHash,
        keep: Option<SessionId>,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.run(move |conn| {
            // BEGIN IMMEDIATE: no reset, other change or deactivation (each a writer) can come
            // between the re-check of what the caller confirmed and the change.
            immediate(conn, |conn| {
                let id = id.to_string();
                // Only while the hash the caller confirmed the password against is still the
                // user's, and the user active: a change confirmed against a password that a
                // reset replaced meanwhile must not take the account back.
                let updated = diesel::update(
                    users::table
                        .find(&id)
                        .filter(users::password_hash.eq(expected.as_str()))
                        .filter(users::is_active.eq(true)),
                )
                .set((
                    users::password_hash.eq(hash.as_str()),
                    users::password_changed_at.eq(micros(at)),
                    users::version.eq(users::version + 1),
                    users::updated_at.eq(micros(at)),
                ))
                .execute(conn)?;
                if updated == 0 {
                    return Err(if user_exists(conn, &id)? {
                        StoreError::Changed
                    } else {
                        StoreError::NotFound
                    }
                    .into());
                }
                // And only from a session that is still the user's and unrevoked: one ended
                // meanwhile (a logout, a reset, a deactivation) no longer speaks for the user.
                // Returning the error rolls the update back.
                if let Some(keep) = keep
                    && !session_is_unrevoked(conn, &id, keep)?
                {
                    return Err(StoreError::Changed.into());
                }
                let revoked = revoke_live_sessions(conn, &id, keep, at)?;
                // A reset link mailed before must not set the password over this one.
                spend_action_tokens(conn, &id, Some(ActionPurpose::ResetPassword), at)?;
                write_journal(conn, &journal)?;
                Ok(revoked)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.users.issue_action_token", level = "debug", skip_all, fields(user_id = %token.user_id, purpose = token.purpose.as_str()))]
    async fn issue_action_token(
        &self,
        token: ActionToken,
        to: &Email,
        quiet_since: Option<DateTime<Utc>>,
        journal: Journal,
    ) -> Result<IssueOutcome, StoreError> {
        let to = to.as_str().to_owned();
        self.run(move |conn| {
            // BEGIN IMMEDIATE holds the write lock from the first read, so of concurrent calls
            // the second sees the first one's token and keeps quiet, and no change of address
            // or deactivation can come between the check of the recipient and the insert.
            immediate(conn, |conn| {
                let user = token.user_id.to_string();
                let recipient: Option<(String, bool)> = users::table
                    .find(&user)
                    .select((users::email, users::is_active))
                    .first(conn)
                    .optional()?;
                let Some((email, is_active)) = recipient else {
                    return Err(StoreError::NotFound.into());
                };
                if email != to || !is_active {
                    return Ok(IssueOutcome::Stale);
                }
                if let Some(since) = quiet_since {
                    let recent: bool = diesel::select(diesel::dsl::exists(
                        action_tokens::table
                            .filter(action_tokens::user_id.eq(&user))
                            .filter(action_tokens::purpose.eq(token.purpose.as_str()))
                            .filter(action_tokens::created_at.ge(micros(since))),
                    ))
                    .get_result(conn)?;
                    if recent {
                        return Ok(IssueOutcome::Cooldown);
                    }
                }
                diesel::insert_into(action_tokens::table)
                    .values(NewActionTokenRow::from(&token))
                    .execute(conn)?;
                write_journal(conn, &journal)?;
                Ok(IssueOutcome::Issued)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.users.reset_password", level = "debug", skip_all, fields(user_id = %user))]
    async fn reset_password(
        &self,
        token: &TokenHash,
        user: UserId,
        hash: PasswordHash,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<Option<Vec<SessionId>>, StoreError> {
        let token = token.as_str().to_owned();
        self.run(move |conn| {
            // BEGIN IMMEDIATE holds the write lock from the first statement, so no concurrent
            // call can spend the token between this one's check and its update.
            immediate(conn, |conn| {
                let user = user.to_string();
                let spent = diesel::update(
                    action_tokens::table
                        .find(&token)
                        .filter(action_tokens::user_id.eq(&user))
                        .filter(action_tokens::purpose.eq(ActionPurpose::ResetPassword.as_str()))
                        .filter(action_tokens::used_at.is_null())
                        .filter(action_tokens::expires_at.gt(micros(at))),
                )
                .set(action_tokens::used_at.eq(micros(at)))
                .execute(conn)?;
                if spent == 0 {
                    return Ok(None);
                }
                let updated = diesel::update(users::table.find(&user))
                    .set((
                        users::password_hash.eq(hash.as_str()),
                        users::password_changed_at.eq(micros(at)),
                        users::email_verified.eq(true),
                        users::version.eq(users::version + 1),
                        users::updated_at.eq(micros(at)),
                    ))
                    .execute(conn)?;
                if updated != 1 {
                    // The token's foreign key cascades, so its user exists.
                    return Err(StoreError::Unexpected(
                        format!("a reset with an unspent token changed {updated} user rows").into(),
                    )
                    .into());
                }
                let revoked = revoke_live_sessions(conn, &user, None, at)?;
                // Every other reset link of the user too: none may reset again over this one.
                spend_action_tokens(conn, &user, Some(ActionPurpose::ResetPassword), at)?;
                write_journal(conn, &journal)?;
                Ok(Some(revoked))
            })
        })
        .await
    }

    #[tracing::instrument(
        name = "sqlite.users.purge_action_tokens",
        level = "debug",
        skip_all,
        fields(limit)
    )]
    async fn purge_action_tokens(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                let ended = diesel::alias!(action_tokens as ended);
                let batch = ended
                    .filter(
                        ended
                            .field(action_tokens::used_at)
                            .lt(micros(before))
                            .or(ended.field(action_tokens::expires_at).lt(micros(before))),
                    )
                    .limit(i64::from(limit))
                    .select(ended.field(action_tokens::token_hash));
                let deleted = diesel::delete(action_tokens::table)
                    .filter(action_tokens::token_hash.eq_any(batch))
                    .execute(conn)?;
                Ok(deleted as u64)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.users.find_action_token", level = "debug", skip_all)]
    async fn find_action_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<StoredActionToken>, StoreError> {
        let token = token.as_str().to_owned();
        self.run(move |conn| {
            action_tokens::table
                .find(&token)
                .select(ActionTokenRow::as_select())
                .first(conn)
                .optional()
                .map_err(db_error)?
                .map(StoredActionToken::try_from)
                .transpose()
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.users.verify_email", level = "debug", skip_all, fields(user_id = %user))]
    async fn verify_email(
        &self,
        token: &TokenHash,
        user: UserId,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<bool, StoreError> {
        let token = token.as_str().to_owned();
        self.run(move |conn| {
            // BEGIN IMMEDIATE holds the write lock from the first read, so no concurrent call
            // can spend the token between the check and the update.
            immediate(conn, |conn| {
                let Some(row) = action_tokens::table
                    .find(&token)
                    .select(ActionTokenRow::as_select())
                    .first(conn)
                    .optional()?
                else {
                    return Ok(false);
                };
                let spendable = row.purpose == ActionPurpose::VerifyEmail.as_str()
                    && row.used_at.is_none()
                    && micros(at) < row.expires_at
                    && row.user_id == user.to_string();
                if !spendable {
                    return Ok(false);
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
                write_journal(conn, &journal)?;
                Ok(true)
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
    fn logins_are_looked_up_through_the_unique_indexes() -> Result<(), domain::BoxError> {
        let mut conn = SqliteConnection::establish(":memory:")?;
        conn.run_pending_migrations(crate::MIGRATIONS)?;

        let by_username = users::table
            .filter(lower(users::username).eq(lower("x")))
            .select(users::id);
        let by_username = query_plan(&mut conn, &by_username)?;
        assert!(
            by_username.contains("USING INDEX users_username_key"),
            "{by_username}"
        );

        let by_email = users::table.filter(users::email.eq("x")).select(users::id);
        let by_email = query_plan(&mut conn, &by_email)?;
        assert!(
            by_email.contains("USING INDEX users_email_key"),
            "{by_email}"
        );
        Ok(())
    }

    #[test]
    fn the_default_user_list_order_reads_the_creation_index() -> Result<(), domain::BoxError> {
        let mut conn = SqliteConnection::establish(":memory:")?;
        conn.run_pending_migrations(crate::MIGRATIONS)?;
        let page = PageRequest {
            page: 2,
            per_page: 20,
        };
        let default = page_query(&UserFilter::default(), UserSort::default(), page);
        let default = query_plan(&mut conn, &default)?;
        assert!(
            default.contains("USING INDEX users_created_at_idx"),
            "{default}"
        );
        // Every order, newest first included, reads an index in order: no sort at all.
        for sort in [
            UserSort::CreatedAtDesc,
            UserSort::CreatedAt,
            UserSort::Email,
            UserSort::Username,
        ] {
            let plan = query_plan(&mut conn, &page_query(&UserFilter::default(), sort, page))?;
            assert!(
                plan.starts_with("SCAN users USING INDEX") && !plan.contains("TEMP B-TREE"),
                "{sort:?} reads an index in order: {plan}"
            );
        }
        Ok(())
    }

    #[test]
    fn like_wildcards_in_a_search_match_only_themselves() {
        assert_eq!(substring_pattern("Ab%_\\É"), "%ab\\%\\_\\\\É%");
    }
}
