//! The identity context's outbound ports, named by role. Adapters live in `store`
//! (named by technology, e.g. `SeaOrmIdentityRepository`).
//!
//! # Error contract, for every port
//! - [`RepositoryError::Duplicate`] only when a unique rule is broken (an email
//!   already registered); never for any other failure.
//! - [`RepositoryError::Unavailable`] for everything else; its source is for logs.
//! - "Not found" is `Ok(None)`.
//! - Personal fields are encrypted at rest by the adapter; the port deals in
//!   plaintext domain values.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crypto::TokenHash;
use kernel::{OrganisationId, UserId};

use crate::model::{
    AccountStatus, Credentials, Membership, MfaEnrolment, Notice, OneTimeToken, Organisation,
    SecurityEvent, Session, SessionId, TokenPurpose, TokenRejection, User,
};
use crate::values::Email;

/// A port operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// A unique rule was broken (e.g. the email is registered).
    #[error("already exists")]
    Duplicate,
    /// Storage failed.
    #[error("storage is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Everything created by one provider sign-up, stored atomically.
#[derive(Debug, Clone)]
pub struct NewPractice {
    /// The practice.
    pub organisation: Organisation,
    /// Its first person.
    pub user: User,
    /// Their password hash (PHC string).
    pub password_hash: String,
    /// Their roles in it.
    pub memberships: Vec<Membership>,
    /// The email-verification token.
    pub verification: OneTimeToken,
}

/// Practices, people, memberships, credentials and one-time tokens.
#[async_trait]
pub trait IdentityRepository: Send + Sync + 'static {
    /// Stores a new practice with its first account, in one transaction.
    ///
    /// # Errors
    /// [`RepositoryError::Duplicate`] when the email is registered.
    async fn create_practice(&self, practice: &NewPractice) -> Result<(), RepositoryError>;

    /// The account with this email, and its credentials.
    async fn find_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<(User, Credentials)>, RepositoryError>;

    /// The account with this id.
    async fn user(&self, id: UserId) -> Result<Option<User>, RepositoryError>;

    /// The account with this id and its credentials (for re-authentication).
    async fn user_with_credentials(
        &self,
        id: UserId,
    ) -> Result<Option<(User, Credentials)>, RepositoryError>;

    /// Only the account's status: the per-request authentication check, which must
    /// not open sealed fields.
    async fn account_status(&self, id: UserId) -> Result<Option<AccountStatus>, RepositoryError>;

    /// The practice with this id.
    async fn organisation(
        &self,
        id: OrganisationId,
    ) -> Result<Option<Organisation>, RepositoryError>;

    /// Every membership of a person, oldest first.
    async fn memberships(&self, user: UserId) -> Result<Vec<Membership>, RepositoryError>;

    /// Counts one failed sign-in atomically, so concurrent failures all count.
    /// When the count reaches `threshold`, the account is locked until
    /// `lock_until` and the count restarts. Returns whether this failure locked it.
    async fn record_failure(
        &self,
        user: UserId,
        threshold: u32,
        lock_until: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;

    /// Clears failures after a successful sign-in.
    async fn clear_failures(&self, user: UserId) -> Result<(), RepositoryError>;

    /// Redeems a one-time token: marks it used and returns its owner, atomically,
    /// so a token works once even under concurrent redemption.
    async fn redeem_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Result<UserId, TokenRejection>, RepositoryError>;

    /// Marks the email verified and the account active.
    async fn mark_email_verified(
        &self,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;
}

/// Sessions, looked up by the hash of their bearer token.
#[async_trait]
pub trait SessionRepository: Send + Sync + 'static {
    /// Stores a new session.
    async fn insert(&self, session: &Session) -> Result<(), RepositoryError>;

    /// The session whose token hashes to `hash`, revoked or not.
    async fn find_by_token(&self, hash: &TokenHash) -> Result<Option<Session>, RepositoryError>;

    /// Records use of a session (for the idle timeout).
    async fn touch(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), RepositoryError>;

    /// Ends one session of `user`; `false` when it is not theirs or already ended.
    async fn revoke(
        &self,
        user: UserId,
        id: SessionId,
        at: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;

    /// Ends every live session of `user`; returns how many.
    async fn revoke_all(&self, user: UserId, at: DateTime<Utc>) -> Result<u64, RepositoryError>;

    /// The live sessions of `user` at `now`, newest first.
    async fn live_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, RepositoryError>;
}

/// The security-event log (C7, U6).
#[async_trait]
pub trait SecurityEventLog: Send + Sync + 'static {
    /// Records one event.
    async fn record(&self, event: &SecurityEvent) -> Result<(), RepositoryError>;

    /// A person's events, newest first, at most `limit`.
    async fn events_of(
        &self,
        user: UserId,
        limit: u32,
    ) -> Result<Vec<SecurityEvent>, RepositoryError>;
}

