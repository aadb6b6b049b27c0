//! PostgreSQL: a rotation is one statement, so one round trip and its own
//! transaction. Its data-modifying CTEs lock the session row first (the
//! order every writer takes, see storage::sessions::revoke_user_sessions),
//! claim the token only if it is live, touch the session and insert the
//! successor, and the statement returns the facts it decided on.
//!
//! A statement that waited for a concurrent rotation of the same token sees
//! the winner's claim (the UPDATE re-checks the row) but not the winner's
//! successor (its snapshot is older): its facts then say "live" although
//! the claim failed. It reads the facts again in a statement of its own,
//! which sees the winner's commit, and decides on those.

use std::sync::LazyLock;

use sea_orm::sqlx::{self, PgPool, Row as _};

use super::{FactsRow, facts_sql, live_token_sql, presented_token, raced, refusal, sqlx_error};
use crate::domain::Timestamp;
use crate::domain::rotation::{Family, IssuedRefresh, RotationOutcome, RotationRequest, decide};

/// $1 presented hash, $2 successor hash, $3 now, $4 the successor's sliding
/// expiry (now + refresh_ttl; the session's end caps it, as
/// domain::rotation::successor_expiry does), $5 user agent, $6 successor id.
static ROTATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH presented AS ( \
             SELECT session_id FROM refresh_tokens WHERE token_hash = $1 \
         ), s AS ( \
             SELECT id, user_id, revoked_at, absolute_expires_at FROM sessions \
             WHERE id = (SELECT session_id FROM presented) FOR UPDATE \
         ), claimed AS ( \
             UPDATE refresh_tokens t SET rotated_at = $3 FROM s \
             WHERE t.token_hash = $1 AND t.session_id = s.id AND {live} \
             RETURNING t.id, t.session_id, s.user_id, \
                 LEAST($4::bigint, s.absolute_expires_at) AS expires_at \
         ), touched AS ( \
             UPDATE sessions SET last_used_at = $3, user_agent = $5 \
             WHERE id IN (SELECT session_id FROM claimed) RETURNING id \
         ), inserted AS ( \
             INSERT INTO refresh_tokens \
                 (id, session_id, parent_id, token_hash, issued_at, expires_at, user_agent) \
             SELECT $6, session_id, id, $2, $3, expires_at, $5 FROM claimed \
             RETURNING expires_at \
         ) \
         SELECT c.session_id, c.user_id, i.expires_at, f.* \
         FROM (SELECT 1) one \
         LEFT JOIN claimed c ON true LEFT JOIN inserted i ON true \
         LEFT JOIN ({facts}) f ON true",
        live = live_token_sql("$3"),
        facts = facts_sql("$1", "$2"),
    )
});

static FACTS: LazyLock<String> = LazyLock::new(|| facts_sql("$1", "$2"));

pub(super) async fn rotate(
    pool: &PgPool,
    request: &RotationRequest,
) -> Result<RotationOutcome, crate::storage::StorageError> {
    let now = request.now.as_millis();
    let sliding = request.now.saturating_add(request.refresh_ttl).as_millis();
    let row = sqlx::query(sqlx::AssertSqlSafe(ROTATE.as_str()))
        .bind(&request.presented.0[..])
        .bind(&request.successor.0[..])
        .bind(now)
        .bind(sliding)
        .bind(request.user_agent.as_deref())
        .bind(&request.successor_id)
        .fetch_one(pool)
        .await
        .map_err(sqlx_error)?;
    let claimed: Option<String> = row.try_get(0).map_err(sqlx_error)?;
    if let Some(session_id) = claimed {
        return Ok(RotationOutcome::Rotated {
            family: Family {
                session_id,
                user_id: row.try_get(1).map_err(sqlx_error)?,
            },
            successor: IssuedRefresh {
                issued_at: request.now,
                expires_at: Timestamp::from_millis(row.try_get(2).map_err(sqlx_error)?),
            },
        });
    }
    let facts = facts_at(&row, 3).map_err(sqlx_error)?;
    if let Some(outcome) = refusal(decide(facts, request)) {
        return Ok(outcome);
    }
    // Lost a race (see the module's comment): decide on the winner's facts.
    let row = sqlx::query(sqlx::AssertSqlSafe(FACTS.as_str()))
        .bind(&request.presented.0[..])
        .bind(&request.successor.0[..])
        .fetch_optional(pool)
        .await
        .map_err(sqlx_error)?;
    let facts = match row {
        Some(row) => facts_at(&row, 0).map_err(sqlx_error)?,
        None => None,
    };
    refusal(decide(facts, request)).ok_or_else(raced)
}

/// The facts' columns from `first` on; `None` when the token is unknown.
fn facts_at(
    row: &sqlx::postgres::PgRow,
    first: usize,
) -> Result<Option<crate::domain::rotation::PresentedToken>, sqlx::Error> {
    let id: Option<String> = row.try_get(first)?;
    let Some(id) = id else {
        return Ok(None);
    };
    let at = |i: usize| first + i;
    let facts: FactsRow = (
        id,
        row.try_get::<Option<String>, _>(at(1))?.unwrap_or_default(),
        row.try_get::<Option<String>, _>(at(2))?.unwrap_or_default(),
        row.try_get::<Option<i64>, _>(at(3))?.unwrap_or_default(),
        row.try_get::<Option<i64>, _>(at(4))?.unwrap_or_default(),
        row.try_get(at(5))?,
        row.try_get(at(6))?,
        row.try_get(at(7))?,
        row.try_get::<Option<i64>, _>(at(8))?.unwrap_or_default(),
        row.try_get(at(9))?,
        row.try_get(at(10))?,
        row.try_get(at(11))?,
        row.try_get(at(12))?,
    );
    Ok(Some(presented_token(facts)))
}
