//! [`AuditLog`]: the writer. It implements [`AuditSink`] by group commit.
//!
//! Callers hand their event to one task per process, which owns that process's
//! chain. The task takes whatever has queued up since its last commit (up to
//! [`LogConfig::max_batch`], waiting at most [`LogConfig::linger`] for more), seals
//! each event onto the chain, and writes the whole batch in one transaction. Only
//! then does every caller in the batch get its receipt. While one batch commits, the
//! next one gathers: under load the cost of a durable commit is shared by many
//! requests; alone, an event waits for nothing but its own commit.
//!
//! If a commit fails every caller in the batch gets [`AuditError::Unavailable`] (the
//! request fails closed), and the writer reloads its chain's head from storage
//! before the next batch, so a commit of unknown outcome never forks the chain.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::{AuditError, AuditEvent, AuditReceipt, AuditSink, Clock};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use crate::Hash;
use crate::checkpoint::{Checkpoint, SigningKey, VerifyingKey};
use crate::event::{ChainId, SealedEvent};
use crate::ports::{
    AuditRepository, AuditStoreError, Batch, ChainState, DisclosureRecord, Erasure, PrunePoint,
};

/// How the writer batches and checkpoints.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The most events one commit carries.
    pub max_batch: usize,
    /// How long a batch may wait for more events once it has one. Zero (the
    /// default) commits at once; batches still form while a commit is in flight.
    pub linger: Duration,
    /// A checkpoint is signed after this many events...
    pub checkpoint_every_events: u64,
    /// ...or this long after the last one, if anything was appended since.
    pub checkpoint_every: Duration,
    /// How many events may wait for the writer before callers queue for a place.
    pub queue: usize,
    /// A name for this writer's chain, e.g. the host and process id.
    pub label: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            max_batch: 2048,
            linger: Duration::ZERO,
            checkpoint_every_events: 10_000,
            checkpoint_every: Duration::from_secs(10),
            queue: 65_536,
            label: "custodia".to_owned(),
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, AuditError>>;

enum Command {
    Record(Box<AuditEvent>, Reply<AuditReceipt>),
    Erase(Box<AuditEvent>, Erasure, Reply<AuditReceipt>),
    Prune(DateTime<Utc>, Reply<u64>),
    Checkpoint(Reply<()>),
}

/// The audit log's writer for this process. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Command>,
    chain: ChainId,
    verifying_key: VerifyingKey,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> AuditError {
    AuditError::Unavailable(Box::new(err))
}

#[derive(Debug, thiserror::Error)]
#[error("the audit writer has stopped")]
struct WriterStopped;

impl AuditLog {
    /// Opens a fresh chain for this process and starts its writer on the current
    /// tokio runtime. The writer stops when the last clone is dropped, after
    /// checkpointing what it appended.
    ///
    /// # Errors
    /// When the chain's row cannot be created.
    pub async fn start(
        repository: Arc<dyn AuditRepository>,
        key: SigningKey,
        clock: Arc<dyn Clock>,
        config: LogConfig,
    ) -> Result<Self, AuditStoreError> {
        let chain = Uuid::now_v7();
        repository
            .open_chain(chain, &config.label, clock.now())
            .await?;
        let (queue, commands) = mpsc::channel(config.queue.max(1));
        let verifying_key = key.verifying_key();
        let writer = Writer {
            repository,
            key,
            clock,
            state: ChainState::empty(chain),
            stale: false,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            config,
        };
        tokio::spawn(writer.run(commands));
        Ok(Self {
            queue,
            chain,
            verifying_key,
        })
    }

    /// This process's chain.
    #[must_use]
    pub const fn chain(&self) -> ChainId {
        self.chain
    }

