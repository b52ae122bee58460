//! The ports the rights engine needs, implemented by adapters the server composes:
//! storage of requests, proofs of authority, cases and archives ([`RightsRepository`]);
//! who a person is and who may act for them ([`People`]); the consent ledger
//! ([`ConsentLedger`]); the subject's data key ([`SubjectKeys`]); and the packing of
//! an export into one archive ([`ArchivePacker`]). Personal data itself is reached
//! only through every context's `kernel::PersonalData`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::{DataCategory, OrganisationId, Purpose, SubjectId, UserId};

use crate::authority::ProofOfAuthority;
use crate::case::Case;
use crate::ids::{AuthorityId, CaseId, RightsRequestId};
use crate::request::{Requester, RightsRequest};

/// An adapter's failure; the detail is for operators' logs.
pub type PortError = Box<dyn std::error::Error + Send + Sync>;

/// Why storage refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The stored row changed since it was read (optimistic concurrency), or an
    /// identical open request was stored meanwhile.
    #[error("the record changed meanwhile")]
    Conflict,
    /// The store failed.
    #[error("rights storage is unavailable")]
    Unavailable(#[source] PortError),
}

/// A stored proof of authority with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuthority {
    /// Its id, which the agent names when filing.
    pub id: AuthorityId,
    /// The proof.
    pub proof: ProofOfAuthority,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Bumped by every stored change.
    pub version: u32,
}

/// One erasure step done: a context's outcomes, journaled so that a resumed
/// erasure skips it and still reports what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureStep {
    /// The context (`clinical`, ..., or `keys` for the data key).
    pub context: String,
    /// Its outcomes.
    pub outcomes: Vec<kernel::personal_data::ErasureOutcome>,
}

/// Storage of the rights context.
///
/// # Contract
/// - `insert_request` refuses with [`RepositoryError::Conflict`] a second open
///   request identical to one stored (same subject, kind, regime, requester and
///   detail), so concurrent duplicates collapse into one.
/// - `update_*` writes only when the stored version is `version - 1`, else
///   `Conflict`.
/// - Archives are stored sealed under the subject's data key: destroying the key
///   makes every archive of theirs unreadable (`archive` then answers `None`).
#[async_trait]
pub trait RightsRepository: Send + Sync + 'static {
    /// Stores a new request (version 0).
    async fn insert_request(&self, request: &RightsRequest) -> Result<(), RepositoryError>;
    /// Writes a changed request whose `version` was bumped by one.
    async fn update_request(&self, request: &RightsRequest) -> Result<(), RepositoryError>;
    /// One request.
    async fn request(&self, id: RightsRequestId) -> Result<Option<RightsRequest>, RepositoryError>;
    /// The subject's requests that are not final, oldest first.
    async fn open_requests_about(
        &self,
        subject: SubjectId,
    ) -> Result<Vec<RightsRequest>, RepositoryError>;
    /// Requests filed by `user` or about `subject` (the person's own), newest first.
    async fn requests_of(
        &self,
        user: UserId,
        subject: Option<SubjectId>,
    ) -> Result<Vec<RightsRequest>, RepositoryError>;
    /// The practice's requests that are not final, by due time in force, earliest
    /// first; at most `limit`.
    async fn open_requests_of(
        &self,
        organisation: OrganisationId,
        limit: u32,
    ) -> Result<Vec<RightsRequest>, RepositoryError>;

    /// Stores an archive for a request, sealed under the subject's data key kept by
    /// `organisation`.
    async fn put_archive(
        &self,
        request: RightsRequestId,
        organisation: OrganisationId,
        subject: SubjectId,
        archive: &[u8],
    ) -> Result<(), RepositoryError>;
    /// A request's archive, opened; `None` when there is none or its key is gone.
    async fn archive(&self, request: RightsRequestId) -> Result<Option<Vec<u8>>, RepositoryError>;

    /// Journals one erasure step of a request (idempotent per context).
    async fn put_erasure_step(
        &self,
        request: RightsRequestId,
        step: &ErasureStep,
    ) -> Result<(), RepositoryError>;
    /// The erasure steps journaled for a request, in the order written.
    async fn erasure_steps(
        &self,
        request: RightsRequestId,
    ) -> Result<Vec<ErasureStep>, RepositoryError>;

    /// Stores a new proof of authority (version 0).
    async fn insert_authority(&self, authority: &StoredAuthority) -> Result<(), RepositoryError>;
    /// Writes a changed proof whose `version` was bumped by one.
    async fn update_authority(&self, authority: &StoredAuthority) -> Result<(), RepositoryError>;
    /// One proof.
    async fn authority(&self, id: AuthorityId) -> Result<Option<StoredAuthority>, RepositoryError>;
    /// The proofs naming `subject`, oldest first.
    async fn authorities_for(
        &self,
        subject: SubjectId,
    ) -> Result<Vec<StoredAuthority>, RepositoryError>;
    /// The proofs `agent` recorded, oldest first.
    async fn authorities_of_agent(
        &self,
        agent: UserId,
    ) -> Result<Vec<StoredAuthority>, RepositoryError>;

    /// Stores a new case (version 0); its message is sealed.
    async fn insert_case(&self, case: &Case) -> Result<(), RepositoryError>;
    /// Writes a changed case whose `version` was bumped by one.
    async fn update_case(&self, case: &Case) -> Result<(), RepositoryError>;
    /// One case.
    async fn case(&self, id: CaseId) -> Result<Option<Case>, RepositoryError>;
    /// Cases reported by `user`, newest first.
    async fn cases_of(&self, user: UserId) -> Result<Vec<Case>, RepositoryError>;
    /// Cases not closed, by due time, earliest first; at most `limit`.
    async fn open_cases(&self, limit: u32) -> Result<Vec<Case>, RepositoryError>;
}

