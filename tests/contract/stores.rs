//! Contract checks for `UserStore` and `SessionStore`, and the
//! [`store_contract_tests!`](crate::store_contract_tests) macro that runs every store check
//! of this suite (this module's and those of [`users`](super::users),
//! [`tenants`](super::tenants), [`audit`](super::audit) and [`atomicity`](super::atomicity))
//! against an adapter.
//!
//! # How to use
//!
//! Each check is a `pub async fn check(store: S)` for any `S:` [`Store`] (`UserStore +
//! SessionStore + TenantStore + AuditLog + Clone + 'static`); the atomicity checks also take
//! a `break_audit: impl FnOnce()`. A check expects a **fresh, empty, migrated** store, and
//! panics with a message naming the broken rule. The simplest way to run all of them, one
//! test each, is the [`store_contract_tests!`](crate::store_contract_tests) macro in the
//! adapter's integration tests:
//!
//! ```ignore
//! async fn fresh() -> (SqliteStore, tempfile::TempDir) { /* open a new database */ }
//!
//! /// Makes every later INSERT into `audit_events` fail, through a connection of its own.
//! fn break_audit(guard: &tempfile::TempDir) { /* CREATE TRIGGER ... RAISE(ABORT, ..) */ }
//!
//! ums_tests::store_contract_tests!(fresh, break_audit);
//! ```
//!
//! `fresh` is an async fn returning `(store, guard)`; the guard (a temporary directory, a
//! database that drops itself, or `()`) lives until the check ends. `break_audit` is a plain
//! `fn(&Guard)` that installs, on the guard's database and through its own direct
//! connection, a trigger refusing every insert into `audit_events`: the atomicity checks call
//! it after their set-up, then expect every journal-writing method to fail and leave its
//! change unwritten. For a store that needs a server the environment may not provide, write
//! `store_contract_tests!(optional fresh, break_audit)` with a `fresh` returning
//! `Option<(store, guard)>`: on `None` each test returns without checking anything
//! (`support::env` says why on stderr, and fails under `CI=true`).
//!
//! The macro generates one multi-threaded `#[tokio::test]` per check, so the caller needs
//! `tokio` with the `macros` and `rt-multi-thread` features among its dev-dependencies. A
//! check added here is run by every adapter using the macro, so adapters cannot drift apart.
//!
//! # Conventions
//!
//! Ids are deterministic (`Uuid::from_u128`, see [`fixtures`](super::fixtures)) and every
//! instant is explicit, whole seconds after [`BASE`] (except where sub-second precision is
//! the point). Stores are expected to keep timestamps to the microsecond. Where a port leaves
//! an order unspecified (lists of session ids, `shared_roles`), results are sorted before
//! comparing. Set-up calls pass empty journals, so that a check can tell that a refused call
//! wrote no audit event by finding none at all; the calls under test pass real ones.
//!
//! # Decisions beyond the rustdoc of the ports
//!
//! - A session is "live" for `revoke`, `revoke_all`, `live_for_user`, `change_password` and
//!   a deactivating `update` when it is not revoked, whether or not it has expired: an access
//!   token issued just before a session expired can outlive it, so revoking an expired
//!   session is not a no-op.
//! - `rotate_refresh_token` reports `Reused` for a spent token even when its session is also
//!   revoked or expired (the reuse is the more alarming fact).
//! - `verify_email` changes the user (`email_verified`), so it bumps the version; a token of
//!   another user is refused like an unknown one.
//! - `update` with the e-mail address the user already has is no change of address: it is
//!   not a duplicate and leaves `email_verified` as it was. Any other address marks it
//!   unverified. Like `insert`, when both the new e-mail and the new username are taken, the
//!   e-mail is reported. An empty `UserChanges` still bumps the version. `is_active:
//!   Some(false)` revokes the live sessions even of a user who was inactive already (there
//!   are none unless they predate the rule that `SessionStore::create` refuses an inactive
//!   user: the checks can no longer make one).
//! - `update` checks, in this order: `NotFound`, `StaleVersion`, `LastAdmin(System)`,
//!   `LastAdmin(Tenant(_))`; `delete`: `NotFound`, `Changed` (with `expected_password`),
//!   `LastAdmin(System)`, `LastAdmin(Tenant(_))`. An inactive administrator is no active administrator: demoting,
//!   deleting or removing one is allowed even when no other exists, and they do not count as
//!   "another" either. Which tenant `LastAdmin(Tenant(_))` names when several would lose
//!   their last active admin at once is left open (the checks use one).
//! - `TenantStore::create` stores the tenant as given (the checks give version 1 and
//!   `updated_at == created_at`); the first admin's membership is created at the tenant's
//!   `created_at`. A taken slug is reported before anything about the new admin.
//! - `tenants_of` orders memberships created at the same instant by tenant id, ascending.
//! - `shared_roles` has one role per shared tenant in no particular order; the checks compare
//!   the set of roles.
//! - `change_role` to the role the member already has is no demotion, even for the last
//!   active admin.
//! - `AuditLog::append` of a journal one of whose ids is already stored fails and writes none
//!   of its events. `AuditFilter::target` matches the target id whatever the target's type.
//! - `UserFilter::q` ignores the case of ASCII letters only; any other character matches at
//!   least itself (SQLite's `lower()` folds ASCII only, PostgreSQL's depends on the locale).
//!   `%`, `_` and `\` in `q` match only themselves. Sorting by e-mail or username needs no
//!   tie-break (both are unique).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{DateTime, TimeDelta};
use domain::model::{
    AuditAction, Journal, NewUser, PersonName, Preferences, ProfileChanges, RefreshRotation, Role,
    Session, SessionId, User, UserId,
};
use domain::ports::{
    ActionPurpose, ActionToken, Login, SessionStore, StoreError, UniqueField, UserChanges,
    UserStore,
};

use super::fixtures::{
    ALL, as_sessions, as_users, assert_no_events, create, email, event_id, events, find_session,
    find_user, insert, issue, journal, name, new_session, new_user, password_hash, session_id,
    sorted, tenant_id, token, user_id, username,
};
pub use super::fixtures::{BASE, Store, at};

