//! Strong sign-in and credential changes: TOTP MFA with recovery codes (issue 3,
//! item 4), re-authenticated password, email and MFA changes, password reset by
//! one-time token (item 5), and a practice's settings, including whether it
//! requires MFA (item 1). Every change is a security event (C7, U6) and a
//! transactional notice (U3).
//!
//! **Which roles must use MFA when a practice requires it.** Every role that can
//! see health data: `org_admin`, `provider`, `staff`, `privacy_officer` and
//! `client` ([`MFA_ROLES`]). `auditor` is left out: an auditor reads audit
//! metadata (who touched which record, when, why), never the health content, so the
//! practice's requirement does not reach them (the person may still turn MFA on).
//!
//! **How a person without MFA gets in when it is required.** Sign-in with the right
//! password still succeeds, but [`IdentityService::mfa_enrolment_pending`] marks
//! the session: the server lets it only start and confirm MFA enrolment and sign
//! out; every other operation answers 403 `mfa-enrolment-required`. The check is
//! made on every request from the current settings, so turning the requirement on
//! restricts existing sessions at once, and confirming enrolment lifts it at once.

use chrono::TimeDelta;
use crypto::{IssuedToken, TokenHash, TotpSecret};
use kernel::{RequestContext, Role, Sensitive, UserId};

use super::{IdentityError, IdentityService, unavailable};
use crate::Authenticated;
use crate::model::{
    AccountStatus, MfaEnrolment, NoticeKind, OneTimeToken, Organisation, SecurityEventKind,
    SessionId, TokenPurpose, User,
};
use crate::values::{Email, InvalidValue, MarketingMode, NewPassword, OrganisationName};

/// Roles that must use MFA in a practice that requires it: those that can see
/// health data.
pub const MFA_ROLES: [Role; 5] = [
    Role::OrgAdmin,
    Role::Provider,
    Role::Staff,
    Role::PrivacyOfficer,
    Role::Client,
];

/// How long a password-reset token works.
const RESET_TTL: TimeDelta = TimeDelta::hours(1);

/// The second factor given with a password, when there is one.
#[derive(Debug, Clone, Default)]
pub enum SecondFactor {
    /// None given.
    #[default]
    None,
    /// A 6-digit code from the authenticator app.
    Totp(Sensitive<String>),
    /// One of the person's recovery codes (each works once).
    RecoveryCode(Sensitive<String>),
}

impl SecondFactor {
    /// From the optional fields of a request: a TOTP code wins over a recovery code.
    #[must_use]
    pub fn from_fields(totp_code: Option<String>, recovery_code: Option<String>) -> Self {
        match (totp_code, recovery_code) {
            (Some(code), _) => Self::Totp(Sensitive::new(code)),
            (None, Some(code)) => Self::RecoveryCode(Sensitive::new(code)),
            (None, None) => Self::None,
        }
    }
}

/// A change to a practice's settings; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct OrganisationChanges {
    /// The new name.
    pub name: Option<String>,
    /// `opt_in` or `opt_out`.
    pub marketing_mode: Option<String>,
    /// Whether every role that can see health data must use MFA.
    pub require_mfa: Option<bool>,
}

/// A new TOTP enrolment: shown once.
#[derive(Debug)]
pub struct MfaSetup {
    /// The secret, base32 without padding.
    pub secret: Sensitive<String>,
    /// The `otpauth://totp/...` URI for a QR code.
    pub otpauth_uri: Sensitive<String>,
}

const fn invalid_code() -> InvalidValue {
    InvalidValue {
        field: "code",
        rule: "must be the authenticator's current 6-digit code",
    }
}

