//! Throttling counters shared by every instance on the database (issue 16):
//! one row per fixed window, keyed by a 32-byte hash (never an email).

use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
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

/// The statement that creates the table (if it does not exist), also run on
/// first use of a separate limits database. On PostgreSQL the table is
/// UNLOGGED: counters need no crash safety, and skipping the WAL took the
/// upsert's commit flush off every login (see benches/limits.rs).
pub fn create_rate_limits(backend: DbBackend) -> Statement {
    let mut statement = backend.build(&rate_limits_table(backend));
    if backend == DbBackend::Postgres {
        statement.sql = statement
            .sql
            .replacen("CREATE TABLE", "CREATE UNLOGGED TABLE", 1);
    }
    statement
}

fn rate_limits_table(backend: DbBackend) -> TableCreateStatement {
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
        let statement = create_rate_limits(manager.get_database_backend());
        manager.get_connection().execute_raw(statement).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RateLimits::Table).to_owned())
            .await
    }
}