/// Generates one `#[tokio::test]` per store contract check, each given a fresh store by
/// `$fresh` (an async fn, or closure returning a future, yielding `(store, guard)`); the
/// atomicity checks are also given `|| $break_audit(&guard)`.
///
/// `store_contract_tests!(optional $fresh, $break_audit)` takes a `$fresh` yielding
/// `Option<(store, guard)>` instead, and skips the check on `None`.
#[macro_export]
macro_rules! store_contract_tests {
    (optional $fresh:expr, $break_audit:expr $(,)?) => {
        $crate::store_contract_tests!(@checks [optional] $fresh, $break_audit);
    };
    ($fresh:expr, $break_audit:expr $(,)?) => {
        $crate::store_contract_tests!(@checks [required] $fresh, $break_audit);
    };
    (@checks [$mode:ident] $fresh:expr, $break_audit:expr) => {
        $crate::store_contract_tests!(@each [$mode] $fresh; stores:
            insert_and_find_round_trip_every_field,
            duplicate_email_is_refused_regardless_of_case,
            duplicate_username_differing_only_in_case_is_refused,
            duplicate_email_and_username_reports_the_email,
            find_credentials_by_email_and_by_username_in_any_case,
            update_applies_profile_changes_and_bumps_the_version,
            update_with_a_stale_version_writes_nothing,
            update_of_an_unknown_user_is_not_found,
            update_to_a_taken_username_is_a_duplicate,
            change_password_revokes_every_live_session_but_the_kept_one,
            create_session_records_the_login,
            rotation_spends_a_token_once_then_reports_reuse,
            rotation_of_an_unknown_token_is_unknown,
            rotation_on_a_revoked_session_is_dead,
            rotation_on_an_expired_session_is_dead,
            concurrent_rotations_of_one_token_rotate_exactly_once,
            revoke_ends_only_the_users_own_live_session,
            revoke_all_returns_only_the_sessions_it_revoked,
            revoked_since_lists_revocations_from_the_instant_on,
            list_live_without_sessions_is_empty,
            list_live_returns_every_field_as_stored,
            revoked_and_expired_sessions_are_kept_but_not_live,
            list_live_orders_equal_creation_times_by_id,
            list_live_pages_the_live_sessions_newest_first,
            live_for_user_returns_exactly_the_unrevoked_sessions,
            find_action_token_reports_every_field_and_whether_it_was_spent,
            verify_email_spends_a_token_once,
            verify_email_refuses_expired_unknown_other_purpose_and_other_users_tokens,
            concurrent_email_verifications_spend_the_token_once,
        );
        $crate::store_contract_tests!(@each [$mode] $fresh; sessions:
            create_session_refuses_a_password_changed_or_an_account_deactivated_since_the_check,
            find_refresh_token_reads_a_token_without_spending_it,
            a_login_racing_a_password_change_never_keeps_a_session_of_the_old_password,
        );
        $crate::store_contract_tests!(@each [$mode] $fresh; users:
            update_changes_email_role_and_activity,
            update_to_a_taken_email_is_a_duplicate,
            update_deactivation_revokes_the_live_sessions,
            update_refuses_to_remove_the_last_active_system_admin,
            update_refuses_to_deactivate_a_tenants_last_active_admin,
            concurrent_demotions_of_the_only_two_admins_leave_one,
            delete_removes_the_user_with_sessions_tokens_and_memberships,
            delete_refuses_to_remove_the_last_active_admin,
            list_filters_by_role_activity_and_tenant,
            list_sorts_with_ties_broken_by_id,
            list_paginates_with_the_total,
            list_q_matches_each_field_in_any_case,
            list_q_matches_wildcards_literally,
            insert_many_creates_all_or_none,
        );
        $crate::store_contract_tests!(@each [$mode] $fresh; tenants:
            tenant_create_without_an_admin_round_trips_every_field,
            tenant_create_with_a_new_admin_creates_the_user_and_membership,
            tenant_create_with_an_existing_admin_adds_the_membership,
            tenant_create_failures_write_nothing,
            tenant_list_all_or_a_members_oldest_first_paginated,
            tenant_update_applies_changes_and_bumps_the_version,
            tenant_update_failures_write_nothing,
            tenant_delete_removes_memberships_but_not_users,
            role_of_and_shared_roles_read_the_memberships,
            members_are_paginated_oldest_first_with_their_users,
            tenants_of_lists_memberships_oldest_first,
            add_member_refuses_duplicates_and_unknowns,
            change_role_and_remove_member_change_only_that_membership,
            change_role_and_remove_member_of_a_non_member_are_not_found,
            change_role_and_remove_member_keep_the_last_active_admin,
            concurrent_demotions_of_a_tenants_only_two_admins_leave_one,
            change_role_and_remove_member_with_stale_assumptions_are_changed,
            add_member_with_a_stale_actor_role_is_changed,
            a_removal_racing_a_promotion_never_removes_an_admin,
        );
        $crate::store_contract_tests!(@each [$mode] $fresh; audit:
            every_journal_taking_method_writes_its_journal,
            append_writes_all_or_none,
            audit_list_filters_by_each_field,
            audit_list_is_newest_first_and_paginated,
            purge_before_deletes_at_most_limit_of_the_oldest,
        );
        $crate::store_contract_tests!(@broken [$mode] $fresh, $break_audit; atomicity:
            insert_fails_whole_when_its_journal_fails,
            insert_many_fails_whole_when_its_journal_fails,
            update_fails_whole_when_its_journal_fails,
            delete_fails_whole_when_its_journal_fails,
            change_password_fails_whole_when_its_journal_fails,
            verify_email_fails_whole_when_its_journal_fails,
            session_create_fails_whole_when_its_journal_fails,
            session_revoke_fails_whole_when_its_journal_fails,
            session_revoke_all_fails_whole_when_its_journal_fails,
            tenant_create_fails_whole_when_its_journal_fails,
            tenant_update_fails_whole_when_its_journal_fails,
            tenant_delete_fails_whole_when_its_journal_fails,
            add_member_fails_whole_when_its_journal_fails,
            change_role_fails_whole_when_its_journal_fails,
            remove_member_fails_whole_when_its_journal_fails,
        );
        // The journal's tokens and mail, one-time tokens, purges and the outbox.
        $crate::store_contract_tests!(@each [$mode] $fresh; outbox:
            claim_returns_due_messages_oldest_first_once_per_lease,
            claim_takes_at_most_limit_oldest_first,
            a_lapsed_lease_makes_a_message_claimable_again,
            concurrent_claims_never_return_a_message_twice,
            mark_sent_delivers_a_message_once,
            mark_failed_with_a_retry_delays_and_counts_attempts,
            mark_failed_without_a_retry_gives_up,
            a_delivery_outranks_a_failure,
            status_counts_pending_retrying_and_dead,
            purge_before_deletes_only_finished_messages_bounded_by_limit,
        );
        $crate::store_contract_tests!(@each [$mode] $fresh; users:
            issue_action_token_stores_the_token_with_its_journal,
            issue_action_token_keeps_quiet_within_the_cooldown,
            issue_action_token_for_an_unknown_user_is_not_found,
            concurrent_issues_within_one_cooldown_issue_exactly_one,
            reset_password_spends_the_token_once_and_revokes_every_session,
            reset_password_refuses_expired_unknown_other_purpose_and_other_users_tokens,
            concurrent_resets_spend_the_token_once,
            purge_action_tokens_deletes_spent_and_expired_tokens_bounded_by_limit,
            an_address_change_spends_the_users_unspent_tokens,
            an_update_that_keeps_the_address_leaves_the_tokens_alone,
            an_address_change_racing_a_reset_and_a_verification_is_serialised,
            password_changed_at_is_when_the_password_was_last_set,
            reset_password_spends_every_other_reset_token_of_the_user,
            change_password_spends_the_users_unspent_reset_tokens,
            change_password_with_a_stale_confirmation_writes_nothing_and_is_changed,
            a_guarded_delete_with_a_stale_password_deletes_nothing_and_is_changed,
            a_reset_racing_a_change_confirmed_against_the_old_password_never_loses_to_it,
            issue_action_token_for_a_stale_address_or_an_inactive_user_writes_nothing,
            an_issue_racing_an_address_change_leaves_no_live_token_for_the_old_address,
        );
        $crate::store_contract_tests!(@each [$mode] $fresh; stores:
            purge_ended_deletes_ended_sessions_with_their_refresh_tokens,
        );
        $crate::store_contract_tests!(@each [$mode] $fresh; atomicity:
            journal_tokens_and_mail_commit_with_the_change,
            a_refused_change_stores_no_token_and_queues_no_mail,
        );
        $crate::store_contract_tests!(@broken [$mode] $fresh, $break_audit; atomicity:
            issue_action_token_fails_whole_when_its_journal_fails,
            reset_password_fails_whole_when_its_journal_fails,
            tokens_and_mail_of_a_change_fail_with_its_journal,
        );
    };
    (@each [required] $fresh:expr; $module:ident: $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let (store, _guard) = ($fresh)().await;
                $crate::contract::$module::$check(store).await;
            }
        )+
    };
    (@each [optional] $fresh:expr; $module:ident: $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let Some((store, _guard)) = ($fresh)().await else {
                    return;
                };
                $crate::contract::$module::$check(store).await;
            }
        )+
    };
    (@broken [required] $fresh:expr, $break_audit:expr; $module:ident: $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let (store, guard) = ($fresh)().await;
                $crate::contract::$module::$check(store, || ($break_audit)(&guard)).await;
            }
        )+
    };
    (@broken [optional] $fresh:expr, $break_audit:expr; $module:ident: $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let Some((store, guard)) = ($fresh)().await else {
                    return;
                };
                $crate::contract::$module::$check(store, || ($break_audit)(&guard)).await;
            }
        )+
    };
}
/// `insert` returns, and `find_by_id` / `find_credentials_by_id` read back, every field as
/// given, with the defaults of a new account (no preferences, no login, version 1,
/// `updated_at == created_at`); timestamps keep microseconds.
pub async fn insert_and_find_round_trip_every_field<S>(store: S)
where
    S: Store,
{
    let created = DateTime::from_timestamp(BASE, 123_456_000).expect("in range");
    let grace = NewUser {
        id: user_id(1),
        email: email("Grace.Hopper+navy@Example.COM"),
        username: username("GHopper_1.x-y"),
        first_name: name("Grace"),
        last_name: name("Hopper"),
        role: Role::Admin,
        is_active: false,
        email_verified: true,
        password_hash: password_hash("grace"),
        created_at: created,
    };
    let expected = User {
        id: user_id(1),
        email: email("grace.hopper+navy@example.com"),
        username: username("GHopper_1.x-y"),
        first_name: name("Grace"),
        last_name: name("Hopper"),
        role: Role::Admin,
        is_active: false,
        email_verified: true,
        preferences: Preferences::default(),
        created_at: created,
        updated_at: created,
        last_login_at: None,
        version: 1,
        password_changed_at: created,
    };
    assert_eq!(
        insert(&store, grace).await,
        expected,
        "insert returns the stored user"
    );
    assert_eq!(find_user(&store, user_id(1)).await, expected, "find_by_id");
    let credentials = store
        .find_credentials_by_id(user_id(1))
        .await
        .expect("find_credentials_by_id")
        .expect("credentials exist");
    assert_eq!(credentials.user, expected);
    assert_eq!(credentials.password_hash, password_hash("grace"));

    // The opposite flags, and empty names.
    let mut plain = new_user(2, "plain@example.org", "plain");
    plain.first_name = PersonName::default();
    plain.last_name = PersonName::default();
    let stored = insert(&store, plain).await;
    assert_eq!(stored.role, Role::User);
    assert!(stored.is_active && !stored.email_verified);
    assert_eq!(
        (stored.first_name.as_str(), stored.last_name.as_str()),
        ("", "")
    );
    assert_eq!(find_user(&store, user_id(2)).await, stored);

    assert_eq!(
        store.find_by_id(user_id(3)).await.expect("find_by_id"),
        None
    );
    assert!(
        store
            .find_credentials_by_id(user_id(3))
            .await
            .expect("find_credentials_by_id")
            .is_none()
    );
}

