//! The state shared by every handler: the use-case services and request limits.

use std::sync::Arc;

use domain::ports::Readiness;
use domain::services::{
    AccountService, AuditService, AuthService, ServiceAccountService, TenantService,
    UserAdminService,
};

use crate::openapi::RouteTable;

/// Handler state, wrapped in `web::Data`.
pub struct AppState {
    /// Authentication use cases.
    pub auth: AuthService,
    /// Account use cases.
    pub account: AccountService,
    /// Tenant and membership use cases.
    pub tenants: TenantService,
    /// User administration.
    pub users: UserAdminService,
    /// The audit trail.
    pub audit: AuditService,
    /// Service accounts and token introspection.
    pub service_accounts: ServiceAccountService,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// The documented routes, to tell a wrong method (405) from an unknown path (404).
    pub routes: RouteTable,
    /// The dependencies `/health/ready` reports, by name.
    pub readiness: Vec<(&'static str, Arc<dyn Readiness>)>,
    /// Slots for the work `POST /auth/password/forgot` does after answering: bounded, so a
    /// flood of requests waits for a slot (alike for every address) instead of piling up tasks.
    pub forgot_slots: Arc<tokio::sync::Semaphore>,
    /// The dependencies it reports without answering 503 for them (`mail`).
    pub advisory: Vec<(&'static str, Arc<dyn Readiness>)>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}
