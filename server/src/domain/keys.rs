//! Key material: the master secret, the access-token signing keys derived and
//! sealed under it, and the key ring every instance on one database shares.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use hkdf::Hkdf;
use jsonwebtoken::DecodingKey;
use sea_orm::DatabaseConnection;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::{Clock, Timestamp};
use crate::storage::{self, StorageError, signing_keys::StoredSigningKey};

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's CSPRNG is available");
    buf
}

/// The deployment's root secret. Signing keys are stored sealed under a key
/// derived from it, and grace successors are MACed with another, so a copy of
/// the database alone can neither forge access tokens nor predict refresh tokens.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the master key must be 32 bytes, written as 64 hex digits or base64")]
pub struct MasterKeyFormatError;

impl MasterKey {
    pub fn generate() -> Self {
        Self(random_bytes())
    }

    /// Accepts 64 hex digits or base64 (standard or URL-safe) of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, MasterKeyFormatError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| MasterKeyFormatError)?
        } else {
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
                .map_err(|_| MasterKeyFormatError)?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| MasterKeyFormatError)?;
        Ok(Self(key))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        Hkdf::<Sha256>::new(None, &self.0)
            .expand(format!("baton/v1/{purpose}").as_bytes(), &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }

    /// The key of the MAC that derives a refresh token's successor.
    pub fn successor_key(&self) -> [u8; 32] {
        self.derive("refresh-token-successor")
    }

    fn sealing_key(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&self.derive("signing-key-sealing").into())
    }
}

/// An Ed25519 key pair as it is stored: the public half in the clear, the
/// private half (PKCS#8) sealed with ChaCha20-Poly1305, the `kid` as AAD.
pub struct SealedSigningKey {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub sealed_private_key: Vec<u8>,
}

/// RFC 7638 thumbprint of the public key: a stable, collision-free `kid`.
pub fn key_id(public_key: &[u8; 32]) -> String {
    let x = URL_SAFE_NO_PAD.encode(public_key);
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

pub fn generate_signing_key(master: &MasterKey) -> SealedSigningKey {
    let signing = ed25519_dalek::SigningKey::from_bytes(&random_bytes());
    let public = signing.verifying_key().to_bytes();
    let kid = key_id(&public);
    let pkcs8 = signing
        .to_pkcs8_der()
        .expect("an Ed25519 key always encodes as PKCS#8");
    let nonce: [u8; 12] = random_bytes();
    let ciphertext = master
        .sealing_key()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: pkcs8.as_bytes(),
                aad: kid.as_bytes(),
            },
        )
        .expect("sealing in memory cannot fail");
    let mut sealed = nonce.to_vec();
    sealed.extend_from_slice(&ciphertext);
    SealedSigningKey {
        kid,
        public_key: public.to_vec(),
        sealed_private_key: sealed,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "signing key {kid} cannot be unsealed: the master key differs from the one it was sealed with"
    )]
    WrongMasterKey { kid: String },
    #[error("signing key {kid} is corrupt")]
    Corrupt { kid: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn unseal(
    master: &MasterKey,
    stored: &StoredSigningKey,
) -> Result<ed25519_dalek::SigningKey, KeyError> {
    if stored.sealed_private_key.len() < 12 {
        return Err(KeyError::Corrupt {
            kid: stored.kid.clone(),
        });
    }
    let (nonce, ciphertext) = stored.sealed_private_key.split_at(12);
    let pkcs8 = master
        .sealing_key()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: stored.kid.as_bytes(),
            },
        )
        .map_err(|_| KeyError::WrongMasterKey {
            kid: stored.kid.clone(),
        })?;
    ed25519_dalek::SigningKey::from_pkcs8_der(&pkcs8).map_err(|_| KeyError::Corrupt {
        kid: stored.kid.clone(),
    })
}

/// A public key that may have signed a still-valid access token.
#[derive(Clone)]
pub struct VerificationKey {
    pub kid: String,
    pub public_key: [u8; 32],
    pub decoding: DecodingKey,
}

