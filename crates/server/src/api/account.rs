//! Self-service operations on the caller's own account (C2, U1, D9): profile,
//! preferences, account details, an export of the account's data, the request to
//! delete the account; and, public by design, a new email-verification token.

use chrono::{DateTime, Utc};
use identity::AccountChange;
use identity::IdentityError;
use identity::profile::{
    LanguageTag, PictureRef, Preferences, ProfessionalCredential, Profile, Theme, TimeZoneName,
    Units,
};
use identity::values::{PersonName, Phone, Profession};
use kernel::AuditSink as _;
use kernel::{PersonalData as _, Purpose, Sensitive};
use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use crate::api::ApiTags;
use crate::api::identity::Found;
use crate::auth::{SessionAuth, anonymous_context};
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::state::AppState;

/// Self-service operations.
#[derive(Debug)]
pub struct AccountApi {
    state: AppState,
}

impl AccountApi {
    /// The operations over `state`.
    #[must_use]
    pub const fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// The identity context's own export failed: only storage can fail for the
/// caller's own, existing account.
fn personal_data_error(err: kernel::personal_data::PersonalDataError) -> ApiError {
    tracing::error!(error = %err, "account data export failed");
    ApiError::Unavailable(Json(Problem::new(
        ProblemKind::Unavailable,
        "Storage is temporarily unavailable; nothing was changed.".to_owned(),
    )))
}

/// One professional credential.
#[derive(Debug, Object)]
pub struct CredentialBody {
    /// The qualification or licence, e.g. "Doctor of Physical Therapy".
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub title: String,
    /// Who issued it.
    #[oai(
        skip_serializing_if_is_none,
        validator(
            min_length = 1,
            max_length = 200,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub issuer: Option<String>,
    /// The licence or registration number.
    #[oai(
        skip_serializing_if_is_none,
        validator(
            min_length = 1,
            max_length = 64,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub licence_number: Option<String>,
}

/// A profile (C2): replaced whole by `replaceProfile`.
#[derive(Debug, Object)]
pub struct ProfileBody {
    /// An `https` URL of the picture (Custodia stores the reference, not the image).
    #[oai(
        skip_serializing_if_is_none,
        validator(
            max_length = 2048,
            pattern = r"^https://[A-Za-z0-9.:\[\]-]+([/?#][^\s\x00-\x1f\x7f-\x9f]*)?$"
        )
    )]
    pub picture_url: Option<String>,
    /// Professional credentials, at most 20.
    #[oai(default, validator(max_items = 20))]
    pub credentials: Vec<CredentialBody>,
    /// About the practice: address, hours, specialties. Line breaks allowed.
    #[oai(
        skip_serializing_if_is_none,
        validator(
            min_length = 1,
            max_length = 2000,
            pattern = r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x09\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub practice_information: Option<String>,
}

impl ProfileBody {
    fn parse(self) -> Result<Profile, IdentityError> {
        let picture = self
            .picture_url
            .as_deref()
            .map(PictureRef::parse)
            .transpose()?;
        let credentials = self
            .credentials
            .iter()
            .map(|c| {
                ProfessionalCredential::parse(
                    &c.title,
                    c.issuer.as_deref(),
                    c.licence_number.as_deref(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Profile::new(
            picture,
            credentials,
            self.practice_information.as_deref(),
        )?)
    }

    fn from_domain(profile: &Profile) -> Self {
        Self {
            picture_url: profile.picture.as_ref().map(|p| p.as_str().to_owned()),
            credentials: profile
                .credentials
                .iter()
                .map(|c| CredentialBody {
                    title: c.title.clone(),
                    issuer: c.issuer.clone(),
                    licence_number: c.licence_number.clone(),
                })
                .collect(),
            practice_information: profile.practice_information.clone(),
        }
    }
}

/// Measurement units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum UnitsDto {
    /// Kilograms, centimetres.
    Metric,
    /// Pounds, inches.
    Imperial,
}

/// The interface theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum ThemeDto {
    /// Follow the device.
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

/// Preferences (U1): replaced whole by `replacePreferences`. Marketing choices are
/// consents, not preferences; transactional notices cannot be turned off.
#[derive(Debug, Object)]
pub struct PreferencesBody {
    /// A language tag such as `en` or `en-GB`.
    #[oai(validator(pattern = r"^[A-Za-z]{2,3}(-[A-Za-z]{2})?$"))]
    pub language: String,
    /// An IANA time zone such as `UTC` or `Europe/London`.
    #[oai(validator(
        pattern = r"^(UTC|(Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Etc|Europe|Indian|Pacific)(/[A-Z][A-Za-z0-9_+-]{0,29}){1,2})$"
    ))]
    pub time_zone: String,
    /// Measurement units.
    pub units: UnitsDto,
    /// Interface theme.
    pub theme: ThemeDto,
    /// Whether to be reminded of assigned exercises.
    pub exercise_reminders: bool,
}

impl PreferencesBody {
    fn parse(self) -> Result<Preferences, IdentityError> {
        Ok(Preferences {
            language: LanguageTag::parse(&self.language)?,
            time_zone: TimeZoneName::parse(&self.time_zone)?,
            units: match self.units {
                UnitsDto::Metric => Units::Metric,
                UnitsDto::Imperial => Units::Imperial,
            },
            theme: match self.theme {
                ThemeDto::System => Theme::System,
                ThemeDto::Light => Theme::Light,
                ThemeDto::Dark => Theme::Dark,
            },
            exercise_reminders: self.exercise_reminders,
        })
    }

