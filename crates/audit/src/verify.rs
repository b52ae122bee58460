//! The verifier: recomputes every event's hash and link, checks every commitment,
//! every pseudonym and every signed checkpoint, and reports the first break.
//!
//! It streams: feed each chain's events in order ([`Verifier::chain`] then
//! [`ChainVerifier::feed`]), so a log of any size verifies in constant memory per
//! chain (the Merkle frontier). [`verify_repository`] drives it over an
//! [`AuditRepository`]; `cargo xtask verify audit` and the auditors' API operation
//! both use that.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use uuid::Uuid;

use crate::Hash;
use crate::checkpoint::{Checkpoint, VerifyingKey};
use crate::event::{ChainId, SealedEvent, actor_commitment, subject_commitment};
use crate::merkle::Frontier;
use crate::ports::{AuditRepository, AuditStoreError};

/// What is wrong at a break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A sequence number is missing, repeated or out of order.
    SequenceGap,
    /// An event does not name its predecessor's hash.
    BrokenLink,
    /// An event's fields do not hash to its stored hash.
    HashMismatch,
    /// The actor's identifiers do not match their commitment.
    ActorCommitment,
    /// The subject's identifier does not match its commitment.
    SubjectCommitment,
    /// A pseudonym that no recorded erasure introduced.
    UnannouncedPseudonym,
    /// An event was blanked that no signed checkpoint says retention pruned.
    UnsignedPruning,
    /// A checkpoint's signature does not verify under any trusted key.
    BadSignature,
    /// A checkpoint names a head that the chain does not reach (truncation).
    MissingEvents,
    /// A checkpoint's head hash or Merkle root differs from the chain's.
    CheckpointMismatch,
    /// A checkpoint names a chain the log does not hold.
    MissingChain,
    /// A chain's events stop short of what its own row records.
    ChainRowMismatch,
}

impl Problem {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SequenceGap => "sequence_gap",
            Self::BrokenLink => "broken_link",
            Self::HashMismatch => "hash_mismatch",
            Self::ActorCommitment => "actor_commitment",
            Self::SubjectCommitment => "subject_commitment",
            Self::UnannouncedPseudonym => "unannounced_pseudonym",
            Self::UnsignedPruning => "unsigned_pruning",
            Self::BadSignature => "bad_signature",
            Self::MissingEvents => "missing_events",
            Self::CheckpointMismatch => "checkpoint_mismatch",
            Self::MissingChain => "missing_chain",
            Self::ChainRowMismatch => "chain_row_mismatch",
        }
    }
}

/// The first place the log is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The chain, when the break is in one.
    pub chain: Option<ChainId>,
    /// The event's sequence number, when the break is at one.
    pub sequence: Option<u64>,
    /// The checkpoint involved, if any.
    pub checkpoint: Option<Uuid>,
    /// What is wrong.
    pub problem: Problem,
}

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Chains checked.
    pub chains: u64,
    /// Events checked.
    pub events: u64,
    /// Events blanked by retention (links checked, content gone).
    pub pruned: u64,
    /// Events holding a pseudonym in place of an erased person.
    pub pseudonymised: u64,
    /// Checkpoints whose signature verified.
    pub checkpoints: u64,
    /// The first break, or `None` when everything verified.
    pub first_break: Option<Break>,
}

impl Report {
    /// Whether everything verified.
    #[must_use]
    pub const fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

#[derive(Debug, Clone)]
struct Expectation {
    size: u64,
    head: Hash,
    root: Hash,
    checkpoint: Uuid,
}

/// Verifies a whole log, chain by chain.
#[derive(Debug)]
pub struct Verifier {
    report: Report,
    /// Per chain: what signed checkpoints say, by size.
    expected: BTreeMap<ChainId, Vec<Expectation>>,
    /// Per chain: how far signed checkpoints say retention pruned it.
    prunable: BTreeMap<ChainId, u64>,
    seen_chains: BTreeSet<ChainId>,
    announced: HashSet<Hash>,
    /// Pseudonyms met before their announcement may have been read: checked at the end.
    pseudonyms: Vec<(ChainId, u64, Hash)>,
}

impl Verifier {
    /// A verifier trusting `keys`, checking against `checkpoints`. Checkpoints that no
    /// trusted key signed are a break.
    #[must_use]
    pub fn new(keys: &[VerifyingKey], checkpoints: &[Checkpoint]) -> Self {
        let mut verifier = Self {
            report: Report::default(),
            expected: BTreeMap::new(),
            prunable: BTreeMap::new(),
            seen_chains: BTreeSet::new(),
            announced: HashSet::new(),
            pseudonyms: Vec::new(),
        };
        for checkpoint in checkpoints {
            if !keys.iter().any(|k| k.verifies(checkpoint)) {
                verifier.fail(Break {
                    chain: None,
                    sequence: None,
                    checkpoint: Some(checkpoint.id),
                    problem: Problem::BadSignature,
                });
                continue;
            }
            verifier.report.checkpoints += 1;
            for head in &checkpoint.heads {
                verifier
                    .expected
                    .entry(head.chain)
                    .or_default()
                    .push(Expectation {
                        size: head.size,
                        head: head.head,
                        root: head.root,
                        checkpoint: checkpoint.id,
                    });
                let pruned = verifier.prunable.entry(head.chain).or_default();
                *pruned = (*pruned).max(head.pruned_through);
            }
        }
        for list in verifier.expected.values_mut() {
            list.sort_by_key(|e| e.size);
        }
        verifier
    }

