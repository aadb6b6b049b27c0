//! Configuration: one `baton` binary, flags with environment fallbacks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::domain::SessionPolicy;
use crate::domain::accounts::Registration;

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

    /// Login attempts per account per minute.
    #[arg(
        long,
        env = "BATON_RATE_LIMIT_LOGIN_PER_ACCOUNT",
        default_value_t = 10,
        global = true
    )]
    pub rate_limit_login_per_account: u32,

    /// Login attempts per client address per minute.
    #[arg(
        long,
        env = "BATON_RATE_LIMIT_LOGIN_PER_IP",
        default_value_t = 30,
        global = true
    )]
    pub rate_limit_login_per_ip: u32,

    /// Refreshes per client address per minute.
    #[arg(
        long,
        env = "BATON_RATE_LIMIT_REFRESH_PER_IP",
        default_value_t = 120,
        global = true
    )]
    pub rate_limit_refresh_per_ip: u32,

    /// Registrations per client address per hour.
    #[arg(
        long,
        env = "BATON_RATE_LIMIT_REGISTER_PER_IP",
        default_value_t = 20,
        global = true
    )]
    pub rate_limit_register_per_ip: u32,

    /// Header carrying the client address when behind a trusted proxy (e.g.
    /// X-Forwarded-For; its last entry is used). Unset: the peer address.
    #[arg(long, env = "BATON_TRUSTED_CLIENT_IP_HEADER", global = true)]
    pub trusted_client_ip_header: Option<String>,

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

    pub fn registration(&self) -> Registration {
        match self.registration {
            RegistrationSetting::Open => Registration::Open,
            RegistrationSetting::Closed => Registration::Closed,
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
