//! Identity operations: sign-up with a new practice, email verification, sign-in
//! (sessions), the caller's own account, sessions and security events.
//!
//! Sign-up, verification and sign-in are public by design; everything else needs
//! a session. DTOs are converted to domain values at this edge, and
//! [`IdentityError`] is mapped to HTTP here and nowhere else.

use chrono::{DateTime, Utc};
use identity::model::{Membership, Organisation, SecurityEvent, Session, TokenRejection, User};
use identity::{IdentityError, SignUp};
use kernel::{Actor, Purpose, Sensitive};
use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use crate::api::ApiTags;
use crate::auth::{SessionAuth, anonymous_context};
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::state::AppState;

/// Identity operations.
#[derive(Debug)]
pub struct IdentityApi {
    state: AppState,
}

impl IdentityApi {
    /// The operations over `state`.
    #[must_use]
    pub const fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl From<IdentityError> for ApiError {
    fn from(err: IdentityError) -> Self {
        let problem = |kind, detail: String| Json(Problem::new(kind, detail));
        match err {
            IdentityError::Invalid(invalid) => {
                Self::Unprocessable(problem(ProblemKind::Unprocessable, invalid.to_string()))
            }
            IdentityError::EmailTaken => Self::Conflict(problem(
                ProblemKind::Conflict,
                "An account with this email already exists.".to_owned(),
            )),
            IdentityError::InvalidCredentials => Self::Unauthenticated(problem(
                ProblemKind::Unauthenticated,
                "The email or password is wrong.".to_owned(),
            )),
            IdentityError::Locked { retry_after } => Self::TooManyRequests(
                problem(
                    ProblemKind::TooManyRequests,
                    "The account is locked after repeated failed sign-ins.".to_owned(),
                ),
                seconds(retry_after),
            ),
            IdentityError::Throttled { retry_after } => Self::TooManyRequests(
                problem(
                    ProblemKind::TooManyRequests,
                    "Too many sign-in attempts from this address.".to_owned(),
                ),
                seconds(retry_after),
            ),
            IdentityError::EmailNotVerified => Self::Forbidden(problem(
                ProblemKind::Forbidden,
                "Verify your email address before signing in.".to_owned(),
            )),
            IdentityError::NotAMember => Self::Forbidden(problem(
                ProblemKind::Forbidden,
                "You are not a member of this practice.".to_owned(),
            )),
            IdentityError::Token(TokenRejection::Unknown) => Self::NotFound(problem(
                ProblemKind::NotFound,
                "The token is not valid.".to_owned(),
            )),
            IdentityError::Token(TokenRejection::Expired) => Self::Gone(problem(
                ProblemKind::Gone,
                "The token has expired.".to_owned(),
            )),
            IdentityError::Token(TokenRejection::Used) => Self::Gone(problem(
                ProblemKind::Gone,
                "The token was already used.".to_owned(),
            )),
            IdentityError::Unauthenticated => Self::Unauthenticated(problem(
                ProblemKind::Unauthenticated,
                "Send a valid bearer token.".to_owned(),
            )),
            IdentityError::ReauthenticationFailed => Self::Forbidden(problem(
                ProblemKind::Forbidden,
                "The current password is wrong; nothing was changed.".to_owned(),
            )),
            IdentityError::NotFound => Self::NotFound(problem(
                ProblemKind::NotFound,
                "No such resource.".to_owned(),
            )),
            IdentityError::Conflict(rule) => {
                Self::Conflict(problem(ProblemKind::Conflict, rule.to_owned()))
            }
            IdentityError::GuardianRequired => Self::Forbidden(problem(
                ProblemKind::GuardianRequired,
                "This account belongs to a child under 13: a guardian must be linked by the \
                 practice before it can be activated. The token is still valid."
                    .to_owned(),
            )),
            IdentityError::MfaRequired => Self::Unauthenticated(problem(
                ProblemKind::MfaRequired,
                "Give the code from your authenticator app (totp_code) or a recovery code (recovery_code) with your password.".to_owned(),
            )),
            IdentityError::MfaEnrolmentRequired => Self::Forbidden(problem(
                ProblemKind::MfaEnrolmentRequired,
                "Your practice requires MFA: enrol (POST /v1/me/mfa/enrolment, then /v1/me/mfa/confirmation) before anything else.".to_owned(),
            )),
            IdentityError::MfaAlreadyOn => Self::Conflict(problem(
                ProblemKind::Conflict,
                "MFA is already on for this account.".to_owned(),
            )),
            IdentityError::MfaNotOn => Self::Conflict(problem(
                ProblemKind::Conflict,
                "MFA is not on for this account, or no enrolment is pending.".to_owned(),
            )),
            IdentityError::SecondFactorRequired => Self::Forbidden(problem(
                ProblemKind::Forbidden,
                "MFA is on: give a current authenticator code (totp_code) or a recovery code with your password; nothing was changed.".to_owned(),
            )),
            IdentityError::Forbidden(reason) => Self::Forbidden(problem(
                ProblemKind::Forbidden,
                format!("Not permitted: {reason}."),
            )),
            IdentityError::Unavailable(source) => {
                tracing::error!(error = %source, "identity storage unavailable");
                Self::Unavailable(problem(
                    ProblemKind::Unavailable,
                    "Storage is temporarily unavailable; nothing was changed.".to_owned(),
                ))
            }
        }
    }
}

fn seconds(delta: chrono::TimeDelta) -> u64 {
    u64::try_from(delta.num_seconds()).unwrap_or(0).max(1)
}

/// Where a practice's data is stored (O2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum Region {
    /// United States.
    Us,
    /// European Union.
    Eu,
    /// United Kingdom.
    Uk,
    /// Canada.
    Ca,
    /// Australia.
    Au,
}