/// An e-mail already taken (the domain lower-cases it) is `Duplicate(Email)`, and nothing is
/// written, the journal included.
pub async fn duplicate_email_is_refused_regardless_of_case<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let result = store
        .insert(
            new_user(2, "ADA@Example.com", "someone_else"),
            journal(1, AuditAction::UserRegistered),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Duplicate(UniqueField::Email))),
        "expected Duplicate(Email), got {result:?}"
    );
    assert_eq!(
        store.find_by_id(user_id(2)).await.expect("find_by_id"),
        None
    );
    let by_name = store
        .find_credentials(&Login::Username(username("someone_else")))
        .await
        .expect("find_credentials");
    assert!(by_name.is_none(), "the refused user was not written");
    assert_no_events(&store, "a refused insert writes no journal").await;
}

/// A username differing from a taken one only in case is `Duplicate(Username)`, and nothing
/// is written, the journal included.
pub async fn duplicate_username_differing_only_in_case_is_refused<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "Ada_L")).await;
    let result = store
        .insert(
            new_user(2, "other@example.com", "aDA_l"),
            journal(1, AuditAction::UserRegistered),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Duplicate(UniqueField::Username))),
        "expected Duplicate(Username), got {result:?}"
    );
    assert_eq!(
        store.find_by_id(user_id(2)).await.expect("find_by_id"),
        None
    );
    let by_email = store
        .find_credentials(&Login::Email(email("other@example.com")))
        .await
        .expect("find_credentials");
    assert!(by_email.is_none(), "the refused user was not written");
    assert_no_events(&store, "a refused insert writes no journal").await;
}

/// When both the e-mail and the username are taken (by different users), every store reports
/// the e-mail, whichever constraint its database happens to check first.
pub async fn duplicate_email_and_username_reports_the_email<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "grace@example.com", "grace")).await;
    for (email_of, name_of) in [("ada@example.com", "grace"), ("grace@example.com", "ada")] {
        let result = store
            .insert(new_user(3, email_of, name_of), Journal::default())
            .await;
        assert!(
            matches!(result, Err(StoreError::Duplicate(UniqueField::Email))),
            "expected Duplicate(Email) for {email_of}/{name_of}, got {result:?}"
        );
    }
}

/// `find_credentials` finds a user by normalised e-mail and by username in any case, with
/// the right password hash, and nobody for an unknown login.
pub async fn find_credentials_by_email_and_by_username_in_any_case<S>(store: S)
where
    S: Store,
{
    let ada = insert(&store, new_user(1, "ada@example.com", "Ada_L")).await;
    let bob = insert(&store, new_user(2, "bob@example.com", "bob")).await;
    for (login, expected) in [
        (Login::Email(email("ADA@example.COM")), &ada),
        (Login::Username(username("ADA_l")), &ada),
        (Login::Username(username("Ada_L")), &ada),
        (Login::Email(email("bob@example.com")), &bob),
        (Login::Username(username("BOB")), &bob),
    ] {
        let found = store
            .find_credentials(&login)
            .await
            .expect("find_credentials")
            .unwrap_or_else(|| panic!("{login:?} finds a user"));
        assert_eq!(&found.user, expected, "{login:?}");
        assert_eq!(
            found.password_hash,
            password_hash(&format!(
                "user-{}",
                if expected.id == ada.id { 1 } else { 2 }
            )),
            "{login:?}"
        );
    }
    for login in [
        Login::Email(email("carol@example.com")),
        Login::Username(username("carol")),
        // A username is not an e-mail address and vice versa.
        Login::Username(username("ada")),
    ] {
        let found = store
            .find_credentials(&login)
            .await
            .expect("find_credentials");
        assert!(found.is_none(), "{login:?} finds nobody");
    }
}

/// Only these profile changes.
fn profile(changes: ProfileChanges) -> UserChanges {
    UserChanges {
        profile: changes,
        ..UserChanges::default()
    }
}

/// `update` applies exactly the given profile changes, bumps the version, sets `updated_at`
/// and leaves `created_at`, returning the stored user and no revoked session; a user may
/// change the case of their own username.
pub async fn update_applies_profile_changes_and_bumps_the_version<S>(store: S)
where
    S: Store,
{
    let original = insert(&store, new_user(1, "ada@example.com", "Ada_L")).await;
    let preferences = Preferences::parse(serde_json::json!({
        "theme": "dark",
        "nested": {"list": [1, 2.5, null, true], "text": "é ✓"},
    }))
    .expect("valid preferences");
    let everything = ProfileChanges {
        first_name: Some(name("Augusta")),
        last_name: Some(name("King")),
        username: Some(username("countess")),
        preferences: Some(preferences.clone()),
    };
    let updated = as_users(&store)
        .update(
            user_id(1),
            profile(everything),
            None,
            at(10),
            Journal::default(),
        )
        .await
        .expect("update");
    let expected = User {
        first_name: name("Augusta"),
        last_name: name("King"),
        username: username("countess"),
        preferences: preferences.clone(),
        updated_at: at(10),
        version: 2,
        ..original.clone()
    };
    assert_eq!(updated.user, expected);
    assert_eq!(updated.revoked, Vec::<SessionId>::new(), "nothing revoked");
    assert_eq!(find_user(&store, user_id(1)).await, expected);

    let only_last_name = ProfileChanges {
        last_name: Some(name("Byron")),
        ..ProfileChanges::default()
    };
    let updated = as_users(&store)
        .update(
            user_id(1),
            profile(only_last_name),
            Some(2),
            at(20),
            Journal::default(),
        )
        .await
        .expect("update with the current version");
    let expected = User {
        last_name: name("Byron"),
        updated_at: at(20),
        version: 3,
        ..expected
    };
    assert_eq!(updated.user, expected, "unchanged fields are kept");

    let own_name_in_capitals = ProfileChanges {
        username: Some(username("COUNTESS")),
        ..ProfileChanges::default()
    };
    let updated = as_users(&store)
        .update(
            user_id(1),
            profile(own_name_in_capitals),
            Some(3),
            at(30),
            Journal::default(),
        )
        .await
        .expect("changing the case of one's own username")
        .user;
    assert_eq!(updated.username, username("COUNTESS"));
    assert_eq!(updated.version, 4);
    assert_eq!(find_user(&store, user_id(1)).await, updated);
    assert_eq!(updated.created_at, original.created_at);

    let nothing = as_users(&store)
        .update(
            user_id(1),
            UserChanges::default(),
            Some(4),
            at(40),
            Journal::default(),
        )
        .await
        .expect("an empty change")
        .user;
    assert_eq!(
        nothing,
        User {
            updated_at: at(40),
            version: 5,
            ..updated
        },
        "an empty change still bumps the version"
    );
}

