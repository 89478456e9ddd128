//! The port contract suite: tests written once against the domain's port traits, run by every
//! adapter crate against its own implementation, so adapters of one port cannot drift apart.
//! `support` provisions what those tests need: which PostgreSQL and Redis servers to use, a
//! fresh database or key prefix per test. (The black-box API tests live in `api/`.)

pub mod contract;
pub mod support;
