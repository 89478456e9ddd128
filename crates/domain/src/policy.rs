//! Authorization decisions, as pure functions. Every use case asks here; no handler or adapter
//! decides who may do what.

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{Role, TenantRole, User, UserId};

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

    /// Whether the actor is an active system administrator.
    #[must_use]
    pub fn is_system_admin(&self) -> bool {
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

/// Whether `actor` may delete `target`'s account knowing its password (self-service
/// deletion). Only the owner may: an administrator deletes accounts through user
/// administration instead.
#[must_use]
pub fn can_delete_own_account(actor: &Actor, target: UserId) -> bool {
    actor.is_active && actor.id == target
}

/// Whether `actor` may end `target`'s sessions (logout, logout everywhere).
#[must_use]
pub fn can_end_sessions(actor: &Actor, target: UserId) -> bool {
    actor.is_active && (actor.id == target || actor.is_system_admin())
}

/// What an actor may do to a tenant or its members. The actor's tenant role is their *live*
/// membership (read from the store for this request), `None` when they are not a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantAction {
    /// Create a tenant.
    Create,
    /// Read the tenant.
    Read,
    /// Change the tenant's fields.
    Update,
    /// Delete the tenant.
    Delete,
    /// List its members.
    ListMembers,
    /// Add a member with this role.
    AddMember(TenantRole),
    /// Change `member`'s role from `from` to `to`.
    ChangeRole {
        /// The member whose role changes (the actor themselves, or another).
        member: UserId,
        /// The member's role now.
        from: TenantRole,
        /// The role asked for.
        to: TenantRole,
    },
    /// Remove `member`, who has `role` (the actor themselves: leaving).
    RemoveMember {
        /// The member to remove.
        member: UserId,
        /// The member's role.
        role: TenantRole,
    },
    /// Read the tenant's audit events.
    ReadAudit,
}

/// Whether a tenant role may manage (add, re-role, remove) members holding `role`: an admin
/// manages everyone, a moderator members and viewers only, nobody else anyone.
const fn manages(manager: TenantRole, role: TenantRole) -> bool {
    match manager {
        TenantRole::Admin => true,
        TenantRole::Moderator => matches!(role, TenantRole::Member | TenantRole::Viewer),
        TenantRole::Member | TenantRole::Viewer => false,
    }
}

/// Whether `actor`, whose live role in the tenant is `membership`, may do `action` there.
///
/// A system administrator may do everything; a tenant admin manages the tenant and all its
/// members; a moderator manages members and viewers; a member reads the tenant and its member
/// list; a viewer reads the tenant. Nobody grants or assigns a role above their own, and
/// nobody raises their own role; any member may lower their own role, and leave. Whether a
/// change is to oneself is decided here from the member's id, never taken from the caller. Creating and deleting tenants is for
/// system administrators only. The last-admin rule is not decided here but by
/// [`keeps_an_admin`], because it depends on the other members.
#[must_use]
pub fn can_in_tenant(actor: &Actor, membership: Option<TenantRole>, action: TenantAction) -> bool {
    if !actor.is_active {
        return false;
    }
    if actor.is_system_admin() {
        return true;
    }
    let Some(mine) = membership else {
        return false;
    };
    match action {
        TenantAction::Create | TenantAction::Delete => false,
        TenantAction::Read => true,
        TenantAction::ListMembers => mine.at_least(TenantRole::Member),
        TenantAction::Update | TenantAction::ReadAudit => mine == TenantRole::Admin,
        TenantAction::AddMember(role) => manages(mine, role) && mine.at_least(role),
        TenantAction::ChangeRole { member, from, to } => {
            if member == actor.id {
                // One's own role: only ever downwards (or unchanged).
                from == mine && to.rank() <= from.rank()
            } else {
                manages(mine, from) && manages(mine, to) && mine.at_least(to)
            }
        }
        TenantAction::RemoveMember { member, role } => {
            if member == actor.id {
                role == mine
            } else {
                manages(mine, role)
            }
        }
    }
}

/// The last-admin rule, for tenants and for the system alike: a change that would leave
/// `admins_after` administrators (of the tenant, or active system administrators) is allowed
/// only if at least one remains. Stores apply it inside the transaction of the change, where
/// the count cannot change underneath.
#[must_use]
pub const fn keeps_an_admin(admins_after: u64) -> bool {
    admins_after >= 1
}

