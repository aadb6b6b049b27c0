//! Sessions (refresh-token families) and their tokens.

use std::sync::Arc;

use sea_orm::sea_query::{Expr, Query};
use sea_orm::sqlx::{self, Row as _};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, QueryFilter, RuntimeErr, UpdateMany,
};

use super::entities::{refresh_token, session};
use super::{StorageError, begin, sqlite_writer_lock};
use crate::domain::Timestamp;
use crate::domain::sessions::{SessionCursor, SessionSummary};

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

/// A refresh token to exchange for its successor.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub presented_hash: Vec<u8>,
    pub successor_id: String,
    pub successor_hash: Vec<u8>,
    pub now: i64,
    /// The successor's sliding expiry; the session's absolute lifetime caps it.
    pub successor_expires_at: i64,
    pub user_agent: Option<String>,
}

/// What a rotation that happened produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub session_id: String,
    pub user_id: String,
    pub successor_expires_at: i64,
}

/// Rotates the presented token if, and only if, it is live (unrotated,
/// unrevoked, unexpired) and its session unrevoked: marks it rotated,
/// records the use on the session and inserts the successor, all or
/// nothing. `None` when the token was not live; nothing changed then, and
/// the caller finds out why.
pub async fn rotate(
    db: &DatabaseConnection,
    rotation: Rotation,
) -> Result<Option<Rotated>, StorageError> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            rotate_on_sqlite(db.get_sqlite_connection_pool().clone(), rotation).await
        }
        _ => rotate_in_transaction(db, rotation).await,
    }
}

/// PostgreSQL and MariaDB: a transaction of three statements. Of N requests
/// racing with one token, the conditional claim lets exactly one through.
async fn rotate_in_transaction(
    db: &DatabaseConnection,
    rotation: Rotation,
) -> Result<Option<Rotated>, StorageError> {
    let txn = begin(db).await?;
    let session = touch_session_of_token(
        &*txn,
        &rotation.presented_hash,
        rotation.now,
        rotation.user_agent.clone(),
    )
    .await?;
    let claimed = match session {
        Some(session) => claim_for_rotation(&*txn, &rotation.presented_hash, rotation.now)
            .await?
            .map(|token| (session, token)),
        None => None,
    };
    let Some((session, token)) = claimed else {
        txn.rollback().await?;
        return Ok(None);
    };
    let successor_expires_at = rotation
        .successor_expires_at
        .min(session.absolute_expires_at);
    insert_token(
        &*txn,
        TokenRecord {
            id: rotation.successor_id,
            session_id: session.id.clone(),
            parent_id: Some(token.id),
            token_hash: rotation.successor_hash,
            issued_at: rotation.now,
            expires_at: successor_expires_at,
            rotated_at: None,
            revoked_at: None,
            revoke_reason: None,
            user_agent: rotation.user_agent,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(Some(Rotated {
        session_id: session.id,
        user_id: session.user_id,
        successor_expires_at,
    }))
}

/// The SQLite rotation: one script, so the connection's worker thread runs
/// all of it in one command. Through sea-orm it took five (BEGIN, three
/// statements, COMMIT), each a round trip between the runtime and the worker
/// while SQLite's single write lock was held; under load those hand-offs,
/// not SQLite, bounded refresh throughput (docs/BENCHMARKS.md).
///
/// Each statement depends on the one before through the successor's row,
/// whose id is new: it is inserted only if the presented token is live and
/// its session unrevoked, and only then is the token claimed and the session
/// touched. BEGIN IMMEDIATE takes the write lock first, so nothing
/// interleaves. Parameters: ?1 successor id, ?2 successor hash, ?3 now,
/// ?4 successor's sliding expiry, ?5 user agent, ?6 presented hash.
const SQLITE_ROTATION: &str = "\
BEGIN IMMEDIATE;
INSERT INTO refresh_tokens (id, session_id, parent_id, token_hash, issued_at, expires_at, user_agent)
    SELECT ?1, t.session_id, t.id, ?2, ?3, min(?4, s.absolute_expires_at), ?5
    FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
    WHERE t.token_hash = ?6 AND t.rotated_at IS NULL AND t.revoked_at IS NULL
        AND t.expires_at > ?3 AND s.revoked_at IS NULL;
UPDATE refresh_tokens SET rotated_at = ?3
    WHERE token_hash = ?6 AND rotated_at IS NULL
        AND EXISTS (SELECT 1 FROM refresh_tokens WHERE id = ?1);
UPDATE sessions SET last_used_at = ?3, user_agent = ?5
    WHERE id = (SELECT session_id FROM refresh_tokens WHERE id = ?1);
SELECT t.session_id, s.user_id, t.expires_at
    FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.id = ?1;
COMMIT;";

async fn rotate_on_sqlite(
    pool: sqlx::SqlitePool,
    rotation: Rotation,
) -> Result<Option<Rotated>, StorageError> {
    // The script opens a transaction the driver does not know about. Were
    // this future dropped half-way (a client hanging up), the worker would
    // stop between statements and the connection return to the pool inside
    // that transaction; a task of its own always runs to the end.
    let task = tokio::spawn(async move {
        let _writer = sqlite_writer_lock().lock_owned().await;
        let mut conn = pool.acquire().await?;
        // fetch_all, never fetch_one/fetch_optional: those stop the script
        // at the first row, before its COMMIT.
        let rows = sqlx::query(SQLITE_ROTATION)
            .bind(rotation.successor_id)
            .bind(rotation.successor_hash)
            .bind(rotation.now)
            .bind(rotation.successor_expires_at)
            .bind(rotation.user_agent)
            .bind(rotation.presented_hash)
            .fetch_all(&mut *conn)
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                // The script stopped at the failed statement, perhaps inside
                // its transaction: closing the connection rolls that back
                // and keeps the connection out of the pool.
                let _ = conn.close().await;
                return Err(e);
            }
        };
        rows.first()
            .map(|row| {
                Ok(Rotated {
                    session_id: row.try_get(0)?,
                    user_id: row.try_get(1)?,
                    successor_expires_at: row.try_get(2)?,
                })
            })
            .transpose()
    });
    match task.await {
        Ok(result) => result.map_err(|e| DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e))).into()),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StorageError::Other(DbErr::Custom(
            "the rotation was cancelled by the runtime shutting down".to_owned(),
        ))),
    }
}

