//! Where throttling counters live: fixed windows keyed by a 32-byte hash.
//! - memory: this instance only, bounded (time eviction and a hard cap);
//! - database: the `rate_limits` table, one atomic upsert per counted event,
//!   so every instance on the database shares the counts;
//! - Redis: `SET NX PX` + `INCR` + `PTTL` in one MULTI/EXEC.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend, Statement, Value};

use crate::domain::Timestamp;
use crate::domain::throttle::LimitKey;

/// A counter as it stands after (or without) counting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub hits: u32,
    /// When the window ends; `None` for a counter with no live window.
    pub resets_at: Option<Timestamp>,
}

#[derive(Debug, thiserror::Error)]
pub enum LimitStoreError {
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

/// The store the throttle counts in (the domain's port, as an enum).
#[derive(Clone)]
pub enum LimitStore {
    Memory(MemoryStore),
    Database(DatabaseStore),
    Redis(RedisStore),
}

impl LimitStore {
    pub fn name(&self) -> &'static str {
        match self {
            LimitStore::Memory(_) => "memory",
            LimitStore::Database(_) => "database",
            LimitStore::Redis(_) => "redis",
        }
    }

    /// Counts one event under `key` in a window of `window` from its first event.
    pub async fn hit(
        &self,
        key: &LimitKey,
        window: Duration,
        now: Timestamp,
    ) -> Result<Count, LimitStoreError> {
        match self {
            LimitStore::Memory(m) => Ok(m.hit(key, window, now)),
            LimitStore::Database(d) => d.hit(key, window, now).await,
            LimitStore::Redis(r) => r.hit(key, window, now).await,
        }
    }

    /// The counters of `keys`, in order, without counting.
    pub async fn peek(
        &self,
        keys: &[LimitKey],
        now: Timestamp,
    ) -> Result<Vec<Count>, LimitStoreError> {
        match self {
            LimitStore::Memory(m) => Ok(m.peek(keys, now)),
            LimitStore::Database(d) => d.peek(keys, now).await,
            LimitStore::Redis(r) => r.peek(keys, now).await,
        }
    }
}

/// Resolves `BATON_RATE_LIMIT_STORE`: `auto` (the database for PostgreSQL
/// and MariaDB, memory for SQLite), `memory`, `database` (the main one), or
/// the URL of Redis or of a separate PostgreSQL/MariaDB database.
pub async fn open(
    choice: &str,
    main: &DatabaseConnection,
    memory: &MemoryStore,
) -> Result<LimitStore, String> {
    let choice = choice.trim();
    let scheme = choice
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    match (choice, scheme.as_deref()) {
        ("auto", _) => Ok(match main.get_database_backend() {
            DbBackend::Sqlite => LimitStore::Memory(memory.clone()),
            _ => LimitStore::Database(DatabaseStore::shared(main.clone())),
        }),
        ("memory", _) => Ok(LimitStore::Memory(memory.clone())),
        ("database", _) => Ok(LimitStore::Database(DatabaseStore::shared(main.clone()))),
        (url, Some("redis" | "rediss")) => redis::Client::open(url)
            .map(|client| LimitStore::Redis(RedisStore::new(client)))
            .map_err(|e| format!("BATON_RATE_LIMIT_STORE: {e}")),
        (url, Some("postgres" | "postgresql" | "mysql" | "mariadb")) => {
            DatabaseStore::separate(url).await.map(LimitStore::Database)
        }
        _ => Err(
            "BATON_RATE_LIMIT_STORE: expected auto, memory, database, or a redis://, \
             postgres:// or mysql:// URL"
                .to_owned(),
        ),
    }
}

/// Expired windows are swept at most this often.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Counters in this process's memory, never more than `capacity` of them.
/// Expired windows are swept once a minute. At the cap, after a sweep, the
/// eighth of the counters whose windows end soonest is dropped: those keys
/// start afresh. The alternative, refusing keys not yet tracked, would let
/// whoever fills the map lock every new client out; dropping counters that
/// were about to reset anyway only returns allowances early, and filling
/// 100,000 entries takes thousands of addresses, since every new key costs
/// an attempt that the per-address limits count.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<MemoryWindows>>,
    capacity: usize,
}

