//! The rights engine: files, verifies and carries out requests through every
//! context's `PersonalData` port, and nothing else.
//!
//! # Who may do what
//! - A signed-in person files for themselves (verified at once, D8), for a minor
//!   they are the recorded guardian of, or for a person whose confirmed proof of
//!   authority names them as agent (D11). A provider files for a client of their
//!   practice. Anyone but the subject waits for verification.
//! - The subject's home practice's privacy officer works the queue: verifies (a
//!   failure is audited and denies the request), extends, denies with a ground,
//!   and carries out what waits for them.
//! - Requests the person can have at once (access, portability, CCPA know,
//!   accounting of disclosures, restriction, objection, withdrawal) are carried
//!   out when verified; erasure, CCPA delete and rectification wait for the
//!   privacy officer, who may have to weigh an exception.
//! - Only the requester and the subject read a request and download its archive;
//!   the privacy officer reads the request, never the archive.
//!
//! Nothing outside a person's authority is revealed: a subject they may not act
//! for is "not found", exactly like one that does not exist. Every refusal on the
//! way to personal data is audited.
//!
//! # Erasure
//! Each context erases in one transaction of its own and is idempotent. The
//! engine journals each context's outcomes as it finishes, then destroys the
//! subject's data key, then completes the request. A crash leaves the request in
//! progress with its journal: carrying it out again skips the journaled contexts
//! and finishes the rest, and the answer lists every record's fate.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kernel::personal_data::{
    ErasureOutcome, ExportedRecord, PersonalData, PersonalDataError, RecordFate, Rectification,
    RestrictionScope,
};
use kernel::{
    Actor, AuditAction, AuditEvent, AuditOutcome, AuditSink, ConsentGate, ConsentQuery,
    DataCategory, LegalGround, OrganisationId, Purpose, Recipient, Regime, RequestContext,
    ResourceRef, Role, SubjectId, UserId,
};

use crate::archive;
use crate::authority::{AuthorityError, ProofOfAuthority, Scope, agent_may_act};
use crate::case::{Case, CaseError, CaseKind, CaseStatus};
use crate::ids::{AuthorityId, CaseId, RightsRequestId};
use crate::know::{self, ContextHoldings};
use crate::ports::{
    ArchivePacker, ConsentInstruction, ConsentLedger, ConsentLedgerError, ErasureStep, People,
    Person, PortError, RepositoryError, RightsRepository, StoredAuthority, SubjectKeys,
};
use crate::request::{
    RequestDetail, RequestKind, RequestResult, RequestStatus, Requester, RightsRequest,
    TransitionError,
};
use crate::statements::Statements;

/// Audit resource kinds.
pub mod resource {
    /// A rights request.
    pub const REQUEST: &str = "rights_request";
    /// A request's archive.
    pub const ARCHIVE: &str = "rights_archive";
    /// An agent's proof of authority.
    pub const AUTHORITY: &str = "rights_authority";
    /// A privacy or security case.
    pub const CASE: &str = "privacy_case";
    /// A de-identified research extract.
    pub const RESEARCH_EXTRACT: &str = "research_extract";
}

/// How many clients a research extract reads per page.
pub const EXTRACT_PAGE: u32 = 100;

/// The contexts a research extract reads: identity (the birth date), clinical.
const EXTRACT_CONTEXTS: [&str; 2] = ["identity", "clinical"];

/// A de-identified extract of a practice's clients (U5, R3).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResearchExtract {
    /// For what: research or analytics.
    pub purpose: Purpose,
    /// When it was made.
    pub generated_at: DateTime<Utc>,
    /// The clients considered.
    pub considered: u64,
    /// One entry per client whose consent allows the purpose for some category,
    /// each under a random id (extracts cannot be linked to each other).
    pub subjects: Vec<crate::deidentify::ResearchSubject>,
}

/// The journal name of the data-key step of an erasure.
pub const KEYS_STEP: &str = "keys";

/// How many open requests the queue lists at most.
pub const QUEUE_LIMIT: u32 = 500;

/// Why the engine refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RightsError {
    /// Nothing the caller may see by that name (including a person outside their
    /// authority).
    #[error("not found")]
    NotFound,
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The agent's proof of authority has expired (audited).
    #[error("the proof of authority has expired")]
    AuthorityExpired,
    /// The person has not confirmed the agent yet.
    #[error("the person has not confirmed this agent")]
    AuthorityNotConfirmed,
    /// The input is not valid; nothing changed.
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// What is wrong, in plain words.
        message: String,
    },
    /// The request is not in a state that allows this; nothing changed.
    #[error("{0}")]
    Conflict(String),
    /// A store, a context or the audit log failed; nothing acknowledged is lost.
    #[error("the rights service is unavailable")]
    Unavailable(#[source] PortError),
}

impl RightsError {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<RepositoryError> for RightsError {
    fn from(err: RepositoryError) -> Self {
        match err {
            RepositoryError::Conflict => {
                Self::Conflict("the request changed meanwhile; read it again".to_owned())
            }
            RepositoryError::Unavailable(e) => Self::Unavailable(e),
        }
    }
}

impl From<kernel::AuditError> for RightsError {
    fn from(err: kernel::AuditError) -> Self {
        Self::Unavailable(Box::new(err))
    }
}

impl From<TransitionError> for RightsError {
    fn from(err: TransitionError) -> Self {
        Self::Conflict(err.to_string())
    }
}

fn unavailable(err: PortError) -> RightsError {
    RightsError::Unavailable(err)
}

fn personal_data_error(err: PersonalDataError) -> RightsError {
    match err {
        PersonalDataError::NotFound => {
            RightsError::invalid("detail", "no such record of the subject")
        }
        PersonalDataError::Invalid(message) => RightsError::invalid("detail", message),
        PersonalDataError::Unavailable(e) => RightsError::Unavailable(e),
    }
}

/// For whom a request is filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBehalfOf {
    /// The signed-in person themselves.
    Myself,
    /// A minor the signed-in person is the recorded guardian of.
    Minor {
        /// The minor's account.
        user: UserId,
    },
    /// The person a proof of authority names, the signed-in person being its agent.
    Authority {
        /// The proof.
        id: AuthorityId,
    },
    /// A client of the provider's practice (the context's organisation).
    Client {
        /// The client's account.
        user: UserId,
    },
}

/// A request as filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filing {
    /// What is asked.
    pub kind: RequestKind,
    /// Under which law.
    pub regime: Regime,
    /// For whom.
    pub on_behalf_of: OnBehalfOf,
    /// What more the kind needs.
    pub detail: RequestDetail,
}

