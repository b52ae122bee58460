//! The clinical records themselves: what a client's chart holds, who may see it
//! (care teams and break-glass grants), appointments and the exercise library.
//!
//! Every record of a client is a [`Record`]: an id, a [`RecordKind`], a version
//! and a typed [`RecordBody`]. One shape for every kind keeps one read path, one
//! storage path (the body is sealed whole with the subject's data key) and one
//! history: an update writes a new version and the old ones stay readable, which
//! is what exercise programs (item 4) and accepted amendments (D2) need.
//!
//! Bodies are built only from validated values ([`crate::values`]), and serde
//! reads them back through the same parsers, so a stored body is always valid.
//! Limits are documented on each field and in `docs/clinical.md`.

use chrono::{DateTime, NaiveDate, Utc};
use kernel::{DataCategory, OrganisationId, SubjectId, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{Code, HttpsUrl, PainScore, Prescription, Text, TimeZone, ValueError};

/// A client of a practice, as the clinical context knows them: their account, their
/// data subject (whose key seals their records) and their practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientRef {
    /// The client's account.
    pub user: UserId,
    /// The data subject whose key seals the records.
    pub subject: SubjectId,
    /// The practice whose client they are.
    pub organisation: OrganisationId,
    /// The practice holding the person's keys (their home practice, which differs
    /// from `organisation` for a person who is a client of several practices).
    pub home_organisation: OrganisationId,
}

/// Name, birth date and contact details of a client, held by identity and read for
/// the FHIR `Patient` of an export.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Phone number, if given.
    pub phone: Option<String>,
    /// Date of birth, if recorded.
    pub birth_date: Option<NaiveDate>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientIdentity([redacted])")
    }
}

/// What kind of record a [`Record`] is. The name is stored in the clear (it is a
/// label, not content) so that lists can be filtered without opening bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// Optional demographics beside identity's name, birth date and contact details.
    Demographics,
    /// A diagnosis or problem.
    Condition,
    /// A medication the client takes or took.
    Medication,
    /// An allergy or intolerance.
    Allergy,
    /// A medical-history entry.
    HistoryEntry,
    /// A note on the client's current health status.
    StatusNote,
    /// A treatment plan: goals and interventions.
    TreatmentPlan,
    /// A home-exercise program; every change is a new version.
    Program,
    /// The client's report of doing a program.
    Adherence,
    /// A secure message between the client and their care team.
    Message,
    /// A client's request to correct a record (D2).
    Amendment,
}

impl RecordKind {
    /// Every kind, in a stable order.
    pub const ALL: [Self; 11] = [
        Self::Demographics,
        Self::Condition,
        Self::Medication,
        Self::Allergy,
        Self::HistoryEntry,
        Self::StatusNote,
        Self::TreatmentPlan,
        Self::Program,
        Self::Adherence,
        Self::Message,
        Self::Amendment,
    ];

    /// The stable machine name, also the audit resource kind.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Demographics => "demographics",
            Self::Condition => "condition",
            Self::Medication => "medication",
            Self::Allergy => "allergy",
            Self::HistoryEntry => "history_entry",
            Self::StatusNote => "status_note",
            Self::TreatmentPlan => "treatment_plan",
            Self::Program => "exercise_program",
            Self::Adherence => "adherence_log",
            Self::Message => "message",
            Self::Amendment => "amendment",
        }
    }

    /// Parses [`RecordKind::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The data category the consent gate is asked about.
    #[must_use]
    pub const fn category(self) -> DataCategory {
        match self {
            Self::Demographics => DataCategory::Profile,
            Self::Condition
            | Self::Allergy
            | Self::HistoryEntry
            | Self::StatusNote
            | Self::Amendment => DataCategory::HealthRecord,
            Self::Medication => DataCategory::Medications,
            Self::TreatmentPlan => DataCategory::TreatmentPlans,
            Self::Program | Self::Adherence => DataCategory::ExercisePrograms,
            Self::Message => DataCategory::Communications,
        }
    }

    /// Who writes records of this kind: the care team (and break-glass), the
    /// client, or both. Practice admins write demographics only.
    #[must_use]
    pub const fn authors(self) -> Authors {
        match self {
            Self::Demographics => Authors::CareTeamOrAdmin,
            Self::Condition
            | Self::Medication
            | Self::Allergy
            | Self::HistoryEntry
            | Self::StatusNote
            | Self::TreatmentPlan
            | Self::Program => Authors::CareTeam,
            Self::Adherence | Self::Amendment => Authors::Client,
            Self::Message => Authors::ClientOrCareTeam,
        }
    }

    /// Whether a client may propose an amendment to a record of this kind: the
    /// health-data kinds a provider writes.
    #[must_use]
    pub const fn amendable(self) -> bool {
        matches!(
            self,
            Self::Demographics
                | Self::Condition
                | Self::Medication
                | Self::Allergy
                | Self::HistoryEntry
                | Self::StatusNote
                | Self::TreatmentPlan
        )
    }
}

