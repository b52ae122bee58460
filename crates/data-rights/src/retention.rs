//! The retention engine (R1): data is kept only as long as its purpose needs, and
//! what has expired is deleted or anonymised by the system itself.
//!
//! Every category a context's data map declares with a [`Retention::Period`] is
//! swept by that context's [`RetentionSweep`]; [`RetentionRun`] runs the sweeps in
//! order, one failing context not stopping the others, and gathers what each did
//! into a [`RetentionReport`] of counts (never records or people). [`uncovered`]
//! is the check that no declared period is left without a sweep.
//!
//! Categories kept [`Retention::WhileActive`] are not swept: they end with the
//! account or care relationship they belong to, when the rights engine erases the
//! subject (the account's erasure, through every context's `PersonalData::erase`).
//!
//! The engine neither schedules nor audits: the server's retention job runs it
//! on an interval and records one audit event per run, and `cargo xtask retention
//! run [--dry-run]` runs it by hand the same way.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kernel::personal_data::{
    DataMapEntry, Expired, ExpiryAction, PersonalDataError, Retention, RetentionSweep,
};
use kernel::{DataCategory, RequestContext};
use serde::Serialize;

/// Where a sweep is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ProgressState {
    /// The sweep is starting.
    Started,
    /// The sweep finished, having expired this many records (or, in a dry run,
    /// found them).
    Done {
        /// Records deleted or anonymised.
        records: u64,
    },
    /// The sweep failed; the report says why.
    Failed,
}

/// One step of a run, as given to the progress callback: the context swept, its
/// place in the run (from 0) and how many contexts the run sweeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// The context, e.g. `billing`.
    pub context: &'static str,
    /// Its place in the run, from 0.
    pub index: usize,
    /// How many contexts the run sweeps.
    pub total: usize,
    /// Starting, done or failed.
    pub state: ProgressState,
}

/// What one run did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// The time the run swept at: what expired is what was older than its period
    /// then.
    pub at: DateTime<Utc>,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Each context that answered, in run order, with what it expired.
    pub results: Vec<(&'static str, Vec<Expired>)>,
    /// Each context that failed, in run order, with why (for operators: no
    /// personal data).
    pub failures: Vec<(&'static str, String)>,
}

impl RetentionReport {
    /// How many records, across contexts, met `action`.
    #[must_use]
    pub fn total(&self, action: ExpiryAction) -> u64 {
        self.lines()
            .filter(|(_, e)| e.action == action)
            .map(|(_, e)| e.records)
            .sum()
    }

    /// Every line of the report, with its context, in run order.
    pub fn lines(&self) -> impl Iterator<Item = (&'static str, &Expired)> {
        self.results
            .iter()
            .flat_map(|(context, expired)| expired.iter().map(move |e| (*context, e)))
    }
}

/// The retention engine over the contexts' sweeps.
#[derive(Clone)]
pub struct RetentionRun {
    sweeps: Vec<Arc<dyn RetentionSweep>>,
}

impl std::fmt::Debug for RetentionRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetentionRun")
            .field("contexts", &self.contexts())
            .finish()
    }
}

