//! `UserStore` for [`PostgresStore`]: accounts, credentials, one-time action tokens and the
//! administrators' user list.

use chrono::{DateTime, Utc};
use diesel::dsl::{exists, select, sql};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text, Timestamptz};
use domain::model::{
    Credentials, Email, Journal, NewUser, PasswordHash, Role, SessionId, TokenHash, User, UserId,
    UserVersion,
};
use domain::ports::{
    ActionPurpose, ActionToken, IssueOutcome, Login, PageRequest, Paged, StoreError,
    StoredActionToken, UniqueField, UserChanges, UserFilter, UserSort, UserStore, UserUpdate,
};
use uuid::Uuid;

use crate::audit::write_journal;
use crate::error::{TxError, db_error};
use crate::guards;
use crate::rows::{self, ActionTokenRow, NewActionTokenRow, NewUserRow, UserChangeset, UserRow};
use crate::schema::{action_tokens, memberships, sessions, users};
use crate::{PostgresStore, limit_offset, retrying_transaction, snapshot, total, transaction};

diesel::define_sql_function! {
    /// PostgreSQL's `lower(text)`: `users_email_key` and `users_username_key` index
    /// `lower(email)` and `lower(username)`, so logins are looked up with the same expression.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

diesel::postfix_operator!(
    CollateC,
    " COLLATE \"C\"",
    diesel::sql_types::Text,
    backend: Pg
);

/// The search condition of [`UserStore::list`], followed by the bound pattern: exactly the
/// expression `users_search_trgm_idx` indexes, so that the planner can answer it from the
/// index (an expression index is used only for the same expression). The pattern is folded by
/// the same `lower()`, so that both sides are lower-cased alike under any database locale.
const SEARCH: &str = "(lower(email) || ' ' || lower(username) || ' ' || lower(first_name) || ' ' || lower(last_name)) LIKE lower(";

/// The `LIKE` pattern of a search for `q` as a substring: with the pattern characters `%`,
/// `_` and the escape character `\` escaped, so each matches only itself. It is lower-cased
/// by PostgreSQL's `lower()` in the query, which is what the indexed expression applies.
pub(crate) fn search_pattern(q: &str) -> String {
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The users matching `filter`, unordered.
pub(crate) fn filtered(filter: &UserFilter) -> users::BoxedQuery<'static, Pg> {
    let mut query = users::table.into_boxed();
    if let Some(q) = &filter.q {
        let pattern = search_pattern(q);
        // The index answers the search over the four fields joined by spaces; the second
        // condition, checked only on the rows the index found, keeps a match from spanning
        // two fields, since `q` is a substring of one of them.
        let within_one_field = lower(users::email)
            .like(lower(pattern.clone()))
            .or(lower(users::username).like(lower(pattern.clone())))
            .or(lower(users::first_name).like(lower(pattern.clone())))
            .or(lower(users::last_name).like(lower(pattern.clone())));
        query = query
            .filter(sql::<Bool>(SEARCH).bind::<Text, _>(pattern).sql(")"))
            .filter(within_one_field);
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
                    .filter(memberships::tenant_id.eq(*tenant.as_uuid()))
                    .select(memberships::user_id),
            ),
        );
    }
    query
}

/// One page of the users matching `filter` in `sort` order, ties broken by id (descending for
/// newest first, ascending otherwise). E-mail
/// addresses and usernames are compared by code point (`COLLATE "C"`), whatever the database's
/// collation, as SQLite compares them.
pub(crate) fn page_query(
    filter: &UserFilter,
    sort: UserSort,
    page: PageRequest,
) -> users::BoxedQuery<'static, Pg> {
    let query = filtered(filter);
    // Newest first breaks ties newest (greatest time-ordered id) first too, so one backward
    // scan of `users_created_at_idx` serves it.
    let query = match sort {
        UserSort::CreatedAt => query
            .order_by(users::created_at.asc())
            .then_order_by(users::id.asc()),
        UserSort::CreatedAtDesc => query
            .order_by(users::created_at.desc())
            .then_order_by(users::id.desc()),
        UserSort::Email => query
            .order_by(CollateC::new(users::email).asc())
            .then_order_by(users::id.asc()),
        UserSort::Username => query
            .order_by(CollateC::new(lower(users::username)).asc())
            .then_order_by(users::id.asc()),
    };
    let (limit, offset) = limit_offset(page);
    query.limit(limit).offset(offset)
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

