//! Data rights' wire shapes, and their conversion from the domain at the edge.
//!
//! Kinds, regimes, statuses, purposes and categories travel as their stable
//! machine names (`access`, `gdpr`, `in_progress`, `marketing_email`,
//! `health_record`). A rectification's value is any JSON as filed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use data_rights::case::{Case, CaseKind, CaseStatus};
use data_rights::ports::StoredAuthority;
use data_rights::request::{RequestDetail, RequestResult, RequestStatus, Requester, RightsRequest};
use data_rights::statements::Statements;
use kernel::personal_data::{ErasureOutcome, RecordFate};
use poem_openapi::{Enum, Object};
use uuid::Uuid;

use crate::api::consent::GroundView;

// ----------------------------------------------------------------- input

/// A correction of one field of one record, in the context that holds it.
#[derive(Debug, Clone, Object)]
pub struct RectificationBody {
    /// The context that holds the record: `identity`, `clinical`, `consent`,
    /// `billing` or `audit`.
    #[oai(validator(max_length = 40))]
    pub context: String,
    /// The record's kind, as the export names it (e.g. `condition`, `account`).
    #[oai(validator(max_length = 60))]
    pub resource_kind: String,
    /// The record's id, as the export names it.
    pub resource_id: Uuid,
    /// The field, by its name in the export (e.g. `text`, `name`).
    #[oai(validator(max_length = 100))]
    pub field: String,
    /// The corrected value, any JSON (at most 10,000 bytes once serialised).
    pub value: serde_json::Value,
}

/// A rights request as a person files it.
#[derive(Debug, Clone, Object)]
pub struct RightsRequestBody {
    /// What is asked: `access`, `rectification`, `erasure`, `restriction`,
    /// `portability`, `objection`, `withdrawal`, `ccpa_know`, `ccpa_delete` or
    /// `accounting_of_disclosures`.
    #[oai(validator(max_length = 40))]
    pub kind: String,
    /// Under which law: `hipaa`, `gdpr` or `ccpa`. The CCPA kinds exist only
    /// under the CCPA, the accounting of disclosures only under HIPAA.
    #[oai(validator(max_length = 10))]
    pub regime: String,
    /// For a minor the caller is the recorded guardian of.
    pub minor_user_id: Option<Uuid>,
    /// For the person whose proof of authority names the caller as agent.
    pub authority_id: Option<Uuid>,
    /// Withdrawal and objection: the purpose (e.g. `marketing_email`).
    #[oai(validator(max_length = 40))]
    pub purpose: Option<String>,
    /// Withdrawal: the recipient the consent named, if it named one.
    #[oai(validator(max_length = 200))]
    pub recipient: Option<String>,
    /// Restriction: the categories (e.g. `health_record`); absent for all.
    #[oai(validator(max_items = 17))]
    pub categories: Option<Vec<String>>,
    /// Restriction: `true` lifts an earlier restriction instead.
    pub lift: Option<bool>,
    /// Rectification: the record and the corrected value.
    pub rectification: Option<RectificationBody>,
}

/// A rights request a provider files for a client of the practice.
#[derive(Debug, Clone, Object)]
pub struct ClientRightsRequestBody {
    /// What is asked (as for `fileRightsRequest`).
    #[oai(validator(max_length = 40))]
    pub kind: String,
    /// Under which law: `hipaa`, `gdpr` or `ccpa`.
    #[oai(validator(max_length = 10))]
    pub regime: String,
    /// Withdrawal and objection: the purpose.
    #[oai(validator(max_length = 40))]
    pub purpose: Option<String>,
    /// Withdrawal: the recipient the consent named, if it named one.
    #[oai(validator(max_length = 200))]
    pub recipient: Option<String>,
    /// Restriction: the categories; absent for all.
    #[oai(validator(max_items = 17))]
    pub categories: Option<Vec<String>>,
    /// Restriction: `true` lifts an earlier restriction instead.
    pub lift: Option<bool>,
    /// Rectification: the record and the corrected value.
    pub rectification: Option<RectificationBody>,
}

/// The privacy officer's verification outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum VerificationOutcome {
    /// The requester's identity and authority were verified.
    Verified,
    /// They could not be: the request is denied on the regime's ground.
    Failed,
}

/// The privacy officer's verification of a requester.
#[derive(Debug, Clone, Object)]
pub struct VerificationBody {
    /// `verified` or `failed`.
    pub outcome: VerificationOutcome,
}

