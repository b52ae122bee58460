//! The clinical export's FHIR mapping (`clinical::fhir`) against the R4 validator
//! (`tests::fhir`): holdings with a record of every kind, two versions of an
//! exercise program with adherence to each, appointments and messages both ways map
//! to resources that are valid R4 4.0.1 one by one and together in a Bundle whose
//! references resolve; and a mapping broken on purpose is refused, so the check can
//! fail.

use chrono::{DateTime, NaiveDate, Utc};
use clinical::fhir::{bundle, resources};
use clinical::model::{
    Address, Adherence, AdministrativeSex, Allergy, AllergyStatus, Amendment, AmendmentStatus,
    Appointment, AppointmentDetails, AppointmentStatus, BreakGlassGrant, CareTeamMember,
    ClientIdentity, ClientRef, Condition, ConditionStatus, Demographics, HistoryEntry, Medication,
    MedicationStatus, Message, PlanStatus, Program, ProgramItem, Record, RecordBody, RecordKind,
    RecordVersion, Severity, StatusNote, TreatmentPlan,
};
use clinical::ports::Holdings;
use clinical::{Code, CodeSystem, HttpsUrl, PainScore, Prescription, Text, TimeZone};
use kernel::{OrganisationId, SubjectId, UserId};
use serde_json::Value;
use tests::fhir::validate;
use uuid::Uuid;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a date")
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("an instant")
        .with_timezone(&Utc)
}

fn text<const N: usize>(s: &str) -> Text<N> {
    Text::parse(s).expect("valid text")
}

fn today() -> NaiveDate {
    day("2026-11-24")
}

/// A client's holdings, built record by record.
struct Chart {
    holdings: Holdings,
    client: ClientRef,
    provider: UserId,
    physio: UserId,
}

impl Chart {
    fn new() -> Self {
        let client = ClientRef {
            user: UserId::new(),
            subject: SubjectId::new(),
            organisation: OrganisationId::new(),
            home_organisation: OrganisationId::new(),
        };
        let (provider, physio) = (UserId::new(), UserId::new());
        let member = |who: UserId, starts: &str| CareTeamMember {
            client: client.user,
            provider: who,
            organisation: client.organisation,
            starts_on: day(starts),
            ends_on: None,
            added_by: provider,
            added_at: at("2026-01-05T08:00:00Z"),
        };
        let holdings = Holdings {
            client: Some(client),
            identity: Some(ClientIdentity {
                name: "Ana María de la Cruz".to_owned(),
                email: "ana@example.org".to_owned(),
                phone: Some("+14155550100".to_owned()),
                birth_date: Some(day("1988-07-14")),
            }),
            care_team: vec![member(provider, "2026-01-05"), member(physio, "2026-10-01")],
            break_glass: vec![BreakGlassGrant {
                id: Uuid::now_v7(),
                client,
                holder: UserId::new(),
                reason: text("Unconscious in the waiting room"),
                granted_at: at("2026-11-10T14:00:00Z"),
                expires_at: at("2026-11-10T15:00:00Z"),
            }],
            ..Holdings::default()
        };
        Self {
            holdings,
            client,
            provider,
            physio,
        }
    }

    fn add(&mut self, body: RecordBody, by: UserId, created: &str) -> Uuid {
        let id = Uuid::now_v7();
        self.holdings.records.push(Record {
            id,
            client: self.client,
            version: 1,
            body,
            created_at: at(created),
            created_by: by,
            updated_at: at(created),
            updated_by: by,
        });
        id
    }

