//! `TenantService`: visibility before authorization, decisions on the live membership, the
//! first admin of a new tenant, members and their roles, and what each change journals.

use serde_json::json;

use super::fixture::{
    ADMIN, ALICE, BOB, Calls, Fixture, PASSWORD, SESSION, STORED_HASH, TENANT, acme, action_token,
    admin, alice, assert_carries_token, bob, client, credentials, denied, event, fields,
    first_page, generated_id, inactive, names_acme, now, principal, principal_from_client,
    principal_in_tenant, sealed_mail, secret, tenant, token,
};
use crate::model::{
    ActionPurpose, AuditAction, AuditTarget, Journal, MailKind, Membership, Role, Tenant, TenantId,
    TenantRef, TenantRole, TenantSlug, TenantVersion, UserId,
};
use crate::ports::{
    Assumed, LastAdmin, Login, Member, Paged, StoreError, TenantAdmin, TenantChanges,
    TenantMembership, UniqueField,
};
use crate::services::{
    AdminInput, ClientInfo, Conflict, ManageError, MemberRef, NewTenantInput, Principal,
    Registration, TenantService, TenantUpdate,
};

use TenantRole::{Admin as A, Member as M, Moderator as Mo, Viewer as V};

/// A tenant other than [`TENANT`].
const OTHER_TENANT: TenantId = TenantId::from_uuid(uuid::Uuid::from_u128(0x7E4A_4702));

// ----- visibility -----------------------------------------------------------------------------

/// Every `TenantService` method that takes a tenant.
#[derive(Debug, Clone, Copy)]
enum Op {
    Get,
    Update,
    Delete,
    Members,
    AddMember,
    ChangeRole,
    RemoveMember,
}

const OPS: [Op; 7] = [
    Op::Get,
    Op::Update,
    Op::Delete,
    Op::Members,
    Op::AddMember,
    Op::ChangeRole,
    Op::RemoveMember,
];

/// Calls `op` on [`acme`], about Bob where it takes a member, and keeps only the outcome.
async fn call(service: &TenantService, who: &Principal, op: Op) -> Result<(), ManageError> {
    let reference = acme();
    match op {
        Op::Get => service.get(who, &reference).await.map(drop),
        Op::Update => {
            let update = TenantUpdate {
                name: Some("Acme Labs".to_owned()),
                ..TenantUpdate::default()
            };
            service
                .update(who, &reference, update, None)
                .await
                .map(drop)
        }
        Op::Delete => service.delete(who, &reference).await,
        Op::Members => service
            .members(who, &reference, first_page())
            .await
            .map(drop),
        Op::AddMember => service
            .add_member(who, &reference, MemberRef::Id(BOB), M)
            .await
            .map(drop),
        Op::ChangeRole => service.change_role(who, &reference, BOB, M).await.map(drop),
        Op::RemoveMember => service.remove_member(who, &reference, BOB).await,
    }
}

/// Nobody's account is looked up.
fn no_user_lookup(fx: &mut Fixture) {
    fx.users.expect_find_by_id().never();
    fx.users.expect_find_credentials().never();
}

#[tokio::test]
async fn a_tenant_the_caller_is_not_a_member_of_is_answered_as_an_unknown_one() {
    for op in OPS {
        for exists in [false, true] {
            let mut fx = Fixture::new();
            if exists {
                fx.tenant_exists();
                fx.live_role(ALICE, None);
            } else {
                fx.no_tenant();
                fx.tenants.expect_role_of().never();
            }
            fx.no_tenant_writes();
            no_user_lookup(&mut fx);
            let appended = fx.appended.clone();

            let result = call(&fx.tenant_service(), &principal(alice(), SESSION), op).await;

            let case = format!("{op:?}, tenant exists: {exists}");
            assert!(
                matches!(result, Err(ManageError::NotFound)),
                "{case}: {result:?}"
            );
            assert!(
                appended.all().is_empty(),
                "{case}: hiding a tenant is not a refusal: {:?}",
                appended.all()
            );
        }
    }
}

#[tokio::test]
async fn a_token_scoped_to_the_tenant_does_not_make_a_non_member_see_it() {
    // The claim says admin, but the membership is gone.
    for op in OPS {
        let mut fx = Fixture::new();
        fx.tenant_exists();
        fx.live_role(ALICE, None);
        fx.no_tenant_writes();
        no_user_lookup(&mut fx);

        let result = call(&fx.tenant_service(), &principal_in_tenant(alice(), A), op).await;

        assert!(
            matches!(result, Err(ManageError::NotFound)),
            "{op:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn an_inactive_system_admin_who_is_not_a_member_does_not_see_the_tenant() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ADMIN, None);

    let result = fx
        .tenant_service()
        .get(&principal(inactive(admin()), SESSION), &acme())
        .await;

    assert!(matches!(result, Err(ManageError::NotFound)), "{result:?}");
}

#[tokio::test]
async fn a_system_admin_who_is_not_a_member_sees_the_tenant_and_its_members() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ADMIN, None);
    let page = Paged {
        items: vec![Member {
            membership: Membership {
                tenant_id: TENANT,
                user_id: BOB,
                role: A,
                created_at: now(),
            },
            user: bob(),
        }],
        total: 1,
    };
    let listed = page.clone();
    fx.tenants
        .expect_members()
        .withf(|t, p| *t == TENANT && *p == first_page())
        .times(1)
        .returning(move |_, _| Ok(listed.clone()));
    let service = fx.tenant_service();
    let root = principal(admin(), SESSION);

    assert_eq!(service.get(&root, &acme()).await.unwrap(), tenant());
    assert_eq!(
        service.members(&root, &acme(), first_page()).await.unwrap(),
        page
    );
}

#[tokio::test]
async fn every_member_sees_the_tenant_but_viewers_not_its_members() {
    for role in TenantRole::ALL {
        let mut fx = Fixture::new();
        fx.tenant_exists();
        fx.live_role(ALICE, Some(role));
        let may_list = role != V;
        fx.tenants
            .expect_members()
            .times(usize::from(may_list))
            .returning(|_, _| {
                Ok(Paged {
                    items: vec![],
                    total: 0,
                })
            });
        let appended = fx.appended.clone();
        let service = fx.tenant_service();
        let who = principal_from_client(alice(), SESSION);

        assert_eq!(
            service.get(&who, &acme()).await.unwrap(),
            tenant(),
            "{role}"
        );
        let listed = service.members(&who, &acme(), first_page()).await;

        if may_list {
            assert!(listed.is_ok(), "{role}: {listed:?}");
            assert!(appended.all().is_empty(), "{role}");
        } else {
            assert!(matches!(listed, Err(ManageError::Forbidden)), "{listed:?}");
            assert_eq!(
                appended.all(),
                [denied(
                    1,
                    ALICE,
                    "tenant.members.list",
                    AuditTarget::Tenant(TENANT),
                    Some(TENANT)
                )]
            );
        }
    }
}

