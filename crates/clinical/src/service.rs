//! The clinical service: the one path every read, list and write of a client's
//! data takes.
//!
//! ```text
//! actor -> relationship (the client / care team / practice admin / break-glass)
//!       -> restriction (D4) -> ConsentGate (purpose, recipient, category)
//!       -> reads: fetch + open (store) -> AuditSink -> answer
//!       -> writes: AuditSink -> write (store) -> answer
//! ```
//!
//! A client the actor has no relationship with is [`ClinicalError::NotFound`],
//! exactly as a client that does not exist, and the refusal is audited. A consent
//! or restriction refusal is [`ClinicalError::Refused`] (403), audited with its
//! machine reason. If the audit log cannot be written, the operation fails with
//! [`ClinicalError::Unavailable`] and releases nothing (fail closed): a read is
//! audited after the data is fetched and before it is returned, a write is audited
//! before it is made (so the log may hold an attempt that then failed, and a
//! second event then records why; it never lacks a change that was made).

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use kernel::{
    Actor, AuditAction, AuditEvent, AuditOutcome, AuditSink, ConsentDecision, ConsentDenial,
    ConsentGate, ConsentQuery, DataCategory, OrganisationId, Purpose, Recipient, RequestContext,
    ResourceRef, Role, UserId,
};
use uuid::Uuid;

use crate::model::{
    Amendment, AmendmentStatus, Appointment, AppointmentDetails, AppointmentStatus, Authors,
    BodyError, BreakGlassGrant, CareTeamMember, ClientIdentity, ClientRef, ExerciseTemplate,
    MAX_BREAK_GLASS_MINUTES, Page, PageRequest, Record, RecordBody, RecordKind, RecordVersion,
    check_time_range,
};
use crate::ports::{ClientListing, ClinicalRepository, RepositoryError};
use crate::values::Text;

/// Audit resource kinds that are not record kinds.
pub mod resource {
    /// A client's chart as a whole (lists of clients, the care team).
    pub const CLIENT: &str = "client";
    /// A care-team membership.
    pub const CARE_TEAM: &str = "care_team";
    /// A break-glass grant.
    pub const BREAK_GLASS: &str = "break_glass_grant";
    /// An appointment.
    pub const APPOINTMENT: &str = "appointment";
    /// The exercise library.
    pub const EXERCISE_TEMPLATE: &str = "exercise_template";
}

/// Why a clinical operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClinicalError {
    /// No such client, record or appointment, or none the actor may see (404).
    #[error("not found")]
    NotFound,
    /// The actor sees the client but may not do this (403), e.g. a client writing
    /// a condition. The text names the rule.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Consent or a restriction refuses the use (403), with its machine reason.
    #[error("refused: {}", .0.as_str())]
    Refused(ConsentDenial),
    /// The input broke a rule (422); nothing was stored.
    #[error(transparent)]
    Invalid(#[from] BodyError),
    /// The change conflicts with the stored state (409): a double booking, a
    /// version that moved on, an amendment already decided.
    #[error("{0}")]
    Conflict(&'static str),
    /// Storage, the consent gate or the audit log is unavailable (503).
    #[error("clinical records are unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<RepositoryError> for ClinicalError {
    fn from(e: RepositoryError) -> Self {
        match e {
            RepositoryError::Conflict(rule) => Self::Conflict(rule),
            RepositoryError::Unavailable(e) => Self::Unavailable(e),
        }
    }
}

/// How the actor is related to the client whose data they touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The client themselves.
    Client,
    /// A provider on the client's current care team.
    CareTeam,
    /// An admin of the client's practice, for administration.
    Admin,
    /// Someone holding a break-glass grant in force.
    BreakGlass,
}

impl Relation {
    /// The purpose of the use, which the audit event records.
    #[must_use]
    pub const fn purpose(self) -> Purpose {
        match self {
            Self::Client => Purpose::SubjectRequest,
            Self::CareTeam => Purpose::Treatment,
            Self::Admin => Purpose::Operations,
            Self::BreakGlass => Purpose::BreakGlass,
        }
    }

    fn may_write(self, authors: Authors) -> bool {
        match authors {
            Authors::CareTeam => matches!(self, Self::CareTeam | Self::BreakGlass),
            Authors::CareTeamOrAdmin => {
                matches!(self, Self::CareTeam | Self::BreakGlass | Self::Admin)
            }
            Authors::Client => self == Self::Client,
            Authors::ClientOrCareTeam => {
                matches!(self, Self::Client | Self::CareTeam | Self::BreakGlass)
            }
        }
    }
}

/// An access that passed the relationship, restriction and consent checks.
#[derive(Debug, Clone)]
pub struct Access {
    /// The client.
    pub client: ClientRef,
    /// How the actor is related to them.
    pub relation: Relation,
    /// The acting person.
    pub actor: UserId,
    ctx: RequestContext,
}

impl Access {
    /// The request, with the purpose of this access.
    #[must_use]
    pub const fn context(&self) -> &RequestContext {
        &self.ctx
    }
}

/// A new appointment, as asked for.
#[derive(Debug, Clone)]
pub struct NewAppointment {
    /// The provider (must be a provider of the practice).
    pub provider: UserId,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Details (time zone, place or link, reason).
    pub details: AppointmentDetails,
}

/// The clinical service. Cheap to clone.
#[derive(Clone)]
pub struct ClinicalService {
    repo: Arc<dyn ClinicalRepository>,
    consent: Arc<dyn ConsentGate>,
    audit: Arc<dyn AuditSink>,
}

