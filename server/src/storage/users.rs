use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::StorageError;
use super::entities::user;

pub use user::Model as UserRecord;

pub async fn insert<C: ConnectionTrait>(db: &C, record: UserRecord) -> Result<(), StorageError> {
    let model = user::ActiveModel {
        id: Set(record.id),
        email: Set(record.email),
        email_normalized: Set(record.email_normalized),
        password_hash: Set(record.password_hash),
        created_at: Set(record.created_at),
    };
    user::Entity::insert(model)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn find_by_normalized_email<C: ConnectionTrait>(
    db: &C,
    email_normalized: &str,
) -> Result<Option<UserRecord>, StorageError> {
    Ok(user::Entity::find()
        .filter(user::Column::EmailNormalized.eq(email_normalized))
        .one(db)
        .await?)
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<UserRecord>, StorageError> {
    Ok(user::Entity::find_by_id(id.to_owned()).one(db).await?)
}