fn recovery_codes() -> Result<(Vec<Sensitive<String>>, Vec<TokenHash>), IdentityError> {
    let mut codes = Vec::with_capacity(crypto::totp::RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(crypto::totp::RECOVERY_CODES);
    for _ in 0..crypto::totp::RECOVERY_CODES {
        let (code, hash) = crypto::totp::recovery_code().map_err(unavailable)?;
        codes.push(code);
        hashes.push(hash);
    }
    Ok((codes, hashes))
}

impl IdentityService {
    /// The person's MFA enrolment, when MFA is on.
    async fn mfa_on(&self, user: UserId) -> Result<Option<MfaEnrolment>, IdentityError> {
        Ok(self
            .ports
            .credentials
            .mfa(user)
            .await?
            .filter(MfaEnrolment::is_on))
    }

    /// Whether `factor` is a valid second factor for `user` now: a TOTP code of a
    /// step not yet used (the step is then recorded, atomically, so the code cannot
    /// be replayed), or an unused recovery code (then spent).
    async fn second_factor_valid(
        &self,
        ctx: &RequestContext,
        user: UserId,
        mfa: &MfaEnrolment,
        factor: &SecondFactor,
    ) -> Result<bool, IdentityError> {
        match factor {
            SecondFactor::None => Ok(false),
            SecondFactor::Totp(code) => {
                match mfa.secret.verify(code.expose(), ctx.at().timestamp()) {
                    Some(step) => Ok(self.ports.credentials.accept_step(user, step).await?),
                    None => Ok(false),
                }
            }
            SecondFactor::RecoveryCode(code) => {
                let hash = crypto::totp::recovery_code_hash(code.expose());
                let used = self
                    .ports
                    .credentials
                    .use_recovery_code(user, &hash, ctx.at())
                    .await?;
                if used {
                    self.record(ctx, Some(user), SecurityEventKind::RecoveryCodeUsed)
                        .await;
                    self.notify(user, NoticeKind::RecoveryCodeUsed, ctx.at())
                        .await?;
                }
                Ok(used)
            }
        }
    }

    /// The second step of a sign-in whose password was right. Without MFA there is
    /// nothing to check. With MFA on, no code is [`IdentityError::MfaRequired`]
    /// (not a failure: the usual two-step sign-in), and a wrong, replayed or spent
    /// code counts toward the lockout exactly like a wrong password.
    pub(super) async fn second_factor_at_sign_in(
        &self,
        ctx: &RequestContext,
        user: &User,
        factor: SecondFactor,
    ) -> Result<(), IdentityError> {
        let Some(mfa) = self.mfa_on(user.id).await? else {
            return Ok(());
        };
        if matches!(factor, SecondFactor::None) {
            return Err(IdentityError::MfaRequired);
        }
        if self
            .second_factor_valid(ctx, user.id, &mfa, &factor)
            .await?
        {
            return Ok(());
        }
        Err(self.failed_attempt(ctx, user).await?)
    }

    /// Re-authentication for a credential change: the current password and, once
    /// MFA is on, a current TOTP or recovery code. Wrong ones count toward the
    /// lockout; a missing code is [`IdentityError::SecondFactorRequired`].
    pub(super) async fn reauthenticate_strongly(
        &self,
        ctx: &RequestContext,
        password: Sensitive<String>,
        factor: &SecondFactor,
    ) -> Result<User, IdentityError> {
        let user = self.reauthenticate(ctx, password).await?;
        let Some(mfa) = self.mfa_on(user.id).await? else {
            return Ok(user);
        };
        if matches!(factor, SecondFactor::None) {
            return Err(IdentityError::SecondFactorRequired);
        }
        if self.second_factor_valid(ctx, user.id, &mfa, factor).await? {
            return Ok(user);
        }
        match self.failed_attempt(ctx, &user).await? {
            locked @ IdentityError::Locked { .. } => Err(locked),
            _ => Err(IdentityError::ReauthenticationFailed),
        }
    }

    /// Whether `caller`'s session is restricted to MFA enrolment and sign-out: their
    /// practice requires MFA, they hold a role that can see health data
    /// ([`MFA_ROLES`]), and their MFA is not on.
    ///
    /// # Errors
    /// [`IdentityError::Unavailable`].
    pub async fn mfa_enrolment_pending(
        &self,
        caller: &Authenticated,
    ) -> Result<bool, IdentityError> {
        // An API key is not a person and has no second factor; the operator acts in
        // no practice.
        let (Some(user), Some(organisation), true) = (
            caller.actor.user(),
            caller.organisation,
            caller.credential.is_person(),
        ) else {
            return Ok(false);
        };
        if !caller.actor.roles().contains_any(&MFA_ROLES) {
            return Ok(false);
        }
        let required = self
            .ports
            .repository
            .organisation(organisation)
            .await?
            .is_some_and(|o| o.require_mfa);
        if !required {
            return Ok(false);
        }
        Ok(self.mfa_on(user).await?.is_none())
    }

    /// Starts TOTP enrolment (re-authenticated by password): a new secret, shown
    /// once and stored sealed, pending until confirmed with a code. Starting again
    /// replaces a pending secret.
    ///
    /// # Errors
    /// [`IdentityError::ReauthenticationFailed`], [`IdentityError::Locked`],
    /// [`IdentityError::MfaAlreadyOn`], [`IdentityError::Unavailable`].
    pub async fn start_mfa_enrolment(
        &self,
        ctx: &RequestContext,
        password: Sensitive<String>,
    ) -> Result<MfaSetup, IdentityError> {
        let user = self.reauthenticate(ctx, password).await?;
        if self.mfa_on(user.id).await?.is_some() {
            return Err(IdentityError::MfaAlreadyOn);
        }
        let secret = TotpSecret::generate().map_err(unavailable)?;
        if !self
            .ports
            .credentials
            .start_mfa(user.id, &secret, ctx.at())
            .await?
        {
            return Err(IdentityError::MfaAlreadyOn);
        }
        self.record(ctx, Some(user.id), SecurityEventKind::MfaEnrolmentStarted)
            .await;
        Ok(MfaSetup {
            secret: secret.to_base32(),
            otpauth_uri: secret.otpauth_uri(user.email.as_str()),
        })
    }

    /// Confirms a pending enrolment with a current code (re-authenticated by
    /// password): MFA is on, and 10 recovery codes are returned, once; only their
    /// hashes are kept.
    ///
    /// # Errors
    /// [`IdentityError::Invalid`] (wrong code), [`IdentityError::MfaAlreadyOn`],
    /// [`IdentityError::MfaNotOn`] (nothing pending),
    /// [`IdentityError::ReauthenticationFailed`], [`IdentityError::Locked`],
    /// [`IdentityError::Unavailable`].
    pub async fn confirm_mfa(
        &self,
        ctx: &RequestContext,
        password: Sensitive<String>,
        code: &Sensitive<String>,
    ) -> Result<Vec<Sensitive<String>>, IdentityError> {
        let user = self.reauthenticate(ctx, password).await?;
        let enrolment = self
            .ports
            .credentials
            .mfa(user.id)
            .await?
            .ok_or(IdentityError::MfaNotOn)?;
        if enrolment.is_on() {
            return Err(IdentityError::MfaAlreadyOn);
        }
        let step = enrolment
            .secret
            .verify(code.expose(), ctx.at().timestamp())
            .ok_or(IdentityError::Invalid(invalid_code()))?;
        let (codes, hashes) = recovery_codes()?;
        if !self
            .ports
            .credentials
            .confirm_mfa(user.id, step, &hashes, ctx.at())
            .await?
        {
            return Err(IdentityError::MfaNotOn);
        }
        self.record(ctx, Some(user.id), SecurityEventKind::MfaEnabled)
            .await;
        self.notify(user.id, NoticeKind::MfaEnabled, ctx.at())
            .await?;
        Ok(codes)
    }

    /// Replaces the recovery codes (re-authenticated by password and a current
    /// code): the old ones stop working; the new ones are returned once.
    ///
    /// # Errors
    /// [`IdentityError::MfaNotOn`], [`IdentityError::ReauthenticationFailed`],
    /// [`IdentityError::SecondFactorRequired`], [`IdentityError::Locked`],
    /// [`IdentityError::Unavailable`].
    pub async fn regenerate_recovery_codes(
        &self,
        ctx: &RequestContext,
        password: Sensitive<String>,
        factor: &SecondFactor,
    ) -> Result<Vec<Sensitive<String>>, IdentityError> {
        let user = self.reauthenticate_strongly(ctx, password, factor).await?;
        if self.mfa_on(user.id).await?.is_none() {
            return Err(IdentityError::MfaNotOn);
        }
        let (codes, hashes) = recovery_codes()?;
        self.ports
            .credentials
            .replace_recovery_codes(user.id, &hashes, ctx.at())
            .await?;
        self.record(
            ctx,
            Some(user.id),
            SecurityEventKind::RecoveryCodesRegenerated,
        )
        .await;
        self.notify(user.id, NoticeKind::RecoveryCodesRegenerated, ctx.at())
            .await?;
        Ok(codes)
    }

    /// Turns MFA off (re-authenticated by password and a current code); the secret
    /// and every recovery code are deleted. In a practice that requires MFA the
    /// person's sessions are then restricted to enrolling again.
    ///
    /// # Errors
    /// [`IdentityError::MfaNotOn`], [`IdentityError::ReauthenticationFailed`],
    /// [`IdentityError::SecondFactorRequired`], [`IdentityError::Locked`],
    /// [`IdentityError::Unavailable`].
    pub async fn disable_mfa(
        &self,
        ctx: &RequestContext,
        password: Sensitive<String>,
        factor: &SecondFactor,
    ) -> Result<(), IdentityError> {
        let user = self.reauthenticate_strongly(ctx, password, factor).await?;
        if self.mfa_on(user.id).await?.is_none() {
            return Err(IdentityError::MfaNotOn);
        }
        self.ports.credentials.disable_mfa(user.id).await?;
        self.record(ctx, Some(user.id), SecurityEventKind::MfaDisabled)
            .await;
        self.notify(user.id, NoticeKind::MfaDisabled, ctx.at())
            .await?;
        Ok(())
    }

    /// Changes the password (re-authenticated): the new one follows the sign-up
    /// policy, and every other session of the person ends (`current` stays).
    ///
    /// # Errors
    /// [`IdentityError::Invalid`] (checked first: nothing counts or changes),
    /// [`IdentityError::ReauthenticationFailed`], [`IdentityError::SecondFactorRequired`],
    /// [`IdentityError::Locked`], [`IdentityError::Unavailable`].
    pub async fn change_password(
        &self,
        ctx: &RequestContext,
        current: SessionId,
        current_password: Sensitive<String>,
        new_password: Sensitive<String>,
        factor: &SecondFactor,
    ) -> Result<(), IdentityError> {
        let new_password = NewPassword::parse(new_password)?;
        let user = self
            .reauthenticate_strongly(ctx, current_password, factor)
            .await?;
        let hash = self.hash_password(new_password).await?;
        self.ports
            .credentials
            .change_password(user.id, &hash, current, ctx.at())
            .await?;
        self.record(ctx, Some(user.id), SecurityEventKind::PasswordChanged)
            .await;
        self.notify(user.id, NoticeKind::PasswordChanged, ctx.at())
            .await?;
        Ok(())
    }

    async fn hash_password(&self, password: NewPassword) -> Result<String, IdentityError> {
        Ok(self
            .on_hashing_pool(move |hasher| hasher.hash(password.as_sensitive()))
            .await?
            .map_err(unavailable)?
            .to_phc_string())
    }

    /// Asks to change the email (re-authenticated): a one-time token goes to the
    /// NEW address; the old one stays in force until the token is redeemed.
    ///
    /// # Errors
    /// [`IdentityError::Invalid`], [`IdentityError::EmailTaken`],
    /// [`IdentityError::ReauthenticationFailed`], [`IdentityError::SecondFactorRequired`],
    /// [`IdentityError::Locked`], [`IdentityError::Unavailable`].
    pub async fn request_email_change(
        &self,
        ctx: &RequestContext,
        password: Sensitive<String>,
        factor: &SecondFactor,
        new_email: &str,
    ) -> Result<(), IdentityError> {
        let new_email = Email::parse(new_email)?;
        let user = self.reauthenticate_strongly(ctx, password, factor).await?;
        if self
            .ports
            .repository
            .find_by_email(&new_email)
            .await?
            .is_some()
        {
            return Err(IdentityError::EmailTaken);
        }
        let now = ctx.at();
        let (token, hash) = IssuedToken::generate().map_err(unavailable)?.into_parts();
        self.ports
            .credentials
            .start_email_change(
                &OneTimeToken {
                    hash,
                    purpose: TokenPurpose::ChangeEmail,
                    user: user.id,
                    expires_at: now + self.config.verification_ttl,
                },
                &new_email,
                now,
            )
            .await?;
        self.record(ctx, Some(user.id), SecurityEventKind::EmailChangeRequested)
            .await;
        self.notify(
            user.id,
            NoticeKind::ConfirmEmailChange {
                new_email: Sensitive::new(new_email.as_str().to_owned()),
                token,
            },
            now,
        )
        .await
    }

    /// Redeems an email-change token (public: the token is the proof): the account
    /// switches to the new address, and the OLD address is told.
    ///
    /// # Errors
    /// [`IdentityError::Token`], [`IdentityError::EmailTaken`] (taken meanwhile;
    /// the token still works once the clash is gone), [`IdentityError::Unavailable`].
    pub async fn confirm_email_change(
        &self,
        ctx: &RequestContext,
        token: &Sensitive<String>,
    ) -> Result<(), IdentityError> {
        let hash = TokenHash::of_presented(token.expose());
        let (user, previous) = self
            .ports
            .credentials
            .change_email(&hash, ctx.at())
            .await?
            .map_err(IdentityError::Token)?;
        self.record(ctx, Some(user), SecurityEventKind::EmailChanged)
            .await;
        self.notify(
            user,
            NoticeKind::EmailChanged {
                previous_email: Sensitive::new(previous.as_str().to_owned()),
            },
            ctx.at(),
        )
        .await
    }

    /// Asks for a password reset by email (public). The answer is the same whether
    /// or not the account exists, and it is given before the account is even
    /// looked up: the lookup, the token (1 hour) and the notice happen in the
    /// background, so neither the answer nor its timing reveals an account.
    ///
    /// # Errors
    /// [`IdentityError::Invalid`] (not an email address at all),
    /// [`IdentityError::Throttled`] (the sign-in budget of the client address).
    pub fn request_password_reset(
        &self,
        ctx: &RequestContext,
        email: &str,
    ) -> Result<(), IdentityError> {
        let email = Email::parse(email)?;
        if let Some(address) = ctx.client().address()
            && let Err(retry_after) = self.throttle.attempt(address, ctx.at())
        {
            return Err(IdentityError::Throttled { retry_after });
        }
        let this = self.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(err) = this.issue_password_reset(&ctx, &email).await {
                tracing::error!(error = %err, "password reset not issued");
            }
        });
        Ok(())
    }

    async fn issue_password_reset(
        &self,
        ctx: &RequestContext,
        email: &Email,
    ) -> Result<(), IdentityError> {
        let found = self.ports.repository.find_by_email(email).await?;
        // Only an account in use: a reset must not activate one still pending
        // (created for a client who has not activated it, perhaps under 13), nor
        // reopen one that is disabled, frozen or erased.
        let Some((user, _)) = found.filter(|(u, _)| u.status == AccountStatus::Active) else {
            self.record(ctx, None, SecurityEventKind::PasswordResetRequested)
                .await;
            return Ok(());
        };
        let now = ctx.at();
        let (token, hash) = IssuedToken::generate().map_err(unavailable)?.into_parts();
        self.ports
            .repository
            .issue_token(&OneTimeToken {
                hash,
                purpose: TokenPurpose::ResetPassword,
                user: user.id,
                expires_at: now + RESET_TTL,
            })
            .await?;
        self.record(
            ctx,
            Some(user.id),
            SecurityEventKind::PasswordResetRequested,
        )
        .await;
        self.notify(user.id, NoticeKind::ResetPassword { token }, now)
            .await
    }

    /// Sets a new password with a reset token (public). A weak password is refused
    /// before the token is touched, so it still works; on success every session
    /// ends and the lockout is cleared.
    ///
    /// # Errors
    /// [`IdentityError::Invalid`], [`IdentityError::Token`], [`IdentityError::Unavailable`].
    pub async fn reset_password(
        &self,
        ctx: &RequestContext,
        token: &Sensitive<String>,
        new_password: Sensitive<String>,
    ) -> Result<(), IdentityError> {
        let new_password = NewPassword::parse(new_password)?;
        let hash = self.hash_password(new_password).await?;
        let token = TokenHash::of_presented(token.expose());
        let user = self
            .ports
            .credentials
            .reset_password(&token, &hash, ctx.at())
            .await?
            .map_err(IdentityError::Token)?;
        self.record(ctx, Some(user), SecurityEventKind::PasswordReset)
            .await;
        self.notify(user, NoticeKind::PasswordReset, ctx.at()).await
    }

    /// The practice the caller's session acts in. Another practice's id is
    /// [`IdentityError::NotFound`], as for one that does not exist.
    ///
    /// # Errors
    /// [`IdentityError::NotFound`], [`IdentityError::Unavailable`].
    pub async fn organisation(
        &self,
        ctx: &RequestContext,
        id: kernel::OrganisationId,
    ) -> Result<Organisation, IdentityError> {
        Self::caller(ctx)?;
        if ctx.organisation() != Some(id) || ctx.actor().roles().is_empty() {
            return Err(IdentityError::NotFound);
        }
        self.ports
            .repository
            .organisation(id)
            .await?
            .ok_or(IdentityError::NotFound)
    }

    /// Changes the practice's settings (its `org_admin` only); recorded as a
    /// security event. Nothing changes when any field is invalid.
    ///
    /// # Errors
    /// [`IdentityError::NotFound`] (another practice), [`IdentityError::Forbidden`]
    /// (not its `org_admin`), [`IdentityError::Invalid`], [`IdentityError::Unavailable`].
    pub async fn update_organisation(
        &self,
        ctx: &RequestContext,
        id: kernel::OrganisationId,
        changes: OrganisationChanges,
    ) -> Result<Organisation, IdentityError> {
        let mut organisation = self.organisation(ctx, id).await?;
        if !ctx.actor().has_role(Role::OrgAdmin) {
            return Err(IdentityError::Forbidden(super::ROLE_FORBIDS));
        }
        if let Some(name) = &changes.name {
            organisation.name = OrganisationName::parse(name)?;
        }
        if let Some(mode) = &changes.marketing_mode {
            organisation.marketing_mode =
                MarketingMode::parse(mode).ok_or(IdentityError::Invalid(InvalidValue {
                    field: "marketing_mode",
                    rule: "must be opt_in or opt_out",
                }))?;
        }
        if let Some(required) = changes.require_mfa {
            organisation.require_mfa = required;
        }
        self.ports
            .credentials
            .update_organisation(&organisation)
            .await?;
        self.record(
            ctx,
            ctx.actor().user(),
            SecurityEventKind::OrganisationSettingsChanged,
        )
        .await;
        Ok(organisation)
    }
}
