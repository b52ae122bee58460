//! [`IdentityService`]: sign-up, email verification, sign-in with lockout and
//! throttling, bearer-session authentication, and a person's own sessions and
//! security events.
//!
//! Password hashing (PBKDF2, about 130 ms at 600,000 iterations) runs on the
//! blocking pool behind a semaphore (`IdentityConfig::hashing_concurrency`, by
//! default one fewer than the cores), so a flood of sign-ins queues for CPU instead
//! of starving the async workers that serve everything else.

mod api_keys;
mod operator;

mod credentials;
pub mod members;

pub use credentials::{MFA_ROLES, MfaSetup, OrganisationChanges, SecondFactor};

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use crypto::{IssuedToken, Keyring, PasswordHash, PasswordHasher, TokenHash};
use kernel::{
    Actor, Clock, OrganisationId, RequestContext, Role, RoleSet, Sensitive, SubjectId, UserId,
};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::integrations::{ApiKeyRepository, Credential, OperatorRepository};
use crate::model::{
    AccountStatus, Membership, Notice, NoticeKind, OneTimeToken, Organisation, SecurityEvent,
    SecurityEventKind, Session, SessionId, TokenPurpose, TokenRejection, User,
};
use crate::ports::{
    AccountRepository, CredentialRepository, IdentityRepository, NewPractice, Notifier,
    ProfileRepository, RepositoryError, SecurityEventLog, SessionRepository,
};
use crate::throttle::AddressThrottle;

mod account;

use crate::values::{
    DataRegion, Email, InvalidValue, MarketingMode, NewPassword, OrganisationName, PersonName,
    Phone, Profession,
};
pub use account::AccountChange;

/// Session and lockout settings.
#[derive(Debug, Clone, Copy)]
pub struct IdentityConfig {
    /// A session unused this long ends (30 minutes by default).
    pub idle_timeout: TimeDelta,
    /// A session ends this long after sign-in, used or not (12 hours by default).
    pub absolute_lifetime: TimeDelta,
    /// Consecutive failures that lock an account (5).
    pub lockout_threshold: u32,
    /// How long a lock lasts (15 minutes).
    pub lockout_duration: TimeDelta,
    /// Sign-in attempts allowed per client address per window (20 per 5 minutes).
    pub attempts_per_address: u32,
    /// The window for `attempts_per_address`.
    pub address_window: TimeDelta,
    /// How long an email-verification token works (24 hours).
    pub verification_ttl: TimeDelta,
    /// How long security events are kept (365 days): long enough to investigate
    /// an attack on an account, then deleted by the retention job.
    pub security_event_retention: TimeDelta,
    /// How many password hashes may run at once (by default one fewer than the
    /// cores, at least 1, so a sign-in flood leaves a core for other requests).
    /// Measured with `cargo xtask bench identity` on 2 otherwise idle cores: one
    /// permit instead of two halves sign-in throughput (8 instead of 16 per second)
    /// and keeps the p99 of reads during a flood at 1.11 to 1.12 times the same
    /// run's baseline (median of 3 rounds) instead of 2.12. With other builds
    /// running on the same cores it rose to about 1.7 to 1.8 (2 permits: 3.4 to 5.8).
    pub hashing_concurrency: usize,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            idle_timeout: TimeDelta::minutes(30),
            absolute_lifetime: TimeDelta::hours(12),
            lockout_threshold: 5,
            lockout_duration: TimeDelta::minutes(15),
            attempts_per_address: 20,
            address_window: TimeDelta::minutes(5),
            verification_ttl: TimeDelta::hours(24),
            security_event_retention: TimeDelta::days(365),
            hashing_concurrency: std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1).max(1)),
        }
    }
}

/// How often a session's last use is written: at most once per minute, so reads
/// do not each cost a write. The idle timeout is exact to within this.
const TOUCH_EVERY: TimeDelta = TimeDelta::minutes(1);

