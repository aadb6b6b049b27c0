//! Accounts: registration and password authentication.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use super::bounded_map::BoundedMap;
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
    /// Accounts this instance has seen. Nothing ever changes an account's
    /// id, email or creation time, so every instance may keep its own copy
    /// and `find` needs the database only the first time.
    known: Arc<BoundedMap<String, Account>>,
}

/// About 150 bytes per account: a few MiB at most.
const KNOWN_ACCOUNTS_CAPACITY: usize = 16_384;

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
            known: Arc::new(BoundedMap::new(KNOWN_ACCOUNTS_CAPACITY)),
        }
    }

    fn remember(&self, account: &Account) {
        self.known
            .insert(account.id.clone(), account.clone(), |_| false);
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
                let account = Account::from(record);
                self.remember(&account);
                Ok(account)
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
            Some(record) if matches => {
                let account = Account::from(record);
                self.remember(&account);
                Ok(account)
            }
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// The account with this id; from memory when this instance has seen it.
    pub async fn find(&self, id: &str) -> Result<Account, AuthError> {
        if let Some(account) = self.known.get(id, |a| Some(a.clone())) {
            return Ok(account);
        }
        let account = users::find(&self.db, id)
            .await?
            .map(Account::from)
            .ok_or(AuthError::AccountNotFound)?;
        self.remember(&account);
        Ok(account)
    }
}
