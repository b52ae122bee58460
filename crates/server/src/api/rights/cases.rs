//! Privacy questions and security concerns (O5, SEC3): sent by anyone, signed in
//! or not; followed by their reporter; worked by the platform's privacy and
//! security office (the platform operator). And the statements every answer
//! carries (D13), public.

use data_rights::ids::CaseId;
use data_rights::service::RightsService;
use kernel::{Actor, Purpose};
use poem::Request;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use uuid::Uuid;

use super::OptionalSession;
use super::views::{CaseBody, CaseList, CaseStatusBody, CaseView, StatementsView};
use crate::api::ApiTags;
use crate::api::identity::{Created, Found};
use crate::auth::{SessionAuth, context};
use crate::problem::ApiError;
use crate::state::AppState;

/// Privacy and security cases, and the public statements.
#[derive(Debug)]
pub struct PrivacyCaseApi {
    state: AppState,
}

impl PrivacyCaseApi {
    /// The operations over `state`.
    #[must_use]
    pub const fn new(state: AppState) -> Self {
        Self { state }
    }

    fn rights(&self) -> &RightsService {
        self.state.rights()
    }
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Rights")]
impl PrivacyCaseApi {
    /// Send a privacy question (answered within 30 days) or a security concern
    /// (assessed within 72 hours), signed in or not. Without a session,
    /// `reply_to` (an email address) is needed to answer. An invalid session
    /// is taken as none.
    #[oai(
        path = "/privacy-cases",
        method = "post",
        operation_id = "reportPrivacyCase"
    )]
    async fn report_privacy_case(
        &self,
        req: &Request,
        auth: OptionalSession,
        body: Json<CaseBody>,
    ) -> Result<Created<CaseView>, ApiError> {
        let ctx = match &auth {
            OptionalSession::Session(session) => {
                session.person_context(&self.state, req, Purpose::SubjectRequest)?
            }
            OptionalSession::Anonymous => context(
                &self.state,
                req,
                Actor::Anonymous,
                None,
                Purpose::SubjectRequest,
            ),
        };
        let b = body.0;
        let case = self
            .rights()
            .report(&ctx, b.kind.domain(), b.reply_to, b.message)
            .await?;
        Ok(Created::Created(Json((&case).into())))
    }

    /// The cases you sent, newest first.
    #[oai(
        path = "/me/privacy-cases",
        method = "get",
        operation_id = "listMyPrivacyCases"
    )]
    async fn list_my_privacy_cases(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<CaseList>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let cases = self.rights().my_cases(&ctx).await?;
        Ok(Found::Ok(Json(CaseList {
            items: cases.iter().map(CaseView::from).collect(),
        })))
    }

    /// One case: for its reporter, or the privacy and security office (audited).
    #[oai(
        path = "/privacy-cases/:id",
        method = "get",
        operation_id = "getPrivacyCase"
    )]
    async fn get_privacy_case(
        &self,
        req: &Request,
        auth: SessionAuth,
        id: Path<Uuid>,
    ) -> Result<Found<CaseView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::SubjectRequest);
        let case = self.rights().case(&ctx, CaseId::from_uuid(id.0)).await?;
        Ok(Found::Ok(Json((&case).into())))
    }

    /// The open cases by due time, earliest first (the privacy and security
    /// office: the platform operator).
    #[oai(
        path = "/operator/privacy-cases",
        method = "get",
        operation_id = "listOpenPrivacyCases"
    )]
    async fn list_open_privacy_cases(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<CaseList>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Oversight);
        let cases = self.rights().open_cases(&ctx).await?;
        Ok(Found::Ok(Json(CaseList {
            items: cases.iter().map(CaseView::from).collect(),
        })))
    }

    /// Move a case, with an optional note to the reporter (the office). A
    /// resolved case is final (409).
    #[oai(
        path = "/operator/privacy-cases/:id/status",
        method = "post",
        operation_id = "advancePrivacyCase"
    )]
    async fn advance_privacy_case(
        &self,
        req: &Request,
        auth: SessionAuth,
        id: Path<Uuid>,
        body: Json<CaseStatusBody>,
    ) -> Result<Found<CaseView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Oversight);
        let b = body.0;
        let case = self
            .rights()
            .advance_case(&ctx, CaseId::from_uuid(id.0), b.status.domain(), b.note)
            .await?;
        Ok(Found::Ok(Json((&case).into())))
    }

    /// What every answer states (D13): the controller and its privacy officer,
    /// the legal basis of every processing activity under each regime, and the
    /// right to complain. Public.
    #[oai(
        path = "/privacy-statements",
        method = "get",
        operation_id = "getPrivacyStatements"
    )]
    async fn get_privacy_statements(&self) -> Result<Found<StatementsView>, ApiError> {
        Ok(Found::Ok(Json(self.rights().statements().into())))
    }
}
