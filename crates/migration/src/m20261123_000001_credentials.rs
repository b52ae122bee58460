//! Strong sign-in and credential changes: TOTP enrolments, recovery codes and
//! pending email changes.
//!
//! - `mfa_credentials`: one row per person who started TOTP enrolment; the secret
//!   is stored only sealed with the person's data key (`secret_enc`); `confirmed_at`
//!   is NULL while enrolment is pending; `last_step` is the last accepted time step,
//!   so a code cannot be replayed. Found by its primary key, the person.
//! - `recovery_codes`: stored only as SHA-256 (the primary key, which is the
//!   lookup), with the person (indexed, for replacement and erasure); each is spent
//!   once (`used_at`).
//! - `email_changes`: the new address of a pending email change, sealed, keyed by
//!   the hash of its one-time token (in `one_time_tokens`, purpose `change_email`),
//!   with the new address's blind index for the uniqueness check.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum MfaCredentials {
    Table,
    UserId,
    SecretEnc,
    CreatedAt,
    ConfirmedAt,
    LastStep,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Hash,
    UserId,
    CreatedAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum EmailChanges {
    Table,
    TokenHash,
    UserId,
    NewEmailEnc,
    NewEmailIndex,
    CreatedAt,
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

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MfaCredentials::Table)
                    .col(uuid(MfaCredentials::UserId).primary_key())
                    .col(blob(MfaCredentials::SecretEnc))
                    .col(timestamp_with_time_zone(MfaCredentials::CreatedAt))
                    .col(timestamp_with_time_zone_null(MfaCredentials::ConfirmedAt))
                    .col(big_integer_null(MfaCredentials::LastStep))
                    .foreign_key(&mut references_user(
                        MfaCredentials::UserId,
                        "mfa_credentials_user_fk",
                        MfaCredentials::Table,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(blob(RecoveryCodes::Hash).primary_key())
                    .col(uuid(RecoveryCodes::UserId))
                    .col(timestamp_with_time_zone(RecoveryCodes::CreatedAt))
                    .col(timestamp_with_time_zone_null(RecoveryCodes::UsedAt))
                    .foreign_key(&mut references_user(
                        RecoveryCodes::UserId,
                        "recovery_codes_user_fk",
                        RecoveryCodes::Table,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("recovery_codes_user")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EmailChanges::Table)
                    .col(blob(EmailChanges::TokenHash).primary_key())
                    .col(uuid(EmailChanges::UserId))
                    .col(blob(EmailChanges::NewEmailEnc))
                    .col(blob(EmailChanges::NewEmailIndex))
                    .col(timestamp_with_time_zone(EmailChanges::CreatedAt))
                    .foreign_key(&mut references_user(
                        EmailChanges::UserId,
                        "email_changes_user_fk",
                        EmailChanges::Table,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("email_changes_user")
                    .table(EmailChanges::Table)
                    .col(EmailChanges::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            EmailChanges::Table.into_iden(),
            RecoveryCodes::Table.into_iden(),
            MfaCredentials::Table.into_iden(),
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