    /// The public key that verifies this writer's checkpoints.
    #[must_use]
    pub const fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying_key
    }

    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(command(reply))
            .await
            .map_err(|_| unavailable(WriterStopped))?;
        answer.await.map_err(|_| unavailable(WriterStopped))?
    }

    /// Appends `event`, the record of an erasure, and in the same transaction
    /// replaces the erased person's identifiers in every past event by
    /// `erasure.pseudonym`. The event names the pseudonym, so the verifier accepts it.
    ///
    /// # Errors
    /// [`AuditError::Unavailable`]: nothing was changed.
    pub async fn erase(
        &self,
        event: AuditEvent,
        erasure: Erasure,
    ) -> Result<AuditReceipt, AuditError> {
        self.ask(|reply| Command::Erase(Box::new(event), erasure, reply))
            .await
    }

    /// Blanks every event older than `cutoff` and signs a checkpoint naming how far
    /// each chain was pruned, in one transaction. Returns the number of chains pruned.
    ///
    /// # Errors
    /// [`AuditError::Unavailable`]: nothing was changed.
    pub async fn prune(&self, cutoff: DateTime<Utc>) -> Result<u64, AuditError> {
        self.ask(|reply| Command::Prune(cutoff, reply)).await
    }

    /// Signs a checkpoint of every chain now.
    ///
    /// # Errors
    /// [`AuditError::Unavailable`].
    pub async fn checkpoint(&self) -> Result<(), AuditError> {
        self.ask(Command::Checkpoint).await
    }
}

#[async_trait]
impl AuditSink for AuditLog {
    async fn record(&self, event: AuditEvent) -> Result<AuditReceipt, AuditError> {
        self.ask(|reply| Command::Record(Box::new(event), reply))
            .await
    }
}

struct Writer {
    repository: Arc<dyn AuditRepository>,
    key: SigningKey,
    clock: Arc<dyn Clock>,
    state: ChainState,
    /// The last commit failed: reload the chain's row before the next one.
    stale: bool,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    config: LogConfig,
}

/// What one batch owes its callers once it commits.
enum Pending {
    Receipt(Reply<AuditReceipt>, AuditReceipt),
    Pruned(Reply<u64>, u64),
    Done(Reply<()>),
}

impl Pending {
    fn answer(self, failure: Option<&AuditStoreError>) {
        let fail = || {
            failure.map_or_else(
                || unavailable(WriterStopped),
                |e| AuditError::Unavailable(e.to_string().into()),
            )
        };
        // A caller that gave up (its request was cancelled) is no longer listening.
        match (self, failure) {
            (Self::Receipt(reply, receipt), None) => drop(reply.send(Ok(receipt))),
            (Self::Pruned(reply, n), None) => drop(reply.send(Ok(n))),
            (Self::Done(reply), None) => drop(reply.send(Ok(()))),
            (Self::Receipt(reply, _), Some(_)) => drop(reply.send(Err(fail()))),
            (Self::Pruned(reply, _), Some(_)) => drop(reply.send(Err(fail()))),
            (Self::Done(reply), Some(_)) => drop(reply.send(Err(fail()))),
        }
    }
}

