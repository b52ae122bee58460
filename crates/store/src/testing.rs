//! Fresh databases for tests: a temporary SQLite file, or a freshly created
//! PostgreSQL database (when `CUSTODIA_TEST_POSTGRES_URL` names a server) that is
//! dropped afterwards, even when the test panics.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::{Database, DatabaseOptions};

/// The environment variable naming the PostgreSQL server for tests, as a URL to a
/// database the tests may connect to in order to create and drop their own.
pub const POSTGRES_URL_VAR: &str = "CUSTODIA_TEST_POSTGRES_URL";

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    database: Database,
    url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Sqlite(#[allow(dead_code, reason = "held until drop")] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
    Done,
}

impl TestDatabase {
    /// A new SQLite file in a temporary folder.
    ///
    /// # Panics
    /// When the folder or database cannot be created: the test cannot run.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!("sqlite://{}", dir.path().join("custodia.db").display());
        let database = Database::connect(&url, &DatabaseOptions::default())
            .await
            .expect("a temporary SQLite database");
        Self {
            database,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A new PostgreSQL database, or `None` when [`POSTGRES_URL_VAR`] is unset.
    ///
    /// # Panics
    /// When the variable is set but the server cannot be used: a silently skipped
    /// PostgreSQL leg would hide failures.
    pub async fn postgres() -> Option<Self> {
        let admin_url = std::env::var(POSTGRES_URL_VAR).ok()?;
        let name = format!("custodia_test_{}", Uuid::now_v7().simple());
        let admin = Database::connect(
            &admin_url,
            &DatabaseOptions {
                max_connections: 1,
                ..DatabaseOptions::default()
            },
        )
        .await
        .expect("CUSTODIA_TEST_POSTGRES_URL is set but PostgreSQL is unreachable");
        admin
            .connection()
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("a fresh PostgreSQL database");
        admin.close().await;
        let url = with_database(&admin_url, &name);
        let database = Database::connect(&url, &DatabaseOptions::default())
            .await
            .expect("the fresh PostgreSQL database");
        Some(Self {
            database,
            url,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// The open database.
    #[must_use]
    pub const fn database(&self) -> &Database {
        &self.database
    }

    /// Its URL, to hand to a server under test.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes the pool and removes the database now.
    pub async fn drop(mut self) {
        self.database.clone().close().await;
        if let Cleanup::Postgres { admin_url, name } =
            std::mem::replace(&mut self.cleanup, Cleanup::Done)
        {
            drop_postgres(&admin_url, &name).await;
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } =
            std::mem::replace(&mut self.cleanup, Cleanup::Done)
        {
            // Drop may run inside a runtime; use a thread with its own.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(drop_postgres(&admin_url, &name));
                }
            })
            .join();
        }
    }
}

async fn drop_postgres(admin_url: &str, name: &str) {
    if let Ok(admin) = Database::connect(
        admin_url,
        &DatabaseOptions {
            max_connections: 1,
            ..DatabaseOptions::default()
        },
    )
    .await
    {
        // FORCE ends connections a test left open (PostgreSQL 13+).
        let _ = admin
            .connection()
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
        admin.close().await;
    }
}

/// How many rows `table` holds: for tests that check "nothing was stored".
///
/// # Panics
/// When `table` is not a plain identifier, or the query fails.
pub async fn count_rows(database: &Database, table: &str) -> u64 {
    use sea_orm::{FromQueryResult, Statement};
    #[derive(FromQueryResult)]
    struct Count {
        n: i64,
    }
    assert!(
        table.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "not a table name"
    );
    let backend = database.connection().get_database_backend();
    let row = Count::find_by_statement(Statement::from_string(
        backend,
        format!("SELECT COUNT(*) AS n FROM {table}"),
    ))
    .one(database.connection())
    .await
    .expect("counts rows")
    .expect("one row");
    u64::try_from(row.n).expect("a count")
}

/// Runs one SQL statement (for tests that must set up a state the API cannot
/// reach yet, e.g. a membership removed by hand).
///
/// # Panics
/// When the statement fails.
pub async fn execute(database: &Database, sql: &str) {
    use sea_orm::Statement;
    let backend = database.connection().get_database_backend();
    database
        .connection()
        .execute_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .expect("the statement runs");
}

/// `url` with its database name replaced by `name`.
#[must_use]
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Everything the database holds, as raw bytes: the SQLite files (database and
/// write-ahead log), or every text and bytea value of every PostgreSQL table.
/// # Panics
/// When the database cannot be read: the test cannot run.
pub async fn raw_contents(db: &Database, url: &str) -> Vec<(String, Vec<u8>)> {
    use sea_orm::Statement;
    match db.backend() {
        crate::Backend::Sqlite => {
            let path = url
                .strip_prefix("sqlite://")
                .expect("a sqlite URL")
                .to_owned();
            let mut files = Vec::new();
            for file in [path.clone(), format!("{path}-wal")] {
                if let Ok(bytes) = std::fs::read(&file) {
                    files.push((file, bytes));
                }
            }
            assert!(
                files.iter().any(|(name, _)| name.ends_with("-wal")),
                "the WAL is read too"
            );
            files
        }
        crate::Backend::Postgres => {
            let backend = db.connection().get_database_backend();
            let columns = db
                .connection()
                .query_all_raw(Statement::from_string(
                    backend,
                    "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS d \
                     FROM information_schema.columns WHERE table_schema = 'public' \
                     AND data_type IN ('text', 'character varying', 'bytea')",
                ))
                .await
                .expect("lists columns");
            let mut values = Vec::new();
            for column in columns {
                let table: String = column.try_get("", "t").expect("table");
                let name: String = column.try_get("", "c").expect("column");
                let kind: String = column.try_get("", "d").expect("type");
                let select = if kind == "bytea" {
                    format!("SELECT \"{name}\" AS v FROM \"{table}\"")
                } else {
                    format!("SELECT convert_to(\"{name}\", 'UTF8') AS v FROM \"{table}\"")
                };
                for row in db
                    .connection()
                    .query_all_raw(Statement::from_string(backend, select))
                    .await
                    .expect("reads the column")
                {
                    let value: Option<Vec<u8>> = row.try_get("", "v").expect("bytes");
                    if let Some(value) = value {
                        values.push((format!("{table}.{name}"), value));
                    }
                }
            }
            assert!(
                values.iter().any(|(place, _)| place == "users.name_enc"),
                "the users table is read"
            );
            values
        }
    }
}

/// Inserts one practice and one person on PostgreSQL, so that [`raw_contents`]
/// (which insists on reading `users.name_enc`) can be taken there; nothing on
/// SQLite, whose files are read whole.
///
/// # Panics
/// When the rows cannot be inserted.
pub async fn a_user_row(db: &Database) {
    if db.backend() == crate::Backend::Postgres {
        let organisation = Uuid::now_v7();
        execute(
            db,
            &format!(
                "INSERT INTO organisations (id, name, region, marketing_mode, require_mfa, created_at) \
                 VALUES ('{organisation}', 'Practice', 'us', 'off', false, now())"
            ),
        )
        .await;
        execute(
            db,
            &format!(
                "INSERT INTO users (id, subject_id, home_organisation_id, email_index, name_enc, \
                 email_enc, status, created_at) VALUES ('{}', '{}', '{organisation}', \
                 decode('00', 'hex'), decode('00', 'hex'), decode('00', 'hex'), 'active', now())",
                Uuid::now_v7(),
                Uuid::now_v7()
            ),
        )
        .await;
    }
}

/// Whether `needle` occurs in `haystack`.
#[must_use]
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Gives `user` the `role` (e.g. `"provider"`) in `organisation`, as a later
/// membership operation would: for system tests that need a caller of a given role.
///
/// # Panics
/// When the row cannot be inserted.
pub async fn add_membership(database: &Database, user: Uuid, organisation: Uuid, role: &str) {
    use sea_orm::sea_query::{Alias, Query};
    let now = chrono::Utc::now().fixed_offset();
    let statement = Query::insert()
        .into_table(Alias::new("memberships"))
        .columns([
            Alias::new("user_id"),
            Alias::new("organisation_id"),
            Alias::new("role"),
            Alias::new("created_at"),
        ])
        .values_panic([user.into(), organisation.into(), role.into(), now.into()])
        .to_owned();
    database
        .connection()
        .execute(&statement)
        .await
        .expect("the membership is stored");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5432", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
