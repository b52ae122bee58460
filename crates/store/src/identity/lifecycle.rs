//! The `AccountRepository` port on [`SeaOrmIdentityRepository`]: a person's own
//! changes, their deletion requests, and the reads and the erasure the rights
//! engine needs.
//!
//! Erasure runs in one transaction, so a crash leaves the account either whole or
//! erased, and a repeat finds nothing left to do. The erased `users` row keeps its
//! id and subject id (other records point at them) and nothing else: its sealed
//! columns are emptied, its email blind index replaced by one keyed to the account
//! (matching no address: the person's is free again, the unique index holds), its
//! status `erased`. Security events are
//! pseudonymised: `user_id` becomes a keyed pseudonym (HMAC of the id under a key
//! derived from the master key, as a UUIDv8), the same for every event of the
//! person, so a pattern of attack stays visible without naming anyone.

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset};
use crypto::FieldBinding;
use identity::model::{
    AccountErasure, AccountStatus, DeletionRequest, Guardianship, NoticeRecord, Session, User,
};
use identity::ports::{AccountRepository, RepositoryError};
use kernel::{SubjectId, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::accounts::people::{birth_date, deletion_flag, guardianship, invitation};
use super::accounts::{NAME_FIELD, PHONE_FIELD};
use super::credentials::{email_change, mfa_credential, recovery_code};
use super::entity::{
    account_deletion_request, membership, one_time_token, outbox, security_event, session, user,
    user_preference, user_profile,
};
use super::integrations::{operator_session, platform_operator};
use super::{
    SeaOrmIdentityRepository, in_transaction, sessions, stored, unavailable, utc, utc_opt,
};

/// The status of a deletion request until the rights engine answers it.
const RECEIVED: &str = "received";
/// The blind-index name the pseudonyms of erased people are keyed under.
const PSEUDONYM_INDEX: &str = "erased-person";
/// The blind-index name of the placeholder email index of erased accounts.
const ERASED_EMAIL_INDEX: &str = "erased-email";

impl SeaOrmIdentityRepository {
    /// The keyed pseudonym that replaces `user` in the records kept after erasure.
    fn pseudonym(&self, user: UserId) -> Uuid {
        let tag = self
            .indexer
            .index(PSEUDONYM_INDEX, &user.as_uuid().to_string());
        let mut bytes = [0_u8; 16];
        bytes.copy_from_slice(&tag.as_bytes()[..16]);
        // UUIDv8 (RFC 9562): version 8, variant 10; the other 122 bits are the tag's.
        bytes[6] = (bytes[6] & 0x0f) | 0x80;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Uuid::from_bytes(bytes)
    }

    /// The email blind index an erased account is left with: unique per account,
    /// under its own key, so it matches no address and frees the person's.
    fn erased_email_index(&self, user: UserId) -> Vec<u8> {
        self.indexer
            .index(ERASED_EMAIL_INDEX, &user.as_uuid().to_string())
            .as_bytes()
            .to_vec()
    }
}

/// Deletes the rows of `entity` matching `filter`, returning the ids `id_of` reads
/// from them first (for the erasure report).
async fn delete_reporting<E, C>(
    txn: &C,
    filter: sea_orm::Condition,
    id_of: impl Fn(&E::Model) -> Uuid,
) -> Result<Vec<Uuid>, RepositoryError>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let rows = E::find()
        .filter(filter.clone())
        .all(txn)
        .await
        .map_err(unavailable)?;
    E::delete_many()
        .filter(filter)
        .exec(txn)
        .await
        .map_err(unavailable)?;
    Ok(rows.iter().map(id_of).collect())
}

