//! [`OutboxNotifier`]: the `Notifier` port as an outbox table, so nothing leaves
//! the machine. A notice's secret parts (the verification token) are stored as JSON
//! sealed with the recipient's data key; the rest of the row is not personal. So is
//! the address of a notice that does not go to the account's current email (the
//! new address of an email change, the previous one after it).

use async_trait::async_trait;
use crypto::{FieldBinding, Keyring};
use identity::model::{Notice, NoticeKind};
use identity::ports::{Notifier, RepositoryError};
use kernel::{OrganisationId, Sensitive, SubjectId, UserId};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::entity::{outbox, user};
use super::{corrupt, stored, unavailable};
use crate::Database;

const TABLE: &str = "outbox";
/// Field binding of the sealed payload.
const PAYLOAD_FIELD: &str = "outbox.payload";
/// The payload's key for a one-time token.
const TOKEN_KEY: &str = "token";
/// The payload's key for the address a notice goes to (a new or previous email).
const EMAIL_KEY: &str = "email";

/// The payload's key for the sentence a practice notice (e.g. billing's) carries.
const SUMMARY_KEY: &str = "summary";

/// Queues notices in the `outbox` table.
#[derive(Debug, Clone)]
pub struct OutboxNotifier {
    db: Database,
    keyring: Keyring,
}

impl OutboxNotifier {
    /// The outbox on `db`, sealing payloads with `keyring`.
    #[must_use]
    pub const fn new(db: Database, keyring: Keyring) -> Self {
        Self { db, keyring }
    }

    /// The token carried by the newest `kind` notice (e.g. `"verify_email"`) queued
    /// for `user`, as the email would carry it; `None` when there is none. For the
    /// sender, and for tests that play the recipient.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the outbox cannot be read or opened.
    pub async fn latest_secret(
        &self,
        user: UserId,
        kind: &str,
    ) -> Result<Option<Sensitive<String>>, RepositoryError> {
        self.latest_field(user, kind, TOKEN_KEY).await
    }

    /// The address carried by the newest `kind` notice queued for `user` (the new
    /// address of `"confirm_email_change"`, the previous one of `"email_changed"`),
    /// where the sender delivers it; `None` when there is none.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the outbox cannot be read or opened.
    pub async fn latest_address(
        &self,
        user: UserId,
        kind: &str,
    ) -> Result<Option<Sensitive<String>>, RepositoryError> {
        self.latest_field(user, kind, EMAIL_KEY).await
    }

    /// The sentence carried by the newest `kind` practice notice (e.g.
    /// `"billing_payment_failed"`) queued for `user`; `None` when there is none.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the outbox cannot be read or opened.
    pub async fn latest_summary(
        &self,
        user: UserId,
        kind: &str,
    ) -> Result<Option<Sensitive<String>>, RepositoryError> {
        self.latest_field(user, kind, SUMMARY_KEY).await
    }

    /// How many `kind` notices are queued for `user`, sent or not.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the outbox cannot be read.
    pub async fn count(&self, user: UserId, kind: &str) -> Result<u64, RepositoryError> {
        outbox::Entity::find()
            .filter(outbox::Column::UserId.eq(user.as_uuid()))
            .filter(outbox::Column::Kind.eq(kind))
            .count(self.db.connection())
            .await
            .map_err(unavailable)
    }

