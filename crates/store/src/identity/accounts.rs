//! [`SeaOrmIdentityRepository`]: the `IdentityRepository` port on the
//! `organisations`, `users`, `memberships` and `one_time_tokens` tables.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crypto::{BlindIndexer, FieldBinding, Keyring, TokenHash};
use identity::model::{
    AccountStatus, Credentials, Membership, OneTimeToken, Organisation, TokenPurpose,
    TokenRejection, User,
};
use identity::ports::{IdentityRepository, NewPractice, RepositoryError};
use identity::values::{
    DataRegion, DateOfBirth, Email, MarketingMode, OrganisationName, PersonName, Phone, Profession,
};
use kernel::{OrganisationId, Role, Sensitive, SubjectId, UserId};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use super::entity::{membership, one_time_token, organisation, user};
use super::{corrupt, in_transaction, stored, stored_opt, unavailable, utc, utc_opt};
use crate::Database;

pub(super) mod people;

/// The blind index that finds an account by its normalised email.
pub(super) const EMAIL_INDEX: &str = "email";
/// Field bindings of the sealed `users` columns.
pub(super) const NAME_FIELD: &str = "users.name";
pub(super) const EMAIL_FIELD: &str = "users.email";
pub(super) const PHONE_FIELD: &str = "users.phone";

/// Practices, people, memberships, credentials and one-time tokens on Custodia's
/// database, with personal fields sealed by the [`Keyring`].
#[derive(Debug, Clone)]
pub struct SeaOrmIdentityRepository {
    pub(super) db: Database,
    pub(super) keyring: Keyring,
    pub(super) indexer: BlindIndexer,
}

impl SeaOrmIdentityRepository {
    /// The repository on `db`, sealing with `keyring` and finding emails with
    /// `indexer` (which must stay the same for the life of the data).
    #[must_use]
    pub const fn new(db: Database, keyring: Keyring, indexer: BlindIndexer) -> Self {
        Self {
            db,
            keyring,
            indexer,
        }
    }

    fn email_index(&self, email: &Email) -> Vec<u8> {
        self.indexer
            .index(EMAIL_INDEX, email.as_str())
            .as_bytes()
            .to_vec()
    }

    async fn user_by_email_index(
        &self,
        email_index: Vec<u8>,
    ) -> Result<Option<user::Model>, RepositoryError> {
        user::Entity::find()
            .filter(user::Column::EmailIndex.eq(email_index))
            .one(self.db.connection())
            .await
            .map_err(unavailable)
    }

    /// The `users` row for `person`, its personal fields sealed with their data key.
    async fn user_row(
        &self,
        person: &User,
        email_index: Vec<u8>,
        password_hash: Option<String>,
    ) -> Result<user::ActiveModel, RepositoryError> {
        let cipher = self
            .keyring
            .subject_cipher(person.home_organisation, person.subject)
            .await
            .map_err(unavailable)?;
        let id = person.id.as_uuid();
        let seal = |field: &'static str, value: &str| {
            cipher
                .seal(FieldBinding::new(id, field), value.as_bytes())
                .map_err(unavailable)
        };
        Ok(user::ActiveModel {
            id: Set(id),
            subject_id: Set(person.subject.as_uuid()),
            home_organisation_id: Set(person.home_organisation.as_uuid()),
            email_index: Set(email_index),
            name_enc: Set(seal(NAME_FIELD, person.name.as_str())?),
            email_enc: Set(seal(EMAIL_FIELD, person.email.as_str())?),
            phone_enc: Set(person
                .phone
                .as_ref()
                .map(|phone| seal(PHONE_FIELD, phone.as_str()))
                .transpose()?),
            profession: Set(person.profession.as_ref().map(|p| p.as_str().to_owned())),
            status: Set(person.status.as_str().to_owned()),
            email_verified_at: Set(stored_opt(person.email_verified_at)),
            created_at: Set(stored(person.created_at)),
            password_hash: Set(password_hash),
            failed_attempts: Set(0),
            locked_until: Set(None),
        })
    }

    /// Seals and stores a new practice in one transaction. Sealing may create the
    /// practice's and the person's keys, which writes to `crypto_keys`: it happens
    /// before the transaction (SQLite has one writer at a time).
    async fn store_practice(
        &self,
        practice: &NewPractice,
        email_index: Vec<u8>,
    ) -> Result<(), RepositoryError> {
        let rows = PracticeRows {
            organisation: organisation_row(&practice.organisation),
            user: self
                .user_row(
                    &practice.user,
                    email_index,
                    Some(practice.password_hash.clone()),
                )
                .await?,
            memberships: practice.memberships.iter().map(membership_row).collect(),
            token: token_row(&practice.verification),
        };
        in_transaction(&self.db, async |txn| insert_practice(txn, rows).await).await
    }

    /// [`IdentityRepository::create_practice`] without the early email check, as
    /// when two sign-ups race past it: the unique index must decide.
    #[cfg(test)]
    pub(super) async fn create_practice_racing(
        &self,
        practice: &NewPractice,
    ) -> Result<(), RepositoryError> {
        let email_index = self.email_index(&practice.user.email);
        self.store_practice(practice, email_index).await
    }

    async fn open(
        &self,
        id: Uuid,
        field: &'static str,
        envelope: &[u8],
    ) -> Result<Sensitive<String>, RepositoryError> {
        open_field(&self.keyring, id, field, envelope).await
    }

    /// Opens a `users` row into the domain's account and credentials.
    async fn to_domain(&self, row: user::Model) -> Result<(User, Credentials), RepositoryError> {
        let bad = || corrupt("users");
        let name = self.open(row.id, NAME_FIELD, &row.name_enc).await?;
        let email = self.open(row.id, EMAIL_FIELD, &row.email_enc).await?;
        let phone = match &row.phone_enc {
            Some(envelope) => Some(self.open(row.id, PHONE_FIELD, envelope).await?),
            None => None,
        };
        let person = User {
            id: UserId::from_uuid(row.id),
            subject: SubjectId::from_uuid(row.subject_id),
            home_organisation: OrganisationId::from_uuid(row.home_organisation_id),
            name: PersonName::parse(name.expose()).map_err(|_| bad())?,
            email: Email::parse(email.expose()).map_err(|_| bad())?,
            phone: phone
                .map(|p| Phone::parse(p.expose()))
                .transpose()
                .map_err(|_| bad())?,
            profession: row
                .profession
                .as_deref()
                .map(Profession::parse)
                .transpose()
                .map_err(|_| bad())?,
            status: AccountStatus::parse(&row.status).ok_or_else(bad)?,
            email_verified_at: utc_opt(row.email_verified_at),
            created_at: utc(row.created_at),
        };
        let credentials = Credentials {
            password_hash: row.password_hash,
            failed_attempts: u32::try_from(row.failed_attempts).map_err(|_| bad())?,
            locked_until: utc_opt(row.locked_until),
        };
        Ok((person, credentials))
    }
}

