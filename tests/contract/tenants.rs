//! Contract checks for `TenantStore`: tenants, their memberships, and the guard that keeps an
//! active administrator in every tenant. The conventions and decisions are those of
//! [`stores`](super::stores).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::DateTime;
use domain::model::{
    AuditAction, Journal, Role, Tenant, TenantId, TenantRef, TenantRole, User, UserId,
};
use domain::ports::{
    Assumed, LastAdmin, Member, StoreError, TenantAdmin, TenantChanges, TenantMembership,
    TenantStore, UniqueField, UserChanges, UserStore,
};

use super::fixtures::{
    ALL, BASE, Store, add_member, as_tenants, as_users, assert_no_events, at, create_tenant,
    events, find_tenant, find_user, insert, journal, membership, new_tenant, new_user, page, slug,
    tenant_id, user_id, user_n,
};

/// Nothing assumed about the member or the actor: the set-up calls and the checks of other
/// rules.
const NOTHING: Assumed = Assumed {
    member: None,
    actor: None,
};

/// The tenant by slug, if any.
async fn by_slug<S: TenantStore>(store: &S, raw: &str) -> Option<Tenant> {
    store
        .find(&TenantRef::Slug(slug(raw)))
        .await
        .expect("find by slug")
}

/// The tenant by id, if any.
async fn by_id<S: TenantStore>(store: &S, id: TenantId) -> Option<Tenant> {
    store.find(&TenantRef::Id(id)).await.expect("find by id")
}

/// `user`'s role in `tenant`.
async fn role_of<S: TenantStore>(store: &S, tenant: TenantId, user: UserId) -> Option<TenantRole> {
    store.role_of(tenant, user).await.expect("role_of")
}

/// The roles, as a sorted set (most powerful first).
fn role_set(mut roles: Vec<TenantRole>) -> Vec<TenantRole> {
    roles.sort_by_key(|role| std::cmp::Reverse(role.rank()));
    roles.dedup();
    roles
}

/// The ids of tenants.
fn tenant_ids(tenants: &[Tenant]) -> Vec<TenantId> {
    tenants.iter().map(|t| t.id).collect()
}

/// `create` without an admin stores every field as given (microseconds, JSON settings,
/// inactive), `find` reads it back by id and by slug, and the tenant has no member.
pub async fn tenant_create_without_an_admin_round_trips_every_field<S>(store: S)
where
    S: Store,
{
    let created = DateTime::from_timestamp(BASE, 987_654_000).expect("in range");
    let settings = serde_json::json!({
        "theme": {"color": "#fff", "dense": true},
        "seats": 25,
        "ratio": 2.5,
        "tags": ["a", null, "é ✓"],
    });
    let serde_json::Value::Object(settings) = settings else {
        unreachable!("an object literal")
    };
    let tenant = Tenant {
        id: tenant_id(1),
        name: "Analytical Engines \"Ltd\"".to_owned(),
        slug: slug("engines-42"),
        description: "Babbage & Co — différence".to_owned(),
        domain: "engines.example".to_owned(),
        settings,
        is_active: false,
        created_at: created,
        updated_at: created,
        version: 1,
    };
    let stored = as_tenants(&store)
        .create(tenant.clone(), None, Journal::default())
        .await
        .expect("create");
    assert_eq!(stored, tenant, "create returns the tenant as stored");
    assert_eq!(by_id(&store, tenant_id(1)).await, Some(tenant.clone()));
    assert_eq!(by_slug(&store, "engines-42").await, Some(tenant));

    let plain = create_tenant(&store, new_tenant(2, "plain", 10), None).await;
    assert_eq!(
        plain,
        new_tenant(2, "plain", 10),
        "empty texts and settings"
    );
    assert_eq!(by_slug(&store, "plain").await, Some(plain));
    assert_eq!(by_id(&store, tenant_id(3)).await, None);
    assert_eq!(by_slug(&store, "engines").await, None, "slugs match whole");
    let members = store.members(tenant_id(1), ALL).await.expect("members");
    assert_eq!((members.items, members.total), (vec![], 0), "no member");
}

/// `create` with a new admin creates the user (as `insert` would) and makes them the
/// tenant's admin since the tenant's creation.
pub async fn tenant_create_with_a_new_admin_creates_the_user_and_membership<S>(store: S)
where
    S: Store,
{
    let tenant = new_tenant(1, "lab", 5);
    let stored = as_tenants(&store)
        .create(
            tenant.clone(),
            Some(TenantAdmin::New(new_user(1, "ada@example.com", "Ada"))),
            Journal::default(),
        )
        .await
        .expect("create");
    assert_eq!(stored, tenant);
    let ada = find_user(&store, user_id(1)).await;
    assert_eq!(ada.email.as_str(), "ada@example.com");
    assert_eq!(ada.username.as_str(), "Ada");
    assert_eq!((ada.version, ada.created_at), (1, at(0)));
    let admin = membership(tenant_id(1), user_id(1), TenantRole::Admin, 5);
    assert_eq!(
        role_of(&store, tenant_id(1), user_id(1)).await,
        Some(TenantRole::Admin)
    );
    let members = store.members(tenant_id(1), ALL).await.expect("members");
    assert_eq!(
        members.items,
        vec![Member {
            membership: admin,
            user: ada,
        }]
    );
    assert_eq!(members.total, 1);
    assert_eq!(
        store.tenants_of(user_id(1)).await.expect("tenants_of"),
        vec![TenantMembership {
            membership: admin,
            tenant,
        }]
    );
}

/// `create` with an existing admin adds their admin membership and leaves the user as is.
pub async fn tenant_create_with_an_existing_admin_adds_the_membership<S>(store: S)
where
    S: Store,
{
    let ada = insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let tenant = create_tenant(
        &store,
        new_tenant(1, "lab", 5),
        Some(TenantAdmin::Existing(user_id(1))),
    )
    .await;
    assert_eq!(tenant, new_tenant(1, "lab", 5));
    assert_eq!(
        find_user(&store, user_id(1)).await,
        ada,
        "the user is unchanged"
    );
    let members = store.members(tenant_id(1), ALL).await.expect("members");
    assert_eq!(
        members.items,
        vec![Member {
            membership: membership(tenant_id(1), user_id(1), TenantRole::Admin, 5),
            user: ada,
        }]
    );
}

