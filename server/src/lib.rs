//! Baton: the session service.
//!
//! Layout: `config` (command line and environment), `domain` (tokens, sessions,
//! passwords; knows nothing of HTTP), `storage` (sea-orm entities, migrations,
//! queries), `files` (secret files on disk), `http` (poem-openapi endpoints and the one place errors become
//! problem responses), `startup` (wiring), `telemetry` (logs).
#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod files;
pub mod http;
pub mod startup;
pub mod storage;
pub mod telemetry;
#[cfg(feature = "fault-injection")]
pub mod variations;
