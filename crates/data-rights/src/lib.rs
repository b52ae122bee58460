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
//!   data maps and the subject's records.
//!
//! Identity verification of other requesters, execution through the contexts, retention,
//! de-identification, storage and the API come with the rest of the issue.

pub mod archive;
pub mod authority;
pub mod case;
pub mod deadline;
pub mod ids;
pub mod know;
pub mod memory;
pub mod ports;
pub mod request;
pub mod service;
pub mod statements;

pub use deadline::{Deadlines, Period, Rule};
pub use request::{RequestKind, RequestStatus, Requester, RightsRequest};
