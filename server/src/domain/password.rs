//! Passwords: length rules, and Argon2id hashing off the async runtime on
//! threads of its own, at a lower priority and with bounded concurrency, so
//! a login flood cannot starve other requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;

use super::AuthError;

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

/// A password that meets the length rules (counted in Unicode scalar values).
/// Its `Debug` never shows the secret.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    pub fn parse(raw: String) -> Result<Self, AuthError> {
        let len = raw.chars().count();
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(AuthError::Validation(format!(
                "password: must be {MIN_LEN} to {MAX_LEN} characters long (got {len})"
            )));
        }
        Ok(Self(raw))
    }

    /// For verification only: a login compares whatever was typed, so that a
    /// too-short guess costs as much as any other wrong password.
    pub fn unchecked(raw: String) -> Self {
        Self(raw)
    }

    fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Argon2id with the OWASP parameters: 19 MiB, 2 iterations, 1 lane.
const M_COST: u32 = Params::DEFAULT_M_COST;
const T_COST: u32 = Params::DEFAULT_T_COST;
const P_COST: u32 = Params::DEFAULT_P_COST;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

fn argon2(m_cost: u32, t_cost: u32, p_cost: u32, output_len: usize) -> Option<Argon2<'static>> {
    let params = Params::new(m_cost, t_cost, p_cost, Some(output_len)).ok()?;
    Some(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A stored hash: the PHC string `$argon2id$v=19$m=..,t=..,p=..$salt$hash`.
struct Phc {
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Phc {
    fn parse(phc: &str) -> Option<Self> {
        let mut parts = phc.split('$');
        let ("", "argon2id", "v=19") = (parts.next()?, parts.next()?, parts.next()?) else {
            return None;
        };
        let (mut m_cost, mut t_cost, mut p_cost) = (None, None, None);
        for param in parts.next()?.split(',') {
            let (key, value) = param.split_once('=')?;
            let value: u32 = value.parse().ok()?;
            match key {
                "m" => m_cost = Some(value),
                "t" => t_cost = Some(value),
                "p" => p_cost = Some(value),
                _ => return None,
            }
        }
        let salt = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
        let hash = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
        parts.next().is_none().then_some(Self {
            m_cost: m_cost?,
            t_cost: t_cost?,
            p_cost: p_cost?,
            salt,
            hash,
        })
    }

    fn encode(&self) -> String {
        format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            self.m_cost,
            self.t_cost,
            self.p_cost,
            STANDARD_NO_PAD.encode(&self.salt),
            STANDARD_NO_PAD.encode(&self.hash)
        )
    }
}

/// Verifying against this costs the same as against a real hash, so an
/// unknown email and a wrong password take comparable time.
fn dummy_hash(memory: &mut [Block]) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_with(b"baton-dummy-password-for-timing", memory)
            .expect("hashing a constant cannot fail")
    })
}

fn hash_with(password: &[u8], memory: &mut [Block]) -> Result<String, argon2::Error> {
    let salt: [u8; SALT_LEN] = super::keys::random_bytes();
    let mut hash = vec![0u8; HASH_LEN];
    argon2(M_COST, T_COST, P_COST, HASH_LEN)
        .ok_or(argon2::Error::OutputTooShort)?
        .hash_password_into_with_memory(password, &salt, &mut hash, memory)?;
    Ok(Phc {
        m_cost: M_COST,
        t_cost: T_COST,
        p_cost: P_COST,
        salt: salt.to_vec(),
        hash,
    }
    .encode())
}

fn verify_with(password: &[u8], stored: &Phc, memory: &mut [Block]) -> bool {
    let Some(argon2) = argon2(
        stored.m_cost,
        stored.t_cost,
        stored.p_cost,
        stored.hash.len(),
    ) else {
        return false;
    };
    let mut computed = vec![0u8; stored.hash.len()];
    let result = if stored.m_cost == M_COST {
        argon2.hash_password_into_with_memory(password, &stored.salt, &mut computed, memory)
    } else {
        // A hash made under other parameters: its own (temporary) memory.
        argon2.hash_password_into(password, &stored.salt, &mut computed)
    };
    result.is_ok() && bool::from(computed.ct_eq(&stored.hash))
}

