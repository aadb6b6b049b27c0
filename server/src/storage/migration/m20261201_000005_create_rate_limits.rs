//! Throttling counters shared by every instance on the database (issue 16):
//! one row per fixed window, keyed by a 32-byte hash (never an email).

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RateLimits {
    Table,
    LimitKey,
    Hits,
    ResetsAt,
}

/// The table, also created on first use in a separate limits database.
pub fn rate_limits_table(backend: DbBackend) -> TableCreateStatement {
    let mut table = Table::create()
        .table(RateLimits::Table)
        .if_not_exists()
        .col(
            ColumnDef::new(RateLimits::LimitKey)
                .binary_len(32)
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(RateLimits::Hits).big_integer().not_null())
        .col(
            ColumnDef::new(RateLimits::ResetsAt)
                .big_integer()
                .not_null(),
        )
        .to_owned();
    if backend == DbBackend::MySql {
        table.engine("InnoDB");
    }
    table
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(rate_limits_table(manager.get_database_backend()))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RateLimits::Table).to_owned())
            .await
    }
}
