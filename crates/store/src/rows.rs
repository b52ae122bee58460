//! What every adapter does the same way: times as stored, the end of a
//! transaction, and the name-based id a sealed field is bound to.

use chrono::{DateTime, FixedOffset, SubsecRound, Utc};
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

/// A domain time as stored: UTC, truncated to microseconds so that SQLite and
/// PostgreSQL hold (and compare) the same value.
pub(crate) fn stored(at: DateTime<Utc>) -> DateTime<FixedOffset> {
    at.trunc_subsecs(6).fixed_offset()
}

/// A stored time back in UTC.
pub(crate) fn utc(at: DateTime<FixedOffset>) -> DateTime<Utc> {
    at.with_timezone(&Utc)
}

/// Commits `txn` when `work` succeeded (a failed commit becomes
/// `commit_error(err)`), else rolls it back and reports the work's error. A failed
/// rollback only means the connection is gone, which rolls back too.
pub(crate) async fn finish<T, E>(
    txn: DatabaseTransaction,
    work: Result<T, E>,
    commit_error: impl FnOnce(DbErr) -> E,
) -> Result<T, E> {
    match work {
        Ok(value) => {
            txn.commit().await.map_err(commit_error)?;
            Ok(value)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

/// The id a sealed field of row (`id`, `sequence`) is bound to: the first 16 bytes
/// of `SHA-256(domain || id || sequence)` as a UUIDv8, so a ciphertext only opens
/// in the row it was written for.
pub(crate) fn row_binding(domain: &[u8], id: Uuid, sequence: u64) -> Uuid {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(domain);
    digest.update(id.as_bytes());
    digest.update(&sequence.to_be_bytes());
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest.finish().as_ref()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}
