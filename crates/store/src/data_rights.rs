//! [`SeaOrmRightsRepository`]: the data-rights context's `RightsRepository` port
//! on `rights_requests`, `rights_archives`, `rights_erasure_steps`,
//! `rights_authorities` and `rights_cases`.
//!
//! **Requests.** Kind, regime, requester, status and times are plain columns,
//! written from the domain's `as_str` names and read back through their parsers.
//! The detail, the history, a denial (reason and ground) and the result (an
//! archive's digest and size, or each record's erasure outcome: references,
//! categories, fates and grounds, never content) are JSON text in private shapes
//! of this module. The one piece that may be health data, a rectification's
//! corrected value, is sealed apart in `detail_value_enc` under the subject's data
//! key, bound to the request's id, and is written once, on insert (the domain
//! never changes a request's detail). The rest of a request stays plain on
//! purpose: an erasure request is completed *after* its last step destroyed the
//! subject's key, and the request, its outcome and the person's list of requests
//! must still read and update then. Once the key is gone a rectification's value
//! reads as the empty text, which is not JSON and so can never be applied.
//!
//! The deadlines are a pure function of regime, kind and receipt time
//! (`Deadlines::of`) and are recomputed on read; `due_at` holds the due time in
//! force (the extended one once extended), rewritten on every update, for the
//! practice's queue, read along the index (organisation, open, due time).
//!
//! Identical open requests collapse through `open_key`, under a unique index: the
//! SHA-256 (hex) of the subject, kind, regime, requester and detail (the sealed
//! value included), each length-prefixed, while the request is open, and NULL
//! once it is final. An insert that meets it is [`RepositoryError::Conflict`]; a
//! final request frees it for a new identical one. The digest covers a
//! rectification's value unkeyed: someone reading the table could confirm a
//! guessed value for an open rectification of a record they know, until it
//! closes; a keyed digest would need a secret this adapter is not given.
//!
//! Updates (`update_request`, `update_authority`, `update_case`) write only what
//! the domain changes (a request's status, denial, history, result, due time and
//! open key; a proof's reference, scope, expiry and confirmation; a case's status
//! and history), and only where the stored row is the one they replace: its id,
//! its owners (a request's practice and subject; a proof's agent and subject) and
//! version `version - 1`; anything else is `Conflict`. A new record must come at
//! version 0.
//!
//! **Archives** are sealed under the subject's data key kept by the request's
//! practice, bound to the request's id. A second archive for a request replaces
//! the first (a resumed export packs again, and the request's result names the
//! last one). `archive` answers `None` when there is none, or when the key was
//! destroyed (crypto-shredding).
//!
//! **Erasure steps** are numbered in the order written, per request, by one
//! `INSERT ... SELECT MAX(position) + 1 ... ON CONFLICT (request, context) DO
//! NOTHING` statement: a repeat for a context keeps the first; two concurrent
//! first writes of different contexts that draw the same number meet the unique
//! (request, position) index and the loser draws again. Resource kinds read back
//! from outcomes are interned once per distinct name (the domain's `ResourceRef`
//! holds a `&'static str`).
//!
//! **Proofs of authority** are plain: the document reference is a reference to
//! where the signed document is kept (at most 200 characters, no control
//! characters), never the document. Keeping it plain lets the office and the agent
//! still read a proof after the person's erasure.
//!
//! **Cases** are sealed (reply-to address, message and history with its notes)
//! under a key of their own: the data key of the subject whose id is the case's id,
//! under the nil organisation. A case may be anonymous, so it has no subject of its
//! own, and a per-case key lets one case be shredded alone. A case whose key was
//! destroyed does not read (`Unavailable`). Open cases are read along the index
//! (open, due time).
//!
//! Sealing happens before any statement, and every write is a single statement.

mod entity;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crypto::{FieldBinding, Keyring, KeyringError};
use data_rights::authority::{ProofOfAuthority, Scope};
use data_rights::case::{Case, CaseEntry, CaseKind, CaseStatus};
use data_rights::deadline::Deadlines;
use data_rights::ids::{AuthorityId, CaseId, RightsRequestId};
use data_rights::ports::{ErasureStep, RepositoryError, RightsRepository, StoredAuthority};
use data_rights::request::{
    HistoryEntry, RequestDetail, RequestKind, RequestResult, RequestStatus, Requester,
    RightsRequest,
};
use kernel::personal_data::{ErasureOutcome, RecordFate};
use kernel::{
    DataCategory, LegalGround, OrganisationId, Purpose, Regime, ResourceRef, Sensitive, SubjectId,
    UserId,
};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, SqlErr,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use self::entity::{
    rights_archive, rights_authority, rights_case, rights_erasure_step, rights_request,
};
use crate::Database;
use crate::rows::{stored, utc};

/// Field binding of a rectification's sealed value (bound to the request's id).
const DETAIL_VALUE_FIELD: &str = "rights_requests.detail_value";
/// Field binding of a sealed archive (bound to the request's id).
const ARCHIVE_FIELD: &str = "rights_archives.archive";
/// Field bindings of a case's sealed columns (bound to the case's id).
const CASE_REPLY_TO_FIELD: &str = "rights_cases.reply_to";
const CASE_MESSAGE_FIELD: &str = "rights_cases.message";
const CASE_HISTORY_FIELD: &str = "rights_cases.history";

const REQUESTS: &str = "rights_requests";
const STEPS: &str = "rights_erasure_steps";
const AUTHORITIES: &str = "rights_authorities";
const CASES: &str = "rights_cases";

/// How often a step write draws its position again after losing a race for it:
/// each loss means another step took that position, so this many concurrent
/// writers of one request's steps all get through.
const STEP_ATTEMPTS: usize = 8;
/// The most distinct resource kinds interned; a longer list means corrupt rows.
const MAX_RESOURCE_KINDS: usize = 1024;
/// The longest resource kind read back.
const MAX_RESOURCE_KIND: usize = 64;

