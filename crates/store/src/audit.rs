//! [`SeaOrmAuditRepository`]: the audit context's `AuditRepository` port on
//! `audit_chains`, `audit_events`, `audit_checkpoints` and `audit_disclosures`.
//!
//! A group commit is one transaction of a handful of statements whatever its size:
//! events go in as multi-row inserts (chunked below the engines' bind-parameter
//! limits), erasures and retention are set-based `UPDATE`s. Disclosure details
//! are sealed with the subject's data key *before* the transaction begins, so a
//! key created on the way never waits on the transaction's own write lock.
//!
//! Each sealed detail is bound to its row through a name-based id: the first 16
//! bytes of `SHA-256("custodia.audit.disclosure.binding" || chain || sequence)` as
//! a UUIDv8 (see `disclosure_binding`), so a ciphertext only opens in the row it
//! was written for.
//!
//! Erasure replaces a person's identifiers in past events by their pseudonym
//! (the commitments the hashes cover stay) and deletes their disclosures' sealed
//! details, which their destroyed key could never open again. Retention blanks
//! every column of an event but its position, time and hashes, and deletes its
//! disclosure's sealed details; a blanked event reads back as an anonymous actor's
//! with empty names and nil ids.
//!
//! Times are stored with microsecond precision (PostgreSQL's) in UTC; an event's
//! time is already truncated to microseconds when it is sealed, so it reads back
//! exactly and its hash still verifies.

mod entity;
#[cfg(test)]
mod tests;