/// A filed request, and whether it is new (`false`: an identical open one was
/// returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    /// The request.
    pub request: RightsRequest,
    /// Whether it was filed now.
    pub created: bool,
}

/// The privacy officer's verification of a requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The requester's identity and authority were verified.
    Verified,
    /// They could not be verified; the request is denied on that ground.
    Failed,
}

/// A downloadable archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Their SHA-256, lowercase hex, as stored with the request.
    pub sha256: String,
    /// Its media type.
    pub media_type: &'static str,
}

/// The adapters the engine runs on.
pub struct RightsPorts {
    /// Requests, proofs, cases, archives.
    pub repository: Arc<dyn RightsRepository>,
    /// Every context that holds personal data.
    pub contexts: Vec<Arc<dyn PersonalData>>,
    /// Who people are.
    pub people: Arc<dyn People>,
    /// The consent ledger.
    pub consent: Arc<dyn ConsentLedger>,
    /// The subjects' data keys.
    pub keys: Arc<dyn SubjectKeys>,
    /// Packs archives.
    pub packer: Arc<dyn ArchivePacker>,
    /// The audit log.
    pub audit: Arc<dyn AuditSink>,
    /// The consent gate, asked which categories a research extract may use.
    pub gate: Arc<dyn ConsentGate>,
}

impl std::fmt::Debug for RightsPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let contexts: Vec<&str> = self.contexts.iter().map(|c| c.context()).collect();
        f.debug_struct("RightsPorts")
            .field("contexts", &contexts)
            .finish_non_exhaustive()
    }
}

/// The rights engine.
#[derive(Clone)]
pub struct RightsService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RightsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RightsService")
            .field("ports", &self.inner.ports)
            .finish_non_exhaustive()
    }
}

struct Inner {
    ports: RightsPorts,
    statements: Statements,
}

/// The ground of a denial for a requester who could not be verified.
#[must_use]
pub fn unverified_ground(regime: Regime) -> LegalGround {
    match regime {
        Regime::Gdpr => LegalGround::new(
            Regime::Gdpr,
            "GDPR Art. 12(2), 12(6)",
            "The requester's identity could not be confirmed.",
        ),
        Regime::Ccpa => LegalGround::new(
            Regime::Ccpa,
            "Cal. Code Regs. tit. 11, 7060, 7063",
            "The request could not be verified, or the agent's authority could not be confirmed.",
        ),
        Regime::Hipaa => LegalGround::new(
            Regime::Hipaa,
            "45 CFR 164.514(h)",
            "The identity and authority of the person asking could not be verified.",
        ),
    }
}

/// Whether the kind is carried out as soon as it is verified.
#[must_use]
pub const fn runs_at_once(kind: RequestKind) -> bool {
    !matches!(
        kind,
        RequestKind::Erasure | RequestKind::CcpaDelete | RequestKind::Rectification
    )
}

/// The order contexts erase in: the ones pointing at the account first, the
/// account, then the log that recorded it all.
const ERASURE_ORDER: [&str; 5] = ["clinical", "consent", "billing", "identity", "audit"];

impl RightsService {
    /// The engine over `ports`, stating `statements` in every answer.
    #[must_use]
    pub fn new(ports: RightsPorts, statements: Statements) -> Self {
        Self {
            inner: Arc::new(Inner { ports, statements }),
        }
    }

    /// What every answer states (D13).
    #[must_use]
    pub fn statements(&self) -> &Statements {
        &self.inner.statements
    }

    fn ports(&self) -> &RightsPorts {
        &self.inner.ports
    }

    async fn audit(
        &self,
        ctx: &RequestContext,
        action: AuditAction,
        resource: ResourceRef,
        subject: Option<SubjectId>,
        outcome: AuditOutcome,
    ) -> Result<(), RightsError> {
        self.ports()
            .audit
            .record(AuditEvent::new(ctx, action, resource, subject, outcome))
            .await?;
        Ok(())
    }

    /// Audits a refused filing (`Create`) and passes `err` on.
    async fn refuse(
        &self,
        ctx: &RequestContext,
        resource: ResourceRef,
        subject: Option<SubjectId>,
        reason: &'static str,
        err: RightsError,
    ) -> RightsError {
        self.refuse_as(ctx, AuditAction::Create, resource, subject, reason, err)
            .await
    }

    /// Audits a refusal of `action` and passes `err` on (or the audit's failure).
    async fn refuse_as(
        &self,
        ctx: &RequestContext,
        action: AuditAction,
        resource: ResourceRef,
        subject: Option<SubjectId>,
        reason: &'static str,
        err: RightsError,
    ) -> RightsError {
        match self
            .audit(
                ctx,
                action,
                resource,
                subject,
                AuditOutcome::Denied { reason },
            )
            .await
        {
            Ok(()) => err,
            Err(audit_failed) => audit_failed,
        }
    }

    /// The signed-in person, or a refusal for anyone else.
    async fn me(&self, ctx: &RequestContext) -> Result<Person, RightsError> {
        let Some(user) = person_user(ctx) else {
            return Err(RightsError::Forbidden(
                "rights requests are filed by a signed-in person",
            ));
        };
        self.ports()
            .people
            .person(user)
            .await
            .map_err(unavailable)?
            .ok_or(RightsError::NotFound)
    }

    // ---------------------------------------------------------------- filing

    /// Files a request, or returns the identical open one.
    ///
    /// # Errors
    /// [`RightsError::Invalid`] (a kind the regime does not know, a detail that
    /// does not fit), [`RightsError::NotFound`] (a person outside the caller's
    /// authority), [`RightsError::AuthorityExpired`],
    /// [`RightsError::AuthorityNotConfirmed`], [`RightsError::Unavailable`].
    pub async fn file(&self, ctx: &RequestContext, filing: Filing) -> Result<Filed, RightsError> {
        if !filing.kind.exists_under(filing.regime) {
            return Err(RightsError::invalid(
                "kind",
                format!(
                    "{} is not a request under {}",
                    filing.kind.as_str(),
                    filing.regime.as_str()
                ),
            ));
        }
        if !filing.detail.fits(filing.kind) {
            return Err(RightsError::invalid(
                "detail",
                format!("does not fit a request of kind {}", filing.kind.as_str()),
            ));
        }
        check_detail(&filing.detail)?;
        let (subject, requester) = self.requester(ctx, &filing).await?;
        let organisation = subject.home_organisation;
        if let Some(existing) = self.duplicate(subject.subject, &filing, &requester).await? {
            return Ok(Filed {
                request: existing,
                created: false,
            });
        }
        let request = RightsRequest::receive(
            organisation,
            filing.kind,
            subject.subject,
            requester,
            filing.regime,
            filing.detail.clone(),
            ctx.at(),
        );
        self.audit(
            ctx,
            AuditAction::Create,
            ResourceRef::new(resource::REQUEST, request.id.as_uuid()),
            Some(subject.subject),
            AuditOutcome::Allowed,
        )
        .await?;
        match self.ports().repository.insert_request(&request).await {
            Ok(()) => {}
            Err(RepositoryError::Conflict) => {
                // An identical request was filed meanwhile: it is the one.
                if let Some(existing) = self.duplicate(subject.subject, &filing, &requester).await?
                {
                    return Ok(Filed {
                        request: existing,
                        created: false,
                    });
                }
                return Err(RepositoryError::Conflict.into());
            }
            Err(e) => return Err(e.into()),
        }
        let request = if request.status == RequestStatus::Verified && runs_at_once(request.kind) {
            self.run_or_keep(ctx, request).await?
        } else {
            request
        };
        Ok(Filed {
            request,
            created: true,
        })
    }

