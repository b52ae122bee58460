//! The composition root: builds every adapter from the [`Config`], hands them to
//! the services, and serves the API until told to stop.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use audit::{AuditLog, AuditService, LogConfig, SigningKey};
use base64::Engine as _;
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
use crate::state::{AppState, Services};

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
        let keys = Keys::new(
            &database,
            master,
            Duration::from_secs(config.key_cache_ttl_seconds),
            clock.clone(),
        );
        let audit = start_audit(&database, &keys, &config, clock.clone()).await?;
        let billing = BillingSettings {
            signer: crypto::WebhookSigner::new(webhook_secret(&config)?.as_bytes()),
            config: billing_config(&config),
        };
        let state = compose(
            database,
            keys,
            passwords,
            identity_config,
            clock.clone(),
            audit,
            billing,
            config.controller(),
        );
        publish_builtin_notice(&state, clock.as_ref()).await?;
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
        let billing = (self.app.config.billing_run_interval_secs > 0).then(|| {
            crate::jobs::spawn_billing(
                self.app.state.clone(),
                Duration::from_secs(self.app.config.billing_run_interval_secs),
            )
        });
        let result = serve(self.acceptor, endpoint, shutdown, grace).await;
        retention.abort();
        if let Some(billing) = billing {
            billing.abort();
        }
        // Sign what this process appended, so nothing it wrote stays unanchored.
        if let Err(err) = self.app.state.audit().log().checkpoint().await {
            tracing::warn!(error = %err, "audit: no final checkpoint");
        }
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

/// The key hierarchy, and the blind indexer keyed from the same master key.
struct Keys {
    keyring: Keyring,
    blind_index: crypto::BlindIndexer,
}

impl Keys {
    fn new(
        database: &Database,
        master: MasterKey,
        cache_ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let blind_index = crypto::BlindIndexer::new(&master);
        let keyring = Keyring::with_config(
            master,
            Arc::new(SeaOrmKeyStore::new(database.clone())),
            clock,
            KeyringConfig {
                cache_ttl,
                ..KeyringConfig::default()
            },
        );
        Self {
            keyring,
            blind_index,
        }
    }
}

/// How billing is set up: the webhook secret's signer and the service's rules.
struct BillingSettings {
    signer: crypto::WebhookSigner,
    config: billing::service::BillingConfig,
}

/// Builds every adapter on `database` and hands them to the services.
#[allow(clippy::too_many_arguments)]
fn compose(
    database: Database,
    keys: Keys,
    passwords: crypto::PasswordHasher,
    identity_config: IdentityConfig,
    clock: Arc<dyn Clock>,
    audit: AuditService,
    billing: BillingSettings,
    controller: data_rights::statements::Controller,
) -> AppState {
    let Keys {
        keyring,
        blind_index,
    } = keys;
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
            accounts: Arc::new(accounts.clone()),
            clock: clock.clone(),
            api_keys: Arc::new(SeaOrmApiKeyRepository::new(database.clone())),
            operators: Arc::new(SeaOrmOperatorRepository::new(database.clone())),
            audit: audit.sink(),
        },
        keyring.clone(),
        passwords,
        identity_config,
    );
    let consent = consent::ConsentService::new(
        Arc::new(store::SeaOrmConsentRepository::new(
            database.clone(),
            keyring.clone(),
        )),
        Arc::new(crate::consent::IdentityNotices::new(
            identity.clone(),
            clock.clone(),
        )),
        audit.sink(),
    );
    let gate: Arc<dyn kernel::ConsentGate> = Arc::new(consent.clone());
    let clinical = clinical::ClinicalService::new(
        Arc::new(store::SeaOrmClinicalRepository::new(
            database.clone(),
            keyring.clone(),
        )),
        gate,
        audit.sink(),
    );
    let billing_service = billing::BillingService::new(
        billing::service::BillingPorts {
            repository: Arc::new(store::SeaOrmBillingRepository::new(
                database.clone(),
                keyring.clone(),
            )),
            processor: Arc::new(billing::sandbox::SandboxProcessor),
            notifier: Arc::new(crate::billing::IdentityBillingNotices::new(
                identity.clone(),
                clock.clone(),
            )),
            usage: Arc::new(store::SeaOrmPracticeUsage::new(database.clone())),
            audit: audit.sink(),
        },
        billing.config,
    );
    let billing_personal_data = Arc::new(billing::personal_data::BillingPersonalData::new(
        billing_service.repository().clone(),
        Arc::new(crate::billing::IdentitySubjects::new(Arc::new(
            accounts.clone(),
        ))),
        billing_service.config().invoice_retention.clone(),
    ));
    let audit_personal_data = Arc::new(audit::personal_data::AuditPersonalData::new(
        audit.clone(),
        Arc::new(crate::billing::IdentitySubjects::new(Arc::new(
            accounts.clone(),
        ))),
    ));
    let rights = compose_rights(
        &database,
        &keyring,
        RightsContexts {
            accounts,
            identity: &identity,
            clinical: &clinical,
            consent: &consent,
            billing: billing_personal_data.clone(),
            audit: audit_personal_data.clone(),
        },
        &audit,
        controller,
    );
    let idempotency = crate::idempotency::Keys::new(store::SeaOrmIdempotencyStore::new(
        database.clone(),
        keyring.clone(),
    ));
    AppState::new(
        database,
        keyring,
        Services {
            identity,
            audit,
            audit_personal_data,
            consent,
            clinical,
            billing: billing_service,
            billing_personal_data,
            rights,
            webhook_signer: billing.signer,
            idempotency,
        },
        clock,
    )
}

