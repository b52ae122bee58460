//! The HTTP API as poem-openapi operations, one module per context.
//!
//! Conventions every operation follows are in `docs/api-conventions.md`: a stable
//! lowerCamelCase `operationId`, one tag per context, problem+json errors declared
//! on every operation, RFC 3339 UTC timestamps, ids as UUID strings.

pub mod identity;
pub mod integrations;
pub mod system;

use poem_openapi::{ExtraHeader, OpenApiService, Tags};

use crate::state::AppState;

/// One tag per context.
#[derive(Debug, Tags)]
pub enum ApiTags {
    /// Liveness and readiness probes.
    System,
    /// Practices, accounts, sign-in and sessions.
    Identity,
    /// A practice's API keys for integrators.
    Integrations,
    /// The platform operator: sign-in and the practice directory.
    Platform,
}

/// Every context's operations.
pub type Apis = (
    system::SystemApi,
    identity::IdentityApi,
    integrations::IntegrationsApi,
);

/// The API's title in the OpenAPI document.
pub const TITLE: &str = "Custodia";

/// Builds the OpenAPI service for `state`.
#[must_use]
pub fn service(state: &AppState) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            system::SystemApi::new(state.clone()),
            identity::IdentityApi::new(state.clone()),
            integrations::IntegrationsApi::new(state.clone()),
        ),
        TITLE,
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Custodia keeps clinical records, consent and privacy rights for care platforms. \
         Errors are RFC 9457 problem+json; see docs/http-errors.md and docs/api-conventions.md.",
    )
    .extra_response_header::<String, _>(
        ExtraHeader::new("X-Request-Id")
            .description("The request's id; quote it to support. Present on every response."),
    )
}
