//! [`SeaOrmApiKeyRepository`] and [`SeaOrmOperatorRepository`]: practices' API
//! keys (`api_keys`, secrets stored only as their SHA-256 and found by it), the
//! platform operators (`platform_operators`), their sessions (`operator_sessions`)
//! and the practice directory they read (`organisations`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crypto::TokenHash;
use identity::integrations::{
    ApiKey, ApiKeyId, ApiKeyName, ApiKeyRepository, ApiKeyRole, OperatorRepository,
    OperatorSession, Revocation,
};
use identity::model::{Organisation, SessionId};
use identity::ports::RepositoryError;
use kernel::{OrganisationId, UserId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::accounts::organisation_to_domain;
use super::entity::organisation;
use super::{corrupt, hash_bytes, stored, stored_opt, unavailable, utc, utc_opt};
use crate::Database;

mod api_key {
    //! `api_keys`: one row per practice key.
    use sea_orm::entity::prelude::*;

    /// One key.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_keys")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The practice.
        pub organisation_id: Uuid,
        /// Its name.
        pub name: String,
        /// `Role::as_str`.
        pub role: String,
        /// SHA-256 of the secret (unique).
        pub token_hash: Vec<u8>,
        /// The non-secret hint.
        pub hint: String,
        /// When created.
        pub created_at: DateTimeWithTimeZone,
        /// Who created it.
        pub created_by: Uuid,
        /// When last used.
        pub last_used_at: Option<DateTimeWithTimeZone>,
        /// When revoked.
        pub revoked_at: Option<DateTimeWithTimeZone>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod platform_operator {
    //! `platform_operators`: the accounts granted the operator role.
    use sea_orm::entity::prelude::*;

    /// One operator.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "platform_operators")]
    pub struct Model {
        /// The account.
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        /// Since when.
        pub granted_at: DateTimeWithTimeZone,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(super) mod operator_session {
    //! `operator_sessions`: operators' sessions, found by token hash.
    use sea_orm::entity::prelude::*;

    /// One session.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "operator_sessions")]
    pub struct Model {
        /// Its id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The operator.
        pub user_id: Uuid,
        /// SHA-256 of the token (unique).
        pub token_hash: Vec<u8>,
        /// When started.
        pub created_at: DateTimeWithTimeZone,
        /// When last used.
        pub last_seen_at: DateTimeWithTimeZone,
        /// Absolute end.
        pub expires_at: DateTimeWithTimeZone,
        /// When revoked.
        pub revoked_at: Option<DateTimeWithTimeZone>,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

const KEYS: &str = "api_keys";
const OPERATOR_SESSIONS: &str = "operator_sessions";

/// Practices' API keys on Custodia's database.
#[derive(Debug, Clone)]
pub struct SeaOrmApiKeyRepository {
    db: Database,
}

impl SeaOrmApiKeyRepository {
    /// The repository on `db`.
    #[must_use]
    pub const fn new(db: Database) -> Self {
        Self { db }
    }
}

fn key_to_domain(row: api_key::Model) -> Result<ApiKey, RepositoryError> {
    Ok(ApiKey {
        id: ApiKeyId::from_uuid(row.id),
        organisation: OrganisationId::from_uuid(row.organisation_id),
        name: ApiKeyName::parse(&row.name).map_err(|_| corrupt(KEYS))?,
        role: ApiKeyRole::parse(&row.role).map_err(|_| corrupt(KEYS))?,
        token_hash: TokenHash::from_bytes(hash_bytes(&row.token_hash, KEYS)?),
        hint: row.hint,
        created_at: utc(row.created_at),
        created_by: UserId::from_uuid(row.created_by),
        last_used_at: utc_opt(row.last_used_at),
        revoked_at: utc_opt(row.revoked_at),
    })
}

#[async_trait]
impl ApiKeyRepository for SeaOrmApiKeyRepository {
    async fn insert(&self, key: &ApiKey) -> Result<(), RepositoryError> {
        let row = api_key::ActiveModel {
            id: Set(key.id.as_uuid()),
            organisation_id: Set(key.organisation.as_uuid()),
            name: Set(key.name.as_str().to_owned()),
            role: Set(key.role.role().as_str().to_owned()),
            token_hash: Set(key.token_hash.as_bytes().to_vec()),
            hint: Set(key.hint.clone()),
            created_at: Set(stored(key.created_at)),
            created_by: Set(key.created_by.as_uuid()),
            last_used_at: Set(stored_opt(key.last_used_at)),
            revoked_at: Set(stored_opt(key.revoked_at)),
        };
        // Names need not be unique and 256-bit secrets do not clash: every
        // failure here is `Unavailable`.
        api_key::Entity::insert(row)
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn find_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiKey>, RepositoryError> {
        api_key::Entity::find()
            .filter(api_key::Column::TokenHash.eq(hash.as_bytes().to_vec()))
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(key_to_domain)
            .transpose()
    }

    async fn list(&self, organisation: OrganisationId) -> Result<Vec<ApiKey>, RepositoryError> {
        api_key::Entity::find()
            .filter(api_key::Column::OrganisationId.eq(organisation.as_uuid()))
            .order_by_desc(api_key::Column::CreatedAt)
            .order_by_desc(api_key::Column::Id)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(key_to_domain)
            .collect()
    }

    async fn revoke(
        &self,
        organisation: OrganisationId,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> Result<Revocation, RepositoryError> {
        let result = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(stored(at)))
            .filter(api_key::Column::Id.eq(id.as_uuid()))
            .filter(api_key::Column::OrganisationId.eq(organisation.as_uuid()))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(self.db.connection())
            .await
            .map_err(unavailable)?;
        if result.rows_affected == 1 {
            return Ok(Revocation::Revoked);
        }
        let exists = api_key::Entity::find_by_id(id.as_uuid())
            .filter(api_key::Column::OrganisationId.eq(organisation.as_uuid()))
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .is_some();
        Ok(if exists {
            Revocation::AlreadyRevoked
        } else {
            Revocation::NotFound
        })
    }

    async fn touch(&self, id: ApiKeyId, at: DateTime<Utc>) -> Result<(), RepositoryError> {
        let at = stored(at);
        api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::value(at))
            .filter(api_key::Column::Id.eq(id.as_uuid()))
            .filter(
                Condition::any()
                    .add(api_key::Column::LastUsedAt.is_null())
                    .add(api_key::Column::LastUsedAt.lt(at)),
            )
            .exec(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }
}

/// Platform operators and their sessions on Custodia's database.
#[derive(Debug, Clone)]
pub struct SeaOrmOperatorRepository {
    db: Database,
}

impl SeaOrmOperatorRepository {
    /// The repository on `db`.
    #[must_use]
    pub const fn new(db: Database) -> Self {
        Self { db }
    }
}

fn session_to_domain(row: operator_session::Model) -> Result<OperatorSession, RepositoryError> {
    Ok(OperatorSession {
        id: SessionId::from_uuid(row.id),
        user: UserId::from_uuid(row.user_id),
        token_hash: TokenHash::from_bytes(hash_bytes(&row.token_hash, OPERATOR_SESSIONS)?),
        created_at: utc(row.created_at),
        last_seen_at: utc(row.last_seen_at),
        expires_at: utc(row.expires_at),
        revoked_at: utc_opt(row.revoked_at),
    })
}

#[async_trait]
impl OperatorRepository for SeaOrmOperatorRepository {
    async fn grant(&self, user: UserId, at: DateTime<Utc>) -> Result<bool, RepositoryError> {
        let row = platform_operator::ActiveModel {
            user_id: Set(user.as_uuid()),
            granted_at: Set(stored(at)),
        };
        let inserted = platform_operator::Entity::insert(row)
            .on_conflict(
                OnConflict::column(platform_operator::Column::UserId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(self.db.connection())
            .await
            .map_err(unavailable)?;
        Ok(inserted == 1)
    }

    async fn is_operator(&self, user: UserId) -> Result<bool, RepositoryError> {
        Ok(platform_operator::Entity::find_by_id(user.as_uuid())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .is_some())
    }

    async fn insert_session(&self, session: &OperatorSession) -> Result<(), RepositoryError> {
        let row = operator_session::ActiveModel {
            id: Set(session.id.as_uuid()),
            user_id: Set(session.user.as_uuid()),
            token_hash: Set(session.token_hash.as_bytes().to_vec()),
            created_at: Set(stored(session.created_at)),
            last_seen_at: Set(stored(session.last_seen_at)),
            expires_at: Set(stored(session.expires_at)),
            revoked_at: Set(stored_opt(session.revoked_at)),
        };
        operator_session::Entity::insert(row)
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn find_session(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<OperatorSession>, RepositoryError> {
        operator_session::Entity::find()
            .filter(operator_session::Column::TokenHash.eq(hash.as_bytes().to_vec()))
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(session_to_domain)
            .transpose()
    }

    async fn touch_session(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), RepositoryError> {
        let at = stored(at);
        operator_session::Entity::update_many()
            .col_expr(operator_session::Column::LastSeenAt, Expr::value(at))
            .filter(operator_session::Column::Id.eq(id.as_uuid()))
            .filter(operator_session::Column::LastSeenAt.lt(at))
            .exec(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn revoke_session(
        &self,
        id: SessionId,
        at: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let result = operator_session::Entity::update_many()
            .col_expr(operator_session::Column::RevokedAt, Expr::value(stored(at)))
            .filter(operator_session::Column::Id.eq(id.as_uuid()))
            .filter(operator_session::Column::RevokedAt.is_null())
            .exec(self.db.connection())
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected == 1)
    }

    async fn practices(
        &self,
        after: Option<OrganisationId>,
        limit: u32,
    ) -> Result<Vec<Organisation>, RepositoryError> {
        let mut query = organisation::Entity::find();
        if let Some(after) = after {
            query = query.filter(organisation::Column::Id.gt(after.as_uuid()));
        }
        query
            .order_by_asc(organisation::Column::Id)
            .limit(u64::from(limit))
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(organisation_to_domain)
            .collect()
    }
}
