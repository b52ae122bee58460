//! The wire shapes of clinical record bodies: one object per record kind, in a
//! union discriminated by `kind`.
//!
//! These types document the schema for integrators; they are not the domain.
//! Crossing the edge goes through JSON: an input's JSON (as poem-openapi writes it)
//! is parsed by [`RecordBody::from_json`], which validates every value, and a
//! stored body's JSON is read back into [`RecordContent`]. The field names are the
//! domain's, and a test round-trips every kind so the two cannot drift.
//! Text limits here repeat the domain's, so the OpenAPI document states them;
//! the domain checks them either way (422).

use chrono::NaiveDate;
use clinical::RecordKind;
use clinical::model::RecordBody;
use poem_openapi::types::ToJSON;
use poem_openapi::{Enum, Object, Union};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::problem::{ApiError, ProblemKind};

/// Non-blank text: no control characters but tabs and line breaks, and at least
/// one character that is not white space (the domain's `Text` rule).
pub const TEXT_PATTERN: &str =
    r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$";

/// The kind of a record, in paths and bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RecordKindName {
    /// Optional demographics.
    Demographics,
    /// A condition (diagnosis or problem).
    Condition,
    /// A medication.
    Medication,
    /// An allergy or intolerance.
    Allergy,
    /// A medical-history entry.
    HistoryEntry,
    /// A current health status note.
    StatusNote,
    /// A treatment plan.
    TreatmentPlan,
    /// A home-exercise program (versioned).
    ExerciseProgram,
    /// A client's adherence log.
    AdherenceLog,
    /// A secure message.
    Message,
    /// A client's amendment request.
    Amendment,
}

impl RecordKindName {
    /// The domain kind.
    #[must_use]
    pub const fn kind(self) -> RecordKind {
        match self {
            Self::Demographics => RecordKind::Demographics,
            Self::Condition => RecordKind::Condition,
            Self::Medication => RecordKind::Medication,
            Self::Allergy => RecordKind::Allergy,
            Self::HistoryEntry => RecordKind::HistoryEntry,
            Self::StatusNote => RecordKind::StatusNote,
            Self::TreatmentPlan => RecordKind::TreatmentPlan,
            Self::ExerciseProgram => RecordKind::Program,
            Self::AdherenceLog => RecordKind::Adherence,
            Self::Message => RecordKind::Message,
            Self::Amendment => RecordKind::Amendment,
        }
    }

    /// The wire name of a domain kind.
    #[must_use]
    pub const fn of(kind: RecordKind) -> Self {
        match kind {
            RecordKind::Demographics => Self::Demographics,
            RecordKind::Condition => Self::Condition,
            RecordKind::Medication => Self::Medication,
            RecordKind::Allergy => Self::Allergy,
            RecordKind::HistoryEntry => Self::HistoryEntry,
            RecordKind::StatusNote => Self::StatusNote,
            RecordKind::TreatmentPlan => Self::TreatmentPlan,
            RecordKind::Program => Self::ExerciseProgram,
            RecordKind::Adherence => Self::AdherenceLog,
            RecordKind::Message => Self::Message,
            RecordKind::Amendment => Self::Amendment,
        }
    }
}

/// Administrative sex (FHIR `Patient.gender`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// Male.
    Male,
    /// Female.
    Female,
    /// Other.
    Other,
    /// Unknown.
    Unknown,
}

