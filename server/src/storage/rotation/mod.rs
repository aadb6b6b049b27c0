//! Rotation, the hot write: one call that claims a presented refresh token
//! and stores its successor, or says why not, decided inside the transaction
//! on every backend (domain::rotation has the rules):
//!
//! - SQLite: a writer thread of its own (rusqlite, prepared statements) that
//!   commits concurrent rotations together, a savepoint each ([`sqlite`]);
//! - PostgreSQL: one data-modifying statement, one round trip ([`postgres`]);
//! - MariaDB: a short transaction of three statements ([`mariadb`]).

mod mariadb;
mod postgres;
// Public (hidden) for benches/floors.rs, whose raw floor runs the writer's
// own statements, pragmas and rotation step.
#[doc(hidden)]
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbBackend, DbErr};

use super::StorageError;
use crate::domain::Timestamp;
use crate::domain::rotation::{
    Decision, Family, PresentedToken, RotationOutcome, RotationRequest, TokenState,
};

/// The live predicate of domain::rotation::TokenState::is_live (and the
/// session's revocation), for the statements that must claim a token in
/// SQL: `t` is the token, `s` its session, `{now}` the request's time.
/// Written once here for PostgreSQL and MariaDB; the cross-backend property
/// test holds it to the domain's answers.
const LIVE_TOKEN_SQL: &str = "t.rotated_at IS NULL AND t.revoked_at IS NULL \
     AND t.expires_at > {now} AND s.revoked_at IS NULL";

/// The live predicate with the placeholder of `now` filled in.
fn live_token_sql(now: &str) -> String {
    LIVE_TOKEN_SQL.replace("{now}", now)
}

/// The facts a rotation decides on, one row: the presented token (`t`), its
/// session (`s`) and the successor of the request (`n`), whose hash is the
/// second parameter. `{p}` and `{n}` are the placeholders of the presented
/// and the successor hash.
fn facts_sql(presented: &str, successor: &str) -> String {
    format!(
        "SELECT t.id, t.session_id, s.user_id, t.issued_at, t.expires_at, t.rotated_at, \
             t.revoked_at, s.revoked_at, s.absolute_expires_at, \
             n.issued_at, n.expires_at, n.rotated_at, n.revoked_at \
         FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
         LEFT JOIN refresh_tokens n ON n.token_hash = {successor} AND n.parent_id = t.id \
         WHERE t.token_hash = {presented}"
    )
}

/// One row of [`facts_sql`], as the columns come.
type FactsRow = (
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn presented_token(row: FactsRow) -> PresentedToken {
    let (id, session_id, user_id, issued, expires, rotated, revoked, s_revoked, s_end) = (
        row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8,
    );
    let (n_issued, n_expires, n_rotated, n_revoked) = (row.9, row.10, row.11, row.12);
    PresentedToken {
        family: Family {
            session_id,
            user_id,
        },
        token_id: id,
        state: TokenState {
            issued_at: Timestamp::from_millis(issued),
            expires_at: Timestamp::from_millis(expires),
            rotated_at: rotated.map(Timestamp::from_millis),
            revoked: revoked.is_some(),
        },
        session_revoked: s_revoked.is_some(),
        session_expires_at: Timestamp::from_millis(s_end),
        successor: match (n_issued, n_expires) {
            (Some(issued), Some(expires)) => Some(TokenState {
                issued_at: Timestamp::from_millis(issued),
                expires_at: Timestamp::from_millis(expires),
                rotated_at: n_rotated.map(Timestamp::from_millis),
                revoked: n_revoked.is_some(),
            }),
            _ => None,
        },
    }
}

/// A refusal decided on facts that a claim contradicted: the claim lost a
/// race, so the caller reads again (PostgreSQL, MariaDB).
fn refusal(decision: Decision) -> Option<RotationOutcome> {
    match decision {
        Decision::Refuse(outcome) => Some(outcome),
        Decision::Rotate { .. } => None,
    }
}

fn raced() -> StorageError {
    StorageError::Conflict(DbErr::Custom(
        "the presented token changed under its rotation".to_owned(),
    ))
}

fn sqlx_error(e: sea_orm::sqlx::Error) -> StorageError {
    DbErr::Query(sea_orm::RuntimeErr::SqlxError(Arc::new(e))).into()
}

/// Where rotations go, per database.
#[derive(Clone)]
pub struct Rotations(Backend);

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::Writer),
    Postgres(sea_orm::sqlx::PgPool),
    MariaDb(DatabaseConnection),
}

impl Rotations {
    /// Sets up rotations on `db`; on SQLite that starts the writer thread,
    /// with the pool's settings and `busy_timeout`. The thread ends when the
    /// last clone of the value is dropped.
    pub fn open(db: &DatabaseConnection, busy_timeout: Duration) -> Result<Self, StorageError> {
        Ok(Self(match db.get_database_backend() {
            DbBackend::Sqlite => {
                let pool = db.get_sqlite_connection_pool();
                let path = pool.connect_options().get_filename().to_owned();
                Backend::Sqlite(sqlite::Writer::start(&path, busy_timeout)?)
            }
            DbBackend::Postgres => Backend::Postgres(db.get_postgres_connection_pool().clone()),
            _ => Backend::MariaDb(db.clone()),
        }))
    }

    /// Closes what rotations hold of their own (the SQLite writer's
    /// connection); call it at shutdown, before closing the pool.
    pub async fn close(&self) {
        if let Backend::Sqlite(writer) = &self.0 {
            writer.close().await;
        }
    }

    /// Rotates the presented token if it is live, or says why not.
    pub async fn rotate(&self, request: RotationRequest) -> Result<RotationOutcome, StorageError> {
        match &self.0 {
            Backend::Sqlite(writer) => writer.rotate(request).await,
            Backend::Postgres(pool) => postgres::rotate(pool, &request).await,
            Backend::MariaDb(db) => mariadb::rotate(db, &request).await,
        }
    }
}