/// Locks the unrevoked session of a token, before its token: every writer
/// (rotation, logout, revocation) takes the session row first, so they
/// queue on it instead of deadlocking. Records the use (time and user agent)
/// in the same statement and returns the session; `None` when the token is
/// unknown or its session revoked.
async fn touch_session_of_token<C: ConnectionTrait>(
    db: &C,
    token_hash: &[u8],
    now: i64,
    user_agent: Option<String>,
) -> Result<Option<SessionRecord>, StorageError> {
    let session_of_token = Query::select()
        .column(refresh_token::Column::SessionId)
        .from(refresh_token::Entity)
        .and_where(refresh_token::Column::TokenHash.eq(token_hash.to_vec()))
        .to_owned();
    let update = session::Entity::update_many()
        .col_expr(session::Column::LastUsedAt, Expr::value(now))
        .col_expr(session::Column::UserAgent, Expr::value(user_agent))
        .filter(session::Column::Id.in_subquery(session_of_token.clone()))
        .filter(session::Column::RevokedAt.is_null());
    // Token hashes are unique: at most one row.
    update_one(db, update, || async {
        Ok(session::Entity::find()
            .filter(session::Column::Id.in_subquery(session_of_token))
            .one(db)
            .await?)
    })
    .await
}

/// Marks the token rotated if, and only if, it is still live, and returns
/// it. This single conditional UPDATE is what makes rotation safe under
/// concurrency on PostgreSQL and MariaDB: of N requests racing with one
/// token, exactly one changes the row.
async fn claim_for_rotation<C: ConnectionTrait>(
    db: &C,
    token_hash: &[u8],
    now: i64,
) -> Result<Option<TokenRecord>, StorageError> {
    let update = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RotatedAt, Expr::value(now))
        .filter(refresh_token::Column::TokenHash.eq(token_hash.to_vec()))
        .filter(refresh_token::Column::RotatedAt.is_null())
        .filter(refresh_token::Column::RevokedAt.is_null())
        .filter(refresh_token::Column::ExpiresAt.gt(now));
    update_one(db, update, || find_token(db, token_hash)).await
}

/// Runs an UPDATE that changes at most one row and returns that row, `None`
/// when it changed none. One statement on PostgreSQL (`UPDATE … RETURNING`):
/// every statement saved is time a row lock is held for less. MariaDB has
/// none, so there `read_back` fetches the row after the update. (SQLite
/// rotates in a script of its own and never comes here.)
async fn update_one<E, C, F, Fut>(
    db: &C,
    update: UpdateMany<E>,
    read_back: F,
) -> Result<Option<E::Model>, StorageError>
where
    E: EntityTrait,
    C: ConnectionTrait,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Option<E::Model>, StorageError>>,
{
    if db.support_returning() {
        return Ok(update.exec_with_returning(db).await?.pop());
    }
    if update.exec(db).await?.rows_affected != 1 {
        return Ok(None);
    }
    read_back().await
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