    async fn duplicate(
        &self,
        subject: SubjectId,
        filing: &Filing,
        requester: &Requester,
    ) -> Result<Option<RightsRequest>, RightsError> {
        Ok(self
            .ports()
            .repository
            .open_requests_about(subject)
            .await?
            .into_iter()
            .find(|r| {
                r.duplicates(
                    filing.kind,
                    subject,
                    filing.regime,
                    requester,
                    &filing.detail,
                )
            }))
    }

    /// Who the request is about and who files it, checking the caller's authority.
    async fn requester(
        &self,
        ctx: &RequestContext,
        filing: &Filing,
    ) -> Result<(Person, Requester), RightsError> {
        let people = &self.ports().people;
        match filing.on_behalf_of {
            OnBehalfOf::Myself => {
                let me = self.me(ctx).await?;
                Ok((me, Requester::Subject { user: me.user }))
            }
            OnBehalfOf::Minor { user } => {
                let me = self.me(ctx).await?;
                let minor = people.person(user).await.map_err(unavailable)?;
                let guardian = people
                    .is_guardian(me.user, user)
                    .await
                    .map_err(unavailable)?;
                match minor {
                    Some(minor) if guardian => Ok((minor, Requester::Guardian { user: me.user })),
                    _ => Err(self
                        .refuse(
                            ctx,
                            ResourceRef::new(resource::REQUEST, user.as_uuid()),
                            None,
                            "not_guardian",
                            RightsError::NotFound,
                        )
                        .await),
                }
            }
            OnBehalfOf::Authority { id } => {
                let me = self.me(ctx).await?;
                let authority = self
                    .ports()
                    .repository
                    .authority(id)
                    .await?
                    .filter(|a| a.proof.agent == me.user);
                let reference = ResourceRef::new(resource::AUTHORITY, id.as_uuid());
                let Some(authority) = authority else {
                    return Err(self
                        .refuse(ctx, reference, None, "no_authority", RightsError::NotFound)
                        .await);
                };
                let subject = authority.proof.subject;
                let verdict = agent_may_act(
                    std::slice::from_ref(&authority.proof),
                    me.user,
                    subject,
                    filing.kind,
                    ctx.at(),
                );
                let (reason, err) = match verdict {
                    Ok(()) => {
                        let person = people
                            .person_of_subject(subject)
                            .await
                            .map_err(unavailable)?
                            .ok_or(RightsError::NotFound)?;
                        return Ok((person, Requester::AuthorisedAgent { user: me.user }));
                    }
                    Err(AuthorityError::Expired) => {
                        ("authority_expired", RightsError::AuthorityExpired)
                    }
                    Err(AuthorityError::NotConfirmed) => (
                        "authority_not_confirmed",
                        RightsError::AuthorityNotConfirmed,
                    ),
                    Err(AuthorityError::OutOfScope) => {
                        ("authority_out_of_scope", RightsError::NotFound)
                    }
                    Err(AuthorityError::NoAuthority) => ("no_authority", RightsError::NotFound),
                };
                Err(self
                    .refuse(ctx, reference, Some(subject), reason, err)
                    .await)
            }
            OnBehalfOf::Client { user } => {
                let organisation = ctx.organisation();
                let staff = ctx.actor().roles().contains_any(&[
                    Role::Provider,
                    Role::PrivacyOfficer,
                    Role::OrgAdmin,
                ]);
                let (Some(organisation), true, Some(provider)) =
                    (organisation, staff, person_user(ctx))
                else {
                    return Err(RightsError::Forbidden(
                        "a practice's providers file for its clients",
                    ));
                };
                let client = if people
                    .is_client(organisation, user)
                    .await
                    .map_err(unavailable)?
                {
                    people.person(user).await.map_err(unavailable)?
                } else {
                    None
                };
                match client {
                    Some(client) => Ok((client, Requester::Provider { user: provider })),
                    None => Err(self
                        .refuse(
                            ctx,
                            ResourceRef::new(resource::REQUEST, user.as_uuid()),
                            None,
                            "not_a_client",
                            RightsError::NotFound,
                        )
                        .await),
                }
            }
        }
    }

    // ------------------------------------------------------------- following

    /// The requests the signed-in person filed or that are about them, newest first.
    ///
    /// # Errors
    /// [`RightsError::Forbidden`], [`RightsError::Unavailable`].
    pub async fn my_requests(
        &self,
        ctx: &RequestContext,
    ) -> Result<Vec<RightsRequest>, RightsError> {
        let me = self.me(ctx).await?;
        Ok(self
            .ports()
            .repository
            .requests_of(me.user, Some(me.subject))
            .await?)
    }

    /// One request, for its requester, its subject, or its practice's privacy
    /// officer.
    ///
    /// # Errors
    /// [`RightsError::NotFound`], [`RightsError::Unavailable`].
    pub async fn request(
        &self,
        ctx: &RequestContext,
        id: RightsRequestId,
    ) -> Result<RightsRequest, RightsError> {
        let request = self
            .ports()
            .repository
            .request(id)
            .await?
            .ok_or(RightsError::NotFound)?;
        if is_officer_of(ctx, request.organisation) || self.is_party(ctx, &request).await? {
            Ok(request)
        } else {
            Err(RightsError::NotFound)
        }
    }