/// The user with this id, its row locked `FOR UPDATE` until the transaction ends.
fn lock_user(conn: &mut PgConnection, id: Uuid) -> Result<Option<User>, TxError> {
    let row = users::table
        .find(id)
        .select(UserRow::as_select())
        .for_update()
        .first(conn)
        .optional()?;
    Ok(row.map(User::try_from).transpose()?)
}

/// A `Duplicate` from a write of `email` (when given), reported e-mail first whichever unique
/// index PostgreSQL happened to check first; any other error as it is.
fn email_first(
    conn: &mut PgConnection,
    error: StoreError,
    email: Option<&Email>,
    except: Uuid,
) -> Result<StoreError, TxError> {
    let (StoreError::Duplicate(UniqueField::Username), Some(email)) = (&error, email) else {
        return Ok(error);
    };
    let taken: bool = select(exists(
        users::table
            .filter(lower(users::email).eq(lower(email.as_str())))
            .filter(users::id.ne(except)),
    ))
    .get_result(conn)?;
    Ok(if taken {
        StoreError::Duplicate(UniqueField::Email)
    } else {
        error
    })
}

/// Inserts a user inside the caller's transaction. A duplicate rolls back to a savepoint, so
/// that the transaction can still tell which field is taken (the e-mail first).
pub(crate) fn insert_user(conn: &mut PgConnection, user: &NewUser) -> Result<User, TxError> {
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(users::table)
            .values(NewUserRow::from(user))
            .returning(UserRow::as_returning())
            .get_result(conn)
    });
    match inserted {
        Ok(row) => Ok(User::try_from(row)?),
        Err(error) => {
            Err(email_first(conn, db_error(error), Some(&user.email), *user.id.as_uuid())?.into())
        }
    }
}

/// Locks the user's row `FOR NO KEY UPDATE` until the transaction ends (what an `UPDATE`
/// of the row takes anyway), returning whether the user exists. Whatever spends a user's
/// one-time tokens takes this lock (or `FOR UPDATE`) first and the tokens' row locks after
/// it, so a reset or verification and a change of address that spends every token never
/// wait for each other in opposite orders (a deadlock).
fn lock_user_row(conn: &mut PgConnection, id: Uuid) -> Result<bool, TxError> {
    let locked = users::table
        .find(id)
        .select(users::id)
        .for_no_key_update()
        .first::<Uuid>(conn)
        .optional()?;
    Ok(locked.is_some())
}

/// Spends (`used_at = at`) every unspent one-time token of `user`, of `purpose` or (`None`)
/// of every purpose: a change of address spends them all, so that no link mailed to the old
/// address works after it; a password change or reset spends the reset tokens, so that no
/// older reset link sets the password again. Spent tokens keep the time they were spent.
/// Through `action_tokens_cooldown_idx`, which leads with `user_id`. The caller holds the
/// user's row lock.
fn spend_action_tokens(
    conn: &mut PgConnection,
    user: Uuid,
    purpose: Option<ActionPurpose>,
    at: DateTime<Utc>,
) -> QueryResult<usize> {
    let mut spend = diesel::update(action_tokens::table)
        .set(action_tokens::used_at.eq(at))
        .filter(action_tokens::user_id.eq(user))
        .filter(action_tokens::used_at.is_null())
        .into_boxed();
    if let Some(purpose) = purpose {
        spend = spend.filter(action_tokens::purpose.eq(purpose.as_str()));
    }
    spend.execute(conn)
}

