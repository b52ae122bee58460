//! The FHIR R4 validator the export tests rely on (`tests::fhir`): a minimal
//! R4-correct example of every resource type the export maps to passes, alone and in
//! a collection Bundle whose entries refer to each other; and each mistake below,
//! made to one of those valid examples, fails. So a passing export test means
//! something.

use serde_json::{Value, json};
use tests::fhir::validate;

const PATIENT: &str = "urn:uuid:6f1c1d2e-0b7a-4c53-9a55-3f1e7c2b9a01";
const CONDITION: &str = "urn:uuid:0d5e7a41-2c38-4f0b-8e7d-b2a1c9f4d602";
const SNOMED_CONDITION: &str = "urn:uuid:51a9c0e3-7d24-4b6e-a0f8-c3d2e1b4a703";
const MEDICATION: &str = "urn:uuid:9b8a7c6d-5e4f-4321-8fed-cba987654304";
const ALLERGY: &str = "urn:uuid:2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a05";
const CARE_PLAN: &str = "urn:uuid:7a6b5c4d-3e2f-4109-8a7b-6c5d4e3f2a06";
const APPOINTMENT: &str = "urn:uuid:c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e07";
const COMMUNICATION: &str = "urn:uuid:f0e1d2c3-b4a5-4968-8776-5a4b3c2d1e08";

const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "example",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.4.1", "value": "000-00-0000"}],
        "active": true,
        "name": [{"use": "official", "family": "Example", "given": ["Alex"]}],
        "telecom": [{"system": "email", "value": "alex@example.org", "use": "home"}],
        "gender": "other",
        "birthDate": "1980-02-29"
    })
}

fn condition_icd10(patient: &str) -> Value {
    json!({
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": "confirmed"
        }]},
        "code": {"coding": [{
            "system": "http://hl7.org/fhir/sid/icd-10",
            "code": "M54.5",
            "display": "Low back pain"
        }]},
        "subject": {"reference": patient},
        "onsetDateTime": "2026-01-10",
        "recordedDate": "2026-01-12T09:30:00+01:00"
    })
}

fn condition_snomed(patient: &str) -> Value {
    json!({
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "resolved"}]},
        "code": {"coding": [{
            "system": "http://snomed.info/sct",
            "code": "44465007",
            "display": "Sprain of ankle"
        }]},
        "subject": {"reference": patient},
        "abatementDateTime": "2026-02-01"
    })
}

fn medication_statement(patient: &str, reason: &str) -> Value {
    json!({
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {"text": "Ibuprofen 400 mg tablet"},
        "subject": {"reference": patient},
        "reasonReference": [{"reference": reason}],
        "dosage": [{
            "text": "One tablet three times a day",
            "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}
        }]
    })
}

fn allergy_intolerance(patient: &str) -> Value {
    json!({
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "code": "active"
        }]},
        "category": ["medication"],
        "criticality": "high",
        "code": {"text": "Penicillin"},
        "patient": {"reference": patient}
    })
}

/// An exercise program: its exercises are the plan's activities.
fn care_plan(patient: &str, addresses: &str) -> Value {
    json!({
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "title": "Home exercises for the lower back",
        "subject": {"reference": patient},
        "period": {"start": "2026-01-12", "end": "2026-03-12"},
        "addresses": [{"reference": addresses}],
        "activity": [
            {"detail": {
                "kind": "ServiceRequest",
                "description": "Glute bridges: 3 sets of 10",
                "status": "in-progress",
                "scheduledTiming": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
            }},
            {"detail": {"description": "Walk for 20 minutes", "status": "not-started"}}
        ]
    })
}

fn appointment(patient: &str, reason: &str) -> Value {
    json!({
        "resourceType": "Appointment",
        "status": "booked",
        "description": "Follow-up",
        "reasonReference": [{"reference": reason}],
        "start": "2026-03-01T10:00:00Z",
        "end": "2026-03-01T10:30:00Z",
        "participant": [
            {"actor": {"reference": patient}, "required": "required", "status": "accepted"},
            {"actor": {"reference": "Practitioner/therapist", "display": "Therapist"}, "status": "accepted"}
        ]
    })
}

