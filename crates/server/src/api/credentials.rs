//! Identity's security operations (tagged `Identity`, one tag per context): TOTP
//! MFA enrolment and management, password change and reset, email change, and a
//! practice's settings (including whether it requires MFA).
//!
//! Every change to the caller's own credentials re-authenticates: the current
//! password in the body, plus a current TOTP (or recovery) code once MFA is on. A
//! wrong one is 403 ("nothing was changed") and counts toward the lockout; a
//! locked account is 429. Password reset and the two token redemptions are public
//! by design (the token, or the email's owner, is the proof).

use identity::{OrganisationChanges, SecondFactor};
use kernel::{OrganisationId, Purpose, Sensitive};
use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use crate::api::ApiTags;
use crate::api::identity::{Created, Done, Found, OrganisationView, TokenRequest};
use crate::auth::{SessionAuth, anonymous_context};
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;

/// Identity's security operations: MFA, credential changes, practice settings.
#[derive(Debug)]
pub struct CredentialsApi {
    state: AppState,
}

impl CredentialsApi {
    /// The operations over `state`.
    #[must_use]
    pub const fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// `202 Accepted`, without a body.
#[derive(Debug, ApiResponse)]
pub enum Accepted {
    /// Accepted: what follows happens out of band (a notice is queued).
    #[oai(status = 202)]
    Accepted,
}

/// Re-authentication by password alone (MFA is not on yet).
#[derive(Debug, Object)]
pub struct PasswordReauthentication {
    /// The caller's current password.
    #[oai(validator(max_length = 128))]
    pub password: String,
}

/// Confirms a pending TOTP enrolment.
#[derive(Debug, Object)]
pub struct MfaConfirmation {
    /// The caller's current password.
    #[oai(validator(max_length = 128))]
    pub password: String,
    /// The authenticator app's current 6-digit code.
    #[oai(validator(max_length = 16))]
    pub code: String,
}

/// Re-authentication with MFA on: the password and a current code.
#[derive(Debug, Object)]
pub struct StrongReauthentication {
    /// The caller's current password.
    #[oai(validator(max_length = 128))]
    pub password: String,
    /// The authenticator app's current 6-digit code.
    #[oai(validator(max_length = 16))]
    pub totp_code: Option<String>,
    /// Instead of `totp_code`: an unused recovery code (spent by this use).
    #[oai(validator(max_length = 64))]
    pub recovery_code: Option<String>,
}

/// A new TOTP secret: shown once.
#[derive(Debug, Object)]
pub struct MfaSetupView {
    /// The secret, base32 (RFC 4648, no padding), for typing into an app.
    pub secret: String,
    /// The `otpauth://totp/...` URI, for a QR code.
    pub otpauth_uri: String,
}

/// Recovery codes: shown once; each works once in place of a TOTP code.
#[derive(Debug, Object)]
pub struct RecoveryCodes {
    /// Ten codes, `XXXX-XXXX-XXXX-XXXX`.
    pub recovery_codes: Vec<String>,
}

/// A password change.
#[derive(Debug, Object)]
pub struct PasswordChange {
    /// The current password.
    #[oai(validator(max_length = 128))]
    pub current_password: String,
    /// At least 12 characters, not a common password.
    #[oai(validator(min_length = 12, max_length = 128))]
    pub new_password: String,
    /// With MFA on: the authenticator app's current code.
    #[oai(validator(max_length = 16))]
    pub totp_code: Option<String>,
    /// With MFA on, instead of `totp_code`: an unused recovery code.
    #[oai(validator(max_length = 64))]
    pub recovery_code: Option<String>,
}

/// An email change: a token goes to the new address.
#[derive(Debug, Object)]
pub struct EmailChange {
    /// The current password.
    #[oai(validator(max_length = 128))]
    pub password: String,
    /// The new address.
    #[oai(validator(
        max_length = 254,
        pattern = r"^[A-Za-z0-9_%+-]{1,32}(\.[A-Za-z0-9_%+-]{1,15}){0,2}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
    ))]
    pub new_email: String,
    /// With MFA on: the authenticator app's current code.
    #[oai(validator(max_length = 16))]
    pub totp_code: Option<String>,
    /// With MFA on, instead of `totp_code`: an unused recovery code.
    #[oai(validator(max_length = 64))]
    pub recovery_code: Option<String>,
}