/// What an actor may do with user accounts beyond their own profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAdminAction {
    /// List and search every user.
    List,
    /// Create a user (with any system role).
    Create,
    /// Delete a user.
    Delete,
    /// Clear a login lockout.
    Unlock,
    /// Change a user's e-mail address, system role or activity.
    ChangeAccountFields,
}

/// Whether `actor` may do `action` to the account `target`. Only an active system
/// administrator administers accounts; a change of one's own system role is never a raise
/// (an administrator has the highest role already, and nobody else may change roles).
#[must_use]
pub fn can_administer_user(actor: &Actor, _target: UserId, action: UserAdminAction) -> bool {
    match action {
        UserAdminAction::List
        | UserAdminAction::Create
        | UserAdminAction::Delete
        | UserAdminAction::Unlock
        | UserAdminAction::ChangeAccountFields => actor.is_system_admin(),
    }
}

/// Whether `actor` may set `target`'s system role to `role`. Nobody raises their own role;
/// only a system administrator sets roles at all.
#[must_use]
pub fn can_set_system_role(actor: &Actor, target: UserId, role: Role) -> bool {
    actor.is_system_admin() && !(actor.id == target && role_rank(role) > role_rank(actor.role))
}

const fn role_rank(role: Role) -> u8 {
    match role {
        Role::Admin => 1,
        Role::User => 0,
    }
}

/// Whether `actor` may see `target`'s account: themselves, a system administrator, or an
/// admin or moderator of a tenant `target` belongs to. `shared_roles` are the actor's roles in
/// the tenants the target belongs to. Everyone else is answered as if the user did not exist.
#[must_use]
pub fn can_view_user(actor: &Actor, target: UserId, shared_roles: &[TenantRole]) -> bool {
    can_read_user(actor, target)
        || (actor.is_active
            && shared_roles
                .iter()
                .any(|role| role.at_least(TenantRole::Moderator)))
}

/// Whether `actor` may read audit events: all of them as a system administrator, or those of
/// a tenant they administer (see [`TenantAction::ReadAudit`]).
#[must_use]
pub fn can_read_all_audit(actor: &Actor) -> bool {
    actor.is_system_admin()
}

/// Who asks whether an access token is active (RFC 7662 token introspection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Introspector {
    /// A user, authenticated by a bearer access token.
    User(Actor),
    /// A service account, authenticated by its client id and secret. Introspecting is what
    /// service accounts exist for.
    ServiceAccount,
}

/// Whether `caller` may introspect access tokens, learning whose they are and their roles:
/// a service account, or an active system administrator. Nobody else, since an answer
/// tells who holds a token and with which rights.
#[must_use]
pub fn can_introspect(caller: &Introspector) -> bool {
    match caller {
        Introspector::User(actor) => actor.is_system_admin(),
        Introspector::ServiceAccount => true,
    }
}

/// An operation, as the rule for a password past its maximum age tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordAgeOperation {
    /// Reading one's own account (`GET /users/me`).
    ReadOwnAccount,
    /// Changing one's own password, knowing the current one (`POST /users/me/password`).
    ChangeOwnPassword,
    /// Ending one's own current session, or all of them (logout, logout everywhere).
    EndOwnSessions,
    /// Anything else.
    Other,
}

/// Whether `user` must change their password before doing anything else: `max_age` is set
/// (`None`: passwords do not age) and the password was set more than `max_age` before `now`.
/// Decided afresh for every request from the user as stored now, so a change of the password
/// lifts the restriction at once, for the tokens already issued too.
#[must_use]
pub fn password_change_required(
    user: &User,
    now: DateTime<Utc>,
    max_age: Option<TimeDelta>,
) -> bool {
    max_age.is_some_and(|max_age| now - user.password_changed_at > max_age)
}

/// Whether `operation` is allowed to a caller who must change their password (see
/// [`password_change_required`]): reading their own account, changing the password, and
/// ending their own sessions, which only takes rights away. Nothing else, whatever their
/// roles.
#[must_use]
pub const fn allowed_while_password_change_required(operation: PasswordAgeOperation) -> bool {
    match operation {
        PasswordAgeOperation::ReadOwnAccount
        | PasswordAgeOperation::ChangeOwnPassword
        | PasswordAgeOperation::EndOwnSessions => true,
        PasswordAgeOperation::Other => false,
    }
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
                    assert_eq!(
                        can_delete_own_account(&actor, target),
                        is_active && is_self,
                        "self-deletion {case}"
                    );
                }
            }
        }
    }
}

