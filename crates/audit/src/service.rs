//! [`AuditService`]: what people may ask of the audit log, each request itself
//! audited (reading who accessed health data is an access to it).
//!
//! - auditors verify the whole log and get inclusion proofs for their practice's
//!   events; auditors and privacy officers list their practice's events;
//! - a subject reads who accessed their record, and the accounting of disclosures
//!   of their data (HIPAA §164.528) for the last six years; a privacy officer reads
//!   the accounting for a client of their practice;
//! - other contexts record disclosures through [`kernel::AuditSink`] with
//!   [`kernel::AuditEvent::with_disclosure`], or through
//!   [`AuditService::record_disclosure`] for one entered by hand;
//! - auditors and privacy officers see which actors' recent accesses look unusual
//!   (U6: repeated denials, or many different people's data);
//! - the rights engine erases a subject ([`AuditService::erase_subject`]) and the
//!   retention job prunes ([`AuditService::apply_retention`]).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use kernel::{
    AuditAction, AuditEvent, AuditOutcome, AuditSink, Disclosure, OrganisationId, RequestContext,
    ResourceRef, Role, SubjectId, UserId,
};
use uuid::Uuid;

use crate::checkpoint::{Checkpoint, VerifyingKey};
use crate::event::{ActorKind, ChainId, SealedEvent};
use crate::log::AuditLog;
use crate::ports::{
    AuditRepository, AuditStoreError, DisclosureRecord, Erasure, EventCursor, EventFilter,
};
use crate::verify::{Report, verify_repository};
use crate::{Hash, merkle};

/// How long events and disclosures are kept: six years (HIPAA §164.316(b)(2),
/// §164.528(a)) unless configured longer.
pub const DEFAULT_RETENTION: TimeDelta = TimeDelta::days(6 * 365 + 2);

/// Turns a person's id into the keyed pseudonym that replaces it when they are
/// erased. Implemented with a key the database does not hold.
pub trait Pseudonymiser: Send + Sync + 'static {
    /// The pseudonym of `id`: the same for the same id, unlinkable without the key.
    fn pseudonym(&self, id: Uuid) -> Hash;
}

/// Why a request of the audit log was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditServiceError {
    /// The caller's roles do not allow it (recorded as a denial).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// No such event, or not one of the caller's practice.
    #[error("not found")]
    NotFound,
    /// The log could not be read or written (fail closed).
    #[error("the audit log is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<AuditStoreError> for AuditServiceError {
    fn from(err: AuditStoreError) -> Self {
        Self::Unavailable(Box::new(err))
    }
}

impl From<kernel::AuditError> for AuditServiceError {
    fn from(err: kernel::AuditError) -> Self {
        Self::Unavailable(Box::new(err))
    }
}

/// An RFC 6962 inclusion proof of one event against a signed checkpoint.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    /// The event.
    pub event: SealedEvent,
    /// Its canonical encoding: `SHA-256(0x00 || encoding)` is the leaf hash.
    pub encoding: Vec<u8>,
    /// Its leaf index (sequence − 1).
    pub leaf_index: u64,
    /// The tree size the checkpoint signed.
    pub tree_size: u64,
    /// The audit path, bottom up.
    pub path: Vec<Hash>,
    /// The checkpoint whose signed root the path leads to.
    pub checkpoint: Checkpoint,
}

/// One line of a subject's access report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who, while they are not erased (a person; an API key is named by
    /// `actor_kind` only).
    pub actor: Option<UserId>,
    /// Whether the actor was a person since erased.
    pub actor_erased: bool,
    /// The kind of actor (`member`, `operator`, `system`, `anonymous`, `api_key`).
    pub actor_kind: &'static str,
    /// The roles they acted with.
    pub roles: Vec<Role>,
    /// The practice.
    pub organisation: Option<OrganisationId>,
    /// What was done.
    pub action: String,
    /// The kind of record.
    pub resource_kind: String,
    /// Why.
    pub purpose: String,
    /// `None` when allowed.
    pub denied: Option<String>,
}