/// A password-reset request.
#[derive(Debug, Object)]
pub struct PasswordResetRequest {
    /// The account's email. The answer is the same whether or not it exists.
    #[oai(validator(
        max_length = 254,
        pattern = r"^[A-Za-z0-9_%+-]{1,32}(\.[A-Za-z0-9_%+-]{1,15}){0,2}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
    ))]
    pub email: String,
}

/// A new password, with the reset token sent by email.
#[derive(Debug, Object)]
pub struct PasswordResetConfirmation {
    /// The token, as received.
    #[oai(validator(max_length = 128))]
    pub token: String,
    /// At least 12 characters, not a common password.
    #[oai(validator(min_length = 12, max_length = 128))]
    pub new_password: String,
}

/// How a practice asks for marketing consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum MarketingModeDto {
    /// Nobody receives marketing until they agree (the default).
    OptIn,
    /// Marketing is sent until the person objects.
    OptOut,
}

impl MarketingModeDto {
    const fn as_str(self) -> &'static str {
        match self {
            Self::OptIn => "opt_in",
            Self::OptOut => "opt_out",
        }
    }
}

/// Changes to a practice's settings; absent fields stay as they are.
#[derive(Debug, Object)]
pub struct OrganisationPatch {
    /// The practice's name.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Option<String>,
    /// `opt_in` or `opt_out`.
    pub marketing_mode: Option<MarketingModeDto>,
    /// Whether every role that can see health data (org_admin, provider, staff,
    /// privacy_officer, client) must use MFA.
    pub require_mfa: Option<bool>,
}

