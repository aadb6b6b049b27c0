//! The floors that `scripts/bench` divides by (not a criterion bench; run by
//! the script, which reads the one JSON line this prints):
//!
//! - `floors sqlite <sqlite-url> <seconds>`: a plain single-row INSERT + UPDATE
//!   transaction loop on one connection, through the same SQLite build and
//!   driver the server uses (sqlx 0.9, bundled libsqlite3), with the server's
//!   settings (WAL, synchronous=NORMAL, foreign keys, busy timeout). It works
//!   in its own two tables, which it drops at the end.
//! - `floors sqlite-rotation <sqlite-url> <seconds>`: the raw floor of one
//!   refresh: the server's SQLite rotation writer (src/storage/rotation/
//!   sqlite.rs) without the server around it: its connection (`open`: the
//!   same open flags, pragmas and statement cache), its transaction
//!   statements and its rotation step (`isolated`: a savepoint, the facts
//!   read, `domain::rotation::decide`, the spend, the touch, the successor's
//!   insert, all prepared and cached), called directly on one connection
//!   with no thread hop, lock or HTTP. `per_second` is one rotation per
//!   transaction, for `seconds`; `batched` then the writer's group commit at
//!   its largest batch (`MAX_BATCH` rotations of as many sessions per
//!   transaction), for as long again. It rotates sessions of its own, on
//!   the server's database file, in the server's tables, and deletes them
//!   at the end.
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
use baton::domain::Timestamp;
use baton::domain::refresh_token::RefreshTokenHash;
use baton::domain::rotation::{RotationOutcome, RotationRequest};
use baton::storage::rotation::sqlite as writer;
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

/// A token hash unique to this run, `chain` and `n`.
fn floor_hash(run: u64, chain: u64, n: u64) -> RefreshTokenHash {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&run.to_le_bytes());
    hash[8..16].copy_from_slice(&chain.to_le_bytes());
    hash[16..24].copy_from_slice(&n.to_le_bytes());
    RefreshTokenHash(hash)
}

/// One session of the floor's own and the chain of its refresh tokens: the
/// `n`th rotation presents token `n` and stores token `n + 1`.
struct Chain {
    run: u64,
    index: u64,
    next: u64,
}

impl Chain {
    fn token_id(&self, n: u64) -> String {
        floor_id(1 + self.index as u16, n)
    }

    /// The request the server would hand its writer for the next refresh.
    fn next_request(&mut self) -> RotationRequest {
        let n = self.next;
        self.next += 1;
        RotationRequest {
            presented: floor_hash(self.run, self.index, n),
            successor: floor_hash(self.run, self.index, n + 1),
            successor_id: self.token_id(n + 1),
            now: Timestamp::from_millis(unix_ms()),
            refresh_ttl: Duration::from_secs(14 * 86_400),
            user_agent: Some("floor/1".to_owned()),
        }
    }
}

/// Runs `rotations` in one of the writer's transactions, each through the
/// writer's own rotation step (a savepoint; the facts read, the decision,
/// the spend, the touch, the successor's insert), as the writer's
/// `commit_batch` does; panics unless every one rotated.
fn rotate_in_one_transaction(conn: &rusqlite::Connection, rotations: &[RotationRequest]) {
    conn.execute_batch(writer::BEGIN).expect("begin");
    for request in rotations {
        let outcome = writer::isolated(conn, request)
            .expect("the savepoint")
            .expect("the rotation");
        assert!(
            matches!(outcome, RotationOutcome::Rotated { .. }),
            "the presented token must be live: {outcome:?}"
        );
    }
    conn.execute_batch(writer::COMMIT).expect("commit");
}

/// Transactions (and rotations) timed for `duration`, with `batch`
/// rotations per transaction, one from each of the first `batch` chains.
struct Timed {
    transactions: u64,
    rotations: u64,
    seconds: f64,
    p50_us: u64,
    p99_us: u64,
}

fn time_rotations(
    conn: &rusqlite::Connection,
    chains: &mut [Chain],
    batch: usize,
    duration: Duration,
) -> Timed {
    let mut requests = Vec::with_capacity(batch);
    let mut latencies = Vec::with_capacity(200_000);
    let started = Instant::now();
    while started.elapsed() < duration {
        requests.clear();
        requests.extend(chains[..batch].iter_mut().map(Chain::next_request));
        let t0 = Instant::now();
        rotate_in_one_transaction(conn, &requests);
        latencies.push(t0.elapsed().as_micros() as u64);
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Timed {
        transactions: latencies.len() as u64,
        rotations: (latencies.len() * batch) as u64,
        seconds,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
    }
}

fn sqlite_rotation_floor(url: &str, duration: Duration) {
    use rusqlite::params;
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .expect("a sqlite:// URL");
    let path = path.split('?').next().unwrap_or(path);
    // The writer's own connection: its open flags and pragmas.
    let conn = writer::open(std::path::Path::new(path), Duration::from_secs(5))
        .expect("open the server's SQLite file");

    let run = std::process::id() as u64;
    let now = unix_ms();
    let user: String = conn
        .query_row("SELECT id FROM users LIMIT 1", [], |row| row.get(0))
        .expect("a user (run the floor on a prepared server's database)");
    // As many sessions of the floor's own as the writer batches at most, each
    // with a first live token.
    let mut chains: Vec<Chain> = (0..writer::MAX_BATCH as u64)
        .map(|index| Chain {
            run,
            index,
            next: 0,
        })
        .collect();
    let session_id = |chain: &Chain| floor_id(0, (run << 8) | chain.index);
    for chain in &chains {
        conn.execute(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, absolute_expires_at)
             VALUES (?1, ?2, ?3, ?3, ?4)",
            params![session_id(chain), user, now, now + 30 * 86_400_000],
        )
        .expect("the floor's session");
        conn.execute(
            "INSERT INTO refresh_tokens (id, session_id, token_hash, issued_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                chain.token_id(0),
                session_id(chain),
                &floor_hash(run, chain.index, 0).0[..],
                now,
                now + 14 * 86_400_000
            ],
        )
        .expect("the floor's first token");
    }

    // One rotation per transaction (the figure the refresh target divides
    // by), then the writer's group commit at its largest batch.
    let single = time_rotations(&conn, &mut chains, 1, duration);
    let batched = time_rotations(&conn, &mut chains, writer::MAX_BATCH, duration);

    // Their tokens go with them (ON DELETE CASCADE).
    for chain in &chains {
        conn.execute(
            "DELETE FROM sessions WHERE id = ?1",
            params![session_id(chain)],
        )
        .expect("delete the floor's session");
    }
    println!(
        r#"{{"floor":"sqlite_rotation_raw","transactions":{},"seconds":{:.3},"per_second":{:.1},"p50_us":{},"p99_us":{},"batched":{{"batch":{},"transactions":{},"rotations":{},"seconds":{:.3},"per_second":{:.1},"p50_us":{},"p99_us":{}}}}}"#,
        single.transactions,
        single.seconds,
        single.rotations as f64 / single.seconds,
        single.p50_us,
        single.p99_us,
        writer::MAX_BATCH,
        batched.transactions,
        batched.rotations,
        batched.seconds,
        batched.rotations as f64 / batched.seconds,
        batched.p50_us,
        batched.p99_us,
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
