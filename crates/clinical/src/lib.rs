//! The clinical-records context (issue #6): clients, care teams, health data,
//! treatment plans, exercise programs and adherence, appointments, secure messages
//! and amendments.
//!
//! - [`values`]: validated values (coded conditions, bounded text, pain scores,
//!   prescriptions, time zones, links), refused with a rule that never quotes input.
//! - [`fhir`]: the holdings of one subject as FHIR R4 resources and a Bundle, for
//!   the export.
//! - [`model`]: the records. Every record of a client is one [`model::Record`] with a
//!   typed body and a version history.
//! - [`ports`]: the one repository port; its adapter seals every body with the
//!   subject's data key.
//! - [`service`]: the one path of every read, list and write: relationship, then
//!   restriction and `ConsentGate`, then `AuditSink`, failing closed.
//! - [`personal_data`]: the context's part of the data map, and export, correction,
//!   erasure and restriction of one person's records for the rights engine.
//! - [`retention`]: the retention sweep: break-glass grants six years after they
//!   expired, and whole charts seven years after their last activity (R1).
//! - [`memory`]: the repository in memory, keeping the port's contract, for tests.

pub mod fhir;
pub mod memory;
pub mod model;
pub mod personal_data;
pub mod ports;
pub mod retention;
pub mod service;
pub mod values;

pub use model::{Record, RecordBody, RecordKind};
pub use personal_data::ClinicalPersonalData;
pub use ports::{ClinicalRepository, RepositoryError};
pub use retention::ClinicalRetention;
pub use service::{ClinicalError, ClinicalService};
pub use values::{Code, CodeSystem, HttpsUrl, PainScore, Prescription, Text, TimeZone, ValueError};
