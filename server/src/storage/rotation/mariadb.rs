//! MariaDB has neither data-modifying CTEs nor `UPDATE … RETURNING`, so a
//! rotation is a short READ COMMITTED transaction: read the facts, decide,
//! then one UPDATE that claims the token and touches its session (sessions
//! first, as every writer locks them, see
//! storage::sessions::revoke_user_sessions) only if the token is still
//! live, and one INSERT of the successor.
//!
//! The facts are a plain read: when the UPDATE then finds the token no
//! longer live, a concurrent writer got there first, and the facts are read
//! again (now behind its commit, the session row locked) and decided on.

use std::sync::LazyLock;

use sea_orm::DatabaseConnection;
use sea_orm::sqlx::{self, MySql, Row as _, Transaction};

use super::{FactsRow, facts_sql, live_token_sql, presented_token, raced, refusal, sqlx_error};
use crate::domain::rotation::{Decision, PresentedToken, RotationOutcome, RotationRequest, decide};
use crate::storage::StorageError;

static FACTS: LazyLock<String> = LazyLock::new(|| facts_sql("?", "?"));

/// ? now, ? user agent, ? session id, ? token id, then the live predicate's now.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE sessions s STRAIGHT_JOIN refresh_tokens t ON t.session_id = s.id \
         SET t.rotated_at = ?, s.last_used_at = ?, s.user_agent = ? \
         WHERE s.id = ? AND t.id = ? AND {}",
        live_token_sql("?")
    )
});

const INSERT: &str = "INSERT INTO refresh_tokens \
     (id, session_id, parent_id, token_hash, issued_at, expires_at, user_agent) \
     VALUES (?, ?, ?, ?, ?, ?, ?)";

pub(super) async fn rotate(
    db: &DatabaseConnection,
    request: &RotationRequest,
) -> Result<RotationOutcome, StorageError> {
    let pool = db.get_mysql_connection_pool();
    let mut txn = pool
        .begin_with("SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION")
        .await
        .map_err(sqlx_error)?;
    let outcome = rotate_in(&mut txn, request).await;
    match &outcome {
        Ok(RotationOutcome::Rotated { .. }) => txn.commit().await.map_err(sqlx_error)?,
        _ => txn.rollback().await.map_err(sqlx_error)?,
    }
    outcome
}

async fn rotate_in(
    txn: &mut Transaction<'_, MySql>,
    request: &RotationRequest,
) -> Result<RotationOutcome, StorageError> {
    let presented = facts(txn, request).await?;
    let token_id = presented.as_ref().map(|p| p.token_id.clone());
    let (family, successor) = match decide(presented, request) {
        Decision::Refuse(outcome) => return Ok(outcome),
        Decision::Rotate { family, successor } => (family, successor),
    };
    let now = request.now.as_millis();
    let claimed = sqlx::query(CLAIM.as_str())
        .bind(now)
        .bind(now)
        .bind(request.user_agent.as_deref())
        .bind(&family.session_id)
        .bind(&token_id)
        .bind(now)
        .execute(&mut **txn)
        .await
        .map_err(sqlx_error)?;
    if claimed.rows_affected() == 0 {
        let presented = facts(txn, request).await?;
        return refusal(decide(presented, request)).ok_or_else(raced);
    }
    sqlx::query(INSERT)
        .bind(&request.successor_id)
        .bind(&family.session_id)
        .bind(&token_id)
        .bind(&request.successor.0[..])
        .bind(successor.issued_at.as_millis())
        .bind(successor.expires_at.as_millis())
        .bind(request.user_agent.as_deref())
        .execute(&mut **txn)
        .await
        .map_err(sqlx_error)?;
    Ok(RotationOutcome::Rotated { family, successor })
}

async fn facts(
    txn: &mut Transaction<'_, MySql>,
    request: &RotationRequest,
) -> Result<Option<PresentedToken>, StorageError> {
    let row = sqlx::query(FACTS.as_str())
        .bind(&request.successor.0[..])
        .bind(&request.presented.0[..])
        .fetch_optional(&mut **txn)
        .await
        .map_err(sqlx_error)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let get = |row: &sqlx::mysql::MySqlRow| -> Result<FactsRow, sqlx::Error> {
        Ok((
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
            row.try_get(5)?,
            row.try_get(6)?,
            row.try_get(7)?,
            row.try_get(8)?,
            row.try_get(9)?,
            row.try_get(10)?,
            row.try_get(11)?,
            row.try_get(12)?,
        ))
    };
    Ok(Some(presented_token(get(&row).map_err(sqlx_error)?)))
}