/// The failure as operators read it: the error and its sources.
fn describe_failure(err: &PersonalDataError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl RetentionRun {
    /// The engine over `sweeps`, which it runs in this order.
    #[must_use]
    pub fn new(sweeps: Vec<Arc<dyn RetentionSweep>>) -> Self {
        Self { sweeps }
    }

    /// The contexts swept, in run order.
    #[must_use]
    pub fn contexts(&self) -> Vec<&'static str> {
        self.sweeps.iter().map(|s| s.context()).collect()
    }

    /// Runs every sweep in order at `ctx.at()`, telling `progress` as each starts
    /// and ends (`Send`, so a run can be a spawned job's). A failing sweep is reported in [`RetentionReport::failures`] and
    /// the run goes on; `dry_run` is passed to every sweep, and then nothing
    /// changes.
    pub async fn run(
        &self,
        ctx: &RequestContext,
        dry_run: bool,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> RetentionReport {
        let now = ctx.at();
        let total = self.sweeps.len();
        let mut report = RetentionReport {
            at: now,
            dry_run,
            results: Vec::new(),
            failures: Vec::new(),
        };
        for (index, sweep) in self.sweeps.iter().enumerate() {
            let context = sweep.context();
            let step = |state| Progress {
                context,
                index,
                total,
                state,
            };
            progress(step(ProgressState::Started));
            match sweep.sweep(ctx, now, dry_run).await {
                Ok(expired) => {
                    let records = expired.iter().map(|e| e.records).sum();
                    progress(step(ProgressState::Done { records }));
                    report.results.push((context, expired));
                }
                Err(err) => {
                    progress(step(ProgressState::Failed));
                    report.failures.push((context, describe_failure(&err)));
                }
            }
        }
        report
    }
}

/// Every category declared with a [`Retention::Period`] in the data map of a
/// context that has no sweep in `sweeps`: what would be kept past its period.
/// Empty when retention is complete.
#[must_use]
pub fn uncovered<'a>(
    maps: &[(&'a str, Vec<DataMapEntry>)],
    sweeps: &[&str],
) -> Vec<(&'a str, DataCategory)> {
    let mut out = Vec::new();
    for (context, map) in maps {
        if sweeps.contains(context) {
            continue;
        }
        for entry in map {
            if matches!(entry.retention, Retention::Period { .. })
                && !out.contains(&(*context, entry.category))
            {
                out.push((*context, entry.category));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use kernel::{LegalGround, Purpose, Regime};

    use super::*;

    /// Each sweep call: the context, the time and the dry-run flag.
    type Calls = Arc<Mutex<Vec<(&'static str, DateTime<Utc>, bool)>>>;

    /// A sweep that records each call and answers as told.
    struct Fake {
        context: &'static str,
        answer: Result<Vec<Expired>, &'static str>,
        calls: Calls,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct StoreDown(&'static str);

    #[async_trait]
    impl RetentionSweep for Fake {
        fn context(&self) -> &'static str {
            self.context
        }

        async fn sweep(
            &self,
            _ctx: &RequestContext,
            now: DateTime<Utc>,
            dry_run: bool,
        ) -> Result<Vec<Expired>, PersonalDataError> {
            self.calls
                .lock()
                .expect("not poisoned")
                .push((self.context, now, dry_run));
            self.answer
                .clone()
                .map_err(|e| PersonalDataError::Unavailable(Box::new(StoreDown(e))))
        }
    }

    fn fake(
        context: &'static str,
        answer: Result<Vec<Expired>, &'static str>,
        calls: &Calls,
    ) -> Arc<dyn RetentionSweep> {
        Arc::new(Fake {
            context,
            answer,
            calls: calls.clone(),
        })
    }

    fn expired(category: DataCategory, action: ExpiryAction, records: u64) -> Expired {
        Expired {
            category,
            action,
            records,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid time")
            .with_timezone(&Utc)
    }

    fn ctx() -> RequestContext {
        RequestContext::system("retention", Purpose::Legal, at("2033-03-01T04:00:00Z"))
    }

    async fn run(engine: &RetentionRun, dry_run: bool) -> (RetentionReport, Vec<Progress>) {
        let mut seen = Vec::new();
        let report = engine.run(&ctx(), dry_run, &mut |p| seen.push(p)).await;
        (report, seen)
    }

    #[tokio::test]
    async fn sweeps_run_in_order_at_the_contexts_time_and_their_answers_are_kept() {
        let calls = Calls::default();
        let engine = RetentionRun::new(vec![
            fake(
                "identity",
                Ok(vec![expired(
                    DataCategory::SecurityEvents,
                    ExpiryAction::Deleted,
                    3,
                )]),
                &calls,
            ),
            fake(
                "billing",
                Ok(vec![expired(
                    DataCategory::Billing,
                    ExpiryAction::Anonymised,
                    2,
                )]),
                &calls,
            ),
            fake("consent", Ok(Vec::new()), &calls),
        ]);
        assert_eq!(engine.contexts(), ["identity", "billing", "consent"]);
        let (report, seen) = run(&engine, false).await;
        let now = at("2033-03-01T04:00:00Z");
        assert_eq!(
            *calls.lock().expect("not poisoned"),
            [
                ("identity", now, false),
                ("billing", now, false),
                ("consent", now, false)
            ]
        );
        assert_eq!(report.at, now);
        assert!(!report.dry_run);
        assert!(report.failures.is_empty());
        assert_eq!(
            report.results,
            [
                (
                    "identity",
                    vec![expired(
                        DataCategory::SecurityEvents,
                        ExpiryAction::Deleted,
                        3
                    )]
                ),
                (
                    "billing",
                    vec![expired(DataCategory::Billing, ExpiryAction::Anonymised, 2)]
                ),
                ("consent", Vec::new()),
            ]
        );
        assert_eq!(report.total(ExpiryAction::Deleted), 3);
        assert_eq!(report.total(ExpiryAction::Anonymised), 2);
        assert_eq!(report.lines().count(), 2);
        let steps: Vec<(&str, usize, usize, ProgressState)> = seen
            .iter()
            .map(|p| (p.context, p.index, p.total, p.state))
            .collect();
        assert_eq!(
            steps,
            [
                ("identity", 0, 3, ProgressState::Started),
                ("identity", 0, 3, ProgressState::Done { records: 3 }),
                ("billing", 1, 3, ProgressState::Started),
                ("billing", 1, 3, ProgressState::Done { records: 2 }),
                ("consent", 2, 3, ProgressState::Started),
                ("consent", 2, 3, ProgressState::Done { records: 0 }),
            ]
        );
    }

    #[tokio::test]
    async fn a_failing_context_is_reported_and_the_others_still_run() {
        let calls = Calls::default();
        let engine = RetentionRun::new(vec![
            fake("identity", Err("connection refused"), &calls),
            fake(
                "audit",
                Ok(vec![expired(
                    DataCategory::AccessLog,
                    ExpiryAction::Anonymised,
                    7,
                )]),
                &calls,
            ),
            fake("billing", Err("disk full"), &calls),
        ]);
        let (report, seen) = run(&engine, false).await;
        assert_eq!(calls.lock().expect("not poisoned").len(), 3);
        assert_eq!(
            report.results,
            [(
                "audit",
                vec![expired(
                    DataCategory::AccessLog,
                    ExpiryAction::Anonymised,
                    7
                )]
            )]
        );
        assert_eq!(
            report.failures,
            [
                (
                    "identity",
                    "personal data is unavailable: connection refused".to_owned()
                ),
                (
                    "billing",
                    "personal data is unavailable: disk full".to_owned()
                ),
            ]
        );
        assert_eq!(seen[1].state, ProgressState::Failed);
        assert_eq!(seen[3].state, ProgressState::Done { records: 7 });
        assert_eq!(seen[5].state, ProgressState::Failed);
    }

    #[tokio::test]
    async fn a_dry_run_is_passed_to_every_sweep_and_marked_in_the_report() {
        let calls = Calls::default();
        let engine = RetentionRun::new(vec![
            fake("identity", Ok(Vec::new()), &calls),
            fake("clinical", Err("down"), &calls),
            fake("consent", Ok(Vec::new()), &calls),
        ]);
        let (report, _) = run(&engine, true).await;
        assert!(report.dry_run);
        let flags: Vec<bool> = calls
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|c| c.2)
            .collect();
        assert_eq!(flags, [true, true, true]);
    }

    #[tokio::test]
    async fn an_empty_run_reports_nothing() {
        let (report, seen) = run(&RetentionRun::new(Vec::new()), false).await;
        assert!(report.results.is_empty() && report.failures.is_empty() && seen.is_empty());
        assert_eq!(report.total(ExpiryAction::Deleted), 0);
    }

    fn entry(category: DataCategory, retention: Retention) -> DataMapEntry {
        DataMapEntry {
            category,
            description: Cow::Borrowed("test"),
            sources: Vec::new(),
            purposes: Vec::new(),
            recipients: Vec::new(),
            retention,
        }
    }

    fn period(days: u32) -> Retention {
        Retention::Period {
            days,
            ground: LegalGround::new(Regime::Gdpr, "Art. 6(1)(c)", "the law"),
        }
    }

    #[test]
    fn every_period_category_of_a_context_without_a_sweep_is_uncovered() {
        let maps = vec![
            (
                "identity",
                vec![
                    entry(DataCategory::Identity, Retention::WhileActive),
                    entry(DataCategory::SecurityEvents, period(365)),
                ],
            ),
            (
                "clinical",
                vec![
                    entry(DataCategory::HealthRecord, period(2_557)),
                    entry(DataCategory::AccessLog, period(2_192)),
                    entry(DataCategory::HealthRecord, period(2_557)),
                ],
            ),
            (
                "billing",
                vec![
                    entry(DataCategory::Billing, period(2_557)),
                    entry(DataCategory::Payment, Retention::WhileActive),
                ],
            ),
            (
                "preferences_only",
                vec![entry(DataCategory::Preferences, Retention::WhileActive)],
            ),
        ];
        assert_eq!(
            uncovered(&maps, &["identity"]),
            [
                ("clinical", DataCategory::HealthRecord),
                ("clinical", DataCategory::AccessLog),
                ("billing", DataCategory::Billing),
            ]
        );
        assert_eq!(
            uncovered(&maps, &["billing", "clinical", "identity"]),
            Vec::<(&str, DataCategory)>::new()
        );
        // A context whose map has only `WhileActive` categories needs no sweep.
        assert!(uncovered(&maps[3..], &[]).is_empty());
        // A sweep under another name covers nothing.
        assert_eq!(
            uncovered(&maps[..1], &["identities"]),
            [("identity", DataCategory::SecurityEvents)]
        );
    }
}
