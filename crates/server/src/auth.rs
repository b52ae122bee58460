//! Authentication at the HTTP edge: the bearer-token security scheme, and the
//! [`RequestContext`] every operation builds from the request and its caller.

use kernel::{Actor, ClientInfo, OrganisationId, Purpose, RequestContext, RequestId};
use poem::Request;
use poem::http::StatusCode;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use crate::edge::problem_response;

use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;

/// A bearer credential (`Authorization: Bearer <token>`): a session token as
/// issued by `createSession`, a practice API key (`cus_live_…`, from
/// `createApiKey`) or an operator session token (`cus_op_…`, from
/// `createOperatorSession`), told apart by prefix. Resolved to the caller, or 401.
/// Operations on a person's own account refuse API keys (403): see
/// [`SessionAuth::person_context`].
#[derive(Debug, SecurityScheme)]
#[oai(
    rename = "session",
    ty = "bearer",
    bearer_format = "opaque",
    checker = "authenticate"
)]
pub struct SessionAuth(pub identity::Authenticated);

async fn authenticate(req: &Request, bearer: Bearer) -> poem::Result<identity::Authenticated> {
    let state = req
        .data::<AppState>()
        .ok_or_else(|| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    match state
        .identity()
        .authenticate(&bearer.token, state.clock().now())
        .await
    {
        Ok(caller) => restrict_until_enrolled(state, req, caller).await,
        Err(identity::IdentityError::Unavailable(err)) => {
            tracing::error!(error = %err, "authentication: storage unavailable");
            Err(poem::Error::from_status(StatusCode::SERVICE_UNAVAILABLE))
        }
        Err(_) => Err(poem::Error::from_status(StatusCode::UNAUTHORIZED)),
    }
}

/// What a session restricted to MFA enrolment may still do: start and confirm
/// enrolment, and sign out (one session, or all).
fn allowed_before_enrolment(method: &poem::http::Method, path: &str) -> bool {
    use poem::http::Method;
    let path = path.trim_end_matches('/');
    match *method {
        Method::POST => matches!(path, "/v1/me/mfa/enrolment" | "/v1/me/mfa/confirmation"),
        Method::DELETE => path == "/v1/sessions" || path.starts_with("/v1/sessions/"),
        _ => false,
    }
}

/// A caller whose practice requires MFA and who has not enrolled gets 403
/// `mfa-enrolment-required` for everything but [`allowed_before_enrolment`].
async fn restrict_until_enrolled(
    state: &AppState,
    req: &Request,
    caller: identity::Authenticated,
) -> poem::Result<identity::Authenticated> {
    if allowed_before_enrolment(req.method(), req.uri().path()) {
        return Ok(caller);
    }
    match state.identity().mfa_enrolment_pending(&caller).await {
        Ok(false) => Ok(caller),
        Ok(true) => {
            let ApiError::Forbidden(problem) =
                ApiError::from(identity::IdentityError::MfaEnrolmentRequired)
            else {
                return Err(poem::Error::from_status(StatusCode::FORBIDDEN));
            };
            Err(poem::Error::from_response(problem_response(&problem.0)))
        }
        Err(err) => {
            tracing::error!(error = %err, "authentication: storage unavailable");
            Err(poem::Error::from_status(StatusCode::SERVICE_UNAVAILABLE))
        }
    }
}

/// The context of a request by `actor` acting in `organisation`, for `purpose`:
/// request id and client facts come from the edge, the time from the clock.
#[must_use]
pub fn context(
    state: &AppState,
    req: &Request,
    actor: Actor,
    organisation: Option<OrganisationId>,
    purpose: Purpose,
) -> RequestContext {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .copied()
        .unwrap_or_default();
    let client = req
        .extensions()
        .get::<ClientInfo>()
        .cloned()
        .unwrap_or_default();
    RequestContext::new(
        actor,
        organisation,
        purpose,
        request_id,
        client,
        state.clock().now(),
    )
}

/// The context of a public operation (sign-up, sign-in, token redemption): no
/// caller yet, no practice, for running the service.
#[must_use]
pub fn anonymous_context(state: &AppState, req: &Request) -> RequestContext {
    context(state, req, Actor::Anonymous, None, Purpose::Operations)
}

impl SessionAuth {
    /// The context of this authenticated request.
    #[must_use]
    pub fn context(&self, state: &AppState, req: &Request, purpose: Purpose) -> RequestContext {
        let ctx = context(state, req, self.0.actor, self.0.organisation, purpose);
        match self.0.credential {
            identity::integrations::Credential::ApiKey(key) => ctx.through_api_key(key.as_uuid()),
            _ => ctx,
        }
    }

    /// The context of a request that only a person may make: anything on the
    /// caller's own account (`/v1/me`, `/v1/sessions`, ...) and the management of
    /// API keys. An API key is not a person, so it is refused with 403.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] for an API key.
    pub fn person_context(
        &self,
        state: &AppState,
        req: &Request,
        purpose: Purpose,
    ) -> Result<RequestContext, ApiError> {
        if !self.0.credential.is_person() {
            return Err(ApiError::new(
                ProblemKind::Forbidden,
                "An API key is not a person: operations on a personal account, and managing \
                 API keys, need a person's session.",
            ));
        }
        Ok(self.context(state, req, purpose))
    }
}