#[tokio::test]
async fn list_shows_a_system_admin_every_tenant_and_anyone_else_their_own() {
    for (caller, member) in [
        (admin(), None),
        (alice(), Some(ALICE)),
        (inactive(admin()), Some(ADMIN)),
    ] {
        let mut fx = Fixture::new();
        fx.tenants
            .expect_list()
            .withf(move |m, p| *m == member && *p == first_page())
            .times(1)
            .returning(|_, _| {
                Ok(Paged {
                    items: vec![tenant()],
                    total: 1,
                })
            });

        let page = fx
            .tenant_service()
            .list(&principal(caller, SESSION), first_page())
            .await
            .unwrap();

        assert_eq!(page.items, [tenant()]);
    }
}

// ----- decisions on the live membership -------------------------------------------------------

fn rename() -> TenantUpdate {
    TenantUpdate {
        name: Some("Acme Labs".to_owned()),
        ..TenantUpdate::default()
    }
}

#[tokio::test]
async fn update_is_decided_on_the_live_role_not_the_tokens_claim() {
    // The token still says admin; the store says viewer now.
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(V));
    fx.no_tenant_writes();
    let appended = fx.appended.clone();

    let error = fx
        .tenant_service()
        .update(&principal_in_tenant(alice(), A), &acme(), rename(), None)
        .await
        .unwrap_err();

    assert!(matches!(error, ManageError::Forbidden), "{error:?}");
    assert_eq!(
        appended.all(),
        [denied(
            1,
            ALICE,
            "tenant.update",
            AuditTarget::Tenant(TENANT),
            Some(TENANT)
        )]
    );
}

#[tokio::test]
async fn a_member_promoted_since_their_token_was_issued_may_update() {
    // The token says viewer; the store says admin now.
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(A));
    fx.tenants
        .expect_update()
        .times(1)
        .returning(|_, _, _, _, _| Ok(tenant()));

    let result = fx
        .tenant_service()
        .update(&principal_in_tenant(alice(), V), &acme(), rename(), None)
        .await;

    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn only_system_admins_delete_a_tenant() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(A));
    fx.no_tenant_writes();
    let appended = fx.appended.clone();

    let error = fx
        .tenant_service()
        .delete(&principal_from_client(alice(), SESSION), &acme())
        .await
        .unwrap_err();

    assert!(matches!(error, ManageError::Forbidden), "{error:?}");
    assert_eq!(
        appended.all(),
        [denied(
            1,
            ALICE,
            "tenant.delete",
            AuditTarget::Tenant(TENANT),
            Some(TENANT)
        )]
    );
}

#[tokio::test]
async fn a_system_admin_deletes_a_tenant_with_its_slug_in_the_journal() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ADMIN, None);
    let journals = Calls::new();
    let recorder = journals.clone();
    fx.tenants
        .expect_delete()
        .withf(|id, _| *id == TENANT)
        .times(1)
        .returning(move |_, journal| {
            recorder.record(journal);
            Ok(())
        });

    fx.tenant_service()
        .delete(&principal_from_client(admin(), SESSION), &acme())
        .await
        .unwrap();

    let expected = event(
        1,
        AuditAction::TenantDeleted,
        Some(ADMIN),
        AuditTarget::Tenant(TENANT),
        &client(),
    )
    .in_tenant(TENANT)
    .with("slug", "acme");
    assert_eq!(journals.all(), [Journal::of(expected)]);
}

// ----- create ---------------------------------------------------------------------------------

fn registration() -> Registration {
    Registration {
        email: "Grace@Example.COM".to_owned(),
        username: "grace".to_owned(),
        password: secret(PASSWORD),
        first_name: Some("Grace".to_owned()),
        last_name: Some("Hopper".to_owned()),
    }
}

fn new_tenant(admin: Option<AdminInput>) -> NewTenantInput {
    NewTenantInput {
        name: "  Labs ".to_owned(),
        slug: "labs".to_owned(),
        description: Some("Research".to_owned()),
        domain: Some("labs.example.com".to_owned()),
        settings: Some(json!({"theme": "dark"})),
        admin,
    }
}

type Created = (Tenant, Option<TenantAdmin>, Journal);

/// What the store answers to `create`, given the tenant it was asked to create.
type CreateOutcome = fn(Tenant) -> Result<Tenant, StoreError>;

/// Whether an error is the one expected.
type Expected = fn(&ManageError) -> bool;

/// The store accepts one new tenant and answers `outcome`; the arguments are recorded.
fn store_create(fx: &mut Fixture, outcome: CreateOutcome) -> Calls<Created> {
    let calls = Calls::new();
    let recorder = calls.clone();
    fx.tenants
        .expect_create()
        .times(1)
        .returning(move |tenant, admin, journal| {
            recorder.record((tenant.clone(), admin, journal));
            outcome(tenant)
        });
    calls
}

/// Nothing is hashed or created.
fn nothing_created(fx: &mut Fixture) {
    fx.hasher.expect_hash().never();
    fx.users.expect_insert().never();
    fx.tenants.expect_create().never();
}

#[tokio::test]
async fn create_is_for_system_admins_only() {
    for caller in [alice(), inactive(admin())] {
        let mut fx = Fixture::new();
        nothing_created(&mut fx);
        let appended = fx.appended.clone();
        let caller_id = caller.id;

        let error = fx
            .tenant_service()
            .create(
                &principal_in_tenant(caller, A),
                new_tenant(Some(AdminInput::New(registration()))),
            )
            .await
            .unwrap_err();

        assert!(matches!(error, ManageError::Forbidden), "{error:?}");
        assert_eq!(
            appended.all(),
            [denied(
                1,
                caller_id,
                "tenant.create",
                AuditTarget::None,
                None
            )]
        );
    }
}

#[tokio::test]
async fn create_names_every_invalid_field_at_once_the_new_admins_under_admin() {
    let mut fx = Fixture::new();
    nothing_created(&mut fx);
    fx.strength.expect_estimate().never();
    let input = NewTenantInput {
        name: "   ".to_owned(),
        slug: "Not A Slug".to_owned(),
        description: Some("d".repeat(2001)),
        domain: Some("x".repeat(254)),
        settings: Some(json!(["not", "an", "object"])),
        admin: Some(AdminInput::New(Registration {
            email: "not-an-address".to_owned(),
            username: "x".to_owned(),
            password: secret("short"),
            first_name: None,
            last_name: None,
        })),
    };

    let error = fx
        .tenant_service()
        .create(&principal(admin(), SESSION), input)
        .await
        .unwrap_err();

    let ManageError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(
        fields(&errors),
        [
            "admin.email",
            "admin.password",
            "admin.username",
            "description",
            "domain",
            "name",
            "settings",
            "slug",
        ]
    );
}

#[tokio::test]
async fn create_with_only_the_new_admin_invalid_names_only_admin_fields() {
    let mut fx = Fixture::new();
    nothing_created(&mut fx);
    let mut bad = registration();
    bad.email = "grace@".to_owned();

    let error = fx
        .tenant_service()
        .create(
            &principal(admin(), SESSION),
            new_tenant(Some(AdminInput::New(bad))),
        )
        .await
        .unwrap_err();

    let ManageError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["admin.email"]);
}

