//! The identity context's adapters: [`SeaOrmIdentityRepository`] (practices,
//! people, memberships, credentials, one-time tokens), [`SeaOrmSessionRepository`],
//! [`SeaOrmSecurityEventLog`], [`OutboxNotifier`], [`SeaOrmProfileRepository`] and
//! [`SeaOrmCredentialRepository`] (TOTP enrolments, recovery codes, password and
//! email changes); [`SeaOrmIdentityRepository`] also implements `AccountRepository`
//! (self-service changes, deletion requests, export and erasure) in `lifecycle`;
//! the API-key and operator adapters are [`SeaOrmApiKeyRepository`] and
//! [`SeaOrmOperatorRepository`].
//!
//! A person's name, email and phone are sealed with their data key (the subject
//! key under their home practice), each bound to the user id and the column, so a
//! ciphertext only opens in the row and column it was written for. The email is
//! found, and kept unique, through an HMAC blind index of its normalised form.
//! Timestamps are stored with microsecond precision (PostgreSQL's), in UTC.

mod accounts;
mod credentials;
mod entity;
mod events;
mod integrations;
mod lifecycle;
mod outbox;
mod profiles;
mod sessions;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_credentials;

use std::net::IpAddr;

use chrono::{DateTime, FixedOffset, Utc};
use identity::ports::RepositoryError;
use sea_orm::{DatabaseTransaction, TransactionTrait};

use crate::rows::{finish, stored, utc};

pub use accounts::SeaOrmIdentityRepository;
pub(crate) use accounts::personal_details;
pub use credentials::SeaOrmCredentialRepository;
pub(crate) use entity::{membership, user};
pub use events::SeaOrmSecurityEventLog;
pub use integrations::{SeaOrmApiKeyRepository, SeaOrmOperatorRepository};
pub use outbox::OutboxNotifier;
pub use profiles::SeaOrmProfileRepository;
pub use sessions::SeaOrmSessionRepository;

/// Runs `work` in one transaction on `db`: committed when it succeeds, rolled back
/// when it fails.
async fn in_transaction<T>(
    db: &crate::Database,
    work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, RepositoryError>,
) -> Result<T, RepositoryError> {
    let txn = db.connection().begin().await.map_err(unavailable)?;
    let result = work(&txn).await;
    finish(txn, result, unavailable).await
}

/// Any failure but a broken unique rule.
fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> RepositoryError {
    RepositoryError::Unavailable(Box::new(err))
}

/// A stored row that does not map back to the domain (a value that no longer
/// parses, a hash of the wrong length...). Names the table only: the row may hold
/// personal data.
#[derive(Debug, thiserror::Error)]
#[error("a `{0}` row could not be read back")]
struct CorruptRow(&'static str);

fn corrupt(table: &'static str) -> RepositoryError {
    unavailable(CorruptRow(table))
}

fn stored_opt(at: Option<DateTime<Utc>>) -> Option<DateTime<FixedOffset>> {
    at.map(stored)
}

fn utc_opt(at: Option<DateTime<FixedOffset>>) -> Option<DateTime<Utc>> {
    at.map(utc)
}

fn address(raw: Option<String>, table: &'static str) -> Result<Option<IpAddr>, RepositoryError> {
    raw.map(|text| text.parse().map_err(|_| corrupt(table)))
        .transpose()
}

fn hash_bytes(raw: &[u8], table: &'static str) -> Result<[u8; 32], RepositoryError> {
    <[u8; 32]>::try_from(raw).map_err(|_| corrupt(table))
}
