//! The reference model of one user's sessions (contract §2–§4): which refresh tokens are live,
//! which access tokens are still accepted, and so which status every request must get.
//!
//! The model is pure: the state-machine driver (`machine.rs`) sends the requests and feeds the
//! observations back. Time is an interval, not a point: the server handled a request somewhere
//! between the moment it was sent and the moment its response arrived, so a token whose expiry
//! falls inside that interval (widened by `margin`) may be either side of it, and the model
//! accepts both outcomes and then follows the one observed.

use std::collections::BTreeSet;

use crate::probe::Channel;

/// When the server handled a request: somewhere in `[sent, received]` (local clock, seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub sent: f64,
    pub received: f64,
}

/// A yes/no the model cannot always decide because of timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    Yes,
    No,
    Unsure,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelConfig {
    /// `refresh_reuse_grace` in seconds.
    pub grace: f64,
    /// `access_token_leeway` in seconds.
    pub leeway: f64,
    /// Extra uncertainty for whole-second rounding and clock differences.
    pub margin: f64,
}

#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub value: String,
    /// When it was issued (the window of the response that delivered it).
    pub issued: Window,
    /// `refresh_expires_in` of that response.
    pub expires_in: f64,
}

impl RefreshToken {
    /// Earliest and latest server instant at which this token expires.
    fn expiry(&self, margin: f64) -> (f64, f64) {
        (
            self.issued.sent + self.expires_in - 1.0 - margin,
            self.issued.received + self.expires_in + 1.0 + margin,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyState {
    Live,
    /// Revoked (logout, reuse, revocation) or found expired: it never comes back.
    Ended,
}

#[derive(Debug, Clone)]
pub struct Family {
    pub sid: String,
    pub channel: Channel,
    /// Issue order; the last one is the family's only live token.
    pub tokens: Vec<RefreshToken>,
    pub state: FamilyState,
}

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub value: String,
    pub exp: f64,
    pub sid: String,
}

/// What a refresh may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RefreshOutcome {
    /// 200 with a new refresh token: the presented one is rotated.
    Rotated,
    /// 200 with the family's current (unused) token again: a repeat within the reuse grace.
    SameSuccessor,
    /// 401; the family is over (revoked by reuse detection, or already revoked or expired).
    Rejected,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub config: ModelConfig,
    pub families: Vec<Family>,
    pub access_tokens: Vec<AccessToken>,
}

/// Statuses the model allows for a request (a set, because of timing uncertainty).
pub type Statuses = BTreeSet<u16>;

fn statuses(list: &[u16]) -> Statuses {
    list.iter().copied().collect()
}

fn truth_to_statuses(truth: Truth, yes: u16, no: u16) -> Statuses {
    match truth {
        Truth::Yes => statuses(&[yes]),
        Truth::No => statuses(&[no]),
        Truth::Unsure => statuses(&[yes, no]),
    }
}

impl Model {
    pub fn new(config: ModelConfig) -> Self {
        Model {
            config,
            families: Vec::new(),
            access_tokens: Vec::new(),
        }
    }

    /// A family started by a login whose response arrived in `issued`.
    pub fn add_family(&mut self, sid: &str, channel: Channel, token: RefreshToken) -> usize {
        self.families.push(Family {
            sid: sid.to_string(),
            channel,
            tokens: vec![token],
            state: FamilyState::Live,
        });
        self.families.len() - 1
    }

    pub fn add_access_token(&mut self, token: AccessToken) {
        self.access_tokens.push(token);
    }

    /// Is the access token still accepted at `at`? Accepted while `now ≤ exp + leeway`.
    pub fn access_valid(&self, index: usize, at: Window) -> Truth {
        let limit = self.access_tokens[index].exp + self.config.leeway;
        if at.received < limit - self.config.margin {
            Truth::Yes
        } else if at.sent > limit + 1.0 + self.config.margin {
            Truth::No
        } else {
            Truth::Unsure
        }
    }

    /// Does the family still have a live refresh token at `at`?
    pub fn family_live(&self, family: usize, at: Window) -> Truth {
        let f = &self.families[family];
        if f.state == FamilyState::Ended {
            return Truth::No;
        }
        let newest = f.tokens.last().expect("a family has a token");
        let (earliest, latest) = newest.expiry(self.config.margin);
        if at.received < earliest {
            Truth::Yes
        } else if at.sent > latest {
            Truth::No
        } else {
            Truth::Unsure
        }
    }

