//! Configuration: one `baton` binary, flags with environment fallbacks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::domain::SessionPolicy;
use crate::domain::accounts::Registration;
use crate::domain::service::ServiceSettings;
use crate::http::edge::EdgeLimits;

#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "Baton: short-lived JWT access tokens and rotating refresh tokens with replay detection",
    long_about = "Baton is a session service. Without a subcommand it serves the API (like `baton serve`).\n\
                  Every option can also be set through the environment variable named in its help.\n\
                  Durations accept human forms: 900s, 15m, 7d, 1h 30m."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum Command {
    /// Serve the API (the default): migrate, load keys, listen.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create a new access-token signing key and retire the current one; the
    /// old public key stays in the JWKS until every token it signed has expired.
    RotateKeys,
    /// Print this instance's OpenAPI document (JSON) to standard output.
    Openapi,
    /// Print the deliberate faults of this test build, one a line:
    /// name, checks that must fail, settings, checks to run (tab-separated).
    #[cfg(feature = "fault-injection")]
    Faults,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RegistrationSetting {
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 2s, 15m, 7d)"))
}

fn leeway(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d > SessionPolicy::MAX_LEEWAY {
        return Err("the JWT leeway may be at most 5s".to_owned());
    }
    Ok(d)
}

fn trusted_proxy(s: &str) -> Result<crate::http::client::Cidr, String> {
    s.parse()
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < Duration::from_secs(1) {
        return Err("must be at least 1s".to_owned());
    }
    Ok(d)
}

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Database URL: sqlite://PATH, postgres://USER@HOST/DB or mysql://USER@HOST/DB.
    /// Default: an SQLite file under ./data/ (created on first run).
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Address to listen on.
    #[arg(
        long,
        env = "BATON_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: SocketAddr,

    /// Life of an access token.
    #[arg(long, env = "BATON_ACCESS_TTL", default_value = "15m", value_parser = positive_duration, global = true)]
    pub access_ttl: Duration,

    /// Sliding life of a refresh token from its issue.
    #[arg(long, env = "BATON_REFRESH_TTL", default_value = "7d", value_parser = positive_duration, global = true)]
    pub refresh_ttl: Duration,

    /// Absolute life of a session from its login; no refresh token outlives it.
    #[arg(long, env = "BATON_SESSION_MAX_LIFETIME", default_value = "30d", value_parser = positive_duration, global = true)]
    pub session_max_lifetime: Duration,

    /// After a rotation, how long the rotated token still yields the same
    /// (unused) successor instead of counting as reuse. 0s = strict.
    #[arg(long, env = "BATON_REFRESH_REUSE_GRACE", default_value = "10s", value_parser = duration, global = true)]
    pub refresh_reuse_grace: Duration,

    /// Clock skew allowed on exp/nbf/iat of access tokens (at most 5s).
    #[arg(long, env = "BATON_JWT_LEEWAY", default_value = "5s", value_parser = leeway, global = true)]
    pub jwt_leeway: Duration,

    /// Origins (scheme://host:port) allowed to use the refresh cookie,
    /// comma-separated. Default: this server's own origin (BATON_BIND, as
    /// both 127.0.0.1 and localhost when bound to loopback).
    #[arg(
        long,
        env = "BATON_ALLOWED_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub allowed_origins: Vec<String>,

    /// The `iss` of access tokens and the base of `jwks_uri`. Default: http://BATON_BIND.
    #[arg(long, env = "BATON_ISSUER", global = true)]
    pub issuer: Option<String>,

    /// The `aud` of access tokens.
    #[arg(long, env = "BATON_AUDIENCE", default_value = "baton", global = true)]
    pub audience: String,

    /// Whether anyone may register (POST /auth/register).
    #[arg(
        long,
        env = "BATON_REGISTRATION",
        value_enum,
        default_value = "open",
        global = true
    )]
    pub registration: RegistrationSetting,

    /// Name of the refresh-token cookie (Path is /auth).
    #[arg(
        long,
        env = "BATON_COOKIE_NAME",
        default_value = "__Secure-baton_refresh",
        global = true
    )]
    pub cookie_name: String,

    /// Log format: human-readable or one JSON object per line.
    #[arg(
        long,
        env = "BATON_LOG_FORMAT",
        value_enum,
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,

    /// The master secret (64 hex digits or base64 of 32 bytes) that seals the
    /// signing keys and keys the successor MAC. Every instance on one
    /// database needs the same one.
    #[arg(long, env = "BATON_MASTER_KEY", hide_env_values = true, global = true)]
    pub master_key: Option<String>,

    /// File holding the master secret; generated (mode 0600) when neither it
    /// nor BATON_MASTER_KEY exists. Default: data/master.key.
    #[arg(long, env = "BATON_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,

    /// Directory of the web app to serve at / (skipped when it does not exist).
    #[arg(
        long,
        env = "BATON_STATIC_DIR",
        default_value = "frontend/dist",
        global = true
    )]
    pub static_dir: PathBuf,

    /// Throttling of login, refresh and registration: `off` disables it
    /// (benchmarks, test rigs).
    #[arg(
        long,
        env = "BATON_RATE_LIMITS",
        value_enum,
        default_value = "on",
        global = true
    )]
    pub rate_limits: Switch,

    /// Login attempts per client address per minute, over all accounts
    /// (against password spraying).
    #[arg(
        long,
        env = "BATON_RATE_LIMIT_LOGIN_ATTEMPTS_PER_ADDRESS",
        default_value_t = 30,
        global = true
    )]
    pub rate_limit_login_attempts_per_address: u32,

    /// Failed logins per account from one client address per minute; that
    /// address then waits for that account. The owner elsewhere does not.
    #[arg(
        long,
        env = "BATON_RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT_AND_ADDRESS",
        default_value_t = 5,
        global = true
    )]
    pub rate_limit_login_failures_per_account_and_address: u32,

    /// Failed logins per account from all addresses per minute; above it,
    /// every address that already failed on that account waits, while an
    /// address without failures still gets its attempt.
    #[arg(
        long,
        env = "BATON_RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT",
        default_value_t = 20,
        global = true
    )]
    pub rate_limit_login_failures_per_account: u32,

    /// Refreshes per client address per minute, valid or not.
    #[arg(
        long,
        env = "BATON_RATE_LIMIT_REFRESHES_PER_ADDRESS",
        default_value_t = 120,
        global = true
    )]
    pub rate_limit_refreshes_per_address: u32,

    /// Registrations per client address per hour.
    #[arg(
        long,
        env = "BATON_RATE_LIMIT_REGISTRATIONS_PER_ADDRESS",
        default_value_t = 20,
        global = true
    )]
    pub rate_limit_registrations_per_address: u32,

    /// Where the counters live: `auto` (the database when DATABASE_URL is
    /// PostgreSQL or MariaDB, so every instance shares them; memory for
    /// SQLite), `memory` (per instance), `database`, or the URL of Redis
    /// (redis://HOST:PORT) or of a separate postgres:// or mysql:// database.
    #[arg(
        long,
        env = "BATON_RATE_LIMIT_STORE",
        default_value = "auto",
        hide_env_values = true,
        global = true
    )]
    pub rate_limit_store: String,

    /// Bound on one answer of the shared store; past it, or on an error,
    /// the check counts in this instance's memory (with a warning).
    #[arg(long, env = "BATON_RATE_LIMIT_STORE_TIMEOUT", default_value = "500ms", value_parser = duration, global = true)]
    pub rate_limit_store_timeout: Duration,

    /// Most counters held in memory (the memory store, and the fallback of
    /// a shared one); at the cap, the counters closest to their reset go.
    #[arg(
        long,
        env = "BATON_RATE_LIMIT_MEMORY_ENTRIES",
        default_value_t = 100_000,
        global = true
    )]
    pub rate_limit_memory_entries: usize,

    /// Header carrying the client address when behind trusted proxies (e.g.
    /// X-Forwarded-For, or Forwarded for RFC 7239 `for=`). Every line of it
    /// is read, in order. Unset: the peer address.
    #[arg(long, env = "BATON_TRUSTED_CLIENT_IP_HEADER", global = true)]
    pub trusted_client_ip_header: Option<String>,

    /// How many proxies in front of the service append to that header: the
    /// client is that many entries from its end.
    #[arg(
        long,
        env = "BATON_TRUSTED_PROXY_HOPS",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=16),
        global = true
    )]
    pub trusted_proxy_hops: u32,

    /// Instead of a hop count: the proxies' address blocks, comma-separated
    /// CIDRs (10.0.0.0/8,2001:db8::/32). The header counts only when the peer
    /// is one of them; the client is the rightmost entry that is not.
    #[arg(
        long,
        env = "BATON_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = trusted_proxy,
        global = true
    )]
    pub trusted_proxies: Vec<crate::http::client::Cidr>,

    /// Maximum concurrent Argon2 computations. Default: the number of cores.
    #[arg(long, env = "BATON_HASH_CONCURRENCY", global = true)]
    pub hash_concurrency: Option<usize>,

    /// Database pool size.
    #[arg(
        long,
        env = "BATON_DB_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub db_max_connections: u32,

    /// Bound on connecting to the database and on each statement; every
    /// request is answered (503 at worst) within twice this.
    #[arg(long, env = "BATON_DB_TIMEOUT", default_value = "5s", value_parser = positive_duration, global = true)]
    pub db_timeout: Duration,

    /// How long expired or revoked refresh-token rows are kept before the
    /// background purge deletes them (rotated tokens are kept at least until
    /// they would have expired, so reuse stays detectable).
    #[arg(long, env = "BATON_TOKEN_RETENTION", default_value = "7d", value_parser = duration, global = true)]
    pub token_retention: Duration,

    /// Time between background purges of dead rows.
    #[arg(long, env = "BATON_HOUSEKEEPING_INTERVAL", default_value = "10m", value_parser = positive_duration, global = true)]
    pub housekeeping_interval: Duration,

    /// Make this instance's issuer, audience, lifetimes, grace and cookie the
    /// service's: the first instance on a database records them, and any
    /// later one whose values differ refuses to start unless this is set
    /// (for a planned change; restart the other instances with the new
    /// values too).
    #[arg(
        long,
        env = "BATON_ADOPT_SETTINGS",
        default_value_t = false,
        global = true
    )]
    pub adopt_settings: bool,
    /// A request head must arrive within this: from the accept for a
    /// connection's first request, from its first byte for later ones (408).
    #[arg(long, env = "BATON_HEADER_TIMEOUT", default_value = "10s", value_parser = positive_duration, global = true)]
    pub header_timeout: Duration,

    /// A request body must arrive within this (408), and a response write
    /// may make no progress for at most this long.
    #[arg(long, env = "BATON_BODY_TIMEOUT", default_value = "10s", value_parser = positive_duration, global = true)]
    pub body_timeout: Duration,

    /// An idle keep-alive connection is closed after this. Keep it longer
    /// than the idle timeout of a load balancer in front (60 s on AWS ALB and
    /// Google Cloud), so the balancer, not Baton, closes idle connections.
    #[arg(long, env = "BATON_KEEPALIVE_TIMEOUT", default_value = "75s", value_parser = positive_duration, global = true)]
    pub keepalive_timeout: Duration,

    /// The largest request head, request line and header fields (431).
    #[arg(
        long,
        env = "BATON_MAX_HEADER_BYTES",
        default_value_t = 16_384,
        value_parser = clap::value_parser!(u32).range(1024..=1_048_576),
        global = true
    )]
    pub max_header_bytes: u32,

    /// Concurrent connections; beyond this new ones get a 503 at once.
    /// Lowered (with a warning) to fit the open-file limit (ulimit -n).
    #[arg(
        long,
        env = "BATON_MAX_CONNECTIONS",
        default_value_t = 1024,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000),
        global = true
    )]
    pub max_connections: u32,

    /// Deliberate faults for conformance testing (debug builds with the
    /// fault-injection feature only).
    #[arg(
        long,
        env = "BATON_FAULTS",
        default_value = "",
        hide = true,
        global = true
    )]
    pub faults: String,

    /// Legal variations of the contract for conformance testing (debug builds
    /// with the fault-injection feature only; see src/variations.rs).
    #[arg(
        long,
        env = "BATON_VARIATIONS",
        default_value = "",
        hide = true,
        global = true
    )]
    pub variations: String,
}

