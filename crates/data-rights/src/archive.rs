//! The files of an answer's archive (D1, D5, D10, HIPAA 164.528).
//!
//! An access or portability archive holds:
//!
//! | file | content |
//! |---|---|
//! | `export.json` | everything every context holds, in the schema of `schema.json` |
//! | `schema.json` | the JSON Schema (2020-12) of `export.json` |
//! | `fhir-bundle.json` | the clinical records as one FHIR R4 `Bundle` of type `collection` |
//! | `consent-history.json` | the consent ledger's events and authorisations |
//! | `access-report.json` | who accessed the person's data, when and why |
//! | `disclosures.json` | the accounting of disclosures |
//! | `statements.json` | legal bases, the right to complain, the controller (D13) |
//!
//! A CCPA right-to-know archive holds `ccpa-know.json` and `statements.json`; an
//! accounting of disclosures holds `disclosures.json` and `statements.json`.
//! The archive's SHA-256 is stored with the request.

use chrono::{DateTime, Utc};
use kernel::personal_data::ExportedRecord;
use serde::Serialize;
use serde_json::{Value, json};

use crate::know::{ContextHoldings, KnowReport};
use crate::ports::ArchivePart;
use crate::request::RightsRequest;
use crate::statements::Statements;

/// The version of `export.json`'s schema.
pub const SCHEMA: &str = "urn:custodia:rights-export:1";

/// The audit context's resource kind of one disclosure.
pub const DISCLOSURE_KIND: &str = "disclosure";
/// The audit context's resource kind of one access.
pub const ACCESS_KIND: &str = "access_event";
/// The clinical context's resource kind of its FHIR Bundle.
pub const FHIR_BUNDLE_KIND: &str = "fhir_bundle";
/// The consent context's resource kinds.
pub const CONSENT_KINDS: [&str; 2] = ["consent_event", "authorisation"];

/// Every record kind a rectification may name: the kinds the contexts export
/// and correct.
pub const KNOWN_KINDS: [&str; 12] = [
    "account",
    "billing_account",
    "demographics",
    "condition",
    "medication",
    "allergy",
    "history_entry",
    "status_note",
    "treatment_plan",
    "exercise_program",
    "adherence_log",
    "consent_event",
];

/// The JSON Schema of `export.json`.
pub const EXPORT_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "urn:custodia:rights-export:1",
  "title": "Custodia personal-data export",
  "type": "object",
  "required": ["schema", "request", "generated_at", "subject", "contexts"],
  "properties": {
    "schema": {"const": "urn:custodia:rights-export:1"},
    "request": {
      "type": "object",
      "required": ["id", "kind", "regime", "received_at"],
      "properties": {
        "id": {"type": "string", "format": "uuid"},
        "kind": {"type": "string"},
        "regime": {"enum": ["hipaa", "gdpr", "ccpa"]},
        "received_at": {"type": "string", "format": "date-time"}
      }
    },
    "generated_at": {"type": "string", "format": "date-time"},
    "subject": {"type": "string", "format": "uuid", "description": "The person's id as a data subject."},
    "contexts": {
      "type": "array",
      "items": {
        "type": "object",
        "required": ["context", "data_map", "records"],
        "properties": {
          "context": {"enum": ["identity", "clinical", "consent", "billing", "audit"]},
          "data_map": {
            "type": "array",
            "description": "What the context holds: category, description, sources, purposes, recipients, retention.",
            "items": {"type": "object"}
          },
          "records": {
            "type": "array",
            "items": {
              "type": "object",
              "required": ["category", "resource", "created_at", "data"],
              "properties": {
                "category": {"type": "string"},
                "resource": {
                  "type": "object",
                  "required": ["kind", "id"],
                  "properties": {"kind": {"type": "string"}, "id": {"type": "string", "format": "uuid"}}
                },
                "created_at": {"type": "string", "format": "date-time"},
                "data": {"description": "The record in its context's export schema (docs/data-rights.md)."}
              }
            }
          }
        }
      }
    }
  }
}
"#;

