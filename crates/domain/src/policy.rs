//! Authorization decisions, as pure functions. Every use case asks here; no handler or adapter
//! decides who may do what.

use crate::model::{Role, User, UserId};

/// Who is acting: the authenticated user as the store knows them now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// The acting user.
    pub id: UserId,
    /// Their current system role.
    pub role: Role,
    /// Whether their account is active.
    pub is_active: bool,
}

impl Actor {
    /// The actor for a user.
    #[must_use]
    pub fn of(user: &User) -> Self {
        Self {
            id: user.id,
            role: user.role,
            is_active: user.is_active,
        }
    }

    fn is_system_admin(&self) -> bool {
        self.is_active && self.role == Role::Admin
    }
}

/// Whether `actor` may read `target`'s account.
#[must_use]
pub fn can_read_user(actor: &Actor, target: UserId) -> bool {
    actor.is_active && (actor.id == target || actor.is_system_admin())
}

/// Whether `actor` may change `target`'s profile fields (names, username, preferences).
#[must_use]
pub fn can_update_profile(actor: &Actor, target: UserId) -> bool {
    actor.is_active && (actor.id == target || actor.is_system_admin())
}

/// Whether `actor` may change `target`'s password knowing the current one. Only the owner may:
/// an administrator resets passwords through the e-mailed reset flow instead.
#[must_use]
pub fn can_change_password(actor: &Actor, target: UserId) -> bool {
    actor.is_active && actor.id == target
}

/// Whether `actor` may end `target`'s sessions (logout, logout everywhere).
#[must_use]
pub fn can_end_sessions(actor: &Actor, target: UserId) -> bool {
    actor.is_active && (actor.id == target || actor.is_system_admin())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn id(n: u128) -> UserId {
        UserId::from_uuid(Uuid::from_u128(n))
    }

    /// Every combination of role, activity and self/other, against every rule.
    #[test]
    fn decisions_are_exhaustively_as_specified() {
        let me = id(1);
        let other = id(2);
        for role in [Role::Admin, Role::User] {
            for is_active in [true, false] {
                let actor = Actor {
                    id: me,
                    role,
                    is_active,
                };
                let admin = is_active && role == Role::Admin;
                for (target, is_self) in [(me, true), (other, false)] {
                    let case = format!("{role:?} active={is_active} self={is_self}");
                    assert_eq!(
                        can_read_user(&actor, target),
                        is_active && (is_self || admin),
                        "read {case}"
                    );
                    assert_eq!(
                        can_update_profile(&actor, target),
                        is_active && (is_self || admin),
                        "update {case}"
                    );
                    assert_eq!(
                        can_change_password(&actor, target),
                        is_active && is_self,
                        "password {case}"
                    );
                    assert_eq!(
                        can_end_sessions(&actor, target),
                        is_active && (is_self || admin),
                        "sessions {case}"
                    );
                }
            }
        }
    }
}