/// A denial with its reason and legal ground.
#[derive(Debug, Clone, Object)]
pub struct DenialBody {
    /// Why, in plain words, for the person (1 to 1000 characters).
    #[oai(validator(max_length = 1000))]
    pub reason: String,
    /// The citation of the ground (1 to 200 characters), e.g. `GDPR Art. 17(3)(b)`.
    #[oai(validator(max_length = 200))]
    pub citation: String,
    /// The ground in plain words.
    #[oai(validator(max_length = 2000))]
    pub statement: String,
    /// The regime the citation belongs to; the request's by default.
    #[oai(validator(max_length = 10))]
    pub regime: Option<String>,
}

/// The appointment of an authorised agent.
#[derive(Debug, Clone, Object)]
pub struct AppointAgentBody {
    /// The agent's account.
    pub agent_user_id: Uuid,
    /// Where the signed permission or power of attorney is kept (1 to 200
    /// characters).
    #[oai(validator(max_length = 200))]
    pub document_ref: String,
    /// The kinds of request the agent may file; absent for every kind.
    #[oai(validator(max_items = 10))]
    pub scope: Option<Vec<String>>,
    /// When the appointment ends.
    pub expires_at: DateTime<Utc>,
}

/// What a case is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum CaseKindName {
    /// A question or complaint about privacy (answered within 30 days).
    PrivacyQuestion,
    /// A belief that an interaction is no longer secure (assessed within 72 hours).
    SecurityConcern,
}

impl CaseKindName {
    /// The domain's kind.
    #[must_use]
    pub const fn domain(self) -> CaseKind {
        match self {
            Self::PrivacyQuestion => CaseKind::PrivacyQuestion,
            Self::SecurityConcern => CaseKind::SecurityConcern,
        }
    }
}

/// A privacy question or security concern as sent.
#[derive(Debug, Clone, Object)]
pub struct CaseBody {
    /// `privacy_question` or `security_concern`.
    pub kind: CaseKindName,
    /// What happened or what is asked (1 to 4000 characters).
    #[oai(validator(max_length = 4000))]
    pub message: String,
    /// An email address to answer; needed when not signed in.
    #[oai(validator(max_length = 254))]
    pub reply_to: Option<String>,
}

/// Where a case goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum CaseStatusName {
    /// Back to open.
    Open,
    /// Being worked.
    InProgress,
    /// Answered or dealt with; final.
    Resolved,
}

impl CaseStatusName {
    /// The domain's status.
    #[must_use]
    pub const fn domain(self) -> CaseStatus {
        match self {
            Self::Open => CaseStatus::Open,
            Self::InProgress => CaseStatus::InProgress,
            Self::Resolved => CaseStatus::Resolved,
        }
    }
}

/// A case's next step.
#[derive(Debug, Clone, Object)]
pub struct CaseStatusBody {
    /// The status it goes to.
    pub status: CaseStatusName,
    /// A note to the reporter (at most 4000 characters).
    #[oai(validator(max_length = 4000))]
    pub note: Option<String>,
}

// ---------------------------------------------------------------- output

/// Who answers for the processing.
#[derive(Debug, Clone, Object)]
pub struct ControllerView {
    /// The controller's legal name.
    pub name: String,
    /// Its postal address.
    pub address: String,
    /// The privacy officer's email address.
    pub privacy_officer_email: String,
}

/// One processing activity and its legal basis under each regime.
#[derive(Debug, Object)]
pub struct ProcessingView {
    /// The purpose.
    pub purpose: String,
    /// Its basis under each regime.
    pub grounds: Vec<GroundView>,
}

/// What every answer states (D13): the controller, every processing activity's
/// legal basis, and the right to complain.
#[derive(Debug, Object)]
pub struct StatementsView {
    /// The controller and its privacy officer.
    pub controller: ControllerView,
    /// Every processing activity with its legal bases.
    pub processing: Vec<ProcessingView>,
    /// The right to lodge a complaint with a supervisory authority.
    pub right_to_complain: String,
}

impl From<&Statements> for StatementsView {
    fn from(s: &Statements) -> Self {
        Self {
            controller: ControllerView {
                name: s.controller.name.clone(),
                address: s.controller.address.clone(),
                privacy_officer_email: s.controller.privacy_officer_email.clone(),
            },
            processing: s
                .processing
                .iter()
                .map(|p| ProcessingView {
                    purpose: p.purpose.as_str().to_owned(),
                    grounds: p.grounds.iter().cloned().map(GroundView::from).collect(),
                })
                .collect(),
            right_to_complain: s.right_to_complain.clone(),
        }
    }
}