    async fn is_party(
        &self,
        ctx: &RequestContext,
        request: &RightsRequest,
    ) -> Result<bool, RightsError> {
        let Some(user) = person_user(ctx) else {
            return Ok(false);
        };
        if request.requester.user() == user {
            return Ok(true);
        }
        Ok(self
            .ports()
            .people
            .person(user)
            .await
            .map_err(unavailable)?
            .is_some_and(|p| p.subject == request.subject))
    }

    /// A completed request's archive, for its requester or subject; audited.
    ///
    /// # Errors
    /// [`RightsError::NotFound`] (not theirs, no archive, or its key destroyed),
    /// [`RightsError::Unavailable`].
    pub async fn download(
        &self,
        ctx: &RequestContext,
        id: RightsRequestId,
    ) -> Result<Download, RightsError> {
        let request = self
            .ports()
            .repository
            .request(id)
            .await?
            .ok_or(RightsError::NotFound)?;
        let reference = ResourceRef::new(resource::ARCHIVE, id.as_uuid());
        if !self.is_party(ctx, &request).await? {
            return Err(self
                .refuse_as(
                    ctx,
                    AuditAction::Export,
                    reference,
                    Some(request.subject),
                    "not_a_party",
                    RightsError::NotFound,
                )
                .await);
        }
        let Some(RequestResult::Archive { sha256, .. }) = request.result.clone() else {
            return Err(RightsError::NotFound);
        };
        let bytes = self
            .ports()
            .repository
            .archive(id)
            .await?
            .ok_or(RightsError::NotFound)?;
        self.audit(
            ctx,
            AuditAction::Export,
            reference,
            Some(request.subject),
            AuditOutcome::Allowed,
        )
        .await?;
        Ok(Download {
            bytes,
            sha256,
            media_type: self.ports().packer.media_type(),
        })
    }

    // ---------------------------------------------------------------- agents

    /// The signed-in person names `agent` as their authorised agent (D11), on the
    /// document `document_ref`, for `scope`, until `expires_at`. Recording it
    /// while signed in is the person's own confirmation of the agent.
    ///
    /// # Errors
    /// [`RightsError::Invalid`] (a bad proof, or no such agent account),
    /// [`RightsError::Unavailable`].
    pub async fn appoint_agent(
        &self,
        ctx: &RequestContext,
        agent: UserId,
        document_ref: &str,
        scope: Scope,
        expires_at: DateTime<Utc>,
    ) -> Result<StoredAuthority, RightsError> {
        let me = self.me(ctx).await?;
        if agent == me.user {
            return Err(RightsError::invalid(
                "agent",
                "a person does not act as their own agent",
            ));
        }
        let mut proof =
            ProofOfAuthority::record(agent, me.subject, document_ref, scope, expires_at, ctx.at())
                .map_err(|e| {
                    let field = match e {
                        crate::authority::ProofError::BadDocumentRef => "document_ref",
                        crate::authority::ProofError::EmptyScope => "scope",
                        crate::authority::ProofError::AlreadyExpired => "expires_at",
                    };
                    RightsError::invalid(field, e.to_string())
                })?;
        if self
            .ports()
            .people
            .person(agent)
            .await
            .map_err(unavailable)?
            .is_none()
        {
            return Err(RightsError::invalid("agent", "no such account"));
        }
        proof.confirm(ctx.at());
        let authority = StoredAuthority {
            id: AuthorityId::new(),
            proof,
            recorded_at: ctx.at(),
            version: 0,
        };
        self.audit(
            ctx,
            AuditAction::Create,
            ResourceRef::new(resource::AUTHORITY, authority.id.as_uuid()),
            Some(me.subject),
            AuditOutcome::Allowed,
        )
        .await?;
        self.ports().repository.insert_authority(&authority).await?;
        Ok(authority)
    }

    /// The agents the signed-in person appointed, oldest first.
    ///
    /// # Errors
    /// [`RightsError::Forbidden`], [`RightsError::Unavailable`].
    pub async fn my_agents(
        &self,
        ctx: &RequestContext,
    ) -> Result<Vec<StoredAuthority>, RightsError> {
        let me = self.me(ctx).await?;
        Ok(self.ports().repository.authorities_for(me.subject).await?)
    }

    /// The proofs naming the signed-in person as agent, oldest first.
    ///
    /// # Errors
    /// [`RightsError::Forbidden`], [`RightsError::Unavailable`].
    pub async fn my_authorities(
        &self,
        ctx: &RequestContext,
    ) -> Result<Vec<StoredAuthority>, RightsError> {
        let me = self.me(ctx).await?;
        Ok(self
            .ports()
            .repository
            .authorities_of_agent(me.user)
            .await?)
    }

    /// Ends an appointment at once (the person's own).
    ///
    /// # Errors
    /// [`RightsError::NotFound`], [`RightsError::Unavailable`].
    pub async fn revoke_agent(
        &self,
        ctx: &RequestContext,
        id: AuthorityId,
    ) -> Result<StoredAuthority, RightsError> {
        let me = self.me(ctx).await?;
        let mut authority = self
            .ports()
            .repository
            .authority(id)
            .await?
            .filter(|a| a.proof.subject == me.subject)
            .ok_or(RightsError::NotFound)?;
        if authority.proof.expires_at > ctx.at() {
            authority.proof.expires_at = ctx.at();
            authority.version += 1;
            self.audit(
                ctx,
                AuditAction::Update,
                ResourceRef::new(resource::AUTHORITY, id.as_uuid()),
                Some(me.subject),
                AuditOutcome::Allowed,
            )
            .await?;
            self.ports().repository.update_authority(&authority).await?;
        }
        Ok(authority)
    }

    // ------------------------------------------------------- privacy officer

