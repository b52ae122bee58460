//! The people of a practice: client accounts (C3) and their activation, the age
//! gate and guardians (O1), members and their roles, disabling an account.
//!
//! Activation is public by design (the token is the credential); everything else
//! needs a session in the practice named in the path: another practice's id is
//! 404, as for one that does not exist, and a role that may not do the operation
//! is 403. Errors are mapped from `IdentityError` in `api::identity`.
//!
//! Creating a client, adding a member or linking a guardian answers `202` with
//! the same body whether or not the email had an account: a new account gets an
//! activation token, an existing one an invitation its owner accepts from
//! `/v1/me/invitations` (own-account operations: a person's session only).

use billing::model::Limit;
use chrono::NaiveDate;
use identity::model::{Invitation, PracticeMember};
use identity::service::members::{Enrolled, NewClient, NewPerson};
use kernel::{OrganisationId, Purpose, RequestContext, Role, Sensitive, UserId};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use crate::api::ApiTags;
use crate::api::account::Accepted;
use crate::api::identity::{Done, Found, UserView};
use crate::auth::{SessionAuth, anonymous_context};
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;

/// The people-of-a-practice operations.
#[derive(Debug)]
pub struct PracticeApi {
    state: AppState,
}

impl PracticeApi {
    /// The operations over `state`.
    #[must_use]
    pub const fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Refuses one more of `limit` when the practice's billing plan is at it (409
    /// `plan-limit-reached`), for a caller acting in `organisation` with one of
    /// `may` (the roles that may add such a person). Anyone else is refused by
    /// identity as before, without learning anything of the plan. A practice
    /// without a subscription has no limits.
    async fn ensure_room(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        limit: Limit,
        may: &[Role],
    ) -> Result<(), ApiError> {
        if ctx.organisation() == Some(organisation) && ctx.actor().roles().contains_any(may) {
            self.state
                .billing()
                .ensure_room(organisation, limit)
                .await?;
        }
        Ok(())
    }
}

/// A role given by adding a member (`client` goes through `createClient`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum MemberRole {
    /// Manages the practice.
    OrgAdmin,
    /// Treats clients.
    Provider,
    /// Practice staff.
    Staff,
    /// Works rights requests and complaints.
    PrivacyOfficer,
    /// Reads audit and consent records.
    Auditor,
}

impl From<MemberRole> for Role {
    fn from(role: MemberRole) -> Self {
        match role {
            MemberRole::OrgAdmin => Self::OrgAdmin,
            MemberRole::Provider => Self::Provider,
            MemberRole::Staff => Self::Staff,
            MemberRole::PrivacyOfficer => Self::PrivacyOfficer,
            MemberRole::Auditor => Self::Auditor,
        }
    }
}

/// Any role in a practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum AnyRole {
    /// Manages the practice.
    OrgAdmin,
    /// Treats clients.
    Provider,
    /// Practice staff.
    Staff,
    /// A client (or a client's guardian).
    Client,
    /// Works rights requests and complaints.
    PrivacyOfficer,
    /// Reads audit and consent records.
    Auditor,
}

impl From<AnyRole> for Role {
    fn from(role: AnyRole) -> Self {
        match role {
            AnyRole::OrgAdmin => Self::OrgAdmin,
            AnyRole::Provider => Self::Provider,
            AnyRole::Staff => Self::Staff,
            AnyRole::Client => Self::Client,
            AnyRole::PrivacyOfficer => Self::PrivacyOfficer,
            AnyRole::Auditor => Self::Auditor,
        }
    }
}

/// A client's own account, created by a provider or org admin (C3). Name, email,
/// phone and date of birth are sealed with the client's data key.
#[derive(Debug, Object)]
pub struct CreateClientRequest {
    /// Their full name.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
    /// Their email; the activation token is sent to it. An email already
    /// registered gets the `client` role in this practice instead.
    #[oai(validator(
        max_length = 254,
        pattern = r"^[A-Za-z0-9_%+-]{1,32}(\.[A-Za-z0-9_%+-]{1,15}){0,2}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
    ))]
    pub email: String,
    /// Their phone, in international form: `+` and 8 to 15 digits.
    #[oai(validator(pattern = r"^\+[1-9][0-9]{7,14}$"))]
    pub phone: Option<String>,
    /// `YYYY-MM-DD`; not in the future, within the last 130 years. Under 13, the
    /// account cannot be activated until a guardian is linked.
    pub date_of_birth: NaiveDate,
    /// The provider's attestation that the client authorised sharing their
    /// information with the service (S6), recorded in their consent ledger with the
    /// account. Required: no client data is entered without it.
    pub service_authorisation: crate::api::consent::NewAttestation,
}

