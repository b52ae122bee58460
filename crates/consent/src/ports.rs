//! The ports the consent context needs: storage of the ledger and its projection,
//! and a way to tell people about a material policy change.
//!
//! The storage adapter keeps the evidence and the authorisations encrypted with the
//! subject's key; this crate hands it plaintext and never sees ciphertext.

use async_trait::async_trait;
use kernel::{OrganisationId, Regime, SubjectId};

use crate::authorisation::StoredAuthorisation;
use crate::catalogue::PracticePolicy;
use crate::decision::SubjectState;
use crate::ledger::{ChainId, LedgerEvent, SaltedEvidence};
use crate::policy::PolicyVersion;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// Another writer moved the subject's head first, or the key exists; reload and retry.
    #[error("the record changed concurrently")]
    Conflict,
    /// The store failed. The detail is for operators' logs.
    #[error("consent storage is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One subject as the consent context knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRecord {
    /// Who.
    pub subject: SubjectId,
    /// The practice whose settings apply (a client's home practice), if any.
    pub organisation: Option<OrganisationId>,
    /// Whether only a guardian decides for them (O1).
    pub minor: bool,
    /// The projection: the head of their chain and what is in force.
    pub state: SubjectState,
}

impl SubjectRecord {
    /// A subject with an empty chain under a fresh pseudonymous [`ChainId`].
    #[must_use]
    pub fn new(subject: SubjectId, organisation: Option<OrganisationId>, minor: bool) -> Self {
        Self {
            subject,
            organisation,
            minor,
            state: SubjectState::new(ChainId::random()),
        }
    }
}

/// A practice's consent settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeSettings {
    /// What consent each purpose needs there (U4 marketing mode included).
    pub policy: PracticePolicy,
    /// The regime whose bases decisions cite.
    pub regime: Regime,
}

impl Default for PracticeSettings {
    /// The strictest behaviour, under HIPAA.
    fn default() -> Self {
        Self {
            policy: PracticePolicy::default(),
            regime: Regime::Hipaa,
        }
    }
}

/// One event with its evidence, as the person's own history shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The chained event.
    pub event: LedgerEvent,
    /// Its evidence, unless erased.
    pub evidence: Option<SaltedEvidence>,
}

/// What an erasure removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Erased {
    /// The chain left behind, now pseudonymous (none if there was no record).
    pub chain: Option<ChainId>,
    /// How many events' evidence was destroyed.
    pub evidence: u64,
    /// How many authorisation records were destroyed.
    pub authorisations: u64,
    /// How many events stay, pseudonymised, as the proof of consent.
    pub events_kept: u64,
}

/// Where the auditor's export of the ledger resumes: after this chain and sequence.
pub type LedgerCursor = (ChainId, u64);

