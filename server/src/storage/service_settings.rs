//! The recorded service settings (see domain/service.rs).

use std::collections::BTreeMap;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::StorageError;
use super::entities::service_setting;

/// Every recorded setting, by name; empty on a database no instance has served.
pub async fn recorded<C: ConnectionTrait>(
    db: &C,
) -> Result<BTreeMap<String, String>, StorageError> {
    Ok(service_setting::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.name, m.value))
        .collect())
}

/// Records (or replaces) these settings.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    entries: &[(&'static str, String)],
) -> Result<(), StorageError> {
    let models = entries
        .iter()
        .map(|(name, value)| service_setting::ActiveModel {
            name: Set((*name).to_owned()),
            value: Set(value.clone()),
        });
    service_setting::Entity::insert_many(models)
        .on_conflict(
            OnConflict::column(service_setting::Column::Name)
                .update_column(service_setting::Column::Value)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}