/// One entry of an accounting of disclosures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisclosureEntry {
    /// The disclosure.
    pub detail: Disclosure,
    /// The practice that disclosed.
    pub organisation: OrganisationId,
    /// The purpose recorded with it.
    pub purpose: String,
    /// Where its event sits in the log.
    pub chain: ChainId,
    /// Its sequence number.
    pub sequence: u64,
}

/// Why an actor's recent accesses look unusual (U6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// Many refused accesses: probing for records one may not see.
    RepeatedDenials,
    /// Many different people's data: far beyond one caseload.
    BroadAccess,
}

impl AlertKind {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RepeatedDenials => "repeated_denials",
            Self::BroadAccess => "broad_access",
        }
    }
}

/// One actor whose accesses in the window crossed a threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessAlert {
    /// Why.
    pub kind: AlertKind,
    /// The actor's kind (`member`, `api_key`, ...).
    pub actor_kind: &'static str,
    /// The person or API key.
    pub actor: Uuid,
    /// How many denials, or how many distinct subjects.
    pub count: u64,
    /// The threshold it crossed.
    pub threshold: u64,
    /// The first and last event counted.
    pub first_at: DateTime<Utc>,
    /// The last event counted.
    pub last_at: DateTime<Utc>,
}

/// When accesses count as unusual.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertThresholds {
    /// Denials of one actor in the window.
    pub denials: u64,
    /// Distinct subjects one actor touched in the window.
    pub subjects: u64,
}

impl Default for AlertThresholds {
    fn default() -> Self {
        Self {
            denials: 5,
            subjects: 50,
        }
    }
}

/// The most events one alert scan reads; a window holding more is scanned from
/// its newest events.
const ALERT_SCAN_LIMIT: usize = 200_000;

/// A page of events, newest first.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The events.
    pub events: Vec<SealedEvent>,
    /// Where the next page starts, if there may be one.
    pub next: Option<EventCursor>,
}

/// What people may ask of the audit log.
#[derive(Clone)]
pub struct AuditService {
    repository: Arc<dyn AuditRepository>,
    log: AuditLog,
    trusted: Vec<VerifyingKey>,
    pseudonyms: Arc<dyn Pseudonymiser>,
    retention: TimeDelta,
}

impl std::fmt::Debug for AuditService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditService")
            .field("chain", &self.log.chain())
            .field("retention_days", &self.retention.num_days())
            .finish_non_exhaustive()
    }
}

const AUDIT_LOG: &str = "audit_log";
const AUDIT_EVENT: &str = "audit_event";
const ACCESS_REPORT: &str = "access_report";
const DISCLOSURES: &str = "disclosure_accounting";

impl AuditService {
    /// The service over `repository`, writing through `log`. Checkpoints verify under
    /// `trusted` (the log's own key is always trusted; add retired keys here).
    #[must_use]
    pub fn new(
        repository: Arc<dyn AuditRepository>,
        log: AuditLog,
        mut trusted: Vec<VerifyingKey>,
        pseudonyms: Arc<dyn Pseudonymiser>,
        retention: TimeDelta,
    ) -> Self {
        if !trusted.contains(log.verifying_key()) {
            trusted.push(log.verifying_key().clone());
        }
        Self {
            repository,
            log,
            trusted,
            pseudonyms,
            retention: retention.max(DEFAULT_RETENTION),
        }
    }

    /// The writer, as the [`AuditSink`] every other context records through.
    #[must_use]
    pub fn sink(&self) -> Arc<dyn AuditSink> {
        Arc::new(self.log.clone())
    }

    /// The writer.
    #[must_use]
    pub const fn log(&self) -> &AuditLog {
        &self.log
    }

    /// The storage, for tools that read the log directly (`cargo xtask verify
    /// audit`, tests).
    #[must_use]
    pub fn repository(&self) -> &Arc<dyn AuditRepository> {
        &self.repository
    }

