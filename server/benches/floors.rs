//! The floors that `scripts/bench` divides by (not a criterion bench; run by
//! the script, which reads the one JSON line this prints):
//!
//! - `floors sqlite <sqlite-url> <seconds>`: a plain single-row INSERT + UPDATE
//!   transaction loop on one connection, through the same SQLite build and
//!   driver the server uses (sqlx 0.9, bundled libsqlite3), with the server's
//!   settings (WAL, synchronous=NORMAL, foreign keys, busy timeout). It works
//!   in its own two tables, which it drops at the end.
//! - `floors argon2 <count> [threads]`: the time of one Argon2id hash with the
//!   server's parameters (m=19456 KiB, t=2, p=1), median of `count` after a
//!   warm-up. With `threads` > 1, that many threads hash `count` each at
//!   once, as the server does under a login flood, and the line also gives
//!   the hashes per second they reached together: hashes that share a
//!   machine's memory bandwidth and caches are slower than one alone.
//!
//! `cargo bench -p baton-server --bench floors -- sqlite sqlite:///tmp/x.db 3`

use std::str::FromStr as _;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::sqlx::{self, ConnectOptions as _, Connection as _};

fn main() {
    // `cargo bench` appends `--bench`; ignore every flag.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match args.first().map(String::as_str) {
        Some("sqlite") if args.len() == 3 => {
            let secs: f64 = args[2].parse().expect("seconds");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(sqlite_floor(&args[1], Duration::from_secs_f64(secs)));
        }
        Some("argon2") if args.len() == 2 => argon2_floor(args[1].parse().expect("count"), 1),
        Some("argon2") if args.len() == 3 => argon2_floor(
            args[1].parse().expect("count"),
            args[2].parse().expect("threads"),
        ),
        _ => {
            eprintln!(
                "usage: floors sqlite <sqlite-url> <seconds> | floors argon2 <count> [threads]"
            );
            std::process::exit(2);
        }
    }
}

async fn sqlite_floor(url: &str, duration: Duration) {
    let options = SqliteConnectOptions::from_str(url)
        .expect("a sqlite:// URL")
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let mut conn = options.connect().await.expect("open the SQLite file");
    for ddl in [
        "DROP TABLE IF EXISTS bench_floor_row",
        "DROP TABLE IF EXISTS bench_floor_parent",
        "CREATE TABLE bench_floor_parent (id INTEGER PRIMARY KEY, last_used_at INTEGER NOT NULL)",
        "CREATE TABLE bench_floor_row (id TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE, \
         parent_id INTEGER NOT NULL, issued_at INTEGER NOT NULL)",
        "INSERT INTO bench_floor_parent (id, last_used_at) VALUES (1, 0)",
    ] {
        sqlx::query(ddl)
            .execute(&mut conn)
            .await
            .expect("set up the floor tables");
    }
    let started = Instant::now();
    let mut count: u64 = 0;
    let mut latencies = Vec::with_capacity(100_000);
    while started.elapsed() < duration {
        let t0 = Instant::now();
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&count.to_le_bytes());
        hash[8..16].copy_from_slice(&(started.elapsed().as_nanos() as u64).to_le_bytes());
        let mut tx = conn.begin().await.expect("begin");
        sqlx::query(
            "INSERT INTO bench_floor_row (id, hash, parent_id, issued_at) VALUES (?, ?, 1, ?)",
        )
        .bind(format!("row-{count}"))
        .bind(hash.to_vec())
        .bind(count as i64)
        .execute(&mut *tx)
        .await
        .expect("insert");
        sqlx::query("UPDATE bench_floor_parent SET last_used_at = ? WHERE id = 1")
            .bind(count as i64)
            .execute(&mut *tx)
            .await
            .expect("update");
        tx.commit().await.expect("commit");
        latencies.push(t0.elapsed().as_micros() as u64);
        count += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    for ddl in [
        "DROP TABLE bench_floor_row",
        "DROP TABLE bench_floor_parent",
    ] {
        sqlx::query(ddl)
            .execute(&mut conn)
            .await
            .expect("drop the floor tables");
    }
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        r#"{{"floor":"sqlite_insert_update_tx","transactions":{count},"seconds":{elapsed:.3},"per_second":{:.1},"p50_us":{},"p99_us":{}}}"#,
        count as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    );
}

fn argon2_floor(count: usize, threads: usize) {
    let params = Params::new(19_456, 2, 1, Some(32)).expect("OWASP parameters");
    assert_eq!(
        (params.m_cost(), params.t_cost(), params.p_cost()),
        (
            Params::DEFAULT_M_COST,
            Params::DEFAULT_T_COST,
            Params::DEFAULT_P_COST
        ),
        "the server hashes with argon2's defaults; keep this floor in step"
    );
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let hash_series = |thread: usize| {
        let salt = [0x5au8; 16];
        let mut out = [0u8; 32];
        // One block buffer per thread, reused, as the server's pool does:
        // a fresh 19 MiB allocation per hash would time the allocator (on
        // threads other than main, glibc hands it back to the system and
        // faults it in again every time, doubling the time measured).
        let mut memory = vec![Block::new(); params.block_count()];
        let mut hash_once = |i: usize| {
            let password = format!("correct horse battery staple {thread}/{i}");
            let t0 = Instant::now();
            argon2
                .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, &mut memory)
                .expect("argon2 hashing");
            t0.elapsed()
        };
        hash_once(0);
        (1..=count.max(1)).map(hash_once).collect::<Vec<Duration>>()
    };
    let threads = threads.max(1);
    let started = Instant::now();
    let mut times: Vec<Duration> = std::thread::scope(|scope| {
        let series: Vec<_> = (0..threads)
            .map(|thread| scope.spawn(move || hash_series(thread)))
            .collect();
        series
            .into_iter()
            .flat_map(|s| s.join().expect("a hashing thread"))
            .collect()
    });
    // Warm-ups included, as they ran at the same time as the others.
    let per_second = ((count.max(1) + 1) * threads) as f64 / started.elapsed().as_secs_f64();
    times.sort_unstable();
    let median = times[times.len() / 2].as_secs_f64() * 1e3;
    let min = times[0].as_secs_f64() * 1e3;
    let mean = times.iter().map(Duration::as_secs_f64).sum::<f64>() / times.len() as f64 * 1e3;
    println!(
        r#"{{"floor":"argon2id_hash","m_kib":19456,"t":2,"p":1,"threads":{threads},"hashes":{},"median_ms":{median:.2},"min_ms":{min:.2},"mean_ms":{mean:.2},"per_second":{per_second:.1}}}"#,
        times.len()
    );
}
