//! Provisioning helpers for tests that need real servers: which servers to use, and a fresh
//! database or key prefix per test, and an SMTP server that keeps what it receives.

pub mod env;
pub mod postgres;
pub mod redis;
pub mod smtp;
