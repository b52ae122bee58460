//! [`SeaOrmIdempotencyStore`]: the `Idempotency-Key`s of operations a client may
//! retry, on `idempotency_keys`.
//!
//! A key is claimed by inserting its row with `ON CONFLICT DO NOTHING`: of
//! concurrent first uses exactly one inserts (and is [`IdempotencyBegin::Fresh`]),
//! the others read the row the winner wrote. The row holds the request's
//! fingerprint and, once the request is answered, the status and body to replay; a
//! body of a practice's request (which may name its billing contact) is sealed with
//! that practice's billing key, bound to the key's scope and value.

use billing::ports::RepositoryError;
use chrono::{DateTime, Utc};
use crypto::{FieldBinding, Keyring};
use kernel::OrganisationId;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::entity::idempotency_key::{self, ActiveModel, Column as K, Entity as Keys};
use super::{billing_subject, unavailable};
use crate::Database;
use crate::rows::stored;

/// Field binding of a sealed answer body.
const BODY_FIELD: &str = "idempotency_key.body";
/// How often `begin` tries again when the row it lost to was abandoned meanwhile.
const BEGIN_ATTEMPTS: usize = 3;

/// A row that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("a row of idempotency_keys is malformed")]
struct Corrupt;

/// What [`SeaOrmIdempotencyStore::begin`] found for a key.
#[derive(Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key is new and now claimed by this request: run it, then
    /// [`SeaOrmIdempotencyStore::complete`] or [`SeaOrmIdempotencyStore::abandon`].
    Fresh,
    /// The key was used for the same request, which was answered: replay this.
    Replay {
        /// The answer's HTTP status.
        status: u16,
        /// The answer's body, as sent.
        body: Vec<u8>,
    },
    /// The key was used for a different request.
    Mismatch,
    /// The key's first request is still running.
    InProgress,
}

impl std::fmt::Debug for IdempotencyBegin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fresh => f.write_str("Fresh"),
            // The body may name a billing contact: only its size is shown.
            Self::Replay { status, body } => f
                .debug_struct("Replay")
                .field("status", status)
                .field("body_len", &body.len())
                .finish(),
            Self::Mismatch => f.write_str("Mismatch"),
            Self::InProgress => f.write_str("InProgress"),
        }
    }
}

/// Idempotency keys on Custodia's database, answers of a practice's requests sealed
/// by the [`Keyring`] under the practice's billing key.
#[derive(Debug, Clone)]
pub struct SeaOrmIdempotencyStore {
    db: Database,
    keyring: Keyring,
}

/// The binding of the body stored under (`scope`, `key`): a UUIDv8 of the first 16
/// bytes of `SHA-256("idempotency_keys" || len(scope) || scope || key)`.
fn body_binding(scope: &str, key: &str) -> FieldBinding {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(b"idempotency_keys");
    digest.update(&(scope.len() as u64).to_be_bytes());
    digest.update(scope.as_bytes());
    digest.update(key.as_bytes());
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest.finish().as_ref()[..16]);
    FieldBinding::new(
        uuid::Builder::from_custom_bytes(bytes).into_uuid(),
        BODY_FIELD,
    )
}

impl SeaOrmIdempotencyStore {
    /// The store on `db`, sealing with `keyring`.
    #[must_use]
    pub const fn new(db: Database, keyring: Keyring) -> Self {
        Self { db, keyring }
    }

    /// Claims `key` in `scope` for a request whose fingerprint (SHA-256 of its
    /// method, path and body) is `fingerprint`, or reports what the key was used
    /// for already. Of concurrent first uses of one key, exactly one is
    /// [`IdempotencyBegin::Fresh`]. `organisation` is the practice whose billing key
    /// will seal the answer (none for the platform's own requests).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database or the keyring fails, or
    /// when the key keeps being abandoned between two reads.
    pub async fn begin(
        &self,
        scope: &str,
        key: &str,
        fingerprint: [u8; 32],
        organisation: Option<OrganisationId>,
        at: DateTime<Utc>,
    ) -> Result<IdempotencyBegin, RepositoryError> {
        let conn = self.db.connection();
        for _ in 0..BEGIN_ATTEMPTS {
            let inserted = Keys::insert(ActiveModel {
                scope: Set(scope.to_owned()),
                key: Set(key.to_owned()),
                fingerprint: Set(fingerprint.to_vec()),
                status: Set(None),
                body: Set(None),
                organisation_id: Set(organisation.map(|o| o.as_uuid())),
                created_at: Set(stored(at)),
            })
            .on_conflict(
                OnConflict::columns([K::Scope, K::Key])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await
            .map_err(unavailable)?;
            if inserted == 1 {
                return Ok(IdempotencyBegin::Fresh);
            }
            let Some(row) = self.row(scope, key).await? else {
                // Abandoned or purged between the two statements: claim it again.
                continue;
            };
            if row.fingerprint != fingerprint {
                return Ok(IdempotencyBegin::Mismatch);
            }
            let Some(status) = row.status else {
                return Ok(IdempotencyBegin::InProgress);
            };
            let status = u16::try_from(status).map_err(|_| unavailable(Corrupt))?;
            let body = row.body.unwrap_or_default();
            let body = match row.organisation_id {
                Some(_) => self
                    .keyring
                    .decrypt(body_binding(scope, key), &body)
                    .await
                    .map_err(unavailable)?
                    .into_inner(),
                None => body,
            };
            return Ok(IdempotencyBegin::Replay { status, body });
        }
        Err(unavailable(Corrupt))
    }

    /// Stores the answer of the request that claimed `key` in `scope`, to be
    /// replayed to its retries. A key no longer in progress (abandoned, purged or
    /// completed already) is left as it is.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database or the keyring fails.
    pub async fn complete(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> Result<(), RepositoryError> {
        let Some(row) = self.row(scope, key).await? else {
            return Ok(());
        };
        let body = match row.organisation_id {
            Some(organisation) => {
                let organisation = OrganisationId::from_uuid(organisation);
                self.keyring
                    .encrypt(
                        organisation,
                        billing_subject(organisation),
                        body_binding(scope, key),
                        body,
                    )
                    .await
                    .map_err(unavailable)?
            }
            None => body.to_vec(),
        };
        Keys::update_many()
            .col_expr(K::Status, Expr::value(i32::from(status)))
            .col_expr(K::Body, Expr::value(body))
            .filter(K::Scope.eq(scope))
            .filter(K::Key.eq(key))
            .filter(K::Status.is_null())
            .exec(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    /// Releases `key` in `scope` while its request is still in progress (it failed
    /// in a way worth retrying), so that the key can be used again. An answered key
    /// stays.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    pub async fn abandon(&self, scope: &str, key: &str) -> Result<(), RepositoryError> {
        Keys::delete_many()
            .filter(K::Scope.eq(scope))
            .filter(K::Key.eq(key))
            .filter(K::Status.is_null())
            .exec(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    /// Deletes every key first used before `cutoff` (answered or not), and says how
    /// many.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    pub async fn purge_before(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError> {
        Keys::delete_many()
            .filter(K::CreatedAt.lt(stored(cutoff)))
            .exec(self.db.connection())
            .await
            .map(|result| result.rows_affected)
            .map_err(unavailable)
    }

    async fn row(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<idempotency_key::Model>, RepositoryError> {
        Keys::find_by_id((scope.to_owned(), key.to_owned()))
            .one(self.db.connection())
            .await
            .map_err(unavailable)
    }
}
