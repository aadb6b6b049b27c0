//! Schema migrations, run at start-up and by `baton migrate`.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

mod m20261127_000001_create_users;
mod m20261127_000002_create_sessions;
mod m20261127_000003_create_refresh_tokens;
mod m20261127_000004_create_signing_keys;
mod m20261201_000005_create_rate_limits;
mod m20261201_000006_create_service_settings;
mod m20261201_000007_index_sessions_by_user_and_login;

pub use m20261201_000005_create_rate_limits::create_rate_limits;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_users::Migration),
            Box::new(m20261127_000002_create_sessions::Migration),
            Box::new(m20261127_000003_create_refresh_tokens::Migration),
            Box::new(m20261127_000004_create_signing_keys::Migration),
            Box::new(m20261201_000005_create_rate_limits::Migration),
            Box::new(m20261201_000006_create_service_settings::Migration),
            Box::new(m20261201_000007_index_sessions_by_user_and_login::Migration),
        ]
    }
}

/// On MySQL/MariaDB, tables use a binary collation: strings (emails,
/// user agents) compare exactly, never accent- or case-folded by the server.
fn table_options(manager: &SchemaManager, table: &mut TableCreateStatement) {
    if manager.get_database_backend() == DbBackend::MySql {
        table
            .engine("InnoDB")
            .character_set("utf8mb4")
            .collate("utf8mb4_bin");
    }
}

fn id_column<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).string_len(36).not_null().to_owned()
}
