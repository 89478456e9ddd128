//! One module per port family; each exposes `async fn` checks taking a fresh adapter. The
//! storage ports' checks (`stores`, `sessions`, `users`, `tenants`, `audit`, `atomicity`,
//! `outbox`) share `fixtures` and are all run by `store_contract_tests!`.

pub mod atomicity;
pub mod audit;
pub mod cache;
pub mod fixtures;
pub mod outbox;
pub mod ratelimit;
pub mod revocation;
pub mod service_accounts;
pub mod sessions;
pub mod stores;
pub mod tenants;
pub mod throttle;
pub mod users;
