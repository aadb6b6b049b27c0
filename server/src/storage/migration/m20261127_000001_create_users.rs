use sea_orm_migration::prelude::*;

use super::{id_column, table_options};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum Users {
    Table,
    Id,
    Email,
    EmailNormalized,
    PasswordHash,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table(Users::Table)
            .if_not_exists()
            .col(id_column(Users::Id).primary_key())
            .col(ColumnDef::new(Users::Email).string_len(320).not_null())
            .col(
                ColumnDef::new(Users::EmailNormalized)
                    .string_len(320)
                    .not_null()
                    .unique_key(),
            )
            .col(
                ColumnDef::new(Users::PasswordHash)
                    .string_len(255)
                    .not_null(),
            )
            .col(ColumnDef::new(Users::CreatedAt).big_integer().not_null())
            .to_owned();
        table_options(manager, &mut table);
        manager.create_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}
