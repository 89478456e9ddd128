//! Tenant use cases: tenants, their members and roles, and the memberships of a user.
//!
//! Visibility comes first: a tenant the caller is not a member of (and is not a system
//! administrator), or another than the one their token is scoped to, is answered exactly as
//! one that does not exist. Only then does
//! [`policy::can_in_tenant`] decide, on the caller's live membership, whether they may do
//! what they ask; a refusal is a 403 and an `access.denied` event.

use super::manage::{ManageError, denied, shared_roles, store_outcome, text};
use super::{AuthService, ClientInfo, Ports, Principal, Registration};
use crate::ValidationErrors;
use crate::model::{
    AuditAction, AuditTarget, Journal, Membership, Preferences, Role, Tenant, TenantId, TenantRef,
    TenantRole, TenantSlug, UserId,
};
use crate::policy::{self, TenantAction};
use crate::ports::{
    Assumed, Login, Member, PageRequest, Paged, TenantAdmin, TenantChanges, TenantMembership,
};
use crate::settings::AuthSettings;

/// Longest tenant name.
pub const MAX_NAME: usize = 200;
/// Longest tenant description.
pub const MAX_DESCRIPTION: usize = 2000;
/// Longest tenant domain.
pub const MAX_DOMAIN: usize = 253;

/// Who becomes a new tenant's first admin, as received.
#[derive(Debug, Clone)]
pub enum AdminInput {
    /// A user to create.
    New(Registration),
    /// An existing user.
    Existing(UserId),
}

/// A new tenant, as received.
#[derive(Debug, Clone, Default)]
pub struct NewTenantInput {
    /// Display name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// Description.
    pub description: Option<String>,
    /// Domain.
    pub domain: Option<String>,
    /// Settings object.
    pub settings: Option<serde_json::Value>,
    /// First admin.
    pub admin: Option<AdminInput>,
}

/// A tenant update, as received; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct TenantUpdate {
    /// New name.
    pub name: Option<String>,
    /// New slug.
    pub slug: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New domain.
    pub domain: Option<String>,
    /// New settings object.
    pub settings: Option<serde_json::Value>,
    /// Activate or deactivate (system administrators only).
    pub is_active: Option<bool>,
}

/// Whom to add to a tenant.
#[derive(Debug, Clone)]
pub enum MemberRef {
    /// By id.
    Id(UserId),
    /// By e-mail address.
    Email(String),
}

/// The tenant use cases.
#[derive(Debug, Clone)]
pub struct TenantService {
    ports: Ports,
    auth: AuthService,
}

impl TenantService {
    /// A service over `ports`.
    #[must_use]
    pub fn new(ports: Ports, settings: AuthSettings) -> Self {
        let auth = AuthService::new(ports.clone(), settings);
        Self { ports, auth }
    }

    /// The tenant `reference` names if the caller may see it, with the caller's live role.
    async fn visible(
        &self,
        principal: &Principal,
        reference: &TenantRef,
    ) -> Result<(Tenant, Option<TenantRole>), ManageError> {
        let tenant = self
            .ports
            .tenants
            .find(reference)
            .await?
            .ok_or(ManageError::NotFound)?;
        // A token scoped to a tenant reaches that tenant only.
        if principal
            .tenant
            .is_some_and(|(scope, _)| scope != tenant.id)
        {
            return Err(ManageError::NotFound);
        }
        let role = self
            .ports
            .tenants
            .role_of(tenant.id, principal.user.id)
            .await?;
        if role.is_none() && !principal.actor().is_system_admin() {
            return Err(ManageError::NotFound);
        }
        Ok((tenant, role))
    }

    /// The visible tenant, if the caller may do `action` there; a refusal is recorded.
    async fn authorized(
        &self,
        principal: &Principal,
        reference: &TenantRef,
        action: impl FnOnce(&Tenant) -> Result<TenantAction, ManageError>,
        operation: &'static str,
    ) -> Result<(Tenant, Option<TenantRole>), ManageError> {
        let (tenant, role) = self.visible(principal, reference).await?;
        let action = action(&tenant)?;
        if policy::can_in_tenant(&principal.actor(), role, action) {
            Ok((tenant, role))
        } else {
            Err(denied(
                &self.ports,
                principal,
                operation,
                AuditTarget::Tenant(tenant.id),
                Some(tenant.id),
            )
            .await)
        }
    }

