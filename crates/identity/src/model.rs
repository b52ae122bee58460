//! The identity context's records: practices, people, memberships, sessions,
//! one-time tokens, security events and notices.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use crypto::TokenHash;
use kernel::{OrganisationId, Role, SubjectId, UserId};
use uuid::Uuid;

mod people;

pub use people::{DeletionFlag, Guardianship, Invitation, PracticeMember, RoleRemoval};

use crate::values::{
    DataRegion, Email, MarketingMode, OrganisationName, PersonName, Phone, Profession,
};

/// A session's id (not its token: the token is a secret, the id is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Uuid);

impl SessionId {
    /// A fresh, time-ordered id.
    #[must_use]
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps a stored id.
    #[must_use]
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The raw id.
    #[must_use]
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for SessionId {
    fn default() -> Self {
        Self::new()
    }
}

/// A practice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    /// Its id.
    pub id: OrganisationId,
    /// Its name.
    pub name: OrganisationName,
    /// Where its data is stored (O2).
    pub region: DataRegion,
    /// How it asks for marketing consent (U4).
    pub marketing_mode: MarketingMode,
    /// Whether every role that can see health data must use MFA.
    pub require_mfa: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Whether an account can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// Created; the email is not yet verified.
    PendingVerification,
    /// In use.
    Active,
    /// Switched off by an administrator or on the person's request; no session works.
    Disabled,
    /// Erased on a rights request: name, email and phone overwritten, credentials
    /// gone. The row remains only so that other records can point at it.
    Erased,
    /// Found to belong to a child under 13 (O1): refused like a disabled account,
    /// every session ended, flagged for deletion, and kept frozen until erased.
    Frozen,
}

impl AccountStatus {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PendingVerification => "pending_verification",
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Erased => "erased",
            Self::Frozen => "frozen",
        }
    }

    /// Parses [`AccountStatus::as_str`]'s output.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::PendingVerification,
            Self::Active,
            Self::Disabled,
            Self::Erased,
            Self::Frozen,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// A person who can sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Their id.
    pub id: UserId,
    /// Their id as a data subject (keys, consent, audit, rights).
    pub subject: SubjectId,
    /// The practice they joined first; its key hierarchy holds their data key.
    pub home_organisation: OrganisationId,
    /// Their name.
    pub name: PersonName,
    /// Their email, unique across Custodia.
    pub email: Email,
    /// Their phone.
    pub phone: Option<Phone>,
    /// Their profession (providers).
    pub profession: Option<Profession>,
    /// Whether the account can be used.
    pub status: AccountStatus,
    /// When the email was verified.
    pub email_verified_at: Option<DateTime<Utc>>,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

/// What a sign-in attempt needs to know about an account's password and lockout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The PHC-format password hash, if a password is set.
    pub password_hash: Option<String>,
    /// Consecutive failed attempts since the last success.
    pub failed_attempts: u32,
    /// Sign-in is refused until then.
    pub locked_until: Option<DateTime<Utc>>,
}

/// A person's role in a practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The person.
    pub user: UserId,
    /// The practice.
    pub organisation: OrganisationId,
    /// The role.
    pub role: Role,
    /// Since when.
    pub created_at: DateTime<Utc>,
}

/// A signed-in session. The bearer token is stored only as its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Its id.
    pub id: SessionId,
    /// Whose.
    pub user: UserId,
    /// The practice it acts in.
    pub organisation: OrganisationId,
    /// SHA-256 of the bearer token.
    pub token_hash: TokenHash,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it was last used (for the idle timeout).
    pub last_seen_at: DateTime<Utc>,
    /// When it ends regardless of use (the absolute lifetime).
    pub expires_at: DateTime<Utc>,
    /// When it was ended, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The client address it was started from.
    pub client_address: Option<IpAddr>,
    /// The user agent it was started from.
    pub user_agent: Option<String>,
}

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Proves control of the email address.
    VerifyEmail,
    /// Activates an account created for someone else (a client, a member, a
    /// guardian): sets its password and proves the address.
    ActivateAccount,
    /// Sets a new password without the old one (1 hour).
    ResetPassword,
    /// Proves control of a new email address before it replaces the old one.
    ChangeEmail,
}

impl TokenPurpose {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ActivateAccount => "activate_account",
            Self::ResetPassword => "reset_password",
            Self::ChangeEmail => "change_email",
        }
    }
}

/// A one-time token, stored as its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeToken {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// What it is for.
    pub purpose: TokenPurpose,
    /// Whose.
    pub user: UserId,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Why a one-time token could not be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// No such token (or one for another purpose).
    Unknown,
    /// It expired.
    Expired,
    /// It was already used.
    Used,
}

