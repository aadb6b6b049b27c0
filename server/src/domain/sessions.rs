//! Sessions: refresh-token families. Login starts one; a refresh rotates its
//! token (or, within the grace, hands out the same successor again); reuse of
//! a rotated token revokes it; logout and the session endpoints revoke it.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use super::access_token::{AccessTokens, IssuedAccessToken};
use super::refresh_token::RefreshToken;
use super::rotation::{
    AlreadyRotated, Family, IssuedRefresh, RotationOutcome, RotationRequest, Successor,
    successor_expiry,
};
use super::{AuthError, Clock, SessionPolicy, Timestamp};
use crate::faults::{Fault, Faults};
use crate::storage::rotation::Rotations;
use crate::storage::sessions::{self as store, SessionRecord, TokenRecord};
use crate::storage::{StorageError, begin as store_begin};

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
    fn as_str(self) -> &'static str {
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
    db: DatabaseConnection,
    rotations: Rotations,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
    successor_key: [u8; 32],
    access_tokens: AccessTokens,
    faults: Faults,
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

fn db_err(e: sea_orm::DbErr) -> AuthError {
    AuthError::Storage(StorageError::from(e))
}

impl Sessions {
    pub fn new(
        db: DatabaseConnection,
        rotations: Rotations,
        clock: Arc<dyn Clock>,
        policy: SessionPolicy,
        successor_key: [u8; 32],
        access_tokens: AccessTokens,
        faults: Faults,
    ) -> Self {
        Self {
            db,
            rotations,
            clock,
            policy,
            successor_key,
            access_tokens,
            faults,
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
        let txn = store_begin(&self.db).await?;
        store::insert_session(&*txn, session).await?;
        store::insert_token(&*txn, record).await?;
        txn.commit().await.map_err(db_err)?;
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
        let successor = self.successor_of(presented);
        let (outcome, now) = self.claim(presented, &successor, user_agent).await?;
        match outcome {
            RotationOutcome::Rotated {
                family,
                successor: issued,
            } => self.rotated(presented, &family, successor, issued).await,
            RotationOutcome::AlreadyRotated(earlier) => {
                self.replayed(presented, earlier, now).await
            }
            RotationOutcome::Unknown => Err(AuthError::RefreshTokenInvalid),
            RotationOutcome::Expired => Err(AuthError::RefreshTokenExpired),
            RotationOutcome::SessionRevoked => Err(AuthError::SessionRevoked),
        }
    }

    /// The token that replaces `presented`: derived from it, so a repeat
    /// within the grace yields it again without it ever being stored.
    fn successor_of(&self, presented: &RefreshToken) -> RefreshToken {
        if self.faults.has(Fault::RotationKeepsOldToken) {
            return RefreshToken::generate();
        }
        presented.successor(&self.successor_key)
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
            match self.rotations.rotate(request).await {
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

    async fn rotated(
        &self,
        presented: &RefreshToken,
        family: &Family,
        successor: RefreshToken,
        issued: IssuedRefresh,
    ) -> Result<IssuedTokens, AuthError> {
        if self.faults.has(Fault::RotationKeepsOldToken) {
            store::unclaim(&self.db, &presented.hash().0).await?;
        }
        tracing::debug!(session_id = %family.session_id, "refresh token rotated");
        self.issue(family, successor, issued)
    }

    /// A token rotated before: within the grace, while its successor is
    /// unused, the same successor (and access token) again, so concurrent
    /// refreshes (two tabs, a retried request) converge instead of forking
    /// the family; otherwise reuse, which revokes the family.
    async fn replayed(
        &self,
        presented: &RefreshToken,
        earlier: AlreadyRotated,
        now: Timestamp,
    ) -> Result<IssuedTokens, AuthError> {
        if self.faults.has(Fault::ExpiredReuseKeepsFamily) && earlier.expires_at <= now {
            return Err(AuthError::RefreshTokenExpired);
        }
        let Some(successor) = self.within_grace(&earlier, now) else {
            self.revoke_for_reuse(&earlier.family).await?;
            return Err(AuthError::RefreshTokenReused);
        };
        if self.faults.has(Fault::GraceForksFamily) {
            return self.fork(&earlier, now).await;
        }
        tracing::debug!(session_id = %earlier.family.session_id, "rotated token presented within the grace");
        let refresh = presented.successor(&self.successor_key);
        self.issue(&earlier.family, refresh, successor.issued)
    }

    fn within_grace(&self, earlier: &AlreadyRotated, now: Timestamp) -> Option<Successor> {
        let grace = self.policy.reuse_grace;
        let successor = earlier.successor?;
        let in_window = !grace.is_zero() && now <= earlier.rotated_at.saturating_add(grace);
        (in_window && successor.unused).then_some(successor)
    }

    /// Only for the `grace-forks-family` fault: a second live token.
    async fn fork(
        &self,
        earlier: &AlreadyRotated,
        now: Timestamp,
    ) -> Result<IssuedTokens, AuthError> {
        let forked = RefreshToken::generate();
        let issued = IssuedRefresh {
            issued_at: now,
            expires_at: successor_expiry(now, self.policy.refresh_ttl, earlier.session_ends_at),
        };
        let session_id = &earlier.family.session_id;
        let record = self.token_record(
            session_id,
            Some(earlier.token_id.clone()),
            &forked,
            issued,
            None,
        );
        store::insert_token(&self.db, record).await?;
        self.issue(&earlier.family, forked, issued)
    }

    async fn revoke_for_reuse(&self, family: &Family) -> Result<(), AuthError> {
        tracing::warn!(
            event = "refresh_token_reuse_detected",
            user_id = %family.user_id,
            session_id = %family.session_id,
            "a rotated refresh token was presented again; revoking its session"
        );
        if self.faults.has(Fault::ReuseKeepsFamily) {
            return Ok(());
        }
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
        let revoked = retry_on_conflict(|| self.try_revoke_family(session_id, reason)).await?;
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

    async fn try_revoke_family(
        &self,
        session_id: &str,
        reason: RevokeReason,
    ) -> Result<bool, StorageError> {
        let now = self.clock.now().as_millis();
        let txn = store_begin(&self.db).await?;
        let revoked = store::revoke_session(&*txn, session_id, reason.as_str(), now).await?;
        txn.commit().await?;
        Ok(revoked)
    }

    /// Revokes the family of the presented token, whatever state the token is
    /// in; unknown tokens are ignored (logout is idempotent).
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, presented: Option<&RefreshToken>) -> Result<(), AuthError> {
        let Some(presented) = presented else {
            return Ok(());
        };
        if let Some(token) = store::find_token(&self.db, &presented.hash().0).await? {
            self.revoke_family(&token.session_id, RevokeReason::Logout)
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
        let mut sessions =
            store::live_sessions(&self.db, user_id, now, page.after.as_ref(), limit + 1).await?;
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
        let session = store::find_session(&self.db, session_id).await?;
        if self.faults.has(Fault::ExpiredSessionNotFound)
            && session.as_ref().is_some_and(|s| {
                self.clock.now()
                    >= Timestamp::from_millis(s.last_used_at)
                        .saturating_add(self.policy.refresh_ttl)
            })
        {
            return Err(AuthError::SessionNotFound);
        }
        match session {
            Some(s) if s.user_id == user_id && s.revoked_at.is_none() => {
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
        let revoked = retry_on_conflict(|| async {
            let now = self.clock.now().as_millis();
            let txn = store_begin(&self.db).await?;
            let n = store::revoke_user_sessions(
                &*txn,
                user_id,
                RevokeReason::LogoutEverywhere.as_str(),
                now,
            )
            .await?;
            txn.commit().await?;
            Ok(n)
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
