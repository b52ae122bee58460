//! Storage: the sea-orm adapters that implement the domain's outbound ports, and
//! the one place that knows SQL.
//!
//! [`Database`] opens SQLite (the embedded default) or PostgreSQL with the settings
//! Custodia relies on, applies and reports migrations, and answers readiness
//! probes. Each adapter module (e.g. [`keys`]) is named after the port it
//! implements, and turns constraint violations into the port's own error variants
//! rather than letting a `DbErr` escape as a 500.

pub mod database;
pub mod keys;
#[cfg(feature = "testing")]
pub mod testing;

pub use database::{Backend, Database, DatabaseOptions, MigrationState, StoreError};
pub use keys::SeaOrmKeyStore;
