//! Consent over HTTP (S2, S3, S6, U3, U4, D4, D6, D7, O1, O3, O4): the public
//! purpose catalogue, sub-processor registry and policy versions; a person's own
//! consents, history, authorisations and marketing preferences, and a guardian's
//! for their ward; a provider's attestation and consent checks; a practice's
//! settings; an auditor's ledger export and verification.
//!
//! Who may act for whom is resolved here (the consent crate takes an
//! [`Authority`]); a refusal is audited through
//! [`ConsentService::refused`](consent::ConsentService::refused) and answered 403.
//! [`ConsentServiceError`] is mapped to HTTP here and nowhere else.

use chrono::{DateTime, Utc};
use consent::authorisation::{Expiry, HipaaAuthorisation, Signature, StoredAuthorisation};
use consent::catalogue::{ConsentMode, HipaaBasis, MarketingMode, rule};
use consent::decision::{PurposeState, SubjectState};
use consent::ledger::{Authority, Channel, LedgerAction, LedgerError, LedgerEvent, hex};
use consent::policy::PolicyVersion;
use consent::ports::{HistoryEntry, PracticeSettings};
use consent::service::{Change, ConsentServiceError};
use kernel::{
    Actor, AuditAction, ConsentDecision, DataCategory, OrganisationId, Purpose, Regime,
    RequestContext, Role, SubjectId, UserId,
};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

use crate::api::ApiTags;
use crate::api::identity::{Created, Found};
use crate::auth::SessionAuth;
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::state::AppState;

impl From<ConsentServiceError> for ApiError {
    fn from(err: ConsentServiceError) -> Self {
        match err {
            ConsentServiceError::Ledger(e @ LedgerError::NothingToEnd(_)) => {
                Self::new(ProblemKind::Conflict, format!("{e}: nothing was recorded."))
            }
            ConsentServiceError::Ledger(e) => Self::new(
                ProblemKind::Unprocessable,
                format!("{e}; nothing was recorded."),
            ),
            ConsentServiceError::Authorisation(e) => Self::new(
                ProblemKind::Unprocessable,
                format!("{e}; nothing was recorded."),
            ),
            ConsentServiceError::Policy(e) => Self::new(ProblemKind::Unprocessable, e.to_string()),
            ConsentServiceError::PolicyExists => Self::new(
                ProblemKind::Conflict,
                "That policy version is already published; publish a new version instead.",
            ),
            ConsentServiceError::NoAuthority => Self::new(
                ProblemKind::Forbidden,
                "You have no authority to act for this person.",
            ),
            ConsentServiceError::NotFound => Self::new(ProblemKind::NotFound, "No such record."),
            ConsentServiceError::Unavailable(source) => {
                tracing::error!(error = %source, "consent unavailable");
                Self::Unavailable(Json(Problem::new(
                    ProblemKind::Unavailable,
                    "Consent is temporarily unavailable; nothing was changed.",
                )))
            }
        }
    }
}

/// The consent operations.
#[derive(Debug)]
pub struct ConsentApi {
    state: AppState,
}

impl ConsentApi {
    /// The operations over `state`.
    #[must_use]
    pub const fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A purpose of use in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum PurposeName {
    /// Providing care.
    Treatment,
    /// Sharing within the care team.
    CareTeamSharing,
    /// Billing and payment.
    Payment,
    /// Running the practice and the service.
    Operations,
    /// Promotional email.
    MarketingEmail,
    /// Promotional SMS.
    MarketingSms,
    /// Analytics on de-identified data.
    Analytics,
    /// Research.
    Research,
    /// Sharing with a named third party.
    ThirdPartySharing,
}

impl PurposeName {
    const ALL: [Self; 9] = [
        Self::Treatment,
        Self::CareTeamSharing,
        Self::Payment,
        Self::Operations,
        Self::MarketingEmail,
        Self::MarketingSms,
        Self::Analytics,
        Self::Research,
        Self::ThirdPartySharing,
    ];

    const fn purpose(self) -> Purpose {
        match self {
            Self::Treatment => Purpose::Treatment,
            Self::CareTeamSharing => Purpose::CareTeamSharing,
            Self::Payment => Purpose::Payment,
            Self::Operations => Purpose::Operations,
            Self::MarketingEmail => Purpose::MarketingEmail,
            Self::MarketingSms => Purpose::MarketingSms,
            Self::Analytics => Purpose::Analytics,
            Self::Research => Purpose::Research,
            Self::ThirdPartySharing => Purpose::ThirdPartySharing,
        }
    }
}

/// A category of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum CategoryName {
    /// Name, date of birth, identifiers.
    Identity,
    /// Email, phone, address.
    Contact,
    /// Profile.
    Profile,
    /// Preferences.
    Preferences,
    /// Conditions, allergies, history, health status.
    HealthRecord,
    /// Medications.
    Medications,
    /// Treatment plans.
    TreatmentPlans,
    /// Exercise programs and adherence.
    ExercisePrograms,
    /// Appointments.
    Appointments,
    /// Messages.
    Communications,
    /// Billing.
    Billing,
    /// Usage logs.
    UsageLogs,
}

impl CategoryName {
    const fn category(self) -> DataCategory {
        match self {
            Self::Identity => DataCategory::Identity,
            Self::Contact => DataCategory::Contact,
            Self::Profile => DataCategory::Profile,
            Self::Preferences => DataCategory::Preferences,
            Self::HealthRecord => DataCategory::HealthRecord,
            Self::Medications => DataCategory::Medications,
            Self::TreatmentPlans => DataCategory::TreatmentPlans,
            Self::ExercisePrograms => DataCategory::ExercisePrograms,
            Self::Appointments => DataCategory::Appointments,
            Self::Communications => DataCategory::Communications,
            Self::Billing => DataCategory::Billing,
            Self::UsageLogs => DataCategory::UsageLogs,
        }
    }
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ConsentActionName {
    /// Give consent for a purpose.
    Grant,
    /// Take consent back, at once.
    Withdraw,
    /// Object to a purpose (legitimate interests, marketing).
    Object,
    /// Restrict processing of a category.
    Restrict,
    /// End a restriction.
    LiftRestriction,
    /// Record that a grant's expiry event happened (an authorisation that ends on
    /// an event rather than a date).
    Expire,
}

impl ConsentActionName {
    const fn action(self) -> LedgerAction {
        match self {
            Self::Grant => LedgerAction::Grant,
            Self::Withdraw => LedgerAction::Withdraw,
            Self::Object => LedgerAction::Object,
            Self::Restrict => LedgerAction::Restrict,
            Self::LiftRestriction => LedgerAction::LiftRestriction,
            Self::Expire => LedgerAction::Expire,
        }
    }
}

/// How a person's change reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Default)]
#[oai(rename_all = "snake_case")]
pub enum PersonChannel {
    /// The web application (the default).
    #[default]
    Web,
    /// A mobile application.
    Mobile,
    /// An integration.
    Api,
}

impl PersonChannel {
    const fn channel(self) -> Channel {
        match self {
            Self::Web => Channel::Web,
            Self::Mobile => Channel::Mobile,
            Self::Api => Channel::Api,
        }
    }
}

/// How a provider obtained the client's authorisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum AttestationChannel {
    /// A signed paper form.
    Paper,
    /// Said to the provider in person or by phone.
    Verbal,
    /// Through the web application.
    Web,
}

