//! Contract checks for `ServiceAccountStore`, and the
//! [`service_account_contract_tests!`](crate::service_account_contract_tests) macro that runs
//! them against an adapter (the same `fresh` and `break_audit` as
//! [`store_contract_tests!`](crate::store_contract_tests); the store must implement
//! `ServiceAccountStore` besides the four storage ports).
//!
//! ```ignore
//! ums_tests::service_account_contract_tests!(fresh, break_audit);
//! ```
//!
//! # Decisions beyond the rustdoc of the port
//!
//! - The store keeps `created_at` and `last_used_at` to the microsecond, like every other
//!   timestamp, and `create` returns the account as given.
//! - What is stored as a secret is a digest: a value that is not 64 lower-case hex characters
//!   (a SHA-256 digest as `SecureRandom::digest` writes it) is refused by the store itself, so
//!   no code path can store a secret in clear.
//! - Names compare regardless of ASCII case (they are ASCII by construction).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeDelta};
use domain::model::{
    AuditAction, ClientId, ServiceAccount, ServiceAccountCredentials, ServiceAccountId,
    ServiceAccountName, TokenHash,
};
use domain::ports::{ServiceAccountStore, StoreError, UniqueField};
use uuid::Uuid;

use super::fixtures::{ALL, BASE, Store, assert_no_events, at, events, journal, page, token};

/// Generates one `#[tokio::test]` per service-account contract check, like
/// [`store_contract_tests!`](crate::store_contract_tests) (and with the same arguments).
#[macro_export]
macro_rules! service_account_contract_tests {
    (optional $fresh:expr, $break_audit:expr $(,)?) => {
        $crate::service_account_contract_tests!(@checks [optional] $fresh, $break_audit);
    };
    ($fresh:expr, $break_audit:expr $(,)?) => {
        $crate::service_account_contract_tests!(@checks [required] $fresh, $break_audit);
    };
    (@checks [$mode:ident] $fresh:expr, $break_audit:expr) => {
        $crate::store_contract_tests!(@each [$mode] $fresh; service_accounts:
            service_account_create_and_find_round_trip_every_field,
            service_account_create_writes_its_journal,
            service_account_names_are_unique_regardless_of_case,
            service_account_secrets_are_stored_only_as_digests,
            service_account_touch_records_the_latest_use_only,
            service_account_list_pages_oldest_first_without_digests,
            service_account_delete_removes_the_account_and_writes_its_journal,
        );
        $crate::store_contract_tests!(@broken [$mode] $fresh, $break_audit; service_accounts:
            service_account_create_fails_whole_when_its_journal_fails,
            service_account_delete_fails_whole_when_its_journal_fails,
        );
    };
}

/// Service account `n`.
#[must_use]
pub fn account_id(n: u128) -> ServiceAccountId {
    ServiceAccountId::from_uuid(Uuid::from_u128(0x5a00_0000_0000 + n))
}

/// The client id of service account `n`.
#[must_use]
pub fn client_id(n: u128) -> ClientId {
    ClientId::parse(&format!("ums_sa_client{n}")).expect("a valid client id")
}

/// Service account `n` named `name`, created at `at(created)`, never used, whose secret's
/// digest is [`token`]`(n)`.
#[must_use]
pub fn new_account(n: u128, name: &str, created: i64) -> ServiceAccountCredentials {
    ServiceAccountCredentials {
        account: ServiceAccount {
            id: account_id(n),
            name: ServiceAccountName::parse(name).expect("a valid name"),
            description: String::new(),
            client_id: client_id(n),
            created_at: at(created),
            last_used_at: None,
        },
        secret_hash: token(n),
    }
}

/// The store as a `ServiceAccountStore` only (`create`, `list`, `delete`).
fn accounts<S: ServiceAccountStore>(store: &S) -> &impl ServiceAccountStore {
    store
}

/// Creates an account with an empty journal.
async fn create<S: ServiceAccountStore>(
    store: &S,
    account: ServiceAccountCredentials,
) -> ServiceAccount {
    accounts(store)
        .create(account, domain::model::Journal::default())
        .await
        .expect("create a service account")
}

/// The stored credentials of client `n`, which must exist.
async fn find<S: ServiceAccountStore>(store: &S, n: u128) -> ServiceAccountCredentials {
    store
        .find_by_client_id(&client_id(n))
        .await
        .expect("find_by_client_id")
        .expect("the service account exists")
}

