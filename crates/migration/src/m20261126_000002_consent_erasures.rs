//! When each consent chain was unlinked from its subject (R1).
//!
//! - `consent_erasures`: one row per chain whose subject was erased, with the
//!   erasure's time in microseconds since the epoch (as every consent time), by
//!   that time. The pseudonymised events of such a chain are kept as the proof of
//!   consent for six years after the erasure, then the retention sweep deletes the
//!   chain and its row. Until this table existed, erasures were not dated: the
//!   chains already unlinked are dated by this migration's run, which keeps them at
//!   least as long as they had to be.

use std::time::{SystemTime, UNIX_EPOCH};

use sea_orm_migration::{prelude::*, schema::*};

use crate::create_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConsentErasures {
    Table,
    ChainId,
    ErasedAt,
}

#[derive(DeriveIden)]
enum ConsentEvents {
    Table,
    ChainId,
}

#[derive(DeriveIden)]
enum ConsentSubjects {
    Table,
    ChainId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsentErasures::Table)
                    .col(uuid(ConsentErasures::ChainId).primary_key())
                    .col(big_integer(ConsentErasures::ErasedAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "consent_erasures_by_time",
            ConsentErasures::Table,
            &[
                ConsentErasures::ErasedAt.into_iden(),
                ConsentErasures::ChainId.into_iden(),
            ],
            false,
        )
        .await?;

        // Chains already unlinked: dated now, the latest their erasure can have been.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| DbErr::Migration(format!("the system clock is before 1970: {e}")))?;
        let now = <i64 as TryFrom<u128>>::try_from(now.as_micros())
            .map_err(|_| DbErr::Migration("the system clock is out of range".to_owned()))?;
        let linked = Query::select()
            .column(ConsentSubjects::ChainId)
            .from(ConsentSubjects::Table)
            .to_owned();
        let unlinked = Query::select()
            .distinct()
            .column(ConsentEvents::ChainId)
            .expr(Expr::val(now))
            .from(ConsentEvents::Table)
            .and_where(Expr::col(ConsentEvents::ChainId).not_in_subquery(linked))
            .to_owned();
        let backfill = Query::insert()
            .into_table(ConsentErasures::Table)
            .columns([ConsentErasures::ChainId, ConsentErasures::ErasedAt])
            .select_from(unlinked)
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        manager.exec_stmt(backfill).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ConsentErasures::Table).to_owned())
            .await
    }
}
