//! API keys for integrators and the platform operator: their records, values and
//! outbound ports. The operations are in `service::api_keys` and
//! `service::operator`.
//!
//! - An **API key** belongs to a practice and acts in it with exactly one role
//!   (never `client`). Its secret starts with [`API_KEY_PREFIX`] so secret scanners
//!   can spot a leaked one, carries 256 random bits, is shown once and stored only
//!   as its SHA-256. A key is not a person: it cannot act on "my own account".
//!   Keys belong to the practice, not to the administrator who created it: they
//!   keep working when that person's account is disabled or loses `org_admin`,
//!   until an administrator revokes them.
//! - The **platform operator** runs the service and is a member of no practice.
//!   Operators are granted on an existing, verified account (the server's
//!   `--grant-operator` flag), sign in separately and get an operator session
//!   (token prefix [`OPERATOR_TOKEN_PREFIX`]) with no practice.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crypto::TokenHash;
use kernel::{OrganisationId, Role, Sensitive, UserId};
use uuid::Uuid;

use crate::model::{Organisation, SessionId, User};
use crate::ports::RepositoryError;
use crate::values::InvalidValue;

/// Every API key secret starts with this, so secret scanners can find leaked keys
/// and the authentication step can tell a key from a session token.
pub const API_KEY_PREFIX: &str = "cus_live_";

/// Every operator session token starts with this.
pub const OPERATOR_TOKEN_PREFIX: &str = "cus_op_";

/// An API key's id (not its secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiKeyId(Uuid);

impl ApiKeyId {
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

impl Default for ApiKeyId {
    fn default() -> Self {
        Self::new()
    }
}

/// How a request's caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A person's session in a practice.
    Session(SessionId),
    /// A practice's API key: not a person.
    ApiKey(ApiKeyId),
    /// A platform operator's session (no practice).
    OperatorSession(SessionId),
}

impl Credential {
    /// Whether a person signed in (a session of either kind), as opposed to an API key.
    #[must_use]
    pub const fn is_person(self) -> bool {
        !matches!(self, Self::ApiKey(_))
    }
}

/// An API key's name, as its administrators call it: 1 to 100 characters, no
/// control characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyName(String);

