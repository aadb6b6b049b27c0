//! A write that waited too long for another transaction's lock is a
//! conflict, which the caller retries, on MariaDB too: sqlx reports its
//! SQLSTATE, the catch-all HY000 for a lock wait timeout, so storage sorts
//! MariaDB errors by their number.

use sea_orm::{ConnectOptions, ConnectionTrait as _, Database, TransactionTrait as _};

use baton::storage::StorageError;

use crate::disk_full::own_connection;
use crate::helpers::Backend;

#[tokio::test]
async fn a_mariadb_lock_wait_timeout_is_a_conflict_to_retry() {
    let Some((holder, database)) = own_connection(Backend::MariaDb).await else {
        return;
    };
    holder
        .execute_unprepared("CREATE TABLE locked (id INT PRIMARY KEY) ENGINE=InnoDB")
        .await
        .expect("a table");
    holder
        .execute_unprepared("INSERT INTO locked (id) VALUES (1)")
        .await
        .expect("a row");
    let held = holder.begin().await.expect("a transaction");
    held.execute_unprepared("SELECT id FROM locked WHERE id = 1 FOR UPDATE")
        .await
        .expect("the row locked");

    let mut options = ConnectOptions::new(database.url.clone());
    options.max_connections(1).sqlx_logging(false);
    let waiter = Database::connect(options)
        .await
        .expect("a second connection");
    waiter
        .execute_unprepared("SET SESSION innodb_lock_wait_timeout = 1")
        .await
        .expect("a one-second lock wait");
    let err = waiter
        .execute_unprepared("UPDATE locked SET id = 1 WHERE id = 1")
        .await
        .expect_err("the row is locked by the other transaction");
    // Released before asserting: a failed test must still drop its database.
    held.rollback().await.expect("rollback");
    let shown = err.to_string();
    assert!(shown.contains("1205"), "not a lock wait timeout: {shown}");
    match StorageError::from(err) {
        StorageError::Conflict(_) => {}
        other => panic!("{shown} was sorted as {other:?}, not as a conflict"),
    }
}
