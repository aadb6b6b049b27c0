//! The faults that live in storage and in the successor source: decorators
//! around the ports of `domain::sessions`.

use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _};

use super::{Fault, Faults};
use crate::domain::refresh_token::{RefreshToken, RefreshTokenHash};
use crate::domain::rotation::{AlreadyRotated, RotationOutcome, RotationRequest};
use crate::domain::session_store::{SessionStore, StoredSession, Successors};
use crate::domain::sessions::{RevokeReason, SessionCursor, SessionSummary};
use crate::domain::{Clock, SessionPolicy, Timestamp};
use crate::storage::StorageError;
use crate::storage::entities::refresh_token;
use crate::storage::sessions::{self as store, SessionRecord, TokenRecord};

/// Random successors, for the faults that must mint a token the derived
/// one would not give: a second live token, or a fresh one for a token
/// left live.
pub struct RandomSuccessors;

impl Successors for RandomSuccessors {
    fn successor_of(&self, _presented: &RefreshToken) -> RefreshToken {
        RefreshToken::generate()
    }
}

impl RandomSuccessors {
    /// Whether `faults` need random successors.
    pub fn needed_by(faults: &Faults) -> bool {
        faults.has(Fault::RotationKeepsOldToken) || faults.has(Fault::GraceForksFamily)
    }
}

/// A session store that breaks the contract the way `faults` say.
pub struct FaultySessionStore {
    inner: Arc<dyn SessionStore>,
    faults: Faults,
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
}

impl FaultySessionStore {
    pub fn new(
        inner: Arc<dyn SessionStore>,
        faults: Faults,
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        policy: SessionPolicy,
    ) -> Self {
        Self {
            inner,
            faults,
            db,
            clock,
            policy,
        }
    }

    /// `rotation-keeps-old-token`: undoes the claim of a rotated token.
    async fn unclaim(&self, token: &RefreshTokenHash) -> Result<(), StorageError> {
        refresh_token::Entity::update_many()
            .col_expr(
                refresh_token::Column::RotatedAt,
                Expr::value(Option::<i64>::None),
            )
            .filter(refresh_token::Column::TokenHash.eq(token.0.to_vec()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// `grace-forks-family`: stores the (random) successor of a repeat
    /// within the grace next to the one issued first, so the family has two
    /// live tokens.
    async fn fork(
        &self,
        earlier: &AlreadyRotated,
        request: &RotationRequest,
    ) -> Result<(), StorageError> {
        let Some(first) = earlier.successor_within_grace(self.policy.reuse_grace, request.now)
        else {
            return Ok(());
        };
        let record = TokenRecord {
            id: request.successor_id.clone(),
            session_id: earlier.family.session_id.clone(),
            parent_id: Some(earlier.token_id.clone()),
            token_hash: request.successor.0.to_vec(),
            issued_at: first.issued.issued_at.as_millis(),
            expires_at: first.issued.expires_at.as_millis(),
            rotated_at: None,
            revoked_at: None,
            revoke_reason: None,
            user_agent: request.user_agent.clone(),
        };
        store::insert_token(&self.db, record).await
    }
}

#[async_trait]
impl SessionStore for FaultySessionStore {
    async fn start(&self, session: SessionRecord, first: TokenRecord) -> Result<(), StorageError> {
        self.inner.start(session, first).await
    }

    async fn rotate(&self, request: RotationRequest) -> Result<RotationOutcome, StorageError> {
        let outcome = self.inner.rotate(request.clone()).await?;
        match &outcome {
            RotationOutcome::Rotated { .. } if self.faults.has(Fault::RotationKeepsOldToken) => {
                self.unclaim(&request.presented).await?;
            }
            RotationOutcome::AlreadyRotated(earlier)
                if self.faults.has(Fault::ExpiredReuseKeepsFamily)
                    && earlier.expires_at <= request.now =>
            {
                return Ok(RotationOutcome::Expired);
            }
            RotationOutcome::AlreadyRotated(earlier)
                if self.faults.has(Fault::GraceForksFamily) =>
            {
                self.fork(earlier, &request).await?;
            }
            _ => {}
        }
        Ok(outcome)
    }

    async fn session_of(&self, token: &RefreshTokenHash) -> Result<Option<String>, StorageError> {
        self.inner.session_of(token).await
    }

    async fn find_session(&self, id: &str) -> Result<Option<StoredSession>, StorageError> {
        let session = self.inner.find_session(id).await?;
        if self.faults.has(Fault::ExpiredSessionNotFound)
            && session.as_ref().is_some_and(|s| {
                self.clock.now() >= s.last_used_at.saturating_add(self.policy.refresh_ttl)
            })
        {
            return Ok(None);
        }
        Ok(session)
    }

    async fn revoke_session(
        &self,
        id: &str,
        reason: RevokeReason,
        now: Timestamp,
    ) -> Result<bool, StorageError> {
        if matches!(reason, RevokeReason::Reuse) && self.faults.has(Fault::ReuseKeepsFamily) {
            return Ok(true);
        }
        self.inner.revoke_session(id, reason, now).await
    }

    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: RevokeReason,
        now: Timestamp,
    ) -> Result<u64, StorageError> {
        self.inner.revoke_user_sessions(user_id, reason, now).await
    }

    async fn live_sessions(
        &self,
        user_id: &str,
        now: Timestamp,
        after: Option<&SessionCursor>,
        limit: usize,
    ) -> Result<Vec<SessionSummary>, StorageError> {
        self.inner.live_sessions(user_id, now, after, limit).await
    }
}
