//! The SQLite rotation writer: one thread, one rusqlite connection, group
//! commit. SQLite admits one writer at a time and a commit costs a WAL
//! append; through sqlx each statement of a rotation was a hop between the
//! runtime and the connection's worker thread while the write lock was held
//! (docs/BENCHMARKS.md round 4). Here the rotations that queue up while one
//! batch commits all go into the next transaction, each in a savepoint of
//! its own: one that fails is rolled back alone and the others commit.
//! Answers go out only after the COMMIT, so nothing is acknowledged that a
//! crash could take back.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};
use sea_orm::DbErr;
use tokio::sync::oneshot;

use super::{FactsRow, facts_sql, presented_token};
use crate::domain::rotation::{Decision, RotationOutcome, RotationRequest, decide};
use crate::storage::{StorageError, sqlite_out_of_resources, sqlite_writer_lock};

/// At most this many rotations share a transaction: bounds the time any
/// one waits for the batch's commit.
#[doc(hidden)]
pub const MAX_BATCH: usize = 64;

// The writer's SQL, public (hidden) for the raw floor of benches/floors.rs,
// which runs these very statements without the server around them.

/// Opens a batch's transaction (taking SQLite's write lock at once).
#[doc(hidden)]
pub const BEGIN: &str = "BEGIN IMMEDIATE";
#[doc(hidden)]
pub const COMMIT: &str = "COMMIT";
#[doc(hidden)]
pub const ROLLBACK: &str = "ROLLBACK";
/// Each rotation of a batch runs in this savepoint.
#[doc(hidden)]
pub const SAVEPOINT: &str = "SAVEPOINT rotation";
#[doc(hidden)]
pub const RELEASE: &str = "RELEASE rotation";
#[doc(hidden)]
pub const ROLLBACK_TO: &str = "ROLLBACK TO rotation";
/// Spends the presented token: ?1 now, ?2 its id.
#[doc(hidden)]
pub const SPEND: &str = "UPDATE refresh_tokens SET rotated_at = ?1 WHERE id = ?2";
/// Touches the session: ?1 now, ?2 user agent, ?3 session id.
#[doc(hidden)]
pub const TOUCH: &str = "UPDATE sessions SET last_used_at = ?1, user_agent = ?2 WHERE id = ?3";
/// Stores the successor: ?1 id, ?2 session id, ?3 parent (the presented
/// token's id), ?4 hash, ?5 issued, ?6 expires, ?7 user agent.
#[doc(hidden)]
pub const INSERT_SUCCESSOR: &str = "INSERT INTO refresh_tokens \
         (id, session_id, parent_id, token_hash, issued_at, expires_at, user_agent) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

type Reply = oneshot::Sender<Result<RotationOutcome, StorageError>>;

struct Job {
    request: RotationRequest,
    reply: Reply,
}

enum Message {
    Rotate(Job),
    /// Finish the batch, close the connection, then say so.
    Close(oneshot::Sender<()>),
}

/// The handle to the writer thread; it stops when the last handle is gone
/// or when told to close.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Message>,
}

impl Writer {
    pub(super) fn start(path: &Path, busy_timeout: Duration) -> Result<Self, StorageError> {
        let conn = open(path, busy_timeout).map_err(storage_error)?;
        // Writes through sea-orm on the same file take this lock too, so
        // they queue behind a batch instead of sleeping in the busy handler.
        let lock = sqlite_writer_lock(path);
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("baton-sqlite-writer".to_owned())
            .spawn(move || {
                // `run` owns the connection: it is closed when `run` returns.
                if let Some(closed) = run(conn, &queue, &lock) {
                    let _ = closed.send(());
                }
            })
            .map_err(|e| StorageError::Other(DbErr::Custom(format!("starting the writer: {e}"))))?;
        Ok(Self { jobs })
    }

    pub(super) async fn rotate(
        &self,
        request: RotationRequest,
    ) -> Result<RotationOutcome, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Message::Rotate(Job { request, reply }))
            .map_err(|_| stopped())?;
        // A request that is dropped meanwhile changes nothing here: the
        // rotation still commits (or not) as a whole, its answer unread.
        answer.await.map_err(|_| stopped())?
    }
}

impl Writer {
    /// Closes the writer's connection (at shutdown: SQLite checkpoints and
    /// removes the write-ahead log when its last connection closes). Later
    /// rotations are refused as unavailable.
    pub(super) async fn close(&self) {
        let (closed, done) = oneshot::channel();
        if self.jobs.send(Message::Close(closed)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
        }
    }
}

fn stopped() -> StorageError {
    StorageError::Unavailable(DbErr::Custom("the SQLite writer has stopped".to_owned()))
}

/// The pool's settings (storage::connect): WAL, synchronous=NORMAL, foreign
/// keys, the same busy timeout. Public (hidden) for benches/floors.rs.
#[doc(hidden)]
pub fn open(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

fn run(
    mut conn: Connection,
    queue: &mpsc::Receiver<Message>,
    lock: &tokio::sync::Mutex<()>,
) -> Option<oneshot::Sender<()>> {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut closing = None;
    // Blocks for the first job of a batch; the rest are whatever queued up
    // meanwhile. Ends when every handle is dropped, or when told to close.
    while closing.is_none() {
        match queue.recv() {
            Ok(Message::Rotate(job)) => batch.push(job),
            Ok(Message::Close(closed)) => return Some(closed),
            Err(_) => return None,
        }
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(Message::Rotate(job)) => batch.push(job),
                Ok(Message::Close(closed)) => {
                    closing = Some(closed);
                    break;
                }
                Err(_) => break,
            }
        }
        let results = {
            let _writer = lock.blocking_lock();
            commit_batch(&mut conn, &batch)
        };
        for (job, result) in batch.drain(..).zip(results) {
            let _ = job.reply.send(result);
        }
    }
    closing
}