/// The data-rights context's requests, archives, erasure journal, proofs of
/// authority and cases on Custodia's database; a rectification's value and every
/// archive sealed by the [`Keyring`] under the subject's data key, and each case
/// under its own key.
#[derive(Debug, Clone)]
pub struct SeaOrmRightsRepository {
    db: Database,
    keyring: Keyring,
}

impl SeaOrmRightsRepository {
    /// The repository on `db`, sealing with `keyring`.
    #[must_use]
    pub const fn new(db: Database, keyring: Keyring) -> Self {
        Self { db, keyring }
    }
}

/// Why a write was refused, or a row could not be read. Never names a value.
#[derive(Debug, thiserror::Error)]
enum Fault {
    /// A value could not be encoded.
    #[error("a rights value could not be encoded")]
    Encoding,
    /// What was handed in breaks the port's contract (a new record's version
    /// other than 0).
    #[error("a rights write does not follow the repository's contract")]
    Inconsistent,
    /// A stored row does not decode.
    #[error("a row of {0} is malformed")]
    Corrupt(&'static str),
}

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> RepositoryError {
    RepositoryError::Unavailable(Box::new(err))
}

fn corrupt(table: &'static str) -> RepositoryError {
    unavailable(Fault::Corrupt(table))
}

/// A write's error: a unique-key violation is the port's conflict.
fn conflict_or_unavailable(err: DbErr) -> RepositoryError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => RepositoryError::Conflict,
        _ => unavailable(err),
    }
}

/// JSON text of a private shape.
fn encode(value: &impl Serialize) -> Result<String, RepositoryError> {
    serde_json::to_string(value).map_err(|_| unavailable(Fault::Encoding))
}

/// A private shape from JSON text. A serde error may quote the value; it is not
/// passed on.
fn decode<T: DeserializeOwned>(json: &str, table: &'static str) -> Result<T, RepositoryError> {
    serde_json::from_str(json).map_err(|_| corrupt(table))
}

fn version_of(raw: i64, table: &'static str) -> Result<u32, RepositoryError> {
    u32::try_from(raw).map_err(|_| corrupt(table))
}

/// A new record's version must be 0.
fn new_version(version: u32) -> Result<i64, RepositoryError> {
    if version == 0 {
        Ok(0)
    } else {
        Err(unavailable(Fault::Inconsistent))
    }
}

/// The stored version an update to `version` replaces; none for version 0, which
/// no update can reach.
fn replaced_version(version: u32) -> Result<i64, RepositoryError> {
    version
        .checked_sub(1)
        .map(i64::from)
        .ok_or(RepositoryError::Conflict)
}

/// `0` rows changed by an update is a stale or misdirected write.
const fn changed_one(rows: u64) -> Result<(), RepositoryError> {
    if rows == 0 {
        Err(RepositoryError::Conflict)
    } else {
        Ok(())
    }
}

/// The stable name of a resource kind read back, as the `&'static str` the
/// domain's `ResourceRef` holds: each distinct name is leaked once and reused, so
/// memory grows with the number of kinds (a handful), not of reads.
fn interned(kind: &str) -> Option<&'static str> {
    static KINDS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    if kind.is_empty()
        || kind.len() > MAX_RESOURCE_KIND
        || !kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let mut kinds = KINDS
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = kinds.get(kind) {
        return Some(known);
    }
    if kinds.len() >= MAX_RESOURCE_KINDS {
        return None;
    }
    let leaked: &'static str = Box::leak(kind.to_owned().into_boxed_str());
    kinds.insert(leaked);
    Some(leaked)
}

// ---------------------------------------------------------------------------
// Private JSON shapes.

/// A legal ground as stored.
#[derive(Serialize, Deserialize)]
struct StoredGround {
    regime: String,
    citation: String,
    statement: String,
}

impl StoredGround {
    fn of(ground: &LegalGround) -> Self {
        Self {
            regime: ground.regime.as_str().to_owned(),
            citation: ground.citation.to_string(),
            statement: ground.statement.to_string(),
        }
    }

    fn parse(self) -> Option<LegalGround> {
        Some(LegalGround {
            regime: Regime::parse(&self.regime)?,
            citation: self.citation.into(),
            statement: self.statement.into(),
        })
    }
}

/// A denial's reason and ground.
#[derive(Serialize, Deserialize)]
struct StoredDenial {
    reason: String,
    ground: StoredGround,
}

/// A status split into its stable name and, for a denial, its reason and ground.
fn split_status(status: &RequestStatus) -> (&'static str, Option<StoredDenial>) {
    let denial = match status {
        RequestStatus::Denied { reason, ground } => Some(StoredDenial {
            reason: reason.clone(),
            ground: StoredGround::of(ground),
        }),
        _ => None,
    };
    (status.as_str(), denial)
}

/// A status from its stable name and denial; `None` when they do not fit.
fn join_status(name: &str, denial: Option<StoredDenial>) -> Option<RequestStatus> {
    let status = match (name, denial) {
        ("denied", Some(denial)) => {
            return Some(RequestStatus::Denied {
                reason: denial.reason,
                ground: denial.ground.parse()?,
            });
        }
        (_, Some(_)) => return None,
        ("received", None) => RequestStatus::Received,
        ("awaiting_verification", None) => RequestStatus::AwaitingVerification,
        ("verified", None) => RequestStatus::Verified,
        ("in_progress", None) => RequestStatus::InProgress,
        ("extended", None) => RequestStatus::Extended,
        ("completed", None) => RequestStatus::Completed,
        _ => return None,
    };
    Some(status)
}

/// One step of a request's history.
#[derive(Serialize, Deserialize)]
struct StoredHistoryEntry {
    at: DateTime<Utc>,
    status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    denial: Option<StoredDenial>,
    by: Option<Uuid>,
}

