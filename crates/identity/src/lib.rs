//! The identity context: practices (organisations), people, their roles in
//! practices, credentials, sessions, sign-in throttling and lockout, security
//! events and transactional notices.
//!
//! - [`values`]: parsed inputs (email, phone, names, the password policy);
//! - [`profile`]: the profile and preferences a person keeps;
//! - [`personal_data`]: the kernel's `PersonalData` port for this context;
//! - [`retention`]: its `RetentionSweep`, which deletes expired security events;
//! - [`model`]: the context's records;
//! - [`ports`]: the outbound ports, implemented in `store`;
//! - [`service`]: [`IdentityService`], the inbound port the server calls;
//! - [`throttle`]: per-address sign-in throttling;
//! - [`integrations`]: API keys and the platform operator.
//!
//! Identity knows nothing of HTTP or SQL.

pub mod integrations;
pub mod model;
pub mod personal_data;
pub mod ports;
pub mod profile;
pub mod retention;
pub mod service;
pub mod throttle;
pub mod values;

pub use integrations::Credential;
pub use personal_data::IdentityPersonalData;
pub use retention::IdentityRetention;
pub use service::{
    AccountChange, Authenticated, IdentityConfig, IdentityError, IdentityPorts, IdentityService,
    MfaSetup, OrganisationChanges, SecondFactor, SignUp, SignedIn,
};
