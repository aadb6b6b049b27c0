//! The throttling policy: which attempts are counted, under which keys, and
//! when an attempt is refused. Counters live in a [`LimitStore`] (memory, the
//! shared database, Redis); a store that fails or is slow is replaced by the
//! in-memory one for that check, with a warning, never an error.
//!
//! Login follows OWASP's advice against both guessing and lock-out abuse:
//! - attempts per client address over all accounts (password spraying);
//! - failures per (account, address) pair: the address that guessed wrong
//!   too often waits, the account's owner elsewhere does not;
//! - failures per account over all addresses: above that threshold the
//!   account is under a distributed attack, and every address that already
//!   failed on it in the window waits, while a clean address still gets its
//!   attempt. No count anyone else can drive refuses a clean address.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::{Clock, Timestamp};
use crate::storage::limits::{Count, LimitStore, MemoryStore};

/// At most `max` events per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub login_attempts_per_address: Limit,
    pub login_failures_per_account_and_address: Limit,
    pub login_failures_per_account: Limit,
    pub refreshes_per_address: Limit,
    pub registrations_per_address: Limit,
}

/// What a counter counts; its name is the key's purpose prefix and the
/// policy name in the `RateLimit` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    LoginAttempts,
    LoginFailures,
    AccountFailures,
    Refresh,
    Register,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::LoginAttempts => "login",
            Policy::LoginFailures => "login-failures",
            Policy::AccountFailures => "account-failures",
            Policy::Refresh => "refresh",
            Policy::Register => "register",
        }
    }
}

/// A counter's key: SHA-256 of the purpose and the normalised values, so it
/// is 32 bytes whatever the client sent, and no email is ever stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LimitKey(pub [u8; 32]);

impl LimitKey {
    pub fn new(policy: Policy, parts: &[&str]) -> Self {
        let mut hash = Sha256::new();
        hash.update(policy.name().as_bytes());
        for part in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        Self(hash.finalize().into())
    }

    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The unit a client address is counted in: an IPv4 address (IPv4-mapped
/// IPv6 included), or the /64 of an IPv6 address, the smallest block a
/// single subscriber is routinely given (RFC 6177).
pub fn address_bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
    }
}

/// Accounts are counted under their normalised email (case ignored, as for
/// uniqueness), whatever its length or validity: it is hashed.
fn account_part(email: &str) -> String {
    email.to_lowercase()
}

/// One policy as it stands for this client: for `RateLimit-Policy` and
/// `RateLimit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub policy: Policy,
    pub limit: Limit,
    pub remaining: u32,
    /// Whole seconds until the window resets (at least 1).
    pub reset_secs: u64,
}

/// Refused: wait `retry_after` seconds. `quotas` are those that applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: u64,
    pub quotas: Vec<Quota>,
}

/// Admitted, with the quotas that applied (empty when throttling is off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admitted {
    pub quotas: Vec<Quota>,
}

/// An admitted login: what to count if the credentials turn out wrong.
#[derive(Debug, Clone)]
pub struct LoginGate {
    pub admitted: Admitted,
    pair: LimitKey,
    account: LimitKey,
}

#[derive(Clone)]
pub struct Throttle {
    enabled: bool,
    pub limits: Limits,
    store: LimitStore,
    fallback: MemoryStore,
    clock: Arc<dyn Clock>,
    store_timeout: Duration,
    last_warning: Arc<Mutex<Option<Instant>>>,
}

/// A failing store is reported at most this often.
const WARNING_INTERVAL: Duration = Duration::from_secs(60);

fn seconds_until(now: Timestamp, reset: Timestamp) -> u64 {
    now.until(reset).as_millis().div_ceil(1000).max(1) as u64
}

impl Throttle {
    pub fn new(
        enabled: bool,
        limits: Limits,
        store: LimitStore,
        fallback: MemoryStore,
        clock: Arc<dyn Clock>,
        store_timeout: Duration,
    ) -> Self {
        Self {
            enabled,
            limits,
            store,
            fallback,
            clock,
            store_timeout,
            last_warning: Arc::default(),
        }
    }

