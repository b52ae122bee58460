//! The people of a practice: client accounts (C3) and their activation, the age
//! gate and guardians (O1), members and their roles, and disabling an account.
//!
//! Every operation here but activation acts in the caller's own practice: a
//! practice id that is not the session's answers [`IdentityError::NotFound`], so
//! another practice's existence does not leak; a role that may not do the
//! operation answers [`IdentityError::Forbidden`].
//!
//! # The age gate (O1)
//! A client's date of birth is required and sealed. At activation, a client
//! younger than [`MIN_AGE_WITHOUT_GUARDIAN`] on the activation day (UTC) is
//! refused with [`IdentityError::GuardianRequired`], and the token stays unused,
//! until a provider or org admin links a guardian. The guardian is a person with
//! their own account and a `client` membership in the practice, so they sign in
//! like any client; their authority over the minor is the guardianship record,
//! which the consent context reads when it records the guardian's consent (not
//! recorded here). A client *found* to be under 13 is reported by a provider, org
//! admin or privacy officer: the account is frozen (sign-in refused as for a
//! disabled account), every session ended in the same transaction, and it is
//! flagged for deletion, which the data-rights context carries out. Only the
//! minor's home practice links guardians, reports an account as under 13, and
//! only a guardian it linked counts at activation.
//!
//! # Existing accounts are invited, never enrolled
//! A practice never gives an existing account a role, a guardianship or a date
//! of birth: an email already registered gets an [`Invitation`] and a notice, and
//! the membership (and guardianship) is created only when its owner, signed in,
//! accepts it. The practice's answer is the same either way, so it does not
//! learn whether the email had an account. The date of birth a practice typed is
//! recorded only on an account it creates; an existing account's is its own.

use chrono::{NaiveDate, TimeDelta};
use crypto::{IssuedToken, TokenHash};
use kernel::{
    AuditAction, AuditEvent, AuditOutcome, OrganisationId, RequestContext, ResourceRef, Role,
    Sensitive, SubjectId, UserId,
};

use super::{IdentityError, IdentityService, unavailable};
use crate::model::{
    AccountStatus, DeletionFlag, Guardianship, Invitation, Membership, NoticeKind, OneTimeToken,
    PracticeMember, RoleRemoval, SecurityEventKind, TokenPurpose, User,
};
use crate::ports::NewAccount;
use crate::values::{DateOfBirth, Email, NewPassword, PersonName, Phone};

/// How long an activation token works: a week, since the person did not ask for
/// the account and may read their email late.
pub const ACTIVATION_TTL: TimeDelta = TimeDelta::days(7);

/// The youngest age at which a client activates without a linked guardian (O1).
pub const MIN_AGE_WITHOUT_GUARDIAN: u32 = 13;

/// The roles that create clients and link guardians.
const CARE_ROLES: [Role; 2] = [Role::Provider, Role::OrgAdmin];

/// The roles that may report a client as under 13.
const REPORTING_ROLES: [Role; 3] = [Role::Provider, Role::OrgAdmin, Role::PrivacyOfficer];

/// A client's account as a provider or org admin types it (C3).
#[derive(Debug)]
pub struct NewClient {
    /// Their name.
    pub name: String,
    /// Their email; the activation token goes to it.
    pub email: String,
    /// Their phone, if given.
    pub phone: Option<String>,
    /// Their date of birth (required).
    pub date_of_birth: NaiveDate,
}

/// A guardian (or a member) as typed: name, email, optional phone.
#[derive(Debug)]
pub struct NewPerson {
    /// Their name.
    pub name: String,
    /// Their email.
    pub email: String,
    /// Their phone, if given.
    pub phone: Option<String>,
}

/// Whether an operation created an account or invited an existing one. The
/// practice must not be told which (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolled {
    /// A new account, pending activation; its token went to the outbox.
    Created(User),
    /// An existing account, invited and notified; nothing on it changed.
    Invited(User),
}

impl Enrolled {
    /// The account either way.
    #[must_use]
    pub const fn user(&self) -> &User {
        match self {
            Self::Created(user) | Self::Invited(user) => user,
        }
    }
}

