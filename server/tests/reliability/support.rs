//! What this binary adds to the API harness: the real `baton` process
//! (to kill it and signal it), a TCP proxy that can be cut, and checks read
//! straight from the database.

#![allow(dead_code)]

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait as _, DatabaseConnection, Statement};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

/// The `baton` binary cargo built for this test run.
pub fn baton_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_baton"))
}

/// How the real binary is started: its database and extra environment.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    pub database_url: String,
    pub master_key: String,
    pub env: Vec<(String, String)>,
}

impl ProcessConfig {
    pub fn new(database_url: &str) -> Self {
        Self {
            database_url: database_url.to_owned(),
            master_key: baton::domain::keys::MasterKey::generate().to_hex(),
            env: vec![("BATON_RATE_LIMITS".to_owned(), "off".to_owned())],
        }
    }

    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// A running `baton serve` on a port of its choosing (BATON_BIND port 0, read
/// back from its log). Killed (SIGKILL) when dropped.
pub struct ServerProcess {
    child: Child,
    pub port: u16,
    pub address: String,
    pub log_path: PathBuf,
    pub config: ProcessConfig,
    _work_dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts the binary and waits until `/healthz` answers (bounded).
    pub async fn start(config: &ProcessConfig) -> ServerProcess {
        Self::try_start(config)
            .await
            .unwrap_or_else(|e| panic!("starting baton: {e}"))
    }

    pub async fn try_start(config: &ProcessConfig) -> Result<ServerProcess, String> {
        let work_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let log_path = work_dir.path().join("stderr.log");
        let stderr = File::create(&log_path).map_err(|e| e.to_string())?;
        let mut command = Command::new(baton_binary());
        command
            .arg("serve")
            .current_dir(work_dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", &config.database_url)
            .env("BATON_BIND", "127.0.0.1:0")
            .env("BATON_MASTER_KEY", &config.master_key)
            .env("BATON_STATIC_DIR", "/nonexistent")
            .env("BATON_ISSUER", "http://baton.test")
            .env("BATON_HASH_CONCURRENCY", "2")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr));
        for (k, v) in &config.env {
            command.env(k, v);
        }
        let mut child = command.spawn().map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Some(port) = listening_port(&read_log(&log_path)) {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "baton exited with {status} before listening; log:\n{}",
                    read_log(&log_path)
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "baton did not listen within 60 s; log:\n{}",
                    read_log(&log_path)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let server = ServerProcess {
            child,
            port,
            address: format!("http://127.0.0.1:{port}"),
            log_path,
            config: config.clone(),
            _work_dir: work_dir,
        };
        let client = reqwest::Client::new();
        loop {
            let healthy = client
                .get(server.url("/healthz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false);
            if healthy {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err("baton never answered /healthz".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// Sends a signal by name (TERM, INT) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits (bounded) for the process to exit.
    pub async fn wait_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn listening_port(log: &str) -> Option<u16> {
    let marker = "listening on http://127.0.0.1:";
    let start = log.find(marker)? + marker.len();
    let digits: String = log[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// What the proxy does to the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forwards bytes both ways.
    Up,
    /// The database is gone: open connections are dropped, new ones refused.
    Refuse,
    /// A black hole: connections are accepted and held open, nothing passes
    /// (a network partition). Connections held in it are dropped on leaving it.
    Stall,
}

/// A TCP proxy on 127.0.0.1 in front of a database, with a switch.
pub struct Proxy {
    pub port: u16,
    mode: watch::Sender<ProxyMode>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = bind_reusable(0).expect("binding the proxy");
        let port = listener.local_addr().unwrap().port();
        let (mode, rx) = watch::channel(ProxyMode::Up);
        tokio::spawn(serve(listener, port, upstream, rx));
        Proxy { port, mode }
    }

    pub fn set(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }
}

fn bind_reusable(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(128)
}

async fn serve(
    first: TcpListener,
    port: u16,
    upstream: SocketAddr,
    mut mode: watch::Receiver<ProxyMode>,
) {
    let mut listener = Some(first);
    loop {
        let current = *mode.borrow_and_update();
        if current == ProxyMode::Refuse {
            // Closing the listener makes new connections fail with ECONNREFUSED.
            listener = None;
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        }
        let active = match listener.take() {
            Some(l) => l,
            None => {
                let mut bound = None;
                for _ in 0..100 {
                    if let Ok(l) = bind_reusable(port) {
                        bound = Some(l);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                bound.expect("re-binding the proxy port")
            }
        };
        loop {
            tokio::select! {
                accepted = active.accept() => {
                    if let Ok((client, _)) = accepted {
                        tokio::spawn(pipe(client, upstream, mode.clone()));
                    }
                }
                changed = mode.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if *mode.borrow() == ProxyMode::Refuse {
                        break;
                    }
                }
            }
        }
    }
}

async fn pipe(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<ProxyMode>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    loop {
        let current = *mode.borrow_and_update();
        match current {
            ProxyMode::Up => {
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
                    changed = mode.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                }
            }
            // Hold both ends silent until the mode changes, then drop them.
            ProxyMode::Stall => {
                let _ = mode.changed().await;
                return;
            }
            ProxyMode::Refuse => return,
        }
    }
}

/// A single number from an SQL query (COUNT(*) and the like).
pub async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("one row");
    row.try_get_by_index::<i64>(0)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The invariants of CONTRACT §3 that must hold after any crash, read
/// straight from the tables. Returns the list of violations (empty = held).
pub async fn refresh_token_invariants(db: &DatabaseConnection, now_ms: i64) -> Vec<String> {
    let live = format!("rotated_at IS NULL AND revoked_at IS NULL AND expires_at > {now_ms}");
    let checks = [
        (
            "a family with more than one live refresh token",
            format!(
                "SELECT COUNT(*) FROM (SELECT session_id FROM refresh_tokens WHERE {live} \
                 GROUP BY session_id HAVING COUNT(*) > 1) forks"
            ),
        ),
        (
            "a token with two successors (a forked family)",
            "SELECT COUNT(*) FROM (SELECT parent_id FROM refresh_tokens WHERE parent_id IS NOT NULL \
             GROUP BY parent_id HAVING COUNT(*) > 1) forks"
                .to_owned(),
        ),
        (
            "a rotated token without its successor (a torn rotation)",
            "SELECT COUNT(*) FROM refresh_tokens p WHERE p.rotated_at IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM refresh_tokens c WHERE c.parent_id = p.id)"
                .to_owned(),
        ),
        (
            "a live token in a revoked family",
            format!(
                "SELECT COUNT(*) FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
                 WHERE s.revoked_at IS NOT NULL AND t.{}",
                live.replace(" AND ", " AND t.")
            ),
        ),
        (
            "a token without its session",
            "SELECT COUNT(*) FROM refresh_tokens t LEFT JOIN sessions s ON s.id = t.session_id \
             WHERE s.id IS NULL"
                .to_owned(),
        ),
        (
            "a session without its user",
            "SELECT COUNT(*) FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE u.id IS NULL"
                .to_owned(),
        ),
    ];
    let mut violations = Vec::new();
    for (what, sql) in checks {
        let n = count(db, &sql).await;
        if n != 0 {
            violations.push(format!("{n} × {what} ({sql})"));
        }
    }
    violations
}

/// SHA-256 of the token text: how `refresh_tokens.token_hash` stores it.
pub fn token_hash(token: &str) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

/// Milliseconds since the epoch, as the tables store time.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
