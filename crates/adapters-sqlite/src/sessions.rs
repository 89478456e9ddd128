//! `SessionStore` for [`SqliteStore`]: login sessions and their rotating refresh tokens.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;
use domain::model::{
    Journal, NewSession, RefreshRotation, Session, SessionId, StoredRefreshToken, TokenHash, UserId,
};
use domain::ports::{PageRequest, Paged, SessionStore, StoreError};

use crate::audit::write_journal;
use crate::error::{TxError, db_error};
use crate::rows::{self, NewRefreshTokenRow, SessionRow, micros};
use crate::schema::{refresh_tokens, sessions, users};
use crate::{SqliteStore, immediate, limit_offset, total};

/// Revokes (sets `revoked_at = at` on) every unrevoked session of `user` but `keep`, inside
/// the caller's transaction, returning the ids it revoked.
pub(crate) fn revoke_live_sessions(
    conn: &mut SqliteConnection,
    user: &str,
    keep: Option<SessionId>,
    at: DateTime<Utc>,
) -> Result<Vec<SessionId>, TxError> {
    // No session id is empty, so `id != ''` keeps nothing when `keep` is `None`.
    let keep = keep.map(|s| s.to_string()).unwrap_or_default();
    let live = sessions::table
        .filter(sessions::user_id.eq(user))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::id.ne(keep));
    let ids: Vec<String> = live.clone().select(sessions::id).load(conn)?;
    diesel::update(live)
        .set(sessions::revoked_at.eq(micros(at)))
        .execute(conn)?;
    Ok(ids
        .iter()
        .map(|id| rows::session_id(id))
        .collect::<Result<_, _>>()?)
}