    /// A record of every kind, a program in two versions with adherence to both,
    /// two appointments and messages both ways.
    fn full() -> Self {
        let mut c = Self::new();
        let (provider, physio, client) = (c.provider, c.physio, c.client.user);
        c.add(
            RecordBody::Demographics(Demographics {
                sex: Some(AdministrativeSex::Female),
                gender_identity: Some(text("woman")),
                preferred_language: Some(text("es-MX")),
                address: Some(Address {
                    lines: vec![text("1 Main St"), text("Apt 2")],
                    city: Some(text("Springfield")),
                    region: Some(text("IL")),
                    postal_code: Some(text("62701")),
                    country: Some(text("US")),
                }),
            }),
            provider,
            "2026-01-05T08:10:00Z",
        );
        let back_pain = c.add(
            RecordBody::Condition(Condition {
                text: text("Low back pain"),
                code: Some(Code::parse(CodeSystem::Icd10, "M54.5").expect("ICD-10")),
                status: ConditionStatus::Active,
                onset: Some(day("2025-12-20")),
            }),
            provider,
            "2026-01-05T08:20:00Z",
        );
        c.add(
            RecordBody::Condition(Condition {
                text: text("Asthma"),
                code: Some(Code::parse(CodeSystem::SnomedCt, "195967001").expect("SNOMED CT")),
                status: ConditionStatus::Remission,
                onset: None,
            }),
            provider,
            "2026-01-05T08:21:00Z",
        );
        c.add(
            RecordBody::HistoryEntry(HistoryEntry {
                text: text("ACL reconstruction, left knee"),
                occurred_on: Some(day("2019-05-01")),
            }),
            provider,
            "2026-01-05T08:25:00Z",
        );
        c.add(
            RecordBody::StatusNote(StatusNote {
                text: text("Sleeping better; walking 30 minutes a day"),
            }),
            physio,
            "2026-11-03T10:00:00.250Z",
        );
        c.add(
            RecordBody::Medication(Medication {
                name: text("Ibuprofen"),
                dose: text("400 mg"),
                frequency: text("twice daily"),
                status: MedicationStatus::OnHold,
            }),
            provider,
            "2026-01-05T08:30:00Z",
        );
        c.add(
            RecordBody::Allergy(Allergy {
                substance: text("Penicillin"),
                reaction: Some(text("Hives")),
                severity: Some(Severity::Moderate),
                status: AllergyStatus::Active,
            }),
            provider,
            "2026-01-05T08:31:00Z",
        );
        c.add(
            RecordBody::Allergy(Allergy {
                substance: text("Latex"),
                reaction: None,
                severity: Some(Severity::Severe),
                status: AllergyStatus::Active,
            }),
            provider,
            "2026-01-05T08:32:00Z",
        );
        c.add(
            RecordBody::TreatmentPlan(TreatmentPlan {
                title: text("Back rehabilitation"),
                goals: vec![text("Walk 5 km without pain"), text("Return to work")],
                interventions: vec![text("Manual therapy weekly"), text("Education")],
                status: PlanStatus::Active,
            }),
            physio,
            "2026-10-01T09:00:00Z",
        );

        let (bridge, squat, plank, lunge) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let item = |exercise, name: &str, reps: i64, hold: i64, notes: Option<&str>| ProgramItem {
            exercise,
            name: text(name),
            prescription: Prescription::new(3, reps, hold, 5).expect("a prescription"),
            notes: notes.map(text),
        };
        let first = Program {
            title: text("Lower back, weeks 1-2"),
            items: vec![
                item(bridge, "Bridge", 10, 5, Some("Keep the hips level")),
                item(squat, "Squat", 10, 0, None),
                item(lunge, "Lunge", 8, 0, None),
            ],
            starts_on: day("2026-11-01"),
            ends_on: Some(day("2026-12-31")),
        };
        let second = Program {
            title: text("Lower back, weeks 3-8"),
            items: vec![
                item(plank, "Plank", 0, 30, None),
                item(bridge, "Bridge", 12, 5, Some("Keep the hips level")),
                item(squat, "Squat", 12, 0, None),
            ],
            ..first.clone()
        };
        let program = c.add(RecordBody::Program(second), physio, "2026-10-31T16:00:00Z");
        let record = c.holdings.records.last_mut().expect("the program");
        record.version = 2;
        record.updated_at = at("2026-11-12T16:00:00Z");
        c.holdings.versions.push((
            program,
            RecordVersion {
                version: 1,
                body: RecordBody::Program(first),
                at: at("2026-10-31T16:00:00Z"),
                by: physio,
            },
        ));
        let log = |version, on: &str, completed: Vec<u16>, pain, comment: Option<&str>| {
            RecordBody::Adherence(Adherence {
                program,
                program_version: version,
                performed_on: day(on),
                completed,
                pain: PainScore::new(pain).expect("a pain score"),
                comment: comment.map(text),
            })
        };
        c.add(
            log(1, "2026-11-03", vec![0, 1, 2], 4, Some("Knee ached")),
            client,
            "2026-11-03T19:00:00Z",
        );
        c.add(
            log(1, "2026-11-05", vec![0], 3, None),
            client,
            "2026-11-05T19:00:00Z",
        );
        c.add(
            log(2, "2026-11-14", vec![0, 1], 2, Some("Plank is hard")),
            client,
            "2026-11-14T19:00:00Z",
        );

        c.add(
            RecordBody::Message(Message {
                sender: client,
                text: text("Can I skip the lunges this week?"),
            }),
            client,
            "2026-11-06T07:30:00Z",
        );
        c.add(
            RecordBody::Message(Message {
                sender: physio,
                text: text("Yes, and from next week they are gone."),
            }),
            physio,
            "2026-11-06T09:00:00Z",
        );
        c.add(
            RecordBody::Amendment(Amendment {
                target: back_pain,
                target_kind: RecordKind::Condition,
                field: "text".to_owned(),
                proposed: serde_json::json!("Lower back pain, right side"),
                reason: text("It is on the right"),
                status: AmendmentStatus::Proposed,
                decided_by: None,
                decided_at: None,
                applied_version: None,
                denial_reason: None,
                disagreement: None,
            }),
            client,
            "2026-11-07T10:00:00Z",
        );

        let appointment = |starts: &str, ends: &str, status, details| Appointment {
            id: Uuid::now_v7(),
            client: c.client,
            provider: physio,
            starts_at: at(starts),
            ends_at: at(ends),
            status,
            details,
            version: 1,
            created_at: at("2026-10-20T12:00:00Z"),
            created_by: provider,
        };
        c.holdings.appointments = vec![
            appointment(
                "2026-11-02T09:00:00-06:00",
                "2026-11-02T09:45:00-06:00",
                AppointmentStatus::Fulfilled,
                AppointmentDetails {
                    time_zone: TimeZone::parse("America/Chicago").expect("a zone"),
                    location: Some(text("Room 3, Springfield clinic")),
                    telehealth_url: None,
                    reason: Some(text("Initial assessment")),
                },
            ),
            appointment(
                "2026-12-01T15:00:00Z",
                "2026-12-01T15:30:00Z",
                AppointmentStatus::Booked,
                AppointmentDetails {
                    time_zone: TimeZone::parse("America/Chicago").expect("a zone"),
                    location: None,
                    telehealth_url: Some(
                        HttpsUrl::parse("https://meet.example.org/room/42").expect("a link"),
                    ),
                    reason: Some(text("Progress review")),
                },
            ),
        ];
        c
    }
}

