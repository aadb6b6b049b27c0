//! The floors that `scripts/bench` divides by (not a criterion bench; run by
//! the script, which reads the one JSON line this prints):
//!
//! - `floors sqlite <sqlite-url> <seconds>`: a plain single-row INSERT + UPDATE
//!   transaction loop on one connection, through the same SQLite build and
//!   driver the server uses (sqlx 0.9, bundled libsqlite3), with the server's
//!   settings (WAL, synchronous=NORMAL, foreign keys, busy timeout). It works
//!   in its own two tables, which it drops at the end.
//! - `floors sqlite-rotation <sqlite-url> <seconds>`: the raw floor of one
//!   refresh: the statements of the server's SQLite rotation script
//!   (`SQLITE_ROTATION` in src/storage/sessions.rs, in a `BEGIN IMMEDIATE`
//!   transaction) run back to back on one connection through the C library
//!   itself (rusqlite, prepared once, on the same libsqlite3-sys and so the
//!   same bundled SQLite as sqlx), with the pragmas of `storage::connect`.
//!   It rotates a session of its own, on the server's database file, in the
//!   server's tables, and deletes that session at the end.
//! - `floors probe <base-url> <access-token-file> <rate> <seconds>`: a paced
//!   `GET /auth/me` probe: one keep-alive connection, one request every
//!   1/rate s, each latency counted from the time the request was due (a
//!   stalled server is charged for the requests it delayed). Prints the same
//!   JSON summary as scripts/bench.d/bench.lua.
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
        Some("sqlite-rotation") if args.len() == 3 => sqlite_rotation_floor(
            &args[1],
            Duration::from_secs_f64(args[2].parse().expect("seconds")),
        ),
        Some("probe") if args.len() == 5 => paced_probe(
            &args[1],
            &args[2],
            args[3].parse().expect("requests per second"),
            Duration::from_secs_f64(args[4].parse().expect("seconds")),
        ),
        Some("argon2") if args.len() == 2 => argon2_floor(args[1].parse().expect("count"), 1),
        Some("argon2") if args.len() == 3 => argon2_floor(
            args[1].parse().expect("count"),
            args[2].parse().expect("threads"),
        ),
        _ => {
            eprintln!(
                "usage: floors sqlite <sqlite-url> <seconds> | floors sqlite-rotation <sqlite-url> <seconds> \
                 | floors probe <base-url> <access-token-file> <rate> <seconds> | floors argon2 <count> [threads]"
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

/// The statements of the server's SQLite rotation (src/storage/sessions.rs,
/// `SQLITE_ROTATION`; keep them in step), between `BEGIN IMMEDIATE` and
/// `COMMIT`. Parameters: ?1 successor id, ?2 successor hash, ?3 now, ?4 the
/// successor's sliding expiry, ?5 user agent, ?6 the presented token's hash.
const ROTATION_STATEMENTS: [&str; 4] = [
    "INSERT INTO refresh_tokens (id, session_id, parent_id, token_hash, issued_at, expires_at, user_agent)
    SELECT ?1, t.session_id, t.id, ?2, ?3, min(?4, s.absolute_expires_at), ?5
    FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
    WHERE t.token_hash = ?6 AND t.rotated_at IS NULL AND t.revoked_at IS NULL
        AND t.expires_at > ?3 AND s.revoked_at IS NULL",
    "UPDATE refresh_tokens SET rotated_at = ?3
    WHERE token_hash = ?6 AND rotated_at IS NULL
        AND EXISTS (SELECT 1 FROM refresh_tokens WHERE id = ?1)",
    "UPDATE sessions SET last_used_at = ?3, user_agent = ?5
    WHERE id = (SELECT session_id FROM refresh_tokens WHERE id = ?1)",
    "SELECT t.session_id, s.user_id, t.expires_at
    FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.id = ?1",
];

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as i64
}

/// A UUID-shaped id (36 characters, as the server's) from a number.
fn floor_id(kind: u16, n: u64) -> String {
    format!("f100{kind:04x}-0000-4000-8000-{n:012x}")
}

/// A token hash unique to this run and `n`.
fn floor_hash(run: u64, n: u64) -> [u8; 32] {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&run.to_le_bytes());
    hash[8..16].copy_from_slice(&n.to_le_bytes());
    hash
}