#[tokio::test]
async fn create_with_a_guessable_admin_password_names_admin_password() {
    let mut fx = Fixture::new();
    nothing_created(&mut fx);
    fx.strength_scores(0, Some("this is a common phrase"));

    let error = fx
        .tenant_service()
        .create(
            &principal(admin(), SESSION),
            new_tenant(Some(AdminInput::New(registration()))),
        )
        .await
        .unwrap_err();

    let ManageError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["admin.password"]);
}

#[tokio::test]
async fn create_with_a_new_admin_journals_the_tenant_the_user_and_the_membership_together() {
    let mut fx = Fixture::new();
    fx.strength_scores(4, None);
    fx.hashes(PASSWORD);
    // The user is created by the tenant store, in the tenant's transaction, and so are the
    // verification token and the message of the new admin (as on registration).
    fx.users.expect_insert().never();
    fx.users.expect_issue_action_token().never();
    fx.mailer.expect_send().never();
    let created = store_create(&mut fx, Ok);
    let appended = fx.appended.clone();
    let sealed = fx.sealed.clone();
    let verification_ttl = fx.settings.verification_ttl;
    let link = fx.settings.verification_link(&token(1));

    let tenant = fx
        .tenant_service()
        .create(
            &principal_from_client(admin(), SESSION),
            new_tenant(Some(AdminInput::New(registration()))),
        )
        .await
        .unwrap();

    // The admin's id is drawn first (validating the registration), then the tenant's.
    let user_id = UserId::from_uuid(generated_id(1));
    let tenant_id = TenantId::from_uuid(generated_id(2));
    let [(stored, admin, journal)] = created.all().try_into().unwrap();
    assert_eq!(tenant, stored);
    assert_eq!(stored.id, tenant_id);
    assert_eq!(stored.name, "Labs", "trimmed");
    assert_eq!(stored.slug.as_str(), "labs");
    assert_eq!(stored.description, "Research");
    assert_eq!(stored.domain, "labs.example.com");
    assert_eq!(
        serde_json::Value::Object(stored.settings.clone()),
        json!({"theme": "dark"})
    );
    assert!(stored.is_active);
    assert_eq!(stored.version, 1);
    assert_eq!((stored.created_at, stored.updated_at), (now(), now()));

    let Some(TenantAdmin::New(user)) = admin else {
        panic!("expected a new admin, got {admin:?}");
    };
    assert_eq!(user.id, user_id);
    assert_eq!(user.email.as_str(), "grace@example.com");
    assert_eq!(user.username.as_str(), "grace");
    assert_eq!(user.role, Role::User, "a tenant admin, not a system admin");
    assert!(user.is_active);
    assert!(!user.email_verified);
    assert_eq!(user.password_hash.as_str(), STORED_HASH);

    let created_event = event(
        3,
        AuditAction::TenantCreated,
        Some(ADMIN),
        AuditTarget::Tenant(tenant_id),
        &client(),
    )
    .in_tenant(tenant_id)
    .with("slug", "labs");
    let user_event = event(
        4,
        AuditAction::UserCreated,
        Some(ADMIN),
        AuditTarget::User(user_id),
        &client(),
    )
    .with("role", "user");
    // The 5th id is the verification message's.
    let member_event = event(
        6,
        AuditAction::TenantMemberAdded,
        Some(ADMIN),
        AuditTarget::User(user_id),
        &client(),
    )
    .in_tenant(tenant_id)
    .with("role", "admin");
    assert_eq!(journal.events, [created_event, user_event, member_event]);
    assert_eq!(
        journal.tokens,
        [action_token(
            1,
            user_id,
            ActionPurpose::VerifyEmail,
            verification_ttl
        )]
    );
    assert_eq!(journal.mail, [sealed_mail(5, MailKind::Verification)]);
    let [mail] = sealed.of(&journal).try_into().unwrap();
    assert_carries_token(
        &mail,
        "grace@example.com",
        "Confirm your e-mail address",
        &link,
        &token(1),
    );
    assert!(appended.all().is_empty(), "{:?}", appended.all());
}

#[tokio::test]
async fn create_with_an_existing_admin_makes_them_admin_in_the_same_call() {
    let mut fx = Fixture::new();
    fx.hasher.expect_hash().never();
    let created = store_create(&mut fx, Ok);

    fx.tenant_service()
        .create(
            &principal_from_client(admin(), SESSION),
            new_tenant(Some(AdminInput::Existing(BOB))),
        )
        .await
        .unwrap();

    let tenant_id = TenantId::from_uuid(generated_id(1));
    let [(stored, admin, journal)] = created.all().try_into().unwrap();
    assert_eq!(stored.id, tenant_id);
    assert!(
        matches!(admin, Some(TenantAdmin::Existing(BOB))),
        "{admin:?}"
    );
    let created_event = event(
        2,
        AuditAction::TenantCreated,
        Some(ADMIN),
        AuditTarget::Tenant(tenant_id),
        &client(),
    )
    .in_tenant(tenant_id)
    .with("slug", "labs");
    let member_event = event(
        3,
        AuditAction::TenantMemberAdded,
        Some(ADMIN),
        AuditTarget::User(BOB),
        &client(),
    )
    .in_tenant(tenant_id)
    .with("role", "admin");
    assert_eq!(journal.events, [created_event, member_event]);
    // An existing account is not asked to verify again.
    assert!(journal.tokens.is_empty() && journal.mail.is_empty());
}

#[tokio::test]
async fn create_without_an_admin_journals_only_the_tenant() {
    let mut fx = Fixture::new();
    let created = store_create(&mut fx, Ok);

    fx.tenant_service()
        .create(&principal(admin(), SESSION), new_tenant(None))
        .await
        .unwrap();

    let [(_, admin, journal)] = created.all().try_into().unwrap();
    assert!(admin.is_none());
    assert!(journal.tokens.is_empty() && journal.mail.is_empty());
    let [only] = journal.events.try_into().unwrap();
    assert_eq!(only.action, AuditAction::TenantCreated);
}

#[tokio::test]
async fn create_with_an_unknown_existing_admin_names_admin_user_id() {
    let mut fx = Fixture::new();
    store_create(&mut fx, |_| Err(StoreError::NotFound));

    let error = fx
        .tenant_service()
        .create(
            &principal(admin(), SESSION),
            new_tenant(Some(AdminInput::Existing(BOB))),
        )
        .await
        .unwrap_err();

    let ManageError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["admin.user_id"]);
}

