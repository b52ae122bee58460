//! The system-test harness: [`TestApp`] starts the real server in-process on port 0
//! against a fresh database (a temporary SQLite file, or a freshly created
//! PostgreSQL database when `CUSTODIA_TEST_POSTGRES_URL` is set, dropped
//! afterwards), and [`both_databases!`] runs one test body on each. [`fhir::validate`]
//! checks FHIR R4 JSON.

pub mod fhir;

use std::net::SocketAddr;

use store::testing::TestDatabase;
use tokio::sync::oneshot;

/// The password [`TestApp::signed_in_provider`] uses.
pub const TEST_PASSWORD: &str = "correct horse battery staple";

/// A signed-in person of a practice, from [`TestApp::signed_in_member`].
#[derive(Debug, Clone)]
pub struct Member {
    /// Their account id.
    pub user_id: String,
    /// The practice they were created in.
    pub organisation_id: String,
    /// Their bearer token in that practice.
    pub token: String,
}

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
    state: server::state::AppState,
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
        Self::spawn_with_clock(backend, std::sync::Arc::new(kernel::SystemClock)).await
    }

    /// [`TestApp::spawn`] with the server's time taken from `clock` (a
    /// `kernel::ManualClock` the test moves to reach expiries and ages).
    ///
    /// # Panics
    /// When the server cannot start: the test cannot run.
    pub async fn spawn_with_clock(
        backend: Backend,
        clock: std::sync::Arc<dyn kernel::Clock>,
    ) -> Option<Self> {
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
        let app = server::App::build_with_clock(config, clock)
            .await
            .expect("the app builds");
        let state = app.state().clone();
        let bound = app.bind().await.expect("the app binds");
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
            state,
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

    /// `method path` with an optional bearer token and JSON body: the status and
    /// the JSON answer (`Null` when there is none).
    ///
    /// # Panics
    /// When the server does not answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The server's state, for tests that must look behind the API.
    #[must_use]
    pub const fn state(&self) -> &server::state::AppState {
        &self.state
    }

    /// Everything the database holds, as raw bytes (the SQLite file and its WAL, or
    /// every text and bytea value in PostgreSQL), for canary scans.
    pub async fn raw_database_contents(&self) -> Vec<(String, Vec<u8>)> {
        let url = self.database.as_ref().expect("the database is up").url();
        store::testing::raw_contents(self.state.database(), url).await
    }

    /// How many rows `table` holds.
    pub async fn count_rows(&self, table: &str) -> u64 {
        store::testing::count_rows(self.state.database(), table).await
    }

    /// The email-verification token last queued in the outbox for `user_id`, as the
    /// email would carry it.
    ///
    /// # Panics
    /// When there is none.
    pub async fn verification_token(&self, user_id: &str) -> String {
        let user = kernel::UserId::from_uuid(uuid::Uuid::parse_str(user_id).expect("a user id"));
        store::OutboxNotifier::new(self.state.database().clone(), self.state.keyring().clone())
            .latest_secret(user, "verify_email")
            .await
            .expect("the outbox is readable")
            .expect("a verification notice was queued")
            .into_inner()
    }

    /// The secret (token) carried by the newest `kind` notice (e.g. `"reset_password"`)
    /// queued for `user_id`, waiting up to 5 seconds for notices queued in the
    /// background; `None` when none arrives.
    ///
    /// # Panics
    /// When the outbox cannot be read.
    pub async fn notice_secret(&self, user_id: &str, kind: &str) -> Option<String> {
        self.notice_field(user_id, kind, false).await
    }

    /// The address carried by the newest `kind` notice queued for `user_id` (the new
    /// address of `"confirm_email_change"`, the previous one of `"email_changed"`).
    ///
    /// # Panics
    /// When the outbox cannot be read.
    pub async fn notice_address(&self, user_id: &str, kind: &str) -> Option<String> {
        self.notice_field(user_id, kind, true).await
    }

    async fn notice_field(&self, user_id: &str, kind: &str, address: bool) -> Option<String> {
        let user = kernel::UserId::from_uuid(uuid::Uuid::parse_str(user_id).expect("a user id"));
        let outbox =
            store::OutboxNotifier::new(self.state.database().clone(), self.state.keyring().clone());
        for _ in 0..100 {
            let found = if address {
                outbox.latest_address(user, kind).await
            } else {
                outbox.latest_secret(user, kind).await
            };
            if let Some(value) = found.expect("the outbox is readable") {
                return Some(value.into_inner());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        None
    }

    /// Signs up a provider with `email` (and a new practice), verifies the email,
    /// signs in, and returns the bearer token.
    ///
    /// # Panics
    /// When any step fails.
    pub async fn signed_in_provider(&self, email: &str) -> String {
        let body = serde_json::json!({
            "name": "Test Provider",
            "email": email,
            "profession": "Physiotherapist",
            "organisation_name": "Test Practice",
            "phone": "+15555550100",
            "password": TEST_PASSWORD,
            "region": "us",
        });
        let resp = self
            .client
            .post(self.url("/v1/practices"))
            .json(&body)
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), 201, "sign-up");
        let created: serde_json::Value = resp.json().await.expect("JSON");
        let token = self
            .verification_token(created["user"]["id"].as_str().expect("id"))
            .await;
        let resp = self
            .client
            .post(self.url("/v1/email-verifications"))
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), 204, "verification");
        let resp = self
            .client
            .post(self.url("/v1/sessions"))
            .json(&serde_json::json!({ "email": email, "password": TEST_PASSWORD }))
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), 201, "sign-in");
        let session: serde_json::Value = resp.json().await.expect("JSON");
        session["token"].as_str().expect("a token").to_owned()
    }

    /// The account-activation token last queued in the outbox for `user_id` (a
    /// client, member or guardian created by someone else), as the email would
    /// carry it.
    ///
    /// # Panics
    /// When there is none.
    pub async fn activation_token(&self, user_id: &str) -> String {
        let user = kernel::UserId::from_uuid(uuid::Uuid::parse_str(user_id).expect("a user id"));
        store::OutboxNotifier::new(self.state.database().clone(), self.state.keyring().clone())
            .latest_secret(user, "activate_account")
            .await
            .expect("the outbox is readable")
            .expect("an activation notice was queued")
            .into_inner()
    }

    /// The kinds of the security events recorded on `user_id`'s account, newest
    /// first (read behind the API, for events the person can no longer read).
    ///
    /// # Panics
    /// When the log cannot be read.
    pub async fn security_event_kinds(&self, user_id: &str) -> Vec<String> {
        use identity::ports::SecurityEventLog as _;
        let user = kernel::UserId::from_uuid(uuid::Uuid::parse_str(user_id).expect("a user id"));
        store::SeaOrmSecurityEventLog::new(self.state.database().clone())
            .events_of(user, 100)
            .await
            .expect("the log is readable")
            .iter()
            .map(|event| event.kind.as_str().to_owned())
            .collect()
    }

    /// The practice a session acts in (the first membership of its person, as a
    /// signed-in provider's own practice).
    ///
    /// # Panics
    /// When the session does not work.
    pub async fn organisation_of(&self, token: &str) -> String {
        let resp = self
            .client
            .get(self.url("/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), 200, "GET /v1/me");
        let me: serde_json::Value = resp.json().await.expect("JSON");
        me["memberships"][0]["organisation_id"]
            .as_str()
            .expect("a membership")
            .to_owned()
    }

    /// The account id of the member of `admin_token`'s practice with `email`
    /// (read from `listMembers`, as a practice learns it).
    ///
    /// # Panics
    /// When there is no such member.
    pub async fn member_id(&self, admin_token: &str, email: &str) -> String {
        let organisation_id = self.organisation_of(admin_token).await;
        let resp = self
            .client
            .get(self.url(&format!(
                "/v1/organisations/{organisation_id}/members?limit=200"
            )))
            .bearer_auth(admin_token)
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), 200, "listing members");
        let page: serde_json::Value = resp.json().await.expect("JSON");
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|m| m["user"]["email"] == email)
            .and_then(|m| m["user"]["id"].as_str())
            .expect("a member with the email")
            .to_owned()
    }

    /// Creates a person with `role` (`client`, with an adult date of birth, or a
    /// member role) in the practice of `admin_token` (an org admin's session, as
    /// from [`TestApp::signed_in_provider`]), activates the account with
    /// [`TEST_PASSWORD`], and signs them in to that practice.
    ///
    /// # Panics
    /// When any step fails.
    pub async fn signed_in_member(&self, admin_token: &str, email: &str, role: &str) -> Member {
        let organisation_id = self.organisation_of(admin_token).await;
        let (path, body) = if role == "client" {
            (
                format!("/v1/organisations/{organisation_id}/clients"),
                serde_json::json!({
                    "name": "Test Client",
                    "email": email,
                    "date_of_birth": "1990-01-01",
                    "service_authorisation": { "obtained_at": "2000-01-01T00:00:00Z", "channel": "paper" },
                }),
            )
        } else {
            (
                format!("/v1/organisations/{organisation_id}/members"),
                serde_json::json!({ "name": "Test Member", "email": email, "role": role }),
            )
        };
        let resp = self
            .client
            .post(self.url(&path))
            .bearer_auth(admin_token)
            .json(&body)
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), 202, "creating a {role}");
        let user_id = self.member_id(admin_token, email).await;
        let token = self.activation_token(&user_id).await;
        let resp = self
            .client
            .post(self.url("/v1/account-activations"))
            .json(&serde_json::json!({ "token": token, "password": TEST_PASSWORD }))
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), 204, "activation");
        let resp = self
            .client
            .post(self.url("/v1/sessions"))
            .json(&serde_json::json!({
                "email": email,
                "password": TEST_PASSWORD,
                "organisation_id": organisation_id,
            }))
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), 201, "sign-in");
        let session: serde_json::Value = resp.json().await.expect("JSON");
        Member {
            user_id,
            organisation_id,
            token: session["token"].as_str().expect("a token").to_owned(),
        }
    }

    /// Runs one SQL statement on the app's database (to set up a state the API
    /// cannot reach yet).
    pub async fn execute(&self, sql: &str) {
        store::testing::execute(self.state.database(), sql).await;
    }

    /// The database URL and the data folder (with its development master key) the
    /// app runs on, to start a second app on the same data.
    ///
    /// # Panics
    /// After [`TestApp::stop`].
    #[must_use]
    pub fn data(&self) -> (String, std::path::PathBuf) {
        (
            self.database.as_ref().expect("a database").url().to_owned(),
            self._data_dir.path().to_path_buf(),
        )
    }

    /// Makes the verified account with `email` a platform operator (what the
    /// server's `--grant-operator` flag does at start).
    ///
    /// # Panics
    /// When there is no such account.
    pub async fn grant_operator(&self, email: &str) {
        let ctx = kernel::RequestContext::system(
            "grant-operator",
            kernel::Purpose::Operations,
            self.state.clock().now(),
        );
        self.state
            .identity()
            .grant_operator(&ctx, email)
            .await
            .expect("the account exists and is verified");
    }

    /// Signs `email` in with [`TEST_PASSWORD`] (to its first practice) and returns
    /// the bearer token: a fresh session, e.g. after the clock moved past the last
    /// one's lifetime.
    ///
    /// # Panics
    /// When sign-in fails.
    pub async fn sign_in(&self, email: &str) -> String {
        let resp = self
            .client
            .post(self.url("/v1/sessions"))
            .json(&serde_json::json!({ "email": email, "password": TEST_PASSWORD }))
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), 201, "sign-in");
        let session: serde_json::Value = resp.json().await.expect("JSON");
        session["token"].as_str().expect("a token").to_owned()
    }

    /// A platform operator's session for `email`: the account is signed up (as a
    /// provider of its own practice) and made an operator the first time.
    ///
    /// # Panics
    /// When any step fails.
    pub async fn operator_session(&self, email: &str) -> String {
        let exists = self
            .client
            .post(self.url("/v1/sessions"))
            .json(&serde_json::json!({ "email": email, "password": TEST_PASSWORD }))
            .send()
            .await
            .expect("answers")
            .status()
            == 201;
        if !exists {
            self.signed_in_provider(email).await;
        }
        self.grant_operator(email).await;
        let resp = self
            .client
            .post(self.url("/v1/operator/sessions"))
            .json(&serde_json::json!({ "email": email, "password": TEST_PASSWORD }))
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), 201, "operator sign-in");
        let session: serde_json::Value = resp.json().await.expect("JSON");
        session["token"].as_str().expect("a token").to_owned()
    }

    /// The `Custodia-Processor-Signature` value a payment processor would send with
    /// `body` at `timestamp`, under the server's (development) webhook secret.
    ///
    /// # Panics
    /// When the secret cannot be read.
    #[must_use]
    pub fn processor_signature(&self, timestamp: i64, body: &[u8]) -> String {
        let secret = std::fs::read_to_string(
            self._data_dir
                .path()
                .join(server::app::DEV_WEBHOOK_SECRET_FILE),
        )
        .expect("the development webhook secret");
        crypto::WebhookSigner::new(secret.trim().as_bytes()).sign(timestamp, body)
    }

    /// How many `kind` notices (e.g. `"billing_payment_failed"`) are queued for
    /// `user_id`.
    ///
    /// # Panics
    /// When the outbox cannot be read.
    pub async fn notice_count(&self, user_id: &str, kind: &str) -> u64 {
        let user = kernel::UserId::from_uuid(uuid::Uuid::parse_str(user_id).expect("a user id"));
        store::OutboxNotifier::new(self.state.database().clone(), self.state.keyring().clone())
            .count(user, kind)
            .await
            .expect("the outbox is readable")
    }

    /// The sentence of the newest `kind` practice notice (e.g. a billing notice)
    /// queued for `user_id`.
    ///
    /// # Panics
    /// When the outbox cannot be read.
    pub async fn notice_summary(&self, user_id: &str, kind: &str) -> Option<String> {
        let user = kernel::UserId::from_uuid(uuid::Uuid::parse_str(user_id).expect("a user id"));
        store::OutboxNotifier::new(self.state.database().clone(), self.state.keyring().clone())
            .latest_summary(user, kind)
            .await
            .expect("the outbox is readable")
            .map(kernel::Sensitive::into_inner)
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

/// A manual clock stopped at `at` (RFC 3339), for [`TestApp::spawn_with_clock`].
///
/// # Panics
/// When `at` is not an RFC 3339 instant.
#[must_use]
pub fn manual_clock(at: &str) -> std::sync::Arc<kernel::ManualClock> {
    let at = chrono::DateTime::parse_from_rfc3339(at)
        .expect("an RFC 3339 instant")
        .with_timezone(&chrono::Utc);
    std::sync::Arc::new(kernel::ManualClock::new(at))
}

/// [`both_databases!`] with the server's time from a `kernel::ManualClock`, set
/// at the given RFC 3339 instant and handed to the body to move:
///
/// ```ignore
/// both_databases_with_clock!(async fn tokens_expire(app, clock) at "2026-03-01T12:00:00Z" {
///     clock.advance(std::time::Duration::from_secs(3600));
/// });
/// ```
#[macro_export]
macro_rules! both_databases_with_clock {
    ($(#[$meta:meta])* async fn $name:ident($app:ident, $clock:ident) at $at:literal $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $clock = $crate::manual_clock($at);
                let $app = $crate::TestApp::spawn_with_clock($crate::Backend::Sqlite, $clock.clone())
                    .await
                    .expect("SQLite is always available");
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $clock = $crate::manual_clock($at);
                let Some($app) = $crate::TestApp::spawn_with_clock($crate::Backend::Postgres, $clock.clone()).await else {
                    eprintln!("CUSTODIA_TEST_POSTGRES_URL is not set: PostgreSQL leg skipped");
                    return;
                };
                $body
            }
        }
    };
}