/// Who filed a request.
#[derive(Debug, Clone, Object)]
pub struct RequesterView {
    /// `subject`, `guardian`, `authorised_agent` or `provider`.
    pub kind: String,
    /// Their account.
    pub user_id: Uuid,
}

impl From<Requester> for RequesterView {
    fn from(r: Requester) -> Self {
        let kind = match r {
            Requester::Subject { .. } => "subject",
            Requester::Guardian { .. } => "guardian",
            Requester::AuthorisedAgent { .. } => "authorised_agent",
            Requester::Provider { .. } => "provider",
        };
        Self {
            kind: kind.to_owned(),
            user_id: r.user().as_uuid(),
        }
    }
}

/// What a request asks beyond its kind, as filed.
#[derive(Debug, Clone, Default, Object)]
pub struct DetailView {
    /// Withdrawal and objection: the purpose.
    #[oai(skip_serializing_if_is_none)]
    pub purpose: Option<String>,
    /// Withdrawal: the recipient the consent named.
    #[oai(skip_serializing_if_is_none)]
    pub recipient: Option<String>,
    /// Restriction: the categories (empty: every one).
    #[oai(skip_serializing_if_is_none)]
    pub categories: Option<Vec<String>>,
    /// Restriction: whether it lifts an earlier one.
    #[oai(skip_serializing_if_is_none)]
    pub lift: Option<bool>,
    /// Rectification: the record and the corrected value.
    #[oai(skip_serializing_if_is_none)]
    pub rectification: Option<RectificationBody>,
}

impl DetailView {
    /// The view of `detail`; `None` for a kind that needs nothing more.
    #[must_use]
    pub fn of(detail: &RequestDetail) -> Option<Self> {
        match detail {
            RequestDetail::None => None,
            RequestDetail::Rectification {
                context,
                resource_kind,
                resource_id,
                field,
                value,
            } => Some(Self {
                rectification: Some(RectificationBody {
                    context: context.clone(),
                    resource_kind: resource_kind.clone(),
                    resource_id: *resource_id,
                    field: field.clone(),
                    value: serde_json::from_str(value)
                        .unwrap_or_else(|_| serde_json::Value::String(value.clone())),
                }),
                ..Self::default()
            }),
            RequestDetail::Restriction { categories, lift } => Some(Self {
                categories: Some(categories.iter().map(|c| c.as_str().to_owned()).collect()),
                lift: Some(*lift),
                ..Self::default()
            }),
            RequestDetail::Objection { purpose } => Some(Self {
                purpose: Some(purpose.as_str().to_owned()),
                ..Self::default()
            }),
            RequestDetail::Withdrawal { purpose, recipient } => Some(Self {
                purpose: Some(purpose.as_str().to_owned()),
                recipient: recipient.clone(),
                ..Self::default()
            }),
        }
    }
}

/// Why a request was denied.
#[derive(Debug, Clone, Object)]
pub struct DenialView {
    /// Why, in plain words.
    pub reason: String,
    /// The regime of the ground.
    pub regime: String,
    /// The citation.
    pub citation: String,
    /// The ground in plain words.
    pub statement: String,
}

/// One step of a request's history.
#[derive(Debug, Clone, Object)]
pub struct RequestHistoryView {
    /// When.
    pub at: DateTime<Utc>,
    /// The status entered.
    pub status: String,
    /// Who moved it (absent: Custodia itself).
    #[oai(skip_serializing_if_is_none)]
    pub by: Option<Uuid>,
}

/// One record's fate on erasure.
#[derive(Debug, Object)]
pub struct OutcomeView {
    /// The category of data.
    pub category: String,
    /// The record's kind.
    pub resource_kind: String,
    /// The record's id.
    pub resource_id: Uuid,
    /// `deleted`, `anonymised` or `retained`.
    pub fate: String,
    /// Retained: the ground for keeping it.
    #[oai(skip_serializing_if_is_none)]
    pub ground: Option<GroundView>,
    /// Retained: when it will be erased, if known.
    #[oai(skip_serializing_if_is_none)]
    pub until: Option<DateTime<Utc>>,
}