/// Revokes every unrevoked session of `user` but `keep`, returning the ids it revoked.
fn revoke_sessions(
    conn: &mut PgConnection,
    user: Uuid,
    keep: Option<SessionId>,
    at: DateTime<Utc>,
) -> QueryResult<Vec<SessionId>> {
    // `id <> ALL('{}')` holds for every row, so `None` keeps nothing.
    let keep: Vec<Uuid> = keep.iter().map(|s| *s.as_uuid()).collect();
    let revoked: Vec<Uuid> = diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::id.ne_all(keep)),
    )
    .set(sessions::revoked_at.eq(at))
    .returning(sessions::id)
    .get_results(conn)?;
    Ok(revoked.into_iter().map(SessionId::from_uuid).collect())
}

/// [`UserStore::update`] inside its transaction; see [`guards`] for the locks.
fn update_user(
    conn: &mut PgConnection,
    id: Uuid,
    changes: &UserChanges,
    expected_version: Option<UserVersion>,
    at: DateTime<Utc>,
    journal: &Journal,
) -> Result<UserUpdate, TxError> {
    let deactivating = changes.is_active == Some(false);
    let demoting = changes.role.is_some_and(|role| role != Role::Admin);
    if deactivating || demoting {
        guards::lock_system_admins(conn)?;
    }
    let locked = if deactivating {
        guards::lock_admin_tenants(conn, id)?
    } else {
        Vec::new()
    };
    let current = lock_user(conn, id)?.ok_or(StoreError::NotFound)?;
    let administered = if deactivating {
        guards::recheck_admin_tenants(conn, id, &locked)?
    } else {
        Vec::new()
    };
    if expected_version.is_some_and(|version| version != current.version) {
        return Err(StoreError::StaleVersion.into());
    }
    if current.is_active {
        if current.role == Role::Admin && (deactivating || demoting) {
            guards::keep_a_system_admin(conn, id)?;
        }
        if deactivating {
            guards::keep_tenant_admins(conn, id, &administered)?;
        }
    }

    // Setting the address it already has is no change, so it stays verified.
    let email = changes
        .email
        .as_ref()
        .filter(|email| **email != current.email);
    let profile = &changes.profile;
    let changeset = UserChangeset {
        first_name: profile.first_name.as_ref().map(|n| n.as_str().to_owned()),
        last_name: profile.last_name.as_ref().map(|n| n.as_str().to_owned()),
        username: profile.username.as_ref().map(|n| n.as_str().to_owned()),
        preferences: profile.preferences.clone().map(|p| p.into_value()),
        email: email.map(|e| e.as_str().to_owned()),
        email_verified: email.map(|_| false),
        role: changes.role.map(Role::as_str),
        is_active: changes.is_active,
    };
    let updated = conn.transaction(|conn| {
        diesel::update(users::table.find(id))
            .set((
                changeset,
                users::version.eq(users::version + 1),
                users::updated_at.eq(at),
            ))
            .returning(UserRow::as_returning())
            .get_result(conn)
    });
    let user = match updated {
        Ok(row) => User::try_from(row)?,
        Err(error) => return Err(email_first(conn, db_error(error), email, id)?.into()),
    };
    let revoked = if deactivating {
        revoke_sessions(conn, id, None, at)?
    } else {
        Vec::new()
    };
    // Before the journal, which may carry the new address's verification token. The user
    // row is locked already, as `reset_password` and `verify_email` lock it before they
    // spend a token, so this waits for neither, nor they for it, in the other order.
    if email.is_some() {
        spend_action_tokens(conn, id, None, at)?;
    }
    write_journal(conn, journal)?;
    Ok(UserUpdate { user, revoked })
}