impl StoredHistoryEntry {
    fn of(entry: &HistoryEntry) -> Self {
        let (status, denial) = split_status(&entry.status);
        Self {
            at: entry.at,
            status: status.to_owned(),
            denial,
            by: entry.by.map(|u| u.as_uuid()),
        }
    }

    fn parse(self) -> Option<HistoryEntry> {
        Some(HistoryEntry {
            at: self.at,
            status: join_status(&self.status, self.denial)?,
            by: self.by.map(UserId::from_uuid),
        })
    }
}

/// A request's detail as stored in the clear: a rectification's value is sealed
/// apart.
#[derive(Serialize, Deserialize)]
#[serde(tag = "detail", rename_all = "snake_case")]
enum StoredDetail {
    None,
    Rectification {
        context: String,
        resource_kind: String,
        resource_id: Uuid,
        field: String,
    },
    Restriction {
        categories: Vec<String>,
        lift: bool,
    },
    Objection {
        purpose: String,
    },
    Withdrawal {
        purpose: String,
        recipient: Option<String>,
    },
}

impl StoredDetail {
    /// The clear part of `detail`, and a rectification's value.
    fn of(detail: &RequestDetail) -> (Self, Option<&str>) {
        match detail {
            RequestDetail::None => (Self::None, None),
            RequestDetail::Rectification {
                context,
                resource_kind,
                resource_id,
                field,
                value,
            } => (
                Self::Rectification {
                    context: context.clone(),
                    resource_kind: resource_kind.clone(),
                    resource_id: *resource_id,
                    field: field.clone(),
                },
                Some(value.as_str()),
            ),
            RequestDetail::Restriction { categories, lift } => (
                Self::Restriction {
                    categories: categories.iter().map(|c| c.as_str().to_owned()).collect(),
                    lift: *lift,
                },
                None,
            ),
            RequestDetail::Objection { purpose } => (
                Self::Objection {
                    purpose: purpose.as_str().to_owned(),
                },
                None,
            ),
            RequestDetail::Withdrawal { purpose, recipient } => (
                Self::Withdrawal {
                    purpose: purpose.as_str().to_owned(),
                    recipient: recipient.clone(),
                },
                None,
            ),
        }
    }

    /// The domain's detail, with a rectification's opened value.
    fn parse(self, value: Option<String>) -> Option<RequestDetail> {
        Some(match (self, value) {
            (Self::None, None) => RequestDetail::None,
            (
                Self::Rectification {
                    context,
                    resource_kind,
                    resource_id,
                    field,
                },
                Some(value),
            ) => RequestDetail::Rectification {
                context,
                resource_kind,
                resource_id,
                field,
                value,
            },
            (Self::Restriction { categories, lift }, None) => RequestDetail::Restriction {
                categories: categories
                    .iter()
                    .map(|c| DataCategory::parse(c))
                    .collect::<Option<_>>()?,
                lift,
            },
            (Self::Objection { purpose }, None) => RequestDetail::Objection {
                purpose: Purpose::parse(&purpose)?,
            },
            (Self::Withdrawal { purpose, recipient }, None) => RequestDetail::Withdrawal {
                purpose: Purpose::parse(&purpose)?,
                recipient,
            },
            _ => return None,
        })
    }

    const fn is_rectification(&self) -> bool {
        matches!(self, Self::Rectification { .. })
    }
}

/// What happened to one record, as stored.
#[derive(Serialize, Deserialize)]
#[serde(tag = "fate", rename_all = "snake_case")]
enum StoredFate {
    Deleted,
    Anonymised,
    Retained {
        ground: StoredGround,
        until: Option<DateTime<Utc>>,
    },
}

/// One record's erasure outcome, as stored: a reference, never content.
#[derive(Serialize, Deserialize)]
struct StoredOutcome {
    category: String,
    resource_kind: String,
    resource_id: Uuid,
    fate: StoredFate,
}

impl StoredOutcome {
    fn of(outcome: &ErasureOutcome) -> Self {
        Self {
            category: outcome.category.as_str().to_owned(),
            resource_kind: outcome.resource.kind.to_owned(),
            resource_id: outcome.resource.id,
            fate: match &outcome.fate {
                RecordFate::Deleted => StoredFate::Deleted,
                RecordFate::Anonymised => StoredFate::Anonymised,
                RecordFate::Retained { ground, until } => StoredFate::Retained {
                    ground: StoredGround::of(ground),
                    until: *until,
                },
            },
        }
    }

    fn parse(self) -> Option<ErasureOutcome> {
        Some(ErasureOutcome {
            category: DataCategory::parse(&self.category)?,
            resource: ResourceRef::new(interned(&self.resource_kind)?, self.resource_id),
            fate: match self.fate {
                StoredFate::Deleted => RecordFate::Deleted,
                StoredFate::Anonymised => RecordFate::Anonymised,
                StoredFate::Retained { ground, until } => RecordFate::Retained {
                    ground: ground.parse()?,
                    until,
                },
            },
        })
    }
}

fn outcomes_json(outcomes: &[ErasureOutcome]) -> Result<String, RepositoryError> {
    encode(&outcomes.iter().map(StoredOutcome::of).collect::<Vec<_>>())
}

fn outcomes_of(json: &str, table: &'static str) -> Result<Vec<ErasureOutcome>, RepositoryError> {
    decode::<Vec<StoredOutcome>>(json, table)?
        .into_iter()
        .map(StoredOutcome::parse)
        .collect::<Option<_>>()
        .ok_or_else(|| corrupt(table))
}

/// What carrying a request out produced, as stored.
#[derive(Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
enum StoredResult {
    Archive { sha256: String, bytes: u64 },
    Erasure { outcomes: Vec<StoredOutcome> },
    Applied,
}