impl AttestationChannel {
    const fn channel(self) -> Channel {
        match self {
            Self::Paper => Channel::Paper,
            Self::Verbal => Channel::Verbal,
            Self::Web => Channel::Web,
        }
    }
}

/// A privacy regime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RegimeName {
    /// HIPAA.
    Hipaa,
    /// GDPR.
    Gdpr,
    /// CCPA/CPRA.
    Ccpa,
}

impl From<RegimeName> for Regime {
    fn from(r: RegimeName) -> Self {
        match r {
            RegimeName::Hipaa => Self::Hipaa,
            RegimeName::Gdpr => Self::Gdpr,
            RegimeName::Ccpa => Self::Ccpa,
        }
    }
}

impl From<Regime> for RegimeName {
    fn from(r: Regime) -> Self {
        match r {
            Regime::Hipaa => Self::Hipaa,
            Regime::Gdpr => Self::Gdpr,
            Regime::Ccpa => Self::Ccpa,
        }
    }
}

/// A practice's marketing mode (U4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum MarketingModeName {
    /// Nobody gets marketing until they agree (the default).
    OptIn,
    /// Clients get marketing until they say no.
    OptOut,
}

/// A legal ground, cited.
#[derive(Debug, Object)]
pub struct GroundView {
    /// `hipaa`, `gdpr` or `ccpa`.
    pub regime: String,
    /// The citation.
    pub citation: String,
    /// In plain words.
    pub statement: String,
}

impl From<kernel::LegalGround> for GroundView {
    fn from(g: kernel::LegalGround) -> Self {
        Self {
            regime: g.regime.as_str().to_owned(),
            citation: g.citation.into_owned(),
            statement: g.statement.into_owned(),
        }
    }
}

/// One purpose of the catalogue and its legal bases.
#[derive(Debug, Object)]
pub struct PurposeView {
    /// The purpose.
    pub purpose: String,
    /// The HL7 v3 PurposeOfUse code, where one exists.
    #[oai(skip_serializing_if_is_none)]
    pub hl7_code: Option<String>,
    /// Whether HIPAA needs the person's written authorisation (§164.508).
    pub hipaa_authorisation_required: bool,
    /// The GDPR Art. 9(2) condition for health data (absent: no health data used).
    #[oai(skip_serializing_if_is_none)]
    pub gdpr_health_condition: Option<String>,
    /// Whether a California consumer may opt out.
    pub ccpa_opt_out: bool,
    /// `not_needed`, `opt_out` or `opt_in`, before a practice's settings.
    pub consent: String,
    /// Whether a practice may make it opt-out (marketing only, U4).
    pub practice_may_relax: bool,
    /// The basis under each regime.
    pub bases: Vec<GroundView>,
}

const fn mode_name(mode: ConsentMode) -> &'static str {
    match mode {
        ConsentMode::NotNeeded => "not_needed",
        ConsentMode::OptOut => "opt_out",
        ConsentMode::OptIn => "opt_in",
    }
}

/// The catalogue.
#[derive(Debug, Object)]
pub struct PurposeCatalogue {
    /// Every purpose.
    pub items: Vec<PurposeView>,
}

/// One sub-processor (S3).
#[derive(Debug, Object)]
pub struct SubProcessorView {
    /// Its registry name.
    pub name: String,
    /// What it does.
    pub service: String,
    /// Where it processes data.
    pub location: String,
    /// The categories of data it receives.
    pub categories: Vec<String>,
    /// Why.
    pub purpose: String,
}

/// The sub-processor registry.
#[derive(Debug, Object)]
pub struct SubProcessorList {
    /// Every sub-processor.
    pub items: Vec<SubProcessorView>,
}

/// One policy version (O3).
#[derive(Debug, Object)]
pub struct PolicyVersionView {
    /// The document.
    pub document: String,
    /// The version.
    pub version: String,
    /// How consents cite it: `document@version`.
    pub citation: String,
    /// From when it is in force.
    pub effective_at: DateTime<Utc>,
    /// SHA-256 of its text, hex.
    pub content_sha256: String,
    /// Whether the change was material (people were told).
    pub material: bool,
    /// What changed.
    pub summary: String,
    /// When it was published.
    pub published_at: DateTime<Utc>,
}

fn time(micros: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default()
}

impl From<&PolicyVersion> for PolicyVersionView {
    fn from(v: &PolicyVersion) -> Self {
        Self {
            document: v.document.clone(),
            version: v.version.clone(),
            citation: v.citation(),
            effective_at: time(v.effective_at),
            content_sha256: v.content_sha256.clone(),
            material: v.material,
            summary: v.summary.clone(),
            published_at: time(v.published_at),
        }
    }
}

/// The published policy versions.
#[derive(Debug, Object)]
pub struct PolicyVersionList {
    /// Oldest first.
    pub items: Vec<PolicyVersionView>,
}

/// A new policy version (platform operator).
#[derive(Debug, Object)]
pub struct NewPolicyVersion {
    /// The document, e.g. `privacy-notice`: 1 to 64 of `a-z 0-9 . _ -`.
    #[oai(validator(min_length = 1, max_length = 64, pattern = r"^[a-z0-9._-]{1,64}$"))]
    pub document: String,
    /// The version: 1 to 64 of `a-z 0-9 . _ -`.
    #[oai(validator(min_length = 1, max_length = 64, pattern = r"^[a-z0-9._-]{1,64}$"))]
    pub version: String,
    /// From when it is in force; not before the version it replaces.
    pub effective_at: DateTime<Utc>,
    /// The full text.
    #[oai(validator(min_length = 1, max_length = 524288))]
    pub content: String,
    /// A material change: everyone with a consent record is told.
    pub material: bool,
    /// What changed.
    #[oai(validator(max_length = 2000))]
    #[oai(skip_serializing_if_is_none)]
    pub summary: Option<String>,
}

/// A published version and how many people were told of it.
#[derive(Debug, Object)]
pub struct PublishedPolicy {
    /// The version.
    pub version: PolicyVersionView,
    /// People notified (material changes only).
    pub notified: u64,
}

