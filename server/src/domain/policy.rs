use std::time::Duration;

/// The lifetimes that govern every session, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Life of an access token.
    pub access_ttl: Duration,
    /// Allowed clock skew when checking `exp`, `nbf` and `iat` (at most 5 s).
    pub leeway: Duration,
    /// Sliding life of each refresh token from its issue.
    pub refresh_ttl: Duration,
    /// Absolute cap on a family's life, counted from its login.
    pub session_max_lifetime: Duration,
    /// Window after a rotation in which the rotated token still yields its
    /// (unused) successor instead of counting as reuse. Zero means strict.
    pub reuse_grace: Duration,
}

impl SessionPolicy {
    pub const MAX_LEEWAY: Duration = Duration::from_secs(5);
}