    /// The keys checkpoints verify under.
    #[must_use]
    pub fn trusted_keys(&self) -> &[VerifyingKey] {
        &self.trusted
    }

    /// How long events are kept.
    #[must_use]
    pub const fn retention(&self) -> TimeDelta {
        self.retention
    }

    /// Records `event`, failing closed.
    async fn record(&self, event: AuditEvent) -> Result<(), AuditServiceError> {
        self.log.record(event).await?;
        Ok(())
    }

    /// Checks that the caller holds one of `roles` (in `organisation`, when given);
    /// a refusal is recorded as a denial before it is returned.
    async fn require(
        &self,
        ctx: &RequestContext,
        roles: &[Role],
        organisation: Option<OrganisationId>,
        resource: ResourceRef,
        subject: Option<SubjectId>,
    ) -> Result<(), AuditServiceError> {
        let in_place = organisation.is_none_or(|o| ctx.organisation() == Some(o));
        if in_place && ctx.actor().roles().contains_any(roles) {
            return Ok(());
        }
        let reason = if in_place {
            "role_forbids"
        } else {
            "other_organisation"
        };
        self.record(AuditEvent::new(
            ctx,
            AuditAction::Read,
            resource,
            subject,
            AuditOutcome::Denied { reason },
        ))
        .await?;
        Err(if in_place {
            AuditServiceError::Forbidden("Only the practice's auditors may do this.")
        } else {
            AuditServiceError::NotFound
        })
    }

    /// Verifies every chain and checkpoint (auditors).
    ///
    /// # Errors
    /// [`AuditServiceError::Forbidden`], [`AuditServiceError::Unavailable`].
    pub async fn verify(&self, ctx: &RequestContext) -> Result<Report, AuditServiceError> {
        let resource = ResourceRef::new(AUDIT_LOG, Uuid::nil());
        self.require(ctx, &[Role::Auditor], None, resource, None)
            .await?;
        let report = verify_repository(self.repository.as_ref(), &self.trusted).await?;
        self.record(AuditEvent::new(
            ctx,
            AuditAction::Verify,
            resource,
            None,
            AuditOutcome::Allowed,
        ))
        .await?;
        Ok(report)
    }

    /// A page of the practice's events, newest first (auditors, privacy officers);
    /// with `request`, only that request's events.
    ///
    /// # Errors
    /// [`AuditServiceError::Forbidden`], [`AuditServiceError::NotFound`] (another
    /// practice), [`AuditServiceError::Unavailable`].
    pub async fn organisation_events(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        request: Option<Uuid>,
        cursor: Option<EventCursor>,
        limit: u32,
    ) -> Result<EventPage, AuditServiceError> {
        let resource = ResourceRef::new(AUDIT_LOG, organisation.as_uuid());
        let roles = [Role::Auditor, Role::PrivacyOfficer];
        self.require(ctx, &roles, Some(organisation), resource, None)
            .await?;
        let since = ctx.at() - self.retention;
        let page = match request {
            Some(request) => {
                let mut page = self
                    .page(EventFilter::Request(request), since, cursor, limit)
                    .await?;
                // Another practice's events of the same request stay hidden.
                page.events
                    .retain(|e| e.organisation == Some(organisation.as_uuid()));
                page
            }
            None => {
                let filter = EventFilter::Organisation(organisation.as_uuid());
                self.page(filter, since, cursor, limit).await?
            }
        };
        self.record(AuditEvent::new(
            ctx,
            AuditAction::List,
            resource,
            None,
            AuditOutcome::Allowed,
        ))
        .await?;
        Ok(page)
    }

    async fn page(
        &self,
        filter: EventFilter,
        since: DateTime<Utc>,
        cursor: Option<EventCursor>,
        limit: u32,
    ) -> Result<EventPage, AuditServiceError> {
        let limit = limit.clamp(1, 500);
        let events = self
            .repository
            .list_events(filter, since, cursor, limit)
            .await?;
        let next = (events.len() == limit as usize)
            .then(|| events.last())
            .flatten()
            .map(|e| EventCursor {
                at: e.at,
                chain: e.chain,
                sequence: e.sequence,
            });
        Ok(EventPage { events, next })
    }

