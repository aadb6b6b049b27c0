use std::sync::Arc;

use sea_orm::DatabaseConnection;

use super::client::ClientAddressRule;
use crate::domain::accounts::Accounts;
use crate::domain::keys::KeyRing;
use crate::domain::sessions::Sessions;
use crate::domain::throttle::Throttle;
use crate::domain::{Clock, SessionPolicy};

/// Settings the HTTP layer needs (cookie, origins, published configuration).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub cookie_name: String,
    pub cookie_path: String,
    pub allowed_origins: Vec<String>,
    pub issuer: String,
    pub audience: String,
    pub policy: SessionPolicy,
    pub client_address: ClientAddressRule,
    /// Every request is answered within this (503 beyond it).
    pub request_timeout: std::time::Duration,
}

/// Everything a handler can reach, installed on the app as request data.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub accounts: Accounts,
    pub sessions: Sessions,
    pub keys: KeyRing,
    pub settings: Arc<HttpSettings>,
    pub throttle: Throttle,
    pub clock: Arc<dyn Clock>,
    /// Deliberate faults (test builds only).
    #[cfg(feature = "fault-injection")]
    pub faults: crate::faults::Faults,
    /// Legal variations of the contract (test builds only).
    #[cfg(feature = "fault-injection")]
    pub variations: crate::variations::Variations,
    pub metrics: Arc<super::metrics::Metrics>,
}
