//! Models and value objects. Every value object has a validating constructor, so an invalid
//! value cannot exist past the boundary where it was parsed.

mod audit;
mod email;
mod ids;
mod mail;
mod password;
mod service_account;
mod session;
mod tenant;
mod user;
mod username;

pub use audit::{AuditAction, AuditActionError, AuditEvent, AuditTarget, Journal};
pub use email::{Email, EmailError};
pub use ids::{AuditEventId, ServiceAccountId, SessionId, TenantId, UserId};
pub use mail::{ActionPurpose, ActionToken, MailKind, OutgoingMail, SealedMail};
pub use password::{Password, PasswordError, PasswordHash, PasswordRules};
pub use service_account::{
    CLIENT_ID_PREFIX, ClientId, ClientIdError, ServiceAccount, ServiceAccountCredentials,
    ServiceAccountName, ServiceAccountNameError, digests_match,
};
pub use session::{NewSession, RefreshRotation, Session, StoredRefreshToken, TokenHash};
pub use tenant::{
    Membership, Tenant, TenantRef, TenantRole, TenantRoleError, TenantSlug, TenantSlugError,
    TenantVersion,
};
pub use user::{
    Credentials, NewUser, PersonName, Preferences, ProfileChanges, Role, RoleError, User,
    UserVersion,
};
pub use username::{Username, UsernameError};
