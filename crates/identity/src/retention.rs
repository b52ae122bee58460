//! [`IdentityRetention`]: the identity context's
//! [`RetentionSweep`](kernel::personal_data::RetentionSweep) (R1).
//!
//! Of the categories identity's data map declares, only security events have a
//! period ([`IdentityConfig::security_event_retention`](crate::IdentityConfig),
//! 365 days by default): every event older than that is deleted, the pseudonymised
//! events of erased people with the rest. Identity, contact, credentials, profile,
//! preferences and communications are kept while the account exists, and end with
//! its erasure by the rights engine (`IdentityPersonalData::erase`), not here.
//!
//! One sweep deletes every expired event in one statement.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use kernel::personal_data::{Expired, ExpiryAction, PersonalDataError, RetentionSweep};
use kernel::{DataCategory, RequestContext};

use crate::ports::SecurityEventLog;

/// Identity's retention sweep: security events past their period are deleted.
#[derive(Clone)]
pub struct IdentityRetention {
    events: Arc<dyn SecurityEventLog>,
    retention: TimeDelta,
}

impl std::fmt::Debug for IdentityRetention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityRetention")
            .field("retention_days", &self.retention.num_days())
            .finish_non_exhaustive()
    }
}

impl IdentityRetention {
    /// The sweep over `events`, which keeps events for `retention`.
    #[must_use]
    pub fn new(events: Arc<dyn SecurityEventLog>, retention: TimeDelta) -> Self {
        Self { events, retention }
    }
}

#[async_trait]
impl RetentionSweep for IdentityRetention {
    fn context(&self) -> &'static str {
        "identity"
    }

    async fn sweep(
        &self,
        _ctx: &RequestContext,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<Expired>, PersonalDataError> {
        let cutoff = now - self.retention;
        let records = if dry_run {
            self.events.count_before(cutoff).await
        } else {
            self.events.purge_before(cutoff).await
        }
        .map_err(|e| PersonalDataError::Unavailable(Box::new(e)))?;
        Ok(vec![Expired {
            category: DataCategory::SecurityEvents,
            action: ExpiryAction::Deleted,
            records,
        }])
    }
}
