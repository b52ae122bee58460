//! The port the clinical context stores through. The adapter (in `store`) seals
//! every body, every identifying field and every break-glass reason with the
//! subject's data key before it reaches the database, and opens them on the way
//! back: the domain never sees ciphertext, and the database never sees health data.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use kernel::{DataCategory, OrganisationId, SubjectId, UserId};
use uuid::Uuid;

use crate::model::{
    Appointment, BreakGlassGrant, CareTeamMember, ClientIdentity, ClientRef, ExerciseTemplate,
    Page, PageRequest, Record, RecordKind, RecordVersion,
};

/// Why the repository failed.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// A rule the store enforces atomically was broken: a double booking, a
    /// version that moved on, a membership that already exists.
    #[error("{0}")]
    Conflict(&'static str),
    /// The database (or a key) is unavailable. The detail is for operators' logs.
    #[error("clinical records are unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A client as the access check sees them: who they are, and the categories
/// restricted by a [`kernel::PersonalData::restrict`] (D4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAccess {
    /// The client.
    pub client: ClientRef,
    /// Restricted categories: none, or all when `all` is set.
    pub restricted: Restriction,
}

/// The categories of a client's records under restriction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Restriction {
    /// None.
    #[default]
    None,
    /// Every category.
    All,
    /// These categories.
    Categories(Vec<DataCategory>),
}

impl Restriction {
    /// Whether `category` is restricted.
    #[must_use]
    pub fn covers(&self, category: DataCategory) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Categories(list) => list.contains(&category),
        }
    }
}

/// A client on a list of clients: who, and since when the lister has seen them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientListing {
    /// The client.
    pub client: ClientRef,
    /// When they became a client of the practice (for admins) or when the
    /// lister's care-team membership began (for providers).
    pub since: DateTime<Utc>,
}

/// What one erasure removed, by record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    /// The resource kind (a [`RecordKind`] name, `appointment`, `care_team_member`,
    /// `break_glass_grant` or `restriction`).
    pub kind: &'static str,
    /// The record.
    pub id: Uuid,
    /// Its category.
    pub category: DataCategory,
}