/// With an `expected_version` that is not the stored one, `update` is `StaleVersion` and
/// writes nothing, the journal included.
pub async fn update_with_a_stale_version_writes_nothing<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let first = ProfileChanges {
        first_name: Some(name("First")),
        ..ProfileChanges::default()
    };
    let current = as_users(&store)
        .update(
            user_id(1),
            profile(first),
            Some(1),
            at(10),
            Journal::default(),
        )
        .await
        .expect("update with the current version")
        .user;
    assert_eq!(current.version, 2);
    for stale in [1, 3] {
        let change = UserChanges {
            profile: ProfileChanges {
                first_name: Some(name("Second")),
                username: Some(username("renamed")),
                ..ProfileChanges::default()
            },
            email: Some(email("renamed@example.com")),
            role: Some(Role::Admin),
            is_active: Some(false),
        };
        let result = as_users(&store)
            .update(
                user_id(1),
                change,
                Some(stale),
                at(20),
                journal(1, AuditAction::UserUpdated),
            )
            .await;
        assert!(
            matches!(result, Err(StoreError::StaleVersion)),
            "expected StaleVersion for version {stale}, got {result:?}"
        );
        assert_eq!(
            find_user(&store, user_id(1)).await,
            current,
            "nothing was written"
        );
    }
    assert_no_events(&store, "a stale update writes no journal").await;
}

/// `update` of an unknown id is `NotFound`, with or without an expected version, and writes
/// no journal.
pub async fn update_of_an_unknown_user_is_not_found<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    for expected_version in [None, Some(1)] {
        let change = ProfileChanges {
            first_name: Some(name("Nobody")),
            ..ProfileChanges::default()
        };
        let result = as_users(&store)
            .update(
                user_id(2),
                profile(change),
                expected_version,
                at(10),
                journal(1, AuditAction::UserUpdated),
            )
            .await;
        assert!(
            matches!(result, Err(StoreError::NotFound)),
            "expected NotFound with {expected_version:?}, got {result:?}"
        );
    }
    assert_eq!(
        store.find_by_id(user_id(2)).await.expect("find_by_id"),
        None
    );
    assert_no_events(&store, "a refused update writes no journal").await;
}

/// Renaming to another user's username, in any case, is `Duplicate(Username)` and writes
/// nothing (not even the other changes, nor the journal).
pub async fn update_to_a_taken_username_is_a_duplicate<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "Ada_L")).await;
    let bob = insert(&store, new_user(2, "bob@example.com", "bob")).await;
    for expected_version in [None, Some(1)] {
        let change = UserChanges {
            profile: ProfileChanges {
                first_name: Some(name("Robert")),
                username: Some(username("ada_l")),
                ..ProfileChanges::default()
            },
            role: Some(Role::Admin),
            ..UserChanges::default()
        };
        let result = as_users(&store)
            .update(
                user_id(2),
                change,
                expected_version,
                at(10),
                journal(1, AuditAction::UserUpdated),
            )
            .await;
        assert!(
            matches!(result, Err(StoreError::Duplicate(UniqueField::Username))),
            "expected Duplicate(Username) with {expected_version:?}, got {result:?}"
        );
        assert_eq!(
            find_user(&store, user_id(2)).await,
            bob,
            "nothing was written"
        );
    }
    assert_no_events(&store, "a refused update writes no journal").await;
}

/// `change_password` replaces the hash, bumps the version, and revokes (at `at`) exactly the
/// user's live sessions other than `keep`, returning their ids; other users' sessions and
/// already revoked ones are untouched. An unknown id is `NotFound` and writes no journal.
pub async fn change_password_revokes_every_live_session_but_the_kept_one<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    create(&store, new_session(2, user_id(1), 0, 1000)).await;
    create(&store, new_session(3, user_id(1), 0, 1000)).await;
    create(&store, new_session(4, user_id(2), 0, 1000)).await;
    // Expired but never revoked: its access tokens may outlive it, so it is revoked too.
    create(&store, new_session(5, user_id(1), 0, 5)).await;
    assert!(
        store
            .revoke(user_id(1), session_id(3), at(5), Journal::default())
            .await
            .expect("revoke")
    );
    let before = find_user(&store, user_id(1)).await;

    let revoked = store
        .change_password(
            user_id(1),
            password_hash("user-1"),
            password_hash("new"),
            Some(session_id(1)),
            at(10),
            Journal::default(),
        )
        .await
        .expect("change_password");
    assert_eq!(sorted(revoked), vec![session_id(2), session_id(5)]);
    let credentials = store
        .find_credentials_by_id(user_id(1))
        .await
        .expect("find_credentials_by_id")
        .expect("credentials exist");
    assert_eq!(credentials.password_hash, password_hash("new"));
    assert_eq!(credentials.user.version, before.version + 1);
    assert_eq!(credentials.user.updated_at, at(10));
    assert_eq!(
        find_session(&store, session_id(1)).await.revoked_at,
        None,
        "kept"
    );
    assert_eq!(
        find_session(&store, session_id(2)).await.revoked_at,
        Some(at(10))
    );
    assert_eq!(
        find_session(&store, session_id(3)).await.revoked_at,
        Some(at(5)),
        "untouched"
    );
    assert_eq!(
        find_session(&store, session_id(4)).await.revoked_at,
        None,
        "another user's"
    );
    assert_eq!(
        find_session(&store, session_id(5)).await.revoked_at,
        Some(at(10))
    );

    let revoked = store
        .change_password(
            user_id(1),
            password_hash("new"),
            password_hash("newer"),
            None,
            at(20),
            Journal::default(),
        )
        .await
        .expect("change_password keeping nothing");
    assert_eq!(revoked, vec![session_id(1)]);
    assert_eq!(
        find_session(&store, session_id(1)).await.revoked_at,
        Some(at(20))
    );

    let result = store
        .change_password(
            user_id(9),
            password_hash("user-9"),
            password_hash("x"),
            None,
            at(30),
            journal(1, AuditAction::UserPasswordChanged),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "expected NotFound, got {result:?}"
    );
    assert_eq!(find_session(&store, session_id(4)).await.revoked_at, None);
    assert_no_events(&store, "a refused password change writes no journal").await;
}

/// `create` stores the session as given (its tenant scope included) and sets the user's
/// `last_login_at` to its `created_at`; for an unknown user it is `NotFound` and stores
/// nothing, the journal included.
pub async fn create_session_records_the_login<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let first = create(&store, new_session(1, user_id(1), 100, 1000)).await;
    assert_eq!(find_session(&store, session_id(1)).await, first);
    assert_eq!(
        find_user(&store, user_id(1)).await.last_login_at,
        Some(at(100))
    );

    let mut bare = new_session(2, user_id(1), 200, 1000);
    bare.session.user_agent = None;
    bare.session.ip = None;
    let second = create(&store, bare).await;
    assert_eq!(find_session(&store, session_id(2)).await, second);
    assert_eq!(
        find_user(&store, user_id(1)).await.last_login_at,
        Some(at(200))
    );

    // Scoped to a tenant, which need not exist (a refresh re-checks it).
    let mut scoped = new_session(5, user_id(1), 250, 1000);
    scoped.session.tenant = Some(tenant_id(7));
    let scoped = create(&store, scoped).await;
    assert_eq!(
        find_session(&store, session_id(5)).await,
        scoped,
        "the tenant scope round-trips"
    );

    let result = as_sessions(&store)
        .create(
            new_session(3, user_id(9), 300, 1000),
            journal(1, AuditAction::UserLogin),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "expected NotFound, got {result:?}"
    );
    assert_eq!(
        as_sessions(&store).find(session_id(3)).await.expect("find"),
        None
    );
    let orphan = store
        .rotate_refresh_token(&token(3), &token(33), at(301))
        .await
        .expect("rotate");
    assert_eq!(
        orphan,
        RefreshRotation::Unknown,
        "no refresh token was stored"
    );
    assert_eq!(
        as_sessions(&store).find(session_id(4)).await.expect("find"),
        None
    );
    assert_no_events(&store, "a refused session writes no journal").await;
}

