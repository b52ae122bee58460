//! The sub-processor registry (S3): every service provider that receives personal
//! data, the categories it receives, and why. Public: anyone may read it without
//! signing in (`GET /v1/sub-processors`). Each disclosure to one is recorded in the
//! audit log's accounting of disclosures.
//!
//! A deployment that uses other providers changes this list in the same commit as
//! the adapter that talks to them; the list is code so that it is reviewed as code.

use kernel::DataCategory;

/// One sub-processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubProcessor {
    /// Its registry name (the [`kernel::Recipient::SubProcessor`] name).
    pub name: &'static str,
    /// What it does for Custodia.
    pub service: &'static str,
    /// Where it processes the data.
    pub location: &'static str,
    /// The categories of data it receives.
    pub categories: &'static [DataCategory],
    /// Why it receives them.
    pub purpose: &'static str,
}

/// The registry.
pub const REGISTRY: &[SubProcessor] = &[
    SubProcessor {
        name: "hosting",
        service: "Infrastructure hosting: servers, database and backups",
        location: "Chosen by the operator at deployment; data stays in that region",
        categories: &[
            DataCategory::Identity,
            DataCategory::Contact,
            DataCategory::Credentials,
            DataCategory::Profile,
            DataCategory::Preferences,
            DataCategory::HealthRecord,
            DataCategory::Medications,
            DataCategory::TreatmentPlans,
            DataCategory::ExercisePrograms,
            DataCategory::Appointments,
            DataCategory::Communications,
            DataCategory::Billing,
            DataCategory::Consent,
            DataCategory::SecurityEvents,
            DataCategory::UsageLogs,
            DataCategory::AccessLog,
        ],
        purpose: "To run the service. Health data is stored encrypted with keys the host does not hold.",
    },
    SubProcessor {
        name: "payments",
        service: "Card payments for practice subscriptions",
        location: "United States and European Union",
        categories: &[
            DataCategory::Payment,
            DataCategory::Billing,
            DataCategory::Contact,
        ],
        purpose: "To charge practices for the service. Card numbers go to it directly and never reach Custodia.",
    },
    SubProcessor {
        name: "email",
        service: "Email delivery",
        location: "United States and European Union",
        categories: &[DataCategory::Contact],
        purpose: "To deliver transactional notices, and marketing only to those who agreed to it.",
    },
    SubProcessor {
        name: "sms",
        service: "Text message delivery",
        location: "United States and European Union",
        categories: &[DataCategory::Contact],
        purpose: "To deliver appointment reminders and sign-in codes, and marketing only to those who agreed to it.",
    },
    SubProcessor {
        name: "analytics",
        service: "Product analytics",
        location: "European Union",
        categories: &[DataCategory::UsageLogs],
        purpose: "To improve the service from de-identified, aggregated usage only (U5); never health data.",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_sub_processor_but_the_host_receives_health_data_and_names_are_unique() {
        for p in REGISTRY {
            if p.name != "hosting" {
                assert!(
                    p.categories.iter().all(|c| !c.is_health_data()),
                    "{} receives health data",
                    p.name
                );
            }
        }
        let mut names: Vec<_> = REGISTRY.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
    }
}
