use sea_orm_migration::prelude::*;

use super::m20261127_000001_create_users::Users;
use super::{id_column, table_options};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum Sessions {
    Table,
    Id,
    UserId,
    CreatedAt,
    LastUsedAt,
    AbsoluteExpiresAt,
    RevokedAt,
    RevokeReason,
    UserAgent,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table(Sessions::Table)
            .if_not_exists()
            .col(id_column(Sessions::Id).primary_key())
            .col(id_column(Sessions::UserId))
            .col(ColumnDef::new(Sessions::CreatedAt).big_integer().not_null())
            .col(
                ColumnDef::new(Sessions::LastUsedAt)
                    .big_integer()
                    .not_null(),
            )
            .col(
                ColumnDef::new(Sessions::AbsoluteExpiresAt)
                    .big_integer()
                    .not_null(),
            )
            .col(ColumnDef::new(Sessions::RevokedAt).big_integer().null())
            .col(ColumnDef::new(Sessions::RevokeReason).string_len(32).null())
            .col(ColumnDef::new(Sessions::UserAgent).string_len(512).null())
            .foreign_key(
                ForeignKey::create()
                    .name("fk_sessions_user")
                    .from(Sessions::Table, Sessions::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .to_owned();
        table_options(manager, &mut table);
        manager.create_table(table).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await
    }
}