/// The reason given when a caller's role in the practice does not allow an operation.
pub(crate) const ROLE_FORBIDS: &str = "your role in this practice does not allow this";

/// Why an identity operation failed. Mapped to HTTP in one place, the server.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A field broke a rule (422).
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// The email is registered (409).
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Wrong email or password; which one is not said (401).
    #[error("the email or password is wrong")]
    InvalidCredentials,
    /// Too many failed attempts on this account (429).
    #[error("the account is locked after repeated failed sign-ins")]
    Locked {
        /// When to try again.
        retry_after: TimeDelta,
    },
    /// Too many attempts from this address (429).
    #[error("too many sign-in attempts from this address")]
    Throttled {
        /// When to try again.
        retry_after: TimeDelta,
    },
    /// The password was right but the email is not verified yet (403).
    #[error("verify your email address before signing in")]
    EmailNotVerified,
    /// The person holds no role in the practice asked for (403).
    #[error("you are not a member of this practice")]
    NotAMember,
    /// A one-time token is unknown (404), expired or used (410).
    #[error("the token is not valid")]
    Token(TokenRejection),
    /// No valid session (401).
    #[error("authentication is required")]
    Unauthenticated,
    /// No such record for this caller (404).
    #[error("not found")]
    NotFound,
    /// A signed-in caller's current password was wrong when re-authenticating
    /// for a sensitive change (403: the session itself is still valid).
    #[error("the current password is wrong")]
    ReauthenticationFailed,
    /// Storage or hashing failed (503); the source is for logs only.
    #[error("identity storage is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The caller is authenticated but may not do this (403): their role in the
    /// practice does not allow it, or an API key is not a person. The reason is
    /// written for them.
    #[error("not permitted: {0}")]
    Forbidden(&'static str),
    /// The request conflicts with the current state (409); says which rule.
    #[error("{0}")]
    Conflict(&'static str),
    /// A client under 13 cannot activate before a guardian is linked (403, O1).
    #[error("a guardian must be linked before this account can be activated")]
    GuardianRequired,
    /// The password was right, and the account has MFA on: give a TOTP or
    /// recovery code (401, `mfa-required`).
    #[error("a second factor is required")]
    MfaRequired,
    /// The session may only enrol in MFA or sign out until MFA is on, because the
    /// practice requires it (403, `mfa-enrolment-required`).
    #[error("the practice requires MFA: enrol before doing anything else")]
    MfaEnrolmentRequired,
    /// MFA is already on (409).
    #[error("MFA is already on")]
    MfaAlreadyOn,
    /// MFA is not on, or no enrolment is pending (409).
    #[error("MFA is not on")]
    MfaNotOn,
    /// Re-authentication needs a current TOTP or recovery code too, as MFA is on (403).
    #[error("a current authenticator code is required")]
    SecondFactorRequired,
}

impl From<RepositoryError> for IdentityError {
    fn from(err: RepositoryError) -> Self {
        match err {
            RepositoryError::Duplicate => Self::EmailTaken,
            RepositoryError::Unavailable(source) => Self::Unavailable(source),
        }
    }
}

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> IdentityError {
    IdentityError::Unavailable(Box::new(err))
}

/// A provider's sign-up (C1), as typed by them; parsed by [`IdentityService::sign_up`].
#[derive(Debug)]
pub struct SignUp {
    /// Their name.
    pub name: String,
    /// Their email.
    pub email: String,
    /// Their profession.
    pub profession: String,
    /// Their practice's name.
    pub organisation_name: String,
    /// Their phone.
    pub phone: String,
    /// Their password.
    pub password: Sensitive<String>,
    /// Where the practice's data is stored (`us`, `eu`, ...).
    pub region: String,
}

/// A successful sign-in.
#[derive(Debug)]
pub struct SignedIn {
    /// The bearer token: shown once, stored only as its hash.
    pub token: Sensitive<String>,
    /// The session.
    pub session: Session,
    /// Who signed in.
    pub user: User,
    /// Their roles in the session's practice.
    pub roles: RoleSet,
}

/// A request's authenticated caller.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The actor, with their roles in `organisation`. For an API key: a member
    /// whose `user` is the key's creator and whose roles are the key's one role.
    pub actor: Actor,
    /// The practice the caller acts in; `None` for a platform operator.
    pub organisation: Option<OrganisationId>,
    /// How the caller authenticated: a session, an API key or an operator session.
    pub credential: Credential,
}

