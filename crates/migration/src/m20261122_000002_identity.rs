//! The identity context's tables: practices, people, memberships, sessions,
//! one-time tokens, the security-event log and the notice outbox.
//!
//! Personal fields of `users` (name, email, phone) are stored only as field
//! envelopes sealed with the person's data key (`*_enc`); the email is found and
//! kept unique through `email_index`, an HMAC blind index of the normalised
//! address. Bearer and one-time tokens are stored only as their SHA-256. Every
//! lookup on a request path has an index: users by blind index and by subject,
//! memberships by person (the leading column of their primary key), sessions by
//! token hash and by person, one-time tokens by hash (their primary key), security
//! events by person and time, and the outbox by person and time.
//!
//! `security_events` has no foreign key: the log outlives the accounts it
//! mentions, and records failed sign-ins for unknown accounts (`user_id` NULL).

use sea_orm_migration::{prelude::*, schema::*};

use crate::create_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organisations {
    Table,
    Id,
    Name,
    Region,
    MarketingMode,
    RequireMfa,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    SubjectId,
    HomeOrganisationId,
    EmailIndex,
    NameEnc,
    EmailEnc,
    PhoneEnc,
    Profession,
    Status,
    EmailVerifiedAt,
    CreatedAt,
    PasswordHash,
    FailedAttempts,
    LockedUntil,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    UserId,
    OrganisationId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    OrganisationId,
    TokenHash,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
    RevokedAt,
    ClientAddress,
    UserAgent,
}

#[derive(DeriveIden)]
enum OneTimeTokens {
    Table,
    Hash,
    Purpose,
    UserId,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum SecurityEvents {
    Table,
    Id,
    UserId,
    Kind,
    At,
    ClientAddress,
    UserAgent,
    Country,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    UserId,
    Kind,
    PayloadEnc,
    CreatedAt,
    SentAt,
}

fn references_user(
    from: impl IntoIden,
    name: &str,
    table: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, from)
        .to(Users::Table, Users::Id)
        .to_owned()
}

