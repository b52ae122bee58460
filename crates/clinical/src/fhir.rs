//! What the clinical context holds about one subject, as FHIR R4 (4.0.1) resources
//! for the export: [`resources`] maps a [`Holdings`], [`bundle`] puts the resources
//! in a `collection` Bundle.
//!
//! # References
//!
//! Every resource's `id` is a UUID, its Bundle entry's `fullUrl` is `urn:uuid:<id>`,
//! and every reference is `{"reference": "urn:uuid:<id>", "type": "<resource type>"}`,
//! so each one resolves inside the Bundle. The `Patient`'s id is the subject's id;
//! a person of the practice (the provider of an appointment, a message's author or
//! recipient, the recorder of a record) is a `Practitioner` whose id is their user
//! id, and one minimal `Practitioner` (its id, nothing else: the clinical context
//! holds no provider's name) is added for everyone referenced. The client's own user
//! id is always the `Patient`.
//!
//! # Mapping
//!
//! Dates are `YYYY-MM-DD`; instants are RFC 3339 in UTC (`Z`). Every resource made
//! from a record (or an appointment) has `id` = the record's id and `meta.versionId` =
//! its version; a record's `meta.lastUpdated` is when that version was written.
//!
//! | Holding | Resource | Field → element |
//! |---|---|---|
//! | identity + demographics | `Patient` | subject id → `id`; no `meta` (identity's fields have no version, so none fits the whole); name → `name[0].text` (a full name cannot be split into family and given names reliably, so it is not); email, phone → `telecom` (`email`, `phone`); birth date → `birthDate`; sex → `gender`; address → `address[0]` (`use` `home`; lines → `line`, city, region → `state`, postal code → `postalCode`, country); preferred language → `communication[0].language.text`. Gender identity is not mapped (R4 has it only as an extension; it is left out). |
//! | condition | `Condition` | status → `clinicalStatus` (`condition-clinical`, same codes); `verificationStatus` `confirmed`; `category` `problem-list-item`; code → `code.coding[0]` (`http://hl7.org/fhir/sid/icd-10` or `http://snomed.info/sct`); text → `code.text`; onset → `onsetDateTime`; first written → `recordedDate`; first author → `recorder` |
//! | history entry | `Condition` | `clinicalStatus` `inactive` (a past entry, no longer the current problem; not `resolved`, which would claim no risk of recurrence); no `verificationStatus`; `category` `problem-list-item`; text → `code.text`; occurred on → `onsetDateTime`; first written → `recordedDate`; first author → `recorder` |
//! | status note | `Observation` | `status` `final`; `code.text` "Health status note"; text → `valueString`; this version's time → `effectiveDateTime` and `issued`; its author → `performer[0]` |
//! | medication | `MedicationStatement` | status → `status` (`active`, `completed`, `stopped`, `on-hold`, `intended`, `entered-in-error`); name → `medicationCodeableConcept.text`; "dose, frequency" → `dosage[0].text`; this version's time → `dateAsserted` |
//! | allergy | `AllergyIntolerance` | status → `clinicalStatus` (`allergyintolerance-clinical`, same codes); substance → `code.text`; reaction → `reaction[0].manifestation[0].text`, severity → `reaction[0].severity`; a severity without a described reaction → `note[0]` (R4 needs a manifestation for a reaction); first written → `recordedDate`; first author → `recorder` |
//! | treatment plan | `CarePlan` | status → `status` (same codes); `intent` `plan`; `category[0].text` "Treatment plan"; title → `title`; goals → `description` ("Goals:" and one numbered line each); each intervention → `activity[].detail` (`description`; `status` from the plan's: draft `not-started`, active `in-progress`, on-hold `on-hold`, completed `completed`, revoked `stopped`); first written → `created`; first author → `author` |
//! | exercise program | `CarePlan` | `status` `completed` once its last day is before `today`, else `active`; `intent` `plan`; `category[0].text` "Home exercise program"; title → `title`; first and last day → `period`; each exercise → `activity[].detail`: "name: sets × repetitions, hold s, n×/week — notes" → `description`, sessions per week → `scheduledTiming.repeat` (`frequency` n per 1 `wk`), `status` `not-started` before the first day, `completed` after the last, else `in-progress`; first written → `created`; first author → `author` |
//! | adherence log | `CarePlan.activity[].progress` of its program | one Annotation per exercise the log's program version had ("2026-11-01: done (3 of 4 exercises done), pain 2/10 — comment", naming the version when it is not the current one), `time` = the day, `authorReference` = the `Patient`. Exercises are matched across versions by library exercise (and occurrence); a log matching no current exercise, or whose version is not held, becomes a `CarePlan.note`. A log of a program not held is not mapped. |
//! | appointment | `Appointment` | status → `status` (same codes); start, end → `start`, `end`; reason → `description`; booked → `created`; location, telehealth link and the booking's time zone → `comment` (R4 has no virtual-service element); the `Patient` and the provider's `Practitioner` → `participant[]`, each `status` `accepted` |
//! | message | `Communication` | `status` `completed`; the `Patient` → `subject`; written → `sent`; the author → `sender` (the `Patient` when the client wrote it, else their `Practitioner`); the recipients → `recipient` (the client's care team on the day sent when the client wrote it, else the `Patient`); text → `payload[0].contentString` |
//!
//! Not mapped: amendments (no resource of the export's list fits a correction
//! request; they and every record's earlier versions are in the JSON export), the
//! care team other than as recipients, and break-glass grants (access records, not
//! care).
//!
//! The resources are health data: never log them or print their `Debug` form.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use kernel::UserId;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::model::{
    Adherence, AdministrativeSex, Allergy, AllergyStatus, Appointment, AppointmentDetails,
    ClientRef, Condition, ConditionStatus, Demographics, HistoryEntry, Medication,
    MedicationStatus, Message, PlanStatus, Program, ProgramItem, Record, RecordBody, Severity,
    StatusNote, TreatmentPlan,
};
use crate::ports::Holdings;
use crate::values::Prescription;

/// `Condition.clinicalStatus`'s code system.
pub const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
/// `Condition.verificationStatus`'s code system.
pub const CONDITION_VERIFICATION: &str =
    "http://terminology.hl7.org/CodeSystem/condition-ver-status";
/// `Condition.category`'s code system.
pub const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
/// `AllergyIntolerance.clinicalStatus`'s code system.
pub const ALLERGY_CLINICAL: &str =
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";

/// The FHIR R4 resources of one subject's clinical holdings: the `Patient` first,
/// then one resource per mapped record (in the holdings' order), the appointments,
/// and a minimal `Practitioner` for every person of the practice referenced (by
/// id). `today` decides whether an exercise program is still active. Empty when the
/// holdings name no client (nothing says whose they are).
///
/// The module documentation gives the mapping, field by field.
#[must_use]
pub fn resources(holdings: &Holdings, today: NaiveDate) -> Vec<Value> {
    let client = holdings
        .client
        .or_else(|| holdings.records.first().map(|r| r.client))
        .or_else(|| holdings.appointments.first().map(|a| a.client));
    let Some(client) = client else {
        return Vec::new();
    };
    let mut mapper = Mapper {
        holdings,
        client,
        today,
        practitioners: BTreeSet::new(),
    };
    let mut out = vec![mapper.patient()];
    for record in &holdings.records {
        if let Some(resource) = mapper.record(record) {
            out.push(resource);
        }
    }
    for appointment in &holdings.appointments {
        out.push(mapper.appointment(appointment));
    }
    out.extend(mapper.practitioners.iter().map(|id| {
        json!({
            "resourceType": "Practitioner",
            "id": id.to_string(),
        })
    }));
    out
}

