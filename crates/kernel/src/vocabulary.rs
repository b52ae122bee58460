//! The words the contexts share when they talk about personal data: why it is used
//! ([`Purpose`]), what kind it is ([`DataCategory`]), who receives it ([`Recipient`]),
//! under which law ([`Regime`], [`LegalGround`]) and which record it is ([`ResourceRef`]).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{OrganisationId, UserId};

/// Why personal data is being used. Carried by every [`crate::RequestContext`] and
/// asked about in every [`crate::ConsentGate`] decision. The HL7 v3 `PurposeOfUse`
/// code is given where one exists, so audit records map onto health-IT vocabularies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Purpose {
    /// Providing care to the subject (HL7 `TREAT`).
    Treatment,
    /// Sharing within the subject's care team beyond the treating provider.
    CareTeamSharing,
    /// Emergency access outside the care relationship: break-glass (HL7 `ETREAT`).
    BreakGlass,
    /// Billing and payment for care or for the service (HL7 `HPAYMT`).
    Payment,
    /// Running the practice and the service (HL7 `HOPERAT`).
    Operations,
    /// The subject acting on their own data, or a rights request (HL7 `PATRQT`).
    SubjectRequest,
    /// Audit, privacy and compliance oversight (HL7 `HCOMPL`).
    Oversight,
    /// A disclosure required by law (HL7 `HLEGAL`).
    Legal,
    /// Promotional email.
    MarketingEmail,
    /// Promotional SMS.
    MarketingSms,
    /// Analytics on de-identified or aggregated data only.
    Analytics,
    /// Research (HL7 `HRESCH`).
    Research,
    /// Sharing with a named third party, who is the [`Recipient`].
    ThirdPartySharing,
}

impl Purpose {
    /// Every purpose, in catalogue order.
    pub const ALL: [Self; 13] = [
        Self::Treatment,
        Self::CareTeamSharing,
        Self::BreakGlass,
        Self::Payment,
        Self::Operations,
        Self::SubjectRequest,
        Self::Oversight,
        Self::Legal,
        Self::MarketingEmail,
        Self::MarketingSms,
        Self::Analytics,
        Self::Research,
        Self::ThirdPartySharing,
    ];

    /// The stable machine name, as stored and as sent over the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Treatment => "treatment",
            Self::CareTeamSharing => "care_team_sharing",
            Self::BreakGlass => "break_glass",
            Self::Payment => "payment",
            Self::Operations => "operations",
            Self::SubjectRequest => "subject_request",
            Self::Oversight => "oversight",
            Self::Legal => "legal",
            Self::MarketingEmail => "marketing_email",
            Self::MarketingSms => "marketing_sms",
            Self::Analytics => "analytics",
            Self::Research => "research",
            Self::ThirdPartySharing => "third_party_sharing",
        }
    }

    /// Parses [`Purpose::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The HL7 v3 `PurposeOfUse` code, where one exists.
    #[must_use]
    pub const fn hl7_code(self) -> Option<&'static str> {
        match self {
            Self::Treatment | Self::CareTeamSharing => Some("TREAT"),
            Self::BreakGlass => Some("ETREAT"),
            Self::Payment => Some("HPAYMT"),
            Self::Operations => Some("HOPERAT"),
            Self::SubjectRequest => Some("PATRQT"),
            Self::Oversight => Some("HCOMPL"),
            Self::Legal => Some("HLEGAL"),
            Self::Research => Some("HRESCH"),
            Self::MarketingEmail | Self::MarketingSms => Some("HMARKT"),
            Self::Analytics | Self::ThirdPartySharing => None,
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind of personal data. The unit of the data map, of retention periods, of
/// consent decisions and of erasure outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DataCategory {
    /// Name, date of birth and other identifiers.
    Identity,
    /// Email, phone, postal address.
    Contact,
    /// Password hashes, MFA secrets, sessions, API keys.
    Credentials,
    /// Picture reference, professional credentials, practice information.
    Profile,
    /// Settings and preferences.
    Preferences,
    /// Conditions, allergies, history and current health status.
    HealthRecord,
    /// Medications.
    Medications,
    /// Treatment plans.
    TreatmentPlans,
    /// Exercise programs and adherence logs.
    ExercisePrograms,
    /// Appointments.
    Appointments,
    /// Messages between users, and with support.
    Communications,
    /// Payment-processor tokens, card brand, last four digits, expiry.
    Payment,
    /// Invoices and billing contacts.
    Billing,
    /// Consents, authorisations and communication preferences.
    Consent,
    /// Sign-ins, MFA and session events.
    SecurityEvents,
    /// Device, browser, address and endpoints used.
    UsageLogs,
    /// The audit trail of accesses and disclosures.
    AccessLog,
}