    /// The visible tenant, when the caller may learn whether `member` belongs to it: it is
    /// themselves, or they may list the members. Otherwise a viewer could tell members from
    /// non-members by a 403 against a 404.
    async fn member_visible(
        &self,
        principal: &Principal,
        reference: &TenantRef,
        member: UserId,
        operation: &'static str,
    ) -> Result<Tenant, ManageError> {
        let (tenant, role) = self.visible(principal, reference).await?;
        if member != principal.user.id
            && !policy::can_in_tenant(&principal.actor(), role, TenantAction::ListMembers)
        {
            return Err(denied(
                &self.ports,
                principal,
                operation,
                AuditTarget::Tenant(tenant.id),
                Some(tenant.id),
            )
            .await);
        }
        Ok(tenant)
    }

    fn event(
        &self,
        principal: &Principal,
        action: AuditAction,
        target: AuditTarget,
        tenant: TenantId,
    ) -> crate::model::AuditEvent {
        self.ports
            .event(action, Some(principal.user.id), target, &principal.client)
            .in_tenant(tenant)
    }

    /// Creates a tenant (system administrators only), with its first admin if asked: a new
    /// user created with it, or an existing one, in the same transaction.
    ///
    /// # Errors
    /// [`ManageError`]: `Invalid` naming each bad field (`admin.<field>` for the new admin),
    /// `Conflict` for a taken slug, e-mail or username, `Invalid` (`admin.user_id`) for an
    /// unknown existing admin.
    pub async fn create(
        &self,
        principal: &Principal,
        input: NewTenantInput,
    ) -> Result<Tenant, ManageError> {
        if !policy::can_in_tenant(&principal.actor(), None, TenantAction::Create) {
            return Err(denied(
                &self.ports,
                principal,
                "tenant.create",
                AuditTarget::None,
                None,
            )
            .await);
        }
        self.insert(Some(principal.user.id), &principal.client, input)
            .await
    }

    /// Creates a tenant for the operator at the command line (`ums create-tenant`), who has
    /// the service's own configuration and so every right; recorded without an actor.
    ///
    /// # Errors
    /// As [`create`](Self::create), but never `Forbidden`.
    pub async fn create_as_operator(
        &self,
        input: NewTenantInput,
        client: &ClientInfo,
    ) -> Result<Tenant, ManageError> {
        self.insert(None, client, input).await
    }