/// A Bundle of type `collection` holding `resources`, each entry's `fullUrl`
/// `urn:uuid:<id>` (what [`resources`]' references point to).
#[must_use]
pub fn bundle(resources: Vec<Value>) -> Value {
    let entry: Vec<Value> = resources
        .into_iter()
        .map(|resource| {
            let mut entry = Map::new();
            if let Some(id) = resource.get("id").and_then(Value::as_str) {
                entry.insert("fullUrl".to_owned(), Value::String(urn(id)));
            }
            entry.insert("resource".to_owned(), resource);
            Value::Object(entry)
        })
        .collect();
    let mut bundle = Map::new();
    bundle.insert("resourceType".to_owned(), json!("Bundle"));
    bundle.insert("type".to_owned(), json!("collection"));
    if !entry.is_empty() {
        bundle.insert("entry".to_owned(), Value::Array(entry));
    }
    Value::Object(bundle)
}

/// Maps one subject's holdings, collecting the practitioners referenced.
struct Mapper<'a> {
    holdings: &'a Holdings,
    client: ClientRef,
    today: NaiveDate,
    practitioners: BTreeSet<Uuid>,
}

impl Mapper<'_> {
    /// A reference to the `Patient`.
    fn patient_ref(&self) -> Value {
        reference("Patient", self.client.subject.as_uuid())
    }

    /// A reference to a person: the `Patient` for the client, else a `Practitioner`.
    fn person(&mut self, user: UserId) -> Value {
        if user == self.client.user {
            return self.patient_ref();
        }
        self.practitioners.insert(user.as_uuid());
        reference("Practitioner", user.as_uuid())
    }

    fn patient(&self) -> Value {
        let mut p = Map::new();
        p.insert("resourceType".to_owned(), json!("Patient"));
        p.insert(
            "id".to_owned(),
            json!(self.client.subject.as_uuid().to_string()),
        );
        let demographics = self
            .holdings
            .records
            .iter()
            .rev()
            .find_map(|r| match &r.body {
                RecordBody::Demographics(d) => Some(d),
                _ => None,
            });
        if let Some(identity) = &self.holdings.identity {
            if let Some(name) = non_blank(&identity.name) {
                p.insert("name".to_owned(), json!([{ "text": name }]));
            }
            let mut telecom = Vec::new();
            if let Some(email) = non_blank(&identity.email) {
                telecom.push(json!({"system": "email", "value": email}));
            }
            if let Some(phone) = identity.phone.as_deref().and_then(non_blank) {
                telecom.push(json!({"system": "phone", "value": phone}));
            }
            if !telecom.is_empty() {
                p.insert("telecom".to_owned(), Value::Array(telecom));
            }
        }
        if let Some(d) = demographics {
            demographics_into(d, &mut p);
        }
        if let Some(birth) = self.holdings.identity.as_ref().and_then(|i| i.birth_date) {
            p.insert("birthDate".to_owned(), json!(date(birth)));
        }
        Value::Object(p)
    }

    /// The resource of one record, if its kind maps to one of its own.
    fn record(&mut self, record: &Record) -> Option<Value> {
        let resource = match &record.body {
            RecordBody::Condition(c) => self.condition(record, c),
            RecordBody::HistoryEntry(h) => self.history_entry(record, h),
            RecordBody::StatusNote(n) => self.status_note(record, n),
            RecordBody::Medication(m) => self.medication(record, m),
            RecordBody::Allergy(a) => self.allergy(record, a),
            RecordBody::TreatmentPlan(t) => self.treatment_plan(record, t),
            RecordBody::Program(p) => self.program(record, p),
            RecordBody::Message(m) => self.message(record, m),
            RecordBody::Demographics(_) | RecordBody::Adherence(_) | RecordBody::Amendment(_) => {
                return None;
            }
        };
        Some(resource)
    }

    fn condition(&mut self, record: &Record, c: &Condition) -> Value {
        let mut code = Map::new();
        if let Some(coded) = &c.code {
            code.insert(
                "coding".to_owned(),
                json!([{"system": coded.system().fhir_uri(), "code": coded.code()}]),
            );
        }
        code.insert("text".to_owned(), json!(c.text.as_str()));
        let mut r = start("Condition", record);
        r.insert(
            "clinicalStatus".to_owned(),
            concept(CONDITION_CLINICAL, condition_status(c.status)),
        );
        r.insert(
            "verificationStatus".to_owned(),
            concept(CONDITION_VERIFICATION, "confirmed"),
        );
        r.insert("category".to_owned(), problem_list_item());
        r.insert("code".to_owned(), Value::Object(code));
        r.insert("subject".to_owned(), self.patient_ref());
        if let Some(onset) = c.onset {
            r.insert("onsetDateTime".to_owned(), json!(date(onset)));
        }
        r.insert("recordedDate".to_owned(), json!(instant(record.created_at)));
        r.insert("recorder".to_owned(), self.person(record.created_by));
        Value::Object(r)
    }

    fn history_entry(&mut self, record: &Record, h: &HistoryEntry) -> Value {
        let mut r = start("Condition", record);
        r.insert(
            "clinicalStatus".to_owned(),
            concept(CONDITION_CLINICAL, "inactive"),
        );
        r.insert("category".to_owned(), problem_list_item());
        r.insert("code".to_owned(), json!({"text": h.text.as_str()}));
        r.insert("subject".to_owned(), self.patient_ref());
        if let Some(on) = h.occurred_on {
            r.insert("onsetDateTime".to_owned(), json!(date(on)));
        }
        r.insert("recordedDate".to_owned(), json!(instant(record.created_at)));
        r.insert("recorder".to_owned(), self.person(record.created_by));
        Value::Object(r)
    }

    fn status_note(&mut self, record: &Record, n: &StatusNote) -> Value {
        let mut r = start("Observation", record);
        r.insert("status".to_owned(), json!("final"));
        r.insert("code".to_owned(), json!({"text": "Health status note"}));
        r.insert("subject".to_owned(), self.patient_ref());
        r.insert(
            "effectiveDateTime".to_owned(),
            json!(instant(record.updated_at)),
        );
        r.insert("issued".to_owned(), json!(instant(record.updated_at)));
        r.insert(
            "performer".to_owned(),
            json!([self.person(record.updated_by)]),
        );
        r.insert("valueString".to_owned(), json!(n.text.as_str()));
        Value::Object(r)
    }

    fn medication(&self, record: &Record, m: &Medication) -> Value {
        let mut r = start("MedicationStatement", record);
        r.insert("status".to_owned(), json!(medication_status(m.status)));
        r.insert(
            "medicationCodeableConcept".to_owned(),
            json!({"text": m.name.as_str()}),
        );
        r.insert("subject".to_owned(), self.patient_ref());
        r.insert("dateAsserted".to_owned(), json!(instant(record.updated_at)));
        r.insert(
            "dosage".to_owned(),
            json!([{"text": format!("{}, {}", m.dose.as_str(), m.frequency.as_str())}]),
        );
        Value::Object(r)
    }

    fn allergy(&mut self, record: &Record, a: &Allergy) -> Value {
        let mut r = start("AllergyIntolerance", record);
        r.insert(
            "clinicalStatus".to_owned(),
            concept(ALLERGY_CLINICAL, allergy_status(a.status)),
        );
        r.insert("code".to_owned(), json!({"text": a.substance.as_str()}));
        r.insert("patient".to_owned(), self.patient_ref());
        r.insert("recordedDate".to_owned(), json!(instant(record.created_at)));
        r.insert("recorder".to_owned(), self.person(record.created_by));
        match (&a.reaction, a.severity) {
            (Some(reaction), severity) => {
                let mut reaction = json!({"manifestation": [{"text": reaction.as_str()}]});
                if let Some(severity) = severity {
                    reaction["severity"] = json!(severity_code(severity));
                }
                r.insert("reaction".to_owned(), json!([reaction]));
            }
            (None, Some(severity)) => {
                r.insert(
                    "note".to_owned(),
                    json!([{"text": format!("Reaction severity: {}", severity_code(severity))}]),
                );
            }
            (None, None) => {}
        }
        Value::Object(r)
    }

    fn treatment_plan(&mut self, record: &Record, t: &TreatmentPlan) -> Value {
        let mut r = start("CarePlan", record);
        r.insert("status".to_owned(), json!(plan_status(t.status)));
        r.insert("intent".to_owned(), json!("plan"));
        r.insert("category".to_owned(), json!([{"text": "Treatment plan"}]));
        r.insert("title".to_owned(), json!(t.title.as_str()));
        let goals: Vec<String> = t
            .goals
            .iter()
            .enumerate()
            .map(|(i, g)| format!("{}. {}", i + 1, g.as_str()))
            .collect();
        r.insert(
            "description".to_owned(),
            json!(format!("Goals:\n{}", goals.join("\n"))),
        );
        r.insert("subject".to_owned(), self.patient_ref());
        r.insert("created".to_owned(), json!(instant(record.created_at)));
        r.insert("author".to_owned(), self.person(record.created_by));
        let status = intervention_status(t.status);
        let activity: Vec<Value> = t
            .interventions
            .iter()
            .map(|i| json!({"detail": {"status": status, "description": i.as_str()}}))
            .collect();
        if !activity.is_empty() {
            r.insert("activity".to_owned(), Value::Array(activity));
        }
        Value::Object(r)
    }

    fn program(&mut self, record: &Record, p: &Program) -> Value {
        let ended = p.ends_on.is_some_and(|end| end < self.today);
        let item_status = if self.today < p.starts_on {
            "not-started"
        } else if ended {
            "completed"
        } else {
            "in-progress"
        };
        let mut activities: Vec<Map<String, Value>> = p
            .items
            .iter()
            .map(|item| {
                let mut detail = Map::new();
                detail.insert("status".to_owned(), json!(item_status));
                detail.insert("description".to_owned(), json!(exercise_line(item)));
                detail.insert(
                    "scheduledTiming".to_owned(),
                    json!({"repeat": {
                        "frequency": item.prescription.per_week,
                        "period": 1,
                        "periodUnit": "wk",
                    }}),
                );
                let mut activity = Map::new();
                activity.insert("detail".to_owned(), Value::Object(detail));
                activity
            })
            .collect();
        let notes = self.adherence(record, p, &mut activities);

        let mut r = start("CarePlan", record);
        r.insert(
            "status".to_owned(),
            json!(if ended { "completed" } else { "active" }),
        );
        r.insert("intent".to_owned(), json!("plan"));
        r.insert(
            "category".to_owned(),
            json!([{"text": "Home exercise program"}]),
        );
        r.insert("title".to_owned(), json!(p.title.as_str()));
        r.insert("subject".to_owned(), self.patient_ref());
        let mut period = Map::new();
        period.insert("start".to_owned(), json!(date(p.starts_on)));
        if let Some(end) = p.ends_on {
            period.insert("end".to_owned(), json!(date(end)));
        }
        r.insert("period".to_owned(), Value::Object(period));
        r.insert("created".to_owned(), json!(instant(record.created_at)));
        r.insert("author".to_owned(), self.person(record.created_by));
        r.insert(
            "activity".to_owned(),
            Value::Array(activities.into_iter().map(Value::Object).collect()),
        );
        if !notes.is_empty() {
            r.insert("note".to_owned(), Value::Array(notes));
        }
        Value::Object(r)
    }

    /// Adds the program's adherence logs to its activities as `progress`; returns
    /// the notes for logs no current activity can carry.
    fn adherence(
        &self,
        program: &Record,
        current: &Program,
        activities: &mut [Map<String, Value>],
    ) -> Vec<Value> {
        let mut logs: Vec<&Adherence> = self
            .holdings
            .records
            .iter()
            .filter_map(|r| match &r.body {
                RecordBody::Adherence(log) if log.program == program.id => Some(log),
                _ => None,
            })
            .collect();
        logs.sort_by_key(|log| log.performed_on);
        let current_keys = occurrence_keys(&current.items);
        let mut notes = Vec::new();
        for log in logs {
            let author = self.patient_ref();
            let version = (log.program_version != program.version)
                .then(|| format!(", program version {}", log.program_version));
            let version = version.as_deref().unwrap_or("");
            let comment = log
                .comment
                .as_ref()
                .map(|c| format!(" — {}", c.as_str()))
                .unwrap_or_default();
            let pain = log.pain.get();
            let day = date(log.performed_on);
            let Some(followed) = self.program_items(program, log.program_version) else {
                notes.push(json!({
                    "authorReference": author,
                    "time": day,
                    "text": format!(
                        "{day}: {} done{version}, pain {pain}/10{comment}",
                        exercises(log.completed.len())
                    ),
                }));
                continue;
            };
            let followed_keys = occurrence_keys(followed);
            let summary = format!(
                "{} of {} exercises done",
                log.completed.len(),
                followed.len()
            );
            let mut carried = false;
            for (activity, key) in activities.iter_mut().zip(&current_keys) {
                let Some(position) = followed_keys.iter().position(|k| k == key) else {
                    continue;
                };
                let done = log.completed.iter().any(|c| usize::from(*c) == position);
                let done = if done { "done" } else { "not done" };
                let annotation = json!({
                    "authorReference": author,
                    "time": day,
                    "text": format!("{day}: {done} ({summary}{version}), pain {pain}/10{comment}"),
                });
                push(activity, "progress", annotation);
                carried = true;
            }
            if !carried {
                notes.push(json!({
                    "authorReference": author,
                    "time": day,
                    "text": format!("{day}: {summary}{version}, pain {pain}/10{comment}"),
                }));
            }
        }
        notes
    }

    /// The items of `version` of a program, if held.
    fn program_items<'b>(&'b self, program: &'b Record, version: u32) -> Option<&'b [ProgramItem]> {
        let body = if version == program.version {
            &program.body
        } else {
            &self
                .holdings
                .versions
                .iter()
                .find(|(id, v)| *id == program.id && v.version == version)?
                .1
                .body
        };
        match body {
            RecordBody::Program(p) => Some(&p.items),
            _ => None,
        }
    }

    fn message(&mut self, record: &Record, m: &Message) -> Value {
        let mut r = start("Communication", record);
        r.insert("status".to_owned(), json!("completed"));
        r.insert("subject".to_owned(), self.patient_ref());
        r.insert("sent".to_owned(), json!(instant(record.created_at)));
        let recipients: Vec<Value> = if m.sender == self.client.user {
            let day = record.created_at.date_naive();
            let team: BTreeSet<UserId> = self
                .holdings
                .care_team
                .iter()
                .filter(|member| member.covers(day))
                .map(|member| member.provider)
                .collect();
            team.into_iter().map(|user| self.person(user)).collect()
        } else {
            vec![self.patient_ref()]
        };
        if !recipients.is_empty() {
            r.insert("recipient".to_owned(), Value::Array(recipients));
        }
        r.insert("sender".to_owned(), self.person(m.sender));
        r.insert(
            "payload".to_owned(),
            json!([{"contentString": m.text.as_str()}]),
        );
        Value::Object(r)
    }

    fn appointment(&mut self, a: &Appointment) -> Value {
        let mut r = Map::new();
        r.insert("resourceType".to_owned(), json!("Appointment"));
        r.insert("id".to_owned(), json!(a.id.to_string()));
        r.insert(
            "meta".to_owned(),
            json!({"versionId": a.version.to_string()}),
        );
        r.insert("status".to_owned(), json!(a.status.as_str()));
        if let Some(reason) = &a.details.reason {
            r.insert("description".to_owned(), json!(reason.as_str()));
        }
        r.insert("start".to_owned(), json!(instant(a.starts_at)));
        r.insert("end".to_owned(), json!(instant(a.ends_at)));
        r.insert("created".to_owned(), json!(instant(a.created_at)));
        r.insert("comment".to_owned(), json!(appointment_comment(&a.details)));
        let provider = self.person(a.provider);
        r.insert(
            "participant".to_owned(),
            json!([
                {"actor": self.patient_ref(), "status": "accepted"},
                {"actor": provider, "status": "accepted"},
            ]),
        );
        Value::Object(r)
    }
}

