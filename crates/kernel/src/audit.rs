//! The [`AuditSink`] port: every access to personal health data, and every denial,
//! becomes an [`AuditEvent`] that is durable before the answer leaves.
//!
//! Implemented by the `audit` context (tamper-evident, group-committed). Callers must
//! treat an [`AuditError`] as a failure of the whole operation: no audit, no data
//! (fail closed).

use std::net::IpAddr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Actor, OrganisationId, Purpose, RequestContext, RequestId, ResourceRef, SubjectId};

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// One record was read.
    Read,
    /// A list of records was read.
    List,
    /// A record was created.
    Create,
    /// A record was changed.
    Update,
    /// A record was deleted.
    Delete,
    /// Records were exported (access, portability).
    Export,
    /// Records were disclosed outside the care relationship.
    Disclose,
    /// A subject's records were erased or anonymised.
    Erase,
    /// Processing of a subject's records was restricted.
    Restrict,
}

impl AuditAction {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::List => "list",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Export => "export",
            Self::Disclose => "disclose",
            Self::Erase => "erase",
            Self::Restrict => "restrict",
        }
    }
}

/// Whether the access happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AuditOutcome {
    /// The access was allowed and performed.
    Allowed,
    /// The access was refused.
    Denied {
        /// A short machine reason such as `not_on_care_team` or `consent_withdrawn`.
        /// Never health data.
        reason: &'static str,
    },
}

/// One access or disclosure, as the caller describes it. The sink adds the sequence
/// number and the chain link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who acted.
    pub actor: Actor,
    /// The practice acted in.
    pub organisation: Option<OrganisationId>,
    /// What was done.
    pub action: AuditAction,
    /// Which record (for a list, the parent or collection).
    pub resource: ResourceRef,
    /// Whose data it is.
    pub subject: Option<SubjectId>,
    /// Why.
    pub purpose: Purpose,
    /// Allowed or denied, and why not.
    pub outcome: AuditOutcome,
    /// The request it belongs to.
    pub request_id: RequestId,
    /// The client's address.
    pub client_address: Option<IpAddr>,
}

impl AuditEvent {
    /// An event for `ctx`, taking actor, organisation, purpose, time, request id and
    /// client address from it.
    #[must_use]
    pub fn new(
        ctx: &RequestContext,
        action: AuditAction,
        resource: ResourceRef,
        subject: Option<SubjectId>,
        outcome: AuditOutcome,
    ) -> Self {
        Self {
            at: ctx.at(),
            actor: *ctx.actor(),
            organisation: ctx.organisation(),
            action,
            resource,
            subject,
            purpose: ctx.purpose(),
            outcome,
            request_id: ctx.request_id(),
            client_address: ctx.client().address(),
        }
    }
}

/// Proof that an event is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditReceipt {
    /// The event's position in its chain.
    pub sequence: u64,
}

/// Why an event could not be made durable. The operation that caused it must fail
/// (the server answers 503) and release no data.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log could not be written. The detail is for operators' logs only.
    #[error("the audit log is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Records accesses to and disclosures of personal data.
///
/// # Contract
/// `record` returns `Ok` only once the event is durable: after a crash, every event
/// whose `record` returned `Ok` is present and verifiable. Implementations may batch
/// concurrent events into one commit, but never acknowledge one before its batch
/// is durable.
#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Makes `event` durable.
    async fn record(&self, event: AuditEvent) -> Result<AuditReceipt, AuditError>;
}
