//! Self-service on one's own account (C2, U1, D9): profile, preferences, account
//! details, the request to delete the account; a new verification email; and the
//! security-event retention sweep (C7).

use chrono::{DateTime, Utc};
use crypto::IssuedToken;
use kernel::{RequestContext, Sensitive};
use uuid::Uuid;

use super::{IdentityError, IdentityService, unavailable};
use crate::model::{
    AccountStatus, DeletionRequest, NoticeKind, OneTimeToken, SecurityEventKind, TokenPurpose, User,
};
use crate::profile::{Preferences, Profile};
use crate::values::{Email, PersonName, Phone, Profession};

/// A change to one's own account details; `None` leaves a field as it is. The
/// email changes only through its own confirmed flow.
#[derive(Debug, Default)]
pub struct AccountChange {
    /// A new name.
    pub name: Option<PersonName>,
    /// A new phone, or `Some(None)` to remove it.
    pub phone: Option<Option<Phone>>,
    /// A new profession.
    pub profession: Option<Profession>,
}

impl AccountChange {
    /// Whether nothing would change.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.name.is_none() && self.phone.is_none() && self.profession.is_none()
    }
}

impl IdentityService {
    async fn own_account(&self, ctx: &RequestContext) -> Result<User, IdentityError> {
        let id = Self::caller(ctx)?;
        self.ports
            .repository
            .user(id)
            .await?
            .ok_or(IdentityError::Unauthenticated)
    }

    /// The caller's profile (empty when they never wrote one).
    ///
    /// # Errors
    /// [`IdentityError::Unauthenticated`], [`IdentityError::Unavailable`].
    pub async fn profile(&self, ctx: &RequestContext) -> Result<Profile, IdentityError> {
        let id = Self::caller(ctx)?;
        Ok(self.ports.profiles.profile(id).await?.unwrap_or_default())
    }

    /// Replaces the caller's profile.
    ///
    /// # Errors
    /// [`IdentityError::Unauthenticated`], [`IdentityError::Unavailable`].
    pub async fn set_profile(
        &self,
        ctx: &RequestContext,
        profile: Profile,
    ) -> Result<Profile, IdentityError> {
        let person = self.own_account(ctx).await?;
        self.ports
            .profiles
            .save_profile(&person, &profile, ctx.at())
            .await?;
        Ok(profile)
    }

    /// The caller's preferences (the defaults when they never set any).
    ///
    /// # Errors
    /// [`IdentityError::Unauthenticated`], [`IdentityError::Unavailable`].
    pub async fn preferences(&self, ctx: &RequestContext) -> Result<Preferences, IdentityError> {
        let id = Self::caller(ctx)?;
        Ok(self
            .ports
            .profiles
            .preferences(id)
            .await?
            .unwrap_or_default())
    }

    /// Replaces the caller's preferences.
    ///
    /// # Errors
    /// [`IdentityError::Unauthenticated`], [`IdentityError::Unavailable`].
    pub async fn set_preferences(
        &self,
        ctx: &RequestContext,
        preferences: Preferences,
    ) -> Result<Preferences, IdentityError> {
        let id = Self::caller(ctx)?;
        self.ports
            .profiles
            .save_preferences(id, &preferences, ctx.at())
            .await?;
        Ok(preferences)
    }

    /// Changes the caller's name, phone or profession (D9); recorded as a security
    /// event, since an account's details are what recovery and notices rely on.
    ///
    /// # Errors
    /// [`IdentityError::Unauthenticated`], [`IdentityError::Unavailable`].
    pub async fn update_account(
        &self,
        ctx: &RequestContext,
        change: AccountChange,
    ) -> Result<User, IdentityError> {
        let mut person = self.own_account(ctx).await?;
        if change.is_empty() {
            return Ok(person);
        }
        if let Some(name) = change.name {
            person.name = name;
        }
        if let Some(phone) = change.phone {
            person.phone = phone;
        }
        if let Some(profession) = change.profession {
            person.profession = Some(profession);
        }
        self.ports.accounts.update_details(&person).await?;
        self.record(ctx, Some(person.id), SecurityEventKind::AccountUpdated)
            .await;
        Ok(person)
    }

    /// The caller asks for their account to be deleted (D9), confirming with their
    /// password (and a current code when MFA is on). The account is deactivated and every session ended at once, and the
    /// request is recorded for the rights engine, which erases the account and
    /// answers; a confirmation notice is queued.
    ///
    /// # Errors
    /// [`IdentityError::ReauthenticationFailed`], [`IdentityError::Locked`],
    /// [`IdentityError::Unauthenticated`], [`IdentityError::Unavailable`].
    pub async fn request_deletion(
        &self,
        ctx: &RequestContext,
        password: Sensitive<String>,
        factor: &super::SecondFactor,
    ) -> Result<DeletionRequest, IdentityError> {
        // As strong as any credential change: the password, and a current code
        // when MFA is on. Erasure cannot be undone.
        let person = self.reauthenticate_strongly(ctx, password, factor).await?;
        let request = DeletionRequest {
            id: Uuid::now_v7(),
            user: person.id,
            requested_at: ctx.at(),
        };
        self.ports.accounts.request_deletion(&request).await?;
        self.record(ctx, Some(person.id), SecurityEventKind::DeletionRequested)
            .await;
        self.notify(person.id, NoticeKind::DeletionRequested, ctx.at())
            .await?;
        Ok(request)
    }

    /// Sends a new email-verification token to a self-registered account still
    /// pending verification. Answers the same whether or not such an account
    /// exists; counts against the client address's sign-in budget, so it cannot
    /// flood the outbox. Earlier tokens keep working until they expire.
    ///
    /// # Errors
    /// [`IdentityError::Throttled`], [`IdentityError::Unavailable`].
    pub async fn resend_verification(
        &self,
        ctx: &RequestContext,
        email: &str,
    ) -> Result<(), IdentityError> {
        if let Some(address) = ctx.client().address()
            && let Err(retry_after) = self.throttle.attempt(address, ctx.at())
        {
            return Err(IdentityError::Throttled { retry_after });
        }
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let Some((person, credentials)) = self.ports.repository.find_by_email(&email).await? else {
            return Ok(());
        };
        // Only a self-registered account (it has a password) awaiting verification:
        // an account created for someone else is activated with its own token,
        // which checks the age gate; verification must not be a way around it.
        if person.status != AccountStatus::PendingVerification
            || credentials.password_hash.is_none()
        {
            return Ok(());
        }
        let now = ctx.at();
        let (token, hash) = IssuedToken::generate().map_err(unavailable)?.into_parts();
        self.ports
            .repository
            .issue_token(&OneTimeToken {
                hash,
                purpose: TokenPurpose::VerifyEmail,
                user: person.id,
                expires_at: now + self.config.verification_ttl,
            })
            .await?;
        self.notify(person.id, NoticeKind::VerifyEmail { token }, now)
            .await
    }

    /// Deletes security events older than their retention period
    /// ([`super::IdentityConfig::security_event_retention`]); returns how many.
    /// Run by the server's retention job.
    ///
    /// # Errors
    /// [`IdentityError::Unavailable`].
    pub async fn purge_expired_security_events(
        &self,
        now: DateTime<Utc>,
    ) -> Result<u64, IdentityError> {
        Ok(self
            .ports
            .events
            .purge_before(now - self.config.security_event_retention)
            .await?)
    }
}
