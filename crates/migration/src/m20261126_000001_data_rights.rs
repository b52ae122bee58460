//! The data-rights context (issue 8): rights requests, their export archives, the
//! journal of erasure steps, authorised agents' proofs of authority, and privacy
//! and security cases.
//!
//! - `rights_requests`: every field of a request. Its kind, regime, requester,
//!   status and times are plain columns; the detail is JSON text, except the
//!   corrected value of a rectification (it may be health data), which is sealed
//!   under the subject's data key in `detail_value_enc`. The history and the
//!   result (archive digest and size, or each record's erasure outcome: references,
//!   categories, fates and grounds, never content) are JSON text. `open_key` holds
//!   a digest of what makes two requests identical (subject, kind, regime,
//!   requester, detail) while the request is open and NULL once it is final, under
//!   a unique index, so concurrent duplicates collapse into one (NULLs never
//!   collide). `due_at` is the due time in force, kept for the queue, which is
//!   read along (organisation, open, due time). A person's requests are found by
//!   subject and by requester.
//! - `rights_archives`: one export archive per request, sealed under the subject's
//!   data key; by subject.
//! - `rights_erasure_steps`: one row per (request, context), numbered in the order
//!   written (unique per request).
//! - `rights_authorities`: agents' proofs of authority, by subject and by agent.
//! - `rights_cases`: privacy questions and security concerns; the reply-to
//!   address, the message and the history are sealed under the case's own key.
//!   Open cases are read along (open, due time); a reporter's along
//!   (reporter, receipt).
//!
//! No foreign keys reach the identity tables, as in the clinical and billing
//! migrations: a request and its outcome outlive the account erased by it.

use sea_orm_migration::{prelude::*, schema::*};

use crate::create_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RightsRequests {
    Table,
    Id,
    OrganisationId,
    SubjectId,
    RequesterKind,
    RequesterUserId,
    Kind,
    Regime,
    Detail,
    DetailValueEnc,
    ReceivedAt,
    DueAt,
    Status,
    Denial,
    History,
    Result,
    Version,
    IsOpen,
    OpenKey,
}

#[derive(DeriveIden)]
enum RightsArchives {
    Table,
    RequestId,
    OrganisationId,
    SubjectId,
    ArchiveEnc,
}

#[derive(DeriveIden)]
enum RightsErasureSteps {
    Table,
    RequestId,
    Context,
    Position,
    Outcomes,
}

#[derive(DeriveIden)]
enum RightsAuthorities {
    Table,
    Id,
    AgentUserId,
    SubjectId,
    DocumentRef,
    Scope,
    ExpiresAt,
    ConfirmedAt,
    RecordedAt,
    Version,
}

