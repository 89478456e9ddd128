//! `TenantStore` for [`PostgresStore`]: tenants and their memberships.
//!
//! Every membership change locks the tenant row first, then the member's user row, as
//! [`guards`] describes, so that no two changes together remove a tenant's last active
//! administrator. Holding the tenant row, it confirms the roles its decision assumed
//! ([`Assumed`]): every other change of the tenant's memberships waits for that lock, so
//! the roles it reads then cannot change before it commits.

use chrono::{DateTime, Utc};
use diesel::dsl::{exists, select};
use diesel::pg::Pg;
use diesel::prelude::*;
use domain::model::{
    Journal, Membership, Tenant, TenantId, TenantRef, TenantRole, TenantVersion, UserId,
};
use domain::ports::{
    Assumed, Member, PageRequest, Paged, StoreError, TenantAdmin, TenantChanges, TenantMembership,
    TenantStore,
};
use uuid::Uuid;

use crate::audit::write_journal;
use crate::error::{TxError, db_error};
use crate::guards;
use crate::rows::{MembershipRow, TenantChangeset, TenantRow, UserRow};
use crate::schema::{memberships, tenants, users};
use crate::users::insert_user;
use crate::{PostgresStore, limit_offset, snapshot, total, transaction};

/// All tenants, or `member`'s only, unordered.
fn filtered(member: Option<UserId>) -> tenants::BoxedQuery<'static, Pg> {
    let query = tenants::table.into_boxed();
    match member {
        Some(user) => query.filter(
            tenants::id.eq_any(
                memberships::table
                    .filter(memberships::user_id.eq(*user.as_uuid()))
                    .select(memberships::tenant_id),
            ),
        ),
        None => query,
    }
}

/// The membership of `user` in `tenant`, if any, locked `FOR UPDATE`.
fn lock_membership(
    conn: &mut PgConnection,
    tenant: Uuid,
    user: Uuid,
) -> Result<Option<Membership>, TxError> {
    let row = memberships::table
        .find((tenant, user))
        .select(MembershipRow::as_select())
        .for_update()
        .first(conn)
        .optional()?;
    Ok(row.map(Membership::try_from).transpose()?)
}

/// `user`'s role in `tenant`, if they are a member.
fn role_in(
    conn: &mut PgConnection,
    tenant: Uuid,
    user: Uuid,
) -> Result<Option<TenantRole>, TxError> {
    let row = memberships::table
        .find((tenant, user))
        .select(MembershipRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row
        .map(|row| Membership::try_from(row).map(|m| m.role))
        .transpose()?)
}

/// Refuses with `Changed` unless the acting member `actor` names, if any, still holds that
/// role in `tenant`. Call it holding the tenant row: every change of the tenant's
/// memberships takes it first, so the role read cannot change before this commits. (A plain
/// read: the actor's account may still be deleted meanwhile, which only orders that deletion
/// after this change; locking the row would deadlock with it, which locks the user row
/// first.)
fn confirm_actor(
    conn: &mut PgConnection,
    tenant: Uuid,
    actor: Option<(UserId, TenantRole)>,
) -> Result<(), TxError> {
    match actor {
        Some((actor, assumed)) if role_in(conn, tenant, *actor.as_uuid())? != Some(assumed) => {
            Err(StoreError::Changed.into())
        }
        _ => Ok(()),
    }
}

/// Locks the tenant row, confirms the actor's role, then locks the member's user row (the
/// order of [`guards`]) and their membership, and returns it with whether the member is
/// active. In the port's order: `NotFound` when the tenant does not exist; `Changed` when
/// the actor's or the member's role is not the one `assumed` (no membership at all included);
/// `NotFound` when nothing is assumed about the member and they are not one.
fn lock_member(
    conn: &mut PgConnection,
    tenant: Uuid,
    user: Uuid,
    assumed: Assumed,
) -> Result<(Membership, bool), TxError> {
    if !guards::lock_tenant(conn, tenant)? {
        return Err(StoreError::NotFound.into());
    }
    confirm_actor(conn, tenant, assumed.actor)?;
    let found = match guards::share_user(conn, user)? {
        Some(active) => lock_membership(conn, tenant, user)?.map(|m| (m, active)),
        None => None,
    };
    match (found, assumed.member) {
        (None, None) => Err(StoreError::NotFound.into()),
        (None, Some(_)) => Err(StoreError::Changed.into()),
        (Some((membership, _)), Some(role)) if membership.role != role => {
            Err(StoreError::Changed.into())
        }
        (Some(found), _) => Ok(found),
    }
}

