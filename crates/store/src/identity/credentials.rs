//! [`SeaOrmCredentialRepository`]: the `CredentialRepository` port on the
//! `mfa_credentials`, `recovery_codes` and `email_changes` tables (and the
//! identity tables it changes: `users`, `sessions`, `one_time_tokens`,
//! `organisations`).
//!
//! The TOTP secret is sealed with the person's data key, bound to their id and the
//! column; a pending email change's new address is sealed the same way. Recovery
//! codes and tokens are stored only as SHA-256. Every "use once" rule (a TOTP step,
//! a recovery code, a token) is one conditional UPDATE, so concurrent attempts
//! cannot both succeed.

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, Utc};
use crypto::{BlindIndexer, FieldBinding, Keyring, TokenHash, TotpSecret};
use identity::model::{
    MfaEnrolment, OneTimeToken, Organisation, SessionId, TokenPurpose, TokenRejection,
};
use identity::ports::{CredentialRepository, RepositoryError};
use identity::values::Email;
use kernel::{OrganisationId, SubjectId, UserId};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::accounts::{EMAIL_FIELD, EMAIL_INDEX, email_taken_or_unavailable};
use super::entity::{one_time_token, organisation, session, user};
use super::{corrupt, finish, stored, unavailable, utc_opt};
use crate::Database;

/// Field binding of the sealed TOTP secret.
const SECRET_FIELD: &str = "mfa_credentials.secret";
/// Field binding of a pending change's sealed new address.
const NEW_EMAIL_FIELD: &str = "email_changes.new_email";

pub(super) mod mfa_credential {
    //! `mfa_credentials`: a person's TOTP enrolment.
    use sea_orm::entity::prelude::*;