impl std::fmt::Debug for ClinicalService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClinicalService").finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> ClinicalError {
    ClinicalError::Unavailable(Box::new(e))
}

/// What an operation does, for the access check.
#[derive(Debug, Clone, Copy)]
enum Intent {
    Read,
    Write(Authors),
}

impl ClinicalService {
    /// A service over `repo`, deciding with `consent` and auditing to `audit`.
    #[must_use]
    pub fn new(
        repo: Arc<dyn ClinicalRepository>,
        consent: Arc<dyn ConsentGate>,
        audit: Arc<dyn AuditSink>,
    ) -> Self {
        Self {
            repo,
            consent,
            audit,
        }
    }

    /// The repository (for the `PersonalData` implementation).
    #[must_use]
    pub fn repository(&self) -> &Arc<dyn ClinicalRepository> {
        &self.repo
    }

    async fn record_event(&self, event: AuditEvent) -> Result<(), ClinicalError> {
        self.audit
            .record(event)
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn deny<T>(
        &self,
        ctx: &RequestContext,
        action: AuditAction,
        resource: ResourceRef,
        client: Option<&ClientRef>,
        reason: &'static str,
        error: ClinicalError,
    ) -> Result<T, ClinicalError> {
        let outcome = AuditOutcome::Denied { reason };
        let event = AuditEvent::new(ctx, action, resource, client.map(|c| c.subject), outcome);
        self.record_event(event).await?;
        Err(error)
    }

    /// The access check every operation on a client's data starts with.
    async fn access(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client_user: UserId,
        category: DataCategory,
        intent: Intent,
        (action, resource): (AuditAction, ResourceRef),
    ) -> Result<Access, ClinicalError> {
        let Actor::Member { user, roles } = *ctx.actor() else {
            return self
                .deny(
                    ctx,
                    action,
                    resource,
                    None,
                    "not_a_member",
                    ClinicalError::NotFound,
                )
                .await;
        };
        if ctx.organisation() != Some(organisation) {
            return self
                .deny(
                    ctx,
                    action,
                    resource,
                    None,
                    "other_practice",
                    ClinicalError::NotFound,
                )
                .await;
        }
        let Some(found) = self.repo.client(organisation, client_user).await? else {
            return self
                .deny(
                    ctx,
                    action,
                    resource,
                    None,
                    "no_such_client",
                    ClinicalError::NotFound,
                )
                .await;
        };
        let client = found.client;
        let relation = if user == client.user {
            Some(Relation::Client)
        } else if roles.contains(Role::Provider)
            && self
                .repo
                .on_care_team(&client, user, ctx.at().date_naive())
                .await?
        {
            Some(Relation::CareTeam)
        } else if roles.contains(Role::OrgAdmin) {
            Some(Relation::Admin)
        } else if self
            .repo
            .break_glass_in_force(&client, user, ctx.at())
            .await?
        {
            Some(Relation::BreakGlass)
        } else {
            None
        };
        let Some(relation) = relation else {
            return self
                .deny(
                    ctx,
                    action,
                    resource,
                    Some(&client),
                    "no_relationship",
                    ClinicalError::NotFound,
                )
                .await;
        };
        let ctx = ctx.with_purpose(relation.purpose());
        if let Intent::Write(authors) = intent
            && !relation.may_write(authors)
        {
            let rule = match authors {
                Authors::Client => "only the client writes this record",
                Authors::CareTeam => "only the care team writes this record",
                Authors::CareTeamOrAdmin => {
                    "only the care team or a practice admin writes this record"
                }
                Authors::ClientOrCareTeam => {
                    "only the client and their care team write this record"
                }
            };
            return self
                .deny(
                    &ctx,
                    action,
                    resource,
                    Some(&client),
                    "not_an_author",
                    ClinicalError::Forbidden(rule),
                )
                .await;
        }
        if relation != Relation::Client && found.restricted.covers(category) {
            let denial = ConsentDenial::Restricted;
            return self
                .deny(
                    &ctx,
                    action,
                    resource,
                    Some(&client),
                    denial.as_str(),
                    ClinicalError::Refused(denial),
                )
                .await;
        }
        let recipient = match relation {
            Relation::Client => Recipient::Subject,
            Relation::CareTeam | Relation::BreakGlass => Recipient::CareTeamMember { user },
            Relation::Admin => Recipient::Organisation { organisation },
        };
        let query = ConsentQuery {
            subject: client.subject,
            purpose: relation.purpose(),
            recipient,
            category,
            at: ctx.at(),
        };
        match self.consent.decide(&query).await.map_err(unavailable)? {
            ConsentDecision::Allow { .. } => Ok(Access {
                client,
                relation,
                actor: user,
                ctx,
            }),
            ConsentDecision::Deny { reason } => {
                self.deny(
                    &ctx,
                    action,
                    resource,
                    Some(&client),
                    reason.as_str(),
                    ClinicalError::Refused(reason),
                )
                .await
            }
        }
    }

    /// Records the allowed access; the caller answers only if this succeeds.
    async fn allowed(
        &self,
        access: &Access,
        action: AuditAction,
        resource: ResourceRef,
    ) -> Result<(), ClinicalError> {
        let event = AuditEvent::new(
            &access.ctx,
            action,
            resource,
            Some(access.client.subject),
            AuditOutcome::Allowed,
        );
        self.record_event(event).await
    }

    /// After an audited write attempt failed on a rule the store enforces, records
    /// why, so the log does not show the attempt as done. A failure to record it is
    /// not the caller's concern: the original error is returned either way.
    async fn failed(
        &self,
        access: &Access,
        action: AuditAction,
        resource: ResourceRef,
        error: ClinicalError,
    ) -> ClinicalError {
        let reason = match &error {
            ClinicalError::Conflict(_) => "conflict",
            ClinicalError::Invalid(_) => "invalid",
            _ => "failed",
        };
        let event = AuditEvent::new(
            &access.ctx,
            action,
            resource,
            Some(access.client.subject),
            AuditOutcome::Denied { reason },
        );
        if let Err(e) = self.audit.record(event).await {
            tracing::warn!(error = %e, "the audit event of a failed clinical write was not recorded");
        }
        error
    }

    // ----- records -----

    /// Writes a new record of the client (its kind decides who may).
    ///
    /// # Errors
    /// See [`ClinicalError`]; `Invalid` for a body breaking a rule spanning fields,
    /// or an adherence log for a program or item that does not exist.
    pub async fn create_record(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        body: RecordBody,
    ) -> Result<Record, ClinicalError> {
        body.check(ctx.at().date_naive())?;
        let kind = body.kind();
        let id = Uuid::now_v7();
        let resource = ResourceRef::new(kind.as_str(), id);
        let action = (AuditAction::Create, resource);
        let access = self
            .access(
                ctx,
                organisation,
                client,
                kind.category(),
                Intent::Write(kind.authors()),
                action,
            )
            .await?;
        let body = match self.prepare(&access, body).await {
            Ok(body) => body,
            Err(e) => {
                return Err(self
                    .failed_before_write(&access, (AuditAction::Create, resource), e)
                    .await);
            }
        };
        self.allowed(&access, AuditAction::Create, resource).await?;
        let record = Record {
            id,
            client: access.client,
            version: 1,
            body,
            created_at: ctx.at(),
            created_by: access.actor,
            updated_at: ctx.at(),
            updated_by: access.actor,
        };
        match self.repo.insert_record(&record).await {
            Ok(()) => Ok(record),
            Err(e) => Err(self
                .failed(&access, AuditAction::Create, resource, e.into())
                .await),
        }
    }

    /// A refusal found before anything was written (an adherence log for a
    /// missing program, an amendment of a missing record): audited as denied.
    async fn failed_before_write(
        &self,
        access: &Access,
        (action, resource): (AuditAction, ResourceRef),
        error: ClinicalError,
    ) -> ClinicalError {
        let reason = match &error {
            ClinicalError::NotFound => "target_not_found",
            ClinicalError::Conflict(_) => "conflict",
            _ => "invalid",
        };
        let event = AuditEvent::new(
            &access.ctx,
            action,
            resource,
            Some(access.client.subject),
            AuditOutcome::Denied { reason },
        );
        match self.audit.record(event).await {
            Ok(_) => error,
            Err(e) => unavailable(e),
        }
    }

    /// Checks what a body refers to, and fills in what the service decides
    /// (a message's sender, an amendment's initial state).
    async fn prepare(
        &self,
        access: &Access,
        body: RecordBody,
    ) -> Result<RecordBody, ClinicalError> {
        match body {
            RecordBody::Adherence(log) => {
                let program = self
                    .repo
                    .record(&access.client, log.program)
                    .await?
                    .filter(|r| r.kind() == RecordKind::Program)
                    .ok_or(ClinicalError::Invalid(BodyError::Rule("no such program")))?;
                let items = if program.version == log.program_version {
                    match &program.body {
                        RecordBody::Program(p) => p.items.len(),
                        _ => 0,
                    }
                } else {
                    let versions = self
                        .repo
                        .record_versions(&access.client, log.program)
                        .await?;
                    versions
                        .iter()
                        .find(|v| v.version == log.program_version)
                        .and_then(|v| match &v.body {
                            RecordBody::Program(p) => Some(p.items.len()),
                            _ => None,
                        })
                        .ok_or(ClinicalError::Invalid(BodyError::Rule(
                            "no such version of the program",
                        )))?
                };
                if log.completed.iter().any(|i| usize::from(*i) >= items) {
                    return Err(BodyError::Rule("a completed item is not in the program").into());
                }
                Ok(RecordBody::Adherence(log))
            }
            RecordBody::Message(mut message) => {
                message.sender = access.actor;
                Ok(RecordBody::Message(message))
            }
            RecordBody::Amendment(amendment) => {
                let target = self
                    .repo
                    .record(&access.client, amendment.target)
                    .await?
                    .filter(|r| r.kind().amendable())
                    .ok_or(ClinicalError::Invalid(BodyError::Rule(
                        "no such record to amend",
                    )))?;
                // The proposal must be a valid value of the field it corrects.
                target.body.with_field(
                    &amendment.field,
                    amendment.proposed.clone(),
                    access.ctx.at().date_naive(),
                )?;
                Ok(RecordBody::Amendment(Amendment {
                    target_kind: target.kind(),
                    status: AmendmentStatus::Proposed,
                    decided_by: None,
                    decided_at: None,
                    applied_version: None,
                    denial_reason: None,
                    disagreement: None,
                    ..amendment
                }))
            }
            RecordBody::Program(mut program) => {
                // Each item names a library exercise; its name is copied as it is
                // when prescribed (the template may change later).
                for item in &mut program.items {
                    let template = self
                        .repo
                        .template(access.client.organisation, item.exercise)
                        .await?
                        .ok_or(ClinicalError::Invalid(BodyError::Rule(
                            "a program item names an unknown exercise",
                        )))?;
                    item.name = template.name;
                }
                Ok(RecordBody::Program(program))
            }
            other => Ok(other),
        }
    }

    /// One record of the client.
    ///
    /// # Errors
    /// See [`ClinicalError`].
    pub async fn record(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        kind: RecordKind,
        id: Uuid,
    ) -> Result<Record, ClinicalError> {
        let resource = ResourceRef::new(kind.as_str(), id);
        let access = self
            .access(
                ctx,
                organisation,
                client,
                kind.category(),
                Intent::Read,
                (AuditAction::Read, resource),
            )
            .await?;
        let record = self
            .repo
            .record(&access.client, id)
            .await?
            .filter(|r| r.kind() == kind)
            .ok_or(ClinicalError::NotFound)?;
        self.allowed(&access, AuditAction::Read, resource).await?;
        Ok(record)
    }

    /// A page of the client's records of one kind.
    ///
    /// # Errors
    /// See [`ClinicalError`].
    pub async fn records(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        kind: RecordKind,
        page: PageRequest,
    ) -> Result<Page<Record>, ClinicalError> {
        let resource = ResourceRef::new(kind.as_str(), client.as_uuid());
        let access = self
            .access(
                ctx,
                organisation,
                client,
                kind.category(),
                Intent::Read,
                (AuditAction::List, resource),
            )
            .await?;
        let page = self.repo.records(&access.client, kind, page).await?;
        self.allowed(&access, AuditAction::List, resource).await?;
        Ok(page)
    }

    /// Every version of one record, oldest first.
    ///
    /// # Errors
    /// See [`ClinicalError`].
    pub async fn record_versions(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        kind: RecordKind,
        id: Uuid,
    ) -> Result<Vec<RecordVersion>, ClinicalError> {
        let resource = ResourceRef::new(kind.as_str(), id);
        let access = self
            .access(
                ctx,
                organisation,
                client,
                kind.category(),
                Intent::Read,
                (AuditAction::Read, resource),
            )
            .await?;
        let current = self
            .repo
            .record(&access.client, id)
            .await?
            .filter(|r| r.kind() == kind)
            .ok_or(ClinicalError::NotFound)?;
        let versions = self
            .repo
            .record_versions(&access.client, current.id)
            .await?;
        self.allowed(&access, AuditAction::Read, resource).await?;
        Ok(versions)
    }

    /// Replaces a record's content with a new version (the old one stays
    /// readable). `expected` is the version the writer read: another writer's
    /// change in between is a conflict. Amendments and adherence logs are not
    /// updated this way.
    ///
    /// # Errors
    /// See [`ClinicalError`].
    pub async fn update_record(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        id: Uuid,
        body: RecordBody,
        expected: u32,
    ) -> Result<Record, ClinicalError> {
        body.check(ctx.at().date_naive())?;
        let kind = body.kind();
        if matches!(
            kind,
            RecordKind::Amendment | RecordKind::Adherence | RecordKind::Message
        ) {
            return Err(
                BodyError::Rule("this kind of record is not changed after it is written").into(),
            );
        }
        let resource = ResourceRef::new(kind.as_str(), id);
        let access = self
            .access(
                ctx,
                organisation,
                client,
                kind.category(),
                Intent::Write(kind.authors()),
                (AuditAction::Update, resource),
            )
            .await?;
        let current = self
            .repo
            .record(&access.client, id)
            .await?
            .filter(|r| r.kind() == kind)
            .ok_or(ClinicalError::NotFound)?;
        let body = match self.prepare(&access, body).await {
            Ok(body) => body,
            Err(e) => {
                return Err(self
                    .failed_before_write(&access, (AuditAction::Update, resource), e)
                    .await);
            }
        };
        if current.version != expected {
            return Err(ClinicalError::Conflict(
                "the record changed since it was read",
            ));
        }
        self.allowed(&access, AuditAction::Update, resource).await?;
        let record = Record {
            version: current.version + 1,
            body,
            updated_at: ctx.at(),
            updated_by: access.actor,
            ..current
        };
        match self.repo.update_records(&[(&record, expected)]).await {
            Ok(()) => Ok(record),
            Err(e) => Err(self
                .failed(&access, AuditAction::Update, resource, e.into())
                .await),
        }
    }

    // ----- amendments (D2) -----

    /// A provider on the care team accepts an amendment: the target record gets a
    /// new version with the proposed value, and the amendment records which. Both
    /// are written in one transaction.
    ///
    /// # Errors
    /// `Conflict` if the amendment was already decided or the target changed so
    /// the value no longer applies; see [`ClinicalError`].
    pub async fn accept_amendment(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        id: Uuid,
    ) -> Result<(Record, Record), ClinicalError> {
        let (access, amendment_record, amendment) = self
            .amendment_for_decision(ctx, organisation, client, id)
            .await?;
        let resource = ResourceRef::new(RecordKind::Amendment.as_str(), id);
        let target = self
            .repo
            .record(&access.client, amendment.target)
            .await?
            .ok_or(ClinicalError::Conflict(
                "the amended record no longer exists",
            ))?;
        let body = target
            .body
            .with_field(
                &amendment.field,
                amendment.proposed.clone(),
                ctx.at().date_naive(),
            )
            .map_err(|_| {
                ClinicalError::Conflict("the proposed value no longer applies to the record")
            })?;
        let target_resource = ResourceRef::new(target.kind().as_str(), target.id);
        let target_access = self
            .access(
                ctx,
                organisation,
                client,
                target.kind().category(),
                Intent::Write(Authors::CareTeam),
                (AuditAction::Update, target_resource),
            )
            .await?;
        self.allowed(&access, AuditAction::Update, resource).await?;
        self.allowed(&target_access, AuditAction::Update, target_resource)
            .await?;
        let new_target = Record {
            version: target.version + 1,
            body,
            updated_at: ctx.at(),
            updated_by: access.actor,
            ..target.clone()
        };
        let decided = Record {
            version: amendment_record.version + 1,
            body: RecordBody::Amendment(Amendment {
                status: AmendmentStatus::Accepted,
                decided_by: Some(access.actor),
                decided_at: Some(ctx.at()),
                applied_version: Some(new_target.version),
                ..amendment
            }),
            updated_at: ctx.at(),
            updated_by: access.actor,
            ..amendment_record.clone()
        };
        match self
            .repo
            .update_records(&[
                (&new_target, target.version),
                (&decided, amendment_record.version),
            ])
            .await
        {
            Ok(()) => Ok((decided, new_target)),
            Err(e) => Err(self
                .failed(&access, AuditAction::Update, resource, e.into())
                .await),
        }
    }

    /// A provider on the care team denies an amendment with a reason the client sees.
    ///
    /// # Errors
    /// `Conflict` if already decided; see [`ClinicalError`].
    pub async fn deny_amendment(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        id: Uuid,
        reason: Text<2000>,
    ) -> Result<Record, ClinicalError> {
        let (access, record, amendment) = self
            .amendment_for_decision(ctx, organisation, client, id)
            .await?;
        let resource = ResourceRef::new(RecordKind::Amendment.as_str(), id);
        self.allowed(&access, AuditAction::Update, resource).await?;
        let decided = Record {
            version: record.version + 1,
            body: RecordBody::Amendment(Amendment {
                status: AmendmentStatus::Denied,
                decided_by: Some(access.actor),
                decided_at: Some(ctx.at()),
                denial_reason: Some(reason),
                ..amendment
            }),
            updated_at: ctx.at(),
            updated_by: access.actor,
            ..record.clone()
        };
        match self
            .repo
            .update_records(&[(&decided, record.version)])
            .await
        {
            Ok(()) => Ok(decided),
            Err(e) => Err(self
                .failed(&access, AuditAction::Update, resource, e.into())
                .await),
        }
    }

    async fn amendment_for_decision(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        id: Uuid,
    ) -> Result<(Access, Record, Amendment), ClinicalError> {
        let resource = ResourceRef::new(RecordKind::Amendment.as_str(), id);
        let access = self
            .access(
                ctx,
                organisation,
                client,
                DataCategory::HealthRecord,
                Intent::Write(Authors::CareTeam),
                (AuditAction::Update, resource),
            )
            .await?;
        let record = self
            .repo
            .record(&access.client, id)
            .await?
            .ok_or(ClinicalError::NotFound)?;
        let RecordBody::Amendment(amendment) = record.body.clone() else {
            return Err(ClinicalError::NotFound);
        };
        if amendment.status != AmendmentStatus::Proposed {
            return Err(ClinicalError::Conflict("the amendment was already decided"));
        }
        Ok((access, record, amendment))
    }

    /// After a denial, the client attaches a statement of disagreement (once).
    ///
    /// # Errors
    /// `Conflict` unless the amendment was denied and has no statement yet.
    pub async fn disagree(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        id: Uuid,
        statement: Text<4000>,
    ) -> Result<Record, ClinicalError> {
        let resource = ResourceRef::new(RecordKind::Amendment.as_str(), id);
        let access = self
            .access(
                ctx,
                organisation,
                client,
                DataCategory::HealthRecord,
                Intent::Write(Authors::Client),
                (AuditAction::Update, resource),
            )
            .await?;
        let record = self
            .repo
            .record(&access.client, id)
            .await?
            .ok_or(ClinicalError::NotFound)?;
        let RecordBody::Amendment(amendment) = record.body.clone() else {
            return Err(ClinicalError::NotFound);
        };
        if amendment.status != AmendmentStatus::Denied || amendment.disagreement.is_some() {
            return Err(ClinicalError::Conflict(
                "a statement of disagreement is attached once, to a denied amendment",
            ));
        }
        self.allowed(&access, AuditAction::Update, resource).await?;
        let updated = Record {
            version: record.version + 1,
            body: RecordBody::Amendment(Amendment {
                disagreement: Some(statement),
                ..amendment
            }),
            updated_at: ctx.at(),
            updated_by: access.actor,
            ..record.clone()
        };
        match self
            .repo
            .update_records(&[(&updated, record.version)])
            .await
        {
            Ok(()) => Ok(updated),
            Err(e) => Err(self
                .failed(&access, AuditAction::Update, resource, e.into())
                .await),
        }
    }

    // ----- the client -----

    /// The client's name, contact details and birth date (held by identity), read
    /// through the same path as their records.
    ///
    /// # Errors
    /// See [`ClinicalError`].
    pub async fn client_identity(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
    ) -> Result<(ClientRef, ClientIdentity), ClinicalError> {
        let resource = ResourceRef::new(resource::CLIENT, client.as_uuid());
        let access = self
            .access(
                ctx,
                organisation,
                client,
                DataCategory::Identity,
                Intent::Read,
                (AuditAction::Read, resource),
            )
            .await?;
        let identity = self
            .repo
            .client_identity(&access.client)
            .await?
            .ok_or(ClinicalError::NotFound)?;
        self.allowed(&access, AuditAction::Read, resource).await?;
        Ok((access.client, identity))
    }

    // ----- care teams and break-glass -----

    /// The client's care team, past and present.
    ///
    /// # Errors
    /// See [`ClinicalError`].
    pub async fn care_team(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
    ) -> Result<Vec<CareTeamMember>, ClinicalError> {
        let resource = ResourceRef::new(resource::CARE_TEAM, client.as_uuid());
        let access = self
            .access(
                ctx,
                organisation,
                client,
                DataCategory::Profile,
                Intent::Read,
                (AuditAction::List, resource),
            )
            .await?;
        let team = self.repo.care_team(&access.client).await?;
        self.allowed(&access, AuditAction::List, resource).await?;
        Ok(team)
    }

    /// Puts a provider of the practice on the client's care team (a practice admin,
    /// or a provider already on it).
    ///
    /// # Errors
    /// `Invalid` if `provider` is not a provider of the practice or the dates are
    /// out of order; `Conflict` if they are on the team already.
    pub async fn add_care_team_member(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        provider: UserId,
        (starts_on, ends_on): (NaiveDate, Option<NaiveDate>),
    ) -> Result<CareTeamMember, ClinicalError> {
        if ends_on.is_some_and(|end| end < starts_on) {
            return Err(BodyError::Rule("a membership cannot end before it starts").into());
        }
        let resource = ResourceRef::new(resource::CARE_TEAM, provider.as_uuid());
        let access = self
            .access(
                ctx,
                organisation,
                client,
                DataCategory::Profile,
                Intent::Write(Authors::CareTeamOrAdmin),
                (AuditAction::Create, resource),
            )
            .await?;
        if !self.repo.is_provider(organisation, provider).await? {
            let error = BodyError::Rule("only a provider of the practice joins a care team").into();
            return Err(self
                .failed_before_write(&access, (AuditAction::Create, resource), error)
                .await);
        }
        self.allowed(&access, AuditAction::Create, resource).await?;
        let member = CareTeamMember {
            client,
            provider,
            organisation,
            starts_on,
            ends_on,
            added_by: access.actor,
            added_at: ctx.at(),
        };
        match self.repo.add_care_team_member(&member).await {
            Ok(()) => Ok(member),
            Err(e) => Err(self
                .failed(&access, AuditAction::Create, resource, e.into())
                .await),
        }
    }

    /// Puts the provider who created a client on the client's care team, from
    /// today. Called by the composition root right after `createClient`; a
    /// practice admin who is not a provider is not added.
    ///
    /// # Errors
    /// See [`ClinicalError`].
    pub async fn enrol(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
    ) -> Result<(), ClinicalError> {
        let Actor::Member { user, roles } = *ctx.actor() else {
            return Ok(());
        };
        if !roles.contains(Role::Provider) {
            return Ok(());
        }
        let Some(found) = self.repo.client(organisation, client).await? else {
            // Invited rather than created: the membership waits for acceptance.
            return Ok(());
        };
        let resource = ResourceRef::new(resource::CARE_TEAM, user.as_uuid());
        let event = AuditEvent::new(
            ctx,
            AuditAction::Create,
            resource,
            Some(found.client.subject),
            AuditOutcome::Allowed,
        );
        self.record_event(event).await?;
        let member = CareTeamMember {
            client,
            provider: user,
            organisation,
            starts_on: ctx.at().date_naive(),
            ends_on: None,
            added_by: user,
            added_at: ctx.at(),
        };
        match self.repo.add_care_team_member(&member).await {
            Ok(()) | Err(RepositoryError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Ends a provider's membership of the care team on `ends_on` (a practice
    /// admin, or a provider on the team).
    ///
    /// # Errors
    /// `NotFound` if they have no open membership.
    pub async fn end_care_team_membership(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        provider: UserId,
        ends_on: NaiveDate,
    ) -> Result<(), ClinicalError> {
        let resource = ResourceRef::new(resource::CARE_TEAM, provider.as_uuid());
        let access = self
            .access(
                ctx,
                organisation,
                client,
                DataCategory::Profile,
                Intent::Write(Authors::CareTeamOrAdmin),
                (AuditAction::Update, resource),
            )
            .await?;
        self.allowed(&access, AuditAction::Update, resource).await?;
        if self
            .repo
            .end_care_team_membership(&access.client, provider, ends_on)
            .await?
        {
            Ok(())
        } else {
            Err(self
                .failed(
                    &access,
                    AuditAction::Update,
                    resource,
                    ClinicalError::NotFound,
                )
                .await)
        }
    }

    /// The clients the actor may see: a provider's care-team clients, or every
    /// client of the practice for an admin. Nobody else gets a list, and a list
    /// never counts what it leaves out.
    ///
    /// # Errors
    /// `Forbidden` for other roles; see [`ClinicalError`].
    pub async fn clients(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        page: PageRequest,
    ) -> Result<Page<ClientListing>, ClinicalError> {
        let resource = ResourceRef::new(resource::CLIENT, organisation.as_uuid());
        let (user, roles) = match *ctx.actor() {
            Actor::Member { user, roles } if ctx.organisation() == Some(organisation) => {
                (user, roles)
            }
            _ => {
                return self
                    .deny(
                        ctx,
                        AuditAction::List,
                        resource,
                        None,
                        "other_practice",
                        ClinicalError::NotFound,
                    )
                    .await;
            }
        };
        let provider = if roles.contains(Role::OrgAdmin) {
            None
        } else if roles.contains(Role::Provider) {
            Some(user)
        } else {
            return self
                .deny(
                    ctx,
                    AuditAction::List,
                    resource,
                    None,
                    "no_relationship",
                    ClinicalError::Forbidden("only providers and practice admins list clients"),
                )
                .await;
        };
        let page = self
            .repo
            .clients(organisation, provider, ctx.at().date_naive(), page)
            .await?;
        let event = AuditEvent::new(
            ctx,
            AuditAction::List,
            resource,
            None,
            AuditOutcome::Allowed,
        );
        self.record_event(event).await?;
        Ok(page)
    }

    /// Takes a break-glass grant on a client: someone in the practice outside the
    /// care team states why, for at most [`MAX_BREAK_GLASS_MINUTES`]. The grant
    /// is audited as break-glass and listed for review.
    ///
    /// # Errors
    /// `Invalid` for a duration out of range; `NotFound` for a client of another
    /// practice; `Forbidden` for the client themselves and for roles without
    /// clinical duties (auditors, privacy officers, staff without a provider role).
    pub async fn break_glass(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        reason: Text<1000>,
        minutes: u32,
    ) -> Result<BreakGlassGrant, ClinicalError> {
        if minutes == 0 || minutes > MAX_BREAK_GLASS_MINUTES {
            return Err(BodyError::Rule("a break-glass grant lasts 1 to 720 minutes").into());
        }
        let id = Uuid::now_v7();
        let resource = ResourceRef::new(resource::BREAK_GLASS, id);
        let ctx = ctx.with_purpose(Purpose::BreakGlass);
        let Actor::Member { user, roles } = *ctx.actor() else {
            return self
                .deny(
                    &ctx,
                    AuditAction::Create,
                    resource,
                    None,
                    "not_a_member",
                    ClinicalError::NotFound,
                )
                .await;
        };
        let found = match ctx.organisation() {
            Some(o) if o == organisation => self.repo.client(organisation, client).await?,
            _ => None,
        };
        let Some(found) = found else {
            return self
                .deny(
                    &ctx,
                    AuditAction::Create,
                    resource,
                    None,
                    "no_such_client",
                    ClinicalError::NotFound,
                )
                .await;
        };
        if user == client || !roles.contains(Role::Provider) {
            return self
                .deny(
                    &ctx,
                    AuditAction::Create,
                    resource,
                    Some(&found.client),
                    "no_clinical_role",
                    ClinicalError::Forbidden("only a provider of the practice may break the glass"),
                )
                .await;
        }
        let event = AuditEvent::new(
            &ctx,
            AuditAction::Create,
            resource,
            Some(found.client.subject),
            AuditOutcome::Allowed,
        );
        self.record_event(event).await?;
        let grant = BreakGlassGrant {
            id,
            client: found.client,
            holder: user,
            reason,
            granted_at: ctx.at(),
            expires_at: ctx.at() + Duration::minutes(i64::from(minutes)),
        };
        self.repo.grant_break_glass(&grant).await?;
        Ok(grant)
    }

    /// The practice's break-glass grants, for review by its admins and privacy
    /// officer. Each grant's reason is health-adjacent: the listing is audited.
    ///
    /// # Errors
    /// `Forbidden` for other roles.
    pub async fn break_glass_grants(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        page: PageRequest,
    ) -> Result<Page<BreakGlassGrant>, ClinicalError> {
        let resource = ResourceRef::new(resource::BREAK_GLASS, organisation.as_uuid());
        if ctx.organisation() != Some(organisation) {
            return self
                .deny(
                    ctx,
                    AuditAction::List,
                    resource,
                    None,
                    "other_practice",
                    ClinicalError::NotFound,
                )
                .await;
        }
        let reviewer =
            ctx.actor().has_role(Role::OrgAdmin) || ctx.actor().has_role(Role::PrivacyOfficer);
        if !reviewer {
            return self
                .deny(
                    ctx,
                    AuditAction::List,
                    resource,
                    None,
                    "not_a_reviewer",
                    ClinicalError::Forbidden(
                        "only practice admins and the privacy officer review break-glass grants",
                    ),
                )
                .await;
        }
        let page = self.repo.break_glass_grants(organisation, page).await?;
        let event = AuditEvent::new(
            &ctx.with_purpose(Purpose::Oversight),
            AuditAction::List,
            resource,
            None,
            AuditOutcome::Allowed,
        );
        self.record_event(event).await?;
        Ok(page)
    }

    // ----- appointments (U2) -----

    /// Books an appointment of the client with a provider of the practice (the
    /// care team, or an admin). A provider cannot be double-booked.
    ///
    /// # Errors
    /// `Invalid` for a time range out of order or a provider who is not one;
    /// `Conflict` for a double booking; see [`ClinicalError`].
    pub async fn book(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        form: NewAppointment,
    ) -> Result<Appointment, ClinicalError> {
        check_time_range(form.starts_at, form.ends_at)?;
        let id = Uuid::now_v7();
        let resource = ResourceRef::new(resource::APPOINTMENT, id);
        let access = self
            .access(
                ctx,
                organisation,
                client,
                DataCategory::Appointments,
                Intent::Write(Authors::CareTeamOrAdmin),
                (AuditAction::Create, resource),
            )
            .await?;
        if !self.repo.is_provider(organisation, form.provider).await? {
            let error = BodyError::Rule("the provider is not a provider of the practice").into();
            return Err(self
                .failed_before_write(&access, (AuditAction::Create, resource), error)
                .await);
        }
        self.allowed(&access, AuditAction::Create, resource).await?;
        let appointment = Appointment {
            id,
            client: access.client,
            provider: form.provider,
            starts_at: form.starts_at,
            ends_at: form.ends_at,
            status: AppointmentStatus::Booked,
            details: form.details,
            version: 1,
            created_at: ctx.at(),
            created_by: access.actor,
        };
        match self.repo.book(&appointment).await {
            Ok(()) => Ok(appointment),
            Err(e) => Err(self
                .failed(&access, AuditAction::Create, resource, e.into())
                .await),
        }
    }

    /// Moves an appointment to a new status (the care team or an admin; the
    /// client may cancel their own).
    ///
    /// # Errors
    /// `Conflict` if the appointment changed since `expected` or is cancelled
    /// already; see [`ClinicalError`].
    pub async fn set_appointment_status(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        id: Uuid,
        status: AppointmentStatus,
        expected: u32,
    ) -> Result<Appointment, ClinicalError> {
        let resource = ResourceRef::new(resource::APPOINTMENT, id);
        // The client may cancel their own appointment; everything else is for the
        // care team or an admin. Chosen before the check, so an admin's cancellation
        // is not first audited as a refusal.
        let authors =
            if status == AppointmentStatus::Cancelled && ctx.actor().user() == Some(client) {
                Authors::Client
            } else {
                Authors::CareTeamOrAdmin
            };
        let access = self
            .access(
                ctx,
                organisation,
                client,
                DataCategory::Appointments,
                Intent::Write(authors),
                (AuditAction::Update, resource),
            )
            .await?;
        let current = self
            .repo
            .appointment(&access.client, id)
            .await?
            .ok_or(ClinicalError::NotFound)?;
        if current.status == AppointmentStatus::Cancelled {
            return Err(ClinicalError::Conflict(
                "a cancelled appointment stays cancelled",
            ));
        }
        if current.version != expected {
            return Err(ClinicalError::Conflict(
                "the appointment changed since it was read",
            ));
        }
        self.allowed(&access, AuditAction::Update, resource).await?;
        let updated = Appointment {
            status,
            version: current.version + 1,
            ..current
        };
        match self.repo.update_appointment(&updated, expected).await {
            Ok(()) => Ok(updated),
            Err(e) => Err(self
                .failed(&access, AuditAction::Update, resource, e.into())
                .await),
        }
    }

    /// A page of the client's appointments, by start time.
    ///
    /// # Errors
    /// See [`ClinicalError`].
    pub async fn appointments(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        page: PageRequest,
    ) -> Result<Page<Appointment>, ClinicalError> {
        let resource = ResourceRef::new(resource::APPOINTMENT, client.as_uuid());
        let access = self
            .access(
                ctx,
                organisation,
                client,
                DataCategory::Appointments,
                Intent::Read,
                (AuditAction::List, resource),
            )
            .await?;
        let page = self.repo.appointments(&access.client, page).await?;
        self.allowed(&access, AuditAction::List, resource).await?;
        Ok(page)
    }

    // ----- the exercise library -----

    /// Adds a template to the practice's library (its providers and admins).
    ///
    /// # Errors
    /// `Forbidden` for other roles; `Invalid` for more than 20 equipment items.
    pub async fn add_template(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        template: ExerciseTemplate,
    ) -> Result<ExerciseTemplate, ClinicalError> {
        if template.equipment.len() > crate::model::MAX_LIST {
            return Err(BodyError::Rule("an exercise lists at most 20 pieces of equipment").into());
        }
        let member = ctx.organisation() == Some(organisation)
            && (ctx.actor().has_role(Role::Provider) || ctx.actor().has_role(Role::OrgAdmin));
        if !member {
            return Err(ClinicalError::Forbidden(
                "only the practice's providers and admins add exercises",
            ));
        }
        let template = ExerciseTemplate {
            organisation: Some(organisation),
            ..template
        };
        self.repo.add_template(&template).await?;
        Ok(template)
    }

    /// Adds a template to the shared library (the platform operator).
    ///
    /// # Errors
    /// `Forbidden` for anyone else.
    pub async fn add_shared_template(
        &self,
        ctx: &RequestContext,
        template: ExerciseTemplate,
    ) -> Result<ExerciseTemplate, ClinicalError> {
        if !matches!(ctx.actor(), Actor::PlatformOperator { .. }) {
            return Err(ClinicalError::Forbidden(
                "only the platform operator adds shared exercises",
            ));
        }
        if template.equipment.len() > crate::model::MAX_LIST {
            return Err(BodyError::Rule("an exercise lists at most 20 pieces of equipment").into());
        }
        let template = ExerciseTemplate {
            organisation: None,
            ..template
        };
        self.repo.add_template(&template).await?;
        Ok(template)
    }

    /// The practice's templates and the shared ones (any member of the practice).
    ///
    /// # Errors
    /// `NotFound` for someone outside the practice.
    pub async fn templates(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        page: PageRequest,
    ) -> Result<Page<ExerciseTemplate>, ClinicalError> {
        if ctx.organisation() != Some(organisation) || ctx.actor().roles().is_empty() {
            return Err(ClinicalError::NotFound);
        }
        Ok(self.repo.templates(organisation, page).await?)
    }
}
