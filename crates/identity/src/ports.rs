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
use kernel::{OrganisationId, Role, SubjectId, UserId};

use crate::model::{
    AccountErasure, AccountStatus, Credentials, DeletionFlag, DeletionRequest, Guardianship,
    Invitation, Membership, MfaEnrolment, Notice, NoticeRecord, OneTimeToken, Organisation,
    PracticeMember, RoleRemoval, SecurityEvent, Session, SessionId, TokenPurpose, TokenRejection,
    User,
};
use crate::profile::{Preferences, Profile};
use crate::values::{DateOfBirth, Email};

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

    /// Stores a new one-time token (a fresh verification, a reset, an activation).
    async fn issue_token(&self, token: &OneTimeToken) -> Result<(), RepositoryError>;

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

    /// Deletes every event older than `cutoff` (the retention sweep); returns how many.
    async fn purge_before(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError>;

    /// How many events are older than `cutoff`: what [`SecurityEventLog::purge_before`]
    /// would delete (a dry run of the retention sweep).
    async fn count_before(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError>;
}

/// Sends transactional notices. The default adapter writes an outbox table, so
/// nothing leaves the machine.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Queues one notice.
    async fn send(&self, notice: &Notice) -> Result<(), RepositoryError>;
}

/// A person's profile (sealed) and preferences.
#[async_trait]
pub trait ProfileRepository: Send + Sync + 'static {
    /// The profile of `user`, if they wrote one.
    async fn profile(&self, user: UserId) -> Result<Option<Profile>, RepositoryError>;

    /// Replaces the profile of `person`, sealed with their data key.
    async fn save_profile(
        &self,
        person: &User,
        profile: &Profile,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;

    /// The preferences of `user`, if they set any.
    async fn preferences(&self, user: UserId) -> Result<Option<Preferences>, RepositoryError>;

    /// Replaces the preferences of `user`.
    async fn save_preferences(
        &self,
        user: UserId,
        preferences: &Preferences,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;
}

/// An account's life after sign-up: its owner's changes, deletion requests, and
/// what the rights engine needs to export and erase it.
#[async_trait]
pub trait AccountRepository: Send + Sync + 'static {
    /// Rewrites the account's name, phone and profession (re-sealed).
    async fn update_details(&self, person: &User) -> Result<(), RepositoryError>;

    /// Records `request`, deactivates the account and ends every session, atomically.
    async fn request_deletion(&self, request: &DeletionRequest) -> Result<(), RepositoryError>;

    /// The person's deletion requests, oldest first.
    async fn deletion_requests(
        &self,
        user: UserId,
    ) -> Result<Vec<DeletionRequest>, RepositoryError>;

    /// The account of a data subject, erased or not, and whether it is erased.
    async fn account_of_subject(
        &self,
        subject: SubjectId,
    ) -> Result<Option<(UserId, bool)>, RepositoryError>;

    /// Every session of `user`, ended or not, newest first.
    async fn all_sessions(&self, user: UserId) -> Result<Vec<Session>, RepositoryError>;

    /// Every notice queued for `user`, oldest first, without secrets.
    async fn notices(&self, user: UserId) -> Result<Vec<NoticeRecord>, RepositoryError>;

    /// Every guardianship `user` is part of, as minor or guardian, oldest first.
    async fn guardianships(&self, user: UserId) -> Result<Vec<Guardianship>, RepositoryError>;

    /// Erases the account in one transaction: credentials, sessions, tokens,
    /// memberships, profile, preferences, notices, date of birth, guardianships and
    /// the deletion flag deleted; name, email and
    /// phone overwritten (the row stays, so other records can still point at it);
    /// security events pseudonymised with a keyed pseudonym. Idempotent.
    async fn erase(&self, user: UserId) -> Result<AccountErasure, RepositoryError>;
}

/// An account created for someone else (a client, a member, a guardian), stored
/// atomically with its roles, date of birth, guardianship and activation token.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// The account, pending activation, with no password.
    pub user: User,
    /// A client's date of birth (sealed with their data key).
    pub date_of_birth: Option<DateOfBirth>,
    /// Their roles.
    pub memberships: Vec<Membership>,
    /// When the account is a new guardian's: the link to the minor.
    pub guardianship: Option<Guardianship>,
    /// The activation token.
    pub activation: OneTimeToken,
}

