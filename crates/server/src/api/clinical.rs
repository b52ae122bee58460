//! Clinical records over HTTP (C3, C4, C6, U2, D2): clients and their care
//! teams, break-glass, records of every kind with their versions, amendments,
//! appointments and the exercise library.
//!
//! Every operation on a client's data goes through [`ClinicalService`]'s one
//! path (relationship, restriction and consent, audit; see `docs/clinical.md`).
//! A client the caller may not see is 404 exactly as one that does not exist.
//! [`ClinicalError`] is mapped to HTTP here and nowhere else.

pub mod records;

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use clinical::model::{
    AppointmentDetails, AppointmentStatus, BreakGlassGrant, CareTeamMember, Cursor,
    ExerciseTemplate, Page, PageRequest, Record, RecordVersion,
};
use clinical::service::NewAppointment;
use clinical::{ClinicalError, ClinicalService, HttpsUrl, Text, TimeZone};
use kernel::{OrganisationId, Purpose, UserId};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

use self::records::{RecordContent, RecordInput, RecordKindName};
use crate::api::ApiTags;
use crate::api::identity::{Created, Found};
use crate::auth::SessionAuth;
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::state::AppState;

impl From<ClinicalError> for ApiError {
    fn from(err: ClinicalError) -> Self {
        match err {
            ClinicalError::NotFound => Self::new(
                ProblemKind::NotFound,
                "No such client or record (or none you may see).",
            ),
            ClinicalError::Forbidden(rule) => Self::new(ProblemKind::Forbidden, format!("{rule}.")),
            ClinicalError::Refused(reason) => Self::new(
                ProblemKind::Forbidden,
                format!(
                    "The client's consent does not allow this use ({}); nothing was read or changed.",
                    reason.as_str()
                ),
            ),
            ClinicalError::Invalid(e) => Self::new(
                ProblemKind::Unprocessable,
                format!("{e}; nothing was stored."),
            ),
            ClinicalError::Conflict(rule) => Self::new(
                ProblemKind::Conflict,
                format!("{rule}; nothing was changed."),
            ),
            ClinicalError::Unavailable(source) => {
                tracing::error!(error = %source, "clinical records unavailable");
                Self::Unavailable(Json(Problem::new(
                    ProblemKind::Unavailable,
                    "Clinical records are temporarily unavailable; nothing was read or changed.",
                )))
            }
        }
    }
}

fn unprocessable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ProblemKind::Unprocessable,
        format!("{e}; nothing was stored."),
    )
}

fn text<const MAX: usize>(field: &str, value: &str) -> Result<Text<MAX>, ApiError> {
    Text::parse(value).map_err(|e| unprocessable(format!("`{field}`: {e}")))
}

fn optional_text<const MAX: usize>(
    field: &str,
    value: Option<&str>,
) -> Result<Option<Text<MAX>>, ApiError> {
    value.map(|v| text(field, v)).transpose()
}

// ----- cursors -----

/// A cursor names its list and its position: `k1`, the list's key, the last
/// item's time (microseconds) and id, all hex.
const CURSOR_PREFIX: &str = "k1";

/// The key of one list: the first 16 bytes of SHA-256 over its scope.
pub(crate) fn list_key(scope: &str, ids: &[Uuid]) -> Uuid {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(scope.as_bytes());
    for id in ids {
        digest.update(id.as_bytes());
    }
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest.finish().as_ref()[..16]);
    Uuid::from_bytes(bytes)
}

fn cursor_for(list: Uuid, at: &Cursor) -> String {
    format!(
        "{CURSOR_PREFIX}{}{:016x}{}",
        list.simple(),
        at.at.timestamp_micros(),
        at.id.simple()
    )
}

