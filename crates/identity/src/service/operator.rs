//! The platform operator: granted on an existing verified account, signs in to
//! an operator session that acts in no practice, and reads the practice
//! directory (no personal data). An operator session is refused by every
//! practice-member operation, and members are refused by the operator's.

use chrono::{DateTime, Utc};
use crypto::{IssuedToken, TokenHash};

use super::SecondFactor;
use kernel::{Actor, OrganisationId, RequestContext, Sensitive, UserId};

use super::{IdentityError, IdentityService, TOUCH_EVERY, unavailable};
use crate::integrations::{Credential, OPERATOR_TOKEN_PREFIX, OperatorSession, OperatorSignedIn};
use crate::model::{AccountStatus, Organisation, SecurityEventKind, SessionId};
use crate::service::Authenticated;
use crate::values::Email;

impl IdentityService {
    pub(super) async fn authenticate_operator(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Authenticated, IdentityError> {
        let hash = TokenHash::of_presented(token);
        let session = self
            .ports
            .operators
            .find_session(&hash)
            .await?
            .ok_or(IdentityError::Unauthenticated)?;
        let live = session.revoked_at.is_none()
            && now < session.expires_at
            && now - session.last_seen_at < self.config.idle_timeout;
        if !live {
            return Err(IdentityError::Unauthenticated);
        }
        let status = self.ports.repository.account_status(session.user).await?;
        if status != Some(AccountStatus::Active)
            || !self.ports.operators.is_operator(session.user).await?
        {
            return Err(IdentityError::Unauthenticated);
        }
        if now - session.last_seen_at >= TOUCH_EVERY {
            self.ports.operators.touch_session(session.id, now).await?;
        }
        Ok(Authenticated {
            actor: Actor::PlatformOperator { user: session.user },
            organisation: None,
            credential: Credential::OperatorSession(session.id),
        })
    }

    /// Makes the account with `email` a platform operator. The account must exist
    /// and be active (its email verified). Idempotent. Used by the server's
    /// `--grant-operator` flag at start.
    ///
    /// # Errors
    /// [`IdentityError::NotFound`] when no active account has this email;
    /// [`IdentityError::Unavailable`].
    pub async fn grant_operator(
        &self,
        ctx: &RequestContext,
        email: &str,
    ) -> Result<UserId, IdentityError> {
        let email = Email::parse(email)?;
        let (user, _) = self
            .ports
            .repository
            .find_by_email(&email)
            .await?
            .filter(|(user, _)| user.status == AccountStatus::Active)
            .ok_or(IdentityError::NotFound)?;
        if self.ports.operators.grant(user.id, ctx.at()).await? {
            self.record(ctx, Some(user.id), SecurityEventKind::OperatorGranted)
                .await;
        }
        Ok(user.id)
    }

    /// Signs a platform operator in: an operator session with no practice. The
    /// checks are a member's sign-in's (throttle, lockout, password, status, and
    /// the second factor when MFA is on); a right password on an account that is
    /// no operator is refused (403).
    ///
    /// # Errors
    /// [`IdentityError::Throttled`], [`IdentityError::Locked`],
    /// [`IdentityError::InvalidCredentials`], [`IdentityError::EmailNotVerified`],
    /// [`IdentityError::Forbidden`], [`IdentityError::Unavailable`].
    pub async fn operator_sign_in(
        &self,
        ctx: &RequestContext,
        email: &str,
        password: Sensitive<String>,
        second_factor: SecondFactor,
    ) -> Result<OperatorSignedIn, IdentityError> {
        let now = ctx.at();
        let user = self
            .verify_sign_in(ctx, email, password, second_factor)
            .await?;
        if !self.ports.operators.is_operator(user.id).await? {
            return Err(IdentityError::Forbidden(
                "this account is not a platform operator",
            ));
        }
        self.ports.repository.clear_failures(user.id).await?;
        let (random, _) = IssuedToken::generate().map_err(unavailable)?.into_parts();
        let token = format!("{OPERATOR_TOKEN_PREFIX}{}", random.expose());
        let session = OperatorSession {
            id: SessionId::new(),
            user: user.id,
            token_hash: TokenHash::of_presented(&token),
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.config.absolute_lifetime,
            revoked_at: None,
        };
        self.ports.operators.insert_session(&session).await?;
        self.record(ctx, Some(user.id), SecurityEventKind::SignInSucceeded)
            .await;
        Ok(OperatorSignedIn {
            token: Sensitive::new(token),
            session,
            user,
        })
    }

    fn require_operator(ctx: &RequestContext) -> Result<UserId, IdentityError> {
        match ctx.actor() {
            Actor::PlatformOperator { user } => Ok(*user),
            _ => Err(IdentityError::Forbidden(
                "only a platform operator may do this",
            )),
        }
    }

    /// The practice directory for the operator: practices in creation order, a
    /// page of at most `limit` (1 to 200) after `after`, with the cursor of the
    /// next page when there is one. No personal data.
    ///
    /// # Errors
    /// [`IdentityError::Forbidden`] for anyone but an operator;
    /// [`IdentityError::Unavailable`].
    pub async fn practices(
        &self,
        ctx: &RequestContext,
        after: Option<OrganisationId>,
        limit: u32,
    ) -> Result<(Vec<Organisation>, Option<OrganisationId>), IdentityError> {
        Self::require_operator(ctx)?;
        let limit = limit.clamp(1, 200);
        let mut page = self.ports.operators.practices(after, limit + 1).await?;
        let more = page.len() > limit as usize;
        page.truncate(limit as usize);
        let next = if more {
            page.last().map(|o| o.id)
        } else {
            None
        };
        Ok((page, next))
    }

    /// Ends the operator's current session (sign out).
    ///
    /// # Errors
    /// [`IdentityError::Forbidden`] for anyone but an operator;
    /// [`IdentityError::Unavailable`].
    pub async fn end_operator_session(
        &self,
        ctx: &RequestContext,
        session: SessionId,
    ) -> Result<(), IdentityError> {
        let user = Self::require_operator(ctx)?;
        if self
            .ports
            .operators
            .revoke_session(session, ctx.at())
            .await?
        {
            self.record(ctx, Some(user), SecurityEventKind::SessionRevoked)
                .await;
        }
        Ok(())
    }
}