/// The tenant rules: the whole matrix as a table, then properties over generated actors,
/// roles and actions.
#[cfg(test)]
mod tenant_tests {
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;

    const ME: UserId = UserId::from_uuid(Uuid::from_u128(1));
    const OTHER: UserId = UserId::from_uuid(Uuid::from_u128(2));

    fn actor(role: Role, is_active: bool) -> Actor {
        Actor {
            id: ME,
            role,
            is_active,
        }
    }

    use TenantRole::{Admin as A, Member as M, Moderator as Mo, Viewer as V};

    /// Every action with every role of the acting member, written out by hand from the
    /// contract: `(action, [admin, moderator, member, viewer, non-member])`.
    #[test]
    fn the_tenant_matrix_is_as_specified() {
        let change = |from, to| TenantAction::ChangeRole {
            member: OTHER,
            from,
            to,
        };
        let remove = |role| TenantAction::RemoveMember {
            member: OTHER,
            role,
        };
        let table: Vec<(TenantAction, [bool; 5])> = vec![
            (TenantAction::Create, [false, false, false, false, false]),
            (TenantAction::Read, [true, true, true, true, false]),
            (TenantAction::Update, [true, false, false, false, false]),
            (TenantAction::Delete, [false, false, false, false, false]),
            (TenantAction::ListMembers, [true, true, true, false, false]),
            (TenantAction::ReadAudit, [true, false, false, false, false]),
            (
                TenantAction::AddMember(A),
                [true, false, false, false, false],
            ),
            (
                TenantAction::AddMember(Mo),
                [true, false, false, false, false],
            ),
            (
                TenantAction::AddMember(M),
                [true, true, false, false, false],
            ),
            (
                TenantAction::AddMember(V),
                [true, true, false, false, false],
            ),
            (change(M, V), [true, true, false, false, false]),
            (change(V, M), [true, true, false, false, false]),
            (change(M, Mo), [true, false, false, false, false]),
            (change(Mo, M), [true, false, false, false, false]),
            (change(A, M), [true, false, false, false, false]),
            (change(A, Mo), [true, false, false, false, false]),
            (change(M, A), [true, false, false, false, false]),
            (change(V, A), [true, false, false, false, false]),
            (change(Mo, A), [true, false, false, false, false]),
            (change(Mo, Mo), [true, false, false, false, false]),
            (remove(A), [true, false, false, false, false]),
            (remove(Mo), [true, false, false, false, false]),
            (remove(M), [true, true, false, false, false]),
            (remove(V), [true, true, false, false, false]),
        ];
        let mine = [Some(A), Some(Mo), Some(M), Some(V), None];
        for (action, expected) in table {
            for (membership, want) in mine.into_iter().zip(expected) {
                assert_eq!(
                    can_in_tenant(&actor(Role::User, true), membership, action),
                    want,
                    "{action:?} as {membership:?}"
                );
                // A system administrator may do everything, member or not.
                assert!(can_in_tenant(&actor(Role::Admin, true), membership, action));
            }
        }
    }

    #[test]
    fn members_may_leave_and_only_lower_themselves() {
        let user = actor(Role::User, true);
        for role in TenantRole::ALL {
            let leave = TenantAction::RemoveMember { member: ME, role };
            assert!(can_in_tenant(&user, Some(role), leave), "{role} leaves");
            let peer = TenantAction::RemoveMember {
                member: OTHER,
                role,
            };
            assert_eq!(can_in_tenant(&user, Some(role), peer), role == A, "{role}");
        }
        let own = |from, to| TenantAction::ChangeRole {
            member: ME,
            from,
            to,
        };
        assert!(can_in_tenant(&user, Some(A), own(A, M)));
        assert!(can_in_tenant(&user, Some(Mo), own(Mo, V)));
        assert!(can_in_tenant(&user, Some(M), own(M, V)));
        assert!(can_in_tenant(&user, Some(Mo), own(Mo, Mo)));
        assert!(!can_in_tenant(&user, Some(Mo), own(Mo, A)));
        assert!(!can_in_tenant(&user, Some(V), own(V, M)));
        assert!(
            !can_in_tenant(&user, Some(Mo), own(A, M)),
            "not the role held"
        );
        let other_mod = TenantAction::ChangeRole {
            member: OTHER,
            from: Mo,
            to: M,
        };
        assert!(!can_in_tenant(&user, Some(Mo), other_mod));
    }

    #[test]
    fn the_last_admin_stays() {
        assert!(!keeps_an_admin(0));
        assert!(keeps_an_admin(1));
    }