    /// Actors of the practice whose accesses since `since` look unusual (U6):
    /// repeated denials, or the data of many different people. For auditors and
    /// privacy officers; the scan reads the practice's events of the window only.
    ///
    /// # Errors
    /// [`AuditServiceError::Forbidden`], [`AuditServiceError::NotFound`] (another
    /// practice), [`AuditServiceError::Unavailable`].
    pub async fn access_alerts(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        since: DateTime<Utc>,
        thresholds: AlertThresholds,
    ) -> Result<Vec<AccessAlert>, AuditServiceError> {
        use std::collections::{BTreeMap, BTreeSet};

        struct Seen {
            kind: &'static str,
            denials: u64,
            subjects: BTreeSet<Uuid>,
            first_at: DateTime<Utc>,
            last_at: DateTime<Utc>,
        }
        let resource = ResourceRef::new(AUDIT_LOG, organisation.as_uuid());
        let roles = [Role::Auditor, Role::PrivacyOfficer];
        self.require(ctx, &roles, Some(organisation), resource, None)
            .await?;
        let filter = EventFilter::Organisation(organisation.as_uuid());
        let mut seen: BTreeMap<Uuid, Seen> = BTreeMap::new();
        let mut cursor = None;
        let mut scanned = 0;
        loop {
            let page = self.page(filter, since, cursor, 500).await?;
            scanned += page.events.len();
            for event in &page.events {
                let Some(actor) = event.actor.id else {
                    continue;
                };
                let entry = seen.entry(actor).or_insert_with(|| Seen {
                    kind: event.actor.kind.as_str(),
                    denials: 0,
                    subjects: BTreeSet::new(),
                    first_at: event.at,
                    last_at: event.at,
                });
                entry.first_at = entry.first_at.min(event.at);
                entry.last_at = entry.last_at.max(event.at);
                if event.denied.is_some() {
                    entry.denials += 1;
                } else if let Some(subject) = event.subject.as_ref().and_then(|s| s.id) {
                    entry.subjects.insert(subject);
                }
            }
            cursor = page.next;
            if cursor.is_none() || scanned >= ALERT_SCAN_LIMIT {
                break;
            }
        }
        self.record(AuditEvent::new(
            ctx,
            AuditAction::List,
            resource,
            None,
            AuditOutcome::Allowed,
        ))
        .await?;
        let mut alerts = Vec::new();
        for (actor, s) in seen {
            let mut raise = |kind, count, threshold| {
                if count >= threshold {
                    alerts.push(AccessAlert {
                        kind,
                        actor_kind: s.kind,
                        actor,
                        count,
                        threshold,
                        first_at: s.first_at,
                        last_at: s.last_at,
                    });
                }
            };
            raise(AlertKind::RepeatedDenials, s.denials, thresholds.denials);
            raise(
                AlertKind::BroadAccess,
                s.subjects.len() as u64,
                thresholds.subjects,
            );
        }
        alerts.sort_by_key(|a| std::cmp::Reverse(a.count));
        Ok(alerts)
    }

