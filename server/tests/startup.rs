//! Start-up as operators meet it, on the real binary: several instances
//! started at the same moment on one fresh database, instances that disagree
//! about the service's settings, and the files the service leaves on disk.

mod common;
#[path = "api/helpers.rs"]
mod helpers;

use common::BatonProcess;
use helpers::{Backend, TestDatabase};
use serde_json::Value;

async fn jwks(server: &BatonProcess) -> Value {
    reqwest::get(server.url("/.well-known/jwks.json"))
        .await
        .expect("the JWKS answers")
        .json()
        .await
        .expect("the JWKS is JSON")
}

/// Three instances spawned together on one fresh database (and one data
/// directory, so they also race to create the master key) all come up and
/// publish the same single key.
async fn three_instances_started_together_publish_one_key(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = database.url.clone();
    let mut servers: Vec<BatonProcess> = (0..3)
        .map(|_| BatonProcess::spawn(dir.path(), &[("DATABASE_URL", url.as_str())]))
        .collect();
    for server in &mut servers {
        server.wait_until_listening();
    }
    let first = jwks(&servers[0]).await;
    assert_eq!(
        first["keys"].as_array().unwrap().len(),
        1,
        "one key: {first}"
    );
    for server in &servers[1..] {
        assert_eq!(
            jwks(server).await,
            first,
            "every instance publishes the same JWKS"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_started_together_on_a_fresh_sqlite_database_publish_one_key() {
    three_instances_started_together_publish_one_key(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_started_together_on_a_fresh_postgres_database_publish_one_key() {
    three_instances_started_together_publish_one_key(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_started_together_on_a_fresh_mariadb_database_publish_one_key() {
    three_instances_started_together_publish_one_key(Backend::MariaDb).await;
}

#[test]
fn an_instance_with_another_issuer_refuses_to_start_and_names_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    let _first = BatonProcess::start(dir.path(), &[("BATON_ISSUER", "http://a.test")]);
    let mut second = BatonProcess::spawn(dir.path(), &[("BATON_ISSUER", "http://b.test")]);
    let status = second.wait_for_exit();
    assert!(!status.success());
    let logs = second.logs();
    assert!(
        logs.contains("issuer: the service has http://a.test, this instance http://b.test"),
        "the refusal names the setting and both values: {logs}"
    );
    assert!(
        logs.contains("--adopt-settings"),
        "and says how to change it: {logs}"
    );
}

#[tokio::test]
async fn an_instance_told_to_adopt_its_settings_makes_them_the_services() {
    let dir = tempfile::tempdir().unwrap();
    drop(BatonProcess::start(
        dir.path(),
        &[("BATON_REFRESH_REUSE_GRACE", "10s")],
    ));
    let adopting = BatonProcess::start(
        dir.path(),
        &[
            ("BATON_REFRESH_REUSE_GRACE", "3s"),
            ("BATON_ADOPT_SETTINGS", "true"),
        ],
    );
    let configuration: Value = reqwest::get(adopting.url("/.well-known/auth-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(configuration["refresh_reuse_grace"], 3);
    drop(adopting);
    // The new values are now the service's: an instance with them starts
    // without the flag, one with the old ones no longer does.
    drop(BatonProcess::start(
        dir.path(),
        &[("BATON_REFRESH_REUSE_GRACE", "3s")],
    ));
    let mut old = BatonProcess::spawn(dir.path(), &[("BATON_REFRESH_REUSE_GRACE", "10s")]);
    assert!(!old.wait_for_exit().success());
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_its_wal_and_shm_and_the_master_key_are_private_to_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("baton.db");
    let url = format!("sqlite://{}", db.display());
    let key = data.join("master.key");
    let server = BatonProcess::start(
        dir.path(),
        &[
            ("DATABASE_URL", url.as_str()),
            ("BATON_MASTER_KEY_FILE", key.to_str().unwrap()),
        ],
    );
    // A write, so that the write-ahead log and its index exist.
    let registered = reqwest::Client::new()
        .post(server.url("/auth/register"))
        .json(&serde_json::json!({"email": "files@example.test", "password": "password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    assert_eq!(mode(&data), 0o700, "the data directory");
    for file in ["baton.db", "baton.db-wal", "baton.db-shm", "master.key"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
}

#[cfg(unix)]
#[test]
fn a_master_key_file_readable_by_others_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut server = BatonProcess::spawn(dir.path(), &[]);
    assert!(!server.wait_for_exit().success());
    let logs = server.logs();
    assert!(
        logs.contains("mode 644") && logs.contains("chmod 600"),
        "{logs}"
    );
}
