//! Contract checks for `AuditLog`, and for the journals every changing store method writes
//! with its change. The conventions and decisions are those of [`stores`](super::stores).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeDelta;
use domain::model::{AuditAction, AuditEvent, AuditTarget, Journal, ProfileChanges, TenantRole};
use domain::ports::{
    ActionPurpose, ActionToken, Assumed, AuditFilter, AuditLog, SessionStore, TenantAdmin,
    TenantChanges, TenantStore, UserChanges, UserStore,
};
use uuid::Uuid;

use super::fixtures::{
    ALL, Store, as_audit, assert_no_events, at, event, event_id, events, issue, membership, name,
    new_session, new_tenant, new_user, page, password_hash, session_id, tenant_id, token, user_id,
};

/// Event `n` with every field set: an actor and a tenant (that need not exist), `target`,
/// an IPv6 address, a request id and nested JSON details.
fn full(n: u128, action: AuditAction, target: AuditTarget) -> AuditEvent {
    let serde_json::Value::Object(details) = serde_json::json!({
        "n": u64::try_from(n).expect("small"),
        "fields": ["email", "role"],
        "nested": {"ok": true, "ratio": 0.25, "none": null, "negative": -7},
        "text": format!("event {n}: é \"quoted\" ✓"),
    }) else {
        unreachable!("an object literal")
    };
    AuditEvent {
        actor: Some(user_id(100 + n)),
        tenant: Some(tenant_id(100 + n)),
        target,
        ip: Some(format!("2001:db8::{n:x}")),
        request_id: Some(format!("req-{n}")),
        details,
        ..event(n, action)
    }
}

/// Records that `method` wrote `journal` and checks that the stored events are exactly
/// everything recorded so far, newest first, every field as given.
async fn written<S: AuditLog>(
    store: &S,
    recorded: &mut Vec<AuditEvent>,
    journal: &Journal,
    method: &str,
) {
    recorded.extend(journal.events.iter().cloned());
    let mut expected = recorded.clone();
    expected.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
    assert_eq!(
        events(store).await,
        expected,
        "{method} writes its journal's events, every field as given"
    );
}

