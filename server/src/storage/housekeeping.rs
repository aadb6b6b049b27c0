//! Deleting what no longer matters: refresh-token rows long expired or long
//! revoked, and sessions with nothing left. Small batches, so a purge never
//! holds locks for long. Rotated tokens are kept until they would have
//! expired (plus the retention): reuse detection needs their record.

use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use super::StorageError;
use super::entities::{refresh_token, session};

/// Deletes up to `batch` refresh-token rows that expired or were revoked
/// before `cutoff`; returns how many went.
pub async fn purge_tokens<C: ConnectionTrait>(
    db: &C,
    cutoff: i64,
    batch: u64,
) -> Result<u64, StorageError> {
    let ids: Vec<String> = refresh_token::Entity::find()
        .select_only()
        .column(refresh_token::Column::Id)
        .filter(
            Condition::any()
                .add(refresh_token::Column::ExpiresAt.lt(cutoff))
                .add(refresh_token::Column::RevokedAt.lt(cutoff)),
        )
        .limit(batch)
        .into_tuple()
        .all(db)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let result = refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::Id.is_in(ids))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Deletes up to `batch` sessions that ended before `cutoff` (revoked, past
/// their absolute lifetime, or unused since) and have no token rows left.
pub async fn purge_sessions<C: ConnectionTrait>(
    db: &C,
    cutoff: i64,
    batch: u64,
) -> Result<u64, StorageError> {
    let candidates: Vec<String> = session::Entity::find()
        .select_only()
        .column(session::Column::Id)
        .filter(
            Condition::any()
                .add(session::Column::AbsoluteExpiresAt.lt(cutoff))
                .add(session::Column::RevokedAt.lt(cutoff))
                .add(session::Column::LastUsedAt.lt(cutoff)),
        )
        .limit(batch)
        .into_tuple()
        .all(db)
        .await?;
    if candidates.is_empty() {
        return Ok(0);
    }
    let with_tokens: Vec<String> = refresh_token::Entity::find()
        .select_only()
        .column(refresh_token::Column::SessionId)
        .filter(refresh_token::Column::SessionId.is_in(candidates.clone()))
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let empty: Vec<String> = candidates
        .into_iter()
        .filter(|id| !with_tokens.contains(id))
        .collect();
    if empty.is_empty() {
        return Ok(0);
    }
    let result = session::Entity::delete_many()
        .filter(session::Column::Id.is_in(empty))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