/// The kind of record an access to a client's account is audited as: that someone
/// is a client of a practice is health information (HIPAA).
pub const CLIENT_ACCOUNT: &str = "client_account";

/// The kind of record a change to one member's account or roles is audited as
/// (the member may be a client).
pub const PRACTICE_MEMBER: &str = "practice_member";

/// An account as an audited resource. Its id is left nil: the person is named only
/// as the event's subject, which erasure turns into a pseudonym, so no id of an
/// erased person survives in the hashed part of the log.
const fn person_resource(kind: &'static str) -> ResourceRef {
    ResourceRef::new(kind, uuid::Uuid::nil())
}

/// The kind of record a listing of a practice's people is audited as.
pub const PRACTICE_PEOPLE: &str = "practice_people";

impl IdentityService {
    /// The data-subject id of `user`, when the account exists: who an access to
    /// their account is about.
    async fn subject_of(&self, user: UserId) -> Result<Option<SubjectId>, IdentityError> {
        Ok(self.ports.repository.user(user).await?.map(|u| u.subject))
    }

    /// Records an access about `subject` (a client's account, for `action`) as the
    /// outcome of `result`, before `result` is returned: allowed, or denied for a
    /// refusal (role, another practice or no such client, a conflict that would
    /// reveal the relationship). Validation failures touched nothing and are not
    /// recorded. If the event cannot be made durable, the answer is
    /// [`IdentityError::Unavailable`] (fail closed).
    pub(crate) async fn audited<T>(
        &self,
        ctx: &RequestContext,
        action: AuditAction,
        resource: ResourceRef,
        subject: Option<SubjectId>,
        result: Result<T, IdentityError>,
    ) -> Result<T, IdentityError> {
        let outcome = match &result {
            Ok(_) => AuditOutcome::Allowed,
            Err(IdentityError::Forbidden(_)) => AuditOutcome::Denied {
                reason: "role_forbids",
            },
            Err(IdentityError::NotFound) => AuditOutcome::Denied {
                reason: "not_found_or_other_practice",
            },
            Err(IdentityError::Conflict(_)) => AuditOutcome::Denied { reason: "conflict" },
            Err(_) => return result,
        };
        self.ports
            .audit
            .record(AuditEvent::new(ctx, action, resource, subject, outcome))
            .await
            .map_err(unavailable)?;
        result
    }

    /// The caller, when they act in `organisation` with one of `roles`: another
    /// practice is [`IdentityError::NotFound`], another role
    /// [`IdentityError::Forbidden`].
    fn acting_in(
        ctx: &RequestContext,
        organisation: OrganisationId,
        roles: &[Role],
    ) -> Result<UserId, IdentityError> {
        let caller = Self::caller(ctx)?;
        if ctx.organisation() != Some(organisation) {
            return Err(IdentityError::NotFound);
        }
        if !ctx.actor().roles().contains_any(roles) {
            return Err(IdentityError::Forbidden(super::ROLE_FORBIDS));
        }
        Ok(caller)
    }

    /// Whether `user` holds `role` in `organisation`.
    async fn holds(
        &self,
        user: UserId,
        organisation: OrganisationId,
        role: Role,
    ) -> Result<bool, IdentityError> {
        Ok(self
            .ports
            .repository
            .memberships(user)
            .await?
            .iter()
            .any(|m| m.organisation == organisation && m.role == role))
    }

    /// Whether `user` holds any of `roles` in `organisation` (another context
    /// checking that a person it is given is a member, e.g. billing's contact).
    ///
    /// # Errors
    /// [`IdentityError::Unavailable`].
    pub async fn holds_any(
        &self,
        user: UserId,
        organisation: OrganisationId,
        roles: &[Role],
    ) -> Result<bool, IdentityError> {
        Ok(self
            .ports
            .repository
            .memberships(user)
            .await?
            .iter()
            .any(|m| m.organisation == organisation && roles.contains(&m.role)))
    }

