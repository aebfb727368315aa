//! Test harness shared by the integration tests that need real servers.

pub mod redis;
