//! Sessions: refresh-token families. Login starts one; a refresh rotates its
//! token (or, within the grace, hands out the same successor again); reuse of
//! a rotated token revokes it; logout and the session endpoints revoke it.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use super::access_token::{AccessTokens, IssuedAccessToken};
use super::refresh_token::RefreshToken;
use super::{AuthError, Clock, SessionPolicy, Timestamp};
use crate::faults::{Fault, Faults};
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
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
    successor_key: [u8; 32],
    access_tokens: AccessTokens,
    faults: Faults,
}

/// How often a rotation is retried when its token changed between the
/// conditional update and the read that explains the failure.
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
        clock: Arc<dyn Clock>,
        policy: SessionPolicy,
        successor_key: [u8; 32],
        access_tokens: AccessTokens,
        faults: Faults,
    ) -> Self {
        Self {
            db,
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

    fn issue(
        &self,
        user_id: &str,
        session_id: &str,
        refresh: RefreshToken,
        refresh_expires_at: i64,
        now: Timestamp,
    ) -> Result<IssuedTokens, AuthError> {
        let access = self
            .access_tokens
            .issue(user_id, session_id)
            .map_err(|e| AuthError::Unexpected(e.into()))?;
        Ok(IssuedTokens {
            access,
            refresh,
            refresh_expires_at: Timestamp::from_millis(refresh_expires_at),
            session_id: session_id.to_owned(),
            user_id: user_id.to_owned(),
            issued_at: now,
        })
    }

    /// The expiry of a token issued now: sliding, capped by the family's
    /// absolute lifetime.
    fn token_expiry(&self, now: Timestamp, session: &SessionRecord) -> i64 {
        now.saturating_add(self.policy.refresh_ttl)
            .as_millis()
            .min(session.absolute_expires_at)
    }

    fn token_record(
        &self,
        session: &SessionRecord,
        parent_id: Option<String>,
        token: &RefreshToken,
        now: Timestamp,
        user_agent: Option<String>,
    ) -> TokenRecord {
        TokenRecord {
            id: uuid::Uuid::new_v4().to_string(),
            session_id: session.id.clone(),
            parent_id,
            token_hash: token.hash().0.to_vec(),
            issued_at: now.as_millis(),
            expires_at: self.token_expiry(now, session),
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
        let session = SessionRecord {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_owned(),
            created_at: now.as_millis(),
            last_used_at: now.as_millis(),
            absolute_expires_at: now
                .saturating_add(self.policy.session_max_lifetime)
                .as_millis(),
            revoked_at: None,
            revoke_reason: None,
            user_agent: user_agent.clone(),
        };
        let refresh = RefreshToken::generate();
        let record = self.token_record(&session, None, &refresh, now, user_agent);
        let expires_at = record.expires_at;
        let txn = store_begin(&self.db).await?;
        store::insert_session(&*txn, session.clone()).await?;
        store::insert_token(&*txn, record).await?;
        txn.commit().await.map_err(db_err)?;
        tracing::info!(session_id = %session.id, "session started");
        self.issue(&session.user_id, &session.id, refresh, expires_at, now)
    }

    /// Exchanges a refresh token for a new pair. See CONTRACT.md §3.
    #[tracing::instrument(skip_all)]
    pub async fn rotate(
        &self,
        presented: &RefreshToken,
        user_agent: Option<String>,
    ) -> Result<IssuedTokens, AuthError> {
        for _ in 0..ROTATION_ATTEMPTS {
            let now = self.clock.now();
            match self.try_rotate(presented, now, user_agent.clone()).await {
                Ok(Some(issued)) => return Ok(issued),
                Ok(None) => {}
                Err(AuthError::Storage(StorageError::Conflict(e))) => {
                    tracing::debug!(error = %e, "rotation conflicted; retrying");
                    continue;
                }
                Err(e) => return Err(e),
            }
            match self.explain_unrotatable(presented, now).await {
                Ok(Some(outcome)) => return outcome,
                Ok(None) | Err(AuthError::Storage(StorageError::Conflict(_))) => {}
                Err(e) => return Err(e),
            }
        }
        Err(AuthError::Unexpected(anyhow::anyhow!(
            "a refresh token kept changing under rotation"
        )))
    }

    /// The happy path: claim the token and add its successor, atomically
    /// (storage::sessions::rotate). `None` when the token was not live.
    async fn try_rotate(
        &self,
        presented: &RefreshToken,
        now: Timestamp,
        user_agent: Option<String>,
    ) -> Result<Option<IssuedTokens>, AuthError> {
        let keeps_old = self.faults.has(Fault::RotationKeepsOldToken);
        let successor = if keeps_old {
            RefreshToken::generate()
        } else {
            presented.successor(&self.successor_key)
        };
        let presented_hash = presented.hash();
        let rotation = store::Rotation {
            presented_hash: presented_hash.0.to_vec(),
            successor_id: uuid::Uuid::new_v4().to_string(),
            successor_hash: successor.hash().0.to_vec(),
            now: now.as_millis(),
            successor_expires_at: now.saturating_add(self.policy.refresh_ttl).as_millis(),
            user_agent,
        };
        let Some(rotated) = store::rotate(&self.db, rotation).await? else {
            return Ok(None);
        };
        if keeps_old {
            store::unclaim(&self.db, &presented_hash.0).await?;
        }
        tracing::debug!(session_id = %rotated.session_id, "refresh token rotated");
        self.issue(
            &rotated.user_id,
            &rotated.session_id,
            successor,
            rotated.successor_expires_at,
            now,
        )
        .map(Some)
    }

    /// The token could not be claimed: say why, or answer within the grace.
    /// `None` means it changed under us and the rotation should be retried.
    async fn explain_unrotatable(
        &self,
        presented: &RefreshToken,
        now: Timestamp,
    ) -> Result<Option<Result<IssuedTokens, AuthError>>, AuthError> {
        let Some(token) = store::find_token(&self.db, &presented.hash().0).await? else {
            return Ok(Some(Err(AuthError::RefreshTokenInvalid)));
        };
        let Some(session) = store::find_session(&self.db, &token.session_id).await? else {
            return Ok(Some(Err(AuthError::RefreshTokenInvalid)));
        };
        if session.revoked_at.is_some() {
            return Ok(Some(Err(AuthError::SessionRevoked)));
        }
        if self.faults.has(Fault::ExpiredReuseKeepsFamily) && token.expires_at <= now.as_millis() {
            return Ok(Some(Err(AuthError::RefreshTokenExpired)));
        }
        if let Some(rotated_at) = token.rotated_at {
            if let Some(issued) = self
                .within_grace(presented, &token, &session, rotated_at, now)
                .await?
            {
                return Ok(Some(Ok(issued)));
            }
            self.revoke_for_reuse(&session).await?;
            return Ok(Some(Err(AuthError::RefreshTokenReused)));
        }
        if token.revoked_at.is_some() {
            return Ok(Some(Err(AuthError::SessionRevoked)));
        }
        if token.expires_at <= now.as_millis() {
            return Ok(Some(Err(AuthError::RefreshTokenExpired)));
        }
        Ok(None)
    }

    /// Within the grace after a rotation, while the successor is unused, the
    /// rotated token yields that same successor: concurrent refreshes (two
    /// tabs, a retried request) converge instead of forking the family.
    async fn within_grace(
        &self,
        presented: &RefreshToken,
        token: &TokenRecord,
        session: &SessionRecord,
        rotated_at: i64,
        now: Timestamp,
    ) -> Result<Option<IssuedTokens>, AuthError> {
        if self.policy.reuse_grace.is_zero()
            || now > Timestamp::from_millis(rotated_at).saturating_add(self.policy.reuse_grace)
        {
            return Ok(None);
        }
        let successor = presented.successor(&self.successor_key);
        let Some(next) = store::find_token(&self.db, &successor.hash().0).await? else {
            return Ok(None);
        };
        let unused = next.session_id == session.id
            && next.parent_id.as_deref() == Some(token.id.as_str())
            && next.rotated_at.is_none()
            && next.revoked_at.is_none()
            && next.expires_at > now.as_millis();
        if !unused {
            return Ok(None);
        }
        if self.faults.has(Fault::GraceForksFamily) {
            let forked = RefreshToken::generate();
            let record = self.token_record(session, Some(token.id.clone()), &forked, now, None);
            let expires_at = record.expires_at;
            store::insert_token(&self.db, record).await?;
            return self
                .issue(&session.user_id, &session.id, forked, expires_at, now)
                .map(Some);
        }
        tracing::debug!(session_id = %session.id, "rotated token presented within the grace");
        self.issue(
            &session.user_id,
            &session.id,
            successor,
            next.expires_at,
            now,
        )
        .map(Some)
    }

    async fn revoke_for_reuse(&self, session: &SessionRecord) -> Result<(), AuthError> {
        tracing::warn!(
            event = "refresh_token_reuse_detected",
            user_id = %session.user_id,
            session_id = %session.id,
            "a rotated refresh token was presented again; revoking its session"
        );
        if self.faults.has(Fault::ReuseKeepsFamily) {
            return Ok(());
        }
        self.revoke_family(&session.id, RevokeReason::Reuse).await?;
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