    async fn insert(
        &self,
        actor: Option<UserId>,
        client: &ClientInfo,
        input: NewTenantInput,
    ) -> Result<Tenant, ManageError> {
        let mut errors = ValidationErrors::new();
        let name = text(&mut errors, "name", &input.name, MAX_NAME, true);
        let slug = errors.check("slug", TenantSlug::parse(&input.slug));
        let description = text(
            &mut errors,
            "description",
            input.description.as_deref().unwrap_or_default(),
            MAX_DESCRIPTION,
            false,
        );
        let domain = text(
            &mut errors,
            "domain",
            input.domain.as_deref().unwrap_or_default(),
            MAX_DOMAIN,
            false,
        );
        let settings = match input.settings {
            Some(value) => errors.check("settings", Preferences::parse(value)),
            None => Some(Preferences::default()),
        };
        let admin = match input.admin {
            None => None,
            Some(AdminInput::Existing(id)) => Some(TenantAdmin::Existing(id)),
            Some(AdminInput::New(registration)) => {
                match self.auth.new_user(registration, Role::User, false).await {
                    Ok(user) => Some(TenantAdmin::New(user)),
                    Err(super::RegisterError::Invalid(admin_errors)) => {
                        for (field, messages) in admin_errors.fields() {
                            for message in messages {
                                errors.add(&format!("admin.{field}"), message.clone());
                            }
                        }
                        None
                    }
                    Err(other) => return Err(other.into()),
                }
            }
        };
        let (Some(name), Some(slug), Some(description), Some(domain), Some(settings)) =
            (name, slug, description, domain, settings)
        else {
            return Err(ManageError::Invalid(errors));
        };
        errors.into_result().map_err(ManageError::Invalid)?;

        let now = self.ports.clock.now();
        let tenant = Tenant {
            id: TenantId::from_uuid(self.ports.ids.new_id()),
            name,
            slug,
            description,
            domain,
            settings: settings.as_map().clone(),
            is_active: true,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let mut journal = Journal::of(
            self.ports
                .event(
                    AuditAction::TenantCreated,
                    actor,
                    AuditTarget::Tenant(tenant.id),
                    client,
                )
                .in_tenant(tenant.id)
                .with("slug", tenant.slug.as_str()),
        );
        let admin_id = match &admin {
            Some(TenantAdmin::New(user)) => {
                journal.events.push(
                    self.ports
                        .event(
                            AuditAction::UserCreated,
                            actor,
                            AuditTarget::User(user.id),
                            client,
                        )
                        .with("role", user.role.as_str()),
                );
                if !user.email_verified {
                    journal = self
                        .auth
                        .with_verification(journal, user.id, &user.email, &user.username)
                        .map_err(|error| ManageError::Unexpected(Box::new(error)))?;
                }
                Some(user.id)
            }
            Some(TenantAdmin::Existing(id)) => Some(*id),
            None => None,
        };
        if let Some(admin_id) = admin_id {
            journal.events.push(
                self.ports
                    .event(
                        AuditAction::TenantMemberAdded,
                        actor,
                        AuditTarget::User(admin_id),
                        client,
                    )
                    .in_tenant(tenant.id)
                    .with("role", TenantRole::Admin.as_str()),
            );
        }
        let existing = matches!(admin, Some(TenantAdmin::Existing(_)));
        match self.ports.tenants.create(tenant, admin, journal).await {
            Ok(tenant) => Ok(tenant),
            Err(crate::ports::StoreError::NotFound) if existing => Err(ManageError::Invalid(
                ValidationErrors::single("admin.user_id", "no user has this id"),
            )),
            Err(error) => Err(store_outcome(error)),
        }
    }

    /// One page of tenants: all of them for a system administrator, the caller's otherwise.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    pub async fn list(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Paged<Tenant>, ManageError> {
        if let Some((scope, _)) = principal.tenant {
            // A scoped token lists its tenant alone (if it can still see it).
            let tenant = match self.visible(principal, &TenantRef::Id(scope)).await {
                Ok((tenant, _)) => Some(tenant),
                Err(ManageError::NotFound) => None,
                Err(other) => return Err(other),
            };
            let total = u64::from(tenant.is_some());
            let items = tenant.into_iter().filter(|_| page.offset() == 0).collect();
            return Ok(Paged { items, total });
        }
        let member = (!principal.actor().is_system_admin()).then_some(principal.user.id);
        Ok(self.ports.tenants.list(member, page).await?)
    }

    /// The tenant, for any of its members (and system administrators).
    ///
    /// # Errors
    /// `NotFound` for a tenant the caller cannot see.
    pub async fn get(
        &self,
        principal: &Principal,
        reference: &TenantRef,
    ) -> Result<Tenant, ManageError> {
        let (tenant, _) = self
            .authorized(
                principal,
                reference,
                |_| Ok(TenantAction::Read),
                "tenant.read",
            )
            .await?;
        Ok(tenant)
    }

    /// Changes a tenant's fields (its admins; `is_active` system administrators only). With
    /// `if_match`, only if the stored version is still that one.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Invalid`, `Conflict` (slug), `PreconditionFailed`.
    pub async fn update(
        &self,
        principal: &Principal,
        reference: &TenantRef,
        update: TenantUpdate,
        if_match: Option<crate::model::TenantVersion>,
    ) -> Result<Tenant, ManageError> {
        let (tenant, _) = self
            .authorized(
                principal,
                reference,
                |_| Ok(TenantAction::Update),
                "tenant.update",
            )
            .await?;
        if update.is_active.is_some() && !principal.actor().is_system_admin() {
            return Err(denied(
                &self.ports,
                principal,
                "tenant.update.is_active",
                AuditTarget::Tenant(tenant.id),
                Some(tenant.id),
            )
            .await);
        }
        let mut errors = ValidationErrors::new();
        let changes = TenantChanges {
            name: update
                .name
                .and_then(|v| text(&mut errors, "name", &v, MAX_NAME, true)),
            slug: update
                .slug
                .and_then(|v| errors.check("slug", TenantSlug::parse(&v))),
            description: update
                .description
                .and_then(|v| text(&mut errors, "description", &v, MAX_DESCRIPTION, false)),
            domain: update
                .domain
                .and_then(|v| text(&mut errors, "domain", &v, MAX_DOMAIN, false)),
            settings: update.settings.and_then(|v| {
                errors
                    .check("settings", Preferences::parse(v))
                    .map(|p| p.as_map().clone())
            }),
            is_active: update.is_active,
        };
        errors.into_result().map_err(ManageError::Invalid)?;
        if changes == TenantChanges::default() {
            if if_match.is_some_and(|version| version != tenant.version) {
                return Err(ManageError::PreconditionFailed);
            }
            return Ok(tenant);
        }
        let event = self
            .event(
                principal,
                AuditAction::TenantUpdated,
                AuditTarget::Tenant(tenant.id),
                tenant.id,
            )
            .with("fields", changes.field_names());
        let now = self.ports.clock.now();
        self.ports
            .tenants
            .update(tenant.id, changes, if_match, now, Journal::of(event))
            .await
            .map_err(store_outcome)
    }