fn communication(patient: &str, about: &str) -> Value {
    json!({
        "resourceType": "Communication",
        "status": "completed",
        "subject": {"reference": patient},
        "about": [{"reference": about}],
        "sent": "2026-03-02T08:00:00Z",
        "payload": [{"contentString": "Your exercises for this week are ready."}]
    })
}

/// Every example on its own, referring to its patient as `Patient/example`.
fn standalone_examples() -> Vec<(&'static str, Value)> {
    let patient_ref = "Patient/example";
    vec![
        ("Patient", patient()),
        ("Condition (ICD-10)", condition_icd10(patient_ref)),
        ("Condition (SNOMED CT)", condition_snomed(patient_ref)),
        (
            "MedicationStatement",
            medication_statement(patient_ref, "Condition/back"),
        ),
        ("AllergyIntolerance", allergy_intolerance(patient_ref)),
        ("CarePlan", care_plan(patient_ref, "Condition/back")),
        ("Appointment", appointment(patient_ref, "Condition/back")),
        (
            "Communication",
            communication(patient_ref, "CarePlan/program"),
        ),
    ]
}

/// All examples in a collection Bundle, each entry with a `urn:uuid:` fullUrl and
/// the references between them made to those.
fn collection() -> Value {
    let entry =
        |full_url: &str, resource: Value| json!({"fullUrl": full_url, "resource": resource});
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": "2026-03-03T12:00:00Z",
        "entry": [
            entry(PATIENT, patient()),
            entry(CONDITION, condition_icd10(PATIENT)),
            entry(SNOMED_CONDITION, condition_snomed(PATIENT)),
            entry(MEDICATION, medication_statement(PATIENT, CONDITION)),
            entry(ALLERGY, allergy_intolerance(PATIENT)),
            entry(CARE_PLAN, care_plan(PATIENT, CONDITION)),
            entry(APPOINTMENT, appointment(PATIENT, CONDITION)),
            entry(COMMUNICATION, communication(PATIENT, CARE_PLAN)),
        ]
    })
}

/// The report of `resources`, which must be invalid.
#[track_caller]
fn report_of(resources: &[Value]) -> String {
    match validate(resources) {
        Ok(()) => panic!("the validator accepted an invalid resource"),
        Err(report) => report,
    }
}

/// Asserts the report has a problem of resource `index` at `path` whose message
/// contains `message`.
#[track_caller]
fn assert_problem(report: &str, index: usize, path: &str, message: &str) {
    let prefix = format!("resource {index} (");
    let at = format!(" at {path}: ");
    assert!(
        report
            .lines()
            .any(|line| line.starts_with(&prefix) && line.contains(&at) && line.contains(message)),
        "expected a problem of resource {index} at {path} saying {message:?}; the report:\n{report}"
    );
}

#[test]
fn every_exported_resource_type_has_a_valid_r4_example() {
    for (name, resource) in standalone_examples() {
        if let Err(report) = validate(&[resource]) {
            panic!("the {name} example is not valid R4:\n{report}");
        }
    }
}

#[test]
fn a_collection_bundle_of_all_of_them_referring_to_each_other_is_valid() {
    let bundle = collection();
    // The references do point inside the Bundle: the test below breaks one.
    assert_eq!(
        bundle["entry"][1]["resource"]["subject"]["reference"],
        PATIENT
    );
    if let Err(report) = validate(&[bundle]) {
        panic!("the collection Bundle is not valid R4:\n{report}");
    }
}

#[test]
fn a_condition_with_an_unknown_field_is_invalid() {
    let mut condition = condition_icd10("Patient/example");
    condition["diagnosisNote"] = json!("canary-diagnosis-7731");
    let report = report_of(&[condition]);
    assert_problem(&report, 0, "Condition.diagnosisNote", "unknown element");
    assert!(
        !report.contains("canary-diagnosis-7731"),
        "the report echoes a value:\n{report}"
    );
}