use ::audit::Hash;
use ::audit::checkpoint::{ChainHead, Checkpoint, KeyId};
use ::audit::event::{ActorKind, ChainId, SealedEvent, StoredActor, StoredSubject};
use ::audit::merkle::Frontier;
use ::audit::ports::{
    AuditRepository, AuditStoreError, Batch, ChainState, DisclosureRecord, Erasure, EventCursor,
    EventFilter, PrunePoint,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crypto::{FieldBinding, Keyring, KeyringError};
use kernel::{OrganisationId, SubjectId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use self::entity::{audit_chain, audit_checkpoint, audit_disclosure, audit_event};
use crate::Database;
use crate::rows::{finish, row_binding, stored, utc};

/// Field binding of a sealed disclosure's details.
const DISCLOSURE_FIELD: &str = "audit_disclosure.detail";

/// Domain of [`disclosure_binding`].
const BINDING_DOMAIN: &[u8] = b"custodia.audit.disclosure.binding";

/// Events per multi-row insert: 25 columns each, well below SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters.
const EVENTS_PER_INSERT: usize = 1000;

/// Bytes of one checkpoint head: chain, size, head, root, pruned through.
const HEAD_LEN: usize = 16 + 8 + 32 + 32 + 8;

/// The audit log on Custodia's database.
#[derive(Debug, Clone)]
pub struct SeaOrmAuditRepository {
    db: Database,
    keyring: Keyring,
}

impl SeaOrmAuditRepository {
    /// The repository on `db`, sealing disclosure details with `keyring`.
    #[must_use]
    pub const fn new(db: Database, keyring: Keyring) -> Self {
        Self { db, keyring }
    }
}

/// Why a write was refused before it reached the database.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// The writer's chain has no row (it was never opened).
    #[error("the audit chain being committed to was never opened")]
    MissingChain,
    /// A count does not fit the database's signed 64-bit integers.
    #[error("an audit sequence number or size is out of range")]
    OutOfRange,
    /// A disclosure's details could not be encoded.
    #[error("a disclosure's details could not be encoded")]
    Encoding,
}

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> AuditStoreError {
    AuditStoreError::Unavailable(Box::new(err))
}

/// The name-based id a disclosure's sealed details are bound to.
fn disclosure_binding(chain: ChainId, sequence: u64) -> Uuid {
    row_binding(BINDING_DOMAIN, chain, sequence)
}

fn signed(n: u64) -> Result<i64, AuditStoreError> {
    i64::try_from(n).map_err(|_| unavailable(WriteError::OutOfRange))
}

fn unsigned(n: i64, table: &'static str) -> Result<u64, AuditStoreError> {
    u64::try_from(n).map_err(|_| AuditStoreError::Corrupt(table))
}

fn hash(raw: &[u8], table: &'static str) -> Result<Hash, AuditStoreError> {
    Hash::from_slice(raw).ok_or(AuditStoreError::Corrupt(table))
}

fn opt_hash(raw: Option<Vec<u8>>, table: &'static str) -> Result<Option<Hash>, AuditStoreError> {
    raw.map(|bytes| hash(&bytes, table)).transpose()
}

fn hash_bytes(h: Option<&Hash>) -> Option<Vec<u8>> {
    h.map(|h| h.0.to_vec())
}

const EVENTS: &str = "audit_events";
const CHAINS: &str = "audit_chains";
const CHECKPOINTS: &str = "audit_checkpoints";
const DISCLOSURES: &str = "audit_disclosures";

fn event_row(e: &SealedEvent) -> Result<audit_event::ActiveModel, AuditStoreError> {
    let subject = e.subject.as_ref();
    Ok(audit_event::ActiveModel {
        chain_id: Set(e.chain),
        sequence: Set(signed(e.sequence)?),
        at: Set(stored(e.at)),
        actor_kind: Set(e.actor.kind.as_str().to_owned()),
        actor_id: Set(e.actor.id),
        actor_client_address: Set(e.actor.client_address.clone()),
        actor_pseudonym: Set(hash_bytes(e.actor.pseudonym.as_ref())),
        actor_roles: Set(i16::from(e.actor.roles)),
        actor_component: Set(e.actor.component.clone()),
        actor_commitment: Set(hash_bytes(e.actor.commitment.as_ref())),
        organisation_id: Set(e.organisation),
        action: Set(e.action.clone()),
        resource_kind: Set(e.resource_kind.clone()),
        resource_id: Set(e.resource_id),
        subject_id: Set(subject.and_then(|s| s.id)),
        subject_pseudonym: Set(subject.and_then(|s| hash_bytes(s.pseudonym.as_ref()))),
        subject_commitment: Set(subject.map(|s| s.commitment.0.to_vec())),
        purpose: Set(e.purpose.clone()),
        denied_reason: Set(e.denied.clone()),
        request_id: Set(e.request_id),
        disclosure_digest: Set(hash_bytes(e.disclosure_digest.as_ref())),
        erased_pseudonym: Set(hash_bytes(e.erased_pseudonym.as_ref())),
        prev_hash: Set(e.prev_hash.0.to_vec()),
        hash: Set(e.hash.0.to_vec()),
        pruned: Set(e.pruned),
    })
}

fn event_of(row: audit_event::Model) -> Result<SealedEvent, AuditStoreError> {
    let kind = match ActorKind::parse(&row.actor_kind) {
        Some(kind) => kind,
        // Retention blanks the kind; a pruned event reads back as anonymous.
        None if row.pruned && row.actor_kind.is_empty() => ActorKind::Anonymous,
        None => return Err(AuditStoreError::Corrupt(EVENTS)),
    };
    let subject = match row.subject_commitment {
        Some(commitment) => Some(StoredSubject {
            id: row.subject_id,
            pseudonym: opt_hash(row.subject_pseudonym, EVENTS)?,
            commitment: hash(&commitment, EVENTS)?,
        }),
        None if row.subject_id.is_none() && row.subject_pseudonym.is_none() => None,
        None => return Err(AuditStoreError::Corrupt(EVENTS)),
    };
    Ok(SealedEvent {
        chain: row.chain_id,
        sequence: unsigned(row.sequence, EVENTS)?,
        at: utc(row.at),
        actor: StoredActor {
            kind,
            id: row.actor_id,
            client_address: row.actor_client_address,
            pseudonym: opt_hash(row.actor_pseudonym, EVENTS)?,
            roles: u8::try_from(row.actor_roles).map_err(|_| AuditStoreError::Corrupt(EVENTS))?,
            component: row.actor_component,
            commitment: opt_hash(row.actor_commitment, EVENTS)?,
        },
        organisation: row.organisation_id,
        action: row.action,
        resource_kind: row.resource_kind,
        resource_id: row.resource_id,
        subject,
        purpose: row.purpose,
        denied: row.denied_reason,
        request_id: row.request_id,
        disclosure_digest: opt_hash(row.disclosure_digest, EVENTS)?,
        erased_pseudonym: opt_hash(row.erased_pseudonym, EVENTS)?,
        prev_hash: hash(&row.prev_hash, EVENTS)?,
        hash: hash(&row.hash, EVENTS)?,
        pruned: row.pruned,
    })
}

fn chain_of(row: audit_chain::Model) -> Result<ChainState, AuditStoreError> {
    let size = unsigned(row.size, CHAINS)?;
    Ok(ChainState {
        chain: row.chain_id,
        frontier: Frontier::from_parts(size, &row.frontier)
            .ok_or(AuditStoreError::Corrupt(CHAINS))?,
        head: hash(&row.head_hash, CHAINS)?,
        pruned_through: unsigned(row.pruned_through, CHAINS)?,
    })
}

fn heads_bytes(heads: &[ChainHead]) -> Vec<u8> {
    let mut out = Vec::with_capacity(heads.len() * HEAD_LEN);
    for head in heads {
        out.extend_from_slice(head.chain.as_bytes());
        out.extend_from_slice(&head.size.to_be_bytes());
        out.extend_from_slice(head.head.as_bytes());
        out.extend_from_slice(head.root.as_bytes());
        out.extend_from_slice(&head.pruned_through.to_be_bytes());
    }
    out
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let raw = bytes.get(at..at + 8)?;
    <[u8; 8]>::try_from(raw).ok().map(u64::from_be_bytes)
}

fn heads_of(bytes: &[u8]) -> Result<Vec<ChainHead>, AuditStoreError> {
    if !bytes.len().is_multiple_of(HEAD_LEN) {
        return Err(AuditStoreError::Corrupt(CHECKPOINTS));
    }
    bytes
        .chunks_exact(HEAD_LEN)
        .map(|h| {
            let chain = Uuid::from_slice(&h[..16]).ok()?;
            Some(ChainHead {
                chain,
                size: u64_at(h, 16)?,
                head: Hash::from_slice(&h[24..56])?,
                root: Hash::from_slice(&h[56..88])?,
                pruned_through: u64_at(h, 88)?,
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or(AuditStoreError::Corrupt(CHECKPOINTS))
}

fn checkpoint_of(row: audit_checkpoint::Model) -> Result<Checkpoint, AuditStoreError> {
    Ok(Checkpoint {
        id: row.id,
        at: utc(row.at),
        writer: row.writer,
        heads: heads_of(&row.heads)?,
        key_id: KeyId(
            <[u8; 8]>::try_from(row.key_id.as_slice())
                .map_err(|_| AuditStoreError::Corrupt(CHECKPOINTS))?,
        ),
        signature: row.signature,
    })
}

fn checkpoint_row(c: &Checkpoint) -> audit_checkpoint::ActiveModel {
    audit_checkpoint::ActiveModel {
        id: Set(c.id),
        at: Set(stored(c.at)),
        writer: Set(c.writer),
        key_id: Set(c.key_id.0.to_vec()),
        heads: Set(heads_bytes(&c.heads)),
        signature: Set(c.signature.clone()),
    }
}

/// The JSON document sealed in `detail_enc`.
fn detail_json(d: &kernel::Disclosure) -> Result<Vec<u8>, AuditStoreError> {
    serde_json::to_vec(&serde_json::json!({
        "recipient": d.recipient,
        "description": d.description,
        "legal_basis": d.legal_basis,
    }))
    .map_err(|_| unavailable(WriteError::Encoding))
}

fn detail_of(json: &[u8], disclosed_at: DateTime<Utc>) -> Option<kernel::Disclosure> {
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    let field = |name: &str| value.get(name)?.as_str().map(str::to_owned);
    Some(kernel::Disclosure {
        recipient: field("recipient")?,
        description: field("description")?,
        legal_basis: field("legal_basis")?,
        disclosed_at,
    })
}

impl SeaOrmAuditRepository {
    /// Seals each disclosure's details (outside any transaction).
    async fn sealed_disclosures(
        &self,
        disclosures: &[DisclosureRecord],
    ) -> Result<Vec<audit_disclosure::ActiveModel>, AuditStoreError> {
        let mut rows = Vec::with_capacity(disclosures.len());
        for d in disclosures {
            let json = kernel::Sensitive::new(detail_json(&d.detail)?);
            let sealed = self
                .keyring
                .encrypt(
                    OrganisationId::from_uuid(d.organisation),
                    SubjectId::from_uuid(d.subject),
                    FieldBinding::new(disclosure_binding(d.chain, d.sequence), DISCLOSURE_FIELD),
                    json.expose(),
                )
                .await
                .map_err(unavailable)?;
            rows.push(audit_disclosure::ActiveModel {
                chain_id: Set(d.chain),
                sequence: Set(signed(d.sequence)?),
                organisation_id: Set(d.organisation),
                subject_id: Set(d.subject),
                disclosed_at: Set(stored(d.detail.disclosed_at)),
                detail_enc: Set(sealed),
            });
        }
        Ok(rows)
    }
}

/// The statements of one group commit, inside its transaction.
async fn write_batch(
    txn: &DatabaseTransaction,
    batch: &Batch<'_>,
    events: Vec<audit_event::ActiveModel>,
    disclosures: Vec<audit_disclosure::ActiveModel>,
) -> Result<(), AuditStoreError> {
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let chunk: Vec<_> = events.by_ref().take(EVENTS_PER_INSERT).collect();
        audit_event::Entity::insert_many(chunk)
            .exec_without_returning(txn)
            .await
            .map_err(unavailable)?;
    }
    if !disclosures.is_empty() {
        audit_disclosure::Entity::insert_many(disclosures)
            .exec_without_returning(txn)
            .await
            .map_err(unavailable)?;
    }

    let chain = batch.chain;
    let updated = audit_chain::Entity::update_many()
        .col_expr(
            audit_chain::Column::Size,
            Expr::value(signed(chain.frontier.size())?),
        )
        .col_expr(
            audit_chain::Column::HeadHash,
            Expr::value(chain.head.0.to_vec()),
        )
        .col_expr(
            audit_chain::Column::Frontier,
            Expr::value(chain.frontier.to_bytes()),
        )
        .col_expr(
            audit_chain::Column::PrunedThrough,
            Expr::value(signed(chain.pruned_through)?),
        )
        .filter(audit_chain::Column::ChainId.eq(chain.chain))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    if updated.rows_affected != 1 {
        return Err(unavailable(WriteError::MissingChain));
    }

    for erasure in batch.erasures {
        erase(txn, erasure).await?;
    }
    for point in batch.prune {
        prune(txn, point).await?;
    }
    if let Some(checkpoint) = batch.checkpoint {
        audit_checkpoint::Entity::insert(checkpoint_row(checkpoint))
            .exec_without_returning(txn)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Pseudonymises the erased person in past events. Their disclosures' sealed
/// details are deleted too: the subject's key is destroyed with the erasure, so
/// they could never be opened again, and their plain subject id would otherwise
/// name the person beside events that no longer do.
async fn erase(txn: &DatabaseTransaction, erasure: &Erasure) -> Result<(), AuditStoreError> {
    let pseudonym = erasure.pseudonym.0.to_vec();
    audit_disclosure::Entity::delete_many()
        .filter(audit_disclosure::Column::SubjectId.eq(erasure.subject))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    audit_event::Entity::update_many()
        .col_expr(
            audit_event::Column::SubjectId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(
            audit_event::Column::SubjectPseudonym,
            Expr::value(pseudonym.clone()),
        )
        .filter(audit_event::Column::SubjectId.eq(erasure.subject))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    if let Some(user) = erasure.user {
        audit_event::Entity::update_many()
            .col_expr(
                audit_event::Column::ActorId,
                Expr::value(Option::<Uuid>::None),
            )
            .col_expr(
                audit_event::Column::ActorClientAddress,
                Expr::value(Option::<String>::None),
            )
            .col_expr(audit_event::Column::ActorPseudonym, Expr::value(pseudonym))
            .filter(audit_event::Column::ActorId.eq(user))
            .exec(txn)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

async fn prune(txn: &DatabaseTransaction, point: &PrunePoint) -> Result<(), AuditStoreError> {
    use audit_event::Column as C;
    let through = signed(point.through)?;
    let no_uuid = || Expr::value(Option::<Uuid>::None);
    let no_text = || Expr::value(Option::<String>::None);
    let no_bytes = || Expr::value(Option::<Vec<u8>>::None);
    let empty = || Expr::value("");
    audit_event::Entity::update_many()
        .col_expr(C::ActorKind, empty())
        .col_expr(C::ActorId, no_uuid())
        .col_expr(C::ActorClientAddress, no_text())
        .col_expr(C::ActorPseudonym, no_bytes())
        .col_expr(C::ActorRoles, Expr::value(0_i16))
        .col_expr(C::ActorComponent, no_text())
        .col_expr(C::ActorCommitment, no_bytes())
        .col_expr(C::OrganisationId, no_uuid())
        .col_expr(C::Action, empty())
        .col_expr(C::ResourceKind, empty())
        .col_expr(C::ResourceId, Expr::value(Uuid::nil()))
        .col_expr(C::SubjectId, no_uuid())
        .col_expr(C::SubjectPseudonym, no_bytes())
        .col_expr(C::SubjectCommitment, no_bytes())
        .col_expr(C::Purpose, empty())
        .col_expr(C::DeniedReason, no_text())
        .col_expr(C::RequestId, Expr::value(Uuid::nil()))
        .col_expr(C::DisclosureDigest, no_bytes())
        .col_expr(C::ErasedPseudonym, no_bytes())
        .col_expr(C::Pruned, Expr::value(true))
        .filter(C::ChainId.eq(point.chain))
        .filter(C::Sequence.lte(through))
        .filter(C::Pruned.eq(false))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    // A blanked event's disclosure details go with it: they were disclosed before
    // the event was recorded, so they are past the accounting's six years too.
    audit_disclosure::Entity::delete_many()
        .filter(audit_disclosure::Column::ChainId.eq(point.chain))
        .filter(audit_disclosure::Column::Sequence.lte(through))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    audit_chain::Entity::update_many()
        .col_expr(audit_chain::Column::PrunedThrough, Expr::value(through))
        .filter(audit_chain::Column::ChainId.eq(point.chain))
        .filter(audit_chain::Column::PrunedThrough.lt(through))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl AuditRepository for SeaOrmAuditRepository {
    async fn open_chain(
        &self,
        chain: ChainId,
        label: &str,
        at: DateTime<Utc>,
    ) -> Result<(), AuditStoreError> {
        let row = audit_chain::ActiveModel {
            chain_id: Set(chain),
            label: Set(label.to_owned()),
            created_at: Set(stored(at)),
            size: Set(0),
            head_hash: Set(Hash::ZERO.0.to_vec()),
            frontier: Set(Vec::new()),
            pruned_through: Set(0),
        };
        audit_chain::Entity::insert(row)
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn chain_state(&self, chain: ChainId) -> Result<Option<ChainState>, AuditStoreError> {
        audit_chain::Entity::find_by_id(chain)
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(chain_of)
            .transpose()
    }

    async fn commit(&self, batch: Batch<'_>) -> Result<(), AuditStoreError> {
        let events = batch
            .events
            .iter()
            .map(event_row)
            .collect::<Result<Vec<_>, _>>()?;
        let disclosures = self.sealed_disclosures(batch.disclosures).await?;
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let work = write_batch(&txn, &batch, events, disclosures).await;
        finish(txn, work, unavailable).await
    }

    async fn heads(&self) -> Result<Vec<ChainHead>, AuditStoreError> {
        audit_chain::Entity::find()
            .order_by_asc(audit_chain::Column::ChainId)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| chain_of(row).map(|state| state.as_head()))
            .collect()
    }

    async fn prune_points(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<PrunePoint>, AuditStoreError> {
        let rows: Vec<(Uuid, Option<i64>)> = audit_event::Entity::find()
            .select_only()
            .column(audit_event::Column::ChainId)
            .column_as(audit_event::Column::Sequence.max(), "through")
            .filter(audit_event::Column::At.lt(stored(cutoff)))
            .filter(audit_event::Column::Pruned.eq(false))
            .group_by(audit_event::Column::ChainId)
            .order_by_asc(audit_event::Column::ChainId)
            .into_tuple()
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .filter_map(|(chain, through)| through.map(|t| (chain, t)))
            .map(|(chain, through)| {
                Ok(PrunePoint {
                    chain,
                    through: unsigned(through, EVENTS)?,
                })
            })
            .collect()
    }

    async fn chains(&self) -> Result<Vec<ChainId>, AuditStoreError> {
        audit_chain::Entity::find()
            .select_only()
            .column(audit_chain::Column::ChainId)
            .order_by_asc(audit_chain::Column::ChainId)
            .into_tuple()
            .all(self.db.connection())
            .await
            .map_err(unavailable)
    }

    async fn events(
        &self,
        chain: ChainId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<SealedEvent>, AuditStoreError> {
        audit_event::Entity::find()
            .filter(audit_event::Column::ChainId.eq(chain))
            .filter(audit_event::Column::Sequence.gt(signed(after)?))
            .order_by_asc(audit_event::Column::Sequence)
            .limit(u64::from(limit))
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(event_of)
            .collect()
    }

    async fn event(
        &self,
        chain: ChainId,
        sequence: u64,
    ) -> Result<Option<SealedEvent>, AuditStoreError> {
        let Ok(sequence) = i64::try_from(sequence) else {
            return Ok(None);
        };
        audit_event::Entity::find_by_id((chain, sequence))
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(event_of)
            .transpose()
    }

    async fn leaf_hashes(
        &self,
        chain: ChainId,
        through: u64,
    ) -> Result<Vec<Hash>, AuditStoreError> {
        let rows: Vec<Vec<u8>> = audit_event::Entity::find()
            .select_only()
            .column(audit_event::Column::Hash)
            .filter(audit_event::Column::ChainId.eq(chain))
            .filter(audit_event::Column::Sequence.gte(1))
            .filter(audit_event::Column::Sequence.lte(signed(through)?))
            .order_by_asc(audit_event::Column::Sequence)
            .into_tuple()
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        rows.iter().map(|raw| hash(raw, EVENTS)).collect()
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditStoreError> {
        audit_checkpoint::Entity::find()
            .order_by_asc(audit_checkpoint::Column::Id)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(checkpoint_of)
            .collect()
    }

    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditStoreError> {
        audit_checkpoint::Entity::find()
            .order_by_desc(audit_checkpoint::Column::Id)
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(checkpoint_of)
            .transpose()
    }

    async fn list_events(
        &self,
        filter: EventFilter,
        since: DateTime<Utc>,
        cursor: Option<EventCursor>,
        limit: u32,
    ) -> Result<Vec<SealedEvent>, AuditStoreError> {
        use audit_event::Column as C;
        let mut query = audit_event::Entity::find()
            .filter(match filter {
                EventFilter::Subject(subject) => C::SubjectId.eq(subject),
                EventFilter::Organisation(organisation) => C::OrganisationId.eq(organisation),
                EventFilter::Request(request) => C::RequestId.eq(request),
                EventFilter::Actor(actor) => C::ActorId.eq(actor),
            })
            .filter(C::At.gte(stored(since)))
            .filter(C::Pruned.eq(false));
        if let Some(cursor) = cursor {
            let at = stored(cursor.at);
            let sequence = signed(cursor.sequence)?;
            query = query.filter(
                Condition::any().add(C::At.lt(at)).add(
                    Condition::all().add(C::At.eq(at)).add(
                        Condition::any().add(C::ChainId.lt(cursor.chain)).add(
                            Condition::all()
                                .add(C::ChainId.eq(cursor.chain))
                                .add(C::Sequence.lt(sequence)),
                        ),
                    ),
                ),
            );
        }
        query
            .order_by_desc(C::At)
            .order_by_desc(C::ChainId)
            .order_by_desc(C::Sequence)
            .limit(u64::from(limit))
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(event_of)
            .collect()
    }

    async fn disclosures(
        &self,
        subject: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Vec<DisclosureRecord>, AuditStoreError> {
        use audit_disclosure::Column as C;
        let rows = audit_disclosure::Entity::find()
            .filter(C::SubjectId.eq(subject))
            .filter(C::DisclosedAt.gte(stored(since)))
            .order_by_asc(C::DisclosedAt)
            .order_by_asc(C::ChainId)
            .order_by_asc(C::Sequence)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let sequence = unsigned(row.sequence, DISCLOSURES)?;
            let binding =
                FieldBinding::new(disclosure_binding(row.chain_id, sequence), DISCLOSURE_FIELD);
            let json = match self.keyring.decrypt(binding, &row.detail_enc).await {
                Ok(json) => json,
                Err(KeyringError::KeyDestroyed(_) | KeyringError::SubjectErased) => continue,
                Err(err) => return Err(unavailable(err)),
            };
            let detail = detail_of(json.expose(), utc(row.disclosed_at))
                .ok_or(AuditStoreError::Corrupt(DISCLOSURES))?;
            out.push(DisclosureRecord {
                chain: row.chain_id,
                sequence,
                organisation: row.organisation_id,
                subject: row.subject_id,
                detail,
            });
        }
        Ok(out)
    }
}