/// `resourceType`, `id` and `meta` of the resource of `record`.
fn start(resource_type: &str, record: &Record) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("resourceType".to_owned(), json!(resource_type));
    r.insert("id".to_owned(), json!(record.id.to_string()));
    r.insert("meta".to_owned(), meta(record));
    r
}

fn meta(record: &Record) -> Value {
    json!({
        "versionId": record.version.to_string(),
        "lastUpdated": instant(record.updated_at),
    })
}

fn urn(id: &str) -> String {
    format!("urn:uuid:{id}")
}

fn reference(resource_type: &str, id: Uuid) -> Value {
    json!({"reference": urn(&id.to_string()), "type": resource_type})
}

/// A CodeableConcept of one coding.
fn concept(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

fn problem_list_item() -> Value {
    json!([concept(CONDITION_CATEGORY, "problem-list-item")])
}

/// Appends `value` to the array `key` of `object`.
fn push(object: &mut Map<String, Value>, key: &str, value: Value) {
    match object.get_mut(key) {
        Some(Value::Array(items)) => items.push(value),
        _ => {
            object.insert(key.to_owned(), Value::Array(vec![value]));
        }
    }
}

/// A FHIR `date`.
fn date(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// A FHIR `instant` (or `dateTime` with a time): RFC 3339 in UTC.
fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// FHIR strings have no empty values.
fn non_blank(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

fn demographics_into(d: &Demographics, p: &mut Map<String, Value>) {
    if let Some(sex) = d.sex {
        let gender = match sex {
            AdministrativeSex::Male => "male",
            AdministrativeSex::Female => "female",
            AdministrativeSex::Other => "other",
            AdministrativeSex::Unknown => "unknown",
        };
        p.insert("gender".to_owned(), json!(gender));
    }
    if let Some(a) = &d.address {
        let mut address = Map::new();
        address.insert("use".to_owned(), json!("home"));
        if !a.lines.is_empty() {
            let lines: Vec<&str> = a.lines.iter().map(|l| l.as_str()).collect();
            address.insert("line".to_owned(), json!(lines));
        }
        for (element, part) in [
            ("city", &a.city),
            ("state", &a.region),
            ("country", &a.country),
        ] {
            if let Some(part) = part {
                address.insert(element.to_owned(), json!(part.as_str()));
            }
        }
        if let Some(code) = &a.postal_code {
            address.insert("postalCode".to_owned(), json!(code.as_str()));
        }
        p.insert("address".to_owned(), json!([address]));
    }
    if let Some(language) = &d.preferred_language {
        p.insert(
            "communication".to_owned(),
            json!([{"language": {"text": language.as_str()}}]),
        );
    }
}

const fn condition_status(s: ConditionStatus) -> &'static str {
    match s {
        ConditionStatus::Active => "active",
        ConditionStatus::Recurrence => "recurrence",
        ConditionStatus::Relapse => "relapse",
        ConditionStatus::Inactive => "inactive",
        ConditionStatus::Remission => "remission",
        ConditionStatus::Resolved => "resolved",
    }
}

const fn medication_status(s: MedicationStatus) -> &'static str {
    match s {
        MedicationStatus::Active => "active",
        MedicationStatus::Completed => "completed",
        MedicationStatus::Stopped => "stopped",
        MedicationStatus::OnHold => "on-hold",
        MedicationStatus::Intended => "intended",
        MedicationStatus::EnteredInError => "entered-in-error",
    }
}

const fn allergy_status(s: AllergyStatus) -> &'static str {
    match s {
        AllergyStatus::Active => "active",
        AllergyStatus::Inactive => "inactive",
        AllergyStatus::Resolved => "resolved",
    }
}

