//! Sessions: refresh-token families. Login starts one; a refresh rotates its
//! token (or, within the grace, hands out the same successor again); reuse of
//! a rotated token revokes it; logout and the session endpoints revoke it.

use std::sync::Arc;

use super::access_token::{AccessTokens, IssuedAccessToken};
use super::refresh_token::RefreshToken;
use super::rotation::{
    AlreadyRotated, Family, IssuedRefresh, RotationOutcome, RotationRequest, successor_expiry,
};
use super::session_store::{SessionStore, Successors};
use super::{AuthError, Clock, SessionPolicy, Timestamp};
use crate::storage::StorageError;
use crate::storage::sessions::{SessionRecord, TokenRecord};

/// A token pair handed to a client.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access: IssuedAccessToken,
    pub refresh: RefreshToken,
    pub refresh_expires_at: Timestamp,
    pub session_id: String,
    pub user_id: String,
    pub issued_at: Timestamp,
}

/// A live session as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub id: String,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    pub expires_at: Timestamp,
    pub user_agent: Option<String>,
    pub current: bool,
}

/// Which sessions of a list to return: at most `limit`, after `after`.
#[derive(Debug, Clone, Default)]
pub struct SessionPage {
    pub limit: usize,
    pub after: Option<SessionCursor>,
}

impl SessionPage {
    /// A page holds this many sessions unless asked for fewer, and never
    /// more than `MAX_LIMIT`: a reply stays small whatever the number of
    /// sessions.
    pub const DEFAULT_LIMIT: usize = 50;
    pub const MAX_LIMIT: usize = 100;
}

/// Where a page of sessions ends: the last session's login time and id (the
/// list is ordered by both, newest first, so the next page starts below it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCursor {
    pub created_at: Timestamp,
    pub id: String,
}

/// Why a family was revoked, as stored.
#[derive(Debug, Clone, Copy)]
pub enum RevokeReason {
    Logout,
    Reuse,
    RevokedByUser,
    LogoutEverywhere,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Reuse => "reuse",
            Self::RevokedByUser => "revoked_by_user",
            Self::LogoutEverywhere => "logout_everywhere",
        }
    }
}

#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    successors: Arc<dyn Successors>,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
    access_tokens: AccessTokens,
}

/// How often a rotation is tried when the database aborts it to break a
/// conflict (or, on PostgreSQL and MariaDB, its token changed under it).
const ROTATION_ATTEMPTS: usize = 3;

/// Runs a write transaction again when the database aborted it to break a
/// deadlock or a stale snapshot: the operation is idempotent, the retry safe.
async fn retry_on_conflict<T, F, Fut>(mut attempt: F) -> Result<T, StorageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StorageError>>,
{
    const CONFLICT_ATTEMPTS: u32 = 8;
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(StorageError::Conflict(e)) if tries < CONFLICT_ATTEMPTS => {
                tracing::debug!(error = %e, "write conflicted; retrying");
                // Back off a little, growing, so the winner can finish.
                tokio::time::sleep(std::time::Duration::from_millis(5 << tries.min(5))).await;
            }
            other => return other,
        }
    }
}

impl Sessions {
    pub fn new(
        store: Arc<dyn SessionStore>,
        successors: Arc<dyn Successors>,
        clock: Arc<dyn Clock>,
        policy: SessionPolicy,
        access_tokens: AccessTokens,
    ) -> Self {
        Self {
            store,
            successors,
            clock,
            policy,
            access_tokens,
        }
    }

    pub fn access_tokens(&self) -> &AccessTokens {
        &self.access_tokens
    }

    /// A token pair for `family`: the refresh token and an access token
    /// derived from it and from its issue time, so handing out the same
    /// refresh token again (within the grace) hands out the same pair.
    fn issue(
        &self,
        family: &Family,
        refresh: RefreshToken,
        issued: IssuedRefresh,
    ) -> Result<IssuedTokens, AuthError> {
        let access = self
            .access_tokens
            .issue_for(
                &family.user_id,
                &family.session_id,
                issued.issued_at,
                &refresh.hash(),
            )
            .map_err(|e| AuthError::Unexpected(e.into()))?;
        Ok(IssuedTokens {
            access,
            refresh,
            refresh_expires_at: issued.expires_at,
            session_id: family.session_id.clone(),
            user_id: family.user_id.clone(),
            issued_at: issued.issued_at,
        })
    }