/// Kinds of security event (C7, U6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityEventKind {
    /// A successful sign-in.
    SignInSucceeded,
    /// A failed sign-in (wrong password, unknown account, locked).
    SignInFailed,
    /// The account was locked after repeated failures.
    AccountLocked,
    /// A session was ended by its owner.
    SessionRevoked,
    /// Every session of the account was ended.
    AllSessionsRevoked,
    /// The email address was verified.
    EmailVerified,
    /// A practice and its first account were created.
    AccountCreated,
    /// The person changed their account details (name, phone, profession).
    AccountUpdated,
    /// The person asked for their account to be deleted; it was deactivated.
    DeletionRequested,
    /// An account created for someone was activated with its token.
    AccountActivated,
    /// A role in a practice was given to the account.
    RoleGranted,
    /// A role in a practice was taken from the account.
    RoleRemoved,
    /// An administrator disabled the account; its sessions were ended.
    AccountDisabled,
    /// An administrator enabled the account again.
    AccountEnabled,
    /// The account was found to belong to a child under 13: frozen, its sessions
    /// ended, flagged for deletion (O1).
    AccountFrozen,
    /// A guardian was linked to the account (a minor's).
    GuardianLinked,
    /// MFA enrolment was started (a secret issued, not yet confirmed).
    MfaEnrolmentStarted,
    /// MFA was turned on.
    MfaEnabled,
    /// MFA was turned off.
    MfaDisabled,
    /// New recovery codes replaced the old ones.
    RecoveryCodesRegenerated,
    /// A recovery code was used (and is now spent).
    RecoveryCodeUsed,
    /// The password was changed by its owner.
    PasswordChanged,
    /// A password reset was asked for.
    PasswordResetRequested,
    /// The password was reset with a one-time token.
    PasswordReset,
    /// A change of email was asked for (a token sent to the new address).
    EmailChangeRequested,
    /// The email address was changed.
    EmailChanged,
    /// A practice's settings (name, marketing mode, MFA requirement) were changed.
    OrganisationSettingsChanged,
    /// An administrator created an API key (recorded on their account).
    ApiKeyCreated,
    /// An administrator revoked an API key (recorded on their account).
    ApiKeyRevoked,
    /// The account was made a platform operator.
    OperatorGranted,
}

impl SecurityEventKind {
    /// Every kind, to read a stored kind back.
    pub const ALL: [Self; 30] = [
        Self::SignInSucceeded,
        Self::SignInFailed,
        Self::AccountLocked,
        Self::SessionRevoked,
        Self::AllSessionsRevoked,
        Self::EmailVerified,
        Self::AccountCreated,
        Self::AccountUpdated,
        Self::DeletionRequested,
        Self::AccountActivated,
        Self::RoleGranted,
        Self::RoleRemoved,
        Self::AccountDisabled,
        Self::AccountEnabled,
        Self::AccountFrozen,
        Self::GuardianLinked,
        Self::MfaEnrolmentStarted,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::RecoveryCodesRegenerated,
        Self::RecoveryCodeUsed,
        Self::PasswordChanged,
        Self::PasswordResetRequested,
        Self::PasswordReset,
        Self::EmailChangeRequested,
        Self::EmailChanged,
        Self::OrganisationSettingsChanged,
        Self::ApiKeyCreated,
        Self::ApiKeyRevoked,
        Self::OperatorGranted,
    ];

    /// Parses [`SecurityEventKind::as_str`]'s output.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }

    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SignInSucceeded => "sign_in_succeeded",
            Self::SignInFailed => "sign_in_failed",
            Self::AccountLocked => "account_locked",
            Self::SessionRevoked => "session_revoked",
            Self::AllSessionsRevoked => "all_sessions_revoked",
            Self::EmailVerified => "email_verified",
            Self::AccountCreated => "account_created",
            Self::AccountUpdated => "account_updated",
            Self::DeletionRequested => "deletion_requested",
            Self::AccountActivated => "account_activated",
            Self::RoleGranted => "role_granted",
            Self::RoleRemoved => "role_removed",
            Self::AccountDisabled => "account_disabled",
            Self::AccountEnabled => "account_enabled",
            Self::AccountFrozen => "account_frozen",
            Self::GuardianLinked => "guardian_linked",
            Self::MfaEnrolmentStarted => "mfa_enrolment_started",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::PasswordChanged => "password_changed",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordReset => "password_reset",
            Self::EmailChangeRequested => "email_change_requested",
            Self::EmailChanged => "email_changed",
            Self::OrganisationSettingsChanged => "organisation_settings_changed",
            Self::ApiKeyCreated => "api_key_created",
            Self::ApiKeyRevoked => "api_key_revoked",
            Self::OperatorGranted => "operator_granted",
        }
    }
}

/// One security event: time (UTC), client address, user agent, and a coarse
/// location only (a country code, never more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// Its id.
    pub id: Uuid,
    /// Whose account, when known.
    pub user: Option<UserId>,
    /// What happened.
    pub kind: SecurityEventKind,
    /// When.
    pub at: DateTime<Utc>,
    /// From which address.
    pub client_address: Option<IpAddr>,
    /// With which user agent.
    pub user_agent: Option<String>,
    /// ISO 3166-1 alpha-2 country, from a trusted proxy header.
    pub country: Option<String>,
}

