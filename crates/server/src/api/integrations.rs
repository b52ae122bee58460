//! Integration and platform operations: a practice's API keys (created, listed and
//! revoked by its administrators; the secret shown once), and the platform
//! operator's sign-in and practice directory.
//!
//! API keys authenticate through the same bearer scheme as sessions, recognised
//! by their `cus_live_` prefix, and act in their practice with exactly their role.
//! A key is not a person: managing keys, and every operation on "my own account",
//! refuse it (403). Keys belong to the practice and keep working when their
//! creator's account is disabled or loses `org_admin`, until revoked.

use chrono::{DateTime, Utc};
use identity::integrations::{ApiKey, ApiKeyId, OperatorSession};
use identity::model::Organisation;
use kernel::{Actor, OrganisationId, Purpose, Sensitive};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use crate::api::ApiTags;
use crate::api::identity::{Created, Done, Found, UserView};
use crate::auth::{SessionAuth, anonymous_context};
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;

/// API-key and platform-operator operations.
#[derive(Debug)]
pub struct IntegrationsApi {
    state: AppState,
}

impl IntegrationsApi {
    /// The operations over `state`.
    #[must_use]
    pub const fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// The role an API key acts with: any practice role but `client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum ApiKeyRoleName {
    /// Manages the practice.
    OrgAdmin,
    /// A healthcare provider.
    Provider,
    /// Practice staff.
    Staff,
    /// The privacy officer.
    PrivacyOfficer,
    /// Reads audit and consent records.
    Auditor,
}

impl ApiKeyRoleName {
    const fn as_str(self) -> &'static str {
        match self {
            Self::OrgAdmin => "org_admin",
            Self::Provider => "provider",
            Self::Staff => "staff",
            Self::PrivacyOfficer => "privacy_officer",
            Self::Auditor => "auditor",
        }
    }
}

/// A new API key's name and role.
#[derive(Debug, Object)]
pub struct CreateApiKeyRequest {
    /// What the key is for, e.g. "Billing export".
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
    /// The one role the key acts with in the practice.
    pub role: ApiKeyRoleName,
}

/// An API key, as its practice's administrators see it (never the secret).
#[derive(Debug, Object)]
pub struct ApiKeyView {
    /// Its id.
    pub id: Uuid,
    /// The practice it acts in.
    pub organisation_id: Uuid,
    /// Its name.
    pub name: String,
    /// The role it acts with.
    pub role: String,
    /// A short, non-secret reminder: the prefix and the secret's last 4 characters.
    pub hint: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The administrator who created it.
    pub created_by: Uuid,
    /// When it was last used (to within a minute).
    #[oai(skip_serializing_if_is_none)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    #[oai(skip_serializing_if_is_none)]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.as_uuid(),
            organisation_id: k.organisation.as_uuid(),
            name: k.name.as_str().to_owned(),
            role: k.role.role().as_str().to_owned(),
            hint: k.hint.clone(),
            created_at: k.created_at,
            created_by: k.created_by.as_uuid(),
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new API key: the secret is shown once and never again.
#[derive(Debug, Object)]
pub struct ApiKeyCreated {
    /// Send as `Authorization: Bearer <secret>`. Shown once; stored only hashed.
    pub secret: String,
    /// The key.
    pub key: ApiKeyView,
}

/// A practice's API keys.
#[derive(Debug, Object)]
pub struct ApiKeyPage {
    /// Every key, newest first, revoked ones included.
    pub items: Vec<ApiKeyView>,
    /// Absent: a practice's keys fit in one page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// An operator's credentials.
#[derive(Debug, Object)]
pub struct OperatorSignInRequest {
    /// The account's email.
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// The account's password.
    #[oai(validator(max_length = 128))]
    pub password: String,
    /// With MFA on: the 6-digit code from the authenticator app.
    #[oai(validator(max_length = 16))]
    pub totp_code: Option<String>,
    /// With MFA on, instead of `totp_code`: an unused recovery code.
    #[oai(validator(max_length = 64))]
    pub recovery_code: Option<String>,
}

/// An operator session (never its token).
#[derive(Debug, Object)]
pub struct OperatorSessionView {
    /// Its id.
    pub id: Uuid,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it ends regardless of use.
    pub expires_at: DateTime<Utc>,
}

impl From<&OperatorSession> for OperatorSessionView {
    fn from(s: &OperatorSession) -> Self {
        Self {
            id: s.id.as_uuid(),
            created_at: s.created_at,
            expires_at: s.expires_at,
        }
    }
}

/// A new operator session: the bearer token is shown once.
#[derive(Debug, Object)]
pub struct OperatorSessionCreated {
    /// Send as `Authorization: Bearer <token>`. Shown once; stored only hashed.
    pub token: String,
    /// The session; it acts in no practice.
    pub session: OperatorSessionView,
    /// The operator.
    pub user: UserView,
}

/// A practice in the operator's directory (no personal data).
#[derive(Debug, Object)]
pub struct PracticeSummary {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Where its data is stored.
    pub region: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<&Organisation> for PracticeSummary {
    fn from(o: &Organisation) -> Self {
        Self {
            id: o.id.as_uuid(),
            name: o.name.as_str().to_owned(),
            region: o.region.as_str().to_owned(),
            created_at: o.created_at,
        }
    }
}

/// A page of practices.
#[derive(Debug, Object)]
pub struct PracticePage {
    /// Practices in creation order.
    pub items: Vec<PracticeSummary>,
    /// The next page's cursor; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// The practice directory's cursors: bound to that list by their prefix.
const PRACTICE_CURSOR: &str = "prc_";

fn practice_cursor(id: OrganisationId) -> String {
    format!("{PRACTICE_CURSOR}{}", id.as_uuid().simple())
}

fn parse_practice_cursor(raw: &str) -> Result<OrganisationId, ApiError> {
    raw.strip_prefix(PRACTICE_CURSOR)
        .and_then(|rest| Uuid::try_parse(rest).ok())
        .map(OrganisationId::from_uuid)
        .ok_or_else(|| {
            ApiError::new(
                ProblemKind::BadRequest,
                "The parameter `cursor` is not a cursor of this list.",
            )
        })
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Integrations")]
impl IntegrationsApi {
    /// Create an API key for the practice, acting with one role. The secret is
    /// returned once. Only the practice's administrators, signed in as themselves.
    #[oai(
        path = "/organisations/:organisation_id/api-keys",
        method = "post",
        operation_id = "createApiKey"
    )]
    async fn create_api_key(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        body: Json<CreateApiKeyRequest>,
    ) -> Result<Created<ApiKeyCreated>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::Operations)?;
        let issued = self
            .state
            .identity()
            .create_api_key(
                &ctx,
                OrganisationId::from_uuid(organisation_id.0),
                &body.0.name,
                body.0.role.as_str(),
            )
            .await?;
        Ok(Created::Created(Json(ApiKeyCreated {
            secret: issued.secret.into_inner(),
            key: (&issued.key).into(),
        })))
    }