fn references_organisation(
    from: impl IntoIden,
    name: &str,
    table: impl IntoIden,
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
        manager
            .create_table(
                Table::create()
                    .table(Organisations::Table)
                    .col(uuid(Organisations::Id).primary_key())
                    .col(text(Organisations::Name))
                    .col(string_len(Organisations::Region, 8))
                    .col(string_len(Organisations::MarketingMode, 16))
                    .col(boolean(Organisations::RequireMfa))
                    .col(timestamp_with_time_zone(Organisations::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(uuid(Users::Id).primary_key())
                    .col(uuid(Users::SubjectId))
                    .col(uuid(Users::HomeOrganisationId))
                    .col(blob(Users::EmailIndex))
                    .col(blob(Users::NameEnc))
                    .col(blob(Users::EmailEnc))
                    .col(blob_null(Users::PhoneEnc))
                    .col(text_null(Users::Profession))
                    .col(string_len(Users::Status, 32))
                    .col(timestamp_with_time_zone_null(Users::EmailVerifiedAt))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(text_null(Users::PasswordHash))
                    .col(integer(Users::FailedAttempts).default(0))
                    .col(timestamp_with_time_zone_null(Users::LockedUntil))
                    .foreign_key(&mut references_organisation(
                        Users::HomeOrganisationId,
                        "users_home_organisation_fk",
                        Users::Table,
                    ))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "users_email_index",
            Users::Table,
            &[Users::EmailIndex.into_iden()],
            true,
        )
        .await?;
        create_index(
            manager,
            "users_subject",
            Users::Table,
            &[Users::SubjectId.into_iden()],
            true,
        )
        .await?;
        create_index(
            manager,
            "users_home_organisation",
            Users::Table,
            &[Users::HomeOrganisationId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .col(uuid(Memberships::UserId))
                    .col(uuid(Memberships::OrganisationId))
                    .col(string_len(Memberships::Role, 32))
                    .col(timestamp_with_time_zone(Memberships::CreatedAt))
                    // Unique, and the index by person (its leading column).
                    .primary_key(
                        Index::create()
                            .name("memberships_pk")
                            .col(Memberships::UserId)
                            .col(Memberships::OrganisationId)
                            .col(Memberships::Role),
                    )
                    .foreign_key(&mut references_user(
                        Memberships::UserId,
                        "memberships_user_fk",
                        Memberships::Table,
                    ))
                    .foreign_key(&mut references_organisation(
                        Memberships::OrganisationId,
                        "memberships_organisation_fk",
                        Memberships::Table,
                    ))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "memberships_organisation",
            Memberships::Table,
            &[Memberships::OrganisationId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(uuid(Sessions::Id).primary_key())
                    .col(uuid(Sessions::UserId))
                    .col(uuid(Sessions::OrganisationId))
                    .col(blob(Sessions::TokenHash))
                    .col(timestamp_with_time_zone(Sessions::CreatedAt))
                    .col(timestamp_with_time_zone(Sessions::LastSeenAt))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Sessions::RevokedAt))
                    .col(text_null(Sessions::ClientAddress))
                    .col(text_null(Sessions::UserAgent))
                    .foreign_key(&mut references_user(
                        Sessions::UserId,
                        "sessions_user_fk",
                        Sessions::Table,
                    ))
                    .foreign_key(&mut references_organisation(
                        Sessions::OrganisationId,
                        "sessions_organisation_fk",
                        Sessions::Table,
                    ))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "sessions_token_hash",
            Sessions::Table,
            &[Sessions::TokenHash.into_iden()],
            true,
        )
        .await?;
        create_index(
            manager,
            "sessions_user",
            Sessions::Table,
            &[
                Sessions::UserId.into_iden(),
                Sessions::ExpiresAt.into_iden(),
            ],
            false,
        )
        .await?;
        create_index(
            manager,
            "sessions_organisation",
            Sessions::Table,
            &[Sessions::OrganisationId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(OneTimeTokens::Table)
                    .col(blob(OneTimeTokens::Hash).primary_key())
                    .col(string_len(OneTimeTokens::Purpose, 32))
                    .col(uuid(OneTimeTokens::UserId))
                    .col(timestamp_with_time_zone(OneTimeTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(OneTimeTokens::UsedAt))
                    .foreign_key(&mut references_user(
                        OneTimeTokens::UserId,
                        "one_time_tokens_user_fk",
                        OneTimeTokens::Table,
                    ))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "one_time_tokens_user",
            OneTimeTokens::Table,
            &[OneTimeTokens::UserId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SecurityEvents::Table)
                    .col(uuid(SecurityEvents::Id).primary_key())
                    .col(uuid_null(SecurityEvents::UserId))
                    .col(string_len(SecurityEvents::Kind, 32))
                    .col(timestamp_with_time_zone(SecurityEvents::At))
                    .col(text_null(SecurityEvents::ClientAddress))
                    .col(text_null(SecurityEvents::UserAgent))
                    .col(string_null(SecurityEvents::Country))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "security_events_user_at",
            SecurityEvents::Table,
            &[
                SecurityEvents::UserId.into_iden(),
                SecurityEvents::At.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(uuid(Outbox::Id).primary_key())
                    .col(uuid(Outbox::UserId))
                    .col(string_len(Outbox::Kind, 32))
                    .col(blob_null(Outbox::PayloadEnc))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(Outbox::SentAt))
                    .foreign_key(&mut references_user(
                        Outbox::UserId,
                        "outbox_user_fk",
                        Outbox::Table,
                    ))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "outbox_user_created",
            Outbox::Table,
            &[Outbox::UserId.into_iden(), Outbox::CreatedAt.into_iden()],
            false,
        )
        .await?;
        create_index(
            manager,
            "outbox_unsent",
            Outbox::Table,
            &[Outbox::SentAt.into_iden(), Outbox::CreatedAt.into_iden()],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents; dropping a table drops its indexes.
        for table in [
            Outbox::Table.into_iden(),
            SecurityEvents::Table.into_iden(),
            OneTimeTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
            Memberships::Table.into_iden(),
            Users::Table.into_iden(),
            Organisations::Table.into_iden(),
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
