//! Access tokens: short-lived JWTs (RFC 9068 profile) signed with the key
//! ring's Ed25519 key. Verification pins the algorithm and checks every claim
//! against the injectable clock (jsonwebtoken's own time checks are off: they
//! read the system clock and default to a 60 s leeway).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bounded_map::BoundedMap;
use super::keys::KeyRing;
use super::refresh_token::RefreshTokenHash;
use super::{Clock, SessionPolicy, Timestamp};

/// RFC 9068's media type for JWT access tokens.
pub const TOKEN_TYPE: &str = "at+jwt";
/// Tokens longer than this are rejected before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The session (refresh-token family) id.
    pub sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// Why an access token was refused; the HTTP layer turns each into a 401
/// with `WWW-Authenticate: Bearer error="invalid_token"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessTokenError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token is larger than 8 KiB")]
    Oversized,
    #[error("the access token is not signed with the expected algorithm")]
    WrongAlgorithm,
    #[error("the access token's typ is not at+jwt")]
    WrongType,
    #[error("the access token's header refers to external keys (jku, x5u, jwk, x5c) or has crit")]
    ForbiddenHeader,
    #[error("the access token's key id is unknown")]
    UnknownKey,
    #[error("the access token's signature is invalid")]
    BadSignature,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token was issued by someone else")]
    WrongIssuer,
    #[error("the access token is meant for another audience")]
    WrongAudience,
}

/// The protected header of every token we sign (RFC 9068 §2.1).
#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

#[derive(Debug, thiserror::Error)]
#[error("no signing key is available")]
pub struct NoSigningKey;

/// A freshly signed access token.
#[derive(Debug, Clone)]
pub struct IssuedAccessToken {
    pub token: String,
    /// `iat`, in whole seconds.
    pub issued_at: Timestamp,
    /// `exp`, in whole seconds.
    pub expires_at: Timestamp,
}

#[derive(Clone)]
pub struct AccessTokens {
    keys: KeyRing,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
    issuer: String,
    audience: String,
    verified: VerifiedTokens,
}

impl AccessTokens {
    pub fn new(
        keys: KeyRing,
        clock: Arc<dyn Clock>,
        policy: SessionPolicy,
        issuer: String,
        audience: String,
    ) -> Self {
        Self {
            keys,
            clock,
            policy,
            issuer,
            audience,
            verified: VerifiedTokens::default(),
        }
    }