    /// An inclusion proof of event `sequence` of `chain` against the newest signed
    /// checkpoint (auditors of the event's practice).
    ///
    /// # Errors
    /// [`AuditServiceError::NotFound`] for an event of another practice, one not yet
    /// covered by a checkpoint, or none; [`AuditServiceError::Forbidden`],
    /// [`AuditServiceError::Unavailable`].
    pub async fn inclusion_proof(
        &self,
        ctx: &RequestContext,
        chain: ChainId,
        sequence: u64,
    ) -> Result<InclusionProof, AuditServiceError> {
        let resource = ResourceRef::new(AUDIT_EVENT, chain);
        self.require(ctx, &[Role::Auditor], None, resource, None)
            .await?;
        let event = self
            .repository
            .event(chain, sequence)
            .await?
            .filter(|e| !e.pruned && e.organisation == ctx.organisation().map(|o| o.as_uuid()))
            .ok_or(AuditServiceError::NotFound)?;
        let covers = |cp: &Checkpoint| cp.head(chain).is_some_and(|h| h.size >= sequence);
        let mut checkpoint = self.repository.latest_checkpoint().await?.filter(covers);
        if checkpoint.is_none() {
            // Too recent for the last checkpoint: sign one now rather than make the
            // auditor wait for the next.
            self.log.checkpoint().await?;
            checkpoint = self.repository.latest_checkpoint().await?.filter(covers);
        }
        let checkpoint = checkpoint.ok_or(AuditServiceError::NotFound)?;
        let tree_size = checkpoint.head(chain).map_or(0, |h| h.size);
        let leaves = self.repository.leaf_hashes(chain, tree_size).await?;
        let path = merkle::inclusion_proof(sequence - 1, &leaves)
            .ok_or(AuditStoreError::Corrupt("audit_events"))?;
        self.record(AuditEvent::new(
            ctx,
            AuditAction::Verify,
            resource,
            None,
            AuditOutcome::Allowed,
        ))
        .await?;
        Ok(InclusionProof {
            encoding: event.encoding(),
            event,
            leaf_index: sequence - 1,
            tree_size,
            path,
            checkpoint,
        })
    }

    /// Who accessed `subject`'s data, newest first, for the subject themselves: the
    /// caller must pass the subject the signed-in person *is*.
    ///
    /// # Errors
    /// [`AuditServiceError::Unavailable`].
    pub async fn access_report(
        &self,
        ctx: &RequestContext,
        own_subject: SubjectId,
        cursor: Option<EventCursor>,
        limit: u32,
    ) -> Result<(Vec<AccessEntry>, Option<EventCursor>), AuditServiceError> {
        let since = ctx.at() - self.retention;
        let filter = EventFilter::Subject(own_subject.as_uuid());
        let page = self.page(filter, since, cursor, limit).await?;
        self.record(AuditEvent::new(
            ctx,
            AuditAction::Read,
            ResourceRef::new(ACCESS_REPORT, Uuid::nil()),
            Some(own_subject),
            AuditOutcome::Allowed,
        ))
        .await?;
        let entries = page.events.iter().map(access_entry).collect();
        Ok((entries, page.next))
    }

    /// The accounting of disclosures of `subject`'s data over the retention period
    /// (six years), oldest first. `organisation`: only that practice's (a privacy
    /// officer's view; the caller has checked the subject is their client), or all
    /// (the subject's own view, for their own subject).
    ///
    /// # Errors
    /// [`AuditServiceError::Forbidden`], [`AuditServiceError::Unavailable`].
    pub async fn disclosures(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        organisation: Option<OrganisationId>,
    ) -> Result<Vec<DisclosureEntry>, AuditServiceError> {
        // The subject is named only as the subject (see `docs/audit.md`).
        let resource = ResourceRef::new(DISCLOSURES, Uuid::nil());
        if organisation.is_some() {
            self.require(
                ctx,
                &[Role::PrivacyOfficer],
                organisation,
                resource,
                Some(subject),
            )
            .await?;
        }
        let since = ctx.at() - self.retention;
        let records = self
            .repository
            .disclosures(subject.as_uuid(), since)
            .await?;
        let mut entries = Vec::with_capacity(records.len());
        for record in records {
            if organisation.is_some_and(|o| o.as_uuid() != record.organisation) {
                continue;
            }
            entries.push(disclosure_entry(self.repository.as_ref(), record).await?);
        }
        self.record(AuditEvent::new(
            ctx,
            AuditAction::Read,
            resource,
            Some(subject),
            AuditOutcome::Allowed,
        ))
        .await?;
        Ok(entries)
    }