/// Opens the sealed `field` of row `id`.
pub(super) async fn open_field(
    keyring: &Keyring,
    id: Uuid,
    field: &'static str,
    envelope: &[u8],
) -> Result<Sensitive<String>, RepositoryError> {
    keyring
        .decrypt_string(FieldBinding::new(id, field), envelope)
        .await
        .map_err(unavailable)
}

/// A person's name, contact details and date of birth, opened.
pub(crate) struct PersonalDetails {
    /// Full name.
    pub(crate) name: Sensitive<String>,
    /// Email address.
    pub(crate) email: Sensitive<String>,
    /// Phone number, if given.
    pub(crate) phone: Option<Sensitive<String>>,
    /// Date of birth, if recorded.
    pub(crate) birth_date: Option<DateOfBirth>,
}

/// The name, contact details and date of birth of account `user` of `subject`,
/// opened as identity's own reads open them; `None` when there is no such account
/// or it was erased. For other contexts' adapters that describe a person (the
/// clinical export's FHIR `Patient`).
pub(crate) async fn personal_details(
    db: &Database,
    keyring: &Keyring,
    user: UserId,
    subject: SubjectId,
) -> Result<Option<PersonalDetails>, RepositoryError> {
    let Some(row) = user::Entity::find_by_id(user.as_uuid())
        .filter(user::Column::SubjectId.eq(subject.as_uuid()))
        .filter(user::Column::Status.ne(AccountStatus::Erased.as_str()))
        .one(db.connection())
        .await
        .map_err(unavailable)?
    else {
        return Ok(None);
    };
    let phone = match &row.phone_enc {
        Some(envelope) => Some(open_field(keyring, row.id, PHONE_FIELD, envelope).await?),
        None => None,
    };
    Ok(Some(PersonalDetails {
        name: open_field(keyring, row.id, NAME_FIELD, &row.name_enc).await?,
        email: open_field(keyring, row.id, EMAIL_FIELD, &row.email_enc).await?,
        phone,
        birth_date: people::birth_date_of(db, keyring, user).await?,
    }))
}

fn organisation_row(practice: &Organisation) -> organisation::ActiveModel {
    organisation::ActiveModel {
        id: Set(practice.id.as_uuid()),
        name: Set(practice.name.as_str().to_owned()),
        region: Set(practice.region.as_str().to_owned()),
        marketing_mode: Set(practice.marketing_mode.as_str().to_owned()),
        require_mfa: Set(practice.require_mfa),
        created_at: Set(stored(practice.created_at)),
    }
}

