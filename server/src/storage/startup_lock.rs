//! The startup lock: what must happen once per database — migrations, the
//! first signing key, recording the service's settings — runs under a lock
//! the database itself provides, so any number of instances started at the
//! same moment on a fresh database queue instead of racing (PostgreSQL's
//! concurrent `CREATE TABLE` fails on `pg_type_typname_nsp_index`, SQLite's on
//! `seaql_migrations.version`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sea_orm::sqlx;
use sea_orm::{DatabaseConnection, DbBackend, DbErr};

use super::StorageError;

/// How often a waiting instance tries the lock again. Polling (rather than a
/// blocking wait) keeps every statement short, under the statement timeout
/// the pool sets on every connection.
const RETRY_EVERY: Duration = Duration::from_millis(100);

/// One fixed key for `pg_try_advisory_lock`: advisory locks are scoped to the
/// database, so instances of other databases on the same server never wait.
const POSTGRES_LOCK_KEY: i64 = 0x6261_746f_6e5f_7374; // "baton_st"

/// MariaDB's `GET_LOCK` is server-wide: the name carries the database's.
const MARIADB_LOCK_NAME: &str = "CONCAT('baton-startup:', DATABASE())";

/// Held while the startup work runs; `release` gives it up (dropping it does
/// too, when its connection or file closes).
pub struct StartupLock {
    held: Held,
}

enum Held {
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
    MySql(sqlx::pool::PoolConnection<sqlx::MySql>),
    File(std::fs::File),
    Nothing,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupLockError {
    #[error(
        "another instance has held the startup lock of this database for over {0:?}; \
         if none is starting, check for a stuck process"
    )]
    TimedOut(Duration),
    #[error("taking the startup lock: {0}")]
    Storage(#[from] StorageError),
    #[error("taking the startup lock file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn sqlx_err(e: sqlx::Error) -> StorageError {
    StorageError::from(DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e.into())))
}

/// Takes the startup lock of a PostgreSQL or MariaDB `db`, waiting at most
/// `patience` for an instance that holds it. SQLite's lock is a file, taken
/// with `lock_file` before connecting; here it is nothing.
pub async fn acquire(
    db: &DatabaseConnection,
    patience: Duration,
) -> Result<StartupLock, StartupLockError> {
    let deadline = Instant::now() + patience;
    let held = match db.get_database_backend() {
        DbBackend::Postgres => {
            let mut conn = db
                .get_postgres_connection_pool()
                .acquire()
                .await
                .map_err(sqlx_err)?;
            loop {
                let (taken,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                    .bind(POSTGRES_LOCK_KEY)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(sqlx_err)?;
                if taken {
                    break Held::Postgres(conn);
                }
                wait_or_give_up(deadline, patience).await?;
            }
        }
        DbBackend::MySql => {
            let mut conn = db
                .get_mysql_connection_pool()
                .acquire()
                .await
                .map_err(sqlx_err)?;
            let sql = format!("SELECT GET_LOCK({MARIADB_LOCK_NAME}, 0)");
            loop {
                let (taken,): (Option<i64>,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(sqlx_err)?;
                if taken == Some(1) {
                    break Held::MySql(conn);
                }
                wait_or_give_up(deadline, patience).await?;
            }
        }
        _ => Held::Nothing,
    };
    Ok(StartupLock { held })
}

/// Takes the startup lock of an SQLite database: an `flock` on `path` (a
/// file beside the database), waiting at most `patience`.
pub async fn lock_file(path: PathBuf, patience: Duration) -> Result<StartupLock, StartupLockError> {
    let deadline = Instant::now() + patience;
    let file = crate::files::private_file(&path).map_err(|source| StartupLockError::File {
        path: path.clone(),
        source,
    })?;
    loop {
        match file.try_lock() {
            Ok(()) => {
                return Ok(StartupLock {
                    held: Held::File(file),
                });
            }
            Err(std::fs::TryLockError::WouldBlock) => wait_or_give_up(deadline, patience).await?,
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(StartupLockError::File { path, source });
            }
        }
    }
}

async fn wait_or_give_up(deadline: Instant, patience: Duration) -> Result<(), StartupLockError> {
    if Instant::now() >= deadline {
        return Err(StartupLockError::TimedOut(patience));
    }
    tokio::time::sleep(RETRY_EVERY).await;
    Ok(())
}

impl StartupLock {
    /// Gives the lock up for the next instance.
    pub async fn release(self) {
        match self.held {
            Held::Postgres(mut conn) => {
                let released = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(POSTGRES_LOCK_KEY)
                    .execute(&mut *conn)
                    .await;
                if released.is_err() {
                    // A session lock dies with its connection: close it.
                    let _ = conn.close().await;
                }
            }
            Held::MySql(mut conn) => {
                let sql = format!("SELECT RELEASE_LOCK({MARIADB_LOCK_NAME})");
                let released = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *conn)
                    .await;
                if released.is_err() {
                    let _ = conn.close().await;
                }
            }
            Held::File(file) => {
                let _ = file.unlock();
            }
            Held::Nothing => {}
        }
    }
}