impl From<&ErasureOutcome> for OutcomeView {
    fn from(o: &ErasureOutcome) -> Self {
        let (fate, ground, until) = match &o.fate {
            RecordFate::Deleted => ("deleted", None, None),
            RecordFate::Anonymised => ("anonymised", None, None),
            RecordFate::Retained { ground, until } => {
                ("retained", Some(GroundView::from(ground.clone())), *until)
            }
        };
        Self {
            category: o.category.as_str().to_owned(),
            resource_kind: o.resource.kind.to_owned(),
            resource_id: o.resource.id,
            fate: fate.to_owned(),
            ground,
            until,
        }
    }
}

/// Records kept on one ground, summed up for the person.
#[derive(Debug, Clone, Object)]
pub struct RetainedView {
    /// The category of data.
    pub category: String,
    /// The records' kind.
    pub resource_kind: String,
    /// How many are kept.
    pub records: u64,
    /// The regime of the ground.
    pub regime: String,
    /// The citation.
    pub citation: String,
    /// The ground in plain words.
    pub statement: String,
    /// When they will be erased, if known (the latest of them).
    #[oai(skip_serializing_if_is_none)]
    pub until: Option<DateTime<Utc>>,
}

/// The retained records of `outcomes`, grouped by category, kind and ground.
fn retained(outcomes: &[ErasureOutcome]) -> Vec<RetainedView> {
    let mut groups: BTreeMap<(String, String, String, String), RetainedView> = BTreeMap::new();
    for o in outcomes {
        let RecordFate::Retained { ground, until } = &o.fate else {
            continue;
        };
        let key = (
            o.category.as_str().to_owned(),
            o.resource.kind.to_owned(),
            ground.regime.as_str().to_owned(),
            ground.citation.to_string(),
        );
        let entry = groups.entry(key).or_insert_with(|| RetainedView {
            category: o.category.as_str().to_owned(),
            resource_kind: o.resource.kind.to_owned(),
            records: 0,
            regime: ground.regime.as_str().to_owned(),
            citation: ground.citation.to_string(),
            statement: ground.statement.to_string(),
            until: None,
        });
        entry.records += 1;
        entry.until = entry.until.max(*until);
    }
    groups.into_values().collect()
}

/// What carrying a request out produced.
#[derive(Debug, Object)]
pub struct ResultView {
    /// `archive` (download it), `erasure` (every record's fate) or `applied`.
    pub kind: String,
    /// Archive: its SHA-256, lowercase hex (also the download's
    /// `X-Content-SHA256`).
    #[oai(skip_serializing_if_is_none)]
    pub sha256: Option<String>,
    /// Archive: its size in bytes.
    #[oai(skip_serializing_if_is_none)]
    pub bytes: Option<u64>,
    /// Erasure: every record's fate.
    #[oai(skip_serializing_if_is_none)]
    pub outcomes: Option<Vec<OutcomeView>>,
    /// Erasure: what was kept, and on which ground.
    #[oai(skip_serializing_if_is_none)]
    pub retained: Option<Vec<RetainedView>>,
}

impl From<&RequestResult> for ResultView {
    fn from(r: &RequestResult) -> Self {
        match r {
            RequestResult::Archive { sha256, bytes } => Self {
                kind: "archive".to_owned(),
                sha256: Some(sha256.clone()),
                bytes: Some(*bytes),
                outcomes: None,
                retained: None,
            },
            RequestResult::Erasure { outcomes } => Self {
                kind: "erasure".to_owned(),
                sha256: None,
                bytes: None,
                outcomes: Some(outcomes.iter().map(OutcomeView::from).collect()),
                retained: Some(retained(outcomes)),
            },
            RequestResult::Applied => Self {
                kind: "applied".to_owned(),
                sha256: None,
                bytes: None,
                outcomes: None,
                retained: None,
            },
        }
    }
}