/// Whether `session` is an unrevoked session (expired or not) of `user`.
fn session_is_unrevoked(
    conn: &mut PgConnection,
    user: Uuid,
    session: SessionId,
) -> Result<bool, TxError> {
    Ok(select(exists(
        sessions::table
            .find(*session.as_uuid())
            .filter(sessions::user_id.eq(user))
            .filter(sessions::revoked_at.is_null()),
    ))
    .get_result(conn)?)
}

/// [`UserStore::delete`] inside its transaction; see [`guards`] for the locks.
fn delete_user(
    conn: &mut PgConnection,
    id: Uuid,
    expected_password: Option<&PasswordHash>,
    journal: &Journal,
) -> Result<(), TxError> {
    guards::lock_system_admins(conn)?;
    let locked = guards::lock_admin_tenants(conn, id)?;
    let current = lock_user(conn, id)?.ok_or(StoreError::NotFound)?;
    // A self-service deletion, only while the password it confirmed is still the user's and
    // the user active. The row is locked `FOR UPDATE` now (a reset, a password change or a
    // deactivation that committed before is seen, one that comes later waits), so this read
    // is the row as it will be deleted.
    if let Some(expected) = expected_password {
        let unchanged: bool = select(exists(
            users::table
                .find(id)
                .filter(users::password_hash.eq(expected.as_str()))
                .filter(users::is_active),
        ))
        .get_result(conn)?;
        if !unchanged {
            return Err(StoreError::Changed.into());
        }
    }
    let administered = guards::recheck_admin_tenants(conn, id, &locked)?;
    if current.is_active {
        if current.role == Role::Admin {
            guards::keep_a_system_admin(conn, id)?;
        }
        guards::keep_tenant_admins(conn, id, &administered)?;
    }
    // Sessions, their refresh tokens, action tokens and memberships go by cascade.
    diesel::delete(users::table.find(id)).execute(conn)?;
    write_journal(conn, journal)?;
    Ok(())
}

