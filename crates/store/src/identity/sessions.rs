//! [`SeaOrmSessionRepository`]: the `SessionRepository` port on the `sessions`
//! table. Tokens are stored only as their SHA-256 and found by it (unique index).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crypto::TokenHash;
use identity::model::{Session, SessionId};
use identity::ports::{RepositoryError, SessionRepository};
use kernel::{OrganisationId, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::entity::session::{ActiveModel, Column, Entity, Model};
use super::{address, hash_bytes, in_transaction, stored, stored_opt, unavailable, utc, utc_opt};
use crate::Database;

const TABLE: &str = "sessions";

/// Sessions on Custodia's database.
#[derive(Debug, Clone)]
pub struct SeaOrmSessionRepository {
    db: Database,
}

impl SeaOrmSessionRepository {
    /// The repository on `db`.
    #[must_use]
    pub const fn new(db: Database) -> Self {
        Self { db }
    }
}

pub(super) fn to_domain(row: Model) -> Result<Session, RepositoryError> {
    Ok(Session {
        id: SessionId::from_uuid(row.id),
        user: UserId::from_uuid(row.user_id),
        organisation: OrganisationId::from_uuid(row.organisation_id),
        token_hash: TokenHash::from_bytes(hash_bytes(&row.token_hash, TABLE)?),
        created_at: utc(row.created_at),
        last_seen_at: utc(row.last_seen_at),
        expires_at: utc(row.expires_at),
        revoked_at: utc_opt(row.revoked_at),
        client_address: address(row.client_address, TABLE)?,
        user_agent: row.user_agent,
    })
}

#[async_trait]
impl SessionRepository for SeaOrmSessionRepository {
    async fn insert(&self, session: &Session) -> Result<(), RepositoryError> {
        let row = ActiveModel {
            id: Set(session.id.as_uuid()),
            user_id: Set(session.user.as_uuid()),
            organisation_id: Set(session.organisation.as_uuid()),
            token_hash: Set(session.token_hash.as_bytes().to_vec()),
            created_at: Set(stored(session.created_at)),
            last_seen_at: Set(stored(session.last_seen_at)),
            expires_at: Set(stored(session.expires_at)),
            revoked_at: Set(stored_opt(session.revoked_at)),
            client_address: Set(session.client_address.map(|a| a.to_string())),
            user_agent: Set(session.user_agent.clone()),
        };
        // A clash of 256-bit random token hashes or v7 ids is not a rule the caller
        // can break, so every failure here is `Unavailable`.
        Entity::insert(row)
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn find_by_token(&self, hash: &TokenHash) -> Result<Option<Session>, RepositoryError> {
        Entity::find()
            .filter(Column::TokenHash.eq(hash.as_bytes().to_vec()))
            .one(self.db.connection())
            .await
            .map_err(unavailable)?
            .map(to_domain)
            .transpose()
    }

    async fn touch(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), RepositoryError> {
        let at = stored(at);
        // Never moves `last_seen_at` back when two requests finish out of order.
        Entity::update_many()
            .col_expr(Column::LastSeenAt, Expr::value(at))
            .filter(Column::Id.eq(id.as_uuid()))
            .filter(Column::LastSeenAt.lt(at))
            .exec(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn revoke(
        &self,
        user: UserId,
        id: SessionId,
        at: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let at = stored(at);
        let result = Entity::update_many()
            .col_expr(Column::RevokedAt, Expr::value(at))
            .filter(Column::Id.eq(id.as_uuid()))
            .filter(Column::UserId.eq(user.as_uuid()))
            .filter(Column::RevokedAt.is_null())
            .filter(Column::ExpiresAt.gt(at))
            .exec(self.db.connection())
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected == 1)
    }

    async fn revoke_all(&self, user: UserId, at: DateTime<Utc>) -> Result<u64, RepositoryError> {
        use super::integrations::operator_session;
        let at = stored(at);
        // Member and operator sessions alike: "end every session" leaves none.
        in_transaction(&self.db, async |txn| {
            let members = Entity::update_many()
                .col_expr(Column::RevokedAt, Expr::value(at))
                .filter(Column::UserId.eq(user.as_uuid()))
                .filter(Column::RevokedAt.is_null())
                .filter(Column::ExpiresAt.gt(at))
                .exec(txn)
                .await
                .map_err(unavailable)?;
            let operators = operator_session::Entity::update_many()
                .col_expr(operator_session::Column::RevokedAt, Expr::value(at))
                .filter(operator_session::Column::UserId.eq(user.as_uuid()))
                .filter(operator_session::Column::RevokedAt.is_null())
                .exec(txn)
                .await
                .map_err(unavailable)?;
            Ok(members.rows_affected + operators.rows_affected)
        })
        .await
    }

    async fn live_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, RepositoryError> {
        Entity::find()
            .filter(Column::UserId.eq(user.as_uuid()))
            .filter(Column::RevokedAt.is_null())
            .filter(Column::ExpiresAt.gt(stored(now)))
            .order_by_desc(Column::CreatedAt)
            .order_by_desc(Column::Id)
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(to_domain)
            .collect()
    }
}
