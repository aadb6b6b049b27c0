//! The session domain: accounts, passwords, access tokens, refresh tokens and
//! their families. Nothing in here knows about HTTP.

pub mod access_token;
pub mod accounts;
pub mod bounded_map;
pub mod clock;
pub mod email;
pub mod error;
pub mod housekeeping;
pub mod keys;
pub mod password;
pub mod policy;
pub mod refresh_token;
pub mod rotation;
pub mod service;
pub mod session_store;
pub mod sessions;
pub mod throttle;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::AuthError;
pub use policy::SessionPolicy;