/// Asserts that `result` is `expected` and that neither tenant 2 nor user 2 was written;
/// `why` names the case.
async fn assert_nothing_created<S: Store>(
    store: &S,
    result: Result<Tenant, StoreError>,
    expected: &StoreError,
    why: &str,
) {
    let matches = match (&result, expected) {
        (Err(StoreError::Duplicate(got)), StoreError::Duplicate(want)) => got == want,
        (Err(StoreError::NotFound), StoreError::NotFound) => true,
        _ => false,
    };
    assert!(matches, "{why}: expected {expected:?}, got {result:?}");
    assert_eq!(by_id(store, tenant_id(2)).await, None, "{why}: no tenant");
    assert_eq!(by_slug(store, "lab-two").await, None, "{why}: no tenant");
    assert_eq!(
        store.find_by_id(user_id(2)).await.expect("find_by_id"),
        None,
        "{why}: no user"
    );
    assert!(
        store
            .tenants_of(user_id(1))
            .await
            .expect("tenants_of")
            .iter()
            .all(|m| m.tenant.id == tenant_id(1)),
        "{why}: no membership"
    );
}

/// A taken slug is `Duplicate(Slug)` (reported before anything about the admin), a new
/// admin's taken e-mail or username `Duplicate(Email)` / `Duplicate(Username)` (the e-mail
/// first), an unknown existing admin `NotFound`; in each case nothing is written, neither the
/// tenant, the user, the membership nor the journal.
pub async fn tenant_create_failures_write_nothing<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    create_tenant(
        &store,
        new_tenant(1, "taken", 0),
        Some(TenantAdmin::Existing(user_id(1))),
    )
    .await;
    let fresh = |address: &str, login: &str| Some(TenantAdmin::New(new_user(2, address, login)));
    let cases = [
        (
            "taken",
            None,
            StoreError::Duplicate(UniqueField::Slug),
            "a taken slug",
        ),
        (
            "taken",
            fresh("new@example.com", "newbie"),
            StoreError::Duplicate(UniqueField::Slug),
            "a taken slug, with a new admin",
        ),
        (
            "taken",
            fresh("ada@example.com", "ada"),
            StoreError::Duplicate(UniqueField::Slug),
            "a taken slug, with a new admin whose address and name are taken",
        ),
        (
            "taken",
            Some(TenantAdmin::Existing(user_id(1))),
            StoreError::Duplicate(UniqueField::Slug),
            "a taken slug, with an existing admin",
        ),
        (
            "lab-two",
            fresh("ADA@example.com", "newbie"),
            StoreError::Duplicate(UniqueField::Email),
            "a new admin's taken address",
        ),
        (
            "lab-two",
            fresh("new@example.com", "ADA"),
            StoreError::Duplicate(UniqueField::Username),
            "a new admin's taken username",
        ),
        (
            "lab-two",
            fresh("ada@example.com", "Ada"),
            StoreError::Duplicate(UniqueField::Email),
            "a new admin's taken address and username",
        ),
        (
            "lab-two",
            Some(TenantAdmin::Existing(user_id(9))),
            StoreError::NotFound,
            "an unknown existing admin",
        ),
    ];
    for (raw_slug, admin, expected, why) in cases {
        let result = as_tenants(&store)
            .create(
                new_tenant(2, raw_slug, 10),
                admin,
                journal(1, AuditAction::TenantCreated),
            )
            .await;
        assert_nothing_created(&store, result, &expected, why).await;
    }
    assert_no_events(&store, "a refused create writes no journal").await;
    create_tenant(&store, new_tenant(2, "lab-two", 10), None).await;
}

/// `list` returns all tenants, or a member's only, oldest first with ties by id, one page at
/// a time, with the number of all of them.
pub async fn tenant_list_all_or_a_members_oldest_first_paginated<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    for (n, created) in [(1, 30), (2, 10), (3, 20), (4, 10), (5, 40)] {
        create_tenant(&store, new_tenant(n, &format!("lab-{n}"), created), None).await;
    }
    for n in [1, 4, 5] {
        add_member(&store, tenant_id(n), user_id(1), TenantRole::Viewer, 0).await;
    }
    let ids = |ns: &[u128]| ns.iter().map(|&n| tenant_id(n)).collect::<Vec<_>>();
    for (member, request, expected, total) in [
        (None, ALL, ids(&[2, 4, 3, 1, 5]), 5),
        (None, page(1, 2), ids(&[2, 4]), 5),
        (None, page(2, 2), ids(&[3, 1]), 5),
        (None, page(3, 2), ids(&[5]), 5),
        (None, page(4, 2), ids(&[]), 5),
        (Some(user_id(1)), ALL, ids(&[4, 1, 5]), 3),
        (Some(user_id(1)), page(2, 2), ids(&[5]), 3),
        (Some(user_id(2)), ALL, ids(&[]), 0),
        (Some(user_id(9)), ALL, ids(&[]), 0),
    ] {
        let listed = as_tenants(&store)
            .list(member, request)
            .await
            .expect("list");
        assert_eq!(
            tenant_ids(&listed.items),
            expected,
            "{member:?} {request:?}"
        );
        assert_eq!(listed.total, total, "{member:?} {request:?}: total");
        for tenant in &listed.items {
            assert_eq!(
                tenant,
                &find_tenant(&store, tenant.id).await,
                "whole tenants"
            );
        }
    }
}

