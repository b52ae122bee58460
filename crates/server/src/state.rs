//! [`AppState`]: the adapters and services the composition root built, shared by
//! every operation. Cheap to clone.

use std::sync::Arc;

use audit::AuditService;
use clinical::ClinicalService;
use consent::ConsentService;
use crypto::Keyring;
use identity::IdentityService;
use kernel::Clock;
use store::Database;

/// What operations are given to work with.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    database: Database,
    keyring: Keyring,
    identity: IdentityService,
    audit: AuditService,
    consent: ConsentService,
    clinical: ClinicalService,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("database", &self.inner.database.backend())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Bundles the built services.
    #[must_use]
    pub fn new(
        database: Database,
        keyring: Keyring,
        identity: IdentityService,
        audit: AuditService,
        consent: ConsentService,
        clinical: ClinicalService,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                database,
                keyring,
                identity,
                audit,
                consent,
                clinical,
                clock,
            }),
        }
    }

    /// The identity context.
    #[must_use]
    pub fn identity(&self) -> &IdentityService {
        &self.inner.identity
    }

    /// The audit context: the log's writer and what people may ask of it.
    #[must_use]
    pub fn audit(&self) -> &AuditService {
        &self.inner.audit
    }

    /// The clinical-records context.
    #[must_use]
    pub fn clinical(&self) -> &ClinicalService {
        &self.inner.clinical
    }

    /// The consent context: the ledger, decisions and policies.
    #[must_use]
    pub fn consent(&self) -> &ConsentService {
        &self.inner.consent
    }

    /// The database pool.
    #[must_use]
    pub fn database(&self) -> &Database {
        &self.inner.database
    }

    /// The key hierarchy and field encryption.
    #[must_use]
    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }
}
