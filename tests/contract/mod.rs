//! One module per port family; each exposes `async fn` checks taking a fresh adapter.

pub mod cache;
pub mod revocation;
pub mod stores;
pub mod throttle;