/// Who may write a kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authors {
    /// Providers on the care team (or holding break-glass).
    CareTeam,
    /// The care team, or a practice admin.
    CareTeamOrAdmin,
    /// The client.
    Client,
    /// The client or their care team.
    ClientOrCareTeam,
}

/// Administrative sex, as FHIR `Patient.gender` codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdministrativeSex {
    /// Male.
    Male,
    /// Female.
    Female,
    /// Other.
    Other,
    /// Unknown.
    Unknown,
}

/// A postal address; every part optional, at least one given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street lines, up to 3 of up to 200 characters.
    #[serde(default)]
    pub lines: Vec<Text<200>>,
    /// City, up to 100 characters.
    pub city: Option<Text<100>>,
    /// State or region, up to 100 characters.
    pub region: Option<Text<100>>,
    /// Postal code, up to 20 characters.
    pub postal_code: Option<Text<20>>,
    /// Country, up to 100 characters (name or ISO code).
    pub country: Option<Text<100>>,
}

/// Optional demographics (item 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demographics {
    /// Administrative sex.
    pub sex: Option<AdministrativeSex>,
    /// Gender identity in the client's words, up to 100 characters.
    pub gender_identity: Option<Text<100>>,
    /// Preferred language (e.g. `en`, `es-MX`), up to 35 characters.
    pub preferred_language: Option<Text<35>>,
    /// Home address.
    pub address: Option<Address>,
}

/// Clinical status of a condition (FHIR `condition-clinical`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionStatus {
    /// Active.
    Active,
    /// Came back.
    Recurrence,
    /// Relapsed.
    Relapse,
    /// Inactive.
    Inactive,
    /// In remission.
    Remission,
    /// Resolved.
    Resolved,
}

/// A condition (C4): free text and an optional ICD-10 or SNOMED CT code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The condition in words, up to 2,000 characters.
    pub text: Text<2000>,
    /// Its code.
    pub code: Option<Code>,
    /// Clinical status.
    pub status: ConditionStatus,
    /// When it began.
    pub onset: Option<NaiveDate>,
}

/// Status of a medication statement (FHIR R4 `medication-statement-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MedicationStatus {
    /// Being taken.
    Active,
    /// Finished.
    Completed,
    /// Stopped before its end.
    Stopped,
    /// Paused.
    OnHold,
    /// To be started.
    Intended,
    /// Recorded in error.
    EnteredInError,
}

/// A medication (C4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Medication {
    /// Name, up to 200 characters.
    pub name: Text<200>,
    /// Dose, e.g. `400 mg`, up to 100 characters.
    pub dose: Text<100>,
    /// Frequency, e.g. `twice daily`, up to 100 characters.
    pub frequency: Text<100>,
    /// Status.
    pub status: MedicationStatus,
}

/// Severity of an allergic reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Mild.
    Mild,
    /// Moderate.
    Moderate,
    /// Severe.
    Severe,
}

/// Clinical status of an allergy (FHIR `allergyintolerance-clinical`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllergyStatus {
    /// Active.
    Active,
    /// Inactive.
    Inactive,
    /// Resolved.
    Resolved,
}

