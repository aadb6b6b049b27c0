//! Sessions (refresh-token families) and their tokens.

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use async_trait::async_trait;
use sea_orm::DatabaseConnection;

use super::entities::{refresh_token, session};
use super::rotation::Rotations;
use super::{StorageError, begin};
use crate::domain::Timestamp;
use crate::domain::refresh_token::RefreshTokenHash;
use crate::domain::rotation::{RotationOutcome, RotationRequest};
use crate::domain::session_store::{SessionStore, StoredSession};
use crate::domain::sessions::{RevokeReason, SessionCursor, SessionSummary};

pub use refresh_token::Model as TokenRecord;
pub use session::Model as SessionRecord;

pub async fn insert_session<C: ConnectionTrait>(
    db: &C,
    record: SessionRecord,
) -> Result<(), StorageError> {
    let model = session::ActiveModel {
        id: Set(record.id),
        user_id: Set(record.user_id),
        created_at: Set(record.created_at),
        last_used_at: Set(record.last_used_at),
        absolute_expires_at: Set(record.absolute_expires_at),
        revoked_at: Set(record.revoked_at),
        revoke_reason: Set(record.revoke_reason),
        user_agent: Set(record.user_agent),
    };
    session::Entity::insert(model)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn insert_token<C: ConnectionTrait>(
    db: &C,
    record: TokenRecord,
) -> Result<(), StorageError> {
    let model = refresh_token::ActiveModel {
        id: Set(record.id),
        session_id: Set(record.session_id),
        parent_id: Set(record.parent_id),
        token_hash: Set(record.token_hash),
        issued_at: Set(record.issued_at),
        expires_at: Set(record.expires_at),
        rotated_at: Set(record.rotated_at),
        revoked_at: Set(record.revoked_at),
        revoke_reason: Set(record.revoke_reason),
        user_agent: Set(record.user_agent),
    };
    refresh_token::Entity::insert(model)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn find_token<C: ConnectionTrait>(
    db: &C,
    token_hash: &[u8],
) -> Result<Option<TokenRecord>, StorageError> {
    Ok(refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(token_hash.to_vec()))
        .one(db)
        .await?)
}

pub async fn find_session<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<SessionRecord>, StorageError> {
    Ok(session::Entity::find_by_id(id.to_owned()).one(db).await?)
}

/// Revokes a family and every token in it. Returns false when it was already
/// revoked (or does not exist). A revoked family never comes back.
pub async fn revoke_session<C: ConnectionTrait>(
    db: &C,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<bool, StorageError> {
    let result = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .col_expr(session::Column::RevokeReason, Expr::value(reason))
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    revoke_tokens_of(db, id, reason, now).await?;
    Ok(result.rows_affected == 1)
}

async fn revoke_tokens_of<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
    reason: &str,
    now: i64,
) -> Result<(), StorageError> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .col_expr(refresh_token::Column::RevokeReason, Expr::value(reason))
        .filter(refresh_token::Column::SessionId.eq(session_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes every unrevoked family of a user; returns how many.
///
/// The session rows go first: a racing refresh then either committed its
/// successor before (and the token update sees it) or waits on the session
/// row it wants to touch, which the database resolves as a deadlock that
/// the caller retries. Tokens first would miss a successor inserted in
/// between and leave a live token in a revoked family. Both statements are
/// writes, so on SQLite the transaction never upgrades a stale read snapshot.
pub async fn revoke_user_sessions<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    reason: &str,
    now: i64,
) -> Result<u64, StorageError> {
    let result = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .col_expr(session::Column::RevokeReason, Expr::value(reason))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    let sessions_of_user = Query::select()
        .column(session::Column::Id)
        .from(session::Entity)
        .and_where(session::Column::UserId.eq(user_id))
        .to_owned();
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .col_expr(refresh_token::Column::RevokeReason, Expr::value(reason))
        .filter(refresh_token::Column::SessionId.in_subquery(sessions_of_user))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Up to `limit` of the user's live sessions (unrevoked, with a live
/// refresh token), newest login first, starting after `after`. One query
/// whatever the number of sessions: the join binds no per-session values.
pub async fn live_sessions<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    now: Timestamp,
    after: Option<&SessionCursor>,
    limit: usize,
) -> Result<Vec<SessionSummary>, StorageError> {
    use sea_orm::sea_query::{Alias, Cond, ExprTrait as _, Order};
    let s = |c: session::Column| Expr::col((session::Entity, c));
    let t = |c: refresh_token::Column| Expr::col((refresh_token::Entity, c));
    let mut query = Query::select();
    query
        .column((session::Entity, session::Column::Id))
        .column((session::Entity, session::Column::CreatedAt))
        .column((session::Entity, session::Column::LastUsedAt))
        .column((session::Entity, session::Column::UserAgent))
        .expr_as(
            t(refresh_token::Column::ExpiresAt),
            Alias::new("token_expires_at"),
        )
        .from(session::Entity)
        .inner_join(
            refresh_token::Entity,
            t(refresh_token::Column::SessionId).equals((session::Entity, session::Column::Id)),
        )
        .and_where(s(session::Column::UserId).eq(user_id))
        .and_where(s(session::Column::RevokedAt).is_null())
        .and_where(t(refresh_token::Column::RotatedAt).is_null())
        .and_where(t(refresh_token::Column::RevokedAt).is_null())
        .and_where(t(refresh_token::Column::ExpiresAt).gt(now.as_millis()))
        .order_by((session::Entity, session::Column::CreatedAt), Order::Desc)
        .order_by((session::Entity, session::Column::Id), Order::Desc)
        .limit(u64::try_from(limit).unwrap_or(u64::MAX));
    if let Some(after) = after {
        let created = after.created_at.as_millis();
        query.cond_where(
            Cond::any()
                .add(s(session::Column::CreatedAt).lt(created))
                .add(
                    Cond::all()
                        .add(s(session::Column::CreatedAt).eq(created))
                        .add(s(session::Column::Id).lt(after.id.as_str())),
                ),
        );
    }
    let rows = db.query_all(&query).await?;
    rows.iter()
        .map(|row| {
            Ok(SessionSummary {
                id: row.try_get("", "id")?,
                created_at: Timestamp::from_millis(row.try_get("", "created_at")?),
                last_used_at: Timestamp::from_millis(row.try_get("", "last_used_at")?),
                expires_at: Timestamp::from_millis(row.try_get("", "token_expires_at")?),
                user_agent: row.try_get("", "user_agent")?,
                current: false,
            })
        })
        .collect::<Result<_, DbErr>>()
        .map_err(StorageError::from)
}

/// Counts the live (unrotated, unrevoked, unexpired) tokens of a family. The
/// invariant is that this is never more than one.
pub async fn count_live_tokens<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
    now: i64,
) -> Result<usize, StorageError> {
    Ok(refresh_token::Entity::find()
        .filter(refresh_token::Column::SessionId.eq(session_id))
        .filter(refresh_token::Column::RotatedAt.is_null())
        .filter(refresh_token::Column::RevokedAt.is_null())
        .filter(refresh_token::Column::ExpiresAt.gt(now))
        .all(db)
        .await?
        .len())
}

/// Sessions in a SQL database: sea-orm for everything but the hot write,
/// rotation, which has a path of its own per backend ([`Rotations`]).
pub struct SqlSessionStore {
    db: DatabaseConnection,
    rotations: Rotations,
}

impl SqlSessionStore {
    pub fn new(db: DatabaseConnection, rotations: Rotations) -> Self {
        Self { db, rotations }
    }
}

#[async_trait]
impl SessionStore for SqlSessionStore {
    async fn start(&self, session: SessionRecord, first: TokenRecord) -> Result<(), StorageError> {
        let txn = begin(&self.db).await?;
        insert_session(&*txn, session).await?;
        insert_token(&*txn, first).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn rotate(&self, request: RotationRequest) -> Result<RotationOutcome, StorageError> {
        self.rotations.rotate(request).await
    }

    async fn session_of(&self, token: &RefreshTokenHash) -> Result<Option<String>, StorageError> {
        Ok(find_token(&self.db, &token.0).await?.map(|t| t.session_id))
    }

    async fn find_session(&self, id: &str) -> Result<Option<StoredSession>, StorageError> {
        Ok(find_session(&self.db, id).await?.map(|s| StoredSession {
            user_id: s.user_id,
            revoked: s.revoked_at.is_some(),
            last_used_at: Timestamp::from_millis(s.last_used_at),
        }))
    }

    async fn revoke_session(
        &self,
        id: &str,
        reason: RevokeReason,
        now: Timestamp,
    ) -> Result<bool, StorageError> {
        let txn = begin(&self.db).await?;
        let revoked = revoke_session(&*txn, id, reason.as_str(), now.as_millis()).await?;
        txn.commit().await?;
        Ok(revoked)
    }

    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        reason: RevokeReason,
        now: Timestamp,
    ) -> Result<u64, StorageError> {
        let txn = begin(&self.db).await?;
        let revoked =
            revoke_user_sessions(&*txn, user_id, reason.as_str(), now.as_millis()).await?;
        txn.commit().await?;
        Ok(revoked)
    }

    async fn live_sessions(
        &self,
        user_id: &str,
        now: Timestamp,
        after: Option<&SessionCursor>,
        limit: usize,
    ) -> Result<Vec<SessionSummary>, StorageError> {
        live_sessions(&self.db, user_id, now, after, limit).await
    }
}
