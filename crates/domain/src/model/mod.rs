//! Models and value objects. Every value object has a validating constructor, so an invalid
//! value cannot exist past the boundary where it was parsed.

mod email;
mod ids;
mod password;
mod session;
mod user;
mod username;

pub use email::{Email, EmailError};
pub use ids::{SessionId, UserId};
pub use password::{Password, PasswordError, PasswordHash, PasswordRules};
pub use session::{NewSession, RefreshRotation, Session, TokenHash};
pub use user::{
    Credentials, NewUser, PersonName, Preferences, ProfileChanges, Role, RoleError, User,
    UserVersion,
};
pub use username::{Username, UsernameError};