/// `update` applies exactly the given changes, bumps the version and sets `updated_at`
/// (keeping `created_at`); a new slug finds the tenant and the old one no longer does.
pub async fn tenant_update_applies_changes_and_bumps_the_version<S>(store: S)
where
    S: Store,
{
    let original = create_tenant(&store, new_tenant(1, "lab", 0), None).await;
    let serde_json::Value::Object(settings) = serde_json::json!({"seats": 3, "sso": {"on": false}})
    else {
        unreachable!("an object literal")
    };
    let everything = TenantChanges {
        name: Some("Renamed".to_owned()),
        slug: Some(slug("new-lab")),
        description: Some("Now described".to_owned()),
        domain: Some("lab.example".to_owned()),
        settings: Some(settings.clone()),
        is_active: Some(false),
    };
    let updated = as_tenants(&store)
        .update(
            tenant_id(1),
            everything,
            Some(1),
            at(10),
            Journal::default(),
        )
        .await
        .expect("update");
    let expected = Tenant {
        name: "Renamed".to_owned(),
        slug: slug("new-lab"),
        description: "Now described".to_owned(),
        domain: "lab.example".to_owned(),
        settings,
        is_active: false,
        updated_at: at(10),
        version: 2,
        ..original.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(by_slug(&store, "new-lab").await, Some(expected.clone()));
    assert_eq!(by_slug(&store, "lab").await, None, "the old slug is free");

    let partial = TenantChanges {
        is_active: Some(true),
        slug: Some(slug("new-lab")),
        ..TenantChanges::default()
    };
    let updated = as_tenants(&store)
        .update(tenant_id(1), partial, None, at(20), Journal::default())
        .await
        .expect("keeping its own slug");
    let expected = Tenant {
        is_active: true,
        updated_at: at(20),
        version: 3,
        ..expected
    };
    assert_eq!(updated, expected, "unchanged fields are kept");
    assert_eq!(find_tenant(&store, tenant_id(1)).await, expected);
    assert_eq!(updated.created_at, original.created_at);
    create_tenant(&store, new_tenant(2, "lab", 30), None).await;
}

/// `update` is `StaleVersion` for another version, `Duplicate(Slug)` for another tenant's
/// slug, `NotFound` for an unknown id; each writes nothing, the journal included.
pub async fn tenant_update_failures_write_nothing<S>(store: S)
where
    S: Store,
{
    let first = create_tenant(&store, new_tenant(1, "lab", 0), None).await;
    let second = create_tenant(&store, new_tenant(2, "other", 0), None).await;
    let change = |raw_slug: &str| TenantChanges {
        name: Some("Changed".to_owned()),
        slug: Some(slug(raw_slug)),
        ..TenantChanges::default()
    };
    for (id, changes, version, why) in [
        (tenant_id(1), change("fresh"), Some(2), "a stale version"),
        (tenant_id(1), change("other"), None, "another tenant's slug"),
        (
            tenant_id(1),
            change("other"),
            Some(1),
            "another tenant's slug, current version",
        ),
        (tenant_id(9), change("fresh"), None, "an unknown tenant"),
        (
            tenant_id(9),
            change("fresh"),
            Some(1),
            "an unknown tenant, with a version",
        ),
    ] {
        let result = as_tenants(&store)
            .update(
                id,
                changes,
                version,
                at(10),
                journal(1, AuditAction::TenantUpdated),
            )
            .await;
        let ok = match &result {
            Err(StoreError::StaleVersion) => why == "a stale version",
            Err(StoreError::Duplicate(UniqueField::Slug)) => why.starts_with("another"),
            Err(StoreError::NotFound) => why.starts_with("an unknown"),
            _ => false,
        };
        assert!(ok, "{why}: got {result:?}");
        assert_eq!(find_tenant(&store, tenant_id(1)).await, first, "{why}");
        assert_eq!(find_tenant(&store, tenant_id(2)).await, second, "{why}");
        assert_eq!(by_slug(&store, "fresh").await, None, "{why}");
    }
    assert_no_events(&store, "a refused update writes no journal").await;
}

/// `delete` removes the tenant and its memberships, not its members nor other tenants'
/// memberships; an unknown tenant is `NotFound` and writes no journal.
pub async fn tenant_delete_removes_memberships_but_not_users<S>(store: S)
where
    S: Store,
{
    let ada = insert(&store, new_user(1, "ada@example.com", "ada")).await;
    let bob = insert(&store, new_user(2, "bob@example.com", "bob")).await;
    create_tenant(
        &store,
        new_tenant(1, "lab", 0),
        Some(TenantAdmin::Existing(user_id(1))),
    )
    .await;
    let other = create_tenant(&store, new_tenant(2, "other", 0), None).await;
    add_member(&store, tenant_id(1), user_id(2), TenantRole::Member, 1).await;
    add_member(&store, tenant_id(2), user_id(2), TenantRole::Viewer, 2).await;

    as_tenants(&store)
        .delete(tenant_id(1), journal(1, AuditAction::TenantDeleted))
        .await
        .expect("delete");
    assert_eq!(by_id(&store, tenant_id(1)).await, None);
    assert_eq!(by_slug(&store, "lab").await, None);
    assert_eq!(role_of(&store, tenant_id(1), user_id(1)).await, None);
    assert_eq!(role_of(&store, tenant_id(1), user_id(2)).await, None);
    let members = store.members(tenant_id(1), ALL).await.expect("members");
    assert_eq!((members.items.len(), members.total), (0, 0));
    assert_eq!(
        store.tenants_of(user_id(2)).await.expect("tenants_of"),
        vec![TenantMembership {
            membership: membership(tenant_id(2), user_id(2), TenantRole::Viewer, 2),
            tenant: other,
        }],
        "the other tenant's membership stays"
    );
    assert_eq!(find_user(&store, user_id(1)).await, ada, "users stay");
    assert_eq!(find_user(&store, user_id(2)).await, bob, "users stay");

    let again = as_tenants(&store)
        .delete(tenant_id(1), journal(2, AuditAction::TenantDeleted))
        .await;
    assert!(
        matches!(again, Err(StoreError::NotFound)),
        "expected NotFound, got {again:?}"
    );
    assert_eq!(
        events(&store).await.len(),
        1,
        "a refused delete writes no journal"
    );
    create_tenant(&store, new_tenant(3, "lab", 0), None).await;
}

/// `role_of` is the member's role, `None` for a non-member or an unknown tenant;
/// `shared_roles(viewer, target)` are the viewer's roles in the tenants the target belongs to.
pub async fn role_of_and_shared_roles_read_the_memberships<S>(store: S)
where
    S: Store,
{
    for n in 1..=4 {
        insert(&store, user_n(n, Role::User, true)).await;
    }
    for n in 1..=3 {
        create_tenant(&store, new_tenant(n, &format!("lab-{n}"), 0), None).await;
    }
    for (tenant, user, role) in [
        (1, 1, TenantRole::Admin),
        (1, 2, TenantRole::Member),
        (2, 1, TenantRole::Viewer),
        (2, 3, TenantRole::Moderator),
        (3, 2, TenantRole::Viewer),
    ] {
        add_member(&store, tenant_id(tenant), user_id(user), role, 0).await;
    }
    for (tenant, user, expected) in [
        (1, 1, Some(TenantRole::Admin)),
        (1, 2, Some(TenantRole::Member)),
        (2, 1, Some(TenantRole::Viewer)),
        (2, 3, Some(TenantRole::Moderator)),
        (1, 3, None),
        (3, 1, None),
        (9, 1, None),
        (1, 9, None),
    ] {
        assert_eq!(
            role_of(&store, tenant_id(tenant), user_id(user)).await,
            expected,
            "tenant {tenant}, user {user}"
        );
    }
    for (viewer, target, expected) in [
        (1, 2, vec![TenantRole::Admin]),
        (1, 3, vec![TenantRole::Viewer]),
        (3, 1, vec![TenantRole::Moderator]),
        (2, 1, vec![TenantRole::Member]),
        (1, 1, vec![TenantRole::Admin, TenantRole::Viewer]),
        (2, 3, vec![]),
        (4, 1, vec![]),
        (1, 4, vec![]),
        (9, 1, vec![]),
    ] {
        let roles = store
            .shared_roles(user_id(viewer), user_id(target))
            .await
            .expect("shared_roles");
        assert_eq!(
            role_set(roles),
            expected,
            "viewer {viewer}, target {target}"
        );
    }
}

/// `members` lists a tenant's members with their current accounts, oldest membership first
/// (ties by user id), one page at a time, with the number of all of them.
pub async fn members_are_paginated_oldest_first_with_their_users<S>(store: S)
where
    S: Store,
{
    for n in 1..=6 {
        insert(&store, user_n(n, Role::User, true)).await;
    }
    create_tenant(&store, new_tenant(1, "lab", 0), None).await;
    create_tenant(&store, new_tenant(2, "other", 0), None).await;
    let joined = [(1, 30), (2, 10), (3, 20), (4, 10), (5, 40)];
    for (n, when) in joined {
        add_member(&store, tenant_id(1), user_id(n), TenantRole::Member, when).await;
    }
    add_member(&store, tenant_id(2), user_id(6), TenantRole::Admin, 0).await;
    as_users(&store)
        .update(
            user_id(3),
            UserChanges {
                role: Some(Role::Admin),
                ..UserChanges::default()
            },
            None,
            at(50),
            Journal::default(),
        )
        .await
        .expect("update");
    let joined_at = |n: u128| joined.iter().find(|(m, _)| *m == n).expect("a member").1;
    for (request, expected) in [
        (ALL, vec![2, 4, 3, 1, 5]),
        (page(1, 2), vec![2, 4]),
        (page(2, 2), vec![3, 1]),
        (page(3, 2), vec![5]),
        (page(4, 2), vec![]),
    ] {
        let members = store.members(tenant_id(1), request).await.expect("members");
        assert_eq!(members.total, 5, "{request:?}: total");
        let mut want = Vec::new();
        for n in expected {
            want.push(Member {
                membership: membership(tenant_id(1), user_id(n), TenantRole::Member, joined_at(n)),
                user: find_user(&store, user_id(n)).await,
            });
        }
        assert_eq!(members.items, want, "{request:?}");
    }
    let three: User = find_user(&store, user_id(3)).await;
    assert_eq!(three.role, Role::Admin, "members carry the current account");
    let none = store.members(tenant_id(9), ALL).await.expect("members");
    assert_eq!((none.items.len(), none.total), (0, 0), "an unknown tenant");
}

/// `tenants_of` lists every tenant of the user with the membership, oldest membership first
/// (ties by tenant id), and nothing for a user without any.
pub async fn tenants_of_lists_memberships_oldest_first<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    let mut tenants = Vec::new();
    for n in 1..=4 {
        tenants.push(create_tenant(&store, new_tenant(n, &format!("lab-{n}"), 0), None).await);
    }
    for (tenant, role, when) in [
        (3, TenantRole::Viewer, 10),
        (1, TenantRole::Admin, 20),
        (2, TenantRole::Member, 10),
    ] {
        add_member(&store, tenant_id(tenant), user_id(1), role, when).await;
    }
    add_member(&store, tenant_id(4), user_id(2), TenantRole::Admin, 0).await;
    let expected: Vec<TenantMembership> = [
        (2, TenantRole::Member, 10),
        (3, TenantRole::Viewer, 10),
        (1, TenantRole::Admin, 20),
    ]
    .into_iter()
    .map(|(n, role, when)| TenantMembership {
        membership: membership(tenant_id(n), user_id(1), role, when),
        tenant: tenants[usize::try_from(n - 1).expect("small")].clone(),
    })
    .collect();
    assert_eq!(
        store.tenants_of(user_id(1)).await.expect("tenants_of"),
        expected
    );
    insert(&store, new_user(3, "carol@example.com", "carol")).await;
    assert_eq!(
        store.tenants_of(user_id(3)).await.expect("tenants_of"),
        vec![],
        "no membership"
    );
    assert_eq!(
        store.tenants_of(user_id(9)).await.expect("tenants_of"),
        vec![],
        "an unknown user"
    );
}

