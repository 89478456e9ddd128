//! Response bodies shared by several resources.

use chrono::{DateTime, Utc};
use domain::model::User;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A user account. Never carries a password hash or token.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    /// Identifier (UUID v7).
    pub id: Uuid,
    /// E-mail address, lower-cased.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Username.
    #[schema(example = "ada")]
    pub username: String,
    /// Given name (may be empty).
    pub first_name: String,
    /// Family name (may be empty).
    pub last_name: String,
    /// System role.
    #[schema(example = "user", pattern = "^(admin|user)$")]
    pub role: String,
    /// Whether the account may log in.
    pub is_active: bool,
    /// Whether the e-mail address has been verified.
    pub email_verified: bool,
    /// Free-form preferences (a JSON object).
    #[schema(value_type = Object)]
    pub preferences: serde_json::Value,
    /// Creation time (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
    /// Last change (RFC 3339, UTC).
    pub updated_at: DateTime<Utc>,
    /// Last login, if any.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            id: *user.id.as_uuid(),
            email: user.email.to_string(),
            username: user.username.to_string(),
            first_name: user.first_name.as_str().to_owned(),
            last_name: user.last_name.as_str().to_owned(),
            role: user.role.to_string(),
            is_active: user.is_active,
            email_verified: user.email_verified,
            preferences: user.preferences.into_value(),
            created_at: user.created_at,
            updated_at: user.updated_at,
            last_login_at: user.last_login_at,
        }
    }
}