impl StoredResult {
    fn of(result: &RequestResult) -> Self {
        match result {
            RequestResult::Archive { sha256, bytes } => Self::Archive {
                sha256: sha256.clone(),
                bytes: *bytes,
            },
            RequestResult::Erasure { outcomes } => Self::Erasure {
                outcomes: outcomes.iter().map(StoredOutcome::of).collect(),
            },
            RequestResult::Applied => Self::Applied,
        }
    }

    fn parse(self) -> Option<RequestResult> {
        Some(match self {
            Self::Archive { sha256, bytes } => RequestResult::Archive { sha256, bytes },
            Self::Erasure { outcomes } => RequestResult::Erasure {
                outcomes: outcomes
                    .into_iter()
                    .map(StoredOutcome::parse)
                    .collect::<Option<_>>()?,
            },
            Self::Applied => RequestResult::Applied,
        })
    }
}

/// A proof's scope, as stored.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", content = "kinds", rename_all = "snake_case")]
enum StoredScope {
    All,
    Kinds(Vec<String>),
}

impl StoredScope {
    fn of(scope: &Scope) -> Self {
        match scope {
            Scope::All => Self::All,
            Scope::Kinds(kinds) => {
                Self::Kinds(kinds.iter().map(|k| k.as_str().to_owned()).collect())
            }
        }
    }

    fn parse(self) -> Option<Scope> {
        Some(match self {
            Self::All => Scope::All,
            Self::Kinds(kinds) => Scope::Kinds(
                kinds
                    .iter()
                    .map(|k| RequestKind::parse(k))
                    .collect::<Option<_>>()?,
            ),
        })
    }
}

/// One step of a case's history, as sealed.
#[derive(Serialize, Deserialize)]
struct StoredCaseEntry {
    at: DateTime<Utc>,
    status: String,
    by: Option<Uuid>,
    note: Option<String>,
}

impl StoredCaseEntry {
    fn of(entry: &CaseEntry) -> Self {
        Self {
            at: entry.at,
            status: entry.status.as_str().to_owned(),
            by: entry.by.map(|u| u.as_uuid()),
            note: entry.note.clone(),
        }
    }

    fn parse(self) -> Option<CaseEntry> {
        Some(CaseEntry {
            at: self.at,
            status: CaseStatus::parse(&self.status)?,
            by: self.by.map(UserId::from_uuid),
            note: self.note,
        })
    }
}

// ---------------------------------------------------------------------------
// Columns.

const fn requester_columns(requester: &Requester) -> (&'static str, UserId) {
    match requester {
        Requester::Subject { user } => ("subject", *user),
        Requester::Guardian { user } => ("guardian", *user),
        Requester::AuthorisedAgent { user } => ("authorised_agent", *user),
        Requester::Provider { user } => ("provider", *user),
    }
}

fn requester_of(kind: &str, user: Uuid) -> Option<Requester> {
    let user = UserId::from_uuid(user);
    Some(match kind {
        "subject" => Requester::Subject { user },
        "guardian" => Requester::Guardian { user },
        "authorised_agent" => Requester::AuthorisedAgent { user },
        "provider" => Requester::Provider { user },
        _ => return None,
    })
}

