//! `AuditService`: who reads which events, and the retention purge.

use chrono::TimeDelta;
use uuid::Uuid;

use super::fixture::{
    ADMIN, ALICE, BOB, Calls, Fixture, SESSION, TENANT, acme, admin, alice, denied, event,
    first_page, inactive, now, principal_from_client, principal_in_tenant,
};
use crate::model::{AuditAction, AuditEvent, AuditTarget, TenantId, TenantRole};
use crate::ports::{AuditFilter, Paged, StoreError};
use crate::services::ManageError;

const OTHER_TENANT: TenantId = TenantId::from_uuid(Uuid::from_u128(0x7E4A_4702));

/// What the caller asks for: Bob's logins, in another tenant than the one they name.
fn filter() -> AuditFilter {
    AuditFilter {
        actor: Some(BOB),
        action: Some(AuditAction::UserLogin),
        tenant: Some(OTHER_TENANT),
        target: None,
        since: Some(now() - TimeDelta::days(7)),
        until: None,
    }
}

fn one_event() -> Paged<AuditEvent> {
    Paged {
        items: vec![event(
            99,
            AuditAction::UserLogin,
            Some(BOB),
            AuditTarget::User(BOB),
            &Default::default(),
        )],
        total: 1,
    }
}

/// The audit log lists once and the filter it was given is recorded.
fn audit_lists(fx: &mut Fixture) -> Calls<AuditFilter> {
    let filters = Calls::new();
    let recorder = filters.clone();
    fx.audit
        .expect_list()
        .withf(|_, page| *page == first_page())
        .times(1)
        .returning(move |filter, _| {
            recorder.record(filter);
            Ok(one_event())
        });
    filters
}

#[tokio::test]
async fn a_system_admin_reads_every_event_with_the_filter_as_given() {
    let mut fx = Fixture::new();
    let filters = audit_lists(&mut fx);
    fx.tenants.expect_find().never();

    let page = fx
        .audit_service()
        .list(
            &principal_from_client(admin(), SESSION),
            None,
            filter(),
            first_page(),
        )
        .await
        .unwrap();

    assert_eq!(page, one_event());
    assert_eq!(filters.all(), [filter()]);
}

#[tokio::test]
async fn a_system_admin_naming_a_tenant_reads_that_tenants_events() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    // A system administrator need not be a member.
    fx.tenants.expect_role_of().never();
    let filters = audit_lists(&mut fx);

    fx.audit_service()
        .list(
            &principal_from_client(admin(), SESSION),
            Some(&acme()),
            filter(),
            first_page(),
        )
        .await
        .unwrap();

    let expected = AuditFilter {
        tenant: Some(TENANT),
        ..filter()
    };
    assert_eq!(filters.all(), [expected]);
}

#[tokio::test]
async fn a_system_admin_naming_an_unknown_tenant_reads_nothing() {
    let mut fx = Fixture::new();
    fx.no_tenant();
    fx.audit.expect_list().never();

    let page = fx
        .audit_service()
        .list(
            &principal_from_client(admin(), SESSION),
            Some(&acme()),
            filter(),
            first_page(),
        )
        .await
        .unwrap();

    assert_eq!(
        page,
        Paged {
            items: vec![],
            total: 0
        }
    );
}

#[tokio::test]
async fn a_tenant_admin_reads_only_the_tenant_they_name() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(TenantRole::Admin));
    let filters = audit_lists(&mut fx);
    let appended = fx.appended.clone();

    let page = fx
        .audit_service()
        .list(
            &principal_in_tenant(alice(), TenantRole::Viewer),
            Some(&acme()),
            filter(),
            first_page(),
        )
        .await
        .unwrap();

    assert_eq!(page, one_event());
    let forced = AuditFilter {
        tenant: Some(TENANT),
        ..filter()
    };
    assert_eq!(
        filters.all(),
        [forced],
        "the tenant asked for is overridden"
    );
    assert!(appended.all().is_empty());
}