    fn from_domain(p: &Preferences) -> Self {
        Self {
            language: p.language.as_str().to_owned(),
            time_zone: p.time_zone.as_str().to_owned(),
            units: match p.units {
                Units::Metric => UnitsDto::Metric,
                Units::Imperial => UnitsDto::Imperial,
            },
            theme: match p.theme {
                Theme::System => ThemeDto::System,
                Theme::Light => ThemeDto::Light,
                Theme::Dark => ThemeDto::Dark,
            },
            exercise_reminders: p.exercise_reminders,
        }
    }
}

/// Changes to the caller's account details; absent fields stay as they are. The
/// email changes through its own confirmed flow.
#[derive(Debug, Object)]
pub struct AccountUpdate {
    /// A new full name.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Option<String>,
    /// A new phone in international form.
    #[oai(validator(pattern = r"^\+[1-9][0-9]{7,14}$"))]
    pub phone: Option<String>,
    /// A new profession.
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub profession: Option<String>,
}

impl AccountUpdate {
    /// The change, parsed.
    pub(crate) fn parse(self) -> Result<AccountChange, IdentityError> {
        Ok(AccountChange {
            name: self.name.as_deref().map(PersonName::parse).transpose()?,
            phone: self
                .phone
                .as_deref()
                .map(Phone::parse)
                .transpose()?
                .map(Some),
            profession: self
                .profession
                .as_deref()
                .map(Profession::parse)
                .transpose()?,
        })
    }
}

/// The caller's password (and, with MFA on, a current code), to confirm an
/// account deletion.
#[derive(Debug, Object)]
pub struct DeletionConfirmation {
    /// The current password.
    #[oai(validator(max_length = 128))]
    pub password: String,
    /// With MFA on: the 6-digit code from the authenticator app.
    #[oai(validator(max_length = 16))]
    pub totp_code: Option<String>,
    /// With MFA on, instead of `totp_code`: one of the recovery codes.
    #[oai(validator(max_length = 64))]
    pub recovery_code: Option<String>,
}

/// A received deletion request.
#[derive(Debug, Object)]
pub struct DeletionRequestView {
    /// Its id; quote it when asking about the request.
    pub id: Uuid,
    /// `received`: the account is deactivated and will be erased.
    pub status: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

/// An email address to send a new verification token to.
#[derive(Debug, Object)]
pub struct VerificationRequest {
    /// The address the account was registered with.
    #[oai(validator(
        max_length = 254,
        pattern = r"^[A-Za-z0-9_%+-]{1,32}(\.[A-Za-z0-9_%+-]{1,15}){0,2}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
    ))]
    pub email: String,
}

/// One record of the caller's account data.
#[derive(Debug, Object)]
pub struct AccountRecord {
    /// Its category in the data map, e.g. `contact`.
    pub category: String,
    /// Its kind, e.g. `session`.
    pub kind: String,
    /// Its id.
    pub id: Uuid,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its content, in the export schema (`docs/identity-export.md`).
    pub data: serde_json::Value,
}

/// Everything the identity context holds about the caller.
#[derive(Debug, Object)]
pub struct AccountExport {
    /// Every record.
    pub records: Vec<AccountRecord>,
}

/// `202 Accepted` with a body.
#[derive(Debug, ApiResponse)]
pub enum Accepted<T: poem_openapi::types::ToJSON + Send + Sync> {
    /// Accepted; carried out as described.
    #[oai(status = 202)]
    Accepted(Json<T>),
}

/// `202 Accepted` without a body.
#[derive(Debug, ApiResponse)]
pub enum AcceptedEmpty {
    /// Accepted.
    #[oai(status = 202)]
    Accepted,
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Identity")]
impl AccountApi {
    /// The caller's profile: picture reference, credentials, practice information.
    #[oai(path = "/me/profile", method = "get", operation_id = "getProfile")]
    async fn get_profile(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<ProfileBody>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let profile = self.state.identity().profile(&ctx).await?;
        Ok(Found::Ok(Json(ProfileBody::from_domain(&profile))))
    }