/// The key that signs new access tokens, parsed once when the ring loads
/// (re-parsing PKCS#8 on every signature cost more than the signature).
#[derive(Clone)]
pub struct ActiveSigningKey {
    pub kid: String,
    key: Arc<ed25519_dalek::SigningKey>,
}

impl ActiveSigningKey {
    /// The base64url Ed25519 signature of a JWS signing input.
    pub fn sign(&self, signing_input: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.key.sign(signing_input).to_bytes())
    }
}

#[derive(Clone, Default)]
struct KeySet {
    active: Option<ActiveSigningKey>,
    verification: HashMap<String, VerificationKey>,
    loaded_at: Option<Timestamp>,
}

/// The signing key and every verification key, loaded from the database and
/// reloaded periodically (and on an unknown `kid`), so instances that share a
/// database agree, and a rotation by any of them (or by `baton rotate-keys`)
/// reaches all.
#[derive(Clone)]
pub struct KeyRing {
    db: DatabaseConnection,
    master: MasterKey,
    clock: Arc<dyn Clock>,
    keys: Arc<RwLock<KeySet>>,
    reload_lock: Arc<Mutex<()>>,
}

/// How often an instance rereads the keys on its own.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(30);
/// An unknown `kid` triggers a reload at most this often (no amplification).
const UNKNOWN_KID_RELOAD_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Extra time a retired key stays published, so instances that have not yet
/// noticed a rotation (they reread every RELOAD_INTERVAL) still verify.
pub const RETIREMENT_MARGIN: Duration = Duration::from_secs(2 * RELOAD_INTERVAL.as_secs());

impl KeyRing {
    /// Loads the keys, generating the first one when the database has none.
    pub async fn open(
        db: DatabaseConnection,
        master: MasterKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, KeyError> {
        let ring = Self {
            db,
            master,
            clock,
            keys: Arc::default(),
            reload_lock: Arc::default(),
        };
        ring.reload().await?;
        if ring.keys.read().expect("key ring lock").active.is_none() {
            let sealed = generate_signing_key(&ring.master);
            tracing::info!(kid = %sealed.kid, "generated the first access-token signing key");
            storage::signing_keys::insert(&ring.db, &sealed, ring.clock.now()).await?;
            ring.reload().await?;
        }
        Ok(ring)
    }

    pub async fn reload(&self) -> Result<(), KeyError> {
        let _guard = self.reload_lock.lock().await;
        let now = self.clock.now();
        let stored = storage::signing_keys::publishable(&self.db, now).await?;
        let mut set = KeySet {
            loaded_at: Some(now),
            ..KeySet::default()
        };
        // Newest unretired key signs; ties (two instances creating the first
        // key at once) break on kid so every instance picks the same one.
        let active = stored
            .iter()
            .filter(|k| k.retired_at.is_none())
            .max_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        if let Some(active) = active {
            set.active = Some(ActiveSigningKey {
                kid: active.kid.clone(),
                key: Arc::new(unseal(&self.master, active)?),
            });
        }
        for key in &stored {
            let Ok(public_key) = <[u8; 32]>::try_from(key.public_key.as_slice()) else {
                return Err(KeyError::Corrupt {
                    kid: key.kid.clone(),
                });
            };
            set.verification.insert(
                key.kid.clone(),
                VerificationKey {
                    kid: key.kid.clone(),
                    public_key,
                    decoding: DecodingKey::from_ed_der(&public_key),
                },
            );
        }
        *self.keys.write().expect("key ring lock") = set;
        Ok(())
    }

    pub fn active(&self) -> Option<ActiveSigningKey> {
        self.keys.read().expect("key ring lock").active.clone()
    }

    pub fn verification_key(&self, kid: &str) -> Option<VerificationKey> {
        self.keys
            .read()
            .expect("key ring lock")
            .verification
            .get(kid)
            .cloned()
    }

    /// True when `kid` is in the JWKS: its tokens may still be accepted.
    pub fn publishes(&self, kid: &str) -> bool {
        self.keys
            .read()
            .expect("key ring lock")
            .verification
            .contains_key(kid)
    }

    /// Looks a kid up, rereading the database once if it is unknown and the
    /// last read is older than a few seconds (another instance may have rotated).
    pub async fn find_or_reload(&self, kid: &str) -> Option<VerificationKey> {
        if let Some(key) = self.verification_key(kid) {
            return Some(key);
        }
        let stale = {
            let set = self.keys.read().expect("key ring lock");
            set.loaded_at.is_none_or(|t| {
                t.saturating_add(UNKNOWN_KID_RELOAD_MIN_INTERVAL) <= self.clock.now()
            })
        };
        if stale {
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %e, "could not reload signing keys");
            }
            return self.verification_key(kid);
        }
        None
    }

    /// Every key of the JWKS, sorted by kid for a stable document.
    pub fn published(&self) -> Vec<VerificationKey> {
        let mut keys: Vec<_> = self
            .keys
            .read()
            .expect("key ring lock")
            .verification
            .values()
            .cloned()
            .collect();
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        keys
    }

    /// Rereads the keys every RELOAD_INTERVAL until the task is dropped.
    pub fn spawn_reloader(&self) -> tokio::task::JoinHandle<()> {
        let ring = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = ring.reload().await {
                    tracing::warn!(error = %e, "could not reload signing keys");
                }
            }
        })
    }
}

