//! Passwords: length rules, and Argon2id hashing off the async runtime with
//! bounded concurrency, so a login flood cannot starve other requests.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use tracing::Instrument;

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
fn argon2() -> Argon2<'static> {
    let params = Params::new(
        Params::DEFAULT_M_COST,
        Params::DEFAULT_T_COST,
        Params::DEFAULT_P_COST,
        None,
    )
    .expect("the OWASP Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Verifying against this costs the same as against a real hash, so an
/// unknown email and a wrong password take comparable time.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        argon2()
            .hash_password(b"baton-dummy-password-for-timing")
            .expect("hashing a constant cannot fail")
            .to_string()
    })
}

/// Hashes and verifies passwords on the blocking pool, at most `limit` at once.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit.max(1))),
        }
    }

    async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AuthError::Unexpected(e.into()))?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work))
            .in_current_span()
            .await
            .map_err(|e| AuthError::Unexpected(e.into()))
    }

    #[tracing::instrument(name = "hash_password", skip_all)]
    pub async fn hash(&self, password: Password) -> Result<String, AuthError> {
        self.run_blocking(move || {
            argon2()
                .hash_password(password.expose())
                .map(|hash| hash.to_string())
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
        self.run_blocking(move || {
            let known = stored.is_some();
            let phc = stored.unwrap_or_else(|| dummy_hash().to_owned());
            let Ok(parsed) = PasswordHash::new(&phc) else {
                tracing::error!("a stored password hash is not a valid PHC string");
                return false;
            };
            let matches = argon2().verify_password(password.expose(), &parsed).is_ok();
            known && matches
        })
        .await
    }

    /// Computes the dummy hash now rather than on the first unknown-email login.
    pub fn warm_up(&self) {
        let _ = dummy_hash();
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
    async fn an_unknown_account_never_verifies() {
        let hasher = PasswordHasher::new(1);
        let pw = "baton-dummy-password-for-timing".to_owned();
        assert!(!hasher.verify(Password::unchecked(pw), None).await.unwrap());
    }
}