#[async_trait]
impl AccountRepository for SeaOrmIdentityRepository {
    async fn update_details(&self, person: &User) -> Result<(), RepositoryError> {
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
        let name = seal(NAME_FIELD, person.name.as_str())?;
        let phone = person
            .phone
            .as_ref()
            .map(|p| seal(PHONE_FIELD, p.as_str()))
            .transpose()?;
        user::Entity::update_many()
            .col_expr(user::Column::NameEnc, Expr::value(name))
            .col_expr(user::Column::PhoneEnc, Expr::value(phone))
            .col_expr(
                user::Column::Profession,
                Expr::value(person.profession.as_ref().map(|p| p.as_str().to_owned())),
            )
            .filter(user::Column::Id.eq(id))
            .filter(user::Column::Status.ne(AccountStatus::Erased.as_str()))
            .exec(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn request_deletion(&self, request: &DeletionRequest) -> Result<(), RepositoryError> {
        let row = account_deletion_request::ActiveModel {
            id: Set(request.id),
            user_id: Set(request.user.as_uuid()),
            requested_at: Set(stored(request.requested_at)),
            status: Set(RECEIVED.to_owned()),
        };
        let user_id = request.user.as_uuid();
        let at = stored(request.requested_at);
        in_transaction(&self.db, async |txn| {
            account_deletion_request::Entity::insert(row)
                .exec_without_returning(txn)
                .await
                .map_err(unavailable)?;
            user::Entity::update_many()
                .col_expr(
                    user::Column::Status,
                    Expr::value(AccountStatus::Disabled.as_str()),
                )
                .filter(user::Column::Id.eq(user_id))
                .exec(txn)
                .await
                .map_err(unavailable)?;
            session::Entity::update_many()
                .col_expr(session::Column::RevokedAt, Expr::value(at))
                .filter(session::Column::UserId.eq(user_id))
                .filter(session::Column::RevokedAt.is_null())
                .exec(txn)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn deletion_requests(
        &self,
        user: UserId,
    ) -> Result<Vec<DeletionRequest>, RepositoryError> {
        Ok(account_deletion_request::Entity::find()
            .filter(account_deletion_request::Column::UserId.eq(user.as_uuid()))
            .order_by_asc(account_deletion_request::Column::RequestedAt)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| DeletionRequest {
                id: row.id,
                user: UserId::from_uuid(row.user_id),
                requested_at: utc(row.requested_at),
            })
            .collect())
    }

    async fn account_of_subject(
        &self,
        subject: SubjectId,
    ) -> Result<Option<(UserId, bool)>, RepositoryError> {
        let found: Option<(Uuid, String)> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::Status)
            .filter(user::Column::SubjectId.eq(subject.as_uuid()))
            .into_tuple()
            .one(self.db.connection())
            .await
            .map_err(unavailable)?;
        Ok(found.map(|(id, status)| {
            (
                UserId::from_uuid(id),
                status == AccountStatus::Erased.as_str(),
            )
        }))
    }

    async fn all_sessions(&self, user: UserId) -> Result<Vec<Session>, RepositoryError> {
        session::Entity::find()
            .filter(session::Column::UserId.eq(user.as_uuid()))
            .order_by_desc(session::Column::CreatedAt)
            .order_by_desc(session::Column::Id)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(sessions::to_domain)
            .collect()
    }

    async fn notices(&self, user: UserId) -> Result<Vec<NoticeRecord>, RepositoryError> {
        Ok(outbox::Entity::find()
            .filter(outbox::Column::UserId.eq(user.as_uuid()))
            .order_by_asc(outbox::Column::CreatedAt)
            .order_by_asc(outbox::Column::Id)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| NoticeRecord {
                id: row.id,
                kind: row.kind,
                queued_at: utc(row.created_at),
                sent_at: utc_opt(row.sent_at),
            })
            .collect())
    }

    async fn guardianships(&self, user: UserId) -> Result<Vec<Guardianship>, RepositoryError> {
        let id = user.as_uuid();
        Ok(guardianship::Entity::find()
            .filter(
                sea_orm::Condition::any()
                    .add(guardianship::Column::MinorId.eq(id))
                    .add(guardianship::Column::GuardianId.eq(id)),
            )
            .order_by_asc(guardianship::Column::LinkedAt)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| Guardianship {
                minor: UserId::from_uuid(row.minor_id),
                guardian: UserId::from_uuid(row.guardian_id),
                organisation: kernel::OrganisationId::from_uuid(row.organisation_id),
                linked_by: UserId::from_uuid(row.linked_by),
                linked_at: utc(row.linked_at),
            })
            .collect())
    }

    async fn erase(&self, user: UserId) -> Result<AccountErasure, RepositoryError> {
        let id = user.as_uuid();
        let pseudonym = self.pseudonym(user);
        let fresh_index = self.erased_email_index(user);
        in_transaction(&self.db, async |txn| {
            erase_in(txn, id, pseudonym, fresh_index).await
        })
        .await
    }
}

/// The name of a record keyed by a secret's hash in an erasure report: the hash's
/// first 16 bytes, which identify it without revealing anything.
fn hash_name(hash: &[u8]) -> Uuid {
    Uuid::from_slice(hash.get(..16).unwrap_or_default()).unwrap_or_default()
}

async fn erase_in(
    txn: &DatabaseTransaction,
    id: Uuid,
    pseudonym: Uuid,
    fresh_index: Vec<u8>,
) -> Result<AccountErasure, RepositoryError> {
    let mut report = AccountErasure::default();
    let mut deleted = |kind: &'static str, ids: Vec<Uuid>| {
        report
            .deleted
            .extend(ids.into_iter().map(|record| (kind, record)));
    };
    deleted(
        "session",
        delete_reporting::<session::Entity, _>(
            txn,
            sea_orm::Condition::all().add(session::Column::UserId.eq(id)),
            |row| row.id,
        )
        .await?,
    );
    deleted(
        "one_time_token",
        delete_reporting::<one_time_token::Entity, _>(
            txn,
            sea_orm::Condition::all().add(one_time_token::Column::UserId.eq(id)),
            |row| hash_name(&row.hash),
        )
        .await?,
    );
    deleted(
        "membership",
        delete_reporting::<membership::Entity, _>(
            txn,
            sea_orm::Condition::all().add(membership::Column::UserId.eq(id)),
            |row| row.organisation_id,
        )
        .await?,
    );
    deleted(
        "profile",
        delete_reporting::<user_profile::Entity, _>(
            txn,
            sea_orm::Condition::all().add(user_profile::Column::UserId.eq(id)),
            |row| row.user_id,
        )
        .await?,
    );
    deleted(
        "preferences",
        delete_reporting::<user_preference::Entity, _>(
            txn,
            sea_orm::Condition::all().add(user_preference::Column::UserId.eq(id)),
            |row| row.user_id,
        )
        .await?,
    );
    deleted(
        "notice",
        delete_reporting::<outbox::Entity, _>(
            txn,
            sea_orm::Condition::all().add(outbox::Column::UserId.eq(id)),
            |row| row.id,
        )
        .await?,
    );
    deleted(
        "invitation",
        delete_reporting::<invitation::Entity, _>(
            txn,
            sea_orm::Condition::all().add(invitation::Column::UserId.eq(id)),
            |row| row.id,
        )
        .await?,
    );
    deleted(
        "date_of_birth",
        delete_reporting::<birth_date::Entity, _>(
            txn,
            sea_orm::Condition::all().add(birth_date::Column::UserId.eq(id)),
            |row| row.user_id,
        )
        .await?,
    );
    // A link between a minor and a guardian is about both: it goes when either is
    // erased. Named by the other person's id.
    deleted(
        "guardianship",
        delete_reporting::<guardianship::Entity, _>(
            txn,
            sea_orm::Condition::any()
                .add(guardianship::Column::MinorId.eq(id))
                .add(guardianship::Column::GuardianId.eq(id)),
            |row| {
                if row.minor_id == id {
                    row.guardian_id
                } else {
                    row.minor_id
                }
            },
        )
        .await?,
    );
    deleted(
        "mfa_credential",
        delete_reporting::<mfa_credential::Entity, _>(
            txn,
            sea_orm::Condition::all().add(mfa_credential::Column::UserId.eq(id)),
            |row| row.user_id,
        )
        .await?,
    );
    deleted(
        "recovery_code",
        delete_reporting::<recovery_code::Entity, _>(
            txn,
            sea_orm::Condition::all().add(recovery_code::Column::UserId.eq(id)),
            |row| hash_name(&row.hash),
        )
        .await?,
    );
    deleted(
        "email_change",
        delete_reporting::<email_change::Entity, _>(
            txn,
            sea_orm::Condition::all().add(email_change::Column::UserId.eq(id)),
            |row| hash_name(&row.token_hash),
        )
        .await?,
    );
    deleted(
        "operator_session",
        delete_reporting::<operator_session::Entity, _>(
            txn,
            sea_orm::Condition::all().add(operator_session::Column::UserId.eq(id)),
            |row| row.id,
        )
        .await?,
    );
    deleted(
        "operator_grant",
        delete_reporting::<platform_operator::Entity, _>(
            txn,
            sea_orm::Condition::all().add(platform_operator::Column::UserId.eq(id)),
            |row| row.user_id,
        )
        .await?,
    );
    // The flag asked for this erasure; done, it goes too.
    deleted(
        "deletion_flag",
        delete_reporting::<deletion_flag::Entity, _>(
            txn,
            sea_orm::Condition::all().add(deletion_flag::Column::UserId.eq(id)),
            |row| row.user_id,
        )
        .await?,
    );
    let user_row = user::Entity::find_by_id(id)
        .one(txn)
        .await
        .map_err(unavailable)?;
    if user_row
        .as_ref()
        .is_some_and(|row| row.password_hash.is_some())
    {
        deleted("credentials", vec![id]);
    }