/// The adapters the service needs.
#[derive(Clone)]
pub struct IdentityPorts {
    /// Practices, people, memberships, tokens.
    pub repository: Arc<dyn IdentityRepository>,
    /// Sessions.
    pub sessions: Arc<dyn SessionRepository>,
    /// Security events.
    pub events: Arc<dyn SecurityEventLog>,
    /// Transactional notices.
    pub notifier: Arc<dyn Notifier>,
    /// Profiles and preferences.
    pub profiles: Arc<dyn ProfileRepository>,
    /// Account changes, deletion requests, export and erasure.
    pub accounts: Arc<dyn AccountRepository>,
    /// The people of a practice: created accounts, roles, guardianships.
    pub people: Arc<dyn crate::ports::PeopleRepository>,
    /// MFA, recovery codes, password and email changes, practice settings.
    pub credentials: Arc<dyn CredentialRepository>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Practices' API keys.
    pub api_keys: Arc<dyn ApiKeyRepository>,
    /// Platform operators and their sessions.
    pub operators: Arc<dyn OperatorRepository>,
    /// Where accesses to clients' data are recorded (durable before the answer).
    pub audit: Arc<dyn kernel::AuditSink>,
}

impl std::fmt::Debug for IdentityPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityPorts").finish_non_exhaustive()
    }
}

