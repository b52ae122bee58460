//! The [`PersonalData`] port: implemented by every context that holds personal data,
//! and orchestrated by the rights engine, which touches personal data through
//! nothing else.
//!
//! A context describes what it holds (its part of the data map, which answers the
//! CCPA right to know and GDPR Art. 30), and exports, rectifies, erases and restricts
//! one subject's records. Erasure reports each record's fate with its ground, so the
//! answer to the person can state every legal exception (D3, R2).

use std::borrow::Cow;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{DataCategory, LegalGround, Purpose, RequestContext, ResourceRef, SubjectId};

/// Where a category of data comes from (CCPA "sources").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The person gave it.
    Subject,
    /// Their healthcare provider entered it.
    Provider,
    /// Collected automatically from their device or requests.
    Automatic,
    /// Produced by Custodia itself (e.g. audit events).
    System,
    /// Received from a sub-processor (e.g. the payment processor).
    SubProcessor,
}

/// How long a category is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Retention {
    /// Kept while the account or care relationship exists, then erased.
    WhileActive,
    /// Kept for a fixed period after it was created, on a legal ground.
    Period {
        /// The period, in days.
        days: u32,
        /// Why that long.
        ground: LegalGround,
    },
}

/// One line of the data map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataMapEntry {
    /// What kind of data.
    pub category: DataCategory,
    /// What exactly is held, in plain words.
    pub description: Cow<'static, str>,
    /// Where it comes from.
    pub sources: Vec<Source>,
    /// What it is used for.
    pub purposes: Vec<Purpose>,
    /// Who receives it (by kind, e.g. "care team", "payment processor").
    pub recipients: Vec<Cow<'static, str>>,
    /// How long it is kept.
    pub retention: Retention,
}

/// One exported record. `data` is the record's content in the context's documented
/// export schema: health data in the clear, because the export is for the person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportedRecord {
    /// What kind of data.
    pub category: DataCategory,
    /// Which record.
    pub resource: ResourceRef,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its content.
    pub data: serde_json::Value,
}

/// A correction of one field of one record (D2, GDPR Art. 16).
#[derive(Debug, Clone, PartialEq)]
pub struct Rectification {
    /// Which record.
    pub resource: ResourceRef,
    /// Which field, by its export-schema name.
    pub field: String,
    /// The corrected value.
    pub value: serde_json::Value,
}

/// What happened to one record on erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "fate", rename_all = "snake_case")]
pub enum RecordFate {
    /// Gone (including by destroying the only key that could read it).
    Deleted,
    /// Kept with every identifying field removed or replaced by a pseudonym.
    Anonymised,
    /// Kept as it is, on a cited ground, until a date.
    Retained {
        /// Why it must be kept.
        ground: LegalGround,
        /// When it will be erased, if known.
        until: Option<DateTime<Utc>>,
    },
}

/// One record's erasure outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureOutcome {
    /// What kind of data.
    pub category: DataCategory,
    /// Which record.
    pub resource: ResourceRef,
    /// What happened to it.
    pub fate: RecordFate,
}

/// Which processing a restriction covers (D4, GDPR Art. 18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestrictionScope {
    /// Every category this context holds.
    All,
    /// Only these categories.
    Categories(Vec<DataCategory>),
}

/// Why a [`PersonalData`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PersonalDataError {
    /// The record named does not belong to the subject, or does not exist.
    #[error("no such record for this subject")]
    NotFound,
    /// The change is not valid for the record (e.g. an unknown field).
    #[error("invalid change: {0}")]
    Invalid(Cow<'static, str>),
    /// The storage behind the context failed. The detail is for operators' logs.
    #[error("personal data is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A context that holds personal data.
///
/// # Contract
/// - `describe` is static and complete: every category the context stores is listed.
/// - `export` returns every record of the subject in every category described.
/// - `erase` leaves no record of the subject that is neither deleted, anonymised nor
///   retained on a stated ground, and is idempotent.
/// - `restrict` stops every use of the covered categories except storage, and the
///   uses the law still allows (legal claims, another person's rights).
/// - Each operation is authorised by the rights engine before it is called, and is
///   audited by the caller; the context does not second-guess `ctx`.
#[async_trait]
pub trait PersonalData: Send + Sync + 'static {
    /// The context's stable name, e.g. `identity`.
    fn context(&self) -> &'static str;

    /// The context's part of the data map.
    fn describe(&self) -> Vec<DataMapEntry>;

    /// Every record the context holds about `subject`.
    async fn export(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ExportedRecord>, PersonalDataError>;

    /// Applies one correction.
    async fn rectify(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        change: Rectification,
    ) -> Result<(), PersonalDataError>;

    /// Erases `subject`'s records, reporting each record's fate.
    async fn erase(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ErasureOutcome>, PersonalDataError>;

    /// Restricts processing of `subject`'s records; `lift` undoes an earlier restriction.
    async fn restrict(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        scope: RestrictionScope,
        lift: bool,
    ) -> Result<(), PersonalDataError>;
}

/// What a retention sweep did to records past their retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryAction {
    /// The records are gone.
    Deleted,
    /// The records are kept with every identifying field removed.
    Anonymised,
}

impl ExpiryAction {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::Anonymised => "anonymised",
        }
    }
}

/// One line of a retention sweep's answer: how many records of a category expired
/// and what was (or, in a dry run, would be) done to them. Counts only: never
/// which records, or whose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expired {
    /// What kind of data.
    pub category: DataCategory,
    /// What happened to it.
    pub action: ExpiryAction,
    /// How many records.
    pub records: u64,
}

/// A context's retention sweep (R1): finds what has outlived the
/// [`Retention::Period`] its [`PersonalData::describe`] declares, and deletes or
/// anonymises it. Categories kept [`Retention::WhileActive`] end with the account
/// or relationship (the rights engine's erasure), not here.
///
/// # Contract
/// - Idempotent: a second sweep at the same `now` finds nothing more to do.
/// - With `dry_run`, nothing changes; the answer is what a real sweep at `now`
///   would do.
/// - The answer names categories and counts, never records or people; a category
///   with nothing expired may be left out.
/// - An implementation may bound the work of one call (and say so); the next call
///   continues.
/// - Called by the system (a [`RequestContext::system`] context), which audits the
///   run; the sweep does not audit itself.
#[async_trait]
pub trait RetentionSweep: Send + Sync + 'static {
    /// The context's stable name, the same as its [`PersonalData::context`].
    fn context(&self) -> &'static str;

    /// Deletes or anonymises what has expired at `now` (or, with `dry_run`, counts it).
    async fn sweep(
        &self,
        ctx: &RequestContext,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<Expired>, PersonalDataError>;
}
