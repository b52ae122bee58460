//! The [`ConsentGate`] port: may this purpose touch this category of a subject's
//! data, for this recipient, at this time?
//!
//! Implemented by the `consent` context from a projection of its ledger. Every read
//! of health data asks it after authorisation and before decryption; a deny is
//! audited like any other denial.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{DataCategory, LegalGround, Purpose, Recipient, SubjectId};

/// One question to the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentQuery {
    /// Whose data.
    pub subject: SubjectId,
    /// For what.
    pub purpose: Purpose,
    /// Seen by whom.
    pub recipient: Recipient,
    /// Which kind of data.
    pub category: DataCategory,
    /// At which instant (the request's time).
    pub at: DateTime<Utc>,
}

/// Why the gate said no. Shown to callers as a machine reason; never carries the
/// evidence itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentDenial {
    /// Consent is required and was never given.
    NotGiven,
    /// Consent was given and then withdrawn.
    Withdrawn,
    /// The consent or authorisation has expired.
    Expired,
    /// The person objected to this processing (GDPR Art. 21).
    Objected,
    /// The person restricted processing of this category (GDPR Art. 18).
    Restricted,
    /// The person opted out of sharing (CCPA, or Global Privacy Control).
    OptedOut,
    /// The subject is a minor and no guardian has decided.
    GuardianRequired,
    /// No legal basis exists for this purpose at all.
    NoLegalBasis,
    /// The client's provider has not attested that the client authorised sharing
    /// their information with the service (S6): nothing of theirs may be entered.
    NotAttested,
}

impl ConsentDenial {
    /// The stable machine name, as audited.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotGiven => "consent_not_given",
            Self::Withdrawn => "consent_withdrawn",
            Self::Expired => "consent_expired",
            Self::Objected => "objected",
            Self::Restricted => "restricted",
            Self::OptedOut => "opted_out",
            Self::GuardianRequired => "guardian_required",
            Self::NoLegalBasis => "no_legal_basis",
            Self::NotAttested => "service_authorisation_missing",
        }
    }
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentDecision {
    /// The use may go ahead, on this basis.
    Allow {
        /// The legal basis relied on.
        basis: LegalGround,
        /// Ledger events that prove it (empty when the basis needs no consent,
        /// e.g. treatment under HIPAA).
        evidence: Vec<Uuid>,
    },
    /// The use must not go ahead.
    Deny {
        /// Why not.
        reason: ConsentDenial,
    },
}

impl ConsentDecision {
    /// Whether the use may go ahead.
    #[must_use]
    pub const fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
}

/// The gate could not decide. Callers treat this as a denial that is also an
/// operational failure (the server answers 503).
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// The projection could not be read.
    #[error("consent decisions are unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Decides uses of personal data against purposes, legal bases and the ledger.
///
/// # Contract
/// `decide` is pure with respect to the ledger at `query.at`: it records nothing
/// and is served from a projection kept in step with the ledger, never by replaying
/// it. Restriction and objection win over any grant; withdrawal takes effect for
/// every query after it.
#[async_trait]
pub trait ConsentGate: Send + Sync + 'static {
    /// Answers one query.
    async fn decide(&self, query: &ConsentQuery) -> Result<ConsentDecision, ConsentError>;
}