#[tokio::test]
async fn create_maps_taken_slugs_e_mails_and_usernames_to_conflicts() {
    let cases: [(CreateOutcome, Conflict); 3] = [
        (
            |_| Err(StoreError::Duplicate(UniqueField::Slug)),
            Conflict::SlugTaken,
        ),
        (
            |_| Err(StoreError::Duplicate(UniqueField::Email)),
            Conflict::EmailTaken,
        ),
        (
            |_| Err(StoreError::Duplicate(UniqueField::Username)),
            Conflict::UsernameTaken,
        ),
    ];
    for (outcome, conflict) in cases {
        let mut fx = Fixture::new();
        fx.strength_scores(4, None);
        fx.hashes(PASSWORD);
        store_create(&mut fx, outcome);

        let error = fx
            .tenant_service()
            .create(
                &principal(admin(), SESSION),
                new_tenant(Some(AdminInput::New(registration()))),
            )
            .await
            .unwrap_err();

        assert!(
            matches!(error, ManageError::Conflict(c) if c == conflict),
            "{conflict:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn create_as_operator_records_every_event_without_an_actor() {
    let mut fx = Fixture::new();
    fx.strength_scores(4, None);
    fx.hashes(PASSWORD);
    // The new admin's verification goes with the tenant, as on registration.
    fx.users.expect_issue_action_token().never();
    fx.mailer.expect_send().never();
    let created = store_create(&mut fx, Ok);
    let appended = fx.appended.clone();
    let sealed = fx.sealed.clone();
    let command_line = ClientInfo::default();

    fx.tenant_service()
        .create_as_operator(
            new_tenant(Some(AdminInput::New(registration()))),
            &command_line,
        )
        .await
        .unwrap();

    let [(_, _, journal)] = created.all().try_into().unwrap();
    let actions: Vec<_> = journal.events.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::TenantCreated,
            AuditAction::UserCreated,
            AuditAction::TenantMemberAdded
        ]
    );
    for event in &journal.events {
        assert_eq!(event.actor, None, "{event:?}");
        assert_eq!(event.ip, None, "{event:?}");
    }
    let [token] = journal.tokens.clone().try_into().unwrap();
    assert_eq!(token.user_id, UserId::from_uuid(generated_id(1)));
    assert_eq!(token.purpose, ActionPurpose::VerifyEmail);
    let [mail] = sealed.of(&journal).try_into().unwrap();
    assert_eq!(mail.to.as_str(), "grace@example.com");
    assert!(appended.all().is_empty());
}

// ----- update ---------------------------------------------------------------------------------

type Updated = (TenantChanges, Option<TenantVersion>, Journal);

/// What the store answers to `update`.
type UpdateOutcome = fn() -> Result<Tenant, StoreError>;

/// The store applies one update to [`TENANT`] at [`now`] and answers `outcome`.
fn store_update(fx: &mut Fixture, outcome: UpdateOutcome) -> Calls<Updated> {
    let calls = Calls::new();
    let recorder = calls.clone();
    fx.tenants
        .expect_update()
        .withf(|id, _, _, at, _| *id == TENANT && *at == now())
        .times(1)
        .returning(move |_, changes, version, _, journal| {
            recorder.record((changes, version, journal));
            outcome()
        });
    calls
}

fn renamed() -> Tenant {
    Tenant {
        name: "Acme Labs".to_owned(),
        version: 3,
        ..tenant()
    }
}

#[tokio::test]
async fn a_tenant_admin_updates_the_fields_and_the_journal_names_them() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(A));
    let updates = store_update(&mut fx, || Ok(renamed()));
    let update = TenantUpdate {
        name: Some(" Acme Labs ".to_owned()),
        slug: Some("acme-labs".to_owned()),
        description: Some(String::new()),
        domain: Some("acme.example".to_owned()),
        settings: Some(json!({"locale": "en"})),
        is_active: None,
    };

    let updated = fx
        .tenant_service()
        .update(
            &principal_from_client(alice(), SESSION),
            &acme(),
            update,
            Some(2),
        )
        .await
        .unwrap();

    assert_eq!(updated, renamed());
    let [(changes, version, journal)] = updates.all().try_into().unwrap();
    let serde_json::Value::Object(settings) = json!({"locale": "en"}) else {
        unreachable!()
    };
    assert_eq!(
        changes,
        TenantChanges {
            name: Some("Acme Labs".to_owned()),
            slug: Some(TenantSlug::parse("acme-labs").unwrap()),
            description: Some(String::new()),
            domain: Some("acme.example".to_owned()),
            settings: Some(settings),
            is_active: None,
        }
    );
    assert_eq!(version, Some(2));
    let expected = event(
        1,
        AuditAction::TenantUpdated,
        Some(ALICE),
        AuditTarget::Tenant(TENANT),
        &client(),
    )
    .in_tenant(TENANT)
    .with(
        "fields",
        json!(["name", "slug", "description", "domain", "settings"]),
    );
    assert_eq!(journal, Journal::of(expected));
}

#[tokio::test]
async fn only_a_system_admin_activates_or_deactivates_a_tenant() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(A));
    fx.no_tenant_writes();
    let appended = fx.appended.clone();
    let update = TenantUpdate {
        is_active: Some(false),
        ..rename()
    };

    let error = fx
        .tenant_service()
        .update(
            &principal_from_client(alice(), SESSION),
            &acme(),
            update,
            None,
        )
        .await
        .unwrap_err();

    assert!(matches!(error, ManageError::Forbidden), "{error:?}");
    assert_eq!(
        appended.all(),
        [denied(
            1,
            ALICE,
            "tenant.update.is_active",
            AuditTarget::Tenant(TENANT),
            Some(TENANT)
        )]
    );
}

#[tokio::test]
async fn a_system_admin_deactivates_a_tenant() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ADMIN, None);
    let updates = store_update(&mut fx, || Ok(tenant()));

    fx.tenant_service()
        .update(
            &principal(admin(), SESSION),
            &acme(),
            TenantUpdate {
                is_active: Some(false),
                ..TenantUpdate::default()
            },
            None,
        )
        .await
        .unwrap();

    let [(changes, version, journal)] = updates.all().try_into().unwrap();
    assert_eq!(
        changes,
        TenantChanges {
            is_active: Some(false),
            ..TenantChanges::default()
        }
    );
    assert_eq!(version, None);
    assert_eq!(journal.events[0].details["fields"], json!(["is_active"]));
}

#[tokio::test]
async fn an_empty_update_returns_the_tenant_but_still_checks_the_version() {
    for (if_match, fresh) in [
        (None, true),
        (Some(tenant().version), true),
        (Some(1), false),
    ] {
        let mut fx = Fixture::new();
        fx.tenant_exists();
        fx.live_role(ALICE, Some(A));
        fx.no_tenant_writes();

        let result = fx
            .tenant_service()
            .update(
                &principal(alice(), SESSION),
                &acme(),
                TenantUpdate::default(),
                if_match,
            )
            .await;

        if fresh {
            assert_eq!(result.unwrap(), tenant(), "if_match {if_match:?}");
        } else {
            assert!(
                matches!(result, Err(ManageError::PreconditionFailed)),
                "{result:?}"
            );
        }
    }
}