/// `create` returns, and `find_by_client_id` reads back with its digest, every field as given,
/// timestamps to the microsecond; an unknown client id finds nothing.
pub async fn service_account_create_and_find_round_trip_every_field<S>(store: S)
where
    S: Store + ServiceAccountStore,
{
    let mut billing = new_account(1, "Billing-API", 0);
    billing.account.description = "Issues invoices; reads tokens.".to_owned();
    billing.account.created_at = DateTime::from_timestamp(BASE, 123_456_000).expect("in range");
    billing.account.last_used_at =
        Some(DateTime::from_timestamp(BASE + 5, 654_321_000).expect("in range"));
    assert_eq!(
        create(&store, billing.clone()).await,
        billing.account,
        "create returns the stored account"
    );
    assert_eq!(find(&store, 1).await, billing, "find_by_client_id");

    let plain = new_account(2, "reports", 10);
    create(&store, plain.clone()).await;
    assert_eq!(find(&store, 2).await, plain);

    assert!(
        store
            .find_by_client_id(&client_id(3))
            .await
            .expect("find_by_client_id")
            .is_none(),
        "an unknown client id finds nothing"
    );
    let prefix = ClientId::parse("ums_sa_client").expect("a valid client id");
    assert!(
        store
            .find_by_client_id(&prefix)
            .await
            .expect("find_by_client_id")
            .is_none(),
        "client ids match exactly, not by prefix"
    );
}

/// `create` writes its journal.
pub async fn service_account_create_writes_its_journal<S>(store: S)
where
    S: Store + ServiceAccountStore,
{
    accounts(&store)
        .create(
            new_account(1, "billing", 0),
            journal(1, AuditAction::ServiceAccountCreated),
        )
        .await
        .expect("create");
    let stored = events(&store).await;
    assert_eq!(
        stored.iter().map(|e| e.action).collect::<Vec<_>>(),
        vec![AuditAction::ServiceAccountCreated]
    );
}

/// A name taken by another account, in any case, is `Duplicate(ServiceAccountName)`, and
/// nothing is written, the journal included.
pub async fn service_account_names_are_unique_regardless_of_case<S>(store: S)
where
    S: Store + ServiceAccountStore,
{
    create(&store, new_account(1, "Billing", 0)).await;
    for (n, name) in [(2, "Billing"), (3, "billing"), (4, "BILLING")] {
        let result = accounts(&store)
            .create(
                new_account(n, name, 1),
                journal(n, AuditAction::ServiceAccountCreated),
            )
            .await;
        assert!(
            matches!(
                result,
                Err(StoreError::Duplicate(UniqueField::ServiceAccountName))
            ),
            "{name}: {result:?}"
        );
        assert!(
            store
                .find_by_client_id(&client_id(n))
                .await
                .expect("find_by_client_id")
                .is_none(),
            "{name}: nothing stored"
        );
    }
    assert_no_events(&store, "a refused create writes no journal").await;
    assert_eq!(accounts(&store).list(ALL).await.expect("list").total, 1);
}

/// The store refuses to keep anything but a hex SHA-256 digest as a secret, and hands back
/// the digest it was given, never anything else.
pub async fn service_account_secrets_are_stored_only_as_digests<S>(store: S)
where
    S: Store + ServiceAccountStore,
{
    for (n, secret) in [
        (1, "a-plaintext-secret-nobody-hashed"),
        (2, "A".repeat(64).as_str()),
        (3, "0".repeat(63).as_str()),
        (4, ""),
    ] {
        let mut account = new_account(n, &format!("clear{n}"), 0);
        account.secret_hash = TokenHash::new(secret.to_owned());
        let result = accounts(&store)
            .create(account, journal(n, AuditAction::ServiceAccountCreated))
            .await;
        assert!(result.is_err(), "{secret:?} was stored as a digest");
        assert!(
            store
                .find_by_client_id(&client_id(n))
                .await
                .expect("find_by_client_id")
                .is_none(),
            "{secret:?}: nothing stored"
        );
    }
    assert_no_events(&store, "a refused create writes no journal").await;

    let digest = TokenHash::new(format!("{:064x}", 0xfeed_u128));
    let mut account = new_account(5, "digested", 0);
    account.secret_hash = digest.clone();
    create(&store, account).await;
    let stored = find(&store, 5).await;
    assert_eq!(stored.secret_hash, digest, "the digest round-trips exactly");
    assert!(stored.secret_matches(&digest));
}

