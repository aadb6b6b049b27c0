//! Wiring: settings in, a listening application out. Tests build the same
//! application on port 0 with a fresh database (see tests/api/helpers.rs).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sea_orm::DatabaseConnection;

use crate::config::{Settings, Switch};
use crate::domain::access_token::AccessTokens;
use crate::domain::accounts::Accounts;
use crate::domain::housekeeping::Housekeeping;
use crate::domain::keys::{KeyRing, MasterKey};
use crate::domain::password::PasswordHasher;
use crate::domain::service::ServiceSettings;
use crate::domain::session_store::{DerivedSuccessors, SessionStore, Successors};
use crate::domain::sessions::Sessions;
use crate::domain::throttle::{Limit, Limits, Throttle};
use crate::domain::{Clock, SystemClock};
use crate::files;
use crate::http::client::ClientAddressRule;
use crate::http::edge::Edge;
use crate::http::state::{AppState, HttpSettings};
use crate::storage::limits::MemoryStore;
use crate::storage::sessions::SqlSessionStore;
use crate::storage::startup_lock::{self, StartupLock};
use crate::storage::{self, PoolSettings};

/// How long in-flight requests may take to finish after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long an instance waits for others that are applying migrations or
/// creating the first key on the same database.
const STARTUP_LOCK_PATIENCE: Duration = Duration::from_secs(60);

/// Resolves the master secret: BATON_MASTER_KEY, else the key file, else a
/// new key written to the key file (mode 0600, atomically: of two instances
/// sharing a data directory, one writes it and the other reads it).
pub fn load_master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(text) = &settings.master_key {
        return MasterKey::parse(text).context("BATON_MASTER_KEY");
    }
    let path = settings
        .master_key_file
        .clone()
        .unwrap_or_else(|| PathBuf::from("data/master.key"));
    if !path.exists() {
        let key = MasterKey::generate();
        let created = files::create_secret_file(&path, format!("{}\n", key.to_hex()).as_bytes())
            .with_context(|| format!("creating the master key file {}", path.display()))?;
        if created == files::Created::Written {
            tracing::warn!(
                path = %path.display(),
                "no master key was configured: generated one and saved it (mode 0600); \
                 keep it safe and give the same key to every instance on this database"
            );
            return Ok(key);
        }
    }
    if let Some(mode) = files::open_to_others(&path)
        .with_context(|| format!("reading the master key file {}", path.display()))?
    {
        anyhow::bail!(
            "the master key file {} can be read or written by other users (mode {mode:o}); \
             it seals the signing keys: make it private with `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the master key file {}", path.display()))?;
    MasterKey::parse(&text).with_context(|| format!("the master key file {}", path.display()))
}

/// The file of an SQLite database URL (`None` for other databases and for
/// an in-memory one).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:" && !rest.contains("mode=memory"))
        .then(|| PathBuf::from(path))
}

/// Creates an SQLite database file (and its directory) private to this
/// user before SQLite opens it: SQLite gives the -wal and -shm files the
/// database file's mode, so all three hold the password hashes privately.
/// An existing file keeps its mode; one open to others is reported.
fn prepare_sqlite_file(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        files::create_private_dir(parent)
            .with_context(|| format!("creating the database directory {}", parent.display()))?;
    }
    files::private_file(path)
        .with_context(|| format!("creating the database file {}", path.display()))?;
    if let Ok(Some(mode)) = files::open_to_others(path) {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            "the database file can be read by other users; it holds password hashes: \
             consider `chmod 600` on it and its -wal and -shm files"
        );
    }
    Ok(())
}

/// Connects to the configured database (no migrations; an SQLite file is
/// prepared by `open_under_lock`).
async fn connect(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let url = settings.database_url();
    let pool = PoolSettings {
        max_connections: settings.db_max_connections,
        connect_timeout: settings.db_timeout,
        statement_timeout: settings.db_timeout,
    };
    storage::connect(&url, &pool)
        .await
        .with_context(|| format!("connecting to the database ({})", redact_url(&url)))
}

/// Connects, takes the database's startup lock and applies the migrations
/// under it; the caller does the rest of its once-per-database work, then
/// releases it. SQLite's lock (a file beside the database) is taken before
/// connecting: connecting switches a fresh file to WAL mode, a write that
/// instances starting together would race for ("database is locked").
async fn open_under_lock(settings: &Settings) -> anyhow::Result<(DatabaseConnection, StartupLock)> {
    let sqlite_lock = match sqlite_file(&settings.database_url()) {
        Some(file) => {
            prepare_sqlite_file(&file)?;
            let mut name = file.into_os_string();
            name.push(".startup-lock");
            Some(startup_lock::lock_file(PathBuf::from(name), STARTUP_LOCK_PATIENCE).await?)
        }
        None => None,
    };
    let db = match connect(settings).await {
        Ok(db) => db,
        Err(e) => {
            if let Some(lock) = sqlite_lock {
                lock.release().await;
            }
            return Err(e);
        }
    };
    let lock = match sqlite_lock {
        Some(lock) => lock,
        None => startup_lock::acquire(&db, STARTUP_LOCK_PATIENCE).await?,
    };
    if let Err(e) = storage::migrate(&db).await {
        lock.release().await;
        return Err(anyhow::Error::new(e).context("applying migrations"));
    }
    Ok((db, lock))
}