    fn require_officer(
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<(), RightsError> {
        if is_officer_of(ctx, organisation) {
            Ok(())
        } else if ctx.organisation() == Some(organisation) {
            Err(RightsError::Forbidden(
                "the practice's privacy officer works its rights requests",
            ))
        } else {
            Err(RightsError::NotFound)
        }
    }

    /// The practice's open requests by due time, earliest first; `nearing_only`
    /// keeps those due within 7 days or overdue.
    ///
    /// # Errors
    /// [`RightsError::Forbidden`], [`RightsError::Unavailable`].
    pub async fn queue(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        nearing_only: bool,
    ) -> Result<Vec<RightsRequest>, RightsError> {
        Self::require_officer(ctx, organisation)?;
        let open = self
            .ports()
            .repository
            .open_requests_of(organisation, QUEUE_LIMIT)
            .await?;
        self.audit(
            ctx,
            AuditAction::List,
            ResourceRef::new(resource::REQUEST, uuid::Uuid::nil()),
            None,
            AuditOutcome::Allowed,
        )
        .await?;
        Ok(open
            .into_iter()
            .filter(|r| !nearing_only || r.is_nearing(ctx.at()))
            .collect())
    }

    async fn officer_request(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: RightsRequestId,
    ) -> Result<RightsRequest, RightsError> {
        Self::require_officer(ctx, organisation)?;
        self.ports()
            .repository
            .request(id)
            .await?
            .filter(|r| r.organisation == organisation)
            .ok_or(RightsError::NotFound)
    }

    async fn save(
        &self,
        ctx: &RequestContext,
        action: AuditAction,
        mut request: RightsRequest,
        outcome: AuditOutcome,
    ) -> Result<RightsRequest, RightsError> {
        request.version += 1;
        self.audit(
            ctx,
            action,
            ResourceRef::new(resource::REQUEST, request.id.as_uuid()),
            Some(request.subject),
            outcome,
        )
        .await?;
        self.ports().repository.update_request(&request).await?;
        Ok(request)
    }

    /// Records the officer's verification of the requester (D8). A failure is
    /// audited as a refusal and denies the request on the regime's ground; a
    /// success carries out at once what runs at once.
    ///
    /// # Errors
    /// [`RightsError::NotFound`], [`RightsError::Forbidden`],
    /// [`RightsError::Conflict`] (not awaiting verification),
    /// [`RightsError::Unavailable`].
    pub async fn verify(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: RightsRequestId,
        verification: Verification,
    ) -> Result<RightsRequest, RightsError> {
        let mut request = self.officer_request(ctx, organisation, id).await?;
        if request.status != RequestStatus::AwaitingVerification {
            return Err(RightsError::Conflict(format!(
                "the request is {}, not awaiting verification",
                request.status.as_str()
            )));
        }
        let officer = person_user(ctx);
        match verification {
            Verification::Verified => {
                request.advance(RequestStatus::Verified, ctx.at(), officer)?;
                let request = self
                    .save(ctx, AuditAction::Verify, request, AuditOutcome::Allowed)
                    .await?;
                if runs_at_once(request.kind) {
                    self.run_or_keep(ctx, request).await
                } else {
                    Ok(request)
                }
            }
            Verification::Failed => {
                request.advance(
                    RequestStatus::Denied {
                        reason: "the requester could not be verified".to_owned(),
                        ground: unverified_ground(request.regime),
                    },
                    ctx.at(),
                    officer,
                )?;
                self.save(
                    ctx,
                    AuditAction::Verify,
                    request,
                    AuditOutcome::Denied {
                        reason: "verification_failed",
                    },
                )
                .await
            }
        }
    }

    /// Announces the extension of a request's deadline (before its original due
    /// time). The person sees it in the request's history.
    ///
    /// # Errors
    /// [`RightsError::NotFound`], [`RightsError::Forbidden`],
    /// [`RightsError::Conflict`] (too late, or not under way),
    /// [`RightsError::Unavailable`].
    pub async fn extend(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: RightsRequestId,
    ) -> Result<RightsRequest, RightsError> {
        let mut request = self.officer_request(ctx, organisation, id).await?;
        let officer = person_user(ctx);
        if request.status == RequestStatus::Verified {
            request.advance(RequestStatus::InProgress, ctx.at(), officer)?;
        }
        request.advance(RequestStatus::Extended, ctx.at(), officer)?;
        self.save(ctx, AuditAction::Update, request, AuditOutcome::Allowed)
            .await
    }

    /// Denies a request with its reason and legal ground.
    ///
    /// # Errors
    /// [`RightsError::Invalid`] (an empty reason or ground),
    /// [`RightsError::NotFound`], [`RightsError::Forbidden`],
    /// [`RightsError::Conflict`] (already final), [`RightsError::Unavailable`].
    pub async fn deny(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: RightsRequestId,
        reason: &str,
        ground: LegalGround,
    ) -> Result<RightsRequest, RightsError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 1000 {
            return Err(RightsError::invalid(
                "reason",
                "must be 1 to 1000 characters",
            ));
        }
        if ground.citation.trim().is_empty() || ground.citation.chars().count() > 200 {
            return Err(RightsError::invalid(
                "citation",
                "must be 1 to 200 characters",
            ));
        }
        let mut request = self.officer_request(ctx, organisation, id).await?;
        request.advance(
            RequestStatus::Denied {
                reason: reason.to_owned(),
                ground,
            },
            ctx.at(),
            person_user(ctx),
        )?;
        self.save(ctx, AuditAction::Update, request, AuditOutcome::Allowed)
            .await
    }

    /// Carries out a verified request (or resumes one in progress).
    ///
    /// # Errors
    /// [`RightsError::NotFound`], [`RightsError::Forbidden`],
    /// [`RightsError::Conflict`] (not verified, or final),
    /// [`RightsError::Invalid`] (a rectification the context refuses; nothing
    /// changed), [`RightsError::Unavailable`] (the request stays in progress and
    /// can be carried out again).
    pub async fn execute(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        id: RightsRequestId,
    ) -> Result<RightsRequest, RightsError> {
        let request = self.officer_request(ctx, organisation, id).await?;
        self.run(ctx, request).await
    }

    /// Runs a request filed or verified now; a failure of a context leaves it
    /// acknowledged and resumable rather than failing the filing.
    async fn run_or_keep(
        &self,
        ctx: &RequestContext,
        request: RightsRequest,
    ) -> Result<RightsRequest, RightsError> {
        let id = request.id;
        match self.run(ctx, request).await {
            Ok(done) => Ok(done),
            // Acknowledged is never lost: the request stays in progress for the
            // privacy officer to carry out again (or to deny, when a context
            // refused the change).
            Err(
                RightsError::Unavailable(_)
                | RightsError::Invalid { .. }
                | RightsError::Conflict(_),
            ) => self
                .ports()
                .repository
                .request(id)
                .await?
                .ok_or(RightsError::NotFound),
            Err(e) => Err(e),
        }
    }

