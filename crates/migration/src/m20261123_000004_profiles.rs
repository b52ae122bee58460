//! Profiles, preferences and account-deletion requests (issue 3, items 8 and 10).
//!
//! `user_profiles` holds one row per person who has written a profile: the profile
//! (picture reference, professional credentials, practice information) is one JSON
//! document sealed with the person's data key. `user_preferences` holds validated
//! settings as JSON in clear: they identify nobody. `account_deletion_requests`
//! records each self-service deletion request until the rights engine answers it;
//! it is looked up by person. `security_events` gains an index by time, for the
//! retention sweep that deletes events older than their period.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum SecurityEvents {
    Table,
    At,
}

#[derive(DeriveIden)]
enum UserProfiles {
    Table,
    UserId,
    ProfileEnc,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum UserPreferences {
    Table,
    UserId,
    Preferences,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AccountDeletionRequests {
    Table,
    Id,
    UserId,
    RequestedAt,
    Status,
}

fn references_user(name: &str, table: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, Alias::new("user_id"))
        .to(Users::Table, Users::Id)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserProfiles::Table)
                    .col(uuid(UserProfiles::UserId).primary_key())
                    .col(blob(UserProfiles::ProfileEnc))
                    .col(timestamp_with_time_zone(UserProfiles::UpdatedAt))
                    .foreign_key(&mut references_user(
                        "user_profiles_user_fk",
                        UserProfiles::Table,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserPreferences::Table)
                    .col(uuid(UserPreferences::UserId).primary_key())
                    .col(text(UserPreferences::Preferences))
                    .col(timestamp_with_time_zone(UserPreferences::UpdatedAt))
                    .foreign_key(&mut references_user(
                        "user_preferences_user_fk",
                        UserPreferences::Table,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AccountDeletionRequests::Table)
                    .col(uuid(AccountDeletionRequests::Id).primary_key())
                    .col(uuid(AccountDeletionRequests::UserId))
                    .col(timestamp_with_time_zone(
                        AccountDeletionRequests::RequestedAt,
                    ))
                    .col(string_len(AccountDeletionRequests::Status, 32))
                    .foreign_key(&mut references_user(
                        "account_deletion_requests_user_fk",
                        AccountDeletionRequests::Table,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("account_deletion_requests_by_user")
                    .table(AccountDeletionRequests::Table)
                    .col(AccountDeletionRequests::UserId)
                    .col(AccountDeletionRequests::RequestedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("security_events_by_time")
                    .table(SecurityEvents::Table)
                    .col(SecurityEvents::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("security_events_by_time")
                    .table(SecurityEvents::Table)
                    .to_owned(),
            )
            .await?;
        for table in [
            AccountDeletionRequests::Table.into_iden(),
            UserPreferences::Table.into_iden(),
            UserProfiles::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