    fn fail(&mut self, at: Break) {
        if self.report.first_break.is_none() {
            self.report.first_break = Some(at);
        }
    }

    /// Whether a break was found (later input is still counted, not checked).
    #[must_use]
    pub const fn broken(&self) -> bool {
        self.report.first_break.is_some()
    }

    /// Starts checking `chain`, whose row records `recorded_size` events.
    pub fn chain(&mut self, chain: ChainId, recorded_size: u64) -> ChainVerifier<'_> {
        self.seen_chains.insert(chain);
        self.report.chains += 1;
        let expectations = self.expected.get(&chain).cloned().unwrap_or_default();
        let prunable = self.prunable.get(&chain).copied().unwrap_or(0);
        ChainVerifier {
            verifier: self,
            chain,
            recorded_size,
            frontier: Frontier::new(),
            prev: Hash::ZERO,
            expectations,
            next_expectation: 0,
            prunable,
            content_seen: false,
            encoding: Vec::with_capacity(512),
            stopped: false,
        }
    }

    /// Finishes: chains the checkpoints name but the log lacks, and pseudonyms no
    /// erasure announced.
    #[must_use]
    pub fn finish(mut self) -> Report {
        let missing: Vec<(ChainId, Uuid)> = self
            .expected
            .iter()
            .filter(|(chain, list)| {
                !self.seen_chains.contains(chain) && list.iter().any(|e| e.size > 0)
            })
            .filter_map(|(chain, list)| list.first().map(|e| (*chain, e.checkpoint)))
            .collect();
        for (chain, checkpoint) in missing {
            self.fail(Break {
                chain: Some(chain),
                sequence: None,
                checkpoint: Some(checkpoint),
                problem: Problem::MissingChain,
            });
        }
        let unannounced = self
            .pseudonyms
            .iter()
            .find(|(_, _, p)| !self.announced.contains(p))
            .map(|(chain, sequence, _)| (*chain, *sequence));
        if let Some((chain, sequence)) = unannounced {
            self.fail(Break {
                chain: Some(chain),
                sequence: Some(sequence),
                checkpoint: None,
                problem: Problem::UnannouncedPseudonym,
            });
        }
        self.report
    }
}

/// Checks one chain's events, fed in order.
#[derive(Debug)]
pub struct ChainVerifier<'a> {
    verifier: &'a mut Verifier,
    chain: ChainId,
    recorded_size: u64,
    frontier: Frontier,
    prev: Hash,
    expectations: Vec<Expectation>,
    next_expectation: usize,
    prunable: u64,
    content_seen: bool,
    encoding: Vec<u8>,
    stopped: bool,
}

