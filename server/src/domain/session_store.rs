//! The ports of sessions: what `Sessions` asks of a database
//! ([`SessionStore`], implemented by storage::sessions::SqlSessionStore) and
//! where a rotation's successor comes from ([`Successors`]). Fault builds wrap
//! both in decorators (src/faults), so the production paths carry no test
//! branches.

use async_trait::async_trait;

use super::Timestamp;
use super::refresh_token::{RefreshToken, RefreshTokenHash};
use super::rotation::{RotationOutcome, RotationRequest};
use super::sessions::{RevokeReason, SessionCursor, SessionSummary};
use crate::storage::StorageError;
use crate::storage::sessions::{SessionRecord, TokenRecord};

/// A stored session, as the domain needs it to act on a user's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub user_id: String,
    pub revoked: bool,
    /// The last login or rotation: its token lives `refresh_ttl` from then.
    pub last_used_at: Timestamp,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new family and its first token, together or not at all.
    async fn start(&self, session: SessionRecord, first: TokenRecord) -> Result<(), StorageError>;

    /// Rotates the presented token if it is live, or says why not; decided
    /// inside one transaction.
    async fn rotate(&self, request: RotationRequest) -> Result<RotationOutcome, StorageError>;

    /// The family of a token, whatever the token's state.
    async fn session_of(&self, token: &RefreshTokenHash) -> Result<Option<String>, StorageError>;

    async fn find_session(&self, id: &str) -> Result<Option<StoredSession>, StorageError>;

    /// Revokes a family and every token in it; false when it already was.
    async fn revoke_session(
        &self,
        id: &str,
        reason: RevokeReason,
        now: Timestamp,
    ) -> Result<bool, StorageError>;

    /// Revokes every unrevoked family of a user; returns how many.
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: RevokeReason,
        now: Timestamp,
    ) -> Result<u64, StorageError>;

    /// Up to `limit` of the user's live sessions, newest login first,
    /// starting after `after`.
    async fn live_sessions(
        &self,
        user_id: &str,
        now: Timestamp,
        after: Option<&SessionCursor>,
        limit: usize,
    ) -> Result<Vec<SessionSummary>, StorageError>;
}

/// Where the token that replaces a presented one comes from.
pub trait Successors: Send + Sync {
    fn successor_of(&self, presented: &RefreshToken) -> RefreshToken;
}

/// Successors derived from the presented token under a key: a repeat within
/// the grace yields the same successor without any token being stored.
pub struct DerivedSuccessors {
    key: [u8; 32],
}

impl DerivedSuccessors {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }
}

impl Successors for DerivedSuccessors {
    fn successor_of(&self, presented: &RefreshToken) -> RefreshToken {
        presented.successor(&self.key)
    }
}
