use sea_orm_migration::prelude::*;

use super::table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ServiceSettings {
    Table,
    Name,
    Value,
}

/// The settings every instance on this database must share, by name
/// (see domain/service.rs): a name/value table, so a setting added later
/// needs no migration.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table(ServiceSettings::Table)
            .if_not_exists()
            .col(
                ColumnDef::new(ServiceSettings::Name)
                    .string_len(64)
                    .not_null()
                    .primary_key(),
            )
            .col(
                ColumnDef::new(ServiceSettings::Value)
                    .string_len(2048)
                    .not_null(),
            )
            .to_owned();
        table_options(manager, &mut table);
        manager.create_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServiceSettings::Table).to_owned())
            .await
    }
}