    async fn run(
        &self,
        ctx: &RequestContext,
        mut request: RightsRequest,
    ) -> Result<RightsRequest, RightsError> {
        match request.status {
            RequestStatus::Verified => {
                request.advance(RequestStatus::InProgress, ctx.at(), person_user(ctx))?;
                request = self
                    .save(ctx, AuditAction::Update, request, AuditOutcome::Allowed)
                    .await?;
            }
            RequestStatus::InProgress | RequestStatus::Extended => {}
            _ => {
                return Err(RightsError::Conflict(format!(
                    "the request is {}; only a verified request is carried out",
                    request.status.as_str()
                )));
            }
        }
        let work = ctx.with_purpose(Purpose::SubjectRequest);
        let result = match request.kind {
            RequestKind::Access | RequestKind::Portability => {
                self.export_archive(&work, &request).await?
            }
            RequestKind::CcpaKnow => self.know_archive(&work, &request).await?,
            RequestKind::AccountingOfDisclosures => {
                self.accounting_archive(&work, &request).await?
            }
            RequestKind::Erasure | RequestKind::CcpaDelete => self.erase(&work, &request).await?,
            RequestKind::Rectification => self.rectify(&work, &request).await?,
            RequestKind::Restriction | RequestKind::Objection | RequestKind::Withdrawal => {
                self.through_consent(&work, &request).await?
            }
        };
        request.result = Some(result);
        request.advance(RequestStatus::Completed, ctx.at(), person_user(ctx))?;
        // After an erasure the subject is named only by the request.
        let subject = if matches!(request.kind, RequestKind::Erasure | RequestKind::CcpaDelete) {
            None
        } else {
            Some(request.subject)
        };
        request.version += 1;
        self.audit(
            ctx,
            completion_action(request.kind),
            ResourceRef::new(resource::REQUEST, request.id.as_uuid()),
            subject,
            AuditOutcome::Allowed,
        )
        .await?;
        self.ports().repository.update_request(&request).await?;
        Ok(request)
    }

    fn context(&self, name: &str) -> Option<&Arc<dyn PersonalData>> {
        self.ports().contexts.iter().find(|c| c.context() == name)
    }

    async fn holdings(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
    ) -> Result<Vec<ContextHoldings>, RightsError> {
        let mut holdings = Vec::with_capacity(self.ports().contexts.len());
        for context in &self.ports().contexts {
            let records = context
                .export(ctx, subject)
                .await
                .map_err(personal_data_error)?;
            holdings.push(ContextHoldings {
                context: context.context(),
                map: context.describe(),
                records,
            });
        }
        Ok(holdings)
    }

    async fn store_archive(
        &self,
        request: &RightsRequest,
        parts: &[crate::ports::ArchivePart],
    ) -> Result<RequestResult, RightsError> {
        let packed = self.ports().packer.pack(parts).map_err(unavailable)?;
        self.ports()
            .repository
            .put_archive(
                request.id,
                request.organisation,
                request.subject,
                &packed.bytes,
            )
            .await?;
        Ok(RequestResult::Archive {
            sha256: packed.sha256,
            bytes: u64::try_from(packed.bytes.len()).unwrap_or(u64::MAX),
        })
    }

    async fn export_archive(
        &self,
        ctx: &RequestContext,
        request: &RightsRequest,
    ) -> Result<RequestResult, RightsError> {
        let holdings = self.holdings(ctx, request.subject).await?;
        let parts = archive::export_parts(request, &holdings, self.statements(), ctx.at())
            .map_err(|e| RightsError::Unavailable(Box::new(e)))?;
        self.store_archive(request, &parts).await
    }

    async fn know_archive(
        &self,
        ctx: &RequestContext,
        request: &RightsRequest,
    ) -> Result<RequestResult, RightsError> {
        let holdings = self.holdings(ctx, request.subject).await?;
        let report = know::report(&holdings, request.received_at);
        let parts = archive::know_parts(request, &report, self.statements(), ctx.at())
            .map_err(|e| RightsError::Unavailable(Box::new(e)))?;
        self.store_archive(request, &parts).await
    }

    async fn accounting_archive(
        &self,
        ctx: &RequestContext,
        request: &RightsRequest,
    ) -> Result<RequestResult, RightsError> {
        let disclosures: Vec<ExportedRecord> = match self.context("audit") {
            Some(audit) => audit
                .export(ctx, request.subject)
                .await
                .map_err(personal_data_error)?
                .into_iter()
                .filter(|r| r.resource.kind == archive::DISCLOSURE_KIND)
                .collect(),
            None => Vec::new(),
        };
        let parts = archive::accounting_parts(request, &disclosures, self.statements(), ctx.at())
            .map_err(|e| RightsError::Unavailable(Box::new(e)))?;
        self.store_archive(request, &parts).await
    }

    async fn erase(
        &self,
        ctx: &RequestContext,
        request: &RightsRequest,
    ) -> Result<RequestResult, RightsError> {
        let repository = &self.ports().repository;
        let mut journal = repository.erasure_steps(request.id).await?;
        let mut order: Vec<&Arc<dyn PersonalData>> = Vec::new();
        for name in ERASURE_ORDER {
            order.extend(self.context(name));
        }
        for context in &self.ports().contexts {
            if !ERASURE_ORDER.contains(&context.context()) {
                order.push(context);
            }
        }
        for context in order {
            if journal.iter().any(|s| s.context == context.context()) {
                continue;
            }
            self.audit(
                ctx,
                AuditAction::Erase,
                ResourceRef::new(resource::REQUEST, request.id.as_uuid()),
                Some(request.subject),
                AuditOutcome::Allowed,
            )
            .await?;
            let outcomes = context
                .erase(ctx, request.subject)
                .await
                .map_err(personal_data_error)?;
            let step = ErasureStep {
                context: context.context().to_owned(),
                outcomes,
            };
            repository.put_erasure_step(request.id, &step).await?;
            journal.push(step);
        }
        if !journal.iter().any(|s| s.context == KEYS_STEP) {
            // Every version of the key goes; afterwards none is left (a repeat
            // destroys nothing and reports the same).
            self.ports()
                .keys
                .shred(request.organisation, request.subject)
                .await
                .map_err(unavailable)?;
            let step = ErasureStep {
                context: KEYS_STEP.to_owned(),
                outcomes: vec![ErasureOutcome {
                    category: DataCategory::Identity,
                    resource: ResourceRef::new("subject_data_key", request.subject.as_uuid()),
                    fate: RecordFate::Deleted,
                }],
            };
            repository.put_erasure_step(request.id, &step).await?;
            journal.push(step);
        }
        Ok(RequestResult::Erasure {
            outcomes: journal.into_iter().flat_map(|s| s.outcomes).collect(),
        })
    }