/// A person to add: a guardian, or a member with a role.
#[derive(Debug, Object)]
pub struct PersonRequest {
    /// Their full name.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
    /// Their email; a new account's activation token is sent to it.
    #[oai(validator(
        max_length = 254,
        pattern = r"^[A-Za-z0-9_%+-]{1,32}(\.[A-Za-z0-9_%+-]{1,15}){0,2}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
    ))]
    pub email: String,
    /// Their phone, in international form: `+` and 8 to 15 digits.
    #[oai(validator(pattern = r"^\+[1-9][0-9]{7,14}$"))]
    pub phone: Option<String>,
}

/// A member to add with a role.
#[derive(Debug, Object)]
pub struct AddMemberRequest {
    /// Their full name.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
    /// Their email; a new account's activation token is sent to it, an existing
    /// account gains the role and a notice.
    #[oai(validator(
        max_length = 254,
        pattern = r"^[A-Za-z0-9_%+-]{1,32}(\.[A-Za-z0-9_%+-]{1,15}){0,2}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
    ))]
    pub email: String,
    /// Their phone, in international form: `+` and 8 to 15 digits.
    #[oai(validator(pattern = r"^\+[1-9][0-9]{7,14}$"))]
    pub phone: Option<String>,
    /// The role to give.
    pub role: MemberRole,
}

/// An activation: the token from the email and the new password.
#[derive(Debug, Object)]
pub struct ActivationRequest {
    /// The token, as received.
    #[oai(validator(max_length = 128))]
    pub token: String,
    /// At least 12 characters, not a common password.
    #[oai(validator(min_length = 12, max_length = 128))]
    pub password: String,
}

/// What enrolling a person did, told the same way whether or not the email had
/// an account (so the answer does not reveal it): a message went to the address,
/// either an activation token (new account) or an invitation (existing account,
/// which nothing changed). The person appears in `listMembers` once they hold a
/// role here.
#[derive(Debug, Object)]
pub struct EnrolledView {
    /// The email, normalised.
    pub email: String,
    /// Always `notified`.
    pub status: String,
}

impl From<&Enrolled> for EnrolledView {
    fn from(enrolled: &Enrolled) -> Self {
        Self {
            email: enrolled.user().email.as_str().to_owned(),
            status: "notified".to_owned(),
        }
    }
}