/// A rights request, its clock, history and result.
#[derive(Debug, Object)]
pub struct RightsRequestView {
    /// Its id.
    pub id: Uuid,
    /// What is asked.
    pub kind: String,
    /// Under which law.
    pub regime: String,
    /// `received`, `awaiting_verification`, `verified`, `in_progress`,
    /// `extended`, `completed` or `denied`.
    pub status: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// When the answer is due (the extended time once extended).
    pub due_at: DateTime<Utc>,
    /// When the answer is due if extended.
    pub extended_due_at: DateTime<Utc>,
    /// The last moment an extension may be announced.
    pub extension_notice_by: DateTime<Utc>,
    /// CCPA: when receipt must have been acknowledged.
    #[oai(skip_serializing_if_is_none)]
    pub acknowledge_by: Option<DateTime<Utc>>,
    /// Where the deadline comes from.
    pub deadline_citation: String,
    /// Open and due within 7 days, or overdue.
    pub nearing: bool,
    /// Who filed it.
    pub requester: RequesterView,
    /// The practice whose privacy officer works it.
    pub organisation_id: Uuid,
    /// What more it asks, as filed.
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<DetailView>,
    /// Why it was denied.
    #[oai(skip_serializing_if_is_none)]
    pub denial: Option<DenialView>,
    /// Every status it went through, oldest first.
    pub history: Vec<RequestHistoryView>,
    /// What was done, once it was.
    #[oai(skip_serializing_if_is_none)]
    pub result: Option<ResultView>,
    /// The legal bases, the right to complain and the controller (D13).
    pub statements: StatementsView,
}

impl RightsRequestView {
    /// The view of `request` at `now`, with `statements`.
    #[must_use]
    pub fn of(request: &RightsRequest, now: DateTime<Utc>, statements: &Statements) -> Self {
        let denial = match &request.status {
            RequestStatus::Denied { reason, ground } => Some(DenialView {
                reason: reason.clone(),
                regime: ground.regime.as_str().to_owned(),
                citation: ground.citation.to_string(),
                statement: ground.statement.to_string(),
            }),
            _ => None,
        };
        Self {
            id: request.id.as_uuid(),
            kind: request.kind.as_str().to_owned(),
            regime: request.regime.as_str().to_owned(),
            status: request.status.as_str().to_owned(),
            received_at: request.received_at,
            due_at: request.due_at(),
            extended_due_at: request.deadlines.extended_due_at,
            extension_notice_by: request.deadlines.extension_notice_by,
            acknowledge_by: request.deadlines.acknowledge_by,
            deadline_citation: request.deadlines.citation.to_owned(),
            nearing: request.is_nearing(now),
            requester: request.requester.into(),
            organisation_id: request.organisation.as_uuid(),
            detail: DetailView::of(&request.detail),
            denial,
            history: request
                .history
                .iter()
                .map(|h| RequestHistoryView {
                    at: h.at,
                    status: h.status.as_str().to_owned(),
                    by: h.by.map(|u| u.as_uuid()),
                })
                .collect(),
            result: request.result.as_ref().map(ResultView::from),
            statements: statements.into(),
        }
    }
}

/// Rights requests.
#[derive(Debug, Object)]
pub struct RightsRequestList {
    /// The requests.
    pub items: Vec<RightsRequestView>,
}

/// An authorised agent's appointment (a proof of authority).
#[derive(Debug, Clone, Object)]
pub struct AuthorityView {
    /// Its id, which the agent names as `authority_id` when filing.
    pub id: Uuid,
    /// The agent's account.
    pub agent_user_id: Uuid,
    /// Where the signed permission or power of attorney is kept.
    pub document_ref: String,
    /// The kinds of request it covers; `null` for every kind.
    pub scope: Option<Vec<String>>,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
    /// When the person confirmed the agent; `null` until they do.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Whether the agent may act on it now (confirmed and not expired).
    pub active: bool,
}

impl AuthorityView {
    /// The view of `authority` at `now`.
    #[must_use]
    pub fn of(authority: &StoredAuthority, now: DateTime<Utc>) -> Self {
        let proof = &authority.proof;
        Self {
            id: authority.id.as_uuid(),
            agent_user_id: proof.agent.as_uuid(),
            document_ref: proof.document_ref.clone(),
            scope: match &proof.scope {
                data_rights::authority::Scope::All => None,
                data_rights::authority::Scope::Kinds(kinds) => {
                    Some(kinds.iter().map(|k| k.as_str().to_owned()).collect())
                }
            },
            expires_at: proof.expires_at,
            confirmed_at: proof.confirmed_at,
            recorded_at: authority.recorded_at,
            active: proof.confirmed_at.is_some() && proof.expires_at > now,
        }
    }
}

/// Appointments of authorised agents.
#[derive(Debug, Clone, Object)]
pub struct AuthorityList {
    /// The appointments.
    pub items: Vec<AuthorityView>,
}

