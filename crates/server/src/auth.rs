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
        Ok(caller) => {
            let caller = restrict_until_enrolled(state, req, caller).await?;
            honour_global_privacy_control(state, req, &caller).await;
            Ok(caller)
        }
        Err(identity::IdentityError::Unavailable(err)) => {
            tracing::error!(error = %err, "authentication: storage unavailable");
            Err(poem::Error::from_status(StatusCode::SERVICE_UNAVAILABLE))
        }
        Err(_) => Err(poem::Error::from_status(StatusCode::UNAUTHORIZED)),
    }
}

/// A person's request carrying `Sec-GPC: 1` records an opt-out of sharing (O4),
/// once: later signals find it recorded and write nothing. `DNT` is not read (the
/// policy says Do Not Track is not acted upon). A failure to record is logged and
/// the request goes on: the browser sends the signal again with the next request.
async fn honour_global_privacy_control(
    state: &AppState,
    req: &Request,
    caller: &identity::Authenticated,
) {
    let signalled = req
        .headers()
        .get("sec-gpc")
        .is_some_and(|v| v.as_bytes().trim_ascii() == b"1");
    if !signalled || !caller.credential.is_person() || !matches!(caller.actor, Actor::Member { .. })
    {
        return;
    }
    let ctx = context(
        state,
        req,
        caller.actor,
        caller.organisation,
        Purpose::SubjectRequest,
    );
    let recorded = match state.identity().me(&ctx).await {
        Ok((me, _)) => state
            .consent()
            .global_privacy_control(&ctx, me.subject)
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = recorded {
        tracing::warn!(%error, "could not record a Global Privacy Control opt-out");
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