impl DataCategory {
    /// Every category, in declaration order.
    pub const ALL: [Self; 17] = [
        Self::Identity,
        Self::Contact,
        Self::Credentials,
        Self::Profile,
        Self::Preferences,
        Self::HealthRecord,
        Self::Medications,
        Self::TreatmentPlans,
        Self::ExercisePrograms,
        Self::Appointments,
        Self::Communications,
        Self::Payment,
        Self::Billing,
        Self::Consent,
        Self::SecurityEvents,
        Self::UsageLogs,
        Self::AccessLog,
    ];

    /// Parses [`DataCategory::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Contact => "contact",
            Self::Credentials => "credentials",
            Self::Profile => "profile",
            Self::Preferences => "preferences",
            Self::HealthRecord => "health_record",
            Self::Medications => "medications",
            Self::TreatmentPlans => "treatment_plans",
            Self::ExercisePrograms => "exercise_programs",
            Self::Appointments => "appointments",
            Self::Communications => "communications",
            Self::Payment => "payment",
            Self::Billing => "billing",
            Self::Consent => "consent",
            Self::SecurityEvents => "security_events",
            Self::UsageLogs => "usage_logs",
            Self::AccessLog => "access_log",
        }
    }

    /// Whether this is protected health information under HIPAA.
    #[must_use]
    pub const fn is_health_data(self) -> bool {
        matches!(
            self,
            Self::HealthRecord
                | Self::Medications
                | Self::TreatmentPlans
                | Self::ExercisePrograms
                | Self::Appointments
                | Self::Communications
        )
    }
}

impl fmt::Display for DataCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who receives personal data in a use or disclosure.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recipient {
    /// The data subject themselves.
    Subject,
    /// A member of the subject's care team.
    CareTeamMember {
        /// The provider.
        user: UserId,
    },
    /// A practice, as covered entity.
    Organisation {
        /// The practice.
        organisation: OrganisationId,
    },
    /// A sub-processor from the registry (hosting, payments, email, analytics).
    SubProcessor {
        /// Its registry name.
        name: String,
    },
    /// A named third party outside the platform.
    ThirdParty {
        /// Its name as the person authorised it.
        name: String,
    },
}

/// A privacy regime whose rules Custodia applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// US Health Insurance Portability and Accountability Act.
    Hipaa,
    /// EU/UK General Data Protection Regulation.
    Gdpr,
    /// California Consumer Privacy Act, as amended by the CPRA.
    Ccpa,
}

impl Regime {
    /// Every regime.
    pub const ALL: [Self; 3] = [Self::Hipaa, Self::Gdpr, Self::Ccpa];

    /// Parses [`Regime::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hipaa => "hipaa",
            Self::Gdpr => "gdpr",
            Self::Ccpa => "ccpa",
        }
    }
}

/// A legal ground, cited: why a use is allowed, or why a record is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct LegalGround {
    /// The regime the citation belongs to.
    pub regime: Regime,
    /// The citation, e.g. `45 CFR 164.506(c)(1)` or `GDPR Art. 6(1)(c)`.
    pub citation: Cow<'static, str>,
    /// A plain-language statement of the ground, fit to show the person.
    pub statement: Cow<'static, str>,
}

impl LegalGround {
    /// A ground from static text.
    #[must_use]
    pub const fn new(regime: Regime, citation: &'static str, statement: &'static str) -> Self {
        Self {
            regime,
            citation: Cow::Borrowed(citation),
            statement: Cow::Borrowed(statement),
        }
    }
}

/// A reference to one stored record: its kind (a stable name such as `condition`)
/// and its id. Used by audit events and by erasure reports; never carries content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ResourceRef {
    /// The record's kind.
    pub kind: &'static str,
    /// The record's id.
    pub id: Uuid,
}

impl ResourceRef {
    /// A reference to record `id` of kind `kind`.
    #[must_use]
    pub const fn new(kind: &'static str, id: Uuid) -> Self {
        Self { kind, id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_round_trip_through_their_names() {
        for purpose in Purpose::ALL {
            assert_eq!(Purpose::parse(purpose.as_str()), Some(purpose));
        }
        assert_eq!(Purpose::parse("selling"), None);
        for category in DataCategory::ALL {
            assert_eq!(DataCategory::parse(category.as_str()), Some(category));
        }
        for regime in Regime::ALL {
            assert_eq!(Regime::parse(regime.as_str()), Some(regime));
        }
    }
}