#[tokio::test]
async fn update_names_each_invalid_field_and_writes_nothing() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(A));
    fx.no_tenant_writes();
    let update = TenantUpdate {
        name: Some(" ".to_owned()),
        slug: Some("UPPER".to_owned()),
        description: Some("nul\0inside".to_owned()),
        domain: None,
        settings: Some(json!("a string")),
        is_active: None,
    };

    let error = fx
        .tenant_service()
        .update(&principal(alice(), SESSION), &acme(), update, None)
        .await
        .unwrap_err();

    let ManageError::Invalid(errors) = error else {
        panic!("expected Invalid, got {error:?}");
    };
    assert_eq!(fields(&errors), ["description", "name", "settings", "slug"]);
}

#[tokio::test]
async fn update_maps_the_stores_refusals() {
    let cases: [(UpdateOutcome, Expected); 3] = [
        (
            || Err(StoreError::StaleVersion),
            |e| matches!(e, ManageError::PreconditionFailed),
        ),
        (
            || Err(StoreError::Duplicate(UniqueField::Slug)),
            |e| matches!(e, ManageError::Conflict(Conflict::SlugTaken)),
        ),
        (
            || Err(StoreError::Unavailable("down".into())),
            |e| matches!(e, ManageError::Unavailable(_)),
        ),
    ];
    for (outcome, expected) in cases {
        let mut fx = Fixture::new();
        fx.tenant_exists();
        fx.live_role(ALICE, Some(A));
        store_update(&mut fx, outcome);

        let error = fx
            .tenant_service()
            .update(&principal(alice(), SESSION), &acme(), rename(), Some(2))
            .await
            .unwrap_err();

        assert!(expected(&error), "{error:?}");
    }
}

// ----- add_member -----------------------------------------------------------------------------

type Added = (Membership, Assumed, Journal);

fn store_add(fx: &mut Fixture, outcome: fn() -> Result<(), StoreError>) -> Calls<Added> {
    let calls = Calls::new();
    let recorder = calls.clone();
    fx.tenants
        .expect_add_member()
        .times(1)
        .returning(move |membership, assumed, journal| {
            recorder.record((membership, assumed, journal));
            outcome()
        });
    calls
}

/// What a decision by `actor` holding `role` (nothing about the member) assumed.
fn acting(actor: UserId, role: TenantRole) -> Assumed {
    Assumed {
        member: None,
        actor: Some((actor, role)),
    }
}

/// What a decision by `actor` holding `role` about a member holding `member` assumed.
fn deciding(actor: UserId, role: TenantRole, member: TenantRole) -> Assumed {
    Assumed {
        member: Some(member),
        ..acting(actor, role)
    }
}

fn bob_joined(role: TenantRole) -> Membership {
    Membership {
        tenant_id: TENANT,
        user_id: BOB,
        role,
        created_at: now(),
    }
}

fn member_added(n: u128, actor: UserId, role: &str) -> Journal {
    Journal::of(
        event(
            n,
            AuditAction::TenantMemberAdded,
            Some(actor),
            AuditTarget::User(BOB),
            &client(),
        )
        .in_tenant(TENANT)
        .with("role", role),
    )
}

#[tokio::test]
async fn add_member_by_e_mail_finds_the_normalised_address() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(A));
    fx.users
        .expect_find_credentials()
        .withf(|login| matches!(login, Login::Email(e) if e.as_str() == "bob@example.com"))
        .times(1)
        .returning(|_| Ok(Some(credentials(bob()))));
    let added = store_add(&mut fx, || Ok(()));

    let membership = fx
        .tenant_service()
        .add_member(
            &principal_from_client(alice(), SESSION),
            &acme(),
            MemberRef::Email("  Bob@Example.COM ".to_owned()),
            Mo,
        )
        .await
        .unwrap();

    assert_eq!(membership, bob_joined(Mo));
    assert_eq!(
        added.all(),
        [(
            bob_joined(Mo),
            acting(ALICE, A),
            member_added(1, ALICE, "moderator")
        )]
    );
}

#[tokio::test]
async fn add_member_by_id() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(A));
    fx.users
        .expect_find_by_id()
        .withf(|id| *id == BOB)
        .times(1)
        .returning(|_| Ok(Some(bob())));
    let added = store_add(&mut fx, || Ok(()));

    let membership = fx
        .tenant_service()
        .add_member(
            &principal_from_client(alice(), SESSION),
            &acme(),
            MemberRef::Id(BOB),
            V,
        )
        .await
        .unwrap();

    assert_eq!(membership, bob_joined(V));
    assert_eq!(
        added.all(),
        [(
            bob_joined(V),
            acting(ALICE, A),
            member_added(1, ALICE, "viewer")
        )]
    );
}

#[tokio::test]
async fn add_member_of_an_unknown_user_names_the_field_it_came_in() {
    let cases = [
        (MemberRef::Email("nobody@example.com".to_owned()), "email"),
        (MemberRef::Email("not an address".to_owned()), "email"),
        (MemberRef::Id(BOB), "user_id"),
    ];
    for (member, field) in cases {
        let mut fx = Fixture::new();
        fx.tenant_exists();
        fx.live_role(ALICE, Some(A));
        let well_formed = matches!(&member, MemberRef::Email(e) if e.contains('@'));
        fx.users
            .expect_find_credentials()
            .times(usize::from(well_formed))
            .returning(|_| Ok(None));
        fx.users.expect_find_by_id().returning(|_| Ok(None));
        fx.no_tenant_writes();

        let error = fx
            .tenant_service()
            .add_member(&principal(alice(), SESSION), &acme(), member.clone(), M)
            .await
            .unwrap_err();

        let ManageError::Invalid(errors) = error else {
            panic!("{member:?}: expected Invalid, got {error:?}");
        };
        assert_eq!(fields(&errors), [field], "{member:?}");
    }
}

#[tokio::test]
async fn a_moderator_adds_members_and_viewers_but_not_moderators_or_admins() {
    for role in TenantRole::ALL {
        let allowed = matches!(role, M | V);
        let mut fx = Fixture::new();
        fx.tenant_exists();
        fx.live_role(ALICE, Some(Mo));
        fx.users
            .expect_find_by_id()
            .times(usize::from(allowed))
            .returning(|_| Ok(Some(bob())));
        if allowed {
            store_add(&mut fx, || Ok(()));
        } else {
            fx.no_tenant_writes();
        }
        let appended = fx.appended.clone();

        let result = fx
            .tenant_service()
            .add_member(
                &principal_from_client(alice(), SESSION),
                &acme(),
                MemberRef::Id(BOB),
                role,
            )
            .await;

        if allowed {
            assert_eq!(result.unwrap(), bob_joined(role));
            assert!(appended.all().is_empty());
        } else {
            assert!(
                matches!(result, Err(ManageError::Forbidden)),
                "{role}: {result:?}"
            );
            assert_eq!(
                appended.all(),
                [denied(
                    1,
                    ALICE,
                    "tenant.members.add",
                    AuditTarget::Tenant(TENANT),
                    Some(TENANT)
                )],
                "{role}"
            );
        }
    }
}

