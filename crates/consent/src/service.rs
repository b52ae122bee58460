//! [`ConsentService`]: what people, providers, practices and auditors may ask of
//! the consent context, each use audited; and the [`ConsentGate`] every read of
//! health data asks.
//!
//! The service decides nothing about who may act for whom: the caller (the HTTP
//! layer, which knows identities, guardianships and care relationships) resolves
//! that into an [`Authority`], or calls [`ConsentService::refused`] so a refusal
//! is audited like any other denial.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::{
    AuditAction, AuditEvent, AuditOutcome, AuditSink, ConsentDecision, ConsentError, ConsentGate,
    ConsentQuery, DataCategory, OrganisationId, Purpose, Recipient, RequestContext, ResourceRef,
    SubjectId,
};
use uuid::Uuid;

use crate::authorisation::{AuthorisationError, HipaaAuthorisation, StoredAuthorisation};
use crate::decision::{Circumstances, SERVICE_RECIPIENT, evidence_id};
use crate::ledger::{
    Authority, ChainBreak, ChainId, Channel, Evidence, LedgerAction, LedgerError, LedgerEvent,
    NewEvent, SaltedEvidence, verify_chain,
};
use crate::policy::{PRIVACY_NOTICE, PolicyError, PolicyVersion, in_force};
use crate::ports::{
    ConsentRepository, HistoryEntry, LedgerCursor, PolicyNotifier, PracticeSettings,
    RepositoryError, SubjectRecord,
};

/// The resource kinds this context audits.
pub mod resource {
    /// One subject's consents, their history or a ledger event.
    pub const CONSENT: &str = "consent";
    /// A HIPAA authorisation.
    pub const AUTHORISATION: &str = "hipaa_authorisation";
    /// The whole ledger (export, verification).
    pub const LEDGER: &str = "consent_ledger";
    /// A practice's consent settings.
    pub const SETTINGS: &str = "consent_settings";
    /// A policy document.
    pub const POLICY: &str = "policy_document";
}

/// How many times an append is retried when another process moved the head.
/// Within one process appends to a subject take turns ([`ConsentService::turn`]),
/// so only writers in other processes sharing the database can race.
const APPEND_ATTEMPTS: usize = 16;

/// How many locks subjects are spread over for taking turns.
const TURN_STRIPES: usize = 64;

/// Why a consent operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsentServiceError {
    /// The event contradicts the history (409) or lacks what it needs (422).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The HIPAA authorisation is incomplete (422).
    #[error(transparent)]
    Authorisation(#[from] AuthorisationError),
    /// The policy version is invalid (422).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The policy version exists already (409).
    #[error("that policy version is already published")]
    PolicyExists,
    /// The caller has no authority over the subject (403); the attempt was audited.
    #[error("no authority to act for this person")]
    NoAuthority,
    /// No such record for this subject (404).
    #[error("no such record")]
    NotFound,
    /// Something this context relies on failed (503).
    #[error("consent is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<RepositoryError> for ConsentServiceError {
    fn from(e: RepositoryError) -> Self {
        Self::Unavailable(Box::new(e))
    }
}

/// A change a person (or someone with authority) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What it does.
    pub action: LedgerAction,
    /// For which purpose (grant, withdraw, object).
    pub purpose: Option<Purpose>,
    /// The named recipient (third-party sharing).
    pub recipient: Option<String>,
    /// For which category (restrict, lift restriction).
    pub category: Option<DataCategory>,
    /// On whose authority.
    pub authority: Authority,
    /// Through which channel.
    pub channel: Channel,
    /// A signed document's reference, if any.
    pub document: Option<String>,
    /// From when (default: now).
    pub effective_at: Option<DateTime<Utc>>,
    /// Until when.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Change {
    /// A change by the person themselves through `channel`, effective now.
    #[must_use]
    pub const fn by_person(action: LedgerAction, channel: Channel) -> Self {
        Self {
            action,
            purpose: None,
            recipient: None,
            category: None,
            authority: Authority::Person,
            channel,
            document: None,
            effective_at: None,
            expires_at: None,
        }
    }
}

/// A person's marketing preferences per channel (U3, U4, D6). Transactional notices
/// are not here: they are always sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preferences {
    /// Promotional email may be sent.
    pub marketing_email: bool,
    /// Promotional SMS may be sent.
    pub marketing_sms: bool,
}

