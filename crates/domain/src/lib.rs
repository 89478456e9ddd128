//! The UMS domain: users, sessions, roles and the rules that govern them, with no I/O.
//!
//! Everything the outside world provides (storage, hashing, tokens, mail, time, randomness)
//! comes in through the port traits in [`ports`]; the use cases in [`services`] are written
//! against those traits only, and every authorization decision is a pure function in [`policy`].
//! Another Rust service can embed this crate with adapters of its own.

pub mod cache;
pub mod error;
pub mod model;
pub mod policy;
pub mod ports;
pub mod services;
pub mod settings;

pub use error::{BoxError, ValidationErrors};
pub use services::{Ports, Principal};