    /// A token with a random `jti`, issued now.
    pub fn issue(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<IssuedAccessToken, NoSigningKey> {
        let jti = uuid::Uuid::new_v4().to_string();
        self.sign(user_id, session_id, self.clock.now(), jti)
    }

    /// The access token that goes with the refresh token `refresh`, issued
    /// at `issued_at`: its `jti` is derived from the refresh token and its
    /// `iat` is the refresh token's issue time, so handing out the same
    /// refresh token again gives the same access token, byte for byte
    /// (Ed25519 signatures are deterministic). Nothing is stored for it.
    pub fn issue_for(
        &self,
        user_id: &str,
        session_id: &str,
        issued_at: Timestamp,
        refresh: &RefreshTokenHash,
    ) -> Result<IssuedAccessToken, NoSigningKey> {
        self.sign(user_id, session_id, issued_at, derived_jti(refresh))
    }

    fn sign(
        &self,
        user_id: &str,
        session_id: &str,
        issued_at: Timestamp,
        jti: String,
    ) -> Result<IssuedAccessToken, NoSigningKey> {
        let key = self.keys.active().ok_or(NoSigningKey)?;
        // Whole seconds throughout, so `exp - iat` is exactly the ttl and
        // `expires_in` reports it as such.
        let iat = issued_at.as_secs();
        let exp =
            iat.saturating_add(i64::try_from(self.policy.access_ttl.as_secs()).unwrap_or(i64::MAX));
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            iat,
            exp,
            jti,
            sid: session_id.to_owned(),
            nbf: None,
        };
        let header = JwsHeader {
            alg: "EdDSA",
            typ: TOKEN_TYPE,
            kid: &key.kid,
        };
        let (header, payload) = match (serde_json::to_vec(&header), serde_json::to_vec(&claims)) {
            (Ok(header), Ok(payload)) => (header, payload),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "encoding an access token failed");
                return Err(NoSigningKey);
            }
        };
        let mut token = String::with_capacity(64 + 2 * (header.len() + payload.len()));
        URL_SAFE_NO_PAD.encode_string(header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = key.sign(token.as_bytes());
        token.push('.');
        token.push_str(&signature);
        Ok(IssuedAccessToken {
            token,
            issued_at: Timestamp::from_millis(iat.saturating_mul(1000)),
            expires_at: Timestamp::from_millis(exp.saturating_mul(1000)),
        })
    }

    /// Checks a token and returns its claims. A token whose signature was
    /// already checked is found by its SHA-256 in a bounded cache, and only
    /// its time claims (and that its key is still published) are checked
    /// again: clients present one access token many times during its life.
    pub async fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, AccessTokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AccessTokenError::Oversized);
        }
        if token.is_empty() {
            return Err(AccessTokenError::Malformed);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.verified.get(&digest, &self.keys) {
            self.check_claims(&claims)?;
            return Ok(claims);
        }
        let (kid, claims) = self.verify_signed(token).await?;
        let claims = Arc::new(claims);
        self.verified
            .insert(digest, kid, claims.clone(), self.now_millis());
        Ok(claims)
    }

    fn now_millis(&self) -> i64 {
        self.clock.now().as_millis()
    }

    /// The full check: header, key, signature, claims.
    async fn verify_signed(&self, token: &str) -> Result<(String, AccessClaims), AccessTokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithmName => AccessTokenError::WrongAlgorithm,
            _ => AccessTokenError::Malformed,
        })?;
        if header.alg != Algorithm::EdDSA {
            return Err(AccessTokenError::WrongAlgorithm);
        }
        if header.jku.is_some()
            || header.x5u.is_some()
            || header.jwk.is_some()
            || header.x5c.is_some()
            || header.crit.is_some()
        {
            return Err(AccessTokenError::ForbiddenHeader);
        }
        let typ_ok = header.typ.as_deref().is_some_and(|typ| {
            typ.eq_ignore_ascii_case(TOKEN_TYPE) || typ.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(AccessTokenError::WrongType);
        }
        let kid = header.kid.ok_or(AccessTokenError::UnknownKey)?;
        let key = self
            .keys
            .find_or_reload(&kid)
            .await
            .ok_or(AccessTokenError::UnknownKey)?;

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => AccessTokenError::BadSignature,
                ErrorKind::InvalidAlgorithm => AccessTokenError::WrongAlgorithm,
                _ => AccessTokenError::Malformed,
            })?;
        self.check_claims(&data.claims)?;
        Ok((kid, data.claims))
    }

    fn check_claims(&self, claims: &AccessClaims) -> Result<(), AccessTokenError> {
        let now = self.now_millis();
        let leeway = i64::try_from(self.policy.leeway.as_millis()).unwrap_or(0);
        let secs = |s: i64| s.saturating_mul(1000);
        if claims.iss != self.issuer {
            return Err(AccessTokenError::WrongIssuer);
        }
        if claims.aud != self.audience {
            return Err(AccessTokenError::WrongAudience);
        }
        if secs(claims.exp) + leeway <= now {
            return Err(AccessTokenError::Expired);
        }
        if secs(claims.iat) - leeway > now {
            return Err(AccessTokenError::NotYetValid);
        }
        if let Some(nbf) = claims.nbf
            && secs(nbf) - leeway > now
        {
            return Err(AccessTokenError::NotYetValid);
        }
        if claims.sub.is_empty() || claims.sid.is_empty() || claims.jti.is_empty() {
            return Err(AccessTokenError::Malformed);
        }
        Ok(())
    }
}

/// Tokens whose signature and claims have been checked, keyed by the SHA-256
/// of the whole token: an entry is found only by presenting exactly the
/// bytes that were verified, and the lookup compares digests, so its timing
/// says nothing about any token. Expired entries are the first to go.
#[derive(Clone)]
struct VerifiedTokens(Arc<BoundedMap<[u8; 32], VerifiedToken>>);

struct VerifiedToken {
    kid: String,
    claims: Arc<AccessClaims>,
}

/// About 0.5 KiB per entry: a few MiB at most.
const VERIFIED_TOKENS_CAPACITY: usize = 8192;

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self(Arc::new(BoundedMap::new(VERIFIED_TOKENS_CAPACITY)))
    }
}

impl VerifiedTokens {
    /// The claims of a verified token whose key is still published.
    fn get(&self, digest: &[u8; 32], keys: &KeyRing) -> Option<Arc<AccessClaims>> {
        self.0.get(digest, |entry| {
            keys.publishes(&entry.kid).then(|| entry.claims.clone())
        })
    }

    fn insert(&self, digest: [u8; 32], kid: String, claims: Arc<AccessClaims>, now_millis: i64) {
        self.0.insert(digest, VerifiedToken { kid, claims }, |e| {
            e.claims.exp.saturating_mul(1000) > now_millis
        });
    }
}

/// A `jti` for the access token of a refresh token: 128 bits of a hash of
/// its stored hash, base64url. Unique as the refresh tokens are; the refresh
/// token cannot be recovered from it.
fn derived_jti(refresh: &RefreshTokenHash) -> String {
    let mut digest = Sha256::new();
    digest.update(b"baton/v1/jti\0");
    digest.update(refresh.0);
    URL_SAFE_NO_PAD.encode(&digest.finalize()[..16])
}
