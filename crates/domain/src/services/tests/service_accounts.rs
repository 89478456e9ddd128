//! `ServiceAccountService`: creating service clients, authenticating them, and token
//! introspection (what is active, what is reported, failing closed).

use std::sync::Arc;

use chrono::TimeDelta;
use secrecy::ExposeSecret as _;
use uuid::Uuid;

use super::fixture::{
    ALICE, Fixture, SESSION, TENANT, admin, alice, client, digest, event, generated_id, inactive,
    now, principal, principal_from_client, revocation_error, secret, session, tenant, token,
};
use crate::model::{
    AuditAction, AuditTarget, ClientId, Role, ServiceAccount, ServiceAccountCredentials,
    ServiceAccountId, ServiceAccountName, TenantRef, TenantRole, User,
};
use crate::ports::{AccessClaims, MockServiceAccountStore, StoreError, TokenError, UniqueField};
use crate::services::{
    ActiveToken, ClientAuthError, Conflict, IntrospectError, Introspection, IntrospectionCaller,
    ManageError, NewServiceClient, ServiceAccountService, ServiceClient,
};

const BEARER: &str = "header.payload.signature";
const CLIENT_ID: &str = "ums_sa_abcdefghijklmnopqrstuv";
const SECRET: &str = "the-service-secret";

fn service(fx: Fixture, accounts: MockServiceAccountStore) -> ServiceAccountService {
    let (ports, _) = fx.ports();
    ServiceAccountService::new(ports, Arc::new(accounts))
}

fn account(last_used: Option<TimeDelta>) -> ServiceAccount {
    ServiceAccount {
        id: ServiceAccountId::from_uuid(Uuid::from_u128(0x5A)),
        name: ServiceAccountName::parse("billing").unwrap(),
        description: String::new(),
        client_id: ClientId::parse(CLIENT_ID).unwrap(),
        created_at: now() - TimeDelta::days(3),
        last_used_at: last_used.map(|ago| now() - ago),
    }
}

/// The store knows [`CLIENT_ID`], whose secret is [`SECRET`], last used `last_used` ago.
fn known_client(accounts: &mut MockServiceAccountStore, last_used: Option<TimeDelta>) {
    accounts
        .expect_find_by_client_id()
        .withf(|id| id.as_str() == CLIENT_ID)
        .times(1)
        .returning(move |_| {
            Ok(Some(ServiceAccountCredentials {
                account: account(last_used),
                secret_hash: digest(SECRET),
            }))
        });
}

fn service_caller() -> ServiceClient {
    ServiceClient {
        account: account(None),
    }
}

// --- creating ---

#[tokio::test]
async fn create_stores_the_digest_and_hands_out_the_secret_once() {
    let fx = Fixture::new();
    let mut accounts = MockServiceAccountStore::new();
    let journals = super::fixture::Calls::new();
    let recorder = journals.clone();
    accounts
        .expect_create()
        .times(1)
        .returning(move |credentials, journal| {
            recorder.record((credentials.clone(), journal));
            Ok(credentials.account)
        });

    let created = service(fx, accounts)
        .create_service_client(
            NewServiceClient {
                name: "  Billing-API ".to_owned(),
                description: Some(" Invoices ".to_owned()),
            },
            &client(),
        )
        .await
        .unwrap();

    // The first random token makes the client id, the second the secret.
    assert_eq!(created.account.client_id.as_str(), "ums_sa_random-token-1");
    assert_eq!(created.secret.expose_secret(), token(2));
    assert_eq!(created.account.name.as_str(), "Billing-API");
    assert_eq!(created.account.description, "Invoices");
    assert_eq!(
        created.account.id,
        ServiceAccountId::from_uuid(generated_id(1))
    );
    assert_eq!(created.account.created_at, now());
    assert_eq!(created.account.last_used_at, None);

    let calls = journals.all();
    assert_eq!(calls.len(), 1);
    let (stored, journal) = &calls[0];
    assert_eq!(stored.account, created.account);
    assert_eq!(
        stored.secret_hash,
        digest(&token(2)),
        "only the digest is stored"
    );
    let expected = event(
        2,
        AuditAction::ServiceAccountCreated,
        None,
        AuditTarget::None,
        &client(),
    )
    .with("service_account_id", generated_id(1).to_string())
    .with("client_id", "ums_sa_random-token-1")
    .with("name", "Billing-API");
    assert_eq!(journal.events, vec![expected]);
    assert!(
        !format!("{journal:?}").contains(&token(2)),
        "the journal never carries the secret"
    );
}

