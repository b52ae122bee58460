//! The HTTP API as poem-openapi operations, one module per context.
//!
//! Conventions every operation follows are in `docs/api-conventions.md`: a stable
//! lowerCamelCase `operationId`, one tag per context, problem+json errors declared
//! on every operation, RFC 3339 UTC timestamps, ids as UUID strings.

pub mod account;
pub mod audit;
pub mod billing;
pub mod clinical;
pub mod consent;
pub mod credentials;
pub mod identity;
pub mod integrations;
pub mod practice;
pub mod rights;
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
    /// The people of a practice: clients, guardians, members, roles, activation.
    Practice,
    /// A practice's API keys for integrators.
    Integrations,
    /// The platform operator: sign-in and the practice directory.
    Platform,
    /// The tamper-evident audit log: verification, proofs, access reports and the
    /// accounting of disclosures.
    Audit,
    /// Clients, care teams and break-glass, clinical records of every kind with
    /// their versions, amendments, appointments and the exercise library.
    Clinical,
    /// Purposes and legal bases, policy versions, consents, HIPAA authorisations,
    /// communication preferences, the sub-processor registry and the consent ledger.
    Consent,
    /// Plans, tax rates, a practice's billing account, cards, subscription and
    /// invoices, refunds, billing runs and the payment processor's webhook.
    Billing,
    /// Data rights under HIPAA, GDPR and CCPA: requests, their verification,
    /// deadlines and answers, authorised agents, privacy questions and security
    /// concerns, and the statements every answer carries.
    Rights,
}

/// Every context's operations.
pub type Apis = (
    system::SystemApi,
    identity::IdentityApi,
    account::AccountApi,
    practice::PracticeApi,
    credentials::CredentialsApi,
    integrations::IntegrationsApi,
    audit::AuditApi,
    consent::ConsentApi,
    clinical::ClinicalApi,
    billing::BillingApi,
    billing::BillingOperatorApi,
    rights::RightsApi,
    rights::PrivacyCaseApi,
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
            account::AccountApi::new(state.clone()),
            practice::PracticeApi::new(state.clone()),
            credentials::CredentialsApi::new(state.clone()),
            integrations::IntegrationsApi::new(state.clone()),
            audit::AuditApi::new(state.clone()),
            consent::ConsentApi::new(state.clone()),
            clinical::ClinicalApi::new(state.clone()),
            billing::BillingApi::new(state.clone()),
            billing::BillingOperatorApi::new(state.clone()),
            rights::RightsApi::new(state.clone()),
            rights::PrivacyCaseApi::new(state.clone()),
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

#[cfg(test)]
mod tests {
    /// Every `operation_id` written in `src/api` is in the spec. poem-openapi keeps
    /// only one API struct's operations for a path two structs both declare, so an
    /// operation can be served and yet missing from the document integrators (and
    /// the authorisation coverage test) read.
    #[tokio::test]
    async fn every_operation_written_reaches_the_spec() {
        let spec = crate::openapi_document().await.expect("the spec builds");
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
        let mut seen = 0;
        let mut files = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(dir)];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("a folder of src/api") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        for path in files {
            let source = std::fs::read_to_string(&path).expect("a source file");
            for (at, marker) in source.match_indices("operation_id = \"") {
                let rest = &source[at + marker.len()..];
                let id = rest.split('"').next().expect("a closing quote");
                assert!(
                    spec.contains(&format!("\"operationId\": \"{id}\"")),
                    "{id} (in {}) is missing from the spec: is its path declared by two API structs?",
                    path.display()
                );
                seen += 1;
            }
        }
        assert!(seen > 10, "operations were found");
    }
}
