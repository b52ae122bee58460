//! [`ClinicalPersonalData`]: the kernel's [`PersonalData`] port for the clinical
//! context, which the rights engine calls to describe, export, correct, erase and
//! restrict one person's clinical records. The rights engine authorises and audits
//! each call; this module does neither.
//!
//! # Export schema
//!
//! Every [`ExportedRecord`] names its category, its resource (`kind`, `id`) and when
//! it was created; its `data` is a JSON object, by resource kind:
//!
//! - a record (`kind` a [`RecordKind`] name: `demographics`, `condition`,
//!   `medication`, `allergy`, `history_entry`, `status_note`, `treatment_plan`,
//!   `exercise_program`, `adherence_log`, `message`, `amendment`):
//!   `{"kind", "organisation", "version", "created_at", "created_by",
//!   "updated_at", "updated_by", "body", "versions"}`, where `body` is the record's
//!   content in the API's form ([`RecordBody::to_json`]) and `versions` lists the
//!   earlier versions, oldest first, each `{"version", "updated_at", "updated_by",
//!   "body"}`;
//! - `appointment`: `{"organisation", "provider", "starts_at", "ends_at", "status",
//!   "details": {"time_zone", "location", "telehealth_url", "reason"}, "version",
//!   "created_at", "created_by"}`;
//! - `care_team_member` (its id is the provider's): `{"organisation", "provider",
//!   "starts_on", "ends_on", "added_by", "added_at"}`;
//! - `break_glass_grant`: `{"organisation", "holder", "reason", "granted_at",
//!   "expires_at"}`, the reason included because the export is for the person.
//!
//! - `fhir_bundle` (its id is the subject's): the same holdings as one FHIR R4
//!   `Bundle` of type `collection` ([`crate::fhir`]): a `Patient`, the records as
//!   `Condition`, `Observation`, `MedicationStatement`, `AllergyIntolerance`,
//!   `CarePlan` (treatment plans, and exercise programs with their adherence as
//!   activity progress), `Appointment` and `Communication`, and the
//!   `Practitioner`s they name. Amendments, earlier versions, the care team and
//!   break-glass grants have no FHIR form and are in the records above.
//!
//! People are named by their user ids, times are RFC 3339 in UTC and days ISO 8601
//! dates. The person's name and contact details are identity's, and exported there.
//!
//! # Correction, erasure, restriction
//!
//! A correction names a record by its kind and id and one field of its `body`; the
//! corrected body is validated whole and written as a new version, so the earlier
//! one stays in the history (45 CFR 164.526 keeps what was amended identifiable).
//! What may be corrected is what a client may ask to amend (the kinds of
//! [`RecordKind::amendable`]: demographics, conditions, medications, allergies,
//! history, status notes, treatment plans), and the day, pain and comment of the
//! client's own adherence logs. Not the rest: a message is what was sent, an
//! amendment's state is the care team's decision, and a program (or the program a
//! log follows) changes only through the service, which checks what it refers to.
//! The version is written by the person acting in the request, or, for a request of
//! Custodia itself (a system actor), in the client's own name, since it is made at
//! their request.
//!
//! Erasure deletes every record with its versions, every appointment, care-team
//! membership and break-glass grant and the restriction, and reports each as
//! deleted; the subject's data key is destroyed afterwards by the rights engine.
//! Whether a practice must first keep records for the periods of [`describe`]
//! is the rights engine's decision, before it calls erasure.
//!
//! A restriction adds to the categories already restricted, and lifting one
//! category leaves the others restricted.
//!
//! [`describe`]: PersonalData::describe

use std::borrow::Cow;

/// The resource kind of the export's FHIR Bundle.
pub const FHIR_BUNDLE: &str = "fhir_bundle";
use std::sync::Arc;

use async_trait::async_trait;
use kernel::personal_data::{
    DataMapEntry, ErasureOutcome, ExportedRecord, PersonalDataError, RecordFate, Rectification,
    RestrictionScope, Retention, Source,
};
use kernel::{
    DataCategory, LegalGround, PersonalData, Purpose, Regime, RequestContext, ResourceRef,
    SubjectId,
};
use serde_json::{Value, json};

use crate::model::{Record, RecordKind, RecordVersion};
use crate::ports::{ClinicalRepository, RepositoryError, Restriction};
use crate::service::resource;

