//! [`ConsentRetention`]: the consent context's
//! [`RetentionSweep`](kernel::personal_data::RetentionSweep) (R1).
//!
//! The consent data map keeps the `consent` category for [`PROOF_RETENTION_DAYS`]
//! (six years) on [`PROOF_GROUND`](crate::personal_data::PROOF_GROUND): the proof
//! of what a person agreed to, and when (GDPR Art. 7(1); 45 CFR 164.530(j) keeps
//! HIPAA documentation six years from when it was last in effect). While the
//! subject's record exists their chain *is* that proof, and the projection every
//! decision reads is built from it, so it is not swept. When the subject is
//! erased, the evidence and authorisations are deleted at once and the events are
//! kept, pseudonymised, under the chain's random id, with the time of the erasure
//! (the last moment any of it was in effect). Six years after that, this sweep
//! **deletes** the chain's events: nothing requires them any longer.
//!
//! One sweep deletes every chain that is due, in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::personal_data::{Expired, ExpiryAction, PersonalDataError, RetentionSweep};
use kernel::{DataCategory, RequestContext};

use crate::personal_data::PROOF_RETENTION_DAYS;
use crate::service::ConsentService;

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400 * 1_000_000;

/// The consent ledger's retention sweep: erased subjects' chains are deleted six
/// years after the erasure.
#[derive(Debug, Clone)]
pub struct ConsentRetention {
    service: ConsentService,
}

impl ConsentRetention {
    /// The sweep over `service`'s ledger.
    #[must_use]
    pub const fn new(service: ConsentService) -> Self {
        Self { service }
    }
}

#[async_trait]
impl RetentionSweep for ConsentRetention {
    fn context(&self) -> &'static str {
        "consent"
    }

    async fn sweep(
        &self,
        _ctx: &RequestContext,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<Expired>, PersonalDataError> {
        let cutoff = now
            .timestamp_micros()
            .saturating_sub(i64::from(PROOF_RETENTION_DAYS) * DAY_MICROS);
        let repository = self.service.repository();
        let records = if dry_run {
            repository.erased_events_before(cutoff).await
        } else {
            repository.delete_erased_before(cutoff).await
        }
        .map_err(|e| PersonalDataError::Unavailable(Box::new(e)))?;
        Ok(vec![Expired {
            category: DataCategory::Consent,
            action: ExpiryAction::Deleted,
            records,
        }])
    }
}