/// Runs every rotation of the batch in one transaction, each in a savepoint.
fn commit_batch(
    conn: &mut Connection,
    batch: &[Job],
) -> Vec<Result<RotationOutcome, StorageError>> {
    let all_failed = |conn: &Connection, e: rusqlite::Error| {
        let _ = conn.execute_batch(ROLLBACK);
        let message = e.to_string();
        tracing::warn!(error = %message, rotations = batch.len(), "a batch of rotations failed");
        batch
            .iter()
            .map(|_| Err(storage_error_text(&e, &message)))
            .collect()
    };
    if let Err(e) = conn.execute_batch(BEGIN) {
        return all_failed(conn, e);
    }
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        match isolated(conn, &job.request) {
            Ok(result) => results.push(result),
            Err(e) => return all_failed(conn, e),
        }
    }
    match conn.execute_batch(COMMIT) {
        Ok(()) => results,
        Err(e) => all_failed(conn, e),
    }
}

/// One rotation in a savepoint: its own failure is its answer and undoes
/// only its writes. `Err` only when the savepoint itself failed, which
/// spoils the whole transaction. Public (hidden) for benches/floors.rs.
#[doc(hidden)]
pub fn isolated(
    conn: &Connection,
    request: &RotationRequest,
) -> rusqlite::Result<Result<RotationOutcome, StorageError>> {
    conn.prepare_cached(SAVEPOINT)?.execute([])?;
    match rotate_one(conn, request) {
        Ok(outcome) => {
            conn.prepare_cached(RELEASE)?.execute([])?;
            Ok(Ok(outcome))
        }
        Err(e) => {
            conn.prepare_cached(ROLLBACK_TO)?.execute([])?;
            conn.prepare_cached(RELEASE)?.execute([])?;
            Ok(Err(storage_error(e)))
        }
    }
}

fn rotate_one(conn: &Connection, request: &RotationRequest) -> rusqlite::Result<RotationOutcome> {
    let presented = conn
        .prepare_cached(&facts_sql("?1", "?2"))?
        .query_row(
            params![&request.presented.0[..], &request.successor.0[..]],
            |row| -> rusqlite::Result<FactsRow> {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                    row.get(8)?,
                    row.get(9)?,
                    row.get(10)?,
                    row.get(11)?,
                    row.get(12)?,
                ))
            },
        )
        .optional()?
        .map(presented_token);
    let presented_id = presented.as_ref().map(|p| p.token_id.clone());
    let (family, successor) = match decide(presented, request) {
        Decision::Refuse(outcome) => return Ok(outcome),
        Decision::Rotate { family, successor } => (family, successor),
    };
    let now = request.now.as_millis();
    conn.prepare_cached(SPEND)?
        .execute(params![now, presented_id])?;
    conn.prepare_cached(TOUCH)?
        .execute(params![now, request.user_agent, family.session_id])?;
    conn.prepare_cached(INSERT_SUCCESSOR)?.execute(params![
        request.successor_id,
        family.session_id,
        presented_id,
        &request.successor.0[..],
        successor.issued_at.as_millis(),
        successor.expires_at.as_millis(),
        request.user_agent,
    ])?;
    Ok(RotationOutcome::Rotated { family, successor })
}

fn storage_error(e: rusqlite::Error) -> StorageError {
    let message = e.to_string();
    storage_error_text(&e, &message)
}

/// Sorted like sqlx's errors (storage::StorageError::from).
fn storage_error_text(e: &rusqlite::Error, message: &str) -> StorageError {
    use rusqlite::ErrorCode;
    const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
    const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;
    const SQLITE_BUSY_SNAPSHOT: i32 = 517;
    let db = DbErr::Custom(format!("sqlite: {message}"));
    match e.sqlite_error() {
        Some(f)
            if matches!(
                f.extended_code,
                SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY
            ) =>
        {
            StorageError::UniqueViolation(db)
        }
        Some(f) if f.extended_code == SQLITE_BUSY_SNAPSHOT => StorageError::Conflict(db),
        Some(f) if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StorageError::Unavailable(db)
        }
        // A full disk or an I/O error, as for the pool's writes.
        Some(f) if sqlite_out_of_resources(f.extended_code) => StorageError::Unavailable(db),
        _ => StorageError::Other(db),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_database_is_unavailable_for_the_writer_too() {
        let conn = Connection::open_in_memory().expect("an in-memory database");
        conn.execute_batch("CREATE TABLE t (v BLOB)")
            .expect("a table");
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .expect("the page count");
        let cap: i64 = conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
                row.get(0)
            })
            .expect("a cap at the current size");
        assert_eq!(cap, pages);
        let full = conn
            .execute("INSERT INTO t (v) VALUES (zeroblob(65536))", [])
            .expect_err("a row larger than the cap allows");
        assert_eq!(
            full.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DiskFull)
        );
        assert!(
            matches!(storage_error(full), StorageError::Unavailable(_)),
            "SQLITE_FULL is sorted as unavailable"
        );
    }
}