/// `add_member` stores the membership as given; a second membership of the same user is
/// `Duplicate(Membership)` (the first role stays), an unknown tenant or user `NotFound`;
/// refusals write no journal.
pub async fn add_member_refuses_duplicates_and_unknowns<S>(store: S)
where
    S: Store,
{
    let ada = insert(&store, new_user(1, "ada@example.com", "ada")).await;
    create_tenant(&store, new_tenant(1, "lab", 0), None).await;
    let joined = membership(tenant_id(1), user_id(1), TenantRole::Moderator, 7);
    store
        .add_member(joined, NOTHING, Journal::default())
        .await
        .expect("add_member");
    let members = store.members(tenant_id(1), ALL).await.expect("members");
    assert_eq!(
        members.items,
        vec![Member {
            membership: joined,
            user: ada,
        }]
    );
    for (candidate, expected, why) in [
        (
            membership(tenant_id(1), user_id(1), TenantRole::Admin, 8),
            "Duplicate(Membership)",
            "a second membership",
        ),
        (
            membership(tenant_id(9), user_id(1), TenantRole::Member, 8),
            "NotFound",
            "an unknown tenant",
        ),
        (
            membership(tenant_id(1), user_id(9), TenantRole::Member, 8),
            "NotFound",
            "an unknown user",
        ),
        (
            membership(tenant_id(9), user_id(9), TenantRole::Member, 8),
            "NotFound",
            "an unknown tenant and user",
        ),
    ] {
        let result = store
            .add_member(
                candidate,
                NOTHING,
                journal(1, AuditAction::TenantMemberAdded),
            )
            .await;
        let got = match &result {
            Err(StoreError::Duplicate(UniqueField::Membership)) => "Duplicate(Membership)",
            Err(StoreError::NotFound) => "NotFound",
            _ => "something else",
        };
        assert_eq!(got, expected, "{why}: got {result:?}");
    }
    assert_eq!(
        role_of(&store, tenant_id(1), user_id(1)).await,
        Some(TenantRole::Moderator),
        "the first role stays"
    );
    assert_eq!(role_of(&store, tenant_id(1), user_id(9)).await, None);
    assert_no_events(&store, "a refused add_member writes no journal").await;
}