/// Storage of clinical records.
///
/// # Contract
/// - Every method touches one subject's rows through indexed lookups; none scans a
///   table of health data, except the retention sweep's ([`dormant_charts`],
///   [`delete_break_glass_ended_before`]), which run in the background, never on a
///   request.
/// - A subject's chart is *dormant* at a cutoff when nothing in it is as recent:
///   every record was last written, every appointment ended and every break-glass
///   grant expired before the cutoff, and every care-team membership of their
///   client accounts ended (its last day) before the cutoff's day and was added
///   before the cutoff.
///
/// [`dormant_charts`]: ClinicalRepository::dormant_charts
/// [`delete_break_glass_ended_before`]: ClinicalRepository::delete_break_glass_ended_before
/// - Lists are ordered by (time, id) ascending and start strictly after the cursor.
/// - `update_records` and `book`/`update_appointment` are atomic: all or nothing.
#[async_trait]
pub trait ClinicalRepository: Send + Sync + 'static {
    /// The client account `user` of practice `organisation`, if it is one (with
    /// the `client` role there).
    async fn client(
        &self,
        organisation: OrganisationId,
        user: UserId,
    ) -> Result<Option<ClientAccess>, RepositoryError>;

    /// The client's name, contact details and birth date (held by identity).
    async fn client_identity(
        &self,
        client: &ClientRef,
    ) -> Result<Option<ClientIdentity>, RepositoryError>;

    /// Whether `user` holds the `provider` role in `organisation`.
    async fn is_provider(
        &self,
        organisation: OrganisationId,
        user: UserId,
    ) -> Result<bool, RepositoryError>;

    /// The clients `provider` is on the care team of on `day` (every client of the
    /// practice when `provider` is none), paged by (since, client).
    async fn clients(
        &self,
        organisation: OrganisationId,
        provider: Option<UserId>,
        day: NaiveDate,
        page: PageRequest,
    ) -> Result<Page<ClientListing>, RepositoryError>;

    /// The care team of `client`, past and present.
    async fn care_team(&self, client: &ClientRef) -> Result<Vec<CareTeamMember>, RepositoryError>;

    /// Whether `provider` is on `client`'s care team on `day`.
    async fn on_care_team(
        &self,
        client: &ClientRef,
        provider: UserId,
        day: NaiveDate,
    ) -> Result<bool, RepositoryError>;

    /// Adds a membership. [`RepositoryError::Conflict`] if the provider already has
    /// one that has not ended before `member.starts_on`.
    async fn add_care_team_member(&self, member: &CareTeamMember) -> Result<(), RepositoryError>;

    /// Ends the provider's open membership on `ends_on`; false if there is none.
    async fn end_care_team_membership(
        &self,
        client: &ClientRef,
        provider: UserId,
        ends_on: NaiveDate,
    ) -> Result<bool, RepositoryError>;

    /// Records a break-glass grant.
    async fn grant_break_glass(&self, grant: &BreakGlassGrant) -> Result<(), RepositoryError>;

    /// Whether `holder` has a break-glass grant on `client` in force at `at`.
    async fn break_glass_in_force(
        &self,
        client: &ClientRef,
        holder: UserId,
        at: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;

    /// The practice's break-glass grants, for review, by (granted_at, id).
    async fn break_glass_grants(
        &self,
        organisation: OrganisationId,
        page: PageRequest,
    ) -> Result<Page<BreakGlassGrant>, RepositoryError>;

    /// Stores a new record (version 1).
    async fn insert_record(&self, record: &Record) -> Result<(), RepositoryError>;

    /// Stores new versions of records, each only if its stored version is the one
    /// paired with it ([`RepositoryError::Conflict`] otherwise); the versions they
    /// replace stay readable.
    async fn update_records(&self, changes: &[(&Record, u32)]) -> Result<(), RepositoryError>;

    /// One record of `client`.
    async fn record(&self, client: &ClientRef, id: Uuid)
    -> Result<Option<Record>, RepositoryError>;

    /// A page of `client`'s records of `kind`, by (created_at, id).
    async fn records(
        &self,
        client: &ClientRef,
        kind: RecordKind,
        page: PageRequest,
    ) -> Result<Page<Record>, RepositoryError>;

    /// Every version of one record, oldest first (empty if there is no such record).
    async fn record_versions(
        &self,
        client: &ClientRef,
        id: Uuid,
    ) -> Result<Vec<RecordVersion>, RepositoryError>;

    /// Books an appointment: [`RepositoryError::Conflict`] if the provider has
    /// another appointment holding time that overlaps it.
    async fn book(&self, appointment: &Appointment) -> Result<(), RepositoryError>;

    /// Stores a new version of an appointment if its stored version is `expected`,
    /// with the same double-booking rule.
    async fn update_appointment(
        &self,
        appointment: &Appointment,
        expected: u32,
    ) -> Result<(), RepositoryError>;

    /// One appointment of `client`.
    async fn appointment(
        &self,
        client: &ClientRef,
        id: Uuid,
    ) -> Result<Option<Appointment>, RepositoryError>;

    /// A page of `client`'s appointments, by (starts_at, id).
    async fn appointments(
        &self,
        client: &ClientRef,
        page: PageRequest,
    ) -> Result<Page<Appointment>, RepositoryError>;

    /// Adds a template to the exercise library.
    async fn add_template(&self, template: &ExerciseTemplate) -> Result<(), RepositoryError>;

    /// A template the practice may use (its own or a shared one).
    async fn template(
        &self,
        organisation: OrganisationId,
        id: Uuid,
    ) -> Result<Option<ExerciseTemplate>, RepositoryError>;

    /// The practice's templates and the shared ones, by (created_at, id).
    async fn templates(
        &self,
        organisation: OrganisationId,
        page: PageRequest,
    ) -> Result<Page<ExerciseTemplate>, RepositoryError>;

    /// Every record, every version, every appointment, care-team membership and
    /// break-glass grant of `subject` (for export).
    async fn subject_holdings(&self, subject: SubjectId) -> Result<Holdings, RepositoryError>;

    /// Deletes every clinical row of `subject` in one transaction, reporting each.
    async fn erase_subject(&self, subject: SubjectId) -> Result<Vec<Erased>, RepositoryError>;

    /// Up to `limit` subjects, in id order, holding records, appointments or
    /// care-team memberships whose chart is dormant at `cutoff` (see the contract).
    async fn dormant_charts(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SubjectId>, RepositoryError>;

    /// Deletes `subject`'s chart if it is still dormant at `cutoff`, in one
    /// transaction: every record with its versions, appointment, care-team
    /// membership and the restriction, reporting each; break-glass grants are left
    /// to [`ClinicalRepository::delete_break_glass_ended_before`]. `None` when the
    /// chart is no longer dormant: nothing is deleted. With `dry_run`, reports what
    /// it would delete and deletes nothing.
    async fn delete_dormant_chart(
        &self,
        subject: SubjectId,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Option<Vec<Erased>>, RepositoryError>;

    /// Deletes every break-glass grant that expired before `cutoff` (with
    /// `dry_run`, only counts them); returns how many.
    async fn delete_break_glass_ended_before(
        &self,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<u64, RepositoryError>;

    /// Sets (or, with `Restriction::None`, lifts) the subject's restriction.
    async fn set_restriction(
        &self,
        subject: SubjectId,
        restriction: &Restriction,
    ) -> Result<(), RepositoryError>;
}

/// Everything the clinical context holds about one subject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    /// The client, if the subject is one (absent once the account is gone).
    pub client: Option<ClientRef>,
    /// Their name and contact details, for the FHIR `Patient`.
    pub identity: Option<ClientIdentity>,
    /// Records, current versions, by (created_at, id).
    pub records: Vec<Record>,
    /// Earlier versions, by record.
    pub versions: Vec<(Uuid, RecordVersion)>,
    /// Appointments, by (starts_at, id).
    pub appointments: Vec<Appointment>,
    /// Care-team memberships.
    pub care_team: Vec<CareTeamMember>,
    /// Break-glass grants on them.
    pub break_glass: Vec<BreakGlassGrant>,
}
