//! Opening the database, migrating it and probing it.
//!
//! # SQLite durability settings
//! The embedded default is a single file in the working folder, opened with:
//! - `journal_mode=WAL`: readers never block the writer, and a commit is one
//!   sequential append to the write-ahead log;
//! - `synchronous=FULL`: the WAL is fsynced at every commit, so an acknowledged
//!   write (above all an audit event) survives power loss, not only a process
//!   crash. `NORMAL` would be faster and is what most WAL users choose; it can lose
//!   the last commits on power loss, which the audit log's promise does not allow;
//! - `foreign_keys=ON`, and a 5 s `busy_timeout` so concurrent writers queue
//!   rather than fail.
//!
//! PostgreSQL is used as configured by its server (`synchronous_commit=on` by
//! default, which gives the same guarantee).

use std::str::FromStr;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection};

/// Which database engine is behind a [`Database`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The stable name, as reported by readiness.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// How long to wait for a connection before failing a request.
    pub acquire_timeout: Duration,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Whether each known migration has been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's name.
    pub name: String,
    /// Whether it has been applied.
    pub applied: bool,
}

/// Why the database could not be opened, migrated or reached. The detail is for
/// operators' logs; callers show clients only that storage is unavailable.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported database.
    #[error("unsupported database URL scheme (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    /// Connecting failed.
    #[error("could not connect to the database")]
    Connect(#[source] sea_orm::DbErr),
    /// A migration failed.
    #[error("migration failed")]
    Migration(#[source] sea_orm::DbErr),
    /// A query failed.
    #[error("the database is unavailable")]
    Unavailable(#[source] sea_orm::DbErr),
}

/// An open connection pool to Custodia's database.
#[derive(Debug, Clone)]
pub struct Database {
    conn: DatabaseConnection,
    backend: Backend,
}

impl Database {
    /// Opens `url`: `sqlite://<file>` (created if missing) or `postgres://...`.
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`] for another scheme, [`StoreError::Connect`] when
    /// the database cannot be reached.
    pub async fn connect(url: &str, options: &DatabaseOptions) -> Result<Self, StoreError> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        // A malformed SQLite URL is reported by the driver when connecting.
        if backend == Backend::Sqlite && SqliteConnectOptions::from_str(url).is_err() {
            return Err(StoreError::UnsupportedUrl);
        }

        let mut opts = ConnectOptions::new(url.to_owned());
        opts.max_connections(options.max_connections)
            .min_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_timeout(options.acquire_timeout)
            // sqlx's statement log would print parameter-free SQL only, but at info
            // level on every query; keep it out of the service log.
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
            });
        let conn = sea_orm::Database::connect(opts)
            .await
            .map_err(StoreError::Connect)?;
        Ok(Self { conn, backend })
    }

    /// The engine behind this pool.
    #[must_use]
    pub const fn backend(&self) -> Backend {
        self.backend
    }

    /// The sea-orm connection, for the adapters in this crate.
    #[must_use]
    pub const fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Checks that the database answers a trivial query.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.conn
            .execute_unprepared("SELECT 1")
            .await
            .map(drop)
            .map_err(StoreError::Unavailable)
    }

    /// Applies every pending migration (or the next `steps`).
    ///
    /// # Errors
    /// [`StoreError::Migration`] when one fails; it is rolled back.
    pub async fn migrate_up(&self, steps: Option<u32>) -> Result<(), StoreError> {
        Migrator::up(&self.conn, steps)
            .await
            .map_err(StoreError::Migration)
    }

    /// Rolls back the last `steps` migrations (all of them when `None`).
    ///
    /// # Errors
    /// [`StoreError::Migration`] when one fails.
    pub async fn migrate_down(&self, steps: Option<u32>) -> Result<(), StoreError> {
        Migrator::down(&self.conn, steps)
            .await
            .map_err(StoreError::Migration)
    }

    /// Every known migration and whether it has been applied. Read-only: it does not
    /// create the migration table, so it is safe on a database not yet migrated.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be read.
    pub async fn migration_status(&self) -> Result<Vec<MigrationState>, StoreError> {
        let migrations = Migrator::get_migration_with_status_read_only(&self.conn)
            .await
            .map_err(StoreError::Unavailable)?;
        Ok(migrations
            .iter()
            .map(|m| MigrationState {
                name: m.name().to_owned(),
                applied: m.status() == sea_orm_migration::MigrationStatus::Applied,
            })
            .collect())
    }

    /// Whether any migration is pending.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be read.
    pub async fn has_pending_migrations(&self) -> Result<bool, StoreError> {
        Ok(self
            .migration_status()
            .await?
            .iter()
            .any(|state| !state.applied))
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(self) {
        // Closing can only fail if already closed; nothing to report then.
        let _ = self.conn.close().await;
    }

    #[cfg(test)]
    pub(crate) fn db_backend(&self) -> sea_orm::DbBackend {
        self.conn.get_database_backend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDatabase;

    async fn tables(db: &Database) -> Vec<String> {
        use sea_orm::{FromQueryResult, Statement};
        #[derive(FromQueryResult)]
        struct Name {
            name: String,
        }
        let sql = match db.backend() {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            }
            Backend::Postgres => {
                "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name"
            }
        };
        Name::find_by_statement(Statement::from_string(db.db_backend(), sql))
            .all(db.connection())
            .await
            .expect("lists tables")
            .into_iter()
            .map(|n| n.name)
            .collect()
    }

    async fn up_down_up(test_db: TestDatabase) {
        let db = test_db.database();
        assert!(db.has_pending_migrations().await.expect("status"));
        db.migrate_up(None).await.expect("up");
        let after_up = tables(db).await;
        for table in [
            "crypto_keys",
            "organisations",
            "users",
            "memberships",
            "sessions",
            "one_time_tokens",
            "security_events",
            "outbox",
            "audit_chains",
            "audit_events",
            "audit_checkpoints",
            "audit_disclosures",
            "consent_subjects",
            "consent_events",
            "consent_evidence",
            "consent_authorisations",
            "consent_settings",
            "consent_policies",
            "clinical_records",
            "clinical_record_versions",
            "clinical_appointments",
            "clinical_provider_schedules",
            "clinical_care_team",
            "clinical_break_glass",
            "clinical_exercise_templates",
            "clinical_restrictions",
            "billing_plans",
            "billing_plan_versions",
            "billing_tax_rates",
            "billing_accounts",
            "billing_payment_methods",
            "billing_subscriptions",
            "billing_invoice_counters",
            "billing_invoices",
            "billing_payments",
            "billing_refunds",
            "billing_webhook_events",
            "idempotency_keys",
            "rights_requests",
            "rights_archives",
            "rights_erasure_steps",
            "rights_authorities",
            "rights_cases",
        ] {
            assert!(
                after_up.contains(&table.to_owned()),
                "{table}: {after_up:?}"
            );
        }
        assert!(!db.has_pending_migrations().await.expect("status"));

        db.migrate_down(None).await.expect("down");
        let after_down = tables(db).await;
        assert_eq!(after_down, vec!["seaql_migrations".to_owned()]);
        assert!(
            db.migration_status()
                .await
                .expect("status")
                .iter()
                .all(|m| !m.applied)
        );

        db.migrate_up(None).await.expect("up again");
        assert_eq!(tables(db).await, after_up);
        test_db.drop().await;
    }

    #[tokio::test]
    async fn migrations_run_up_down_and_up_again_on_sqlite() {
        up_down_up(TestDatabase::sqlite().await).await;
    }

    #[tokio::test]
    async fn migrations_run_up_down_and_up_again_on_postgres() {
        if let Some(db) = TestDatabase::postgres().await {
            up_down_up(db).await;
        }
    }

    #[tokio::test]
    async fn sqlite_runs_with_wal_and_full_synchronous() {
        use sea_orm::{FromQueryResult, Statement};
        #[derive(FromQueryResult)]
        struct Mode {
            journal_mode: String,
        }
        #[derive(FromQueryResult)]
        struct Sync {
            synchronous: i64,
        }
        let test_db = TestDatabase::sqlite().await;
        let db = test_db.database();
        let mode = Mode::find_by_statement(Statement::from_string(
            db.db_backend(),
            "PRAGMA journal_mode",
        ))
        .one(db.connection())
        .await
        .expect("pragma")
        .expect("a row");
        assert_eq!(mode.journal_mode, "wal");
        let sync = Sync::find_by_statement(Statement::from_string(
            db.db_backend(),
            "PRAGMA synchronous",
        ))
        .one(db.connection())
        .await
        .expect("pragma")
        .expect("a row");
        assert_eq!(sync.synchronous, 2, "2 is FULL");
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused() {
        let err = Database::connect("mysql://localhost/x", &DatabaseOptions::default())
            .await
            .expect_err("refused");
        assert!(matches!(err, StoreError::UnsupportedUrl));
    }
}