pub(crate) fn page_request(
    list: Uuid,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<PageRequest, ApiError> {
    let limit = limit.unwrap_or(50);
    let Some(cursor) = cursor else {
        return Ok(PageRequest::first(limit));
    };
    let bad = || {
        ApiError::new(
            ProblemKind::BadRequest,
            "The parameter `cursor` is malformed or belongs to another list.",
        )
    };
    let rest = cursor.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    if rest.len() != 32 + 16 + 32 || !rest.is_ascii() {
        return Err(bad());
    }
    let owner = Uuid::try_parse(&rest[..32]).map_err(|_| bad())?;
    let micros = u64::from_str_radix(&rest[32..48], 16).map_err(|_| bad())?;
    let id = Uuid::try_parse(&rest[48..]).map_err(|_| bad())?;
    let at = i64::try_from(micros)
        .ok()
        .and_then(|m| Utc.timestamp_micros(m).single())
        .ok_or_else(bad)?;
    if owner != list {
        return Err(bad());
    }
    Ok(PageRequest {
        after: Some(Cursor { at, id }),
        limit: PageRequest::first(limit).limit,
    })
}

// ----- wire shapes -----

/// A client the caller may see.
#[derive(Debug, Clone, Object)]
pub struct ClientListingView {
    /// The client's account id.
    pub client_id: Uuid,
    /// Since when: their care-team membership (providers) or their joining the
    /// practice (admins).
    pub since: DateTime<Utc>,
}

/// A page of clients.
#[derive(Debug, Clone, Object)]
pub struct ClientPage {
    /// The clients, oldest first.
    pub items: Vec<ClientListingView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// A client's identifying details (held by the account; read with the same
/// checks and audit as their records).
#[derive(Debug, Clone, Object)]
pub struct ClientView {
    /// The client's account id.
    pub client_id: Uuid,
    /// Full name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Phone.
    #[oai(skip_serializing_if_is_none)]
    pub phone: Option<String>,
    /// Date of birth.
    #[oai(skip_serializing_if_is_none)]
    pub date_of_birth: Option<NaiveDate>,
}

/// A provider's membership of a client's care team.
#[derive(Debug, Clone, Object)]
pub struct CareTeamMemberView {
    /// The provider.
    pub provider_id: Uuid,
    /// First day.
    pub starts_on: NaiveDate,
    /// Last day (inclusive), if set.
    #[oai(skip_serializing_if_is_none)]
    pub ends_on: Option<NaiveDate>,
    /// Who added them.
    pub added_by: Uuid,
    /// When.
    pub added_at: DateTime<Utc>,
}

impl From<&CareTeamMember> for CareTeamMemberView {
    fn from(m: &CareTeamMember) -> Self {
        Self {
            provider_id: m.provider.as_uuid(),
            starts_on: m.starts_on,
            ends_on: m.ends_on,
            added_by: m.added_by.as_uuid(),
            added_at: m.added_at,
        }
    }
}

/// A client's care team, past and present.
#[derive(Debug, Clone, Object)]
pub struct CareTeamView {
    /// The memberships.
    pub members: Vec<CareTeamMemberView>,
}

/// A provider to put on a care team.
#[derive(Debug, Clone, Object)]
pub struct NewCareTeamMember {
    /// A provider of the practice.
    pub provider_id: Uuid,
    /// First day; today when absent.
    #[oai(skip_serializing_if_is_none)]
    pub starts_on: Option<NaiveDate>,
    /// Last day (inclusive), if known.
    #[oai(skip_serializing_if_is_none)]
    pub ends_on: Option<NaiveDate>,
}

/// When a membership ends.
#[derive(Debug, Clone, Object)]
pub struct CareTeamEnding {
    /// The last day (inclusive); today when absent.
    #[oai(skip_serializing_if_is_none)]
    pub ends_on: Option<NaiveDate>,
}

/// A break-glass request: why, and for how long.
#[derive(Debug, Clone, Object)]
pub struct BreakGlassRequest {
    /// Why access is needed now, up to 1,000 characters. Reviewed by the practice.
    #[oai(validator(
        max_length = 1000,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub reason: String,
    /// Minutes, 1 to 720.
    #[oai(validator(minimum(value = "1"), maximum(value = "720")))]
    pub minutes: u32,
}

/// A break-glass grant.
#[derive(Debug, Clone, Object)]
pub struct BreakGlassView {
    /// The grant.
    pub id: Uuid,
    /// The client.
    pub client_id: Uuid,
    /// Who took it.
    pub holder_id: Uuid,
    /// Why.
    pub reason: String,
    /// When it was taken.
    pub granted_at: DateTime<Utc>,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

impl From<&BreakGlassGrant> for BreakGlassView {
    fn from(g: &BreakGlassGrant) -> Self {
        Self {
            id: g.id,
            client_id: g.client.user.as_uuid(),
            holder_id: g.holder.as_uuid(),
            reason: g.reason.as_str().to_owned(),
            granted_at: g.granted_at,
            expires_at: g.expires_at,
        }
    }
}

/// A page of break-glass grants.
#[derive(Debug, Clone, Object)]
pub struct BreakGlassPage {
    /// The grants, oldest first.
    pub items: Vec<BreakGlassView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// A record of a client.
#[derive(Debug, Clone, Object)]
pub struct RecordView {
    /// The record.
    pub id: Uuid,
    /// The client.
    pub client_id: Uuid,
    /// Version, from 1.
    pub version: u32,
    /// When it was first written.
    pub created_at: DateTime<Utc>,
    /// Who first wrote it.
    pub created_by: Uuid,
    /// When this version was written.
    pub updated_at: DateTime<Utc>,
    /// Who wrote this version.
    pub updated_by: Uuid,
    /// The content, with its `kind`.
    pub content: RecordContent,
}

impl RecordView {
    fn of(record: &Record) -> Result<Self, ApiError> {
        Ok(Self {
            id: record.id,
            client_id: record.client.user.as_uuid(),
            version: record.version,
            created_at: record.created_at,
            created_by: record.created_by.as_uuid(),
            updated_at: record.updated_at,
            updated_by: record.updated_by.as_uuid(),
            content: RecordContent::from_domain(&record.body)?,
        })
    }
}

/// A page of records.
#[derive(Debug, Clone, Object)]
pub struct RecordPage {
    /// The records, oldest first.
    pub items: Vec<RecordView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// One version of a record.
#[derive(Debug, Clone, Object)]
pub struct RecordVersionView {
    /// Version number.
    pub version: u32,
    /// When it was written.
    pub written_at: DateTime<Utc>,
    /// Who wrote it.
    pub written_by: Uuid,
    /// The content then.
    pub content: RecordContent,
}

/// Every version of a record, oldest first.
#[derive(Debug, Clone, Object)]
pub struct RecordVersions {
    /// The versions.
    pub items: Vec<RecordVersionView>,
}

impl RecordVersionView {
    fn of(v: &RecordVersion) -> Result<Self, ApiError> {
        Ok(Self {
            version: v.version,
            written_at: v.at,
            written_by: v.by.as_uuid(),
            content: RecordContent::from_domain(&v.body)?,
        })
    }
}

/// A record's new content.
#[derive(Debug, Clone, Object)]
pub struct RecordUpdate {
    /// The version you read; if another change came first, 409.
    pub expected_version: u32,
    /// The new content (its `kind` must be the record's).
    pub content: RecordInput,
}

/// Both records an accepted amendment wrote.
#[derive(Debug, Clone, Object)]
pub struct AmendmentOutcome {
    /// The amendment, now accepted.
    pub amendment: RecordView,
    /// The corrected record, at its new version (the old one stays readable).
    pub record: RecordView,
}

/// Why an amendment is denied; the client sees it.
#[derive(Debug, Clone, Object)]
pub struct AmendmentDenial {
    /// The reason, up to 2,000 characters.
    #[oai(validator(
        max_length = 2000,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub reason: String,
}

/// The client's statement of disagreement with a denial.
#[derive(Debug, Clone, Object)]
pub struct Disagreement {
    /// The statement, up to 4,000 characters.
    #[oai(validator(
        max_length = 4000,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub statement: String,
}

/// An appointment's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum AppointmentStatusName {
    /// Booked.
    Booked,
    /// The client has arrived.
    Arrived,
    /// Took place.
    Fulfilled,
    /// Cancelled (frees the provider's time).
    Cancelled,
    /// The client did not come.
    Noshow,
}

impl AppointmentStatusName {
    const fn domain(self) -> AppointmentStatus {
        match self {
            Self::Booked => AppointmentStatus::Booked,
            Self::Arrived => AppointmentStatus::Arrived,
            Self::Fulfilled => AppointmentStatus::Fulfilled,
            Self::Cancelled => AppointmentStatus::Cancelled,
            Self::Noshow => AppointmentStatus::Noshow,
        }
    }

    const fn of(status: AppointmentStatus) -> Self {
        match status {
            AppointmentStatus::Booked => Self::Booked,
            AppointmentStatus::Arrived => Self::Arrived,
            AppointmentStatus::Fulfilled => Self::Fulfilled,
            AppointmentStatus::Cancelled => Self::Cancelled,
            AppointmentStatus::Noshow => Self::Noshow,
        }
    }
}

/// An appointment to book.
#[derive(Debug, Clone, Object)]
pub struct NewAppointmentRequest {
    /// A provider of the practice; they cannot be double-booked (409).
    pub provider_id: Uuid,
    /// Start (RFC 3339).
    pub starts_at: DateTime<Utc>,
    /// End, after the start, at most 12 hours later (422 otherwise).
    pub ends_at: DateTime<Utc>,
    /// The IANA time zone it was booked in, e.g. `Europe/Paris`.
    #[oai(validator(max_length = 64))]
    pub time_zone: String,
    /// Where, up to 500 characters.
    #[oai(
        skip_serializing_if_is_none,
        validator(
            max_length = 500,
            pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub location: Option<String>,
    /// An `https` telehealth link.
    #[oai(skip_serializing_if_is_none, validator(max_length = 2000))]
    pub telehealth_url: Option<String>,
    /// Why, up to 1,000 characters.
    #[oai(
        skip_serializing_if_is_none,
        validator(
            max_length = 1000,
            pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub reason: Option<String>,
}

/// An appointment.
#[derive(Debug, Clone, Object)]
pub struct AppointmentView {
    /// The appointment.
    pub id: Uuid,
    /// The client.
    pub client_id: Uuid,
    /// The provider.
    pub provider_id: Uuid,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// The time zone it was booked in.
    pub time_zone: String,
    /// Status.
    pub status: AppointmentStatusName,
    /// Where.
    #[oai(skip_serializing_if_is_none)]
    pub location: Option<String>,
    /// The telehealth link.
    #[oai(skip_serializing_if_is_none)]
    pub telehealth_url: Option<String>,
    /// Why.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
    /// Version, from 1.
    pub version: u32,
    /// When it was booked.
    pub created_at: DateTime<Utc>,
}

impl From<&clinical::model::Appointment> for AppointmentView {
    fn from(a: &clinical::model::Appointment) -> Self {
        Self {
            id: a.id,
            client_id: a.client.user.as_uuid(),
            provider_id: a.provider.as_uuid(),
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            time_zone: a.details.time_zone.name().to_owned(),
            status: AppointmentStatusName::of(a.status),
            location: a.details.location.as_ref().map(|t| t.as_str().to_owned()),
            telehealth_url: a
                .details
                .telehealth_url
                .as_ref()
                .map(|u| u.as_str().to_owned()),
            reason: a.details.reason.as_ref().map(|t| t.as_str().to_owned()),
            version: a.version,
            created_at: a.created_at,
        }
    }
}

/// A page of appointments.
#[derive(Debug, Clone, Object)]
pub struct AppointmentPage {
    /// The appointments, by start time.
    pub items: Vec<AppointmentView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// A new status for an appointment.
#[derive(Debug, Clone, Object)]
pub struct AppointmentStatusChange {
    /// The new status. The client may only cancel.
    pub status: AppointmentStatusName,
    /// The version you read; if another change came first, 409.
    pub expected_version: u32,
}

/// An exercise for the library.
#[derive(Debug, Clone, Object)]
pub struct NewExercise {
    /// Name, up to 200 characters.
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
    /// Instructions, up to 5,000 characters.
    #[oai(validator(
        max_length = 5000,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub instructions: String,
    /// Body region, e.g. `lumbar spine`, up to 100 characters.
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub body_region: String,
    /// Equipment: up to 20 items of up to 100 characters.
    #[oai(default, validator(max_items = 20))]
    pub equipment: Vec<String>,
    /// An `https` link to a video or image.
    #[oai(skip_serializing_if_is_none, validator(max_length = 2000))]
    pub media_url: Option<String>,
}

/// An exercise of the library.
#[derive(Debug, Clone, Object)]
pub struct ExerciseView {
    /// The exercise.
    pub id: Uuid,
    /// Whether it is in the shared library (every practice sees it).
    pub shared: bool,
    /// Name.
    pub name: String,
    /// Instructions.
    pub instructions: String,
    /// Body region.
    pub body_region: String,
    /// Equipment.
    pub equipment: Vec<String>,
    /// A link to a video or image.
    #[oai(skip_serializing_if_is_none)]
    pub media_url: Option<String>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

impl From<&ExerciseTemplate> for ExerciseView {
    fn from(t: &ExerciseTemplate) -> Self {
        Self {
            id: t.id,
            shared: t.organisation.is_none(),
            name: t.name.as_str().to_owned(),
            instructions: t.instructions.as_str().to_owned(),
            body_region: t.body_region.as_str().to_owned(),
            equipment: t.equipment.iter().map(|e| e.as_str().to_owned()).collect(),
            media_url: t.media.as_ref().map(|m| m.as_str().to_owned()),
            created_at: t.created_at,
        }
    }
}

/// A page of exercises.
#[derive(Debug, Clone, Object)]
pub struct ExercisePage {
    /// The exercises, oldest first.
    pub items: Vec<ExerciseView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

fn exercise(
    form: NewExercise,
    created_by: UserId,
    at: DateTime<Utc>,
) -> Result<ExerciseTemplate, ApiError> {
    Ok(ExerciseTemplate {
        id: Uuid::now_v7(),
        organisation: None,
        name: text("name", &form.name)?,
        instructions: text("instructions", &form.instructions)?,
        body_region: text("body_region", &form.body_region)?,
        equipment: form
            .equipment
            .iter()
            .map(|e| text("equipment", e))
            .collect::<Result<_, _>>()?,
        media: form
            .media_url
            .as_deref()
            .map(HttpsUrl::parse)
            .transpose()
            .map_err(|e| unprocessable(format!("`media_url`: {e}")))?,
        created_at: at,
        created_by,
    })
}

pub(crate) fn next_cursor<T>(list: Uuid, page: &Page<T>) -> Option<String> {
    page.next.as_ref().map(|c| cursor_for(list, c))
}

// ----- operations -----

/// The clinical operations.
#[derive(Debug)]
pub struct ClinicalApi {
    state: AppState,
}

impl ClinicalApi {
    /// The operations over `state`.
    #[must_use]
    pub const fn new(state: AppState) -> Self {
        Self { state }
    }

    fn clinical(&self) -> &ClinicalService {
        self.state.clinical()
    }
}

/// Shorthand for the ids in a client's paths.
fn ids(organisation: &Path<Uuid>, client: &Path<Uuid>) -> (OrganisationId, UserId) {
    (
        OrganisationId::from_uuid(organisation.0),
        UserId::from_uuid(client.0),
    )
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Clinical")]
impl ClinicalApi {
    /// A client's name, contact details and date of birth.
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id",
        method = "get",
        operation_id = "getClient"
    )]
    async fn get_client(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
    ) -> Result<Found<ClientView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Treatment);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let (found, identity) = self
            .clinical()
            .client_identity(&ctx, organisation, client)
            .await?;
        Ok(Found::Ok(Json(ClientView {
            client_id: found.user.as_uuid(),
            name: identity.name.clone(),
            email: identity.email.clone(),
            phone: identity.phone.clone(),
            date_of_birth: identity.birth_date,
        })))
    }

    /// A client's care team, past and present.
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/care-team",
        method = "get",
        operation_id = "getCareTeam"
    )]
    async fn get_care_team(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
    ) -> Result<Found<CareTeamView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Treatment);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let team = self
            .clinical()
            .care_team(&ctx, organisation, client)
            .await?;
        Ok(Found::Ok(Json(CareTeamView {
            members: team.iter().map(Into::into).collect(),
        })))
    }

    /// Put a provider of the practice on a client's care team (a practice admin,
    /// or a provider on the team). Their access starts on `starts_on`.
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/care-team",
        method = "post",
        operation_id = "addCareTeamMember"
    )]
    async fn add_care_team_member(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
        body: Json<NewCareTeamMember>,
    ) -> Result<Created<CareTeamMemberView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let starts_on = body.0.starts_on.unwrap_or_else(|| ctx.at().date_naive());
        let member = self
            .clinical()
            .add_care_team_member(
                &ctx,
                organisation,
                client,
                UserId::from_uuid(body.0.provider_id),
                (starts_on, body.0.ends_on),
            )
            .await?;
        Ok(Created::Created(Json((&member).into())))
    }

    /// End a provider's membership of a client's care team (a practice admin, or
    /// a provider on the team). From the day after `ends_on`, they see nothing.
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/care-team/:provider_id/ending",
        method = "post",
        operation_id = "endCareTeamMembership"
    )]
    async fn end_care_team_membership(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
        provider_id: Path<Uuid>,
        body: Json<CareTeamEnding>,
    ) -> Result<Found<CareTeamView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let ends_on = body.0.ends_on.unwrap_or_else(|| ctx.at().date_naive());
        let service = self.clinical();
        service
            .end_care_team_membership(
                &ctx,
                organisation,
                client,
                UserId::from_uuid(provider_id.0),
                ends_on,
            )
            .await?;
        let team = service.care_team(&ctx, organisation, client).await;
        // The caller may have ended their own membership: answer with what they saw.
        let members = team
            .map(|t| t.iter().map(Into::into).collect())
            .unwrap_or_default();
        Ok(Found::Ok(Json(CareTeamView { members })))
    }

    /// Break the glass: emergency access to a client outside your care team (a
    /// provider of the practice), for a stated reason and a limited time. The
    /// grant is audited as break-glass and listed for review.
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/break-glass",
        method = "post",
        operation_id = "breakGlass"
    )]
    async fn break_glass(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
        body: Json<BreakGlassRequest>,
    ) -> Result<Created<BreakGlassView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::BreakGlass);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let reason = text("reason", &body.0.reason)?;
        let grant = self
            .clinical()
            .break_glass(&ctx, organisation, client, reason, body.0.minutes)
            .await?;
        Ok(Created::Created(Json((&grant).into())))
    }

    /// The practice's break-glass grants, for review (practice admins and the
    /// privacy officer).
    #[oai(
        path = "/organisations/:organisation_id/break-glass-grants",
        method = "get",
        operation_id = "listBreakGlassGrants"
    )]
    async fn list_break_glass_grants(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        /// 1 to 100, default 50.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The previous page's `next_cursor`.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
    ) -> Result<Found<BreakGlassPage>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Oversight);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let list = list_key("break-glass", &[organisation_id.0]);
        let page = page_request(list, cursor.0.as_deref(), limit.0)?;
        let page = self
            .clinical()
            .break_glass_grants(&ctx, organisation, page)
            .await?;
        Ok(Found::Ok(Json(BreakGlassPage {
            items: page.items.iter().map(Into::into).collect(),
            next_cursor: next_cursor(list, &page),
        })))
    }

    /// Write a record of a client. Its `kind` decides who may: the care team
    /// writes health data, treatment plans and programs; the client writes
    /// adherence logs and amendment requests; both write messages; a practice
    /// admin may write demographics.
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/records",
        method = "post",
        operation_id = "createRecord"
    )]
    async fn create_record(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
        body: Json<RecordInput>,
    ) -> Result<Created<RecordView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Treatment);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let body = body.0.into_domain()?;
        let record = self
            .clinical()
            .create_record(&ctx, organisation, client, body)
            .await?;
        Ok(Created::Created(Json(RecordView::of(&record)?)))
    }

    /// A client's records of one kind, oldest first.
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/records/:kind",
        method = "get",
        operation_id = "listRecords"
    )]
    #[allow(
        clippy::too_many_arguments,
        reason = "poem-openapi takes each path and query parameter as an argument"
    )]
    async fn list_records(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
        kind: Path<RecordKindName>,
        /// 1 to 100, default 50.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The previous page's `next_cursor`.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
    ) -> Result<Found<RecordPage>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Treatment);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let kind = kind.0.kind();
        let list = list_key(kind.as_str(), &[organisation_id.0, client_id.0]);
        let page = page_request(list, cursor.0.as_deref(), limit.0)?;
        let page = self
            .clinical()
            .records(&ctx, organisation, client, kind, page)
            .await?;
        Ok(Found::Ok(Json(RecordPage {
            items: page
                .items
                .iter()
                .map(RecordView::of)
                .collect::<Result<_, _>>()?,
            next_cursor: next_cursor(list, &page),
        })))
    }

    /// One record.
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/records/:kind/:record_id",
        method = "get",
        operation_id = "getRecord"
    )]
    async fn get_record(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
        kind: Path<RecordKindName>,
        record_id: Path<Uuid>,
    ) -> Result<Found<RecordView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Treatment);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let record = self
            .clinical()
            .record(&ctx, organisation, client, kind.0.kind(), record_id.0)
            .await?;
        Ok(Found::Ok(Json(RecordView::of(&record)?)))
    }

    /// Replace a record's content with a new version; the old version stays
    /// readable. Adherence logs, messages and amendments are not changed this way.
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/records/:kind/:record_id",
        method = "put",
        operation_id = "updateRecord"
    )]
    #[allow(
        clippy::too_many_arguments,
        reason = "poem-openapi takes each path and query parameter as an argument"
    )]
    async fn update_record(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
        kind: Path<RecordKindName>,
        record_id: Path<Uuid>,
        body: Json<RecordUpdate>,
    ) -> Result<Found<RecordView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Treatment);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let expected = body.0.expected_version;
        let content = body.0.content.into_domain()?;
        if content.kind() != kind.0.kind() {
            return Err(unprocessable("the content's `kind` is not the record's"));
        }
        let record = self
            .clinical()
            .update_record(&ctx, organisation, client, record_id.0, content, expected)
            .await?;
        Ok(Found::Ok(Json(RecordView::of(&record)?)))
    }

    /// Every version of a record, oldest first.
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/records/:kind/:record_id/versions",
        method = "get",
        operation_id = "listRecordVersions"
    )]
    async fn list_record_versions(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
        kind: Path<RecordKindName>,
        record_id: Path<Uuid>,
    ) -> Result<Found<RecordVersions>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Treatment);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let versions = self
            .clinical()
            .record_versions(&ctx, organisation, client, kind.0.kind(), record_id.0)
            .await?;
        Ok(Found::Ok(Json(RecordVersions {
            items: versions
                .iter()
                .map(RecordVersionView::of)
                .collect::<Result<_, _>>()?,
        })))
    }

    /// Accept a client's amendment (a provider on the care team): the record gets
    /// a new version with the proposed value, and its history is kept.
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/amendments/:record_id/acceptance",
        method = "post",
        operation_id = "acceptAmendment"
    )]
    async fn accept_amendment(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
        record_id: Path<Uuid>,
    ) -> Result<Found<AmendmentOutcome>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Treatment);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let (amendment, record) = self
            .clinical()
            .accept_amendment(&ctx, organisation, client, record_id.0)
            .await?;
        Ok(Found::Ok(Json(AmendmentOutcome {
            amendment: RecordView::of(&amendment)?,
            record: RecordView::of(&record)?,
        })))
    }

    /// Deny a client's amendment with a reason the client sees (a provider on
    /// the care team).
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/amendments/:record_id/denial",
        method = "post",
        operation_id = "denyAmendment"
    )]
    async fn deny_amendment(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
        record_id: Path<Uuid>,
        body: Json<AmendmentDenial>,
    ) -> Result<Found<RecordView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Treatment);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let reason = text("reason", &body.0.reason)?;
        let amendment = self
            .clinical()
            .deny_amendment(&ctx, organisation, client, record_id.0, reason)
            .await?;
        Ok(Found::Ok(Json(RecordView::of(&amendment)?)))
    }

    /// Attach your statement of disagreement to a denied amendment (the client;
    /// once).
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/amendments/:record_id/disagreement",
        method = "post",
        operation_id = "attachDisagreement"
    )]
    async fn attach_disagreement(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
        record_id: Path<Uuid>,
        body: Json<Disagreement>,
    ) -> Result<Found<RecordView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::SubjectRequest);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let statement = text("statement", &body.0.statement)?;
        let amendment = self
            .clinical()
            .disagree(&ctx, organisation, client, record_id.0, statement)
            .await?;
        Ok(Found::Ok(Json(RecordView::of(&amendment)?)))
    }

    /// Book an appointment of a client with a provider of the practice (the care
    /// team or a practice admin). A provider cannot be double-booked: 409.
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/appointments",
        method = "post",
        operation_id = "bookAppointment"
    )]
    async fn book_appointment(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
        body: Json<NewAppointmentRequest>,
    ) -> Result<Created<AppointmentView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Treatment);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let b = body.0;
        let details = AppointmentDetails {
            time_zone: TimeZone::parse(&b.time_zone)
                .map_err(|e| unprocessable(format!("`time_zone`: {e}")))?,
            location: optional_text("location", b.location.as_deref())?,
            telehealth_url: b
                .telehealth_url
                .as_deref()
                .map(HttpsUrl::parse)
                .transpose()
                .map_err(|e| unprocessable(format!("`telehealth_url`: {e}")))?,
            reason: optional_text("reason", b.reason.as_deref())?,
        };
        let appointment = self
            .clinical()
            .book(
                &ctx,
                organisation,
                client,
                NewAppointment {
                    provider: UserId::from_uuid(b.provider_id),
                    starts_at: b.starts_at,
                    ends_at: b.ends_at,
                    details,
                },
            )
            .await?;
        Ok(Created::Created(Json((&appointment).into())))
    }

    /// A client's appointments, by start time.
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/appointments",
        method = "get",
        operation_id = "listAppointments"
    )]
    async fn list_appointments(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
        /// 1 to 100, default 50.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The previous page's `next_cursor`.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
    ) -> Result<Found<AppointmentPage>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Treatment);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let list = list_key("appointments", &[organisation_id.0, client_id.0]);
        let page = page_request(list, cursor.0.as_deref(), limit.0)?;
        let page = self
            .clinical()
            .appointments(&ctx, organisation, client, page)
            .await?;
        Ok(Found::Ok(Json(AppointmentPage {
            items: page.items.iter().map(Into::into).collect(),
            next_cursor: next_cursor(list, &page),
        })))
    }

    /// Change an appointment's status (the care team or a practice admin; the
    /// client may cancel). A cancelled appointment stays cancelled.
    #[oai(
        path = "/organisations/:organisation_id/clients/:client_id/appointments/:appointment_id/status",
        method = "put",
        operation_id = "updateAppointmentStatus"
    )]
    async fn update_appointment_status(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        client_id: Path<Uuid>,
        appointment_id: Path<Uuid>,
        body: Json<AppointmentStatusChange>,
    ) -> Result<Found<AppointmentView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Treatment);
        let (organisation, client) = ids(&organisation_id, &client_id);
        let appointment = self
            .clinical()
            .set_appointment_status(
                &ctx,
                organisation,
                client,
                appointment_id.0,
                body.0.status.domain(),
                body.0.expected_version,
            )
            .await?;
        Ok(Found::Ok(Json((&appointment).into())))
    }

    /// Add an exercise to the practice's library (its providers and admins).
    #[oai(
        path = "/organisations/:organisation_id/exercises",
        method = "post",
        operation_id = "addExercise"
    )]
    async fn add_exercise(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        body: Json<NewExercise>,
    ) -> Result<Created<ExerciseView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        if ctx.organisation() != Some(organisation) {
            return Err(ClinicalError::NotFound.into());
        }
        let creator = ctx.actor().user().unwrap_or_default();
        let template = exercise(body.0, creator, ctx.at())?;
        let template = self
            .clinical()
            .add_template(&ctx, organisation, template)
            .await?;
        Ok(Created::Created(Json((&template).into())))
    }

    /// The practice's exercises and the shared library (any member).
    #[oai(
        path = "/organisations/:organisation_id/exercises",
        method = "get",
        operation_id = "listExercises"
    )]
    async fn list_exercises(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        /// 1 to 100, default 50.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The previous page's `next_cursor`.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
    ) -> Result<Found<ExercisePage>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let list = list_key("exercises", &[organisation_id.0]);
        let page = page_request(list, cursor.0.as_deref(), limit.0)?;
        let page = self.clinical().templates(&ctx, organisation, page).await?;
        Ok(Found::Ok(Json(ExercisePage {
            items: page.items.iter().map(Into::into).collect(),
            next_cursor: next_cursor(list, &page),
        })))
    }

    /// Add an exercise to the shared library every practice sees (the platform
    /// operator).
    #[oai(
        path = "/exercises",
        method = "post",
        operation_id = "addSharedExercise"
    )]
    async fn add_shared_exercise(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<NewExercise>,
    ) -> Result<Created<ExerciseView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let creator = ctx.actor().user().unwrap_or_default();
        let template = exercise(body.0, creator, ctx.at())?;
        let template = self.clinical().add_shared_template(&ctx, template).await?;
        Ok(Created::Created(Json((&template).into())))
    }
}