/// Adds one length-prefixed field to a digest.
fn digest_field(digest: &mut ring::digest::Context, bytes: &[u8]) {
    digest.update(&(bytes.len() as u64).to_be_bytes());
    digest.update(bytes);
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The identity of an open request: what [`RightsRequest::duplicates`] compares.
fn open_key(request: &RightsRequest, detail_json: &str, value: Option<&str>) -> String {
    let (requester_kind, requester_user) = requester_columns(&request.requester);
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest_field(&mut digest, b"custodia.rights.open_key.v1");
    digest_field(&mut digest, request.subject.as_uuid().as_bytes());
    digest_field(&mut digest, request.kind.as_str().as_bytes());
    digest_field(&mut digest, request.regime.as_str().as_bytes());
    digest_field(&mut digest, requester_kind.as_bytes());
    digest_field(&mut digest, requester_user.as_uuid().as_bytes());
    digest_field(&mut digest, detail_json.as_bytes());
    match value {
        Some(value) => {
            digest_field(&mut digest, b"value");
            digest_field(&mut digest, value.as_bytes());
        }
        None => digest_field(&mut digest, b"none"),
    }
    hex(digest.finish().as_ref())
}

/// What an update of a request rewrites.
struct RequestState {
    status: String,
    denial: Option<String>,
    history: String,
    result: Option<String>,
    due_at: DateTime<Utc>,
    is_open: bool,
    open_key: Option<String>,
}

impl RequestState {
    fn of(
        request: &RightsRequest,
        detail_json: &str,
        value: Option<&str>,
    ) -> Result<Self, RepositoryError> {
        let (status, denial) = split_status(&request.status);
        let is_open = !request.status.is_final();
        Ok(Self {
            status: status.to_owned(),
            denial: denial.as_ref().map(encode).transpose()?,
            history: encode(
                &request
                    .history
                    .iter()
                    .map(StoredHistoryEntry::of)
                    .collect::<Vec<_>>(),
            )?,
            result: request
                .result
                .as_ref()
                .map(|r| encode(&StoredResult::of(r)))
                .transpose()?,
            due_at: request.due_at(),
            is_open,
            open_key: is_open.then(|| open_key(request, detail_json, value)),
        })
    }
}

fn proof_columns(proof: &ProofOfAuthority) -> Result<String, RepositoryError> {
    encode(&StoredScope::of(&proof.scope))
}

fn authority_of(row: rights_authority::Model) -> Result<StoredAuthority, RepositoryError> {
    let t = AUTHORITIES;
    let scope = decode::<StoredScope>(&row.scope, t)?
        .parse()
        .ok_or_else(|| corrupt(t))?;
    Ok(StoredAuthority {
        id: AuthorityId::from_uuid(row.id),
        proof: ProofOfAuthority {
            agent: UserId::from_uuid(row.agent_user_id),
            subject: SubjectId::from_uuid(row.subject_id),
            document_ref: row.document_ref,
            scope,
            expires_at: utc(row.expires_at),
            confirmed_at: row.confirmed_at.map(utc),
        },
        recorded_at: utc(row.recorded_at),
        version: version_of(row.version, t)?,
    })
}

const fn detail_value_binding(request: RightsRequestId) -> FieldBinding {
    FieldBinding::new(request.as_uuid(), DETAIL_VALUE_FIELD)
}

const fn archive_binding(request: RightsRequestId) -> FieldBinding {
    FieldBinding::new(request.as_uuid(), ARCHIVE_FIELD)
}

/// The key a case is sealed under: the data key of the subject whose id is the
/// case's, under the nil organisation (a case may be anonymous; one case can be
/// shredded alone).
const fn case_key(case: CaseId) -> (OrganisationId, SubjectId) {
    (
        OrganisationId::from_uuid(Uuid::nil()),
        SubjectId::from_uuid(case.as_uuid()),
    )
}

const fn case_binding(case: CaseId, field: &'static str) -> FieldBinding {
    FieldBinding::new(case.as_uuid(), field)
}

fn case_history_json(history: &[CaseEntry]) -> Result<Sensitive<String>, RepositoryError> {
    encode(&history.iter().map(StoredCaseEntry::of).collect::<Vec<_>>()).map(Sensitive::new)
}

mod queries {
    //! The reads of the list operations, each along an index (the tests ask
    //! SQLite's planner to show it).
    use data_rights::ids::RightsRequestId;
    use kernel::{OrganisationId, SubjectId, UserId};
    use sea_orm::{
        ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
    };

    use super::entity::{rights_authority, rights_case, rights_erasure_step, rights_request};

    /// The subject's open requests, oldest first.
    pub(super) fn open_requests_about(subject: SubjectId) -> Select<rights_request::Entity> {
        use rights_request::Column as C;
        rights_request::Entity::find()
            .filter(C::SubjectId.eq(subject.as_uuid()))
            .filter(C::IsOpen.eq(true))
            .order_by_asc(C::ReceivedAt)
            .order_by_asc(C::Id)
    }

    /// Requests filed by `user` or about `subject`, newest first.
    pub(super) fn requests_of(
        user: UserId,
        subject: Option<SubjectId>,
    ) -> Select<rights_request::Entity> {
        use rights_request::Column as C;
        let mut whose = Condition::any().add(C::RequesterUserId.eq(user.as_uuid()));
        if let Some(subject) = subject {
            whose = whose.add(C::SubjectId.eq(subject.as_uuid()));
        }
        rights_request::Entity::find()
            .filter(whose)
            .order_by_desc(C::ReceivedAt)
            .order_by_desc(C::Id)
    }

    /// The practice's open requests by due time in force.
    pub(super) fn open_requests_of(
        organisation: OrganisationId,
        limit: u32,
    ) -> Select<rights_request::Entity> {
        use rights_request::Column as C;
        rights_request::Entity::find()
            .filter(C::OrganisationId.eq(organisation.as_uuid()))
            .filter(C::IsOpen.eq(true))
            .order_by_asc(C::DueAt)
            .order_by_asc(C::Id)
            .limit(u64::from(limit))
    }

    /// A request's erasure steps in the order written.
    pub(super) fn erasure_steps(request: RightsRequestId) -> Select<rights_erasure_step::Entity> {
        use rights_erasure_step::Column as C;
        rights_erasure_step::Entity::find()
            .filter(C::RequestId.eq(request.as_uuid()))
            .order_by_asc(C::Position)
    }

    /// The proofs naming `subject`, oldest first.
    pub(super) fn authorities_for(subject: SubjectId) -> Select<rights_authority::Entity> {
        use rights_authority::Column as C;
        rights_authority::Entity::find()
            .filter(C::SubjectId.eq(subject.as_uuid()))
            .order_by_asc(C::RecordedAt)
            .order_by_asc(C::Id)
    }

    /// The proofs `agent` recorded, oldest first.
    pub(super) fn authorities_of_agent(agent: UserId) -> Select<rights_authority::Entity> {
        use rights_authority::Column as C;
        rights_authority::Entity::find()
            .filter(C::AgentUserId.eq(agent.as_uuid()))
            .order_by_asc(C::RecordedAt)
            .order_by_asc(C::Id)
    }

    /// Cases reported by `user`, newest first.
    pub(super) fn cases_of(user: UserId) -> Select<rights_case::Entity> {
        use rights_case::Column as C;
        rights_case::Entity::find()
            .filter(C::ReporterUserId.eq(user.as_uuid()))
            .order_by_desc(C::ReceivedAt)
            .order_by_desc(C::Id)
    }

    /// Open cases by due time.
    pub(super) fn open_cases(limit: u32) -> Select<rights_case::Entity> {
        use rights_case::Column as C;
        rights_case::Entity::find()
            .filter(C::IsOpen.eq(true))
            .order_by_asc(C::DueAt)
            .order_by_asc(C::Id)
            .limit(u64::from(limit))
    }
}

impl SeaOrmRightsRepository {
    /// Opens a rectification's value; the empty text once the key is gone.
    async fn open_value(
        &self,
        request: RightsRequestId,
        envelope: &[u8],
    ) -> Result<String, RepositoryError> {
        match self
            .keyring
            .decrypt_string(detail_value_binding(request), envelope)
            .await
        {
            Ok(value) => Ok(value.into_inner()),
            Err(KeyringError::KeyDestroyed(_) | KeyringError::SubjectErased) => Ok(String::new()),
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn request_of(
        &self,
        row: rights_request::Model,
    ) -> Result<RightsRequest, RepositoryError> {
        let t = REQUESTS;
        let bad = || corrupt(t);
        let id = RightsRequestId::from_uuid(row.id);
        let kind = RequestKind::parse(&row.kind).ok_or_else(bad)?;
        let regime = Regime::parse(&row.regime).ok_or_else(bad)?;
        let requester = requester_of(&row.requester_kind, row.requester_user_id).ok_or_else(bad)?;
        let clear: StoredDetail = decode(&row.detail, t)?;
        let value = match (clear.is_rectification(), &row.detail_value_enc) {
            (true, Some(envelope)) => Some(self.open_value(id, envelope).await?),
            (false, None) => None,
            _ => return Err(bad()),
        };
        let detail = clear.parse(value).ok_or_else(bad)?;
        let denial = row
            .denial
            .as_deref()
            .map(|json| decode::<StoredDenial>(json, t))
            .transpose()?;
        let status = join_status(&row.status, denial).ok_or_else(bad)?;
        if status.is_final() == row.is_open {
            return Err(bad());
        }
        let history = decode::<Vec<StoredHistoryEntry>>(&row.history, t)?
            .into_iter()
            .map(StoredHistoryEntry::parse)
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        let result = match row.result.as_deref() {
            Some(json) => Some(decode::<StoredResult>(json, t)?.parse().ok_or_else(bad)?),
            None => None,
        };
        let received_at = utc(row.received_at);
        Ok(RightsRequest {
            id,
            organisation: OrganisationId::from_uuid(row.organisation_id),
            detail,
            kind,
            subject: SubjectId::from_uuid(row.subject_id),
            requester,
            regime,
            received_at,
            deadlines: Deadlines::of(regime, kind, received_at),
            status,
            history,
            result,
            version: version_of(row.version, t)?,
        })
    }

    async fn requests_of_rows(
        &self,
        rows: Vec<rights_request::Model>,
    ) -> Result<Vec<RightsRequest>, RepositoryError> {
        let mut requests = Vec::with_capacity(rows.len());
        for row in rows {
            requests.push(self.request_of(row).await?);
        }
        Ok(requests)
    }

    /// Opens one sealed field of a case.
    async fn open_case_field(
        &self,
        case: CaseId,
        field: &'static str,
        envelope: &[u8],
    ) -> Result<Sensitive<String>, RepositoryError> {
        self.keyring
            .decrypt_string(case_binding(case, field), envelope)
            .await
            .map_err(unavailable)
    }

    async fn case_of(&self, row: rights_case::Model) -> Result<Case, RepositoryError> {
        let t = CASES;
        let bad = || corrupt(t);
        let id = CaseId::from_uuid(row.id);
        let message = self
            .open_case_field(id, CASE_MESSAGE_FIELD, &row.message_enc)
            .await?;
        let reply_to = match &row.reply_to_enc {
            Some(envelope) => Some(
                self.open_case_field(id, CASE_REPLY_TO_FIELD, envelope)
                    .await?
                    .into_inner(),
            ),
            None => None,
        };
        let history_json = self
            .open_case_field(id, CASE_HISTORY_FIELD, &row.history_enc)
            .await?;
        let history = decode::<Vec<StoredCaseEntry>>(history_json.expose(), t)?
            .into_iter()
            .map(StoredCaseEntry::parse)
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        let status = CaseStatus::parse(&row.status).ok_or_else(bad)?;
        if (status != CaseStatus::Resolved) != row.is_open {
            return Err(bad());
        }
        Ok(Case {
            id,
            kind: CaseKind::parse(&row.kind).ok_or_else(bad)?,
            reporter: row.reporter_user_id.map(UserId::from_uuid),
            reply_to,
            message: message.into_inner(),
            received_at: utc(row.received_at),
            due_at: utc(row.due_at),
            status,
            history,
            version: version_of(row.version, t)?,
        })
    }

    async fn cases_of_rows(
        &self,
        rows: Vec<rights_case::Model>,
    ) -> Result<Vec<Case>, RepositoryError> {
        let mut cases = Vec::with_capacity(rows.len());
        for row in rows {
            cases.push(self.case_of(row).await?);
        }
        Ok(cases)
    }

    /// One attempt at journaling a step: `Ok(false)` when it lost the race for its
    /// position.
    async fn try_put_step(
        &self,
        request: Uuid,
        context: &str,
        outcomes: &str,
    ) -> Result<bool, RepositoryError> {
        use rights_erasure_step::{Column as C, Entity};
        let next_position = Query::select()
            .expr(Expr::value(request))
            .expr(Expr::value(context.to_owned()))
            .expr(
                Expr::expr(Func::coalesce([
                    Expr::col(C::Position).max(),
                    Expr::value(0_i64),
                ]))
                .add(1_i64),
            )
            .expr(Expr::value(outcomes.to_owned()))
            .from(Entity)
            .and_where(Expr::col(C::RequestId).eq(request))
            .to_owned();
        let mut insert = Query::insert();
        insert
            .into_table(Entity)
            .columns([C::RequestId, C::Context, C::Position, C::Outcomes]);
        insert.select_from(next_position).map_err(unavailable)?;
        insert.on_conflict(
            OnConflict::columns([C::RequestId, C::Context])
                .do_nothing()
                .to_owned(),
        );
        match self.db.connection().execute(&insert).await {
            Ok(_) => Ok(true),
            Err(err) => match err.sql_err() {
                Some(SqlErr::UniqueConstraintViolation(_)) => Ok(false),
                _ => Err(unavailable(err)),
            },
        }
    }
}

#[async_trait]
impl RightsRepository for SeaOrmRightsRepository {
    async fn insert_request(&self, request: &RightsRequest) -> Result<(), RepositoryError> {
        let version = new_version(request.version)?;
        let (clear, value) = StoredDetail::of(&request.detail);
        let detail = encode(&clear)?;
        let state = RequestState::of(request, &detail, value)?;
        let detail_value_enc = match value {
            Some(value) => Some(
                self.keyring
                    .encrypt(
                        request.organisation,
                        request.subject,
                        detail_value_binding(request.id),
                        value.as_bytes(),
                    )
                    .await
                    .map_err(unavailable)?,
            ),
            None => None,
        };
        let (requester_kind, requester_user) = requester_columns(&request.requester);
        let row = rights_request::ActiveModel {
            id: Set(request.id.as_uuid()),
            organisation_id: Set(request.organisation.as_uuid()),
            subject_id: Set(request.subject.as_uuid()),
            requester_kind: Set(requester_kind.to_owned()),
            requester_user_id: Set(requester_user.as_uuid()),
            kind: Set(request.kind.as_str().to_owned()),
            regime: Set(request.regime.as_str().to_owned()),
            detail: Set(detail),
            detail_value_enc: Set(detail_value_enc),
            received_at: Set(stored(request.received_at)),
            due_at: Set(stored(state.due_at)),
            status: Set(state.status),
            denial: Set(state.denial),
            history: Set(state.history),
            result: Set(state.result),
            version: Set(version),
            is_open: Set(state.is_open),
            open_key: Set(state.open_key),
        };
        rights_request::Entity::insert(row)
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(conflict_or_unavailable)
    }

    async fn update_request(&self, request: &RightsRequest) -> Result<(), RepositoryError> {
        use rights_request::Column as C;
        let replaced = replaced_version(request.version)?;
        let (clear, value) = StoredDetail::of(&request.detail);
        let state = RequestState::of(request, &encode(&clear)?, value)?;
        let changed = rights_request::Entity::update_many()
            .col_expr(C::Status, Expr::value(state.status))
            .col_expr(C::Denial, Expr::value(state.denial))
            .col_expr(C::History, Expr::value(state.history))
            .col_expr(C::Result, Expr::value(state.result))
            .col_expr(C::DueAt, Expr::value(stored(state.due_at)))
            .col_expr(C::IsOpen, Expr::value(state.is_open))
            .col_expr(C::OpenKey, Expr::value(state.open_key))
            .col_expr(C::Version, Expr::value(i64::from(request.version)))
            .filter(C::Id.eq(request.id.as_uuid()))
            .filter(C::OrganisationId.eq(request.organisation.as_uuid()))
            .filter(C::SubjectId.eq(request.subject.as_uuid()))
            .filter(C::Version.eq(replaced))
            .exec(self.db.connection())
            .await
            .map_err(conflict_or_unavailable)?
            .rows_affected;
        changed_one(changed)
    }

    async fn request(&self, id: RightsRequestId) -> Result<Option<RightsRequest>, RepositoryError> {
        match rights_request::Entity::find_by_id(id.as_uuid())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
        {
            Some(row) => Ok(Some(self.request_of(row).await?)),
            None => Ok(None),
        }
    }

    async fn open_requests_about(
        &self,
        subject: SubjectId,
    ) -> Result<Vec<RightsRequest>, RepositoryError> {
        let rows = queries::open_requests_about(subject)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        self.requests_of_rows(rows).await
    }

    async fn requests_of(
        &self,
        user: UserId,
        subject: Option<SubjectId>,
    ) -> Result<Vec<RightsRequest>, RepositoryError> {
        let rows = queries::requests_of(user, subject)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        self.requests_of_rows(rows).await
    }

    async fn open_requests_of(
        &self,
        organisation: OrganisationId,
        limit: u32,
    ) -> Result<Vec<RightsRequest>, RepositoryError> {
        let rows = queries::open_requests_of(organisation, limit)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        self.requests_of_rows(rows).await
    }

    async fn put_archive(
        &self,
        request: RightsRequestId,
        organisation: OrganisationId,
        subject: SubjectId,
        archive: &[u8],
    ) -> Result<(), RepositoryError> {
        use rights_archive::Column as C;
        let archive_enc = self
            .keyring
            .encrypt(organisation, subject, archive_binding(request), archive)
            .await
            .map_err(unavailable)?;
        let row = rights_archive::ActiveModel {
            request_id: Set(request.as_uuid()),
            organisation_id: Set(organisation.as_uuid()),
            subject_id: Set(subject.as_uuid()),
            archive_enc: Set(archive_enc),
        };
        rights_archive::Entity::insert(row)
            .on_conflict(
                OnConflict::column(C::RequestId)
                    .update_columns([C::OrganisationId, C::SubjectId, C::ArchiveEnc])
                    .to_owned(),
            )
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn archive(&self, request: RightsRequestId) -> Result<Option<Vec<u8>>, RepositoryError> {
        let Some(row) = rights_archive::Entity::find_by_id(request.as_uuid())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        match self
            .keyring
            .decrypt(archive_binding(request), &row.archive_enc)
            .await
        {
            Ok(archive) => Ok(Some(archive.into_inner())),
            Err(KeyringError::KeyDestroyed(_) | KeyringError::SubjectErased) => Ok(None),
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn put_erasure_step(
        &self,
        request: RightsRequestId,
        step: &ErasureStep,
    ) -> Result<(), RepositoryError> {
        let outcomes = outcomes_json(&step.outcomes)?;
        for _ in 0..STEP_ATTEMPTS {
            if self
                .try_put_step(request.as_uuid(), &step.context, &outcomes)
                .await?
            {
                return Ok(());
            }
        }
        Err(RepositoryError::Conflict)
    }

    async fn erasure_steps(
        &self,
        request: RightsRequestId,
    ) -> Result<Vec<ErasureStep>, RepositoryError> {
        queries::erasure_steps(request)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| {
                Ok(ErasureStep {
                    outcomes: outcomes_of(&row.outcomes, STEPS)?,
                    context: row.context,
                })
            })
            .collect()
    }

    async fn insert_authority(&self, authority: &StoredAuthority) -> Result<(), RepositoryError> {
        let proof = &authority.proof;
        let row = rights_authority::ActiveModel {
            id: Set(authority.id.as_uuid()),
            agent_user_id: Set(proof.agent.as_uuid()),
            subject_id: Set(proof.subject.as_uuid()),
            document_ref: Set(proof.document_ref.clone()),
            scope: Set(proof_columns(proof)?),
            expires_at: Set(stored(proof.expires_at)),
            confirmed_at: Set(proof.confirmed_at.map(stored)),
            recorded_at: Set(stored(authority.recorded_at)),
            version: Set(new_version(authority.version)?),
        };
        rights_authority::Entity::insert(row)
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(conflict_or_unavailable)
    }

    async fn update_authority(&self, authority: &StoredAuthority) -> Result<(), RepositoryError> {
        use rights_authority::Column as C;
        let proof = &authority.proof;
        let replaced = replaced_version(authority.version)?;
        let changed = rights_authority::Entity::update_many()
            .col_expr(C::DocumentRef, Expr::value(proof.document_ref.clone()))
            .col_expr(C::Scope, Expr::value(proof_columns(proof)?))
            .col_expr(C::ExpiresAt, Expr::value(stored(proof.expires_at)))
            .col_expr(C::ConfirmedAt, Expr::value(proof.confirmed_at.map(stored)))
            .col_expr(C::Version, Expr::value(i64::from(authority.version)))
            .filter(C::Id.eq(authority.id.as_uuid()))
            .filter(C::AgentUserId.eq(proof.agent.as_uuid()))
            .filter(C::SubjectId.eq(proof.subject.as_uuid()))
            .filter(C::Version.eq(replaced))
            .exec(self.db.connection())
            .await
            .map_err(unavailable)?
            .rows_affected;
        changed_one(changed)
    }

    async fn authority(&self, id: AuthorityId) -> Result<Option<StoredAuthority>, RepositoryError> {
        rights_authority::Entity::find_by_id(id.as_uuid())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(authority_of)
            .transpose()
    }

    async fn authorities_for(
        &self,
        subject: SubjectId,
    ) -> Result<Vec<StoredAuthority>, RepositoryError> {
        queries::authorities_for(subject)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(authority_of)
            .collect()
    }

    async fn authorities_of_agent(
        &self,
        agent: UserId,
    ) -> Result<Vec<StoredAuthority>, RepositoryError> {
        queries::authorities_of_agent(agent)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(authority_of)
            .collect()
    }

    async fn insert_case(&self, case: &Case) -> Result<(), RepositoryError> {
        let version = new_version(case.version)?;
        let (organisation, subject) = case_key(case.id);
        let cipher = self
            .keyring
            .subject_cipher(organisation, subject)
            .await
            .map_err(unavailable)?;
        let seal = |field, plain: &[u8]| {
            cipher
                .seal(case_binding(case.id, field), plain)
                .map_err(unavailable)
        };
        let message_enc = seal(CASE_MESSAGE_FIELD, case.message.as_bytes())?;
        let reply_to_enc = case
            .reply_to
            .as_ref()
            .map(|r| seal(CASE_REPLY_TO_FIELD, r.as_bytes()))
            .transpose()?;
        let history_enc = seal(
            CASE_HISTORY_FIELD,
            case_history_json(&case.history)?.expose().as_bytes(),
        )?;
        let row = rights_case::ActiveModel {
            id: Set(case.id.as_uuid()),
            kind: Set(case.kind.as_str().to_owned()),
            reporter_user_id: Set(case.reporter.map(|u| u.as_uuid())),
            reply_to_enc: Set(reply_to_enc),
            message_enc: Set(message_enc),
            history_enc: Set(history_enc),
            received_at: Set(stored(case.received_at)),
            due_at: Set(stored(case.due_at)),
            status: Set(case.status.as_str().to_owned()),
            is_open: Set(case.status != CaseStatus::Resolved),
            version: Set(version),
        };
        rights_case::Entity::insert(row)
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(conflict_or_unavailable)
    }

    async fn update_case(&self, case: &Case) -> Result<(), RepositoryError> {
        use rights_case::Column as C;
        let replaced = replaced_version(case.version)?;
        let (organisation, subject) = case_key(case.id);
        let history_enc = self
            .keyring
            .encrypt(
                organisation,
                subject,
                case_binding(case.id, CASE_HISTORY_FIELD),
                case_history_json(&case.history)?.expose().as_bytes(),
            )
            .await
            .map_err(unavailable)?;
        let changed = rights_case::Entity::update_many()
            .col_expr(C::Status, Expr::value(case.status.as_str()))
            .col_expr(C::IsOpen, Expr::value(case.status != CaseStatus::Resolved))
            .col_expr(C::HistoryEnc, Expr::value(history_enc))
            .col_expr(C::Version, Expr::value(i64::from(case.version)))
            .filter(C::Id.eq(case.id.as_uuid()))
            .filter(C::Version.eq(replaced))
            .exec(self.db.connection())
            .await
            .map_err(unavailable)?
            .rows_affected;
        changed_one(changed)
    }

    async fn case(&self, id: CaseId) -> Result<Option<Case>, RepositoryError> {
        match rights_case::Entity::find_by_id(id.as_uuid())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
        {
            Some(row) => Ok(Some(self.case_of(row).await?)),
            None => Ok(None),
        }
    }

    async fn cases_of(&self, user: UserId) -> Result<Vec<Case>, RepositoryError> {
        let rows = queries::cases_of(user)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        self.cases_of_rows(rows).await
    }

    async fn open_cases(&self, limit: u32) -> Result<Vec<Case>, RepositoryError> {
        let rows = queries::open_cases(limit)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        self.cases_of_rows(rows).await
    }
}
