//! The last-administrator guards of users and tenants.
//!
//! Each counts the administrators who would remain and refuses with `LastAdmin` when none
//! would. They are called inside the `BEGIN IMMEDIATE` transaction of the change they guard:
//! that transaction holds the write lock from its start, so no concurrent change can remove
//! another administrator between the count and the write.

use diesel::prelude::*;
use domain::model::{Role, TenantRole};
use domain::ports::{LastAdmin, StoreError};

use crate::error::TxError;
use crate::rows;
use crate::schema::{memberships, users};

/// The stored name of the tenant role whose holders the tenant guards count.
const TENANT_ADMIN: &str = TenantRole::Admin.as_str();

/// Refuses with `LastAdmin(System)` unless an active system administrator other than `user`
/// exists. Call it when `user` is one now and the change would make them no longer one.
pub(crate) fn keep_a_system_admin(conn: &mut SqliteConnection, user: &str) -> Result<(), TxError> {
    let others: i64 = users::table
        .filter(users::role.eq(Role::Admin.as_str()))
        .filter(users::is_active.eq(true))
        .filter(users::id.ne(user))
        .count()
        .get_result(conn)?;
    if others == 0 {
        return Err(StoreError::LastAdmin(LastAdmin::System).into());
    }
    Ok(())
}

/// Refuses with `LastAdmin(Tenant(tenant))` unless an active administrator of `tenant` other
/// than `user` exists. Call it when `user` is one now and the change would make them no
/// longer one.
pub(crate) fn keep_a_tenant_admin(
    conn: &mut SqliteConnection,
    tenant: &str,
    user: &str,
) -> Result<(), TxError> {
    let others: i64 = memberships::table
        .inner_join(users::table)
        .filter(memberships::tenant_id.eq(tenant))
        .filter(memberships::role.eq(TENANT_ADMIN))
        .filter(memberships::user_id.ne(user))
        .filter(users::is_active.eq(true))
        .count()
        .get_result(conn)?;
    if others == 0 {
        let tenant = rows::tenant_id("memberships.tenant_id", tenant)?;
        return Err(StoreError::LastAdmin(LastAdmin::Tenant(tenant)).into());
    }
    Ok(())
}

/// Refuses with `LastAdmin(Tenant(t))` for the first tenant `t` (by id) of which `user` is
/// an administrator and no other active one exists. Call it when `user` is active now and the
/// change ends that (deactivation, deletion).
pub(crate) fn keep_the_admins_of_every_tenant_of(
    conn: &mut SqliteConnection,
    user: &str,
) -> Result<(), TxError> {
    let administered: Vec<String> = memberships::table
        .filter(memberships::user_id.eq(user))
        .filter(memberships::role.eq(TENANT_ADMIN))
        .order(memberships::tenant_id.asc())
        .select(memberships::tenant_id)
        .load(conn)?;
    for tenant in administered {
        keep_a_tenant_admin(conn, &tenant, user)?;
    }
    Ok(())
}

/// Whether the stored membership role `role` is the tenant administrator's.
pub(crate) fn is_tenant_admin(role: &str) -> bool {
    role == TENANT_ADMIN
}
