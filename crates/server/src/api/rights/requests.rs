//! Rights requests: filed by a person (for themselves, a minor, or as an agent),
//! by a provider for a client; followed and downloaded by their requester and
//! subject; worked by the practice's privacy officer. Authorised agents are
//! appointed, listed and revoked by the person.

use data_rights::authority::Scope;
use data_rights::ids::{AuthorityId, RightsRequestId};
use data_rights::request::RightsRequest;
use data_rights::service::resource;
use data_rights::service::{Filed, Filing, OnBehalfOf, RightsError, RightsService, Verification};
use kernel::{
    AuditAction, AuditEvent, AuditOutcome, LegalGround, OrganisationId, Purpose, RequestContext,
    ResourceRef, Role, UserId,
};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, OpenApi};
use uuid::Uuid;

use super::views::{
    AppointAgentBody, AuthorityList, AuthorityView, ClientRightsRequestBody, DenialBody,
    RightsRequestBody, RightsRequestList, RightsRequestView, VerificationBody, VerificationOutcome,
};
use super::{DetailInput, audit_refusal, invalid, kind, regime};
use crate::api::ApiTags;
use crate::api::identity::{Created, Found};
use crate::auth::SessionAuth;
use crate::problem::ApiError;
use crate::state::AppState;

/// Rights requests and authorised agents.
#[derive(Debug)]
pub struct RightsApi {
    state: AppState,
}

impl RightsApi {
    /// The operations over `state`.
    #[must_use]
    pub const fn new(state: AppState) -> Self {
        Self { state }
    }

    fn rights(&self) -> &RightsService {
        self.state.rights()
    }

    /// A person's own context: API keys are refused (403).
    fn person(&self, req: &Request, auth: &SessionAuth) -> Result<RequestContext, ApiError> {
        auth.person_context(&self.state, req, Purpose::SubjectRequest)
    }

    /// A practice member's context (a provider filing, the privacy officer).
    fn member(&self, req: &Request, auth: &SessionAuth) -> RequestContext {
        auth.context(&self.state, req, Purpose::SubjectRequest)
    }

    fn view(&self, ctx: &RequestContext, request: &RightsRequest) -> RightsRequestView {
        RightsRequestView::of(request, ctx.at(), self.rights().statements())
    }

    fn list(&self, ctx: &RequestContext, requests: &[RightsRequest]) -> RightsRequestList {
        RightsRequestList {
            items: requests.iter().map(|r| self.view(ctx, r)).collect(),
        }
    }

    fn filed(&self, ctx: &RequestContext, filed: &Filed) -> FiledAnswer {
        let view = Json(self.view(ctx, &filed.request));
        if filed.created {
            FiledAnswer::Created(view)
        } else {
            FiledAnswer::Existing(view)
        }
    }
}

/// A request filed now, or the identical open one filed before.
#[derive(Debug, ApiResponse)]
pub enum FiledAnswer {
    /// Filed now.
    #[oai(status = 201)]
    Created(Json<RightsRequestView>),
    /// An identical request is open: it is the one.
    #[oai(status = 200)]
    Existing(Json<RightsRequestView>),
}

/// A request's archive.
#[derive(Debug, ApiResponse)]
pub enum ArchiveAnswer {
    /// The archive: a ZIP of JSON files. Access and portability: `export.json`
    /// (described by `schema.json`), `fhir-bundle.json` (FHIR R4),
    /// `consent-history.json`, `access-report.json`, `disclosures.json`,
    /// `statements.json`; CCPA know: `ccpa-know.json`; accounting of
    /// disclosures: `disclosures.json`; each with `statements.json`.
    #[oai(status = 200, content_type = "application/zip")]
    Ok(
        Binary<Vec<u8>>,
        /// The archive's SHA-256, lowercase hex, as in the request's `result`.
        #[oai(header = "X-Content-SHA256")]
        String,
    ),
}

/// The refusal of a practice member who is not its privacy officer.
const OFFICER_ONLY: &str = "the practice's privacy officer works its rights requests";

/// Whether the caller acts as `organisation`'s privacy officer.
fn is_officer_of(ctx: &RequestContext, organisation: OrganisationId) -> bool {
    ctx.organisation() == Some(organisation) && ctx.actor().has_role(Role::PrivacyOfficer)
}

