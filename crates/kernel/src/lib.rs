//! The shared kernel: the few types every bounded context agrees on.
//!
//! - [`id`]: one typed identifier per entity (UUIDv7), free of persistence derives;
//! - [`context`]: the [`RequestContext`] passed through every service call;
//! - [`sensitive`]: [`Sensitive<T>`], which never prints its contents;
//! - [`clock`]: the [`Clock`] port;
//! - the cross-context ports: [`AuditSink`] ([`audit`]), [`ConsentGate`] ([`consent`])
//!   and [`PersonalData`] ([`personal_data`]).
//!
//! The kernel knows nothing of HTTP, SQL or cryptography. Its ports are implemented
//! by the contexts that own them (audit, consent, every context holding personal data)
//! and composed by the server.

pub mod audit;
pub mod clock;
pub mod consent;
pub mod context;
pub mod id;
pub mod personal_data;
pub mod sensitive;
pub mod vocabulary;

pub use audit::{
    AuditAction, AuditError, AuditEvent, AuditOutcome, AuditReceipt, AuditSink, Disclosure,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use consent::{ConsentDecision, ConsentDenial, ConsentError, ConsentGate, ConsentQuery};
pub use context::{Actor, ClientInfo, RequestContext, Role, RoleSet};
pub use id::{OrganisationId, RequestId, SubjectId, UserId};
pub use personal_data::PersonalData;
pub use sensitive::Sensitive;
pub use vocabulary::{DataCategory, LegalGround, Purpose, Recipient, Regime, ResourceRef};