#[derive(Serialize)]
struct RequestHeader {
    id: String,
    kind: &'static str,
    regime: &'static str,
    received_at: DateTime<Utc>,
}

fn header(request: &RightsRequest) -> RequestHeader {
    RequestHeader {
        id: request.id.to_string(),
        kind: request.kind.as_str(),
        regime: request.regime.as_str(),
        received_at: request.received_at,
    }
}

fn part(name: &'static str, value: &impl Serialize) -> Result<ArchivePart, serde_json::Error> {
    Ok(ArchivePart {
        name,
        content: serde_json::to_vec(value)?,
    })
}

/// The parts of an access or portability archive. JSON is written compact (an
/// archive of 10,000 records is tens of megabytes; a reader formats it).
///
/// # Errors
/// Serialisation failed.
pub fn export_parts(
    request: &RightsRequest,
    holdings: &[ContextHoldings],
    statements: &Statements,
    now: DateTime<Utc>,
) -> Result<Vec<ArchivePart>, serde_json::Error> {
    let mut bundle: Option<Value> = None;
    let mut consent = Vec::new();
    let mut access = Vec::new();
    let mut disclosures = Vec::new();
    let mut contexts = Vec::with_capacity(holdings.len());
    for held in holdings {
        let mut records: Vec<&ExportedRecord> = Vec::with_capacity(held.records.len());
        for record in &held.records {
            match (held.context, record.resource.kind) {
                ("clinical", FHIR_BUNDLE_KIND) => bundle = Some(record.data.clone()),
                ("consent", kind) if CONSENT_KINDS.contains(&kind) => {
                    consent.push(record);
                    records.push(record);
                }
                ("audit", ACCESS_KIND) => access.push(record),
                ("audit", DISCLOSURE_KIND) => disclosures.push(record),
                _ => records.push(record),
            }
        }
        contexts.push(json!({
            "context": held.context,
            "data_map": held.map,
            "records": records,
        }));
    }
    let export = json!({
        "schema": SCHEMA,
        "request": header(request),
        "generated_at": now,
        "subject": request.subject,
        "contexts": contexts,
    });
    // A person with no clinical records still gets a (valid, empty) Bundle.
    let bundle = bundle.unwrap_or_else(
        || json!({"resourceType": "Bundle", "type": "collection", "timestamp": now}),
    );
    Ok(vec![
        part("export.json", &export)?,
        ArchivePart {
            name: "schema.json",
            content: EXPORT_SCHEMA.as_bytes().to_vec(),
        },
        part("fhir-bundle.json", &bundle)?,
        part("consent-history.json", &consent)?,
        part("access-report.json", &access)?,
        part("disclosures.json", &disclosures)?,
        part("statements.json", statements)?,
    ])
}

/// The parts of a CCPA right-to-know archive.
///
/// # Errors
/// Serialisation failed.
pub fn know_parts(
    request: &RightsRequest,
    report: &KnowReport,
    statements: &Statements,
    now: DateTime<Utc>,
) -> Result<Vec<ArchivePart>, serde_json::Error> {
    let body = json!({
        "request": header(request),
        "generated_at": now,
        "report": report,
    });
    Ok(vec![
        part("ccpa-know.json", &body)?,
        part("statements.json", statements)?,
    ])
}

/// The parts of a HIPAA accounting of disclosures.
///
/// # Errors
/// Serialisation failed.
pub fn accounting_parts(
    request: &RightsRequest,
    disclosures: &[ExportedRecord],
    statements: &Statements,
    now: DateTime<Utc>,
) -> Result<Vec<ArchivePart>, serde_json::Error> {
    let body = json!({
        "request": header(request),
        "generated_at": now,
        "disclosures": disclosures,
    });
    Ok(vec![
        part("disclosures.json", &body)?,
        part("statements.json", statements)?,
    ])
}