/// One ledger event.
#[derive(Debug, Object)]
pub struct ConsentEventView {
    /// Its position in the person's chain.
    pub sequence: u64,
    /// `grant`, `withdraw`, `object`, `restrict`, `lift_restriction` or `expire`.
    pub action: String,
    /// The purpose.
    #[oai(skip_serializing_if_is_none)]
    pub purpose: Option<String>,
    /// The named recipient (a third party, or `custodia` for the provider's attestation).
    #[oai(skip_serializing_if_is_none)]
    pub recipient: Option<String>,
    /// The category (restrictions).
    #[oai(skip_serializing_if_is_none)]
    pub category: Option<String>,
    /// `person`, `guardian`, `authorised_agent` or `provider_attesting`.
    pub authority: String,
    /// Who acted, when not the person.
    #[oai(skip_serializing_if_is_none)]
    pub acted_by: Option<Uuid>,
    /// `web`, `mobile`, `paper`, `verbal`, `api` or `global_privacy_control`.
    pub channel: String,
    /// The privacy-notice version it was given under.
    pub policy_version: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// When it takes effect.
    pub effective_at: DateTime<Utc>,
    /// When it ends.
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<&LedgerEvent> for ConsentEventView {
    fn from(e: &LedgerEvent) -> Self {
        let b = &e.body;
        Self {
            sequence: e.sequence,
            action: b.action.as_str().to_owned(),
            purpose: b.purpose.map(|p| p.as_str().to_owned()),
            recipient: b.recipient.clone(),
            category: b.category.map(|c| c.as_str().to_owned()),
            authority: b.authority.kind().to_owned(),
            acted_by: b.authority.user().map(|u| u.as_uuid()),
            channel: b.channel.as_str().to_owned(),
            policy_version: b.policy_version.clone(),
            recorded_at: time(b.recorded_at),
            effective_at: time(b.effective_at),
            expires_at: b.expires_at.map(time),
        }
    }
}

/// The evidence of one event.
#[derive(Debug, Object)]
pub struct EvidenceView {
    /// The client address.
    #[oai(skip_serializing_if_is_none)]
    pub client_address: Option<String>,
    /// The user agent.
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
    /// The signed document's reference.
    #[oai(skip_serializing_if_is_none)]
    pub document: Option<String>,
}

/// One event of a person's own history, with its evidence.
#[derive(Debug, Object)]
pub struct HistoryEntryView {
    /// The event.
    pub event: ConsentEventView,
    /// Its evidence; absent once erased.
    #[oai(skip_serializing_if_is_none)]
    pub evidence: Option<EvidenceView>,
    /// The event's hash, hex.
    pub hash: String,
}

/// A person's consent history.
#[derive(Debug, Object)]
pub struct ConsentHistory {
    /// Oldest first.
    pub items: Vec<HistoryEntryView>,
}

impl From<HistoryEntry> for HistoryEntryView {
    fn from(h: HistoryEntry) -> Self {
        Self {
            event: (&h.event).into(),
            hash: hex(&h.event.hash),
            evidence: h.evidence.map(|s| EvidenceView {
                client_address: s.evidence.client_address,
                user_agent: s.evidence.user_agent,
                document: s.evidence.document,
            }),
        }
    }
}

/// A change to one's consents.
#[derive(Debug, Object)]
pub struct ConsentChange {
    /// What to do.
    pub action: ConsentActionName,
    /// For `grant`, `withdraw`, `object`, `expire`.
    #[oai(skip_serializing_if_is_none)]
    pub purpose: Option<PurposeName>,
    /// For third-party sharing: the third party, by name.
    #[oai(validator(min_length = 1, max_length = 200))]
    #[oai(skip_serializing_if_is_none)]
    pub recipient: Option<String>,
    /// For `restrict` and `lift_restriction`.
    #[oai(skip_serializing_if_is_none)]
    pub category: Option<CategoryName>,
    /// From when (default now); a grant's expiry must be after it.
    #[oai(skip_serializing_if_is_none)]
    pub effective_at: Option<DateTime<Utc>>,
    /// A grant's expiry.
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<DateTime<Utc>>,
    /// How it reached us (default `web`).
    #[oai(skip_serializing_if_is_none)]
    pub channel: Option<PersonChannel>,
}

/// One purpose's state for a person.
#[derive(Debug, Object)]
pub struct PurposeStatus {
    /// The purpose.
    pub purpose: String,
    /// What it needs in the person's practice: `not_needed`, `opt_out`, `opt_in`.
    pub consent: String,
    /// What was last recorded: `granted`, `withdrawn`, `expired`, `objected` or `none`.
    pub recorded: String,
    /// Whether it is allowed now (on health records).
    pub allowed: bool,
    /// Why not, when not.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
    /// The basis relied on, when allowed.
    #[oai(skip_serializing_if_is_none)]
    pub basis: Option<GroundView>,
    /// The grant's policy version, when granted.
    #[oai(skip_serializing_if_is_none)]
    pub policy_version: Option<String>,
    /// The grant's expiry.
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A person's consents now.
#[derive(Debug, Object)]
pub struct ConsentOverview {
    /// The regime whose bases are cited.
    pub regime: String,
    /// Every purpose of the catalogue.
    pub purposes: Vec<PurposeStatus>,
    /// Grants to named third parties.
    pub third_parties: Vec<String>,
    /// Categories restricted (D4).
    pub restrictions: Vec<String>,
    /// Whether the person opted out of sharing (CCPA, Global Privacy Control).
    pub opted_out_of_sharing: bool,
    /// When the provider attested the person's authorisation to use the service (S6).
    #[oai(skip_serializing_if_is_none)]
    pub service_authorised_at: Option<DateTime<Utc>>,
}

fn overview(
    subject: SubjectId,
    state: &SubjectState,
    settings: &PracticeSettings,
    minor: bool,
    now: DateTime<Utc>,
) -> ConsentOverview {
    let circumstances = consent::decision::Circumstances {
        policy: &settings.policy,
        regime: settings.regime,
        minor,
    };
    let purposes = PurposeName::ALL
        .into_iter()
        .map(|name| {
            let purpose = name.purpose();
            let recorded = state.purpose(purpose, None);
            let decision = state.decide(
                subject,
                purpose,
                None,
                DataCategory::HealthRecord,
                now.timestamp_micros(),
                circumstances,
            );
            let (allowed, reason, basis) = match decision {
                ConsentDecision::Allow { basis, .. } => (true, None, Some(basis.into())),
                ConsentDecision::Deny { reason } => (false, Some(reason.as_str().to_owned()), None),
            };
            let grant = match recorded {
                Some(PurposeState::Granted(g)) => Some(g),
                _ => None,
            };
            PurposeStatus {
                purpose: purpose.as_str().to_owned(),
                consent: mode_name(settings.policy.consent_mode(purpose)).to_owned(),
                recorded: if state.objections().contains(&purpose) {
                    "objected"
                } else {
                    match recorded {
                        Some(PurposeState::Granted(_)) => "granted",
                        Some(PurposeState::Withdrawn { .. }) => "withdrawn",
                        Some(PurposeState::Expired { .. }) => "expired",
                        None => "none",
                    }
                }
                .to_owned(),
                allowed,
                reason,
                basis,
                policy_version: grant.map(|g| g.policy_version.clone()),
                expires_at: grant.and_then(|g| g.expires_at).map(time),
            }
        })
        .collect();
    ConsentOverview {
        regime: settings.regime.as_str().to_owned(),
        purposes,
        third_parties: state
            .purposes()
            .filter(|e| {
                e.purpose == Purpose::ThirdPartySharing
                    && matches!(e.state, PurposeState::Granted(_))
            })
            .filter_map(|e| e.recipient.clone())
            .collect(),
        restrictions: state
            .restrictions()
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        opted_out_of_sharing: state.opted_out_of_sharing(),
        service_authorised_at: state.service_authorisation().map(|g| time(g.effective_at)),
    }
}

/// Marketing preferences per channel (U3, U4, D6).
#[derive(Debug, Object)]
pub struct CommunicationPreferences {
    /// Promotional email.
    pub marketing_email: bool,
    /// Promotional SMS.
    pub marketing_sms: bool,
    /// Transactional notices (security, account, policy changes): always sent.
    pub transactional: bool,
}

impl From<consent::service::Preferences> for CommunicationPreferences {
    fn from(p: consent::service::Preferences) -> Self {
        Self {
            marketing_email: p.marketing_email,
            marketing_sms: p.marketing_sms,
            transactional: true,
        }
    }
}

/// A change of marketing preferences; an absent field is unchanged.
#[derive(Debug, Object)]
pub struct CommunicationPreferencesChange {
    /// Promotional email.
    #[oai(skip_serializing_if_is_none)]
    pub marketing_email: Option<bool>,
    /// Promotional SMS.
    #[oai(skip_serializing_if_is_none)]
    pub marketing_sms: Option<bool>,
}

/// When an authorisation ends: a date, or an event described.
#[derive(Debug, Object)]
pub struct ExpiryInput {
    /// The date.
    #[oai(skip_serializing_if_is_none)]
    pub date: Option<DateTime<Utc>>,
    /// The event, e.g. "the end of the study".
    #[oai(validator(min_length = 1, max_length = 4000))]
    #[oai(skip_serializing_if_is_none)]
    pub event: Option<String>,
}

/// A HIPAA authorisation (45 CFR 164.508(c)), every element required.
#[derive(Debug, Object)]
pub struct NewAuthorisation {
    /// A specific description of the information.
    #[oai(validator(max_length = 4000))]
    pub information: String,
    /// Who may disclose it.
    #[oai(validator(max_length = 4000))]
    pub disclosers: String,
    /// To whom.
    #[oai(validator(max_length = 4000))]
    pub recipients: String,
    /// The purpose: `marketing_email`, `marketing_sms`, `research` or `third_party_sharing`.
    pub purpose: PurposeName,
    /// The purpose, described.
    #[oai(validator(max_length = 4000))]
    pub purpose_statement: String,
    /// For `third_party_sharing`: the third party's name.
    #[oai(validator(max_length = 200))]
    #[oai(skip_serializing_if_is_none)]
    pub recipient_name: Option<String>,
    /// When it ends.
    pub expiry: ExpiryInput,
    /// The signer's name.
    #[oai(validator(max_length = 200))]
    pub signer: String,
    /// When it was signed (not in the future).
    pub signed_at: DateTime<Utc>,
    /// For a guardian: the description of their authority.
    #[oai(validator(max_length = 4000))]
    #[oai(skip_serializing_if_is_none)]
    pub representative_authority: Option<String>,
    /// The statement of the right to revoke, and how.
    #[oai(validator(max_length = 4000))]
    pub revocation_statement: String,
    /// Whether care may be conditioned on signing.
    #[oai(validator(max_length = 4000))]
    pub conditioning_statement: String,
    /// The potential for redisclosure.
    #[oai(validator(max_length = 4000))]
    pub redisclosure_statement: String,
}

/// A recorded authorisation.
#[derive(Debug, Object)]
pub struct AuthorisationView {
    /// Its id.
    pub id: Uuid,
    /// The purpose.
    pub purpose: String,
    /// The description of the information.
    pub information: String,
    /// Who may disclose.
    pub disclosers: String,
    /// To whom.
    pub recipients: String,
    /// The purpose, described.
    pub purpose_statement: String,
    /// The named third party.
    #[oai(skip_serializing_if_is_none)]
    pub recipient_name: Option<String>,
    /// The expiry date, if a date.
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<DateTime<Utc>>,
    /// The expiry event, if an event.
    #[oai(skip_serializing_if_is_none)]
    pub expiry_event: Option<String>,
    /// The signer.
    pub signer: String,
    /// When signed.
    pub signed_at: DateTime<Utc>,
    /// A representative's authority.
    #[oai(skip_serializing_if_is_none)]
    pub representative_authority: Option<String>,
    /// The right to revoke.
    pub revocation_statement: String,
    /// On conditioning.
    pub conditioning_statement: String,
    /// On redisclosure.
    pub redisclosure_statement: String,
    /// `person` or `guardian`.
    pub authority: String,
    /// The ledger grant it produced.
    pub grant_sequence: u64,
    /// When recorded.
    pub recorded_at: DateTime<Utc>,
}

impl From<StoredAuthorisation> for AuthorisationView {
    fn from(s: StoredAuthorisation) -> Self {
        let a = s.authorisation;
        let (expires_at, expiry_event) = match a.expiry {
            Expiry::Date(t) => (Some(time(t)), None),
            Expiry::Event(e) => (None, Some(e)),
        };
        Self {
            id: s.id,
            purpose: a.purpose.as_str().to_owned(),
            information: a.information,
            disclosers: a.disclosers,
            recipients: a.recipients,
            purpose_statement: a.purpose_statement,
            recipient_name: a.recipient_name,
            expires_at,
            expiry_event,
            signer: a.signature.signer,
            signed_at: time(a.signature.signed_at),
            representative_authority: a.signature.representative_authority,
            revocation_statement: a.revocation_statement,
            conditioning_statement: a.conditioning_statement,
            redisclosure_statement: a.redisclosure_statement,
            authority: s.authority.kind().to_owned(),
            grant_sequence: s.grant_sequence,
            recorded_at: time(s.recorded_at),
        }
    }
}

/// A person's authorisations.
#[derive(Debug, Object)]
pub struct AuthorisationList {
    /// Oldest first.
    pub items: Vec<AuthorisationView>,
}

/// The recorded authorisation and its grant.
#[derive(Debug, Object)]
pub struct RecordedAuthorisation {
    /// The authorisation's id.
    pub id: Uuid,
    /// The grant it produced.
    pub grant: ConsentEventView,
}

/// A provider's attestation that the client authorised sharing their information
/// with the service (S6).
#[derive(Debug, Object)]
pub struct NewAttestation {
    /// When the client gave it (not in the future).
    pub obtained_at: DateTime<Utc>,
    /// How.
    pub channel: AttestationChannel,
    /// The signed form's reference, if any.
    #[oai(validator(min_length = 1, max_length = 200))]
    #[oai(skip_serializing_if_is_none)]
    pub document_reference: Option<String>,
}

/// A provider's question about a client's consents.
#[derive(Debug, Object)]
pub struct ConsentCheckRequest {
    /// For what.
    pub purpose: PurposeName,
    /// Which data.
    pub category: CategoryName,
    /// For third-party sharing: the third party.
    #[oai(validator(min_length = 1, max_length = 200))]
    #[oai(skip_serializing_if_is_none)]
    pub recipient: Option<String>,
}

/// The answer: allowed with its basis, or not with the reason. Never the evidence.
#[derive(Debug, Object)]
pub struct ConsentCheck {
    /// Whether it may go ahead now.
    pub allowed: bool,
    /// The basis relied on, when allowed.
    #[oai(skip_serializing_if_is_none)]
    pub basis: Option<GroundView>,
    /// Why not: `consent_not_given`, `consent_withdrawn`, `consent_expired`,
    /// `objected`, `restricted`, `opted_out`, `guardian_required`,
    /// `service_authorisation_missing`.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
}

/// A practice's consent settings.
#[derive(Debug, Object)]
pub struct ConsentSettingsView {
    /// The marketing mode (U4); `opt_in` by default.
    pub marketing_mode: MarketingModeName,
    /// Purposes the practice holds to opt-in though the catalogue asks less.
    pub opt_in_required: Vec<PurposeName>,
    /// The regime whose bases decisions cite.
    pub regime: RegimeName,
}

/// The consent ledger event as an auditor exports it: everything the hash covers.
#[derive(Debug, Object)]
pub struct LedgerEventExport {
    /// The chain (a pseudonym, not the person's id).
    pub chain_id: Uuid,
    /// The position in the chain.
    pub sequence: u64,
    /// The previous event's hash, hex.
    pub prev_hash: String,
    /// This event's hash, hex: SHA-256 of `encoding`.
    pub hash: String,
    /// The canonical encoding the hash covers, hex (docs/consent.md).
    pub encoding: String,
    /// SHA-256 of the salted evidence, hex.
    pub evidence_digest: String,
    /// The event's fields.
    pub event: ConsentEventView,
}

/// A page of the ledger.
#[derive(Debug, Object)]
pub struct LedgerExport {
    /// In (chain, sequence) order.
    pub items: Vec<LedgerEventExport>,
    /// Pass as `after` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// One broken chain.
#[derive(Debug, Object)]
pub struct ConsentChainBreak {
    /// The chain.
    pub chain_id: Uuid,
    /// Where it breaks.
    pub sequence: u64,
    /// `sequence_gap`, `broken_link`, `hash_mismatch` or `wrong_chain`.
    pub problem: String,
}

/// The result of verifying the consent ledger.
#[derive(Debug, Object)]
pub struct ConsentVerification {
    /// Whether every chain verified and every projection is in step.
    pub intact: bool,
    /// Chains checked.
    pub chains: u64,
    /// Events checked.
    pub events: u64,
    /// Every broken chain.
    pub breaks: Vec<ConsentChainBreak>,
    /// Chains whose projection is not at their last event.
    pub projection_mismatches: Vec<Uuid>,
}

const CARE_ROLES: [Role; 2] = [Role::Provider, Role::OrgAdmin];
const SETTINGS_READERS: [Role; 4] = [
    Role::OrgAdmin,
    Role::Provider,
    Role::PrivacyOfficer,
    Role::Auditor,
];

/// Refuses an attestation dated in the future (422), before anything is written.
pub(crate) fn check_attestation(ctx: &RequestContext, b: &NewAttestation) -> Result<(), ApiError> {
    if b.obtained_at > ctx.at() {
        return Err(bad("`service_authorisation.obtained_at` is in the future"));
    }
    Ok(())
}

/// Records the provider's attestation (S6) for `client`, registering them with
/// their practice and whether they are a child.
pub(crate) async fn record_attestation(
    state: &AppState,
    ctx: &RequestContext,
    organisation: OrganisationId,
    (client, subject): (UserId, SubjectId),
    b: NewAttestation,
) -> Result<LedgerEvent, ApiError> {
    let provider = ctx
        .actor()
        .user()
        .ok_or_else(|| ApiError::new(ProblemKind::Unauthenticated, "Sign in as the provider."))?;
    let child = state
        .identity()
        .is_child(client, ctx.at().date_naive())
        .await?;
    state
        .consent()
        .register(subject, Some(organisation), child)
        .await?;
    Ok(state
        .consent()
        .attest(
            ctx,
            subject,
            provider,
            b.channel.channel(),
            b.document_reference,
            b.obtained_at,
        )
        .await?)
}

fn bad(detail: &str) -> ApiError {
    ApiError::new(
        ProblemKind::Unprocessable,
        format!("{detail}; nothing was recorded."),
    )
}

fn change_of(b: ConsentChange, authority: Authority) -> Result<Change, ApiError> {
    let action = b.action.action();
    let needs_purpose = matches!(
        action,
        LedgerAction::Grant | LedgerAction::Withdraw | LedgerAction::Object | LedgerAction::Expire
    );
    if needs_purpose && b.purpose.is_none() {
        return Err(bad("`purpose` is required for this action"));
    }
    if !needs_purpose && b.category.is_none() {
        return Err(bad("`category` is required for this action"));
    }
    if b.recipient.is_some() && b.purpose != Some(PurposeName::ThirdPartySharing) {
        return Err(bad("`recipient` is only for `third_party_sharing`"));
    }
    if b.purpose == Some(PurposeName::ThirdPartySharing) && b.recipient.is_none() {
        return Err(bad("`third_party_sharing` names its `recipient`"));
    }
    if b.expires_at.is_some() && action != LedgerAction::Grant {
        return Err(bad("only a grant has an expiry"));
    }
    Ok(Change {
        action,
        purpose: b
            .purpose
            .filter(|_| needs_purpose)
            .map(PurposeName::purpose),
        recipient: b.recipient,
        category: b
            .category
            .filter(|_| !needs_purpose)
            .map(CategoryName::category),
        authority,
        channel: b.channel.unwrap_or_default().channel(),
        document: None,
        effective_at: b.effective_at,
        expires_at: b.expires_at,
    })
}

fn authorisation_of(
    b: NewAuthorisation,
    now: DateTime<Utc>,
) -> Result<HipaaAuthorisation, ApiError> {
    if b.signed_at > now {
        return Err(bad("`signed_at` is in the future"));
    }
    let expiry = match (b.expiry.date, b.expiry.event) {
        (Some(date), None) => Expiry::Date(date.timestamp_micros()),
        (None, Some(event)) => Expiry::Event(event),
        _ => return Err(bad("`expiry` needs exactly one of `date` or `event`")),
    };
    Ok(HipaaAuthorisation {
        information: b.information,
        disclosers: b.disclosers,
        recipients: b.recipients,
        purpose: b.purpose.purpose(),
        purpose_statement: b.purpose_statement,
        recipient_name: b.recipient_name,
        expiry,
        signature: Signature {
            signer: b.signer,
            signed_at: b.signed_at.timestamp_micros(),
            representative_authority: b.representative_authority,
        },
        revocation_statement: b.revocation_statement,
        conditioning_statement: b.conditioning_statement,
        redisclosure_statement: b.redisclosure_statement,
    })
}

fn parse_after(after: Option<&str>) -> Result<Option<consent::ports::LedgerCursor>, ApiError> {
    let Some(raw) = after else { return Ok(None) };
    let invalid = || {
        ApiError::new(
            ProblemKind::BadRequest,
            "`after` must be a `next_cursor` from an earlier page.",
        )
    };
    let (chain, sequence) = raw.split_once(':').ok_or_else(invalid)?;
    let chain = Uuid::parse_str(chain).map_err(|_| invalid())?;
    let sequence = sequence.parse::<u64>().map_err(|_| invalid())?;
    Ok(Some((consent::ledger::ChainId(chain), sequence)))
}

impl ConsentApi {
    /// The caller's own subject, registered with whether they are a child (O1).
    async fn me(&self, ctx: &RequestContext) -> Result<SubjectId, ApiError> {
        let (me, _) = self.state.identity().me(ctx).await?;
        let child = self
            .state
            .identity()
            .is_child(me.id, ctx.at().date_naive())
            .await?;
        self.state
            .consent()
            .register(me.subject, None, child)
            .await?;
        Ok(me.subject)
    }