/// A live token rotates once (the session's `last_used_at` becomes `at`); presented again it
/// is `Reused`, writing nothing (its replacement is not stored); the replacement rotates.
pub async fn rotation_spends_a_token_once_then_reports_reuse<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let session = create(&store, new_session(1, user_id(1), 0, 1000)).await;

    let rotated = store
        .rotate_refresh_token(&token(1), &token(2), at(10))
        .await
        .expect("rotate");
    let after_first = Session {
        last_used_at: at(10),
        ..session.clone()
    };
    assert_eq!(rotated, RefreshRotation::Rotated(after_first.clone()));
    assert_eq!(find_session(&store, session_id(1)).await, after_first);

    let replayed = store
        .rotate_refresh_token(&token(1), &token(3), at(20))
        .await
        .expect("rotate");
    assert_eq!(replayed, RefreshRotation::Reused(after_first.clone()));
    assert_eq!(
        find_session(&store, session_id(1)).await,
        after_first,
        "nothing written"
    );
    let never_stored = store
        .rotate_refresh_token(&token(3), &token(4), at(21))
        .await
        .expect("rotate");
    assert_eq!(never_stored, RefreshRotation::Unknown);

    let rotated = store
        .rotate_refresh_token(&token(2), &token(5), at(30))
        .await
        .expect("rotate");
    assert_eq!(
        rotated,
        RefreshRotation::Rotated(Session {
            last_used_at: at(30),
            ..session
        })
    );
}

/// A digest never stored is `Unknown`.
pub async fn rotation_of_an_unknown_token_is_unknown<S>(store: S)
where
    S: Store,
{
    let empty = store
        .rotate_refresh_token(&token(42), &token(43), at(0))
        .await
        .expect("rotate");
    assert_eq!(empty, RefreshRotation::Unknown);
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    let other = store
        .rotate_refresh_token(&token(42), &token(43), at(10))
        .await
        .expect("rotate");
    assert_eq!(other, RefreshRotation::Unknown);
    assert_eq!(
        find_session(&store, session_id(1)).await.last_used_at,
        at(0)
    );
}

/// A live token of a revoked session is `Dead`, writing nothing: the token stays unspent and
/// the replacement is not stored.
pub async fn rotation_on_a_revoked_session_is_dead<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    assert!(
        store
            .revoke(user_id(1), session_id(1), at(5), Journal::default())
            .await
            .expect("revoke")
    );
    let revoked = find_session(&store, session_id(1)).await;
    assert_eq!(revoked.revoked_at, Some(at(5)));

    for (replacement, when) in [(2, 10), (3, 11)] {
        let dead = store
            .rotate_refresh_token(&token(1), &token(replacement), at(when))
            .await
            .expect("rotate");
        assert_eq!(dead, RefreshRotation::Dead(revoked.clone()), "at {when}");
        let never_stored = store
            .rotate_refresh_token(&token(replacement), &token(9), at(when))
            .await
            .expect("rotate");
        assert_eq!(never_stored, RefreshRotation::Unknown);
    }
    assert_eq!(
        find_session(&store, session_id(1)).await,
        revoked,
        "nothing written"
    );
}

/// A live token of a session whose `expires_at` is at or before `at` is `Dead`, writing
/// nothing; one instant earlier it rotates.
pub async fn rotation_on_an_expired_session_is_dead<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let session = create(&store, new_session(1, user_id(1), 0, 100)).await;
    for when in [100, 150] {
        let dead = store
            .rotate_refresh_token(&token(1), &token(2), at(when))
            .await
            .expect("rotate");
        assert_eq!(dead, RefreshRotation::Dead(session.clone()), "at {when}");
        let never_stored = store
            .rotate_refresh_token(&token(2), &token(3), at(when))
            .await
            .expect("rotate");
        assert_eq!(never_stored, RefreshRotation::Unknown);
    }
    assert_eq!(
        find_session(&store, session_id(1)).await,
        session,
        "nothing written"
    );

    let just_before = at(100) - TimeDelta::microseconds(1);
    let rotated = store
        .rotate_refresh_token(&token(1), &token(4), just_before)
        .await
        .expect("rotate");
    assert_eq!(
        rotated,
        RefreshRotation::Rotated(Session {
            last_used_at: just_before,
            ..session
        })
    );
}

/// Of 16 concurrent rotations of one unspent token, exactly one is `Rotated` and 15 are
/// `Reused`, and exactly one of the 16 replacements was stored; repeated over 16 sessions so
/// that the calls really overlap.
pub async fn concurrent_rotations_of_one_token_rotate_exactly_once<S>(store: S)
where
    S: Store,
{
    const CALLS: u128 = 16;
    const ROUNDS: u128 = 16;
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let store = Arc::new(store);
    for round in 0..ROUNDS {
        create(store.as_ref(), new_session(round, user_id(1), 0, 1000)).await;
        let start = Arc::new(tokio::sync::Barrier::new(CALLS as usize));
        let replacement = |i: u128| token(1_000 * (round + 1) + i);
        let tasks: Vec<_> = (0..CALLS)
            .map(|i| {
                let store = Arc::clone(&store);
                let start = Arc::clone(&start);
                let replacement = replacement(i);
                tokio::spawn(async move {
                    start.wait().await;
                    store
                        .rotate_refresh_token(&token(round), &replacement, at(10))
                        .await
                })
            })
            .collect();
        let (mut rotated, mut reused) = (0, 0);
        for task in tasks {
            match task.await.expect("task").expect("rotate") {
                RefreshRotation::Rotated(_) => rotated += 1,
                RefreshRotation::Reused(_) => reused += 1,
                other => panic!("expected Rotated or Reused, got {other:?}"),
            }
        }
        assert_eq!((rotated, reused), (1, CALLS - 1), "round {round}");

        let mut stored = 0;
        for i in 0..CALLS {
            match store
                .rotate_refresh_token(&replacement(i), &token(1_000_000 * (round + 1) + i), at(20))
                .await
                .expect("rotate")
            {
                RefreshRotation::Rotated(_) => stored += 1,
                RefreshRotation::Unknown => {}
                other => panic!("expected Rotated or Unknown, got {other:?}"),
            }
        }
        assert_eq!(
            stored, 1,
            "round {round}: exactly one replacement was stored"
        );
    }
}

/// `revoke` is `true` once for the user's own live session (setting `revoked_at`), then
/// `false`; `false` and no change for another user's session or an unknown id. Its journal is
/// written when it returns `true` only.
pub async fn revoke_ends_only_the_users_own_live_session<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    // Expired but never revoked: still revocable.
    create(&store, new_session(2, user_id(1), 0, 5)).await;

    assert!(
        !store
            .revoke(
                user_id(2),
                session_id(1),
                at(5),
                journal(5, AuditAction::UserLogout)
            )
            .await
            .expect("revoke")
    );
    assert_eq!(find_session(&store, session_id(1)).await.revoked_at, None);

    assert!(
        store
            .revoke(
                user_id(1),
                session_id(1),
                at(6),
                journal(6, AuditAction::UserLogout)
            )
            .await
            .expect("revoke")
    );
    assert_eq!(
        find_session(&store, session_id(1)).await.revoked_at,
        Some(at(6))
    );
    assert!(
        !store
            .revoke(
                user_id(1),
                session_id(1),
                at(7),
                journal(7, AuditAction::UserLogout)
            )
            .await
            .expect("revoke")
    );
    assert_eq!(
        find_session(&store, session_id(1)).await.revoked_at,
        Some(at(6)),
        "the first revocation time is kept"
    );

    assert!(
        store
            .revoke(
                user_id(1),
                session_id(2),
                at(8),
                journal(8, AuditAction::UserLogout)
            )
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke(
                user_id(1),
                session_id(9),
                at(9),
                journal(9, AuditAction::UserLogout)
            )
            .await
            .expect("revoke")
    );
    let written: Vec<_> = events(&store).await.into_iter().map(|e| e.id).collect();
    assert_eq!(
        written,
        vec![event_id(8), event_id(6)],
        "the journal is written exactly when revoke returns true"
    );
}

