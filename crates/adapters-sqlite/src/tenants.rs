//! `TenantStore` for [`SqliteStore`]: tenants, their memberships, and the guard that keeps
//! an active administrator in every tenant.
//!
//! A membership change confirms the roles its decision assumed ([`Assumed`]) inside its
//! `BEGIN IMMEDIATE` transaction: that holds the write lock from its start, so the roles it
//! reads cannot change before it commits.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::model::{
    Journal, Membership, Tenant, TenantId, TenantRef, TenantRole, TenantVersion, User, UserId,
};
use domain::ports::{
    Assumed, Member, PageRequest, Paged, StoreError, TenantAdmin, TenantChanges, TenantMembership,
    TenantStore,
};

use crate::audit::write_journal;
use crate::error::{TxError, db_error};
use crate::rows::{self, MembershipRow, TenantChangeset, TenantRow, UserRow, json_text, micros};
use crate::schema::{memberships, tenants, users};
use crate::users::{insert_user, user_exists};
use crate::{SqliteStore, admins, immediate, limit_offset, total};

/// The tenant with this id, read inside the current connection (or transaction).
fn load_tenant(conn: &mut SqliteConnection, id: &str) -> Result<Option<Tenant>, TxError> {
    let row = tenants::table
        .find(id)
        .select(TenantRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(Tenant::try_from).transpose()?)
}

/// The tenant with this id, which the current transaction has just written.
fn reload_tenant(conn: &mut SqliteConnection, id: &str) -> Result<Tenant, TxError> {
    load_tenant(conn, id)?.ok_or_else(|| {
        TxError::Store(StoreError::Unexpected(
            format!("tenant {id} vanished inside its own transaction").into(),
        ))
    })
}

fn tenant_exists(conn: &mut SqliteConnection, id: &str) -> Result<bool, TxError> {
    Ok(diesel::select(diesel::dsl::exists(tenants::table.find(id))).get_result(conn)?)
}

/// The membership of `user` in `tenant`, if any.
fn load_membership(
    conn: &mut SqliteConnection,
    tenant: &str,
    user: &str,
) -> Result<Option<MembershipRow>, TxError> {
    Ok(memberships::table
        .find((tenant, user))
        .select(MembershipRow::as_select())
        .first(conn)
        .optional()?)
}

/// Refuses with `Changed` unless the acting member `actor` names, if any, still holds that
/// role in `tenant`.
fn confirm_actor(
    conn: &mut SqliteConnection,
    tenant: &str,
    actor: Option<(UserId, TenantRole)>,
) -> Result<(), TxError> {
    let Some((actor, assumed)) = actor else {
        return Ok(());
    };
    let held = load_membership(conn, tenant, &actor.to_string())?;
    match held {
        Some(row) if rows::tenant_role(&row.role)? == assumed => Ok(()),
        _ => Err(StoreError::Changed.into()),
    }
}

/// The membership a change of `user` in `tenant` is about, if it is as assumed: `Changed`
/// when a role is assumed and the user no longer holds it (or is no member at all),
/// `NotFound` when nothing is assumed and the user is no member.
fn assumed_membership(
    conn: &mut SqliteConnection,
    tenant: &str,
    user: &str,
    assumed: Option<TenantRole>,
) -> Result<MembershipRow, TxError> {
    match (load_membership(conn, tenant, user)?, assumed) {
        (None, None) => Err(StoreError::NotFound.into()),
        (None, Some(_)) => Err(StoreError::Changed.into()),
        (Some(row), None) => Ok(row),
        (Some(row), Some(role)) => {
            if rows::tenant_role(&row.role)? == role {
                Ok(row)
            } else {
                Err(StoreError::Changed.into())
            }
        }
    }
}

/// Checks, in the order the port documents, that the tenant exists and that the actor and
/// the member still hold the roles `assumed`, returning the member's membership.
fn confirm_change(
    conn: &mut SqliteConnection,
    tenant: &str,
    user: &str,
    assumed: Assumed,
) -> Result<MembershipRow, TxError> {
    if !tenant_exists(conn, tenant)? {
        return Err(StoreError::NotFound.into());
    }
    confirm_actor(conn, tenant, assumed.actor)?;
    assumed_membership(conn, tenant, user, assumed.member)
}