#[tokio::test]
async fn members_and_viewers_add_nobody() {
    for mine in [M, V] {
        let mut fx = Fixture::new();
        fx.tenant_exists();
        fx.live_role(ALICE, Some(mine));
        fx.users.expect_find_by_id().never();
        fx.no_tenant_writes();

        let result = fx
            .tenant_service()
            .add_member(&principal(alice(), SESSION), &acme(), MemberRef::Id(BOB), V)
            .await;

        assert!(
            matches!(result, Err(ManageError::Forbidden)),
            "{mine}: {result:?}"
        );
    }
}

#[tokio::test]
async fn adding_a_member_twice_is_a_conflict() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(A));
    fx.users.expect_find_by_id().returning(|_| Ok(Some(bob())));
    store_add(&mut fx, || {
        Err(StoreError::Duplicate(UniqueField::Membership))
    });

    let error = fx
        .tenant_service()
        .add_member(&principal(alice(), SESSION), &acme(), MemberRef::Id(BOB), M)
        .await
        .unwrap_err();

    assert!(
        matches!(error, ManageError::Conflict(Conflict::AlreadyMember)),
        "{error:?}"
    );
}

// ----- change_role ----------------------------------------------------------------------------

type RoleChanged = (UserId, TenantRole, Assumed, Journal);

fn store_change_role(
    fx: &mut Fixture,
    outcome: fn(UserId, TenantRole) -> Result<Membership, StoreError>,
) -> Calls<RoleChanged> {
    let calls = Calls::new();
    let recorder = calls.clone();
    fx.tenants
        .expect_change_role()
        .withf(|tenant, _, _, _, _| *tenant == TENANT)
        .times(1)
        .returning(move |_, user, role, assumed, journal| {
            recorder.record((user, role, assumed, journal));
            outcome(user, role)
        });
    calls
}

fn membership_of(user: UserId, role: TenantRole) -> Result<Membership, StoreError> {
    Ok(Membership {
        tenant_id: TENANT,
        user_id: user,
        role,
        created_at: now(),
    })
}

fn role_changed(actor: UserId, member: UserId, from: &str, to: &str) -> Journal {
    Journal::of(
        event(
            1,
            AuditAction::TenantMemberRoleChanged,
            Some(actor),
            AuditTarget::User(member),
            &client(),
        )
        .in_tenant(TENANT)
        .with("from", from)
        .with("to", to),
    )
}

#[tokio::test]
async fn change_role_journals_the_members_live_role_and_the_new_one() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(A));
    fx.live_role(BOB, Some(M));
    let changed = store_change_role(&mut fx, membership_of);

    let membership = fx
        .tenant_service()
        .change_role(&principal_from_client(alice(), SESSION), &acme(), BOB, Mo)
        .await
        .unwrap();

    assert_eq!(membership.role, Mo);
    assert_eq!(
        changed.all(),
        [(
            BOB,
            Mo,
            deciding(ALICE, A, M),
            role_changed(ALICE, BOB, "member", "moderator")
        )]
    );
}

#[tokio::test]
async fn change_role_asks_the_policy_about_the_members_live_role() {
    // A moderator may turn a viewer into a member, but not an admin into a member: what
    // decides is the role the member holds now, not the one asked for.
    for (bobs_role, allowed) in [(V, true), (A, false), (Mo, false)] {
        let mut fx = Fixture::new();
        fx.tenant_exists();
        fx.live_role(ALICE, Some(Mo));
        fx.live_role(BOB, Some(bobs_role));
        let changed = if allowed {
            Some(store_change_role(&mut fx, membership_of))
        } else {
            fx.no_tenant_writes();
            None
        };
        let appended = fx.appended.clone();

        let result = fx
            .tenant_service()
            .change_role(&principal_from_client(alice(), SESSION), &acme(), BOB, M)
            .await;

        if let Some(changed) = changed {
            assert!(result.is_ok(), "{bobs_role}: {result:?}");
            assert_eq!(
                changed.all(),
                [(
                    BOB,
                    M,
                    deciding(ALICE, Mo, bobs_role),
                    role_changed(ALICE, BOB, bobs_role.as_str(), "member")
                )]
            );
        } else {
            assert!(
                matches!(result, Err(ManageError::Forbidden)),
                "{bobs_role}: {result:?}"
            );
            assert_eq!(
                appended.all(),
                [denied(
                    1,
                    ALICE,
                    "tenant.members.change_role",
                    AuditTarget::Tenant(TENANT),
                    Some(TENANT)
                )],
                "{bobs_role}"
            );
        }
    }
}

#[tokio::test]
async fn nobody_raises_their_own_tenant_role() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(Mo));
    fx.no_tenant_writes();

    let result = fx
        .tenant_service()
        .change_role(&principal_in_tenant(alice(), A), &acme(), ALICE, A)
        .await;

    assert!(matches!(result, Err(ManageError::Forbidden)), "{result:?}");
}

#[tokio::test]
async fn change_role_of_a_non_member_is_not_found() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(A));
    fx.live_role(BOB, None);
    fx.no_tenant_writes();
    let appended = fx.appended.clone();

    let result = fx
        .tenant_service()
        .change_role(&principal(alice(), SESSION), &acme(), BOB, V)
        .await;

    assert!(matches!(result, Err(ManageError::NotFound)), "{result:?}");
    assert!(appended.all().is_empty());
}

#[tokio::test]
async fn demoting_the_last_admin_is_a_conflict() {
    // Lowering one's own role is allowed by the policy; the store keeps the last admin.
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(A));
    let changed = store_change_role(&mut fx, |_, _| {
        Err(StoreError::LastAdmin(LastAdmin::Tenant(TENANT)))
    });

    let error = fx
        .tenant_service()
        .change_role(&principal_from_client(alice(), SESSION), &acme(), ALICE, M)
        .await
        .unwrap_err();

    assert!(
        matches!(
            error,
            ManageError::Conflict(Conflict::LastAdmin(LastAdmin::Tenant(TENANT)))
        ),
        "{error:?}"
    );
    assert_eq!(
        changed.all(),
        [(
            ALICE,
            M,
            deciding(ALICE, A, A),
            role_changed(ALICE, ALICE, "admin", "member")
        )]
    );
}

// ----- remove_member --------------------------------------------------------------------------

fn store_remove(
    fx: &mut Fixture,
    outcome: fn() -> Result<(), StoreError>,
) -> Calls<(UserId, Assumed, Journal)> {
    let calls = Calls::new();
    let recorder = calls.clone();
    fx.tenants
        .expect_remove_member()
        .withf(|tenant, _, _, _| *tenant == TENANT)
        .times(1)
        .returning(move |_, user, assumed, journal| {
            recorder.record((user, assumed, journal));
            outcome()
        });
    calls
}

fn member_removed(actor: UserId, member: UserId, role: &str) -> Journal {
    Journal::of(
        event(
            1,
            AuditAction::TenantMemberRemoved,
            Some(actor),
            AuditTarget::User(member),
            &client(),
        )
        .in_tenant(TENANT)
        .with("role", role),
    )
}

