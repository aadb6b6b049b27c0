//! Refresh tokens: 256 random bits, base64url. The database keeps only their
//! SHA-256; a rotated token's successor is an HMAC of it under a key derived
//! from the master secret, so a repeat within the grace yields the same
//! successor without the server ever storing a token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::keys::random_bytes;

/// An opaque refresh token as the client holds it. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// What the database stores in place of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenHash(pub [u8; 32]);

/// Longer inputs cannot be tokens of ours; they are refused without hashing.
pub const MAX_PRESENTED_LEN: usize = 512;

impl RefreshToken {
    pub fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
    }

    /// Wraps what a client presented; `None` when it cannot possibly be a token.
    pub fn presented(raw: &str) -> Option<Self> {
        (!raw.is_empty() && raw.len() <= MAX_PRESENTED_LEN).then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> RefreshTokenHash {
        RefreshTokenHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// The token that replaces this one on rotation.
    pub fn successor(&self, successor_key: &[u8; 32]) -> RefreshToken {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(successor_key).expect("HMAC accepts a 32-byte key");
        mac.update(b"baton/v1/successor\0");
        mac.update(self.0.as_bytes());
        Self(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_carry_256_bits_in_base64url() {
        let token = RefreshToken::generate();
        assert_eq!(token.expose().len(), 43);
        assert!(
            token
                .expose()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(token, RefreshToken::generate());
    }

    #[test]
    fn the_successor_is_deterministic_and_keyed() {
        let token = RefreshToken::generate();
        let key = [7u8; 32];
        assert_eq!(token.successor(&key), token.successor(&key));
        assert_ne!(token.successor(&key), token.successor(&[8u8; 32]));
        assert_ne!(token.successor(&key), token);
        assert_eq!(token.successor(&key).expose().len(), 43);
    }

    #[test]
    fn the_hash_is_sha256_of_the_token_text() {
        let token = RefreshToken::presented("abc").unwrap();
        assert_eq!(
            token.hash().0[..4],
            [0xba, 0x78, 0x16, 0xbf] // SHA-256("abc")
        );
    }

    #[test]
    fn implausible_inputs_are_not_tokens() {
        assert!(RefreshToken::presented("").is_none());
        assert!(RefreshToken::presented(&"a".repeat(513)).is_none());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = RefreshToken::generate();
        assert!(!format!("{token:?}").contains(token.expose()));
    }
}
