//! The people of a practice: clients' dates of birth, minors' guardians, and the
//! deletion flags of accounts found to belong to a child under 13 (O1).
//!
//! A date of birth is personal data: it is stored only sealed with the person's
//! data key (`date_of_birth_enc`, bound to the user id and the column). Lookups on
//! a request path are indexed: dates of birth and deletion flags by person (their
//! primary keys), guardianships by minor (the leading column of their primary key)
//! and by guardian, deletion flags by time (for the erasure job), and members of a
//! practice by practice and person (the keyset of the member list).

use sea_orm_migration::{prelude::*, schema::*};

use crate::create_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Organisations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    OrganisationId,
    UserId,
    Role,
}

#[derive(DeriveIden)]
enum BirthDates {
    Table,
    UserId,
    DateOfBirthEnc,
    RecordedAt,
}

#[derive(DeriveIden)]
enum Guardianships {
    Table,
    MinorId,
    GuardianId,
    OrganisationId,
    LinkedBy,
    LinkedAt,
}

#[derive(DeriveIden)]
enum DeletionFlags {
    Table,
    UserId,
    OrganisationId,
    ReportedBy,
    FlaggedAt,
}

fn to_user(name: &str, table: impl IntoIden, from: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, from)
        .to(Users::Table, Users::Id)
        .to_owned()
}

fn to_organisation(
    name: &str,
    table: impl IntoIden,
    from: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, from)
        .to(Organisations::Table, Organisations::Id)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_index(
            manager,
            "memberships_organisation_user",
            Memberships::Table,
            &[
                Memberships::OrganisationId.into_iden(),
                Memberships::UserId.into_iden(),
                Memberships::Role.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(BirthDates::Table)
                    .col(uuid(BirthDates::UserId).primary_key())
                    .col(blob(BirthDates::DateOfBirthEnc))
                    .col(timestamp_with_time_zone(BirthDates::RecordedAt))
                    .foreign_key(&mut to_user(
                        "birth_dates_user_fk",
                        BirthDates::Table,
                        BirthDates::UserId,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Guardianships::Table)
                    .col(uuid(Guardianships::MinorId))
                    .col(uuid(Guardianships::GuardianId))
                    .col(uuid(Guardianships::OrganisationId))
                    .col(uuid(Guardianships::LinkedBy))
                    .col(timestamp_with_time_zone(Guardianships::LinkedAt))
                    .primary_key(
                        Index::create()
                            .name("guardianships_pk")
                            .col(Guardianships::MinorId)
                            .col(Guardianships::GuardianId),
                    )
                    .foreign_key(&mut to_user(
                        "guardianships_minor_fk",
                        Guardianships::Table,
                        Guardianships::MinorId,
                    ))
                    .foreign_key(&mut to_user(
                        "guardianships_guardian_fk",
                        Guardianships::Table,
                        Guardianships::GuardianId,
                    ))
                    .foreign_key(&mut to_user(
                        "guardianships_linked_by_fk",
                        Guardianships::Table,
                        Guardianships::LinkedBy,
                    ))
                    .foreign_key(&mut to_organisation(
                        "guardianships_organisation_fk",
                        Guardianships::Table,
                        Guardianships::OrganisationId,
                    ))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "guardianships_guardian",
            Guardianships::Table,
            &[Guardianships::GuardianId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(DeletionFlags::Table)
                    .col(uuid(DeletionFlags::UserId).primary_key())
                    .col(uuid(DeletionFlags::OrganisationId))
                    .col(uuid(DeletionFlags::ReportedBy))
                    .col(timestamp_with_time_zone(DeletionFlags::FlaggedAt))
                    .foreign_key(&mut to_user(
                        "deletion_flags_user_fk",
                        DeletionFlags::Table,
                        DeletionFlags::UserId,
                    ))
                    .foreign_key(&mut to_user(
                        "deletion_flags_reported_by_fk",
                        DeletionFlags::Table,
                        DeletionFlags::ReportedBy,
                    ))
                    .foreign_key(&mut to_organisation(
                        "deletion_flags_organisation_fk",
                        DeletionFlags::Table,
                        DeletionFlags::OrganisationId,
                    ))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "deletion_flags_flagged_at",
            DeletionFlags::Table,
            &[DeletionFlags::FlaggedAt.into_iden()],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DeletionFlags::Table.into_iden(),
            Guardianships::Table.into_iden(),
            BirthDates::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("memberships_organisation_user")
                    .table(Memberships::Table)
                    .to_owned(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
