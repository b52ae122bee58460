//! The Custodia schema as an ordered list of sea-orm migrations.
//!
//! Each migration is one file named `mYYYYMMDD_NNNNNN_what.rs` that declares its own
//! table and column idents, so an old migration never changes meaning when an
//! entity in `store` changes later. Migrations are written against sea-query so the
//! same file produces SQLite and PostgreSQL DDL, and each one runs in a transaction
//! on both (SQLite DDL is transactional too), so a failed migration leaves nothing
//! half-applied.
//!
//! Run them with `cargo xtask db up|down|status`; the server applies them at start
//! on the embedded SQLite default.

// `MigrationTrait` is declared with `&SchemaManager` (elided lifetime) behind
// async-trait; implementations must match it exactly.
#![allow(elided_lifetimes_in_paths)]

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_crypto_keys;
mod m20261122_000002_identity;
mod m20261123_000001_credentials;
mod m20261123_000002_members;
mod m20261123_000003_api_keys;
mod m20261123_000004_profiles;
mod m20261123_000005_invitations;
mod m20261123_000006_audit;
mod m20261123_000007_consent;
mod m20261124_000001_clinical;
mod m20261125_000001_billing;
mod m20261126_000001_data_rights;
mod m20261126_000002_consent_erasures;

/// Creates index `name` on `table` over `columns` (unique when asked): the one
/// helper migrations share; it names nothing of any schema.
async fn create_index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    columns: &[DynIden],
    unique: bool,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(column.clone());
    }
    if unique {
        index.unique();
    }
    manager.create_index(index.to_owned()).await
}

/// Every migration, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_crypto_keys::Migration),
            Box::new(m20261122_000002_identity::Migration),
            Box::new(m20261123_000001_credentials::Migration),
            Box::new(m20261123_000002_members::Migration),
            Box::new(m20261123_000004_profiles::Migration),
            Box::new(m20261123_000003_api_keys::Migration),
            Box::new(m20261123_000005_invitations::Migration),
            Box::new(m20261123_000006_audit::Migration),
            Box::new(m20261123_000007_consent::Migration),
            Box::new(m20261124_000001_clinical::Migration),
            Box::new(m20261125_000001_billing::Migration),
            Box::new(m20261126_000001_data_rights::Migration),
            Box::new(m20261126_000002_consent_erasures::Migration),
        ]
    }
}
