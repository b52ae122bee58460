//! [`ClinicalRetention`]: the clinical context's
//! [`RetentionSweep`](kernel::personal_data::RetentionSweep) (R1).
//!
//! Every category of clinical's data map has a period:
//!
//! - **Break-glass grants** (`access_log`, [`ACCESS_REVIEW_DAYS`], six years): the
//!   documentation of an emergency access is kept six years from when it was last
//!   in effect, its expiry (45 CFR 164.316(b)(2)(i)); then the grant is
//!   **deleted**.
//! - **The chart** (every other category, [`MEDICAL_RECORD_DAYS`], seven years):
//!   medical-record laws count the years from the *last* treatment, not from each
//!   record's creation; deleting a current allergy because it was first written
//!   seven years ago would endanger the person. So a subject's chart expires
//!   whole, when it is *dormant*: nothing in it has been written, no appointment
//!   has ended, no break-glass grant was in force and no care-team membership was
//!   open for seven years (the exact rule is
//!   [`ClinicalRepository`](crate::ports::ClinicalRepository)'s contract). Then every
//!   record with its versions, appointment, care-team membership and the
//!   restriction are **deleted**, as an erasure would, except the break-glass
//!   grants, which keep their own period (and are already gone by then). Activity
//!   at any practice keeps the person's whole chart. Not yet applied: the longer
//!   period some states set for minors (until majority plus some years); the birth
//!   date is sealed in the demographics, out of the sweep's reach, so a child's
//!   chart left for seven years is deleted like an adult's.
//!
//! Categories are reported in the data map's order; the restriction counts as
//! `profile`, where the data map describes it. One sweep deletes at most
//! [`CHART_BATCH`] charts (each in its own transaction); the next continues. A dry
//! run reports what the next sweep would delete.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use kernel::personal_data::{Expired, ExpiryAction, PersonalDataError, RetentionSweep};
use kernel::{DataCategory, RequestContext};

use crate::personal_data::{ACCESS_REVIEW_DAYS, MEDICAL_RECORD_DAYS};
use crate::ports::{ClinicalRepository, RepositoryError};

/// The most charts one sweep deletes.
pub const CHART_BATCH: u32 = 200;

/// The chart's categories, in the data map's order.
const CHART: [DataCategory; 7] = [
    DataCategory::Profile,
    DataCategory::HealthRecord,
    DataCategory::Medications,
    DataCategory::TreatmentPlans,
    DataCategory::ExercisePrograms,
    DataCategory::Appointments,
    DataCategory::Communications,
];

/// The clinical context's retention sweep.
#[derive(Clone)]
pub struct ClinicalRetention {
    repo: Arc<dyn ClinicalRepository>,
}

impl std::fmt::Debug for ClinicalRetention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClinicalRetention").finish_non_exhaustive()
    }
}

impl ClinicalRetention {
    /// The sweep over `repo`.
    #[must_use]
    pub fn new(repo: Arc<dyn ClinicalRepository>) -> Self {
        Self { repo }
    }
}

fn unavailable(e: RepositoryError) -> PersonalDataError {
    PersonalDataError::Unavailable(Box::new(e))
}

fn days(n: u32) -> Duration {
    Duration::days(i64::from(n))
}

#[async_trait]
impl RetentionSweep for ClinicalRetention {
    fn context(&self) -> &'static str {
        "clinical"
    }

    async fn sweep(
        &self,
        _ctx: &RequestContext,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<Expired>, PersonalDataError> {
        let grants = self
            .repo
            .delete_break_glass_ended_before(now - days(ACCESS_REVIEW_DAYS), dry_run)
            .await
            .map_err(unavailable)?;
        let cutoff = now - days(MEDICAL_RECORD_DAYS);
        let mut counts = [0_u64; CHART.len()];
        for subject in self
            .repo
            .dormant_charts(cutoff, CHART_BATCH)
            .await
            .map_err(unavailable)?
        {
            let Some(erased) = self
                .repo
                .delete_dormant_chart(subject, cutoff, dry_run)
                .await
                .map_err(unavailable)?
            else {
                continue;
            };
            for e in erased {
                let category = if e.kind == "restriction" {
                    DataCategory::Profile
                } else {
                    e.category
                };
                if let Some(i) = CHART.iter().position(|c| *c == category) {
                    counts[i] += 1;
                }
            }
        }
        let mut out: Vec<Expired> = CHART
            .iter()
            .zip(counts)
            .map(|(category, records)| Expired {
                category: *category,
                action: ExpiryAction::Deleted,
                records,
            })
            .collect();
        out.push(Expired {
            category: DataCategory::AccessLog,
            action: ExpiryAction::Deleted,
            records: grants,
        });
        Ok(out)
    }
}