    /// One enrolment.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mfa_credentials")]
    pub struct Model {
        /// The person.
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        /// The secret, sealed with the person's data key.
        pub secret_enc: Vec<u8>,
        /// When enrolment started.
        pub created_at: DateTimeWithTimeZone,
        /// When MFA was turned on (NULL while pending).
        pub confirmed_at: Option<DateTimeWithTimeZone>,
        /// The last accepted time step.
        pub last_step: Option<i64>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod recovery_code {
    //! `recovery_codes`: SHA-256 of each recovery code.
    use sea_orm::entity::prelude::*;

    /// One code.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "recovery_codes")]
    pub struct Model {
        /// SHA-256 of the normalised code.
        #[sea_orm(primary_key, auto_increment = false)]
        pub hash: Vec<u8>,
        /// Whose.
        pub user_id: Uuid,
        /// When made.
        pub created_at: DateTimeWithTimeZone,
        /// When spent.
        pub used_at: Option<DateTimeWithTimeZone>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod email_change {
    //! `email_changes`: the new address of a pending email change.
    use sea_orm::entity::prelude::*;

    /// One pending change.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "email_changes")]
    pub struct Model {
        /// SHA-256 of the change's one-time token.
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: Vec<u8>,
        /// Whose.
        pub user_id: Uuid,
        /// The new address, sealed with the person's data key.
        pub new_email_enc: Vec<u8>,
        /// Blind index of the new address.
        pub new_email_index: Vec<u8>,
        /// When asked for.
        pub created_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Credentials on Custodia's database, sealing with the [`Keyring`].
#[derive(Debug, Clone)]
pub struct SeaOrmCredentialRepository {
    db: Database,
    keyring: Keyring,
    indexer: BlindIndexer,
}

fn code_rows(
    user: UserId,
    codes: &[TokenHash],
    at: DateTime<Utc>,
) -> Vec<recovery_code::ActiveModel> {
    codes
        .iter()
        .map(|hash| recovery_code::ActiveModel {
            hash: Set(hash.as_bytes().to_vec()),
            user_id: Set(user.as_uuid()),
            created_at: Set(stored(at)),
            used_at: Set(None),
        })
        .collect()
}

async fn delete_codes(conn: &impl ConnectionTrait, user: UserId) -> Result<(), RepositoryError> {
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user.as_uuid()))
        .exec(conn)
        .await
        .map(drop)
        .map_err(unavailable)
}

async fn replace_codes(
    conn: &impl ConnectionTrait,
    user: UserId,
    codes: &[TokenHash],
    at: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    delete_codes(conn, user).await?;
    if !codes.is_empty() {
        recovery_code::Entity::insert_many(code_rows(user, codes, at))
            .exec_without_returning(conn)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Marks the token used if it is of `purpose`, unused and unexpired: one
/// conditional UPDATE, so of two concurrent redemptions one wins.
async fn consume_token(
    conn: &impl ConnectionTrait,
    hash: &TokenHash,
    purpose: TokenPurpose,
    now: DateTime<Utc>,
) -> Result<bool, RepositoryError> {
    let now = stored(now);
    Ok(one_time_token::Entity::update_many()
        .col_expr(one_time_token::Column::UsedAt, Expr::value(now))
        .filter(one_time_token::Column::Hash.eq(hash.as_bytes().to_vec()))
        .filter(one_time_token::Column::Purpose.eq(purpose.as_str()))
        .filter(one_time_token::Column::UsedAt.is_null())
        .filter(one_time_token::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await
        .map_err(unavailable)?
        .rows_affected
        == 1)
}

/// Why a token could not be consumed.
async fn rejection(
    conn: &impl ConnectionTrait,
    hash: &TokenHash,
    purpose: TokenPurpose,
) -> Result<TokenRejection, RepositoryError> {
    let row = one_time_token::Entity::find_by_id(hash.as_bytes().to_vec())
        .one(conn)
        .await
        .map_err(unavailable)?;
    Ok(match row {
        Some(row) if row.purpose != purpose.as_str() => TokenRejection::Unknown,
        Some(row) if row.used_at.is_some() => TokenRejection::Used,
        Some(_) => TokenRejection::Expired,
        None => TokenRejection::Unknown,
    })
}

async fn token_owner(
    conn: &impl ConnectionTrait,
    hash: &TokenHash,
) -> Result<UserId, RepositoryError> {
    one_time_token::Entity::find_by_id(hash.as_bytes().to_vec())
        .one(conn)
        .await
        .map_err(unavailable)?
        .map(|row| UserId::from_uuid(row.user_id))
        .ok_or_else(|| corrupt("one_time_tokens"))
}

fn no_lock() -> Option<DateTime<FixedOffset>> {
    None
}

async fn store_password(
    conn: &impl ConnectionTrait,
    user: UserId,
    password_hash: &str,
) -> Result<(), RepositoryError> {
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
        .col_expr(user::Column::FailedAttempts, Expr::value(0_i32))
        .col_expr(user::Column::LockedUntil, Expr::value(no_lock()))
        .filter(user::Column::Id.eq(user.as_uuid()))
        .exec(conn)
        .await
        .map(drop)
        .map_err(unavailable)
}

/// What every password change and reset must end with it, in its transaction: the
/// person's other member sessions (all but `keep`), every operator session, any
/// unused reset or email-change token, and any pending email change (an attacker
/// who knew the old password must not keep a way back in).
async fn end_credential_grants(
    txn: &DatabaseTransaction,
    user: UserId,
    keep: Option<SessionId>,
    at: DateTime<FixedOffset>,
) -> Result<u64, RepositoryError> {
    let id = user.as_uuid();
    one_time_token::Entity::update_many()
        .col_expr(one_time_token::Column::UsedAt, Expr::value(at))
        .filter(one_time_token::Column::UserId.eq(id))
        .filter(one_time_token::Column::Purpose.is_in([
            TokenPurpose::ResetPassword.as_str(),
            TokenPurpose::ChangeEmail.as_str(),
        ]))
        .filter(one_time_token::Column::UsedAt.is_null())
        .exec(txn)
        .await
        .map_err(unavailable)?;
    email_change::Entity::delete_many()
        .filter(email_change::Column::UserId.eq(id))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    super::integrations::operator_session::Entity::update_many()
        .col_expr(
            super::integrations::operator_session::Column::RevokedAt,
            Expr::value(at),
        )
        .filter(super::integrations::operator_session::Column::UserId.eq(id))
        .filter(super::integrations::operator_session::Column::RevokedAt.is_null())
        .exec(txn)
        .await
        .map_err(unavailable)?;
    let mut sessions = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(at))
        .filter(session::Column::UserId.eq(id))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        sessions = sessions.filter(session::Column::Id.ne(keep.as_uuid()));
    }
    Ok(sessions.exec(txn).await.map_err(unavailable)?.rows_affected)
}

fn step_column(step: u64) -> Result<i64, RepositoryError> {
    i64::try_from(step).map_err(|_| corrupt("mfa_credentials"))
}

impl SeaOrmCredentialRepository {
    /// The repository on `db`, sealing with `keyring` and indexing emails with
    /// `indexer` (the same as the identity repository's).
    #[must_use]
    pub const fn new(db: Database, keyring: Keyring, indexer: BlindIndexer) -> Self {
        Self {
            db,
            keyring,
            indexer,
        }
    }

    /// The person's home practice and subject id, which name their data key.
    async fn key_owner(
        &self,
        user: UserId,
    ) -> Result<(OrganisationId, SubjectId), RepositoryError> {
        let (organisation, subject) = user::Entity::find_by_id(user.as_uuid())
            .select_only()
            .column(user::Column::HomeOrganisationId)
            .column(user::Column::SubjectId)
            .into_tuple::<(Uuid, Uuid)>()
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .ok_or_else(|| corrupt("users"))?;
        Ok((
            OrganisationId::from_uuid(organisation),
            SubjectId::from_uuid(subject),
        ))
    }

    async fn seal(
        &self,
        user: UserId,
        field: &'static str,
        value: &[u8],
    ) -> Result<Vec<u8>, RepositoryError> {
        let (organisation, subject) = self.key_owner(user).await?;
        self.keyring
            .encrypt(
                organisation,
                subject,
                FieldBinding::new(user.as_uuid(), field),
                value,
            )
            .await
            .map_err(unavailable)
    }

    async fn open_email(
        &self,
        user: Uuid,
        field: &'static str,
        envelope: &[u8],
    ) -> Result<Email, RepositoryError> {
        let text = self
            .keyring
            .decrypt_string(FieldBinding::new(user, field), envelope)
            .await
            .map_err(unavailable)?;
        Email::parse(text.expose()).map_err(|_| corrupt("users"))
    }

    async fn switch_email(
        &self,
        txn: &DatabaseTransaction,
        token: &TokenHash,
        user: Uuid,
        sealed: Vec<u8>,
        index: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<Result<(), TokenRejection>, RepositoryError> {
        if !consume_token(txn, token, TokenPurpose::ChangeEmail, now).await? {
            return Ok(Err(rejection(txn, token, TokenPurpose::ChangeEmail).await?));
        }
        user::Entity::update_many()
            .col_expr(user::Column::EmailEnc, Expr::value(sealed))
            .col_expr(user::Column::EmailIndex, Expr::value(index))
            .col_expr(user::Column::EmailVerifiedAt, Expr::value(stored(now)))
            .filter(user::Column::Id.eq(user))
            .exec(txn)
            .await
            .map_err(email_taken_or_unavailable)?;
        email_change::Entity::delete_by_id(token.as_bytes().to_vec())
            .exec(txn)
            .await
            .map_err(unavailable)?;
        Ok(Ok(()))
    }
}

#[async_trait]
impl CredentialRepository for SeaOrmCredentialRepository {
    async fn mfa(&self, user: UserId) -> Result<Option<MfaEnrolment>, RepositoryError> {
        let Some(row) = mfa_credential::Entity::find_by_id(user.as_uuid())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let secret = self
            .keyring
            .decrypt(
                FieldBinding::new(row.user_id, SECRET_FIELD),
                &row.secret_enc,
            )
            .await
            .map_err(unavailable)?;
        Ok(Some(MfaEnrolment {
            secret: TotpSecret::from_bytes(secret.into_inner()),
            confirmed_at: utc_opt(row.confirmed_at),
            last_step: row
                .last_step
                .map(u64::try_from)
                .transpose()
                .map_err(|_| corrupt("mfa_credentials"))?,
        }))
    }

    async fn start_mfa(
        &self,
        user: UserId,
        secret: &TotpSecret,
        at: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let sealed = self.seal(user, SECRET_FIELD, secret.as_bytes()).await?;
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let outcome = async {
            let existing = mfa_credential::Entity::find_by_id(user.as_uuid())
                .one(&txn)
                .await
                .map_err(unavailable)?;
            if existing
                .as_ref()
                .is_some_and(|row| row.confirmed_at.is_some())
            {
                return Ok(false);
            }
            if existing.is_some() {
                mfa_credential::Entity::delete_by_id(user.as_uuid())
                    .exec(&txn)
                    .await
                    .map_err(unavailable)?;
            }
            mfa_credential::Entity::insert(mfa_credential::ActiveModel {
                user_id: Set(user.as_uuid()),
                secret_enc: Set(sealed),
                created_at: Set(stored(at)),
                confirmed_at: Set(None),
                last_step: Set(None),
            })
            .exec_without_returning(&txn)
            .await
            .map_err(unavailable)?;
            Ok(true)
        }
        .await;
        finish(txn, outcome, unavailable).await
    }

    async fn confirm_mfa(
        &self,
        user: UserId,
        step: u64,
        recovery_codes: &[TokenHash],
        at: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let step = step_column(step)?;
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let outcome = async {
            let confirmed = mfa_credential::Entity::update_many()
                .col_expr(mfa_credential::Column::ConfirmedAt, Expr::value(stored(at)))
                .col_expr(mfa_credential::Column::LastStep, Expr::value(step))
                .filter(mfa_credential::Column::UserId.eq(user.as_uuid()))
                .filter(mfa_credential::Column::ConfirmedAt.is_null())
                .exec(&txn)
                .await
                .map_err(unavailable)?
                .rows_affected
                == 1;
            if confirmed {
                replace_codes(&txn, user, recovery_codes, at).await?;
            }
            Ok(confirmed)
        }
        .await;
        finish(txn, outcome, unavailable).await
    }

    async fn accept_step(&self, user: UserId, step: u64) -> Result<bool, RepositoryError> {
        let step = step_column(step)?;
        Ok(mfa_credential::Entity::update_many()
            .col_expr(mfa_credential::Column::LastStep, Expr::value(step))
            .filter(mfa_credential::Column::UserId.eq(user.as_uuid()))
            .filter(mfa_credential::Column::ConfirmedAt.is_not_null())
            .filter(
                mfa_credential::Column::LastStep
                    .is_null()
                    .or(mfa_credential::Column::LastStep.lt(step)),
            )
            .exec(self.db.connection())
            .await
            .map_err(unavailable)?
            .rows_affected
            == 1)
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        recovery_codes: &[TokenHash],
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let outcome = replace_codes(&txn, user, recovery_codes, at).await;
        finish(txn, outcome, unavailable).await
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &TokenHash,
        at: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        Ok(recovery_code::Entity::update_many()
            .col_expr(recovery_code::Column::UsedAt, Expr::value(stored(at)))
            .filter(recovery_code::Column::Hash.eq(code.as_bytes().to_vec()))
            .filter(recovery_code::Column::UserId.eq(user.as_uuid()))
            .filter(recovery_code::Column::UsedAt.is_null())
            .exec(self.db.connection())
            .await
            .map_err(unavailable)?
            .rows_affected
            == 1)
    }

    async fn disable_mfa(&self, user: UserId) -> Result<(), RepositoryError> {
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let outcome = async {
            delete_codes(&txn, user).await?;
            mfa_credential::Entity::delete_by_id(user.as_uuid())
                .exec(&txn)
                .await
                .map(drop)
                .map_err(unavailable)
        }
        .await;
        finish(txn, outcome, unavailable).await
    }

    async fn change_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: SessionId,
        at: DateTime<Utc>,
    ) -> Result<u64, RepositoryError> {
        let at = stored(at);
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let outcome = async {
            store_password(&txn, user, password_hash).await?;
            end_credential_grants(&txn, user, Some(keep), at).await
        }
        .await;
        finish(txn, outcome, unavailable).await
    }

    async fn reset_password(
        &self,
        token: &TokenHash,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<UserId, TokenRejection>, RepositoryError> {
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let outcome = async {
            if !consume_token(&txn, token, TokenPurpose::ResetPassword, now).await? {
                return Ok(Err(
                    rejection(&txn, token, TokenPurpose::ResetPassword).await?
                ));
            }
            let user = token_owner(&txn, token).await?;
            store_password(&txn, user, password_hash).await?;
            end_credential_grants(&txn, user, None, stored(now)).await?;
            Ok(Ok(user))
        }
        .await;
        finish(txn, outcome, unavailable).await
    }

    async fn start_email_change(
        &self,
        token: &OneTimeToken,
        new_email: &Email,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let sealed = self
            .seal(token.user, NEW_EMAIL_FIELD, new_email.as_str().as_bytes())
            .await?;
        let index = self
            .indexer
            .index(EMAIL_INDEX, new_email.as_str())
            .as_bytes()
            .to_vec();
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        let outcome = async {
            one_time_token::Entity::insert(token_row(token))
                .exec_without_returning(&txn)
                .await
                .map_err(unavailable)?;
            email_change::Entity::insert(email_change::ActiveModel {
                token_hash: Set(token.hash.as_bytes().to_vec()),
                user_id: Set(token.user.as_uuid()),
                new_email_enc: Set(sealed),
                new_email_index: Set(index),
                created_at: Set(stored(at)),
            })
            .exec_without_returning(&txn)
            .await
            .map(drop)
            .map_err(unavailable)
        }
        .await;
        finish(txn, outcome, unavailable).await
    }

    async fn change_email(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Result<(UserId, Email), TokenRejection>, RepositoryError> {
        let conn = self.db.connection();
        let change = email_change::Entity::find_by_id(token.as_bytes().to_vec())
            .one(conn)
            .await
            .map_err(unavailable)?;
        let Some(change) = change else {
            // Redeemed (the row is gone with it), or never a change token.
            return Ok(Err(rejection(conn, token, TokenPurpose::ChangeEmail).await?));
        };
        let user = UserId::from_uuid(change.user_id);
        let new_email = self
            .open_email(change.user_id, NEW_EMAIL_FIELD, &change.new_email_enc)
            .await?;
        let current = user::Entity::find_by_id(change.user_id)
            .one(conn)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| corrupt("users"))?;
        let previous = self
            .open_email(current.id, EMAIL_FIELD, &current.email_enc)
            .await?;
        let sealed = self
            .seal(user, EMAIL_FIELD, new_email.as_str().as_bytes())
            .await?;
        let txn = conn.begin().await.map_err(unavailable)?;
        let outcome = self
            .switch_email(
                &txn,
                token,
                change.user_id,
                sealed,
                change.new_email_index,
                now,
            )
            .await;
        Ok(finish(txn, outcome, unavailable)
            .await?
            .map(|()| (user, previous)))
    }

    async fn update_organisation(
        &self,
        organisation: &Organisation,
    ) -> Result<(), RepositoryError> {
        organisation::Entity::update_many()
            .col_expr(
                organisation::Column::Name,
                Expr::value(organisation.name.as_str()),
            )
            .col_expr(
                organisation::Column::MarketingMode,
                Expr::value(organisation.marketing_mode.as_str()),
            )
            .col_expr(
                organisation::Column::RequireMfa,
                Expr::value(organisation.require_mfa),
            )
            .filter(organisation::Column::Id.eq(organisation.id.as_uuid()))
            .exec(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }
}

fn token_row(token: &OneTimeToken) -> one_time_token::ActiveModel {
    one_time_token::ActiveModel {
        hash: Set(token.hash.as_bytes().to_vec()),
        purpose: Set(token.purpose.as_str().to_owned()),
        user_id: Set(token.user.as_uuid()),
        expires_at: Set(stored(token.expires_at)),
        used_at: Set(None),
    }
}
