//! Accounts: registration and password authentication.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use super::email::Email;
use super::password::{Password, PasswordHasher};
use super::{AuthError, Clock, Timestamp};
use crate::storage::{StorageError, users};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub created_at: Timestamp,
}

impl From<users::UserRecord> for Account {
    fn from(r: users::UserRecord) -> Self {
        Self {
            id: r.id,
            email: r.email,
            created_at: Timestamp::from_millis(r.created_at),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    Open,
    Closed,
}

#[derive(Clone)]
pub struct Accounts {
    db: DatabaseConnection,
    hasher: PasswordHasher,
    clock: Arc<dyn Clock>,
    registration: Registration,
}

impl Accounts {
    pub fn new(
        db: DatabaseConnection,
        hasher: PasswordHasher,
        clock: Arc<dyn Clock>,
        registration: Registration,
    ) -> Self {
        Self {
            db,
            hasher,
            clock,
            registration,
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn register(&self, email: &str, password: String) -> Result<Account, AuthError> {
        if self.registration == Registration::Closed {
            return Err(AuthError::RegistrationClosed);
        }
        let email = Email::parse(email)?;
        let password = Password::parse(password)?;
        if users::find_by_normalized_email(&self.db, &email.normalized())
            .await?
            .is_some()
        {
            return Err(AuthError::EmailTaken);
        }
        let record = users::UserRecord {
            id: uuid::Uuid::new_v4().to_string(),
            email: email.as_str().to_owned(),
            email_normalized: email.normalized(),
            password_hash: self.hasher.hash(password).await?,
            created_at: self.clock.now().as_millis(),
        };
        match users::insert(&self.db, record.clone()).await {
            // Two registrations raced past the lookup: the index decides.
            Err(StorageError::UniqueViolation(_)) => Err(AuthError::EmailTaken),
            Err(e) => Err(e.into()),
            Ok(()) => {
                tracing::info!(user_id = %record.id, "account registered");
                Ok(record.into())
            }
        }
    }

    /// Checks an email and password. Unknown emails cost one dummy Argon2
    /// verification, so both failures look and take the same.
    #[tracing::instrument(skip_all)]
    pub async fn authenticate(&self, email: &str, password: String) -> Result<Account, AuthError> {
        let record = match Email::parse(email) {
            Ok(email) => users::find_by_normalized_email(&self.db, &email.normalized()).await?,
            Err(_) => None,
        };
        let stored_hash = record.as_ref().map(|r| r.password_hash.clone());
        let matches = self
            .hasher
            .verify(Password::unchecked(password), stored_hash)
            .await?;
        match record {
            Some(record) if matches => Ok(record.into()),
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    pub async fn find(&self, id: &str) -> Result<Account, AuthError> {
        users::find(&self.db, id)
            .await?
            .map(Into::into)
            .ok_or(AuthError::AccountNotFound)
    }
}
