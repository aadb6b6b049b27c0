//! Reliability and abuse resistance (issue 7), as tests: database faults
//! through a TCP proxy of our own, kill -9 in the middle of refreshes,
//! graceful shutdown of the real binary, throttling, and property tests that
//! throw arbitrary input at the token parsers.
//!
//! Run: `cargo test -p baton-server --test reliability`. PostgreSQL tests
//! skip themselves outside CI when 127.0.0.1:5432 is unreachable. Longer
//! property runs: `PROPTEST_CASES=20000 cargo test -p baton-server --test
//! reliability properties`.

#[path = "../api/helpers.rs"]
mod helpers;

mod support;

mod crash_safety;
mod cross_backend;
mod db_faults;
mod disk_full;
mod group_commit;
mod lock_waits;
mod properties;
mod revocation_races;
mod rotation_failures;
mod shared_limits;
mod shutdown;
mod throttling;