/// `change_role` sets the role and returns the membership (its join time kept); keeping the
/// role, even the last admin's, is no demotion; `remove_member` removes only that
/// membership.
pub async fn change_role_and_remove_member_change_only_that_membership<S>(store: S)
where
    S: Store,
{
    for n in 1..=3 {
        insert(&store, user_n(n, Role::User, true)).await;
    }
    create_tenant(
        &store,
        new_tenant(1, "lab", 0),
        Some(TenantAdmin::Existing(user_id(1))),
    )
    .await;
    create_tenant(&store, new_tenant(2, "other", 0), None).await;
    add_member(&store, tenant_id(1), user_id(2), TenantRole::Viewer, 5).await;
    add_member(&store, tenant_id(2), user_id(2), TenantRole::Viewer, 6).await;
    for role in [TenantRole::Moderator, TenantRole::Admin, TenantRole::Member] {
        let changed = store
            .change_role(tenant_id(1), user_id(2), role, NOTHING, Journal::default())
            .await
            .expect("change_role");
        assert_eq!(
            changed,
            membership(tenant_id(1), user_id(2), role, 5),
            "{role}"
        );
        assert_eq!(role_of(&store, tenant_id(1), user_id(2)).await, Some(role));
    }
    assert_eq!(
        role_of(&store, tenant_id(2), user_id(2)).await,
        Some(TenantRole::Viewer),
        "other tenants are untouched"
    );
    let kept = store
        .change_role(
            tenant_id(1),
            user_id(1),
            TenantRole::Admin,
            NOTHING,
            Journal::default(),
        )
        .await
        .expect("keeping the last admin an admin");
    assert_eq!(
        kept,
        membership(tenant_id(1), user_id(1), TenantRole::Admin, 0)
    );

    store
        .remove_member(tenant_id(1), user_id(2), NOTHING, Journal::default())
        .await
        .expect("remove_member");
    assert_eq!(role_of(&store, tenant_id(1), user_id(2)).await, None);
    assert_eq!(
        role_of(&store, tenant_id(2), user_id(2)).await,
        Some(TenantRole::Viewer),
        "other tenants are untouched"
    );
    assert!(
        store.find_by_id(user_id(2)).await.expect("find").is_some(),
        "the user stays"
    );
}

/// `change_role` and `remove_member` of a non-member (of a known or unknown tenant) are
/// `NotFound` and write nothing.
pub async fn change_role_and_remove_member_of_a_non_member_are_not_found<S>(store: S)
where
    S: Store,
{
    insert(&store, new_user(1, "ada@example.com", "ada")).await;
    insert(&store, new_user(2, "bob@example.com", "bob")).await;
    create_tenant(
        &store,
        new_tenant(1, "lab", 0),
        Some(TenantAdmin::Existing(user_id(1))),
    )
    .await;
    for (tenant, user, why) in [
        (1, 2, "a user who is not a member"),
        (1, 9, "an unknown user"),
        (9, 1, "an unknown tenant"),
    ] {
        let changed = store
            .change_role(
                tenant_id(tenant),
                user_id(user),
                TenantRole::Admin,
                NOTHING,
                journal(1, AuditAction::TenantMemberRoleChanged),
            )
            .await;
        assert!(
            matches!(changed, Err(StoreError::NotFound)),
            "change_role of {why}: expected NotFound, got {changed:?}"
        );
        let removed = store
            .remove_member(
                tenant_id(tenant),
                user_id(user),
                NOTHING,
                journal(2, AuditAction::TenantMemberRemoved),
            )
            .await;
        assert!(
            matches!(removed, Err(StoreError::NotFound)),
            "remove_member of {why}: expected NotFound, got {removed:?}"
        );
    }
    assert_eq!(role_of(&store, tenant_id(1), user_id(2)).await, None);
    assert_no_events(&store, "a refused change writes no journal").await;
}