/// Every journal-taking method of every store port writes its journal's events (all of
/// them, for a journal of two), and `AuditLog::list` reads each back with every field as
/// given: ids, microsecond instants, actor, tenant, action, each kind of target or none,
/// address, request id and JSON details.
pub async fn every_journal_taking_method_writes_its_journal<S>(store: S)
where
    S: Store,
{
    let mut recorded = Vec::new();
    let ada = AuditTarget::User(user_id(1));
    let session = AuditTarget::Session(session_id(1));
    let lab = AuditTarget::Tenant(tenant_id(1));

    let j = Journal::of(full(1, AuditAction::UserRegistered, ada));
    store
        .insert(new_user(1, "ada@example.com", "ada"), j.clone())
        .await
        .expect("insert");
    written(&store, &mut recorded, &j, "UserStore::insert").await;

    let j = Journal::of(full(2, AuditAction::UserUpdated, ada));
    let changes = UserChanges {
        profile: ProfileChanges {
            first_name: Some(name("Augusta")),
            ..ProfileChanges::default()
        },
        ..UserChanges::default()
    };
    UserStore::update(&store, user_id(1), changes, None, at(2), j.clone())
        .await
        .expect("update");
    written(&store, &mut recorded, &j, "UserStore::update").await;

    let mut precise = full(3, AuditAction::UserPasswordChanged, ada);
    precise.at += TimeDelta::microseconds(250_123);
    let j = Journal::of(precise);
    store
        .change_password(
            user_id(1),
            password_hash("user-1"),
            password_hash("new"),
            None,
            at(3),
            j.clone(),
        )
        .await
        .expect("change_password");
    written(&store, &mut recorded, &j, "UserStore::change_password").await;

    let j = Journal::of(full(4, AuditAction::UserLogin, session));
    // A login that checked the password as it is now, after the change.
    let mut login = new_session(1, user_id(1), 4, 1000);
    login.verified_password = password_hash("new");
    SessionStore::create(&store, login, j.clone())
        .await
        .expect("create a session");
    written(&store, &mut recorded, &j, "SessionStore::create").await;

    let j = Journal::of(full(5, AuditAction::UserLogout, session));
    assert!(
        store
            .revoke(user_id(1), session_id(1), at(5), j.clone())
            .await
            .expect("revoke")
    );
    written(&store, &mut recorded, &j, "SessionStore::revoke").await;

    let j = Journal::of(full(6, AuditAction::SessionRevoked, ada));
    store
        .revoke_all(user_id(1), at(6), j.clone())
        .await
        .expect("revoke_all");
    written(&store, &mut recorded, &j, "SessionStore::revoke_all").await;

    issue(
        &store,
        ActionToken {
            hash: token(7),
            user_id: user_id(1),
            purpose: ActionPurpose::VerifyEmail,
            created_at: at(0),
            expires_at: at(100),
        },
    )
    .await;
    let j = Journal::of(full(7, AuditAction::UserEmailVerified, ada));
    assert!(
        store
            .verify_email(&token(7), user_id(1), at(7), j.clone())
            .await
            .expect("verify_email")
    );
    written(&store, &mut recorded, &j, "UserStore::verify_email").await;

    let j = Journal::of(full(8, AuditAction::TenantCreated, lab));
    TenantStore::create(&store, new_tenant(1, "lab", 8), None, j.clone())
        .await
        .expect("create a tenant");
    written(&store, &mut recorded, &j, "TenantStore::create").await;

    let j = Journal {
        events: vec![
            full(
                9,
                AuditAction::TenantCreated,
                AuditTarget::Tenant(tenant_id(2)),
            ),
            full(10, AuditAction::UserCreated, AuditTarget::User(user_id(2))),
        ],
        ..Journal::default()
    };
    TenantStore::create(
        &store,
        new_tenant(2, "other", 9),
        Some(TenantAdmin::New(new_user(2, "bob@example.com", "bob"))),
        j.clone(),
    )
    .await
    .expect("create a tenant with a new admin");
    written(
        &store,
        &mut recorded,
        &j,
        "TenantStore::create with a new admin",
    )
    .await;

    let j = Journal::of(full(11, AuditAction::TenantUpdated, lab));
    let changes = TenantChanges {
        name: Some("Renamed".to_owned()),
        ..TenantChanges::default()
    };
    TenantStore::update(&store, tenant_id(1), changes, None, at(11), j.clone())
        .await
        .expect("update a tenant");
    written(&store, &mut recorded, &j, "TenantStore::update").await;

    let j = Journal::of(full(12, AuditAction::TenantMemberAdded, ada).in_tenant(tenant_id(1)));
    store
        .add_member(
            membership(tenant_id(1), user_id(1), TenantRole::Member, 12),
            Assumed::default(),
            j.clone(),
        )
        .await
        .expect("add_member");
    written(&store, &mut recorded, &j, "TenantStore::add_member").await;

    let j = Journal::of(
        full(13, AuditAction::TenantMemberRoleChanged, ada)
            .with("role", "moderator")
            .with("previous", "member"),
    );
    store
        .change_role(
            tenant_id(1),
            user_id(1),
            TenantRole::Moderator,
            Assumed {
                member: Some(TenantRole::Member),
                actor: None,
            },
            j.clone(),
        )
        .await
        .expect("change_role");
    written(&store, &mut recorded, &j, "TenantStore::change_role").await;

    let j = Journal::of(full(14, AuditAction::TenantMemberRemoved, ada));
    store
        .remove_member(
            tenant_id(1),
            user_id(1),
            Assumed {
                member: Some(TenantRole::Moderator),
                actor: None,
            },
            j.clone(),
        )
        .await
        .expect("remove_member");
    written(&store, &mut recorded, &j, "TenantStore::remove_member").await;

    let j = Journal::of(full(15, AuditAction::TenantDeleted, lab));
    TenantStore::delete(&store, tenant_id(1), j.clone())
        .await
        .expect("delete a tenant");
    written(&store, &mut recorded, &j, "TenantStore::delete").await;

    let j = Journal::of(full(16, AuditAction::UserDeleted, ada));
    UserStore::delete(&store, user_id(1), None, j.clone())
        .await
        .expect("delete a user");
    written(&store, &mut recorded, &j, "UserStore::delete").await;

    let j = Journal {
        events: vec![
            event(17, AuditAction::AccessDenied),
            full(18, AuditAction::UserLoginFailed, AuditTarget::None).with("login", "ada"),
        ],
        ..Journal::default()
    };
    store.append(j.clone()).await.expect("append");
    written(&store, &mut recorded, &j, "AuditLog::append").await;
    assert_eq!(recorded.len(), 18);
}

