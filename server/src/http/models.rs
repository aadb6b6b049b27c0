//! Request and response bodies, as the OpenAPI document shows them.

use chrono::{DateTime, Utc};
use poem_openapi::types::Example;
use poem_openapi::{Object, Tags};

use super::strict_string::StrictString;
use crate::domain::Timestamp;
use crate::domain::accounts::Account;
use crate::domain::sessions::SessionSummary;

#[derive(Tags)]
pub enum ApiTags {
    /// Registration, login, refresh, logout and the current user.
    Auth,
    /// The caller's sessions (devices): list and revoke.
    Sessions,
    /// Keys and settings for clients and resource servers.
    Discovery,
    /// Liveness and readiness.
    Health,
}

pub fn datetime(t: Timestamp) -> DateTime<Utc> {
    t.to_datetime()
}

/// Email and password of a new account. Unknown fields are refused.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct RegisterRequest {
    /// Compared without regard to case: `A@x.test` and `a@x.test` are one account.
    pub email: StrictString,
    /// 8 to 128 characters (Unicode scalar values); anything goes otherwise.
    pub password: StrictString,
}

impl Example for RegisterRequest {
    fn example() -> Self {
        Self {
            email: "ada@example.com".into(),
            password: "correct horse battery staple".into(),
        }
    }
}

/// Credentials, and the channel for the refresh token. Unknown fields are refused.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct LoginRequest {
    pub email: StrictString,
    pub password: StrictString,
    /// `true` for non-browser clients: the refresh token comes in the body
    /// instead of the `HttpOnly` cookie. Default `false`.
    pub refresh_token_in_body: Option<bool>,
}

impl Example for LoginRequest {
    fn example() -> Self {
        Self {
            email: "ada@example.com".into(),
            password: "correct horse battery staple".into(),
            refresh_token_in_body: Some(false),
        }
    }
}

/// The refresh token for body delivery; omit it (or send `{}`) to use the cookie.
/// Unknown fields are refused, so a misspelt `refresh_token` cannot silently
/// fall back to the cookie.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct RefreshRequest {
    pub refresh_token: Option<StrictString>,
}

impl Example for RefreshRequest {
    fn example() -> Self {
        Self {
            refresh_token: Some("3q2-7wEXAMPLEu9Sx4f0Jq8h2m1c5V6bN7zK0pLrT1s".into()),
        }
    }
}

/// The refresh token to revoke, for body delivery; omit it to use the cookie.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct LogoutRequest {
    pub refresh_token: Option<StrictString>,
}

impl Example for LogoutRequest {
    fn example() -> Self {
        Self {
            refresh_token: Some("3q2-7wEXAMPLEu9Sx4f0Jq8h2m1c5V6bN7zK0pLrT1s".into()),
        }
    }
}

/// A token pair. `refresh_token` is present only on body delivery; browsers
/// get it in the `HttpOnly` cookie instead.
#[derive(Debug, Object)]
#[oai(example)]
pub struct TokenPair {
    /// A JWT (`typ: at+jwt`, EdDSA) for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
    /// Only when the refresh token was asked for (or came) in the body.
    #[oai(skip_serializing_if_is_none)]
    pub refresh_token: Option<String>,
}

impl Example for TokenPair {
    fn example() -> Self {
        Self {
            access_token:
                "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6Ii4uLiJ9.eyJzdWIiOiIuLi4ifQ.c2ln"
                    .into(),
            token_type: "Bearer".into(),
            expires_in: 900,
            refresh_expires_in: 604_800,
            refresh_token: None,
        }
    }
}

/// An account.
#[derive(Debug, Object)]
#[oai(example)]
pub struct User {
    pub id: String,
    /// As registered.
    pub email: String,
    pub created_at: DateTime<Utc>,
}

impl From<Account> for User {
    fn from(a: Account) -> Self {
        Self {
            id: a.id,
            email: a.email,
            created_at: datetime(a.created_at),
        }
    }
}

impl Example for User {
    fn example() -> Self {
        Self {
            id: "0b7d2c1e-3f4a-4b5c-8d9e-0f1a2b3c4d5e".into(),
            email: "ada@example.com".into(),
            created_at: DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default(),
        }
    }
}

/// A live session (one login on one device, with its chain of refresh tokens).
#[derive(Debug, Object)]
#[oai(example)]
pub struct Session {
    /// The session id: the `sid` claim of its access tokens.
    pub id: String,
    /// The login.
    pub created_at: DateTime<Utc>,
    /// The latest login or refresh.
    pub last_used_at: DateTime<Utc>,
    /// When its live refresh token expires.
    pub expires_at: DateTime<Utc>,
    /// As sent at the latest login or refresh.
    pub user_agent: Option<String>,
    /// True for the session of the access token making the call.
    pub current: bool,
}

impl From<SessionSummary> for Session {
    fn from(s: SessionSummary) -> Self {
        Self {
            id: s.id,
            created_at: datetime(s.created_at),
            last_used_at: datetime(s.last_used_at),
            expires_at: datetime(s.expires_at),
            user_agent: s.user_agent,
            current: s.current,
        }
    }
}

impl Example for Session {
    fn example() -> Self {
        let t = DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
        Self {
            id: "6a1f0e2d-9c8b-4a7e-b6d5-c4b3a2f1e0d9".into(),
            created_at: t,
            last_used_at: t,
            expires_at: t + chrono::Duration::days(7),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
            current: true,
        }
    }
}

/// An Ed25519 public key (RFC 8037).
#[derive(Debug, Object)]
pub struct Jwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    pub kid: String,
    /// `EdDSA`.
    pub alg: String,
    /// `sig`.
    #[oai(rename = "use")]
    pub use_: String,
}

/// Every public key that may have signed a still-valid access token.
#[derive(Debug, Object)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// The refresh cookie as this instance sets it.
#[derive(Debug, Object)]
pub struct RefreshCookieConfiguration {
    pub name: String,
    pub path: String,
    /// Always `Strict`.
    pub same_site: String,
}

/// What clients and resource servers need to know about this instance.
/// Durations are whole seconds.
#[derive(Debug, Object)]
pub struct AuthConfiguration {
    /// The `iss` of access tokens.
    pub issuer: String,
    /// The `aud` of access tokens.
    pub audience: String,
    /// Absolute URL of the JWK Set.
    pub jwks_uri: String,
    pub access_token_ttl: u64,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub access_token_leeway: u64,
    pub refresh_token_ttl: u64,
    pub session_max_lifetime: u64,
    /// Seconds after a rotation in which the rotated token yields the same successor; 0 = strict.
    pub refresh_reuse_grace: u64,
    pub refresh_cookie: RefreshCookieConfiguration,
}

/// Liveness or readiness.
#[derive(Debug, Object)]
pub struct Health {
    /// `ok`.
    pub status: String,
}