/// The identity context's inbound port.
#[derive(Clone)]
pub struct IdentityService {
    ports: IdentityPorts,
    keyring: Keyring,
    passwords: PasswordHasher,
    hashing: Arc<Semaphore>,
    throttle: Arc<AddressThrottle>,
    config: IdentityConfig,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl IdentityService {
    /// Builds the service. Password hashing may use at most
    /// `config.hashing_concurrency` threads at once.
    #[must_use]
    pub fn new(
        ports: IdentityPorts,
        keyring: Keyring,
        passwords: PasswordHasher,
        config: IdentityConfig,
    ) -> Self {
        Self {
            ports,
            keyring,
            passwords,
            hashing: Arc::new(Semaphore::new(config.hashing_concurrency.max(1))),
            throttle: Arc::new(AddressThrottle::new(
                config.attempts_per_address,
                config.address_window,
            )),
            config,
        }
    }

    /// The context's [`kernel::PersonalData`] port, for the rights engine.
    #[must_use]
    pub fn personal_data(&self) -> crate::IdentityPersonalData {
        crate::IdentityPersonalData::new(self.ports.clone(), self.config.security_event_retention)
    }

    /// The context's [`kernel::personal_data::RetentionSweep`], for the retention
    /// engine.
    #[must_use]
    pub fn retention(&self) -> crate::IdentityRetention {
        crate::IdentityRetention::new(
            self.ports.events.clone(),
            self.config.security_event_retention,
        )
    }

    /// The settings in force.
    #[must_use]
    pub const fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// Runs CPU-heavy password work off the async workers, at most one per core.
    async fn on_hashing_pool<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, IdentityError> {
        let _permit = self.hashing.acquire().await.map_err(unavailable)?;
        let hasher = self.passwords.clone();
        tokio::task::spawn_blocking(move || work(&hasher))
            .await
            .map_err(unavailable)
    }

    async fn record(&self, ctx: &RequestContext, user: Option<UserId>, kind: SecurityEventKind) {
        let event = SecurityEvent {
            id: Uuid::now_v7(),
            user,
            kind,
            at: ctx.at(),
            client_address: ctx.client().address(),
            user_agent: ctx.client().user_agent().map(str::to_owned),
            country: ctx.client().country().map(str::to_owned),
        };
        if let Err(err) = self.ports.events.record(&event).await {
            // A lost security event must not become a lost sign-in; it is logged
            // (without personal data) for operators instead.
            tracing::error!(error = %err, kind = kind.as_str(), "security event not recorded");
        }
    }

    async fn notify(
        &self,
        user: UserId,
        kind: NoticeKind,
        at: DateTime<Utc>,
    ) -> Result<(), IdentityError> {
        self.ports
            .notifier
            .send(&Notice { user, kind, at })
            .await
            .map_err(Into::into)
    }

    /// A provider signs up and creates their practice (C1, O2). They become its
    /// `org_admin` and `provider`; the practice gets its own key; a verification
    /// token goes to the outbox. Nothing is stored when any field is invalid.
    ///
    /// # Errors
    /// [`IdentityError::Invalid`], [`IdentityError::EmailTaken`], [`IdentityError::Unavailable`].
    pub async fn sign_up(
        &self,
        ctx: &RequestContext,
        form: SignUp,
    ) -> Result<(Organisation, User), IdentityError> {
        let name = PersonName::parse(&form.name)?;
        let email = Email::parse(&form.email)?;
        let profession = Profession::parse(&form.profession)?;
        let organisation_name = OrganisationName::parse(&form.organisation_name)?;
        let phone = Phone::parse(&form.phone)?;
        let region = DataRegion::parse(&form.region)?;
        let password = NewPassword::parse(form.password)?;
        if self.ports.repository.find_by_email(&email).await?.is_some() {
            return Err(IdentityError::EmailTaken);
        }

        let now = ctx.at();
        let password_hash = self
            .on_hashing_pool(move |hasher| hasher.hash(password.as_sensitive()))
            .await?
            .map_err(unavailable)?
            .to_phc_string();
        let organisation = Organisation {
            id: OrganisationId::new(),
            name: organisation_name,
            region,
            marketing_mode: MarketingMode::default(),
            require_mfa: false,
            created_at: now,
        };
        let user = User {
            id: UserId::new(),
            subject: SubjectId::new(),
            home_organisation: organisation.id,
            name,
            email,
            phone: Some(phone),
            profession: Some(profession),
            status: AccountStatus::PendingVerification,
            email_verified_at: None,
            created_at: now,
        };
        let memberships = [Role::OrgAdmin, Role::Provider]
            .into_iter()
            .map(|role| Membership {
                user: user.id,
                organisation: organisation.id,
                role,
                created_at: now,
            })
            .collect();
        let (token, hash) = IssuedToken::generate().map_err(unavailable)?.into_parts();
        self.keyring
            .organisation_key(organisation.id)
            .await
            .map_err(unavailable)?;
        self.ports
            .repository
            .create_practice(&NewPractice {
                organisation: organisation.clone(),
                user: user.clone(),
                password_hash,
                memberships,
                verification: OneTimeToken {
                    hash,
                    purpose: TokenPurpose::VerifyEmail,
                    user: user.id,
                    expires_at: now + self.config.verification_ttl,
                },
            })
            .await?;
        self.record(ctx, Some(user.id), SecurityEventKind::AccountCreated)
            .await;
        self.notify(user.id, NoticeKind::VerifyEmail { token }, now)
            .await?;
        Ok((organisation, user))
    }

    /// Redeems an email-verification token: the account becomes active.
    ///
    /// # Errors
    /// [`IdentityError::Token`], [`IdentityError::Unavailable`].
    pub async fn verify_email(
        &self,
        ctx: &RequestContext,
        token: &Sensitive<String>,
    ) -> Result<(), IdentityError> {
        let hash = TokenHash::of_presented(token.expose());
        let user = self
            .ports
            .repository
            .redeem_token(&hash, TokenPurpose::VerifyEmail, ctx.at())
            .await?
            .map_err(IdentityError::Token)?;
        self.ports
            .repository
            .mark_email_verified(user, ctx.at())
            .await?;
        self.record(ctx, Some(user), SecurityEventKind::EmailVerified)
            .await;
        Ok(())
    }

    /// Signs in with email and password, into `organisation` (by default the
    /// person's first practice). Failures count toward the account's lockout and
    /// the address's throttle, and never say whether the email exists.
    ///
    /// # Errors
    /// [`IdentityError::Throttled`], [`IdentityError::Locked`],
    /// [`IdentityError::InvalidCredentials`], [`IdentityError::EmailNotVerified`],
    /// [`IdentityError::NotAMember`], [`IdentityError::MfaRequired`],
    /// [`IdentityError::Unavailable`].
    pub async fn sign_in(
        &self,
        ctx: &RequestContext,
        email: &str,
        password: Sensitive<String>,
        organisation: Option<OrganisationId>,
        second_factor: SecondFactor,
    ) -> Result<SignedIn, IdentityError> {
        let now = ctx.at();
        let user = self
            .verify_sign_in(ctx, email, password, second_factor)
            .await?;

        let memberships = self.ports.repository.memberships(user.id).await?;
        let organisation = organisation
            .or_else(|| {
                memberships
                    .iter()
                    .find(|m| m.organisation == user.home_organisation)
                    .or_else(|| memberships.first())
                    .map(|m| m.organisation)
            })
            .ok_or(IdentityError::NotAMember)?;
        let roles: RoleSet = memberships
            .iter()
            .filter(|m| m.organisation == organisation)
            .map(|m| m.role)
            .collect();
        if roles.is_empty() {
            return Err(IdentityError::NotAMember);
        }

        self.ports.repository.clear_failures(user.id).await?;
        let (token, token_hash) = IssuedToken::generate().map_err(unavailable)?.into_parts();
        let session = Session {
            id: SessionId::new(),
            user: user.id,
            organisation,
            token_hash,
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.config.absolute_lifetime,
            revoked_at: None,
            client_address: ctx.client().address(),
            user_agent: ctx.client().user_agent().map(str::to_owned),
        };
        self.ports.sessions.insert(&session).await?;
        self.record(ctx, Some(user.id), SecurityEventKind::SignInSucceeded)
            .await;
        self.notify(user.id, NoticeKind::NewSignIn, now).await?;
        Ok(SignedIn {
            token,
            session,
            user,
            roles,
        })
    }

    /// The checks every password sign-in makes, a member's or an operator's: the
    /// address throttle, the account lookup (spending a hash's time when there is
    /// none, so timing does not reveal accounts), the lockout, the password, the
    /// account's status, and the second factor when MFA is on. Failures count
    /// toward the account's lockout. Returns the verified person.
    async fn verify_sign_in(
        &self,
        ctx: &RequestContext,
        email: &str,
        password: Sensitive<String>,
        second_factor: SecondFactor,
    ) -> Result<User, IdentityError> {
        let now = ctx.at();
        if let Some(address) = ctx.client().address()
            && let Err(retry_after) = self.throttle.attempt(address, now)
        {
            self.record(ctx, None, SecurityEventKind::SignInFailed)
                .await;
            return Err(IdentityError::Throttled { retry_after });
        }
        let found = match Email::parse(email) {
            Ok(email) => self.ports.repository.find_by_email(&email).await?,
            Err(_) => None,
        };
        let Some((user, credentials)) = found else {
            // Spend the same time as a real check, so timing does not reveal accounts.
            self.on_hashing_pool(move |hasher| hasher.verify_dummy(&password))
                .await?;
            self.record(ctx, None, SecurityEventKind::SignInFailed)
                .await;
            return Err(IdentityError::InvalidCredentials);
        };
        if let Some(until) = credentials.locked_until.filter(|until| *until > now) {
            self.record(ctx, Some(user.id), SecurityEventKind::SignInFailed)
                .await;
            return Err(IdentityError::Locked {
                retry_after: until - now,
            });
        }
        let stored = credentials
            .password_hash
            .as_deref()
            .and_then(|h| PasswordHash::parse(h).ok());
        let matches = match stored {
            Some(stored) => {
                self.on_hashing_pool(move |hasher| hasher.verify(&stored, &password))
                    .await?
            }
            None => {
                self.on_hashing_pool(move |hasher| hasher.verify_dummy(&password))
                    .await?
            }
        };
        if !matches || matches!(user.status, AccountStatus::Disabled | AccountStatus::Frozen) {
            return Err(self.failed_attempt(ctx, &user).await?);
        }
        if user.status == AccountStatus::PendingVerification {
            return Err(IdentityError::EmailNotVerified);
        }
        self.second_factor_at_sign_in(ctx, &user, second_factor)
            .await?;
        Ok(user)
    }

    /// Counts a failed attempt, locking the account at the threshold.
    async fn failed_attempt(
        &self,
        ctx: &RequestContext,
        user: &User,
    ) -> Result<IdentityError, IdentityError> {
        let now = ctx.at();
        self.record(ctx, Some(user.id), SecurityEventKind::SignInFailed)
            .await;
        let locked = self
            .ports
            .repository
            .record_failure(
                user.id,
                self.config.lockout_threshold,
                now + self.config.lockout_duration,
            )
            .await?;
        if !locked {
            return Ok(IdentityError::InvalidCredentials);
        }
        self.record(ctx, Some(user.id), SecurityEventKind::AccountLocked)
            .await;
        self.notify(user.id, NoticeKind::AccountLocked, now).await?;
        Ok(IdentityError::Locked {
            retry_after: self.config.lockout_duration,
        })
    }

    /// Resolves a bearer token to its caller, enforcing revocation, the absolute
    /// lifetime, the idle timeout and the account's status.
    ///
    /// # Errors
    /// [`IdentityError::Unauthenticated`], [`IdentityError::Unavailable`].
    pub async fn authenticate(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Authenticated, IdentityError> {
        if let Some(caller) = self.authenticate_prefixed(token, now).await? {
            return Ok(caller);
        }
        let hash = TokenHash::of_presented(token);
        let session = self
            .ports
            .sessions
            .find_by_token(&hash)
            .await?
            .ok_or(IdentityError::Unauthenticated)?;
        let live = session.revoked_at.is_none()
            && now < session.expires_at
            && now - session.last_seen_at < self.config.idle_timeout;
        if !live {
            return Err(IdentityError::Unauthenticated);
        }
        let status = self.ports.repository.account_status(session.user).await?;
        if status != Some(AccountStatus::Active) {
            return Err(IdentityError::Unauthenticated);
        }
        let roles: RoleSet = self
            .ports
            .repository
            .memberships(session.user)
            .await?
            .iter()
            .filter(|m| m.organisation == session.organisation)
            .map(|m| m.role)
            .collect();
        if roles.is_empty() {
            return Err(IdentityError::Unauthenticated);
        }
        if now - session.last_seen_at >= TOUCH_EVERY {
            self.ports.sessions.touch(session.id, now).await?;
        }
        Ok(Authenticated {
            actor: Actor::Member {
                user: session.user,
                roles,
            },
            organisation: Some(session.organisation),
            credential: Credential::Session(session.id),
        })
    }

    /// Re-authentication before a sensitive change (password, email, MFA, account
    /// deletion): the caller's current password must match. A wrong one counts
    /// toward the account's lockout like a failed sign-in, so a stolen session
    /// cannot guess it; a locked account is refused outright.
    ///
    /// # Errors
    /// [`IdentityError::ReauthenticationFailed`], [`IdentityError::Locked`],
    /// [`IdentityError::Unauthenticated`], [`IdentityError::Unavailable`].
    async fn reauthenticate(
        &self,
        ctx: &RequestContext,
        password: Sensitive<String>,
    ) -> Result<User, IdentityError> {
        let id = Self::caller(ctx)?;
        let (user, credentials) = self
            .ports
            .repository
            .user_with_credentials(id)
            .await?
            .ok_or(IdentityError::Unauthenticated)?;
        let now = ctx.at();
        if let Some(until) = credentials.locked_until.filter(|until| *until > now) {
            return Err(IdentityError::Locked {
                retry_after: until - now,
            });
        }
        let stored = credentials
            .password_hash
            .as_deref()
            .and_then(|h| PasswordHash::parse(h).ok());
        let matches = match stored {
            Some(stored) => {
                self.on_hashing_pool(move |hasher| hasher.verify(&stored, &password))
                    .await?
            }
            None => false,
        };
        if matches {
            return Ok(user);
        }
        match self.failed_attempt(ctx, &user).await? {
            locked @ IdentityError::Locked { .. } => Err(locked),
            _ => Err(IdentityError::ReauthenticationFailed),
        }
    }

    fn caller(ctx: &RequestContext) -> Result<UserId, IdentityError> {
        ctx.actor().user().ok_or(IdentityError::Unauthenticated)
    }

    /// The caller's own account and memberships (D9).
    ///
    /// # Errors
    /// [`IdentityError::Unauthenticated`], [`IdentityError::Unavailable`].
    pub async fn me(&self, ctx: &RequestContext) -> Result<(User, Vec<Membership>), IdentityError> {
        let id = Self::caller(ctx)?;
        let user = self
            .ports
            .repository
            .user(id)
            .await?
            .ok_or(IdentityError::Unauthenticated)?;
        let memberships = self.ports.repository.memberships(id).await?;
        Ok((user, memberships))
    }

    /// The caller's live sessions, newest first.
    ///
    /// # Errors
    /// [`IdentityError::Unauthenticated`], [`IdentityError::Unavailable`].
    pub async fn sessions(&self, ctx: &RequestContext) -> Result<Vec<Session>, IdentityError> {
        let id = Self::caller(ctx)?;
        let idle = self.config.idle_timeout;
        let now = ctx.at();
        Ok(self
            .ports
            .sessions
            .live_sessions(id, now)
            .await?
            .into_iter()
            .filter(|s| now - s.last_seen_at < idle)
            .collect())
    }

    /// Ends one of the caller's sessions (logout, when it is the current one).
    ///
    /// # Errors
    /// [`IdentityError::NotFound`] when it is not a live session of theirs.
    pub async fn revoke_session(
        &self,
        ctx: &RequestContext,
        session: SessionId,
    ) -> Result<(), IdentityError> {
        let id = Self::caller(ctx)?;
        if !self.ports.sessions.revoke(id, session, ctx.at()).await? {
            return Err(IdentityError::NotFound);
        }
        self.record(ctx, Some(id), SecurityEventKind::SessionRevoked)
            .await;
        Ok(())
    }

    /// Ends every session of the caller, the current one included.
    ///
    /// # Errors
    /// [`IdentityError::Unauthenticated`], [`IdentityError::Unavailable`].
    pub async fn revoke_all_sessions(&self, ctx: &RequestContext) -> Result<u64, IdentityError> {
        let id = Self::caller(ctx)?;
        let ended = self.ports.sessions.revoke_all(id, ctx.at()).await?;
        self.record(ctx, Some(id), SecurityEventKind::AllSessionsRevoked)
            .await;
        Ok(ended)
    }

    /// The caller's own security events, newest first (at most `limit`, 1 to 100).
    ///
    /// # Errors
    /// [`IdentityError::Unauthenticated`], [`IdentityError::Unavailable`].
    pub async fn security_events(
        &self,
        ctx: &RequestContext,
        limit: u32,
    ) -> Result<Vec<SecurityEvent>, IdentityError> {
        let id = Self::caller(ctx)?;
        Ok(self.ports.events.events_of(id, limit.clamp(1, 100)).await?)
    }
}