    /// Creates an account pending activation, with `roles` in `organisation`, and
    /// queues its activation token.
    async fn create_pending_account(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        person: (PersonName, Email, Option<Phone>),
        roles: &[Role],
        date_of_birth: Option<DateOfBirth>,
        guardian_of: Option<(UserId, UserId)>,
    ) -> Result<User, IdentityError> {
        let now = ctx.at();
        let (name, email, phone) = person;
        let user = User {
            id: UserId::new(),
            subject: SubjectId::new(),
            home_organisation: organisation,
            name,
            email,
            phone,
            profession: None,
            status: AccountStatus::PendingVerification,
            email_verified_at: None,
            created_at: now,
        };
        let (token, hash) = IssuedToken::generate().map_err(unavailable)?.into_parts();
        let account = NewAccount {
            memberships: roles
                .iter()
                .map(|role| Membership {
                    user: user.id,
                    organisation,
                    role: *role,
                    created_at: now,
                })
                .collect(),
            date_of_birth,
            guardianship: guardian_of.map(|(minor, linked_by)| Guardianship {
                minor,
                guardian: user.id,
                organisation,
                linked_by,
                linked_at: now,
            }),
            activation: OneTimeToken {
                hash,
                purpose: TokenPurpose::ActivateAccount,
                user: user.id,
                expires_at: now + ACTIVATION_TTL,
            },
            user: user.clone(),
        };
        self.ports.people.create_account(&account).await?;
        self.record(ctx, Some(user.id), SecurityEventKind::AccountCreated)
            .await;
        self.notify(user.id, NoticeKind::ActivateAccount { token }, now)
            .await?;
        Ok(user)
    }

    /// Invites an existing account to take `role` in `organisation` (and to be
    /// `guardian_of`'s guardian) and tells them; nothing on the account changes
    /// until they accept.
    async fn invite_existing(
        &self,
        ctx: &RequestContext,
        user: &User,
        organisation: OrganisationId,
        role: Role,
        guardian_of: Option<UserId>,
    ) -> Result<(), IdentityError> {
        let invitation = Invitation {
            id: uuid::Uuid::now_v7(),
            user: user.id,
            organisation,
            role,
            guardian_of,
            invited_by: Self::caller(ctx)?,
            created_at: ctx.at(),
            accepted_at: None,
            declined_at: None,
        };
        self.ports.people.invite(&invitation).await?;
        self.notify(user.id, NoticeKind::InvitedToPractice, ctx.at())
            .await
    }

    /// A provider or org admin creates a client's own account in their practice
    /// (C3): identifying fields sealed, an activation token to the outbox. An
    /// email already registered is invited instead (the role follows its owner's
    /// acceptance; the date of birth typed is not recorded on it).
    ///
    /// # Errors
    /// [`IdentityError::NotFound`] (another practice), [`IdentityError::Forbidden`],
    /// [`IdentityError::Invalid`], [`IdentityError::Conflict`] (already a client
    /// here), [`IdentityError::Unavailable`].
    pub async fn create_client(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        form: NewClient,
    ) -> Result<Enrolled, IdentityError> {
        let result = self.enrol_client(ctx, organisation, form).await;
        // The enrolled account is at hand: no second lookup for its subject.
        let subject = result.as_ref().ok().map(|e| e.user().subject);
        let resource = person_resource(CLIENT_ACCOUNT);
        self.audited(ctx, AuditAction::Create, resource, subject, result)
            .await
    }

    async fn enrol_client(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        form: NewClient,
    ) -> Result<Enrolled, IdentityError> {
        Self::acting_in(ctx, organisation, &CARE_ROLES)?;
        let name = PersonName::parse(&form.name)?;
        let email = Email::parse(&form.email)?;
        let phone = form.phone.as_deref().map(Phone::parse).transpose()?;
        let date_of_birth = DateOfBirth::parse(form.date_of_birth, ctx.at().date_naive())?;
        if let Some((existing, _)) = self.ports.repository.find_by_email(&email).await? {
            if self.holds(existing.id, organisation, Role::Client).await? {
                return Err(IdentityError::Conflict(
                    "The person is already a client of this practice.",
                ));
            }
            self.invite_existing(ctx, &existing, organisation, Role::Client, None)
                .await?;
            return Ok(Enrolled::Invited(existing));
        }
        self.create_pending_account(
            ctx,
            organisation,
            (name, email, phone),
            &[Role::Client],
            Some(date_of_birth),
            None,
        )
        .await
        .map(Enrolled::Created)
    }