impl Writer {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            let first = if self.since_checkpoint > 0 {
                let due = self.last_checkpoint + self.config.checkpoint_every;
                match tokio::time::timeout_at(due, commands.recv()).await {
                    Ok(next) => next,
                    Err(_) => {
                        self.commit(Vec::new(), true).await;
                        continue;
                    }
                }
            } else {
                commands.recv().await
            };
            let Some(first) = first else { break };
            let mut batch = vec![first];
            let linger_until = Instant::now() + self.config.linger;
            while batch.len() < self.config.max_batch {
                match commands.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        if self.config.linger.is_zero() {
                            break;
                        }
                        match tokio::time::timeout_at(linger_until, commands.recv()).await {
                            Ok(Some(next)) => batch.push(next),
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
            }
            self.commit(batch, false).await;
        }
        if self.since_checkpoint > 0 {
            self.commit(Vec::new(), true).await;
        }
    }

    async fn reload(&mut self) -> Result<(), AuditStoreError> {
        match self.repository.chain_state(self.state.chain).await? {
            Some(state) => {
                self.state = state;
                self.stale = false;
                Ok(())
            }
            None => Err(AuditStoreError::Corrupt("audit_chains")),
        }
    }

    async fn commit(&mut self, commands: Vec<Command>, force_checkpoint: bool) {
        if self.stale
            && let Err(err) = self.reload().await
        {
            tracing::error!(error = %err, "audit: cannot reload the chain head");
            for command in commands {
                command_pending_failure(command, &err);
            }
            return;
        }
        let mut state = self.state.clone();
        let mut events = Vec::with_capacity(commands.len());
        let mut disclosures = Vec::new();
        let mut erasures = Vec::new();
        let mut prune = Vec::new();
        let mut pending = Vec::with_capacity(commands.len());
        let mut checkpoint_due = force_checkpoint;
        for command in commands {
            match command {
                Command::Record(event, reply) => {
                    let receipt =
                        self.append(&mut state, &event, None, &mut events, &mut disclosures);
                    pending.push(Pending::Receipt(reply, receipt));
                }
                Command::Erase(event, erasure, reply) => {
                    let receipt = self.append(
                        &mut state,
                        &event,
                        Some(erasure.pseudonym),
                        &mut events,
                        &mut disclosures,
                    );
                    erasures.push(erasure);
                    pending.push(Pending::Receipt(reply, receipt));
                }
                Command::Prune(cutoff, reply) => match self.repository.prune_points(cutoff).await {
                    Ok(points) => {
                        let n = points.len() as u64;
                        prune.extend(points);
                        checkpoint_due = true;
                        pending.push(Pending::Pruned(reply, n));
                    }
                    Err(err) => Pending::Pruned(reply, 0).answer(Some(&err)),
                },
                Command::Checkpoint(reply) => {
                    checkpoint_due = true;
                    pending.push(Pending::Done(reply));
                }
            }
        }
        if let Some(own) = prune.iter().find(|p| p.chain == state.chain) {
            state.pruned_through = state.pruned_through.max(own.through);
        }
        let appended = events.len() as u64;
        checkpoint_due |= self.since_checkpoint + appended >= self.config.checkpoint_every_events;
        let checkpoint = if checkpoint_due {
            match self.sign(&state, &prune).await {
                Ok(cp) => Some(cp),
                Err(err) => {
                    // Checkpoints are retried with the next batch; the events still go.
                    tracing::warn!(error = %err, "audit: cannot read chain heads for a checkpoint");
                    None
                }
            }
        } else {
            None
        };
        if events.is_empty() && prune.is_empty() && checkpoint.is_none() && erasures.is_empty() {
            for p in pending {
                p.answer(None);
            }
            return;
        }
        let batch = Batch {
            chain: &state,
            events: &events,
            disclosures: &disclosures,
            erasures: &erasures,
            prune: &prune,
            checkpoint: checkpoint.as_ref(),
        };
        match self.repository.commit(batch).await {
            Ok(()) => {
                self.state = state;
                if checkpoint.is_some() {
                    self.since_checkpoint = 0;
                    self.last_checkpoint = Instant::now();
                } else {
                    self.since_checkpoint += appended;
                }
                for p in pending {
                    p.answer(None);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, events = appended, "audit: group commit failed");
                self.stale = true;
                for p in pending {
                    p.answer(Some(&err));
                }
            }
        }
    }

    fn append(
        &self,
        state: &mut ChainState,
        event: &AuditEvent,
        erased_pseudonym: Option<Hash>,
        events: &mut Vec<SealedEvent>,
        disclosures: &mut Vec<DisclosureRecord>,
    ) -> AuditReceipt {
        let sequence = state.frontier.size() + 1;
        let sealed = SealedEvent::seal(event, state.chain, sequence, state.head, erased_pseudonym);
        state.frontier.push(sealed.hash);
        state.head = sealed.hash;
        if let (Some(detail), Some(organisation), Some(subject)) =
            (&event.disclosure, event.organisation, event.subject)
        {
            disclosures.push(DisclosureRecord {
                chain: state.chain,
                sequence,
                organisation: organisation.as_uuid(),
                subject: subject.as_uuid(),
                detail: detail.clone(),
            });
        }
        events.push(sealed);
        AuditReceipt {
            chain: state.chain,
            sequence,
        }
    }

    async fn sign(
        &self,
        own: &ChainState,
        prune: &[PrunePoint],
    ) -> Result<Checkpoint, AuditStoreError> {
        let mut heads = self.repository.heads().await?;
        heads.retain(|h| h.chain != own.chain);
        heads.push(own.as_head());
        for head in &mut heads {
            if let Some(p) = prune.iter().find(|p| p.chain == head.chain) {
                head.pruned_through = head.pruned_through.max(p.through);
            }
        }
        Ok(self.key.sign(own.chain, self.clock.now(), heads))
    }
}

fn command_pending_failure(command: Command, err: &AuditStoreError) {
    match command {
        Command::Record(_, reply) | Command::Erase(_, _, reply) => {
            Pending::Receipt(
                reply,
                AuditReceipt {
                    chain: Uuid::nil(),
                    sequence: 0,
                },
            )
            .answer(Some(err));
        }
        Command::Prune(_, reply) => Pending::Pruned(reply, 0).answer(Some(err)),
        Command::Checkpoint(reply) => Pending::Done(reply).answer(Some(err)),
    }
}