#[test]
fn a_medication_statement_without_status_is_invalid() {
    let mut statement = medication_statement("Patient/example", "Condition/back");
    statement
        .as_object_mut()
        .expect("an object")
        .remove("status");
    let report = report_of(&[statement]);
    assert_problem(&report, 0, "MedicationStatement.status", "field required");
}

#[test]
fn a_medication_statement_without_a_medication_is_invalid() {
    let mut statement = medication_statement("Patient/example", "Condition/back");
    statement
        .as_object_mut()
        .expect("an object")
        .remove("medicationCodeableConcept");
    let report = report_of(&[statement]);
    assert_problem(
        &report,
        0,
        "MedicationStatement",
        "medicationCodeableConcept",
    );
}

#[test]
fn an_appointment_participant_without_status_is_invalid() {
    let mut appointment = appointment("Patient/example", "Condition/back");
    appointment["participant"][1]
        .as_object_mut()
        .expect("an object")
        .remove("status");
    let report = report_of(&[appointment]);
    assert_problem(
        &report,
        0,
        "Appointment.participant[1].status",
        "field required",
    );
}

#[test]
fn a_bundle_with_a_broken_reference_is_invalid() {
    let mut bundle = collection();
    bundle["entry"][3]["resource"]["subject"]["reference"] =
        json!("urn:uuid:00000000-0000-4000-8000-000000000000");
    let report = report_of(&[bundle]);
    assert_problem(
        &report,
        0,
        "Bundle.entry[3].resource.subject.reference",
        "does not resolve to the fullUrl of any entry",
    );
}

#[test]
fn an_invalid_entry_makes_its_bundle_invalid() {
    let mut bundle = collection();
    bundle["entry"][6]["resource"]
        .as_object_mut()
        .expect("an object")
        .remove("participant");
    let report = report_of(&[bundle]);
    assert_problem(
        &report,
        0,
        "Bundle.entry[6].resource.participant",
        "field required",
    );
}

#[test]
fn an_unknown_resource_type_is_invalid() {
    let mut resource = condition_icd10("Patient/example");
    resource["resourceType"] = json!("Diagnosis");
    let report = report_of(&[resource]);
    assert_problem(&report, 0, "Resource", "not an R4 resource type");
}

#[test]
fn a_resource_type_of_another_fhir_version_is_invalid() {
    // R5 renamed MedicationStatement's medication[x] to a CodeableReference.
    let mut statement = medication_statement("Patient/example", "Condition/back");
    let object = statement.as_object_mut().expect("an object");
    object.remove("medicationCodeableConcept");
    object.insert(
        "medication".to_owned(),
        json!({"concept": {"text": "Ibuprofen 400 mg tablet"}}),
    );
    let report = report_of(&[statement]);
    assert_problem(
        &report,
        0,
        "MedicationStatement.medication",
        "unknown element",
    );
}

/// A mistake made to one valid example, and where and how the report names it.
struct Mistake {
    resource: Value,
    path: &'static str,
    message: &'static str,
}

fn mistake(resource: Value, path: &'static str, message: &'static str) -> Mistake {
    Mistake {
        resource,
        path,
        message,
    }
}

fn with(mut resource: Value, change: impl FnOnce(&mut Value)) -> Value {
    change(&mut resource);
    resource
}

fn remove(value: &mut Value, key: &str) {
    value.as_object_mut().expect("an object").remove(key);
}