/// An allergy or intolerance (C4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allergy {
    /// The substance, up to 200 characters.
    pub substance: Text<200>,
    /// The reaction, up to 500 characters.
    pub reaction: Option<Text<500>>,
    /// How severe the reaction is.
    pub severity: Option<Severity>,
    /// Status.
    pub status: AllergyStatus,
}

/// A medical-history entry (C4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// What happened, up to 4,000 characters.
    pub text: Text<4000>,
    /// When.
    pub occurred_on: Option<NaiveDate>,
}

/// A note on the client's current health status (C4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusNote {
    /// The note, up to 4,000 characters.
    pub text: Text<4000>,
}

/// Status of a treatment plan (FHIR `request-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    /// Being written.
    Draft,
    /// In effect.
    Active,
    /// Paused.
    OnHold,
    /// Done.
    Completed,
    /// Stopped.
    Revoked,
}

/// A treatment plan (item 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreatmentPlan {
    /// Title, up to 200 characters.
    pub title: Text<200>,
    /// Goals: 1 to 20, each up to 500 characters.
    pub goals: Vec<Text<500>>,
    /// Interventions: up to 20, each up to 500 characters.
    pub interventions: Vec<Text<500>>,
    /// Status.
    pub status: PlanStatus,
}

/// One exercise of a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramItem {
    /// The library template it was prescribed from.
    pub exercise: Uuid,
    /// The exercise's name when prescribed (the template may change later).
    pub name: Text<200>,
    /// Sets, repetitions, hold time and sessions per week.
    pub prescription: Prescription,
    /// Notes for the client, up to 1,000 characters.
    pub notes: Option<Text<1000>>,
}

/// A home-exercise program (item 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// Title, up to 200 characters.
    pub title: Text<200>,
    /// Exercises: 1 to 50.
    pub items: Vec<ProgramItem>,
    /// First day.
    pub starts_on: NaiveDate,
    /// Last day, on or after the first.
    pub ends_on: Option<NaiveDate>,
}

/// A client's report of doing a program (item 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adherence {
    /// The program.
    pub program: Uuid,
    /// The program's version the client followed.
    pub program_version: u32,
    /// The day it was done.
    pub performed_on: NaiveDate,
    /// Positions (from 0) of the program's items completed, each once.
    pub completed: Vec<u16>,
    /// Pain, 0 to 10.
    pub pain: PainScore,
    /// A comment, up to 2,000 characters.
    pub comment: Option<Text<2000>>,
}

/// A secure message (C6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Who wrote it.
    pub sender: UserId,
    /// The message, up to 5,000 characters.
    pub text: Text<5000>,
}

/// Where an amendment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmendmentStatus {
    /// Waiting for a provider.
    Proposed,
    /// Accepted: the record was corrected.
    Accepted,
    /// Denied, with a reason the client sees.
    Denied,
}

/// A client's request to correct one field of a record (D2, 45 CFR 164.526).
/// `Debug` leaves out the field and the proposed value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amendment {
    /// The record to correct.
    pub target: Uuid,
    /// Its kind.
    pub target_kind: RecordKind,
    /// The field, by its name in the record's body (e.g. `text`, `dose`).
    pub field: String,
    /// The corrected value, as the field's JSON value.
    pub proposed: serde_json::Value,
    /// Why, up to 2,000 characters.
    pub reason: Text<2000>,
    /// Where it stands.
    pub status: AmendmentStatus,
    /// The provider who decided.
    pub decided_by: Option<UserId>,
    /// When.
    pub decided_at: Option<DateTime<Utc>>,
    /// The target's version the acceptance wrote.
    pub applied_version: Option<u32>,
    /// Why it was denied, up to 2,000 characters; shown to the client.
    pub denial_reason: Option<Text<2000>>,
    /// The client's statement of disagreement after a denial, up to 4,000 characters.
    pub disagreement: Option<Text<4000>>,
}

impl std::fmt::Debug for Amendment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Amendment")
            .field("target", &self.target)
            .field("target_kind", &self.target_kind)
            .field("status", &self.status)
            .field("applied_version", &self.applied_version)
            .finish_non_exhaustive()
    }
}

