//! A JWK Set cache: used for the response's `max-age`, revalidated with its
//! `ETag`, and refetched at once when a token names an unknown `kid`, but at
//! most every UNKNOWN_KID_COOLDOWN, so forged kids cannot make this server
//! hammer Baton.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use tokio::sync::{Mutex, RwLock};

const UNKNOWN_KID_COOLDOWN: Duration = Duration::from_secs(5);
/// When the response has no usable `max-age` (Baton's is 30 s).
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30);
/// Never trust a copy longer than this, whatever a cache in between says.
const MAX_MAX_AGE: Duration = Duration::from_secs(300);

pub enum KeyError {
    /// Not in the JWK Set, even after a refetch: the token is refused.
    Unknown(String),
    /// The JWK Set could not be fetched: our outage, not the client's fault.
    Unavailable(String),
}

pub struct JwksCache {
    uri: String,
    client: reqwest::Client,
    copy: RwLock<Copy>,
    /// One fetch at a time; the others wait for its result.
    fetching: Mutex<()>,
}

#[derive(Default)]
struct Copy {
    keys: HashMap<String, DecodingKey>,
    etag: Option<String>,
    fetched_at: Option<Instant>,
    max_age: Duration,
}

impl Copy {
    fn fresh(&self) -> bool {
        self.fetched_at.is_some_and(|t| t.elapsed() < self.max_age)
    }

    fn may_refetch_for_unknown_kid(&self) -> bool {
        self.fetched_at
            .is_none_or(|t| t.elapsed() >= UNKNOWN_KID_COOLDOWN)
    }
}

impl JwksCache {
    pub fn new(uri: String) -> Self {
        Self {
            uri,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            copy: RwLock::default(),
            fetching: Mutex::new(()),
        }
    }

    /// The key named `kid`, from the copy if it is fresh and has it.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, KeyError> {
        {
            let copy = self.copy.read().await;
            if copy.fresh()
                && let Some(key) = copy.keys.get(kid)
            {
                return Ok(key.clone());
            }
        }
        let _fetching = self.fetching.lock().await;
        // Another request may have refreshed the copy while this one waited.
        let needs_fetch = {
            let copy = self.copy.read().await;
            !copy.fresh() || (!copy.keys.contains_key(kid) && copy.may_refetch_for_unknown_kid())
        };
        if needs_fetch {
            self.fetch().await.map_err(KeyError::Unavailable)?;
        }
        let copy = self.copy.read().await;
        copy.keys
            .get(kid)
            .cloned()
            .ok_or_else(|| KeyError::Unknown(kid.to_owned()))
    }

    async fn fetch(&self) -> Result<(), String> {
        let etag = self.copy.read().await.etag.clone();
        let mut request = self.client.get(&self.uri);
        if let Some(etag) = &etag {
            request = request.header("if-none-match", etag);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("JWKS fetch: {e}"))?;
        let max_age = max_age(response.headers());
        let new_etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if response.status() == reqwest::StatusCode::NOT_MODIFIED {
            let mut copy = self.copy.write().await;
            copy.fetched_at = Some(Instant::now());
            copy.max_age = max_age;
            return Ok(());
        }
        if !response.status().is_success() {
            return Err(format!("JWKS fetch: {}", response.status()));
        }
        let set: JwkSet = response.json().await.map_err(|e| format!("JWKS: {e}"))?;
        // Only Ed25519 signing keys with a kid; anything else is skipped.
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                Some((kid, DecodingKey::from_jwk(jwk).ok()?))
            })
            .collect();
        *self.copy.write().await = Copy {
            keys,
            etag: new_etag,
            fetched_at: Some(Instant::now()),
            max_age,
        };
        Ok(())
    }
}

/// `max-age` from `Cache-Control`, bounded.
fn max_age(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|d| d.trim().strip_prefix("max-age=")?.parse::<u64>().ok())
        })
        .map_or(DEFAULT_MAX_AGE, |s| Duration::from_secs(s).min(MAX_MAX_AGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_control(value: &str) -> reqwest::header::HeaderMap {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("cache-control", value.parse().unwrap());
        headers
    }

    #[test]
    fn max_age_is_read_from_cache_control_and_bounded() {
        assert_eq!(
            max_age(&cache_control("public, max-age=30")),
            Duration::from_secs(30)
        );
        assert_eq!(
            max_age(&cache_control("max-age=7,public")),
            Duration::from_secs(7)
        );
        assert_eq!(
            max_age(&cache_control("public, max-age=86400")),
            MAX_MAX_AGE
        );
        assert_eq!(max_age(&cache_control("no-cache")), DEFAULT_MAX_AGE);
        assert_eq!(max_age(&cache_control("max-age=soon")), DEFAULT_MAX_AGE);
        assert_eq!(max_age(&reqwest::header::HeaderMap::new()), DEFAULT_MAX_AGE);
    }

    #[test]
    fn an_unknown_kid_refetches_only_after_the_cooldown() {
        let never = Copy::default();
        assert!(!never.fresh() && never.may_refetch_for_unknown_kid());
        let just_now = Copy {
            fetched_at: Some(Instant::now()),
            max_age: DEFAULT_MAX_AGE,
            ..Copy::default()
        };
        assert!(just_now.fresh() && !just_now.may_refetch_for_unknown_kid());
        let a_while_ago = Copy {
            fetched_at: Instant::now().checked_sub(UNKNOWN_KID_COOLDOWN),
            max_age: DEFAULT_MAX_AGE,
            ..Copy::default()
        };
        assert!(a_while_ago.fresh() && a_while_ago.may_refetch_for_unknown_kid());
    }
}
