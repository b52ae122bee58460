//! The consent context: which uses of personal data are allowed, on what legal
//! basis, and what each person has agreed to.
//!
//! Auditors read this crate on its own, so every public item is documented and the
//! rules are written as data where they can be:
//!
//! - [`catalogue`]: every purpose of use, with its legal basis under HIPAA, GDPR
//!   (Art. 6, and the Art. 9 condition for health data) and CCPA, and whether the
//!   person's consent is needed, opt-in or opt-out; and [`catalogue::PracticePolicy`],
//!   a practice's settings, which may only make a purpose stricter, except the
//!   marketing mode the practice chooses (U4).
//! - [`ledger`]: the append-only consent ledger, hash-chained per subject, which
//!   refuses an event that contradicts the history (withdrawing a consent never
//!   given) before anything is written.
//! - [`decision`]: the projection of the ledger that decides each use, in the
//!   order of precedence restriction, objection, opt-out of sharing, then consent.
//!
//! Policy versions, HIPAA authorisations and the `ConsentGate`
//! decisions build on this catalogue (issue #5).

#![deny(missing_docs)]

pub mod catalogue;
pub mod decision;
pub mod ledger;

pub use catalogue::{
    ConsentMode, GdprBasis, GdprCondition, HipaaBasis, PracticePolicy, PurposeRule,
};