/// The contexts the rights engine reaches personal data through, as composed.
struct RightsContexts<'a> {
    accounts: SeaOrmIdentityRepository,
    identity: &'a IdentityService,
    clinical: &'a clinical::ClinicalService,
    consent: &'a consent::ConsentService,
    billing: Arc<billing::personal_data::BillingPersonalData>,
    audit: Arc<audit::personal_data::AuditPersonalData>,
}

/// The rights engine over every context's `PersonalData` port (identity,
/// clinical, consent, billing, audit), its storage, people, the consent ledger, the
/// subjects' keys, ZIP archives and the audit log; stating `controller`.
fn compose_rights(
    database: &Database,
    keyring: &Keyring,
    contexts: RightsContexts<'_>,
    audit: &AuditService,
    controller: data_rights::statements::Controller,
) -> data_rights::service::RightsService {
    let RightsContexts {
        accounts,
        identity,
        clinical,
        consent,
        billing,
        audit: audit_log,
    } = contexts;
    let personal_data: Vec<Arc<dyn kernel::PersonalData>> = vec![
        Arc::new(identity.personal_data()),
        Arc::new(clinical::ClinicalPersonalData::new(
            clinical.repository().clone(),
        )),
        Arc::new(consent::ConsentPersonalData::new(consent.clone())),
        billing,
        audit_log,
    ];
    data_rights::service::RightsService::new(
        data_rights::service::RightsPorts {
            repository: Arc::new(store::SeaOrmRightsRepository::new(
                database.clone(),
                keyring.clone(),
            )),
            contexts: personal_data,
            people: Arc::new(crate::rights::IdentityPeople::new(
                Arc::new(accounts.clone()),
                Arc::new(accounts),
                clinical.repository().clone(),
            )),
            consent: Arc::new(crate::rights::ConsentServiceLedger::new(consent.clone())),
            keys: Arc::new(crate::rights::KeyringSubjectKeys::new(keyring.clone())),
            packer: Arc::new(crate::rights::ZipPacker),
            audit: audit.sink(),
            gate: Arc::new(consent.clone()),
        },
        crate::rights::statements(controller),
    )
}

/// Billing's rules as configured: the invoice retention (days and ground together,
/// or the default seven years).
fn billing_config(config: &Config) -> billing::service::BillingConfig {
    let mut billing = billing::service::BillingConfig::default();
    if let (Some(days), Some(ground)) = (
        config.invoice_retention_days,
        config.invoice_retention_ground.as_deref(),
    ) {
        billing.invoice_retention = billing::personal_data::InvoiceRetention {
            days,
            ground: kernel::LegalGround {
                regime: billing.invoice_retention.ground.regime,
                citation: ground.trim().to_owned().into(),
                statement: format!(
                    "Tax and accounting law requires invoices to be kept, as issued, for {days} days."
                )
                .into(),
            },
        };
    }
    billing
}

