//! [`AuditRetention`]: the audit context's
//! [`RetentionSweep`](kernel::personal_data::RetentionSweep) (R1).
//!
//! The access log is kept for [`AuditService::retention`] (six years at least,
//! HIPAA 45 CFR 164.316(b)(2) and 164.528). Older events are blanked by the log's
//! own prune ([`AuditService::apply_retention`]): every field but the event's
//! position, time and hashes is removed, so the chains still verify and a signed
//! checkpoint records how far; the rows stay, about no one. The sweep reports them
//! as [`ExpiryAction::Anonymised`] access-log records, counted per chain as the
//! events between the chain's last blanked one and the last one past the period.
//!
//! A real sweep counts just before it prunes; another process pruning the same
//! chains in between makes the count an overstatement of this process's share,
//! never of what was pruned in all. One sweep prunes every chain.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kernel::personal_data::{Expired, ExpiryAction, PersonalDataError, RetentionSweep};
use kernel::{DataCategory, RequestContext};

use crate::AuditService;

/// The audit log's retention sweep, over the service that prunes it.
#[derive(Debug, Clone)]
pub struct AuditRetention {
    service: AuditService,
}

impl AuditRetention {
    /// The sweep over `service`.
    #[must_use]
    pub const fn new(service: AuditService) -> Self {
        Self { service }
    }

    /// How many events are past retention at `now` and not yet blanked.
    async fn due(&self, now: DateTime<Utc>) -> Result<u64, PersonalDataError> {
        let repository = self.service.repository();
        let points = repository
            .prune_points(now - self.service.retention())
            .await
            .map_err(unavailable)?;
        let mut due = 0_u64;
        for point in points {
            let pruned = repository
                .chain_state(point.chain)
                .await
                .map_err(unavailable)?
                .map_or(0, |state| state.pruned_through);
            due = due.saturating_add(point.through.saturating_sub(pruned));
        }
        Ok(due)
    }
}

fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> PersonalDataError {
    PersonalDataError::Unavailable(Box::new(err))
}

#[async_trait]
impl RetentionSweep for AuditRetention {
    fn context(&self) -> &'static str {
        "audit"
    }

    async fn sweep(
        &self,
        _ctx: &RequestContext,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<Expired>, PersonalDataError> {
        let records = self.due(now).await?;
        if !dry_run {
            self.service
                .apply_retention(now)
                .await
                .map_err(unavailable)?;
        }
        Ok(vec![Expired {
            category: DataCategory::AccessLog,
            action: ExpiryAction::Anonymised,
            records,
        }])
    }
}