/// `revoke_all` revokes every unrevoked session of the user (expired ones too) and returns
/// exactly those; other users' sessions are untouched; a second call returns nothing, and
/// still writes its journal.
pub async fn revoke_all_returns_only_the_sessions_it_revoked<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    create(&store, new_session(1, user_id(1), 0, 1000)).await;
    create(&store, new_session(2, user_id(1), 0, 1000)).await;
    create(&store, new_session(3, user_id(1), 0, 1000)).await;
    create(&store, new_session(4, user_id(2), 0, 1000)).await;
    create(&store, new_session(5, user_id(1), 0, 5)).await;
    assert!(
        store
            .revoke(user_id(1), session_id(3), at(5), Journal::default())
            .await
            .expect("revoke")
    );

    let revoked = store
        .revoke_all(user_id(1), at(10), Journal::default())
        .await
        .expect("revoke_all");
    assert_eq!(
        sorted(revoked),
        vec![session_id(1), session_id(2), session_id(5)]
    );
    for (n, expected) in [
        (1, Some(at(10))),
        (2, Some(at(10))),
        (3, Some(at(5))),
        (4, None),
    ] {
        assert_eq!(
            find_session(&store, session_id(n)).await.revoked_at,
            expected,
            "session {n}"
        );
    }
    let again = store
        .revoke_all(user_id(1), at(20), journal(20, AuditAction::SessionRevoked))
        .await
        .expect("revoke_all");
    assert_eq!(again, Vec::<SessionId>::new());
    let written: Vec<_> = events(&store).await.into_iter().map(|e| e.id).collect();
    assert_eq!(
        written,
        vec![event_id(20)],
        "revoke_all writes its journal even with nothing to revoke"
    );
    let nobody = store
        .revoke_all(user_id(9), at(20), Journal::default())
        .await
        .expect("revoke_all");
    assert_eq!(nobody, Vec::<SessionId>::new());
}

/// `revoked_since` lists every session revoked at or after the instant, with its revocation
/// time, and no live session.
pub async fn revoked_since_lists_revocations_from_the_instant_on<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    for (n, user) in [(1, 1), (2, 1), (3, 2), (4, 1)] {
        create(&store, new_session(n, user_id(user), 0, 1000)).await;
    }
    for (n, user, when) in [(1, 1, 10), (2, 1, 20), (3, 2, 30)] {
        assert!(
            store
                .revoke(user_id(user), session_id(n), at(when), Journal::default())
                .await
                .expect("revoke")
        );
    }
    let list = |since: i64| {
        let store = &store;
        async move {
            let mut revoked = store.revoked_since(at(since)).await.expect("revoked_since");
            revoked.sort();
            revoked
        }
    };
    assert_eq!(
        list(20).await,
        vec![(session_id(2), at(20)), (session_id(3), at(30))],
        "the boundary is inclusive"
    );
    assert_eq!(list(0).await.len(), 3);
    assert_eq!(list(31).await, vec![]);
}

/// The user's sessions live at `at(when)`, as `list_live` returns them on one page.
async fn live_at<S: SessionStore>(store: &S, user: UserId, when: i64) -> Vec<Session> {
    let page = store
        .list_live(user, at(when), ALL)
        .await
        .expect("list_live");
    assert_eq!(
        page.total,
        page.items.len() as u64,
        "one page holds them all"
    );
    page.items
}

/// `list_live` is empty (with a total of 0) for an unknown user and for a user without
/// sessions, even when other users have some.
pub async fn list_live_without_sessions_is_empty<S>(store: S)
where
    S: Store,
{
    assert_eq!(
        live_at(&store, user_id(9), 100).await,
        vec![],
        "empty store"
    );
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    assert_eq!(
        live_at(&store, user_id(1), 100).await,
        vec![],
        "no sessions at all"
    );
    create(&store, new_session(1, user_id(2), 0, 1000)).await;
    assert_eq!(
        live_at(&store, user_id(1), 100).await,
        vec![],
        "only another user's"
    );
    assert_eq!(
        live_at(&store, user_id(9), 100).await,
        vec![],
        "unknown user"
    );
}

/// `list_live` returns exactly the user's live sessions, newest `created_at` first whatever
/// the order of creation and of ids, each with every field as stored: user agent and address
/// (or none), tenant scope, `last_used_at` after a rotation; a revoked one drops out and is
/// still found, with its `revoked_at`.
pub async fn list_live_returns_every_field_as_stored<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    // Neither creation order nor id order is the expected order (3, 1, 2).
    let middle = create(&store, new_session(1, user_id(1), 20, 1000)).await;
    let mut bare = new_session(2, user_id(1), 10, 1000);
    bare.session.user_agent = None;
    bare.session.ip = None;
    let oldest = create(&store, bare).await;
    let mut v6 = new_session(3, user_id(1), 30, 1000);
    v6.session.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64) \"quoted\" é".to_owned());
    v6.session.ip = Some("2001:db8::1".to_owned());
    v6.session.tenant = Some(tenant_id(3));
    let newest = create(&store, v6).await;
    // Another user's sessions, created in between and last, are not listed.
    let bobs_first = create(&store, new_session(4, user_id(2), 25, 1000)).await;
    let bobs_last = create(&store, new_session(5, user_id(2), 40, 1000)).await;

    assert_eq!(
        live_at(&store, user_id(1), 45).await,
        vec![newest.clone(), middle.clone(), oldest.clone()],
        "as created, newest first"
    );

    assert!(
        store
            .revoke(user_id(1), session_id(1), at(50), Journal::default())
            .await
            .expect("revoke")
    );
    let rotated = store
        .rotate_refresh_token(&token(2), &token(22), at(60))
        .await
        .expect("rotate");
    let oldest = Session {
        last_used_at: at(60),
        ..oldest
    };
    assert_eq!(rotated, RefreshRotation::Rotated(oldest.clone()));
    let listed = live_at(&store, user_id(1), 70).await;
    assert_eq!(
        listed,
        vec![newest, oldest],
        "after a revocation and a rotation"
    );
    for session in &listed {
        assert_eq!(
            &find_session(&store, session.id).await,
            session,
            "the list agrees with find"
        );
    }
    assert_eq!(
        find_session(&store, session_id(1)).await,
        Session {
            revoked_at: Some(at(50)),
            ..middle
        },
        "the revoked session is kept, with its revocation"
    );

    assert_eq!(
        live_at(&store, user_id(2), 70).await,
        vec![bobs_last, bobs_first],
        "only bob's"
    );
}

/// Revoked sessions (by `revoke` and by `revoke_all`) and expired ones, even sessions that
/// expired long ago by the wall clock, are kept (until purged) and found with every field;
/// `list_live` lists none of them, `live_for_user` the expired ones never revoked.
pub async fn revoked_and_expired_sessions_are_kept_but_not_live<S>(store: S)
where
    S: Store,
{
    const YEARS: i64 = 3 * 365 * 24 * 3600;
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let live = create(&store, new_session(1, user_id(1), 40, 1000)).await;
    let revoked = create(&store, new_session(2, user_id(1), 30, 1000)).await;
    let expired = create(&store, new_session(3, user_id(1), 20, 25)).await;
    // Created and expired years before BASE: in the past by any clock running these checks.
    let ancient = create(&store, new_session(4, user_id(1), -YEARS, 1 - YEARS)).await;
    assert!(
        store
            .revoke(user_id(1), session_id(2), at(50), Journal::default())
            .await
            .expect("revoke")
    );
    let revoked_all = store
        .revoke_all(user_id(1), at(60), Journal::default())
        .await
        .expect("revoke_all");
    assert_eq!(
        sorted(revoked_all),
        vec![session_id(1), session_id(3), session_id(4)]
    );

    for (session, revoked_at) in [
        (live, at(60)),
        (revoked, at(50)),
        (expired, at(60)),
        (ancient, at(60)),
    ] {
        assert_eq!(
            find_session(&store, session.id).await,
            Session {
                revoked_at: Some(revoked_at),
                ..session
            }
        );
    }
    assert_eq!(live_at(&store, user_id(1), 45).await, vec![], "all revoked");

    // Expired and never revoked.
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    let old = create(&store, new_session(5, user_id(2), -YEARS, 1 - YEARS)).await;
    let dead = store
        .rotate_refresh_token(&token(5), &token(55), at(0))
        .await
        .expect("rotate");
    assert_eq!(dead, RefreshRotation::Dead(old.clone()), "it is expired");
    assert_eq!(find_session(&store, session_id(5)).await, old);
    assert_eq!(live_at(&store, user_id(2), 0).await, vec![], "expired");
    assert_eq!(
        store
            .live_for_user(user_id(2))
            .await
            .expect("live_for_user"),
        vec![session_id(5)],
        "unrevoked"
    );
}