/// How long clinical records are kept: seven years (2,557 days).
pub const MEDICAL_RECORD_DAYS: u32 = 2_557;

/// Why clinical records are kept seven years.
pub const MEDICAL_RECORD_GROUND: LegalGround = LegalGround::new(
    Regime::Hipaa,
    "22 Tex. Admin. Code § 165.1(b); 42 CFR 424.516(f); state medical-record laws",
    "Your practice must keep its medical records of you for years after your care: seven \
     years after the last treatment in many US states (longer for a child), and seven years \
     for Medicare documentation.",
);

/// How long break-glass grants are kept: six years (2,192 days).
pub const ACCESS_REVIEW_DAYS: u32 = 2_192;

/// Why break-glass grants are kept six years.
pub const ACCESS_REVIEW_GROUND: LegalGround = LegalGround::new(
    Regime::Hipaa,
    "45 CFR 164.312(a)(2)(ii), 164.316(b)(2)(i)",
    "An emergency access to your records, and its review, is documentation the HIPAA \
     Security Rule requires to be kept six years.",
);

/// The fields of an adherence log a correction may change (the others name the
/// program and its items, which only the service checks).
const ADHERENCE_CORRECTIONS: [&str; 3] = ["performed_on", "pain", "comment"];

/// The clinical context as a holder of personal data.
#[derive(Clone)]
pub struct ClinicalPersonalData {
    repo: Arc<dyn ClinicalRepository>,
}

impl std::fmt::Debug for ClinicalPersonalData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClinicalPersonalData")
            .finish_non_exhaustive()
    }
}

impl ClinicalPersonalData {
    /// The port over `repo`.
    #[must_use]
    pub fn new(repo: Arc<dyn ClinicalRepository>) -> Self {
        Self { repo }
    }
}

fn unavailable(e: RepositoryError) -> PersonalDataError {
    PersonalDataError::Unavailable(Box::new(e))
}