/// The content of a record, by kind. `Debug` shows the kind only: what a record
/// says is health data, wherever it is printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordBody {
    /// See [`Demographics`].
    Demographics(Demographics),
    /// See [`Condition`].
    Condition(Condition),
    /// See [`Medication`].
    Medication(Medication),
    /// See [`Allergy`].
    Allergy(Allergy),
    /// See [`HistoryEntry`].
    HistoryEntry(HistoryEntry),
    /// See [`StatusNote`].
    StatusNote(StatusNote),
    /// See [`TreatmentPlan`].
    TreatmentPlan(TreatmentPlan),
    /// See [`Program`].
    #[serde(rename = "exercise_program")]
    Program(Program),
    /// See [`Adherence`].
    #[serde(rename = "adherence_log")]
    Adherence(Adherence),
    /// See [`Message`].
    Message(Message),
    /// See [`Amendment`].
    Amendment(Amendment),
}

impl std::fmt::Debug for RecordBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordBody({}, [redacted])", self.kind().as_str())
    }
}

/// The most items a list field of a body holds.
pub const MAX_LIST: usize = 20;
/// The most exercises in a program.
pub const MAX_PROGRAM_ITEMS: usize = 50;
/// The most street lines of an address.
pub const MAX_ADDRESS_LINES: usize = 3;

impl RecordBody {
    /// The kind.
    #[must_use]
    pub const fn kind(&self) -> RecordKind {
        match self {
            Self::Demographics(_) => RecordKind::Demographics,
            Self::Condition(_) => RecordKind::Condition,
            Self::Medication(_) => RecordKind::Medication,
            Self::Allergy(_) => RecordKind::Allergy,
            Self::HistoryEntry(_) => RecordKind::HistoryEntry,
            Self::StatusNote(_) => RecordKind::StatusNote,
            Self::TreatmentPlan(_) => RecordKind::TreatmentPlan,
            Self::Program(_) => RecordKind::Program,
            Self::Adherence(_) => RecordKind::Adherence,
            Self::Message(_) => RecordKind::Message,
            Self::Amendment(_) => RecordKind::Amendment,
        }
    }

    /// Checks the rules that span fields (single values were checked when parsed).
    ///
    /// # Errors
    /// [`BodyError`] naming the rule.
    pub fn check(&self, today: NaiveDate) -> Result<(), BodyError> {
        let not_future = |d: Option<NaiveDate>, rule| match d {
            Some(d) if d > today => Err(BodyError::Rule(rule)),
            _ => Ok(()),
        };
        match self {
            Self::Demographics(d) => {
                if let Some(a) = &d.address {
                    if a.lines.len() > MAX_ADDRESS_LINES {
                        return Err(BodyError::Rule("an address has at most 3 lines"));
                    }
                    if a.lines.is_empty()
                        && a.city.is_none()
                        && a.region.is_none()
                        && a.postal_code.is_none()
                        && a.country.is_none()
                    {
                        return Err(BodyError::Rule("an address needs at least one part"));
                    }
                }
                Ok(())
            }
            Self::Condition(c) => not_future(c.onset, "`onset` cannot be in the future"),
            Self::HistoryEntry(h) => {
                not_future(h.occurred_on, "`occurred_on` cannot be in the future")
            }
            Self::TreatmentPlan(p) => {
                if p.goals.is_empty() || p.goals.len() > MAX_LIST {
                    return Err(BodyError::Rule("a treatment plan has 1 to 20 goals"));
                }
                if p.interventions.len() > MAX_LIST {
                    return Err(BodyError::Rule(
                        "a treatment plan has at most 20 interventions",
                    ));
                }
                Ok(())
            }
            Self::Program(p) => {
                if p.items.is_empty() || p.items.len() > MAX_PROGRAM_ITEMS {
                    return Err(BodyError::Rule("a program has 1 to 50 exercises"));
                }
                if p.ends_on.is_some_and(|end| end < p.starts_on) {
                    return Err(BodyError::Rule("a program cannot end before it starts"));
                }
                Ok(())
            }
            Self::Adherence(a) => {
                not_future(
                    Some(a.performed_on),
                    "`performed_on` cannot be in the future",
                )?;
                let mut seen = a.completed.clone();
                seen.sort_unstable();
                seen.dedup();
                if seen.len() != a.completed.len() {
                    return Err(BodyError::Rule("each completed item is listed once"));
                }
                Ok(())
            }
            Self::Medication(_)
            | Self::Allergy(_)
            | Self::StatusNote(_)
            | Self::Message(_)
            | Self::Amendment(_) => Ok(()),
        }
    }