/// `append` writes every event of a journal or, when one cannot be written (its id is taken),
/// none of them; an empty journal writes nothing.
pub async fn append_writes_all_or_none<S>(store: S)
where
    S: Store,
{
    store
        .append(Journal::default())
        .await
        .expect("an empty journal");
    assert_no_events(&store, "an empty journal writes nothing").await;
    let first = event(1, AuditAction::UserLoginFailed);
    let second = event(2, AuditAction::UserLocked);
    store
        .append(Journal {
            events: vec![first.clone(), second.clone()],
            ..Journal::default()
        })
        .await
        .expect("append");
    assert_eq!(events(&store).await, vec![second.clone(), first.clone()]);

    let refused = store
        .append(Journal {
            events: vec![event(3, AuditAction::UserLoginFailed), first.clone()],
            ..Journal::default()
        })
        .await;
    assert!(refused.is_err(), "a taken id is refused, got {refused:?}");
    assert_eq!(
        events(&store).await,
        vec![second, first],
        "none of a refused journal's events is written"
    );
}

/// Events 1 to 5, at(10) to at(50), with varied actors, tenants, actions and targets.
fn five_events() -> Vec<AuditEvent> {
    let (a, b, c) = (user_id(1), user_id(2), user_id(3));
    let with = |n: u128,
                action: AuditAction,
                actor: Option<domain::model::UserId>,
                tenant: Option<domain::model::TenantId>,
                target: AuditTarget| AuditEvent {
        at: at(i64::try_from(n * 10).expect("small")),
        actor,
        tenant,
        target,
        ..event(n, action)
    };
    vec![
        with(
            1,
            AuditAction::UserLogin,
            Some(a),
            Some(tenant_id(1)),
            AuditTarget::Session(session_id(1)),
        ),
        with(
            2,
            AuditAction::TenantMemberAdded,
            Some(b),
            Some(tenant_id(1)),
            AuditTarget::User(c),
        ),
        with(
            3,
            AuditAction::UserLogin,
            Some(a),
            Some(tenant_id(2)),
            AuditTarget::Tenant(tenant_id(2)),
        ),
        with(
            4,
            AuditAction::UserLoginFailed,
            None,
            None,
            AuditTarget::None,
        ),
        with(
            5,
            AuditAction::TenantMemberAdded,
            Some(c),
            Some(tenant_id(2)),
            AuditTarget::User(a),
        ),
    ]
}

/// Each filter (actor, action, tenant, target id of any type, `since` inclusive, `until`
/// exclusive) and their combination returns exactly the matching events, newest first, with
/// `total` counting them.
pub async fn audit_list_filters_by_each_field<S>(store: S)
where
    S: Store,
{
    let all = five_events();
    store
        .append(Journal {
            events: all.clone(),
            ..Journal::default()
        })
        .await
        .expect("append");
    let uuid = |target: AuditTarget| target.id().expect("a target with an id");
    let cases: Vec<(AuditFilter, Vec<u128>)> = vec![
        (AuditFilter::default(), vec![5, 4, 3, 2, 1]),
        (
            AuditFilter {
                actor: Some(user_id(1)),
                ..AuditFilter::default()
            },
            vec![3, 1],
        ),
        (
            AuditFilter {
                actor: Some(user_id(9)),
                ..AuditFilter::default()
            },
            vec![],
        ),
        (
            AuditFilter {
                action: Some(AuditAction::UserLogin),
                ..AuditFilter::default()
            },
            vec![3, 1],
        ),
        (
            AuditFilter {
                action: Some(AuditAction::TenantMemberAdded),
                ..AuditFilter::default()
            },
            vec![5, 2],
        ),
        (
            AuditFilter {
                action: Some(AuditAction::UserDeleted),
                ..AuditFilter::default()
            },
            vec![],
        ),
        (
            AuditFilter {
                tenant: Some(tenant_id(1)),
                ..AuditFilter::default()
            },
            vec![2, 1],
        ),
        (
            AuditFilter {
                tenant: Some(tenant_id(2)),
                ..AuditFilter::default()
            },
            vec![5, 3],
        ),
        (
            AuditFilter {
                target: Some(uuid(AuditTarget::User(user_id(1)))),
                ..AuditFilter::default()
            },
            vec![5],
        ),
        (
            AuditFilter {
                target: Some(uuid(AuditTarget::User(user_id(3)))),
                ..AuditFilter::default()
            },
            vec![2],
        ),
        (
            AuditFilter {
                target: Some(uuid(AuditTarget::Tenant(tenant_id(2)))),
                ..AuditFilter::default()
            },
            vec![3],
        ),
        (
            AuditFilter {
                target: Some(uuid(AuditTarget::Session(session_id(1)))),
                ..AuditFilter::default()
            },
            vec![1],
        ),
        (
            AuditFilter {
                target: Some(Uuid::from_u128(0xdead)),
                ..AuditFilter::default()
            },
            vec![],
        ),
        (
            AuditFilter {
                since: Some(at(30)),
                ..AuditFilter::default()
            },
            vec![5, 4, 3],
        ),
        (
            AuditFilter {
                until: Some(at(30)),
                ..AuditFilter::default()
            },
            vec![2, 1],
        ),
        (
            AuditFilter {
                since: Some(at(20)),
                until: Some(at(40)),
                ..AuditFilter::default()
            },
            vec![3, 2],
        ),
        (
            AuditFilter {
                since: Some(at(30) + TimeDelta::microseconds(1)),
                until: Some(at(50)),
                ..AuditFilter::default()
            },
            vec![4],
        ),
        (
            AuditFilter {
                actor: Some(user_id(1)),
                action: Some(AuditAction::UserLogin),
                tenant: Some(tenant_id(2)),
                target: Some(uuid(AuditTarget::Tenant(tenant_id(2)))),
                since: Some(at(30)),
                until: Some(at(31)),
            },
            vec![3],
        ),
    ];
    for (filter, expected) in cases {
        let listed = as_audit(&store)
            .list(filter.clone(), ALL)
            .await
            .expect("list");
        let want: Vec<AuditEvent> = expected
            .iter()
            .map(|&n| all[usize::try_from(n - 1).expect("small")].clone())
            .collect();
        assert_eq!(listed.items, want, "{filter:?}");
        assert_eq!(listed.total, want.len() as u64, "{filter:?}: total");
    }
}