#[tokio::test]
async fn any_member_may_leave() {
    for role in [M, V] {
        let mut fx = Fixture::new();
        fx.tenant_exists();
        fx.live_role(ALICE, Some(role));
        let removed = store_remove(&mut fx, || Ok(()));

        fx.tenant_service()
            .remove_member(&principal_from_client(alice(), SESSION), &acme(), ALICE)
            .await
            .unwrap();

        assert_eq!(
            removed.all(),
            [(
                ALICE,
                deciding(ALICE, role, role),
                member_removed(ALICE, ALICE, role.as_str())
            )]
        );
    }
}

#[tokio::test]
async fn remove_member_asks_the_policy_about_the_members_live_role() {
    for (bobs_role, allowed) in [(M, true), (V, true), (Mo, false), (A, false)] {
        let mut fx = Fixture::new();
        fx.tenant_exists();
        fx.live_role(ALICE, Some(Mo));
        fx.live_role(BOB, Some(bobs_role));
        let removed = if allowed {
            Some(store_remove(&mut fx, || Ok(())))
        } else {
            fx.no_tenant_writes();
            None
        };
        let appended = fx.appended.clone();

        let result = fx
            .tenant_service()
            .remove_member(&principal_from_client(alice(), SESSION), &acme(), BOB)
            .await;

        if let Some(removed) = removed {
            assert!(result.is_ok(), "{bobs_role}: {result:?}");
            assert_eq!(
                removed.all(),
                [(
                    BOB,
                    deciding(ALICE, Mo, bobs_role),
                    member_removed(ALICE, BOB, bobs_role.as_str())
                )]
            );
        } else {
            assert!(
                matches!(result, Err(ManageError::Forbidden)),
                "{bobs_role}: {result:?}"
            );
            assert_eq!(
                appended.all(),
                [denied(
                    1,
                    ALICE,
                    "tenant.members.remove",
                    AuditTarget::Tenant(TENANT),
                    Some(TENANT)
                )]
            );
        }
    }
}

#[tokio::test]
async fn removing_a_non_member_is_not_found() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(A));
    fx.live_role(BOB, None);
    fx.no_tenant_writes();

    let result = fx
        .tenant_service()
        .remove_member(&principal(alice(), SESSION), &acme(), BOB)
        .await;

    assert!(matches!(result, Err(ManageError::NotFound)), "{result:?}");
}

#[tokio::test]
async fn the_last_admin_cannot_leave() {
    let mut fx = Fixture::new();
    fx.tenant_exists();
    fx.live_role(ALICE, Some(A));
    store_remove(&mut fx, || {
        Err(StoreError::LastAdmin(LastAdmin::Tenant(TENANT)))
    });

    let error = fx
        .tenant_service()
        .remove_member(&principal(alice(), SESSION), &acme(), ALICE)
        .await
        .unwrap_err();

    assert!(
        matches!(
            error,
            ManageError::Conflict(Conflict::LastAdmin(LastAdmin::Tenant(TENANT)))
        ),
        "{error:?}"
    );
}

// ----- what a membership change assumed --------------------------------------------------------

/// The membership changes, about Bob, by `who`; with the assumptions each passed to the store.
async fn change_bob(
    fx: Fixture,
    who: &Principal,
    op: Op,
    outcome: Result<(), StoreError>,
) -> (Result<(), ManageError>, Vec<Assumed>) {
    let mut fx = fx;
    let failure = outcome.err();
    let assumed: Calls<Assumed> = Calls::new();
    let recorder = assumed.clone();
    let result = match op {
        Op::AddMember => {
            fx.users.expect_find_by_id().returning(|_| Ok(Some(bob())));
            fx.tenants
                .expect_add_member()
                .times(1)
                .return_once(move |_, seen, _| {
                    recorder.record(seen);
                    failure.map_or(Ok(()), Err)
                });
            fx.tenant_service()
                .add_member(who, &acme(), MemberRef::Id(BOB), V)
                .await
                .map(drop)
        }
        Op::ChangeRole => {
            fx.tenants
                .expect_change_role()
                .times(1)
                .return_once(move |_, user, role, seen, _| {
                    recorder.record(seen);
                    failure.map_or_else(|| membership_of(user, role), Err)
                });
            fx.tenant_service()
                .change_role(who, &acme(), BOB, V)
                .await
                .map(drop)
        }
        Op::RemoveMember => {
            fx.tenants
                .expect_remove_member()
                .times(1)
                .return_once(move |_, _, seen, _| {
                    recorder.record(seen);
                    failure.map_or(Ok(()), Err)
                });
            fx.tenant_service().remove_member(who, &acme(), BOB).await
        }
        other => unreachable!("{other:?} changes no membership"),
    };
    (result, assumed.all())
}

const MEMBERSHIP_CHANGES: [Op; 3] = [Op::AddMember, Op::ChangeRole, Op::RemoveMember];

#[tokio::test]
async fn the_store_is_to_confirm_the_live_roles_the_policy_decided_on_not_the_tokens_claim() {
    // Alice's token says admin, but she moderates acme now; Bob is a member there.
    for op in MEMBERSHIP_CHANGES {
        let mut fx = Fixture::new();
        fx.tenant_exists();
        fx.live_role(ALICE, Some(Mo));
        fx.live_role(BOB, Some(M));

        let (result, assumed) = change_bob(fx, &principal_in_tenant(alice(), A), op, Ok(())).await;

        assert!(result.is_ok(), "{op:?}: {result:?}");
        let expected = match op {
            Op::AddMember => acting(ALICE, Mo),
            _ => deciding(ALICE, Mo, M),
        };
        assert_eq!(assumed, [expected], "{op:?}");
    }
}

