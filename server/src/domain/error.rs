use crate::storage::StorageError;

/// Every way a domain operation can fail. The HTTP layer maps each variant to
/// a problem response in one place (`http::error`).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Validation(String),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("registration is closed on this instance")]
    RegistrationClosed,
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("no refresh token was presented")]
    RefreshTokenMissing,
    #[error("the refresh token is not known")]
    RefreshTokenInvalid,
    #[error("the refresh token has expired")]
    RefreshTokenExpired,
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    #[error("the session has been revoked")]
    SessionRevoked,
    #[error("no such session")]
    SessionNotFound,
    #[error("the account no longer exists")]
    AccountNotFound,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("unexpected failure: {0:#}")]
    Unexpected(#[from] anyhow::Error),
}

impl AuthError {
    /// A definitive refresh failure: the session is over for this token (a
    /// client logs out on these; anything else is worth retrying).
    pub fn ends_the_session(&self) -> bool {
        matches!(
            self,
            Self::RefreshTokenMissing
                | Self::RefreshTokenInvalid
                | Self::RefreshTokenExpired
                | Self::RefreshTokenReused
                | Self::SessionRevoked
        )
    }
}