/// A person as the rights engine needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Person {
    /// Their account.
    pub user: UserId,
    /// Their id as a data subject.
    pub subject: SubjectId,
    /// The practice whose key hierarchy holds their data key, and whose privacy
    /// officer answers their requests.
    pub home_organisation: OrganisationId,
}

/// Where a page of a practice's clients begins: after the client who became one
/// at `at` with account `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientsCursor {
    /// When the last client of the page became one.
    pub at: DateTime<Utc>,
    /// Their account.
    pub id: uuid::Uuid,
}

/// One page of a practice's clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientsPage {
    /// The clients.
    pub people: Vec<Person>,
    /// Where the next page begins, if there is one.
    pub next: Option<ClientsCursor>,
}

/// Who people are and who may act for them (identity and clinical, behind an
/// adapter).
#[async_trait]
pub trait People: Send + Sync + 'static {
    /// The person behind an account, if it exists and is not erased.
    async fn person(&self, user: UserId) -> Result<Option<Person>, PortError>;
    /// The person a subject is, erased or not (an erased account still names its
    /// home practice).
    async fn person_of_subject(&self, subject: SubjectId) -> Result<Option<Person>, PortError>;
    /// Whether `guardian` is a recorded guardian of `minor`.
    async fn is_guardian(&self, guardian: UserId, minor: UserId) -> Result<bool, PortError>;
    /// One page of the practice's clients, at most `limit`, after `after`: the
    /// population of a de-identified extract.
    async fn clients_of(
        &self,
        organisation: OrganisationId,
        after: Option<ClientsCursor>,
        limit: u32,
    ) -> Result<ClientsPage, PortError>;
    /// Whether `user` is a client of `organisation`.
    async fn is_client(
        &self,
        organisation: OrganisationId,
        user: UserId,
    ) -> Result<bool, PortError>;
}

/// A change to the consent ledger the engine asks for (D4, D6, D7). The consent
/// context records it with the requester's authority; the gate honours it from
/// the next request on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentInstruction {
    /// Withdraw the consent given for a purpose (to a recipient, or every one).
    Withdraw {
        /// The purpose.
        purpose: Purpose,
        /// The recipient, if the consent named one.
        recipient: Option<String>,
    },
    /// Object to processing for a purpose.
    Object {
        /// The purpose.
        purpose: Purpose,
    },
    /// Restrict processing of a category, or of everything.
    Restrict {
        /// The category; `None` for every one.
        category: Option<DataCategory>,
    },
    /// Lift an earlier restriction.
    LiftRestriction {
        /// The category; `None` for every one.
        category: Option<DataCategory>,
    },
}

/// Why the ledger refused an instruction.
#[derive(Debug, thiserror::Error)]
pub enum ConsentLedgerError {
    /// The history does not allow it (e.g. nothing to withdraw); nothing changed.
    #[error("{0}")]
    Refused(String),
    /// The ledger failed.
    #[error("the consent ledger is unavailable")]
    Unavailable(#[source] PortError),
}

/// The consent ledger, as the engine drives it.
#[async_trait]
pub trait ConsentLedger: Send + Sync + 'static {
    /// Records `instruction` for `subject` on `requester`'s authority.
    async fn apply(
        &self,
        ctx: &kernel::RequestContext,
        subject: SubjectId,
        requester: Requester,
        instruction: ConsentInstruction,
    ) -> Result<(), ConsentLedgerError>;
}

/// The subject's data keys, for crypto-shredding on erasure.
#[async_trait]
pub trait SubjectKeys: Send + Sync + 'static {
    /// Destroys every data key of `subject` kept by `organisation`; returns how
    /// many were destroyed (0 on a repeat).
    async fn shred(
        &self,
        organisation: OrganisationId,
        subject: SubjectId,
    ) -> Result<u64, PortError>;
}

/// One file of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePart {
    /// Its name inside the archive.
    pub name: &'static str,
    /// Its content.
    pub content: Vec<u8>,
}

/// A packed archive and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// The archive's bytes.
    pub bytes: Vec<u8>,
    /// Their SHA-256, lowercase hex.
    pub sha256: String,
}

/// Packs parts into one archive file and digests it.
pub trait ArchivePacker: Send + Sync + 'static {
    /// The archive's media type, e.g. `application/zip`.
    fn media_type(&self) -> &'static str;
    /// Packs `parts`, in order.
    ///
    /// # Errors
    /// The packer failed.
    fn pack(&self, parts: &[ArchivePart]) -> Result<Packed, PortError>;
}