    /// Deletes a tenant and its memberships (system administrators only); users stay.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`.
    pub async fn delete(
        &self,
        principal: &Principal,
        reference: &TenantRef,
    ) -> Result<(), ManageError> {
        let (tenant, _) = self
            .authorized(
                principal,
                reference,
                |_| Ok(TenantAction::Delete),
                "tenant.delete",
            )
            .await?;
        let event = self
            .event(
                principal,
                AuditAction::TenantDeleted,
                AuditTarget::Tenant(tenant.id),
                tenant.id,
            )
            .with("slug", tenant.slug.as_str());
        self.ports
            .tenants
            .delete(tenant.id, Journal::of(event))
            .await
            .map_err(store_outcome)
    }

    /// One page of the tenant's members (members and above).
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`.
    pub async fn members(
        &self,
        principal: &Principal,
        reference: &TenantRef,
        page: PageRequest,
    ) -> Result<Paged<Member>, ManageError> {
        let (tenant, _) = self
            .authorized(
                principal,
                reference,
                |_| Ok(TenantAction::ListMembers),
                "tenant.members.list",
            )
            .await?;
        Ok(self.ports.tenants.members(tenant.id, page).await?)
    }

    /// Adds a user, by id or e-mail address, with `role` (admins; moderators for members and
    /// viewers). The store adds them only if the caller still holds the role this was decided
    /// on.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Invalid` (`user_id` / `email`: no such user), `Conflict`
    /// (a member already; `Changed`: the caller's role changed meanwhile).
    pub async fn add_member(
        &self,
        principal: &Principal,
        reference: &TenantRef,
        member: MemberRef,
        role: TenantRole,
    ) -> Result<Membership, ManageError> {
        let (tenant, mine) = self
            .authorized(
                principal,
                reference,
                |_| Ok(TenantAction::AddMember(role)),
                "tenant.members.add",
            )
            .await?;
        let (user, field) = match member {
            MemberRef::Id(id) => (self.ports.users.find_by_id(id).await?, "user_id"),
            MemberRef::Email(raw) => {
                let user = match crate::model::Email::parse(&raw) {
                    Ok(email) => self
                        .ports
                        .users
                        .find_credentials(&Login::Email(email))
                        .await?
                        .map(|credentials| credentials.user),
                    Err(_) => None,
                };
                (user, "email")
            }
        };
        let Some(user) = user else {
            return Err(ManageError::Invalid(ValidationErrors::single(
                field,
                "no user has this identity",
            )));
        };
        let membership = Membership {
            tenant_id: tenant.id,
            user_id: user.id,
            role,
            created_at: self.ports.clock.now(),
        };
        let event = self
            .event(
                principal,
                AuditAction::TenantMemberAdded,
                AuditTarget::User(user.id),
                tenant.id,
            )
            .with("role", role.as_str());
        let assumed = Assumed {
            member: None,
            actor: acting(principal, mine),
        };
        self.ports
            .tenants
            .add_member(membership, assumed, Journal::of(event))
            .await
            .map_err(store_outcome)?;
        Ok(membership)
    }

    /// Changes a member's role. The store changes it only if the member and the caller still
    /// hold the roles this was decided on.
    ///
    /// # Errors
    /// `NotFound` (tenant, or user not a member), `Forbidden`, `Conflict` (last admin;
    /// `Changed`: the member's or the caller's role changed meanwhile).
    pub async fn change_role(
        &self,
        principal: &Principal,
        reference: &TenantRef,
        member: UserId,
        role: TenantRole,
    ) -> Result<Membership, ManageError> {
        let tenant = self
            .member_visible(principal, reference, member, "tenant.members.change_role")
            .await?;
        let from = self
            .ports
            .tenants
            .role_of(tenant.id, member)
            .await?
            .ok_or(ManageError::NotFound)?;
        let (tenant, mine) = self
            .authorized(
                principal,
                &TenantRef::Id(tenant.id),
                |_| {
                    Ok(TenantAction::ChangeRole {
                        member,
                        from,
                        to: role,
                    })
                },
                "tenant.members.change_role",
            )
            .await?;
        let event = self
            .event(
                principal,
                AuditAction::TenantMemberRoleChanged,
                AuditTarget::User(member),
                tenant.id,
            )
            .with("from", from.as_str())
            .with("to", role.as_str());
        let assumed = Assumed {
            member: Some(from),
            actor: acting(principal, mine),
        };
        self.ports
            .tenants
            .change_role(tenant.id, member, role, assumed, Journal::of(event))
            .await
            .map_err(store_outcome)
    }

