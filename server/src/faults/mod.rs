//! Deliberate contract violations, so the conformance suite can prove it
//! catches broken servers. Compiled only with the `fault-injection` feature
//! (debug test builds); a production build refuses `BATON_FAULTS` at start-up
//! and carries none of this. Each fault is a decorator, not a branch in the
//! code it perturbs: around the session store and the successor source
//! ([`store`]), or around the HTTP application ([`http`]).
//!
//! [`FAULTS`] is the one list of faults: `scripts/test-conformance` reads it
//! from `baton faults` and runs the suite against each, expecting the checks
//! named here to fail.

#[cfg(not(debug_assertions))]
compile_error!("the fault-injection feature is for debug test builds only, never for release");

mod http;
mod store;

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::domain::session_store::{SessionStore, Successors};
use crate::domain::{Clock, SessionPolicy};

pub use http::install;
use store::{FaultySessionStore, RandomSuccessors};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    RotationKeepsOldToken,
    ReuseKeepsFamily,
    CookieWithoutHttpOnly,
    AcceptAlgNone,
    IgnoreExp,
    GraceForksFamily,
    NoOriginCheck,
    ExpiredReuseKeepsFamily,
    CookieWinsOverBody,
    ReusedCookieNotCleared,
    SessionsOldestFirst,
    ExpiredSessionNotFound,
}

/// One fault: what it breaks, and how the conformance script proves the
/// suite notices.
pub struct FaultSpec {
    pub fault: Fault,
    pub name: &'static str,
    pub breaks: &'static str,
    /// The checks that must fail against it (each one, by id).
    pub killed_by: &'static [&'static str],
    /// The server settings it runs with.
    pub settings: &'static [&'static str],
    /// The checks to run (`--filter` prefixes), to keep the run short.
    pub run: &'static [&'static str],
}

const STRICT: &[&str] = &["BATON_REFRESH_REUSE_GRACE=0s"];
const WITH_GRACE: &[&str] = &["BATON_REFRESH_REUSE_GRACE=3s"];

pub const FAULTS: [FaultSpec; 12] = [
    FaultSpec {
        fault: Fault::RotationKeepsOldToken,
        name: "rotation-keeps-old-token",
        breaks: "a refresh issues a new pair but leaves the presented token live",
        killed_by: &["refresh/rotation/old-token-rejected"],
        settings: STRICT,
        run: &["refresh/", "model/"],
    },
    FaultSpec {
        fault: Fault::ReuseKeepsFamily,
        name: "reuse-keeps-family",
        breaks: "reuse is refused, but the family is not revoked",
        killed_by: &["refresh/reuse/revokes-family"],
        settings: STRICT,
        run: &["refresh/", "model/"],
    },
    FaultSpec {
        fault: Fault::CookieWithoutHttpOnly,
        name: "cookie-without-httponly",
        breaks: "the refresh cookie is set without HttpOnly",
        killed_by: &["cookie/attributes/set"],
        settings: STRICT,
        run: &["cookie/", "login/"],
    },
    FaultSpec {
        fault: Fault::AcceptAlgNone,
        name: "accept-alg-none",
        breaks: "access tokens with `alg: none` are accepted",
        killed_by: &["jwt/alg-none"],
        settings: STRICT,
        run: &["jwt/", "access/"],
    },
    FaultSpec {
        fault: Fault::IgnoreExp,
        name: "ignore-exp",
        breaks: "expired access tokens are accepted",
        killed_by: &["access/expiry"],
        settings: STRICT,
        run: &["access/", "jwt/"],
    },
    FaultSpec {
        fault: Fault::GraceForksFamily,
        name: "grace-forks-family",
        breaks: "within the grace, a repeat refresh mints a new token instead of the same successor",
        killed_by: &[
            "refresh/grace/same-successor",
            "refresh/concurrency/same-successor",
        ],
        settings: WITH_GRACE,
        run: &["refresh/", "model/"],
    },
    FaultSpec {
        fault: Fault::NoOriginCheck,
        name: "no-origin-check",
        breaks: "the CSRF `Origin` check is skipped",
        killed_by: &["csrf/origin"],
        settings: STRICT,
        run: &["csrf/", "cookie/", "logout/"],
    },
    FaultSpec {
        fault: Fault::ExpiredReuseKeepsFamily,
        name: "expired-reuse-keeps-family",
        breaks: "a rotated token presented again once it has also expired is refused as expired, \
                 and its family is not revoked",
        killed_by: &["refresh/reuse/expired-rotated"],
        settings: STRICT,
        run: &["refresh/reuse/"],
    },
    FaultSpec {
        fault: Fault::CookieWinsOverBody,
        name: "cookie-wins-over-body",
        breaks: "a refresh or logout carrying both a body token and the cookie uses the cookie",
        killed_by: &["refresh/body-over-cookie", "logout/body-over-cookie"],
        settings: WITH_GRACE,
        run: &["refresh/body-over-cookie", "logout/"],
    },
    FaultSpec {
        fault: Fault::ReusedCookieNotCleared,
        name: "reused-cookie-not-cleared",
        breaks: "the 401 for a reused refresh token that came in the cookie does not clear it",
        killed_by: &["refresh/reuse/strict"],
        settings: STRICT,
        run: &["refresh/reuse/strict", "cookie/"],
    },
    FaultSpec {
        fault: Fault::SessionsOldestFirst,
        name: "sessions-oldest-first",
        breaks: "`GET /auth/sessions` lists the oldest session first",
        killed_by: &["sessions/list"],
        settings: STRICT,
        run: &["sessions/list"],
    },
    FaultSpec {
        fault: Fault::ExpiredSessionNotFound,
        name: "expired-session-not-found",
        breaks: "`DELETE /auth/sessions/{id}` answers 404 for a session whose refresh token has \
                 expired, instead of revoking it",
        killed_by: &["sessions/revoke-expired"],
        settings: STRICT,
        run: &["sessions/revoke-expired"],
    },
];