impl Region {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Us => "us",
            Self::Eu => "eu",
            Self::Uk => "uk",
            Self::Ca => "ca",
            Self::Au => "au",
        }
    }
}

/// A provider's sign-up: their account and their new practice (C1). Rules the
/// schema cannot express (a common password, an email already registered) are
/// answered 422 and 409.
#[derive(Debug, Object)]
pub struct SignUpRequest {
    /// Their full name.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
    /// Their email address; a verification token is sent to it.
    #[oai(validator(
        max_length = 254,
        pattern = r"^[A-Za-z0-9_%+-]{1,32}(\.[A-Za-z0-9_%+-]{1,15}){0,2}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
    ))]
    pub email: String,
    /// Their profession, e.g. "Physiotherapist".
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub profession: String,
    /// The practice's name.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub organisation_name: String,
    /// Their phone, in international form: `+` and 8 to 15 digits.
    #[oai(validator(pattern = r"^\+[1-9][0-9]{7,14}$"))]
    pub phone: String,
    /// At least 12 characters, not a common password.
    #[oai(validator(min_length = 12, max_length = 128))]
    pub password: String,
    /// Where the practice's data is stored.
    pub region: Region,
}

/// A practice.
#[derive(Debug, Object)]
pub struct OrganisationView {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Where its data is stored.
    pub region: String,
    /// `opt_in` (default) or `opt_out` for marketing.
    pub marketing_mode: String,
    /// Whether MFA is required for roles that see health data.
    pub require_mfa: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<&Organisation> for OrganisationView {
    fn from(o: &Organisation) -> Self {
        Self {
            id: o.id.as_uuid(),
            name: o.name.as_str().to_owned(),
            region: o.region.as_str().to_owned(),
            marketing_mode: o.marketing_mode.as_str().to_owned(),
            require_mfa: o.require_mfa,
            created_at: o.created_at,
        }
    }
}

/// A person's account.
#[derive(Debug, Object)]
pub struct UserView {
    /// Their id.
    pub id: Uuid,
    /// Their name.
    pub name: String,
    /// Their email.
    pub email: String,
    /// Their phone.
    #[oai(skip_serializing_if_is_none)]
    pub phone: Option<String>,
    /// Their profession.
    #[oai(skip_serializing_if_is_none)]
    pub profession: Option<String>,
    /// `pending_verification`, `active`, `disabled` or `frozen` (found to be
    /// under 13, awaiting deletion).
    pub status: String,
    /// When the email was verified.
    #[oai(skip_serializing_if_is_none)]
    pub email_verified_at: Option<DateTime<Utc>>,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.as_uuid(),
            name: u.name.as_str().to_owned(),
            email: u.email.as_str().to_owned(),
            phone: u.phone.as_ref().map(|p| p.as_str().to_owned()),
            profession: u.profession.as_ref().map(|p| p.as_str().to_owned()),
            status: u.status.as_str().to_owned(),
            email_verified_at: u.email_verified_at,
            created_at: u.created_at,
        }
    }
}

/// A role in a practice.
#[derive(Debug, Object)]
pub struct MembershipView {
    /// The practice.
    pub organisation_id: Uuid,
    /// The role: `org_admin`, `provider`, `staff`, `client`, `privacy_officer` or `auditor`.
    pub role: String,
    /// Since when.
    pub created_at: DateTime<Utc>,
}

impl From<&Membership> for MembershipView {
    fn from(m: &Membership) -> Self {
        Self {
            organisation_id: m.organisation.as_uuid(),
            role: m.role.as_str().to_owned(),
            created_at: m.created_at,
        }
    }
}

/// The result of a sign-up.
#[derive(Debug, Object)]
pub struct SignedUp {
    /// The new practice.
    pub organisation: OrganisationView,
    /// The new account, pending email verification.
    pub user: UserView,
}