impl Settings {
    /// Settings as they are without flags or environment (tests start here).
    pub fn defaults() -> Self {
        Cli::parse_from(["baton"]).settings
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| "sqlite://data/baton.db".to_owned())
    }

    pub fn issuer(&self) -> String {
        self.issuer
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.bind))
            .trim_end_matches('/')
            .to_owned()
    }

    pub fn allowed_origins(&self) -> Vec<String> {
        let configured: Vec<String> = self
            .allowed_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        if !configured.is_empty() {
            return configured;
        }
        let port = self.bind.port();
        let mut origins = vec![format!("http://{}", self.bind)];
        if self.bind.ip().is_loopback() {
            origins.push(format!("http://localhost:{port}"));
            origins.push(format!("http://127.0.0.1:{port}"));
        }
        origins.dedup();
        origins
    }

    pub fn policy(&self) -> SessionPolicy {
        SessionPolicy {
            access_ttl: self.access_ttl,
            leeway: self.jwt_leeway,
            refresh_ttl: self.refresh_ttl,
            session_max_lifetime: self.session_max_lifetime,
            reuse_grace: self.refresh_reuse_grace,
        }
    }

    /// The refresh cookie's `Path`: the auth prefix (CONTRACT §3: not `/`).
    pub fn cookie_path(&self) -> String {
        "/auth".to_owned()
    }

    /// What every instance on the database must agree on.
    pub fn service_settings(&self) -> ServiceSettings {
        ServiceSettings {
            issuer: self.issuer(),
            audience: self.audience.clone(),
            policy: self.policy(),
            cookie_name: self.cookie_name.clone(),
            cookie_path: self.cookie_path(),
        }
    }

    pub fn registration(&self) -> Registration {
        match self.registration {
            RegistrationSetting::Open => Registration::Open,
            RegistrationSetting::Closed => Registration::Closed,
        }
    }

    pub fn edge_limits(&self) -> EdgeLimits {
        EdgeLimits {
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            keepalive_timeout: self.keepalive_timeout,
            max_header_bytes: self.max_header_bytes as usize,
            max_connections: self.max_connections as usize,
        }
    }

    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        let s = Settings::defaults();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.access_ttl, Duration::from_secs(15 * 60));
        assert_eq!(s.refresh_ttl, Duration::from_secs(7 * 86400));
        assert_eq!(s.session_max_lifetime, Duration::from_secs(30 * 86400));
        assert_eq!(s.refresh_reuse_grace, Duration::from_secs(10));
        assert_eq!(s.jwt_leeway, Duration::from_secs(5));
        assert_eq!(s.issuer(), "http://127.0.0.1:8080");
        assert!(
            s.allowed_origins()
                .contains(&"http://localhost:8080".to_owned())
        );
        let edge = s.edge_limits();
        assert_eq!(edge.header_timeout, Duration::from_secs(10));
        assert_eq!(edge.body_timeout, Duration::from_secs(10));
        assert_eq!(edge.keepalive_timeout, Duration::from_secs(75));
        assert_eq!(edge.max_header_bytes, 16_384);
        assert_eq!(edge.max_connections, 1024);
    }

    #[test]
    fn human_durations_parse() {
        let cli = Cli::parse_from(["baton", "--access-ttl", "2s", "--refresh-ttl", "1h 30m"]);
        assert_eq!(cli.settings.access_ttl, Duration::from_secs(2));
        assert_eq!(cli.settings.refresh_ttl, Duration::from_secs(5400));
    }

    #[test]
    fn a_leeway_over_five_seconds_is_refused() {
        assert!(Cli::try_parse_from(["baton", "--jwt-leeway", "60s"]).is_err());
        assert!(Cli::try_parse_from(["baton", "--jwt-leeway", "0s"]).is_ok());
    }

    #[test]
    fn settings_may_follow_the_subcommand() {
        let cli = Cli::parse_from(["baton", "serve", "--bind", "127.0.0.1:9999"]);
        assert!(matches!(cli.command, Some(Command::Serve)));
        assert_eq!(cli.settings.bind.port(), 9999);
    }
}
