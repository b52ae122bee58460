//! [`SeaOrmSecurityEventLog`]: the `SecurityEventLog` port on the
//! `security_events` table.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use identity::model::{SecurityEvent, SecurityEventKind};
use identity::ports::{RepositoryError, SecurityEventLog};
use kernel::UserId;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entity::security_event::{ActiveModel, Column, Entity, Model};
use super::{address, corrupt, stored, unavailable, utc};
use crate::Database;

const TABLE: &str = "security_events";

/// The security-event log on Custodia's database.
#[derive(Debug, Clone)]
pub struct SeaOrmSecurityEventLog {
    db: Database,
}

impl SeaOrmSecurityEventLog {
    /// The log on `db`.
    #[must_use]
    pub const fn new(db: Database) -> Self {
        Self { db }
    }
}

fn to_domain(row: Model) -> Result<SecurityEvent, RepositoryError> {
    Ok(SecurityEvent {
        id: row.id,
        user: row.user_id.map(UserId::from_uuid),
        kind: SecurityEventKind::parse(&row.kind).ok_or_else(|| corrupt(TABLE))?,
        at: utc(row.at),
        client_address: address(row.client_address, TABLE)?,
        user_agent: row.user_agent,
        country: row.country,
    })
}

#[async_trait]
impl SecurityEventLog for SeaOrmSecurityEventLog {
    async fn record(&self, event: &SecurityEvent) -> Result<(), RepositoryError> {
        let row = ActiveModel {
            id: Set(event.id),
            user_id: Set(event.user.map(|u| u.as_uuid())),
            kind: Set(event.kind.as_str().to_owned()),
            at: Set(stored(event.at)),
            client_address: Set(event.client_address.map(|a| a.to_string())),
            user_agent: Set(event.user_agent.clone()),
            country: Set(event.country.clone()),
        };
        Entity::insert(row)
            .exec_without_returning(self.db.connection())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn events_of(
        &self,
        user: UserId,
        limit: u32,
    ) -> Result<Vec<SecurityEvent>, RepositoryError> {
        Entity::find()
            .filter(Column::UserId.eq(user.as_uuid()))
            .order_by_desc(Column::At)
            .order_by_desc(Column::Id)
            .limit(u64::from(limit))
            .all(self.db.connection())
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn purge_before(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError> {
        Entity::delete_many()
            .filter(Column::At.lt(stored(cutoff)))
            .exec(self.db.connection())
            .await
            .map(|done| done.rows_affected)
            .map_err(unavailable)
    }

    async fn count_before(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError> {
        Entity::find()
            .filter(Column::At.lt(stored(cutoff)))
            .count(self.db.connection())
            .await
            .map_err(unavailable)
    }
}