    fn token_record(
        &self,
        session_id: &str,
        parent_id: Option<String>,
        token: &RefreshToken,
        issued: IssuedRefresh,
        user_agent: Option<String>,
    ) -> TokenRecord {
        TokenRecord {
            id: uuid::Uuid::new_v4().to_string(),
            session_id: session_id.to_owned(),
            parent_id,
            token_hash: token.hash().0.to_vec(),
            issued_at: issued.issued_at.as_millis(),
            expires_at: issued.expires_at.as_millis(),
            rotated_at: None,
            revoked_at: None,
            revoke_reason: None,
            user_agent,
        }
    }

    /// Starts a family for a user who has just authenticated.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn start(
        &self,
        user_id: &str,
        user_agent: Option<String>,
    ) -> Result<IssuedTokens, AuthError> {
        let now = self.clock.now();
        let session_end = now.saturating_add(self.policy.session_max_lifetime);
        let session = SessionRecord {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_owned(),
            created_at: now.as_millis(),
            last_used_at: now.as_millis(),
            absolute_expires_at: session_end.as_millis(),
            revoked_at: None,
            revoke_reason: None,
            user_agent: user_agent.clone(),
        };
        let family = Family {
            session_id: session.id.clone(),
            user_id: user_id.to_owned(),
        };
        let refresh = RefreshToken::generate();
        let issued = IssuedRefresh {
            issued_at: now,
            expires_at: successor_expiry(now, self.policy.refresh_ttl, session_end),
        };
        let record = self.token_record(&session.id, None, &refresh, issued, user_agent);
        self.store.start(session, record).await?;
        tracing::info!(session_id = %family.session_id, "session started");
        self.issue(&family, refresh, issued)
    }

    /// Exchanges a refresh token for a new pair. See CONTRACT.md §3.
    #[tracing::instrument(skip_all)]
    pub async fn rotate(
        &self,
        presented: &RefreshToken,
        user_agent: Option<String>,
    ) -> Result<IssuedTokens, AuthError> {
        let successor = self.successors.successor_of(presented);
        let (outcome, now) = self.claim(presented, &successor, user_agent).await?;
        match outcome {
            RotationOutcome::Rotated {
                family,
                successor: issued,
            } => {
                tracing::debug!(session_id = %family.session_id, "refresh token rotated");
                self.issue(&family, successor, issued)
            }
            RotationOutcome::AlreadyRotated(earlier) => {
                self.replayed(successor, earlier, now).await
            }
            RotationOutcome::Unknown => Err(AuthError::RefreshTokenInvalid),
            RotationOutcome::Expired => Err(AuthError::RefreshTokenExpired),
            RotationOutcome::SessionRevoked => Err(AuthError::SessionRevoked),
        }
    }

    /// The one storage call of a refresh, run again when the database broke
    /// a conflict by aborting it. Returns the outcome and the time it was
    /// decided at.
    async fn claim(
        &self,
        presented: &RefreshToken,
        successor: &RefreshToken,
        user_agent: Option<String>,
    ) -> Result<(RotationOutcome, Timestamp), AuthError> {
        for _ in 0..ROTATION_ATTEMPTS {
            let now = self.clock.now();
            let request = RotationRequest {
                presented: presented.hash(),
                successor: successor.hash(),
                successor_id: uuid::Uuid::new_v4().to_string(),
                now,
                refresh_ttl: self.policy.refresh_ttl,
                user_agent: user_agent.clone(),
            };
            match self.store.rotate(request).await {
                Ok(outcome) => return Ok((outcome, now)),
                Err(StorageError::Conflict(e)) => {
                    tracing::debug!(error = %e, "rotation conflicted; retrying");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AuthError::Unexpected(anyhow::anyhow!(
            "a refresh token kept changing under rotation"
        )))
    }

    /// A token rotated before: within the grace, while its successor is
    /// unused, the same successor (and access token) again, so concurrent
    /// refreshes (two tabs, a retried request) converge instead of forking
    /// the family; otherwise reuse, which revokes the family.
    async fn replayed(
        &self,
        successor: RefreshToken,
        earlier: AlreadyRotated,
        now: Timestamp,
    ) -> Result<IssuedTokens, AuthError> {
        let Some(stored) = earlier.successor_within_grace(self.policy.reuse_grace, now) else {
            self.revoke_for_reuse(&earlier.family).await?;
            return Err(AuthError::RefreshTokenReused);
        };
        tracing::debug!(session_id = %earlier.family.session_id, "rotated token presented within the grace");
        self.issue(&earlier.family, successor, stored.issued)
    }

    async fn revoke_for_reuse(&self, family: &Family) -> Result<(), AuthError> {
        tracing::warn!(
            event = "refresh_token_reuse_detected",
            user_id = %family.user_id,
            session_id = %family.session_id,
            "a rotated refresh token was presented again; revoking its session"
        );
        self.revoke_family(&family.session_id, RevokeReason::Reuse)
            .await?;
        Ok(())
    }

    /// Revokes a family and all its tokens; false if it already was.
    pub async fn revoke_family(
        &self,
        session_id: &str,
        reason: RevokeReason,
    ) -> Result<bool, AuthError> {
        let revoked = retry_on_conflict(|| {
            self.store
                .revoke_session(session_id, reason, self.clock.now())
        })
        .await?;
        if revoked {
            tracing::info!(
                event = "session_revoked",
                session_id = %session_id,
                reason = reason.as_str(),
                "session revoked"
            );
        }
        Ok(revoked)
    }

    /// Revokes the family of the presented token, whatever state the token is
    /// in; unknown tokens are ignored (logout is idempotent).
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, presented: Option<&RefreshToken>) -> Result<(), AuthError> {
        let Some(presented) = presented else {
            return Ok(());
        };
        if let Some(session_id) = self.store.session_of(&presented.hash()).await? {
            self.revoke_family(&session_id, RevokeReason::Logout)
                .await?;
        }
        Ok(())
    }

    /// One page of the user's live sessions, newest login first, and where
    /// the next page starts (`None` on the last page).
    pub async fn list(
        &self,
        user_id: &str,
        current_session_id: &str,
        page: SessionPage,
    ) -> Result<(Vec<SessionSummary>, Option<SessionCursor>), AuthError> {
        let limit = page.limit.clamp(1, SessionPage::MAX_LIMIT);
        let now = self.clock.now();
        // One more than asked for says whether another page follows.
        let mut sessions = self
            .store
            .live_sessions(user_id, now, page.after.as_ref(), limit + 1)
            .await?;
        let next = (sessions.len() > limit).then(|| {
            sessions.truncate(limit);
            sessions.last().map(|s| SessionCursor {
                created_at: s.created_at,
                id: s.id.clone(),
            })
        });
        for session in &mut sessions {
            session.current = session.id == current_session_id;
        }
        Ok((sessions, next.flatten()))
    }

    /// Revokes one of the user's own sessions. Another user's, an unknown and
    /// an already revoked id are all "not found", revealing nothing.
    pub async fn revoke_own(&self, user_id: &str, session_id: &str) -> Result<(), AuthError> {
        match self.store.find_session(session_id).await? {
            Some(s) if s.user_id == user_id && !s.revoked => {
                if self
                    .revoke_family(session_id, RevokeReason::RevokedByUser)
                    .await?
                {
                    Ok(())
                } else {
                    Err(AuthError::SessionNotFound)
                }
            }
            _ => Err(AuthError::SessionNotFound),
        }
    }

    /// "Log out everywhere": revokes every family of the user.
    pub async fn revoke_all(&self, user_id: &str) -> Result<usize, AuthError> {
        let revoked = retry_on_conflict(|| {
            self.store.revoke_user_sessions(
                user_id,
                RevokeReason::LogoutEverywhere,
                self.clock.now(),
            )
        })
        .await?;
        tracing::info!(
            event = "logout_everywhere",
            user_id = %user_id,
            sessions = revoked,
            "every session of the user revoked"
        );
        Ok(usize::try_from(revoked).unwrap_or(usize::MAX))
    }
}
