//! [`MemoryRepository`]: the storage port in memory. For tests of the writer and the
//! verifier (the tamper test edits it directly), and for verifying a log exported
//! from a database.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Hash;
use crate::checkpoint::{ChainHead, Checkpoint};
use crate::event::{ChainId, SealedEvent};
use crate::ports::{
    AuditRepository, AuditStoreError, Batch, ChainState, DisclosureRecord, EventCursor,
    EventFilter, PrunePoint,
};

/// Everything the repository holds; public so tests can tamper with it.
#[derive(Debug, Default, Clone)]
pub struct Memory {
    /// Chain rows.
    pub chains: BTreeMap<ChainId, ChainState>,
    /// Events by chain and sequence number.
    pub events: BTreeMap<(ChainId, u64), SealedEvent>,
    /// Checkpoints, oldest first.
    pub checkpoints: Vec<Checkpoint>,
    /// Disclosure details.
    pub disclosures: Vec<DisclosureRecord>,
    /// While set, every commit fails (and changes nothing).
    pub failing: bool,
}

/// The storage port over a [`Memory`].
#[derive(Debug, Default)]
pub struct MemoryRepository {
    memory: Mutex<Memory>,
}

#[derive(Debug, thiserror::Error)]
#[error("the in-memory audit store is set to fail")]
struct Failing;

impl MemoryRepository {
    /// An empty repository.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Its contents, to read or tamper with.
    pub fn memory(&self) -> MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A repository holding a copy of `memory`.
    #[must_use]
    pub fn from_memory(memory: Memory) -> Self {
        Self {
            memory: Mutex::new(memory),
        }
    }
}

fn blank(event: &mut SealedEvent) {
    event.actor.id = None;
    event.actor.client_address = None;
    event.actor.pseudonym = None;
    event.actor.component = None;
    event.actor.commitment = None;
    event.actor.roles = 0;
    event.organisation = None;
    event.action.clear();
    event.resource_kind.clear();
    event.resource_id = uuid::Uuid::nil();
    event.subject = None;
    event.purpose.clear();
    event.denied = None;
    event.request_id = uuid::Uuid::nil();
    event.disclosure_digest = None;
    event.erased_pseudonym = None;
    event.pruned = true;
}

#[async_trait]
impl AuditRepository for MemoryRepository {
    async fn open_chain(
        &self,
        chain: ChainId,
        _label: &str,
        _at: DateTime<Utc>,
    ) -> Result<(), AuditStoreError> {
        self.memory().chains.insert(chain, ChainState::empty(chain));
        Ok(())
    }

    async fn chain_state(&self, chain: ChainId) -> Result<Option<ChainState>, AuditStoreError> {
        Ok(self.memory().chains.get(&chain).cloned())
    }

    async fn commit(&self, batch: Batch<'_>) -> Result<(), AuditStoreError> {
        let mut memory = self.memory();
        if memory.failing {
            return Err(AuditStoreError::Unavailable(Box::new(Failing)));
        }
        for event in batch.events {
            memory
                .events
                .insert((event.chain, event.sequence), event.clone());
        }
        memory.disclosures.extend_from_slice(batch.disclosures);
        memory.chains.insert(batch.chain.chain, batch.chain.clone());
        for erasure in batch.erasures {
            // As the SQL adapter does: the sealed details go with the subject's key.
            memory.disclosures.retain(|d| d.subject != erasure.subject);
            for event in memory.events.values_mut() {
                if let Some(subject) = event.subject.as_mut()
                    && subject.id == Some(erasure.subject)
                {
                    subject.id = None;
                    subject.pseudonym = Some(erasure.pseudonym);
                }
                if erasure.user.is_some() && event.actor.id == erasure.user {
                    event.actor.id = None;
                    event.actor.client_address = None;
                    event.actor.pseudonym = Some(erasure.pseudonym);
                }
            }
        }
        for point in batch.prune {
            for ((chain, sequence), event) in &mut memory.events {
                if *chain == point.chain && *sequence <= point.through && !event.pruned {
                    blank(event);
                }
            }
            if let Some(row) = memory.chains.get_mut(&point.chain) {
                row.pruned_through = row.pruned_through.max(point.through);
            }
        }
        if let Some(checkpoint) = batch.checkpoint {
            memory.checkpoints.push(checkpoint.clone());
        }
        Ok(())
    }

