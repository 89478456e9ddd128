//! Unit tests of every use case, against mockall mocks of the ports (no I/O).
//!
//! Each test builds a [`fixture::Fixture`] (fixed clock, sequential ids, deterministic random
//! tokens; the audit log permissive and recording; every other port strict, so an unexpected
//! call fails the test) and states only the port calls that matter to it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account;
mod audit;
mod authenticate;
mod closing;
mod fixture;
mod login;
mod logout;
mod mail;
mod maintenance;
mod password_age;
mod password_attempts;
mod recovery;
mod refresh;
mod register;
mod service_accounts;
mod tenants;
mod unverified;
mod users;
mod verification;