/// The ids of `user`'s unrevoked sessions, expired or not: the query `live_for_user` runs,
/// answered by the partial index `sessions_live_idx`.
fn live_query(user: UserId) -> sessions::BoxedQuery<'static, Sqlite, Text> {
    sessions::table
        .filter(sessions::user_id.eq(user.to_string()))
        .filter(sessions::revoked_at.is_null())
        .select(sessions::id)
        .into_boxed()
}

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    #[tracing::instrument(name = "sqlite.sessions.create", level = "debug", skip_all, fields(session_id = %new.session.id, user_id = %new.session.user_id))]
    async fn create(&self, new: NewSession, journal: Journal) -> Result<(), StoreError> {
        self.run(move |conn| {
            // BEGIN IMMEDIATE: no password change, reset or deactivation (each a writer,
            // revoking the user's sessions in its own transaction) can come between the check
            // of the password hash and the insert of the session.
            immediate(conn, |conn| {
                let row = SessionRow::from(&new.session);
                // Touching the user first both records the login and proves the user exists
                // (so a missing user is `NotFound` rather than a foreign-key failure), only
                // while the password the login checked is still the user's and the user is
                // active.
                let touched = diesel::update(
                    users::table
                        .find(&row.user_id)
                        .filter(users::password_hash.eq(new.verified_password.as_str()))
                        .filter(users::is_active.eq(true)),
                )
                .set(users::last_login_at.eq(row.created_at))
                .execute(conn)?;
                if touched == 0 {
                    let exists: i64 = users::table.find(&row.user_id).count().get_result(conn)?;
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
                    .values(NewRefreshTokenRow::first_of(&new, &row.id))
                    .execute(conn)?;
                write_journal(conn, &journal)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.sessions.find", level = "debug", skip_all, fields(session_id = %id))]
    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.run(move |conn| {
            sessions::table
                .find(id.to_string())
                .select(SessionRow::as_select())
                .first(conn)
                .optional()
                .map_err(db_error)?
                .map(Session::try_from)
                .transpose()
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.sessions.find_refresh_token", level = "debug", skip_all)]
    async fn find_refresh_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<StoredRefreshToken>, StoreError> {
        let token = token.as_str().to_owned();
        self.run(move |conn| {
            let found = refresh_tokens::table
                .inner_join(sessions::table)
                .filter(refresh_tokens::token_hash.eq(&token))
                .select((refresh_tokens::used_at, SessionRow::as_select()))
                .first::<(Option<i64>, SessionRow)>(conn)
                .optional()
                .map_err(db_error)?;
            found
                .map(|(used_at, row)| {
                    Ok(StoredRefreshToken {
                        session: Session::try_from(row)?,
                        used_at: used_at
                            .map(|at| rows::from_micros("refresh_tokens.used_at", at))
                            .transpose()?,
                    })
                })
                .transpose()
        })
        .await
    }

    #[tracing::instrument(
        name = "sqlite.sessions.rotate_refresh_token",
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
            // BEGIN IMMEDIATE holds the write lock from the first read, so no other rotation
            // of the same token can run between the check and the update.
            immediate(conn, |conn| {
                let Some((used_at, row)) = refresh_tokens::table
                    .inner_join(sessions::table)
                    .filter(refresh_tokens::token_hash.eq(&presented))
                    .select((refresh_tokens::used_at, SessionRow::as_select()))
                    .first::<(Option<i64>, SessionRow)>(conn)
                    .optional()?
                else {
                    return Ok(RefreshRotation::Unknown);
                };
                let mut session = Session::try_from(row)?;
                if used_at.is_some() {
                    return Ok(RefreshRotation::Reused(session));
                }
                if !session.is_live(at) {
                    return Ok(RefreshRotation::Dead(session));
                }
                let spent = diesel::update(
                    refresh_tokens::table
                        .find(&presented)
                        .filter(refresh_tokens::used_at.is_null()),
                )
                .set(refresh_tokens::used_at.eq(micros(at)))
                .execute(conn)?;
                if spent != 1 {
                    // Unreachable under the write lock; refuse rather than issue a second token.
                    return Err(StoreError::Unexpected(
                        "the refresh token was spent concurrently despite the write lock".into(),
                    )
                    .into());
                }
                let session_id = session.id.to_string();
                diesel::insert_into(refresh_tokens::table)
                    .values(NewRefreshTokenRow {
                        token_hash: &replacement,
                        session_id: &session_id,
                        issued_at: micros(at),
                        used_at: None,
                    })
                    .execute(conn)?;
                diesel::update(sessions::table.find(&session_id))
                    .set(sessions::last_used_at.eq(micros(at)))
                    .execute(conn)?;
                session.last_used_at = rows::from_micros("sessions.last_used_at", micros(at))?;
                Ok(RefreshRotation::Rotated(session))
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.sessions.list_live", level = "debug", skip_all, fields(user_id = %user))]
    async fn list_live(
        &self,
        user: UserId,
        at: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Paged<Session>, StoreError> {
        self.run(move |conn| {
            let live = || {
                sessions::table
                    .filter(sessions::user_id.eq(user.to_string()))
                    .filter(sessions::revoked_at.is_null())
                    .filter(sessions::expires_at.gt(micros(at)))
            };
            let (limit, offset) = limit_offset(page);
            // One read transaction, so that the page and the total see the same snapshot.
            conn.transaction(|conn| {
                let rows: Vec<SessionRow> = live()
                    .order((sessions::created_at.desc(), sessions::id.desc()))
                    .select(SessionRow::as_select())
                    .limit(limit)
                    .offset(offset)
                    .load(conn)?;
                let count: i64 = live().count().get_result(conn)?;
                Ok::<_, TxError>((rows, count))
            })
            .map_err(StoreError::from)
            .and_then(|(rows, count)| {
                Ok(Paged {
                    items: rows
                        .into_iter()
                        .map(Session::try_from)
                        .collect::<Result<_, _>>()?,
                    total: total(count)?,
                })
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.sessions.live_for_user", level = "debug", skip_all, fields(user_id = %user))]
    async fn live_for_user(&self, user: UserId) -> Result<Vec<SessionId>, StoreError> {
        self.run(move |conn| {
            live_query(user)
                .load::<String>(conn)
                .map_err(db_error)?
                .iter()
                .map(|id| rows::session_id(id))
                .collect()
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.sessions.revoke", level = "debug", skip_all, fields(session_id = %id, user_id = %user))]
    async fn revoke(
        &self,
        user: UserId,
        id: SessionId,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<bool, StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                let revoked = diesel::update(
                    sessions::table
                        .find(id.to_string())
                        .filter(sessions::user_id.eq(user.to_string()))
                        .filter(sessions::revoked_at.is_null()),
                )
                .set(sessions::revoked_at.eq(micros(at)))
                .execute(conn)?;
                if revoked == 1 {
                    write_journal(conn, &journal)?;
                }
                Ok(revoked == 1)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.sessions.revoke_all", level = "debug", skip_all, fields(user_id = %user))]
    async fn revoke_all(
        &self,
        user: UserId,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                let revoked = revoke_live_sessions(conn, &user.to_string(), None, at)?;
                write_journal(conn, &journal)?;
                Ok(revoked)
            })
        })
        .await
    }

    #[tracing::instrument(
        name = "sqlite.sessions.purge_ended",
        level = "debug",
        skip_all,
        fields(limit)
    )]
    async fn purge_ended(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                let ended = diesel::alias!(sessions as ended);
                let batch = ended
                    .filter(
                        ended
                            .field(sessions::expires_at)
                            .lt(micros(before))
                            .or(ended.field(sessions::revoked_at).lt(micros(before))),
                    )
                    .limit(i64::from(limit))
                    .select(ended.field(sessions::id));
                // Their refresh tokens go by the foreign key's ON DELETE CASCADE.
                let deleted = diesel::delete(sessions::table)
                    .filter(sessions::id.eq_any(batch))
                    .execute(conn)?;
                Ok(deleted as u64)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.sessions.revoked_since", level = "debug", skip_all)]
    async fn revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(SessionId, DateTime<Utc>)>, StoreError> {
        self.run(move |conn| {
            let rows: Vec<(String, Option<i64>)> = sessions::table
                .filter(sessions::revoked_at.ge(micros(since)))
                .order(sessions::revoked_at.asc())
                .select((sessions::id, sessions::revoked_at))
                .load(conn)
                .map_err(db_error)?;
            rows.into_iter()
                .map(|(id, revoked_at)| {
                    let revoked_at = revoked_at.ok_or_else(|| {
                        rows::corrupt("sessions.revoked_at", "NULL after a filter")
                    })?;
                    Ok((
                        rows::session_id(&id)?,
                        rows::from_micros("sessions.revoked_at", revoked_at)?,
                    ))
                })
                .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use diesel_migrations::MigrationHarness;
    use uuid::Uuid;

    use super::*;
    use crate::query_plan;

    /// The live sessions are found through the partial index of the unrevoked ones, not
    /// through `sessions_user_id_idx` (every session the user ever had) or a scan.
    #[test]
    fn live_sessions_are_read_from_the_partial_index() -> Result<(), domain::BoxError> {
        let mut conn = SqliteConnection::establish(":memory:")?;
        conn.run_pending_migrations(crate::MIGRATIONS)?;

        let live = live_query(UserId::from_uuid(Uuid::from_u128(1)));
        let live = query_plan(&mut conn, &live)?;
        assert!(live.contains("USING INDEX sessions_live_idx"), "{live}");
        Ok(())
    }
}