/// A transactional notice to a person. Always sent (U3): these are not marketing.
#[derive(Clone, PartialEq, Eq)]
pub enum NoticeKind {
    /// "Verify your email": carries the one-time token, which only the outbox sees.
    VerifyEmail {
        /// The token to redeem.
        token: kernel::Sensitive<String>,
    },
    /// "New sign-in to your account".
    NewSignIn,
    /// "Your account was locked after repeated failed sign-ins".
    AccountLocked,
    /// "We received your request to delete your account".
    DeletionRequested,
    /// "An account was created for you": carries the activation token, which only
    /// the outbox sees.
    ActivateAccount {
        /// The token to redeem.
        token: kernel::Sensitive<String>,
    },
    /// "You were given a role in a practice" (an existing account).
    RoleGranted,
    /// "Your account was disabled by your practice's administrator".
    AccountDisabled,
    /// "Your account was enabled again".
    AccountEnabled,
    /// "You were linked as the guardian of a client" (an existing account).
    GuardianLinked,
    /// "MFA was turned on for your account".
    MfaEnabled,
    /// "MFA was turned off for your account".
    MfaDisabled,
    /// "New recovery codes were made; the old ones no longer work".
    RecoveryCodesRegenerated,
    /// "A recovery code was used to sign in".
    RecoveryCodeUsed,
    /// "Your password was changed".
    PasswordChanged,
    /// "Reset your password": carries the one-time token.
    ResetPassword {
        /// The token to redeem.
        token: kernel::Sensitive<String>,
    },
    /// "Your password was reset".
    PasswordReset,
    /// "Confirm your new email address": sent to the NEW address, which it carries
    /// with the token (both sealed in the outbox).
    ConfirmEmailChange {
        /// The new address, where this notice goes.
        new_email: kernel::Sensitive<String>,
        /// The token to redeem.
        token: kernel::Sensitive<String>,
    },
    /// "Your email address was changed": sent to the OLD address, which it carries.
    EmailChanged {
        /// The previous address, where this notice goes.
        previous_email: kernel::Sensitive<String>,
    },
    /// "A practice invited you to take a role": accept or ignore it from your
    /// own account (`GET /v1/me/invitations`).
    InvitedToPractice,
    /// "A policy you agreed under changed materially" (O3): names the new
    /// version (`document@version`).
    PolicyChanged {
        /// The version now published.
        policy: String,
    },
    /// A notice about the practice another context sends its role holders (e.g.
    /// billing to the practice's administrators: a payment failed). Carries no
    /// health data and no secret.
    Practice {
        /// The stable machine name, e.g. `billing_payment_failed`.
        kind: &'static str,
        /// What happened, in one sentence.
        summary: String,
    },
}

impl NoticeKind {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::VerifyEmail { .. } => "verify_email",
            Self::NewSignIn => "new_sign_in",
            Self::AccountLocked => "account_locked",
            Self::DeletionRequested => "deletion_requested",
            Self::ActivateAccount { .. } => "activate_account",
            Self::RoleGranted => "role_granted",
            Self::AccountDisabled => "account_disabled",
            Self::AccountEnabled => "account_enabled",
            Self::GuardianLinked => "guardian_linked",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::PasswordChanged => "password_changed",
            Self::ResetPassword { .. } => "reset_password",
            Self::PasswordReset => "password_reset",
            Self::ConfirmEmailChange { .. } => "confirm_email_change",
            Self::EmailChanged { .. } => "email_changed",
            Self::InvitedToPractice => "invited_to_practice",
            Self::PolicyChanged { .. } => "policy_changed",
            Self::Practice { kind, .. } => kind,
        }
    }
}

impl std::fmt::Debug for NoticeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A notice to one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// To whom.
    pub user: UserId,
    /// What.
    pub kind: NoticeKind,
    /// When it was queued.
    pub at: DateTime<Utc>,
}

/// A person's self-service request to delete their account (D9). The account is
/// deactivated at once; the rights engine erases it and answers the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionRequest {
    /// Its id.
    pub id: Uuid,
    /// Whose account.
    pub user: UserId,
    /// When it was received.
    pub requested_at: DateTime<Utc>,
}

/// A notice as the person's data export shows it: what and when, never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRecord {
    /// Its id.
    pub id: Uuid,
    /// `NoticeKind::as_str`.
    pub kind: String,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When it was sent, if it was.
    pub sent_at: Option<DateTime<Utc>>,
}

/// What erasing one account did, record by record (see `identity::personal_data`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountErasure {
    /// Records deleted, by kind (`session`, `membership`, ...) and id.
    pub deleted: Vec<(&'static str, Uuid)>,
    /// Security events kept, their person replaced by a keyed pseudonym: id and time.
    pub pseudonymised_events: Vec<(Uuid, DateTime<Utc>)>,
    /// Deletion requests kept as the record of what was asked and done.
    pub kept_requests: Vec<Uuid>,
}

/// A person's TOTP enrolment: pending until confirmed with a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaEnrolment {
    /// The shared secret (sealed with the person's data key at rest).
    pub secret: crypto::TotpSecret,
    /// When MFA was turned on; `None` while enrolment is pending.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The last accepted time step: a code of this step or an earlier one is refused.
    pub last_step: Option<u64>,
}

impl MfaEnrolment {
    /// Whether MFA is on.
    #[must_use]
    pub const fn is_on(&self) -> bool {
        self.confirmed_at.is_some()
    }
}