/// A postal address; give at least one part.
#[derive(Debug, Clone, PartialEq, Eq, Object, Deserialize)]
pub struct AddressBody {
    /// Street lines, at most 3, each 1 to 200 characters.
    #[oai(default, validator(max_items = 3))]
    #[serde(default)]
    pub lines: Vec<String>,
    /// City, up to 100 characters.
    #[oai(
        skip_serializing_if_is_none,
        validator(
            max_length = 100,
            pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub city: Option<String>,
    /// State or region, up to 100 characters.
    #[oai(
        skip_serializing_if_is_none,
        validator(
            max_length = 100,
            pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub region: Option<String>,
    /// Postal code, up to 20 characters.
    #[oai(
        skip_serializing_if_is_none,
        validator(
            max_length = 20,
            pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub postal_code: Option<String>,
    /// Country (name or ISO code), up to 100 characters.
    #[oai(
        skip_serializing_if_is_none,
        validator(
            max_length = 100,
            pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub country: Option<String>,
}

/// Optional demographics beside the account's name, birth date and contact details.
#[derive(Debug, Clone, PartialEq, Eq, Object, Deserialize)]
pub struct DemographicsBody {
    /// Administrative sex.
    #[oai(skip_serializing_if_is_none)]
    pub sex: Option<Sex>,
    /// Gender identity in the client's words, up to 100 characters.
    #[oai(
        skip_serializing_if_is_none,
        validator(
            max_length = 100,
            pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub gender_identity: Option<String>,
    /// Preferred language, e.g. `en` or `es-MX`, up to 35 characters.
    #[oai(
        skip_serializing_if_is_none,
        validator(
            max_length = 35,
            pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub preferred_language: Option<String>,
    /// Home address.
    #[oai(skip_serializing_if_is_none)]
    pub address: Option<AddressBody>,
}

/// A clinical code: `system` is `icd-10` or `snomed-ct` (or their FHIR URIs);
/// another system is refused with 422.
#[derive(Debug, Clone, PartialEq, Eq, Object, Deserialize)]
pub struct CodeBody {
    /// The code system.
    #[oai(validator(max_length = 64))]
    pub system: String,
    /// The code, e.g. `M54.5` (ICD-10) or `279039007` (SNOMED CT, check digit verified).
    #[oai(validator(max_length = 18))]
    pub code: String,
}

/// Clinical status of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ConditionStatusName {
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

/// A condition: text and an optional ICD-10 or SNOMED CT code.
#[derive(Debug, Clone, PartialEq, Eq, Object, Deserialize)]
pub struct ConditionBody {
    /// The condition in words, up to 2,000 characters.
    #[oai(validator(
        max_length = 2000,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub text: String,
    /// Its code.
    #[oai(skip_serializing_if_is_none)]
    pub code: Option<CodeBody>,
    /// Clinical status.
    pub status: ConditionStatusName,
    /// When it began; not in the future.
    #[oai(skip_serializing_if_is_none)]
    pub onset: Option<NaiveDate>,
}

/// Status of a medication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum MedicationStatusName {
    /// Being taken.
    Active,
    /// Finished.
    Completed,
    /// Stopped early.
    Stopped,
    /// Paused.
    OnHold,
    /// To be started.
    Intended,
    /// Recorded in error.
    EnteredInError,
}

/// A medication.
#[derive(Debug, Clone, PartialEq, Eq, Object, Deserialize)]
pub struct MedicationBody {
    /// Name, up to 200 characters.
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
    /// Dose, e.g. `400 mg`, up to 100 characters.
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub dose: String,
    /// Frequency, e.g. `twice daily`, up to 100 characters.
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub frequency: String,
    /// Status.
    pub status: MedicationStatusName,
}

/// Severity of a reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum SeverityName {
    /// Mild.
    Mild,
    /// Moderate.
    Moderate,
    /// Severe.
    Severe,
}

/// Status of an allergy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AllergyStatusName {
    /// Active.
    Active,
    /// Inactive.
    Inactive,
    /// Resolved.
    Resolved,
}

/// An allergy or intolerance.
#[derive(Debug, Clone, PartialEq, Eq, Object, Deserialize)]
pub struct AllergyBody {
    /// The substance, up to 200 characters.
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub substance: String,
    /// The reaction, up to 500 characters.
    #[oai(
        skip_serializing_if_is_none,
        validator(
            max_length = 500,
            pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub reaction: Option<String>,
    /// How severe the reaction is.
    #[oai(skip_serializing_if_is_none)]
    pub severity: Option<SeverityName>,
    /// Status.
    pub status: AllergyStatusName,
}

/// A medical-history entry.
#[derive(Debug, Clone, PartialEq, Eq, Object, Deserialize)]
pub struct HistoryEntryBody {
    /// What happened, up to 4,000 characters.
    #[oai(validator(
        max_length = 4000,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub text: String,
    /// When; not in the future.
    #[oai(skip_serializing_if_is_none)]
    pub occurred_on: Option<NaiveDate>,
}

/// A note on the client's current health status.
#[derive(Debug, Clone, PartialEq, Eq, Object, Deserialize)]
pub struct StatusNoteBody {
    /// The note, up to 4,000 characters.
    #[oai(validator(
        max_length = 4000,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub text: String,
}

/// Status of a treatment plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum PlanStatusName {
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

/// A treatment plan.
#[derive(Debug, Clone, PartialEq, Eq, Object, Deserialize)]
pub struct TreatmentPlanBody {
    /// Title, up to 200 characters.
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub title: String,
    /// Goals: 1 to 20, each up to 500 characters.
    #[oai(validator(min_items = 1, max_items = 20))]
    pub goals: Vec<String>,
    /// Interventions: up to 20, each up to 500 characters.
    #[oai(default, validator(max_items = 20))]
    #[serde(default)]
    pub interventions: Vec<String>,
    /// Status.
    pub status: PlanStatusName,
}

/// How an exercise is to be done. Out-of-range numbers (negative repetitions
/// among them) are refused with 422 naming the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Object, Deserialize)]
pub struct PrescriptionBody {
    /// Sets, 1 to 20.
    pub sets: i64,
    /// Repetitions per set, 0 to 200 (0 for a hold).
    pub repetitions: i64,
    /// Seconds each repetition is held, 0 to 600.
    pub hold_seconds: i64,
    /// Sessions per week, 1 to 21.
    pub per_week: i64,
}

/// One exercise of a program, from the practice's (or the shared) library.
#[derive(Debug, Clone, PartialEq, Eq, Object, Deserialize)]
pub struct ProgramItemBody {
    /// The library exercise (`listExercises`).
    pub exercise: Uuid,
    /// The exercise's name when it was prescribed (set by Custodia from the
    /// library; ignored on input).
    #[oai(skip_serializing_if_is_none, validator(max_length = 200))]
    pub name: Option<String>,
    /// Sets, repetitions, hold time and sessions per week.
    pub prescription: PrescriptionBody,
    /// Notes for the client, up to 1,000 characters.
    #[oai(
        skip_serializing_if_is_none,
        validator(
            max_length = 1000,
            pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub notes: Option<String>,
}

/// A home-exercise program. Each change is a new version; old versions stay
/// readable (`listRecordVersions`).
#[derive(Debug, Clone, PartialEq, Eq, Object, Deserialize)]
pub struct ExerciseProgramBody {
    /// Title, up to 200 characters.
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub title: String,
    /// Exercises: 1 to 50.
    #[oai(validator(min_items = 1, max_items = 50))]
    pub items: Vec<ProgramItemBody>,
    /// First day.
    pub starts_on: NaiveDate,
    /// Last day, on or after the first.
    #[oai(skip_serializing_if_is_none)]
    pub ends_on: Option<NaiveDate>,
}

/// A client's report of doing their program.
#[derive(Debug, Clone, PartialEq, Eq, Object, Deserialize)]
pub struct AdherenceLogBody {
    /// The program (an `exercise_program` record).
    pub program: Uuid,
    /// The program's version followed.
    pub program_version: u32,
    /// The day; not in the future.
    pub performed_on: NaiveDate,
    /// Positions (from 0) of the program's exercises completed, each once.
    #[oai(validator(max_items = 50))]
    pub completed: Vec<u16>,
    /// Pain from 0 (none) to 10 (worst); anything else is 422.
    pub pain: i64,
    /// A comment, up to 2,000 characters.
    #[oai(
        skip_serializing_if_is_none,
        validator(
            max_length = 2000,
            pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub comment: Option<String>,
}

/// A secure message to the client's care team, or from it to the client.
#[derive(Debug, Clone, PartialEq, Eq, Object, Deserialize)]
pub struct MessageBody {
    /// The message, up to 5,000 characters.
    #[oai(validator(
        max_length = 5000,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub text: String,
}

/// A secure message, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Object, Deserialize)]
pub struct MessageView {
    /// Who wrote it (the client or a member of the care team).
    pub sender: Uuid,
    /// The message.
    pub text: String,
}

/// A client's request to correct one field of a record (HIPAA right to amend).
#[derive(Debug, Clone, PartialEq, Object, Deserialize)]
pub struct AmendmentBody {
    /// The record to correct (a demographics, condition, medication, allergy,
    /// history entry, status note or treatment plan record).
    pub target: Uuid,
    /// The field, by its name in the record's body (e.g. `text`, `dose`).
    #[oai(validator(max_length = 64))]
    pub field: String,
    /// The corrected value, of the field's type; checked as the field is.
    pub proposed: Value,
    /// Why, up to 2,000 characters.
    #[oai(validator(
        max_length = 2000,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    ))]
    pub reason: String,
}

/// Where an amendment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AmendmentStatusName {
    /// Waiting for a provider.
    Proposed,
    /// Accepted: the record was corrected.
    Accepted,
    /// Denied, with a reason.
    Denied,
}

/// An amendment, as stored.
#[derive(Debug, Clone, PartialEq, Object, Deserialize)]
pub struct AmendmentView {
    /// The record to correct.
    pub target: Uuid,
    /// Its kind.
    pub target_kind: RecordKindName,
    /// The field.
    pub field: String,
    /// The proposed value.
    pub proposed: Value,
    /// Why.
    pub reason: String,
    /// Where it stands.
    pub status: AmendmentStatusName,
    /// The provider who decided.
    #[oai(skip_serializing_if_is_none)]
    pub decided_by: Option<Uuid>,
    /// When.
    #[oai(skip_serializing_if_is_none)]
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The version of the record the acceptance wrote.
    #[oai(skip_serializing_if_is_none)]
    pub applied_version: Option<u32>,
    /// Why it was denied.
    #[oai(skip_serializing_if_is_none)]
    pub denial_reason: Option<String>,
    /// The client's statement of disagreement.
    #[oai(skip_serializing_if_is_none)]
    pub disagreement: Option<String>,
}

/// A new record: its `kind` and the fields of that kind.
#[derive(Debug, Clone, PartialEq, Union)]
#[oai(discriminator_name = "kind", one_of)]
pub enum RecordInput {
    /// Demographics.
    #[oai(mapping = "demographics")]
    Demographics(DemographicsBody),
    /// A condition.
    #[oai(mapping = "condition")]
    Condition(ConditionBody),
    /// A medication.
    #[oai(mapping = "medication")]
    Medication(MedicationBody),
    /// An allergy.
    #[oai(mapping = "allergy")]
    Allergy(AllergyBody),
    /// A medical-history entry.
    #[oai(mapping = "history_entry")]
    HistoryEntry(HistoryEntryBody),
    /// A status note.
    #[oai(mapping = "status_note")]
    StatusNote(StatusNoteBody),
    /// A treatment plan.
    #[oai(mapping = "treatment_plan")]
    TreatmentPlan(TreatmentPlanBody),
    /// An exercise program.
    #[oai(mapping = "exercise_program")]
    ExerciseProgram(ExerciseProgramBody),
    /// An adherence log (the client).
    #[oai(mapping = "adherence_log")]
    AdherenceLog(AdherenceLogBody),
    /// A secure message.
    #[oai(mapping = "message")]
    Message(MessageBody),
    /// An amendment request (the client).
    #[oai(mapping = "amendment")]
    Amendment(AmendmentBody),
}

/// A record's content: its `kind` and the fields of that kind.
#[derive(Debug, Clone, PartialEq, Union, Deserialize)]
#[oai(discriminator_name = "kind", one_of)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordContent {
    /// Demographics.
    #[oai(mapping = "demographics")]
    Demographics(DemographicsBody),
    /// A condition.
    #[oai(mapping = "condition")]
    Condition(ConditionBody),
    /// A medication.
    #[oai(mapping = "medication")]
    Medication(MedicationBody),
    /// An allergy.
    #[oai(mapping = "allergy")]
    Allergy(AllergyBody),
    /// A medical-history entry.
    #[oai(mapping = "history_entry")]
    HistoryEntry(HistoryEntryBody),
    /// A status note.
    #[oai(mapping = "status_note")]
    StatusNote(StatusNoteBody),
    /// A treatment plan.
    #[oai(mapping = "treatment_plan")]
    TreatmentPlan(TreatmentPlanBody),
    /// An exercise program.
    #[oai(mapping = "exercise_program")]
    ExerciseProgram(ExerciseProgramBody),
    /// An adherence log.
    #[oai(mapping = "adherence_log")]
    AdherenceLog(AdherenceLogBody),
    /// A secure message.
    #[oai(mapping = "message")]
    Message(MessageView),
    /// An amendment request.
    #[oai(mapping = "amendment")]
    Amendment(AmendmentView),
}

impl RecordInput {
    /// The domain body, every value validated (422 naming the rule otherwise).
    /// What Custodia sets itself is filled with placeholders the service
    /// replaces: a message's sender, an amendment's state, a program item's name.
    ///
    /// # Errors
    /// [`ApiError`] 422.
    pub fn into_domain(self) -> Result<RecordBody, ApiError> {
        let mut json = self.to_json().unwrap_or(Value::Null);
        let kind = json
            .get("kind")
            .and_then(Value::as_str)
            .and_then(RecordKind::parse)
            .ok_or_else(|| ApiError::new(ProblemKind::Unprocessable, "Unknown record kind."))?;
        if let Value::Object(fields) = &mut json {
            fields.remove("kind");
            match kind {
                RecordKind::Message => {
                    fields.insert("sender".into(), Value::String(Uuid::nil().to_string()));
                }
                RecordKind::Amendment => {
                    fields.insert("target_kind".into(), Value::String("condition".into()));
                    fields.insert("status".into(), Value::String("proposed".into()));
                }
                RecordKind::Program => {
                    if let Some(Value::Array(items)) = fields.get_mut("items") {
                        for item in items.iter_mut().filter_map(Value::as_object_mut) {
                            item.insert("name".into(), Value::String("exercise".into()));
                        }
                    }
                }
                _ => {}
            }
            // Optional fields poem wrote as absent or null mean "not given".
            fields.retain(|_, v| !v.is_null());
        }
        RecordBody::from_json(kind, json).map_err(|e| {
            ApiError::new(
                ProblemKind::Unprocessable,
                format!("{e}; nothing was stored."),
            )
        })
    }
}

impl RecordContent {
    /// The wire form of a stored body.
    ///
    /// # Errors
    /// 500 if the stored body does not fit the schema (a bug: a test round-trips
    /// every kind).
    pub fn from_domain(body: &RecordBody) -> Result<Self, ApiError> {
        // Stored bodies were validated on the way in and again when read back, so
        // they are mapped by serde alone: no second pass through the schema's
        // validators on every record of every read.
        let mut json = body.to_json();
        if let Value::Object(fields) = &mut json {
            fields.insert(
                "kind".into(),
                Value::String(body.kind().as_str().to_owned()),
            );
        }
        serde_json::from_value(json).map_err(|_| {
            tracing::error!(
                kind = body.kind().as_str(),
                "a stored record does not fit its wire schema"
            );
            ApiError::new(ProblemKind::Internal, "A record could not be shown.")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem_openapi::types::ParseFromJSON;
    use serde_json::json;

    /// One input of every kind, as an integrator would send it.
    fn inputs() -> Vec<Value> {
        let program = Uuid::now_v7();
        vec![
            json!({"kind": "demographics", "sex": "female", "preferred_language": "en", "address": {"lines": ["1 Main St"], "city": "Springfield", "country": "US"}}),
            json!({"kind": "condition", "text": "Low back pain", "code": {"system": "icd-10", "code": "M54.5"}, "status": "active", "onset": "2026-01-02"}),
            json!({"kind": "medication", "name": "Ibuprofen", "dose": "400 mg", "frequency": "twice daily", "status": "on_hold"}),
            json!({"kind": "allergy", "substance": "Penicillin", "reaction": "Rash", "severity": "moderate", "status": "active"}),
            json!({"kind": "history_entry", "text": "Knee surgery", "occurred_on": "2019-05-01"}),
            json!({"kind": "status_note", "text": "Improving"}),
            json!({"kind": "treatment_plan", "title": "Back", "goals": ["Walk 5 km"], "interventions": ["Core work"], "status": "active"}),
            json!({"kind": "exercise_program", "title": "Core", "items": [{"exercise": Uuid::now_v7(), "prescription": {"sets": 3, "repetitions": 10, "hold_seconds": 0, "per_week": 5}, "notes": "Slowly"}], "starts_on": "2026-11-01"}),
            json!({"kind": "adherence_log", "program": program, "program_version": 1, "performed_on": "2026-11-02", "completed": [0], "pain": 3, "comment": "Fine"}),
            json!({"kind": "message", "text": "See you Tuesday"}),
            json!({"kind": "amendment", "target": Uuid::now_v7(), "field": "dose", "proposed": "200 mg", "reason": "Wrong dose"}),
        ]
    }

    #[test]
    fn every_kind_crosses_the_edge_both_ways() {
        let mut seen = Vec::new();
        for input in inputs() {
            let wire = RecordInput::parse_from_json(Some(input.clone())).expect("schema-valid");
            let body = wire.into_domain().expect("valid");
            seen.push(body.kind());
            let content = RecordContent::from_domain(&body).expect("fits the schema");
            let back = content.to_json().expect("json");
            assert_eq!(back["kind"], input["kind"]);
            for (field, value) in input.as_object().expect("object") {
                if matches!(field.as_str(), "items") {
                    continue;
                }
                assert_eq!(&back[field], value, "{field} of {}", input["kind"]);
            }
        }
        assert_eq!(seen, RecordKind::ALL.to_vec());
    }

    #[test]
    fn bad_values_are_422_without_quoting_them() {
        for input in [
            json!({"kind": "condition", "text": "canary-1", "code": {"system": "loinc", "code": "1"}, "status": "active"}),
            json!({"kind": "adherence_log", "program": Uuid::nil(), "program_version": 1, "performed_on": "2026-11-02", "completed": [], "pain": 11}),
            json!({"kind": "exercise_program", "title": "canary-1", "items": [{"exercise": Uuid::nil(), "prescription": {"sets": 3, "repetitions": -1, "hold_seconds": 0, "per_week": 5}}], "starts_on": "2026-11-01"}),
        ] {
            let wire = RecordInput::parse_from_json(Some(input)).expect("schema-valid");
            let err = wire.into_domain().expect_err("refused");
            let text = format!("{err:?}");
            assert!(text.contains("422"), "{text}");
            assert!(!text.contains("canary-1"), "{text}");
        }
    }
}