    /// Is `at` within the reuse grace after the family's latest rotation?
    fn within_grace(&self, family: usize, at: Window) -> Truth {
        if self.config.grace <= 0.0 {
            return Truth::No;
        }
        let rotation = self.families[family]
            .tokens
            .last()
            .expect("a family has a token")
            .issued;
        let shortest = at.sent - rotation.received;
        let longest = at.received - rotation.sent;
        if longest < self.config.grace - self.config.margin {
            Truth::Yes
        } else if shortest > self.config.grace + self.config.margin {
            Truth::No
        } else {
            Truth::Unsure
        }
    }

    /// What presenting token `token` of `family` at `at` may do.
    pub fn refresh_outcomes(
        &self,
        family: usize,
        token: usize,
        at: Window,
    ) -> BTreeSet<RefreshOutcome> {
        use RefreshOutcome::*;
        let f = &self.families[family];
        let newest = f.tokens.len() - 1;
        let set = |list: &[RefreshOutcome]| list.iter().copied().collect::<BTreeSet<_>>();
        if f.state == FamilyState::Ended {
            return set(&[Rejected]);
        }
        if token == newest {
            return match self.family_live(family, at) {
                Truth::Yes => set(&[Rotated]),
                Truth::No => set(&[Rejected]),
                Truth::Unsure => set(&[Rotated, Rejected]),
            };
        }
        if token + 1 == newest {
            // The just-rotated token while its successor is unused (the successor is always
            // unused while it is the newest: using it would have rotated it).
            let live = self.family_live(family, at);
            return match (self.within_grace(family, at), live) {
                (Truth::No, _) | (_, Truth::No) => set(&[Rejected]),
                (Truth::Yes, Truth::Yes) => set(&[SameSuccessor]),
                _ => set(&[SameSuccessor, Rejected]),
            };
        }
        set(&[Rejected])
    }

    /// Follows an observed refresh outcome (which the caller has checked is allowed).
    pub fn apply_refresh(
        &mut self,
        family: usize,
        outcome: RefreshOutcome,
        new_token: Option<RefreshToken>,
    ) {
        let f = &mut self.families[family];
        match outcome {
            RefreshOutcome::Rotated => f
                .tokens
                .push(new_token.expect("a rotation delivers a token")),
            RefreshOutcome::SameSuccessor => {}
            RefreshOutcome::Rejected => f.state = FamilyState::Ended,
        }
    }

    /// `POST /auth/logout` with any token of the family: always 204, and the family is over.
    pub fn logout(&mut self, family: usize) -> Statuses {
        self.families[family].state = FamilyState::Ended;
        statuses(&[204])
    }

    pub fn me_statuses(&self, access: usize, at: Window) -> Statuses {
        truth_to_statuses(self.access_valid(access, at), 200, 401)
    }

    /// `DELETE /auth/sessions/{sid}`.
    pub fn revoke_one_statuses(&self, access: usize, family: usize, at: Window) -> Statuses {
        let mut allowed = Statuses::new();
        let valid = self.access_valid(access, at);
        if valid != Truth::Yes {
            allowed.insert(401);
        }
        if valid != Truth::No {
            let f = &self.families[family];
            match (f.state, self.family_live(family, at)) {
                (FamilyState::Ended, _) => {
                    allowed.insert(404);
                }
                (_, Truth::Yes) => {
                    allowed.insert(204);
                }
                // Expired but never revoked: whether that is "unknown" is not fixed.
                _ => {
                    allowed.insert(204);
                    allowed.insert(404);
                }
            }
        }
        allowed
    }

    pub fn apply_revoke_one(&mut self, family: usize, status: u16) {
        if status == 204 || status == 404 {
            self.families[family].state = FamilyState::Ended;
        }
    }

    /// `DELETE /auth/sessions`.
    pub fn revoke_all_statuses(&self, access: usize, at: Window) -> Statuses {
        truth_to_statuses(self.access_valid(access, at), 204, 401)
    }

    pub fn apply_revoke_all(&mut self, status: u16) {
        if status == 204 {
            for f in &mut self.families {
                f.state = FamilyState::Ended;
            }
        }
    }

    pub fn list_statuses(&self, access: usize, at: Window) -> Statuses {
        truth_to_statuses(self.access_valid(access, at), 200, 401)
    }