fn sqlite_rotation_floor(url: &str, duration: Duration) {
    use rusqlite::{Connection, params};
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .expect("a sqlite:// URL");
    let path = path.split('?').next().unwrap_or(path);
    let conn = Connection::open(path).expect("open the server's SQLite file");
    // The pragmas of storage::connect.
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("WAL");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("synchronous");
    conn.pragma_update(None, "foreign_keys", "ON")
        .expect("foreign keys");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");

    let run = std::process::id() as u64;
    let session = floor_id(0, run);
    let now = unix_ms();
    let user: String = conn
        .query_row("SELECT id FROM users LIMIT 1", [], |row| row.get(0))
        .expect("a user (run the floor on a prepared server's database)");
    conn.execute(
        "INSERT INTO sessions (id, user_id, created_at, last_used_at, absolute_expires_at)
         VALUES (?1, ?2, ?3, ?3, ?4)",
        params![session, user, now, now + 30 * 86_400_000],
    )
    .expect("the floor's session");
    conn.execute(
        "INSERT INTO refresh_tokens (id, session_id, token_hash, issued_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            floor_id(1, 0),
            session,
            floor_hash(run, 0).to_vec(),
            now,
            now + 14 * 86_400_000
        ],
    )
    .expect("the floor's first token");

    let mut begin = conn.prepare("BEGIN IMMEDIATE").expect("prepare");
    let mut commit = conn.prepare("COMMIT").expect("prepare");
    let [insert, spend, touch, select] =
        ROTATION_STATEMENTS.map(|sql| conn.prepare(sql).expect("prepare a rotation statement"));
    let (mut insert, mut spend, mut touch, mut select) = (insert, spend, touch, select);
    let started = Instant::now();
    let mut count: u64 = 0;
    let mut latencies = Vec::with_capacity(200_000);
    while started.elapsed() < duration {
        let t0 = Instant::now();
        let now = unix_ms();
        let successor = floor_id(1, count + 1);
        let successor_hash = floor_hash(run, count + 1);
        let presented = floor_hash(run, count);
        let user_agent = "floor/1";
        begin.execute([]).expect("begin");
        let inserted = insert
            .execute(params![
                successor,
                &successor_hash[..],
                now,
                now + 14 * 86_400_000,
                user_agent,
                &presented[..]
            ])
            .expect("insert the successor");
        assert_eq!(inserted, 1, "the presented token must be live");
        spend
            .execute(params![
                successor,
                &successor_hash[..],
                now,
                now,
                user_agent,
                &presented[..]
            ])
            .expect("spend the presented token");
        touch
            .execute(params![
                successor,
                &successor_hash[..],
                now,
                now,
                user_agent
            ])
            .expect("touch the session");
        let expires: i64 = select
            .query_row(params![successor], |row| row.get(2))
            .expect("read the rotation back");
        assert!(expires > now);
        commit.execute([]).expect("commit");
        latencies.push(t0.elapsed().as_micros() as u64);
        count += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop((begin, commit, insert, spend, touch, select));
    // Its tokens go with it (ON DELETE CASCADE).
    conn.execute("DELETE FROM sessions WHERE id = ?1", params![session])
        .expect("delete the floor's session");
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        r#"{{"floor":"sqlite_rotation_raw","transactions":{count},"seconds":{elapsed:.3},"per_second":{:.1},"p50_us":{},"p99_us":{}}}"#,
        count as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    );
}

/// One HTTP/1.1 keep-alive connection, enough for `GET /auth/me`: the status
/// of each response, its body read by Content-Length.
struct Probe {
    stream: std::net::TcpStream,
    buffer: Vec<u8>,
}

impl Probe {
    fn connect(address: &str) -> std::io::Result<Self> {
        let stream = std::net::TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(Self {
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    fn get(&mut self, request: &[u8]) -> std::io::Result<u16> {
        use std::io::{Read as _, Write as _};
        self.stream.write_all(request)?;
        self.buffer.clear();
        let mut chunk = [0u8; 4096];
        let invalid =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        loop {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
            let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = std::str::from_utf8(&self.buffer[..end]).map_err(|_| invalid("head"))?;
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| invalid("status line"))?;
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .ok_or_else(|| invalid("no Content-Length"))?;
            let total = end + 4 + length;
            while self.buffer.len() < total {
                let n = self.stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                self.buffer.extend_from_slice(&chunk[..n]);
            }
            return Ok(status);
        }
    }
}

fn paced_probe(base: &str, token_file: &str, rate: f64, duration: Duration) {
    let address = base
        .strip_prefix("http://")
        .expect("an http:// base URL")
        .trim_end_matches('/');
    let requests: Vec<Vec<u8>> = std::fs::read_to_string(token_file)
        .expect("the access-token file")
        .lines()
        .filter(|line| !line.is_empty())
        .map(|token| {
            format!(
                "GET /auth/me HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\r\n"
            )
            .into_bytes()
        })
        .collect();
    assert!(!requests.is_empty(), "no access tokens in {token_file}");
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut probe = Probe::connect(address).expect("connect to the server");
    let (mut non_2xx, mut read_errors, mut connect_errors) = (0u64, 0u64, 0u64);
    let mut latencies: Vec<u64> = Vec::with_capacity((rate * duration.as_secs_f64()) as usize + 1);
    let started = Instant::now();
    let mut due = started;
    let mut i = 0usize;
    while due.duration_since(started) < duration {
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        match probe.get(&requests[i % requests.len()]) {
            Ok(status) if (200..300).contains(&status) => {}
            Ok(_) => non_2xx += 1,
            Err(_) => {
                read_errors += 1;
                match Probe::connect(address) {
                    Ok(fresh) => probe = fresh,
                    Err(_) => connect_errors += 1,
                }
            }
        }
        latencies.push(due.elapsed().as_micros() as u64);
        i += 1;
        due += interval;
    }
    let elapsed = started.elapsed();
    let mean = latencies.iter().sum::<u64>() as f64 / latencies.len().max(1) as f64;
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        r#"{{"scenario":"me_probe","rate":{rate},"requests":{},"duration_us":{},"errors_connect":{connect_errors},"errors_read":{read_errors},"errors_write":0,"errors_timeout":0,"non_2xx":{non_2xx},"p50_us":{},"p90_us":{},"p99_us":{},"max_us":{},"mean_us":{mean:.1}}}"#,
        latencies.len(),
        elapsed.as_micros(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        latencies.last().copied().unwrap_or(0)
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
