//! The key hierarchy's storage: one row per wrapped organisation or subject key.
//!
//! `material` holds the wrapped key and becomes NULL when the key is destroyed
//! (crypto-shredding); the row stays, so a ciphertext naming the key can say
//! "destroyed" rather than "unknown". `(owner_kind, organisation_id, owner_id,
//! version)` is unique, which is what makes concurrent first use of a subject's key
//! create one key only; it also serves every lookup by owner.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CryptoKeys {
    Table,
    Id,
    OwnerKind,
    OwnerId,
    OrganisationId,
    Version,
    WrappedBy,
    Material,
    CreatedAt,
    DestroyedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CryptoKeys::Table)
                    .col(uuid(CryptoKeys::Id).primary_key())
                    .col(string_len(CryptoKeys::OwnerKind, 16))
                    .col(uuid(CryptoKeys::OwnerId))
                    .col(uuid(CryptoKeys::OrganisationId))
                    .col(integer(CryptoKeys::Version))
                    .col(uuid(CryptoKeys::WrappedBy))
                    .col(blob_null(CryptoKeys::Material))
                    .col(timestamp_with_time_zone(CryptoKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(CryptoKeys::DestroyedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("crypto_keys_owner_version")
                    .table(CryptoKeys::Table)
                    .col(CryptoKeys::OwnerKind)
                    .col(CryptoKeys::OrganisationId)
                    .col(CryptoKeys::OwnerId)
                    .col(CryptoKeys::Version)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CryptoKeys::Table).to_owned())
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