/// Live sessions created at the same instant are listed by id, greatest first, on every
/// call and on every page.
pub async fn list_live_orders_equal_creation_times_by_id<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    for n in [2, 4, 1, 3] {
        create(&store, new_session(n, user_id(1), 10, 1000)).await;
    }
    create(&store, new_session(5, user_id(1), 5, 1000)).await;
    create(&store, new_session(0, user_id(1), 20, 1000)).await;
    let expected = [0, 4, 3, 2, 1, 5].map(session_id).to_vec();
    for _ in 0..3 {
        let ids: Vec<SessionId> = live_at(&store, user_id(1), 100)
            .await
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, expected, "newest first, then by id descending");
    }
    let mut paged = Vec::new();
    for page in 1..=3 {
        let items = store
            .list_live(
                user_id(1),
                at(100),
                domain::ports::PageRequest { page, per_page: 2 },
            )
            .await
            .expect("list_live")
            .items;
        paged.extend(items.into_iter().map(|s| s.id));
    }
    assert_eq!(paged, expected, "pages split the same order");
}

/// `list_live` pages exactly the user's sessions live at the instant asked (not revoked, not
/// expired then), newest first (equal times by id, greatest first), with every field as
/// stored and the number of all of them.
pub async fn list_live_pages_the_live_sessions_newest_first<S>(store: S)
where
    S: Store,
{
    let page_of = |page: u32, per_page: u32| domain::ports::PageRequest { page, per_page };
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    let a = create(&store, new_session(1, user_id(1), 10, 1000)).await;
    let mut tagged = new_session(2, user_id(1), 30, 1000);
    tagged.session.user_agent = Some("Firefox \"x\" é".to_owned());
    tagged.session.ip = Some("2001:db8::2".to_owned());
    let b = create(&store, tagged).await;
    let c = create(&store, new_session(3, user_id(1), 30, 1000)).await;
    create(&store, new_session(4, user_id(1), 40, 1000)).await; // revoked below
    create(&store, new_session(5, user_id(1), 50, 60)).await; // expired at 60
    create(&store, new_session(6, user_id(2), 45, 1000)).await; // bob's
    assert!(
        store
            .revoke(user_id(1), session_id(4), at(55), Journal::default())
            .await
            .expect("revoke")
    );

    let all = store
        .list_live(user_id(1), at(100), page_of(1, 10))
        .await
        .expect("list_live");
    assert_eq!(all.total, 3);
    assert_eq!(all.items, vec![c.clone(), b.clone(), a.clone()]);
    // Before session 5 expired it was live too.
    let earlier = store
        .list_live(user_id(1), at(59), page_of(1, 10))
        .await
        .expect("list_live");
    assert_eq!(earlier.total, 4);
    assert_eq!(earlier.items[0].id, session_id(5));
    // Pages.
    let second = store
        .list_live(user_id(1), at(100), page_of(2, 2))
        .await
        .expect("list_live");
    assert_eq!((second.items, second.total), (vec![a], 3));
    let beyond = store
        .list_live(user_id(1), at(100), page_of(9, 2))
        .await
        .expect("list_live");
    assert_eq!((beyond.items, beyond.total), (vec![], 3));
    let nobody = store
        .list_live(user_id(9), at(100), page_of(1, 10))
        .await
        .expect("list_live");
    assert_eq!((nobody.items, nobody.total), (vec![], 0));
}

async fn live<S: SessionStore>(store: &S, user: UserId) -> Vec<SessionId> {
    sorted(store.live_for_user(user).await.expect("live_for_user"))
}

/// `live_for_user` returns the ids of exactly the user's unrevoked sessions: expired ones
/// that were never revoked included (they are live, see the header), sessions revoked by
/// `revoke` or `revoke_all` and other users' excluded. Empty for an unknown user and for a
/// user whose sessions are all revoked.
pub async fn live_for_user_returns_exactly_the_unrevoked_sessions<S>(store: S)
where
    S: Store,
{
    const YEARS: i64 = 3 * 365 * 24 * 3600;
    assert_eq!(live(&store, user_id(9)).await, vec![], "empty store");
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    assert_eq!(live(&store, user_id(1)).await, vec![], "no sessions at all");
    create(&store, new_session(1, user_id(1), 40, 1000)).await;
    create(&store, new_session(2, user_id(1), 30, 1000)).await;
    // Expired at 25, and long ago by the wall clock: neither is revoked.
    create(&store, new_session(3, user_id(1), 20, 25)).await;
    create(&store, new_session(4, user_id(1), -YEARS, 1 - YEARS)).await;
    create(&store, new_session(5, user_id(1), 10, 1000)).await;
    create(&store, new_session(6, user_id(2), 15, 1000)).await;
    create(&store, new_session(7, user_id(2), 16, 1000)).await;
    assert!(
        store
            .revoke(user_id(1), session_id(2), at(50), Journal::default())
            .await
            .expect("revoke")
    );
    assert!(
        store
            .revoke(user_id(1), session_id(5), at(51), Journal::default())
            .await
            .expect("revoke")
    );

    assert_eq!(
        live(&store, user_id(1)).await,
        vec![session_id(1), session_id(3), session_id(4)],
        "the unrevoked ones, expired included; not the revoked ones nor bob's"
    );
    assert_eq!(
        live(&store, user_id(2)).await,
        vec![session_id(6), session_id(7)],
        "only bob's"
    );

    let revoked = store
        .revoke_all(user_id(2), at(60), Journal::default())
        .await
        .expect("revoke_all");
    assert_eq!(sorted(revoked), vec![session_id(6), session_id(7)]);
    assert_eq!(live(&store, user_id(2)).await, vec![], "all revoked");
    assert_eq!(
        live(&store, user_id(1)).await,
        vec![session_id(1), session_id(3), session_id(4)],
        "another user's revoke_all leaves them"
    );
    assert_eq!(live(&store, user_id(9)).await, vec![], "unknown user");
}

fn action_token(n: u128, user: UserId, purpose: ActionPurpose, expires: i64) -> ActionToken {
    ActionToken {
        hash: token(n),
        user_id: user,
        purpose,
        created_at: at(0),
        expires_at: at(expires),
    }
}

/// The token `n`'s `used_at`, as `find_action_token` reports it.
async fn used_at<S: UserStore>(store: &S, n: u128) -> Option<DateTime<chrono::Utc>> {
    store
        .find_action_token(&token(n))
        .await
        .expect("find_action_token")
        .expect("the token is stored")
        .used_at
}

/// `find_action_token` returns a stored token with every field, unspent and then spent (with
/// the instant it was spent), and `None` for a digest never stored.
pub async fn find_action_token_reports_every_field_and_whether_it_was_spent<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let created = DateTime::from_timestamp(BASE, 654_321_000).expect("in range");
    for (n, purpose) in [
        (1, ActionPurpose::VerifyEmail),
        (2, ActionPurpose::ResetPassword),
    ] {
        let issued = ActionToken {
            created_at: created,
            ..action_token(n, user_id(1), purpose, 100)
        };
        issue(&store, issued.clone()).await;
        let stored = store
            .find_action_token(&token(n))
            .await
            .expect("find_action_token")
            .expect("the token is stored");
        assert_eq!(stored.token.hash, issued.hash);
        assert_eq!(stored.token.user_id, issued.user_id);
        assert_eq!(stored.token.purpose, issued.purpose);
        assert_eq!(
            stored.token.created_at, issued.created_at,
            "microseconds kept"
        );
        assert_eq!(stored.token.expires_at, issued.expires_at);
        assert_eq!(stored.used_at, None, "unspent");
    }
    assert!(
        store
            .verify_email(&token(1), user_id(1), at(50), Journal::default())
            .await
            .expect("verify_email")
    );
    assert_eq!(used_at(&store, 1).await, Some(at(50)), "spent at `at`");
    assert_eq!(
        used_at(&store, 2).await,
        None,
        "the other token is untouched"
    );
    assert!(
        store
            .find_action_token(&token(3))
            .await
            .expect("find_action_token")
            .is_none(),
        "never stored"
    );
}

