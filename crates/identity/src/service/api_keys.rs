//! API keys for integrators: an administrator creates, lists and revokes their
//! practice's keys; a key authenticates as its practice with exactly its role.
//!
//! Keys belong to the practice, not to the person who created them: disabling
//! that person's account, or taking `org_admin` from them, leaves the keys working
//! until an administrator revokes them (revocation is immediate). Creating and
//! revoking keys needs a person: an API key cannot (the edge refuses it); an
//! `org_admin` key may list its practice's keys.

use chrono::{DateTime, Utc};
use crypto::{IssuedToken, TokenHash};
use kernel::{Actor, OrganisationId, RequestContext, Role, RoleSet, Sensitive};

use super::{IdentityError, IdentityService, TOUCH_EVERY, unavailable};
use crate::integrations::{
    API_KEY_PREFIX, ApiKey, ApiKeyId, ApiKeyName, ApiKeyRole, Credential, IssuedApiKey,
    OPERATOR_TOKEN_PREFIX, Revocation,
};
use crate::model::SecurityEventKind;
use crate::service::Authenticated;

impl IdentityService {
    /// Authenticates the credentials recognised by their prefix (API keys and
    /// operator sessions); `None` for anything else (a member's session token).
    pub(super) async fn authenticate_prefixed(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Authenticated>, IdentityError> {
        if token.starts_with(API_KEY_PREFIX) {
            return self.authenticate_api_key(token, now).await.map(Some);
        }
        if token.starts_with(OPERATOR_TOKEN_PREFIX) {
            return self.authenticate_operator(token, now).await.map(Some);
        }
        Ok(None)
    }

    async fn authenticate_api_key(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Authenticated, IdentityError> {
        let hash = TokenHash::of_presented(secret);
        let key = self
            .ports
            .api_keys
            .find_by_hash(&hash)
            .await?
            .filter(|key| key.revoked_at.is_none())
            .ok_or(IdentityError::Unauthenticated)?;
        if key
            .last_used_at
            .is_none_or(|used| now - used >= TOUCH_EVERY)
        {
            self.ports.api_keys.touch(key.id, now).await?;
        }
        Ok(Authenticated {
            actor: Actor::Member {
                user: key.created_by,
                roles: RoleSet::only(key.role.role()),
            },
            organisation: Some(key.organisation),
            credential: Credential::ApiKey(key.id),
        })
    }

    /// Only a practice's administrators manage its keys. Another practice's id is
    /// answered 404 (its keys' existence must not leak); a member of the practice
    /// without `org_admin` gets 403, and so does a caller who is no member at all
    /// (a platform operator).
    fn require_admin_of(
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<(), IdentityError> {
        if !matches!(ctx.actor(), Actor::Member { .. }) {
            return Err(IdentityError::Forbidden(
                "only members of a practice can manage its API keys",
            ));
        }
        if ctx.organisation() != Some(organisation) {
            return Err(IdentityError::NotFound);
        }
        if !ctx.actor().has_role(Role::OrgAdmin) {
            return Err(IdentityError::Forbidden(
                "only the practice's administrators (org_admin) can manage its API keys",
            ));
        }
        Ok(())
    }

    /// Creates an API key for the caller's practice, acting with one role (any
    /// practice role but `client`). The secret is returned once; only its SHA-256
    /// is stored. Recorded as a security event on the creator's account.
    ///
    /// # Errors
    /// [`IdentityError::NotFound`] for another practice, [`IdentityError::NotPermitted`]
    /// for a non-administrator, [`IdentityError::Invalid`], [`IdentityError::Unavailable`].
    pub async fn create_api_key(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        name: &str,
        role: &str,
    ) -> Result<IssuedApiKey, IdentityError> {
        Self::require_admin_of(ctx, organisation)?;
        let creator = Self::caller(ctx)?;
        let name = ApiKeyName::parse(name)?;
        let role = ApiKeyRole::parse(role)?;
        let (random, _) = IssuedToken::generate().map_err(unavailable)?.into_parts();
        let secret = format!("{API_KEY_PREFIX}{}", random.expose());
        let tail: String = {
            let mut last: Vec<char> = secret.chars().rev().take(4).collect();
            last.reverse();
            last.into_iter().collect()
        };
        let key = ApiKey {
            id: ApiKeyId::new(),
            organisation,
            name,
            role,
            token_hash: TokenHash::of_presented(&secret),
            hint: format!("{API_KEY_PREFIX}…{tail}"),
            created_at: ctx.at(),
            created_by: creator,
            last_used_at: None,
            revoked_at: None,
        };
        self.ports.api_keys.insert(&key).await?;
        self.record(ctx, Some(creator), SecurityEventKind::ApiKeyCreated)
            .await;
        Ok(IssuedApiKey {
            key,
            secret: Sensitive::new(secret),
        })
    }

    /// The practice's API keys, newest first, revoked ones included (never a secret).
    ///
    /// # Errors
    /// As [`IdentityService::create_api_key`].
    pub async fn api_keys(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
    ) -> Result<Vec<ApiKey>, IdentityError> {
        Self::require_admin_of(ctx, organisation)?;
        Ok(self.ports.api_keys.list(organisation).await?)
    }

    /// Revokes one of the practice's keys, effective at once. Revoking a revoked
    /// key changes nothing and is not an error.
    ///
    /// # Errors
    /// [`IdentityError::NotFound`] when the practice has no such key, and as
    /// [`IdentityService::create_api_key`].
    pub async fn revoke_api_key(
        &self,
        ctx: &RequestContext,
        organisation: OrganisationId,
        key: ApiKeyId,
    ) -> Result<(), IdentityError> {
        Self::require_admin_of(ctx, organisation)?;
        let admin = Self::caller(ctx)?;
        match self
            .ports
            .api_keys
            .revoke(organisation, key, ctx.at())
            .await?
        {
            Revocation::NotFound => Err(IdentityError::NotFound),
            Revocation::AlreadyRevoked => Ok(()),
            Revocation::Revoked => {
                self.record(ctx, Some(admin), SecurityEventKind::ApiKeyRevoked)
                    .await;
                Ok(())
            }
        }
    }
}
