//! Sessions (refresh-token families) and their tokens.

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::StorageError;
use super::entities::{refresh_token, session};

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

/// The user's unrevoked sessions that have a live refresh token, each with
/// that token, newest login first.
pub async fn live_sessions<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    now: i64,
) -> Result<Vec<(SessionRecord, TokenRecord)>, StorageError> {
    let sessions = session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .order_by_desc(session::Column::CreatedAt)
        .all(db)
        .await?;
    if sessions.is_empty() {
        return Ok(Vec::new());
    }
    let tokens = refresh_token::Entity::find()
        .filter(refresh_token::Column::SessionId.is_in(sessions.iter().map(|s| s.id.clone())))
        .filter(refresh_token::Column::RotatedAt.is_null())
        .filter(refresh_token::Column::RevokedAt.is_null())
        .filter(refresh_token::Column::ExpiresAt.gt(now))
        .all(db)
        .await?;
    Ok(sessions
        .into_iter()
        .filter_map(|s| {
            let token = tokens.iter().find(|t| t.session_id == s.id)?.clone();
            Some((s, token))
        })
        .collect())
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

/// Only for the `rotation-keeps-old-token` fault: undoes a claim.
pub async fn unclaim<C: ConnectionTrait>(db: &C, token_hash: &[u8]) -> Result<(), StorageError> {
    refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::RotatedAt,
            Expr::value(Option::<i64>::None),
        )
        .filter(refresh_token::Column::TokenHash.eq(token_hash.to_vec()))
        .exec(db)
        .await?;
    Ok(())
}
