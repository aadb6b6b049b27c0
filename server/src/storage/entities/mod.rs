//! Table definitions. Timestamps are milliseconds since the Unix epoch in
//! BIGINT columns: exact, ordered, and the same on all three backends.

pub mod refresh_token;
pub mod service_setting;
pub mod session;
pub mod signing_key;
pub mod user;