    /// Parses a body of `kind` from its JSON form (the API's and the export's), with
    /// every value validated.
    ///
    /// # Errors
    /// [`BodyError`] naming the first problem.
    pub fn from_json(kind: RecordKind, value: serde_json::Value) -> Result<Self, BodyError> {
        let serde_json::Value::Object(mut fields) = value else {
            return Err(BodyError::Rule("a record is a JSON object"));
        };
        fields.insert(
            "kind".to_owned(),
            serde_json::Value::String(kind.as_str().to_owned()),
        );
        serde_json::from_value(serde_json::Value::Object(fields))
            .map_err(|e| BodyError::Invalid(describe_serde_error(&e)))
    }

    /// This body as JSON, without its `kind` tag.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let serde_json::Value::Object(fields) = &mut value {
            fields.remove("kind");
        }
        value
    }

    /// This body with `field` set to `value`, validated as a whole (an unknown field,
    /// or a value its type refuses, is an error).
    ///
    /// # Errors
    /// [`BodyError`].
    pub fn with_field(
        &self,
        field: &str,
        value: serde_json::Value,
        today: NaiveDate,
    ) -> Result<Self, BodyError> {
        let mut json = self.to_json();
        let serde_json::Value::Object(fields) = &mut json else {
            return Err(BodyError::Rule("a record is a JSON object"));
        };
        if field == "kind" || !fields.contains_key(field) {
            return Err(BodyError::UnknownField);
        }
        fields.insert(field.to_owned(), value);
        let body = Self::from_json(self.kind(), json)?;
        body.check(today)?;
        Ok(body)
    }
}

/// What serde said, without the input: serde_json's messages quote the offending
/// value (`invalid type: string "..."`, ``unknown variant `...` ``), which may be
/// health data, so quoted values are dropped. The validators' own messages (which
/// never quote input) are kept whole.
fn describe_serde_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if let Some(start) = VALIDATOR_MESSAGES.iter().find_map(|m| text.find(m)) {
        let rule = &text[start..];
        return rule
            .rfind(" at line ")
            .map_or(rule, |end| &rule[..end])
            .to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..open]);
        rest = rest[open + 1..]
            .find('"')
            .map_or("", |close| &rest[open + 2 + close..]);
        out.push_str("(value)");
    }
    out.push_str(rest);
    for prefix in ["unknown variant `", "unknown field `"] {
        if let Some(tail) = out.strip_prefix(prefix)
            && let Some(end) = tail.find('`')
        {
            out = format!("{}{}", prefix.trim_end_matches(" `"), &tail[end + 1..]);
        }
    }
    out
}

/// Messages of [`ValueError`] that are safe to show whole; matched by content.
const VALIDATOR_MESSAGES: &[&str] = &[
    "the code system must be `icd-10` or `snomed-ct`",
    "an ICD-10 code is a letter",
    "a SNOMED CT identifier is 6 to 18 digits with a valid check digit",
    "pain is scored from 0 to 10",
    "the time zone must be an IANA name",
    "a link must be an absolute https URL of at most 2000 characters",
    "`sets` must be 1 to 20",
    "`repetitions` must be 0 to 200",
    "`hold_seconds` must be 0 to 600",
    "`per_week` must be 1 to 21",
    "an exercise needs repetitions or a hold time",
    "text must be 1 to",
];

/// Why a record body was refused (422). Never quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// A value broke its rule, or the JSON had the wrong shape.
    #[error("{0}")]
    Invalid(String),
    /// A rule spanning fields.
    #[error("{0}")]
    Rule(&'static str),
    /// An amendment or correction named a field the record does not have.
    #[error("the record has no such field")]
    UnknownField,
}