    pub fn store_name(&self) -> &'static str {
        self.store.name()
    }

    fn warn_degraded(&self, why: &str) {
        let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < WARNING_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        tracing::warn!(
            event = "rate_limit_store_degraded",
            store = self.store.name(),
            error = why,
            "the rate-limit store failed; counting in this instance's memory until it answers \
             (limits are per instance meanwhile)"
        );
    }

    /// Counts one event under `key`: the store's count, else the fallback's.
    async fn hit(&self, key: &LimitKey, limit: Limit, now: Timestamp) -> Count {
        match tokio::time::timeout(self.store_timeout, self.store.hit(key, limit.window, now)).await
        {
            Ok(Ok(count)) => count,
            Ok(Err(e)) => {
                self.warn_degraded(&e.to_string());
                self.fallback.hit(key, limit.window, now)
            }
            Err(_) => {
                self.warn_degraded("no answer within the store timeout");
                self.fallback.hit(key, limit.window, now)
            }
        }
    }

    /// Reads counters without counting.
    async fn peek(&self, keys: &[LimitKey], now: Timestamp) -> Vec<Count> {
        match tokio::time::timeout(self.store_timeout, self.store.peek(keys, now)).await {
            Ok(Ok(counts)) => counts,
            Ok(Err(e)) => {
                self.warn_degraded(&e.to_string());
                self.fallback.peek(keys, now)
            }
            Err(_) => {
                self.warn_degraded("no answer within the store timeout");
                self.fallback.peek(keys, now)
            }
        }
    }

    fn quota(policy: Policy, limit: Limit, count: Count, now: Timestamp) -> Quota {
        let reset = count
            .resets_at
            .filter(|r| *r > now)
            .unwrap_or(now.saturating_add(limit.window));
        Quota {
            policy,
            limit,
            remaining: limit.max.saturating_sub(count.hits),
            reset_secs: seconds_until(now, reset),
        }
    }

    /// One counted attempt under a single per-address policy.
    async fn attempt(
        &self,
        policy: Policy,
        limit: Limit,
        address: IpAddr,
    ) -> Result<Admitted, Throttled> {
        if !self.enabled {
            return Ok(Admitted::default());
        }
        let now = self.clock.now();
        let key = LimitKey::new(policy, &[&address_bucket(address)]);
        let count = self.hit(&key, limit, now).await;
        let quota = Self::quota(policy, limit, count, now);
        if count.hits > limit.max {
            return Err(Throttled {
                retry_after: quota.reset_secs,
                quotas: vec![quota],
            });
        }
        Ok(Admitted {
            quotas: vec![quota],
        })
    }

    pub async fn register(&self, address: IpAddr) -> Result<Admitted, Throttled> {
        self.attempt(
            Policy::Register,
            self.limits.registrations_per_address,
            address,
        )
        .await
    }

    pub async fn refresh(&self, address: IpAddr) -> Result<Admitted, Throttled> {
        self.attempt(Policy::Refresh, self.limits.refreshes_per_address, address)
            .await
    }

    /// Admits or refuses a login attempt before the password is checked.
    pub async fn login(&self, email: &str, address: IpAddr) -> Result<LoginGate, Throttled> {
        let bucket = address_bucket(address);
        let account = account_part(email);
        let pair = LimitKey::new(Policy::LoginFailures, &[&account, &bucket]);
        let account_key = LimitKey::new(Policy::AccountFailures, &[&account]);
        let mut gate = LoginGate {
            admitted: Admitted::default(),
            pair,
            account: account_key,
        };
        if !self.enabled {
            return Ok(gate);
        }
        let now = self.clock.now();
        let attempts_limit = self.limits.login_attempts_per_address;
        let attempts_key = LimitKey::new(Policy::LoginAttempts, &[&bucket]);
        let attempts = self.hit(&attempts_key, attempts_limit, now).await;
        let attempts_quota = Self::quota(Policy::LoginAttempts, attempts_limit, attempts, now);
        let counts = self.peek(&[pair, account_key], now).await;
        let (pair_count, account_count) = (counts[0], counts[1]);
        let pair_limit = self.limits.login_failures_per_account_and_address;
        let account_limit = self.limits.login_failures_per_account;
        let mut failures = Self::quota(Policy::LoginFailures, pair_limit, pair_count, now);
        let attempts_exhausted = attempts.hits > attempts_limit.max;
        let pair_exhausted = pair_count.hits >= pair_limit.max;
        // Under a distributed attack, an address that already failed on
        // this account waits; a clean one does not.
        let account_exhausted = account_count.hits >= account_limit.max && pair_count.hits > 0;
        let mut retry_after = None;
        if attempts_exhausted {
            retry_after = Some(attempts_quota.reset_secs);
        }
        if pair_exhausted || account_exhausted {
            let wait = if pair_exhausted {
                failures.reset_secs
            } else {
                // Until either window ends, whichever comes first.
                let account_reset =
                    Self::quota(Policy::AccountFailures, account_limit, account_count, now)
                        .reset_secs;
                account_reset.min(failures.reset_secs)
            };
            failures.remaining = 0;
            failures.reset_secs = wait;
            retry_after = Some(retry_after.unwrap_or(0).max(wait));
        }
        let quotas = vec![attempts_quota, failures];
        if let Some(retry_after) = retry_after {
            return Err(Throttled {
                retry_after,
                quotas,
            });
        }
        gate.admitted = Admitted { quotas };
        Ok(gate)
    }

    /// Counts a wrong password (or unknown account) against the gate's
    /// account, from its address and over all addresses.
    pub async fn login_failed(&self, gate: &mut LoginGate) {
        if !self.enabled {
            return;
        }
        let now = self.clock.now();
        let pair_limit = self.limits.login_failures_per_account_and_address;
        let pair = self.hit(&gate.pair, pair_limit, now).await;
        self.hit(&gate.account, self.limits.login_failures_per_account, now)
            .await;
        if let Some(q) = gate
            .admitted
            .quotas
            .iter_mut()
            .find(|q| q.policy == Policy::LoginFailures)
        {
            *q = Self::quota(Policy::LoginFailures, pair_limit, pair, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ManualClock;

    fn limit(max: u32) -> Limit {
        Limit {
            max,
            window: Duration::from_secs(60),
        }
    }

    fn throttle(clock: &ManualClock, pair: u32, account: u32) -> Throttle {
        let memory = MemoryStore::new(1000);
        Throttle::new(
            true,
            Limits {
                login_attempts_per_address: limit(100),
                login_failures_per_account_and_address: limit(pair),
                login_failures_per_account: limit(account),
                refreshes_per_address: limit(2),
                registrations_per_address: limit(2),
            },
            LimitStore::Memory(memory.clone()),
            memory,
            Arc::new(clock.clone()),
            Duration::from_millis(500),
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn keys_are_32_bytes_whatever_the_input_and_ignore_the_case_of_the_email() {
        let long = "a".repeat(60_000);
        let k = LimitKey::new(Policy::LoginFailures, &[&account_part(&long), "1.2.3.4"]);
        assert_eq!(k.0.len(), 32);
        assert_eq!(
            LimitKey::new(Policy::AccountFailures, &[&account_part("A@X.test")]),
            LimitKey::new(Policy::AccountFailures, &[&account_part("a@x.TEST")]),
        );
        assert_ne!(
            LimitKey::new(Policy::LoginFailures, &["ab", "c"]),
            LimitKey::new(Policy::LoginFailures, &["a", "bc"]),
        );
        assert_ne!(
            LimitKey::new(Policy::Refresh, &["1.2.3.4"]),
            LimitKey::new(Policy::Register, &["1.2.3.4"]),
        );
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            address_bucket(ip("2001:db8:1:2:aaaa::1")),
            address_bucket(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_eq!(address_bucket(ip("2001:db8:1:2::9")), "2001:db8:1:2::/64");
        assert_ne!(
            address_bucket(ip("2001:db8:1:2::1")),
            address_bucket(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_bucket(ip("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(address_bucket(ip("192.0.2.7")), "192.0.2.7");
    }

    #[tokio::test]
    async fn the_limit_applies_per_address_and_resets_with_the_window() {
        let clock = ManualClock::starting_now();
        let t = throttle(&clock, 3, 10);
        let a = ip("192.0.2.1");
        assert_eq!(t.refresh(a).await.unwrap().quotas[0].remaining, 1);
        assert_eq!(t.refresh(a).await.unwrap().quotas[0].remaining, 0);
        let refused = t.refresh(a).await.unwrap_err();
        assert_eq!(refused.retry_after, 60);
        assert!(t.refresh(ip("192.0.2.2")).await.is_ok());
        clock.advance(Duration::from_secs(61));
        assert!(t.refresh(a).await.is_ok());
    }

    #[tokio::test]
    async fn failures_from_one_address_do_not_refuse_a_clean_address() {
        let clock = ManualClock::starting_now();
        let t = throttle(&clock, 3, 5);
        let (attacker, owner) = (ip("198.51.100.1"), ip("203.0.113.9"));
        for _ in 0..3 {
            let mut gate = t.login("v@x.test", attacker).await.unwrap();
            t.login_failed(&mut gate).await;
        }
        assert!(t.login("V@x.test", attacker).await.is_err());
        assert!(t.login("v@x.test", owner).await.is_ok());
        assert!(t.login("other@x.test", attacker).await.is_ok());
    }

    #[tokio::test]
    async fn above_the_account_threshold_only_addresses_that_failed_wait() {
        let clock = ManualClock::starting_now();
        let t = throttle(&clock, 3, 4);
        // Four addresses fail once each: the account threshold is reached.
        for i in 1..=4 {
            let mut gate = t
                .login("v@x.test", ip(&format!("198.51.100.{i}")))
                .await
                .unwrap();
            t.login_failed(&mut gate).await;
        }
        assert!(
            t.login("v@x.test", ip("198.51.100.1")).await.is_err(),
            "an address that failed waits once the account is under attack"
        );
        assert!(
            t.login("v@x.test", ip("203.0.113.9")).await.is_ok(),
            "a clean address still gets its attempt"
        );
        clock.advance(Duration::from_secs(61));
        assert!(t.login("v@x.test", ip("198.51.100.1")).await.is_ok());
    }
}