/// The people of a practice: accounts created for others, roles, dates of birth,
/// guardianships, activation, and an account's suspension (disabled or frozen).
#[async_trait]
pub trait PeopleRepository: Send + Sync + 'static {
    /// Stores a new account, in one transaction.
    ///
    /// # Errors
    /// [`RepositoryError::Duplicate`] when the email is registered.
    async fn create_account(&self, account: &NewAccount) -> Result<(), RepositoryError>;

    /// Takes a role from a person, atomically refusing to take the practice's
    /// last `org_admin`.
    async fn remove_role(
        &self,
        organisation: OrganisationId,
        user: UserId,
        role: Role,
    ) -> Result<RoleRemoval, RepositoryError>;

    /// The practice's members with their roles, by account id (time-ordered),
    /// those after `after`, at most `limit`.
    async fn members(
        &self,
        organisation: OrganisationId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<PracticeMember>, RepositoryError>;

    /// The active accounts (not pending, disabled, frozen or erased) holding
    /// `role` in `organisation`, by account id.
    async fn active_holders(
        &self,
        organisation: OrganisationId,
        role: Role,
    ) -> Result<Vec<UserId>, RepositoryError>;

    /// A person's date of birth, when recorded.
    async fn date_of_birth(&self, user: UserId) -> Result<Option<DateOfBirth>, RepositoryError>;

    /// Whether a guardian is linked to `minor`.
    async fn has_guardian(&self, minor: UserId) -> Result<bool, RepositoryError>;

    /// Links a guardian to a minor.
    ///
    /// # Errors
    /// [`RepositoryError::Duplicate`] when they are linked already.
    async fn link_guardian(&self, guardianship: &Guardianship) -> Result<(), RepositoryError>;

    /// The owner of a live token, without redeeming it.
    async fn token_owner(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Result<UserId, TokenRejection>, RepositoryError>;

    /// Redeems an activation token and, in the same transaction, sets the
    /// account's password, marks its email verified and activates it (a
    /// disabled or frozen account keeps its status).
    async fn activate(
        &self,
        hash: &TokenHash,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<UserId, TokenRejection>, RepositoryError>;

    /// Sets the account's status to `status` (disabled or frozen) and ends every
    /// live session of it, in one transaction; with `flag`, also flags it for
    /// deletion. Returns how many sessions were ended.
    ///
    /// # Errors
    /// [`RepositoryError::Duplicate`] when `flag` is given and the account is
    /// flagged already.
    async fn suspend(
        &self,
        user: UserId,
        status: AccountStatus,
        at: DateTime<Utc>,
        flag: Option<&DeletionFlag>,
    ) -> Result<u64, RepositoryError>;

    /// Activates a disabled account again; `false` (nothing changed) when it was
    /// not disabled, or its owner asked for its deletion (a `received` request).
    async fn enable(&self, user: UserId) -> Result<bool, RepositoryError>;

    /// When the account was flagged for deletion, if it was.
    async fn deletion_flag(&self, user: UserId) -> Result<Option<DeletionFlag>, RepositoryError>;
    /// Records an invitation for an existing account; a pending one for the same
    /// person, practice, role and minor stands instead (nothing new is stored).
    async fn invite(&self, invitation: &Invitation) -> Result<(), RepositoryError>;

    /// Every invitation of `user` (pending, accepted or declined), oldest first.
    async fn invitations(&self, user: UserId) -> Result<Vec<Invitation>, RepositoryError>;

    /// Accepts `user`'s pending invitation `id`: marks it accepted and creates
    /// the membership (and the guardianship it offers) in one transaction; a
    /// role or link held already stays as it is. `None` when `user` has no
    /// pending invitation with that id.
    async fn accept_invitation(
        &self,
        user: UserId,
        id: uuid::Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<Invitation>, RepositoryError>;

    /// Disables an active account and ends its live sessions, in one
    /// transaction; `false` (nothing changed) when it was not active.
    async fn disable(&self, user: UserId, at: DateTime<Utc>) -> Result<bool, RepositoryError>;
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

    /// Changes the password in one transaction: sets the new hash, clears failures
    /// and any lock, ends every live session of `user` but `keep`, and spends any
    /// unused password-reset token (a reset asked for before the change must not
    /// undo it). Returns how many sessions were ended.
    async fn change_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: SessionId,
        at: DateTime<Utc>,
    ) -> Result<u64, RepositoryError>;

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