fn codes(codes: Vec<Sensitive<String>>) -> RecoveryCodes {
    RecoveryCodes {
        recovery_codes: codes.into_iter().map(Sensitive::into_inner).collect(),
    }
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Identity")]
impl CredentialsApi {
    /// Start TOTP enrolment (password required): the secret and otpauth URI are
    /// shown once; MFA is on only after confirmation with a code.
    #[oai(
        path = "/me/mfa/enrolment",
        method = "post",
        operation_id = "startMfaEnrolment"
    )]
    async fn start_mfa_enrolment(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<PasswordReauthentication>,
    ) -> Result<Created<MfaSetupView>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::Operations)?;
        let setup = self
            .state
            .identity()
            .start_mfa_enrolment(&ctx, Sensitive::new(body.0.password))
            .await?;
        Ok(Created::Created(Json(MfaSetupView {
            secret: setup.secret.into_inner(),
            otpauth_uri: setup.otpauth_uri.into_inner(),
        })))
    }

    /// Confirm TOTP enrolment with a current code (password required): MFA is on,
    /// and ten recovery codes are shown once.
    #[oai(
        path = "/me/mfa/confirmation",
        method = "post",
        operation_id = "confirmMfaEnrolment"
    )]
    async fn confirm_mfa(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<MfaConfirmation>,
    ) -> Result<Found<RecoveryCodes>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::Operations)?;
        let b = body.0;
        let recovery = self
            .state
            .identity()
            .confirm_mfa(&ctx, Sensitive::new(b.password), &Sensitive::new(b.code))
            .await?;
        Ok(Found::Ok(Json(codes(recovery))))
    }

    /// Replace the recovery codes (password and a current code required); the old
    /// ones stop working, the new ones are shown once.
    #[oai(
        path = "/me/mfa/recovery-codes",
        method = "post",
        operation_id = "regenerateRecoveryCodes"
    )]
    async fn regenerate_recovery_codes(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<StrongReauthentication>,
    ) -> Result<Created<RecoveryCodes>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::Operations)?;
        let b = body.0;
        let recovery = self
            .state
            .identity()
            .regenerate_recovery_codes(
                &ctx,
                Sensitive::new(b.password),
                &SecondFactor::from_fields(b.totp_code, b.recovery_code),
            )
            .await?;
        Ok(Created::Created(Json(codes(recovery))))
    }

    /// Turn MFA off (password and a current code required).
    #[oai(
        path = "/me/mfa/deactivation",
        method = "post",
        operation_id = "disableMfa"
    )]
    async fn disable_mfa(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<StrongReauthentication>,
    ) -> Result<Done, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::Operations)?;
        let b = body.0;
        self.state
            .identity()
            .disable_mfa(
                &ctx,
                Sensitive::new(b.password),
                &SecondFactor::from_fields(b.totp_code, b.recovery_code),
            )
            .await?;
        Ok(Done::NoContent)
    }

    /// Change the password (re-authentication required); every other session ends.
    #[oai(path = "/me/password", method = "put", operation_id = "changePassword")]
    async fn change_password(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<PasswordChange>,
    ) -> Result<Done, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::Operations)?;
        // The session kept alive while every other one ends.
        let identity::Credential::Session(current) = auth.0.credential else {
            return Err(ApiError::new(
                ProblemKind::Forbidden,
                "Change the password from a practice member's session.",
            ));
        };
        let b = body.0;
        self.state
            .identity()
            .change_password(
                &ctx,
                current,
                Sensitive::new(b.current_password),
                Sensitive::new(b.new_password),
                &SecondFactor::from_fields(b.totp_code, b.recovery_code),
            )
            .await?;
        Ok(Done::NoContent)
    }

    /// Ask to change the email (re-authentication required): a token goes to the
    /// new address; the old one stays in force until it is redeemed.
    #[oai(
        path = "/me/email-changes",
        method = "post",
        operation_id = "requestEmailChange"
    )]
    async fn request_email_change(
        &self,
        req: &Request,
        auth: SessionAuth,
        body: Json<EmailChange>,
    ) -> Result<Accepted, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::Operations)?;
        let b = body.0;
        self.state
            .identity()
            .request_email_change(
                &ctx,
                Sensitive::new(b.password),
                &SecondFactor::from_fields(b.totp_code, b.recovery_code),
                &b.new_email,
            )
            .await?;
        Ok(Accepted::Accepted)
    }

    /// Confirm an email change with the token sent to the new address.
    #[oai(
        path = "/email-change-confirmations",
        method = "post",
        operation_id = "confirmEmailChange"
    )]
    async fn confirm_email_change(
        &self,
        req: &Request,
        body: Json<TokenRequest>,
    ) -> Result<Done, ApiError> {
        let ctx = anonymous_context(&self.state, req);
        self.state
            .identity()
            .confirm_email_change(&ctx, &Sensitive::new(body.0.token))
            .await?;
        Ok(Done::NoContent)
    }

    /// Ask for a password reset: always 202, whether or not the account exists; a
    /// token valid for one hour is sent to the address if it does.
    #[oai(
        path = "/password-resets",
        method = "post",
        operation_id = "requestPasswordReset"
    )]
    async fn request_password_reset(
        &self,
        req: &Request,
        body: Json<PasswordResetRequest>,
    ) -> Result<Accepted, ApiError> {
        let ctx = anonymous_context(&self.state, req);
        self.state
            .identity()
            .request_password_reset(&ctx, &body.0.email)?;
        Ok(Accepted::Accepted)
    }

    /// Set a new password with a reset token; every session ends and the lockout
    /// is cleared. A weak password is refused and the token still works.
    #[oai(
        path = "/password-reset-confirmations",
        method = "post",
        operation_id = "resetPassword"
    )]
    async fn reset_password(
        &self,
        req: &Request,
        body: Json<PasswordResetConfirmation>,
    ) -> Result<Done, ApiError> {
        let ctx = anonymous_context(&self.state, req);
        let b = body.0;
        self.state
            .identity()
            .reset_password(
                &ctx,
                &Sensitive::new(b.token),
                Sensitive::new(b.new_password),
            )
            .await?;
        Ok(Done::NoContent)
    }

    /// The practice the session acts in (any of its members). Another practice's
    /// id is 404.
    #[oai(
        path = "/organisations/:organisation_id",
        method = "get",
        operation_id = "getOrganisation"
    )]
    async fn get_organisation(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
    ) -> Result<Found<OrganisationView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let organisation = self
            .state
            .identity()
            .organisation(&ctx, OrganisationId::from_uuid(organisation_id.0))
            .await?;
        Ok(Found::Ok(Json((&organisation).into())))
    }

    /// Change the practice's name, marketing mode or MFA requirement (its
    /// `org_admin` only: others get 403; another practice's id is 404). Recorded.
    #[oai(
        path = "/organisations/:organisation_id",
        method = "patch",
        operation_id = "updateOrganisation"
    )]
    async fn update_organisation(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        body: Json<OrganisationPatch>,
    ) -> Result<Found<OrganisationView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let b = body.0;
        let organisation = self
            .state
            .identity()
            .update_organisation(
                &ctx,
                OrganisationId::from_uuid(organisation_id.0),
                OrganisationChanges {
                    name: b.name,
                    marketing_mode: b.marketing_mode.map(|m| m.as_str().to_owned()),
                    require_mfa: b.require_mfa,
                },
            )
            .await?;
        Ok(Found::Ok(Json((&organisation).into())))
    }
}
