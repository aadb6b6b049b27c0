//! Deliberate contract violations, so the conformance suite can prove it
//! catches broken servers. They exist only in debug builds with the
//! `fault-injection` feature; everywhere else `Faults::has` is constant false
//! and asking for a fault is a start-up error.

#[cfg(all(feature = "fault-injection", not(debug_assertions)))]
compile_error!("the fault-injection feature is for debug test builds only, never for release");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A refresh issues a new pair but leaves the presented token live.
    RotationKeepsOldToken,
    /// Reuse is refused, but the family is not revoked.
    ReuseKeepsFamily,
    /// The refresh cookie is set without HttpOnly.
    CookieWithoutHttpOnly,
    /// Access tokens with `alg: none` are accepted.
    AcceptAlgNone,
    /// Expired access tokens are accepted.
    IgnoreExp,
    /// Within the grace, a repeat refresh mints a new token instead of the
    /// same successor.
    GraceForksFamily,
    /// The CSRF `Origin` check is skipped.
    NoOriginCheck,
    /// A rotated token presented again once it has also expired is refused as
    /// expired, and its family is not revoked.
    ExpiredReuseKeepsFamily,
    /// A refresh or logout carrying both a body token and the cookie uses the
    /// cookie.
    CookieWinsOverBody,
    /// The 401 for a reused refresh token that came in the cookie does not
    /// clear the cookie.
    ReusedCookieNotCleared,
    /// `GET /auth/sessions` lists the oldest session first.
    SessionsOldestFirst,
    /// `DELETE /auth/sessions/{id}` answers 404 for a session whose refresh
    /// token has expired (instead of revoking it).
    ExpiredSessionNotFound,
}

impl Fault {
    pub const ALL: [(Fault, &'static str); 12] = [
        (Fault::RotationKeepsOldToken, "rotation-keeps-old-token"),
        (Fault::ReuseKeepsFamily, "reuse-keeps-family"),
        (Fault::CookieWithoutHttpOnly, "cookie-without-httponly"),
        (Fault::AcceptAlgNone, "accept-alg-none"),
        (Fault::IgnoreExp, "ignore-exp"),
        (Fault::GraceForksFamily, "grace-forks-family"),
        (Fault::NoOriginCheck, "no-origin-check"),
        (Fault::ExpiredReuseKeepsFamily, "expired-reuse-keeps-family"),
        (Fault::CookieWinsOverBody, "cookie-wins-over-body"),
        (Fault::ReusedCookieNotCleared, "reused-cookie-not-cleared"),
        (Fault::SessionsOldestFirst, "sessions-oldest-first"),
        (Fault::ExpiredSessionNotFound, "expired-session-not-found"),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map(|(_, n)| *n)
            .unwrap_or("unknown")
    }
}

#[derive(Debug, Clone, Default)]
pub struct Faults(#[allow(dead_code)] Vec<Fault>);

impl Faults {
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses `BATON_FAULTS` (comma-separated names).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let names: Vec<&str> = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if names.is_empty() {
            return Ok(Self::none());
        }
        if !cfg!(feature = "fault-injection") {
            return Err(
                "BATON_FAULTS is set, but this build has no fault injection (it is a debug-only \
                 test feature); unset BATON_FAULTS"
                    .to_owned(),
            );
        }
        let mut faults = Vec::new();
        for name in names {
            let fault = Fault::ALL
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(f, _)| *f)
                .ok_or_else(|| {
                    let known: Vec<_> = Fault::ALL.iter().map(|(_, n)| *n).collect();
                    format!("unknown fault {name:?}; known: {}", known.join(", "))
                })?;
            faults.push(fault);
        }
        Ok(Self(faults))
    }

    #[inline]
    pub fn has(&self, fault: Fault) -> bool {
        #[cfg(feature = "fault-injection")]
        {
            self.0.contains(&fault)
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            let _ = fault;
            false
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|f| f.name()).collect()
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

    #[cfg(not(feature = "fault-injection"))]
    #[test]
    fn builds_without_the_feature_refuse_any_fault() {
        assert!(Faults::parse("accept-alg-none").is_err());
    }

    #[cfg(feature = "fault-injection")]
    #[test]
    fn known_faults_parse_and_unknown_ones_are_named() {
        let faults = Faults::parse("accept-alg-none,ignore-exp").unwrap();
        assert!(faults.has(Fault::AcceptAlgNone) && faults.has(Fault::IgnoreExp));
        assert!(Faults::parse("nope").unwrap_err().contains("nope"));
    }
}
