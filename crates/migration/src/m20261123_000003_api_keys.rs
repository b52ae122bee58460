//! API keys for integrators and the platform operator.
//!
//! - `api_keys`: one row per practice key; the secret is stored only as its
//!   SHA-256 (`token_hash`, unique: the per-request lookup), with a short
//!   non-secret `hint`; listed by practice and creation time.
//! - `platform_operators`: the accounts granted the operator role (no practice).
//! - `operator_sessions`: operators' sessions, found by token hash (unique).

use sea_orm_migration::{prelude::*, schema::*};

use crate::create_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organisations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    OrganisationId,
    Name,
    Role,
    TokenHash,
    Hint,
    CreatedAt,
    CreatedBy,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum PlatformOperators {
    Table,
    UserId,
    GrantedAt,
}

#[derive(DeriveIden)]
enum OperatorSessions {
    Table,
    Id,
    UserId,
    TokenHash,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
    RevokedAt,
}

fn references(
    name: &str,
    table: impl IntoIden,
    from: impl IntoIden,
    to_table: impl IntoIden,
    to: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, from)
        .to(to_table, to)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(uuid(ApiKeys::Id).primary_key())
                    .col(uuid(ApiKeys::OrganisationId))
                    .col(text(ApiKeys::Name))
                    .col(string_len(ApiKeys::Role, 32))
                    .col(blob(ApiKeys::TokenHash))
                    .col(string_len(ApiKeys::Hint, 32))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .col(uuid(ApiKeys::CreatedBy))
                    .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                    .foreign_key(&mut references(
                        "api_keys_organisation_fk",
                        ApiKeys::Table,
                        ApiKeys::OrganisationId,
                        Organisations::Table,
                        Organisations::Id,
                    ))
                    .foreign_key(&mut references(
                        "api_keys_created_by_fk",
                        ApiKeys::Table,
                        ApiKeys::CreatedBy,
                        Users::Table,
                        Users::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "api_keys_token_hash",
            ApiKeys::Table,
            &[ApiKeys::TokenHash.into_iden()],
            true,
        )
        .await?;
        create_index(
            manager,
            "api_keys_organisation",
            ApiKeys::Table,
            &[
                ApiKeys::OrganisationId.into_iden(),
                ApiKeys::CreatedAt.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(PlatformOperators::Table)
                    .col(uuid(PlatformOperators::UserId).primary_key())
                    .col(timestamp_with_time_zone(PlatformOperators::GrantedAt))
                    .foreign_key(&mut references(
                        "platform_operators_user_fk",
                        PlatformOperators::Table,
                        PlatformOperators::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OperatorSessions::Table)
                    .col(uuid(OperatorSessions::Id).primary_key())
                    .col(uuid(OperatorSessions::UserId))
                    .col(blob(OperatorSessions::TokenHash))
                    .col(timestamp_with_time_zone(OperatorSessions::CreatedAt))
                    .col(timestamp_with_time_zone(OperatorSessions::LastSeenAt))
                    .col(timestamp_with_time_zone(OperatorSessions::ExpiresAt))
                    .col(timestamp_with_time_zone_null(OperatorSessions::RevokedAt))
                    .foreign_key(&mut references(
                        "operator_sessions_user_fk",
                        OperatorSessions::Table,
                        OperatorSessions::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "operator_sessions_token_hash",
            OperatorSessions::Table,
            &[OperatorSessions::TokenHash.into_iden()],
            true,
        )
        .await?;
        create_index(
            manager,
            "operator_sessions_user",
            OperatorSessions::Table,
            &[OperatorSessions::UserId.into_iden()],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OperatorSessions::Table.into_iden(),
            PlatformOperators::Table.into_iden(),
            ApiKeys::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