/// Sends transactional notices. The default adapter writes an outbox table, so
/// nothing leaves the machine.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Queues one notice.
    async fn send(&self, notice: &Notice) -> Result<(), RepositoryError>;
}

/// Credentials beyond the first sign-up: TOTP enrolments, recovery codes,
/// password changes and resets, email changes, and a practice's settings.
/// Secrets are stored sealed (the TOTP secret, with the person's data key) or as
/// their SHA-256 (recovery codes, one-time tokens).
#[async_trait]
pub trait CredentialRepository: Send + Sync + 'static {
    /// The person's TOTP enrolment, pending or confirmed.
    async fn mfa(&self, user: UserId) -> Result<Option<MfaEnrolment>, RepositoryError>;

    /// Stores a pending enrolment with `secret`, replacing any pending one.
    /// Returns `false` (and changes nothing) when MFA is already on.
    async fn start_mfa(
        &self,
        user: UserId,
        secret: &crypto::TotpSecret,
        at: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;

    /// Turns a pending enrolment on, records `step` as used and stores the
    /// recovery codes (as hashes), atomically. `false` when nothing was pending.
    async fn confirm_mfa(
        &self,
        user: UserId,
        step: u64,
        recovery_codes: &[TokenHash],
        at: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;

    /// Records `step` as the last accepted one, only if it is later than the last
    /// (atomic): `false` means the code was already used (a replay).
    async fn accept_step(&self, user: UserId, step: u64) -> Result<bool, RepositoryError>;

    /// Replaces every recovery code of the person, atomically.
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        recovery_codes: &[TokenHash],
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;

    /// Spends one unused recovery code (atomic); `false` when there is none such.
    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &TokenHash,
        at: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;

    /// Removes the enrolment and every recovery code.
    async fn disable_mfa(&self, user: UserId) -> Result<(), RepositoryError>;

    /// Sets a new password hash and clears failures and any lock.
    async fn set_password(&self, user: UserId, password_hash: &str) -> Result<(), RepositoryError>;

    /// Ends every live session of `user` but `keep`; returns how many.
    async fn revoke_other_sessions(
        &self,
        user: UserId,
        keep: SessionId,
        at: DateTime<Utc>,
    ) -> Result<u64, RepositoryError>;

    /// Stores a one-time token.
    async fn issue_token(&self, token: &OneTimeToken) -> Result<(), RepositoryError>;

    /// Redeems a password-reset token and sets the new password hash (clearing
    /// failures and lock) in one transaction.
    async fn reset_password(
        &self,
        token: &TokenHash,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<UserId, TokenRejection>, RepositoryError>;

    /// Stores an email-change token with the new address (sealed).
    async fn start_email_change(
        &self,
        token: &OneTimeToken,
        new_email: &Email,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;

    /// Redeems an email-change token and switches the account to the new address
    /// (sealed field and blind index), in one transaction; returns the owner and
    /// the previous address.
    ///
    /// # Errors
    /// [`RepositoryError::Duplicate`] when the address was taken meanwhile (the
    /// token is not consumed).
    async fn change_email(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Result<(UserId, Email), TokenRejection>, RepositoryError>;

    /// Stores a practice's name, marketing mode and MFA requirement.
    async fn update_organisation(&self, organisation: &Organisation)
    -> Result<(), RepositoryError>;
}