impl ApiKeyName {
    /// Parses a name.
    ///
    /// # Errors
    /// [`InvalidValue`] naming the rule.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(InvalidValue {
                field: "name",
                rule: "must not be empty",
            });
        }
        if name.chars().count() > 100 {
            return Err(InvalidValue {
                field: "name",
                rule: "must be at most 100 characters",
            });
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidValue {
                field: "name",
                rule: "must not contain control characters",
            });
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The role an API key acts with: any practice role but `client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiKeyRole(Role);

impl ApiKeyRole {
    /// Parses a role name.
    ///
    /// # Errors
    /// [`InvalidValue`] for `client` or an unknown role.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match Role::parse(raw) {
            Some(Role::Client) | None => Err(InvalidValue {
                field: "role",
                rule: "must be a practice role other than client",
            }),
            Some(role) => Ok(Self(role)),
        }
    }

    /// The role.
    #[must_use]
    pub const fn role(self) -> Role {
        self.0
    }
}

/// A practice's API key. The secret is stored only as its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Its id.
    pub id: ApiKeyId,
    /// The practice it acts in.
    pub organisation: OrganisationId,
    /// Its name.
    pub name: ApiKeyName,
    /// The one role it acts with.
    pub role: ApiKeyRole,
    /// SHA-256 of the secret.
    pub token_hash: TokenHash,
    /// A short, non-secret reminder: the prefix and the secret's last 4 characters.
    pub hint: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The administrator who created it (the key does not depend on their account).
    pub created_by: UserId,
    /// When it was last used, to within a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What revoking a key found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The practice has no such key.
    NotFound,
    /// It was live and is revoked now.
    Revoked,
    /// It was already revoked.
    AlreadyRevoked,
}

/// A platform operator's session: like a member's, but in no practice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSession {
    /// Its id.
    pub id: SessionId,
    /// The operator.
    pub user: UserId,
    /// SHA-256 of the bearer token.
    pub token_hash: TokenHash,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it was last used (for the idle timeout).
    pub last_seen_at: DateTime<Utc>,
    /// When it ends regardless of use.
    pub expires_at: DateTime<Utc>,
    /// When it was ended, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new API key: the secret is shown once and stored only as its hash.
#[derive(Debug)]
pub struct IssuedApiKey {
    /// The key.
    pub key: ApiKey,
    /// The secret, `cus_live_` and 43 URL-safe characters (256 random bits).
    pub secret: Sensitive<String>,
}

/// A successful operator sign-in.
#[derive(Debug)]
pub struct OperatorSignedIn {
    /// The bearer token (`cus_op_…`): shown once, stored only as its hash.
    pub token: Sensitive<String>,
    /// The session.
    pub session: OperatorSession,
    /// Who signed in.
    pub user: User,
}

/// A practice's API keys.
#[async_trait]
pub trait ApiKeyRepository: Send + Sync + 'static {
    /// Stores a new key.
    async fn insert(&self, key: &ApiKey) -> Result<(), RepositoryError>;

    /// The key whose secret hashes to `hash`, revoked or not.
    async fn find_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiKey>, RepositoryError>;

    /// Every key of a practice, newest first.
    async fn list(&self, organisation: OrganisationId) -> Result<Vec<ApiKey>, RepositoryError>;

    /// Revokes a key of `organisation`.
    async fn revoke(
        &self,
        organisation: OrganisationId,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> Result<Revocation, RepositoryError>;

    /// Records use of a key; never moves `last_used_at` back.
    async fn touch(&self, id: ApiKeyId, at: DateTime<Utc>) -> Result<(), RepositoryError>;
}

/// Platform operators, their sessions, and the practice directory they may read.
#[async_trait]
pub trait OperatorRepository: Send + Sync + 'static {
    /// Makes `user` an operator; `false` when they already were.
    async fn grant(&self, user: UserId, at: DateTime<Utc>) -> Result<bool, RepositoryError>;

    /// Whether `user` is an operator.
    async fn is_operator(&self, user: UserId) -> Result<bool, RepositoryError>;

    /// Stores a new operator session.
    async fn insert_session(&self, session: &OperatorSession) -> Result<(), RepositoryError>;

    /// The operator session whose token hashes to `hash`, revoked or not.
    async fn find_session(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<OperatorSession>, RepositoryError>;

    /// Records use of an operator session.
    async fn touch_session(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), RepositoryError>;

    /// Ends an operator session; `false` when it was already ended.
    async fn revoke_session(
        &self,
        id: SessionId,
        at: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;

    /// Practices in id (creation) order, after `after` when given, at most `limit`.
    async fn practices(
        &self,
        after: Option<OrganisationId>,
        limit: u32,
    ) -> Result<Vec<Organisation>, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_role_is_any_practice_role_but_client() {
        for role in Role::ALL {
            let parsed = ApiKeyRole::parse(role.as_str());
            if role == Role::Client {
                assert_eq!(parsed.expect_err("refused").field, "role");
            } else {
                assert_eq!(parsed.expect("accepted").role(), role);
            }
        }
        assert!(ApiKeyRole::parse("operator").is_err());
    }

    #[test]
    fn a_key_name_is_trimmed_bounded_and_printable() {
        assert_eq!(
            ApiKeyName::parse("  Billing  ").expect("valid").as_str(),
            "Billing"
        );
        assert!(ApiKeyName::parse("   ").is_err());
        assert!(ApiKeyName::parse(&"x".repeat(101)).is_err());
        assert!(ApiKeyName::parse(&"x".repeat(100)).is_ok());
        assert!(ApiKeyName::parse("a\u{7}b").is_err());
    }

    #[test]
    fn only_sessions_are_people() {
        assert!(Credential::Session(SessionId::new()).is_person());
        assert!(Credential::OperatorSession(SessionId::new()).is_person());
        assert!(!Credential::ApiKey(ApiKeyId::new()).is_person());
    }
}