/// One step of a case's history.
#[derive(Debug, Clone, Object)]
pub struct CaseHistoryView {
    /// When.
    pub at: DateTime<Utc>,
    /// The status it went to.
    pub status: String,
    /// The office's note to the reporter.
    #[oai(skip_serializing_if_is_none)]
    pub note: Option<String>,
}

/// A privacy question or security concern.
#[derive(Debug, Clone, Object)]
pub struct CaseView {
    /// Its id.
    pub id: Uuid,
    /// `privacy_question` or `security_concern`.
    pub kind: String,
    /// `open`, `in_progress` or `resolved`.
    pub status: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// When it must be answered by.
    pub due_at: DateTime<Utc>,
    /// What was written (the reporter's own, or read by the office).
    pub message: String,
    /// Where to answer, when given.
    #[oai(skip_serializing_if_is_none)]
    pub reply_to: Option<String>,
    /// Every step, oldest first.
    pub history: Vec<CaseHistoryView>,
}

impl From<&Case> for CaseView {
    fn from(c: &Case) -> Self {
        Self {
            id: c.id.as_uuid(),
            kind: c.kind.as_str().to_owned(),
            status: c.status.as_str().to_owned(),
            received_at: c.received_at,
            due_at: c.due_at,
            message: c.message.clone(),
            reply_to: c.reply_to.clone(),
            history: c
                .history
                .iter()
                .map(|h| CaseHistoryView {
                    at: h.at,
                    status: h.status.as_str().to_owned(),
                    note: h.note.clone(),
                })
                .collect(),
        }
    }
}

/// Privacy questions and security concerns.
#[derive(Debug, Clone, Object)]
pub struct CaseList {
    /// The cases.
    pub items: Vec<CaseView>,
}

/// What a research extract is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ExtractPurpose {
    /// Research (needs the client's opt-in).
    Research,
    /// Analytics.
    Analytics,
}

/// One de-identified record of a research extract.
#[derive(Debug, Object)]
pub struct ResearchRecordView {
    /// The record's kind (e.g. `condition`, `medication`, `adherence_log`).
    pub kind: String,
    /// The year it refers to, when one is known and may be given.
    #[oai(skip_serializing_if_is_none)]
    pub year: Option<i32>,
    /// Its allow-listed, de-identified fields (see `data_rights::deidentify`).
    pub data: serde_json::Value,
}

/// One client of a research extract, under a random id.
#[derive(Debug, Object)]
pub struct ResearchSubjectView {
    /// A random id, new for each extract.
    pub research_id: Uuid,
    /// Age in whole years, or `90+`.
    #[oai(skip_serializing_if_is_none)]
    pub age: Option<String>,
    /// Sex, as recorded.
    #[oai(skip_serializing_if_is_none)]
    pub sex: Option<String>,
    /// The first three digits of a US ZIP code (`000` where the population is
    /// 20,000 or fewer).
    #[oai(skip_serializing_if_is_none)]
    pub zip3: Option<String>,
    /// Preferred language (a 2–3 letter code).
    #[oai(skip_serializing_if_is_none)]
    pub language: Option<String>,
    /// The records the client's consent allows.
    pub records: Vec<ResearchRecordView>,
}

/// A HIPAA Safe Harbor de-identified extract of a practice's clients.
#[derive(Debug, Object)]
pub struct ResearchExtractView {
    /// `research` or `analytics`.
    pub purpose: String,
    /// When it was made.
    pub generated_at: DateTime<Utc>,
    /// How many clients were considered.
    pub considered: u64,
    /// The clients whose consent allows the purpose, in random order.
    pub subjects: Vec<ResearchSubjectView>,
}

impl ResearchExtractView {
    /// The view of `extract`.
    #[must_use]
    pub fn of(extract: data_rights::service::ResearchExtract) -> Self {
        use data_rights::deidentify::Age;
        Self {
            purpose: extract.purpose.as_str().to_owned(),
            generated_at: extract.generated_at,
            considered: extract.considered,
            subjects: extract
                .subjects
                .into_iter()
                .map(|s| ResearchSubjectView {
                    research_id: s.research_id,
                    age: s.age.map(|age| match age {
                        Age::Years(years) => years.to_string(),
                        Age::NinetyOrOlder => "90+".to_owned(),
                    }),
                    sex: s.sex,
                    zip3: s.zip3,
                    language: s.language,
                    records: s
                        .records
                        .into_iter()
                        .map(|r| ResearchRecordView {
                            kind: r.kind,
                            year: r.year,
                            data: r.data,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
