//! [`RequestContext`]: who is asking, for which practice, why, and from where.
//!
//! One context is built at the edge (the server's auth middleware, or a background
//! job) and passed by reference through every service call, so that authorisation,
//! consent and audit all see the same facts. Its fields are private: a context is
//! never edited in flight, only narrowed with [`RequestContext::with_purpose`].

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use uuid::Uuid;

use crate::{OrganisationId, Purpose, RequestId, UserId};

/// A role a person holds in a practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages the practice: members, settings, billing.
    OrgAdmin,
    /// A healthcare provider who treats clients.
    Provider,
    /// Practice staff without a clinical relationship of their own.
    Staff,
    /// A client (patient) of the practice.
    Client,
    /// The practice's privacy officer, who works rights requests and complaints.
    PrivacyOfficer,
    /// Reads audit and consent records, and nothing clinical.
    Auditor,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Self; 6] = [
        Self::OrgAdmin,
        Self::Provider,
        Self::Staff,
        Self::Client,
        Self::PrivacyOfficer,
        Self::Auditor,
    ];

    /// The stable machine name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OrgAdmin => "org_admin",
            Self::Provider => "provider",
            Self::Staff => "staff",
            Self::Client => "client",
            Self::PrivacyOfficer => "privacy_officer",
            Self::Auditor => "auditor",
        }
    }

    /// Parses [`Role::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roles one person holds in one practice (a practice owner is often both
/// `org_admin` and `provider`). A small copyable set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RoleSet(u8);

impl RoleSet {
    /// No role.
    pub const EMPTY: Self = Self(0);

    const fn bit(role: Role) -> u8 {
        1 << (role as u8)
    }

    /// The set holding only `role`.
    #[must_use]
    pub const fn only(role: Role) -> Self {
        Self(Self::bit(role))
    }

    /// This set with `role` added.
    #[must_use]
    pub const fn with(self, role: Role) -> Self {
        Self(self.0 | Self::bit(role))
    }

    /// Whether `role` is held.
    #[must_use]
    pub const fn contains(self, role: Role) -> bool {
        self.0 & Self::bit(role) != 0
    }

    /// Whether any of `roles` is held.
    #[must_use]
    pub fn contains_any(self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.contains(*r))
    }

    /// Whether no role is held.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The roles held, in [`Role::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

impl FromIterator<Role> for RoleSet {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

impl fmt::Debug for RoleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for RoleSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// Who is acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// Nobody has signed in. Only public operations accept this actor.
    Anonymous,
    /// A signed-in person (or an API key acting for the practice) with their roles
    /// in the context's organisation.
    Member {
        /// The person (for an API key, the person who created it).
        user: UserId,
        /// The roles they act with.
        roles: RoleSet,
    },
    /// The platform operator: runs the service, is a member of no practice.
    PlatformOperator {
        /// The operator.
        user: UserId,
    },
    /// Custodia itself, in a background job (retention, dunning, deadlines).
    System {
        /// The component acting, e.g. `retention`.
        component: &'static str,
    },
}

impl Actor {
    /// The person acting, if a person is.
    #[must_use]
    pub const fn user(&self) -> Option<UserId> {
        match self {
            Self::Member { user, .. } | Self::PlatformOperator { user } => Some(*user),
            Self::Anonymous | Self::System { .. } => None,
        }
    }

    /// The roles acted with (empty for non-members).
    #[must_use]
    pub const fn roles(&self) -> RoleSet {
        match self {
            Self::Member { roles, .. } => *roles,
            _ => RoleSet::EMPTY,
        }
    }

    /// Whether the actor is a member holding `role`.
    #[must_use]
    pub const fn has_role(&self, role: Role) -> bool {
        self.roles().contains(role)
    }
}

/// The longest user agent kept; longer ones are cut (on a character boundary).
pub const MAX_USER_AGENT_LEN: usize = 256;

/// Where a request came from: its client address, user agent and, at most, a
/// country (C7: coarse location only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClientInfo {
    address: Option<IpAddr>,
    user_agent: Option<String>,
    country: Option<String>,
}

impl ClientInfo {
    /// Client facts as seen at the edge. The user agent is cut to
    /// [`MAX_USER_AGENT_LEN`] bytes and stripped of control characters, so it is
    /// safe to store and to log.
    #[must_use]
    pub fn new(address: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent.map(|ua| {
            let mut clean: String = ua.chars().filter(|c| !c.is_control()).collect();
            if clean.len() > MAX_USER_AGENT_LEN {
                let mut cut = MAX_USER_AGENT_LEN;
                while !clean.is_char_boundary(cut) {
                    cut -= 1;
                }
                clean.truncate(cut);
            }
            clean
        });
        Self {
            address,
            user_agent,
            country: None,
        }
    }