const fn severity_code(s: Severity) -> &'static str {
    match s {
        Severity::Mild => "mild",
        Severity::Moderate => "moderate",
        Severity::Severe => "severe",
    }
}

const fn plan_status(s: PlanStatus) -> &'static str {
    match s {
        PlanStatus::Draft => "draft",
        PlanStatus::Active => "active",
        PlanStatus::OnHold => "on-hold",
        PlanStatus::Completed => "completed",
        PlanStatus::Revoked => "revoked",
    }
}

/// An intervention's `CarePlan.activity.detail.status`, from its plan's status.
const fn intervention_status(s: PlanStatus) -> &'static str {
    match s {
        PlanStatus::Draft => "not-started",
        PlanStatus::Active => "in-progress",
        PlanStatus::OnHold => "on-hold",
        PlanStatus::Completed => "completed",
        PlanStatus::Revoked => "stopped",
    }
}

/// "Bridge: 3 × 10, hold 5 s, 5×/week — notes" (a hold alone: "3 × hold 30 s").
fn exercise_line(item: &ProgramItem) -> String {
    let Prescription {
        sets,
        repetitions,
        hold_seconds,
        per_week,
    } = item.prescription;
    let dose = match (repetitions, hold_seconds) {
        (0, hold) => format!("{sets} × hold {hold} s"),
        (reps, 0) => format!("{sets} × {reps}"),
        (reps, hold) => format!("{sets} × {reps}, hold {hold} s"),
    };
    let notes = item
        .notes
        .as_ref()
        .map(|n| format!(" — {}", n.as_str()))
        .unwrap_or_default();
    format!("{}: {dose}, {per_week}×/week{notes}", item.name.as_str())
}