    /// Activates an account created for its owner: the token proves the address,
    /// the password is set (the sign-up policy) and the account becomes active. A
    /// client under 13 needs a linked guardian first (O1). A weak password or a
    /// missing guardian leaves the token unused.
    ///
    /// # Errors
    /// [`IdentityError::Token`], [`IdentityError::Invalid`],
    /// [`IdentityError::GuardianRequired`], [`IdentityError::Unavailable`].
    pub async fn activate_account(
        &self,
        ctx: &RequestContext,
        token: &Sensitive<String>,
        password: Sensitive<String>,
    ) -> Result<(), IdentityError> {
        let now = ctx.at();
        let hash = TokenHash::of_presented(token.expose());
        let owner = self
            .ports
            .people
            .token_owner(&hash, TokenPurpose::ActivateAccount, now)
            .await?
            .map_err(IdentityError::Token)?;
        let password = NewPassword::parse(password)?;
        if let Some(born) = self.ports.people.date_of_birth(owner).await?
            && born.age_on(now.date_naive()) < MIN_AGE_WITHOUT_GUARDIAN
            && !self.ports.people.has_guardian(owner).await?
        {
            return Err(IdentityError::GuardianRequired);
        }
        let password_hash = self
            .on_hashing_pool(move |hasher| hasher.hash(password.as_sensitive()))
            .await?
            .map_err(unavailable)?
            .to_phc_string();
        let user = self
            .ports
            .people
            .activate(&hash, &password_hash, now)
            .await?
            .map_err(IdentityError::Token)?;
        self.record(ctx, Some(user), SecurityEventKind::AccountActivated)
            .await;
        Ok(())
    }

    /// A provider or org admin links a guardian to a client whose home practice is
    /// theirs: a new account with its own activation token, linked at once; an
    /// existing account is invited, and the link (with the `client` role here, so
    /// they can sign in to the practice) is recorded when they accept. Only the
    /// link is recorded (minor, guardian, who, when); the guardian's consent is
    /// recorded by the consent context.
    ///
    /// # Errors
    /// [`IdentityError::NotFound`] (another practice, or not a client homed here),
    /// [`IdentityError::Forbidden`], [`IdentityError::Invalid`],
    /// [`IdentityError::Conflict`] (linked already, or the minor themselves),
    /// [`IdentityError::Unavailable`].
    pub async fn link_guardian(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        minor: UserId,
        form: NewPerson,
    ) -> Result<Enrolled, IdentityError> {
        let result = self
            .link_guardian_unaudited(ctx, organisation, minor, form)
            .await;
        let resource = person_resource(CLIENT_ACCOUNT);
        let subject = self.subject_of(minor).await?;
        self.audited(ctx, AuditAction::Update, resource, subject, result)
            .await
    }

    async fn link_guardian_unaudited(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        minor: UserId,
        form: NewPerson,
    ) -> Result<Enrolled, IdentityError> {
        let caller = Self::acting_in(ctx, organisation, &CARE_ROLES)?;
        let name = PersonName::parse(&form.name)?;
        let email = Email::parse(&form.email)?;
        let phone = form.phone.as_deref().map(Phone::parse).transpose()?;
        self.homed_in(organisation, minor).await?;
        if !self.holds(minor, organisation, Role::Client).await? {
            return Err(IdentityError::NotFound);
        }
        let Some((guardian, _)) = self.ports.repository.find_by_email(&email).await? else {
            let user = self
                .create_pending_account(
                    ctx,
                    organisation,
                    (name, email, phone),
                    &[Role::Client],
                    None,
                    Some((minor, caller)),
                )
                .await?;
            self.record(ctx, Some(minor), SecurityEventKind::GuardianLinked)
                .await;
            return Ok(Enrolled::Created(user));
        };
        if guardian.id == minor {
            return Err(IdentityError::Conflict(
                "A client cannot be their own guardian.",
            ));
        }
        self.invite_existing(ctx, &guardian, organisation, Role::Client, Some(minor))
            .await?;
        Ok(Enrolled::Invited(guardian))
    }

