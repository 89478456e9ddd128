//! `SessionStore` for [`PostgresStore`]: login sessions and their rotating refresh tokens.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use domain::model::{
    Journal, NewSession, RefreshRotation, Session, SessionId, StoredRefreshToken, TokenHash, UserId,
};
use domain::ports::{PageRequest, Paged, SessionStore, StoreError};
use uuid::Uuid;

use crate::audit::write_journal;
use crate::error::db_error;
use crate::rows::{NewRefreshTokenRow, SessionRow};
use crate::schema::{refresh_tokens, sessions, users};
use crate::{PostgresStore, limit_offset, snapshot, total, transaction};

/// The ids of `user`'s unrevoked sessions, expired or not: the query `live_for_user` runs,
/// answered by the partial index `sessions_live_idx`.
pub(crate) fn live_query(
    user: UserId,
) -> sessions::BoxedQuery<'static, Pg, diesel::sql_types::Uuid> {
    sessions::table
        .filter(sessions::user_id.eq(*user.as_uuid()))
        .filter(sessions::revoked_at.is_null())
        .select(sessions::id)
        .into_boxed()
}

#[async_trait::async_trait]
impl SessionStore for PostgresStore {
    #[tracing::instrument(name = "postgres.sessions.create", level = "debug", skip_all, fields(session_id = %new.session.id, user_id = %new.session.user_id))]
    async fn create(&self, new: NewSession, journal: Journal) -> Result<(), StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                let row = SessionRow::from(&new.session);
                // Touching the user first both records the login and proves the user exists
                // (so a missing user is `NotFound` rather than a foreign-key failure), only
                // while the password the login checked is still the user's and the user is
                // active. A login is not a profile change: neither `version` nor `updated_at`
                // moves. The UPDATE locks the user's row until commit, and a password change,
                // reset or deactivation updates that row before it revokes sessions: one that
                // committed first is seen here (READ COMMITTED re-reads a row it waited for)
                // and refuses the login; one that comes later waits for this session to
                // commit, then revokes it.
                let touched = diesel::update(
                    users::table
                        .find(row.user_id)
                        .filter(users::password_hash.eq(new.verified_password.as_str()))
                        .filter(users::is_active),
                )
                .set(users::last_login_at.eq(row.created_at))
                .execute(conn)?;
                if touched == 0 {
                    let exists: i64 = users::table.find(row.user_id).count().get_result(conn)?;
                    return Err(if exists == 0 {
                        StoreError::NotFound
                    } else {
                        StoreError::Changed
                    }
                    .into());
                }
                diesel::insert_into(sessions::table)
                    .values(&row)
                    .execute(conn)?;
                diesel::insert_into(refresh_tokens::table)
                    .values(NewRefreshTokenRow::first_of(&new))
                    .execute(conn)?;
                write_journal(conn, &journal)
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.sessions.find", level = "debug", skip_all, fields(session_id = %id))]
    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.run(move |conn| {
            sessions::table
                .find(id.as_uuid())
                .select(SessionRow::as_select())
                .first(conn)
                .optional()
                .map(|row| row.map(Session::from))
                .map_err(db_error)
        })
        .await
    }

    #[tracing::instrument(
        name = "postgres.sessions.find_refresh_token",
        level = "debug",
        skip_all
    )]
    async fn find_refresh_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<StoredRefreshToken>, StoreError> {
        let token = token.as_str().to_owned();
        self.run(move |conn| {
            refresh_tokens::table
                .inner_join(sessions::table)
                .filter(refresh_tokens::token_hash.eq(&token))
                .select((refresh_tokens::used_at, SessionRow::as_select()))
                .first::<(Option<DateTime<Utc>>, SessionRow)>(conn)
                .optional()
                .map(|found| {
                    found.map(|(used_at, row)| StoredRefreshToken {
                        session: Session::from(row),
                        used_at,
                    })
                })
                .map_err(db_error)
        })
        .await
    }

    #[tracing::instrument(
        name = "postgres.sessions.rotate_refresh_token",
        level = "debug",
        skip_all
    )]
    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        replacement: &TokenHash,
        at: DateTime<Utc>,
    ) -> Result<RefreshRotation, StoreError> {
        let presented = presented.as_str().to_owned();
        let replacement = replacement.as_str().to_owned();
        self.run(move |conn| {
            transaction(conn, |conn| {
                // Lock the token row: a concurrent presenter of the same token waits here
                // until this transaction ends, then reads the row again and finds it spent.
                let Some((session_id, used_at)) = refresh_tokens::table
                    .find(&presented)
                    .select((refresh_tokens::session_id, refresh_tokens::used_at))
                    .for_no_key_update()
                    .first::<(Uuid, Option<DateTime<Utc>>)>(conn)
                    .optional()?
                else {
                    return Ok(RefreshRotation::Unknown);
                };
                // Lock the session row too (a separate statement, so it reads the latest
                // committed state): a revocation either committed before, and is seen here,
                // or waits until the rotation is done.
                let session = Session::from(
                    sessions::table
                        .find(session_id)
                        .select(SessionRow::as_select())
                        .for_no_key_update()
                        .first(conn)?,
                );
                // A replayed token is reported even when its session is dead too: the reuse
                // is the more alarming fact.
                if used_at.is_some() {
                    return Ok(RefreshRotation::Reused(session));
                }
                if !session.is_live(at) {
                    return Ok(RefreshRotation::Dead(session));
                }
                diesel::update(refresh_tokens::table.find(&presented))
                    .set(refresh_tokens::used_at.eq(at))
                    .execute(conn)?;
                diesel::insert_into(refresh_tokens::table)
                    .values(NewRefreshTokenRow {
                        token_hash: &replacement,
                        session_id,
                        issued_at: at,
                        used_at: None,
                    })
                    .execute(conn)?;
                let session = diesel::update(sessions::table.find(session_id))
                    .set(sessions::last_used_at.eq(at))
                    .returning(SessionRow::as_returning())
                    .get_result(conn)?;
                Ok(RefreshRotation::Rotated(Session::from(session)))
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.sessions.list_live", level = "debug", skip_all, fields(user_id = %user))]
    async fn list_live(
        &self,
        user: UserId,
        at: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Paged<Session>, StoreError> {
        self.run(move |conn| {
            let live = || {
                sessions::table
                    .filter(sessions::user_id.eq(*user.as_uuid()))
                    .filter(sessions::revoked_at.is_null())
                    .filter(sessions::expires_at.gt(at))
            };
            let (limit, offset) = limit_offset(page);
            snapshot(conn, |conn| {
                let rows: Vec<SessionRow> = live()
                    .order((sessions::created_at.desc(), sessions::id.desc()))
                    .select(SessionRow::as_select())
                    .limit(limit)
                    .offset(offset)
                    .load(conn)?;
                let count: i64 = live().count().get_result(conn)?;
                Ok(Paged {
                    items: rows.into_iter().map(Session::from).collect(),
                    total: total(count),
                })
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.sessions.live_for_user", level = "debug", skip_all, fields(user_id = %user))]
    async fn live_for_user(&self, user: UserId) -> Result<Vec<SessionId>, StoreError> {
        self.run(move |conn| {
            let ids: Vec<Uuid> = live_query(user).load(conn).map_err(db_error)?;
            Ok(ids.into_iter().map(SessionId::from_uuid).collect())
        })
        .await
    }

    #[tracing::instrument(name = "postgres.sessions.revoke", level = "debug", skip_all, fields(session_id = %id, user_id = %user))]
    async fn revoke(
        &self,
        user: UserId,
        id: SessionId,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<bool, StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                let revoked = diesel::update(
                    sessions::table
                        .find(id.as_uuid())
                        .filter(sessions::user_id.eq(user.as_uuid()))
                        .filter(sessions::revoked_at.is_null()),
                )
                .set(sessions::revoked_at.eq(at))
                .execute(conn)?;
                if revoked == 0 {
                    // Nothing changed, so there is nothing to record.
                    return Ok(false);
                }
                write_journal(conn, &journal)?;
                Ok(true)
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.sessions.revoke_all", level = "debug", skip_all, fields(user_id = %user))]
    async fn revoke_all(
        &self,
        user: UserId,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                // One statement: it revokes, and returns, exactly the rows it changed.
                let revoked: Vec<Uuid> = diesel::update(
                    sessions::table
                        .filter(sessions::user_id.eq(user.as_uuid()))
                        .filter(sessions::revoked_at.is_null()),
                )
                .set(sessions::revoked_at.eq(at))
                .returning(sessions::id)
                .get_results(conn)?;
                // Written even when nothing was live: the request itself is the event.
                write_journal(conn, &journal)?;
                Ok(revoked.into_iter().map(SessionId::from_uuid).collect())
            })
        })
        .await
    }

    #[tracing::instrument(
        name = "postgres.sessions.purge_ended",
        level = "debug",
        skip_all,
        fields(limit)
    )]
    async fn purge_ended(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                // Through `sessions_expires_at_idx` and `sessions_revoked_at_idx`. A session
                // that ended stays ended (nothing clears `revoked_at` or moves `expires_at`),
                // so the ids read here still qualify when they are deleted.
                let ended: Vec<Uuid> = sessions::table
                    .filter(
                        sessions::expires_at
                            .lt(before)
                            .or(sessions::revoked_at.lt(before)),
                    )
                    .limit(i64::from(limit))
                    .select(sessions::id)
                    .load(conn)?;
                if ended.is_empty() {
                    return Ok(0);
                }
                // The refresh tokens first, then the sessions: the order in which a rotation
                // locks them, so a purge and a rotation cannot deadlock.
                diesel::delete(
                    refresh_tokens::table.filter(refresh_tokens::session_id.eq_any(&ended)),
                )
                .execute(conn)?;
                let deleted = diesel::delete(sessions::table.filter(sessions::id.eq_any(&ended)))
                    .execute(conn)?;
                Ok(u64::try_from(deleted).unwrap_or_default())
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.sessions.revoked_since", level = "debug", skip_all)]
    async fn revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(SessionId, DateTime<Utc>)>, StoreError> {
        self.run(move |conn| {
            let rows: Vec<(Uuid, DateTime<Utc>)> = sessions::table
                .filter(sessions::revoked_at.ge(since))
                .order((sessions::revoked_at.asc(), sessions::id.asc()))
                .select((sessions::id, sessions::revoked_at.assume_not_null()))
                .load(conn)
                .map_err(db_error)?;
            Ok(rows
                .into_iter()
                .map(|(id, revoked_at)| (SessionId::from_uuid(id), revoked_at))
                .collect())
        })
        .await
    }
}
