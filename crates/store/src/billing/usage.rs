//! [`SeaOrmPracticeUsage`]: billing's `PracticeUsage` port, counted from
//! identity's `memberships` and `users`.
//!
//! An active client is a member of the practice holding the client role whose
//! account is neither disabled, erased nor frozen (a frozen account is refused like
//! a disabled one); an active provider likewise with the provider role. Each count
//! is one `COUNT(*)` over the practice's memberships of that role (the
//! `memberships_organisation_role_since` index) joined to each member's account by
//! its primary key: no table is scanned beyond the practice's rows.

use async_trait::async_trait;
use billing::ports::{PracticeUsage, RepositoryError};
use identity::model::AccountStatus;
use kernel::{OrganisationId, Role};
use sea_orm::FromQueryResult;
use sea_orm::sea_query::{Expr, ExprTrait, Query};

use super::unavailable;
use crate::Database;
use crate::identity::{membership, user};

/// Accounts that no longer count towards a plan's limits.
const INACTIVE: [AccountStatus; 3] = [
    AccountStatus::Disabled,
    AccountStatus::Erased,
    AccountStatus::Frozen,
];

/// The practice's usage on Custodia's database.
#[derive(Debug, Clone)]
pub struct SeaOrmPracticeUsage {
    db: Database,
}

impl SeaOrmPracticeUsage {
    /// The counts on `db`.
    #[must_use]
    pub const fn new(db: Database) -> Self {
        Self { db }
    }

    /// Members of `organisation` holding `role` whose account is in use.
    async fn count(
        &self,
        organisation: OrganisationId,
        role: Role,
    ) -> Result<u64, RepositoryError> {
        #[derive(FromQueryResult)]
        struct Count {
            n: i64,
        }
        use membership::{Column as M, Entity as Members};
        use user::{Column as U, Entity as Users};
        let stmt = Query::select()
            .expr_as(Expr::col((Members, M::UserId)).count(), "n")
            .from(Members)
            .inner_join(
                Users,
                Expr::col((Users, U::Id)).equals((Members, M::UserId)),
            )
            .and_where(Expr::col((Members, M::OrganisationId)).eq(organisation.as_uuid()))
            .and_where(Expr::col((Members, M::Role)).eq(role.as_str()))
            .and_where(Expr::col((Users, U::Status)).is_not_in(INACTIVE.map(AccountStatus::as_str)))
            .to_owned();
        let conn = self.db.connection();
        let row = Count::find_by_statement(conn.get_database_backend().build(&stmt))
            .one(conn)
            .await
            .map_err(unavailable)?;
        Ok(row.map_or(0, |c| u64::try_from(c.n).unwrap_or(0)))
    }
}

#[async_trait]
impl PracticeUsage for SeaOrmPracticeUsage {
    async fn active_clients(&self, organisation: OrganisationId) -> Result<u64, RepositoryError> {
        self.count(organisation, Role::Client).await
    }

    async fn providers(&self, organisation: OrganisationId) -> Result<u64, RepositoryError> {
        self.count(organisation, Role::Provider).await
    }
}
