//! The audit context: a durable, tamper-evident record of every access to personal
//! health data, and every denial (HIPAA §164.312(b); obligations SEC2, S3, S4).
//!
//! - [`event`]: an event as the log keeps it, its canonical encoding, and the
//!   commitments that let a person be erased without breaking a single hash;
//! - [`merkle`]: RFC 6962 trees over each chain, and inclusion proofs;
//! - [`checkpoint`]: Ed25519-signed statements of every chain's head;
//! - [`ports`]: the storage port;
//! - [`log`]: [`AuditLog`], the group-committing writer that implements
//!   [`kernel::AuditSink`];
//! - [`verify`]: the verifier auditors run, in process or through `cargo xtask
//!   verify audit`;
//! - [`service`]: what people may ask of the log: verification, inclusion proofs,
//!   the accounting of disclosures and a subject's own access report;
//! - [`personal_data`]: the log's part of the rights engine's
//!   [`kernel::PersonalData`] port (export, erasure by pseudonym).
//! - [`retention`]: [`retention::AuditRetention`], the retention sweep that blanks
//!   events past their period through the log's prune.
//!
//! `docs/audit.md` explains the design and its limits.

pub mod checkpoint;
pub mod event;
mod hash;
pub mod log;
pub mod memory;
pub mod merkle;
pub mod personal_data;
pub mod ports;
pub mod retention;
pub mod service;
pub mod verify;

pub use checkpoint::{ChainHead, Checkpoint, KeyId, SigningKey, VerifyingKey};
pub use event::{ChainId, SealedEvent};
pub use hash::Hash;
pub use log::{AuditLog, LogConfig};
pub use ports::{AuditRepository, AuditStoreError, ChainState};
pub use service::{AuditService, AuditServiceError, Pseudonymiser};
