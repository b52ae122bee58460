//! The `PeopleRepository` port on [`SeaOrmIdentityRepository`]: accounts created
//! for others, roles, sealed dates of birth (`birth_dates`), guardianships
//! (`guardianships`), activation, and suspension with the deletion flag
//! (`deletion_flags`, O1).
//!
//! A date of birth is sealed with the person's data key, bound to the user id and
//! `birth_dates.date_of_birth`. Suspending an account sets its status and ends
//! its sessions in one transaction, so no session outlives a disable or freeze.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crypto::{FieldBinding, Keyring, TokenHash};
use identity::model::{
    AccountStatus, DeletionFlag, Guardianship, Invitation, Membership, PracticeMember, RoleRemoval,
    TokenPurpose, TokenRejection, User,
};
use identity::ports::{NewAccount, PeopleRepository, RepositoryError};
use identity::values::DateOfBirth;
use kernel::{OrganisationId, Role, UserId};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use super::super::entity::{
    account_deletion_request, membership, one_time_token, organisation, session, user,
};
use super::super::in_transaction;
use super::{
    SeaOrmIdentityRepository, corrupt, email_taken_or_unavailable, membership_row, open_field,
    role_rank, stored, token_row, unavailable, utc,
};
use crate::Database;

/// Field binding of the sealed date of birth.
const BIRTH_FIELD: &str = "birth_dates.date_of_birth";

pub(in crate::identity) mod birth_date {
    //! `birth_dates`: a person's sealed date of birth.
    use sea_orm::entity::prelude::*;

