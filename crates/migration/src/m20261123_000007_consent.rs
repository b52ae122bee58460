//! The consent context (issue 5): the ledger, its projection, the sealed evidence
//! and authorisations, practices' settings and published policy versions.
//!
//! - `consent_subjects`: one row per subject with a consent record: the link from
//!   the subject to their pseudonymous chain (unique), their practice, whether they
//!   are a minor, the head of their chain (its sequence and hash, NULL before the
//!   first event) and the projection (`SubjectState` as JSON). An append moves the
//!   head with a conditional `UPDATE`; erasure deletes the row, which is the link;
//! - `consent_events`: the hash-chained events, keyed by chain and sequence,
//!   append-only: nothing updates or deletes these rows. Times are microseconds
//!   since the epoch as integers, exactly what the hashes cover;
//! - `consent_evidence`: beside each event, its salted evidence as JSON sealed with
//!   the subject's data key; indexed by subject so erasure deletes it by subject;
//! - `consent_authorisations`: HIPAA authorisations as JSON sealed with the
//!   subject's data key, indexed by subject and recording time;
//! - `consent_settings`: one row per practice that changed its settings;
//! - `consent_policies`: published policy versions, keyed by document and version.
//!
//! There are deliberately no foreign keys to the identity tables: the pseudonymous
//! ledger outlives the accounts it once belonged to.

use sea_orm_migration::{prelude::*, schema::*};

use crate::create_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConsentSubjects {
    Table,
    SubjectId,
    ChainId,
    OrganisationId,
    Minor,
    HeadSequence,
    HeadHash,
    State,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ConsentEvents {
    Table,
    ChainId,
    Sequence,
    Action,
    Purpose,
    Recipient,
    Category,
    AuthorityKind,
    AuthorityUser,
    Channel,
    EvidenceDigest,
    PolicyVersion,
    RecordedAt,
    EffectiveAt,
    ExpiresAt,
    PrevHash,
    Hash,
}

#[derive(DeriveIden)]
enum ConsentEvidence {
    Table,
    ChainId,
    Sequence,
    SubjectId,
    Sealed,
}

#[derive(DeriveIden)]
enum ConsentAuthorisations {
    Table,
    Id,
    SubjectId,
    RecordedAt,
    Sealed,
}

#[derive(DeriveIden)]
enum ConsentSettings {
    Table,
    OrganisationId,
    Marketing,
    OptInRequired,
    Regime,
}

#[derive(DeriveIden)]
enum ConsentPolicies {
    Table,
    Document,
    Version,
    EffectiveAt,
    ContentSha256,
    Material,
    Summary,
    PublishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsentSubjects::Table)
                    .col(uuid(ConsentSubjects::SubjectId).primary_key())
                    .col(uuid(ConsentSubjects::ChainId))
                    .col(uuid_null(ConsentSubjects::OrganisationId))
                    .col(boolean(ConsentSubjects::Minor))
                    .col(big_integer_null(ConsentSubjects::HeadSequence))
                    .col(blob_null(ConsentSubjects::HeadHash))
                    .col(text(ConsentSubjects::State))
                    .col(timestamp_with_time_zone(ConsentSubjects::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "consent_subjects_by_chain",
            ConsentSubjects::Table,
            &[ConsentSubjects::ChainId.into_iden()],
            true,
        )
        .await?;
        // A practice auditor's export reads its subjects' chains.
        create_index(
            manager,
            "consent_subjects_by_organisation",
            ConsentSubjects::Table,
            &[
                ConsentSubjects::OrganisationId.into_iden(),
                ConsentSubjects::ChainId.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConsentEvents::Table)
                    .col(uuid(ConsentEvents::ChainId))
                    .col(big_integer(ConsentEvents::Sequence))
                    .col(text(ConsentEvents::Action))
                    .col(text_null(ConsentEvents::Purpose))
                    .col(text_null(ConsentEvents::Recipient))
                    .col(text_null(ConsentEvents::Category))
                    .col(text(ConsentEvents::AuthorityKind))
                    .col(uuid_null(ConsentEvents::AuthorityUser))
                    .col(text(ConsentEvents::Channel))
                    .col(blob(ConsentEvents::EvidenceDigest))
                    .col(text(ConsentEvents::PolicyVersion))
                    .col(big_integer(ConsentEvents::RecordedAt))
                    .col(big_integer(ConsentEvents::EffectiveAt))
                    .col(big_integer_null(ConsentEvents::ExpiresAt))
                    .col(blob(ConsentEvents::PrevHash))
                    .col(blob(ConsentEvents::Hash))
                    .primary_key(
                        Index::create()
                            .name("consent_events_pk")
                            .col(ConsentEvents::ChainId)
                            .col(ConsentEvents::Sequence),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConsentEvidence::Table)
                    .col(uuid(ConsentEvidence::ChainId))
                    .col(big_integer(ConsentEvidence::Sequence))
                    .col(uuid(ConsentEvidence::SubjectId))
                    .col(blob(ConsentEvidence::Sealed))
                    .primary_key(
                        Index::create()
                            .name("consent_evidence_pk")
                            .col(ConsentEvidence::ChainId)
                            .col(ConsentEvidence::Sequence),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "consent_evidence_by_subject",
            ConsentEvidence::Table,
            &[ConsentEvidence::SubjectId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConsentAuthorisations::Table)
                    .col(uuid(ConsentAuthorisations::Id).primary_key())
                    .col(uuid(ConsentAuthorisations::SubjectId))
                    .col(big_integer(ConsentAuthorisations::RecordedAt))
                    .col(blob(ConsentAuthorisations::Sealed))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "consent_authorisations_by_subject",
            ConsentAuthorisations::Table,
            &[
                ConsentAuthorisations::SubjectId.into_iden(),
                ConsentAuthorisations::RecordedAt.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConsentSettings::Table)
                    .col(uuid(ConsentSettings::OrganisationId).primary_key())
                    .col(text(ConsentSettings::Marketing))
                    .col(text(ConsentSettings::OptInRequired))
                    .col(text(ConsentSettings::Regime))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConsentPolicies::Table)
                    .col(text(ConsentPolicies::Document))
                    .col(text(ConsentPolicies::Version))
                    .col(big_integer(ConsentPolicies::EffectiveAt))
                    .col(text(ConsentPolicies::ContentSha256))
                    .col(boolean(ConsentPolicies::Material))
                    .col(text(ConsentPolicies::Summary))
                    .col(big_integer(ConsentPolicies::PublishedAt))
                    .primary_key(
                        Index::create()
                            .name("consent_policies_pk")
                            .col(ConsentPolicies::Document)
                            .col(ConsentPolicies::Version),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ConsentPolicies::Table.into_iden(),
            ConsentSettings::Table.into_iden(),
            ConsentAuthorisations::Table.into_iden(),
            ConsentEvidence::Table.into_iden(),
            ConsentEvents::Table.into_iden(),
            ConsentSubjects::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
