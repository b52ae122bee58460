//! The data-rights context (issue #8): one engine for HIPAA, GDPR and CCPA
//! requests, which touches personal data only through every context's
//! `kernel::PersonalData` port.
//!
//! So far, the groundwork that needs nothing else:
//! - [`request`]: a request's kind, subject, requester, regime, status and history,
//!   and the status changes the law allows;
//! - [`deadline`]: each law's clock (due, extension, notice of extension, CCPA
//!   acknowledgement) and the privacy officer's "nearing" window;
//! - [`authority`]: an authorised agent's proof of authority (document reference,
//!   scope, expiry, the subject's confirmation) and whether it lets them act;
//! - [`know`]: the CCPA right-to-know report over 12 months, from the contexts'
//!   data maps and the subject's records;
//! - [`retention`]: the retention engine, which runs every context's
//!   `kernel::personal_data::RetentionSweep` and reports what expired, and the check
//!   that every declared retention period has a sweep.
//!
//! Identity verification of other requesters, execution through the contexts,
//! de-identification, storage and the API come with the rest of the issue.

pub mod authority;
pub mod deadline;
pub mod know;
pub mod request;
pub mod retention;

pub use deadline::{Deadlines, Period, Rule};
pub use request::{RequestKind, RequestStatus, Requester, RightsRequest};