#[tokio::test]
async fn create_refuses_invalid_fields_without_writing() {
    let fx = Fixture::new();
    let mut accounts = MockServiceAccountStore::new();
    accounts.expect_create().never();

    let error = service(fx, accounts)
        .create_service_client(
            NewServiceClient {
                name: "no spaces please".to_owned(),
                description: Some("x".repeat(2001)),
            },
            &client(),
        )
        .await
        .unwrap_err();

    let ManageError::Invalid(errors) = error else {
        panic!("{error:?}");
    };
    assert_eq!(
        super::fixture::fields(&errors),
        vec!["description", "name"],
        "every bad field at once"
    );
}

#[tokio::test]
async fn a_taken_name_is_a_conflict() {
    let fx = Fixture::new();
    let mut accounts = MockServiceAccountStore::new();
    accounts
        .expect_create()
        .times(1)
        .returning(|_, _| Err(StoreError::Duplicate(UniqueField::ServiceAccountName)));

    let error = service(fx, accounts)
        .create_service_client(
            NewServiceClient {
                name: "billing".to_owned(),
                description: None,
            },
            &client(),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(
            error,
            ManageError::Conflict(Conflict::ServiceAccountNameTaken)
        ),
        "{error:?}"
    );
}

// --- authenticating ---

#[tokio::test]
async fn the_right_secret_authenticates_and_records_the_use() {
    let fx = Fixture::new();
    let mut accounts = MockServiceAccountStore::new();
    known_client(&mut accounts, None);
    accounts
        .expect_touch()
        .withf(|id, at| *id == account(None).id && *at == now())
        .times(1)
        .returning(|_, _| Ok(()));

    let caller = service(fx, accounts)
        .authenticate_client(CLIENT_ID, &secret(SECRET))
        .await
        .unwrap();

    assert_eq!(caller.account.client_id.as_str(), CLIENT_ID);
}

