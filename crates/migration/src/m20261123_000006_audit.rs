//! The audit log (issue 4): writers' chains, their events, signed checkpoints and
//! the sealed details of disclosures.
//!
//! - `audit_chains`: one row per writer's chain, with its Merkle frontier
//!   (concatenated 32-byte nodes, largest subtree first), its head hash and how far
//!   retention has blanked it;
//! - `audit_events`: one row per event, keyed by chain and sequence number. The
//!   plain actor and subject identifiers sit beside the commitments the hash covers,
//!   so erasure can replace them by a pseudonym; retention blanks a row but keeps
//!   its position, time and hashes. Listings are indexed by subject, practice and
//!   actor, and retention by chain and time. There are deliberately no foreign keys
//!   to the identity tables: the log outlives the accounts it names;
//! - `audit_checkpoints`: Ed25519-signed statements of every chain's head, keyed by
//!   a UUIDv7 (so ordered by creation). `heads` is each head as 96 bytes: chain
//!   (16), size (8, big-endian), head (32), root (32), pruned through (8,
//!   big-endian);
//! - `audit_disclosures`: beside each disclosure event, what was disclosed, to whom
//!   and on what ground, as one JSON document sealed with the subject's data key
//!   (a description may itself be health information). Indexed by subject and
//!   date for the accounting of disclosures.

use sea_orm_migration::{prelude::*, schema::*};

use crate::create_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditChains {
    Table,
    ChainId,
    Label,
    CreatedAt,
    Size,
    HeadHash,
    Frontier,
    PrunedThrough,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    ChainId,
    Sequence,
    At,
    ActorKind,
    ActorId,
    ActorClientAddress,
    ActorPseudonym,
    ActorRoles,
    ActorComponent,
    ActorCommitment,
    OrganisationId,
    Action,
    ResourceKind,
    ResourceId,
    SubjectId,
    SubjectPseudonym,
    SubjectCommitment,
    Purpose,
    DeniedReason,
    RequestId,
    DisclosureDigest,
    ErasedPseudonym,
    PrevHash,
    Hash,
    Pruned,
}

#[derive(DeriveIden)]
enum AuditCheckpoints {
    Table,
    Id,
    At,
    Writer,
    KeyId,
    Heads,
    Signature,
}

#[derive(DeriveIden)]
enum AuditDisclosures {
    Table,
    ChainId,
    Sequence,
    OrganisationId,
    SubjectId,
    DisclosedAt,
    DetailEnc,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditChains::Table)
                    .col(uuid(AuditChains::ChainId).primary_key())
                    .col(text(AuditChains::Label))
                    .col(timestamp_with_time_zone(AuditChains::CreatedAt))
                    .col(big_integer(AuditChains::Size))
                    .col(blob(AuditChains::HeadHash))
                    .col(blob(AuditChains::Frontier))
                    .col(big_integer(AuditChains::PrunedThrough))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(uuid(AuditEvents::ChainId))
                    .col(big_integer(AuditEvents::Sequence))
                    .col(timestamp_with_time_zone(AuditEvents::At))
                    .col(text(AuditEvents::ActorKind))
                    .col(uuid_null(AuditEvents::ActorId))
                    .col(text_null(AuditEvents::ActorClientAddress))
                    .col(blob_null(AuditEvents::ActorPseudonym))
                    .col(small_integer(AuditEvents::ActorRoles))
                    .col(text_null(AuditEvents::ActorComponent))
                    .col(blob_null(AuditEvents::ActorCommitment))
                    .col(uuid_null(AuditEvents::OrganisationId))
                    .col(text(AuditEvents::Action))
                    .col(text(AuditEvents::ResourceKind))
                    .col(uuid(AuditEvents::ResourceId))
                    .col(uuid_null(AuditEvents::SubjectId))
                    .col(blob_null(AuditEvents::SubjectPseudonym))
                    .col(blob_null(AuditEvents::SubjectCommitment))
                    .col(text(AuditEvents::Purpose))
                    .col(text_null(AuditEvents::DeniedReason))
                    .col(uuid(AuditEvents::RequestId))
                    .col(blob_null(AuditEvents::DisclosureDigest))
                    .col(blob_null(AuditEvents::ErasedPseudonym))
                    .col(blob(AuditEvents::PrevHash))
                    .col(blob(AuditEvents::Hash))
                    .col(boolean(AuditEvents::Pruned))
                    .primary_key(
                        Index::create()
                            .name("audit_events_pk")
                            .col(AuditEvents::ChainId)
                            .col(AuditEvents::Sequence),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "audit_events_by_subject",
                vec![
                    AuditEvents::SubjectId.into_iden(),
                    AuditEvents::At.into_iden(),
                ],
            ),
            (
                "audit_events_by_organisation",
                vec![
                    AuditEvents::OrganisationId.into_iden(),
                    AuditEvents::At.into_iden(),
                ],
            ),
            (
                "audit_events_by_actor",
                vec![AuditEvents::ActorId.into_iden()],
            ),
            (
                "audit_events_by_chain_time",
                vec![
                    AuditEvents::ChainId.into_iden(),
                    AuditEvents::At.into_iden(),
                ],
            ),
            (
                "audit_events_by_request",
                vec![AuditEvents::RequestId.into_iden()],
            ),
        ] {
            create_index(manager, name, AuditEvents::Table, &columns, false).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(AuditCheckpoints::Table)
                    .col(uuid(AuditCheckpoints::Id).primary_key())
                    .col(timestamp_with_time_zone(AuditCheckpoints::At))
                    .col(uuid(AuditCheckpoints::Writer))
                    .col(blob(AuditCheckpoints::KeyId))
                    .col(blob(AuditCheckpoints::Heads))
                    .col(blob(AuditCheckpoints::Signature))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditDisclosures::Table)
                    .col(uuid(AuditDisclosures::ChainId))
                    .col(big_integer(AuditDisclosures::Sequence))
                    .col(uuid(AuditDisclosures::OrganisationId))
                    .col(uuid(AuditDisclosures::SubjectId))
                    .col(timestamp_with_time_zone(AuditDisclosures::DisclosedAt))
                    .col(blob(AuditDisclosures::DetailEnc))
                    .primary_key(
                        Index::create()
                            .name("audit_disclosures_pk")
                            .col(AuditDisclosures::ChainId)
                            .col(AuditDisclosures::Sequence),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "audit_disclosures_by_subject",
            AuditDisclosures::Table,
            &[
                AuditDisclosures::SubjectId.into_iden(),
                AuditDisclosures::DisclosedAt.into_iden(),
            ],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditDisclosures::Table.into_iden(),
            AuditCheckpoints::Table.into_iden(),
            AuditEvents::Table.into_iden(),
            AuditChains::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
