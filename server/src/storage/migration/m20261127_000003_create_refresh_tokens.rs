use sea_orm_migration::prelude::*;

use super::m20261127_000002_create_sessions::Sessions;
use super::{id_column, table_options};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    SessionId,
    ParentId,
    TokenHash,
    IssuedAt,
    ExpiresAt,
    RotatedAt,
    RevokedAt,
    RevokeReason,
    UserAgent,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table(RefreshTokens::Table)
            .if_not_exists()
            .col(id_column(RefreshTokens::Id).primary_key())
            .col(id_column(RefreshTokens::SessionId))
            .col(
                ColumnDef::new(RefreshTokens::ParentId)
                    .string_len(36)
                    .null(),
            )
            .col(
                ColumnDef::new(RefreshTokens::TokenHash)
                    .var_binary(32)
                    .not_null()
                    .unique_key(),
            )
            .col(
                ColumnDef::new(RefreshTokens::IssuedAt)
                    .big_integer()
                    .not_null(),
            )
            .col(
                ColumnDef::new(RefreshTokens::ExpiresAt)
                    .big_integer()
                    .not_null(),
            )
            .col(
                ColumnDef::new(RefreshTokens::RotatedAt)
                    .big_integer()
                    .null(),
            )
            .col(
                ColumnDef::new(RefreshTokens::RevokedAt)
                    .big_integer()
                    .null(),
            )
            .col(
                ColumnDef::new(RefreshTokens::RevokeReason)
                    .string_len(32)
                    .null(),
            )
            .col(
                ColumnDef::new(RefreshTokens::UserAgent)
                    .string_len(512)
                    .null(),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_refresh_tokens_session")
                    .from(RefreshTokens::Table, RefreshTokens::SessionId)
                    .to(Sessions::Table, Sessions::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .to_owned();
        table_options(manager, &mut table);
        manager.create_table(table).await?;
        for (name, col) in [
            ("idx_refresh_tokens_session", RefreshTokens::SessionId),
            ("idx_refresh_tokens_expires", RefreshTokens::ExpiresAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(RefreshTokens::Table)
                        .col(col)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RefreshTokens::Table).to_owned())
            .await
    }
}