/// Demoting or removing a tenant's last active admin is `LastAdmin(Tenant(t))` and writes
/// nothing; an inactive second admin does not count (and may be demoted), nor does an active
/// admin of another tenant; an active second admin makes it allowed.
pub async fn change_role_and_remove_member_keep_the_last_active_admin<S>(store: S)
where
    S: Store,
{
    for n in 1..=4 {
        insert(&store, user_n(n, Role::User, true)).await;
    }
    create_tenant(
        &store,
        new_tenant(1, "lab", 0),
        Some(TenantAdmin::Existing(user_id(1))),
    )
    .await;
    create_tenant(
        &store,
        new_tenant(2, "other", 0),
        Some(TenantAdmin::Existing(user_id(4))),
    )
    .await;
    let refuse = |admin: u128, why: &'static str| {
        let store = &store;
        async move {
            for demotion in [TenantRole::Moderator, TenantRole::Viewer] {
                let result = store
                    .change_role(
                        tenant_id(1),
                        user_id(admin),
                        demotion,
                        NOTHING,
                        journal(1, AuditAction::TenantMemberRoleChanged),
                    )
                    .await;
                assert!(
                    matches!(result, Err(StoreError::LastAdmin(LastAdmin::Tenant(t))) if t == tenant_id(1)),
                    "{why}: demoting to {demotion}: expected LastAdmin(Tenant), got {result:?}"
                );
            }
            let result = store
                .remove_member(
                    tenant_id(1),
                    user_id(admin),
                    NOTHING,
                    journal(2, AuditAction::TenantMemberRemoved),
                )
                .await;
            assert!(
                matches!(result, Err(StoreError::LastAdmin(LastAdmin::Tenant(t))) if t == tenant_id(1)),
                "{why}: removing: expected LastAdmin(Tenant), got {result:?}"
            );
            assert_eq!(
                role_of(store, tenant_id(1), user_id(admin)).await,
                Some(TenantRole::Admin),
                "{why}: nothing was written"
            );
            assert_no_events(store, &format!("{why}: no journal")).await;
        }
    };
    refuse(1, "the only admin, with an admin of another tenant").await;

    add_member(&store, tenant_id(1), user_id(2), TenantRole::Admin, 1).await;
    deactivate(&store, user_id(2)).await;
    refuse(1, "the only active admin, with an inactive one").await;
    let demoted = store
        .change_role(
            tenant_id(1),
            user_id(2),
            TenantRole::Member,
            NOTHING,
            Journal::default(),
        )
        .await
        .expect("an inactive admin may be demoted");
    assert_eq!(demoted.role, TenantRole::Member);
    store
        .change_role(
            tenant_id(1),
            user_id(2),
            TenantRole::Admin,
            NOTHING,
            Journal::default(),
        )
        .await
        .expect("promoting");

    activate(&store, user_id(2)).await;
    store
        .change_role(
            tenant_id(1),
            user_id(1),
            TenantRole::Member,
            NOTHING,
            Journal::default(),
        )
        .await
        .expect("allowed with another active admin");
    refuse(2, "the admin left after a demotion").await;
    add_member(&store, tenant_id(1), user_id(3), TenantRole::Admin, 2).await;
    store
        .remove_member(tenant_id(1), user_id(2), NOTHING, Journal::default())
        .await
        .expect("allowed with another active admin");
    refuse(3, "the admin left after a removal").await;
}

/// Sets `is_active` to false, with no journal.
async fn deactivate<S: UserStore>(store: &S, id: UserId) {
    set_active(store, id, false).await;
}

/// Sets `is_active` to true, with no journal.
async fn activate<S: UserStore>(store: &S, id: UserId) {
    set_active(store, id, true).await;
}

async fn set_active<S: UserStore>(store: &S, id: UserId, is_active: bool) {
    store
        .update(
            id,
            UserChanges {
                is_active: Some(is_active),
                ..UserChanges::default()
            },
            None,
            at(0),
            Journal::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("set {id} active = {is_active}: {e:?}"));
}

/// Of two concurrent changes each removing one of a tenant's only two active admins
/// (demotions, a demotion and a removal, a demotion and a deactivation of the account),
/// exactly one succeeds and the other is `LastAdmin(Tenant(t))`; repeated so that the calls
/// really overlap.
pub async fn concurrent_demotions_of_a_tenants_only_two_admins_leave_one<S>(store: S)
where
    S: Store,
{
    const ROUNDS: u128 = 12;
    insert(&store, user_n(1, Role::User, true)).await;
    insert(&store, user_n(2, Role::User, true)).await;
    create_tenant(
        &store,
        new_tenant(1, "lab", 0),
        Some(TenantAdmin::Existing(user_id(1))),
    )
    .await;
    add_member(&store, tenant_id(1), user_id(2), TenantRole::Admin, 1).await;
    let store = Arc::new(store);
    for round in 0..ROUNDS {
        let start = Arc::new(tokio::sync::Barrier::new(2));
        let demote = {
            let store = Arc::clone(&store);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                store
                    .change_role(
                        tenant_id(1),
                        user_id(1),
                        TenantRole::Member,
                        NOTHING,
                        journal(round * 2, AuditAction::TenantMemberRoleChanged),
                    )
                    .await
                    .map(drop)
            })
        };
        let other = {
            let store = Arc::clone(&store);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                let journal = journal(round * 2 + 1, AuditAction::TenantMemberRemoved);
                match round % 3 {
                    0 => store
                        .change_role(
                            tenant_id(1),
                            user_id(2),
                            TenantRole::Viewer,
                            NOTHING,
                            journal,
                        )
                        .await
                        .map(drop),
                    1 => {
                        store
                            .remove_member(tenant_id(1), user_id(2), NOTHING, journal)
                            .await
                    }
                    _ => UserStore::update(
                        store.as_ref(),
                        user_id(2),
                        UserChanges {
                            is_active: Some(false),
                            ..UserChanges::default()
                        },
                        None,
                        at(0),
                        journal,
                    )
                    .await
                    .map(drop),
                }
            })
        };
        let mut succeeded = 0;
        for (task, what) in [(demote, "the demotion"), (other, "the other change")] {
            match task.await.expect("task") {
                Ok(()) => succeeded += 1,
                Err(StoreError::LastAdmin(LastAdmin::Tenant(t))) if t == tenant_id(1) => {}
                Err(e) => panic!("round {round}, {what}: expected LastAdmin(Tenant), got {e:?}"),
            }
        }
        assert_eq!(succeeded, 1, "round {round}: exactly one change succeeds");
        let mut active_admins = 0;
        for member in store
            .members(tenant_id(1), ALL)
            .await
            .expect("members")
            .items
        {
            if member.membership.role == TenantRole::Admin && member.user.is_active {
                active_admins += 1;
            }
        }
        assert_eq!(active_admins, 1, "round {round}: one active admin is left");
        assert_eq!(
            events(store.as_ref()).await.len() as u128,
            round + 1,
            "round {round}: only the change that succeeded wrote its journal"
        );

        // Restore both admins.
        activate(store.as_ref(), user_id(2)).await;
        for n in [1, 2] {
            match role_of(store.as_ref(), tenant_id(1), user_id(n)).await {
                None => {
                    add_member(
                        store.as_ref(),
                        tenant_id(1),
                        user_id(n),
                        TenantRole::Admin,
                        1,
                    )
                    .await
                }
                Some(TenantRole::Admin) => {}
                Some(_) => {
                    store
                        .change_role(
                            tenant_id(1),
                            user_id(n),
                            TenantRole::Admin,
                            NOTHING,
                            Journal::default(),
                        )
                        .await
                        .expect("restore");
                }
            }
        }
    }
}