#[async_trait::async_trait]
impl UserStore for PostgresStore {
    #[tracing::instrument(name = "postgres.users.insert", level = "debug", skip_all, fields(user_id = %user.id))]
    async fn insert(&self, user: NewUser, journal: Journal) -> Result<User, StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                let user = insert_user(conn, &user)?;
                write_journal(conn, &journal)?;
                Ok(user)
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.users.insert_many", level = "debug", skip_all, fields(count = users.len()))]
    async fn insert_many(&self, users: Vec<NewUser>, journal: Journal) -> Result<u64, StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                let mut inserted = 0;
                // 14 columns a row: 4000 rows stay under PostgreSQL's 65535 bound parameters.
                for chunk in users.chunks(4000) {
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

    #[tracing::instrument(name = "postgres.users.update", level = "debug", skip_all, fields(user_id = %id))]
    async fn update(
        &self,
        id: UserId,
        changes: UserChanges,
        expected_version: Option<UserVersion>,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<UserUpdate, StoreError> {
        self.run(move |conn| {
            retrying_transaction(conn, |conn| {
                update_user(
                    conn,
                    *id.as_uuid(),
                    &changes,
                    expected_version,
                    at,
                    &journal,
                )
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.users.delete", level = "debug", skip_all, fields(user_id = %id))]
    async fn delete(
        &self,
        id: UserId,
        expected_password: Option<PasswordHash>,
        journal: Journal,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            retrying_transaction(conn, |conn| {
                delete_user(conn, *id.as_uuid(), expected_password.as_ref(), &journal)
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.users.list", level = "debug", skip_all)]
    async fn list(
        &self,
        filter: UserFilter,
        sort: UserSort,
        page: PageRequest,
    ) -> Result<Paged<User>, StoreError> {
        self.run(move |conn| {
            snapshot(conn, |conn| {
                let count: i64 = filtered(&filter).count().get_result(conn)?;
                let rows: Vec<UserRow> = page_query(&filter, sort, page)
                    .select(UserRow::as_select())
                    .load(conn)?;
                let items = rows
                    .into_iter()
                    .map(User::try_from)
                    .collect::<Result<_, _>>()?;
                Ok(Paged {
                    items,
                    total: total(count),
                })
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.users.change_password", level = "debug", skip_all, fields(user_id = %id))]
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
            transaction(conn, |conn| {
                let id = *id.as_uuid();
                // Only while the hash the caller confirmed the password against is still the
                // user's, and the user active: a change confirmed against a password that a
                // reset replaced meanwhile must not take the account back. The UPDATE locks
                // the user's row until commit, as a reset, another change or a deactivation
                // does before it revokes sessions: one that committed first is seen here
                // (READ COMMITTED re-evaluates the condition on the row it waited for) and
                // refuses this change; one that comes later waits for this one to commit (and
                // a later change confirmed against the old hash is then refused in turn).
                let updated = diesel::update(
                    users::table
                        .find(id)
                        .filter(users::password_hash.eq(expected.as_str()))
                        .filter(users::is_active),
                )
                .set((
                    users::password_hash.eq(hash.as_str()),
                    users::password_changed_at.eq(at),
                    users::version.eq(users::version + 1),
                    users::updated_at.eq(at),
                ))
                .execute(conn)?;
                if updated == 0 {
                    let found: bool = select(exists(users::table.find(id))).get_result(conn)?;
                    return Err(if found {
                        StoreError::Changed
                    } else {
                        StoreError::NotFound
                    }
                    .into());
                }
                // And only from a session that is still the user's and unrevoked. Read under
                // the user's row lock, so no reset (which takes it first) can end it between
                // this read and the commit. Returning the error rolls the update back.
                if let Some(keep) = keep
                    && !session_is_unrevoked(conn, id, keep)?
                {
                    return Err(StoreError::Changed.into());
                }
                let revoked = revoke_sessions(conn, id, keep, at)?;
                // A reset link mailed before must not set the password over this one. The
                // UPDATE above holds the user's row lock, taken before the tokens' as
                // everywhere (see `lock_user_row`).
                spend_action_tokens(conn, id, Some(ActionPurpose::ResetPassword), at)?;
                write_journal(conn, &journal)?;
                Ok(revoked)
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.users.issue_action_token", level = "debug", skip_all, fields(user_id = %token.user_id, purpose = token.purpose.as_str()))]
    async fn issue_action_token(
        &self,
        token: ActionToken,
        to: &Email,
        quiet_since: Option<DateTime<Utc>>,
        journal: Journal,
    ) -> Result<IssueOutcome, StoreError> {
        let to = to.as_str().to_owned();
        self.run(move |conn| {
            transaction(conn, |conn| {
                let user = *token.user_id.as_uuid();
                // Locking the user row serialises the issues of one user: a concurrent call
                // waits here, and its next statement sees the token this one committed. A
                // change of address or deactivation (`update` locks the row too) either
                // commits before, and is seen here, or waits until this commits and then
                // spends the token issued. (NO KEY UPDATE leaves the row's key share locks,
                // those of inserts referencing the user and of membership changes, free.)
                let recipient: Option<(String, bool)> = users::table
                    .find(user)
                    .select((users::email, users::is_active))
                    .for_no_key_update()
                    .first(conn)
                    .optional()?;
                let Some((email, is_active)) = recipient else {
                    return Err(StoreError::NotFound.into());
                };
                if email != to || !is_active {
                    return Ok(IssueOutcome::Stale);
                }
                if let Some(since) = quiet_since {
                    let recent: bool = select(exists(
                        action_tokens::table
                            .filter(action_tokens::user_id.eq(user))
                            .filter(action_tokens::purpose.eq(token.purpose.as_str()))
                            .filter(action_tokens::created_at.ge(since)),
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

    #[tracing::instrument(name = "postgres.users.reset_password", level = "debug", skip_all, fields(user_id = %user))]
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
            transaction(conn, |conn| {
                let user = *user.as_uuid();
                // The user's row first (see `lock_user_row`); a token of a user that does not
                // exist does not exist either (the foreign key cascades).
                if !lock_user_row(conn, user)? {
                    return Ok(None);
                }
                // Spending is the check: of concurrent calls, the first takes the locks and
                // the others, reading the token once it commits, find it spent.
                let spent = diesel::update(
                    action_tokens::table
                        .find(&token)
                        .filter(action_tokens::user_id.eq(user))
                        .filter(action_tokens::purpose.eq(ActionPurpose::ResetPassword.as_str()))
                        .filter(action_tokens::used_at.is_null())
                        .filter(action_tokens::expires_at.gt(at)),
                )
                .set(action_tokens::used_at.eq(at))
                .execute(conn)?;
                if spent == 0 {
                    return Ok(None);
                }
                let updated = diesel::update(users::table.find(user))
                    .set((
                        users::password_hash.eq(hash.as_str()),
                        users::password_changed_at.eq(at),
                        users::email_verified.eq(true),
                        users::version.eq(users::version + 1),
                        users::updated_at.eq(at),
                    ))
                    .execute(conn)?;
                if updated != 1 {
                    // The token's foreign key cascades, so its user exists.
                    return Err(StoreError::Unexpected(
                        format!("a reset with an unspent token changed {updated} user rows").into(),
                    )
                    .into());
                }
                let revoked = revoke_sessions(conn, user, None, at)?;
                // Every other reset link of the user too: none may reset again over this one.
                spend_action_tokens(conn, user, Some(ActionPurpose::ResetPassword), at)?;
                write_journal(conn, &journal)?;
                Ok(Some(revoked))
            })
        })
        .await
    }

    #[tracing::instrument(
        name = "postgres.users.purge_action_tokens",
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
            // One statement, through `action_tokens_used_at_idx` and
            // `action_tokens_expires_at_idx`; written as SQL because diesel's DSL cannot
            // filter a DELETE by a limited subquery of the same table.
            let deleted = diesel::sql_query(
                "DELETE FROM action_tokens WHERE token_hash IN (\
                   SELECT token_hash FROM action_tokens \
                    WHERE used_at < $1 OR expires_at < $1 LIMIT $2)",
            )
            .bind::<Timestamptz, _>(before)
            .bind::<BigInt, _>(i64::from(limit))
            .execute(conn)
            .map_err(db_error)?;
            Ok(u64::try_from(deleted).unwrap_or_default())
        })
        .await
    }

    #[tracing::instrument(name = "postgres.users.find_action_token", level = "debug", skip_all)]
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

    #[tracing::instrument(name = "postgres.users.verify_email", level = "debug", skip_all, fields(user_id = %user))]
    async fn verify_email(
        &self,
        token: &TokenHash,
        user: UserId,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<bool, StoreError> {
        let token = token.as_str().to_owned();
        self.run(move |conn| {
            transaction(conn, |conn| {
                let user = *user.as_uuid();
                // The user's row first (see `lock_user_row`); a token of a user that does not
                // exist does not exist either (the foreign key cascades).
                if !lock_user_row(conn, user)? {
                    return Ok(false);
                }
                // Spending is the check: of concurrent calls, the first takes the locks and
                // the others, reading the token once it commits, find it spent.
                let spent = diesel::update(
                    action_tokens::table
                        .find(&token)
                        .filter(action_tokens::user_id.eq(user))
                        .filter(action_tokens::purpose.eq(ActionPurpose::VerifyEmail.as_str()))
                        .filter(action_tokens::used_at.is_null())
                        .filter(action_tokens::expires_at.gt(at)),
                )
                .set(action_tokens::used_at.eq(at))
                .execute(conn)?;
                if spent == 0 {
                    return Ok(false);
                }
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
                write_journal(conn, &journal)?;
                Ok(true)
            })
        })
        .await
    }
}