/// The first break found, and the totals.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerificationReport {
    /// Chains checked.
    pub chains: u64,
    /// Events checked.
    pub events: u64,
    /// Every chain that breaks, with its first break.
    pub breaks: Vec<(ChainId, ChainBreak)>,
    /// Chains whose projection's head is not their last event.
    pub projection_mismatches: Vec<ChainId>,
}

impl VerificationReport {
    /// Whether every chain verified and every projection is in step.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.breaks.is_empty() && self.projection_mismatches.is_empty()
    }
}

/// The consent context's operations.
#[derive(Clone)]
pub struct ConsentService {
    repository: Arc<dyn ConsentRepository>,
    notifier: Arc<dyn PolicyNotifier>,
    audit: Arc<dyn AuditSink>,
    turns: Arc<[tokio::sync::Mutex<()>]>,
}

impl std::fmt::Debug for ConsentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentService").finish_non_exhaustive()
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn subject_resource(kind: &'static str, subject: SubjectId) -> ResourceRef {
    ResourceRef::new(kind, subject.as_uuid())
}

impl ConsentService {
    /// The service over its ports.
    #[must_use]
    pub fn new(
        repository: Arc<dyn ConsentRepository>,
        notifier: Arc<dyn PolicyNotifier>,
        audit: Arc<dyn AuditSink>,
    ) -> Self {
        Self {
            repository,
            notifier,
            audit,
            turns: (0..TURN_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The lock appends to `subject` take turns on in this process: without it,
    /// concurrent changes for one person would all read the same head and all but
    /// one retry.
    fn turn(&self, subject: SubjectId) -> &tokio::sync::Mutex<()> {
        let bytes = subject.as_uuid().as_u128();
        &self.turns[(bytes % TURN_STRIPES as u128) as usize]
    }

    async fn audit(
        &self,
        ctx: &RequestContext,
        action: AuditAction,
        resource: ResourceRef,
        subject: Option<SubjectId>,
        outcome: AuditOutcome,
    ) -> Result<(), ConsentServiceError> {
        self.audit
            .record(AuditEvent::new(ctx, action, resource, subject, outcome))
            .await
            .map(|_| ())
            .map_err(|e| ConsentServiceError::Unavailable(Box::new(e)))
    }

    async fn allowed(
        &self,
        ctx: &RequestContext,
        action: AuditAction,
        resource: ResourceRef,
        subject: Option<SubjectId>,
    ) -> Result<(), ConsentServiceError> {
        self.audit(ctx, action, resource, subject, AuditOutcome::Allowed)
            .await
    }

    /// Audits a refused attempt to act for `subject` without authority, and
    /// returns the error to answer with (403).
    ///
    /// # Errors
    /// Always: [`ConsentServiceError::NoAuthority`], or `Unavailable` when the
    /// refusal could not be audited.
    pub async fn refused(
        &self,
        ctx: &RequestContext,
        subject: Option<SubjectId>,
        action: AuditAction,
    ) -> ConsentServiceError {
        let resource = ResourceRef::new(
            resource::CONSENT,
            subject.map_or_else(Uuid::nil, |s| s.as_uuid()),
        );
        let outcome = AuditOutcome::Denied {
            reason: "no_authority",
        };
        match self.audit(ctx, action, resource, subject, outcome).await {
            Ok(()) => ConsentServiceError::NoAuthority,
            Err(e) => e,
        }
    }

    /// Records who `subject` belongs to and whether they are a minor (O1),
    /// creating their empty chain if they have none. Bookkeeping: not audited.
    ///
    /// # Errors
    /// `Unavailable` if storage fails.
    pub async fn register(
        &self,
        subject: SubjectId,
        organisation: Option<OrganisationId>,
        minor: bool,
    ) -> Result<SubjectRecord, ConsentServiceError> {
        // Asked on every request that touches a person's consents: write only what
        // changed.
        if let Some(known) = self.repository.subject(subject).await?
            && known.minor == minor
            && organisation.is_none_or(|o| known.organisation == Some(o))
        {
            return Ok(known);
        }
        Ok(self
            .repository
            .register(subject, organisation, minor)
            .await?)
    }

    async fn record_of(&self, subject: SubjectId) -> Result<SubjectRecord, ConsentServiceError> {
        match self.repository.subject(subject).await? {
            Some(r) => Ok(r),
            None => Ok(self.repository.register(subject, None, false).await?),
        }
    }

    /// The privacy-notice version in force at `at`, as events cite it.
    async fn policy_citation(&self, at: i64) -> Result<String, ConsentServiceError> {
        let policies = self.repository.policies().await?;
        in_force(&policies, PRIVACY_NOTICE, at)
            .map(PolicyVersion::citation)
            .ok_or_else(|| ConsentServiceError::Unavailable("no privacy notice is in force".into()))
    }

    /// Appends one event for `subject`, retrying if another writer moved the head.
    async fn append(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        change: &Change,
        authorisation: Option<(Uuid, &HipaaAuthorisation)>,
    ) -> Result<LedgerEvent, ConsentServiceError> {
        let now = micros(ctx.at());
        let policy_version = self.policy_citation(now).await?;
        let evidence = SaltedEvidence::new(Evidence {
            client_address: ctx.client().address().map(|a| a.to_string()),
            user_agent: ctx.client().user_agent().map(str::to_owned),
            document: change.document.clone(),
        });
        let _turn = self.turn(subject).lock().await;
        for _ in 0..APPEND_ATTEMPTS {
            let mut record = self.record_of(subject).await?;
            let expected_head = record.state.head.map(|(s, _)| s);
            let event = NewEvent {
                subject,
                action: change.action,
                purpose: change.purpose,
                recipient: change.recipient.clone(),
                category: change.category,
                authority: change.authority,
                channel: change.channel,
                evidence: evidence.evidence.clone(),
                policy_version: policy_version.clone(),
                recorded_at: now,
                effective_at: change.effective_at.map_or(now, micros),
                expires_at: change.expires_at.map(micros),
            };
            let chained = record.state.append(event, &evidence)?;
            let stored = authorisation.map(|(id, a)| StoredAuthorisation {
                id,
                authorisation: a.clone(),
                authority: change.authority,
                grant_sequence: chained.sequence,
                recorded_at: now,
            });
            match self
                .repository
                .append(&record, expected_head, &chained, &evidence, stored.as_ref())
                .await
            {
                Ok(()) => return Ok(chained),
                Err(RepositoryError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(ConsentServiceError::Unavailable(
            "the consent ledger is too busy for this subject".into(),
        ))
    }

    /// Records `change` for `subject` and audits it.
    ///
    /// # Errors
    /// `Ledger` for a change the history refuses (nothing written), `Unavailable`.
    pub async fn record(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        change: &Change,
    ) -> Result<LedgerEvent, ConsentServiceError> {
        let event = self.append(ctx, subject, change, None).await?;
        self.allowed(
            ctx,
            AuditAction::Create,
            ResourceRef::new(resource::CONSENT, evidence_id(subject, event.sequence)),
            Some(subject),
        )
        .await?;
        Ok(event)
    }

    /// The provider's attestation that the client authorised sharing their
    /// information with the service (S6), obtained at `obtained_at` through
    /// `channel` (a signed form, said in person): a grant of treatment to the
    /// service, on the provider's authority.
    ///
    /// # Errors
    /// As [`ConsentService::record`].
    pub async fn attest(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        provider: kernel::UserId,
        channel: Channel,
        document: Option<String>,
        obtained_at: DateTime<Utc>,
    ) -> Result<LedgerEvent, ConsentServiceError> {
        let change = Change {
            action: LedgerAction::Grant,
            purpose: Some(Purpose::Treatment),
            recipient: Some(SERVICE_RECIPIENT.to_owned()),
            category: None,
            authority: Authority::ProviderAttesting(provider),
            channel,
            document,
            effective_at: Some(obtained_at.min(ctx.at())),
            expires_at: None,
        };
        self.record(ctx, subject, &change).await
    }

    /// Records a `Sec-GPC: 1` signal as an opt-out of sharing (O4), unless the
    /// person has already opted out. Returns the event if one was recorded.
    ///
    /// # Errors
    /// As [`ConsentService::record`].
    pub async fn global_privacy_control(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Option<LedgerEvent>, ConsentServiceError> {
        if self
            .repository
            .subject(subject)
            .await?
            .is_some_and(|r| r.state.opted_out_of_sharing())
        {
            return Ok(None);
        }
        let change = Change {
            purpose: Some(Purpose::ThirdPartySharing),
            ..Change::by_person(LedgerAction::Object, Channel::GlobalPrivacyControl)
        };
        self.record(ctx, subject, &change).await.map(Some)
    }

    /// The subject's record and their practice's settings (audited as a read).
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn overview(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<(SubjectRecord, PracticeSettings), ConsentServiceError> {
        let record = self.record_of(subject).await?;
        let settings = self.settings_of(record.organisation).await?;
        self.allowed(
            ctx,
            AuditAction::Read,
            subject_resource(resource::CONSENT, subject),
            Some(subject),
        )
        .await?;
        Ok((record, settings))
    }

    /// The subject's full history with its evidence (audited as a read).
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn history(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<HistoryEntry>, ConsentServiceError> {
        let history = self.repository.history(subject).await?;
        self.allowed(
            ctx,
            AuditAction::List,
            subject_resource(resource::CONSENT, subject),
            Some(subject),
        )
        .await?;
        Ok(history)
    }

    async fn settings_of(
        &self,
        organisation: Option<OrganisationId>,
    ) -> Result<PracticeSettings, ConsentServiceError> {
        Ok(match organisation {
            Some(o) => self.repository.settings(o).await?,
            None => PracticeSettings::default(),
        })
    }

    /// Decides without auditing: the gate's path.
    /// What a decision about `subject` reads: their projection (empty if they have
    /// none) and their practice's settings.
    async fn decision_inputs(
        &self,
        subject: SubjectId,
    ) -> Result<(Arc<SubjectRecord>, PracticeSettings), RepositoryError> {
        let Some(record) = self.repository.snapshot(subject).await? else {
            let empty = SubjectRecord::new(subject, None, false);
            return Ok((Arc::new(empty), PracticeSettings::default()));
        };
        let settings = match record.organisation {
            Some(o) => self.repository.settings(o).await?,
            None => PracticeSettings::default(),
        };
        Ok((record, settings))
    }

    /// Decides without auditing: the gate's path.
    async fn decide_quietly(
        &self,
        subject: SubjectId,
        purpose: Purpose,
        recipient: Option<&str>,
        category: DataCategory,
        at: DateTime<Utc>,
    ) -> Result<ConsentDecision, RepositoryError> {
        let (record, settings) = self.decision_inputs(subject).await?;
        Ok(decide_for(
            &record, &settings, purpose, recipient, category, at,
        ))
    }

    /// A provider's question: would `purpose` on `category` be allowed now? The
    /// answer carries the basis or the reason, never the evidence. Audited.
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn check(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        purpose: Purpose,
        recipient: Option<&str>,
        category: DataCategory,
    ) -> Result<ConsentDecision, ConsentServiceError> {
        let decision = self
            .decide_quietly(subject, purpose, recipient, category, ctx.at())
            .await?;
        self.allowed(
            ctx,
            AuditAction::Read,
            subject_resource(resource::CONSENT, subject),
            Some(subject),
        )
        .await?;
        Ok(decision)
    }

    /// The person's marketing preferences, as decided now.
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn preferences(
        &self,
        subject: SubjectId,
        at: DateTime<Utc>,
    ) -> Result<Preferences, ConsentServiceError> {
        let (record, settings) = self.decision_inputs(subject).await?;
        let allowed = |purpose| {
            decide_for(&record, &settings, purpose, None, DataCategory::Contact, at).is_allowed()
        };
        Ok(Preferences {
            marketing_email: allowed(Purpose::MarketingEmail),
            marketing_sms: allowed(Purpose::MarketingSms),
        })
    }

    /// Turns marketing through `purpose`'s channel on (a grant) or off (a
    /// withdrawal of a grant, or an objection where marketing was allowed without
    /// one): one event either way (D7). Returns the event, or `None` if nothing
    /// needed to change.
    ///
    /// # Errors
    /// As [`ConsentService::record`].
    pub async fn set_preference(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        purpose: Purpose,
        on: bool,
        authority: Authority,
        channel: Channel,
    ) -> Result<Option<LedgerEvent>, ConsentServiceError> {
        let (record, settings) = self.decision_inputs(subject).await?;
        let now = decide_for(
            &record,
            &settings,
            purpose,
            None,
            DataCategory::Contact,
            ctx.at(),
        )
        .is_allowed();
        if now == on {
            return Ok(None);
        }
        let granted = matches!(
            record.state.purpose(purpose, None),
            Some(crate::decision::PurposeState::Granted(_))
        );
        let action = match (on, granted) {
            (true, _) => LedgerAction::Grant,
            (false, true) => LedgerAction::Withdraw,
            (false, false) => LedgerAction::Object,
        };
        let change = Change {
            purpose: Some(purpose),
            authority,
            ..Change::by_person(action, channel)
        };
        self.record(ctx, subject, &change).await.map(Some)
    }

    /// Records a HIPAA authorisation (§164.508) and the grant it gives. Returns its
    /// id and the grant.
    ///
    /// # Errors
    /// `Authorisation` for a missing element (nothing recorded), else as
    /// [`ConsentService::record`].
    pub async fn authorise(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        authorisation: &HipaaAuthorisation,
        authority: Authority,
        channel: Channel,
    ) -> Result<(Uuid, LedgerEvent), ConsentServiceError> {
        authorisation.validate(authority)?;
        let id = Uuid::now_v7();
        let change = Change {
            action: LedgerAction::Grant,
            purpose: Some(authorisation.purpose),
            recipient: authorisation.ledger_recipient().map(str::to_owned),
            category: None,
            authority,
            channel,
            document: Some(id.to_string()),
            effective_at: None,
            expires_at: authorisation
                .ledger_expiry()
                .and_then(DateTime::<Utc>::from_timestamp_micros),
        };
        let event = self
            .append(ctx, subject, &change, Some((id, authorisation)))
            .await?;
        self.allowed(
            ctx,
            AuditAction::Create,
            ResourceRef::new(resource::AUTHORISATION, id),
            Some(subject),
        )
        .await?;
        Ok((id, event))
    }

    /// The subject's recorded authorisations (audited).
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn authorisations(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<StoredAuthorisation>, ConsentServiceError> {
        let list = self.repository.authorisations(subject).await?;
        self.allowed(
            ctx,
            AuditAction::List,
            subject_resource(resource::AUTHORISATION, subject),
            Some(subject),
        )
        .await?;
        Ok(list)
    }

    /// Revokes authorisation `id`: a withdrawal of its grant, effective at once.
    ///
    /// # Errors
    /// `NotFound` for an unknown id; `Ledger(NothingToEnd)` if already revoked.
    pub async fn revoke(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        id: Uuid,
        authority: Authority,
        channel: Channel,
    ) -> Result<LedgerEvent, ConsentServiceError> {
        let found = self
            .repository
            .authorisations(subject)
            .await?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or(ConsentServiceError::NotFound)?;
        let change = Change {
            purpose: Some(found.authorisation.purpose),
            recipient: found.authorisation.ledger_recipient().map(str::to_owned),
            authority,
            document: Some(id.to_string()),
            ..Change::by_person(LedgerAction::Withdraw, channel)
        };
        self.record(ctx, subject, &change).await
    }

    /// A practice's settings.
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn settings(
        &self,
        organisation: OrganisationId,
    ) -> Result<PracticeSettings, ConsentServiceError> {
        Ok(self.repository.settings(organisation).await?)
    }

    /// Replaces a practice's settings (audited).
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn set_settings(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        settings: &PracticeSettings,
    ) -> Result<(), ConsentServiceError> {
        self.repository.set_settings(organisation, settings).await?;
        self.allowed(
            ctx,
            AuditAction::Update,
            ResourceRef::new(resource::SETTINGS, organisation.as_uuid()),
            None,
        )
        .await
    }

    /// Every published policy version.
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn policies(&self) -> Result<Vec<PolicyVersion>, ConsentServiceError> {
        Ok(self.repository.policies().await?)
    }

    /// Publishes a policy version. A material one is announced to every person
    /// with a consent record, through the notifier (O3). Returns how many were told.
    ///
    /// # Errors
    /// `Policy` for a bad version, `PolicyExists`, `Unavailable`.
    pub async fn publish(
        &self,
        ctx: &RequestContext,
        version: &PolicyVersion,
    ) -> Result<u64, ConsentServiceError> {
        let existing = self.repository.policies().await?;
        if let Some(current) = in_force(&existing, &version.document, version.published_at)
            && version.effective_at < current.effective_at
        {
            return Err(PolicyError::EffectiveBeforePrevious.into());
        }
        match self.repository.publish(version).await {
            Ok(()) => {}
            Err(RepositoryError::Conflict) => return Err(ConsentServiceError::PolicyExists),
            Err(e) => return Err(e.into()),
        }
        self.allowed(
            ctx,
            AuditAction::Create,
            ResourceRef::new(resource::POLICY, Uuid::nil()),
            None,
        )
        .await?;
        if !version.material {
            return Ok(0);
        }
        let mut told = 0;
        let mut after = None;
        loop {
            let page = self.repository.subjects_after(after, 500).await?;
            let Some(last) = page.last().copied() else {
                break;
            };
            for subject in page {
                if self.notifier.policy_changed(subject, version).await? {
                    told += 1;
                }
            }
            after = Some(last);
        }
        Ok(told)
    }

    /// A page of the ledger of `organisation`'s subjects for its auditor, in
    /// (chain, sequence) order (audited as an export).
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn export_ledger(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        after: Option<LedgerCursor>,
        limit: u32,
    ) -> Result<Vec<LedgerEvent>, ConsentServiceError> {
        let page = self
            .repository
            .events_of_organisation(organisation, after, limit)
            .await?;
        self.allowed(
            ctx,
            AuditAction::Export,
            ResourceRef::new(resource::LEDGER, Uuid::nil()),
            None,
        )
        .await?;
        Ok(page)
    }

    /// Verifies every chain, and that every projection's head is its chain's last
    /// event. Audited when `ctx` is given (the API); the command line passes none.
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn verify(
        &self,
        ctx: Option<&RequestContext>,
    ) -> Result<VerificationReport, ConsentServiceError> {
        let report = verify_repository(self.repository.as_ref()).await?;
        if let Some(ctx) = ctx {
            self.allowed(
                ctx,
                AuditAction::Verify,
                ResourceRef::new(resource::LEDGER, Uuid::nil()),
                None,
            )
            .await?;
        }
        Ok(report)
    }

    /// The repository, for the personal-data port and the retention sweep.
    pub(crate) fn repository(&self) -> &dyn ConsentRepository {
        self.repository.as_ref()
    }
}

/// Decides from a subject's record and their practice's settings.
fn decide_for(
    record: &SubjectRecord,
    settings: &PracticeSettings,
    purpose: Purpose,
    recipient: Option<&str>,
    category: DataCategory,
    at: DateTime<Utc>,
) -> ConsentDecision {
    let circumstances = Circumstances {
        policy: &settings.policy,
        regime: settings.regime,
        minor: record.minor,
    };
    record.state.decide(
        record.subject,
        purpose,
        recipient,
        category,
        micros(at),
        circumstances,
    )
}

/// Verifies every chain in `repository` page by page, and checks each subject's
/// projection head against their chain's last event.
///
/// # Errors
/// The repository's.
pub async fn verify_repository(
    repository: &dyn ConsentRepository,
) -> Result<VerificationReport, RepositoryError> {
    const PAGE: u32 = 2_000;
    let mut report = VerificationReport::default();
    let mut last_of: std::collections::BTreeMap<ChainId, (u64, [u8; 32])> =
        std::collections::BTreeMap::new();
    let mut current: Vec<LedgerEvent> = Vec::new();
    let mut after = None;
    let mut finish = |events: &mut Vec<LedgerEvent>, report: &mut VerificationReport| {
        if let Some(first) = events.first() {
            let chain = first.chain;
            report.chains += 1;
            report.events += events.len() as u64;
            if let Some(b) = verify_chain(chain, events) {
                report.breaks.push((chain, b));
            }
            if let Some(last) = events.last() {
                last_of.insert(chain, (last.sequence, last.hash));
            }
        }
        events.clear();
    };
    loop {
        let page = repository.events_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.chain, last.sequence));
        for event in page {
            if current.first().is_some_and(|f| f.chain != event.chain) {
                finish(&mut current, &mut report);
            }
            current.push(event);
        }
    }
    finish(&mut current, &mut report);
    let mut after = None;
    loop {
        let heads = repository.heads_after(after, PAGE).await?;
        let Some((last, _)) = heads.last() else { break };
        after = Some(*last);
        for (chain, head) in heads {
            if last_of.get(&chain).copied() != head {
                report.projection_mismatches.push(chain);
            }
        }
    }
    Ok(report)
}

#[async_trait]
impl ConsentGate for ConsentService {
    async fn decide(&self, query: &ConsentQuery) -> Result<ConsentDecision, ConsentError> {
        let recipient = match &query.recipient {
            Recipient::ThirdParty { name } => Some(name.as_str()),
            _ => None,
        };
        self.decide_quietly(
            query.subject,
            query.purpose,
            recipient,
            query.category,
            query.at,
        )
        .await
        .map_err(|e| ConsentError::Unavailable(Box::new(e)))
    }
}