impl From<ValueError> for BodyError {
    fn from(e: ValueError) -> Self {
        Self::Invalid(e.to_string())
    }
}

/// One record of a client, current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record.
    pub id: Uuid,
    /// Whose.
    pub client: ClientRef,
    /// Version, from 1; each update adds one.
    pub version: u32,
    /// Content.
    pub body: RecordBody,
    /// When it was first written.
    pub created_at: DateTime<Utc>,
    /// Who first wrote it.
    pub created_by: UserId,
    /// When this version was written.
    pub updated_at: DateTime<Utc>,
    /// Who wrote this version.
    pub updated_by: UserId,
}

impl Record {
    /// The kind.
    #[must_use]
    pub const fn kind(&self) -> RecordKind {
        self.body.kind()
    }
}

/// One version of a record, as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordVersion {
    /// Version number.
    pub version: u32,
    /// Content then.
    pub body: RecordBody,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Who wrote it.
    pub by: UserId,
}

/// A provider's place on a client's care team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CareTeamMember {
    /// The client.
    pub client: UserId,
    /// The provider.
    pub provider: UserId,
    /// The practice.
    pub organisation: OrganisationId,
    /// First day on the team.
    pub starts_on: NaiveDate,
    /// Last day on the team (inclusive), if set.
    pub ends_on: Option<NaiveDate>,
    /// Who added them.
    pub added_by: UserId,
    /// When.
    pub added_at: DateTime<Utc>,
}

impl CareTeamMember {
    /// Whether the membership covers `day`.
    #[must_use]
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.starts_on <= day && self.ends_on.is_none_or(|end| day <= end)
    }
}

/// The longest break-glass grant, in minutes.
pub const MAX_BREAK_GLASS_MINUTES: u32 = 12 * 60;

/// Emergency access by someone outside the care team: time-boxed, with a stated
/// reason, audited as break-glass and listed for review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassGrant {
    /// The grant.
    pub id: Uuid,
    /// The client.
    pub client: ClientRef,
    /// Who holds it.
    pub holder: UserId,
    /// Why, up to 1,000 characters (sealed with the client's key).
    pub reason: Text<1000>,
    /// When it was taken.
    pub granted_at: DateTime<Utc>,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// Status of an appointment (FHIR `appointmentstatus`, the states a practice uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    /// Booked.
    Booked,
    /// The client has arrived.
    Arrived,
    /// Took place.
    Fulfilled,
    /// Cancelled.
    Cancelled,
    /// The client did not come.
    Noshow,
}

impl AppointmentStatus {
    /// The stable machine name (stored in the clear for the double-booking check).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::Arrived => "arrived",
            Self::Fulfilled => "fulfilled",
            Self::Cancelled => "cancelled",
            Self::Noshow => "noshow",
        }
    }

    /// Parses [`AppointmentStatus::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Booked,
            Self::Arrived,
            Self::Fulfilled,
            Self::Cancelled,
            Self::Noshow,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Whether the appointment holds the provider's time (cancelled ones do not).
    #[must_use]
    pub const fn holds_time(self) -> bool {
        !matches!(self, Self::Cancelled)
    }
}

/// The longest appointment, in hours.
pub const MAX_APPOINTMENT_HOURS: i64 = 12;

/// The sealed details of an appointment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppointmentDetails {
    /// The time zone the appointment was booked in (times are stored in UTC).
    pub time_zone: TimeZone,
    /// Where, up to 500 characters.
    pub location: Option<Text<500>>,
    /// The telehealth link.
    pub telehealth_url: Option<HttpsUrl>,
    /// Why, up to 1,000 characters.
    pub reason: Option<Text<1000>>,
}

/// An appointment (U2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appointment {
    /// The appointment.
    pub id: Uuid,
    /// The client.
    pub client: ClientRef,
    /// The provider.
    pub provider: UserId,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End, after the start.
    pub ends_at: DateTime<Utc>,
    /// Status.
    pub status: AppointmentStatus,
    /// Sealed details.
    pub details: AppointmentDetails,
    /// Version, from 1.
    pub version: u32,
    /// When it was booked.
    pub created_at: DateTime<Utc>,
    /// Who booked it.
    pub created_by: UserId,
}

