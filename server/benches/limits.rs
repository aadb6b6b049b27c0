//! The cost of one rate-limit check in each store (issue 16): `hit` (the
//! counted event: one upsert, one MULTI/EXEC) and `peek` (two counters read)
//! on one connection after a warm-up, sequentially, on 127.0.0.1. Prints one
//! line per reachable store; unreachable ones are skipped with a message.
//! PostgreSQL and MariaDB run in a database of their own, dropped at the end;
//! Redis keys expire within a minute.
//!
//! `cargo bench -p baton-server --bench limits [-- <iterations>]` (default 2000)

use std::time::{Duration, Instant};

use baton::domain::Timestamp;
use baton::domain::throttle::{LimitKey, Policy};
use baton::storage::limits::{DatabaseStore, LimitStore, MemoryStore, RedisStore};
use sea_orm::ConnectionTrait as _;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn measure(name: &str, store: &LimitStore, iterations: usize) {
    let now = || {
        Timestamp::from_millis(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64,
        )
    };
    let window = Duration::from_secs(60);
    let run = uuid::Uuid::new_v4().to_string();
    let key = |i: usize| LimitKey::new(Policy::LoginAttempts, &[&run, &(i % 500).to_string()]);
    for i in 0..100 {
        if let Err(e) = store.hit(&key(i), window, now()).await {
            println!("{name}: SKIPPED ({e})");
            return;
        }
    }
    let mut hits = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let started = Instant::now();
        store.hit(&key(i), window, now()).await.expect("hit");
        hits.push(started.elapsed());
    }
    let mut peeks = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let started = Instant::now();
        store
            .peek(&[key(i), key(i + 1)], now())
            .await
            .expect("peek");
        peeks.push(started.elapsed());
    }
    hits.sort();
    peeks.sort();
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len() as u32;
    println!(
        "{name}: hit mean {:?} p50 {:?} p99 {:?}; peek(2) mean {:?} p50 {:?} p99 {:?} ({iterations} each)",
        mean(&hits),
        percentile(&hits, 0.5),
        percentile(&hits, 0.99),
        mean(&peeks),
        percentile(&peeks, 0.5),
        percentile(&peeks, 0.99),
    );
}

async fn with_database(admin: &str, url_of: impl Fn(&str) -> String, name: &str, n: usize) {
    let db_name = format!("baton_bench_{}", uuid::Uuid::new_v4().simple());
    let admin_db = match sea_orm::Database::connect(admin).await {
        Ok(db) => db,
        Err(e) => {
            println!("{name}: SKIPPED ({e})");
            return;
        }
    };
    admin_db
        .execute_unprepared(&format!("CREATE DATABASE {db_name}"))
        .await
        .expect("creating the bench database");
    let store = DatabaseStore::separate(&url_of(&db_name))
        .await
        .expect("a pool");
    measure(name, &LimitStore::Database(store), n).await;
    let drop = if admin.starts_with("postgres") {
        format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    } else {
        format!("DROP DATABASE IF EXISTS {db_name}")
    };
    let _ = admin_db.execute_unprepared(&drop).await;
}

#[tokio::main]
async fn main() {
    let iterations: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let memory = LimitStore::Memory(MemoryStore::new(100_000));
    measure("memory", &memory, iterations).await;
    with_database(
        "postgres://postgres@127.0.0.1:5432/postgres",
        |db| format!("postgres://postgres@127.0.0.1:5432/{db}"),
        "postgresql",
        iterations,
    )
    .await;
    with_database(
        "mysql://root@127.0.0.1:3306/test",
        |db| format!("mysql://root@127.0.0.1:3306/{db}"),
        "mariadb",
        iterations,
    )
    .await;
    let redis = RedisStore::new(redis::Client::open("redis://127.0.0.1:6379/").unwrap());
    measure("redis", &LimitStore::Redis(redis), iterations).await;
}
