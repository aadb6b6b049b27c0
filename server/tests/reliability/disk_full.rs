//! A database that has no room for a write (a full disk above all) makes the
//! service unavailable, not broken: 503 `service_unavailable` with
//! Retry-After, nothing half-written, and writes work again once there is
//! room, without a restart.
//!
//! SQLite is driven through the real server: `PRAGMA max_page_count` on the
//! pool's one connection caps the database at the size it has, so the next
//! write that needs a page fails with SQLITE_FULL (13), the code SQLite
//! returns when the disk is full. A full disk cannot be provoked safely on
//! the shared PostgreSQL and MariaDB servers (it would fill the machine's
//! disk for every user); on those, resource errors of the same kind that
//! are safe to cause, on a connection of the test's own, go through the
//! storage layer's classification, and the unit tests in src/storage/mod.rs
//! hold the disk-full codes themselves (53100, 1021, 1114).

use sea_orm::{ConnectOptions, ConnectionTrait as _, Database, DatabaseConnection, DbErr};

use baton::storage::StorageError;

use crate::helpers::*;
use crate::support::count;

/// Writes tried after the cap before giving up on seeing it bite (a login
/// adds a session and a refresh token, a registration an account; a 4 KiB
/// page holds a few dozen of either).
const MAX_WRITES: usize = 300;

/// Makes `write` (the `i`th) until one is refused: every answer before it
/// must be `ok`, the refusal a 503 problem with a numeric Retry-After.
/// Returns how many succeeded and the index of the refused one.
async fn until_refused<F, Fut>(what: &str, ok: u16, mut write: F) -> (i64, usize)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = reqwest::Response>,
{
    for i in 0..MAX_WRITES {
        let r = write(i).await;
        match r.status().as_u16() {
            status if status == ok => {}
            503 => {
                assert_service_unavailable(r, what).await;
                return (i as i64, i);
            }
            other => panic!(
                "{what} on a full database answered {other}: {}",
                r.text().await.unwrap_or_default()
            ),
        }
    }
    panic!("{MAX_WRITES} times {what} after the cap and none hit it")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_full_database_gives_503_writes_nothing_half_and_recovers() {
    // One pooled connection, so the cap set on it holds for every write the
    // server makes through the pool.
    let Some(app) = spawn_app_with(Backend::Sqlite, |s| s.db_max_connections = 1).await else {
        return;
    };
    let user = app.new_user().await;
    let tokens = app.login_body(&user).await;
    let pages = count(&app.db, "PRAGMA page_count").await;
    let cap = count(&app.db, &format!("PRAGMA max_page_count = {pages}")).await;
    assert_eq!(cap, pages, "the database is capped at the size it has");

    let (logged_in, _) =
        until_refused("a login", 200, |_| app.login(&user.email, &user.password)).await;
    // Nothing half-written: every session there is, is one a login was
    // answered 200 for, with its one refresh token.
    let logged_in = 1 + logged_in;
    assert_eq!(
        count(&app.db, "SELECT count(*) FROM sessions").await,
        logged_in,
        "the refused login left no session behind"
    );
    assert_eq!(
        count(&app.db, "SELECT count(*) FROM refresh_tokens").await,
        logged_in,
        "the refused login left no refresh token behind"
    );

    // What needs no new room keeps working.
    let r = app.sessions(&tokens.access_token).await;
    assert_eq!(r.status(), 200, "the session list of a full database");

    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let email = |i: usize| format!("full-{i}-{nonce}@example.test");
    let password = "a password long enough";
    let app = &app;
    let (registered, refused) = until_refused("a registration", 201, |i| {
        let email = email(i);
        async move { app.register(&email, password).await }
    })
    .await;
    assert_eq!(
        count(&app.db, "SELECT count(*) FROM users").await,
        1 + registered,
        "the refused registration left no account"
    );

    // Room again (the cap lifted, as when an operator frees disk space):
    // the same server takes writes, among them the one it refused.
    count(&app.db, "PRAGMA max_page_count = 1073741823").await;
    let r = app.login(&user.email, &user.password).await;
    assert_eq!(r.status(), 200, "a login once there is room again");
    let r = app.register(&email(refused), password).await;
    assert_eq!(r.status(), 201, "the refused registration can be made now");
}

/// One connection of the test's own on a fresh database.
pub(crate) async fn own_connection(backend: Backend) -> Option<(DatabaseConnection, TestDatabase)> {
    let database = TestDatabase::create(backend).await?;
    let mut options = ConnectOptions::new(database.url.clone());
    options.max_connections(1).sqlx_logging(false);
    let db = Database::connect(options).await.expect("connect");
    Some((db, database))
}

fn assert_unavailable(result: Result<impl std::fmt::Debug, DbErr>, what: &str) {
    let err = result.expect_err(what);
    let shown = err.to_string();
    match StorageError::from(err) {
        StorageError::Unavailable(_) => {}
        other => panic!("{what}: {shown} was sorted as {other:?}, not as unavailable"),
    }
}

#[tokio::test]
async fn postgres_insufficient_resources_is_unavailable() {
    let Some((db, _database)) = own_connection(Backend::Postgres).await else {
        return;
    };
    // SQLSTATE 53400 configuration_limit_exceeded, class 53 like disk_full
    // (53100): a sort that must spill past a 64 kB temp_file_limit, set for
    // this connection only.
    db.execute_unprepared("SET work_mem = '64kB'; SET temp_file_limit = '64kB'")
        .await
        .expect("session settings");
    let spill = db
        .execute_unprepared(
            "SELECT count(*) FROM (SELECT md5(g::text) AS m FROM generate_series(1, 200000) g \
             ORDER BY m) sorted",
        )
        .await;
    assert_unavailable(spill, "a sort past temp_file_limit");
}

#[tokio::test]
async fn mariadb_table_full_is_unavailable() {
    let Some((db, _database)) = own_connection(Backend::MariaDb).await else {
        return;
    };
    // Error 1114 ER_RECORD_FILE_FULL ("The table is full"), the error a
    // full disk gives InnoDB too: a MEMORY table capped at 16 KiB.
    db.execute_unprepared("SET SESSION max_heap_table_size = 16384")
        .await
        .expect("session setting");
    db.execute_unprepared("CREATE TABLE full_table (v VARCHAR(200)) ENGINE=MEMORY")
        .await
        .expect("a MEMORY table");
    db.execute_unprepared("INSERT INTO full_table (v) VALUES (REPEAT('x', 200))")
        .await
        .expect("a first row");
    let mut result = Ok(());
    for _ in 0..16 {
        result = db
            .execute_unprepared("INSERT INTO full_table (v) SELECT v FROM full_table")
            .await
            .map(|_| ());
        if result.is_err() {
            break;
        }
    }
    assert_unavailable(result, "doubling a capped MEMORY table");
}