/// Creates a new signing key and retires the current ones; the retired keys
/// stay published until every token they signed has expired (plus the leeway
/// and a margin for other instances to notice).
pub async fn rotate_signing_key(
    db: &DatabaseConnection,
    master: &MasterKey,
    now: Timestamp,
    access_ttl: Duration,
    leeway: Duration,
) -> Result<String, KeyError> {
    // Refuse to rotate under a master key that cannot open the current key:
    // that would strand every instance still configured with the right one.
    for key in storage::signing_keys::publishable(db, now).await? {
        if key.retired_at.is_none() {
            unseal(master, &key)?;
        }
    }
    let sealed = generate_signing_key(master);
    let verify_until = now
        .saturating_add(access_ttl)
        .saturating_add(leeway)
        .saturating_add(RETIREMENT_MARGIN);
    storage::signing_keys::rotate(db, &sealed, now, verify_until).await?;
    Ok(sealed.kid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_parses_hex_and_base64_of_32_bytes() {
        let key = MasterKey::generate();
        let hex = key.to_hex();
        assert_eq!(MasterKey::parse(&hex).unwrap().0, key.0);
        assert_eq!(MasterKey::parse(&STANDARD.encode(key.0)).unwrap().0, key.0);
        assert!(MasterKey::parse("abcd").is_err());
        assert!(MasterKey::parse(&STANDARD.encode([0u8; 16])).is_err());
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_master() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_ne!(a.successor_key(), a.derive("signing-key-sealing"));
        assert_ne!(a.successor_key(), b.successor_key());
    }

    #[test]
    fn sealed_key_opens_only_under_its_master_key() {
        let master = MasterKey::generate();
        let sealed = generate_signing_key(&master);
        let stored = StoredSigningKey {
            kid: sealed.kid.clone(),
            public_key: sealed.public_key.clone(),
            sealed_private_key: sealed.sealed_private_key.clone(),
            created_at: Timestamp::from_millis(0),
            retired_at: None,
            verify_until: None,
        };
        assert!(unseal(&master, &stored).is_ok());
        assert!(matches!(
            unseal(&MasterKey::generate(), &stored),
            Err(KeyError::WrongMasterKey { .. })
        ));
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint() {
        // RFC 8037 appendix A.3: thumbprint of the example Ed25519 key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let x: [u8; 32] = x.try_into().unwrap();
        assert_eq!(key_id(&x), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }
}
