use sea_orm_migration::prelude::*;

use super::m20261127_000002_create_sessions::Sessions;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The session list pages through a user's sessions newest login first:
/// this index serves it in order, however many sessions the user has.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user_created")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .col(Sessions::CreatedAt)
                    .col(Sessions::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_sessions_user_created")
                    .table(Sessions::Table)
                    .to_owned(),
            )
            .await
    }
}
