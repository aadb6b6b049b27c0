//! The rotation port: what the domain asks storage to do with a presented
//! refresh token, and every answer it can get back. Storage decides the
//! answer inside the transaction that claims the token, with the rules
//! written here once: which token is live, and how long a successor lives.

use std::time::Duration;

use super::Timestamp;
use super::refresh_token::RefreshTokenHash;

/// Exchange the presented token for `successor`, if it is live.
#[derive(Debug, Clone)]
pub struct RotationRequest {
    pub presented: RefreshTokenHash,
    /// The successor to insert, and to look up when the presented token was
    /// already rotated (it is derived from the presented token).
    pub successor: RefreshTokenHash,
    pub successor_id: String,
    pub now: Timestamp,
    /// The sliding life of a refresh token (the session's lifetime caps it).
    pub refresh_ttl: Duration,
    pub user_agent: Option<String>,
}

/// The family a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub session_id: String,
    pub user_id: String,
}

/// Every answer to a [`RotationRequest`], decided atomically with the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationOutcome {
    /// The token was live: it is rotated now and its successor stored.
    Rotated {
        family: Family,
        successor: IssuedRefresh,
    },
    /// No such token (or it was deleted by housekeeping).
    Unknown,
    /// Unrotated, but past its expiry.
    Expired,
    /// Its family (or the token itself) was revoked.
    SessionRevoked,
    /// It was rotated before: reuse, unless the grace covers it.
    AlreadyRotated(AlreadyRotated),
}

/// When a refresh token was issued and until when it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuedRefresh {
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What the grace decision needs about a token rotated earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadyRotated {
    pub family: Family,
    pub token_id: String,
    pub rotated_at: Timestamp,
    /// The rotated token's own expiry.
    pub expires_at: Timestamp,
    /// The absolute end of its family.
    pub session_ends_at: Timestamp,
    /// Its successor, when it is still stored.
    pub successor: Option<Successor>,
}

impl AlreadyRotated {
    /// THE grace rule: within `grace` of the rotation, while its successor
    /// is unused, a repeat gets that successor again; otherwise it is reuse.
    pub fn successor_within_grace(&self, grace: Duration, now: Timestamp) -> Option<Successor> {
        let successor = self.successor?;
        let in_window = !grace.is_zero() && now <= self.rotated_at.saturating_add(grace);
        (in_window && successor.unused).then_some(successor)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Successor {
    pub issued: IssuedRefresh,
    /// Live at the time of the request: nobody has used it yet.
    pub unused: bool,
}

/// A stored token's state, as read inside the rotation's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenState {
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub rotated_at: Option<Timestamp>,
    pub revoked: bool,
}

impl TokenState {
    /// THE live predicate: unrotated, unrevoked, unexpired (its session's
    /// revocation is checked by [`decide`]). The SQL of the one-statement
    /// rotations (storage::rotation::LIVE_TOKEN_SQL) mirrors it, and the
    /// cross-backend property test holds the two to the same answers.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.rotated_at.is_none() && !self.revoked && now < self.expires_at
    }
}

/// The presented token and its family, as read inside the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedToken {
    pub family: Family,
    pub token_id: String,
    pub state: TokenState,
    pub session_revoked: bool,
    pub session_expires_at: Timestamp,
    /// The stored successor of this token (by the request's successor hash
    /// and parent id), if any.
    pub successor: Option<TokenState>,
}

/// What storage does with a presented token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Claim it and store the successor with this life.
    Rotate {
        family: Family,
        successor: IssuedRefresh,
    },
    /// Change nothing and answer this.
    Refuse(RotationOutcome),
}

/// THE expiry cap: a token issued at `now` lives `refresh_ttl` (sliding),
/// never past its session's absolute end.
pub fn successor_expiry(
    now: Timestamp,
    refresh_ttl: Duration,
    session_end: Timestamp,
) -> Timestamp {
    now.saturating_add(refresh_ttl).min(session_end)
}

/// Decides a rotation from what the transaction read. The order of the
/// refusals matters: a revoked family wins over everything, and a rotated
/// token counts as reuse even once it has expired (CONTRACT.md §3).
pub fn decide(presented: Option<PresentedToken>, request: &RotationRequest) -> Decision {
    let Some(token) = presented else {
        return Decision::Refuse(RotationOutcome::Unknown);
    };
    let now = request.now;
    if token.session_revoked {
        return Decision::Refuse(RotationOutcome::SessionRevoked);
    }
    if let Some(rotated_at) = token.state.rotated_at {
        return Decision::Refuse(RotationOutcome::AlreadyRotated(AlreadyRotated {
            family: token.family,
            token_id: token.token_id,
            rotated_at,
            expires_at: token.state.expires_at,
            session_ends_at: token.session_expires_at,
            successor: token.successor.map(|next| Successor {
                issued: IssuedRefresh {
                    issued_at: next.issued_at,
                    expires_at: next.expires_at,
                },
                unused: next.is_live(now),
            }),
        }));
    }
    if token.state.revoked {
        return Decision::Refuse(RotationOutcome::SessionRevoked);
    }
    if !token.state.is_live(now) {
        return Decision::Refuse(RotationOutcome::Expired);
    }
    Decision::Rotate {
        family: token.family,
        successor: IssuedRefresh {
            issued_at: now,
            expires_at: successor_expiry(now, request.refresh_ttl, token.session_expires_at),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(now: i64) -> RotationRequest {
        RotationRequest {
            presented: RefreshTokenHash([1; 32]),
            successor: RefreshTokenHash([2; 32]),
            successor_id: "s".to_owned(),
            now: Timestamp::from_millis(now),
            refresh_ttl: Duration::from_millis(100),
            user_agent: None,
        }
    }

    fn token(expires_at: i64) -> PresentedToken {
        PresentedToken {
            family: Family {
                session_id: "f".to_owned(),
                user_id: "u".to_owned(),
            },
            token_id: "t".to_owned(),
            state: TokenState {
                issued_at: Timestamp::from_millis(0),
                expires_at: Timestamp::from_millis(expires_at),
                rotated_at: None,
                revoked: false,
            },
            session_revoked: false,
            session_expires_at: Timestamp::from_millis(1_000),
            successor: None,
        }
    }

    #[test]
    fn a_live_token_rotates_into_a_successor_capped_by_its_session() {
        let decided = decide(Some(token(2_000)), &request(950));
        let Decision::Rotate { successor, .. } = decided else {
            panic!("a live token rotates: {decided:?}");
        };
        assert_eq!(successor.issued_at, Timestamp::from_millis(950));
        assert_eq!(successor.expires_at, Timestamp::from_millis(1_000));
    }

    #[test]
    fn a_token_expires_at_its_expiry_not_after() {
        assert_eq!(
            decide(Some(token(500)), &request(500)),
            Decision::Refuse(RotationOutcome::Expired)
        );
    }

    #[test]
    fn a_rotated_token_is_reported_as_such_even_when_expired_and_a_revoked_family_wins() {
        let mut rotated = token(500);
        rotated.state.rotated_at = Some(Timestamp::from_millis(10));
        let decided = decide(Some(rotated.clone()), &request(600));
        assert!(
            matches!(decided, Decision::Refuse(RotationOutcome::AlreadyRotated(ref r)) if r.rotated_at == Timestamp::from_millis(10)),
            "{decided:?}"
        );
        rotated.session_revoked = true;
        assert_eq!(
            decide(Some(rotated), &request(600)),
            Decision::Refuse(RotationOutcome::SessionRevoked)
        );
        assert_eq!(
            decide(None, &request(600)),
            Decision::Refuse(RotationOutcome::Unknown)
        );
    }
}