#[tokio::test]
async fn a_recent_use_is_not_written_again() {
    let fx = Fixture::new();
    let mut accounts = MockServiceAccountStore::new();
    known_client(&mut accounts, Some(TimeDelta::seconds(30)));
    accounts.expect_touch().never();

    let result = service(fx, accounts)
        .authenticate_client(CLIENT_ID, &secret(SECRET))
        .await;

    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn a_failed_touch_does_not_refuse_the_caller() {
    let fx = Fixture::new();
    let mut accounts = MockServiceAccountStore::new();
    known_client(&mut accounts, Some(TimeDelta::minutes(5)));
    accounts
        .expect_touch()
        .times(1)
        .returning(|_, _| Err(StoreError::Unavailable("locked".into())));

    let result = service(fx, accounts)
        .authenticate_client(CLIENT_ID, &secret(SECRET))
        .await;

    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn a_wrong_secret_an_unknown_and_a_malformed_client_id_are_refused_alike() {
    // Wrong secret.
    let fx = Fixture::new();
    let mut accounts = MockServiceAccountStore::new();
    known_client(&mut accounts, None);
    accounts.expect_touch().never();
    let wrong = service(fx, accounts)
        .authenticate_client(CLIENT_ID, &secret("not-the-secret"))
        .await;
    assert!(
        matches!(wrong, Err(ClientAuthError::InvalidCredentials)),
        "{wrong:?}"
    );

    // Unknown client id: looked up, not found.
    let fx = Fixture::new();
    let mut accounts = MockServiceAccountStore::new();
    accounts
        .expect_find_by_client_id()
        .times(1)
        .returning(|_| Ok(None));
    accounts.expect_touch().never();
    let unknown = service(fx, accounts)
        .authenticate_client("ums_sa_nobody", &secret(SECRET))
        .await;
    assert!(
        matches!(unknown, Err(ClientAuthError::InvalidCredentials)),
        "{unknown:?}"
    );

    // Not a client id at all: not even looked up.
    let fx = Fixture::new();
    let mut accounts = MockServiceAccountStore::new();
    accounts.expect_find_by_client_id().never();
    let malformed = service(fx, accounts)
        .authenticate_client("admin' OR 1=1 --", &secret(SECRET))
        .await;
    assert!(
        matches!(malformed, Err(ClientAuthError::InvalidCredentials)),
        "{malformed:?}"
    );
}

#[tokio::test]
async fn a_store_that_cannot_be_read_is_unavailable() {
    let fx = Fixture::new();
    let mut accounts = MockServiceAccountStore::new();
    accounts
        .expect_find_by_client_id()
        .returning(|_| Err(StoreError::Unavailable("down".into())));

    let result = service(fx, accounts)
        .authenticate_client(CLIENT_ID, &secret(SECRET))
        .await;

    assert!(
        matches!(result, Err(ClientAuthError::Unavailable(_))),
        "{result:?}"
    );
}

// --- introspecting ---

fn claims(tenant: Option<(crate::model::TenantId, TenantRole)>) -> AccessClaims {
    AccessClaims {
        user_id: ALICE,
        session_id: SESSION,
        token_id: Uuid::from_u128(0x7070),
        // What the token says; the answer reports what the store says now.
        role: Role::User,
        tenant,
        issued_at: now() - TimeDelta::minutes(5),
        expires_at: now() + TimeDelta::minutes(10),
    }
}

/// Everything about [`BEARER`] checks out: a valid token of `claims`, a session not on the
/// list, the session live in the store (scoped like the token), and `user` stored.
fn valid(fx: &mut Fixture, claims: AccessClaims, user: Option<User>) {
    let scope = claims_scope(&claims);
    fx.tokens
        .expect_verify()
        .withf(|token| token == BEARER)
        .times(1)
        .returning(move |_| Ok(claims.clone()));
    fx.revocation
        .expect_is_revoked()
        .withf(|id| *id == SESSION)
        .returning(|_| Ok(false));
    fx.sessions
        .expect_find()
        .withf(|id| *id == SESSION)
        .returning(move |_| {
            let mut live = session(SESSION, ALICE, TimeDelta::days(2));
            live.tenant = scope;
            Ok(Some(live))
        });
    fx.users
        .expect_find_by_id()
        .withf(|id| *id == ALICE)
        .returning(move |_| Ok(user.clone()));
}

fn claims_scope(claims: &AccessClaims) -> Option<crate::model::TenantId> {
    claims.tenant.map(|(tenant, _)| tenant)
}

async fn introspect_as_service(fx: Fixture) -> Result<Introspection, IntrospectError> {
    let caller = service_caller();
    service(fx, MockServiceAccountStore::new())
        .introspect(IntrospectionCaller::Service(&caller), BEARER)
        .await
}

#[tokio::test]
async fn an_ordinary_user_may_not_introspect_and_the_refusal_is_recorded() {
    let mut fx = Fixture::new();
    fx.tokens.expect_verify().never();
    let appended = fx.appended.clone();
    let caller = principal_from_client(alice(), SESSION);

    let result = service(fx, MockServiceAccountStore::new())
        .introspect(IntrospectionCaller::User(&caller), BEARER)
        .await;

    assert!(
        matches!(result, Err(IntrospectError::Forbidden)),
        "{result:?}"
    );
    assert_eq!(
        appended.all(),
        vec![super::fixture::denied(
            1,
            ALICE,
            "auth.introspect",
            AuditTarget::None,
            None
        )]
    );
}

#[tokio::test]
async fn an_admin_learns_whose_token_it_is_with_the_live_roles() {
    let mut fx = Fixture::new();
    let mut promoted = alice();
    promoted.role = Role::Admin;
    valid(
        &mut fx,
        claims(Some((TENANT, TenantRole::Viewer))),
        Some(promoted),
    );
    fx.tenants
        .expect_find()
        .withf(|reference| *reference == TenantRef::Id(TENANT))
        .returning(|_| Ok(Some(tenant())));
    fx.tenants
        .expect_role_of()
        .withf(|t, u| *t == TENANT && *u == ALICE)
        .returning(|_, _| Ok(Some(TenantRole::Admin)));
    let caller = principal(admin(), super::fixture::SESSION_2);

    let answer = service(fx, MockServiceAccountStore::new())
        .introspect(IntrospectionCaller::User(&caller), BEARER)
        .await
        .unwrap();

    assert_eq!(
        answer,
        Introspection::Active(ActiveToken {
            user_id: ALICE,
            username: alice().username,
            role: Role::Admin,
            session_id: SESSION,
            token_id: Uuid::from_u128(0x7070),
            tenant: Some((TENANT, TenantRole::Admin)),
            issued_at: now() - TimeDelta::minutes(5),
            expires_at: now() + TimeDelta::minutes(10),
            password_change_required: false,
        })
    );
}

#[tokio::test]
async fn a_service_learns_about_an_unscoped_token() {
    let mut fx = Fixture::new();
    valid(&mut fx, claims(None), Some(alice()));
    fx.tenants.expect_find().never();
    fx.tenants.expect_role_of().never();

    let answer = introspect_as_service(fx).await.unwrap();

    let Introspection::Active(active) = answer else {
        panic!("{answer:?}");
    };
    assert_eq!((active.user_id, active.tenant), (ALICE, None));
    assert_eq!(active.role, Role::User);
}

#[tokio::test]
async fn an_invalid_token_is_inactive_without_consulting_anything_else() {
    let mut fx = Fixture::new();
    fx.tokens
        .expect_verify()
        .times(1)
        .returning(|_| Err(TokenError::Invalid("bad signature".to_owned())));
    fx.revocation.expect_is_revoked().never();
    fx.sessions.expect_find().never();
    fx.users.expect_find_by_id().never();

    assert_eq!(
        introspect_as_service(fx).await.unwrap(),
        Introspection::Inactive
    );
}

#[tokio::test]
async fn a_codec_failure_is_an_error_not_an_answer() {
    let mut fx = Fixture::new();
    fx.tokens
        .expect_verify()
        .returning(|_| Err(TokenError::Unexpected("unusable key".into())));

    let result = introspect_as_service(fx).await;

    assert!(
        matches!(result, Err(IntrospectError::Unexpected(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_session_on_the_revocation_list_is_inactive() {
    let mut fx = Fixture::new();
    fx.tokens.expect_verify().returning(|_| Ok(claims(None)));
    fx.revocation.expect_is_revoked().returning(|_| Ok(true));
    fx.sessions.expect_find().never();
    fx.users.expect_find_by_id().never();

    assert_eq!(
        introspect_as_service(fx).await.unwrap(),
        Introspection::Inactive
    );
}

#[tokio::test]
async fn a_session_the_store_ended_or_does_not_match_is_inactive() {
    let revoked = {
        let mut s = session(SESSION, ALICE, TimeDelta::days(1));
        s.revoked_at = Some(now() - TimeDelta::minutes(1));
        s
    };
    let expired = session(SESSION, ALICE, TimeDelta::seconds(-1));
    let someone_elses = session(SESSION, super::fixture::BOB, TimeDelta::days(1));
    let scoped = {
        let mut s = session(SESSION, ALICE, TimeDelta::days(1));
        s.tenant = Some(TENANT);
        s
    };
    for (what, stored) in [
        ("missing", None),
        ("revoked", Some(revoked)),
        ("expired", Some(expired)),
        ("another user's", Some(someone_elses)),
        ("scoped unlike the token", Some(scoped)),
    ] {
        let mut fx = Fixture::new();
        fx.tokens.expect_verify().returning(|_| Ok(claims(None)));
        fx.revocation.expect_is_revoked().returning(|_| Ok(false));
        fx.sessions
            .expect_find()
            .returning(move |_| Ok(stored.clone()));
        fx.users.expect_find_by_id().never();

        assert_eq!(
            introspect_as_service(fx).await.unwrap(),
            Introspection::Inactive,
            "{what}"
        );
    }
}

#[tokio::test]
async fn a_deleted_or_inactive_user_is_inactive() {
    for user in [None, Some(inactive(alice()))] {
        let mut fx = Fixture::new();
        valid(&mut fx, claims(None), user.clone());

        assert_eq!(
            introspect_as_service(fx).await.unwrap(),
            Introspection::Inactive,
            "{user:?}"
        );
    }
}

#[tokio::test]
async fn an_ended_membership_or_tenant_is_inactive() {
    let inactive_tenant = {
        let mut t = tenant();
        t.is_active = false;
        t
    };
    for (what, found, role) in [
        ("not a member any more", Some(tenant()), None),
        ("tenant deleted", None, Some(TenantRole::Admin)),
        (
            "tenant deactivated",
            Some(inactive_tenant),
            Some(TenantRole::Admin),
        ),
    ] {
        let mut fx = Fixture::new();
        valid(
            &mut fx,
            claims(Some((TENANT, TenantRole::Member))),
            Some(alice()),
        );
        fx.tenants
            .expect_find()
            .returning(move |_| Ok(found.clone()));
        fx.tenants.expect_role_of().returning(move |_, _| Ok(role));

        assert_eq!(
            introspect_as_service(fx).await.unwrap(),
            Introspection::Inactive,
            "{what}"
        );
    }
}

#[tokio::test]
async fn dependencies_that_cannot_be_read_fail_closed() {
    // The revocation list.
    let mut fx = Fixture::new();
    fx.tokens.expect_verify().returning(|_| Ok(claims(None)));
    fx.revocation
        .expect_is_revoked()
        .returning(|_| Err(revocation_error()));
    let list_down = introspect_as_service(fx).await;
    assert!(
        matches!(list_down, Err(IntrospectError::Unavailable(_))),
        "{list_down:?}"
    );

    // The session store.
    let mut fx = Fixture::new();
    fx.tokens.expect_verify().returning(|_| Ok(claims(None)));
    fx.revocation.expect_is_revoked().returning(|_| Ok(false));
    fx.sessions
        .expect_find()
        .returning(|_| Err(StoreError::Unavailable("down".into())));
    let store_down = introspect_as_service(fx).await;
    assert!(
        matches!(store_down, Err(IntrospectError::Unavailable(_))),
        "{store_down:?}"
    );

    // The tenant store, for a scoped token.
    let mut fx = Fixture::new();
    valid(
        &mut fx,
        claims(Some((TENANT, TenantRole::Member))),
        Some(alice()),
    );
    fx.tenants
        .expect_find()
        .returning(|_| Err(StoreError::Unavailable("down".into())));
    let tenants_down = introspect_as_service(fx).await;
    assert!(
        matches!(tenants_down, Err(IntrospectError::Unavailable(_))),
        "{tenants_down:?}"
    );
}

/// A token whose user's password is past the maximum age is active (it is valid), and the
/// answer says that UMS allows it only the password change; within the age, or with no
/// maximum age, it says not.
#[tokio::test]
async fn an_overdue_password_is_reported_and_the_token_stays_active() {
    // alice's password was set 100 days ago.
    for (max_age, required) in [
        (Some(TimeDelta::days(90)), true),
        (Some(TimeDelta::days(100) + TimeDelta::seconds(1)), false),
        (None, false),
    ] {
        let mut fx = Fixture::new();
        valid(&mut fx, claims(None), Some(alice()));
        let caller = service_caller();
        let answer = service(fx, MockServiceAccountStore::new())
            .with_password_max_age(max_age)
            .introspect(IntrospectionCaller::Service(&caller), BEARER)
            .await
            .unwrap();
        let Introspection::Active(active) = answer else {
            panic!("{max_age:?}: {answer:?}");
        };
        assert_eq!(active.password_change_required, required, "{max_age:?}");
    }
}
