//! The port contract suite: tests written once against the domain's port traits, run by every
//! adapter crate against its own implementation, so adapters of one port cannot drift apart.
//! (The black-box API tests live in `api/`.)

pub mod contract;
pub mod support;
