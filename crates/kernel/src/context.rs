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

/// Who is acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// Nobody has signed in. Only public operations accept this actor.
    Anonymous,
    /// A signed-in person acting with one role in the context's organisation.
    Member {
        /// The person.
        user: UserId,
        /// The role they act in.
        role: Role,
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

    /// The role acted in, for members.
    #[must_use]
    pub const fn role(&self) -> Option<Role> {
        match self {
            Self::Member { role, .. } => Some(*role),
            _ => None,
        }
    }
}

/// The longest user agent kept; longer ones are cut (on a character boundary).
pub const MAX_USER_AGENT_LEN: usize = 256;

/// Where a request came from: its client address and user agent (C7).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClientInfo {
    address: Option<IpAddr>,
    user_agent: Option<String>,
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
        }
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
        }
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