/// How much lower than the server's other threads the hashing threads run
/// (a nice increment). A hash takes 15-35 ms of CPU; a request that arrives
/// while both cores hash would otherwise wait for a time slice behind them
/// (a paced `/auth/me` probe's p99 went up 8 × during a login flood). At a
/// lower priority the scheduler runs the request first, and hashing still
/// gets every core nothing else wants (docs/BENCHMARKS.md, round 5).
const HASHING_NICE_INCREMENT: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// Lowers the calling thread's priority by [`HASHING_NICE_INCREMENT`]
/// (Linux: the nice value belongs to each thread). A failure costs only the
/// priority, so it is logged, never fatal.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let me = Some(rustix::thread::gettid());
        let result = getpriority_process(me)
            .and_then(|nice| setpriority_process(me, (nice + HASHING_NICE_INCREMENT).min(19)));
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not lower the priority of a hashing thread");
        }
    }
}

/// The hashing threads: `size` of them, started with the hasher, at a lower
/// priority, taking jobs from one queue; they end when the last handle to
/// the queue is dropped.
fn start_hashing_threads(size: usize) -> mpsc::Sender<Job> {
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for i in 0..size {
        let receiver = receiver.clone();
        let started = std::thread::Builder::new()
            .name(format!("baton-hash-{i}"))
            .spawn(move || {
                lower_this_threads_priority();
                loop {
                    // Held while waiting: the other idle threads queue on the lock.
                    let next = receiver
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .recv();
                    let Ok(job) = next else { return };
                    // A panicking job loses its own answer (its caller sees
                    // an error), not the thread.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
        if let Err(e) = started {
            tracing::error!(error = %e, "could not start a hashing thread");
        }
    }
    sender
}

/// Hashes and verifies passwords on threads of its own (see
/// [`HASHING_NICE_INCREMENT`]), at most `limit` at once, each in a 19 MiB
/// block buffer. Buffers are reused while hashes keep coming (allocating one
/// per hash under a login flood made the allocator keep every buffer it ever
/// handed out: about 1 GiB resident, see docs/BENCHMARKS.md) and given back
/// when the last hash in flight ends, so an idle server holds none.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Hashes running or queued for a permit.
    in_flight: Arc<AtomicUsize>,
}

/// Counts a hash as in flight until it finishes (or is cancelled).
struct InFlight(Option<Arc<AtomicUsize>>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(Some(counter.clone()))
    }

    /// Ends this hash; true when another one is still running or waiting,
    /// so that a buffer is worth keeping.
    fn finish(mut self) -> bool {
        self.0
            .take()
            .is_some_and(|counter| counter.fetch_sub(1, Ordering::SeqCst) > 1)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(counter) = self.0.take() {
            counter.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl PasswordHasher {
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            jobs: start_hashing_threads(limit),
            buffers: Arc::default(),
            in_flight: Arc::default(),
        }
    }

    async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let this_hash = InFlight::enter(&self.in_flight);
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AuthError::Unexpected(e.into()))?;
        // With the permit held there are at most `limit` buffers in use, so
        // the pool never grows past `limit` either.
        let buffers = self.buffers.clone();
        let span = tracing::Span::current();
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            span.in_scope(|| {
                let mut memory = buffers
                    .lock()
                    .expect("buffer pool lock")
                    .pop()
                    .unwrap_or_else(|| vec![Block::new(); M_COST as usize]);
                let result = work(&mut memory);
                // Decided under the pool lock, so that of two hashes ending
                // together the second sees the first gone and empties the pool.
                let mut pool = buffers.lock().expect("buffer pool lock");
                if this_hash.finish() {
                    pool.push(memory);
                } else {
                    pool.clear();
                }
                // The caller may have gone (a cancelled request): nothing to do.
                let _ = answer.send(result);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| AuthError::Unexpected(anyhow::anyhow!("the hashing threads are gone")))?;
        answered
            .await
            .map_err(|_| AuthError::Unexpected(anyhow::anyhow!("a password hash failed")))
    }

    #[tracing::instrument(name = "hash_password", skip_all)]
    pub async fn hash(&self, password: Password) -> Result<String, AuthError> {
        self.run_blocking(move |memory| {
            hash_with(password.expose(), memory)
                .map_err(|e| AuthError::Unexpected(anyhow::anyhow!("argon2: {e}")))
        })
        .await?
    }

    /// True when `password` matches `stored`; with `stored = None` (unknown
    /// account) it verifies against a dummy hash and returns false.
    #[tracing::instrument(name = "verify_password", skip_all)]
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, AuthError> {
        self.run_blocking(move |memory| {
            let known = stored.is_some();
            let phc = stored.unwrap_or_else(|| dummy_hash(memory).to_owned());
            let Some(parsed) = Phc::parse(&phc) else {
                tracing::error!("a stored password hash is not an Argon2id PHC string");
                return false;
            };
            let matches = verify_with(password.expose(), &parsed, memory);
            known && matches
        })
        .await
    }

    /// Computes the dummy hash now rather than on the first unknown-email login.
    pub async fn warm_up(&self) -> Result<(), AuthError> {
        self.run_blocking(|memory| {
            dummy_hash(memory);
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_unicode_scalar_values() {
        assert!(Password::parse("ééééééé".into()).is_err()); // 7 chars, 14 bytes
        assert!(Password::parse("éééééééé".into()).is_ok()); // 8 chars
        assert!(Password::parse("x".repeat(128)).is_ok());
        assert!(Password::parse("x".repeat(129)).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let p = Password::parse("hunter2hunter2".into()).unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher
            .hash(Password::parse("correct horse".into()).unwrap())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            hasher
                .verify(
                    Password::unchecked("correct horse".into()),
                    Some(hash.clone())
                )
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(Password::unchecked("wrong horse".into()), Some(hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn hashes_made_by_the_argon2_crate_still_verify() {
        use argon2::password_hash::PasswordHasher as _;
        let legacy = Argon2::default()
            .hash_password(b"old password")
            .unwrap()
            .to_string();
        let hasher = PasswordHasher::new(1);
        assert!(
            hasher
                .verify(
                    Password::unchecked("old password".into()),
                    Some(legacy.clone())
                )
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(Password::unchecked("new password".into()), Some(legacy))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_buffer_pool_never_outgrows_the_concurrency_limit() {
        // Observed from inside each run, while the others are in flight:
        // the buffers in use (one per running hash) plus those pooled.
        let hasher = PasswordHasher::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let runs = (0..6).map(|_| {
            let (h, running) = (hasher.clone(), running.clone());
            let pool = hasher.buffers.clone();
            async move {
                h.run_blocking(move |_memory| {
                    let now_running = running.fetch_add(1, Ordering::SeqCst) + 1;
                    let held = now_running + pool.lock().unwrap().len();
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    held
                })
                .await
            }
        });
        for held in futures::future::join_all(runs).await {
            assert!(held.unwrap() <= 2);
        }
    }

    #[tokio::test]
    async fn a_hasher_that_goes_idle_gives_its_buffers_back() {
        let hasher = PasswordHasher::new(2);
        let runs = (0..4).map(|i| {
            let h = hasher.clone();
            async move {
                h.hash(Password::parse(format!("password-{i}")).unwrap())
                    .await
            }
        });
        for result in futures::future::join_all(runs).await {
            assert!(result.is_ok());
        }
        assert_eq!(hasher.buffers.lock().unwrap().len(), 0);
        assert_eq!(hasher.in_flight.load(Ordering::SeqCst), 0);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_runs_at_a_lower_priority_than_the_callers_threads() {
        use rustix::process::getpriority_process;
        let caller = getpriority_process(None).unwrap();
        let hasher = PasswordHasher::new(1);
        let hashing = hasher
            .run_blocking(|_memory| getpriority_process(Some(rustix::thread::gettid())).unwrap())
            .await
            .unwrap();
        assert_eq!(hashing, (caller + HASHING_NICE_INCREMENT).min(19));
        assert!(hashing > caller || caller == 19);
        assert_eq!(getpriority_process(None).unwrap(), caller);
    }

    #[tokio::test]
    async fn a_panicking_hash_is_an_error_and_the_threads_keep_working() {
        let hasher = PasswordHasher::new(1);
        let failed: Result<(), _> = hasher
            .run_blocking(|_memory| panic!("a deliberately failing hash"))
            .await;
        assert!(matches!(failed, Err(AuthError::Unexpected(_))));
        let hash = hasher
            .hash(Password::parse("still works".into()).unwrap())
            .await;
        assert!(hash.is_ok());
    }

    #[test]
    fn malformed_phc_strings_are_refused() {
        for bad in [
            "",
            "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
            "$argon2id$v=19$m=x$a$b",
            "plain",
        ] {
            assert!(Phc::parse(bad).is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        let hasher = PasswordHasher::new(1);
        let pw = "baton-dummy-password-for-timing".to_owned();
        assert!(!hasher.verify(Password::unchecked(pw), None).await.unwrap());
    }
}
