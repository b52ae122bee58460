//! The composition root: builds every adapter from the [`Config`], hands them to
//! the services, and serves the API until told to stop.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use crypto::{Keyring, KeyringConfig, MasterKey};
use identity::{IdentityConfig, IdentityPorts, IdentityService};
use kernel::{Clock, SystemClock};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::middleware::CatchPanic;
use poem::{EndpointExt, Route, Server};
use store::{
    Database, DatabaseOptions, OutboxNotifier, SeaOrmApiKeyRepository, SeaOrmCredentialRepository,
    SeaOrmIdentityRepository, SeaOrmKeyStore, SeaOrmOperatorRepository, SeaOrmProfileRepository,
    SeaOrmSecurityEventLog, SeaOrmSessionRepository,
};

use crate::config::{Config, MigrateMode};
use crate::edge::Edge;
use crate::routes::RouteTable;
use crate::state::AppState;

/// Why the server could not start. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] store::StoreError),
    /// Migrations are pending and this configuration does not apply them.
    #[error(
        "the database has pending migrations; run `cargo xtask db up` (or start with --migrate always)"
    )]
    PendingMigrations,
    /// The master key is malformed or could not be created.
    #[error("master key: {0}")]
    MasterKey(String),
    /// A setting is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The listener could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

/// A built application, ready to serve.
#[derive(Debug)]
pub struct App {
    state: AppState,
    config: Config,
}

impl App {
    /// Builds every adapter and service for `config`: connects to the database,
    /// applies migrations as configured, loads the master key.
    ///
    /// # Errors
    /// A [`StartupError`] saying what to fix.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`App::build`] with the time taken from `clock`: tests move a
    /// `kernel::ManualClock` to reach expiries, ages and retention periods.
    ///
    /// # Errors
    /// A [`StartupError`] saying what to fix.
    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let database = Database::connect(
            &config.database_url,
            &DatabaseOptions {
                max_connections: config.db_max_connections,
                ..DatabaseOptions::default()
            },
        )
        .await?;
        migrate(&database, &config).await?;

        let master = master_key(&config)?;
        let passwords = crypto::PasswordHasher::new(crypto::password::PasswordConfig {
            iterations: config.password_iterations.get(),
            allow_insecure_for_tests: config.insecure_fast_password_hashing,
        })
        .map_err(|err| StartupError::Config(err.to_string()))?;
        let identity_config = IdentityConfig {
            idle_timeout: TimeDelta::minutes(i64::from(config.session_idle_minutes)),
            absolute_lifetime: TimeDelta::hours(i64::from(config.session_lifetime_hours)),
            security_event_retention: TimeDelta::days(i64::from(
                config.security_event_retention_days,
            )),
            hashing_concurrency: config
                .hashing_concurrency
                .map_or(IdentityConfig::default().hashing_concurrency, |n| n.get()),
            ..IdentityConfig::default()
        };
        let state = compose(
            database,
            master,
            passwords,
            identity_config,
            Duration::from_secs(config.key_cache_ttl_seconds),
            clock.clone(),
        );
        if let Some(email) = &config.grant_operator {
            let ctx = kernel::RequestContext::system(
                "grant-operator",
                kernel::Purpose::Operations,
                clock.now(),
            );
            state
                .identity()
                .grant_operator(&ctx, email)
                .await
                .map_err(|err| {
                    StartupError::Config(format!(
                        "--grant-operator: no active (verified) account has this email ({err})"
                    ))
                })?;
        }
        Ok(Self { state, config })
    }

    /// The shared state, for tests that need to look behind the API.
    #[must_use]
    pub const fn state(&self) -> &AppState {
        &self.state
    }

    /// Binds the configured address (port 0 picks a free port) and returns the
    /// server ready to run, with the address it got.
    ///
    /// # Errors
    /// [`StartupError::Bind`].
    pub async fn bind(self) -> Result<BoundApp, StartupError> {
        let addr = self.config.listen;
        let acceptor = TcpListener::bind(addr)
            .into_acceptor()
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let local_addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .unwrap_or(addr);
        Ok(BoundApp {
            app: self,
            acceptor,
            local_addr,
        })
    }
}

/// An application bound to its listener.
pub struct BoundApp {
    app: App,
    acceptor: poem::listener::TcpAcceptor,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for BoundApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundApp")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl BoundApp {
    /// The address actually listened on.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight
    /// requests finish (up to the configured grace period) and closes the pool.
    ///
    /// # Errors
    /// An I/O error from the listener.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> io::Result<()> {
        let grace = Duration::from_secs(self.app.config.shutdown_grace_seconds);
        let endpoint = endpoint(
            &self.app.state,
            self.app.config.max_body_bytes,
            self.app.config.country_header.as_deref(),
        );
        tracing::info!(addr = %self.local_addr, database = self.app.state.database().backend().as_str(), "serving");
        let retention = crate::jobs::spawn_retention(
            self.app.state.clone(),
            Duration::from_secs(u64::from(self.app.config.retention_interval_minutes) * 60),
        );
        let result = serve(self.acceptor, endpoint, shutdown, grace).await;
        retention.abort();
        self.app.state.database().clone().close().await;
        tracing::info!("stopped");
        result
    }
}

/// Serves `endpoint` on `acceptor` until `shutdown` resolves; then stops accepting
/// connections and gives requests in flight up to `grace` to finish.
///
/// # Errors
/// An I/O error from the listener.
pub async fn serve<E>(
    acceptor: poem::listener::TcpAcceptor,
    endpoint: E,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) -> io::Result<()>