    #[test]
    fn users_are_visible_to_themselves_admins_and_their_tenant_managers() {
        let user = actor(Role::User, true);
        assert!(can_view_user(&user, ME, &[]));
        assert!(!can_view_user(&user, OTHER, &[]));
        assert!(can_view_user(&user, OTHER, &[V, Mo]));
        assert!(can_view_user(&user, OTHER, &[A]));
        assert!(!can_view_user(&user, OTHER, &[M, V]));
        assert!(!can_view_user(&actor(Role::User, false), OTHER, &[A]));
        assert!(can_view_user(&actor(Role::Admin, true), OTHER, &[]));
    }

    #[test]
    fn only_active_system_admins_administer_accounts() {
        use UserAdminAction::*;
        for action in [List, Create, Delete, Unlock, ChangeAccountFields] {
            assert!(can_administer_user(
                &actor(Role::Admin, true),
                OTHER,
                action
            ));
            assert!(!can_administer_user(
                &actor(Role::Admin, false),
                OTHER,
                action
            ));
            assert!(!can_administer_user(&actor(Role::User, true), ME, action));
        }
        assert!(can_set_system_role(
            &actor(Role::Admin, true),
            OTHER,
            Role::Admin
        ));
        assert!(can_set_system_role(
            &actor(Role::Admin, true),
            ME,
            Role::User
        ));
        assert!(!can_set_system_role(
            &actor(Role::User, true),
            ME,
            Role::Admin
        ));
        assert!(!can_set_system_role(
            &actor(Role::User, true),
            OTHER,
            Role::User
        ));
        assert!(can_read_all_audit(&actor(Role::Admin, true)));
        assert!(!can_read_all_audit(&actor(Role::User, true)));
    }

    #[test]
    fn service_accounts_and_active_system_admins_introspect() {
        assert!(can_introspect(&Introspector::ServiceAccount));
        for role in [Role::Admin, Role::User] {
            for is_active in [true, false] {
                assert_eq!(
                    can_introspect(&Introspector::User(actor(role, is_active))),
                    role == Role::Admin && is_active,
                    "{role:?} active={is_active}"
                );
            }
        }
    }

    fn any_role() -> impl Strategy<Value = TenantRole> {
        prop::sample::select(TenantRole::ALL.to_vec())
    }

    fn any_action() -> impl Strategy<Value = TenantAction> {
        prop_oneof![
            Just(TenantAction::Create),
            Just(TenantAction::Read),
            Just(TenantAction::Update),
            Just(TenantAction::Delete),
            Just(TenantAction::ListMembers),
            Just(TenantAction::ReadAudit),
            any_role().prop_map(TenantAction::AddMember),
            (any_member(), any_role(), any_role())
                .prop_map(|(member, from, to)| TenantAction::ChangeRole { member, from, to }),
            (any_member(), any_role())
                .prop_map(|(member, role)| TenantAction::RemoveMember { member, role }),
        ]
    }

