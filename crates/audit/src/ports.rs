//! The audit context's storage port, implemented in `store` for SQLite and
//! PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Hash;
use crate::checkpoint::{ChainHead, Checkpoint};
use crate::event::{ChainId, SealedEvent};
use crate::merkle::Frontier;

/// Why storage failed. The detail is for operators' logs only.
#[derive(Debug, thiserror::Error)]
pub enum AuditStoreError {
    /// The database could not be reached or refused the statement.
    #[error("audit storage unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored row could not be read back (a column out of its domain).
    #[error("audit storage holds a malformed {0}")]
    Corrupt(&'static str),
}

/// A writer's chain as its row records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    /// The chain.
    pub chain: ChainId,
    /// Its events' Merkle frontier; its size is the last sequence number.
    pub frontier: Frontier,
    /// The last event's hash ([`Hash::ZERO`] when empty).
    pub head: Hash,
    /// Events `1..=pruned_through` were blanked by retention.
    pub pruned_through: u64,
}

impl ChainState {
    /// A new, empty chain.
    #[must_use]
    pub const fn empty(chain: ChainId) -> Self {
        Self {
            chain,
            frontier: Frontier::new(),
            head: Hash::ZERO,
            pruned_through: 0,
        }
    }

    /// Its head, as a checkpoint names it.
    #[must_use]
    pub fn as_head(&self) -> ChainHead {
        ChainHead {
            chain: self.chain,
            size: self.frontier.size(),
            head: self.head,
            root: self.frontier.root(),
            pruned_through: self.pruned_through,
        }
    }
}

/// The details of one disclosure, stored beside its event (sealed with the
/// subject's data key by the adapter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisclosureRecord {
    /// The event's chain.
    pub chain: ChainId,
    /// The event's sequence number.
    pub sequence: u64,
    /// The practice that disclosed.
    pub organisation: Uuid,
    /// Whose data it was.
    pub subject: Uuid,
    /// The details.
    pub detail: kernel::Disclosure,
}

/// Replace a person's identifiers in past events by `pseudonym`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erasure {
    /// Events about this subject: `subject_id` becomes the pseudonym.
    pub subject: Uuid,
    /// Events this person performed: `actor_id` becomes the pseudonym and the
    /// client address is dropped.
    pub user: Option<Uuid>,
    /// The keyed pseudonym.
    pub pseudonym: Hash,
}

/// Blank `chain`'s events `1..=through` (retention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrunePoint {
    /// The chain.
    pub chain: ChainId,
    /// The last sequence number to blank.
    pub through: u64,
}

/// Everything one group commit writes, in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The writer's chain after the batch: its row is updated to this.
    pub chain: &'a ChainState,
    /// New events, in sequence order, continuing the chain.
    pub events: &'a [SealedEvent],
    /// Details of the disclosures among `events`.
    pub disclosures: &'a [DisclosureRecord],
    /// Pseudonymisations to apply.
    pub erasures: &'a [Erasure],
    /// Retention blanking to apply (`pruned_through` of those chains' rows too).
    pub prune: &'a [PrunePoint],
    /// A checkpoint to store.
    pub checkpoint: Option<&'a Checkpoint>,
}

/// Where a page of events starts: after this event, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    /// The last event's time.
    pub at: DateTime<Utc>,
    /// Its chain.
    pub chain: ChainId,
    /// Its sequence number.
    pub sequence: u64,
}

/// Which events a listing reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFilter {
    /// Events about this subject.
    Subject(Uuid),
    /// Events in this practice.
    Organisation(Uuid),
    /// Events of one request (its `X-Request-Id`), e.g. one a support ticket quotes.
    Request(Uuid),
    /// Events this person (or, for an API key's events, this key) performed: their
    /// part of the log, for their export and erasure.
    Actor(Uuid),
}

/// The audit log's storage.
#[async_trait]
pub trait AuditRepository: Send + Sync + 'static {
    /// Creates the row of a new, empty chain.
    async fn open_chain(
        &self,
        chain: ChainId,
        label: &str,
        at: DateTime<Utc>,
    ) -> Result<(), AuditStoreError>;

    /// The chain's row, if it exists.
    async fn chain_state(&self, chain: ChainId) -> Result<Option<ChainState>, AuditStoreError>;

    /// Writes `batch` in one transaction: the events, the disclosures, the chain row,
    /// the erasures, the pruning and the checkpoint; all or nothing. Must be durable
    /// when it returns `Ok`.
    async fn commit(&self, batch: Batch<'_>) -> Result<(), AuditStoreError>;

    /// Every chain's head, as its row records it.
    async fn heads(&self) -> Result<Vec<ChainHead>, AuditStoreError>;

    /// For each chain holding events older than `cutoff` that are not yet blanked:
    /// the last such sequence number.
    async fn prune_points(&self, cutoff: DateTime<Utc>)
    -> Result<Vec<PrunePoint>, AuditStoreError>;

    /// Every chain id, ordered.
    async fn chains(&self) -> Result<Vec<ChainId>, AuditStoreError>;

    /// Up to `limit` events of `chain` with sequence numbers above `after`, in order.
    async fn events(
        &self,
        chain: ChainId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<SealedEvent>, AuditStoreError>;

    /// One event.
    async fn event(
        &self,
        chain: ChainId,
        sequence: u64,
    ) -> Result<Option<SealedEvent>, AuditStoreError>;

    /// The hashes of `chain`'s events `1..=through`, in order.
    async fn leaf_hashes(&self, chain: ChainId, through: u64)
    -> Result<Vec<Hash>, AuditStoreError>;

    /// Every checkpoint, oldest first.
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditStoreError>;

    /// The newest checkpoint.
    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditStoreError>;

    /// Up to `limit` events matching `filter` at or after `since`, newest first,
    /// after `cursor`.
    async fn list_events(
        &self,
        filter: EventFilter,
        since: DateTime<Utc>,
        cursor: Option<EventCursor>,
        limit: u32,
    ) -> Result<Vec<SealedEvent>, AuditStoreError>;

    /// The disclosures of `subject`'s data at or after `since` (by disclosure
    /// date), oldest first, opened; those whose key was destroyed are left out.
    async fn disclosures(
        &self,
        subject: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Vec<DisclosureRecord>, AuditStoreError>;
}