/// What a decision by `actor` holding `role`, about a member holding `member`, assumed.
fn assumed(member: Option<TenantRole>, actor: Option<(u128, TenantRole)>) -> Assumed {
    Assumed {
        member,
        actor: actor.map(|(n, role)| (user_id(n), role)),
    }
}

/// Tenant 1 with admin 1, moderator 2, member 3, and user 4 of no tenant; tenant 2 where
/// user 2 is the admin (a role elsewhere is no role in tenant 1).
async fn lab_with_a_moderator<S: Store>(store: &S) {
    for n in 1..=4 {
        insert(store, user_n(n, Role::User, true)).await;
    }
    create_tenant(
        store,
        new_tenant(1, "lab", 0),
        Some(TenantAdmin::Existing(user_id(1))),
    )
    .await;
    create_tenant(
        store,
        new_tenant(2, "other", 0),
        Some(TenantAdmin::Existing(user_id(2))),
    )
    .await;
    add_member(store, tenant_id(1), user_id(2), TenantRole::Moderator, 1).await;
    add_member(store, tenant_id(1), user_id(3), TenantRole::Member, 2).await;
}

/// The roles of users 1 to 4 in tenant 1.
async fn lab_roles<S: TenantStore>(store: &S) -> Vec<Option<TenantRole>> {
    let mut roles = Vec::new();
    for n in 1..=4 {
        roles.push(role_of(store, tenant_id(1), user_id(n)).await);
    }
    roles
}

/// The name of a membership change's outcome, for comparing with the expected one.
fn outcome<T>(result: &Result<T, StoreError>) -> &'static str {
    match result {
        Ok(_) => "Ok",
        Err(StoreError::Changed) => "Changed",
        Err(StoreError::NotFound) => "NotFound",
        Err(StoreError::Duplicate(UniqueField::Membership)) => "Duplicate(Membership)",
        Err(StoreError::LastAdmin(LastAdmin::Tenant(_))) => "LastAdmin(Tenant)",
        Err(_) => "something else",
    }
}

/// `change_role` and `remove_member` whose assumed member or actor role is not the one held
/// now (another role, another tenant's role, or no membership at all) are `Changed` and
/// write nothing, no journal either; `Changed` comes after `NotFound` for an unknown tenant
/// and before `NotFound` for a non-member and `LastAdmin`. With the roles held, they apply.
pub async fn change_role_and_remove_member_with_stale_assumptions_are_changed<S>(store: S)
where
    S: Store,
{
    use TenantRole::{Admin, Member, Moderator, Viewer};
    lab_with_a_moderator(&store).await;
    let before = lab_roles(&store).await;
    let moderator = Some((2, Moderator));
    // (tenant, member, assumed, expected, why); "Changed" comes after NotFound for an
    // unknown tenant and before NotFound for a non-member and LastAdmin.
    let stale = |member, assumed, why| (1, member, assumed, "Changed", why);
    #[rustfmt::skip]
    let cases = [
        stale(3, assumed(Some(Viewer), moderator), "the member holds another role"),
        stale(3, assumed(Some(Admin), None), "the member holds another role"),
        stale(4, assumed(Some(Member), moderator), "the member is no member"),
        stale(9, assumed(Some(Member), moderator), "the member is no user"),
        stale(3, assumed(Some(Member), Some((2, Admin))), "the actor is admin elsewhere"),
        stale(3, assumed(Some(Member), Some((4, Moderator))), "the actor is no member"),
        stale(3, assumed(None, Some((2, Viewer))), "the actor holds another role"),
        stale(4, assumed(None, Some((2, Admin))), "a stale actor, for a non-member"),
        stale(1, assumed(Some(Moderator), None), "a stale last admin"),
        stale(1, assumed(Some(Admin), Some((2, Member))), "a stale actor, of the last admin"),
        (9, 3, assumed(Some(Viewer), Some((2, Viewer))), "NotFound", "an unknown tenant"),
        (1, 4, assumed(None, moderator), "NotFound", "a non-member, nothing assumed"),
    ];
    for (tenant, member, assumed, expected, why) in cases {
        let changed = store
            .change_role(
                tenant_id(tenant),
                user_id(member),
                Viewer,
                assumed,
                journal(1, AuditAction::TenantMemberRoleChanged),
            )
            .await;
        assert_eq!(
            outcome(&changed),
            expected,
            "change_role: {why} ({assumed:?}): got {changed:?}"
        );
        let removed = store
            .remove_member(
                tenant_id(tenant),
                user_id(member),
                assumed,
                journal(2, AuditAction::TenantMemberRemoved),
            )
            .await;
        assert_eq!(
            outcome(&removed),
            expected,
            "remove_member: {why} ({assumed:?}): got {removed:?}"
        );
    }
    assert_eq!(lab_roles(&store).await, before, "nothing was written");
    assert_no_events(&store, "a refused change writes no journal").await;

    // With the roles held now, by a member, by the member themselves and with no actor.
    let changed = store
        .change_role(
            tenant_id(1),
            user_id(3),
            Viewer,
            assumed(Some(Member), moderator),
            Journal::default(),
        )
        .await
        .expect("change_role as assumed");
    assert_eq!(changed.role, Viewer);
    store
        .change_role(
            tenant_id(1),
            user_id(2),
            Member,
            assumed(Some(Moderator), moderator),
            Journal::default(),
        )
        .await
        .expect("lowering one's own role as assumed");
    store
        .change_role(
            tenant_id(1),
            user_id(2),
            Moderator,
            assumed(Some(Member), None),
            Journal::default(),
        )
        .await
        .expect("change_role with no actor");
    store
        .remove_member(
            tenant_id(1),
            user_id(3),
            assumed(Some(Viewer), moderator),
            Journal::default(),
        )
        .await
        .expect("remove_member as assumed");
    assert_eq!(
        lab_roles(&store).await,
        [Some(Admin), Some(Moderator), None, None]
    );
}