    async fn rectify(
        &self,
        ctx: &RequestContext,
        request: &RightsRequest,
    ) -> Result<RequestResult, RightsError> {
        let RequestDetail::Rectification {
            context,
            resource_kind,
            resource_id,
            field,
            value,
        } = &request.detail
        else {
            return Err(RightsError::invalid(
                "detail",
                "a rectification names its record",
            ));
        };
        let owner = self
            .context(context)
            .ok_or_else(|| RightsError::invalid("context", "no such context"))?;
        let kind = archive::KNOWN_KINDS
            .iter()
            .copied()
            .find(|k| k == resource_kind)
            .ok_or_else(|| RightsError::invalid("resource_kind", "no such kind of record"))?;
        let value: serde_json::Value = serde_json::from_str(value)
            .map_err(|_| RightsError::invalid("value", "must be JSON"))?;
        owner
            .rectify(
                ctx,
                request.subject,
                Rectification {
                    resource: ResourceRef::new(kind, *resource_id),
                    field: field.clone(),
                    value,
                },
            )
            .await
            .map_err(personal_data_error)?;
        Ok(RequestResult::Applied)
    }

    async fn through_consent(
        &self,
        ctx: &RequestContext,
        request: &RightsRequest,
    ) -> Result<RequestResult, RightsError> {
        let instructions: Vec<ConsentInstruction> = match &request.detail {
            RequestDetail::Objection { purpose } => {
                vec![ConsentInstruction::Object { purpose: *purpose }]
            }
            RequestDetail::Withdrawal { purpose, recipient } => {
                vec![ConsentInstruction::Withdraw {
                    purpose: *purpose,
                    recipient: recipient.clone(),
                }]
            }
            RequestDetail::Restriction { categories, lift } => {
                let each: Vec<Option<DataCategory>> = if categories.is_empty() {
                    vec![None]
                } else {
                    categories.iter().copied().map(Some).collect()
                };
                each.into_iter()
                    .map(|category| {
                        if *lift {
                            ConsentInstruction::LiftRestriction { category }
                        } else {
                            ConsentInstruction::Restrict { category }
                        }
                    })
                    .collect()
            }
            _ => return Err(RightsError::invalid("detail", "does not fit the kind")),
        };
        for instruction in instructions {
            self.ports()
                .consent
                .apply(ctx, request.subject, request.requester, instruction)
                .await
                .map_err(|e| match e {
                    ConsentLedgerError::Refused(message) => RightsError::invalid("detail", message),
                    ConsentLedgerError::Unavailable(e) => RightsError::Unavailable(e),
                })?;
        }
        if let RequestDetail::Restriction { categories, lift } = &request.detail {
            let scope = if categories.is_empty() {
                RestrictionScope::All
            } else {
                RestrictionScope::Categories(categories.clone())
            };
            for context in &self.ports().contexts {
                let held: Vec<DataCategory> =
                    context.describe().iter().map(|e| e.category).collect();
                if !categories.is_empty() && !categories.iter().any(|c| held.contains(c)) {
                    continue;
                }
                match context
                    .restrict(ctx, request.subject, scope.clone(), *lift)
                    .await
                {
                    // A context that cannot restrict (identity: account data only
                    // runs the account) says so; the ledger's restriction, which
                    // every gated use obeys, stands.
                    Ok(()) | Err(PersonalDataError::Invalid(_)) => {}
                    Err(e) => return Err(personal_data_error(e)),
                }
            }
        }
        Ok(RequestResult::Applied)
    }

    // -------------------------------------------------------------- research

