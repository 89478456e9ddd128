//! Reading the audit trail: system administrators see every event, a tenant's admins that
//! tenant's events, nobody else any. The trail is append-only: no use case changes or deletes
//! an event, except the retention purge.

use chrono::{DateTime, Utc};

use super::manage::{ManageError, denied};
use super::{Ports, Principal};
use crate::model::{AuditEvent, AuditTarget, TenantRef};
use crate::policy::{self, TenantAction};
use crate::ports::{AuditFilter, PageRequest, Paged};

/// The audit use cases.
#[derive(Debug, Clone)]
pub struct AuditService {
    ports: Ports,
}

impl AuditService {
    /// A service over `ports`.
    #[must_use]
    pub fn new(ports: Ports) -> Self {
        Self { ports }
    }

    /// One page of events matching `filter`, newest first. A caller who is not a system
    /// administrator must name a tenant they administer in `tenant` (an id or slug), and
    /// sees only its events; a token scoped to a tenant reads that tenant's events only
    /// (naming no tenant means its own).
    ///
    /// # Errors
    /// `Forbidden` for anyone else (an unknown tenant included, so the answer does not tell
    /// which tenants exist).
    pub async fn list(
        &self,
        principal: &Principal,
        tenant: Option<&TenantRef>,
        mut filter: AuditFilter,
        page: PageRequest,
    ) -> Result<Paged<AuditEvent>, ManageError> {
        let actor = principal.actor();
        // A token scoped to a tenant reads that tenant's events only.
        let scoped;
        let tenant = match (principal.tenant, tenant) {
            (None, tenant) => tenant,
            (Some((scope, _)), None) => {
                scoped = TenantRef::Id(scope);
                Some(&scoped)
            }
            (Some((scope, _)), Some(reference)) => {
                let named = self.ports.tenants.find(reference).await?;
                if named.is_none_or(|t| t.id != scope) {
                    return Err(denied(
                        &self.ports,
                        principal,
                        "audit.list",
                        AuditTarget::None,
                        Some(scope),
                    )
                    .await);
                }
                Some(reference)
            }
        };
        let found = match tenant {
            Some(reference) => self.ports.tenants.find(reference).await?,
            None => None,
        };
        if policy::can_read_all_audit(&actor) {
            if tenant.is_some() {
                let Some(found) = found else {
                    return Ok(Paged {
                        items: Vec::new(),
                        total: 0,
                    });
                };
                filter.tenant = Some(found.id);
            }
            return Ok(self.ports.audit.list(filter, page).await?);
        }
        let Some(found) = found else {
            return Err(denied(
                &self.ports,
                principal,
                "audit.list",
                AuditTarget::None,
                None,
            )
            .await);
        };
        let role = self
            .ports
            .tenants
            .role_of(found.id, principal.user.id)
            .await?;
        if !policy::can_in_tenant(&actor, role, TenantAction::ReadAudit) {
            return Err(denied(
                &self.ports,
                principal,
                "audit.list",
                AuditTarget::Tenant(found.id),
                Some(found.id),
            )
            .await);
        }
        filter.tenant = Some(found.id);
        Ok(self.ports.audit.list(filter, page).await?)
    }

    /// Deletes events older than `before`, `batch` at a time, returning how many it deleted:
    /// the retention job.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected` (what was deleted before the failure stays deleted).
    pub async fn purge_before(
        &self,
        before: DateTime<Utc>,
        batch: u32,
    ) -> Result<u64, ManageError> {
        if batch == 0 {
            return Ok(0);
        }
        let mut total = 0;
        loop {
            let deleted = self.ports.audit.purge_before(before, batch).await?;
            total += deleted;
            if deleted < u64::from(batch) {
                return Ok(total);
            }
        }
    }
}