    async fn heads(&self) -> Result<Vec<ChainHead>, AuditStoreError> {
        Ok(self
            .memory()
            .chains
            .values()
            .map(ChainState::as_head)
            .collect())
    }

    async fn prune_points(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<PrunePoint>, AuditStoreError> {
        let memory = self.memory();
        let mut points: BTreeMap<ChainId, u64> = BTreeMap::new();
        for ((chain, sequence), event) in &memory.events {
            if event.at < cutoff && !event.pruned {
                let through = points.entry(*chain).or_default();
                *through = (*through).max(*sequence);
            }
        }
        Ok(points
            .into_iter()
            .map(|(chain, through)| PrunePoint { chain, through })
            .collect())
    }

    async fn chains(&self) -> Result<Vec<ChainId>, AuditStoreError> {
        Ok(self.memory().chains.keys().copied().collect())
    }

    async fn events(
        &self,
        chain: ChainId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<SealedEvent>, AuditStoreError> {
        let memory = self.memory();
        Ok(memory
            .events
            .range((chain, after.saturating_add(1))..=(chain, u64::MAX))
            .take(limit as usize)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn event(
        &self,
        chain: ChainId,
        sequence: u64,
    ) -> Result<Option<SealedEvent>, AuditStoreError> {
        Ok(self.memory().events.get(&(chain, sequence)).cloned())
    }

    async fn leaf_hashes(
        &self,
        chain: ChainId,
        through: u64,
    ) -> Result<Vec<Hash>, AuditStoreError> {
        let memory = self.memory();
        Ok(memory
            .events
            .range((chain, 1)..=(chain, through))
            .map(|(_, e)| e.hash)
            .collect())
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditStoreError> {
        Ok(self.memory().checkpoints.clone())
    }

    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditStoreError> {
        Ok(self.memory().checkpoints.last().cloned())
    }

    async fn list_events(
        &self,
        filter: EventFilter,
        since: DateTime<Utc>,
        cursor: Option<EventCursor>,
        limit: u32,
    ) -> Result<Vec<SealedEvent>, AuditStoreError> {
        let memory = self.memory();
        let mut matching: Vec<&SealedEvent> = memory
            .events
            .values()
            .filter(|e| !e.pruned && e.at >= since)
            .filter(|e| match filter {
                EventFilter::Subject(s) => e.subject.as_ref().and_then(|x| x.id) == Some(s),
                EventFilter::Organisation(o) => e.organisation == Some(o),
                EventFilter::Request(r) => e.request_id == r,
                EventFilter::Actor(a) => e.actor.id == Some(a),
            })
            .collect();
        matching.sort_by_key(|e| std::cmp::Reverse((e.at, e.chain, e.sequence)));
        Ok(matching
            .into_iter()
            .filter(|e| {
                cursor.is_none_or(|c| (e.at, e.chain, e.sequence) < (c.at, c.chain, c.sequence))
            })
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn disclosures(
        &self,
        subject: uuid::Uuid,
        since: DateTime<Utc>,
    ) -> Result<Vec<DisclosureRecord>, AuditStoreError> {
        let mut found: Vec<DisclosureRecord> = self
            .memory()
            .disclosures
            .iter()
            .filter(|d| d.subject == subject && d.detail.disclosed_at >= since)
            .cloned()
            .collect();
        found.sort_by_key(|d| d.detail.disclosed_at);
        Ok(found)
    }
}