#[tokio::test]
async fn a_system_admin_assumes_no_membership_of_their_own() {
    // The policy lets an active system administrator do anything in any tenant, member or
    // not: their decision rests on no membership, so none is to be confirmed (a change of it
    // would not change the decision). The member's role still is.
    for own in [None, Some(V)] {
        for op in MEMBERSHIP_CHANGES {
            let mut fx = Fixture::new();
            fx.tenant_exists();
            fx.live_role(ADMIN, own);
            fx.live_role(BOB, Some(M));

            let (result, assumed) =
                change_bob(fx, &principal_from_client(admin(), SESSION), op, Ok(())).await;

            assert!(result.is_ok(), "{op:?} as {own:?}: {result:?}");
            let member = match op {
                Op::AddMember => None,
                _ => Some(M),
            };
            assert_eq!(
                assumed,
                [Assumed {
                    member,
                    actor: None
                }],
                "{op:?} as {own:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_role_that_changed_meanwhile_is_a_conflict_and_no_refusal() {
    for op in MEMBERSHIP_CHANGES {
        let mut fx = Fixture::new();
        fx.tenant_exists();
        fx.live_role(ALICE, Some(A));
        fx.live_role(BOB, Some(M));
        let appended = fx.appended.clone();

        let (result, _) = change_bob(
            fx,
            &principal_from_client(alice(), SESSION),
            op,
            Err(StoreError::Changed),
        )
        .await;

        assert!(
            matches!(result, Err(ManageError::Conflict(Conflict::Changed))),
            "{op:?}: {result:?}"
        );
        assert!(
            appended.all().is_empty(),
            "{op:?}: nothing was refused: {:?}",
            appended.all()
        );
    }
}

// ----- mine and of_user -----------------------------------------------------------------------

fn acme_membership(user: UserId, role: TenantRole) -> TenantMembership {
    TenantMembership {
        membership: Membership {
            tenant_id: TENANT,
            user_id: user,
            role,
            created_at: now(),
        },
        tenant: tenant(),
    }
}

#[tokio::test]
async fn mine_lists_the_callers_tenants() {
    let mut fx = Fixture::new();
    fx.tenants
        .expect_tenants_of()
        .withf(|user| *user == ALICE)
        .times(1)
        .returning(|_| Ok(vec![acme_membership(ALICE, V)]));

    let mine = fx
        .tenant_service()
        .mine(&principal(alice(), SESSION))
        .await
        .unwrap();

    assert_eq!(mine, [acme_membership(ALICE, V)]);
}

/// `(caller, target, the caller's roles in the target's tenants, visible)`.
type Visibility = (
    fn() -> crate::model::User,
    UserId,
    &'static [TenantRole],
    bool,
);

#[tokio::test]
async fn of_user_is_visible_to_the_user_system_admins_and_their_tenant_managers_only() {
    let cases: [Visibility; 8] = [
        (alice, ALICE, &[], true),
        (admin, BOB, &[], true),
        (alice, BOB, &[Mo], true),
        (alice, BOB, &[V, A], true),
        (alice, BOB, &[M, V], false),
        (alice, BOB, &[], false),
        (|| inactive(alice()), BOB, &[A], false),
        (|| inactive(admin()), BOB, &[], false),
    ];
    for (caller, target, shared, visible) in cases {
        let caller = caller();
        let case = format!("{} on {target:?} sharing {shared:?}", caller.username);
        let mut fx = Fixture::new();
        fx.shared_roles(caller.id, target, shared);
        fx.users
            .expect_find_by_id()
            .withf(move |id| *id == target)
            .times(usize::from(visible))
            .returning(|_| Ok(Some(bob())));
        // The target's tenants, and (for a tenant manager) the caller's own, to keep only
        // the tenants the caller can see: both are in acme here.
        fx.tenants
            .expect_tenants_of()
            .returning(move |user| Ok(vec![acme_membership(user, A)]));

        let result = fx
            .tenant_service()
            .of_user(&principal(caller, SESSION), target)
            .await;

        if visible {
            assert_eq!(result.unwrap(), [acme_membership(target, A)], "{case}");
        } else {
            assert!(
                matches!(result, Err(ManageError::NotFound)),
                "{case}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn of_user_of_an_unknown_user_is_not_found() {
    let mut fx = Fixture::new();
    fx.shared_roles(ADMIN, BOB, &[]);
    fx.users
        .expect_find_by_id()
        .times(1)
        .returning(|_| Ok(None));
    fx.tenants.expect_tenants_of().never();

    let result = fx
        .tenant_service()
        .of_user(&principal(admin(), SESSION), BOB)
        .await;

    assert!(matches!(result, Err(ManageError::NotFound)), "{result:?}");
}

/// A reference by id reaches the store as given.
#[tokio::test]
async fn a_tenant_named_by_id_is_found_by_id() {
    let mut fx = Fixture::new();
    fx.tenants
        .expect_find()
        .withf(|r| *r == TenantRef::Id(TENANT))
        .times(1)
        .returning(|_| Ok(Some(tenant())));
    fx.live_role(ALICE, Some(V));

    let found = fx
        .tenant_service()
        .get(&principal(alice(), SESSION), &TenantRef::Id(TENANT))
        .await
        .unwrap();

    assert_eq!(found, tenant());
}

#[tokio::test]
async fn of_user_does_not_reveal_tenants_the_caller_cannot_see() {
    // Alice moderates acme, where Bob is a member; Bob also belongs to globex, where Alice is
    // not a member: to her, globex does not exist.
    let globex = Tenant {
        id: OTHER_TENANT,
        slug: TenantSlug::parse("globex").unwrap(),
        name: "Globex".to_owned(),
        ..tenant()
    };
    let bobs = vec![
        acme_membership(BOB, M),
        TenantMembership {
            membership: Membership {
                tenant_id: OTHER_TENANT,
                ..acme_membership(BOB, A).membership
            },
            tenant: globex.clone(),
        },
    ];
    let mut fx = Fixture::new();
    fx.shared_roles(ALICE, BOB, &[Mo]);
    fx.users.expect_find_by_id().returning(|_| Ok(Some(bob())));
    fx.tenants
        .expect_tenants_of()
        .returning(move |user| match user {
            BOB => Ok(bobs.clone()),
            _ => Ok(vec![acme_membership(ALICE, Mo)]),
        });
    fx.tenants
        .expect_role_of()
        .returning(|tenant, user| Ok((tenant == TENANT && user == ALICE).then_some(Mo)));
    fx.tenants.expect_find().returning(move |reference| {
        Ok(match reference {
            TenantRef::Id(OTHER_TENANT) => Some(globex.clone()),
            other if names_acme(other) => Some(tenant()),
            _ => None,
        })
    });

    let seen = fx
        .tenant_service()
        .of_user(&principal(alice(), SESSION), BOB)
        .await
        .unwrap();

    let tenants: Vec<_> = seen.iter().map(|m| m.tenant.id).collect();
    assert_eq!(tenants, [TENANT], "globex is invisible to Alice");
}

#[tokio::test]
async fn of_user_keeps_only_the_tenants_where_the_caller_may_list_the_members() {
    // Alice moderates acme and only views globex; Bob is a member of both. Alice may see Bob
    // (she moderates a tenant of his), but a viewer may not list globex's members, so Bob's
    // membership there is not hers to see.
    let globex = Tenant {
        id: OTHER_TENANT,
        slug: TenantSlug::parse("globex").unwrap(),
        name: "Globex".to_owned(),
        ..tenant()
    };
    let in_globex = |user: UserId, role: TenantRole| TenantMembership {
        membership: Membership {
            tenant_id: OTHER_TENANT,
            ..acme_membership(user, role).membership
        },
        tenant: globex.clone(),
    };
    let bobs = vec![acme_membership(BOB, M), in_globex(BOB, M)];
    let alices = vec![acme_membership(ALICE, Mo), in_globex(ALICE, V)];
    let mut fx = Fixture::new();
    fx.shared_roles(ALICE, BOB, &[Mo, V]);
    fx.users
        .expect_find_by_id()
        .withf(|id| *id == BOB)
        .returning(|_| Ok(Some(bob())));
    fx.tenants
        .expect_tenants_of()
        .returning(move |user| match user {
            BOB => Ok(bobs.clone()),
            ALICE => Ok(alices.clone()),
            other => panic!("tenants of {other:?}"),
        });

    let seen = fx
        .tenant_service()
        .of_user(&principal(alice(), SESSION), BOB)
        .await
        .unwrap();

    assert_eq!(
        seen,
        [acme_membership(BOB, M)],
        "globex, where Alice only views, is left out"
    );
}
