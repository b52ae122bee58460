//! The identity context's records: practices, people, memberships, sessions,
//! one-time tokens, security events and notices.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use crypto::TokenHash;
use kernel::{OrganisationId, Role, SubjectId, UserId};
use uuid::Uuid;

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
}

impl AccountStatus {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PendingVerification => "pending_verification",
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    /// Parses [`AccountStatus::as_str`]'s output.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::PendingVerification, Self::Active, Self::Disabled]
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
}

impl TokenPurpose {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
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
    /// An administrator created an API key (recorded on their account).
    ApiKeyCreated,
    /// An administrator revoked an API key (recorded on their account).
    ApiKeyRevoked,
    /// The account was made a platform operator.
    OperatorGranted,
}

impl SecurityEventKind {
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
}

impl NoticeKind {
    /// The stable machine name.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::VerifyEmail { .. } => "verify_email",
            Self::NewSignIn => "new_sign_in",
            Self::AccountLocked => "account_locked",
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