    /// A Safe Harbor de-identified extract of the practice's clients for
    /// `purpose` (research or analytics), for its privacy officer: only the
    /// categories each client's consent allows, only clients it allows some for.
    /// One audit event names each client read, and one the extract.
    ///
    /// # Errors
    /// [`RightsError::Invalid`] (another purpose), [`RightsError::Forbidden`],
    /// [`RightsError::NotFound`], [`RightsError::Unavailable`].
    pub async fn research_extract(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        purpose: Purpose,
    ) -> Result<ResearchExtract, RightsError> {
        if !matches!(purpose, Purpose::Research | Purpose::Analytics) {
            return Err(RightsError::invalid(
                "purpose",
                "an extract is for research or analytics",
            ));
        }
        Self::require_officer(ctx, organisation)?;
        let work = ctx.with_purpose(purpose);
        let mut extract = ResearchExtract {
            purpose,
            generated_at: ctx.at(),
            considered: 0,
            subjects: Vec::new(),
        };
        let mut after = None;
        loop {
            let page = self
                .ports()
                .people
                .clients_of(organisation, after, EXTRACT_PAGE)
                .await
                .map_err(unavailable)?;
            for client in page.people {
                extract.considered += 1;
                if let Some(subject) = self.deidentified(&work, organisation, client).await? {
                    extract.subjects.push(subject);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        // Random ids, sorted: neither the ids nor the order say anything of the
        // clients (their order of sign-up, say).
        extract.subjects.sort_by_key(|s| s.research_id);
        self.audit(
            &work,
            AuditAction::Export,
            ResourceRef::new(resource::RESEARCH_EXTRACT, uuid::Uuid::nil()),
            None,
            AuditOutcome::Allowed,
        )
        .await?;
        Ok(extract)
    }

    async fn deidentified(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: Person,
    ) -> Result<Option<crate::deidentify::ResearchSubject>, RightsError> {
        let mut decisions = Vec::with_capacity(crate::deidentify::RESEARCH_CATEGORIES.len());
        for category in crate::deidentify::RESEARCH_CATEGORIES {
            let query = ConsentQuery {
                subject: client.subject,
                purpose: ctx.purpose(),
                recipient: Recipient::Organisation { organisation },
                category,
                at: ctx.at(),
            };
            let decision = self
                .ports()
                .gate
                .decide(&query)
                .await
                .map_err(|e| RightsError::Unavailable(Box::new(e)))?;
            decisions.push((category, decision));
        }
        let consent = crate::deidentify::ResearchConsent::from_decisions(
            decisions.iter().map(|(c, d)| (*c, d)),
        );
        if !crate::deidentify::RESEARCH_CATEGORIES
            .iter()
            .any(|c| consent.allows(*c))
        {
            return Ok(None);
        }
        self.audit(
            ctx,
            AuditAction::Read,
            ResourceRef::new(resource::RESEARCH_EXTRACT, uuid::Uuid::nil()),
            Some(client.subject),
            AuditOutcome::Allowed,
        )
        .await?;
        let mut records = Vec::new();
        for name in EXTRACT_CONTEXTS {
            if let Some(context) = self.context(name) {
                records.extend(
                    context
                        .export(ctx, client.subject)
                        .await
                        .map_err(personal_data_error)?,
                );
            }
        }
        Ok(crate::deidentify::deidentify(
            &records,
            ctx.at(),
            uuid::Uuid::new_v4(),
            &consent,
        ))
    }

    // ----------------------------------------------------------------- cases

    /// Receives a privacy question or security concern, signed in or not.
    ///
    /// # Errors
    /// [`RightsError::Invalid`], [`RightsError::Unavailable`].
    pub async fn report(
        &self,
        ctx: &RequestContext,
        kind: CaseKind,
        reply_to: Option<String>,
        message: String,
    ) -> Result<Case, RightsError> {
        let reporter = person_user(ctx);
        let case =
            Case::receive(kind, reporter, reply_to, message, ctx.at()).map_err(case_error)?;
        self.audit(
            ctx,
            AuditAction::Create,
            ResourceRef::new(resource::CASE, case.id.as_uuid()),
            None,
            AuditOutcome::Allowed,
        )
        .await?;
        self.ports().repository.insert_case(&case).await?;
        Ok(case)
    }

    /// The cases the signed-in person sent, newest first.
    ///
    /// # Errors
    /// [`RightsError::Forbidden`], [`RightsError::Unavailable`].
    pub async fn my_cases(&self, ctx: &RequestContext) -> Result<Vec<Case>, RightsError> {
        let Some(user) = person_user(ctx) else {
            return Err(RightsError::Forbidden("sign in to follow your cases"));
        };
        Ok(self.ports().repository.cases_of(user).await?)
    }

    /// One case, for its reporter or the privacy and security office.
    ///
    /// # Errors
    /// [`RightsError::NotFound`], [`RightsError::Unavailable`].
    pub async fn case(&self, ctx: &RequestContext, id: CaseId) -> Result<Case, RightsError> {
        let case = self
            .ports()
            .repository
            .case(id)
            .await?
            .ok_or(RightsError::NotFound)?;
        let office = matches!(ctx.actor(), Actor::PlatformOperator { .. });
        if office || (case.reporter.is_some() && case.reporter == person_user(ctx)) {
            if office {
                self.audit(
                    ctx,
                    AuditAction::Read,
                    ResourceRef::new(resource::CASE, id.as_uuid()),
                    None,
                    AuditOutcome::Allowed,
                )
                .await?;
            }
            Ok(case)
        } else {
            Err(RightsError::NotFound)
        }
    }

    /// The open cases by due time, for the privacy and security office (the
    /// platform operator).
    ///
    /// # Errors
    /// [`RightsError::Forbidden`], [`RightsError::Unavailable`].
    pub async fn open_cases(&self, ctx: &RequestContext) -> Result<Vec<Case>, RightsError> {
        require_office(ctx)?;
        self.audit(
            ctx,
            AuditAction::List,
            ResourceRef::new(resource::CASE, uuid::Uuid::nil()),
            None,
            AuditOutcome::Allowed,
        )
        .await?;
        Ok(self.ports().repository.open_cases(QUEUE_LIMIT).await?)
    }

    /// Moves a case, with a note to the reporter.
    ///
    /// # Errors
    /// [`RightsError::Forbidden`], [`RightsError::NotFound`],
    /// [`RightsError::Conflict`] (resolved), [`RightsError::Invalid`],
    /// [`RightsError::Unavailable`].
    pub async fn advance_case(
        &self,
        ctx: &RequestContext,
        id: CaseId,
        status: CaseStatus,
        note: Option<String>,
    ) -> Result<Case, RightsError> {
        let officer = require_office(ctx)?;
        let mut case = self
            .ports()
            .repository
            .case(id)
            .await?
            .ok_or(RightsError::NotFound)?;
        case.advance(status, note, officer, ctx.at())
            .map_err(case_error)?;
        case.version += 1;
        self.audit(
            ctx,
            AuditAction::Update,
            ResourceRef::new(resource::CASE, id.as_uuid()),
            None,
            AuditOutcome::Allowed,
        )
        .await?;
        self.ports().repository.update_case(&case).await?;
        Ok(case)
    }
}

fn case_error(err: CaseError) -> RightsError {
    match err {
        CaseError::BadMessage => RightsError::invalid("message", err.to_string()),
        CaseError::BadReplyTo => RightsError::invalid("reply_to", err.to_string()),
        CaseError::BadNote => RightsError::invalid("note", err.to_string()),
        CaseError::Final => RightsError::Conflict(err.to_string()),
    }
}

fn require_office(ctx: &RequestContext) -> Result<UserId, RightsError> {
    match ctx.actor() {
        Actor::PlatformOperator { user } => Ok(*user),
        _ => Err(RightsError::Forbidden(
            "cases are worked by the privacy and security office",
        )),
    }
}

/// The signed-in person's account, for members (any role) only.
fn person_user(ctx: &RequestContext) -> Option<UserId> {
    match ctx.actor() {
        Actor::Member { user, .. } => Some(*user),
        _ => None,
    }
}

fn is_officer_of(ctx: &RequestContext, organisation: OrganisationId) -> bool {
    ctx.organisation() == Some(organisation)
        && matches!(ctx.actor(), Actor::Member { roles, .. } if roles.contains(Role::PrivacyOfficer))
}

const fn completion_action(kind: RequestKind) -> AuditAction {
    match kind {
        RequestKind::Access
        | RequestKind::Portability
        | RequestKind::CcpaKnow
        | RequestKind::AccountingOfDisclosures => AuditAction::Export,
        RequestKind::Erasure | RequestKind::CcpaDelete => AuditAction::Erase,
        RequestKind::Restriction | RequestKind::Objection | RequestKind::Withdrawal => {
            AuditAction::Restrict
        }
        RequestKind::Rectification => AuditAction::Update,
    }
}

fn check_detail(detail: &RequestDetail) -> Result<(), RightsError> {
    match detail {
        RequestDetail::Rectification {
            context,
            resource_kind,
            field,
            value,
            ..
        } => {
            if !ERASURE_ORDER.contains(&context.as_str()) {
                return Err(RightsError::invalid("context", "no such context"));
            }
            if !archive::KNOWN_KINDS.contains(&resource_kind.as_str()) {
                return Err(RightsError::invalid(
                    "resource_kind",
                    "no such kind of record",
                ));
            }
            if field.trim().is_empty() || field.len() > 100 {
                return Err(RightsError::invalid("field", "must be 1 to 100 characters"));
            }
            if value.len() > 10_000 || serde_json::from_str::<serde_json::Value>(value).is_err() {
                return Err(RightsError::invalid(
                    "value",
                    "must be JSON of at most 10000 bytes",
                ));
            }
            Ok(())
        }
        RequestDetail::Withdrawal {
            recipient: Some(recipient),
            ..
        } if recipient.trim().is_empty() || recipient.chars().count() > 200 => Err(
            RightsError::invalid("recipient", "must be 1 to 200 characters"),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
