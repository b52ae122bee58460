//! The clinical context (issue 6): records and their versions, appointments,
//! care teams, break-glass grants, the exercise library and restrictions.
//!
//! - `clinical_records`: the current version of each record of a client, its body
//!   (`RecordBody` as JSON) sealed with the subject's data key; the kind is a label
//!   kept in the clear so lists filter without opening bodies. Paged by subject,
//!   kind, creation time and id;
//! - `clinical_record_versions`: every version ever written (version 1 too), keyed
//!   by record and version, indexed by subject for export and erasure;
//! - `clinical_appointments`: times, provider and status in the clear (the
//!   double-booking check reads them), the details sealed; indexed by provider and
//!   start (the overlap check) and by subject, start and id (the client's pages);
//! - `clinical_provider_schedules`: one row per provider whose version every
//!   booking, appointment change and new care-team membership of theirs bumps
//!   first, so that concurrent ones take turns (PostgreSQL's row lock, SQLite's
//!   write lock);
//! - `clinical_care_team`: providers' memberships of clients' care teams, by client
//!   and provider, and by practice and provider (a provider's client list);
//! - `clinical_break_glass`: emergency grants, the reason sealed; by client, holder
//!   and expiry (the access check), by practice and grant time (the review list),
//!   and by subject (export and erasure);
//! - `clinical_exercise_templates`: the exercise library, a practice's own
//!   (`organisation_id`) or shared (NULL). Not personal data: in the clear;
//! - `clinical_restrictions`: a subject's restricted categories (`all`, or a JSON
//!   array of category names).
//!
//! It also indexes `memberships` by practice, role, start and person: the keyset
//! of a practice's client list.
//!
//! There are deliberately no foreign keys to the identity tables: a subject's
//! clinical rows are erased in their own transaction, whatever identity's erasure
//! has done already, as consent's are.

use sea_orm_migration::{prelude::*, schema::*};

use crate::create_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Memberships {
    Table,
    OrganisationId,
    Role,
    CreatedAt,
    UserId,
}

#[derive(DeriveIden)]
enum ClinicalRecords {
    Table,
    Id,
    OrganisationId,
    ClientId,
    SubjectId,
    Kind,
    Version,
    BodyEnc,
    CreatedAt,
    CreatedBy,
    UpdatedAt,
    UpdatedBy,
}

#[derive(DeriveIden)]
enum ClinicalRecordVersions {
    Table,
    RecordId,
    Version,
    SubjectId,
    BodyEnc,
    WrittenAt,
    WrittenBy,
}

#[derive(DeriveIden)]
enum ClinicalAppointments {
    Table,
    Id,
    OrganisationId,
    ClientId,
    SubjectId,
    ProviderId,
    StartsAt,
    EndsAt,
    Status,
    DetailsEnc,
    Version,
    CreatedAt,
    CreatedBy,
}

#[derive(DeriveIden)]
enum ClinicalProviderSchedules {
    Table,
    ProviderId,
    Version,
}

#[derive(DeriveIden)]
enum ClinicalCareTeam {
    Table,
    Id,
    OrganisationId,
    ClientId,
    ProviderId,
    StartsOn,
    EndsOn,
    AddedBy,
    AddedAt,
}

