//! Small sample values shared by unit tests outside `services::tests`.

use chrono::{TimeZone as _, Utc};
use uuid::Uuid;

use crate::model::{Email, PersonName, Preferences, Role, User, UserId, Username};

/// The id of [`sample_user`].
pub(crate) fn user_id() -> UserId {
    UserId::from_uuid(Uuid::from_u128(0x0100))
}

/// An active, unverified user.
pub(crate) fn sample_user() -> User {
    let at = Utc
        .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default();
    User {
        id: user_id(),
        email: Email::parse("sample@example.com").unwrap_or_else(|_| unreachable!()),
        username: Username::parse("sample").unwrap_or_else(|_| unreachable!()),
        first_name: PersonName::default(),
        last_name: PersonName::default(),
        role: Role::User,
        is_active: true,
        email_verified: false,
        preferences: Preferences::default(),
        created_at: at,
        updated_at: at,
        last_login_at: None,
        version: 1,
        password_changed_at: at,
    }
}