    async fn latest_field(
        &self,
        user: UserId,
        kind: &str,
        key: &str,
    ) -> Result<Option<Sensitive<String>>, RepositoryError> {
        let row = outbox::Entity::find()
            .filter(outbox::Column::UserId.eq(user.as_uuid()))
            .filter(outbox::Column::Kind.eq(kind))
            .filter(outbox::Column::PayloadEnc.is_not_null())
            .order_by_desc(outbox::Column::CreatedAt)
            .order_by_desc(outbox::Column::Id)
            .one(self.db.connection())
            .await
            .map_err(unavailable)?;
        let Some(outbox::Model {
            id,
            payload_enc: Some(envelope),
            ..
        }) = row
        else {
            return Ok(None);
        };
        let json = self
            .keyring
            .decrypt_string(FieldBinding::new(id, PAYLOAD_FIELD), &envelope)
            .await
            .map_err(unavailable)?;
        let payload: serde_json::Value =
            serde_json::from_str(json.expose()).map_err(|_| corrupt(TABLE))?;
        let token = payload
            .get(key)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| corrupt(TABLE))?;
        Ok(Some(Sensitive::new(token.to_owned())))
    }

    /// Seals `payload` for the row `id` with `user`'s data key.
    async fn seal(
        &self,
        id: Uuid,
        user: UserId,
        payload: &serde_json::Value,
    ) -> Result<Vec<u8>, RepositoryError> {
        let (home_organisation, subject) = user::Entity::find_by_id(user.as_uuid())
            .select_only()
            .column(user::Column::HomeOrganisationId)
            .column(user::Column::SubjectId)
            .into_tuple::<(Uuid, Uuid)>()
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .ok_or_else(|| unavailable(UnknownRecipient))?;
        let json = Sensitive::new(serde_json::to_vec(payload).map_err(unavailable)?);
        self.keyring
            .encrypt(
                OrganisationId::from_uuid(home_organisation),
                SubjectId::from_uuid(subject),
                FieldBinding::new(id, PAYLOAD_FIELD),
                json.expose(),
            )
            .await
            .map_err(unavailable)
    }
}

/// A notice was addressed to an account that does not exist.
#[derive(Debug, thiserror::Error)]
#[error("the notice's recipient has no account")]
struct UnknownRecipient;

#[async_trait]
impl Notifier for OutboxNotifier {
    async fn send(&self, notice: &Notice) -> Result<(), RepositoryError> {
        let id = Uuid::now_v7();
        let payload_enc = match &notice.kind {
            NoticeKind::VerifyEmail { token } | NoticeKind::ActivateAccount { token } => {
                let payload = serde_json::json!({ TOKEN_KEY: token.expose() });
                Some(self.seal(id, notice.user, &payload).await?)
            }
            NoticeKind::ResetPassword { token } => {
                let payload = serde_json::json!({ TOKEN_KEY: token.expose() });
                Some(self.seal(id, notice.user, &payload).await?)
            }
            NoticeKind::ConfirmEmailChange { new_email, token } => {
                let payload =
                    serde_json::json!({ TOKEN_KEY: token.expose(), EMAIL_KEY: new_email.expose() });
                Some(self.seal(id, notice.user, &payload).await?)
            }
            NoticeKind::EmailChanged { previous_email } => {
                let payload = serde_json::json!({ EMAIL_KEY: previous_email.expose() });
                Some(self.seal(id, notice.user, &payload).await?)
            }
            NoticeKind::PolicyChanged { policy } => {
                let payload = serde_json::json!({ "policy": policy });
                Some(self.seal(id, notice.user, &payload).await?)
            }
            NoticeKind::Practice { summary, .. } => {
                let payload = serde_json::json!({ SUMMARY_KEY: summary });
                Some(self.seal(id, notice.user, &payload).await?)
            }
            NoticeKind::NewSignIn
            | NoticeKind::AccountLocked
            | NoticeKind::MfaEnabled
            | NoticeKind::MfaDisabled
            | NoticeKind::RecoveryCodesRegenerated
            | NoticeKind::RecoveryCodeUsed
            | NoticeKind::PasswordChanged
            | NoticeKind::PasswordReset
            | NoticeKind::RoleGranted
            | NoticeKind::AccountDisabled
            | NoticeKind::AccountEnabled
            | NoticeKind::GuardianLinked
            | NoticeKind::DeletionRequested
            | NoticeKind::InvitedToPractice => None,
        };
        let row = outbox::ActiveModel {
            id: Set(id),
            user_id: Set(notice.user.as_uuid()),
            kind: Set(notice.kind.as_str().to_owned()),
            payload_enc: Set(payload_enc),
            created_at: Set(stored(notice.at)),
            sent_at: Set(None),
        };
        outbox::Entity::insert(row)
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }
}