/// A one-time token to redeem.
#[derive(Debug, Object)]
pub struct TokenRequest {
    /// The token, as received.
    #[oai(validator(max_length = 128))]
    pub token: String,
}

/// Credentials for a new session.
#[derive(Debug, Object)]
pub struct SignInRequest {
    /// The account's email.
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// The account's password.
    #[oai(validator(max_length = 128))]
    pub password: String,
    /// The practice to act in; by default the account's first practice.
    pub organisation_id: Option<Uuid>,
    /// With MFA on: the 6-digit code from the authenticator app.
    #[oai(validator(max_length = 16))]
    pub totp_code: Option<String>,
    /// With MFA on, instead of `totp_code`: one of the recovery codes (each works once).
    #[oai(validator(max_length = 64))]
    pub recovery_code: Option<String>,
}

/// A session, as its owner sees it (never its token).
#[derive(Debug, Object)]
pub struct SessionView {
    /// Its id.
    pub id: Uuid,
    /// The practice it acts in.
    pub organisation_id: Uuid,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it was last used (to within a minute).
    pub last_seen_at: DateTime<Utc>,
    /// When it ends regardless of use.
    pub expires_at: DateTime<Utc>,
    /// The user agent it was started from.
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
}

impl From<&Session> for SessionView {
    fn from(s: &Session) -> Self {
        Self {
            id: s.id.as_uuid(),
            organisation_id: s.organisation.as_uuid(),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            user_agent: s.user_agent.clone(),
        }
    }
}

/// A new session: the bearer token is shown once.
#[derive(Debug, Object)]
pub struct SessionCreated {
    /// Send as `Authorization: Bearer <token>`. Shown once; stored only hashed.
    pub token: String,
    /// The session.
    pub session: SessionView,
    /// Who signed in.
    pub user: UserView,
    /// Their roles in the session's practice.
    pub roles: Vec<String>,
    /// The practice requires MFA and the person has not enrolled: until they do,
    /// this session may only enrol (`startMfaEnrolment`, `confirmMfaEnrolment`) and
    /// sign out; everything else is 403 `mfa-enrolment-required`.
    pub mfa_enrolment_required: bool,
}

/// The caller's account and roles.
#[derive(Debug, Object)]
pub struct CurrentUser {
    /// The account.
    pub user: UserView,
    /// Every role in every practice.
    pub memberships: Vec<MembershipView>,
}

/// A page of sessions.
#[derive(Debug, Object)]
pub struct SessionPage {
    /// The live sessions, newest first.
    pub items: Vec<SessionView>,
    /// Absent: a person's live sessions fit in one page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// A security event on the caller's account.
#[derive(Debug, Object)]
pub struct SecurityEventView {
    /// Its id.
    pub id: Uuid,
    /// What happened, e.g. `sign_in_failed`.
    pub kind: String,
    /// When.
    pub at: DateTime<Utc>,
    /// From which address.
    #[oai(skip_serializing_if_is_none)]
    pub client_address: Option<String>,
    /// With which user agent.
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
    /// The country, when known (never a finer location).
    #[oai(skip_serializing_if_is_none)]
    pub country: Option<String>,
}

impl From<&SecurityEvent> for SecurityEventView {
    fn from(e: &SecurityEvent) -> Self {
        Self {
            id: e.id,
            kind: e.kind.as_str().to_owned(),
            at: e.at,
            client_address: e.client_address.map(|a| a.to_string()),
            user_agent: e.user_agent.clone(),
            country: e.country.clone(),
        }
    }
}

/// A page of security events.
#[derive(Debug, Object)]
pub struct SecurityEventPage {
    /// The most recent 100 events, newest first.
    pub items: Vec<SecurityEventView>,
    /// Absent: only the most recent 100 are served here; all are exported
    /// with a data-access request.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// `201 Created` with a body.
#[derive(Debug, ApiResponse)]
pub enum Created<T: poem_openapi::types::ToJSON + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

/// `200 OK` with a body.
#[derive(Debug, ApiResponse)]
pub enum Found<T: poem_openapi::types::ToJSON + Send + Sync> {
    /// Found.
    #[oai(status = 200)]
    Ok(Json<T>),
}

/// `204 No Content`.
#[derive(Debug, ApiResponse)]
pub enum Done {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Identity")]
impl IdentityApi {
    /// Sign up as a provider and create a practice. The account is pending until
    /// the email is verified with the token sent to it.
    #[oai(path = "/practices", method = "post", operation_id = "createPractice")]
    async fn create_practice(
        &self,
        req: &Request,
        body: Json<SignUpRequest>,
    ) -> Result<Created<SignedUp>, ApiError> {
        let ctx = anonymous_context(&self.state, req);
        let b = body.0;
        let (organisation, user) = self
            .state
            .identity()
            .sign_up(
                &ctx,
                SignUp {
                    name: b.name,
                    email: b.email,
                    profession: b.profession,
                    organisation_name: b.organisation_name,
                    phone: b.phone,
                    password: Sensitive::new(b.password),
                    region: b.region.as_str().to_owned(),
                },
            )
            .await?;
        Ok(Created::Created(Json(SignedUp {
            organisation: (&organisation).into(),
            user: (&user).into(),
        })))
    }