impl ChainVerifier<'_> {
    fn fail(&mut self, sequence: Option<u64>, checkpoint: Option<Uuid>, problem: Problem) {
        self.stopped = true;
        self.verifier.fail(Break {
            chain: Some(self.chain),
            sequence,
            checkpoint,
            problem,
        });
    }

    /// Whether this chain needs no more input (a break was found).
    #[must_use]
    pub const fn stopped(&self) -> bool {
        self.stopped
    }

    /// Checks the next events.
    pub fn feed(&mut self, events: &[SealedEvent]) {
        for event in events {
            if self.stopped {
                return;
            }
            self.check(event);
        }
    }

    fn check(&mut self, event: &SealedEvent) {
        let expected_sequence = self.frontier.size() + 1;
        let at = Some(event.sequence);
        if event.chain != self.chain || event.sequence != expected_sequence {
            return self.fail(at, None, Problem::SequenceGap);
        }
        if event.prev_hash != self.prev {
            return self.fail(at, None, Problem::BrokenLink);
        }
        self.verifier.report.events += 1;
        if event.pruned {
            if self.content_seen || event.sequence > self.prunable {
                return self.fail(at, None, Problem::UnsignedPruning);
            }
            self.verifier.report.pruned += 1;
        } else {
            self.content_seen = true;
            self.encoding.clear();
            event.encode(&mut self.encoding);
            if crate::merkle::leaf_hash(&self.encoding) != event.hash {
                return self.fail(at, None, Problem::HashMismatch);
            }
            if let Some(problem) = self.check_commitments(event) {
                return self.fail(at, None, problem);
            }
            if let Some(p) = event.erased_pseudonym {
                self.verifier.announced.insert(p);
            }
        }
        self.frontier.push(event.hash);
        self.prev = event.hash;
        self.reach_checkpoints(at);
    }

    /// Checks the checkpointed heads the chain has reached so far.
    fn reach_checkpoints(&mut self, at: Option<u64>) {
        while let Some(e) = self.expectations.get(self.next_expectation) {
            if e.size > self.frontier.size() {
                break;
            }
            if e.size == self.frontier.size()
                && (e.head != self.prev || e.root != self.frontier.root())
            {
                let checkpoint = Some(e.checkpoint);
                return self.fail(at, checkpoint, Problem::CheckpointMismatch);
            }
            self.next_expectation += 1;
        }
    }

    fn check_commitments(&mut self, event: &SealedEvent) -> Option<Problem> {
        let actor = &event.actor;
        let mut pseudonymised = false;
        match (actor.pseudonym, actor.commitment) {
            (Some(p), Some(_)) if actor.id.is_none() && actor.client_address.is_none() => {
                pseudonymised = true;
                self.verifier
                    .pseudonyms
                    .push((event.chain, event.sequence, p));
            }
            (Some(_), _) => return Some(Problem::ActorCommitment),
            (None, commitment) => {
                let has_identity = actor.id.is_some() || actor.client_address.is_some();
                let expected = has_identity.then(|| {
                    actor_commitment(
                        event.chain,
                        event.sequence,
                        actor.id,
                        actor.client_address.as_deref(),
                    )
                });
                if expected != commitment {
                    return Some(Problem::ActorCommitment);
                }
            }
        }
        if let Some(subject) = &event.subject {
            match (subject.id, subject.pseudonym) {
                (Some(id), None) => {
                    if subject_commitment(event.chain, event.sequence, id) != subject.commitment {
                        return Some(Problem::SubjectCommitment);
                    }
                }
                (None, Some(p)) => {
                    pseudonymised = true;
                    self.verifier
                        .pseudonyms
                        .push((event.chain, event.sequence, p));
                }
                _ => return Some(Problem::SubjectCommitment),
            }
        }
        if pseudonymised {
            self.verifier.report.pseudonymised += 1;
        }
        None
    }

    /// Ends the chain: every checkpointed head must have been reached, and the chain's
    /// row must agree with its events.
    pub fn end(mut self) {
        if self.stopped {
            return;
        }
        let size = self.frontier.size();
        // A chain fed no events has checked no checkpoint yet: one may name it empty
        // (a process that stopped before appending anything still signs its head).
        if size == 0 {
            self.reach_checkpoints(None);
            if self.stopped {
                return;
            }
        }
        if let Some(e) = self.expectations.get(self.next_expectation) {
            let checkpoint = Some(e.checkpoint);
            return self.fail(Some(size + 1), checkpoint, Problem::MissingEvents);
        }
        if self.recorded_size != size {
            self.fail(
                Some(size.min(self.recorded_size) + 1),
                None,
                Problem::ChainRowMismatch,
            );
        }
    }
}

/// How many events one read fetches.
const PAGE: u32 = 10_000;

/// Verifies everything `repository` holds against `keys`, as of the moment its
/// chain heads are read: events appended while it runs are left for the next run.
///
/// # Errors
/// When storage cannot be read.
pub async fn verify_repository(
    repository: &dyn AuditRepository,
    keys: &[VerifyingKey],
) -> Result<Report, AuditStoreError> {
    let checkpoints = repository.checkpoints().await?;
    let heads = repository.heads().await?;
    let mut verifier = Verifier::new(keys, &checkpoints);
    for chain in repository.chains().await? {
        let recorded = heads
            .iter()
            .find(|h| h.chain == chain)
            .map_or(0, |h| h.size);
        let mut chain_verifier = verifier.chain(chain, recorded);
        let mut after = 0;
        loop {
            let mut page = repository.events(chain, after, PAGE).await?;
            let full = page.len() == PAGE as usize;
            // Events appended after the heads were read are left for the next run:
            // a live log is verified as of one moment.
            page.retain(|e| e.sequence <= recorded);
            let Some(last) = page.last() else { break };
            after = last.sequence;
            chain_verifier.feed(&page);
            if chain_verifier.stopped() || !full || after >= recorded {
                break;
            }
        }
        chain_verifier.end();
    }
    Ok(verifier.finish())
}
