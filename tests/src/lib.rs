//! The system-test harness: [`TestApp`] starts the real server in-process on port 0
//! against a fresh database (a temporary SQLite file, or a freshly created
//! PostgreSQL database when `CUSTODIA_TEST_POSTGRES_URL` is set, dropped
//! afterwards), and [`both_databases!`] runs one test body on each.

use std::net::SocketAddr;

use store::testing::TestDatabase;
use tokio::sync::oneshot;

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// A running server with its own database.
#[derive(Debug)]
pub struct TestApp {
    /// The database it runs on.
    pub backend: Backend,
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://<addr>`.
    pub base_url: String,
    /// A client without default headers or redirects.
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    // Dropped after the server: the database outlives its users.
    database: Option<TestDatabase>,
    _data_dir: tempfile::TempDir,
}

impl TestApp {
    /// Starts a server on `backend`, or `None` for PostgreSQL when no test server
    /// is configured.
    ///
    /// # Panics
    /// When the server cannot start: the test cannot run.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        let database = match backend {
            Backend::Sqlite => TestDatabase::sqlite().await,
            Backend::Postgres => TestDatabase::postgres().await?,
        };
        let data_dir = tempfile::tempdir().expect("a data folder");
        let config = server::Config::try_from_args([
            "custodia",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            database.url(),
            "--migrate",
            "always",
            "--data-dir",
            data_dir.path().to_str().expect("a UTF-8 path"),
            "--password-iterations",
            "1000",
            "--insecure-fast-password-hashing",
            "--shutdown-grace-seconds",
            "5",
            // Small, so an oversized body fits in socket buffers and the early 413
            // is read rather than racing the upload.
            "--max-body-bytes",
            "65536",
        ])
        .expect("a valid test configuration");
        let bound = server::App::build(config)
            .await
            .expect("the app builds")
            .bind()
            .await
            .expect("the app binds");
        let addr = bound.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(bound.run_until(async move {
            let _ = rx.await;
        }));
        Some(Self {
            backend,
            addr,
            base_url: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client"),
            shutdown: Some(tx),
            server: Some(server),
            database: Some(database),
            _data_dir: data_dir,
        })
    }

    /// The absolute URL of `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `GET path`.
    ///
    /// # Panics
    /// When the server does not answer.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("the server answers")
    }

    /// Stops the server gracefully and removes its database.
    ///
    /// # Panics
    /// When the server fails while stopping.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task")
                .expect("the server stops cleanly");
        }
        if let Some(db) = self.database.take() {
            db.drop().await;
        }
    }
}

/// Runs one async test body against SQLite and, when configured, PostgreSQL:
///
/// ```ignore
/// both_databases!(async fn health_answers(app) {
///     assert_eq!(app.get("/healthz").await.status(), 200);
/// });
/// ```
/// expands to a module `health_answers` with tests `sqlite` and `postgres`.
#[macro_export]
macro_rules! both_databases {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $crate::TestApp::spawn($crate::Backend::Sqlite)
                    .await
                    .expect("SQLite is always available");
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($app) = $crate::TestApp::spawn($crate::Backend::Postgres).await else {
                    eprintln!("CUSTODIA_TEST_POSTGRES_URL is not set: PostgreSQL leg skipped");
                    return;
                };
                $body
            }
        }
    };
}