/// The table as `baton faults` prints it for scripts: one fault a line,
/// tab-separated name, checks that must fail, settings and checks to run
/// (each list space-separated).
pub fn table() -> String {
    FAULTS
        .iter()
        .map(|f| {
            format!(
                "{}\t{}\t{}\t{}\n",
                f.name,
                f.killed_by.join(" "),
                f.settings.join(" "),
                f.run.join(" ")
            )
        })
        .collect()
}

/// The ports of sessions with the faults' decorators around them (as they
/// were without faults).
pub fn decorate(
    faults: &Faults,
    store: Arc<dyn SessionStore>,
    successors: Arc<dyn Successors>,
    db: &DatabaseConnection,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
) -> (Arc<dyn SessionStore>, Arc<dyn Successors>) {
    if faults.is_empty() {
        return (store, successors);
    }
    let successors: Arc<dyn Successors> = if RandomSuccessors::needed_by(faults) {
        Arc::new(RandomSuccessors)
    } else {
        successors
    };
    let store = FaultySessionStore::new(store, faults.clone(), db.clone(), clock, policy);
    (Arc::new(store), successors)
}

/// The faults a server was started with.
#[derive(Debug, Clone, Default)]
pub struct Faults(Vec<Fault>);

impl Faults {
    /// Parses `BATON_FAULTS` (comma-separated names).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut faults = Vec::new();
        for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let fault = FAULTS.iter().find(|f| f.name == name).ok_or_else(|| {
                let known: Vec<_> = FAULTS.iter().map(|f| f.name).collect();
                format!("unknown fault {name:?}; known: {}", known.join(", "))
            })?;
            faults.push(fault.fault);
        }
        Ok(Self(faults))
    }

    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0
            .iter()
            .filter_map(|f| FAULTS.iter().find(|s| s.fault == *f).map(|s| s.name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_spec_means_no_faults() {
        assert!(Faults::parse("").unwrap().is_empty());
        assert!(Faults::parse(" , ").unwrap().is_empty());
    }

    #[test]
    fn known_faults_parse_and_unknown_ones_are_named() {
        let faults = Faults::parse("accept-alg-none,ignore-exp").unwrap();
        assert!(faults.has(Fault::AcceptAlgNone) && faults.has(Fault::IgnoreExp));
        assert_eq!(faults.names(), ["accept-alg-none", "ignore-exp"]);
        assert!(Faults::parse("nope").unwrap_err().contains("nope"));
    }

    #[test]
    fn every_fault_is_listed_once_with_a_check_that_must_catch_it() {
        for (i, spec) in FAULTS.iter().enumerate() {
            assert!(!spec.killed_by.is_empty(), "{} has no check", spec.name);
            assert!(
                FAULTS[i + 1..]
                    .iter()
                    .all(|other| other.fault != spec.fault && other.name != spec.name),
                "{} is listed twice",
                spec.name
            );
        }
        assert_eq!(table().lines().count(), FAULTS.len());
    }
}