/// Storage of the ledger, its projection, authorisations, settings and policies.
///
/// # Contract
/// - [`ConsentRepository::append`] stores the event, its evidence, the optional
///   authorisation and the subject's new projection **in one transaction**, and only
///   if the subject's stored head is still `expected_head` (else
///   [`RepositoryError::Conflict`], nothing written). A subject with no stored record
///   is created by their first append.
/// - Nothing in the ledger is updated or deleted, except by
///   [`ConsentRepository::erase`], which removes the evidence, the authorisations,
///   the projection and the link from the subject to the chain, keeps the events and
///   records when the chain was unlinked; and by
///   [`ConsentRepository::delete_erased_before`], the retention sweep, which deletes
///   whole chains unlinked long enough ago, with that record.
#[async_trait]
pub trait ConsentRepository: Send + Sync + 'static {
    /// The subject's record, if they have one.
    async fn subject(&self, subject: SubjectId) -> Result<Option<SubjectRecord>, RepositoryError>;

    /// The subject's record for a decision, shared rather than copied where the
    /// adapter keeps records in memory (the gate's hot path reads, never changes it).
    async fn snapshot(
        &self,
        subject: SubjectId,
    ) -> Result<Option<std::sync::Arc<SubjectRecord>>, RepositoryError> {
        Ok(self.subject(subject).await?.map(std::sync::Arc::new))
    }

    /// Sets who the subject belongs to and whether they are a minor, creating their
    /// record (with an empty chain) if they have none.
    async fn register(
        &self,
        subject: SubjectId,
        organisation: Option<OrganisationId>,
        minor: bool,
    ) -> Result<SubjectRecord, RepositoryError>;

    /// Appends one event (see the contract).
    async fn append(
        &self,
        record: &SubjectRecord,
        expected_head: Option<u64>,
        event: &LedgerEvent,
        evidence: &SaltedEvidence,
        authorisation: Option<&StoredAuthorisation>,
    ) -> Result<(), RepositoryError>;

    /// The subject's events with their evidence, oldest first.
    async fn history(&self, subject: SubjectId) -> Result<Vec<HistoryEntry>, RepositoryError>;

    /// The subject's recorded authorisations, oldest first.
    async fn authorisations(
        &self,
        subject: SubjectId,
    ) -> Result<Vec<StoredAuthorisation>, RepositoryError>;

    /// Events of every chain in (chain, sequence) order, after `after`, at most `limit`.
    async fn events_after(
        &self,
        after: Option<LedgerCursor>,
        limit: u32,
    ) -> Result<Vec<LedgerEvent>, RepositoryError>;

    /// Events of the chains of subjects whose practice is `organisation`, in
    /// (chain, sequence) order, after `after`, at most `limit`: a practice
    /// auditor's export. Erased subjects' chains are no longer linked to a practice
    /// and are not included.
    async fn events_of_organisation(
        &self,
        organisation: OrganisationId,
        after: Option<LedgerCursor>,
        limit: u32,
    ) -> Result<Vec<LedgerEvent>, RepositoryError>;

    /// The stored head of every chain that still has a subject, in chain order,
    /// after `after`, at most `limit`: to check the projection is in step.
    async fn heads_after(
        &self,
        after: Option<ChainId>,
        limit: u32,
    ) -> Result<Vec<(ChainId, Option<(u64, [u8; 32])>)>, RepositoryError>;

    /// Subjects with a record, in id order, after `after`, at most `limit`.
    async fn subjects_after(
        &self,
        after: Option<SubjectId>,
        limit: u32,
    ) -> Result<Vec<SubjectId>, RepositoryError>;

    /// A practice's settings (the defaults if it has none).
    async fn settings(
        &self,
        organisation: OrganisationId,
    ) -> Result<PracticeSettings, RepositoryError>;

    /// Replaces a practice's settings.
    async fn set_settings(
        &self,
        organisation: OrganisationId,
        settings: &PracticeSettings,
    ) -> Result<(), RepositoryError>;

    /// Every published policy version, oldest first.
    async fn policies(&self) -> Result<Vec<PolicyVersion>, RepositoryError>;

    /// Publishes a version; [`RepositoryError::Conflict`] if `document@version` exists.
    async fn publish(&self, version: &PolicyVersion) -> Result<(), RepositoryError>;

    /// Erases the subject (see the contract) at `erased_at` (microseconds since the
    /// epoch), which is recorded beside the chain left behind.
    async fn erase(&self, subject: SubjectId, erased_at: i64) -> Result<Erased, RepositoryError>;

    /// How many events the chains erased before `cutoff` (microseconds) still hold:
    /// what [`ConsentRepository::delete_erased_before`] would delete.
    async fn erased_events_before(&self, cutoff: i64) -> Result<u64, RepositoryError>;

    /// Deletes every chain erased before `cutoff` (microseconds): its events and the
    /// record of its erasure, in one transaction. Returns how many events were
    /// deleted; idempotent.
    async fn delete_erased_before(&self, cutoff: i64) -> Result<u64, RepositoryError>;
}

/// Tells a person that a policy changed materially. Transactional (U3): always sent.
#[async_trait]
pub trait PolicyNotifier: Send + Sync + 'static {
    /// Queues the notice for `subject`; `Ok(false)` if the subject has no account to
    /// tell (e.g. erased).
    async fn policy_changed(
        &self,
        subject: SubjectId,
        version: &PolicyVersion,
    ) -> Result<bool, RepositoryError>;
}