    /// Verify an email address with the one-time token sent to it.
    #[oai(
        path = "/email-verifications",
        method = "post",
        operation_id = "verifyEmail"
    )]
    async fn verify_email(
        &self,
        req: &Request,
        body: Json<TokenRequest>,
    ) -> Result<Done, ApiError> {
        let ctx = anonymous_context(&self.state, req);
        self.state
            .identity()
            .verify_email(&ctx, &Sensitive::new(body.0.token))
            .await?;
        Ok(Done::NoContent)
    }

    /// Sign in: a new session and its bearer token. With MFA on, give `totp_code`
    /// or `recovery_code` too; without either the answer is 401 `mfa-required`.
    #[oai(path = "/sessions", method = "post", operation_id = "createSession")]
    async fn create_session(
        &self,
        req: &Request,
        body: Json<SignInRequest>,
    ) -> Result<Created<SessionCreated>, ApiError> {
        let ctx = anonymous_context(&self.state, req);
        let b = body.0;
        let signed_in = self
            .state
            .identity()
            .sign_in(
                &ctx,
                &b.email,
                Sensitive::new(b.password),
                b.organisation_id.map(kernel::OrganisationId::from_uuid),
                identity::SecondFactor::from_fields(b.totp_code, b.recovery_code),
            )
            .await?;
        let mfa_enrolment_required = self
            .state
            .identity()
            .mfa_enrolment_pending(&identity::Authenticated {
                actor: Actor::Member {
                    user: signed_in.user.id,
                    roles: signed_in.roles,
                },
                organisation: Some(signed_in.session.organisation),
                credential: identity::Credential::Session(signed_in.session.id),
            })
            .await?;
        Ok(Created::Created(Json(SessionCreated {
            mfa_enrolment_required,
            token: signed_in.token.into_inner(),
            session: (&signed_in.session).into(),
            user: (&signed_in.user).into(),
            roles: signed_in
                .roles
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
        })))
    }

    /// The caller's live sessions.
    #[oai(path = "/sessions", method = "get", operation_id = "listSessions")]
    async fn list_sessions(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<SessionPage>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let sessions = self.state.identity().sessions(&ctx).await?;
        Ok(Found::Ok(Json(SessionPage {
            items: sessions.iter().map(Into::into).collect(),
            next_cursor: None,
        })))
    }

    /// End every session of the caller, this one included.
    #[oai(
        path = "/sessions",
        method = "delete",
        operation_id = "revokeAllSessions"
    )]
    async fn revoke_all_sessions(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Done, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        self.state.identity().revoke_all_sessions(&ctx).await?;
        Ok(Done::NoContent)
    }

    /// End one of the caller's sessions (sign out, when it is this one).
    #[oai(
        path = "/sessions/:session_id",
        method = "delete",
        operation_id = "revokeSession"
    )]
    async fn revoke_session(
        &self,
        req: &Request,
        auth: SessionAuth,
        session_id: Path<Uuid>,
    ) -> Result<Done, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        self.state
            .identity()
            .revoke_session(&ctx, identity::model::SessionId::from_uuid(session_id.0))
            .await?;
        Ok(Done::NoContent)
    }

    /// The caller's own account and roles.
    #[oai(path = "/me", method = "get", operation_id = "getCurrentUser")]
    async fn current_user(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<CurrentUser>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let (user, memberships) = self.state.identity().me(&ctx).await?;
        Ok(Found::Ok(Json(CurrentUser {
            user: (&user).into(),
            memberships: memberships.iter().map(Into::into).collect(),
        })))
    }

    /// Change the caller's name, phone or profession.
    #[oai(path = "/me", method = "patch", operation_id = "updateCurrentUser")]
    async fn update_current_user(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<crate::api::account::AccountUpdate>,
    ) -> Result<Found<UserView>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let change = body.0.parse()?;
        let user = self.state.identity().update_account(&ctx, change).await?;
        Ok(Found::Ok(Json((&user).into())))
    }

    /// The caller's recent security events: sign-ins, failures, lockouts, revocations.
    #[oai(
        path = "/me/security-events",
        method = "get",
        operation_id = "listSecurityEvents"
    )]
    async fn security_events(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<SecurityEventPage>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let events = self.state.identity().security_events(&ctx, 100).await?;
        Ok(Found::Ok(Json(SecurityEventPage {
            items: events.iter().map(Into::into).collect(),
            next_cursor: None,
        })))
    }
}