/// Refuses with `LastAdmin(Tenant(_))` when `membership`'s holder is an active administrator
/// of its tenant and the change would leave the tenant without another.
fn keep_an_admin_without(
    conn: &mut SqliteConnection,
    membership: &MembershipRow,
) -> Result<(), TxError> {
    if !admins::is_tenant_admin(&membership.role) {
        return Ok(());
    }
    let active: bool = users::table
        .find(&membership.user_id)
        .select(users::is_active)
        .first(conn)?;
    if active {
        admins::keep_a_tenant_admin(conn, &membership.tenant_id, &membership.user_id)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl TenantStore for SqliteStore {
    #[tracing::instrument(name = "sqlite.tenants.create", level = "debug", skip_all, fields(tenant_id = %tenant.id))]
    async fn create(
        &self,
        tenant: Tenant,
        admin: Option<TenantAdmin>,
        journal: Journal,
    ) -> Result<Tenant, StoreError> {
        let row = TenantRow::try_from(&tenant)?;
        self.run(move |conn| {
            immediate(conn, |conn| {
                // The tenant first: a taken slug is reported before anything about the admin.
                diesel::insert_into(tenants::table)
                    .values(&row)
                    .execute(conn)?;
                let admin = match admin {
                    None => None,
                    Some(TenantAdmin::New(user)) => Some(insert_user(conn, &user)?.id),
                    Some(TenantAdmin::Existing(id)) => {
                        if !user_exists(conn, &id.to_string())? {
                            return Err(StoreError::NotFound.into());
                        }
                        Some(id)
                    }
                };
                if let Some(user_id) = admin {
                    let membership = Membership {
                        tenant_id: tenant.id,
                        user_id,
                        role: TenantRole::Admin,
                        created_at: tenant.created_at,
                    };
                    diesel::insert_into(memberships::table)
                        .values(MembershipRow::from(&membership))
                        .execute(conn)?;
                }
                write_journal(conn, &journal)?;
                reload_tenant(conn, &tenant.id.to_string())
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.tenants.find", level = "debug", skip_all)]
    async fn find(&self, tenant: &TenantRef) -> Result<Option<Tenant>, StoreError> {
        let tenant = tenant.clone();
        self.run(move |conn| {
            let query = tenants::table.select(TenantRow::as_select());
            let row = match &tenant {
                TenantRef::Id(id) => query.filter(tenants::id.eq(id.to_string())).first(conn),
                TenantRef::Slug(slug) => query.filter(tenants::slug.eq(slug.as_str())).first(conn),
            }
            .optional()
            .map_err(db_error)?;
            row.map(Tenant::try_from).transpose()
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.tenants.list", level = "debug", skip_all)]
    async fn list(
        &self,
        member: Option<UserId>,
        page: PageRequest,
    ) -> Result<Paged<Tenant>, StoreError> {
        let filtered = move || {
            let mut query = tenants::table.into_boxed();
            if let Some(member) = member {
                query = query.filter(
                    tenants::id.eq_any(
                        memberships::table
                            .filter(memberships::user_id.eq(member.to_string()))
                            .select(memberships::tenant_id),
                    ),
                );
            }
            query
        };
        let (limit, offset) = limit_offset(page);
        self.run(move |conn| {
            conn.transaction(|conn| {
                let rows: Vec<TenantRow> = filtered()
                    .select(TenantRow::as_select())
                    .order_by(tenants::created_at.asc())
                    .then_order_by(tenants::id.asc())
                    .limit(limit)
                    .offset(offset)
                    .load(conn)?;
                let count: i64 = filtered().count().get_result(conn)?;
                let items = rows
                    .into_iter()
                    .map(Tenant::try_from)
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

    #[tracing::instrument(name = "sqlite.tenants.update", level = "debug", skip_all, fields(tenant_id = %id))]
    async fn update(
        &self,
        id: TenantId,
        changes: TenantChanges,
        expected_version: Option<TenantVersion>,
        at: DateTime<Utc>,
        journal: Journal,
    ) -> Result<Tenant, StoreError> {
        let changeset = TenantChangeset {
            name: changes.name,
            slug: changes.slug.map(|s| s.as_str().to_owned()),
            description: changes.description,
            domain: changes.domain,
            settings: changes.settings.as_ref().map(json_text).transpose()?,
            is_active: changes.is_active,
        };
        self.run(move |conn| {
            immediate(conn, |conn| {
                let id = id.to_string();
                let current = load_tenant(conn, &id)?.ok_or(StoreError::NotFound)?;
                if expected_version.is_some_and(|expected| expected != current.version) {
                    return Err(StoreError::StaleVersion.into());
                }
                diesel::update(tenants::table.find(&id))
                    .set((
                        changeset,
                        tenants::version.eq(tenants::version + 1),
                        tenants::updated_at.eq(micros(at)),
                    ))
                    .execute(conn)?;
                write_journal(conn, &journal)?;
                reload_tenant(conn, &id)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.tenants.delete", level = "debug", skip_all, fields(tenant_id = %id))]
    async fn delete(&self, id: TenantId, journal: Journal) -> Result<(), StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                // Memberships go by their foreign key's ON DELETE CASCADE.
                let deleted = diesel::delete(tenants::table.find(id.to_string())).execute(conn)?;
                if deleted == 0 {
                    return Err(StoreError::NotFound.into());
                }
                write_journal(conn, &journal)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.tenants.role_of", level = "debug", skip_all, fields(tenant_id = %tenant, user_id = %user))]
    async fn role_of(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<TenantRole>, StoreError> {
        self.run(move |conn| {
            memberships::table
                .find((tenant.to_string(), user.to_string()))
                .select(memberships::role)
                .first::<String>(conn)
                .optional()
                .map_err(db_error)?
                .map(|role| rows::tenant_role(&role))
                .transpose()
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.tenants.shared_roles", level = "debug", skip_all, fields(viewer = %viewer, target = %target))]
    async fn shared_roles(
        &self,
        viewer: UserId,
        target: UserId,
    ) -> Result<Vec<TenantRole>, StoreError> {
        self.run(move |conn| {
            let targets = diesel::alias!(memberships as targets);
            let roles: Vec<String> = memberships::table
                .filter(memberships::user_id.eq(viewer.to_string()))
                .filter(
                    memberships::tenant_id.eq_any(
                        targets
                            .filter(targets.field(memberships::user_id).eq(target.to_string()))
                            .select(targets.field(memberships::tenant_id)),
                    ),
                )
                .select(memberships::role)
                .load(conn)
                .map_err(db_error)?;
            roles.iter().map(|role| rows::tenant_role(role)).collect()
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.tenants.members", level = "debug", skip_all, fields(tenant_id = %tenant))]
    async fn members(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> Result<Paged<Member>, StoreError> {
        let (limit, offset) = limit_offset(page);
        self.run(move |conn| {
            conn.transaction(|conn| {
                let tenant = tenant.to_string();
                let rows: Vec<(MembershipRow, UserRow)> = memberships::table
                    .inner_join(users::table)
                    .filter(memberships::tenant_id.eq(&tenant))
                    .order((memberships::created_at.asc(), memberships::user_id.asc()))
                    .limit(limit)
                    .offset(offset)
                    .select((MembershipRow::as_select(), UserRow::as_select()))
                    .load(conn)?;
                let count: i64 = memberships::table
                    .filter(memberships::tenant_id.eq(&tenant))
                    .count()
                    .get_result(conn)?;
                let items = rows
                    .into_iter()
                    .map(|(membership, user)| {
                        Ok(Member {
                            membership: Membership::try_from(membership)?,
                            user: User::try_from(user)?,
                        })
                    })
                    .collect::<Result<_, StoreError>>()?;
                Ok::<_, TxError>(Paged {
                    items,
                    total: total(count)?,
                })
            })
            .map_err(StoreError::from)
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.tenants.tenants_of", level = "debug", skip_all, fields(user_id = %user))]
    async fn tenants_of(&self, user: UserId) -> Result<Vec<TenantMembership>, StoreError> {
        self.run(move |conn| {
            let rows: Vec<(MembershipRow, TenantRow)> = memberships::table
                .inner_join(tenants::table)
                .filter(memberships::user_id.eq(user.to_string()))
                .order((memberships::created_at.asc(), memberships::tenant_id.asc()))
                .select((MembershipRow::as_select(), TenantRow::as_select()))
                .load(conn)
                .map_err(db_error)?;
            rows.into_iter()
                .map(|(membership, tenant)| {
                    Ok(TenantMembership {
                        membership: Membership::try_from(membership)?,
                        tenant: Tenant::try_from(tenant)?,
                    })
                })
                .collect()
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.tenants.add_member", level = "debug", skip_all, fields(tenant_id = %membership.tenant_id, user_id = %membership.user_id))]
    async fn add_member(
        &self,
        membership: Membership,
        assumed: Assumed,
        journal: Journal,
    ) -> Result<(), StoreError> {
        let row = MembershipRow::from(&membership);
        self.run(move |conn| {
            immediate(conn, |conn| {
                // Checked first: SQLite's foreign-key error does not say which key failed.
                if !tenant_exists(conn, &row.tenant_id)? || !user_exists(conn, &row.user_id)? {
                    return Err(StoreError::NotFound.into());
                }
                confirm_actor(conn, &row.tenant_id, assumed.actor)?;
                // The primary key refuses a second membership: `Duplicate(Membership)`.
                diesel::insert_into(memberships::table)
                    .values(&row)
                    .execute(conn)?;
                write_journal(conn, &journal)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.tenants.change_role", level = "debug", skip_all, fields(tenant_id = %tenant, user_id = %user))]
    async fn change_role(
        &self,
        tenant: TenantId,
        user: UserId,
        role: TenantRole,
        assumed: Assumed,
        journal: Journal,
    ) -> Result<Membership, StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                let (tenant, user) = (tenant.to_string(), user.to_string());
                let mut current = confirm_change(conn, &tenant, &user, assumed)?;
                if role != TenantRole::Admin {
                    keep_an_admin_without(conn, &current)?;
                }
                diesel::update(memberships::table.find((&tenant, &user)))
                    .set(memberships::role.eq(role.as_str()))
                    .execute(conn)?;
                write_journal(conn, &journal)?;
                role.as_str().clone_into(&mut current.role);
                Ok(Membership::try_from(current)?)
            })
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.tenants.remove_member", level = "debug", skip_all, fields(tenant_id = %tenant, user_id = %user))]
    async fn remove_member(
        &self,
        tenant: TenantId,
        user: UserId,
        assumed: Assumed,
        journal: Journal,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            immediate(conn, |conn| {
                let (tenant, user) = (tenant.to_string(), user.to_string());
                let current = confirm_change(conn, &tenant, &user, assumed)?;
                keep_an_admin_without(conn, &current)?;
                diesel::delete(memberships::table.find((&tenant, &user))).execute(conn)?;
                write_journal(conn, &journal)
            })
        })
        .await
    }
}
