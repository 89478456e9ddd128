//! The state shared by every handler: the use-case services and request limits.

use domain::services::{AccountService, AuthService};

use crate::openapi::RouteTable;

/// Handler state, wrapped in `web::Data`.
#[derive(Debug)]
pub struct AppState {
    /// Authentication use cases.
    pub auth: AuthService,
    /// Account use cases.
    pub account: AccountService,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// The documented routes, to tell a wrong method (405) from an unknown path (404).
    pub routes: RouteTable,
}
