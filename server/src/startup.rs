//! Wiring: settings in, a listening application out. Tests build the same
//! application on port 0 with a fresh database (see tests/api/helpers.rs).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use poem::Server;
use poem::listener::{Acceptor, AcceptorExt, Listener, TcpListener};
use sea_orm::DatabaseConnection;

use crate::config::{Settings, Switch};
use crate::domain::access_token::AccessTokens;
use crate::domain::accounts::Accounts;
use crate::domain::housekeeping::Housekeeping;
use crate::domain::keys::{KeyRing, MasterKey};
use crate::domain::password::PasswordHasher;
use crate::domain::sessions::Sessions;
use crate::domain::{Clock, SystemClock};
use crate::faults::Faults;
use crate::http::state::{AppState, HttpSettings};
use crate::http::throttle::{Limit, Limits, Throttle};
use crate::storage::{self, PoolSettings};

/// How long in-flight requests may take to finish after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Resolves the master secret: BATON_MASTER_KEY, else the key file, else a
/// new key written to the key file (mode 0600).
pub fn load_master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(text) = &settings.master_key {
        return MasterKey::parse(text).context("BATON_MASTER_KEY");
    }
    let path = settings
        .master_key_file
        .clone()
        .unwrap_or_else(|| PathBuf::from("data/master.key"));
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the master key file {}", path.display()))?;
        return MasterKey::parse(&text)
            .with_context(|| format!("the master key file {}", path.display()));
    }
    let key = MasterKey::generate();
    write_secret_file(&path, &key.to_hex())?;
    tracing::warn!(
        path = %path.display(),
        "no master key was configured: generated one and saved it (mode 0600); \
         keep it safe and give the same key to every instance on this database"
    );
    Ok(key)
}

fn write_secret_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating the master key file {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    Ok(())
}

/// Creates the directory of an SQLite database file, so the default
/// `sqlite://data/baton.db` works on a fresh clone.
fn prepare_sqlite_path(url: &str) -> anyhow::Result<()> {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok(());
    };
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the database directory {}", parent.display()))?;
    }
    Ok(())
}

/// Connects to the configured database and applies the migrations.
pub async fn open_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.database_url();
    prepare_sqlite_path(&url)?;
    let pool = PoolSettings {
        max_connections: settings.db_max_connections,
        connect_timeout: settings.db_timeout,
        statement_timeout: settings.db_timeout,
    };
    let db = storage::connect(&url, &pool)
        .await
        .with_context(|| format!("connecting to the database ({})", redact_url(&url)))?;
    storage::migrate(&db).await.context("applying migrations")?;
    Ok(db)
}

/// The URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

pub struct Application {
    acceptor: poem::listener::BoxAcceptor,
    port: u16,
    state: AppState,
    static_dir: Option<PathBuf>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Opens the database, loads the keys and binds the listener.
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let faults = Faults::parse(&settings.faults).map_err(anyhow::Error::msg)?;
        if !faults.is_empty() {
            tracing::warn!(faults = ?faults.names(), "DELIBERATE FAULTS ARE ENABLED: this server breaks the contract on purpose");
        }
        if settings.rate_limits == Switch::Off {
            tracing::warn!(
                "rate limits are off (BATON_RATE_LIMITS=off): for benchmarks and test rigs only"
            );
        }
        let master = load_master_key(&settings)?;
        let db = open_database(&settings).await?;
        let keys = KeyRing::open(db.clone(), master.clone(), clock.clone())
            .await
            .context("loading the signing keys")?;
        let policy = settings.policy();
        let issuer = settings.issuer();
        let access_tokens = AccessTokens::new(
            keys.clone(),
            clock.clone(),
            policy.clone(),
            issuer.clone(),
            settings.audience.clone(),
            faults.clone(),
        );
        let hasher = PasswordHasher::new(settings.hash_concurrency());
        hasher.warm_up().await?;
        let accounts = Accounts::new(db.clone(), hasher, clock.clone(), settings.registration());
        let rotations = storage::rotation::Rotations::open(&db, settings.db_timeout)
            .context("starting the rotation writer")?;
        let sessions = Sessions::new(
            db.clone(),
            rotations,
            clock.clone(),
            policy.clone(),
            master.successor_key(),
            access_tokens,
            faults.clone(),
        );
        let minute = Duration::from_secs(60);
        let limits = Limits {
            login_per_account: Limit {
                max: settings.rate_limit_login_per_account,
                window: minute,
            },
            login_per_ip: Limit {
                max: settings.rate_limit_login_per_ip,
                window: minute,
            },
            refresh_per_ip: Limit {
                max: settings.rate_limit_refresh_per_ip,
                window: minute,
            },
            register_per_ip: Limit {
                max: settings.rate_limit_register_per_ip,
                window: Duration::from_secs(3600),
            },
        };
        let throttle = Throttle::new(settings.rate_limits == Switch::On, limits, clock.clone());
        let state = AppState {
            db,
            accounts,
            sessions,
            keys: keys.clone(),
            settings: Arc::new(HttpSettings {
                cookie_name: settings.cookie_name.clone(),
                cookie_path: "/auth".to_owned(),
                allowed_origins: settings.allowed_origins(),
                issuer,
                audience: settings.audience.clone(),
                policy,
                trusted_client_ip_header: settings.trusted_client_ip_header.clone(),
                request_timeout: settings.db_timeout * 2,
            }),
            throttle,
            clock: clock.clone(),
            faults,
            metrics: Arc::default(),
        };
        let acceptor = TcpListener::bind(settings.bind)
            .into_acceptor()
            .await
            .with_context(|| format!("binding {}", settings.bind))?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .context("the listener has no address")?;
        let housekeeping_task = Housekeeping {
            retention: settings.token_retention,
            batch: 500,
            interval: settings.housekeeping_interval,
        }
        .spawn(state.db.clone(), state.clock.clone());
        let static_dir =
            Some(settings.static_dir.clone()).filter(|d| d.join("index.html").is_file());
        Ok(Self {
            acceptor: acceptor.boxed(),
            port,
            state,
            static_dir,
            background: vec![keys.spawn_reloader(), housekeeping_task],
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests
    /// (bounded) and closes the pool.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let db = self.state.db.clone();
        let background = self.background;
        let app = crate::http::app(self.state, self.static_dir);
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, shutdown, Some(SHUTDOWN_GRACE))
            .await;
        background.iter().for_each(tokio::task::JoinHandle::abort);
        let _ = db.close().await;
        result
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// `baton serve`.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let bind = settings.bind;
    let app = Application::build(settings, Arc::new(SystemClock)).await?;
    let base = format!("http://{}:{}", bind.ip(), app.port());
    tracing::info!("listening on {base} (API reference: {base}/docs)");
    app.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// `baton rotate-keys`.
pub async fn rotate_keys(settings: Settings) -> anyhow::Result<String> {
    let master = load_master_key(&settings)?;
    let db = open_database(&settings).await?;
    let kid = crate::domain::keys::rotate_signing_key(
        &db,
        &master,
        SystemClock.now(),
        settings.access_ttl,
        settings.jwt_leeway,
    )
    .await?;
    Ok(kid)
}
