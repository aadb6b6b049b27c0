//! Storage: sea-orm entities, migrations and the queries the domain needs.
//! Every function takes the connection or transaction it runs on.

pub mod entities;
pub mod housekeeping;
pub mod limits;
pub mod migration;
pub mod rotation;
pub mod service_settings;
pub mod sessions;
pub mod signing_keys;
pub mod startup_lock;
pub mod users;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr};
use sea_orm_migration::MigratorTrait;

/// Why a storage call failed, in the terms the layers above care about.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database cannot be reached, did not answer in time, or has no
    /// room for the write (a full disk) (503).
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] DbErr),
    /// A unique constraint refused the write.
    #[error("a unique constraint was violated: {0}")]
    UniqueViolation(#[source] DbErr),
    /// The database broke a deadlock or serialization conflict by aborting
    /// this transaction; running it again is safe.
    #[error("the transaction conflicted with another and was aborted: {0}")]
    Conflict(#[source] DbErr),
    #[error("database error: {0}")]
    Other(#[source] DbErr),
}

impl From<DbErr> for StorageError {
    fn from(err: DbErr) -> Self {
        if matches!(
            err.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ) {
            return Self::UniqueViolation(err);
        }
        if is_unavailable(&err) {
            return Self::Unavailable(err);
        }
        if is_conflict(&err) {
            return Self::Conflict(err);
        }
        Self::Other(err)
    }
}

fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::Tls(_) => true,
                Sqlx::WorkerCrashed => true,
                Sqlx::Database(db) => {
                    // PostgreSQL: statement timeout, admin shutdown, cannot connect now.
                    // SQLite: busy / locked past the busy timeout.
                    let code = db.code().unwrap_or_default();
                    matches!(
                        code.as_ref(),
                        "57014" | "57P01" | "57P02" | "57P03" | "5" | "6"
                    ) || db.message().contains("max_statement_time")
                        || out_of_resources(db.as_ref())
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// The database refused a write for want of disk or other resources of its
/// own (a full disk above all), not because of the request: the service is
/// unavailable until an operator makes room, and retrying later is right.
fn out_of_resources(db: &dyn sea_orm::sqlx::error::DatabaseError) -> bool {
    use sea_orm::sqlx::sqlite::SqliteError;
    use sea_orm::sqlx::{mysql::MySqlDatabaseError, postgres::PgDatabaseError};
    if let Some(e) = db.try_downcast_ref::<MySqlDatabaseError>() {
        return mariadb_out_of_resources(e.number());
    }
    if let Some(e) = db.try_downcast_ref::<PgDatabaseError>() {
        return postgres_out_of_resources(e.code());
    }
    if db.try_downcast_ref::<SqliteError>().is_some() {
        // sqlx gives SQLite's extended result code.
        return db
            .code()
            .and_then(|code| code.parse().ok())
            .is_some_and(sqlite_out_of_resources);
    }
    false
}

/// SQLite: SQLITE_FULL (13: the disk, or a size limit, is full) and the
/// SQLITE_IOERR family (10, with every extended SQLITE_IOERR_* code such as
/// 778 IOERR_WRITE: the operating system refused a read or write). Takes an
/// extended or a primary result code.
pub(crate) fn sqlite_out_of_resources(code: i32) -> bool {
    const SQLITE_IOERR: i32 = 10;
    const SQLITE_FULL: i32 = 13;
    matches!(code & 0xff, SQLITE_IOERR | SQLITE_FULL)
}

/// PostgreSQL: SQLSTATE class 53, insufficient resources (53100 disk_full,
/// 53200 out_of_memory, 53300 too_many_connections, 53400
/// configuration_limit_exceeded such as temp_file_limit).
fn postgres_out_of_resources(sqlstate: &str) -> bool {
    sqlstate.len() == 5 && sqlstate.starts_with("53")
}

/// MariaDB/MySQL: error 1021 ER_DISK_FULL and 1114 ER_RECORD_FILE_FULL
/// ("The table is full"); both come with the unspecific SQLSTATE HY000.
fn mariadb_out_of_resources(number: u16) -> bool {
    const ER_DISK_FULL: u16 = 1021;
    const ER_RECORD_FILE_FULL: u16 = 1114;
    matches!(number, ER_DISK_FULL | ER_RECORD_FILE_FULL)
}

fn is_conflict(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                // MySQL/MariaDB deadlock (1213) and lock wait timeout (1205),
                // by error number: sqlx's code() is their SQLSTATE, and a lock
                // wait timeout's is the catch-all HY000. PostgreSQL
                // serialization failure / deadlock; SQLite SQLITE_BUSY_SNAPSHOT
                // (517): a read snapshot went stale.
                Sqlx::Database(db) => {
                    use sea_orm::sqlx::mysql::MySqlDatabaseError;
                    if let Some(e) = db.try_downcast_ref::<MySqlDatabaseError>() {
                        return matches!(e.number(), 1213 | 1205);
                    }
                    matches!(
                        db.code().unwrap_or_default().as_ref(),
                        "40001" | "40P01" | "517"
                    )
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// A write transaction. On SQLite it also holds its database's writer lock:
/// SQLite admits one writer at a time, and writers that race for its lock
/// sleep in its busy handler (1, 2, 5 ... 100 ms back-off) instead of
/// queueing, which made refresh latency spiky (docs/BENCHMARKS.md). Waiting
/// on an async mutex instead queues them on the runtime, in order.
pub struct WriteTransaction {
    txn: sea_orm::DatabaseTransaction,
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTransaction {
    type Target = sea_orm::DatabaseTransaction;
    fn deref(&self) -> &Self::Target {
        &self.txn
    }
}

impl WriteTransaction {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

/// The writer lock of one SQLite database file, shared by every pool and the
/// rotation writer (storage::rotation) of this process that write to it.
/// Other processes on the same file meet in SQLite's own lock.
pub(crate) fn sqlite_writer_lock(path: &Path) -> Arc<tokio::sync::Mutex<()>> {
    type Locks = HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>;
    static LOCKS: std::sync::OnceLock<std::sync::Mutex<Locks>> = std::sync::OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(lock) = locks.get(path).and_then(Weak::upgrade) {
        return lock;
    }
    // Forget the databases nobody writes to any more.
    locks.retain(|_, lock| lock.strong_count() > 0);
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    locks.insert(path.to_owned(), Arc::downgrade(&lock));
    lock
}

/// Begins a write transaction. MySQL/MariaDB default to REPEATABLE READ,
/// whose gap and next-key locks turn concurrent revocations into deadlocks;
/// READ COMMITTED is what PostgreSQL uses anyway, and every write here is a
/// conditional update that does not need more.
pub async fn begin(db: &DatabaseConnection) -> Result<WriteTransaction, StorageError> {
    use sea_orm::TransactionTrait as _;
    match db.get_database_backend() {
        sea_orm::DbBackend::MySql => Ok(WriteTransaction {
            txn: db
                .begin_with_config(Some(sea_orm::IsolationLevel::ReadCommitted), None)
                .await?,
            _writer: None,
        }),
        sea_orm::DbBackend::Sqlite => {
            let options = db.get_sqlite_connection_pool().connect_options();
            let writer = sqlite_writer_lock(options.get_filename())
                .lock_owned()
                .await;
            Ok(WriteTransaction {
                txn: db.begin().await?,
                _writer: Some(writer),
            })
        }
        _ => Ok(WriteTransaction {
            txn: db.begin().await?,
            _writer: None,
        }),
    }
}

/// Connection settings that are not part of the URL.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens a pool for `url` (`sqlite://`, `postgres://`, `mysql://`). SQLite
/// files are created on first use and run in WAL mode with a busy timeout, so
/// concurrent writers wait instead of failing.
pub async fn connect(url: &str, settings: &PoolSettings) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(settings.max_connections)
        .min_connections(0)
        .connect_timeout(settings.connect_timeout)
        .acquire_timeout(settings.connect_timeout + settings.statement_timeout)
        // A pooled SQLite connection is a file handle that cannot drop;
        // testing it before each use only added a round trip to its worker
        // thread. Network databases keep the test, to replace dead sockets.
        .test_before_acquire(!url.starts_with("sqlite:"))
        .sqlx_logging(false);
    let busy_timeout = settings.statement_timeout;
    options.map_sqlx_sqlite_opts(move |opts| {
        opts.create_if_missing(true)
            .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(busy_timeout)
            .foreign_keys(true)
    });
    let statement_ms = settings.statement_timeout.as_millis();
    options.map_sqlx_postgres_opts(move |opts| {
        opts.options([("statement_timeout", statement_ms.to_string())])
    });
    // MariaDB/MySQL have no connect-time option for a statement limit: set
    // it on every new pooled connection (MariaDB's variable, else MySQL's).
    let statement_secs = settings.statement_timeout.as_secs_f64();
    options.map_sqlx_mysql_pool_opts(move |pool| {
        pool.after_connect(move |conn, _meta| {
            Box::pin(async move {
                use sea_orm::sqlx::{AssertSqlSafe, Executor as _};
                // Numbers we formatted ourselves: nothing to inject.
                let mariadb = format!("SET SESSION max_statement_time = {statement_secs}");
                if conn.execute(AssertSqlSafe(mariadb)).await.is_err() {
                    let ms = (statement_secs * 1000.0) as u64;
                    let mysql = format!("SET SESSION max_execution_time = {ms}");
                    conn.execute(AssertSqlSafe(mysql)).await?;
                }
                Ok(())
            })
        })
    });
    let db = Database::connect(options).await?;
    Ok(db)
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migration::Migrator::up(db, None).await
}

/// True when the database answers a trivial query.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The codes of a full disk cannot be provoked on the shared PostgreSQL
    // and MariaDB servers (that would fill the machine's disk for everyone);
    // tests/reliability/disk_full.rs provokes SQLite's through the real
    // server, and a table-full (1114) and a temp_file_limit (53400) error on
    // the real PostgreSQL and MariaDB. These hold the codes themselves.

    #[test]
    fn sqlite_full_and_every_io_error_are_out_of_resources() {
        for code in [13, 10, 266, 778, 1034, 1290, 3338, 4874] {
            assert!(sqlite_out_of_resources(code), "{code}");
        }
        // Busy (5) and locked (6) are sorted elsewhere; constraint (19 and
        // its 2067 unique), corruption (11) and plain errors (1) are not
        // the disk's fault.
        for code in [0, 1, 5, 6, 11, 19, 517, 2067] {
            assert!(!sqlite_out_of_resources(code), "{code}");
        }
    }

    #[test]
    fn postgres_disk_full_and_insufficient_resources_are_out_of_resources() {
        for code in ["53000", "53100", "53200", "53300", "53400"] {
            assert!(postgres_out_of_resources(code), "{code}");
        }
        for code in ["23505", "40001", "57014", "5", "530", "XX000"] {
            assert!(!postgres_out_of_resources(code), "{code}");
        }
    }

    #[test]
    fn mariadb_disk_full_and_table_full_are_out_of_resources() {
        assert!(mariadb_out_of_resources(1021), "ER_DISK_FULL");
        assert!(mariadb_out_of_resources(1114), "ER_RECORD_FILE_FULL");
        for number in [1062, 1205, 1213, 1969, 2013] {
            assert!(!mariadb_out_of_resources(number), "{number}");
        }
    }
}