    /// One date of birth.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "birth_dates")]
    pub struct Model {
        /// The person.
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        /// `YYYY-MM-DD`, sealed with their data key.
        pub date_of_birth_enc: Vec<u8>,
        /// When recorded.
        pub recorded_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(in crate::identity) mod guardianship {
    //! `guardianships`: a guardian linked to a minor.
    use sea_orm::entity::prelude::*;

    /// One link.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "guardianships")]
    pub struct Model {
        /// The minor.
        #[sea_orm(primary_key, auto_increment = false)]
        pub minor_id: Uuid,
        /// The guardian.
        #[sea_orm(primary_key, auto_increment = false)]
        pub guardian_id: Uuid,
        /// The practice that linked them.
        pub organisation_id: Uuid,
        /// Who linked them.
        pub linked_by: Uuid,
        /// When.
        pub linked_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(in crate::identity) mod deletion_flag {
    //! `deletion_flags`: accounts to erase (found to be under 13).
    use sea_orm::entity::prelude::*;

    /// One flag.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "deletion_flags")]
    pub struct Model {
        /// The account.
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        /// The practice that reported it.
        pub organisation_id: Uuid,
        /// Who reported it.
        pub reported_by: Uuid,
        /// When it was flagged.
        pub flagged_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(in crate::identity) mod invitation {
    //! `invitations`: a practice's invitation to an existing account.
    use sea_orm::entity::prelude::*;

    /// One invitation.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "invitations")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The person invited.
        pub user_id: Uuid,
        /// The practice inviting.
        pub organisation_id: Uuid,
        /// The role offered.
        pub role: String,
        /// The minor whose guardian they are asked to be.
        pub guardian_of: Option<Uuid>,
        /// Who invited them.
        pub invited_by: Uuid,
        /// When.
        pub created_at: DateTimeWithTimeZone,
        /// When accepted.
        pub accepted_at: Option<DateTimeWithTimeZone>,
        /// When declined.
        pub declined_at: Option<DateTimeWithTimeZone>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An invitation from its row.
fn invitation_of(row: invitation::Model) -> Result<Invitation, RepositoryError> {
    Ok(Invitation {
        id: row.id,
        user: UserId::from_uuid(row.user_id),
        organisation: OrganisationId::from_uuid(row.organisation_id),
        role: Role::parse(&row.role).ok_or_else(|| corrupt("invitations"))?,
        guardian_of: row.guardian_of.map(UserId::from_uuid),
        invited_by: UserId::from_uuid(row.invited_by),
        created_at: utc(row.created_at),
        accepted_at: row.accepted_at.map(utc),
        declined_at: row.declined_at.map(utc),
    })
}

/// Marks `user`'s pending invitation `id` accepted and creates what it offers;
/// `None` when there is no such pending invitation.
async fn accept_in(
    txn: &DatabaseTransaction,
    user: UserId,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<Invitation>, RepositoryError> {
    // One conditional UPDATE: of two concurrent acceptances, one matches.
    let accepted = invitation::Entity::update_many()
        .col_expr(invitation::Column::AcceptedAt, Expr::value(stored(at)))
        .filter(invitation::Column::Id.eq(id))
        .filter(invitation::Column::UserId.eq(user.as_uuid()))
        .filter(invitation::Column::AcceptedAt.is_null())
        .filter(invitation::Column::DeclinedAt.is_null())
        .exec(txn)
        .await
        .map_err(unavailable)?
        .rows_affected;
    if accepted != 1 {
        return Ok(None);
    }
    let row = invitation::Entity::find_by_id(id)
        .one(txn)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| corrupt("invitations"))?;
    let invitation = invitation_of(row)?;
    let held = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user.as_uuid()))
        .filter(membership::Column::OrganisationId.eq(invitation.organisation.as_uuid()))
        .filter(membership::Column::Role.eq(invitation.role.as_str()))
        .one(txn)
        .await
        .map_err(unavailable)?;
    if held.is_none() {
        membership::Entity::insert(membership_row(&Membership {
            user,
            organisation: invitation.organisation,
            role: invitation.role,
            created_at: at,
        }))
        .exec_without_returning(txn)
        .await
        .map_err(unavailable)?;
    }
    if let Some(minor) = invitation.guardian_of {
        let linked = guardianship::Entity::find_by_id((minor.as_uuid(), user.as_uuid()))
            .one(txn)
            .await
            .map_err(unavailable)?;
        if linked.is_none() {
            guardianship::Entity::insert(guardianship_row(&Guardianship {
                minor,
                guardian: user,
                organisation: invitation.organisation,
                linked_by: invitation.invited_by,
                linked_at: at,
            }))
            .exec_without_returning(txn)
            .await
            .map_err(unavailable)?;
        }
    }
    Ok(Some(invitation))
}

/// `Duplicate` for any unique violation (a primary key held already), else
/// `Unavailable`.
fn duplicate_or_unavailable(err: DbErr) -> RepositoryError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => RepositoryError::Duplicate,
        _ => unavailable(err),
    }
}

/// Why a token that did not redeem was refused, from its row.
fn rejection(
    row: Option<one_time_token::Model>,
    purpose: TokenPurpose,
    now: DateTime<Utc>,
) -> Result<UserId, TokenRejection> {
    match row {
        Some(row) if row.purpose != purpose.as_str() => Err(TokenRejection::Unknown),
        Some(row) if row.used_at.is_some() => Err(TokenRejection::Used),
        Some(row) if utc(row.expires_at) <= now => Err(TokenRejection::Expired),
        Some(row) => Ok(UserId::from_uuid(row.user_id)),
        None => Err(TokenRejection::Unknown),
    }
}

/// The rows of a new account, sealed and ready to insert.
struct AccountRows {
    user: user::ActiveModel,
    memberships: Vec<membership::ActiveModel>,
    birth_date: Option<birth_date::ActiveModel>,
    guardianship: Option<guardianship::ActiveModel>,
    token: one_time_token::ActiveModel,
}

async fn insert_account(
    txn: &DatabaseTransaction,
    rows: AccountRows,
) -> Result<(), RepositoryError> {
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
    if let Some(row) = rows.birth_date {
        birth_date::Entity::insert(row)
            .exec_without_returning(txn)
            .await
            .map_err(unavailable)?;
    }
    if let Some(row) = rows.guardianship {
        guardianship::Entity::insert(row)
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

fn guardianship_row(link: &Guardianship) -> guardianship::ActiveModel {
    guardianship::ActiveModel {
        minor_id: Set(link.minor.as_uuid()),
        guardian_id: Set(link.guardian.as_uuid()),
        organisation_id: Set(link.organisation.as_uuid()),
        linked_by: Set(link.linked_by.as_uuid()),
        linked_at: Set(stored(link.linked_at)),
    }
}

/// Sets `status` on the account and ends its live sessions; with `flag`, flags
/// it first (a second flag is `Duplicate`, and nothing changes).
async fn suspend_in(
    txn: &DatabaseTransaction,
    user: UserId,
    status: AccountStatus,
    at: DateTime<Utc>,
    flag: Option<&DeletionFlag>,
) -> Result<u64, RepositoryError> {
    if let Some(flag) = flag {
        deletion_flag::Entity::insert(deletion_flag::ActiveModel {
            user_id: Set(flag.user.as_uuid()),
            organisation_id: Set(flag.organisation.as_uuid()),
            reported_by: Set(flag.reported_by.as_uuid()),
            flagged_at: Set(stored(flag.flagged_at)),
        })
        .exec_without_returning(txn)
        .await
        .map_err(duplicate_or_unavailable)?;
    }
    user::Entity::update_many()
        .col_expr(user::Column::Status, Expr::value(status.as_str()))
        .filter(user::Column::Id.eq(user.as_uuid()))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    let at = stored(at);
    let ended = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(at))
        .filter(session::Column::UserId.eq(user.as_uuid()))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(at))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    Ok(ended.rows_affected)
}

/// Removes the role, unless it is the practice's last `org_admin`. The
/// practice's row is locked first (PostgreSQL), so two administrators removing
/// each other cannot both succeed; SQLite has one writer at a time.
async fn remove_role_in(
    txn: &DatabaseTransaction,
    organisation: OrganisationId,
    user: UserId,
    role: Role,
) -> Result<RoleRemoval, RepositoryError> {
    organisation::Entity::find_by_id(organisation.as_uuid())
        .lock_exclusive()
        .one(txn)
        .await
        .map_err(unavailable)?;
    let removed = membership::Entity::delete_many()
        .filter(membership::Column::OrganisationId.eq(organisation.as_uuid()))
        .filter(membership::Column::UserId.eq(user.as_uuid()))
        .filter(membership::Column::Role.eq(role.as_str()))
        .exec(txn)
        .await
        .map_err(unavailable)?
        .rows_affected;
    if removed == 0 {
        return Ok(RoleRemoval::NotHeld);
    }
    if role == Role::OrgAdmin {
        let left = membership::Entity::find()
            .filter(membership::Column::OrganisationId.eq(organisation.as_uuid()))
            .filter(membership::Column::Role.eq(Role::OrgAdmin.as_str()))
            .limit(1)
            .one(txn)
            .await
            .map_err(unavailable)?;
        if left.is_none() {
            return Ok(RoleRemoval::LastOrgAdmin);
        }
    }
    Ok(RoleRemoval::Removed)
}

/// The person's date of birth, opened; `None` when none is recorded.
pub(in crate::identity) async fn birth_date_of(
    db: &Database,
    keyring: &Keyring,
    user: UserId,
) -> Result<Option<DateOfBirth>, RepositoryError> {
    let Some(row) = birth_date::Entity::find_by_id(user.as_uuid())
        .one(db.connection())
        .await
        .map_err(unavailable)?
    else {
        return Ok(None);
    };
    let raw = open_field(keyring, row.user_id, BIRTH_FIELD, &row.date_of_birth_enc).await?;
    DateOfBirth::from_stored(raw.expose())
        .map(Some)
        .ok_or_else(|| corrupt("birth_dates"))
}

impl SeaOrmIdentityRepository {
    async fn seal_birth_date(
        &self,
        person: &User,
        born: DateOfBirth,
        at: DateTime<Utc>,
    ) -> Result<birth_date::ActiveModel, RepositoryError> {
        let sealed = self
            .keyring
            .encrypt(
                person.home_organisation,
                person.subject,
                FieldBinding::new(person.id.as_uuid(), BIRTH_FIELD),
                born.to_stored().as_bytes(),
            )
            .await
            .map_err(unavailable)?;
        Ok(birth_date::ActiveModel {
            user_id: Set(person.id.as_uuid()),
            date_of_birth_enc: Set(sealed),
            recorded_at: Set(stored(at)),
        })
    }
}

#[async_trait]
impl PeopleRepository for SeaOrmIdentityRepository {
    async fn create_account(&self, account: &NewAccount) -> Result<(), RepositoryError> {
        let email_index = self.email_index(&account.user.email);
        if self
            .user_by_email_index(email_index.clone())
            .await?
            .is_some()
        {
            return Err(RepositoryError::Duplicate);
        }
        // Sealing may create the person's key, which writes `crypto_keys`: before
        // the transaction (SQLite has one writer at a time).
        let birth_date = match account.date_of_birth {
            Some(born) => Some(
                self.seal_birth_date(&account.user, born, account.user.created_at)
                    .await?,
            ),
            None => None,
        };
        let rows = AccountRows {
            user: self.user_row(&account.user, email_index, None).await?,
            memberships: account.memberships.iter().map(membership_row).collect(),
            birth_date,
            guardianship: account.guardianship.as_ref().map(guardianship_row),
            token: token_row(&account.activation),
        };
        in_transaction(&self.db, async |txn| insert_account(txn, rows).await).await
    }

    async fn remove_role(
        &self,
        organisation: OrganisationId,
        user: UserId,
        role: Role,
    ) -> Result<RoleRemoval, RepositoryError> {
        let txn = self.db.connection().begin().await.map_err(unavailable)?;
        match remove_role_in(&txn, organisation, user, role).await {
            Ok(RoleRemoval::Removed) => {
                txn.commit().await.map_err(unavailable)?;
                Ok(RoleRemoval::Removed)
            }
            // Nothing to keep: the delete (if any) is undone.
            other => {
                let _ = txn.rollback().await;
                other
            }
        }
    }

    async fn members(
        &self,
        organisation: OrganisationId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<PracticeMember>, RepositoryError> {
        let conn = self.db.connection();
        let mut ids = membership::Entity::find()
            .select_only()
            .column(membership::Column::UserId)
            .distinct()
            .filter(membership::Column::OrganisationId.eq(organisation.as_uuid()))
            .order_by_asc(membership::Column::UserId)
            .limit(u64::from(limit));
        if let Some(after) = after {
            ids = ids.filter(membership::Column::UserId.gt(after.as_uuid()));
        }
        let ids: Vec<Uuid> = ids.into_tuple().all(conn).await.map_err(unavailable)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let roles = membership::Entity::find()
            .filter(membership::Column::OrganisationId.eq(organisation.as_uuid()))
            .filter(membership::Column::UserId.is_in(ids.clone()))
            .all(conn)
            .await
            .map_err(unavailable)?;
        let rows = user::Entity::find()
            .filter(user::Column::Id.is_in(ids.clone()))
            .all(conn)
            .await
            .map_err(unavailable)?;
        let mut members = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.id;
            let (person, _) = self.to_domain(row).await?;
            let mut held = roles
                .iter()
                .filter(|m| m.user_id == id)
                .map(|m| Role::parse(&m.role).ok_or_else(|| corrupt("memberships")))
                .collect::<Result<Vec<_>, _>>()?;
            held.sort_by_key(|r| role_rank(*r));
            members.push(PracticeMember {
                user: person,
                roles: held,
            });
        }
        members.sort_by_key(|m| m.user.id.as_uuid());
        Ok(members)
    }

    async fn active_holders(
        &self,
        organisation: OrganisationId,
        role: Role,
    ) -> Result<Vec<UserId>, RepositoryError> {
        let holders = membership::Entity::find()
            .select_only()
            .column(membership::Column::UserId)
            .filter(membership::Column::OrganisationId.eq(organisation.as_uuid()))
            .filter(membership::Column::Role.eq(role.as_str()))
            .into_query();
        let ids: Vec<Uuid> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::Id.in_subquery(holders))
            .filter(user::Column::Status.eq(AccountStatus::Active.as_str()))
            .order_by_asc(user::Column::Id)
            .into_tuple()
            .all(self.db.connection())
            .await
            .map_err(unavailable)?;
        Ok(ids.into_iter().map(UserId::from_uuid).collect())
    }

    async fn date_of_birth(&self, user: UserId) -> Result<Option<DateOfBirth>, RepositoryError> {
        birth_date_of(&self.db, &self.keyring, user).await
    }

    async fn has_guardian(&self, minor: UserId) -> Result<bool, RepositoryError> {
        // Only a guardian linked by the minor's home practice counts.
        let home: Option<Uuid> = user::Entity::find_by_id(minor.as_uuid())
            .select_only()
            .column(user::Column::HomeOrganisationId)
            .into_tuple()
            .one(self.db.connection())
            .await
            .map_err(unavailable)?;
        let Some(home) = home else {
            return Ok(false);
        };
        Ok(guardianship::Entity::find()
            .filter(guardianship::Column::MinorId.eq(minor.as_uuid()))
            .filter(guardianship::Column::OrganisationId.eq(home))
            .limit(1)
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .is_some())
    }

    async fn link_guardian(&self, link: &Guardianship) -> Result<(), RepositoryError> {
        guardianship::Entity::insert(guardianship_row(link))
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(duplicate_or_unavailable)
    }

    async fn token_owner(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Result<UserId, TokenRejection>, RepositoryError> {
        let row = one_time_token::Entity::find_by_id(hash.as_bytes().to_vec())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?;
        Ok(rejection(row, purpose, now))
    }

    async fn activate(
        &self,
        hash: &TokenHash,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<UserId, TokenRejection>, RepositoryError> {
        let key = hash.as_bytes().to_vec();
        let password_hash = password_hash.to_owned();
        in_transaction(&self.db, async |txn| {
            let at = stored(now);
            // One conditional UPDATE: of two concurrent activations, one matches.
            let redeemed = one_time_token::Entity::update_many()
                .col_expr(one_time_token::Column::UsedAt, Expr::value(at))
                .filter(one_time_token::Column::Hash.eq(key.clone()))
                .filter(one_time_token::Column::Purpose.eq(TokenPurpose::ActivateAccount.as_str()))
                .filter(one_time_token::Column::UsedAt.is_null())
                .filter(one_time_token::Column::ExpiresAt.gt(at))
                .exec(txn)
                .await
                .map_err(unavailable)?
                .rows_affected
                == 1;
            let row = one_time_token::Entity::find_by_id(key.clone())
                .one(txn)
                .await
                .map_err(unavailable)?;
            if !redeemed {
                return Ok(Err(rejection(row, TokenPurpose::ActivateAccount, now)
                    .map_or_else(
                        |rejected| rejected,
                        // Live but not redeemed: another activation won the race.
                        |_| TokenRejection::Used,
                    )));
            }
            let owner = row.ok_or_else(|| corrupt("one_time_tokens"))?.user_id;
            activate_user(txn, owner, &password_hash, now).await?;
            Ok(Ok(UserId::from_uuid(owner)))
        })
        .await
    }

    async fn suspend(
        &self,
        user: UserId,
        status: AccountStatus,
        at: DateTime<Utc>,
        flag: Option<&DeletionFlag>,
    ) -> Result<u64, RepositoryError> {
        let flag = flag.copied();
        in_transaction(&self.db, async |txn| {
            suspend_in(txn, user, status, at, flag.as_ref()).await
        })
        .await
    }

    async fn enable(&self, user: UserId) -> Result<bool, RepositoryError> {
        // One conditional UPDATE: never an account whose owner asked for its
        // deletion (that also disables it), even if they ask meanwhile.
        let open_request = account_deletion_request::Entity::find()
            .select_only()
            .column(account_deletion_request::Column::Id)
            .filter(account_deletion_request::Column::UserId.eq(user.as_uuid()))
            .filter(account_deletion_request::Column::Status.eq("received"))
            .into_query();
        Ok(user::Entity::update_many()
            .col_expr(
                user::Column::Status,
                Expr::value(AccountStatus::Active.as_str()),
            )
            .filter(user::Column::Id.eq(user.as_uuid()))
            .filter(user::Column::Status.eq(AccountStatus::Disabled.as_str()))
            .filter(Expr::exists(open_request).not())
            .exec(self.db.connection())
            .await
            .map_err(unavailable)?
            .rows_affected
            == 1)
    }

    async fn deletion_flag(&self, user: UserId) -> Result<Option<DeletionFlag>, RepositoryError> {
        Ok(deletion_flag::Entity::find_by_id(user.as_uuid())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(|row| DeletionFlag {
                user: UserId::from_uuid(row.user_id),
                organisation: OrganisationId::from_uuid(row.organisation_id),
                reported_by: UserId::from_uuid(row.reported_by),
                flagged_at: utc(row.flagged_at),
            }))
    }

    async fn invite(&self, invitation: &Invitation) -> Result<(), RepositoryError> {
        let conn = self.db.connection();
        let mut pending = invitation::Entity::find()
            .filter(invitation::Column::UserId.eq(invitation.user.as_uuid()))
            .filter(invitation::Column::OrganisationId.eq(invitation.organisation.as_uuid()))
            .filter(invitation::Column::Role.eq(invitation.role.as_str()))
            .filter(invitation::Column::AcceptedAt.is_null())
            .filter(invitation::Column::DeclinedAt.is_null());
        pending = match invitation.guardian_of {
            Some(minor) => pending.filter(invitation::Column::GuardianOf.eq(minor.as_uuid())),
            None => pending.filter(invitation::Column::GuardianOf.is_null()),
        };
        if pending.one(conn).await.map_err(unavailable)?.is_some() {
            return Ok(());
        }
        invitation::Entity::insert(invitation::ActiveModel {
            id: Set(invitation.id),
            user_id: Set(invitation.user.as_uuid()),
            organisation_id: Set(invitation.organisation.as_uuid()),
            role: Set(invitation.role.as_str().to_owned()),
            guardian_of: Set(invitation.guardian_of.map(|minor| minor.as_uuid())),
            invited_by: Set(invitation.invited_by.as_uuid()),
            created_at: Set(stored(invitation.created_at)),
            accepted_at: Set(invitation.accepted_at.map(stored)),
            declined_at: Set(invitation.declined_at.map(stored)),
        })
        .exec_without_returning(conn)
        .await
        .map(drop)
        .map_err(duplicate_or_unavailable)
    }

    async fn invitations(&self, user: UserId) -> Result<Vec<Invitation>, RepositoryError> {
        invitation::Entity::find()
            .filter(invitation::Column::UserId.eq(user.as_uuid()))
            .order_by_asc(invitation::Column::CreatedAt)
            .order_by_asc(invitation::Column::Id)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(invitation_of)
            .collect()
    }

    async fn accept_invitation(
        &self,
        user: UserId,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<Invitation>, RepositoryError> {
        in_transaction(&self.db, async |txn| accept_in(txn, user, id, at).await).await
    }

    async fn disable(&self, user: UserId, at: DateTime<Utc>) -> Result<bool, RepositoryError> {
        in_transaction(&self.db, async |txn| {
            // Only an active account: a pending one (perhaps a child's, awaiting
            // a guardian) or a frozen one is never turned into a disabled one.
            let changed = user::Entity::update_many()
                .col_expr(
                    user::Column::Status,
                    Expr::value(AccountStatus::Disabled.as_str()),
                )
                .filter(user::Column::Id.eq(user.as_uuid()))
                .filter(user::Column::Status.eq(AccountStatus::Active.as_str()))
                .exec(txn)
                .await
                .map_err(unavailable)?
                .rows_affected
                == 1;
            if changed {
                suspend_in(txn, user, AccountStatus::Disabled, at, None).await?;
            }
            Ok(changed)
        })
        .await
    }
}

/// Sets the password, keeps the first verification time, and activates a pending
/// account (a disabled or frozen one keeps its status).
async fn activate_user(
    conn: &impl ConnectionTrait,
    owner: Uuid,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), RepositoryError> {
    let pending = AccountStatus::PendingVerification.as_str();
    let active = AccountStatus::Active.as_str();
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
        .col_expr(
            user::Column::EmailVerifiedAt,
            Func::coalesce([
                Expr::col(user::Column::EmailVerifiedAt),
                Expr::value(stored(now)),
            ])
            .into(),
        )
        .col_expr(
            user::Column::Status,
            Expr::case(user::Column::Status.eq(pending), active)
                .finally(Expr::col(user::Column::Status))
                .into(),
        )
        .filter(user::Column::Id.eq(owner))
        .exec(conn)
        .await
        .map(drop)
        .map_err(unavailable)
}