/// `list` is newest first, events of the same instant by id descending, one page at a time,
/// with `total` counting every match on every page.
pub async fn audit_list_is_newest_first_and_paginated<S>(store: S)
where
    S: Store,
{
    for (n, when) in [(1, 10), (2, 30), (3, 20), (4, 30), (5, 10)] {
        let at_when = AuditEvent {
            at: at(when),
            ..event(n, AuditAction::UserLogin)
        };
        store.append(Journal::of(at_when)).await.expect("append");
    }
    let ids = |ns: &[u128]| ns.iter().map(|&n| event_id(n)).collect::<Vec<_>>();
    for (request, expected) in [
        (ALL, ids(&[4, 2, 3, 5, 1])),
        (page(1, 2), ids(&[4, 2])),
        (page(2, 2), ids(&[3, 5])),
        (page(3, 2), ids(&[1])),
        (page(4, 2), ids(&[])),
    ] {
        let listed = as_audit(&store)
            .list(AuditFilter::default(), request)
            .await
            .expect("list");
        let got: Vec<_> = listed.items.iter().map(|e| e.id).collect();
        assert_eq!(got, expected, "{request:?}");
        assert_eq!(listed.total, 5, "{request:?}: total");
    }
    let recent = AuditFilter {
        since: Some(at(20)),
        ..AuditFilter::default()
    };
    let listed = as_audit(&store)
        .list(recent, page(2, 2))
        .await
        .expect("list");
    let got: Vec<_> = listed.items.iter().map(|e| e.id).collect();
    assert_eq!(got, ids(&[3]), "a filtered page");
    assert_eq!(listed.total, 3, "a filtered total");
}

/// `purge_before` deletes at most `limit` events before the instant, oldest first, returning
/// how many; events at or after the instant stay.
pub async fn purge_before_deletes_at_most_limit_of_the_oldest<S>(store: S)
where
    S: Store,
{
    for (n, when) in [(1, 10), (2, 20), (3, 30), (4, 40), (5, 50), (6, 25)] {
        let at_when = AuditEvent {
            at: at(when),
            ..event(n, AuditAction::UserLogin)
        };
        store.append(Journal::of(at_when)).await.expect("append");
    }
    let remaining = |store: &S| {
        let store = store.clone();
        async move {
            let mut ids: Vec<_> = events(&store).await.into_iter().map(|e| e.id).collect();
            ids.sort();
            ids
        }
    };
    let ids = |ns: &[u128]| ns.iter().map(|&n| event_id(n)).collect::<Vec<_>>();
    for (limit, deleted, left, why) in [
        (
            0,
            0,
            ids(&[1, 2, 3, 4, 5, 6]),
            "a limit of 0 deletes nothing",
        ),
        (2, 2, ids(&[3, 4, 5, 6]), "the two oldest"),
        (2, 2, ids(&[4, 5]), "the next two oldest"),
        (2, 0, ids(&[4, 5]), "the event at the instant stays"),
    ] {
        let purged = as_audit(&store)
            .purge_before(at(40), limit)
            .await
            .expect("purge_before");
        assert_eq!(purged, deleted, "{why}: the count");
        assert_eq!(remaining(&store).await, left, "{why}");
    }
    let purged = as_audit(&store)
        .purge_before(at(100), 10)
        .await
        .expect("purge_before");
    assert_eq!(purged, 2, "fewer than the limit");
    assert_no_events(&store, "everything before the instant was purged").await;
}