/// `add_member` by an actor who no longer holds the assumed role in the tenant (another
/// role, another tenant's role, no membership) is `Changed` and writes nothing, no journal
/// either; `Changed` comes after `NotFound` (unknown tenant or user) and before
/// `Duplicate(Membership)`. With the role held, or no actor, it adds the member.
pub async fn add_member_with_a_stale_actor_role_is_changed<S>(store: S)
where
    S: Store,
{
    use TenantRole::{Admin, Member, Moderator, Viewer};
    lab_with_a_moderator(&store).await;
    let before = lab_roles(&store).await;
    // (tenant, user, actor, expected, why)
    #[rustfmt::skip]
    let cases = [
        (1, 4, Some((2, Admin)), "Changed", "the actor is admin elsewhere"),
        (1, 4, Some((3, Moderator)), "Changed", "the actor holds another role"),
        (1, 4, Some((4, Moderator)), "Changed", "the actor is no member"),
        (1, 3, Some((2, Admin)), "Changed", "a stale actor, before Duplicate"),
        (9, 4, Some((2, Admin)), "NotFound", "an unknown tenant comes first"),
        (1, 9, Some((2, Admin)), "NotFound", "an unknown user comes first"),
        (1, 3, Some((2, Moderator)), "Duplicate(Membership)", "a member, as assumed"),
    ];
    for (tenant, user, actor, expected, why) in cases {
        let result = store
            .add_member(
                membership(tenant_id(tenant), user_id(user), Viewer, 8),
                assumed(None, actor),
                journal(1, AuditAction::TenantMemberAdded),
            )
            .await;
        assert_eq!(
            outcome(&result),
            expected,
            "{why} ({actor:?}): got {result:?}"
        );
    }
    assert_eq!(lab_roles(&store).await, before, "nothing was written");
    assert_no_events(&store, "a refused add_member writes no journal").await;

    store
        .add_member(
            membership(tenant_id(1), user_id(4), Viewer, 8),
            assumed(None, Some((2, Moderator))),
            Journal::default(),
        )
        .await
        .expect("add_member as assumed");
    assert_eq!(
        role_of(&store, tenant_id(1), user_id(4)).await,
        Some(Viewer)
    );
    store
        .add_member(
            membership(tenant_id(2), user_id(4), Member, 9),
            assumed(None, None),
            Journal::default(),
        )
        .await
        .expect("add_member with no actor");
    assert_eq!(
        role_of(&store, tenant_id(2), user_id(4)).await,
        Some(Member)
    );
}

/// A moderator's removal of a member racing an admin's promotion of the same member to
/// admin: exactly one applies. The removal, assuming a member, never removes the admin the
/// promotion made (`Changed`), and a promotion after the removal finds no member
/// (`Changed`); only the change that applied writes its journal. Repeated so that the calls
/// really overlap.
pub async fn a_removal_racing_a_promotion_never_removes_an_admin<S>(store: S)
where
    S: Store,
{
    use TenantRole::{Admin, Member, Moderator};
    const ROUNDS: u128 = 12;
    lab_with_a_moderator(&store).await;
    let store = Arc::new(store);
    let (mut promoted, mut removed) = (0, 0);
    for round in 0..ROUNDS {
        let start = Arc::new(tokio::sync::Barrier::new(2));
        let promote = {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                store
                    .change_role(
                        tenant_id(1),
                        user_id(3),
                        Admin,
                        assumed(Some(Member), Some((1, Admin))),
                        journal(round * 2, AuditAction::TenantMemberRoleChanged),
                    )
                    .await
                    .map(drop)
            })
        };
        let remove = {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                store
                    .remove_member(
                        tenant_id(1),
                        user_id(3),
                        assumed(Some(Member), Some((2, Moderator))),
                        journal(round * 2 + 1, AuditAction::TenantMemberRemoved),
                    )
                    .await
            })
        };
        let promotion = promote.await.expect("task");
        let removal = remove.await.expect("task");
        let now = role_of(store.as_ref(), tenant_id(1), user_id(3)).await;
        match (outcome(&promotion), outcome(&removal)) {
            ("Ok", "Changed") => {
                assert_eq!(now, Some(Admin), "round {round}: promoted");
                promoted += 1;
            }
            ("Changed", "Ok") => {
                assert_eq!(now, None, "round {round}: removed");
                removed += 1;
            }
            _ => panic!(
                "round {round}: expected exactly one change and `Changed` for the other, got \
                 promotion {promotion:?}, removal {removal:?}, role now {now:?}"
            ),
        }
        assert_eq!(
            events(store.as_ref()).await.len() as u128,
            round + 1,
            "round {round}: only the change that applied wrote its journal"
        );

        // Make user 3 a member again.
        match now {
            None => add_member(store.as_ref(), tenant_id(1), user_id(3), Member, 2).await,
            Some(_) => {
                store
                    .change_role(
                        tenant_id(1),
                        user_id(3),
                        Member,
                        NOTHING,
                        Journal::default(),
                    )
                    .await
                    .expect("restore");
            }
        }
    }
    assert_eq!(promoted + removed, ROUNDS);
}