    /// The same, with a country taken from a trusted proxy header. Only an ISO
    /// 3166-1 alpha-2 code is kept (upper-cased); anything else is dropped, so no
    /// finer location can ever be stored.
    #[must_use]
    pub fn with_country(mut self, code: Option<&str>) -> Self {
        self.country = code
            .map(str::trim)
            .filter(|c| c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()))
            .map(str::to_ascii_uppercase);
        self
    }

    /// The client's country, if a trusted header gave one.
    #[must_use]
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }

    /// The client's address.
    #[must_use]
    pub const fn address(&self) -> Option<IpAddr> {
        self.address
    }

    /// The client's user agent, cleaned.
    #[must_use]
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }
}

/// The facts of one operation, passed through every service call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    actor: Actor,
    organisation: Option<OrganisationId>,
    purpose: Purpose,
    request_id: RequestId,
    client: ClientInfo,
    at: DateTime<Utc>,
    api_key: Option<Uuid>,
}

impl RequestContext {
    /// A context for one request.
    ///
    /// `organisation` is the practice the actor acts in (none for anonymous callers,
    /// the platform operator and some system jobs); `at` is the request's time,
    /// taken once from the [`crate::Clock`] so every record of the request agrees.
    #[must_use]
    pub const fn new(
        actor: Actor,
        organisation: Option<OrganisationId>,
        purpose: Purpose,
        request_id: RequestId,
        client: ClientInfo,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            actor,
            organisation,
            purpose,
            request_id,
            client,
            at,
            api_key: None,
        }
    }

    /// The same request, made with the practice API key `key`: the actor stays
    /// the key's role in the practice (and its creator, who answers for it), and
    /// audit records the key as the one acting.
    #[must_use]
    pub const fn through_api_key(mut self, key: Uuid) -> Self {
        self.api_key = Some(key);
        self
    }

    /// The practice API key the request was made with, if any.
    #[must_use]
    pub const fn api_key(&self) -> Option<Uuid> {
        self.api_key
    }

    /// A context for a background job of Custodia itself.
    #[must_use]
    pub fn system(component: &'static str, purpose: Purpose, at: DateTime<Utc>) -> Self {
        Self::new(
            Actor::System { component },
            None,
            purpose,
            RequestId::new(),
            ClientInfo::default(),
            at,
        )
    }

    /// The same request, for another stated purpose (e.g. break-glass).
    #[must_use]
    pub fn with_purpose(&self, purpose: Purpose) -> Self {
        Self {
            purpose,
            ..self.clone()
        }
    }

    /// Who is acting.
    #[must_use]
    pub const fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The practice acted in.
    #[must_use]
    pub const fn organisation(&self) -> Option<OrganisationId> {
        self.organisation
    }

    /// Why.
    #[must_use]
    pub const fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// The request's id, for correlation with logs and audit.
    #[must_use]
    pub const fn request_id(&self) -> RequestId {
        self.request_id
    }

    /// Where the request came from.
    #[must_use]
    pub const fn client(&self) -> &ClientInfo {
        &self.client
    }

    /// When the request was received.
    #[must_use]
    pub const fn at(&self) -> DateTime<Utc> {
        self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_is_cleaned_and_bounded() {
        let long = format!("evil\nagent{}", "é".repeat(300));
        let info = ClientInfo::new(None, Some(&long));
        let ua = info.user_agent().expect("kept");
        assert!(ua.len() <= MAX_USER_AGENT_LEN);
        assert!(!ua.contains('\n'));
        assert!(ua.starts_with("evilagent"));
    }

    #[test]
    fn role_sets_hold_exactly_what_was_added() {
        let set: RoleSet = [Role::Provider, Role::OrgAdmin].into_iter().collect();
        assert!(set.contains(Role::Provider) && set.contains(Role::OrgAdmin));
        assert!(!set.contains(Role::Client));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![Role::OrgAdmin, Role::Provider]
        );
        assert_eq!(format!("{set:?}"), "{OrgAdmin, Provider}");
        assert!(RoleSet::EMPTY.is_empty());
    }

    #[test]
    fn only_a_country_code_is_kept() {
        let info = ClientInfo::new(None, None);
        assert_eq!(info.clone().with_country(Some("de")).country(), Some("DE"));
        assert_eq!(
            info.clone().with_country(Some("Berlin, DE")).country(),
            None
        );
        assert_eq!(info.with_country(Some("52.52,13.40")).country(), None);
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }

    #[test]
    fn with_purpose_keeps_everything_else() {
        let ctx = RequestContext::system("retention", Purpose::Operations, Utc::now());
        let narrowed = ctx.with_purpose(Purpose::Legal);
        assert_eq!(narrowed.purpose(), Purpose::Legal);
        assert_eq!(narrowed.request_id(), ctx.request_id());
    }
}