    /// A provider, org admin or privacy officer reports a client whose home
    /// practice is theirs as under 13 (O1): the account is frozen, every session of it ended and it
    /// is flagged for deletion, in one transaction; a security event is recorded.
    /// The person is not told why sign-in is refused.
    ///
    /// # Errors
    /// [`IdentityError::NotFound`] (another practice, or not a client homed
    /// here), [`IdentityError::Forbidden`], [`IdentityError::Conflict`] (flagged
    /// already), [`IdentityError::Unavailable`].
    pub async fn report_under_13(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
    ) -> Result<(), IdentityError> {
        let result = self
            .report_under_13_unaudited(ctx, organisation, client)
            .await;
        let resource = person_resource(CLIENT_ACCOUNT);
        let subject = self.subject_of(client).await?;
        self.audited(ctx, AuditAction::Update, resource, subject, result)
            .await
    }

    async fn report_under_13_unaudited(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
    ) -> Result<(), IdentityError> {
        let caller = Self::acting_in(ctx, organisation, &REPORTING_ROLES)?;
        self.homed_in(organisation, client).await?;
        if !self.holds(client, organisation, Role::Client).await? {
            return Err(IdentityError::NotFound);
        }
        let flag = DeletionFlag {
            user: client,
            organisation,
            reported_by: caller,
            flagged_at: ctx.at(),
        };
        match self
            .ports
            .people
            .suspend(client, AccountStatus::Frozen, ctx.at(), Some(&flag))
            .await
        {
            Ok(_) => {}
            Err(crate::ports::RepositoryError::Duplicate) => {
                return Err(IdentityError::Conflict(
                    "The account is already frozen and flagged for deletion.",
                ));
            }
            Err(err) => return Err(err.into()),
        }
        self.record(ctx, Some(client), SecurityEventKind::AccountFrozen)
            .await;
        Ok(())
    }

    /// An org admin adds a member with a role other than `client` (clients go
    /// through [`IdentityService::create_client`]): a new account gets an
    /// activation token; an existing one is invited (the role follows its owner's
    /// acceptance).
    ///
    /// # Errors
    /// [`IdentityError::NotFound`] (another practice), [`IdentityError::Forbidden`],
    /// [`IdentityError::Invalid`], [`IdentityError::Conflict`] (role held
    /// already), [`IdentityError::Unavailable`].
    pub async fn add_member(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        form: NewPerson,
        role: Role,
    ) -> Result<Enrolled, IdentityError> {
        Self::acting_in(ctx, organisation, &[Role::OrgAdmin])?;
        if role == Role::Client {
            return Err(IdentityError::Invalid(crate::values::InvalidValue {
                field: "role",
                rule: "must not be client; clients are created with their date of birth",
            }));
        }
        let name = PersonName::parse(&form.name)?;
        let email = Email::parse(&form.email)?;
        let phone = form.phone.as_deref().map(Phone::parse).transpose()?;
        if let Some((existing, _)) = self.ports.repository.find_by_email(&email).await? {
            if self.holds(existing.id, organisation, role).await? {
                return Err(IdentityError::Conflict(
                    "The person already holds this role in the practice.",
                ));
            }
            self.invite_existing(ctx, &existing, organisation, role, None)
                .await?;
            return Ok(Enrolled::Invited(existing));
        }
        self.create_pending_account(ctx, organisation, (name, email, phone), &[role], None, None)
            .await
            .map(Enrolled::Created)
    }