#[derive(Default)]
struct MemoryWindows {
    /// key → (window end in ms, hits)
    windows: HashMap<LimitKey, (i64, u32)>,
    next_sweep: i64,
}

impl MemoryStore {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.lock().windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryWindows> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn hit(&self, key: &LimitKey, window: Duration, now: Timestamp) -> Count {
        let now_ms = now.as_millis();
        let end = now.saturating_add(window).as_millis();
        let mut state = self.lock();
        if now_ms >= state.next_sweep {
            state.windows.retain(|_, (resets, _)| *resets > now_ms);
            state.next_sweep = now.saturating_add(SWEEP_INTERVAL).as_millis();
        }
        if let Some(entry) = state.windows.get_mut(key) {
            if entry.0 <= now_ms {
                *entry = (end, 0);
            }
            entry.1 = entry.1.saturating_add(1);
            return Count {
                hits: entry.1,
                resets_at: Some(Timestamp::from_millis(entry.0)),
            };
        }
        if state.windows.len() >= self.capacity {
            state.windows.retain(|_, (resets, _)| *resets > now_ms);
        }
        if state.windows.len() >= self.capacity {
            let mut ends: Vec<i64> = state.windows.values().map(|(r, _)| *r).collect();
            let cut = (ends.len() / 8).max(1) - 1;
            let (_, threshold, _) = ends.select_nth_unstable(cut);
            let threshold = *threshold;
            let mut to_drop = cut + 1;
            state.windows.retain(|_, (resets, _)| {
                if to_drop > 0 && *resets <= threshold {
                    to_drop -= 1;
                    return false;
                }
                true
            });
        }
        state.windows.insert(*key, (end, 1));
        Count {
            hits: 1,
            resets_at: Some(Timestamp::from_millis(end)),
        }
    }

    pub fn peek(&self, keys: &[LimitKey], now: Timestamp) -> Vec<Count> {
        let state = self.lock();
        keys.iter()
            .map(|k| match state.windows.get(k) {
                Some((resets, hits)) if *resets > now.as_millis() => Count {
                    hits: *hits,
                    resets_at: Some(Timestamp::from_millis(*resets)),
                },
                _ => Count::default(),
            })
            .collect()
    }
}

/// Expired rows are deleted by the instance that notices first, at most
/// this often per instance, off the request path.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// Counters in the `rate_limits` table (migration m20261201_000005).
#[derive(Clone)]
pub struct DatabaseStore {
    db: DatabaseConnection,
    /// The table exists (the main database migrates it; a separate one gets
    /// it created on first use).
    ready: Arc<AtomicBool>,
    last_purge: Arc<AtomicI64>,
}

impl DatabaseStore {
    pub fn shared(db: DatabaseConnection) -> Self {
        Self {
            db,
            ready: Arc::new(AtomicBool::new(true)),
            last_purge: Arc::default(),
        }
    }

    /// A pool of its own, opened lazily: an unreachable store must not keep
    /// the service from starting (it degrades to memory instead).
    pub async fn separate(url: &str) -> Result<Self, String> {
        let mut options = sea_orm::ConnectOptions::new(url.to_owned());
        options
            .max_connections(4)
            .min_connections(0)
            .connect_timeout(Duration::from_secs(2))
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy(true)
            .sqlx_logging(false);
        let db = sea_orm::Database::connect(options)
            .await
            .map_err(|e| format!("BATON_RATE_LIMIT_STORE: {e}"))?;
        Ok(Self {
            db,
            ready: Arc::new(AtomicBool::new(false)),
            last_purge: Arc::default(),
        })
    }

