use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    TransactionTrait,
};

use super::StorageError;
use super::entities::signing_key;
use crate::domain::Timestamp;
use crate::domain::keys::SealedSigningKey;

#[derive(Debug, Clone)]
pub struct StoredSigningKey {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub sealed_private_key: Vec<u8>,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
    pub verify_until: Option<Timestamp>,
}

impl From<signing_key::Model> for StoredSigningKey {
    fn from(m: signing_key::Model) -> Self {
        Self {
            kid: m.kid,
            public_key: m.public_key,
            sealed_private_key: m.sealed_private_key,
            created_at: Timestamp::from_millis(m.created_at),
            retired_at: m.retired_at.map(Timestamp::from_millis),
            verify_until: m.verify_until.map(Timestamp::from_millis),
        }
    }
}

fn active_model(key: &SealedSigningKey, now: Timestamp) -> signing_key::ActiveModel {
    signing_key::ActiveModel {
        kid: Set(key.kid.clone()),
        algorithm: Set("EdDSA".to_owned()),
        public_key: Set(key.public_key.clone()),
        sealed_private_key: Set(key.sealed_private_key.clone()),
        created_at: Set(now.as_millis()),
        retired_at: Set(None),
        verify_until: Set(None),
    }
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    key: &SealedSigningKey,
    now: Timestamp,
) -> Result<(), StorageError> {
    signing_key::Entity::insert(active_model(key, now))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Keys that are active, or retired but still within their verification window.
pub async fn publishable<C: ConnectionTrait>(
    db: &C,
    now: Timestamp,
) -> Result<Vec<StoredSigningKey>, StorageError> {
    Ok(signing_key::Entity::find()
        .filter(
            Condition::any()
                .add(signing_key::Column::RetiredAt.is_null())
                .add(signing_key::Column::VerifyUntil.gt(now.as_millis())),
        )
        .all(db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// Retires every active key (publishing it until `verify_until`) and adds the
/// new one, in one transaction.
pub async fn rotate(
    db: &sea_orm::DatabaseConnection,
    key: &SealedSigningKey,
    now: Timestamp,
    verify_until: Timestamp,
) -> Result<(), StorageError> {
    let txn = db.begin().await?;
    signing_key::Entity::update_many()
        .col_expr(signing_key::Column::RetiredAt, Expr::value(now.as_millis()))
        .col_expr(
            signing_key::Column::VerifyUntil,
            Expr::value(verify_until.as_millis()),
        )
        .filter(signing_key::Column::RetiredAt.is_null())
        .exec(&txn)
        .await?;
    signing_key::Entity::insert(active_model(key, now))
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}