/// Connects to the configured database and applies the migrations.
pub async fn open_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let (db, lock) = open_under_lock(settings).await?;
    lock.release().await;
    Ok(db)
}

/// Compares this instance's service settings with the ones recorded in the
/// database (recording them on a fresh one). A difference stops start-up,
/// unless `adopt` makes this instance's values the service's.
async fn agree_on_settings(
    db: &DatabaseConnection,
    ours: &ServiceSettings,
    adopt: bool,
) -> anyhow::Result<()> {
    let recorded = storage::service_settings::recorded(db)
        .await
        .context("reading the recorded service settings")?;
    let differences = ours.differences(&recorded);
    if differences.is_empty() {
        return Ok(());
    }
    if recorded.is_empty() {
        tracing::info!("recorded this service's settings in the database");
    } else if adopt {
        for difference in &differences {
            tracing::warn!(
                setting = difference.name,
                "adopting this instance's setting: {difference}"
            );
        }
    } else {
        let list: Vec<String> = differences.iter().map(|d| format!("  {d}")).collect();
        anyhow::bail!(
            "this instance's settings differ from those of the service already running on this \
             database:\n{}\nEvery instance on one database must publish the same issuer, \
             audience, lifetimes, grace and cookie, or tokens from one are refused by another. \
             Start it with the service's values (BATON_ISSUER defaults to http://BATON_BIND, so \
             set it explicitly when instances bind different addresses), or, for a planned \
             change, start one instance with --adopt-settings (BATON_ADOPT_SETTINGS=true) to \
             make its values the service's.",
            list.join("\n")
        );
    }
    storage::service_settings::record(db, &ours.entries())
        .await
        .context("recording the service settings")
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

/// The throttle: the limits from the settings, counted in the configured
/// store (BATON_RATE_LIMIT_STORE), with memory as the fallback.
async fn build_throttle(
    settings: &Settings,
    db: &DatabaseConnection,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Throttle> {
    let per = |max, window| Limit { max, window };
    let minute = Duration::from_secs(60);
    let limits = Limits {
        login_attempts_per_address: per(settings.rate_limit_login_attempts_per_address, minute),
        login_failures_per_account_and_address: per(
            settings.rate_limit_login_failures_per_account_and_address,
            minute,
        ),
        login_failures_per_account: per(settings.rate_limit_login_failures_per_account, minute),
        refreshes_per_address: per(settings.rate_limit_refreshes_per_address, minute),
        registrations_per_address: per(
            settings.rate_limit_registrations_per_address,
            Duration::from_secs(3600),
        ),
    };
    // Renamed in issue 16 to say what they count; an old name is now ignored.
    for (old, new) in [
        (
            "BATON_RATE_LIMIT_LOGIN_PER_ACCOUNT",
            "BATON_RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT_AND_ADDRESS",
        ),
        (
            "BATON_RATE_LIMIT_LOGIN_PER_IP",
            "BATON_RATE_LIMIT_LOGIN_ATTEMPTS_PER_ADDRESS",
        ),
        (
            "BATON_RATE_LIMIT_REFRESH_PER_IP",
            "BATON_RATE_LIMIT_REFRESHES_PER_ADDRESS",
        ),
        (
            "BATON_RATE_LIMIT_REGISTER_PER_IP",
            "BATON_RATE_LIMIT_REGISTRATIONS_PER_ADDRESS",
        ),
    ] {
        if std::env::var_os(old).is_some() {
            tracing::warn!("{old} is no longer read: use {new} (see docs/OPERATIONS.md)");
        }
    }
    let memory = MemoryStore::new(settings.rate_limit_memory_entries);
    let store = storage::limits::open(&settings.rate_limit_store, db, &memory)
        .await
        .map_err(anyhow::Error::msg)?;
    let enabled = settings.rate_limits == Switch::On;
    if enabled {
        tracing::info!(
            store = store.name(),
            "rate-limit counters: {}",
            store.name()
        );
    }
    Ok(Throttle::new(
        enabled,
        limits,
        store,
        memory,
        clock,
        settings.rate_limit_store_timeout,
    ))
}

pub struct Application {
    edge: Edge,
    port: u16,
    state: AppState,
    /// Closed at shutdown before the pool (the SQLite writer's connection).
    rotations: storage::rotation::Rotations,
    static_dir: Option<PathBuf>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Opens the database, loads the keys and binds the listener.
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        #[cfg(feature = "fault-injection")]
        let (faults, variations) = (
            crate::faults::Faults::parse(&settings.faults).map_err(anyhow::Error::msg)?,
            crate::variations::Variations::parse(&settings.variations)
                .map_err(anyhow::Error::msg)?,
        );
        #[cfg(feature = "fault-injection")]
        if !faults.is_empty() {
            tracing::warn!(faults = ?faults.names(), "DELIBERATE FAULTS ARE ENABLED: this server breaks the contract on purpose");
        }
        #[cfg(not(feature = "fault-injection"))]
        for (variable, value) in [
            ("BATON_FAULTS", &settings.faults),
            ("BATON_VARIATIONS", &settings.variations),
        ] {
            anyhow::ensure!(
                value.trim().is_empty(),
                "{variable} is set, but this build has no fault injection (it is a debug-only test feature); unset {variable}"
            );
        }
        if settings.rate_limits == Switch::Off {
            tracing::warn!(
                "rate limits are off (BATON_RATE_LIMITS=off): for benchmarks and test rigs only"
            );
        }
        let master = load_master_key(&settings)?;
        // Once per database, one instance at a time: migrations, the first
        // signing key, the recorded settings.
        let (db, lock) = open_under_lock(&settings).await?;
        let once = async {
            let keys = KeyRing::open(db.clone(), master.clone(), clock.clone())
                .await
                .context("loading the signing keys")?;
            agree_on_settings(&db, &settings.service_settings(), settings.adopt_settings).await?;
            anyhow::Ok(keys)
        }
        .await;
        lock.release().await;
        let keys = once?;
        let policy = settings.policy();
        let issuer = settings.issuer();
        let access_tokens = AccessTokens::new(
            keys.clone(),
            clock.clone(),
            policy.clone(),
            issuer.clone(),
            settings.audience.clone(),
        );
        let hasher = PasswordHasher::new(settings.hash_concurrency());
        hasher.warm_up().await?;
        let accounts = Accounts::new(db.clone(), hasher, clock.clone(), settings.registration());
        let rotations = storage::rotation::Rotations::open(&db, settings.db_timeout)
            .context("starting the rotation writer")?;
        let store: Arc<dyn SessionStore> =
            Arc::new(SqlSessionStore::new(db.clone(), rotations.clone()));
        let successors: Arc<dyn Successors> =
            Arc::new(DerivedSuccessors::new(master.successor_key()));
        #[cfg(feature = "fault-injection")]
        let (store, successors) = crate::faults::decorate(
            &faults,
            store,
            successors,
            &db,
            clock.clone(),
            policy.clone(),
        );
        let sessions = Sessions::new(
            store,
            successors,
            clock.clone(),
            policy.clone(),
            access_tokens,
        );
        let throttle = build_throttle(&settings, &db, clock.clone()).await?;
        let state = AppState {
            db,
            accounts,
            sessions,
            keys: keys.clone(),
            settings: Arc::new(HttpSettings {
                cookie_name: settings.cookie_name.clone(),
                cookie_path: settings.cookie_path(),
                allowed_origins: settings.allowed_origins(),
                issuer,
                audience: settings.audience.clone(),
                policy,
                client_address: ClientAddressRule {
                    header: settings.trusted_client_ip_header.clone(),
                    hops: settings.trusted_proxy_hops as usize,
                    trusted_proxies: settings.trusted_proxies.clone(),
                },
                request_timeout: settings.db_timeout * 2,
            }),
            throttle,
            clock: clock.clone(),
            #[cfg(feature = "fault-injection")]
            faults,
            #[cfg(feature = "fault-injection")]
            variations,
            metrics: Arc::default(),
        };
        let edge = Edge::bind(settings.bind, settings.edge_limits())
            .await
            .with_context(|| format!("binding {}", settings.bind))?;
        let port = edge
            .local_addr()
            .context("the listener has no address")?
            .port();
        let housekeeping_task = Housekeeping {
            retention: settings.token_retention,
            batch: 500,
            interval: settings.housekeeping_interval,
        }
        .spawn(state.db.clone(), state.clock.clone());
        let static_dir =
            Some(settings.static_dir.clone()).filter(|d| d.join("index.html").is_file());
        Ok(Self {
            edge,
            port,
            state,
            rotations,
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
        let result = self.edge.serve(app, shutdown, SHUTDOWN_GRACE).await;
        background.iter().for_each(tokio::task::JoinHandle::abort);
        self.rotations.close().await;
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

/// `baton rotate-keys`. The retired key stays published for the service's
/// recorded access-token life and leeway (this command's own flags only
/// where none is recorded yet), so a rotation run with other flags cannot
/// cut that window short.
pub async fn rotate_keys(settings: Settings) -> anyhow::Result<String> {
    let master = load_master_key(&settings)?;
    let db = open_database(&settings).await?;
    let recorded = storage::service_settings::recorded(&db).await?;
    let recorded_secs = |name: &str| {
        recorded
            .get(name)
            .and_then(|v| humantime::parse_duration(v).ok())
    };
    let access_ttl = recorded_secs("access_token_ttl").unwrap_or(settings.access_ttl);
    let leeway = recorded_secs("access_token_leeway").unwrap_or(settings.jwt_leeway);
    let kid = crate::domain::keys::rotate_signing_key(
        &db,
        &master,
        SystemClock.now(),
        access_ttl,
        leeway,
    )
    .await?;
    Ok(kid)
}