    async fn ensure_table(&self) -> Result<(), LimitStoreError> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let backend = self.db.get_database_backend();
        let statement = super::migration::create_rate_limits(backend);
        self.db.execute_raw(statement).await?;
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    fn purge_now_and_then(&self, now: Timestamp) {
        let last = self.last_purge.load(Ordering::Relaxed);
        let due = now.saturating_sub(PURGE_INTERVAL).as_millis();
        if last > due
            || self
                .last_purge
                .compare_exchange(last, now.as_millis(), Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let db = self.db.clone();
        tokio::spawn(async move {
            let backend = db.get_database_backend();
            let sql = match backend {
                DbBackend::Postgres => "DELETE FROM rate_limits WHERE resets_at <= $1",
                _ => "DELETE FROM rate_limits WHERE resets_at <= ?",
            };
            let statement =
                Statement::from_sql_and_values(backend, sql, [Value::from(now.as_millis())]);
            if let Err(e) = db.execute_raw(statement).await {
                tracing::debug!(error = %e, "purging expired rate-limit rows failed; will retry");
            }
        });
    }

    pub async fn hit(
        &self,
        key: &LimitKey,
        window: Duration,
        now: Timestamp,
    ) -> Result<Count, LimitStoreError> {
        self.ensure_table().await?;
        self.purge_now_and_then(now);
        let backend = self.db.get_database_backend();
        let end = now.saturating_add(window).as_millis();
        let now_ms = now.as_millis();
        let key = Value::from(key.0.to_vec());
        // One statement: a new window starts when the stored one has ended.
        // MariaDB assigns left to right, so `hits` is computed while
        // `resets_at` still holds the old window; both read the old one.
        let statement = match backend {
            DbBackend::Postgres => Statement::from_sql_and_values(
                backend,
                "INSERT INTO rate_limits (limit_key, hits, resets_at) VALUES ($1, 1, $2) \
                 ON CONFLICT (limit_key) DO UPDATE SET \
                 hits = CASE WHEN rate_limits.resets_at <= $3 THEN 1 ELSE rate_limits.hits + 1 END, \
                 resets_at = CASE WHEN rate_limits.resets_at <= $3 THEN $2 ELSE rate_limits.resets_at END \
                 RETURNING hits, resets_at",
                [key, end.into(), now_ms.into()],
            ),
            DbBackend::MySql => Statement::from_sql_and_values(
                backend,
                "INSERT INTO rate_limits (limit_key, hits, resets_at) VALUES (?, 1, ?) \
                 ON DUPLICATE KEY UPDATE \
                 hits = IF(resets_at <= ?, 1, hits + 1), \
                 resets_at = IF(resets_at <= ?, ?, resets_at) \
                 RETURNING hits, resets_at",
                [key, end.into(), now_ms.into(), now_ms.into(), end.into()],
            ),
            _ => Statement::from_sql_and_values(
                backend,
                "INSERT INTO rate_limits (limit_key, hits, resets_at) VALUES (?1, 1, ?2) \
                 ON CONFLICT (limit_key) DO UPDATE SET \
                 hits = CASE WHEN rate_limits.resets_at <= ?3 THEN 1 ELSE rate_limits.hits + 1 END, \
                 resets_at = CASE WHEN rate_limits.resets_at <= ?3 THEN ?2 ELSE rate_limits.resets_at END \
                 RETURNING hits, resets_at",
                [key, end.into(), now_ms.into()],
            ),
        };
        let row =
            self.db.query_one_raw(statement).await?.ok_or_else(|| {
                LimitStoreError::Unexpected("the upsert returned no row".to_owned())
            })?;
        let hits: i64 = row.try_get_by_index(0)?;
        let resets_at: i64 = row.try_get_by_index(1)?;
        Ok(Count {
            hits: u32::try_from(hits).unwrap_or(u32::MAX),
            resets_at: Some(Timestamp::from_millis(resets_at)),
        })
    }

    pub async fn peek(
        &self,
        keys: &[LimitKey],
        now: Timestamp,
    ) -> Result<Vec<Count>, LimitStoreError> {
        self.ensure_table().await?;
        let backend = self.db.get_database_backend();
        let placeholders: Vec<String> = (0..keys.len())
            .map(|i| match backend {
                DbBackend::Postgres => format!("${}", i + 2),
                _ => "?".to_owned(),
            })
            .collect();
        let first = if backend == DbBackend::Postgres {
            "$1"
        } else {
            "?"
        };
        let sql = format!(
            "SELECT limit_key, hits, resets_at FROM rate_limits \
             WHERE resets_at > {first} AND limit_key IN ({})",
            placeholders.join(", ")
        );
        let mut values = vec![Value::from(now.as_millis())];
        values.extend(keys.iter().map(|k| Value::from(k.0.to_vec())));
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        let mut found = HashMap::new();
        for row in rows {
            let key: Vec<u8> = row.try_get_by_index(0)?;
            let hits: i64 = row.try_get_by_index(1)?;
            let resets_at: i64 = row.try_get_by_index(2)?;
            found.insert(
                key,
                Count {
                    hits: u32::try_from(hits).unwrap_or(u32::MAX),
                    resets_at: Some(Timestamp::from_millis(resets_at)),
                },
            );
        }
        Ok(keys
            .iter()
            .map(|k| found.get(k.0.as_slice()).copied().unwrap_or_default())
            .collect())
    }
}

/// Counters in Redis under `baton:rate-limit:<hex key>`, expiring with
/// their window.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    connection: Arc<tokio::sync::OnceCell<redis::aio::ConnectionManager>>,
}