fn of_type<'a>(resources: &'a [Value], resource_type: &str) -> Vec<&'a Value> {
    resources
        .iter()
        .filter(|r| r["resourceType"] == resource_type)
        .collect()
}

#[test]
fn a_full_chart_maps_to_valid_r4_resources_and_a_resolving_bundle() {
    let chart = Chart::full();
    let mapped = resources(&chart.holdings, today());

    let count = |t| of_type(&mapped, t).len();
    assert_eq!(count("Patient"), 1);
    assert_eq!(count("Condition"), 3, "two conditions and a history entry");
    assert_eq!(count("Observation"), 1);
    assert_eq!(count("MedicationStatement"), 1);
    assert_eq!(count("AllergyIntolerance"), 2);
    assert_eq!(count("CarePlan"), 2, "the treatment plan and the program");
    assert_eq!(count("Appointment"), 2);
    assert_eq!(count("Communication"), 2);
    assert_eq!(count("Practitioner"), 2);
    assert_eq!(
        mapped.len(),
        16,
        "amendments and adherence logs are no resources"
    );

    let program = of_type(&mapped, "CarePlan")
        .into_iter()
        .find(|p| p["title"] == "Lower back, weeks 3-8")
        .expect("the program's current version");
    let progress: usize = program["activity"]
        .as_array()
        .expect("activities")
        .iter()
        .map(|a| a["progress"].as_array().map_or(0, Vec::len))
        .sum();
    // Plank: version 2's log; bridge and squat: all three logs.
    assert_eq!(progress, 1 + 3 + 3);

    // Every resource alone, then all of them in one Bundle.
    if let Err(report) = validate(&mapped) {
        panic!("the mapped resources are not valid FHIR R4:\n{report}");
    }
    let collection = bundle(mapped.clone());
    if let Err(report) = validate(std::slice::from_ref(&collection)) {
        panic!("the Bundle is not valid FHIR R4:\n{report}");
    }
    assert_eq!(
        collection["entry"].as_array().map(Vec::len),
        Some(mapped.len())
    );
}

#[test]
fn a_chart_with_only_a_client_maps_to_a_valid_patient() {
    let mut chart = Chart::new();
    chart.holdings.identity = None;
    let mapped = resources(&chart.holdings, today());
    assert_eq!(mapped.len(), 1);
    assert_eq!(mapped[0]["resourceType"], "Patient");
    if let Err(report) = validate(&[mapped[0].clone(), bundle(mapped)]) {
        panic!("a bare Patient is not valid FHIR R4:\n{report}");
    }
}

#[test]
fn the_validator_refuses_a_mapping_broken_on_purpose() {
    let chart = Chart::full();
    let mapped = resources(&chart.holdings, today());

    // A MedicationStatement without its required status.
    let mut medication = of_type(&mapped, "MedicationStatement")[0].clone();
    medication
        .as_object_mut()
        .expect("an object")
        .remove("status");
    let report = validate(&[medication]).expect_err("status is required");
    assert!(
        report.contains("MedicationStatement.status"),
        "the report names the element:\n{report}"
    );

    // A reaction without a manifestation.
    let mut allergy = of_type(&mapped, "AllergyIntolerance")[0].clone();
    allergy["reaction"][0]
        .as_object_mut()
        .expect("a reaction")
        .remove("manifestation");
    assert!(validate(&[allergy]).is_err(), "manifestation is 1..*");

    // A Bundle missing the Practitioners its resources refer to.
    let without: Vec<Value> = mapped
        .iter()
        .filter(|r| r["resourceType"] != "Practitioner")
        .cloned()
        .collect();
    let report = validate(&[bundle(without)]).expect_err("references dangle");
    assert!(
        report.contains("does not resolve"),
        "the report says why:\n{report}"
    );

    // A status from another value set.
    let mut appointment = of_type(&mapped, "Appointment")[0].clone();
    appointment["status"] = Value::from("active");
    assert!(validate(&[appointment]).is_err());
}