    let events: Vec<(Uuid, DateTime<FixedOffset>)> = security_event::Entity::find()
        .select_only()
        .column(security_event::Column::Id)
        .column(security_event::Column::At)
        .filter(security_event::Column::UserId.eq(id))
        .into_tuple()
        .all(txn)
        .await
        .map_err(unavailable)?;
    security_event::Entity::update_many()
        .col_expr(security_event::Column::UserId, Expr::value(pseudonym))
        .filter(security_event::Column::UserId.eq(id))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    report.pseudonymised_events = events.into_iter().map(|(e, at)| (e, utc(at))).collect();
    report.kept_requests = account_deletion_request::Entity::find()
        .filter(account_deletion_request::Column::UserId.eq(id))
        .all(txn)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|row| row.id)
        .collect();

    user::Entity::update_many()
        .col_expr(user::Column::NameEnc, Expr::value(Vec::<u8>::new()))
        .col_expr(user::Column::EmailEnc, Expr::value(Vec::<u8>::new()))
        .col_expr(user::Column::PhoneEnc, Expr::value(Option::<Vec<u8>>::None))
        .col_expr(user::Column::EmailIndex, Expr::value(fresh_index))
        .col_expr(
            user::Column::Profession,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            user::Column::PasswordHash,
            Expr::value(Option::<String>::None),
        )
        .col_expr(user::Column::FailedAttempts, Expr::value(0_i32))
        .col_expr(
            user::Column::LockedUntil,
            Expr::value(Option::<DateTime<FixedOffset>>::None),
        )
        .col_expr(
            user::Column::EmailVerifiedAt,
            Expr::value(Option::<DateTime<FixedOffset>>::None),
        )
        .col_expr(
            user::Column::Status,
            Expr::value(AccountStatus::Erased.as_str()),
        )
        .filter(user::Column::Id.eq(id))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    Ok(report)
}