/// The configured webhook secret, or the development secret in the data folder
/// (created on first start), with a warning.
fn webhook_secret(config: &Config) -> Result<String, StartupError> {
    if let Some(secret) = &config.billing_webhook_secret {
        let secret = secret.expose().trim().to_owned();
        if secret.len() < 16 {
            return Err(StartupError::Config(
                "--billing-webhook-secret: at least 16 characters".to_owned(),
            ));
        }
        return Ok(secret);
    }
    let path = config.data_dir.join(DEV_WEBHOOK_SECRET_FILE);
    let secret = load_or_create_dev_secret(&path, || {
        let bytes: [u8; 32] = ring::rand::generate(&ring::rand::SystemRandom::new())
            .map_err(|_| "the system random source failed".to_owned())?
            .expose();
        Ok(format!(
            "whsec_dev_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        ))
    })
    .map_err(|e| StartupError::Config(format!("billing webhook secret: {e}")))?;
    tracing::warn!(
        path = %path.display(),
        "NO BILLING WEBHOOK SECRET CONFIGURED: using a development secret stored beside the \
         data. Anyone with this file can forge payment events. Set \
         CUSTODIA_BILLING_WEBHOOK_SECRET to the payment processor's signing secret in production."
    );
    Ok(secret)
}

/// The development webhook secret's file in the data folder.
pub const DEV_WEBHOOK_SECRET_FILE: &str = "dev-billing-webhook-secret";

/// Publishes the built-in privacy notice when no privacy notice is published yet,
/// so every consent cites a version (O3).
async fn publish_builtin_notice(state: &AppState, clock: &dyn Clock) -> Result<(), StartupError> {
    let published = state
        .consent()
        .policies()
        .await
        .map_err(|e| StartupError::Config(format!("consent: {e}")))?;
    if published
        .iter()
        .any(|v| v.document == consent::policy::PRIVACY_NOTICE)
    {
        return Ok(());
    }
    let ctx = kernel::RequestContext::system("startup", kernel::Purpose::Legal, clock.now());
    let notice = crate::consent::builtin_notice(clock.now().timestamp_micros());
    state
        .consent()
        .publish(&ctx, &notice)
        .await
        .map(drop)
        .map_err(|e| StartupError::Config(format!("consent: publishing the built-in notice: {e}")))
}

/// The keyed pseudonyms that replace an erased person's ids in the audit log: an
/// HMAC under a key derived from the master key, which the database never holds.
struct AuditPseudonyms(crypto::BlindIndexer);

impl audit::Pseudonymiser for AuditPseudonyms {
    fn pseudonym(&self, id: uuid::Uuid) -> audit::Hash {
        audit::Hash(*self.0.index("audit-pseudonym", &id.to_string()).as_bytes())
    }
}

/// Opens this process's audit chain on `database` and starts its writer.
async fn start_audit(
    database: &Database,
    keys: &Keys,
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<AuditService, StartupError> {
    let key = audit_signing_key(config)?;
    let trusted = audit_trusted_keys(config)?;
    let repository: Arc<dyn audit::AuditRepository> = Arc::new(store::SeaOrmAuditRepository::new(
        database.clone(),
        keys.keyring.clone(),
    ));
    let log_config = LogConfig {
        max_batch: usize::try_from(config.audit_max_batch).unwrap_or(2048),
        linger: Duration::from_micros(config.audit_linger_micros),
        checkpoint_every_events: config.audit_checkpoint_events,
        checkpoint_every: Duration::from_secs(config.audit_checkpoint_seconds),
        label: format!("pid {} on {}", std::process::id(), config.listen),
        ..LogConfig::default()
    };
    let log = AuditLog::start(repository.clone(), key, clock, log_config)
        .await
        .map_err(|err| StartupError::Config(format!("audit log: {err}")))?;
    Ok(AuditService::new(
        repository,
        log,
        trusted,
        Arc::new(AuditPseudonyms(keys.blind_index.clone())),
        TimeDelta::days(i64::from(config.audit_retention_days)),
    ))
}

/// The retired audit keys configured as still trusted.
fn audit_trusted_keys(config: &Config) -> Result<Vec<audit::VerifyingKey>, StartupError> {
    config
        .audit_trusted_keys
        .iter()
        .map(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .filter(|b| b.len() == 32)
                .map(|b| audit::VerifyingKey::from_bytes(&b))
                .ok_or_else(|| {
                    StartupError::Config(
                        "--audit-trusted-keys: each key must be base64 of 32 bytes".to_owned(),
                    )
                })
        })
        .collect()
}

/// What `cargo xtask verify audit` needs, as the server is configured: the audit
/// log's storage and the keys its checkpoints verify under. Opens the database and
/// writes nothing (no chain is opened, no migration applied).
///
/// # Errors
/// When the database, the master key or an audit key cannot be read.
pub async fn audit_for_verification(
    config: &Config,
) -> Result<(Arc<dyn audit::AuditRepository>, Vec<audit::VerifyingKey>), StartupError> {
    let database = Database::connect(&config.database_url, &DatabaseOptions::default()).await?;
    let keys = Keys::new(
        &database,
        master_key(config)?,
        Duration::from_secs(config.key_cache_ttl_seconds),
        Arc::new(SystemClock),
    );
    let mut trusted = audit_trusted_keys(config)?;
    trusted.push(audit_signing_key(config)?.verifying_key());
    let repository: Arc<dyn audit::AuditRepository> =
        Arc::new(store::SeaOrmAuditRepository::new(database, keys.keyring));
    Ok((repository, trusted))
}

/// The consent ledger as the server is configured, for `cargo xtask verify consent`:
/// the SQL adapter on the configured database. Verification reads only hashes, so
/// the keyring is built but no key is opened.
///
/// # Errors
/// When the database cannot be opened or the master key read.
pub async fn consent_for_verification(
    config: &Config,
) -> Result<Arc<dyn consent::ports::ConsentRepository>, StartupError> {
    let database = Database::connect(&config.database_url, &DatabaseOptions::default()).await?;
    let keys = Keys::new(
        &database,
        master_key(config)?,
        Duration::from_secs(config.key_cache_ttl_seconds),
        Arc::new(SystemClock),
    );
    Ok(Arc::new(store::SeaOrmConsentRepository::new(
        database,
        keys.keyring,
    )))
}

/// The configured audit signing key, or the development key in the data folder
/// (created on first start), with a loud warning.
fn audit_signing_key(config: &Config) -> Result<SigningKey, StartupError> {
    let fail = |detail: String| StartupError::Config(format!("audit signing key: {detail}"));
    let seed = match &config.audit_signing_key {
        Some(encoded) => encoded.expose().clone(),
        None => {
            let path = config.data_dir.join("dev-audit-signing-key");
            let seed = load_or_create_dev_secret(&path, || {
                let bytes: [u8; 32] = ring::rand::generate(&ring::rand::SystemRandom::new())
                    .map_err(|_| "the system random source failed".to_owned())?
                    .expose();
                Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
            })
            .map_err(fail)?;
            tracing::warn!(
                path = %path.display(),
                "NO AUDIT SIGNING KEY CONFIGURED: using a development key stored beside the data. \
                 Anyone with this file can forge audit checkpoints. Set CUSTODIA_AUDIT_SIGNING_KEY \
                 in production."
            );
            seed
        }
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(seed.trim())
        .map_err(|_| fail("not base64".to_owned()))?;
    SigningKey::from_seed(&bytes).map_err(|err| fail(err.to_string()))
}

/// Reads the secret in `path`, or writes a fresh one from `generate` (mode 0600).
fn load_or_create_dev_secret(
    path: &Path,
    generate: impl FnOnce() -> Result<String, String>,
) -> Result<String, String> {
    let fail =
        |what: &str, err: &dyn std::fmt::Display| format!("{what} {}: {err}", path.display());
    match std::fs::read_to_string(path) {
        Ok(secret) => Ok(secret.trim().to_owned()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let secret = generate()?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| fail("cannot create folder for", &e))?;
            }
            write_private(path, &secret).map_err(|e| fail("cannot write", &e))?;
            Ok(secret)
        }
        Err(err) => Err(fail("cannot read", &err)),
    }
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
    let encoded = load_or_create_dev_secret(path, || {
        MasterKey::generate()
            .map(|key| key.to_base64().expose().clone())
            .map_err(|e| format!("cannot generate {}: {e}", path.display()))
    })
    .map_err(StartupError::MasterKey)?;
    MasterKey::from_base64(&encoded)
        .map_err(|e| StartupError::MasterKey(format!("malformed key in {}: {e}", path.display())))
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
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keys = Keys::new(&database, master, Duration::from_secs(60), clock.clone());
    let memory: Arc<dyn audit::AuditRepository> = Arc::new(audit::memory::MemoryRepository::new());
    let key = SigningKey::from_seed(&[0; 32]).map_err(|e| StartupError::Config(e.to_string()))?;
    let log = AuditLog::start(memory.clone(), key, clock.clone(), LogConfig::default())
        .await
        .map_err(|e| StartupError::Config(e.to_string()))?;
    let audit = AuditService::new(
        memory,
        log,
        Vec::new(),
        Arc::new(AuditPseudonyms(keys.blind_index.clone())),
        audit::service::DEFAULT_RETENTION,
    );
    let billing = BillingSettings {
        signer: crypto::WebhookSigner::new(&throwaway_secret()?),
        config: billing::service::BillingConfig::default(),
    };
    let controller = data_rights::statements::Controller {
        name: crate::config::DEV_CONTROLLER_NAME.to_owned(),
        address: crate::config::DEV_CONTROLLER_ADDRESS.to_owned(),
        privacy_officer_email: crate::config::DEV_PRIVACY_OFFICER_EMAIL.to_owned(),
    };
    let state = compose(
        database,
        keys,
        passwords,
        IdentityConfig::default(),
        clock,
        audit,
        billing,
        controller,
    );
    Ok(crate::api::service(&state).spec())
}

/// A random secret for the spec's throwaway state (it never verifies anything).
fn throwaway_secret() -> Result<[u8; 32], StartupError> {
    ring::rand::generate(&ring::rand::SystemRandom::new())
        .map(ring::rand::Random::expose)
        .map_err(|_| StartupError::Config("the system random source failed".to_owned()))
}