/// Whether the tenant exists.
fn tenant_exists(conn: &mut PgConnection, tenant: Uuid) -> QueryResult<bool> {
    select(exists(tenants::table.find(tenant))).get_result(conn)
}

#[async_trait::async_trait]
impl TenantStore for PostgresStore {
    #[tracing::instrument(name = "postgres.tenants.create", level = "debug", skip_all, fields(tenant_id = %tenant.id))]
    async fn create(
        &self,
        tenant: Tenant,
        admin: Option<TenantAdmin>,
        journal: Journal,
    ) -> Result<Tenant, StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                let row = diesel::insert_into(tenants::table)
                    .values(TenantRow::from(&tenant))
                    .returning(TenantRow::as_returning())
                    .get_result(conn)?;
                let created = Tenant::try_from(row)?;
                if let Some(admin) = &admin {
                    // The new tenant row is invisible to others until this commits, so there
                    // is nothing to lock but the admin's user row.
                    let user = match admin {
                        TenantAdmin::New(user) => *insert_user(conn, user)?.id.as_uuid(),
                        TenantAdmin::Existing(user) => {
                            let user = *user.as_uuid();
                            guards::share_user(conn, user)?.ok_or(StoreError::NotFound)?;
                            user
                        }
                    };
                    diesel::insert_into(memberships::table)
                        .values(MembershipRow::from(&Membership {
                            tenant_id: created.id,
                            user_id: UserId::from_uuid(user),
                            role: TenantRole::Admin,
                            created_at: created.created_at,
                        }))
                        .execute(conn)?;
                }
                write_journal(conn, &journal)?;
                Ok(created)
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.tenants.find", level = "debug", skip_all)]
    async fn find(&self, tenant: &TenantRef) -> Result<Option<Tenant>, StoreError> {
        let tenant = tenant.clone();
        self.run(move |conn| {
            let select = TenantRow::as_select();
            match &tenant {
                TenantRef::Id(id) => tenants::table
                    .find(*id.as_uuid())
                    .select(select)
                    .first(conn),
                TenantRef::Slug(slug) => tenants::table
                    .filter(tenants::slug.eq(slug.as_str()))
                    .select(select)
                    .first(conn),
            }
            .optional()
            .map_err(db_error)?
            .map(Tenant::try_from)
            .transpose()
        })
        .await
    }

