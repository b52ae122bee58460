//! Storage: the sea-orm adapters that implement the domain's outbound ports, and
//! the one place that knows SQL.
//!
//! [`Database`] opens SQLite (the embedded default) or PostgreSQL with the settings
//! Custodia relies on, applies and reports migrations, and answers readiness
//! probes. Each adapter module is named after the port(s) it implements ([`keys`];
//! `identity` for the identity context's ports, `audit` for the audit log's,
//! `consent` for the consent context's and `clinical` for the clinical records'
//! ([`SeaOrmClinicalRepository`]: records and their versions, appointments, care
//! teams, break-glass grants, the exercise library and restrictions, every body
//! sealed with the subject's data key), and `billing` for the billing context's
//! ([`SeaOrmBillingRepository`]: plans, tax rates, accounts, cards, subscriptions,
//! gaplessly numbered invoices, payments, refunds and processor events, money as
//! integer minor units and every bill-to sealed with the practice's billing key;
//! [`SeaOrmPracticeUsage`], the plan-limit counts; [`SeaOrmIdempotencyStore`], the
//! HTTP layer's `Idempotency-Key`s), and `data_rights` for the data-rights
//! context's ([`SeaOrmRightsRepository`]: rights requests, their sealed archives,
//! the erasure journal, agents' proofs of authority and privacy and security
//! cases), re-exported here), and turns constraint
//! violations into the port's own error variants rather than letting a `DbErr`
//! escape as a 500.

mod audit;
mod billing;
mod clinical;
mod consent;
mod data_rights;
pub mod database;
mod identity;
pub mod keys;
mod rows;
#[cfg(feature = "testing")]
pub mod testing;

pub use self::audit::SeaOrmAuditRepository;
pub use self::billing::{
    IdempotencyBegin, SeaOrmBillingRepository, SeaOrmIdempotencyStore, SeaOrmPracticeUsage,
};
pub use self::clinical::SeaOrmClinicalRepository;
pub use self::consent::SeaOrmConsentRepository;
pub use self::data_rights::SeaOrmRightsRepository;
pub use self::identity::{
    OutboxNotifier, SeaOrmApiKeyRepository, SeaOrmCredentialRepository, SeaOrmIdentityRepository,
    SeaOrmOperatorRepository, SeaOrmProfileRepository, SeaOrmSecurityEventLog,
    SeaOrmSessionRepository,
};
pub use database::{Backend, Database, DatabaseOptions, MigrationState, StoreError};
pub use keys::SeaOrmKeyStore;