/// The checks the validator adds to the fhir.resources model (docs/fhir.md).
fn mistakes() -> Vec<Mistake> {
    let p = "Patient/example";
    vec![
        // Strict JSON: the model alone coerces these.
        mistake(
            with(patient(), |r| r["active"] = json!("true")),
            "Patient.active",
            "must be JSON true or false",
        ),
        mistake(
            with(condition_icd10(p), |r| {
                r["code"]["coding"][0]["code"] = json!(545);
            }),
            "Condition.code.coding[0].code",
            "must be a JSON string",
        ),
        mistake(
            with(medication_statement(p, "Condition/back"), |r| {
                r["dosage"][0]["timing"]["repeat"]["frequency"] = json!(3.0);
            }),
            "MedicationStatement.dosage[0].timing.repeat.frequency",
            "must be a JSON integer",
        ),
        mistake(
            with(allergy_intolerance(p), |r| r["code"] = json!({})),
            "AllergyIntolerance.code",
            "empty object",
        ),
        mistake(
            with(allergy_intolerance(p), |r| r["category"] = json!([])),
            "AllergyIntolerance.category",
            "empty array",
        ),
        mistake(
            with(patient(), |r| r["gender"] = Value::Null),
            "Patient.gender",
            "null is not allowed",
        ),
        mistake(
            with(patient(), |r| r["birth_date"] = json!("1980-02-29")),
            "Patient.birth_date",
            "unknown element",
        ),
        mistake(
            with(patient(), |r| {
                r["name"][0]["resourceType"] = json!("HumanName");
            }),
            "Patient.name[0].resourceType",
            "only allowed on resources",
        ),
        // Primitive formats.
        mistake(
            with(condition_icd10(p), |r| {
                r["recordedDate"] = json!("2026-01-12T09:30:00");
            }),
            "Condition.recordedDate",
            "not a valid dateTime",
        ),
        mistake(
            with(patient(), |r| r["birthDate"] = json!("1981-02-29")),
            "Patient.birthDate",
            "not a calendar date",
        ),
        // Required bindings.
        mistake(
            with(care_plan(p, "Condition/back"), |r| {
                r["status"] = json!("Active");
            }),
            "CarePlan.status",
            "required value set",
        ),
        mistake(
            with(care_plan(p, "Condition/back"), |r| {
                r["activity"][0]["detail"]["kind"] = json!("Exercise");
            }),
            "CarePlan.activity[0].detail.kind",
            "required value set",
        ),
        mistake(
            with(communication(p, "CarePlan/program"), |r| {
                r["status"] = json!("sent");
            }),
            "Communication.status",
            "required value set",
        ),
        mistake(
            with(appointment(p, "Condition/back"), |r| {
                r["participant"][0]["status"] = json!("confirmed");
            }),
            "Appointment.participant[0].status",
            "required value set",
        ),
        mistake(
            with(condition_icd10(p), |r| {
                r["clinicalStatus"] = json!({"text": "active"});
            }),
            "Condition.clinicalStatus",
            "needs a coding from http://terminology.hl7.org/CodeSystem/condition-clinical",
        ),
        // Invariants.
        mistake(
            with(condition_icd10(p), |r| {
                r["abatementDateTime"] = json!("2026-02-01");
            }),
            "Condition",
            "con-4",
        ),
        mistake(
            with(allergy_intolerance(p), |r| remove(r, "clinicalStatus")),
            "AllergyIntolerance",
            "ait-1",
        ),
        mistake(
            with(care_plan(p, "Condition/back"), |r| {
                r["activity"][1]["reference"] = json!({"reference": "ServiceRequest/walk"});
            }),
            "CarePlan.activity[1]",
            "cpl-3",
        ),
        mistake(
            with(appointment(p, "Condition/back"), |r| {
                remove(&mut r["participant"][1], "actor");
            }),
            "Appointment.participant[1]",
            "app-1",
        ),
        mistake(
            with(appointment(p, "Condition/back"), |r| {
                remove(r, "start");
                remove(r, "end");
            }),
            "Appointment",
            "app-3",
        ),
        mistake(
            with(patient(), |r| remove(&mut r["telecom"][0], "system")),
            "Patient.telecom[0]",
            "cpt-2",
        ),
        mistake(
            with(care_plan(p, "Condition/back"), |r| {
                r["period"]["end"] = json!("2025-12-31");
            }),
            "CarePlan.period",
            "per-1",
        ),
        mistake(
            with(care_plan(p, "Condition/back"), |r| {
                remove(
                    &mut r["activity"][0]["detail"]["scheduledTiming"]["repeat"],
                    "periodUnit",
                );
            }),
            "CarePlan.activity[0].detail.scheduledTiming.repeat",
            "tim-2",
        ),
        // References.
        mistake(
            with(condition_icd10(p), |r| {
                r["subject"]["reference"] = json!("Practitioner/therapist");
            }),
            "Condition.subject.reference",
            "this element allows Patient | Group",
        ),
        mistake(
            with(condition_icd10(p), |r| {
                r["subject"]["reference"] = json!("patient example");
            }),
            "Condition.subject.reference",
            "not a Type/id",
        ),
        mistake(
            with(condition_icd10(p), |r| {
                r["subject"]["reference"] = json!("#someone");
            }),
            "Condition.subject.reference",
            "ref-1",
        ),
        // Bundles.
        mistake(
            with(collection(), |r| r["type"] = json!("export")),
            "Bundle.type",
            "required value set",
        ),
        mistake(
            with(collection(), |r| {
                r["entry"][2]["fullUrl"] = json!(CONDITION);
            }),
            "Bundle.entry[2].fullUrl",
            "bdl-7",
        ),
        mistake(
            with(collection(), |r| {
                r["entry"][0]["request"] = json!({"method": "POST", "url": "Patient"});
            }),
            "Bundle.entry[0]",
            "bdl-3",
        ),
        mistake(
            with(collection(), |r| {
                r["entry"][0]["resource"] =
                    json!({"resourceType": "HumanName", "family": "Example"});
            }),
            "Bundle.entry[0].resource",
            "not an R4 resource type",
        ),
        mistake(
            // Resolves, but to a resource its element does not allow.
            with(collection(), |r| {
                r["entry"][1]["resource"]["subject"]["reference"] = json!(COMMUNICATION);
            }),
            "Bundle.entry[1].resource.subject.reference",
            "refers to a Communication",
        ),
    ]
}

