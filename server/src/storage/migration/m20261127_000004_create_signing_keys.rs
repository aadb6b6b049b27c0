use sea_orm_migration::prelude::*;

use super::table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Algorithm,
    PublicKey,
    SealedPrivateKey,
    CreatedAt,
    RetiredAt,
    VerifyUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table(SigningKeys::Table)
            .if_not_exists()
            .col(
                ColumnDef::new(SigningKeys::Kid)
                    .string_len(64)
                    .not_null()
                    .primary_key(),
            )
            .col(
                ColumnDef::new(SigningKeys::Algorithm)
                    .string_len(16)
                    .not_null(),
            )
            .col(
                ColumnDef::new(SigningKeys::PublicKey)
                    .var_binary(64)
                    .not_null(),
            )
            .col(
                ColumnDef::new(SigningKeys::SealedPrivateKey)
                    .var_binary(256)
                    .not_null(),
            )
            .col(
                ColumnDef::new(SigningKeys::CreatedAt)
                    .big_integer()
                    .not_null(),
            )
            .col(ColumnDef::new(SigningKeys::RetiredAt).big_integer().null())
            .col(
                ColumnDef::new(SigningKeys::VerifyUntil)
                    .big_integer()
                    .null(),
            )
            .to_owned();
        table_options(manager, &mut table);
        manager.create_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SigningKeys::Table).to_owned())
            .await
    }
}
