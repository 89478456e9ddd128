//! The last-administrator guards, and the locks that keep them true under concurrency.
//!
//! PostgreSQL runs READ COMMITTED, where "count the other administrators, then write" is not
//! safe by itself: two transactions can each count the other's administrator and together
//! remove both. So every transaction that could remove an administrator first takes a lock
//! that the others it could race with also take, and counts only once it holds it (each
//! statement then sees what the previous holder committed):
//!
//! - **System administrators** (users with role `admin` who are active): a demotion, a
//!   deactivation or a deletion of a user takes the transaction-level advisory lock
//!   [`SYSTEM_ADMINS_LOCK`] before anything else.
//! - **Tenant administrators** (memberships with role `admin` whose user is active): every
//!   membership change (`add_member`, `change_role`, `remove_member`, a tenant's creation with
//!   an existing admin) locks the tenant row (`FOR UPDATE`) first, then the member's user row
//!   `FOR KEY SHARE`. A deactivation or deletion of a user locks the rows of the tenants the
//!   user administers, in id order, then the user row `FOR UPDATE`, and then reads the user's
//!   admin memberships again: a membership added or promoted in between (it had to lock the
//!   user row, so it has committed by now) names a tenant not locked, and the transaction
//!   starts over ([`TxError::Retry`]) rather than lock it out of order.
//!
//! Locks are always taken in the order advisory lock, tenant rows (by id), user row, so the
//! guarded transactions cannot deadlock one another.
//!
//! The same tenant row lock makes a membership change's authorization hold: the roles its
//! decision assumed (the member's and the acting member's, `domain::ports::Assumed`) are read
//! again once the lock is held, and no other change of the tenant's memberships can commit
//! before this one does.

use diesel::dsl::{exists, select};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use domain::model::{Role, TenantId, TenantRole};
use domain::ports::{LastAdmin, StoreError};
use uuid::Uuid;

use crate::error::TxError;
use crate::schema::{memberships, tenants, users};

/// Key of the transaction-level advisory lock that serialises every change that could remove
/// a system administrator ("UMS-ADMN" in ASCII).
pub(crate) const SYSTEM_ADMINS_LOCK: i64 = 0x554d_532d_4144_4d4e;

/// Takes the system administrators' lock until the transaction ends.
pub(crate) fn lock_system_admins(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(SYSTEM_ADMINS_LOCK)
        .execute(conn)
        .map(drop)
}

/// Locks the tenant row (`FOR UPDATE`), returning whether it exists.
pub(crate) fn lock_tenant(conn: &mut PgConnection, tenant: Uuid) -> QueryResult<bool> {
    tenants::table
        .find(tenant)
        .select(tenants::id)
        .for_update()
        .first::<Uuid>(conn)
        .optional()
        .map(|row| row.is_some())
}

/// Locks the user row `FOR KEY SHARE`, returning whether the user is active (`None` when
/// there is no such user). Until the transaction ends the user cannot be deleted, nor locked
/// `FOR UPDATE`, which every change of `is_active` does first.
pub(crate) fn share_user(conn: &mut PgConnection, user: Uuid) -> QueryResult<Option<bool>> {
    users::table
        .find(user)
        .select(users::is_active)
        .for_key_share()
        .first::<bool>(conn)
        .optional()
}

/// The tenants in which `user` has the role `admin`, by id.
fn admin_tenants(conn: &mut PgConnection, user: Uuid) -> QueryResult<Vec<Uuid>> {
    memberships::table
        .filter(memberships::user_id.eq(user))
        .filter(memberships::role.eq(TenantRole::Admin.as_str()))
        .order(memberships::tenant_id.asc())
        .select(memberships::tenant_id)
        .load(conn)
}

/// Locks the rows of the tenants `user` administers, in id order, returning their ids. Call
/// it before locking the user row, and [`recheck_admin_tenants`] after.
pub(crate) fn lock_admin_tenants(conn: &mut PgConnection, user: Uuid) -> QueryResult<Vec<Uuid>> {
    let ids = admin_tenants(conn, user)?;
    if !ids.is_empty() {
        tenants::table
            .filter(tenants::id.eq_any(&ids))
            .order(tenants::id.asc())
            .select(tenants::id)
            .for_update()
            .load::<Uuid>(conn)?;
    }
    Ok(ids)
}

/// The tenants `user` administers now that the user row is locked; [`TxError::Retry`] when
/// one of them is not among those [`lock_admin_tenants`] locked.
pub(crate) fn recheck_admin_tenants(
    conn: &mut PgConnection,
    user: Uuid,
    locked: &[Uuid],
) -> Result<Vec<Uuid>, TxError> {
    let now = admin_tenants(conn, user)?;
    if now.iter().all(|tenant| locked.contains(tenant)) {
        Ok(now)
    } else {
        Err(TxError::Retry)
    }
}

/// Refuses with `LastAdmin(System)` unless an active system administrator other than `user`
/// exists. Call it holding [`lock_system_admins`].
pub(crate) fn keep_a_system_admin(conn: &mut PgConnection, user: Uuid) -> Result<(), TxError> {
    let another: bool = select(exists(
        users::table
            .filter(users::role.eq(Role::Admin.as_str()))
            .filter(users::is_active.eq(true))
            .filter(users::id.ne(user)),
    ))
    .get_result(conn)?;
    if another {
        Ok(())
    } else {
        Err(StoreError::LastAdmin(LastAdmin::System).into())
    }
}

/// Refuses with `LastAdmin(Tenant(t))`, for the first such `t` of `tenants`, unless every one
/// of them has an active administrator other than `user`. Call it holding the tenant rows.
pub(crate) fn keep_tenant_admins(
    conn: &mut PgConnection,
    user: Uuid,
    tenants: &[Uuid],
) -> Result<(), TxError> {
    for &tenant in tenants {
        let another: bool = select(exists(
            memberships::table
                .inner_join(users::table)
                .filter(memberships::tenant_id.eq(tenant))
                .filter(memberships::role.eq(TenantRole::Admin.as_str()))
                .filter(users::is_active.eq(true))
                .filter(memberships::user_id.ne(user)),
        ))
        .get_result(conn)?;
        if !another {
            return Err(
                StoreError::LastAdmin(LastAdmin::Tenant(TenantId::from_uuid(tenant))).into(),
            );
        }
    }
    Ok(())
}
