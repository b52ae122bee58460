//! The consent context: which uses of personal data are allowed, on what legal
//! basis, and what each person has agreed to.
//!
//! Auditors read this crate on its own, so every public item is documented and the
//! rules are written as data where they can be. Read it in this order:
//!
//! - [`catalogue`]: every purpose of use, with its legal basis under HIPAA, GDPR
//!   (Art. 6, and the Art. 9 condition for health data) and CCPA, and whether the
//!   person's consent is needed, opt-in or opt-out; and [`catalogue::PracticePolicy`],
//!   a practice's settings, which may only make a purpose stricter, except the
//!   marketing mode the practice chooses (U4).
//! - [`ledger`]: the append-only consent ledger, hash-chained per subject under a
//!   pseudonymous chain id, with the evidence committed by a salted digest so that
//!   erasure can destroy it without breaking the chain.
//! - [`decision`]: the projection of the ledger, one state per subject kept in step
//!   with every append, which checks each new event (withdrawing a consent never
//!   given is refused) and decides each use in the order of precedence
//!   restriction, objection, opt-out of sharing, the provider's attestation (S6),
//!   then consent.
//! - [`policy`]: versioned policy documents with content hashes (O3).
//! - [`authorisation`]: HIPAA authorisations with every §164.508(c) element.
//! - [`subprocessors`]: the public sub-processor registry (S3).
//! - [`service`]: the operations, each audited, and the [`kernel::ConsentGate`].
//! - [`personal_data`]: export and erasure of a person's consent records.
//! - [`retention`]: the retention sweep that deletes an erased person's
//!   pseudonymised chain six years after the erasure (R1).
//! - [`ports`] and [`memory`]: what storage must guarantee, and an in-memory
//!   implementation of it.
//!
//! `docs/consent.md` explains the model, each purpose's legal basis, how to verify
//! the ledger, and which obligation each part keeps.

#![deny(missing_docs)]

pub mod authorisation;
pub mod catalogue;
pub mod decision;
pub mod ledger;
pub mod memory;
pub mod personal_data;
pub mod policy;
pub mod ports;
pub mod retention;
pub mod service;
pub mod subprocessors;

pub use catalogue::{
    ConsentMode, GdprBasis, GdprCondition, HipaaBasis, MarketingMode, PracticePolicy, PurposeRule,
};
pub use personal_data::ConsentPersonalData;
pub use retention::ConsentRetention;
pub use service::{ConsentService, ConsentServiceError};