    /// Checks a `GET /auth/sessions` listing: `(id, current)` pairs as returned.
    pub fn check_listing(
        &self,
        access: usize,
        at: Window,
        listed: &[(String, bool)],
    ) -> Result<(), String> {
        let mut problems = Vec::new();
        for (i, f) in self.families.iter().enumerate() {
            let present = listed.iter().any(|(id, _)| *id == f.sid);
            match (self.family_live(i, at), present) {
                (Truth::Yes, false) => problems.push(format!("live session {} is missing", f.sid)),
                (Truth::No, true) => problems.push(format!(
                    "session {} is listed but is {}",
                    f.sid,
                    if f.state == FamilyState::Ended {
                        "revoked"
                    } else {
                        "expired"
                    }
                )),
                _ => {}
            }
        }
        for (id, _) in listed {
            if !self.families.iter().any(|f| f.sid == *id) {
                problems.push(format!(
                    "session {id} is listed but this user never had it in this case"
                ));
            }
        }
        let caller = &self.access_tokens[access].sid;
        for (id, current) in listed {
            if *current != (id == caller) {
                problems.push(format!(
                    "session {id} has current={current}, but the caller's session is {caller}"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Every refresh token value seen so far (a new one must differ from all).
    pub fn seen_refresh_token(&self, value: &str) -> bool {
        self.families
            .iter()
            .any(|f| f.tokens.iter().any(|t| t.value == value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RefreshOutcome::*;

    const T0: f64 = 1_000.0;

    fn at(t: f64) -> Window {
        Window {
            sent: t,
            received: t + 0.05,
        }
    }

    fn token(value: &str, issued_at: f64, expires_in: f64) -> RefreshToken {
        RefreshToken {
            value: value.into(),
            issued: at(issued_at),
            expires_in,
        }
    }

    fn model(grace: f64) -> Model {
        let mut m = Model::new(ModelConfig {
            grace,
            leeway: 0.0,
            margin: 0.5,
        });
        m.add_family("s1", Channel::Cookie, token("a", T0, 60.0));
        m.add_access_token(AccessToken {
            value: "at1".into(),
            exp: T0 + 10.0,
            sid: "s1".into(),
        });
        m
    }

    fn outcomes(list: &[RefreshOutcome]) -> BTreeSet<RefreshOutcome> {
        list.iter().copied().collect()
    }

    #[test]
    fn the_live_token_rotates_and_the_old_one_is_then_reuse_with_strict_grace() {
        let mut m = model(0.0);
        assert_eq!(m.refresh_outcomes(0, 0, at(T0 + 1.0)), outcomes(&[Rotated]));
        m.apply_refresh(0, Rotated, Some(token("b", T0 + 1.0, 60.0)));
        assert_eq!(
            m.refresh_outcomes(0, 0, at(T0 + 1.1)),
            outcomes(&[Rejected])
        );
        m.apply_refresh(0, Rejected, None);
        // Reuse ended the family: the successor is dead too.
        assert_eq!(
            m.refresh_outcomes(0, 1, at(T0 + 1.2)),
            outcomes(&[Rejected])
        );
        assert_eq!(m.family_live(0, at(T0 + 1.2)), Truth::No);
    }

    #[test]
    fn within_the_grace_a_repeat_gets_the_same_successor() {
        let mut m = model(10.0);
        m.apply_refresh(0, Rotated, Some(token("b", T0 + 1.0, 60.0)));
        assert_eq!(
            m.refresh_outcomes(0, 0, at(T0 + 2.0)),
            outcomes(&[SameSuccessor])
        );
        m.apply_refresh(0, SameSuccessor, None);
        assert_eq!(m.family_live(0, at(T0 + 2.0)), Truth::Yes);
        // Near the end of the grace either answer is allowed; past it, it is reuse.
        assert_eq!(
            m.refresh_outcomes(0, 0, at(T0 + 11.0)),
            outcomes(&[SameSuccessor, Rejected])
        );
        assert_eq!(
            m.refresh_outcomes(0, 0, at(T0 + 13.0)),
            outcomes(&[Rejected])
        );
    }

    #[test]
    fn once_the_successor_is_used_the_grace_no_longer_covers_the_old_token() {
        let mut m = model(10.0);
        m.apply_refresh(0, Rotated, Some(token("b", T0 + 1.0, 60.0)));
        m.apply_refresh(0, Rotated, Some(token("c", T0 + 1.5, 60.0)));
        assert_eq!(
            m.refresh_outcomes(0, 0, at(T0 + 2.0)),
            outcomes(&[Rejected])
        );
        assert_eq!(
            m.refresh_outcomes(0, 1, at(T0 + 2.0)),
            outcomes(&[SameSuccessor])
        );
    }

    #[test]
    fn an_expired_refresh_token_is_rejected_and_uncertain_near_its_expiry() {
        let m = model(0.0);
        assert_eq!(
            m.refresh_outcomes(0, 0, at(T0 + 59.0)),
            outcomes(&[Rotated, Rejected])
        );
        assert_eq!(
            m.refresh_outcomes(0, 0, at(T0 + 62.0)),
            outcomes(&[Rejected])
        );
        assert_eq!(
            m.refresh_outcomes(0, 0, at(T0 + 50.0)),
            outcomes(&[Rotated])
        );
    }

    #[test]
    fn access_tokens_stay_valid_after_logout_until_exp() {
        let mut m = model(0.0);
        assert_eq!(m.logout(0), statuses(&[204]));
        assert_eq!(m.me_statuses(0, at(T0 + 5.0)), statuses(&[200]));
        assert_eq!(m.me_statuses(0, at(T0 + 9.8)), statuses(&[200, 401]));
        assert_eq!(m.me_statuses(0, at(T0 + 12.0)), statuses(&[401]));
        assert_eq!(
            m.refresh_outcomes(0, 0, at(T0 + 5.0)),
            outcomes(&[Rejected])
        );
    }

    #[test]
    fn leeway_extends_access_validity() {
        let mut m = model(0.0);
        m.config.leeway = 5.0;
        assert_eq!(m.me_statuses(0, at(T0 + 13.0)), statuses(&[200]));
        assert_eq!(m.me_statuses(0, at(T0 + 17.0)), statuses(&[401]));
    }

    #[test]
    fn revoking_one_session_is_204_then_404() {
        let mut m = model(0.0);
        assert_eq!(m.revoke_one_statuses(0, 0, at(T0 + 1.0)), statuses(&[204]));
        m.apply_revoke_one(0, 204);
        assert_eq!(m.revoke_one_statuses(0, 0, at(T0 + 1.0)), statuses(&[404]));
        // With an expired access token, it is 401 whatever the session.
        assert_eq!(m.revoke_one_statuses(0, 0, at(T0 + 20.0)), statuses(&[401]));
    }

    #[test]
    fn revoke_all_ends_every_family() {
        let mut m = model(0.0);
        m.add_family("s2", Channel::Body, token("x", T0, 60.0));
        assert_eq!(m.revoke_all_statuses(0, at(T0 + 1.0)), statuses(&[204]));
        m.apply_revoke_all(204);
        assert!(m.families.iter().all(|f| f.state == FamilyState::Ended));
        m.apply_revoke_all(401);
    }

    #[test]
    fn a_listing_must_show_exactly_the_live_sessions_and_mark_the_callers() {
        let mut m = model(0.0);
        m.add_family("s2", Channel::Body, token("x", T0, 60.0));
        let t = at(T0 + 1.0);
        assert_eq!(
            m.check_listing(0, t, &[("s1".into(), true), ("s2".into(), false)]),
            Ok(())
        );
        let missing = m.check_listing(0, t, &[("s1".into(), true)]).unwrap_err();
        assert!(missing.contains("live session s2 is missing"), "{missing}");
        let wrong_current = m
            .check_listing(0, t, &[("s1".into(), false), ("s2".into(), true)])
            .unwrap_err();
        assert!(wrong_current.contains("current=true"), "{wrong_current}");
        m.logout(1);
        let revoked = m
            .check_listing(0, t, &[("s1".into(), true), ("s2".into(), false)])
            .unwrap_err();
        assert!(revoked.contains("s2 is listed but is revoked"), "{revoked}");
        let stranger = m
            .check_listing(0, t, &[("s1".into(), true), ("zz".into(), false)])
            .unwrap_err();
        assert!(stranger.contains("zz"), "{stranger}");
    }

    #[test]
    fn seen_tokens_are_remembered() {
        let mut m = model(0.0);
        m.apply_refresh(0, Rotated, Some(token("b", T0 + 1.0, 60.0)));
        assert!(m.seen_refresh_token("a") && m.seen_refresh_token("b"));
        assert!(!m.seen_refresh_token("c"));
    }
}