    /// The practice's members with their roles, for an org admin: by account id
    /// (time-ordered), those after `after`, at most `limit` (1 to 200), and
    /// whether more follow.
    ///
    /// # Errors
    /// [`IdentityError::NotFound`] (another practice), [`IdentityError::Forbidden`],
    /// [`IdentityError::Unavailable`].
    pub async fn members(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<(Vec<PracticeMember>, bool), IdentityError> {
        let result = self
            .members_unaudited(ctx, organisation, after, limit)
            .await;
        let resource = ResourceRef::new(PRACTICE_PEOPLE, organisation.as_uuid());
        self.audited(ctx, AuditAction::List, resource, None, result)
            .await
    }

    async fn members_unaudited(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<(Vec<PracticeMember>, bool), IdentityError> {
        Self::acting_in(ctx, organisation, &[Role::OrgAdmin])?;
        let limit = limit.clamp(1, 200);
        // One more than the page, to know whether another page follows.
        let mut members = self
            .ports
            .people
            .members(organisation, after, limit + 1)
            .await?;
        let page = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = members.len() > page;
        members.truncate(page);
        Ok((members, more))
    }

    /// An org admin takes a role from a member; never the practice's last
    /// `org_admin`.
    ///
    /// # Errors
    /// [`IdentityError::NotFound`] (another practice, or the role is not held),
    /// [`IdentityError::Forbidden`], [`IdentityError::Conflict`] (the last org
    /// admin), [`IdentityError::Unavailable`].
    pub async fn remove_role(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        member: UserId,
        role: Role,
    ) -> Result<(), IdentityError> {
        let result = self
            .remove_role_unaudited(ctx, organisation, member, role)
            .await;
        let resource = person_resource(PRACTICE_MEMBER);
        let subject = self.subject_of(member).await?;
        self.audited(ctx, AuditAction::Update, resource, subject, result)
            .await
    }

    async fn remove_role_unaudited(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        member: UserId,
        role: Role,
    ) -> Result<(), IdentityError> {
        Self::acting_in(ctx, organisation, &[Role::OrgAdmin])?;
        match self
            .ports
            .people
            .remove_role(organisation, member, role)
            .await?
        {
            RoleRemoval::Removed => {}
            RoleRemoval::NotHeld => return Err(IdentityError::NotFound),
            RoleRemoval::LastOrgAdmin => {
                return Err(IdentityError::Conflict(
                    "The practice's last org_admin cannot lose the role.",
                ));
            }
        }
        self.record(ctx, Some(member), SecurityEventKind::RoleRemoved)
            .await;
        Ok(())
    }

    /// The data-subject id of `client`, a client of `organisation`, for a caller
    /// acting there with one of `roles` (the audit and disclosure operations about
    /// one client). Another practice, or someone not a client there, is
    /// [`IdentityError::NotFound`], as for an id that does not exist.
    ///
    /// # Errors
    /// [`IdentityError::NotFound`], [`IdentityError::Forbidden`],
    /// [`IdentityError::Unavailable`].
    pub async fn client_subject(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        roles: &[Role],
    ) -> Result<SubjectId, IdentityError> {
        let result = self
            .client_subject_unaudited(ctx, organisation, client, roles)
            .await;
        if result.is_ok() {
            // The access itself is recorded by the operation that asked.
            return result;
        }
        let resource = person_resource(CLIENT_ACCOUNT);
        let subject = self.subject_of(client).await?;
        self.audited(ctx, AuditAction::Read, resource, subject, result)
            .await
    }

    async fn client_subject_unaudited(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        client: UserId,
        roles: &[Role],
    ) -> Result<SubjectId, IdentityError> {
        Self::acting_in(ctx, organisation, roles)?;
        if !self.holds(client, organisation, Role::Client).await? {
            return Err(IdentityError::NotFound);
        }
        let user = self
            .ports
            .repository
            .user(client)
            .await?
            .ok_or(IdentityError::NotFound)?;
        Ok(user.subject)
    }

    /// The names of `people` who still have an account (an access report shows
    /// who looked, by name). Erased or unknown ids are left out.
    ///
    /// # Errors
    /// [`IdentityError::Unavailable`].
    pub async fn names(
        &self,
        people: &[UserId],
    ) -> Result<Vec<(UserId, PersonName)>, IdentityError> {
        let mut unique = people.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut names = Vec::with_capacity(unique.len());
        for id in unique {
            if let Some(user) = self.ports.repository.user(id).await? {
                names.push((id, user.name));
            }
        }
        Ok(names)
    }

    /// The account `user`, when its home practice is `organisation`.
    async fn homed_in(
        &self,
        organisation: OrganisationId,
        user: UserId,
    ) -> Result<User, IdentityError> {
        self.ports
            .repository
            .user(user)
            .await?
            .filter(|u| u.home_organisation == organisation)
            .ok_or(IdentityError::NotFound)
    }

    /// An org admin disables an active account whose home practice is theirs (a
    /// pending, frozen or already disabled one is a conflict): the status
    /// and the end of every session are one transaction, so no session outlives
    /// it. A security event and a notice follow; sign-in is refused until enabled.
    ///
    /// # Errors
    /// [`IdentityError::NotFound`] (another practice, or not homed here),
    /// [`IdentityError::Forbidden`], [`IdentityError::Conflict`] (one's own
    /// account, or one not active), [`IdentityError::Unavailable`].
    pub async fn disable_account(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        user: UserId,
    ) -> Result<(), IdentityError> {
        let result = self
            .disable_account_unaudited(ctx, organisation, user)
            .await;
        let resource = person_resource(PRACTICE_MEMBER);
        let subject = self.subject_of(user).await?;
        self.audited(ctx, AuditAction::Update, resource, subject, result)
            .await
    }

    async fn disable_account_unaudited(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        user: UserId,
    ) -> Result<(), IdentityError> {
        let caller = Self::acting_in(ctx, organisation, &[Role::OrgAdmin])?;
        let account = self.homed_in(organisation, user).await?;
        if caller == user {
            return Err(IdentityError::Conflict(
                "An administrator cannot disable their own account.",
            ));
        }
        if account.status == AccountStatus::Frozen {
            return Err(IdentityError::Conflict(
                "The account is frozen pending deletion.",
            ));
        }
        if !self.ports.people.disable(user, ctx.at()).await? {
            return Err(IdentityError::Conflict(
                "Only an active account is disabled.",
            ));
        }
        self.record(ctx, Some(user), SecurityEventKind::AccountDisabled)
            .await;
        self.notify(user, NoticeKind::AccountDisabled, ctx.at())
            .await
    }

    /// An org admin enables a disabled account again: sign-in works; the sessions
    /// ended by disabling stay ended. An account disabled by its owner's deletion
    /// request stays disabled.
    ///
    /// # Errors
    /// [`IdentityError::NotFound`] (another practice, or not homed here),
    /// [`IdentityError::Forbidden`], [`IdentityError::Conflict`] (not disabled,
    /// or its owner asked for its deletion),
    /// [`IdentityError::Unavailable`].
    pub async fn enable_account(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        user: UserId,
    ) -> Result<(), IdentityError> {
        let result = self.enable_account_unaudited(ctx, organisation, user).await;
        let resource = person_resource(PRACTICE_MEMBER);
        let subject = self.subject_of(user).await?;
        self.audited(ctx, AuditAction::Update, resource, subject, result)
            .await
    }

    async fn enable_account_unaudited(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        user: UserId,
    ) -> Result<(), IdentityError> {
        Self::acting_in(ctx, organisation, &[Role::OrgAdmin])?;
        self.homed_in(organisation, user).await?;
        if !self.ports.people.enable(user).await? {
            return Err(IdentityError::Conflict(
                "The account is not disabled, or its owner asked for its deletion.",
            ));
        }
        self.record(ctx, Some(user), SecurityEventKind::AccountEnabled)
            .await;
        self.notify(user, NoticeKind::AccountEnabled, ctx.at())
            .await
    }

    /// The caller's own pending invitations (a person's session, not an API key).
    ///
    /// # Errors
    /// [`IdentityError::Unauthenticated`], [`IdentityError::Unavailable`].
    pub async fn my_invitations(
        &self,
        ctx: &RequestContext,
    ) -> Result<Vec<Invitation>, IdentityError> {
        let caller = Self::caller(ctx)?;
        let mut all = self.ports.people.invitations(caller).await?;
        all.retain(|i| i.accepted_at.is_none() && i.declined_at.is_none());
        Ok(all)
    }

    /// The caller accepts their own pending invitation: the membership (and the
    /// guardianship it offers) is created with the acceptance, atomically.
    ///
    /// # Errors
    /// [`IdentityError::NotFound`] (unknown, someone else's, or not pending),
    /// [`IdentityError::Unavailable`].
    pub async fn accept_invitation(
        &self,
        ctx: &RequestContext,
        invitation: uuid::Uuid,
    ) -> Result<(), IdentityError> {
        let caller = Self::caller(ctx)?;
        let accepted = self
            .ports
            .people
            .accept_invitation(caller, invitation, ctx.at())
            .await?
            .ok_or(IdentityError::NotFound)?;
        self.record(ctx, Some(caller), SecurityEventKind::RoleGranted)
            .await;
        if let Some(minor) = accepted.guardian_of {
            self.record(ctx, Some(minor), SecurityEventKind::GuardianLinked)
                .await;
        }
        Ok(())
    }

    /// Whether only a guardian decides for `user` (O1): their recorded date of birth
    /// makes them younger than [`MIN_AGE_WITHOUT_GUARDIAN`] on `today`.
    ///
    /// # Errors
    /// [`IdentityError::Unavailable`].
    pub async fn is_child(&self, user: UserId, today: NaiveDate) -> Result<bool, IdentityError> {
        Ok(self
            .ports
            .people
            .date_of_birth(user)
            .await?
            .is_some_and(|born| born.age_on(today) < MIN_AGE_WITHOUT_GUARDIAN))
    }

    /// The subject of `minor` when the caller is their linked guardian (O1), with
    /// the practice they were linked in. Anyone else gets
    /// [`IdentityError::NotFound`], as for an account that does not exist.
    ///
    /// # Errors
    /// [`IdentityError::NotFound`], [`IdentityError::Unauthenticated`],
    /// [`IdentityError::Unavailable`].
    pub async fn ward_subject(
        &self,
        ctx: &RequestContext,
        minor: UserId,
    ) -> Result<(SubjectId, OrganisationId), IdentityError> {
        let caller = Self::caller(ctx)?;
        let link = self
            .ports
            .accounts
            .guardianships(caller)
            .await?
            .into_iter()
            .find(|g| g.guardian == caller && g.minor == minor)
            .ok_or(IdentityError::NotFound)?;
        let subject = self
            .subject_of(minor)
            .await?
            .ok_or(IdentityError::NotFound)?;
        Ok((subject, link.organisation))
    }

    /// Queues a notice of `kind` (a stable machine name, e.g.
    /// `billing_payment_failed`) with `summary` (no health data, no secrets) for
    /// every active member of `organisation` holding `role`: how another context
    /// (billing) tells a practice's administrators. Returns how many were told.
    ///
    /// # Errors
    /// [`IdentityError::Unavailable`].
    pub async fn notify_role_holders(
        &self,
        organisation: OrganisationId,
        role: Role,
        kind: &'static str,
        summary: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<u32, IdentityError> {
        let holders = self.ports.people.active_holders(organisation, role).await?;
        let mut told = 0;
        for user in holders {
            self.ports
                .notifier
                .send(&crate::model::Notice {
                    user,
                    kind: NoticeKind::Practice {
                        kind,
                        summary: summary.to_owned(),
                    },
                    at,
                })
                .await?;
            told += 1;
        }
        Ok(told)
    }

    /// Tells the person behind `subject` that `policy` (`document@version`) changed
    /// materially (O3). `Ok(false)` when the subject has no live account to tell.
    ///
    /// # Errors
    /// [`IdentityError::Unavailable`].
    pub async fn notify_policy_change(
        &self,
        subject: SubjectId,
        policy: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, IdentityError> {
        let Some((user, erased)) = self.ports.accounts.account_of_subject(subject).await? else {
            return Ok(false);
        };
        if erased {
            return Ok(false);
        }
        self.ports
            .notifier
            .send(&crate::model::Notice {
                user,
                kind: NoticeKind::PolicyChanged {
                    policy: policy.to_owned(),
                },
                at,
            })
            .await?;
        Ok(true)
    }
}
