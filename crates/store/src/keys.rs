//! [`SeaOrmKeyStore`]: the `crypto` crate's [`KeyStore`] port on the `crypto_keys`
//! table. Only wrapped key material ever reaches this table.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crypto::{KeyId, KeyOwner, KeyOwnerKind, KeyStore, KeyStoreError, WrappedKey};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, SqlErr};

use crate::Database;

pub mod entity {
    //! sea-orm entity for `crypto_keys`. Internal to the adapter: rows are turned
    //! into [`crypto::WrappedKey`] before they leave this crate.
    use sea_orm::entity::prelude::*;

    /// One stored key.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "crypto_keys")]
    pub struct Model {
        /// The key's id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// `organisation` or `subject`.
        pub owner_kind: String,
        /// The organisation's or subject's id.
        pub owner_id: Uuid,
        /// The organisation the key belongs to.
        pub organisation_id: Uuid,
        /// 1, then one more per rotation.
        pub version: i32,
        /// The wrapping key's id.
        pub wrapped_by: Uuid,
        /// The wrapped key; NULL once destroyed.
        pub material: Option<Vec<u8>>,
        /// When created.
        pub created_at: DateTimeWithTimeZone,
        /// When destroyed.
        pub destroyed_at: Option<DateTimeWithTimeZone>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity, Model};

/// The key store on Custodia's database.
#[derive(Debug, Clone)]
pub struct SeaOrmKeyStore {
    db: Database,
}

impl SeaOrmKeyStore {
    /// The key store on `db`.
    #[must_use]
    pub const fn new(db: Database) -> Self {
        Self { db }
    }
}

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> KeyStoreError {
    KeyStoreError::Unavailable(Box::new(err))
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt crypto_keys row {0}")]
struct CorruptRow(uuid::Uuid);

fn to_domain(row: Model) -> Result<WrappedKey, KeyStoreError> {
    let corrupt = || unavailable(CorruptRow(row.id));
    let kind = KeyOwnerKind::parse(&row.owner_kind).ok_or_else(corrupt)?;
    let owner =
        KeyOwner::from_columns(kind, row.owner_id, row.organisation_id).ok_or_else(corrupt)?;
    let version = u32::try_from(row.version).map_err(|_| corrupt())?;
    Ok(WrappedKey {
        id: KeyId::from_uuid(row.id),
        owner,
        version,
        wrapped_by: KeyId::from_uuid(row.wrapped_by),
        material: row.material,
        created_at: row.created_at.with_timezone(&Utc),
    })
}

fn owner_filter(owner: &KeyOwner) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(Column::OwnerKind.eq(owner.kind().as_str()))
        .add(Column::OrganisationId.eq(owner.organisation().as_uuid()))
        .add(Column::OwnerId.eq(owner.owner_id()))
}

#[async_trait]
impl KeyStore for SeaOrmKeyStore {
    async fn insert(&self, key: &WrappedKey) -> Result<(), KeyStoreError> {
        let version = i32::try_from(key.version).map_err(unavailable)?;
        let row = ActiveModel {
            id: Set(key.id.as_uuid()),
            owner_kind: Set(key.owner.kind().as_str().to_owned()),
            owner_id: Set(key.owner.owner_id()),
            organisation_id: Set(key.owner.organisation().as_uuid()),
            version: Set(version),
            wrapped_by: Set(key.wrapped_by.as_uuid()),
            material: Set(key.material.clone()),
            created_at: Set(key.created_at.fixed_offset()),
            destroyed_at: Set(None),
        };
        match Entity::insert(row)
            .exec_without_returning(self.db.connection())
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => match err.sql_err() {
                Some(SqlErr::UniqueConstraintViolation(_)) => Err(KeyStoreError::Duplicate),
                _ => Err(unavailable(err)),
            },
        }
    }

    async fn get(&self, id: KeyId) -> Result<Option<WrappedKey>, KeyStoreError> {
        Entity::find_by_id(id.as_uuid())
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(to_domain)
            .transpose()
    }

    async fn latest(&self, owner: &KeyOwner) -> Result<Option<WrappedKey>, KeyStoreError> {
        Entity::find()
            .filter(owner_filter(owner))
            .order_by_desc(Column::Version)
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(to_domain)
            .transpose()
    }

    async fn destroy(&self, owner: &KeyOwner) -> Result<u64, KeyStoreError> {
        let now: DateTime<Utc> = Utc::now();
        let result = Entity::update_many()
            .col_expr(Column::Material, Expr::value(Option::<Vec<u8>>::None))
            .col_expr(Column::DestroyedAt, Expr::value(now.fixed_offset()))
            .filter(owner_filter(owner))
            .filter(Column::Material.is_not_null())
            .exec(self.db.connection())
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn honours_the_key_store_contract_on_sqlite() {
        let db = crate::testing::TestDatabase::sqlite().await;
        db.database().migrate_up(None).await.expect("migrates");
        crypto::testing::key_store_contract(&SeaOrmKeyStore::new(db.database().clone())).await;
    }

    #[tokio::test]
    async fn honours_the_key_store_contract_on_postgres() {
        let Some(db) = crate::testing::TestDatabase::postgres().await else {
            return;
        };
        db.database().migrate_up(None).await.expect("migrates");
        crypto::testing::key_store_contract(&SeaOrmKeyStore::new(db.database().clone())).await;
        db.drop().await;
    }
}