    /// Records a disclosure of a client's data entered by hand (privacy officers,
    /// providers, org admins of the practice); the caller has checked the subject
    /// is a client of the practice.
    ///
    /// # Errors
    /// [`AuditServiceError::Forbidden`], [`AuditServiceError::Unavailable`].
    pub async fn record_disclosure(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        subject: SubjectId,
        disclosure: Disclosure,
    ) -> Result<(ChainId, u64), AuditServiceError> {
        // The subject is named only as the subject (see `docs/audit.md`).
        let resource = ResourceRef::new(DISCLOSURES, Uuid::nil());
        let roles = [Role::PrivacyOfficer, Role::Provider, Role::OrgAdmin];
        self.require(ctx, &roles, Some(organisation), resource, Some(subject))
            .await?;
        let event = AuditEvent::new(
            ctx,
            AuditAction::Disclose,
            resource,
            Some(subject),
            AuditOutcome::Allowed,
        )
        .with_disclosure(disclosure);
        let receipt = self.log.record(event).await?;
        Ok((receipt.chain, receipt.sequence))
    }

    /// Replaces `subject` (and, as actor, `user`) in every past event by their keyed
    /// pseudonym, recording the erasure in the log. Verification still passes.
    ///
    /// # Errors
    /// [`AuditServiceError::Unavailable`]: nothing changed.
    pub async fn erase_subject(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        user: Option<UserId>,
    ) -> Result<Hash, AuditServiceError> {
        let pseudonym = self.pseudonyms.pseudonym(subject.as_uuid());
        let event = AuditEvent::new(
            ctx,
            AuditAction::Erase,
            ResourceRef::new(AUDIT_LOG, Uuid::nil()),
            None,
            AuditOutcome::Allowed,
        );
        let erasure = Erasure {
            subject: subject.as_uuid(),
            user: user.map(|u| u.as_uuid()),
            pseudonym,
        };
        self.log.erase(event, erasure).await?;
        Ok(pseudonym)
    }

    /// Blanks events older than the retention period, and signs how far. Returns
    /// the number of chains pruned.
    ///
    /// # Errors
    /// [`AuditServiceError::Unavailable`].
    pub async fn apply_retention(&self, now: DateTime<Utc>) -> Result<u64, AuditServiceError> {
        Ok(self.log.prune(now - self.retention).await?)
    }
}

/// One disclosure as its accounting shows it, with the purpose of its event, after
/// checking the details against the digest the event holds.
pub(crate) async fn disclosure_entry(
    repository: &dyn AuditRepository,
    record: DisclosureRecord,
) -> Result<DisclosureEntry, AuditStoreError> {
    let event = repository
        .event(record.chain, record.sequence)
        .await?
        .ok_or(AuditStoreError::Corrupt("audit_disclosures"))?;
    // The details live outside the chain; their digest is inside it.
    if event.disclosure_digest != Some(crate::event::disclosure_digest(&record.detail)) {
        return Err(AuditStoreError::Corrupt("audit_disclosures"));
    }
    Ok(DisclosureEntry {
        detail: record.detail,
        organisation: OrganisationId::from_uuid(record.organisation),
        purpose: event.purpose,
        chain: record.chain,
        sequence: record.sequence,
    })
}

/// One event as a subject's access report shows it.
pub(crate) fn access_entry(event: &SealedEvent) -> AccessEntry {
    let person = matches!(event.actor.kind, ActorKind::Member | ActorKind::Operator);
    AccessEntry {
        at: event.at,
        actor: event.actor.id.filter(|_| person).map(UserId::from_uuid),
        actor_erased: event.actor.pseudonym.is_some(),
        actor_kind: event.actor.kind.as_str(),
        roles: event.roles(),
        organisation: event.organisation.map(OrganisationId::from_uuid),
        action: event.action.clone(),
        resource_kind: event.resource_kind.clone(),
        purpose: event.purpose.clone(),
        denied: event.denied.clone(),
    }
}