/// On whose behalf a person files: at most one of the minor and the authority.
fn on_behalf_of(body: &RightsRequestBody) -> Result<OnBehalfOf, ApiError> {
    match (body.minor_user_id, body.authority_id) {
        (None, None) => Ok(OnBehalfOf::Myself),
        (Some(minor), None) => Ok(OnBehalfOf::Minor {
            user: UserId::from_uuid(minor),
        }),
        (None, Some(id)) => Ok(OnBehalfOf::Authority {
            id: AuthorityId::from_uuid(id),
        }),
        (Some(_), Some(_)) => Err(invalid(
            "authority_id",
            "give at most one of `minor_user_id` and `authority_id`",
        )),
    }
}

/// An agent's scope: absent for every kind.
fn scope(raw: Option<&[String]>) -> Result<Scope, ApiError> {
    let Some(raw) = raw else {
        return Ok(Scope::All);
    };
    let mut kinds = Vec::new();
    for name in raw {
        let k = kind("scope", name)?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    Ok(Scope::Kinds(kinds))
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Rights")]
impl RightsApi {
    /// File a rights request for yourself, for a minor you are the recorded
    /// guardian of (`minor_user_id`), or as an authorised agent
    /// (`authority_id`). Your own request is verified at once and, for access,
    /// portability, CCPA know, accounting, restriction, objection and
    /// withdrawal, carried out at once; anyone else's waits for the privacy
    /// officer's verification. An identical open request is answered 200 with
    /// it. A person outside your authority is 404, as one that does not exist.
    #[oai(
        path = "/rights-requests",
        method = "post",
        operation_id = "fileRightsRequest"
    )]
    async fn file_rights_request(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<RightsRequestBody>,
    ) -> Result<FiledAnswer, ApiError> {
        let ctx = self.person(req, &auth)?;
        let b = &body.0;
        let kind = kind("kind", &b.kind)?;
        let regime = regime("regime", &b.regime)?;
        let on_behalf_of = on_behalf_of(b)?;
        let detail = DetailInput {
            purpose: b.purpose.as_deref(),
            recipient: b.recipient.as_deref(),
            categories: b.categories.as_deref(),
            lift: b.lift,
            rectification: b.rectification.as_ref(),
        }
        .parse(kind)?;
        let filed = self
            .rights()
            .file(
                &ctx,
                Filing {
                    kind,
                    regime,
                    on_behalf_of,
                    detail,
                },
            )
            .await?;
        Ok(self.filed(&ctx, &filed))
    }

    /// The requests you filed, or that are about you, newest first.
    #[oai(
        path = "/rights-requests",
        method = "get",
        operation_id = "listRightsRequests"
    )]
    async fn list_rights_requests(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<RightsRequestList>, ApiError> {
        let ctx = self.person(req, &auth)?;
        let requests = self.rights().my_requests(&ctx).await?;
        Ok(Found::Ok(Json(self.list(&ctx, &requests))))
    }

    /// One request you filed or that is about you.
    #[oai(
        path = "/rights-requests/:id",
        method = "get",
        operation_id = "getRightsRequest"
    )]
    async fn get_rights_request(
        &self,
        req: &Request,
        auth: SessionAuth,
        id: Path<Uuid>,
    ) -> Result<Found<RightsRequestView>, ApiError> {
        let ctx = self.person(req, &auth)?;
        let request = self
            .rights()
            .request(&ctx, RightsRequestId::from_uuid(id.0))
            .await?;
        Ok(Found::Ok(Json(self.view(&ctx, &request))))
    }

    /// Download a completed request's archive (a ZIP; its SHA-256 in
    /// `X-Content-SHA256`). Its requester and its subject only; audited. 404 when
    /// there is none, or when the subject's data key was destroyed since.
    #[oai(
        path = "/rights-requests/:id/archive",
        method = "get",
        operation_id = "downloadRightsArchive"
    )]
    async fn download_rights_archive(
        &self,
        req: &Request,
        auth: SessionAuth,
        id: Path<Uuid>,
    ) -> Result<ArchiveAnswer, ApiError> {
        let ctx = self.person(req, &auth)?;
        let download = self
            .rights()
            .download(&ctx, RightsRequestId::from_uuid(id.0))
            .await?;
        Ok(ArchiveAnswer::Ok(Binary(download.bytes), download.sha256))
    }

    /// Appoint an authorised agent (D11): the account that may file requests
    /// for you, on the document you name, for the kinds in `scope` (every kind
    /// when absent), until `expires_at`. Appointing it signed in is your
    /// confirmation.
    #[oai(
        path = "/me/authorised-agents",
        method = "post",
        operation_id = "appointAgent"
    )]
    async fn appoint_agent(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<AppointAgentBody>,
    ) -> Result<Created<AuthorityView>, ApiError> {
        let ctx = self.person(req, &auth)?;
        let b = &body.0;
        let scope = scope(b.scope.as_deref())?;
        let authority = self
            .rights()
            .appoint_agent(
                &ctx,
                UserId::from_uuid(b.agent_user_id),
                &b.document_ref,
                scope,
                b.expires_at,
            )
            .await?;
        Ok(Created::Created(Json(AuthorityView::of(
            &authority,
            ctx.at(),
        ))))
    }

    /// The agents you appointed, oldest first.
    #[oai(
        path = "/me/authorised-agents",
        method = "get",
        operation_id = "listAgents"
    )]
    async fn list_agents(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<AuthorityList>, ApiError> {
        let ctx = self.person(req, &auth)?;
        let agents = self.rights().my_agents(&ctx).await?;
        Ok(Found::Ok(Json(AuthorityList {
            items: agents
                .iter()
                .map(|a| AuthorityView::of(a, ctx.at()))
                .collect(),
        })))
    }

    /// End an appointment at once (yours only).
    #[oai(
        path = "/me/authorised-agents/:id",
        method = "delete",
        operation_id = "revokeAgent"
    )]
    async fn revoke_agent(
        &self,
        req: &Request,
        auth: SessionAuth,
        id: Path<Uuid>,
    ) -> Result<Found<AuthorityView>, ApiError> {
        let ctx = self.person(req, &auth)?;
        let authority = self
            .rights()
            .revoke_agent(&ctx, AuthorityId::from_uuid(id.0))
            .await?;
        Ok(Found::Ok(Json(AuthorityView::of(&authority, ctx.at()))))
    }

    /// The appointments naming you as agent, oldest first: each one's id is the
    /// `authority_id` you file with.
    #[oai(
        path = "/rights-authorities",
        method = "get",
        operation_id = "listAuthorities"
    )]
    async fn list_authorities(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<AuthorityList>, ApiError> {
        let ctx = self.person(req, &auth)?;
        let proofs = self.rights().my_authorities(&ctx).await?;
        Ok(Found::Ok(Json(AuthorityList {
            items: proofs
                .iter()
                .map(|a| AuthorityView::of(a, ctx.at()))
                .collect(),
        })))
    }

    /// File a rights request for a client of the practice (its providers,
    /// privacy officer and admins). It waits for the privacy officer's
    /// verification. A person who is not a client of the practice is 404.
    #[oai(
        path = "/organisations/:organisation_id/clients/:user_id/rights-requests",
        method = "post",
        operation_id = "fileClientRightsRequest"
    )]
    async fn file_client_rights_request(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        user_id: Path<Uuid>,
        body: Json<ClientRightsRequestBody>,
    ) -> Result<FiledAnswer, ApiError> {
        let ctx = self.member(req, &auth);
        let b = &body.0;
        let kind = kind("kind", &b.kind)?;
        let regime = regime("regime", &b.regime)?;
        let detail = DetailInput {
            purpose: b.purpose.as_deref(),
            recipient: b.recipient.as_deref(),
            categories: b.categories.as_deref(),
            lift: b.lift,
            rectification: b.rectification.as_ref(),
        }
        .parse(kind)?;
        let in_practice = ctx.organisation() == Some(OrganisationId::from_uuid(organisation_id.0));
        let result = if in_practice {
            self.rights()
                .file(
                    &ctx,
                    Filing {
                        kind,
                        regime,
                        on_behalf_of: OnBehalfOf::Client {
                            user: UserId::from_uuid(user_id.0),
                        },
                        detail,
                    },
                )
                .await
        } else {
            Err(RightsError::NotFound)
        };
        // The engine audits a person who is not a client (404) itself.
        let filed = match result {
            Err(RightsError::NotFound) if in_practice => return Err(RightsError::NotFound.into()),
            other => {
                audit_refusal(&self.state, &ctx, AuditAction::Create, user_id.0, other).await?
            }
        };
        Ok(self.filed(&ctx, &filed))
    }

    /// The practice's open rights requests by due time, earliest first (its
    /// privacy officer); `nearing=true` keeps those due within 7 days or
    /// overdue.
    #[oai(
        path = "/organisations/:organisation_id/rights-requests",
        method = "get",
        operation_id = "listRightsQueue"
    )]
    async fn list_rights_queue(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        nearing: Query<Option<bool>>,
    ) -> Result<Found<RightsRequestList>, ApiError> {
        let ctx = self.member(req, &auth);
        let result = self
            .rights()
            .queue(
                &ctx,
                OrganisationId::from_uuid(organisation_id.0),
                nearing.0.unwrap_or(false),
            )
            .await;
        let queue =
            audit_refusal(&self.state, &ctx, AuditAction::List, Uuid::nil(), result).await?;
        Ok(Found::Ok(Json(self.list(&ctx, &queue))))
    }

    /// A HIPAA Safe Harbor de-identified extract of the practice's clients for
    /// `purpose` (`research` or `analytics`), for its privacy officer: only
    /// clients whose consent allows the purpose, only the categories it allows,
    /// under random ids in random order (U5, R3). Each client read is audited,
    /// and the extract.
    #[oai(
        path = "/organisations/:organisation_id/research-extract",
        method = "get",
        operation_id = "getResearchExtract"
    )]
    async fn get_research_extract(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        purpose: Query<super::views::ExtractPurpose>,
    ) -> Result<Found<super::views::ResearchExtractView>, ApiError> {
        let purpose = match purpose.0 {
            super::views::ExtractPurpose::Research => Purpose::Research,
            super::views::ExtractPurpose::Analytics => Purpose::Analytics,
        };
        let ctx = self.member(req, &auth);
        let result = self
            .rights()
            .research_extract(&ctx, OrganisationId::from_uuid(organisation_id.0), purpose)
            .await;
        let extract =
            audit_refusal(&self.state, &ctx, AuditAction::Export, Uuid::nil(), result).await?;
        Ok(Found::Ok(Json(super::views::ResearchExtractView::of(
            extract,
        ))))
    }

    /// One of the practice's rights requests (its privacy officer).
    #[oai(
        path = "/organisations/:organisation_id/rights-requests/:id",
        method = "get",
        operation_id = "getQueuedRightsRequest"
    )]
    async fn get_queued_rights_request(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        id: Path<Uuid>,
    ) -> Result<Found<RightsRequestView>, ApiError> {
        let ctx = self.member(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let result = if ctx.organisation() != Some(organisation) {
            Err(RightsError::NotFound)
        } else if !is_officer_of(&ctx, organisation) {
            Err(RightsError::Forbidden(OFFICER_ONLY))
        } else {
            self.rights()
                .request(&ctx, RightsRequestId::from_uuid(id.0))
                .await
                .and_then(|r| {
                    if r.organisation == organisation {
                        Ok(r)
                    } else {
                        Err(RightsError::NotFound)
                    }
                })
        };
        let request = audit_refusal(&self.state, &ctx, AuditAction::Read, id.0, result).await?;
        // The officer's read of a request (its detail may be health data).
        let read = AuditEvent::new(
            &ctx,
            AuditAction::Read,
            ResourceRef::new(resource::REQUEST, request.id.as_uuid()),
            Some(request.subject),
            AuditOutcome::Allowed,
        );
        self.state
            .audit()
            .sink()
            .record(read)
            .await
            .map_err(|e| RightsError::Unavailable(Box::new(e)))?;
        Ok(Found::Ok(Json(self.view(&ctx, &request))))
    }

    /// Record the verification of the requester's identity and authority (D8).
    /// `failed` denies the request on the regime's ground (audited as a
    /// refusal); `verified` carries out at once what runs at once.
    #[oai(
        path = "/organisations/:organisation_id/rights-requests/:id/verification",
        method = "post",
        operation_id = "verifyRightsRequest"
    )]
    async fn verify_rights_request(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        id: Path<Uuid>,
        body: Json<VerificationBody>,
    ) -> Result<Found<RightsRequestView>, ApiError> {
        let ctx = self.member(req, &auth);
        let verification = match body.0.outcome {
            VerificationOutcome::Verified => Verification::Verified,
            VerificationOutcome::Failed => Verification::Failed,
        };
        let result = self
            .rights()
            .verify(
                &ctx,
                OrganisationId::from_uuid(organisation_id.0),
                RightsRequestId::from_uuid(id.0),
                verification,
            )
            .await;
        let request = audit_refusal(&self.state, &ctx, AuditAction::Verify, id.0, result).await?;
        Ok(Found::Ok(Json(self.view(&ctx, &request))))
    }

    /// Extend the request's deadline, announced before its original due time;
    /// the person sees it in the history.
    #[oai(
        path = "/organisations/:organisation_id/rights-requests/:id/extension",
        method = "post",
        operation_id = "extendRightsRequest"
    )]
    async fn extend_rights_request(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        id: Path<Uuid>,
    ) -> Result<Found<RightsRequestView>, ApiError> {
        let ctx = self.member(req, &auth);
        let result = self
            .rights()
            .extend(
                &ctx,
                OrganisationId::from_uuid(organisation_id.0),
                RightsRequestId::from_uuid(id.0),
            )
            .await;
        let request = audit_refusal(&self.state, &ctx, AuditAction::Update, id.0, result).await?;
        Ok(Found::Ok(Json(self.view(&ctx, &request))))
    }

    /// Deny the request with its reason and legal ground (under the request's
    /// regime unless `regime` names another).
    #[oai(
        path = "/organisations/:organisation_id/rights-requests/:id/denial",
        method = "post",
        operation_id = "denyRightsRequest"
    )]
    async fn deny_rights_request(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        id: Path<Uuid>,
        body: Json<DenialBody>,
    ) -> Result<Found<RightsRequestView>, ApiError> {
        let ctx = self.member(req, &auth);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let id = RightsRequestId::from_uuid(id.0);
        let b = &body.0;
        let regime = match b.regime.as_deref() {
            Some(raw) => regime("regime", raw)?,
            // The request's own regime, read only for the practice's privacy
            // officer; anyone else is refused by the engine as for the denial.
            None if is_officer_of(&ctx, organisation) => {
                let found = self.rights().request(&ctx, id).await;
                audit_refusal(&self.state, &ctx, AuditAction::Update, id.as_uuid(), found)
                    .await?
                    .regime
            }
            None => kernel::Regime::Gdpr,
        };
        let statement = b.statement.trim();
        if statement.is_empty() {
            return Err(invalid("statement", "must be 1 to 2000 characters"));
        }
        let ground = LegalGround {
            regime,
            citation: b.citation.trim().to_owned().into(),
            statement: statement.to_owned().into(),
        };
        let result = self
            .rights()
            .deny(&ctx, organisation, id, &b.reason, ground)
            .await;
        let request =
            audit_refusal(&self.state, &ctx, AuditAction::Update, id.as_uuid(), result).await?;
        Ok(Found::Ok(Json(self.view(&ctx, &request))))
    }

    /// Carry out a verified request (erasure, CCPA delete and rectification
    /// wait for this), or resume one left in progress.
    #[oai(
        path = "/organisations/:organisation_id/rights-requests/:id/execution",
        method = "post",
        operation_id = "executeRightsRequest"
    )]
    async fn execute_rights_request(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        id: Path<Uuid>,
    ) -> Result<Found<RightsRequestView>, ApiError> {
        let ctx = self.member(req, &auth);
        let result = self
            .rights()
            .execute(
                &ctx,
                OrganisationId::from_uuid(organisation_id.0),
                RightsRequestId::from_uuid(id.0),
            )
            .await;
        let request = audit_refusal(&self.state, &ctx, AuditAction::Update, id.0, result).await?;
        Ok(Found::Ok(Json(self.view(&ctx, &request))))
    }
}