/// Checks an appointment's time range.
///
/// # Errors
/// [`BodyError::Rule`].
pub fn check_time_range(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> Result<(), BodyError> {
    if ends_at <= starts_at {
        return Err(BodyError::Rule("an appointment must end after it starts"));
    }
    if ends_at - starts_at > chrono::Duration::hours(MAX_APPOINTMENT_HOURS) {
        return Err(BodyError::Rule("an appointment lasts at most 12 hours"));
    }
    Ok(())
}

/// An exercise template of the library: practice-specific, or shared by every
/// practice (`organisation` none). Not personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExerciseTemplate {
    /// The template.
    pub id: Uuid,
    /// The practice it belongs to; none for the shared library.
    pub organisation: Option<OrganisationId>,
    /// Name, up to 200 characters.
    pub name: Text<200>,
    /// Instructions, up to 5,000 characters.
    pub instructions: Text<5000>,
    /// Body region, up to 100 characters (e.g. `lumbar spine`).
    pub body_region: Text<100>,
    /// Equipment: up to 20 items of up to 100 characters.
    pub equipment: Vec<Text<100>>,
    /// A link to a video or image.
    pub media: Option<HttpsUrl>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: UserId,
}

/// Where a page of a list begins: after the record with this time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The last item's time.
    pub at: DateTime<Utc>,
    /// The last item's id.
    pub id: Uuid,
}

/// One page of a list, and where the next begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, oldest first.
    pub items: Vec<T>,
    /// The cursor of the next page, if there is one.
    pub next: Option<Cursor>,
}

/// The most items on a page.
pub const MAX_PAGE: u32 = 100;

/// A request for one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Start after this.
    pub after: Option<Cursor>,
    /// At most this many, 1 to [`MAX_PAGE`].
    pub limit: u32,
}

