//! Models and value objects. Every value object has a validating constructor, so an invalid
//! value cannot exist past the boundary where it was parsed.

mod audit;
mod email;
mod ids;
mod password;
mod session;
mod tenant;
mod user;
mod username;

pub use audit::{AuditAction, AuditActionError, AuditEvent, AuditTarget, Journal};
pub use email::{Email, EmailError};
pub use ids::{AuditEventId, SessionId, TenantId, UserId};
pub use password::{Password, PasswordError, PasswordHash, PasswordRules};
pub use session::{NewSession, RefreshRotation, Session, TokenHash};
pub use tenant::{
    Membership, Tenant, TenantRef, TenantRole, TenantRoleError, TenantSlug, TenantSlugError,
    TenantVersion,
};
pub use user::{
    Credentials, NewUser, PersonName, Preferences, ProfileChanges, Role, RoleError, User,
    UserVersion,
};
pub use username::{Username, UsernameError};