    /// The practice's API keys, revoked ones included (never a secret). For the
    /// practice's administrators, or an API key with the `org_admin` role.
    #[oai(
        path = "/organisations/:organisation_id/api-keys",
        method = "get",
        operation_id = "listApiKeys"
    )]
    async fn list_api_keys(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
    ) -> Result<Found<ApiKeyPage>, ApiError> {
        // An org_admin API key may list its practice's keys (never their secrets).
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let keys = self
            .state
            .identity()
            .api_keys(&ctx, OrganisationId::from_uuid(organisation_id.0))
            .await?;
        Ok(Found::Ok(Json(ApiKeyPage {
            items: keys.iter().map(Into::into).collect(),
            next_cursor: None,
        })))
    }

    /// Revoke one of the practice's API keys, effective at once.
    #[oai(
        path = "/organisations/:organisation_id/api-keys/:api_key_id",
        method = "delete",
        operation_id = "revokeApiKey"
    )]
    async fn revoke_api_key(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        api_key_id: Path<Uuid>,
    ) -> Result<Done, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::Operations)?;
        self.state
            .identity()
            .revoke_api_key(
                &ctx,
                OrganisationId::from_uuid(organisation_id.0),
                ApiKeyId::from_uuid(api_key_id.0),
            )
            .await?;
        Ok(Done::NoContent)
    }

    /// Sign in as a platform operator: a session that acts in no practice.
    #[oai(
        path = "/operator/sessions",
        method = "post",
        operation_id = "createOperatorSession",
        tag = "ApiTags::Platform"
    )]
    async fn create_operator_session(
        &self,
        req: &Request,
        body: Json<OperatorSignInRequest>,
    ) -> Result<Created<OperatorSessionCreated>, ApiError> {
        let ctx = anonymous_context(&self.state, req);
        let b = body.0;
        let signed_in = self
            .state
            .identity()
            .operator_sign_in(
                &ctx,
                &b.email,
                Sensitive::new(b.password),
                identity::SecondFactor::from_fields(b.totp_code, b.recovery_code),
            )
            .await?;
        Ok(Created::Created(Json(OperatorSessionCreated {
            token: signed_in.token.into_inner(),
            session: (&signed_in.session).into(),
            user: (&signed_in.user).into(),
        })))
    }

    /// End the operator's current session (sign out).
    #[oai(
        path = "/operator/sessions/current",
        method = "delete",
        operation_id = "endOperatorSession",
        tag = "ApiTags::Platform"
    )]
    async fn end_operator_session(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Done, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let identity::Credential::OperatorSession(session) = auth.0.credential else {
            return Err(ApiError::new(
                ProblemKind::Forbidden,
                "Only a platform operator's session can be ended here.",
            ));
        };
        self.state
            .identity()
            .end_operator_session(&ctx, session)
            .await?;
        Ok(Done::NoContent)
    }

    /// The practice directory, for the platform operator: id, name, region and
    /// creation time, in creation order, paged.
    #[oai(
        path = "/operator/practices",
        method = "get",
        operation_id = "listPractices",
        tag = "ApiTags::Platform"
    )]
    async fn list_practices(
        &self,
        req: &Request,
        auth: SessionAuth,
        /// At most this many (1 to 200, default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// The previous page's `next_cursor`.
        #[oai(validator(max_length = 64))]
        cursor: Query<Option<String>>,
    ) -> Result<Found<PracticePage>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        // Anyone but an operator is refused by the service; their cursor is not read.
        let after = match cursor.0.as_deref() {
            Some(raw) if matches!(ctx.actor(), Actor::PlatformOperator { .. }) => {
                Some(parse_practice_cursor(raw)?)
            }
            _ => None,
        };
        let (practices, next) = self
            .state
            .identity()
            .practices(&ctx, after, limit.0.unwrap_or(50))
            .await?;
        Ok(Found::Ok(Json(PracticePage {
            items: practices.iter().map(Into::into).collect(),
            next_cursor: next.map(practice_cursor),
        })))
    }
}