/// Each item as (library exercise, how many earlier items of the program had it):
/// what stays the same for an exercise across a program's versions.
fn occurrence_keys(items: &[ProgramItem]) -> Vec<(Uuid, usize)> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let earlier = items[..i]
                .iter()
                .filter(|other| other.exercise == item.exercise)
                .count();
            (item.exercise, earlier)
        })
        .collect()
}

/// "1 exercise", "2 exercises".
fn exercises(n: usize) -> String {
    if n == 1 {
        "1 exercise".to_owned()
    } else {
        format!("{n} exercises")
    }
}

/// The appointment's location, telehealth link and time zone, one per line.
fn appointment_comment(d: &AppointmentDetails) -> String {
    let mut lines = Vec::new();
    if let Some(location) = &d.location {
        lines.push(format!("Location: {}", location.as_str()));
    }
    if let Some(url) = &d.telehealth_url {
        lines.push(format!("Telehealth: {}", url.as_str()));
    }
    lines.push(format!("Booked in time zone {}", d.time_zone.name()));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use kernel::{OrganisationId, SubjectId};

    use super::*;
    use crate::model::{
        Address, Amendment, AmendmentStatus, AppointmentStatus, CareTeamMember, ClientIdentity,
        RecordKind, RecordVersion,
    };
    use crate::values::{Code, CodeSystem, HttpsUrl, PainScore, Text, TimeZone};

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("valid date")
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid instant")
            .with_timezone(&Utc)
    }

    fn text<const N: usize>(s: &str) -> Text<N> {
        Text::parse(s).expect("valid text")
    }

    fn today() -> NaiveDate {
        day("2026-11-24")
    }

    struct Fixture {
        holdings: Holdings,
        provider: UserId,
    }

    impl Fixture {
        fn new() -> Self {
            let client = ClientRef {
                user: UserId::new(),
                subject: SubjectId::new(),
                organisation: OrganisationId::new(),
                home_organisation: OrganisationId::new(),
            };
            let holdings = Holdings {
                client: Some(client),
                ..Holdings::default()
            };
            Self {
                holdings,
                provider: UserId::new(),
            }
        }

        fn client(&self) -> ClientRef {
            self.holdings.client.expect("a client")
        }

        fn add(&mut self, body: RecordBody) -> Uuid {
            let by = if matches!(body, RecordBody::Adherence(_) | RecordBody::Amendment(_)) {
                self.client().user
            } else {
                self.provider
            };
            self.add_by(body, by)
        }

        fn add_by(&mut self, body: RecordBody, by: UserId) -> Uuid {
            let id = Uuid::now_v7();
            self.holdings.records.push(Record {
                id,
                client: self.client(),
                version: 1,
                body,
                created_at: at("2026-11-02T09:15:00Z"),
                created_by: by,
                updated_at: at("2026-11-03T10:00:00.250Z"),
                updated_by: by,
            });
            id
        }

        fn map(&self) -> Vec<Value> {
            resources(&self.holdings, today())
        }

        fn only(&self, resource_type: &str) -> Value {
            let mut found: Vec<Value> = self
                .map()
                .into_iter()
                .filter(|r| r["resourceType"] == resource_type)
                .collect();
            assert_eq!(found.len(), 1, "one {resource_type}");
            found.remove(0)
        }

        fn patient_ref(&self) -> Value {
            json!({
                "reference": format!("urn:uuid:{}", self.client().subject.as_uuid()),
                "type": "Patient",
            })
        }

        fn provider_ref(&self) -> Value {
            json!({
                "reference": format!("urn:uuid:{}", self.provider.as_uuid()),
                "type": "Practitioner",
            })
        }
    }

    fn condition(status: ConditionStatus, code: Option<Code>) -> RecordBody {
        RecordBody::Condition(Condition {
            text: text("Low back pain"),
            code,
            status,
            onset: Some(day("2026-01-10")),
        })
    }

    fn item(exercise: Uuid, name: &str, reps: u16, hold: u16) -> ProgramItem {
        ProgramItem {
            exercise,
            name: text(name),
            prescription: Prescription::new(3, reps.into(), hold.into(), 5).expect("valid"),
            notes: None,
        }
    }

    fn program(items: Vec<ProgramItem>, starts: &str, ends: Option<&str>) -> Program {
        Program {
            title: text("Lower back"),
            items,
            starts_on: day(starts),
            ends_on: ends.map(day),
        }
    }

    fn log(program: Uuid, version: u32, on: &str, completed: Vec<u16>, pain: i64) -> RecordBody {
        RecordBody::Adherence(Adherence {
            program,
            program_version: version,
            performed_on: day(on),
            completed,
            pain: PainScore::new(pain).expect("valid"),
            comment: None,
        })
    }

    /// Every `reference` string anywhere in `value`.
    fn references(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("reference", Value::String(s)) => out.push(s.clone()),
                        _ => references(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| references(v, out)),
            _ => {}
        }
    }

    #[test]
    fn the_patient_carries_identity_and_demographics() {
        let mut f = Fixture::new();
        f.holdings.identity = Some(ClientIdentity {
            name: "Ana María de la Cruz".to_owned(),
            email: "ana@example.org".to_owned(),
            phone: Some("+14155550100".to_owned()),
            birth_date: Some(day("1990-02-03")),
        });
        f.add(RecordBody::Demographics(Demographics {
            sex: Some(AdministrativeSex::Female),
            gender_identity: Some(text("woman")),
            preferred_language: Some(text("es-MX")),
            address: Some(Address {
                lines: vec![text("1 Main St"), text("Apt 2")],
                city: Some(text("Springfield")),
                region: Some(text("IL")),
                postal_code: Some(text("62701")),
                country: None,
            }),
        }));
        let patient = f.only("Patient");
        assert_eq!(patient["id"], f.client().subject.as_uuid().to_string());
        assert!(patient.get("meta").is_none());
        assert_eq!(patient["name"], json!([{"text": "Ana María de la Cruz"}]));
        assert_eq!(
            patient["telecom"],
            json!([
                {"system": "email", "value": "ana@example.org"},
                {"system": "phone", "value": "+14155550100"},
            ])
        );
        assert_eq!(patient["birthDate"], "1990-02-03");
        assert_eq!(patient["gender"], "female");
        assert_eq!(
            patient["address"],
            json!([{
                "use": "home",
                "line": ["1 Main St", "Apt 2"],
                "city": "Springfield",
                "state": "IL",
                "postalCode": "62701",
            }])
        );
        assert_eq!(
            patient["communication"],
            json!([{"language": {"text": "es-MX"}}])
        );
        assert!(
            !patient.to_string().contains("woman"),
            "gender identity is not mapped"
        );
    }

    #[test]
    fn every_sex_is_a_gender_code_and_a_bare_patient_has_only_its_id() {
        for (sex, code) in [
            (AdministrativeSex::Male, "male"),
            (AdministrativeSex::Female, "female"),
            (AdministrativeSex::Other, "other"),
            (AdministrativeSex::Unknown, "unknown"),
        ] {
            let mut f = Fixture::new();
            f.add(RecordBody::Demographics(Demographics {
                sex: Some(sex),
                gender_identity: None,
                preferred_language: None,
                address: None,
            }));
            assert_eq!(f.only("Patient")["gender"], code);
        }
        let f = Fixture::new();
        assert_eq!(
            f.map(),
            vec![json!({
                "resourceType": "Patient",
                "id": f.client().subject.as_uuid().to_string(),
            })]
        );
    }

    #[test]
    fn holdings_of_no_one_map_to_nothing() {
        assert!(resources(&Holdings::default(), today()).is_empty());
        assert_eq!(
            bundle(Vec::new()),
            json!({"resourceType": "Bundle", "type": "collection"})
        );
    }

    #[test]
    fn conditions_keep_their_code_system_status_and_dates() {
        let icd = Code::parse(CodeSystem::Icd10, "M54.5").expect("valid");
        let snomed = Code::parse(CodeSystem::SnomedCt, "279039007").expect("valid");
        for (code, system) in [
            (icd, "http://hl7.org/fhir/sid/icd-10"),
            (snomed, "http://snomed.info/sct"),
        ] {
            let mut f = Fixture::new();
            let id = f.add(condition(ConditionStatus::Active, Some(code.clone())));
            let c = f.only("Condition");
            assert_eq!(c["id"], id.to_string());
            assert_eq!(
                c["meta"],
                json!({"versionId": "1", "lastUpdated": "2026-11-03T10:00:00.250Z"})
            );
            assert_eq!(
                c["code"],
                json!({"coding": [{"system": system, "code": code.code()}], "text": "Low back pain"})
            );
            assert_eq!(
                c["clinicalStatus"],
                json!({"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]})
            );
            assert_eq!(
                c["verificationStatus"],
                json!({"coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed"}]})
            );
            assert_eq!(
                c["category"],
                json!([{"coding": [{"system": CONDITION_CATEGORY, "code": "problem-list-item"}]}])
            );
            assert_eq!(c["onsetDateTime"], "2026-01-10");
            assert_eq!(c["recordedDate"], "2026-11-02T09:15:00Z");
            assert_eq!(c["subject"], f.patient_ref());
            assert_eq!(c["recorder"], f.provider_ref());
        }
        for (status, code) in [
            (ConditionStatus::Active, "active"),
            (ConditionStatus::Recurrence, "recurrence"),
            (ConditionStatus::Relapse, "relapse"),
            (ConditionStatus::Inactive, "inactive"),
            (ConditionStatus::Remission, "remission"),
            (ConditionStatus::Resolved, "resolved"),
        ] {
            let mut f = Fixture::new();
            f.add(condition(status, None));
            let c = f.only("Condition");
            assert_eq!(c["clinicalStatus"]["coding"][0]["code"], code);
            assert_eq!(
                c["code"],
                json!({"text": "Low back pain"}),
                "uncoded: text only"
            );
        }
    }

    #[test]
    fn a_history_entry_is_an_inactive_unverified_condition() {
        let mut f = Fixture::new();
        f.add(RecordBody::HistoryEntry(HistoryEntry {
            text: text("ACL reconstruction, left knee"),
            occurred_on: Some(day("2019-05-01")),
        }));
        let c = f.only("Condition");
        assert_eq!(c["clinicalStatus"]["coding"][0]["code"], "inactive");
        assert_eq!(
            c["clinicalStatus"]["coding"][0]["system"],
            CONDITION_CLINICAL
        );
        assert!(c.get("verificationStatus").is_none());
        assert_eq!(c["category"][0]["coding"][0]["code"], "problem-list-item");
        assert_eq!(c["code"], json!({"text": "ACL reconstruction, left knee"}));
        assert_eq!(c["onsetDateTime"], "2019-05-01");
    }

    #[test]
    fn a_status_note_is_a_final_observation() {
        let mut f = Fixture::new();
        f.add(RecordBody::StatusNote(StatusNote {
            text: text("Sleeping better"),
        }));
        let o = f.only("Observation");
        assert_eq!(o["status"], "final");
        assert_eq!(o["code"], json!({"text": "Health status note"}));
        assert_eq!(o["valueString"], "Sleeping better");
        assert_eq!(o["effectiveDateTime"], "2026-11-03T10:00:00.250Z");
        assert_eq!(o["issued"], "2026-11-03T10:00:00.250Z");
        assert_eq!(o["subject"], f.patient_ref());
        assert_eq!(o["performer"], json!([f.provider_ref()]));
    }

    #[test]
    fn medication_statuses_are_r4_codes() {
        for (status, code) in [
            (MedicationStatus::Active, "active"),
            (MedicationStatus::Completed, "completed"),
            (MedicationStatus::Stopped, "stopped"),
            (MedicationStatus::OnHold, "on-hold"),
            (MedicationStatus::Intended, "intended"),
            (MedicationStatus::EnteredInError, "entered-in-error"),
        ] {
            let mut f = Fixture::new();
            f.add(RecordBody::Medication(Medication {
                name: text("Ibuprofen"),
                dose: text("400 mg"),
                frequency: text("twice daily"),
                status,
            }));
            let m = f.only("MedicationStatement");
            assert_eq!(m["status"], code);
            assert_eq!(m["medicationCodeableConcept"], json!({"text": "Ibuprofen"}));
            assert_eq!(m["dosage"], json!([{"text": "400 mg, twice daily"}]));
            assert_eq!(m["subject"], f.patient_ref());
            assert_eq!(m["dateAsserted"], "2026-11-03T10:00:00.250Z");
        }
    }

    #[test]
    fn an_allergy_reaction_always_has_a_manifestation() {
        let allergy = |reaction: Option<&str>, severity, status| {
            RecordBody::Allergy(Allergy {
                substance: text("Penicillin"),
                reaction: reaction.map(text),
                severity,
                status,
            })
        };
        let mut f = Fixture::new();
        f.add(allergy(
            Some("Hives"),
            Some(Severity::Moderate),
            AllergyStatus::Active,
        ));
        let a = f.only("AllergyIntolerance");
        assert_eq!(
            a["clinicalStatus"],
            json!({"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]})
        );
        assert_eq!(a["code"], json!({"text": "Penicillin"}));
        assert_eq!(a["patient"], f.patient_ref());
        assert_eq!(
            a["reaction"],
            json!([{"manifestation": [{"text": "Hives"}], "severity": "moderate"}])
        );
        assert!(a.get("note").is_none());

        let mut f = Fixture::new();
        f.add(allergy(
            None,
            Some(Severity::Severe),
            AllergyStatus::Resolved,
        ));
        let a = f.only("AllergyIntolerance");
        assert_eq!(a["clinicalStatus"]["coding"][0]["code"], "resolved");
        assert!(a.get("reaction").is_none(), "no manifestation, no reaction");
        assert_eq!(a["note"], json!([{"text": "Reaction severity: severe"}]));

        let mut f = Fixture::new();
        f.add(allergy(Some("Rash"), None, AllergyStatus::Inactive));
        let a = f.only("AllergyIntolerance");
        assert_eq!(a["clinicalStatus"]["coding"][0]["code"], "inactive");
        assert_eq!(
            a["reaction"],
            json!([{"manifestation": [{"text": "Rash"}]}])
        );

        let mut f = Fixture::new();
        f.add(allergy(None, None, AllergyStatus::Active));
        let a = f.only("AllergyIntolerance");
        assert!(a.get("reaction").is_none() && a.get("note").is_none());
    }

    #[test]
    fn a_treatment_plan_lists_goals_and_gives_every_intervention_a_status() {
        for (status, plan, activity) in [
            (PlanStatus::Draft, "draft", "not-started"),
            (PlanStatus::Active, "active", "in-progress"),
            (PlanStatus::OnHold, "on-hold", "on-hold"),
            (PlanStatus::Completed, "completed", "completed"),
            (PlanStatus::Revoked, "revoked", "stopped"),
        ] {
            let mut f = Fixture::new();
            f.add(RecordBody::TreatmentPlan(TreatmentPlan {
                title: text("Back rehab"),
                goals: vec![text("Walk 5 km"), text("Sleep without pain")],
                interventions: vec![text("Manual therapy"), text("Education")],
                status,
            }));
            let p = f.only("CarePlan");
            assert_eq!(p["status"], plan);
            assert_eq!(p["intent"], "plan");
            assert_eq!(p["title"], "Back rehab");
            assert_eq!(
                p["description"],
                "Goals:\n1. Walk 5 km\n2. Sleep without pain"
            );
            assert_eq!(
                p["activity"],
                json!([
                    {"detail": {"status": activity, "description": "Manual therapy"}},
                    {"detail": {"status": activity, "description": "Education"}},
                ])
            );
            assert_eq!(p["subject"], f.patient_ref());
            assert_eq!(p["author"], f.provider_ref());
        }
        let mut f = Fixture::new();
        f.add(RecordBody::TreatmentPlan(TreatmentPlan {
            title: text("Watchful waiting"),
            goals: vec![text("Stay active")],
            interventions: Vec::new(),
            status: PlanStatus::Active,
        }));
        assert!(f.only("CarePlan").get("activity").is_none());
    }

    #[test]
    fn a_program_is_active_until_its_last_day_has_passed() {
        let bridge = || vec![item(Uuid::now_v7(), "Bridge", 10, 5)];
        for (starts, ends, status, detail) in [
            ("2026-11-01", Some("2026-12-01"), "active", "in-progress"),
            ("2026-11-01", Some("2026-11-24"), "active", "in-progress"),
            ("2026-11-01", None, "active", "in-progress"),
            ("2026-11-25", Some("2026-12-01"), "active", "not-started"),
            ("2026-10-01", Some("2026-11-23"), "completed", "completed"),
        ] {
            let mut f = Fixture::new();
            f.add(RecordBody::Program(program(bridge(), starts, ends)));
            let p = f.only("CarePlan");
            assert_eq!(p["status"], status, "{starts} to {ends:?}");
            assert_eq!(p["activity"][0]["detail"]["status"], detail, "{starts}");
            let mut period = json!({"start": starts});
            if let Some(end) = ends {
                period["end"] = json!(end);
            }
            assert_eq!(p["period"], period);
        }
    }

    #[test]
    fn an_exercise_reads_as_its_prescription() {
        let mut with_notes = item(Uuid::now_v7(), "Bridge", 10, 5);
        with_notes.notes = Some(text("Keep the hips level"));
        let cases = [
            (
                with_notes,
                "Bridge: 3 × 10, hold 5 s, 5×/week — Keep the hips level",
            ),
            (
                item(Uuid::now_v7(), "Squat", 12, 0),
                "Squat: 3 × 12, 5×/week",
            ),
            (
                item(Uuid::now_v7(), "Plank", 0, 30),
                "Plank: 3 × hold 30 s, 5×/week",
            ),
        ];
        for (item, line) in cases {
            let mut f = Fixture::new();
            f.add(RecordBody::Program(program(vec![item], "2026-11-01", None)));
            let detail = &f.only("CarePlan")["activity"][0]["detail"];
            assert_eq!(detail["description"], line);
            assert_eq!(
                detail["scheduledTiming"],
                json!({"repeat": {"frequency": 5, "period": 1, "periodUnit": "wk"}})
            );
        }
    }

    #[test]
    fn adherence_follows_each_exercise_across_program_versions() {
        let (bridge, squat, plank, lunge) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let mut f = Fixture::new();
        // Version 1: bridge, squat, lunge. Version 2 (current): plank, bridge, squat.
        let v1 = program(
            vec![
                item(bridge, "Bridge", 10, 0),
                item(squat, "Squat", 10, 0),
                item(lunge, "Lunge", 8, 0),
            ],
            "2026-11-01",
            Some("2026-12-31"),
        );
        let v2 = program(
            vec![
                item(plank, "Plank", 0, 30),
                item(bridge, "Bridge", 12, 0),
                item(squat, "Squat", 12, 0),
            ],
            "2026-11-01",
            Some("2026-12-31"),
        );
        let id = f.add(RecordBody::Program(v2));
        f.holdings.records[0].version = 2;
        f.holdings.versions.push((
            id,
            RecordVersion {
                version: 1,
                body: RecordBody::Program(v1),
                at: at("2026-11-01T08:00:00Z"),
                by: f.provider,
            },
        ));
        // Added out of day order: progress is by day.
        f.add(log(id, 2, "2026-11-10", vec![1], 1));
        let mut first = log(id, 1, "2026-11-03", vec![0, 2], 4);
        if let RecordBody::Adherence(a) = &mut first {
            a.comment = Some(text("knee ached"));
        }
        f.add(first);
        // A version the holdings lack, and a log no current exercise matches.
        f.add(log(id, 7, "2026-11-05", vec![0], 2));
        let other = f.add(RecordBody::Program(program(
            vec![item(lunge, "Lunge", 8, 0)],
            "2026-11-01",
            None,
        )));
        f.add(log(other, 1, "2026-11-06", vec![0], 0));

        let plans: Vec<Value> = f
            .map()
            .into_iter()
            .filter(|r| r["resourceType"] == "CarePlan")
            .collect();
        assert_eq!(plans.len(), 2);
        let plan = &plans[0];
        assert_eq!(plan["meta"]["versionId"], "2");
        let progress = |i: usize| {
            plan["activity"][i]
                .get("progress")
                .map(|p| {
                    p.as_array()
                        .expect("an array")
                        .iter()
                        .map(|a| {
                            assert_eq!(a["authorReference"], f.patient_ref());
                            (
                                a["time"].as_str().expect("a day").to_owned(),
                                a["text"].as_str().expect("text").to_owned(),
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        let own = |d: &str, t: &str| (d.to_owned(), t.to_owned());
        assert_eq!(
            progress(0),
            vec![own(
                "2026-11-10",
                "2026-11-10: not done (1 of 3 exercises done), pain 1/10"
            )],
            "the plank was not in version 1"
        );
        assert_eq!(
            progress(1),
            vec![
                own(
                    "2026-11-03",
                    "2026-11-03: done (2 of 3 exercises done, program version 1), pain 4/10 — knee ached"
                ),
                own(
                    "2026-11-10",
                    "2026-11-10: done (1 of 3 exercises done), pain 1/10"
                ),
            ]
        );
        assert_eq!(
            progress(2),
            vec![
                own(
                    "2026-11-03",
                    "2026-11-03: not done (2 of 3 exercises done, program version 1), pain 4/10 — knee ached"
                ),
                own(
                    "2026-11-10",
                    "2026-11-10: not done (1 of 3 exercises done), pain 1/10"
                ),
            ]
        );
        assert_eq!(
            plan["note"],
            json!([{
                "authorReference": f.patient_ref(),
                "time": "2026-11-05",
                "text": "2026-11-05: 1 exercise done, program version 7, pain 2/10",
            }])
        );
        assert_eq!(
            plans[1]["activity"][0]["progress"][0]["text"],
            "2026-11-06: done (1 of 1 exercises done), pain 0/10"
        );
        assert!(plans[1].get("note").is_none());
    }

    #[test]
    fn appointments_have_instants_participants_and_a_comment() {
        let mut f = Fixture::new();
        let id = Uuid::now_v7();
        for (status, code) in [
            (AppointmentStatus::Booked, "booked"),
            (AppointmentStatus::Arrived, "arrived"),
            (AppointmentStatus::Fulfilled, "fulfilled"),
            (AppointmentStatus::Cancelled, "cancelled"),
            (AppointmentStatus::Noshow, "noshow"),
        ] {
            f.holdings.appointments = vec![Appointment {
                id,
                client: f.client(),
                provider: f.provider,
                starts_at: at("2026-12-01T09:00:00+01:00"),
                ends_at: at("2026-12-01T09:45:00+01:00"),
                status,
                details: AppointmentDetails {
                    time_zone: TimeZone::parse("Europe/Berlin").expect("valid"),
                    location: Some(text("Room 3")),
                    telehealth_url: Some(
                        HttpsUrl::parse("https://meet.example.org/r/42").expect("valid"),
                    ),
                    reason: Some(text("Follow-up")),
                },
                version: 3,
                created_at: at("2026-11-20T12:00:00Z"),
                created_by: f.provider,
            }];
            let a = f.only("Appointment");
            assert_eq!(a["id"], id.to_string());
            assert_eq!(a["meta"], json!({"versionId": "3"}));
            assert_eq!(a["status"], code);
            assert_eq!(a["start"], "2026-12-01T08:00:00Z");
            assert_eq!(a["end"], "2026-12-01T08:45:00Z");
            assert_eq!(a["description"], "Follow-up");
            assert_eq!(a["created"], "2026-11-20T12:00:00Z");
            assert_eq!(
                a["comment"],
                "Location: Room 3\nTelehealth: https://meet.example.org/r/42\nBooked in time zone Europe/Berlin"
            );
            assert_eq!(
                a["participant"],
                json!([
                    {"actor": f.patient_ref(), "status": "accepted"},
                    {"actor": f.provider_ref(), "status": "accepted"},
                ])
            );
        }
        f.holdings.appointments[0].details = AppointmentDetails {
            time_zone: TimeZone::parse("UTC").expect("valid"),
            location: None,
            telehealth_url: None,
            reason: None,
        };
        let a = f.only("Appointment");
        assert!(a.get("description").is_none());
        assert_eq!(a["comment"], "Booked in time zone UTC");
    }

    #[test]
    fn messages_go_between_the_patient_and_the_care_team_of_the_day() {
        let mut f = Fixture::new();
        let (gone, later) = (UserId::new(), UserId::new());
        let member = |provider, starts: &str, ends: Option<&str>| CareTeamMember {
            client: f.client().user,
            provider,
            organisation: f.client().organisation,
            starts_on: day(starts),
            ends_on: ends.map(day),
            added_by: provider,
            added_at: at("2026-01-01T00:00:00Z"),
        };
        f.holdings.care_team = vec![
            member(f.provider, "2026-01-01", None),
            member(gone, "2026-01-01", Some("2026-10-31")),
            member(later, "2026-11-03", None),
        ];
        let client = f.client().user;
        let provider = f.provider;
        let from_client = f.add_by(
            RecordBody::Message(Message {
                sender: client,
                text: text("My knee hurts"),
            }),
            client,
        );
        let from_provider = f.add(RecordBody::Message(Message {
            sender: provider,
            text: text("Rest it today"),
        }));
        let all = f.map();
        let find = |id: Uuid| {
            all.iter()
                .find(|r| r["id"] == id.to_string())
                .expect("mapped")
                .clone()
        };
        let asked = find(from_client);
        assert_eq!(asked["resourceType"], "Communication");
        assert_eq!(asked["status"], "completed");
        assert_eq!(asked["sender"], f.patient_ref());
        assert_eq!(
            asked["recipient"],
            json!([f.provider_ref()]),
            "on the team on the day sent"
        );
        assert_eq!(asked["subject"], f.patient_ref());
        assert_eq!(asked["sent"], "2026-11-02T09:15:00Z");
        assert_eq!(
            asked["payload"],
            json!([{"contentString": "My knee hurts"}])
        );
        let answered = find(from_provider);
        assert_eq!(answered["sender"], f.provider_ref());
        assert_eq!(answered["recipient"], json!([f.patient_ref()]));

        let practitioners: Vec<&Value> = all
            .iter()
            .filter(|r| r["resourceType"] == "Practitioner")
            .collect();
        assert_eq!(
            practitioners,
            vec![&json!({"resourceType": "Practitioner", "id": provider.as_uuid().to_string()})],
            "one per person referenced, and only those"
        );
    }

    #[test]
    fn amendments_adherence_and_demographics_are_no_resources_of_their_own() {
        let mut f = Fixture::new();
        let target = f.add(condition(ConditionStatus::Active, None));
        f.add(RecordBody::Amendment(Amendment {
            target,
            target_kind: RecordKind::Condition,
            field: "text".to_owned(),
            proposed: json!("Upper back pain"),
            reason: text("Wrong region"),
            status: AmendmentStatus::Proposed,
            decided_by: None,
            decided_at: None,
            applied_version: None,
            denial_reason: None,
            disagreement: None,
        }));
        f.add(RecordBody::Demographics(Demographics {
            sex: None,
            gender_identity: None,
            preferred_language: Some(text("en")),
            address: None,
        }));
        f.add(log(Uuid::now_v7(), 1, "2026-11-01", vec![0], 3));
        let types: Vec<Value> = f.map().iter().map(|r| r["resourceType"].clone()).collect();
        assert_eq!(
            types,
            vec![json!("Patient"), json!("Condition"), json!("Practitioner")]
        );
        assert!(
            !f.map()
                .iter()
                .any(|r| r.to_string().contains("Wrong region"))
        );
    }

    #[test]
    fn the_bundle_is_a_collection_in_which_every_reference_resolves() {
        let mut f = Fixture::new();
        f.add(condition(ConditionStatus::Active, None));
        f.add(RecordBody::StatusNote(StatusNote { text: text("Fine") }));
        let client = f.client().user;
        f.add_by(
            RecordBody::Message(Message {
                sender: client,
                text: text("Hello"),
            }),
            client,
        );
        f.holdings.care_team = vec![CareTeamMember {
            client,
            provider: f.provider,
            organisation: f.client().organisation,
            starts_on: day("2026-01-01"),
            ends_on: None,
            added_by: f.provider,
            added_at: at("2026-01-01T00:00:00Z"),
        }];
        let mapped = f.map();
        let b = bundle(mapped.clone());
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "collection");
        let entries = b["entry"].as_array().expect("entries");
        assert_eq!(entries.len(), mapped.len());
        let mut full_urls = BTreeSet::new();
        for (entry, resource) in entries.iter().zip(&mapped) {
            assert_eq!(&entry["resource"], resource);
            let url = format!("urn:uuid:{}", resource["id"].as_str().expect("an id"));
            assert_eq!(entry["fullUrl"], url);
            assert!(full_urls.insert(url), "fullUrls are unique");
        }
        let mut refs = Vec::new();
        references(&b, &mut refs);
        assert!(refs.len() >= 6, "{} references", refs.len());
        for r in refs {
            assert!(full_urls.contains(&r), "a reference resolves in the bundle");
        }
    }
}