impl RedisStore {
    pub fn new(client: redis::Client) -> Self {
        Self {
            client,
            connection: Arc::default(),
        }
    }

    async fn connection(&self) -> Result<redis::aio::ConnectionManager, LimitStoreError> {
        let connection = self
            .connection
            .get_or_try_init(|| redis::aio::ConnectionManager::new(self.client.clone()))
            .await?;
        Ok(connection.clone())
    }

    fn name(key: &LimitKey) -> String {
        format!("baton:rate-limit:{}", key.hex())
    }

    pub async fn hit(
        &self,
        key: &LimitKey,
        window: Duration,
        now: Timestamp,
    ) -> Result<Count, LimitStoreError> {
        let mut connection = self.connection().await?;
        let name = Self::name(key);
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let (hits, ttl_ms): (i64, i64) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&name)
            .arg(0)
            .arg("PX")
            .arg(window_ms)
            .arg("NX")
            .ignore()
            .cmd("INCR")
            .arg(&name)
            .cmd("PTTL")
            .arg(&name)
            .query_async(&mut connection)
            .await?;
        Ok(Count {
            hits: u32::try_from(hits).unwrap_or(u32::MAX),
            resets_at: (ttl_ms > 0)
                .then(|| now.saturating_add(Duration::from_millis(ttl_ms as u64))),
        })
    }

    pub async fn peek(
        &self,
        keys: &[LimitKey],
        now: Timestamp,
    ) -> Result<Vec<Count>, LimitStoreError> {
        let mut connection = self.connection().await?;
        let mut pipe = redis::pipe();
        for key in keys {
            let name = Self::name(key);
            pipe.cmd("GET").arg(&name).cmd("PTTL").arg(&name);
        }
        let answers: Vec<(Option<i64>, i64)> = pipe.query_async(&mut connection).await?;
        Ok(answers
            .into_iter()
            .map(|(hits, ttl_ms)| match hits {
                Some(hits) if ttl_ms > 0 => Count {
                    hits: u32::try_from(hits).unwrap_or(u32::MAX),
                    resets_at: Some(now.saturating_add(Duration::from_millis(ttl_ms as u64))),
                },
                _ => Count::default(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> LimitKey {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_be_bytes());
        LimitKey(k)
    }

    #[test]
    fn memory_counts_per_key_and_starts_a_new_window_when_the_old_one_ended() {
        let store = MemoryStore::new(100);
        let t0 = Timestamp::from_millis(1_000_000);
        let minute = Duration::from_secs(60);
        assert_eq!(store.hit(&key(1), minute, t0).hits, 1);
        assert_eq!(store.hit(&key(1), minute, t0).hits, 2);
        assert_eq!(store.hit(&key(2), minute, t0).hits, 1);
        assert_eq!(store.peek(&[key(1), key(3)], t0)[0].hits, 2);
        assert_eq!(store.peek(&[key(1), key(3)], t0)[1].hits, 0);
        let later = t0.saturating_add(minute);
        assert_eq!(store.hit(&key(1), minute, later).hits, 1);
    }

    #[test]
    fn memory_never_holds_more_than_its_capacity_and_sweeps_expired_windows() {
        let store = MemoryStore::new(1000);
        let t0 = Timestamp::from_millis(1_000_000);
        let minute = Duration::from_secs(60);
        for i in 0..10_000 {
            store.hit(&key(i), minute, t0);
            assert!(store.len() <= 1000);
        }
        // The newest counters survive eviction.
        assert_eq!(store.peek(&[key(9_999)], t0)[0].hits, 1);
        // Once their windows are over, the next count sweeps them away.
        let later = t0.saturating_add(Duration::from_secs(120));
        store.hit(&key(0), minute, later);
        assert_eq!(store.len(), 1);
    }
}
