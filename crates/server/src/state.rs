//! [`AppState`]: the adapters and services the composition root built, shared by
//! every operation. Cheap to clone.

use std::sync::Arc;

use audit::AuditService;
use audit::personal_data::AuditPersonalData;
use audit::retention::AuditRetention;
use billing::BillingService;
use billing::personal_data::BillingPersonalData;
use billing::retention::BillingRetention;
use clinical::{ClinicalRetention, ClinicalService};
use consent::{ConsentRetention, ConsentService};
use crypto::{Keyring, WebhookSigner};
use data_rights::service::RightsService;
use identity::IdentityService;
use kernel::Clock;
use kernel::personal_data::RetentionSweep;
use store::Database;

use crate::idempotency::Keys;

/// What operations are given to work with.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// The services and the adapters the edge uses directly, as the composition root
/// built them.
#[derive(Debug)]
pub struct Services {
    /// The identity context.
    pub identity: IdentityService,
    /// The audit context.
    pub audit: AuditService,
    /// The audit log's part of the rights engine's `PersonalData` port.
    pub audit_personal_data: Arc<AuditPersonalData>,
    /// The consent context.
    pub consent: ConsentService,
    /// The clinical-records context.
    pub clinical: ClinicalService,
    /// The billing context.
    pub billing: BillingService,
    /// Billing's part of the rights engine's `PersonalData` port.
    pub billing_personal_data: Arc<BillingPersonalData>,
    /// The rights engine, over every context's `PersonalData` port.
    pub rights: RightsService,
    /// Verifies the payment processor's webhook signatures.
    pub webhook_signer: WebhookSigner,
    /// The `Idempotency-Key`s of operations a client may retry.
    pub idempotency: Keys,
}

struct Inner {
    database: Database,
    keyring: Keyring,
    services: Services,
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
        services: Services,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                database,
                keyring,
                services,
                clock,
            }),
        }
    }

    /// The identity context.
    #[must_use]
    pub fn identity(&self) -> &IdentityService {
        &self.inner.services.identity
    }

    /// The audit context: the log's writer and what people may ask of it.
    #[must_use]
    pub fn audit(&self) -> &AuditService {
        &self.inner.services.audit
    }

    /// The audit log's `PersonalData` port (export and pseudonymising erasure of a
    /// person's part of the log), for the rights engine.
    #[must_use]
    pub fn audit_personal_data(&self) -> &Arc<AuditPersonalData> {
        &self.inner.services.audit_personal_data
    }

    /// The clinical-records context.
    #[must_use]
    pub fn clinical(&self) -> &ClinicalService {
        &self.inner.services.clinical
    }

    /// The consent context: the ledger, decisions and policies.
    #[must_use]
    pub fn consent(&self) -> &ConsentService {
        &self.inner.services.consent
    }

    /// The billing context: plans, subscriptions, invoices and payments.
    #[must_use]
    pub fn billing(&self) -> &BillingService {
        &self.inner.services.billing
    }

    /// Billing's `PersonalData` port (export and erasure of a billing contact), for
    /// the rights engine.
    #[must_use]
    pub fn billing_personal_data(&self) -> &Arc<BillingPersonalData> {
        &self.inner.services.billing_personal_data
    }

    /// The rights engine: requests, agents, cases and statements (D1-D13).
    #[must_use]
    pub fn rights(&self) -> &RightsService {
        &self.inner.services.rights
    }

    /// Every context's retention sweep, in the order the retention job runs them:
    /// identity, clinical, consent, billing, then audit (whose blanking is the
    /// last word on what the others did before).
    #[must_use]
    pub fn retention_sweeps(&self) -> Vec<Arc<dyn RetentionSweep>> {
        let services = &self.inner.services;
        vec![
            Arc::new(services.identity.retention()),
            Arc::new(ClinicalRetention::new(
                services.clinical.repository().clone(),
            )),
            Arc::new(ConsentRetention::new(services.consent.clone())),
            Arc::new(BillingRetention::new(
                services.billing.repository().clone(),
                services.billing.config().invoice_retention.clone(),
            )),
            Arc::new(AuditRetention::new(services.audit.clone())),
        ]
    }

    /// The payment processor's webhook signatures, under the configured secret.
    #[must_use]
    pub fn webhook_signer(&self) -> &WebhookSigner {
        &self.inner.services.webhook_signer
    }

    /// The `Idempotency-Key`s.
    #[must_use]
    pub fn idempotency(&self) -> &Keys {
        &self.inner.services.idempotency
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