/// `touch` sets `last_used_at`, never moves it back, and is `NotFound` for an unknown id.
pub async fn service_account_touch_records_the_latest_use_only<S>(store: S)
where
    S: Store + ServiceAccountStore,
{
    create(&store, new_account(1, "billing", 0)).await;
    create(&store, new_account(2, "reports", 0)).await;
    let first = at(60) + TimeDelta::microseconds(7);
    store.touch(account_id(1), first).await.expect("touch");
    assert_eq!(find(&store, 1).await.account.last_used_at, Some(first));
    assert_eq!(
        find(&store, 2).await.account.last_used_at,
        None,
        "only that account"
    );

    store.touch(account_id(1), at(30)).await.expect("touch");
    assert_eq!(
        find(&store, 1).await.account.last_used_at,
        Some(first),
        "an earlier instant does not move it back"
    );
    store.touch(account_id(1), at(120)).await.expect("touch");
    assert_eq!(find(&store, 1).await.account.last_used_at, Some(at(120)));

    let unknown = store.touch(account_id(9), at(120)).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

/// `list` pages the accounts oldest first, ties by id, with the total.
pub async fn service_account_list_pages_oldest_first_without_digests<S>(store: S)
where
    S: Store + ServiceAccountStore,
{
    assert_eq!(
        accounts(&store).list(ALL).await.expect("list").total,
        0,
        "an empty store lists nothing"
    );
    // Created out of order; 2 and 3 at the same instant.
    for (n, created) in [(3, 10), (1, 20), (2, 10), (4, 30)] {
        create(&store, new_account(n, &format!("account{n}"), created)).await;
    }
    let first = accounts(&store).list(page(1, 3)).await.expect("list");
    assert_eq!(first.total, 4);
    assert_eq!(
        first.items.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![account_id(2), account_id(3), account_id(1)]
    );
    assert_eq!(first.items[0], new_account(2, "account2", 10).account);
    let second = accounts(&store).list(page(2, 3)).await.expect("list");
    assert_eq!(
        second.items.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![account_id(4)]
    );
    assert_eq!(second.total, 4);
}

/// `delete` removes the account (its client id finds nothing) writing its journal; an unknown
/// id is `NotFound` and writes nothing.
pub async fn service_account_delete_removes_the_account_and_writes_its_journal<S>(store: S)
where
    S: Store + ServiceAccountStore,
{
    create(&store, new_account(1, "billing", 0)).await;
    create(&store, new_account(2, "reports", 0)).await;
    let unknown = accounts(&store)
        .delete(account_id(9), journal(9, AuditAction::AccessDenied))
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    assert_no_events(&store, "a refused delete writes no journal").await;

    accounts(&store)
        .delete(account_id(1), journal(1, AuditAction::AccessDenied))
        .await
        .expect("delete");
    assert!(
        store
            .find_by_client_id(&client_id(1))
            .await
            .expect("find_by_client_id")
            .is_none(),
        "the account is gone"
    );
    assert_eq!(
        find(&store, 2).await.account.id,
        account_id(2),
        "not others"
    );
    assert_eq!(events(&store).await.len(), 1, "the journal was written");
    // The name is free again.
    create(&store, new_account(3, "billing", 5)).await;
}

/// `create` with a refused journal fails and stores no account.
pub async fn service_account_create_fails_whole_when_its_journal_fails<S>(
    store: S,
    break_audit: impl FnOnce(),
) where
    S: Store + ServiceAccountStore,
{
    break_audit();
    let result = accounts(&store)
        .create(
            new_account(1, "billing", 0),
            journal(1, AuditAction::ServiceAccountCreated),
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Unexpected(_))),
        "create must fail with the refused audit insert, got {result:?}"
    );
    assert!(
        store
            .find_by_client_id(&client_id(1))
            .await
            .expect("find_by_client_id")
            .is_none(),
        "the account was not stored"
    );
    assert_eq!(accounts(&store).list(ALL).await.expect("list").total, 0);
    assert_no_events(&store, "ServiceAccountStore::create: no event is written").await;
}

/// `delete` with a refused journal fails and keeps the account.
pub async fn service_account_delete_fails_whole_when_its_journal_fails<S>(
    store: S,
    break_audit: impl FnOnce(),
) where
    S: Store + ServiceAccountStore,
{
    create(&store, new_account(1, "billing", 0)).await;
    break_audit();
    let result = accounts(&store)
        .delete(account_id(1), journal(1, AuditAction::AccessDenied))
        .await;
    assert!(
        matches!(result, Err(StoreError::Unexpected(_))),
        "delete must fail with the refused audit insert, got {result:?}"
    );
    assert_eq!(
        find(&store, 1).await.account.id,
        account_id(1),
        "the account was kept"
    );
    assert_no_events(&store, "ServiceAccountStore::delete: no event is written").await;
}