#[derive(DeriveIden)]
enum RightsCases {
    Table,
    Id,
    Kind,
    ReporterUserId,
    ReplyToEnc,
    MessageEnc,
    HistoryEnc,
    ReceivedAt,
    DueAt,
    Status,
    IsOpen,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        requests(manager).await?;
        archives_and_steps(manager).await?;
        authorities(manager).await?;
        cases(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RightsCases::Table.into_iden(),
            RightsAuthorities::Table.into_iden(),
            RightsErasureSteps::Table.into_iden(),
            RightsArchives::Table.into_iden(),
            RightsRequests::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn requests(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    use RightsRequests as R;
    manager
        .create_table(
            Table::create()
                .table(R::Table)
                .col(uuid(R::Id).primary_key())
                .col(uuid(R::OrganisationId))
                .col(uuid(R::SubjectId))
                .col(text(R::RequesterKind))
                .col(uuid(R::RequesterUserId))
                .col(text(R::Kind))
                .col(text(R::Regime))
                .col(text(R::Detail))
                .col(blob_null(R::DetailValueEnc))
                .col(timestamp_with_time_zone(R::ReceivedAt))
                .col(timestamp_with_time_zone(R::DueAt))
                .col(text(R::Status))
                .col(text_null(R::Denial))
                .col(text(R::History))
                .col(text_null(R::Result))
                .col(big_integer(R::Version))
                .col(boolean(R::IsOpen))
                .col(text_null(R::OpenKey))
                .to_owned(),
        )
        .await?;
    create_index(
        manager,
        "rights_requests_open_key",
        R::Table,
        &[R::OpenKey.into_iden()],
        true,
    )
    .await?;
    create_index(
        manager,
        "rights_requests_by_subject",
        R::Table,
        &[
            R::SubjectId.into_iden(),
            R::ReceivedAt.into_iden(),
            R::Id.into_iden(),
        ],
        false,
    )
    .await?;
    create_index(
        manager,
        "rights_requests_by_requester",
        R::Table,
        &[
            R::RequesterUserId.into_iden(),
            R::ReceivedAt.into_iden(),
            R::Id.into_iden(),
        ],
        false,
    )
    .await?;
    create_index(
        manager,
        "rights_requests_queue",
        R::Table,
        &[
            R::OrganisationId.into_iden(),
            R::IsOpen.into_iden(),
            R::DueAt.into_iden(),
            R::Id.into_iden(),
        ],
        false,
    )
    .await
}

async fn archives_and_steps(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    use RightsArchives as A;
    use RightsErasureSteps as S;
    manager
        .create_table(
            Table::create()
                .table(A::Table)
                .col(uuid(A::RequestId).primary_key())
                .col(uuid(A::OrganisationId))
                .col(uuid(A::SubjectId))
                .col(blob(A::ArchiveEnc))
                .to_owned(),
        )
        .await?;
    create_index(
        manager,
        "rights_archives_by_subject",
        A::Table,
        &[A::SubjectId.into_iden()],
        false,
    )
    .await?;

    manager
        .create_table(
            Table::create()
                .table(S::Table)
                .col(uuid(S::RequestId))
                .col(text(S::Context))
                .col(big_integer(S::Position))
                .col(text(S::Outcomes))
                .primary_key(
                    Index::create()
                        .name("rights_erasure_steps_pk")
                        .col(S::RequestId)
                        .col(S::Context),
                )
                .to_owned(),
        )
        .await?;
    create_index(
        manager,
        "rights_erasure_steps_position",
        S::Table,
        &[S::RequestId.into_iden(), S::Position.into_iden()],
        true,
    )
    .await
}

async fn authorities(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    use RightsAuthorities as P;
    manager
        .create_table(
            Table::create()
                .table(P::Table)
                .col(uuid(P::Id).primary_key())
                .col(uuid(P::AgentUserId))
                .col(uuid(P::SubjectId))
                .col(text(P::DocumentRef))
                .col(text(P::Scope))
                .col(timestamp_with_time_zone(P::ExpiresAt))
                .col(timestamp_with_time_zone_null(P::ConfirmedAt))
                .col(timestamp_with_time_zone(P::RecordedAt))
                .col(big_integer(P::Version))
                .to_owned(),
        )
        .await?;
    create_index(
        manager,
        "rights_authorities_by_subject",
        P::Table,
        &[
            P::SubjectId.into_iden(),
            P::RecordedAt.into_iden(),
            P::Id.into_iden(),
        ],
        false,
    )
    .await?;
    create_index(
        manager,
        "rights_authorities_by_agent",
        P::Table,
        &[
            P::AgentUserId.into_iden(),
            P::RecordedAt.into_iden(),
            P::Id.into_iden(),
        ],
        false,
    )
    .await
}

async fn cases(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    use RightsCases as C;
    manager
        .create_table(
            Table::create()
                .table(C::Table)
                .col(uuid(C::Id).primary_key())
                .col(text(C::Kind))
                .col(uuid_null(C::ReporterUserId))
                .col(blob_null(C::ReplyToEnc))
                .col(blob(C::MessageEnc))
                .col(blob(C::HistoryEnc))
                .col(timestamp_with_time_zone(C::ReceivedAt))
                .col(timestamp_with_time_zone(C::DueAt))
                .col(text(C::Status))
                .col(boolean(C::IsOpen))
                .col(big_integer(C::Version))
                .to_owned(),
        )
        .await?;
    create_index(
        manager,
        "rights_cases_open_by_due",
        C::Table,
        &[
            C::IsOpen.into_iden(),
            C::DueAt.into_iden(),
            C::Id.into_iden(),
        ],
        false,
    )
    .await?;
    create_index(
        manager,
        "rights_cases_by_reporter",
        C::Table,
        &[
            C::ReporterUserId.into_iden(),
            C::ReceivedAt.into_iden(),
            C::Id.into_iden(),
        ],
        false,
    )
    .await
}
