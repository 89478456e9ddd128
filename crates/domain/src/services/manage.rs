//! What the administrative use cases (tenants, user administration, audit) share: one error
//! type, the mapping of store outcomes onto it, the record of refused requests, and the
//! validation of free-text fields.

use super::{Ports, Principal};
use crate::model::{AuditAction, AuditTarget, TenantId, TenantRole, UserId};
use crate::ports::{LastAdmin, StoreError, UniqueField};
use crate::{BoxError, ValidationErrors};

/// A conflict with what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The e-mail address is taken.
    EmailTaken,
    /// The username is taken.
    UsernameTaken,
    /// The tenant slug is taken.
    SlugTaken,
    /// The user is a member of the tenant already.
    AlreadyMember,
    /// The change would remove the last administrator.
    LastAdmin(LastAdmin),
    /// A role the decision rested on (the member's, or the caller's own) changed while it
    /// was being made, so nothing was written; reading again and retrying decides anew.
    Changed,
    /// Another service account has the name.
    ServiceAccountNameTaken,
}

/// Why an administrative use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// A field or parameter is invalid.
    #[error("invalid request: {0}")]
    Invalid(ValidationErrors),
    /// The caller may see the resource but not do this to it.
    #[error("not allowed")]
    Forbidden,
    /// No such resource, or one the caller may not see (the same answer for both).
    #[error("not found")]
    NotFound,
    /// The change conflicts with what is stored.
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    /// The caller's `If-Match` version is stale.
    #[error("the resource was changed by someone else")]
    PreconditionFailed,
    /// A dependency is down.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("the operation failed")]
    Unexpected(#[source] BoxError),
}

super::infrastructure_errors!(ManageError);

impl From<super::RegisterError> for ManageError {
    fn from(error: super::RegisterError) -> Self {
        use super::RegisterError as E;
        match error {
            E::Invalid(errors) => Self::Invalid(errors),
            E::EmailTaken => Self::Conflict(Conflict::EmailTaken),
            E::UsernameTaken => Self::Conflict(Conflict::UsernameTaken),
            E::Unavailable(source) => Self::Unavailable(source),
            E::Unexpected(source) => Self::Unexpected(source),
        }
    }
}

/// Maps the outcomes a store reports for a change onto the use case's error.
pub(crate) fn store_outcome(error: StoreError) -> ManageError {
    match error {
        StoreError::NotFound => ManageError::NotFound,
        StoreError::StaleVersion => ManageError::PreconditionFailed,
        StoreError::LastAdmin(which) => ManageError::Conflict(Conflict::LastAdmin(which)),
        StoreError::Changed => ManageError::Conflict(Conflict::Changed),
        StoreError::Duplicate(field) => ManageError::Conflict(match field {
            UniqueField::Email => Conflict::EmailTaken,
            UniqueField::Username => Conflict::UsernameTaken,
            UniqueField::Slug => Conflict::SlugTaken,
            UniqueField::Membership => Conflict::AlreadyMember,
            UniqueField::ServiceAccountName => Conflict::ServiceAccountNameTaken,
        }),
        other => other.into(),
    }
}

/// The caller's roles in the tenants `target` belongs to, for [`crate::policy::can_view_user`]:
/// with a token scoped to a tenant, only their role there, and only if `target` is a member
/// of it too.
pub(crate) async fn shared_roles(
    ports: &Ports,
    principal: &Principal,
    target: UserId,
) -> Result<Vec<TenantRole>, StoreError> {
    match principal.tenant {
        None => ports.tenants.shared_roles(principal.user.id, target).await,
        Some((scope, _)) => {
            let mine = ports.tenants.role_of(scope, principal.user.id).await?;
            let theirs = ports.tenants.role_of(scope, target).await?;
            Ok(mine.filter(|_| theirs.is_some()).into_iter().collect())
        }
    }
}

/// Records a refused administrative request (`access.denied`) and answers `Forbidden`.
pub(crate) async fn denied(
    ports: &Ports,
    principal: &Principal,
    operation: &'static str,
    target: AuditTarget,
    tenant: Option<TenantId>,
) -> ManageError {
    let mut event = ports
        .event(
            AuditAction::AccessDenied,
            Some(principal.user.id),
            target,
            &principal.client,
        )
        .with("operation", operation);
    if let Some(tenant) = tenant {
        event = event.in_tenant(tenant);
    }
    ports.record(event).await;
    ManageError::Forbidden
}

/// A free-text field: trimmed, at most `max` characters, no NUL (which PostgreSQL cannot
/// store), and not empty when `required`.
pub(crate) fn text(
    errors: &mut ValidationErrors,
    field: &str,
    raw: &str,
    max: usize,
    required: bool,
) -> Option<String> {
    let value = raw.trim();
    if required && value.is_empty() {
        errors.add(field, "must not be empty");
        None
    } else if value.chars().count() > max {
        errors.add(field, format!("must be at most {max} characters long"));
        None
    } else if value.contains('\0') {
        errors.add(field, "must not contain the NUL character");
        None
    } else {
        Some(value.to_owned())
    }
}
