//! Custodia's HTTP server: the only crate that knows HTTP, JSON DTOs and every
//! adapter.
//!
//! - [`config`]: settings from flags and environment;
//! - [`app`]: the composition root, serving and graceful shutdown;
//! - [`edge`]: request ids, problem+json for every failure, security headers, access log;
//! - [`jobs`]: background work (the retention sweep, the billing job);
//! - [`idempotency`]: `Idempotency-Key` for operations a client may retry;
//! - [`billing`]: billing notices through identity's outbox;
//! - [`audit`]: the person behind a subject, for the audit log's `PersonalData` port;
//! - [`rights`]: the rights engine's adapters (people, consent ledger, keys, ZIP archives)
//!   and its statements;
//! - [`problem`]: the RFC 9457 error shape;
//! - [`api`]: the operations, one module per context;
//! - [`telemetry`]: log set-up.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod config;
pub mod consent;
pub mod edge;
pub mod idempotency;
pub mod jobs;
pub mod problem;
pub mod rights;
pub mod routes;
pub mod state;
pub mod telemetry;

pub use app::{
    App, BoundApp, StartupError, audit_for_verification, consent_for_verification,
    openapi_document, shutdown_signal,
};
pub use config::Config;