    fn any_member() -> impl Strategy<Value = UserId> {
        prop::sample::select(vec![ME, OTHER])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// An inactive account can do nothing; an active system admin everything.
        #[test]
        fn activity_and_system_role_decide_first(
            membership in proptest::option::of(any_role()),
            action in any_action(),
        ) {
            prop_assert!(!can_in_tenant(&actor(Role::Admin, false), membership, action));
            prop_assert!(!can_in_tenant(&actor(Role::User, false), membership, action));
            prop_assert!(can_in_tenant(&actor(Role::Admin, true), membership, action));
        }

        /// Outside a tenant an ordinary user can do nothing in it.
        #[test]
        fn non_members_can_do_nothing(action in any_action()) {
            prop_assert!(!can_in_tenant(&actor(Role::User, true), None, action));
        }

        /// Nobody grants or assigns a role above their own, and nobody raises their own.
        #[test]
        fn no_role_above_ones_own(mine in any_role(), action in any_action()) {
            let user = actor(Role::User, true);
            if can_in_tenant(&user, Some(mine), action) {
                match action {
                    TenantAction::AddMember(role) => prop_assert!(mine.at_least(role)),
                    TenantAction::ChangeRole { member, from, to } => {
                        prop_assert!(mine.at_least(to));
                        if member == ME {
                            prop_assert!(to.rank() <= from.rank());
                            prop_assert_eq!(from, mine);
                        }
                    }
                    _ => {}
                }
            }
        }

        /// A moderator never touches an admin or another moderator, and neither do members or
        /// viewers (except leaving themselves).
        #[test]
        fn moderators_manage_members_and_viewers_only(
            mine in any_role(),
            target in any_role(),
            to in any_role(),
        ) {
            let user = actor(Role::User, true);
            let touches = [
                (TenantAction::RemoveMember { member: OTHER, role: target }, target),
                (TenantAction::ChangeRole { member: OTHER, from: target, to }, target.max_rank(to)),
                (TenantAction::AddMember(target), target),
            ];
            for (action, highest) in touches {
                let allowed = can_in_tenant(&user, Some(mine), action);
                if mine != TenantRole::Admin && highest.at_least(TenantRole::Moderator) {
                    prop_assert!(!allowed, "{mine} on {target}: {action:?}");
                }
                if !mine.at_least(TenantRole::Moderator) {
                    prop_assert!(!allowed, "{mine} on {target}: {action:?}");
                }
            }
        }

        /// A more powerful tenant role may do at least what a weaker one may, self-service
        /// role changes aside (those depend on the role the actor holds).
        #[test]
        fn stronger_roles_may_do_more(
            weak in any_role(),
            strong in any_role(),
            action in any_action(),
        ) {
            let actor = actor(Role::User, true);
            let own_role_dependent = matches!(
                action,
                TenantAction::ChangeRole { member: ME, .. }
                    | TenantAction::RemoveMember { member: ME, .. }
            );
            if strong.at_least(weak) && !own_role_dependent
                && can_in_tenant(&actor, Some(weak), action)
            {
                prop_assert!(can_in_tenant(&actor, Some(strong), action));
            }
        }
    }
}

/// The password-age rule: its boundary, its switch, and the operations it leaves open.
#[cfg(test)]
mod password_age_tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn user_whose_password_was_set(at: DateTime<Utc>) -> User {
        User {
            password_changed_at: at,
            ..crate::services::tests_support::sample_user()
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn a_change_is_required_only_past_the_maximum_age() {
        let max_age = Some(TimeDelta::days(90));
        let cases = [
            (TimeDelta::zero(), false),
            (TimeDelta::days(89), false),
            (TimeDelta::days(90), false),
            (TimeDelta::days(90) + TimeDelta::microseconds(1), true),
            (TimeDelta::days(365), true),
            // Set in the future (a clock that went back): not overdue.
            (-TimeDelta::days(1), false),
        ];
        for (age, required) in cases {
            let user = user_whose_password_was_set(now() - age);
            assert_eq!(
                password_change_required(&user, now(), max_age),
                required,
                "a password {age} old"
            );
        }
    }

    #[test]
    fn without_a_maximum_age_no_change_is_ever_required() {
        let ancient = user_whose_password_was_set(DateTime::<Utc>::MIN_UTC);
        assert!(!password_change_required(&ancient, now(), None));
        assert!(password_change_required(
            &ancient,
            now(),
            Some(TimeDelta::days(1))
        ));
    }

    #[test]
    fn only_the_own_account_the_password_and_ending_sessions_stay_open() {
        let table = [
            (PasswordAgeOperation::ReadOwnAccount, true),
            (PasswordAgeOperation::ChangeOwnPassword, true),
            (PasswordAgeOperation::EndOwnSessions, true),
            (PasswordAgeOperation::Other, false),
        ];
        for (operation, allowed) in table {
            assert_eq!(
                allowed_while_password_change_required(operation),
                allowed,
                "{operation:?}"
            );
        }
    }

    proptest! {
        /// Whatever the maximum age, a password set at `now` needs no change, and one set
        /// longer ago than the maximum age does; a longer maximum age never requires more.
        #[test]
        fn the_rule_is_monotonic(
            days in 1_i64..=3650,
            extra in 0_i64..=3650,
            age_secs in 0_i64..=400_000_000,
        ) {
            let fresh = user_whose_password_was_set(now());
            prop_assert!(!password_change_required(&fresh, now(), Some(TimeDelta::days(days))));
            let old = user_whose_password_was_set(now() - TimeDelta::seconds(age_secs));
            let shorter = password_change_required(&old, now(), Some(TimeDelta::days(days)));
            let longer =
                password_change_required(&old, now(), Some(TimeDelta::days(days + extra)));
            prop_assert!(!longer || shorter, "a longer maximum age required more");
            prop_assert_eq!(shorter, TimeDelta::seconds(age_secs) > TimeDelta::days(days));
        }
    }
}
