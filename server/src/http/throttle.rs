//! Throttling: fixed-window counters per key (account, client address),
//! in memory per instance. A burst against one account does not touch others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::{Clock, Timestamp};

#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub login_per_account: Limit,
    pub login_per_ip: Limit,
    pub refresh_per_ip: Limit,
    pub register_per_ip: Limit,
}

#[derive(Clone)]
pub struct Throttle {
    enabled: bool,
    pub limits: Limits,
    clock: Arc<dyn Clock>,
    windows: Arc<Mutex<HashMap<String, (Timestamp, u32)>>>,
}

/// Above this many tracked keys, finished windows are swept.
const SWEEP_THRESHOLD: usize = 10_000;

impl Throttle {
    pub fn new(enabled: bool, limits: Limits, clock: Arc<dyn Clock>) -> Self {
        Self {
            enabled,
            limits,
            clock,
            windows: Arc::default(),
        }
    }

    /// Counts one attempt under `key`; `Err(seconds)` when over the limit.
    pub fn check(&self, key: &str, limit: Limit) -> Result<(), u64> {
        if !self.enabled {
            return Ok(());
        }
        let now = self.clock.now();
        let mut windows = self.windows.lock().expect("throttle lock");
        if windows.len() > SWEEP_THRESHOLD {
            windows.retain(|_, (start, _)| start.saturating_add(Duration::from_secs(3600)) > now);
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if entry.0.saturating_add(limit.window) <= now {
            *entry = (now, 0);
        }
        if entry.1 >= limit.max {
            let reset = entry.0.saturating_add(limit.window);
            return Err(now.until(reset).as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ManualClock;

    fn throttle(clock: &ManualClock) -> Throttle {
        let l = Limit {
            max: 2,
            window: Duration::from_secs(60),
        };
        Throttle::new(
            true,
            Limits {
                login_per_account: l,
                login_per_ip: l,
                refresh_per_ip: l,
                register_per_ip: l,
            },
            Arc::new(clock.clone()),
        )
    }

    #[test]
    fn the_limit_applies_per_key_and_resets_with_the_window() {
        let clock = ManualClock::starting_now();
        let t = throttle(&clock);
        let l = t.limits.login_per_account;
        assert!(t.check("a", l).is_ok());
        assert!(t.check("a", l).is_ok());
        assert_eq!(t.check("a", l), Err(60));
        assert!(t.check("b", l).is_ok(), "another account is unaffected");
        clock.advance(Duration::from_secs(61));
        assert!(t.check("a", l).is_ok());
    }
}