    /// Removes a member (or the caller leaves). The store removes them only if the member and
    /// the caller still hold the roles this was decided on.
    ///
    /// # Errors
    /// `NotFound` (tenant, or user not a member), `Forbidden`, `Conflict` (last admin;
    /// `Changed`: the member's or the caller's role changed meanwhile).
    pub async fn remove_member(
        &self,
        principal: &Principal,
        reference: &TenantRef,
        member: UserId,
    ) -> Result<(), ManageError> {
        let tenant = self
            .member_visible(principal, reference, member, "tenant.members.remove")
            .await?;
        let role = self
            .ports
            .tenants
            .role_of(tenant.id, member)
            .await?
            .ok_or(ManageError::NotFound)?;
        let (tenant, mine) = self
            .authorized(
                principal,
                &TenantRef::Id(tenant.id),
                |_| Ok(TenantAction::RemoveMember { member, role }),
                "tenant.members.remove",
            )
            .await?;
        let event = self
            .event(
                principal,
                AuditAction::TenantMemberRemoved,
                AuditTarget::User(member),
                tenant.id,
            )
            .with("role", role.as_str());
        let assumed = Assumed {
            member: Some(role),
            actor: acting(principal, mine),
        };
        self.ports
            .tenants
            .remove_member(tenant.id, member, assumed, Journal::of(event))
            .await
            .map_err(store_outcome)
    }

    /// The caller's tenants with their roles.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected`.
    pub async fn mine(&self, principal: &Principal) -> Result<Vec<TenantMembership>, ManageError> {
        Ok(self.ports.tenants.tenants_of(principal.user.id).await?)
    }

    /// `user`'s tenants, visible as the user is (see [`policy::can_view_user`]).
    ///
    /// # Errors
    /// `NotFound` for a user the caller cannot see.
    pub async fn of_user(
        &self,
        principal: &Principal,
        user: UserId,
    ) -> Result<Vec<TenantMembership>, ManageError> {
        let shared = shared_roles(&self.ports, principal, user).await?;
        if !policy::can_view_user(&principal.actor(), user, &shared) {
            return Err(ManageError::NotFound);
        }
        if self.ports.users.find_by_id(user).await?.is_none() {
            return Err(ManageError::NotFound);
        }
        let mut tenants = self.ports.tenants.tenants_of(user).await?;
        if let Some((scope, _)) = principal.tenant {
            // A scoped token sees the memberships of its tenant only.
            tenants.retain(|entry| entry.tenant.id == scope);
        }
        if user == principal.user.id || principal.actor().is_system_admin() {
            return Ok(tenants);
        }
        // Only the tenants whose member list the caller may read themselves: another of the
        // user's memberships (a tenant the caller is not in, or only views) is not shown.
        let actor = principal.actor();
        let visible: Vec<TenantId> = self
            .ports
            .tenants
            .tenants_of(principal.user.id)
            .await?
            .into_iter()
            .filter(|entry| {
                policy::can_in_tenant(
                    &actor,
                    Some(entry.membership.role),
                    TenantAction::ListMembers,
                )
            })
            .map(|entry| entry.tenant.id)
            .collect();
        Ok(tenants
            .into_iter()
            .filter(|entry| visible.contains(&entry.tenant.id))
            .collect())
    }
}

/// The caller's membership a decision in a tenant rested on, for the store to confirm:
/// `mine`, their live role there, unless they are a system administrator, for whom
/// [`policy::can_in_tenant`] does not look at the membership at all.
fn acting(principal: &Principal, mine: Option<TenantRole>) -> Option<(UserId, TenantRole)> {
    if principal.actor().is_system_admin() {
        None
    } else {
        mine.map(|role| (principal.user.id, role))
    }
}
