//! Invitations to a practice for existing accounts.
//!
//! - `invitations`: a practice asks an existing account to take a role (and, with
//!   `guardian_of`, to be a minor's guardian); the membership is created only
//!   when the person accepts. Listed by person (`invitations_user_idx`).

use sea_orm_migration::{prelude::*, schema::*};

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
enum Invitations {
    Table,
    Id,
    UserId,
    OrganisationId,
    Role,
    GuardianOf,
    InvitedBy,
    CreatedAt,
    AcceptedAt,
    DeclinedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .col(uuid(Invitations::Id).primary_key())
                    .col(uuid(Invitations::UserId))
                    .col(uuid(Invitations::OrganisationId))
                    .col(string_len(Invitations::Role, 32))
                    .col(uuid_null(Invitations::GuardianOf))
                    .col(uuid(Invitations::InvitedBy))
                    .col(timestamp_with_time_zone(Invitations::CreatedAt))
                    .col(timestamp_with_time_zone_null(Invitations::AcceptedAt))
                    .col(timestamp_with_time_zone_null(Invitations::DeclinedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("invitations_user_fk")
                            .from(Invitations::Table, Invitations::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("invitations_organisation_fk")
                            .from(Invitations::Table, Invitations::OrganisationId)
                            .to(Organisations::Table, Organisations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("invitations_user_idx")
                    .table(Invitations::Table)
                    .col(Invitations::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Invitations::Table).to_owned())
            .await
    }
}