fn entry(
    category: DataCategory,
    description: &'static str,
    sources: Vec<Source>,
    purposes: Vec<Purpose>,
    recipients: &[&'static str],
    retention: Retention,
) -> DataMapEntry {
    DataMapEntry {
        category,
        description: Cow::Borrowed(description),
        sources,
        purposes,
        recipients: recipients.iter().map(|r| Cow::Borrowed(*r)).collect(),
        retention,
    }
}

const fn medical_record() -> Retention {
    Retention::Period {
        days: MEDICAL_RECORD_DAYS,
        ground: MEDICAL_RECORD_GROUND,
    }
}

/// Who sees the chart: the care team, emergencies, the person, the host.
const CHART_RECIPIENTS: [&str; 4] = [
    "your care team",
    "a provider of your practice in an emergency (break-glass)",
    "you",
    "hosting sub-processor",
];

fn version_json(v: &RecordVersion) -> Value {
    json!({
        "version": v.version,
        "updated_at": v.at,
        "updated_by": v.by,
        "body": v.body.to_json(),
    })
}

fn record_json(record: &Record, earlier: &[&RecordVersion]) -> Value {
    json!({
        "kind": record.kind().as_str(),
        "organisation": record.client.organisation,
        "version": record.version,
        "created_at": record.created_at,
        "created_by": record.created_by,
        "updated_at": record.updated_at,
        "updated_by": record.updated_by,
        "body": record.body.to_json(),
        "versions": earlier.iter().map(|v| version_json(v)).collect::<Vec<_>>(),
    })
}

/// The categories a restriction covers, as a list to add to or take from.
fn restricted_categories(
    restriction: &Restriction,
    described: &[DataCategory],
) -> Vec<DataCategory> {
    match restriction {
        Restriction::None => Vec::new(),
        Restriction::All => described.to_vec(),
        Restriction::Categories(list) => list.clone(),
    }
}

impl Restriction {
    /// The restriction of exactly `list` (none when it is empty).
    fn from_list(list: Vec<DataCategory>) -> Self {
        if list.is_empty() {
            Self::None
        } else {
            Self::Categories(list)
        }
    }
}

#[async_trait]
impl PersonalData for ClinicalPersonalData {
    fn context(&self) -> &'static str {
        "clinical"
    }

    fn describe(&self) -> Vec<DataMapEntry> {
        vec![
            entry(
                DataCategory::Profile,
                "Demographics beside identity's name and contact details (administrative sex, \
                 gender identity in your words, preferred language, address), the providers on \
                 your care team and when, and any restriction of processing you asked for. Part \
                 of your medical record, so kept as long as it.",
                vec![Source::Subject, Source::Provider],
                vec![
                    Purpose::Treatment,
                    Purpose::Operations,
                    Purpose::SubjectRequest,
                ],
                &[
                    "your care team",
                    "your practice's administrators",
                    "you",
                    "hosting sub-processor",
                ],
                medical_record(),
            ),
            entry(
                DataCategory::HealthRecord,
                "Your conditions (in words, with an ICD-10 or SNOMED CT code), allergies and \
                 intolerances, medical-history entries and notes on your current health \
                 status, each with every earlier version; your requests to amend them, the \
                 decision and any statement of disagreement. Kept seven years, as medical \
                 records are under US state law; amendments are also HIPAA documentation \
                 (45 CFR 164.526(j)), which must be kept six.",
                vec![Source::Provider, Source::Subject],
                vec![
                    Purpose::Treatment,
                    Purpose::BreakGlass,
                    Purpose::SubjectRequest,
                    Purpose::Operations,
                ],
                &CHART_RECIPIENTS,
                medical_record(),
            ),
            entry(
                DataCategory::Medications,
                "The medications you take or took: name, dose, frequency and status, with \
                 every earlier version. Kept seven years, as medical records are.",
                vec![Source::Provider],
                vec![
                    Purpose::Treatment,
                    Purpose::BreakGlass,
                    Purpose::SubjectRequest,
                ],
                &CHART_RECIPIENTS,
                medical_record(),
            ),
            entry(
                DataCategory::TreatmentPlans,
                "Your treatment plans: goals, interventions and status, with every earlier \
                 version. Kept seven years, as medical records are.",
                vec![Source::Provider],
                vec![
                    Purpose::Treatment,
                    Purpose::BreakGlass,
                    Purpose::SubjectRequest,
                ],
                &CHART_RECIPIENTS,
                medical_record(),
            ),
            entry(
                DataCategory::ExercisePrograms,
                "Your home-exercise programs (every version: exercises, sets, repetitions, \
                 hold times, sessions per week, notes, dates) and your adherence logs (the \
                 day, the exercises completed, pain from 0 to 10 and your comment). Kept \
                 seven years, as the record of the treatment given.",
                vec![Source::Provider, Source::Subject],
                vec![
                    Purpose::Treatment,
                    Purpose::BreakGlass,
                    Purpose::SubjectRequest,
                ],
                &CHART_RECIPIENTS,
                medical_record(),
            ),
            entry(
                DataCategory::Appointments,
                "Your appointments: the provider, start and end, status (booked, arrived, \
                 fulfilled, cancelled, no-show), time zone, place or telehealth link and \
                 reason. Kept seven years, as the record of the visits made.",
                vec![Source::Provider, Source::Subject],
                vec![
                    Purpose::Treatment,
                    Purpose::Operations,
                    Purpose::SubjectRequest,
                ],
                &[
                    "your care team",
                    "your practice's administrators",
                    "you",
                    "hosting sub-processor",
                ],
                medical_record(),
            ),
            entry(
                DataCategory::Communications,
                "Secure messages between you and your care team, with who wrote each. \
                 Messages about your care are part of your medical record, and are kept \
                 seven years with it.",
                vec![Source::Subject, Source::Provider],
                vec![Purpose::Treatment, Purpose::SubjectRequest],
                &["your care team", "you", "hosting sub-processor"],
                medical_record(),
            ),
            entry(
                DataCategory::AccessLog,
                "Break-glass grants: who outside your care team opened your records in an \
                 emergency, when, for how long and the reason they gave. Kept six years, as \
                 HIPAA requires of the documentation of emergency access.",
                vec![Source::Provider, Source::System],
                vec![Purpose::Oversight, Purpose::SubjectRequest],
                &[
                    "your practice's administrators and privacy officer",
                    "you",
                    "hosting sub-processor",
                ],
                Retention::Period {
                    days: ACCESS_REVIEW_DAYS,
                    ground: ACCESS_REVIEW_GROUND,
                },
            ),
        ]
    }

    async fn export(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ExportedRecord>, PersonalDataError> {
        let held = self
            .repo
            .subject_holdings(subject)
            .await
            .map_err(unavailable)?;
        let mut out = Vec::new();
        for record in &held.records {
            let earlier: Vec<&RecordVersion> = held
                .versions
                .iter()
                .filter(|(id, _)| *id == record.id)
                .map(|(_, v)| v)
                .collect();
            out.push(ExportedRecord {
                category: record.kind().category(),
                resource: ResourceRef::new(record.kind().as_str(), record.id),
                created_at: record.created_at,
                data: record_json(record, &earlier),
            });
        }
        for a in &held.appointments {
            out.push(ExportedRecord {
                category: DataCategory::Appointments,
                resource: ResourceRef::new(resource::APPOINTMENT, a.id),
                created_at: a.created_at,
                data: json!({
                    "organisation": a.client.organisation,
                    "provider": a.provider,
                    "starts_at": a.starts_at,
                    "ends_at": a.ends_at,
                    "status": a.status.as_str(),
                    "details": a.details,
                    "version": a.version,
                    "created_at": a.created_at,
                    "created_by": a.created_by,
                }),
            });
        }
        for m in &held.care_team {
            out.push(ExportedRecord {
                category: DataCategory::Profile,
                resource: ResourceRef::new("care_team_member", m.provider.as_uuid()),
                created_at: m.added_at,
                data: json!({
                    "organisation": m.organisation,
                    "provider": m.provider,
                    "starts_on": m.starts_on,
                    "ends_on": m.ends_on,
                    "added_by": m.added_by,
                    "added_at": m.added_at,
                }),
            });
        }
        for g in &held.break_glass {
            out.push(ExportedRecord {
                category: DataCategory::AccessLog,
                resource: ResourceRef::new(resource::BREAK_GLASS, g.id),
                created_at: g.granted_at,
                data: json!({
                    "organisation": g.client.organisation,
                    "holder": g.holder,
                    "reason": g.reason,
                    "granted_at": g.granted_at,
                    "expires_at": g.expires_at,
                }),
            });
        }
        // The same holdings as FHIR R4, when there are any: one `collection` Bundle (a Patient, the
        // records, appointments and messages, and the practitioners they name).
        if !held.records.is_empty() || !held.appointments.is_empty() {
            let resources = crate::fhir::resources(&held, ctx.at().date_naive());
            out.push(ExportedRecord {
                category: DataCategory::HealthRecord,
                resource: ResourceRef::new(FHIR_BUNDLE, subject.as_uuid()),
                created_at: ctx.at(),
                data: crate::fhir::bundle(resources),
            });
        }
        Ok(out)
    }

    async fn rectify(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        change: Rectification,
    ) -> Result<(), PersonalDataError> {
        let Some(kind) = RecordKind::parse(change.resource.kind) else {
            return Err(PersonalDataError::NotFound);
        };
        let correctable = kind.amendable()
            || (kind == RecordKind::Adherence
                && ADHERENCE_CORRECTIONS.contains(&change.field.as_str()));
        if !correctable {
            return Err(PersonalDataError::Invalid(Cow::Borrowed(
                "only a field of the health record, or the day, pain or comment of an \
                 adherence log, is corrected this way; messages, amendments and programs are \
                 not",
            )));
        }
        let held = self
            .repo
            .subject_holdings(subject)
            .await
            .map_err(unavailable)?;
        let current = held
            .records
            .into_iter()
            .find(|r| r.id == change.resource.id && r.kind() == kind)
            .ok_or(PersonalDataError::NotFound)?;
        let body = current
            .body
            .with_field(&change.field, change.value, ctx.at().date_naive())
            .map_err(|e| PersonalDataError::Invalid(Cow::Owned(e.to_string())))?;
        let corrected = Record {
            version: current.version + 1,
            body,
            updated_at: ctx.at(),
            updated_by: ctx.actor().user().unwrap_or(current.client.user),
            ..current.clone()
        };
        self.repo
            .update_records(&[(&corrected, current.version)])
            .await
            .map_err(unavailable)
    }

    async fn erase(
        &self,
        _ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ErasureOutcome>, PersonalDataError> {
        let erased = self
            .repo
            .erase_subject(subject)
            .await
            .map_err(unavailable)?;
        Ok(erased
            .into_iter()
            .map(|e| ErasureOutcome {
                category: e.category,
                resource: ResourceRef::new(e.kind, e.id),
                fate: RecordFate::Deleted,
            })
            .collect())
    }

    async fn restrict(
        &self,
        _ctx: &RequestContext,
        subject: SubjectId,
        scope: RestrictionScope,
        lift: bool,
    ) -> Result<(), PersonalDataError> {
        let described: Vec<DataCategory> = self.describe().iter().map(|e| e.category).collect();
        let current = match self
            .repo
            .subject_holdings(subject)
            .await
            .map_err(unavailable)?
            .client
        {
            Some(client) => self
                .repo
                .client(client.organisation, client.user)
                .await
                .map_err(unavailable)?
                .map(|access| access.restricted)
                .unwrap_or_default(),
            None => Restriction::None,
        };
        let restriction = match (scope, lift) {
            (RestrictionScope::All, false) => Restriction::All,
            (RestrictionScope::All, true) => Restriction::None,
            (RestrictionScope::Categories(_), false) if current == Restriction::All => {
                Restriction::All
            }
            (RestrictionScope::Categories(added), false) => {
                let mut list = restricted_categories(&current, &described);
                for category in added {
                    if !list.contains(&category) {
                        list.push(category);
                    }
                }
                Restriction::from_list(list)
            }
            (RestrictionScope::Categories(lifted), true) => Restriction::from_list(
                restricted_categories(&current, &described)
                    .into_iter()
                    .filter(|c| !lifted.contains(c))
                    .collect(),
            ),
        };
        self.repo
            .set_restriction(subject, &restriction)
            .await
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryRepository;
    use crate::model::{
        Appointment, AppointmentDetails, AppointmentStatus, BreakGlassGrant, CareTeamMember,
        ClientIdentity, ClientRef, RecordBody,
    };
    use crate::values::{Text, TimeZone};
    use chrono::{DateTime, Duration, Utc};
    use kernel::personal_data::Rectification;
    use kernel::{Actor, ClientInfo, OrganisationId, RequestId, Role, RoleSet, UserId};
    use uuid::Uuid;

    struct Fixture {
        repo: Arc<MemoryRepository>,
        port: ClinicalPersonalData,
        client: ClientRef,
        provider: UserId,
        now: DateTime<Utc>,
    }

    fn fixture() -> Fixture {
        let repo = Arc::new(MemoryRepository::new());
        let organisation = OrganisationId::new();
        let client = ClientRef {
            user: UserId::new(),
            subject: SubjectId::new(),
            organisation,
            home_organisation: organisation,
        };
        repo.add_client(
            client,
            ClientIdentity {
                name: "Ada Client".to_owned(),
                email: "ada@example.org".to_owned(),
                phone: None,
                birth_date: None,
            },
        );
        let provider = UserId::new();
        repo.add_provider(organisation, provider);
        let now = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        Fixture {
            port: ClinicalPersonalData::new(repo.clone()),
            repo,
            client,
            provider,
            now,
        }
    }

    impl Fixture {
        fn ctx(&self, actor: Actor) -> RequestContext {
            RequestContext::new(
                actor,
                Some(self.client.organisation),
                Purpose::SubjectRequest,
                RequestId::new(),
                ClientInfo::default(),
                self.now,
            )
        }

        fn privacy_officer(&self) -> (UserId, RequestContext) {
            let user = UserId::new();
            let actor = Actor::Member {
                user,
                roles: RoleSet::only(Role::PrivacyOfficer),
            };
            (user, self.ctx(actor))
        }

        async fn write(&self, kind: RecordKind, body: Value) -> Record {
            let record = Record {
                id: Uuid::now_v7(),
                client: self.client,
                version: 1,
                body: RecordBody::from_json(kind, body).expect("valid"),
                created_at: self.now,
                created_by: self.provider,
                updated_at: self.now,
                updated_by: self.provider,
            };
            self.repo.insert_record(&record).await.expect("inserted");
            record
        }

        async fn medication(&self) -> Record {
            self.write(
                RecordKind::Medication,
                json!({"name": "Ibuprofen", "dose": "400 mg", "frequency": "daily", "status": "active"}),
            )
            .await
        }

        /// One of everything the context holds about the client.
        async fn populate(&self) -> Record {
            let medication = self.medication().await;
            let v2 = Record {
                version: 2,
                body: RecordBody::from_json(
                    RecordKind::Medication,
                    json!({"name": "Ibuprofen", "dose": "200 mg", "frequency": "daily", "status": "active"}),
                )
                .expect("valid"),
                updated_at: self.now + Duration::hours(1),
                ..medication.clone()
            };
            self.repo
                .update_records(&[(&v2, 1)])
                .await
                .expect("updated");
            self.write(
                RecordKind::Condition,
                json!({"text": "Low back pain", "code": {"system": "icd-10", "code": "M54.5"}, "status": "active"}),
            )
            .await;
            self.write(
                RecordKind::Message,
                json!({"sender": self.provider, "text": "How is the back?"}),
            )
            .await;
            self.repo
                .book(&Appointment {
                    id: Uuid::now_v7(),
                    client: self.client,
                    provider: self.provider,
                    starts_at: self.now + Duration::days(1),
                    ends_at: self.now + Duration::days(1) + Duration::hours(1),
                    status: AppointmentStatus::Booked,
                    details: AppointmentDetails {
                        time_zone: TimeZone::parse("America/Chicago").expect("valid"),
                        location: Some(Text::parse("Room 2").expect("valid")),
                        telehealth_url: None,
                        reason: None,
                    },
                    version: 1,
                    created_at: self.now,
                    created_by: self.provider,
                })
                .await
                .expect("booked");
            self.repo
                .add_care_team_member(&CareTeamMember {
                    client: self.client.user,
                    provider: self.provider,
                    organisation: self.client.organisation,
                    starts_on: self.now.date_naive(),
                    ends_on: None,
                    added_by: self.provider,
                    added_at: self.now,
                })
                .await
                .expect("added");
            self.repo
                .grant_break_glass(&BreakGlassGrant {
                    id: Uuid::now_v7(),
                    client: self.client,
                    holder: UserId::new(),
                    reason: Text::parse("Unconscious in the waiting room").expect("valid"),
                    granted_at: self.now,
                    expires_at: self.now + Duration::minutes(30),
                })
                .await
                .expect("granted");
            self.repo
                .set_restriction(self.client.subject, &Restriction::All)
                .await
                .expect("restricted");
            v2
        }

        async fn restriction(&self) -> Restriction {
            self.repo
                .client(self.client.organisation, self.client.user)
                .await
                .expect("read")
                .expect("a client")
                .restricted
        }
    }

    #[tokio::test]
    async fn the_data_map_describes_every_category_stored_or_erased() {
        let f = fixture();
        let map = f.port.describe();
        let described: Vec<DataCategory> = map.iter().map(|e| e.category).collect();
        let mut unique = described.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), described.len(), "one entry per category");
        for kind in RecordKind::ALL {
            assert!(described.contains(&kind.category()), "{}", kind.as_str());
        }
        for e in &map {
            assert!(!e.sources.is_empty() && !e.purposes.is_empty() && !e.recipients.is_empty());
            match &e.retention {
                Retention::Period { days, ground } => {
                    assert!(*days >= 6 * 365, "{}", e.category);
                    assert!(!ground.citation.is_empty() && !ground.statement.is_empty());
                }
                Retention::WhileActive => panic!("{} needs a period", e.category),
            }
        }
        f.populate().await;
        let erased = f
            .port
            .erase(&f.privacy_officer().1, f.client.subject)
            .await
            .expect("erased");
        for kind in [
            "appointment",
            "care_team_member",
            "break_glass_grant",
            "restriction",
        ] {
            assert!(erased.iter().any(|o| o.resource.kind == kind), "{kind}");
        }
        for outcome in erased {
            assert!(
                described.contains(&outcome.category),
                "{} is erased but not described",
                outcome.category
            );
        }
    }

    #[tokio::test]
    async fn the_export_holds_every_record_with_its_history_appointments_team_and_grants() {
        let f = fixture();
        let medication = f.populate().await;
        let (_, ctx) = f.privacy_officer();
        let export = f.port.export(&ctx, f.client.subject).await.expect("export");
        let kinds: Vec<&str> = export.iter().map(|r| r.resource.kind).collect();
        for kind in [
            "medication",
            "condition",
            "message",
            "appointment",
            "care_team_member",
            "break_glass_grant",
        ] {
            assert_eq!(kinds.iter().filter(|k| **k == kind).count(), 1, "{kind}");
        }
        let med = export
            .iter()
            .find(|r| r.resource.id == medication.id)
            .expect("the medication");
        assert_eq!(med.category, DataCategory::Medications);
        assert_eq!(med.created_at, f.now);
        assert_eq!(med.data["kind"], "medication");
        assert_eq!(med.data["version"], 2);
        assert_eq!(med.data["body"]["dose"], "200 mg");
        assert_eq!(med.data["versions"].as_array().expect("list").len(), 1);
        assert_eq!(med.data["versions"][0]["version"], 1);
        assert_eq!(med.data["versions"][0]["body"]["dose"], "400 mg");
        let appointment = export
            .iter()
            .find(|r| r.resource.kind == "appointment")
            .expect("appointment");
        assert_eq!(appointment.category, DataCategory::Appointments);
        assert_eq!(appointment.data["details"]["time_zone"], "America/Chicago");
        assert_eq!(appointment.data["status"], "booked");
        let team = export
            .iter()
            .find(|r| r.resource.kind == "care_team_member")
            .expect("team");
        assert_eq!(team.resource.id, f.provider.as_uuid());
        assert_eq!(team.data["provider"], f.provider.to_string());
        let grant = export
            .iter()
            .find(|r| r.resource.kind == "break_glass_grant")
            .expect("grant");
        assert_eq!(grant.category, DataCategory::AccessLog);
        assert_eq!(grant.data["reason"], "Unconscious in the waiting room");
        // Someone else's export is empty.
        assert!(
            f.port
                .export(&ctx, SubjectId::new())
                .await
                .expect("export")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_correction_is_a_new_version_and_the_old_one_stays() {
        let f = fixture();
        let medication = f.medication().await;
        let (officer, ctx) = f.privacy_officer();
        let fix = |field: &str, value: Value| Rectification {
            resource: ResourceRef::new("medication", medication.id),
            field: field.to_owned(),
            value,
        };
        f.port
            .rectify(&ctx, f.client.subject, fix("dose", json!("200 mg")))
            .await
            .expect("corrected");
        let now = f
            .repo
            .record(&f.client, medication.id)
            .await
            .expect("read")
            .expect("there");
        assert_eq!(now.version, 2);
        assert_eq!(now.body.to_json()["dose"], "200 mg");
        assert_eq!(now.updated_by, officer);
        assert_eq!(now.created_by, f.provider);
        let versions = f
            .repo
            .record_versions(&f.client, medication.id)
            .await
            .expect("versions");
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0].body, medication.body);

        // A request of Custodia itself is written in the client's name.
        let system = RequestContext::system("rights", Purpose::SubjectRequest, f.now);
        f.port
            .rectify(
                &system,
                f.client.subject,
                fix("frequency", json!("twice daily")),
            )
            .await
            .expect("corrected");
        let now = f
            .repo
            .record(&f.client, medication.id)
            .await
            .expect("read")
            .expect("there");
        assert_eq!((now.version, now.updated_by), (3, f.client.user));

        for (field, value) in [("colour", json!("red")), ("status", json!("sometimes"))] {
            let refused = f
                .port
                .rectify(&ctx, f.client.subject, fix(field, value))
                .await;
            assert!(
                matches!(refused, Err(PersonalDataError::Invalid(_))),
                "{field}"
            );
        }
        let wrong_kind = Rectification {
            resource: ResourceRef::new("condition", medication.id),
            ..fix("dose", json!("1 mg"))
        };
        let unknown = Rectification {
            resource: ResourceRef::new("medication", Uuid::now_v7()),
            ..fix("dose", json!("1 mg"))
        };
        let not_a_record = Rectification {
            resource: ResourceRef::new("appointment", medication.id),
            ..fix("dose", json!("1 mg"))
        };
        for change in [wrong_kind, unknown, not_a_record] {
            assert!(matches!(
                f.port.rectify(&ctx, f.client.subject, change).await,
                Err(PersonalDataError::NotFound)
            ));
        }
        assert!(matches!(
            f.port
                .rectify(&ctx, SubjectId::new(), fix("dose", json!("1 mg")))
                .await,
            Err(PersonalDataError::NotFound)
        ));
        let message = f
            .write(
                RecordKind::Message,
                json!({"sender": f.provider, "text": "Hello"}),
            )
            .await;
        let change = Rectification {
            resource: ResourceRef::new("message", message.id),
            field: "sender".to_owned(),
            value: json!(f.client.user),
        };
        assert!(matches!(
            f.port.rectify(&ctx, f.client.subject, change).await,
            Err(PersonalDataError::Invalid(_))
        ));
        // An adherence log's pain is the client's to correct; the program it
        // follows is not changed this way.
        let log = f
            .write(
                RecordKind::Adherence,
                json!({"program": Uuid::now_v7(), "program_version": 1,
                       "performed_on": "2026-11-20", "completed": [0], "pain": 7}),
            )
            .await;
        let fix_log = |field: &str, value: Value| Rectification {
            resource: ResourceRef::new("adherence_log", log.id),
            field: field.to_owned(),
            value,
        };
        f.port
            .rectify(&ctx, f.client.subject, fix_log("pain", json!(4)))
            .await
            .expect("corrected");
        for (field, value) in [
            ("pain", json!(12)),
            ("program", json!(Uuid::now_v7())),
            ("program_version", json!(2)),
        ] {
            assert!(
                matches!(
                    f.port
                        .rectify(&ctx, f.client.subject, fix_log(field, value))
                        .await,
                    Err(PersonalDataError::Invalid(_))
                ),
                "{field}"
            );
        }
        let log_now = f
            .repo
            .record(&f.client, log.id)
            .await
            .expect("read")
            .expect("there");
        assert_eq!(log_now.version, 2);
        assert_eq!(log_now.body.to_json()["pain"], 4);
        assert_eq!(
            log_now.body.to_json()["program"],
            log.body.to_json()["program"]
        );
        assert_eq!(
            f.repo
                .record(&f.client, medication.id)
                .await
                .expect("read")
                .expect("there")
                .version,
            3,
            "no refused correction was written"
        );
    }

    #[tokio::test]
    async fn erasure_deletes_everything_and_is_idempotent() {
        let f = fixture();
        f.populate().await;
        let (_, ctx) = f.privacy_officer();
        let outcomes = f.port.erase(&ctx, f.client.subject).await.expect("erased");
        // Three records, an appointment, a membership, a grant and the restriction.
        assert_eq!(outcomes.len(), 7);
        assert!(outcomes.iter().all(|o| o.fate == RecordFate::Deleted));
        assert!(
            f.port
                .export(&ctx, f.client.subject)
                .await
                .expect("export")
                .is_empty()
        );
        assert_eq!(f.restriction().await, Restriction::None);
        assert!(
            f.port
                .erase(&ctx, f.client.subject)
                .await
                .expect("again")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn restrictions_add_up_and_lifting_one_category_keeps_the_others() {
        let f = fixture();
        let (_, ctx) = f.privacy_officer();
        let subject = f.client.subject;
        let categories = |list: &[DataCategory]| RestrictionScope::Categories(list.to_vec());
        f.port
            .restrict(
                &ctx,
                subject,
                categories(&[DataCategory::HealthRecord]),
                false,
            )
            .await
            .expect("restricted");
        f.port
            .restrict(
                &ctx,
                subject,
                categories(&[DataCategory::Medications]),
                false,
            )
            .await
            .expect("restricted");
        assert_eq!(
            f.restriction().await,
            Restriction::Categories(vec![DataCategory::HealthRecord, DataCategory::Medications])
        );
        f.port
            .restrict(
                &ctx,
                subject,
                categories(&[DataCategory::HealthRecord]),
                true,
            )
            .await
            .expect("lifted");
        assert_eq!(
            f.restriction().await,
            Restriction::Categories(vec![DataCategory::Medications])
        );
        f.port
            .restrict(&ctx, subject, RestrictionScope::All, false)
            .await
            .expect("restricted");
        assert_eq!(f.restriction().await, Restriction::All);
        // Lifting one category of "all" leaves every other described one.
        f.port
            .restrict(
                &ctx,
                subject,
                categories(&[DataCategory::Appointments]),
                true,
            )
            .await
            .expect("lifted");
        let left = f.restriction().await;
        assert!(!left.covers(DataCategory::Appointments));
        assert!(left.covers(DataCategory::HealthRecord) && left.covers(DataCategory::AccessLog));
        f.port
            .restrict(&ctx, subject, RestrictionScope::All, true)
            .await
            .expect("lifted");
        assert_eq!(f.restriction().await, Restriction::None);
    }
}