where
    E: poem::Endpoint + 'static,
{
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(endpoint, shutdown, Some(grace))
        .await
}

/// The whole HTTP surface: the API, its spec, Swagger UI, behind the edge.
pub fn endpoint(
    state: &AppState,
    max_body_bytes: usize,
    country_header: Option<&str>,
) -> impl poem::Endpoint + 'static {
    let api = crate::api::service(state);
    let spec = api.spec();
    let routes = RouteTable::from_spec(&spec);
    let swagger = api.swagger_ui();
    let spec_endpoint = api.spec_endpoint();
    Route::new()
        .at("/openapi.json", spec_endpoint)
        .nest("/docs", swagger)
        .nest("/", api)
        .data(state.clone())
        .with(CatchPanic::new())
        .with(Edge::new(routes, max_body_bytes).with_country_header(country_header))
}

/// Builds every adapter on `database` and hands them to the services.
fn compose(
    database: Database,
    master: MasterKey,
    passwords: crypto::PasswordHasher,
    identity_config: IdentityConfig,
    key_cache_ttl: Duration,
    clock: Arc<dyn Clock>,
) -> AppState {
    let blind_index = crypto::BlindIndexer::new(&master);
    let keyring = Keyring::with_config(
        master,
        Arc::new(SeaOrmKeyStore::new(database.clone())),
        clock.clone(),
        KeyringConfig {
            cache_ttl: key_cache_ttl,
            ..KeyringConfig::default()
        },
    );
    let accounts =
        SeaOrmIdentityRepository::new(database.clone(), keyring.clone(), blind_index.clone());
    let identity = IdentityService::new(
        IdentityPorts {
            repository: Arc::new(accounts.clone()),
            people: Arc::new(accounts.clone()),
            credentials: Arc::new(SeaOrmCredentialRepository::new(
                database.clone(),
                keyring.clone(),
                blind_index,
            )),
            sessions: Arc::new(SeaOrmSessionRepository::new(database.clone())),
            events: Arc::new(SeaOrmSecurityEventLog::new(database.clone())),
            notifier: Arc::new(OutboxNotifier::new(database.clone(), keyring.clone())),
            profiles: Arc::new(SeaOrmProfileRepository::new(
                database.clone(),
                keyring.clone(),
            )),
            accounts: Arc::new(accounts),
            clock: clock.clone(),
            api_keys: Arc::new(SeaOrmApiKeyRepository::new(database.clone())),
            operators: Arc::new(SeaOrmOperatorRepository::new(database.clone())),
        },
        keyring.clone(),
        passwords,
        identity_config,
    );
    AppState::new(database, keyring, identity, clock)
}

async fn migrate(database: &Database, config: &Config) -> Result<(), StartupError> {
    let apply = match config.migrate {
        MigrateMode::Always => true,
        MigrateMode::Auto => config.is_embedded_database(),
        MigrateMode::Never => false,
    };
    if apply {
        database.migrate_up(None).await?;
    } else if database.has_pending_migrations().await? {
        return Err(StartupError::PendingMigrations);
    }
    Ok(())
}

/// The configured master key, or the development key in the data folder (created
/// on first start), with a loud warning.
fn master_key(config: &Config) -> Result<MasterKey, StartupError> {
    if let Some(encoded) = &config.master_key {
        return MasterKey::from_base64(encoded.expose())
            .map_err(|err| StartupError::MasterKey(err.to_string()));
    }
    let path = config.data_dir.join("dev-master-key");
    let key = load_or_create_dev_key(&path)?;
    tracing::warn!(
        path = %path.display(),
        "NO MASTER KEY CONFIGURED: using a development key stored in clear beside the data. \
         Anyone with this file can read every record. Set CUSTODIA_MASTER_KEY in production."
    );
    Ok(key)
}

fn load_or_create_dev_key(path: &Path) -> Result<MasterKey, StartupError> {
    let fail = |what: &str, err: &dyn std::fmt::Display| {
        StartupError::MasterKey(format!("{what} {}: {err}", path.display()))
    };
    match std::fs::read_to_string(path) {
        Ok(encoded) => {
            MasterKey::from_base64(encoded.trim()).map_err(|e| fail("malformed key in", &e))
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let key = MasterKey::generate().map_err(|e| fail("cannot generate", &e))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| fail("cannot create folder for", &e))?;
            }
            write_private(path, key.to_base64().expose()).map_err(|e| fail("cannot write", &e))?;
            Ok(key)
        }
        Err(err) => Err(fail("cannot read", &err)),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    std::fs::write(path, contents)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// The OpenAPI document, built without any external resource (an in-memory
/// SQLite stands behind the state), for `cargo xtask openapi`.
///
/// # Errors
/// When even the in-memory database cannot be opened.
pub async fn openapi_document() -> Result<String, StartupError> {
    let database = Database::connect("sqlite::memory:", &DatabaseOptions::default()).await?;
    let master = MasterKey::generate().map_err(|e| StartupError::MasterKey(e.to_string()))?;
    let passwords = crypto::PasswordHasher::new(crypto::password::PasswordConfig::default())
        .map_err(|e| StartupError::Config(e.to_string()))?;
    let state = compose(
        database,
        master,
        passwords,
        IdentityConfig::default(),
        Duration::from_secs(60),
        Arc::new(SystemClock),
    );
    Ok(crate::api::service(&state).spec())
}