/// A practice's pending invitation to the caller.
#[derive(Debug, Object)]
pub struct InvitationView {
    /// The invitation's id (accept it with `acceptInvitation`).
    pub id: Uuid,
    /// The practice inviting.
    pub organisation_id: Uuid,
    /// The role offered.
    pub role: String,
    /// The client whose guardian you are asked to be, if any.
    #[oai(skip_serializing_if_is_none)]
    pub guardian_of: Option<Uuid>,
    /// When the practice invited you (UTC).
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Invitation> for InvitationView {
    fn from(i: &Invitation) -> Self {
        Self {
            id: i.id,
            organisation_id: i.organisation.as_uuid(),
            role: i.role.as_str().to_owned(),
            guardian_of: i.guardian_of.map(|minor| minor.as_uuid()),
            created_at: i.created_at,
        }
    }
}

/// The caller's pending invitations, oldest first.
#[derive(Debug, Object)]
pub struct InvitationList {
    /// The invitations.
    pub items: Vec<InvitationView>,
}

/// A member of the practice with their roles in it.
#[derive(Debug, Object)]
pub struct MemberView {
    /// The account.
    pub user: UserView,
    /// Their roles in this practice.
    pub roles: Vec<String>,
}

impl From<&PracticeMember> for MemberView {
    fn from(m: &PracticeMember) -> Self {
        Self {
            user: (&m.user).into(),
            roles: m.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        }
    }
}

/// A page of members, by account id (time-ordered).
#[derive(Debug, Object)]
pub struct MemberPage {
    /// The members on this page.
    pub items: Vec<MemberView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// The cursor's prefix: a cursor names its list (the practice) and position.
const CURSOR_PREFIX: &str = "m1";

fn cursor_for(organisation: OrganisationId, last: Uuid) -> String {
    format!(
        "{CURSOR_PREFIX}{}{}",
        organisation.as_uuid().simple(),
        last.simple()
    )
}

/// The position a cursor holds, if it is one of this practice's member list.
fn position(organisation: OrganisationId, cursor: &str) -> Result<UserId, ApiError> {
    let bad = || {
        ApiError::new(
            ProblemKind::BadRequest,
            "The parameter `cursor` is malformed or belongs to another list.",
        )
    };
    let rest = cursor.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    let (list, last) = rest.split_at_checked(32).ok_or_else(bad)?;
    let list = Uuid::try_parse(list).map_err(|_| bad())?;
    let last = Uuid::try_parse(last).map_err(|_| bad())?;
    if list != organisation.as_uuid() {
        return Err(bad());
    }
    Ok(UserId::from_uuid(last))
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Practice")]
impl PracticeApi {
    /// The clients you may see: a provider's care-team clients, or every client
    /// of the practice for its admins. Others get 403. A list never counts what
    /// it leaves out. (Kept with the practice's other operations on this path;
    /// answered by the clinical service.)
    #[oai(
        path = "/organisations/:organisation_id/clients",
        method = "get",
        operation_id = "listClients"
    )]
    async fn list_clients(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        /// 1 to 100, default 50.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// The previous page's `next_cursor`.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
    ) -> Result<Found<crate::api::clinical::ClientPage>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Treatment);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let list = crate::api::clinical::list_key(
            "clients",
            &[
                organisation_id.0,
                ctx.actor().user().map_or(Uuid::nil(), |u| u.as_uuid()),
            ],
        );
        let page = crate::api::clinical::page_request(list, cursor.0.as_deref(), limit.0)?;
        let page = self
            .state
            .clinical()
            .clients(&ctx, organisation, page)
            .await?;
        Ok(Found::Ok(Json(crate::api::clinical::ClientPage {
            items: page
                .items
                .iter()
                .map(
                    |l: &clinical::ports::ClientListing| crate::api::clinical::ClientListingView {
                        client_id: l.client.user.as_uuid(),
                        since: l.since,
                    },
                )
                .collect(),
            next_cursor: crate::api::clinical::next_cursor(list, &page),
        })))
    }

    /// Create a client's own account in the practice (provider or org_admin). A
    /// new account gets an activation token by email; an email already
    /// registered is invited instead (the role follows its owner's acceptance,
    /// and the date of birth typed is not recorded on it). The answer is the
    /// same either way.
    #[oai(
        path = "/organisations/:organisation_id/clients",
        method = "post",
        operation_id = "createClient"
    )]
    async fn create_client(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        body: Json<CreateClientRequest>,
    ) -> Result<Accepted<EnrolledView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let b = body.0;
        let attestation = b.service_authorisation;
        crate::api::consent::check_attestation(&ctx, &attestation)?;
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        self.ensure_room(
            &ctx,
            organisation,
            Limit::ActiveClients,
            &[Role::Provider, Role::OrgAdmin],
        )
        .await?;
        let enrolled = self
            .state
            .identity()
            .create_client(
                &ctx,
                organisation,
                NewClient {
                    name: b.name,
                    email: b.email,
                    phone: b.phone,
                    date_of_birth: b.date_of_birth,
                },
            )
            .await?;
        // The account exists now; should recording the attestation fail, the answer
        // is 503 and the provider attests again (`attestServiceAuthorisation`):
        // until then the consent gate refuses every use of the client's data.
        crate::api::consent::record_attestation(
            &self.state,
            &ctx.with_purpose(Purpose::Treatment),
            organisation,
            (enrolled.user().id, enrolled.user().subject),
            attestation,
        )
        .await?;
        // The provider who created the client joins their care team, so the client
        // they just created is theirs to see (an admin who is not a provider does
        // not; an invited person joins no team until they accept).
        self.state
            .clinical()
            .enrol(
                &ctx.with_purpose(Purpose::Treatment),
                organisation,
                enrolled.user().id,
            )
            .await?;
        Ok(Accepted::Accepted(Json((&enrolled).into())))
    }

    /// Activate an account created for you, with the token from its email and a
    /// new password. A client under 13 needs a linked guardian first
    /// (`urn:custodia:problem:guardian-required`; the token stays valid).
    #[oai(
        path = "/account-activations",
        method = "post",
        operation_id = "activateAccount"
    )]
    async fn activate_account(
        &self,
        req: &Request,
        body: Json<ActivationRequest>,
    ) -> Result<Done, ApiError> {
        let ctx = anonymous_context(&self.state, req);
        let b = body.0;
        self.state
            .identity()
            .activate_account(&ctx, &Sensitive::new(b.token), Sensitive::new(b.password))
            .await?;
        Ok(Done::NoContent)
    }

    /// Link a guardian to a client whose home practice is this one (provider or
    /// org_admin): a new account with its own activation token is linked at once;
    /// an existing account is invited and linked when its owner accepts. The
    /// answer is the same either way. The guardian holds the `client` role in the
    /// practice to sign in; their consent is recorded by the consent operations.
    #[oai(
        path = "/organisations/:organisation_id/clients/:user_id/guardians",
        method = "post",
        operation_id = "linkGuardian"
    )]
    async fn link_guardian(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        user_id: Path<Uuid>,
        body: Json<PersonRequest>,
    ) -> Result<Accepted<EnrolledView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let b = body.0;
        let enrolled = self
            .state
            .identity()
            .link_guardian(
                &ctx,
                OrganisationId::from_uuid(organisation_id.0),
                UserId::from_uuid(user_id.0),
                NewPerson {
                    name: b.name,
                    email: b.email,
                    phone: b.phone,
                },
            )
            .await?;
        Ok(Accepted::Accepted(Json((&enrolled).into())))
    }

    /// Report a client whose home practice is this one as under 13 (provider, org_admin or
    /// privacy_officer): the account is frozen, its sessions end at once, and it
    /// is flagged for deletion (O1): an erasure request for the child is filed
    /// in the practice's rights queue.
    #[oai(
        path = "/organisations/:organisation_id/clients/:user_id/under-13-report",
        method = "post",
        operation_id = "reportClientUnder13"
    )]
    async fn report_under_13(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        user_id: Path<Uuid>,
    ) -> Result<Done, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        self.state
            .identity()
            .report_under_13(
                &ctx,
                OrganisationId::from_uuid(organisation_id.0),
                UserId::from_uuid(user_id.0),
            )
            .await?;
        // The child's data is to be deleted promptly (O1): an erasure request on
        // the child's behalf goes to the practice's privacy officer, who verifies
        // and carries it out. Filing again returns the open one.
        self.state
            .rights()
            .file(
                &ctx.with_purpose(Purpose::SubjectRequest),
                data_rights::service::Filing {
                    kind: data_rights::RequestKind::Erasure,
                    regime: kernel::Regime::Gdpr,
                    on_behalf_of: data_rights::service::OnBehalfOf::Client {
                        user: UserId::from_uuid(user_id.0),
                    },
                    detail: data_rights::request::RequestDetail::None,
                },
            )
            .await?;
        Ok(Done::NoContent)
    }

    /// Add a member with a role (org_admin). A new account gets an activation
    /// token by email; an existing one is invited (the role follows its owner's
    /// acceptance). The answer is the same either way.
    #[oai(
        path = "/organisations/:organisation_id/members",
        method = "post",
        operation_id = "addMember"
    )]
    async fn add_member(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        body: Json<AddMemberRequest>,
    ) -> Result<Accepted<EnrolledView>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let b = body.0;
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        if b.role == MemberRole::Provider {
            self.ensure_room(&ctx, organisation, Limit::Providers, &[Role::OrgAdmin])
                .await?;
        }
        let enrolled = self
            .state
            .identity()
            .add_member(
                &ctx,
                organisation,
                NewPerson {
                    name: b.name,
                    email: b.email,
                    phone: b.phone,
                },
                b.role.into(),
            )
            .await?;
        Ok(Accepted::Accepted(Json((&enrolled).into())))
    }

    /// The practice's members with their roles (org_admin), paged by cursor.
    #[oai(
        path = "/organisations/:organisation_id/members",
        method = "get",
        operation_id = "listMembers"
    )]
    async fn list_members(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        /// 1 to 200, default 50.
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// The previous page's `next_cursor`.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
    ) -> Result<Found<MemberPage>, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        let organisation = OrganisationId::from_uuid(organisation_id.0);
        let after = cursor
            .0
            .as_deref()
            .map(|c| position(organisation, c))
            .transpose()?;
        let (members, more) = self
            .state
            .identity()
            .members(&ctx, organisation, after, limit.0.unwrap_or(50))
            .await?;
        let next_cursor = members
            .last()
            .filter(|_| more)
            .map(|m| cursor_for(organisation, m.user.id.as_uuid()));
        Ok(Found::Ok(Json(MemberPage {
            items: members.iter().map(Into::into).collect(),
            next_cursor,
        })))
    }

    /// Take a role from a member (org_admin); never the practice's last org_admin.
    #[oai(
        path = "/organisations/:organisation_id/members/:user_id/roles/:role",
        method = "delete",
        operation_id = "removeMemberRole"
    )]
    async fn remove_member_role(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        user_id: Path<Uuid>,
        role: Path<AnyRole>,
    ) -> Result<Done, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        self.state
            .identity()
            .remove_role(
                &ctx,
                OrganisationId::from_uuid(organisation_id.0),
                UserId::from_uuid(user_id.0),
                role.0.into(),
            )
            .await?;
        Ok(Done::NoContent)
    }

    /// Disable an account whose home practice is this one (org_admin): every
    /// session of it ends at once and sign-in is refused until it is enabled.
    #[oai(
        path = "/organisations/:organisation_id/members/:user_id/disablement",
        method = "put",
        operation_id = "disableAccount"
    )]
    async fn disable_account(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        user_id: Path<Uuid>,
    ) -> Result<Done, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        self.state
            .identity()
            .disable_account(
                &ctx,
                OrganisationId::from_uuid(organisation_id.0),
                UserId::from_uuid(user_id.0),
            )
            .await?;
        Ok(Done::NoContent)
    }

    /// Enable a disabled account again (org_admin): sign-in works again; the
    /// sessions ended by disabling stay ended.
    #[oai(
        path = "/organisations/:organisation_id/members/:user_id/disablement",
        method = "delete",
        operation_id = "enableAccount"
    )]
    async fn enable_account(
        &self,
        req: &Request,
        auth: SessionAuth,
        organisation_id: Path<Uuid>,
        user_id: Path<Uuid>,
    ) -> Result<Done, ApiError> {
        let ctx = auth.context(&self.state, req, Purpose::Operations);
        self.state
            .identity()
            .enable_account(
                &ctx,
                OrganisationId::from_uuid(organisation_id.0),
                UserId::from_uuid(user_id.0),
            )
            .await?;
        Ok(Done::NoContent)
    }

    /// Your pending invitations from practices (a person's session; an API key
    /// is refused).
    #[oai(
        path = "/me/invitations",
        method = "get",
        operation_id = "listMyInvitations"
    )]
    async fn list_my_invitations(
        &self,
        req: &Request,
        auth: SessionAuth,
    ) -> Result<Found<InvitationList>, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::Operations)?;
        let invitations = self.state.identity().my_invitations(&ctx).await?;
        Ok(Found::Ok(Json(InvitationList {
            items: invitations.iter().map(Into::into).collect(),
        })))
    }

    /// Accept one of your pending invitations: the role (and guardianship) it
    /// offers is yours from now on. Someone else's or an unknown invitation is
    /// 404.
    #[oai(
        path = "/me/invitations/:invitation_id/acceptance",
        method = "post",
        operation_id = "acceptInvitation"
    )]
    async fn accept_invitation(
        &self,
        req: &Request,
        auth: SessionAuth,
        invitation_id: Path<Uuid>,
    ) -> Result<Done, ApiError> {
        let ctx = auth.person_context(&self.state, req, Purpose::Operations)?;
        self.state
            .identity()
            .accept_invitation(&ctx, invitation_id.0)
            .await?;
        Ok(Done::NoContent)
    }
}
