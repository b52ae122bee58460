//! [`BillingRetention`]: billing's
//! [`RetentionSweep`](kernel::personal_data::RetentionSweep) (R1).
//!
//! Billing's data map keeps the `billing` category for the [`InvoiceRetention`]
//! period (seven years by default) on the ground of tax and accounting law, which
//! requires invoices to be kept *as issued*. Once an invoice is older than that,
//! nothing requires it to name anyone, so the sweep **anonymises** it: the bill-to
//! as issued (the contact's name and email, and the postal address and tax id,
//! which for a sole practitioner name a person too) and the link to the contact
//! user are removed. The invoice is not deleted: payments and refunds refer to it,
//! the practice's invoice numbers stay without gaps, and its number, lines,
//! amounts, tax, status and dates describe what a practice (a business) was
//! billed, which is not personal data. The lines are written by the service
//! (plan names, prorations, credits) or by the platform operator, not by the
//! person.
//!
//! The practice's current billing contact (on its billing account) and the cards
//! on file (`payment`, kept while active) are not swept: they are needed while the
//! practice is a customer, and end with the contact's erasure by the rights engine
//! (`BillingPersonalData::erase`, which anonymises the account and unlinks the
//! cards).
//!
//! One sweep anonymises every expired invoice in one statement.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use kernel::personal_data::{Expired, ExpiryAction, PersonalDataError, RetentionSweep};
use kernel::{DataCategory, RequestContext};

use crate::personal_data::InvoiceRetention;
use crate::ports::BillingRepository;

/// Billing's retention sweep: invoices past their period are anonymised.
pub struct BillingRetention {
    repo: Arc<dyn BillingRepository>,
    retention: InvoiceRetention,
}

impl std::fmt::Debug for BillingRetention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingRetention")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl BillingRetention {
    /// The sweep over `repo`, keeping invoices as issued for `retention`.
    #[must_use]
    pub fn new(repo: Arc<dyn BillingRepository>, retention: InvoiceRetention) -> Self {
        Self { repo, retention }
    }
}

#[async_trait]
impl RetentionSweep for BillingRetention {
    fn context(&self) -> &'static str {
        "billing"
    }

    async fn sweep(
        &self,
        _ctx: &RequestContext,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<Expired>, PersonalDataError> {
        let cutoff = now - Duration::days(i64::from(self.retention.days));
        let records = if dry_run {
            self.repo.invoices_to_anonymise(cutoff).await
        } else {
            self.repo.anonymise_invoices_before(cutoff).await
        }
        .map_err(|e| PersonalDataError::Unavailable(Box::new(e)))?;
        Ok(vec![Expired {
            category: DataCategory::Billing,
            action: ExpiryAction::Anonymised,
            records,
        }])
    }
}
