//! The data-rights context (issue #8): one engine for HIPAA, GDPR and CCPA
//! requests, which touches personal data only through every context's
//! `kernel::PersonalData` port.
//!
//! The engine and what it is made of:
//! - [`request`]: a request's kind, subject, requester, regime, status and history,
//!   and the status changes the law allows;
//! - [`deadline`]: each law's clock (due, extension, notice of extension, CCPA
//!   acknowledgement) and the privacy officer's "nearing" window;
//! - [`authority`]: an authorised agent's proof of authority (document reference,
//!   scope, expiry, the subject's confirmation) and whether it lets them act;
//! - [`know`]: the CCPA right-to-know report over 12 months, from the contexts'
//!   data maps and the subject's records;
//! - [`deidentify`]: HIPAA Safe Harbor de-identification of one subject's exported
//!   records, with only the categories their consent allows, for research and
//!   analytics (U5) and for what may outlive erasure (R3).
//!
//! - [`service`]: the engine — filing with the caller's authority checked,
//!   verification, the privacy officer's queue, execution through the contexts
//!   (archives, journaled erasure and crypto-shredding, rectification, the consent
//!   path), privacy and security [`case`]s;
//! - [`retention`]: the retention engine, which runs every context's
//!   `kernel::personal_data::RetentionSweep` and reports what expired, and the
//!   check that every declared retention period has a sweep (R1);
//! - [`archive`]: the files of an answer's archive and the export's JSON Schema;
//! - [`statements`]: what every answer states (D13);
//! - [`ports`]: storage, people, the consent ledger, subject keys, the packer;
//!   [`memory`] is the storage in memory for tests.
//!
//! Storage is `store::SeaOrmRightsRepository`; the HTTP API and the adapters are
//! the server's. See `docs/data-rights.md`.

pub mod archive;
pub mod authority;
pub mod case;
pub mod deadline;
pub mod deidentify;
pub mod ids;
pub mod know;
pub mod memory;
pub mod ports;
pub mod request;
pub mod retention;
pub mod service;
pub mod statements;

pub use deadline::{Deadlines, Period, Rule};
pub use request::{RequestKind, RequestStatus, Requester, RightsRequest};