#[tokio::test]
async fn moderators_members_viewers_and_non_members_of_the_tenant_read_nothing() {
    for role in [
        Some(TenantRole::Moderator),
        Some(TenantRole::Member),
        Some(TenantRole::Viewer),
        None,
    ] {
        let mut fx = Fixture::new();
        fx.tenant_exists();
        fx.live_role(ALICE, role);
        fx.audit.expect_list().never();
        let appended = fx.appended.clone();

        // The token's claim says admin; the live membership decides.
        let result = fx
            .audit_service()
            .list(
                &principal_in_tenant(alice(), TenantRole::Admin),
                Some(&acme()),
                filter(),
                first_page(),
            )
            .await;

        assert!(
            matches!(result, Err(ManageError::Forbidden)),
            "{role:?}: {result:?}"
        );
        assert_eq!(
            appended.all(),
            [denied(
                1,
                ALICE,
                "audit.list",
                AuditTarget::Tenant(TENANT),
                Some(TENANT)
            )],
            "{role:?}"
        );
    }
}

#[tokio::test]
async fn a_caller_who_is_not_a_system_admin_must_name_a_tenant() {
    // No tenant given, or one that does not exist: the same refusal.
    for caller in [alice(), inactive(admin())] {
        for name_one in [false, true] {
            let mut fx = Fixture::new();
            if name_one {
                fx.no_tenant();
            } else {
                fx.tenants.expect_find().never();
            }
            fx.tenants.expect_role_of().never();
            fx.audit.expect_list().never();
            let appended = fx.appended.clone();
            let caller_id = caller.id;

            let result = fx
                .audit_service()
                .list(
                    &principal_from_client(caller.clone(), SESSION),
                    name_one.then(acme).as_ref(),
                    filter(),
                    first_page(),
                )
                .await;

            let case = format!("{caller_id:?}, names a tenant: {name_one}");
            assert!(
                matches!(result, Err(ManageError::Forbidden)),
                "{case}: {result:?}"
            );
            assert_eq!(
                appended.all(),
                [denied(1, caller_id, "audit.list", AuditTarget::None, None)],
                "{case}"
            );
        }
    }
}

#[tokio::test]
async fn an_inactive_tenant_admin_reads_nothing() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ADMIN, Some(TenantRole::Admin));
    fx.audit.expect_list().never();

    let result = fx
        .audit_service()
        .list(
            &principal_from_client(inactive(admin()), SESSION),
            Some(&acme()),
            AuditFilter::default(),
            first_page(),
        )
        .await;

    assert!(matches!(result, Err(ManageError::Forbidden)), "{result:?}");
}

// ----- purge_before ---------------------------------------------------------------------------

/// The audit log deletes `batches` in turn (and fails when asked once more).
fn purges(fx: &mut Fixture, batches: &[u64]) -> Calls<(chrono::DateTime<chrono::Utc>, u32)> {
    let calls = Calls::new();
    for &deleted in batches {
        let recorder = calls.clone();
        fx.audit
            .expect_purge_before()
            .times(1)
            .returning(move |before, limit| {
                recorder.record((before, limit));
                Ok(deleted)
            });
    }
    calls
}

#[tokio::test]
async fn purge_deletes_in_batches_until_a_batch_is_short_and_returns_the_total() {
    let before = now() - TimeDelta::days(90);
    for (batches, total) in [
        (&[100, 100, 37][..], 237),
        (&[100, 0][..], 100),
        (&[0][..], 0),
        (&[99][..], 99),
    ] {
        let mut fx = Fixture::new();
        let calls = purges(&mut fx, batches);

        let deleted = fx.audit_service().purge_before(before, 100).await.unwrap();

        assert_eq!(deleted, total, "{batches:?}");
        assert_eq!(
            calls.all(),
            vec![(before, 100); batches.len()],
            "{batches:?}"
        );
    }
}

#[tokio::test]
async fn purge_stops_at_the_first_failure() {
    let mut fx = Fixture::new();
    purges(&mut fx, &[10]);
    fx.audit
        .expect_purge_before()
        .times(1)
        .returning(|_, _| Err(StoreError::Unavailable("down".into())));

    let result = fx.audit_service().purge_before(now(), 10).await;

    assert!(
        matches!(result, Err(ManageError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn purge_with_a_batch_of_zero_ends() {
    let mut fx = Fixture::new();
    // A batch of nothing deletes nothing: the store is not asked at all (were it asked, the
    // mock would fail the test instead of the loop running for ever).
    fx.audit.expect_purge_before().never();

    let result = fx.audit_service().purge_before(now(), 0).await;

    assert_eq!(result.unwrap(), 0);
}