    /// Replace the caller's profile.
    #[oai(path = "/me/profile", method = "put", operation_id = "replaceProfile")]
    async fn replace_profile(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<ProfileBody>,
    ) -> Result<Found<ProfileBody>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let profile = body.0.parse()?;
        let saved = self.state.identity().set_profile(&ctx, profile).await?;
        Ok(Found::Ok(Json(ProfileBody::from_domain(&saved))))
    }

    /// The caller's preferences (the defaults until they set any).
    #[oai(
        path = "/me/preferences",
        method = "get",
        operation_id = "getPreferences"
    )]
    async fn get_preferences(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<PreferencesBody>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let preferences = self.state.identity().preferences(&ctx).await?;
        Ok(Found::Ok(Json(PreferencesBody::from_domain(&preferences))))
    }

    /// Replace the caller's preferences.
    #[oai(
        path = "/me/preferences",
        method = "put",
        operation_id = "replacePreferences"
    )]
    async fn replace_preferences(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<PreferencesBody>,
    ) -> Result<Found<PreferencesBody>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let preferences = body.0.parse()?;
        let saved = self
            .state
            .identity()
            .set_preferences(&ctx, preferences)
            .await?;
        Ok(Found::Ok(Json(PreferencesBody::from_domain(&saved))))
    }

    /// Everything Custodia's identity context holds about the caller: account,
    /// roles, credentials (never secrets), sessions, security events, profile,
    /// preferences, notices and deletion requests. The full export across every
    /// context is a data-access request.
    #[oai(
        path = "/me/account-data",
        method = "get",
        operation_id = "exportAccountData"
    )]
    async fn export_account_data(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<AccountExport>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let (user, _) = self.state.identity().me(&ctx).await?;
        let records = self
            .state
            .identity()
            .personal_data()
            .export(&ctx, user.subject)
            .await
            .map_err(personal_data_error)?;
        self.state
            .audit()
            .log()
            .record(kernel::AuditEvent::new(
                &ctx,
                kernel::AuditAction::Export,
                // The person is the subject; no id of theirs goes into the resource.
                kernel::ResourceRef::new("account_data", Uuid::nil()),
                Some(user.subject),
                kernel::AuditOutcome::Allowed,
            ))
            .await?;
        Ok(Found::Ok(Json(AccountExport {
            records: records
                .into_iter()
                .map(|r| AccountRecord {
                    category: r.category.as_str().to_owned(),
                    kind: r.resource.kind.to_owned(),
                    id: r.resource.id,
                    created_at: r.created_at,
                    data: r.data,
                })
                .collect(),
        })))
    }

    /// Ask for the caller's account to be deleted, confirming with the password.
    /// The account is deactivated and every session ended at once; the request is
    /// recorded, and an erasure request is filed with the rights engine (see
    /// `listRightsRequests`), which the practice's privacy officer carries out,
    /// keeping only what the law requires, stated in the answer.
    #[oai(
        path = "/me/deletion-requests",
        method = "post",
        operation_id = "requestAccountDeletion"
    )]
    async fn request_account_deletion(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<DeletionConfirmation>,
    ) -> Result<Accepted<DeletionRequestView>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::SubjectRequest)?;
        let request = self
            .state
            .identity()
            .request_deletion(
                &ctx,
                Sensitive::new(body.0.password),
                &identity::SecondFactor::from_fields(body.0.totp_code, body.0.recovery_code),
            )
            .await?;
        // The erasure itself is the rights engine's: the request joins the home
        // practice's queue, on GDPR's clock (the shortest), for the privacy officer
        // to carry out. Filing again returns the open one.
        self.state
            .rights()
            .file(
                &ctx,
                data_rights::service::Filing {
                    kind: data_rights::RequestKind::Erasure,
                    regime: kernel::Regime::Gdpr,
                    on_behalf_of: data_rights::service::OnBehalfOf::Myself,
                    detail: data_rights::request::RequestDetail::None,
                },
            )
            .await?;
        Ok(Accepted::Accepted(Json(DeletionRequestView {
            id: request.id,
            status: "received".to_owned(),
            received_at: request.requested_at,
        })))
    }

    /// Send a new email-verification token to an account still awaiting
    /// verification. Answers 202 whether or not such an account exists.
    #[oai(
        path = "/email-verification-requests",
        method = "post",
        operation_id = "requestEmailVerification"
    )]
    async fn request_email_verification(
        &self,
        req: &Request,
        body: Json<VerificationRequest>,
    ) -> Result<AcceptedEmpty, ApiError> {
        let ctx = anonymous_context(&self.state, req);
        self.state
            .identity()
            .resend_verification(&ctx, &body.0.email)
            .await?;
        Ok(AcceptedEmpty::Accepted)
    }
}