    /// The ward's subject when the caller is their guardian; else an audited 403.
    async fn ward(
        &self,
        ctx: &RequestContext,
        ward: Uuid,
        action: AuditAction,
    ) -> Result<SubjectId, ApiError> {
        match self
            .state
            .identity()
            .ward_subject(ctx, UserId::from_uuid(ward))
            .await
        {
            Ok((subject, organisation)) => {
                let child = self
                    .state
                    .identity()
                    .is_child(UserId::from_uuid(ward), ctx.at().date_naive())
                    .await?;
                self.state
                    .consent()
                    .register(subject, Some(organisation), child)
                    .await?;
                Ok(subject)
            }
            Err(identity::IdentityError::NotFound) => {
                Err(self.state.consent().refused(ctx, None, action).await.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn client(
        &self,
        ctx: &RequestContext,
        organisation: Uuid,
        client: Uuid,
        roles: &[Role],
    ) -> Result<SubjectId, ApiError> {
        Ok(self
            .state
            .identity()
            .client_subject(
                ctx,
                OrganisationId::from_uuid(organisation),
                UserId::from_uuid(client),
                roles,
            )
            .await?)
    }

    async fn overview_of(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<ConsentOverview, ApiError> {
        let (record, settings) = self.state.consent().overview(ctx, subject).await?;
        Ok(overview(
            subject,
            &record.state,
            &settings,
            record.minor,
            ctx.at(),
        ))
    }

    async fn require_role(
        &self,
        ctx: &RequestContext,
        roles: &[Role],
        action: AuditAction,
    ) -> Result<OrganisationId, ApiError> {
        match ctx.organisation() {
            Some(org) if ctx.actor().roles().contains_any(roles) => Ok(org),
            _ => Err(self.state.consent().refused(ctx, None, action).await.into()),
        }
    }
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Consent")]
impl ConsentApi {
    /// The purpose catalogue: each purpose's legal basis under HIPAA, GDPR and
    /// CCPA, and whether consent is needed. Public.
    #[oai(
        path = "/consent/purposes",
        method = "get",
        operation_id = "listConsentPurposes"
    )]
    async fn purposes(&self) -> Result<Found<PurposeCatalogue>, ApiError> {
        let items = PurposeName::ALL
            .into_iter()
            .map(|name| {
                let r = rule(name.purpose());
                PurposeView {
                    purpose: r.purpose.as_str().to_owned(),
                    hl7_code: r.purpose.hl7_code().map(str::to_owned),
                    hipaa_authorisation_required: matches!(
                        r.hipaa,
                        HipaaBasis::Authorisation { .. }
                    ),
                    gdpr_health_condition: r.gdpr_health.citation().map(str::to_owned),
                    ccpa_opt_out: r.ccpa_opt_out,
                    consent: mode_name(r.consent).to_owned(),
                    practice_may_relax: r.practice_may_relax,
                    bases: Regime::ALL
                        .into_iter()
                        .map(|g| r.ground(g).into())
                        .collect(),
                }
            })
            .collect();
        Ok(Found::Ok(Json(PurposeCatalogue { items })))
    }

    /// The sub-processor registry (S3): who receives which data and why. Public.
    #[oai(
        path = "/sub-processors",
        method = "get",
        operation_id = "listSubProcessors"
    )]
    async fn sub_processors(&self) -> Result<Found<SubProcessorList>, ApiError> {
        let items = consent::subprocessors::REGISTRY
            .iter()
            .map(|p| SubProcessorView {
                name: p.name.to_owned(),
                service: p.service.to_owned(),
                location: p.location.to_owned(),
                categories: p.categories.iter().map(|c| c.as_str().to_owned()).collect(),
                purpose: p.purpose.to_owned(),
            })
            .collect();
        Ok(Found::Ok(Json(SubProcessorList { items })))
    }

    /// Every published policy version with its effective date and content hash (O3). Public.
    #[oai(
        path = "/policies",
        method = "get",
        operation_id = "listPolicyVersions"
    )]
    async fn policies(&self) -> Result<Found<PolicyVersionList>, ApiError> {
        let versions = self.state.consent().policies().await?;
        Ok(Found::Ok(Json(PolicyVersionList {
            items: versions.iter().map(Into::into).collect(),
        })))
    }