#[test]
fn each_check_beyond_the_model_catches_its_mistake() {
    let mistakes = mistakes();
    let resources: Vec<Value> = mistakes.iter().map(|m| m.resource.clone()).collect();
    let report = report_of(&resources);
    for (index, m) in mistakes.iter().enumerate() {
        assert_problem(&report, index, m.path, m.message);
    }
    let summary = format!("{} of {} invalid", mistakes.len(), mistakes.len());
    assert!(
        report.contains(&summary),
        "not every resource was invalid:\n{report}"
    );
}

#[test]
fn the_report_names_the_invalid_resource_among_valid_ones() {
    let mut resources: Vec<Value> = standalone_examples().into_iter().map(|(_, r)| r).collect();
    remove(&mut resources[5], "intent");
    let report = report_of(&resources);
    assert_problem(&report, 5, "CarePlan.intent", "field required");
    assert_eq!(
        report
            .lines()
            .filter(|l| l.starts_with("resource "))
            .count(),
        1,
        "{report}"
    );
}

#[test]
fn the_report_names_paths_never_values() {
    let canary = "canary-7f3a";
    let resources = [
        with(patient(), |r| r["name"][0]["suffix"] = json!(canary)),
        with(patient(), |r| r["birthDate"] = json!(canary)),
        with(patient(), |r| r["gender"] = json!(canary)),
        with(condition_icd10("Patient/example"), |r| {
            r["subject"]["reference"] = json!(canary);
        }),
        with(condition_icd10("Patient/example"), |r| {
            r["note"] = json!(canary);
        }),
        with(condition_icd10("Patient/example"), |r| {
            r["code"]["text"] = json!([canary]);
        }),
    ];
    let report = report_of(&resources);
    assert!(report.contains("6 of 6 invalid"), "{report}");
    assert!(
        !report.contains(canary),
        "the report echoes a value:\n{report}"
    );
}