/// A live verification token verifies its user's address once (bumping the version and
/// setting `updated_at`); a second use is `false` and writes nothing, not even its journal.
pub async fn verify_email_spends_a_token_once<S>(store: S)
where
    S: Store,
{
    let before = insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    issue(
        &store,
        action_token(1, user_id(1), ActionPurpose::VerifyEmail, 100),
    )
    .await;

    let verified = store
        .verify_email(
            &token(1),
            user_id(1),
            at(50),
            journal(50, AuditAction::UserEmailVerified),
        )
        .await
        .expect("verify_email");
    assert!(verified, "the token is spent");
    let after = find_user(&store, user_id(1)).await;
    assert!(after.email_verified);
    assert_eq!(after.version, before.version + 1, "the version is bumped");
    assert_eq!(after.updated_at, at(50));
    assert!(
        !find_user(&store, user_id(2)).await.email_verified,
        "only that user"
    );

    let again = store
        .verify_email(
            &token(1),
            user_id(1),
            at(51),
            journal(51, AuditAction::UserEmailVerified),
        )
        .await
        .expect("verify_email");
    assert!(!again, "a token is spent once");
    assert_eq!(
        find_user(&store, user_id(1)).await,
        after,
        "nothing written"
    );
    assert_eq!(
        used_at(&store, 1).await,
        Some(at(50)),
        "spent the first time"
    );
    let written: Vec<_> = events(&store).await.into_iter().map(|e| e.id).collect();
    assert_eq!(
        written,
        vec![event_id(50)],
        "the journal is written exactly when the token is spent"
    );
}

/// Expired (at or after `expires_at`), unknown, other-purpose and other users' tokens verify
/// nothing and write nothing (no journal either): the refused token still works before its
/// expiry, for its own user.
pub async fn verify_email_refuses_expired_unknown_other_purpose_and_other_users_tokens<S>(store: S)
where
    S: Store,
{
    let before = insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let bob = insert(&store, new_user(2, "bob@example.com", "bob")).await;
    issue(
        &store,
        action_token(1, user_id(1), ActionPurpose::VerifyEmail, 100),
    )
    .await;
    issue(
        &store,
        action_token(2, user_id(1), ActionPurpose::ResetPassword, 100),
    )
    .await;

    for (hash, user, when, why) in [
        (token(1), 1, 100, "expired at its expiry instant"),
        (token(1), 1, 150, "expired"),
        (token(2), 1, 50, "for another purpose"),
        (token(3), 1, 50, "unknown"),
        (token(1), 2, 50, "another user's"),
    ] {
        let result = store
            .verify_email(
                &hash,
                user_id(user),
                at(when),
                journal(1, AuditAction::UserEmailVerified),
            )
            .await
            .expect("verify_email");
        assert!(!result, "{why}");
    }
    assert_eq!(
        find_user(&store, user_id(1)).await,
        before,
        "nothing written"
    );
    assert_eq!(find_user(&store, user_id(2)).await, bob, "nothing written");
    assert_eq!(used_at(&store, 1).await, None, "the token is unspent");
    assert_eq!(used_at(&store, 2).await, None, "the token is unspent");
    assert_no_events(&store, "a refused verification writes no journal").await;

    let verified = store
        .verify_email(&token(1), user_id(1), at(99), Journal::default())
        .await
        .expect("verify_email");
    assert!(verified, "the refusals did not spend the token");
}

/// Of 8 concurrent verifications with one token, exactly one succeeds (bumping the version
/// once and writing its journal once); repeated with 8 tokens so that the calls really
/// overlap.
pub async fn concurrent_email_verifications_spend_the_token_once<S>(store: S)
where
    S: Store,
{
    const CALLS: u128 = 8;
    const ROUNDS: u128 = 8;
    let mut before = insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let store = Arc::new(store);
    for round in 0..ROUNDS {
        issue(
            store.as_ref(),
            action_token(round, user_id(1), ActionPurpose::VerifyEmail, 100),
        )
        .await;
        let start = Arc::new(tokio::sync::Barrier::new(CALLS as usize));
        let tasks: Vec<_> = (0..CALLS)
            .map(|i| {
                let store = Arc::clone(&store);
                let start = Arc::clone(&start);
                tokio::spawn(async move {
                    start.wait().await;
                    let journal = journal(100 * (round + 1) + i, AuditAction::UserEmailVerified);
                    store
                        .verify_email(&token(round), user_id(1), at(10), journal)
                        .await
                })
            })
            .collect();
        let mut verified = 0;
        for task in tasks {
            if task.await.expect("task").expect("verify_email") {
                verified += 1;
            }
        }
        assert_eq!(verified, 1, "round {round}: exactly one spends the token");
        let after = find_user(store.as_ref(), user_id(1)).await;
        assert_eq!(
            after.version,
            before.version + 1,
            "round {round}: one version bump"
        );
        before = after;
        assert_eq!(
            events(store.as_ref()).await.len() as u128,
            round + 1,
            "round {round}: one journal written"
        );
    }
}

/// `purge_ended` deletes at most `limit` sessions that expired or were revoked strictly
/// before `before`, with their refresh tokens (which are then unknown), and no other.
pub async fn purge_ended_deletes_ended_sessions_with_their_refresh_tokens<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    // 1: expired at 100 (with a second, rotated-in refresh token). 2: revoked at 50.
    // 3: live. 4: expires at 300. 5: revoked at 200.
    for (n, expires) in [(1, 100), (2, 1000), (3, 1000), (4, 300), (5, 1000)] {
        create(&store, new_session(n, user_id(1), 0, expires)).await;
    }
    let rotated = store
        .rotate_refresh_token(&token(1), &token(11), at(10))
        .await
        .expect("rotate");
    assert!(matches!(rotated, RefreshRotation::Rotated(_)));
    for (n, when) in [(2, 50), (5, 200)] {
        assert!(
            store
                .revoke(user_id(1), session_id(n), at(when), Journal::default())
                .await
                .expect("revoke")
        );
    }
    let purge = |before: i64, limit: u32| {
        let store = store.clone();
        async move {
            store
                .purge_ended(at(before), limit)
                .await
                .expect("purge_ended")
        }
    };
    assert_eq!(purge(200, 1).await, 1, "bounded by the limit");
    assert_eq!(purge(200, 10).await, 1, "the other one ended before 200");
    assert_eq!(purge(200, 10).await, 0, "nothing else ended before 200");
    for (n, kept) in [(1, false), (2, false), (3, true), (4, true), (5, true)] {
        assert_eq!(
            as_sessions(&store)
                .find(session_id(n))
                .await
                .expect("find")
                .is_some(),
            kept,
            "session {n}"
        );
    }
    for n in [1, 11, 2] {
        assert!(
            matches!(
                store
                    .rotate_refresh_token(&token(n), &token(100 + n), at(20))
                    .await
                    .expect("rotate"),
                RefreshRotation::Unknown
            ),
            "refresh token {n} went with its session"
        );
    }
    assert!(
        matches!(
            store
                .rotate_refresh_token(&token(3), &token(103), at(20))
                .await
                .expect("rotate"),
            RefreshRotation::Rotated(_)
        ),
        "a kept session still refreshes"
    );
    assert_eq!(
        sorted(live(&store, user_id(1)).await),
        vec![session_id(3), session_id(4)]
    );
    assert_eq!(purge(1001, 10).await, 3, "every session has ended by then");
    for n in 1..=5 {
        assert!(
            as_sessions(&store)
                .find(session_id(n))
                .await
                .expect("find")
                .is_none(),
            "session {n} is purged"
        );
    }
    assert!(live(&store, user_id(1)).await.is_empty());
    assert_eq!(
        find_user(&store, user_id(1)).await.email.as_str(),
        "ada@example.com",
        "the user stays"
    );
}
