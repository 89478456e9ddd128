//! Black-box tests of the running service: each test starts the real server on port 0 against
//! a fresh SQLite file, and talks HTTP to it. Every response is checked against the served
//! OpenAPI document (see `helpers`), so the document cannot drift from what the service does.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

mod admin;
mod auth;
mod conventions;
mod guessing;
mod helpers;
mod introspect;
mod lifecycle;
mod mail;
mod me;
mod openapi;
mod password_age;
mod production;
mod ratelimit;
mod tenancy;
mod timing;
mod tokens;