impl PageRequest {
    /// The first page of `limit` items (clamped to 1 ..= [`MAX_PAGE`]).
    #[must_use]
    pub fn first(limit: u32) -> Self {
        Self {
            after: None,
            limit: limit.clamp(1, MAX_PAGE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).expect("valid")
    }

    #[test]
    fn kinds_round_trip_and_match_the_body_tags() {
        for kind in RecordKind::ALL {
            assert_eq!(RecordKind::parse(kind.as_str()), Some(kind));
        }
        let body = RecordBody::from_json(
            RecordKind::Condition,
            json!({"text": "Low back pain", "code": {"system": "icd-10", "code": "M54.5"}, "status": "active", "onset": null}),
        )
        .expect("valid");
        assert_eq!(body.kind(), RecordKind::Condition);
        assert_eq!(body.to_json()["code"]["code"], "M54.5");
        assert!(body.to_json().get("kind").is_none());
    }

    #[test]
    fn bad_values_are_refused_without_quoting_them() {
        let cases = [
            (
                RecordKind::Condition,
                json!({"text": "secret-canary", "code": {"system": "loinc", "code": "1"}, "status": "active"}),
                "code system",
            ),
            (
                RecordKind::Adherence,
                json!({"program": Uuid::nil(), "program_version": 1, "performed_on": "2026-11-01", "completed": [0], "pain": 11}),
                "pain",
            ),
            (
                RecordKind::Condition,
                json!({"text": "x".repeat(2001), "status": "active"}),
                "text must be 1 to 2000",
            ),
            (
                RecordKind::Condition,
                json!({"text": "secret-canary", "status": "maybe"}),
                "unknown variant",
            ),
            (
                RecordKind::Medication,
                json!({"name": "secret-canary", "dose": "1", "frequency": "1", "status": "active", "extra": 1}),
                "unknown field",
            ),
        ];
        for (kind, value, expected) in cases {
            let err = RecordBody::from_json(kind, value)
                .expect_err("refused")
                .to_string();
            assert!(err.contains(expected), "{err} should mention {expected}");
            assert!(!err.contains("secret-canary"), "{err}");
            assert!(!err.contains("maybe"), "{err}");
        }
    }

    #[test]
    fn rules_spanning_fields_are_checked() {
        let program = |items: usize, end: &str| {
            let item = json!({"exercise": Uuid::nil(), "name": "Bridge", "prescription": {"sets": 3, "repetitions": 10, "hold_seconds": 0, "per_week": 7}, "notes": null});
            RecordBody::from_json(
                RecordKind::Program,
                json!({"title": "Back", "items": vec![item; items], "starts_on": "2026-11-01", "ends_on": end}),
            )
            .expect("valid")
        };
        assert!(program(1, "2026-12-01").check(today()).is_ok());
        assert!(program(0, "2026-12-01").check(today()).is_err());
        assert!(program(51, "2026-12-01").check(today()).is_err());
        assert!(program(1, "2026-10-01").check(today()).is_err());
        let future = RecordBody::from_json(
            RecordKind::Condition,
            json!({"text": "x", "status": "active", "onset": "2027-01-01"}),
        )
        .expect("valid");
        assert!(future.check(today()).is_err());
    }

    #[test]
    fn a_field_is_corrected_only_with_a_valid_value() {
        let body = RecordBody::from_json(
            RecordKind::Medication,
            json!({"name": "Ibuprofen", "dose": "400 mg", "frequency": "daily", "status": "active"}),
        )
        .expect("valid");
        let fixed = body
            .with_field("dose", json!("200 mg"), today())
            .expect("valid");
        assert_eq!(fixed.to_json()["dose"], "200 mg");
        assert_eq!(
            body.with_field("colour", json!("red"), today()),
            Err(BodyError::UnknownField)
        );
        assert_eq!(
            body.with_field("kind", json!("condition"), today()),
            Err(BodyError::UnknownField)
        );
        assert!(
            body.with_field("status", json!("sometimes"), today())
                .is_err()
        );
    }

    #[test]
    fn debug_output_never_shows_what_a_record_says() {
        let bodies = [
            RecordBody::from_json(
                RecordKind::Amendment,
                json!({"target": Uuid::nil(), "target_kind": "medication", "field": "dose",
                       "proposed": "canary-dose", "reason": "canary-reason", "status": "proposed"}),
            )
            .expect("valid"),
            RecordBody::from_json(
                RecordKind::Adherence,
                json!({"program": Uuid::nil(), "program_version": 1, "performed_on": "2026-11-01",
                       "completed": [0], "pain": 9, "comment": "canary-comment"}),
            )
            .expect("valid"),
            RecordBody::from_json(
                RecordKind::Condition,
                json!({"text": "canary-text", "status": "remission", "onset": "2019-03-04"}),
            )
            .expect("valid"),
        ];
        for body in bodies {
            let record = Record {
                id: Uuid::nil(),
                client: ClientRef {
                    user: UserId::new(),
                    subject: SubjectId::new(),
                    organisation: OrganisationId::new(),
                    home_organisation: OrganisationId::new(),
                },
                version: 1,
                body: body.clone(),
                created_at: DateTime::<Utc>::UNIX_EPOCH,
                created_by: UserId::new(),
                updated_at: DateTime::<Utc>::UNIX_EPOCH,
                updated_by: UserId::new(),
            };
            let shown = format!("{record:?} {body:?}");
            for secret in ["canary", "PainScore(9)", "Remission", "2019-03-04", "dose"] {
                assert!(!shown.contains(secret), "{shown}");
            }
            assert!(shown.contains(body.kind().as_str()), "{shown}");
            if let RecordBody::Amendment(a) = &body {
                let shown = format!("{a:?}");
                assert!(
                    !shown.contains("canary") && !shown.contains("dose"),
                    "{shown}"
                );
            }
        }
    }

    #[test]
    fn appointments_end_after_they_start_and_last_at_most_twelve_hours() {
        let at =
            |h: i64| DateTime::<Utc>::from_timestamp(1_800_000_000 + h * 3600, 0).expect("valid");
        assert!(check_time_range(at(0), at(1)).is_ok());
        assert!(check_time_range(at(1), at(0)).is_err());
        assert!(check_time_range(at(1), at(1)).is_err());
        assert!(check_time_range(at(0), at(13)).is_err());
    }
}
