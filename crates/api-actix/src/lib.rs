//! The UMS HTTP API (actix-web) and the composition root.
//!
//! Only this crate knows HTTP; only [`startup`] knows which adapter serves which port.

pub mod client_ip;
pub mod error_map;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod password_age;
pub mod problem;
pub mod ratelimit;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use settings::Settings;
pub use startup::{Application, StartupError};