    #[tracing::instrument(name = "postgres.tenants.list", level = "debug", skip_all)]
    async fn list(
        &self,
        member: Option<UserId>,
        page: PageRequest,
    ) -> Result<Paged<Tenant>, StoreError> {
        let (limit, offset) = limit_offset(page);
        self.run(move |conn| {
            snapshot(conn, |conn| {
                let count: i64 = filtered(member).count().get_result(conn)?;
                let rows: Vec<TenantRow> = filtered(member)
                    .order((tenants::created_at.asc(), tenants::id.asc()))
                    .limit(limit)
                    .offset(offset)
                    .select(TenantRow::as_select())
                    .load(conn)?;
                let items = rows
                    .into_iter()
                    .map(Tenant::try_from)
                    .collect::<Result<_, _>>()?;
                Ok(Paged {
                    items,
                    total: total(count),
                })
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.tenants.update", level = "debug", skip_all, fields(tenant_id = %id))]
    async fn update(
        &self,
        id: TenantId,
        changes: TenantChanges,
        expected_version: Option<TenantVersion>,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<Tenant, StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                let id = *id.as_uuid();
                let set = (
                    TenantChangeset {
                        name: changes.name,
                        slug: changes.slug.map(|slug| slug.as_str().to_owned()),
                        description: changes.description,
                        domain: changes.domain,
                        settings: changes.settings.map(serde_json::Value::Object),
                        is_active: changes.is_active,
                    },
                    tenants::version.eq(tenants::version + 1),
                    tenants::updated_at.eq(at),
                );
                // One statement: the version check and the write cannot be separated.
                let target = tenants::table.find(id);
                let updated = match expected_version {
                    Some(version) => diesel::update(target.filter(tenants::version.eq(version)))
                        .set(set)
                        .returning(TenantRow::as_returning())
                        .get_result(conn),
                    None => diesel::update(target)
                        .set(set)
                        .returning(TenantRow::as_returning())
                        .get_result(conn),
                }
                .optional()?;
                let Some(row) = updated else {
                    // Nothing was written; only the reason remains to be found.
                    return Err(if expected_version.is_some() && tenant_exists(conn, id)? {
                        StoreError::StaleVersion
                    } else {
                        StoreError::NotFound
                    }
                    .into());
                };
                let tenant = Tenant::try_from(row)?;
                write_journal(conn, &journal)?;
                Ok(tenant)
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.tenants.delete", level = "debug", skip_all, fields(tenant_id = %id))]
    async fn delete(&self, id: TenantId, journal: Journal) -> Result<(), StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                // Memberships go by cascade; users, and sessions scoped to it, stay.
                let deleted = diesel::delete(tenants::table.find(*id.as_uuid())).execute(conn)?;
                if deleted == 0 {
                    return Err(StoreError::NotFound.into());
                }
                write_journal(conn, &journal)
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.tenants.role_of", level = "debug", skip_all, fields(tenant_id = %tenant, user_id = %user))]
    async fn role_of(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<TenantRole>, StoreError> {
        self.run(move |conn| {
            memberships::table
                .find((*tenant.as_uuid(), *user.as_uuid()))
                .select(MembershipRow::as_select())
                .first(conn)
                .optional()
                .map_err(db_error)?
                .map(|row| Membership::try_from(row).map(|m| m.role))
                .transpose()
        })
        .await
    }

    #[tracing::instrument(name = "postgres.tenants.shared_roles", level = "debug", skip_all, fields(viewer = %viewer, target = %target))]
    async fn shared_roles(
        &self,
        viewer: UserId,
        target: UserId,
    ) -> Result<Vec<TenantRole>, StoreError> {
        self.run(move |conn| {
            // The viewer's memberships joined to the target's in the same tenants.
            let theirs = diesel::alias!(memberships as theirs);
            let rows: Vec<MembershipRow> = memberships::table
                .inner_join(
                    theirs.on(theirs
                        .field(memberships::tenant_id)
                        .eq(memberships::tenant_id)),
                )
                .filter(memberships::user_id.eq(*viewer.as_uuid()))
                .filter(theirs.field(memberships::user_id).eq(*target.as_uuid()))
                .order(memberships::tenant_id.asc())
                .select(MembershipRow::as_select())
                .load(conn)
                .map_err(db_error)?;
            rows.into_iter()
                .map(|row| Membership::try_from(row).map(|m| m.role))
                .collect()
        })
        .await
    }

    #[tracing::instrument(name = "postgres.tenants.members", level = "debug", skip_all, fields(tenant_id = %tenant))]
    async fn members(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Paged<Member>, StoreError> {
        let (limit, offset) = limit_offset(page);
        let tenant = *tenant.as_uuid();
        self.run(move |conn| {
            snapshot(conn, |conn| {
                let count: i64 = memberships::table
                    .filter(memberships::tenant_id.eq(tenant))
                    .count()
                    .get_result(conn)?;
                let rows: Vec<(MembershipRow, UserRow)> = memberships::table
                    .inner_join(users::table)
                    .filter(memberships::tenant_id.eq(tenant))
                    .order((memberships::created_at.asc(), memberships::user_id.asc()))
                    .limit(limit)
                    .offset(offset)
                    .select((MembershipRow::as_select(), UserRow::as_select()))
                    .load(conn)?;
                let items = rows
                    .into_iter()
                    .map(|(membership, user)| {
                        Ok(Member {
                            membership: membership.try_into()?,
                            user: user.try_into()?,
                        })
                    })
                    .collect::<Result<_, StoreError>>()?;
                Ok(Paged {
                    items,
                    total: total(count),
                })
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.tenants.tenants_of", level = "debug", skip_all, fields(user_id = %user))]
    async fn tenants_of(&self, user: UserId) -> Result<Vec<TenantMembership>, StoreError> {
        self.run(move |conn| {
            let rows: Vec<(MembershipRow, TenantRow)> = memberships::table
                .inner_join(tenants::table)
                .filter(memberships::user_id.eq(*user.as_uuid()))
                .order((memberships::created_at.asc(), memberships::tenant_id.asc()))
                .select((MembershipRow::as_select(), TenantRow::as_select()))
                .load(conn)
                .map_err(db_error)?;
            rows.into_iter()
                .map(|(membership, tenant)| {
                    Ok(TenantMembership {
                        membership: membership.try_into()?,
                        tenant: tenant.try_into()?,
                    })
                })
                .collect()
        })
        .await
    }

    #[tracing::instrument(name = "postgres.tenants.add_member", level = "debug", skip_all, fields(tenant_id = %membership.tenant_id, user_id = %membership.user_id))]
    async fn add_member(
        &self,
        membership: Membership,
        assumed: Assumed,
        journal: Journal,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                let tenant = *membership.tenant_id.as_uuid();
                if !guards::lock_tenant(conn, tenant)? {
                    return Err(StoreError::NotFound.into());
                }
                guards::share_user(conn, *membership.user_id.as_uuid())?
                    .ok_or(StoreError::NotFound)?;
                confirm_actor(conn, tenant, assumed.actor)?;
                // A member already: `memberships_pkey`, so `Duplicate(Membership)`.
                diesel::insert_into(memberships::table)
                    .values(MembershipRow::from(&membership))
                    .execute(conn)?;
                write_journal(conn, &journal)
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.tenants.change_role", level = "debug", skip_all, fields(tenant_id = %tenant, user_id = %user))]
    async fn change_role(
        &self,
        tenant: TenantId,
        user: UserId,
        role: TenantRole,
        assumed: Assumed,
        journal: Journal,
    ) -> Result<Membership, StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                let (tenant, user) = (*tenant.as_uuid(), *user.as_uuid());
                let (current, active) = lock_member(conn, tenant, user, assumed)?;
                if current.role == TenantRole::Admin && role != TenantRole::Admin && active {
                    guards::keep_tenant_admins(conn, user, &[tenant])?;
                }
                let row = diesel::update(memberships::table.find((tenant, user)))
                    .set(memberships::role.eq(role.as_str()))
                    .returning(MembershipRow::as_returning())
                    .get_result(conn)?;
                let membership = Membership::try_from(row)?;
                write_journal(conn, &journal)?;
                Ok(membership)
            })
        })
        .await
    }

    #[tracing::instrument(name = "postgres.tenants.remove_member", level = "debug", skip_all, fields(tenant_id = %tenant, user_id = %user))]
    async fn remove_member(
        &self,
        tenant: TenantId,
        user: UserId,
        assumed: Assumed,
        journal: Journal,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            transaction(conn, |conn| {
                let (tenant, user) = (*tenant.as_uuid(), *user.as_uuid());
                let (current, active) = lock_member(conn, tenant, user, assumed)?;
                if current.role == TenantRole::Admin && active {
                    guards::keep_tenant_admins(conn, user, &[tenant])?;
                }
                diesel::delete(memberships::table.find((tenant, user))).execute(conn)?;
                write_journal(conn, &journal)
            })
        })
        .await
    }
}