    /// Publish a policy version (platform operator). A material change notifies
    /// everyone with a consent record.
    #[oai(
        path = "/policies",
        method = "post",
        operation_id = "publishPolicyVersion"
    )]
    async fn publish_policy(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<NewPolicyVersion>,
    ) -> Result<Created<PublishedPolicy>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Legal);
        if !matches!(ctx.actor(), Actor::PlatformOperator { .. }) {
            return Err(self
                .state
                .consent()
                .refused(&ctx, None, AuditAction::Create)
                .await
                .into());
        }
        let b = body.0;
        let version = PolicyVersion::new(
            &b.document,
            &b.version,
            b.effective_at.timestamp_micros(),
            &b.content,
            b.material,
            b.summary.as_deref().unwrap_or_default(),
            ctx.at().timestamp_micros(),
        )
        .map_err(ConsentServiceError::from)?;
        let notified = self.state.consent().publish(&ctx, &version).await?;
        Ok(Created::Created(Json(PublishedPolicy {
            version: (&version).into(),
            notified,
        })))
    }

    /// Your consents now: each purpose, what it needs, what you recorded, and
    /// whether it is allowed; restrictions and opt-outs.
    #[oai(path = "/me/consents", method = "get", operation_id = "getMyConsents")]
    async fn my_consents(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<ConsentOverview>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let subject = self.me(&ctx).await?;
        Ok(Found::Ok(Json(self.overview_of(&ctx, subject).await?)))
    }

    /// Give, withdraw, object, restrict or lift a restriction: one call each (D7).
    /// Withdrawing what was never given is 409.
    #[oai(
        path = "/me/consents",
        method = "post",
        operation_id = "changeMyConsent"
    )]
    async fn change_my_consent(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<ConsentChange>,
    ) -> Result<Created<ConsentEventView>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let change = change_of(body.0, Authority::Person)?;
        let subject = self.me(&ctx).await?;
        let event = self.state.consent().record(&ctx, subject, &change).await?;
        Ok(Created::Created(Json((&event).into())))
    }

    /// Your full consent history, with its evidence.
    #[oai(
        path = "/me/consents/history",
        method = "get",
        operation_id = "getMyConsentHistory"
    )]
    async fn my_history(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<ConsentHistory>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let subject = self.me(&ctx).await?;
        let history = self.state.consent().history(&ctx, subject).await?;
        Ok(Found::Ok(Json(ConsentHistory {
            items: history.into_iter().map(Into::into).collect(),
        })))
    }

    /// Your marketing preferences per channel; transactional notices are always sent.
    #[oai(
        path = "/me/communication-preferences",
        method = "get",
        operation_id = "getMyCommunicationPreferences"
    )]
    async fn my_preferences(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<CommunicationPreferences>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let subject = self.me(&ctx).await?;
        let p = self.state.consent().preferences(subject, ctx.at()).await?;
        Ok(Found::Ok(Json(p.into())))
    }

    /// Turn marketing by email or SMS on or off: one event each way (D7).
    #[oai(
        path = "/me/communication-preferences",
        method = "put",
        operation_id = "updateMyCommunicationPreferences"
    )]
    async fn update_my_preferences(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<CommunicationPreferencesChange>,
    ) -> Result<Found<CommunicationPreferences>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let subject = self.me(&ctx).await?;
        for (purpose, on) in [
            (Purpose::MarketingEmail, body.0.marketing_email),
            (Purpose::MarketingSms, body.0.marketing_sms),
        ] {
            if let Some(on) = on {
                self.state
                    .consent()
                    .set_preference(&ctx, subject, purpose, on, Authority::Person, Channel::Web)
                    .await?;
            }
        }
        let p = self.state.consent().preferences(subject, ctx.at()).await?;
        Ok(Found::Ok(Json(p.into())))
    }

    /// Record a HIPAA authorisation you signed (§164.508); it grants its purpose.
    #[oai(
        path = "/me/authorisations",
        method = "post",
        operation_id = "createMyAuthorisation"
    )]
    async fn create_my_authorisation(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<NewAuthorisation>,
    ) -> Result<Created<RecordedAuthorisation>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let authorisation = authorisation_of(body.0, ctx.at())?;
        authorisation
            .validate(Authority::Person)
            .map_err(ConsentServiceError::from)?;
        let subject = self.me(&ctx).await?;
        let (id, grant) = self
            .state
            .consent()
            .authorise(
                &ctx,
                subject,
                &authorisation,
                Authority::Person,
                Channel::Web,
            )
            .await?;
        Ok(Created::Created(Json(RecordedAuthorisation {
            id,
            grant: (&grant).into(),
        })))
    }

    /// Your HIPAA authorisations.
    #[oai(
        path = "/me/authorisations",
        method = "get",
        operation_id = "listMyAuthorisations"
    )]
    async fn my_authorisations(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<AuthorisationList>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let subject = self.me(&ctx).await?;
        let list = self.state.consent().authorisations(&ctx, subject).await?;
        Ok(Found::Ok(Json(AuthorisationList {
            items: list.into_iter().map(Into::into).collect(),
        })))
    }

    /// Revoke one of your authorisations, at once. Revoking twice is 409.
    #[oai(
        path = "/me/authorisations/:authorisation_id/revocation",
        method = "post",
        operation_id = "revokeMyAuthorisation"
    )]
    async fn revoke_my_authorisation(
        &self,
        req: &Request,
        auth: SessionAuth,
        authorisation_id: Path<Uuid>,
    ) -> Result<Created<ConsentEventView>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let subject = self.me(&ctx).await?;
        let event = self
            .state
            .consent()
            .revoke(
                &ctx,
                subject,
                authorisation_id.0,
                Authority::Person,
                Channel::Web,
            )
            .await?;
        Ok(Created::Created(Json((&event).into())))
    }

    /// Your ward's consents (guardians, O1). Anyone else: 403, audited.
    #[oai(
        path = "/me/wards/:user_id/consents",
        method = "get",
        operation_id = "getWardConsents"
    )]
    async fn ward_consents(
        &self,
        req: &Request,
        auth: SessionAuth,
        user_id: Path<Uuid>,
    ) -> Result<Found<ConsentOverview>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let subject = self.ward(&ctx, user_id.0, AuditAction::Read).await?;
        Ok(Found::Ok(Json(self.overview_of(&ctx, subject).await?)))
    }

    /// Change your ward's consents as their guardian (O1). Anyone else: 403, audited.
    #[oai(
        path = "/me/wards/:user_id/consents",
        method = "post",
        operation_id = "changeWardConsent"
    )]
    async fn change_ward_consent(
        &self,
        req: &Request,
        auth: SessionAuth,
        user_id: Path<Uuid>,
        body: Json<ConsentChange>,
    ) -> Result<Created<ConsentEventView>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let guardian = ctx.actor().user().ok_or_else(|| {
            ApiError::new(ProblemKind::Unauthenticated, "Sign in as the guardian.")
        })?;
        let change = change_of(body.0, Authority::Guardian(guardian))?;
        let subject = self.ward(&ctx, user_id.0, AuditAction::Create).await?;
        let event = self.state.consent().record(&ctx, subject, &change).await?;
        Ok(Created::Created(Json((&event).into())))
    }

    /// Attest that the client authorised sharing their information with the
    /// service (providers, org admins; S6). Their health data cannot be entered
    /// before it.
    #[oai(
        path = "/organisations/:organisation_id/clients/:user_id/service-authorisation",
        method = "post",
        operation_id = "attestServiceAuthorisation"
    )]
    async fn attest(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        user_id: Path<Uuid>,
        body: Json<NewAttestation>,
    ) -> Result<Created<ConsentEventView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Treatment);
        let b = body.0;
        check_attestation(&ctx, &b)?;
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let subject = self
            .client(&ctx, organisation_id.0, user_id.0, &CARE_ROLES)
            .await?;
        let client = UserId::from_uuid(user_id.0);
        let event =
            record_attestation(&self.state, &ctx, organisation, (client, subject), b).await?;
        Ok(Created::Created(Json((&event).into())))
    }

    /// Would this use of a client's data be allowed now? The basis or the reason,
    /// never the evidence (providers, org admins, privacy officers).
    #[oai(
        path = "/organisations/:organisation_id/clients/:user_id/consent-checks",
        method = "post",
        operation_id = "checkClientConsent"
    )]
    async fn check(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        user_id: Path<Uuid>,
        body: Json<ConsentCheckRequest>,
    ) -> Result<Found<ConsentCheck>, ApiError> {
        let b = body.0;
        let ctx = auth.context(&self.state, req, b.purpose.purpose());
        let subject = self
            .client(
                &ctx,
                organisation_id.0,
                user_id.0,
                &[Role::Provider, Role::OrgAdmin, Role::PrivacyOfficer],
            )
            .await?;
        let decision = self
            .state
            .consent()
            .check(
                &ctx,
                subject,
                b.purpose.purpose(),
                b.recipient.as_deref(),
                b.category.category(),
            )
            .await?;
        Ok(Found::Ok(Json(match decision {
            ConsentDecision::Allow { basis, .. } => ConsentCheck {
                allowed: true,
                basis: Some(basis.into()),
                reason: None,
            },
            ConsentDecision::Deny { reason } => ConsentCheck {
                allowed: false,
                basis: None,
                reason: Some(reason.as_str().to_owned()),
            },
        })))
    }

    /// Your practice's consent settings (members of the practice).
    #[oai(
        path = "/organisations/:organisation_id/consent-settings",
        method = "get",
        operation_id = "getConsentSettings"
    )]
    async fn settings(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
    ) -> Result<Found<ConsentSettingsView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let org = own_practice(&ctx, organisation_id.0)?;
        self.require_role(&ctx, &SETTINGS_READERS, AuditAction::Read)
            .await?;
        let s = self.state.consent().settings(org).await?;
        Ok(Found::Ok(Json(settings_view(&s))))
    }

    /// Replace your practice's consent settings (org admins). Settings may only
    /// make a purpose stricter, except the marketing mode (U4).
    #[oai(
        path = "/organisations/:organisation_id/consent-settings",
        method = "put",
        operation_id = "updateConsentSettings"
    )]
    async fn update_settings(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        body: Json<ConsentSettingsView>,
    ) -> Result<Found<ConsentSettingsView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let org = own_practice(&ctx, organisation_id.0)?;
        self.require_role(&ctx, &[Role::OrgAdmin], AuditAction::Update)
            .await?;
        let b = body.0;
        let settings = PracticeSettings {
            policy: consent::PracticePolicy {
                marketing: match b.marketing_mode {
                    MarketingModeName::OptIn => MarketingMode::OptIn,
                    MarketingModeName::OptOut => MarketingMode::OptOut,
                },
                opt_in_required: b.opt_in_required.iter().map(|p| p.purpose()).collect(),
            },
            regime: b.regime.into(),
        };
        self.state
            .consent()
            .set_settings(&ctx, org, &settings)
            .await?;
        Ok(Found::Ok(Json(settings_view(&settings))))
    }

    /// Export your practice's consent ledger with what is needed to verify it
    /// (auditors): each event's encoding, hash and link. Chains are pseudonymous.
    #[oai(
        path = "/consent/ledger",
        method = "get",
        operation_id = "exportConsentLedger"
    )]
    async fn export_ledger(
        &self,
        req: &Request,
        auth: SessionAuth,
        #[oai(validator(max_length = 64))] after: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))] limit: Query<Option<u32>>,
    ) -> Result<Found<LedgerExport>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Oversight);
        let after = parse_after(after.0.as_deref())?;
        let org = self
            .require_role(&ctx, &[Role::Auditor], AuditAction::Export)
            .await?;
        let limit = limit.0.unwrap_or(200);
        let page = self
            .state
            .consent()
            .export_ledger(&ctx, org, after, limit + 1)
            .await?;
        let more = page.len() > limit as usize;
        let items: Vec<LedgerEventExport> = page
            .iter()
            .take(limit as usize)
            .map(|e| LedgerEventExport {
                chain_id: e.chain.0,
                sequence: e.sequence,
                prev_hash: hex(&e.prev_hash),
                hash: hex(&e.hash),
                encoding: hex(&e.encoding()),
                evidence_digest: hex(&e.body.evidence_digest),
                event: e.into(),
            })
            .collect();
        let next_cursor = more
            .then(|| {
                items
                    .last()
                    .map(|e| format!("{}:{}", e.chain_id, e.sequence))
            })
            .flatten();
        Ok(Found::Ok(Json(LedgerExport { items, next_cursor })))
    }

    /// Verify every chain of the consent ledger, and that every decision
    /// projection is at its chain's last event (auditors).
    #[oai(
        path = "/consent/verification",
        method = "get",
        operation_id = "verifyConsentLedger"
    )]
    async fn verify(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<ConsentVerification>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Oversight);
        self.require_role(&ctx, &[Role::Auditor], AuditAction::Verify)
            .await?;
        let report = self.state.consent().verify(Some(&ctx)).await?;
        Ok(Found::Ok(Json(ConsentVerification {
            intact: report.is_intact(),
            chains: report.chains,
            events: report.events,
            breaks: report
                .breaks
                .iter()
                .map(|(chain, b)| ConsentChainBreak {
                    chain_id: chain.0,
                    sequence: b.sequence,
                    problem: b.problem.as_str().to_owned(),
                })
                .collect(),
            projection_mismatches: report.projection_mismatches.iter().map(|c| c.0).collect(),
        })))
    }
}

/// The practice named in the path, when it is the caller's; another practice is
/// 404, as one that does not exist.
fn own_practice(ctx: &RequestContext, organisation: Uuid) -> Result<OrganisationId, ApiError> {
    let org = OrganisationId::from_uuid(organisation);
    if ctx.organisation() == Some(org) {
        Ok(org)
    } else {
        Err(ApiError::new(ProblemKind::NotFound, "No such practice."))
    }
}

fn settings_view(s: &PracticeSettings) -> ConsentSettingsView {
    ConsentSettingsView {
        marketing_mode: match s.policy.marketing {
            MarketingMode::OptIn => MarketingModeName::OptIn,
            MarketingMode::OptOut => MarketingModeName::OptOut,
        },
        opt_in_required: PurposeName::ALL
            .into_iter()
            .filter(|p| s.policy.opt_in_required.contains(&p.purpose()))
            .collect(),
        regime: s.regime.into(),
    }
}
