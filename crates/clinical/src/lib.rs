//! The clinical-records context (issue #6): clients, care teams, health data,
//! exercise programs, appointments and messages.
//!
//! So far, [`values`]: the validated values every clinical record is built from —
//! coded conditions (ICD-10 or SNOMED CT, the check digit verified), bounded text,
//! pain scores and exercise prescriptions — so that bad input is refused (422) at
//! the edge before anything is stored. The records, their ports and the one read
//! path (relationship, then consent, then audit) arrive with the rest of the issue.

pub mod values;

pub use values::{Code, CodeSystem, PainScore, Prescription, Text, ValueError};
