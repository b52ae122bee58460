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
    /// The audit log itself was verified or proven (auditors).
    Verify,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [Self; 10] = [
        Self::Read,
        Self::List,
        Self::Create,
        Self::Update,
        Self::Delete,
        Self::Export,
        Self::Disclose,
        Self::Erase,
        Self::Restrict,
        Self::Verify,
    ];

    /// Parses [`AuditAction::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

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
            Self::Verify => "verify",
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
    /// The practice API key the actor acted through, if any: the key, not its
    /// creator, is then recorded as acting.
    pub api_key: Option<uuid::Uuid>,
    /// For a [`AuditAction::Disclose`] event: what went to whom, and on what
    /// ground (HIPAA §164.528 accounting of disclosures).
    pub disclosure: Option<Disclosure>,
}

/// What a disclosure released, to whom and on what ground: one entry of a subject's
/// accounting of disclosures. The audit store keeps it sealed with the subject's
/// data key, because the description may itself be health information.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Disclosure {
    /// Who received the data (a named person, organisation or authority).
    pub recipient: String,
    /// A description of the data disclosed. Never logged.
    pub description: String,
    /// The legal basis, e.g. `45 CFR 164.512(f)` or `GDPR Art. 6(1)(c)`.
    pub legal_basis: String,
    /// When the data was disclosed (may precede the moment it was recorded).
    pub disclosed_at: DateTime<Utc>,
}

impl std::fmt::Debug for Disclosure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disclosure")
            .field("recipient", &"<redacted>")
            .field("description", &"<redacted>")
            .field("legal_basis", &self.legal_basis)
            .field("disclosed_at", &self.disclosed_at)
            .finish()
    }
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
            api_key: ctx.api_key(),
            disclosure: None,
        }
    }

    /// This event as the disclosure `disclosure` (its action becomes
    /// [`AuditAction::Disclose`]).
    #[must_use]
    pub fn with_disclosure(mut self, disclosure: Disclosure) -> Self {
        self.action = AuditAction::Disclose;
        self.disclosure = Some(disclosure);
        self
    }
}

/// Proof that an event is durable: where it sits in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditReceipt {
    /// The chain (one per writer process) holding the event.
    pub chain: uuid::Uuid,
    /// The event's position in its chain, from 1.
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