pub(super) fn organisation_to_domain(
    row: organisation::Model,
) -> Result<Organisation, RepositoryError> {
    let bad = || corrupt("organisations");
    Ok(Organisation {
        id: OrganisationId::from_uuid(row.id),
        name: OrganisationName::parse(&row.name).map_err(|_| bad())?,
        region: DataRegion::parse(&row.region).map_err(|_| bad())?,
        marketing_mode: MarketingMode::parse(&row.marketing_mode).ok_or_else(bad)?,
        require_mfa: row.require_mfa,
        created_at: utc(row.created_at),
    })
}

fn membership_row(member: &Membership) -> membership::ActiveModel {
    membership::ActiveModel {
        user_id: Set(member.user.as_uuid()),
        organisation_id: Set(member.organisation.as_uuid()),
        role: Set(member.role.as_str().to_owned()),
        created_at: Set(stored(member.created_at)),
    }
}

fn membership_to_domain(row: membership::Model) -> Result<Membership, RepositoryError> {
    Ok(Membership {
        user: UserId::from_uuid(row.user_id),
        organisation: OrganisationId::from_uuid(row.organisation_id),
        role: Role::parse(&row.role).ok_or_else(|| corrupt("memberships"))?,
        created_at: utc(row.created_at),
    })
}

/// Where a role sorts among memberships created at the same moment: the order of
/// [`Role::ALL`].
fn role_rank(role: Role) -> usize {
    Role::ALL
        .iter()
        .position(|r| *r == role)
        .unwrap_or(Role::ALL.len())
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

/// A failed `users` insert or update: `Duplicate` only for the email's unique
/// index (an address already registered), anything else `Unavailable`.
pub(super) fn email_taken_or_unavailable(err: DbErr) -> RepositoryError {
    match err.sql_err() {
        // SQLite names the column (`users.email_index`), PostgreSQL the index
        // (`users_email_index`).
        Some(SqlErr::UniqueConstraintViolation(message)) if message.contains("email_index") => {
            RepositoryError::Duplicate
        }
        _ => unavailable(err),
    }
}

/// The rows of one new practice, sealed and ready to insert.
struct PracticeRows {
    organisation: organisation::ActiveModel,
    user: user::ActiveModel,
    memberships: Vec<membership::ActiveModel>,
    token: one_time_token::ActiveModel,
}

async fn insert_practice(
    txn: &DatabaseTransaction,
    rows: PracticeRows,
) -> Result<(), RepositoryError> {
    organisation::Entity::insert(rows.organisation)
        .exec_without_returning(txn)
        .await
        .map_err(unavailable)?;
    user::Entity::insert(rows.user)
        .exec_without_returning(txn)
        .await
        .map_err(email_taken_or_unavailable)?;
    if !rows.memberships.is_empty() {
        membership::Entity::insert_many(rows.memberships)
            .exec_without_returning(txn)
            .await
            .map_err(unavailable)?;
    }
    one_time_token::Entity::insert(rows.token)
        .exec_without_returning(txn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl IdentityRepository for SeaOrmIdentityRepository {
    async fn create_practice(&self, practice: &NewPractice) -> Result<(), RepositoryError> {
        let email_index = self.email_index(&practice.user.email);
        // Refuse a registered email before any key is created for the new practice;
        // the unique index still decides when two sign-ups race.
        if self
            .user_by_email_index(email_index.clone())
            .await?
            .is_some()
        {
            return Err(RepositoryError::Duplicate);
        }
        self.store_practice(practice, email_index).await
    }

    async fn find_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<(User, Credentials)>, RepositoryError> {
        match self.user_by_email_index(self.email_index(email)).await? {
            Some(row) => self.to_domain(row).await.map(Some),
            None => Ok(None),
        }
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, RepositoryError> {
        Ok(self
            .user_with_credentials(id)
            .await?
            .map(|(person, _)| person))
    }

    async fn user_with_credentials(
        &self,
        id: UserId,
    ) -> Result<Option<(User, Credentials)>, RepositoryError> {
        let row = user::Entity::find_by_id(id.as_uuid())
            .filter(user::Column::Status.ne(AccountStatus::Erased.as_str()))
            .one(self.db.connection())
            .await
            .map_err(unavailable)?;
        match row {
            Some(row) => self.to_domain(row).await.map(Some),
            None => Ok(None),
        }
    }

    async fn account_status(&self, id: UserId) -> Result<Option<AccountStatus>, RepositoryError> {
        let status: Option<String> = user::Entity::find_by_id(id.as_uuid())
            .select_only()
            .column(user::Column::Status)
            .into_tuple()
            .one(self.db.connection())
            .await
            .map_err(unavailable)?;
        status
            .map(|raw| AccountStatus::parse(&raw).ok_or_else(|| corrupt("users")))
            .transpose()
    }

    async fn organisation(
        &self,
        id: OrganisationId,
    ) -> Result<Option<Organisation>, RepositoryError> {
        organisation::Entity::find_by_id(id.as_uuid())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(organisation_to_domain)
            .transpose()
    }

    async fn memberships(&self, user: UserId) -> Result<Vec<Membership>, RepositoryError> {
        let mut memberships = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user.as_uuid()))
            .order_by_asc(membership::Column::CreatedAt)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(membership_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        // Oldest first; ties (one sign-up creates several at once) in a stable order.
        memberships.sort_by_key(|m| (m.created_at, m.organisation, role_rank(m.role)));
        Ok(memberships)
    }

    async fn record_failure(
        &self,
        user: UserId,
        threshold: u32,
        lock_until: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        // One transaction: the increment takes the row lock (PostgreSQL) or the
        // write lock (SQLite), so concurrent failures are counted one by one.
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        user::Entity::update_many()
            .col_expr(
                user::Column::FailedAttempts,
                Expr::col(user::Column::FailedAttempts).add(1),
            )
            .filter(user::Column::Id.eq(user.as_uuid()))
            .exec(&txn)
            .await
            .map_err(unavailable)?;
        let count = user::Entity::find_by_id(user.as_uuid())
            .one(&txn)
            .await
            .map_err(unavailable)?
            .map_or(0, |row| row.failed_attempts);
        let locked = u32::try_from(count).unwrap_or(0) >= threshold;
        if locked {
            user::Entity::update_many()
                .col_expr(user::Column::FailedAttempts, Expr::value(0_i32))
                .col_expr(user::Column::LockedUntil, Expr::value(stored(lock_until)))
                .filter(user::Column::Id.eq(user.as_uuid()))
                .exec(&txn)
                .await
                .map_err(unavailable)?;
        }
        txn.commit().await.map_err(unavailable)?;
        Ok(locked)
    }

    async fn clear_failures(&self, user: UserId) -> Result<(), RepositoryError> {
        user::Entity::update_many()
            .col_expr(user::Column::FailedAttempts, Expr::value(0_i32))
            .col_expr(
                user::Column::LockedUntil,
                Expr::value(Option::<DateTime<chrono::FixedOffset>>::None),
            )
            .filter(user::Column::Id.eq(user.as_uuid()))
            .exec(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn redeem_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Result<UserId, TokenRejection>, RepositoryError> {
        let conn = self.db.connection();
        let key = hash.as_bytes().to_vec();
        let now = stored(now);
        // One conditional UPDATE: of two concurrent redemptions, one matches.
        let redeemed = one_time_token::Entity::update_many()
            .col_expr(one_time_token::Column::UsedAt, Expr::value(now))
            .filter(one_time_token::Column::Hash.eq(key.clone()))
            .filter(one_time_token::Column::Purpose.eq(purpose.as_str()))
            .filter(one_time_token::Column::UsedAt.is_null())
            .filter(one_time_token::Column::ExpiresAt.gt(now))
            .exec(conn)
            .await
            .map_err(unavailable)?
            .rows_affected
            == 1;
        let row = one_time_token::Entity::find_by_id(key)
            .one(conn)
            .await
            .map_err(unavailable)?;
        Ok(match row {
            Some(row) if redeemed => Ok(UserId::from_uuid(row.user_id)),
            None if redeemed => return Err(corrupt("one_time_tokens")),
            Some(row) if row.purpose != purpose.as_str() => Err(TokenRejection::Unknown),
            Some(row) if row.used_at.is_some() => Err(TokenRejection::Used),
            Some(_) => Err(TokenRejection::Expired),
            None => Err(TokenRejection::Unknown),
        })
    }

    async fn issue_token(&self, token: &OneTimeToken) -> Result<(), RepositoryError> {
        one_time_token::Entity::insert(token_row(token))
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn mark_email_verified(
        &self,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let pending = AccountStatus::PendingVerification.as_str();
        let active = AccountStatus::Active.as_str();
        // One statement: keeps the first verification time, and activates only a
        // pending account (a disabled one stays disabled).
        user::Entity::update_many()
            .col_expr(
                user::Column::EmailVerifiedAt,
                Func::coalesce([
                    Expr::col(user::Column::EmailVerifiedAt),
                    Expr::value(stored(at)),
                ])
                .into(),
            )
            .col_expr(
                user::Column::Status,
                Expr::case(user::Column::Status.eq(pending), active)
                    .finally(Expr::col(user::Column::Status))
                    .into(),
            )
            .filter(user::Column::Id.eq(user.as_uuid()))
            // Only a self-registered account (it has a password): one created for
            // someone else is activated with its own token, through the age gate.
            .filter(user::Column::PasswordHash.is_not_null())
            .exec(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }
}