#[derive(DeriveIden)]
enum ClinicalBreakGlass {
    Table,
    Id,
    OrganisationId,
    ClientId,
    SubjectId,
    HolderId,
    ReasonEnc,
    GrantedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ClinicalExerciseTemplates {
    Table,
    Id,
    OrganisationId,
    Name,
    Instructions,
    BodyRegion,
    Equipment,
    MediaUrl,
    CreatedAt,
    CreatedBy,
}

#[derive(DeriveIden)]
enum ClinicalRestrictions {
    Table,
    SubjectId,
    Scope,
}

/// The index of a practice's client list on `memberships`.
const MEMBERSHIPS_BY_ROLE: &str = "memberships_organisation_role_since";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_index(
            manager,
            MEMBERSHIPS_BY_ROLE,
            Memberships::Table,
            &[
                Memberships::OrganisationId.into_iden(),
                Memberships::Role.into_iden(),
                Memberships::CreatedAt.into_iden(),
                Memberships::UserId.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ClinicalRecords::Table)
                    .col(uuid(ClinicalRecords::Id).primary_key())
                    .col(uuid(ClinicalRecords::OrganisationId))
                    .col(uuid(ClinicalRecords::ClientId))
                    .col(uuid(ClinicalRecords::SubjectId))
                    .col(text(ClinicalRecords::Kind))
                    .col(integer(ClinicalRecords::Version))
                    .col(blob(ClinicalRecords::BodyEnc))
                    .col(timestamp_with_time_zone(ClinicalRecords::CreatedAt))
                    .col(uuid(ClinicalRecords::CreatedBy))
                    .col(timestamp_with_time_zone(ClinicalRecords::UpdatedAt))
                    .col(uuid(ClinicalRecords::UpdatedBy))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "clinical_records_by_subject",
            ClinicalRecords::Table,
            &[
                ClinicalRecords::SubjectId.into_iden(),
                ClinicalRecords::Kind.into_iden(),
                ClinicalRecords::CreatedAt.into_iden(),
                ClinicalRecords::Id.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ClinicalRecordVersions::Table)
                    .col(uuid(ClinicalRecordVersions::RecordId))
                    .col(integer(ClinicalRecordVersions::Version))
                    .col(uuid(ClinicalRecordVersions::SubjectId))
                    .col(blob(ClinicalRecordVersions::BodyEnc))
                    .col(timestamp_with_time_zone(ClinicalRecordVersions::WrittenAt))
                    .col(uuid(ClinicalRecordVersions::WrittenBy))
                    .primary_key(
                        Index::create()
                            .name("clinical_record_versions_pk")
                            .col(ClinicalRecordVersions::RecordId)
                            .col(ClinicalRecordVersions::Version),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "clinical_record_versions_by_subject",
            ClinicalRecordVersions::Table,
            &[ClinicalRecordVersions::SubjectId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ClinicalAppointments::Table)
                    .col(uuid(ClinicalAppointments::Id).primary_key())
                    .col(uuid(ClinicalAppointments::OrganisationId))
                    .col(uuid(ClinicalAppointments::ClientId))
                    .col(uuid(ClinicalAppointments::SubjectId))
                    .col(uuid(ClinicalAppointments::ProviderId))
                    .col(timestamp_with_time_zone(ClinicalAppointments::StartsAt))
                    .col(timestamp_with_time_zone(ClinicalAppointments::EndsAt))
                    .col(text(ClinicalAppointments::Status))
                    .col(blob(ClinicalAppointments::DetailsEnc))
                    .col(integer(ClinicalAppointments::Version))
                    .col(timestamp_with_time_zone(ClinicalAppointments::CreatedAt))
                    .col(uuid(ClinicalAppointments::CreatedBy))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "clinical_appointments_by_provider",
            ClinicalAppointments::Table,
            &[
                ClinicalAppointments::ProviderId.into_iden(),
                ClinicalAppointments::StartsAt.into_iden(),
            ],
            false,
        )
        .await?;
        create_index(
            manager,
            "clinical_appointments_by_subject",
            ClinicalAppointments::Table,
            &[
                ClinicalAppointments::SubjectId.into_iden(),
                ClinicalAppointments::StartsAt.into_iden(),
                ClinicalAppointments::Id.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ClinicalProviderSchedules::Table)
                    .col(uuid(ClinicalProviderSchedules::ProviderId).primary_key())
                    .col(big_integer(ClinicalProviderSchedules::Version))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ClinicalCareTeam::Table)
                    .col(uuid(ClinicalCareTeam::Id).primary_key())
                    .col(uuid(ClinicalCareTeam::OrganisationId))
                    .col(uuid(ClinicalCareTeam::ClientId))
                    .col(uuid(ClinicalCareTeam::ProviderId))
                    .col(date(ClinicalCareTeam::StartsOn))
                    .col(date_null(ClinicalCareTeam::EndsOn))
                    .col(uuid(ClinicalCareTeam::AddedBy))
                    .col(timestamp_with_time_zone(ClinicalCareTeam::AddedAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "clinical_care_team_by_client",
            ClinicalCareTeam::Table,
            &[
                ClinicalCareTeam::ClientId.into_iden(),
                ClinicalCareTeam::ProviderId.into_iden(),
            ],
            false,
        )
        .await?;
        create_index(
            manager,
            "clinical_care_team_by_provider",
            ClinicalCareTeam::Table,
            &[
                ClinicalCareTeam::OrganisationId.into_iden(),
                ClinicalCareTeam::ProviderId.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ClinicalBreakGlass::Table)
                    .col(uuid(ClinicalBreakGlass::Id).primary_key())
                    .col(uuid(ClinicalBreakGlass::OrganisationId))
                    .col(uuid(ClinicalBreakGlass::ClientId))
                    .col(uuid(ClinicalBreakGlass::SubjectId))
                    .col(uuid(ClinicalBreakGlass::HolderId))
                    .col(blob(ClinicalBreakGlass::ReasonEnc))
                    .col(timestamp_with_time_zone(ClinicalBreakGlass::GrantedAt))
                    .col(timestamp_with_time_zone(ClinicalBreakGlass::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "clinical_break_glass_by_holder",
            ClinicalBreakGlass::Table,
            &[
                ClinicalBreakGlass::ClientId.into_iden(),
                ClinicalBreakGlass::HolderId.into_iden(),
                ClinicalBreakGlass::ExpiresAt.into_iden(),
            ],
            false,
        )
        .await?;
        create_index(
            manager,
            "clinical_break_glass_by_organisation",
            ClinicalBreakGlass::Table,
            &[
                ClinicalBreakGlass::OrganisationId.into_iden(),
                ClinicalBreakGlass::GrantedAt.into_iden(),
                ClinicalBreakGlass::Id.into_iden(),
            ],
            false,
        )
        .await?;
        create_index(
            manager,
            "clinical_break_glass_by_subject",
            ClinicalBreakGlass::Table,
            &[ClinicalBreakGlass::SubjectId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ClinicalExerciseTemplates::Table)
                    .col(uuid(ClinicalExerciseTemplates::Id).primary_key())
                    .col(uuid_null(ClinicalExerciseTemplates::OrganisationId))
                    .col(text(ClinicalExerciseTemplates::Name))
                    .col(text(ClinicalExerciseTemplates::Instructions))
                    .col(text(ClinicalExerciseTemplates::BodyRegion))
                    .col(text(ClinicalExerciseTemplates::Equipment))
                    .col(text_null(ClinicalExerciseTemplates::MediaUrl))
                    .col(timestamp_with_time_zone(
                        ClinicalExerciseTemplates::CreatedAt,
                    ))
                    .col(uuid(ClinicalExerciseTemplates::CreatedBy))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "clinical_exercise_templates_by_organisation",
            ClinicalExerciseTemplates::Table,
            &[
                ClinicalExerciseTemplates::OrganisationId.into_iden(),
                ClinicalExerciseTemplates::CreatedAt.into_iden(),
                ClinicalExerciseTemplates::Id.into_iden(),
            ],
            false,
        )
        .await?;
        create_index(
            manager,
            "clinical_exercise_templates_by_time",
            ClinicalExerciseTemplates::Table,
            &[
                ClinicalExerciseTemplates::CreatedAt.into_iden(),
                ClinicalExerciseTemplates::Id.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ClinicalRestrictions::Table)
                    .col(uuid(ClinicalRestrictions::SubjectId).primary_key())
                    .col(text(ClinicalRestrictions::Scope))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ClinicalRestrictions::Table.into_iden(),
            ClinicalExerciseTemplates::Table.into_iden(),
            ClinicalBreakGlass::Table.into_iden(),
            ClinicalCareTeam::Table.into_iden(),
            ClinicalProviderSchedules::Table.into_iden(),
            ClinicalAppointments::Table.into_iden(),
            ClinicalRecordVersions::Table.into_iden(),
            ClinicalRecords::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name(MEMBERSHIPS_BY_ROLE)
                    .table(Memberships::Table)
                    .to_owned(),
            )
            .await
    }
}
