//! Background jobs the server runs beside the API. The billing job renews
//! subscriptions, ends trials and cancelled ones, retries failed payments on the
//! dunning schedule and forgets `Idempotency-Key`s after 24 hours. The retention
//! job (R1) runs the retention engine ([`data_rights::retention::RetentionRun`])
//! over every context's sweep ([`AppState::retention_sweeps`]): security events
//! older than their period are deleted (C7), audit events older than theirs
//! blanked (six years at least; their hashes stay, so the chains still verify, and
//! a signed checkpoint records how far), expired invoices anonymised, erased
//! people's consent chains deleted six years after the erasure, and dormant
//! clinical charts and old break-glass grants deleted. It runs at start and then
//! every interval; with several server processes each runs it, and every sweep is
//! idempotent, so that is harmless. `cargo xtask retention run [--dry-run]` runs
//! the same engine by hand ([`run_retention`]).

use std::time::Duration;

use data_rights::retention::{Progress, RetentionReport, RetentionRun};
use kernel::personal_data::ExpiryAction;
use kernel::{
    AuditAction, AuditError, AuditEvent, AuditOutcome, Purpose, RequestContext, ResourceRef,
};
use tokio::task::JoinHandle;

use crate::state::AppState;

/// The component the retention engine acts as.
pub const RETENTION_COMPONENT: &str = "retention";

/// The resource kind of a retention run's audit event (its id is nil).
pub const RETENTION_RUN: &str = "retention_run";

/// Starts the retention sweep on `state`, every `every`. Abort the handle to stop it.
#[must_use]
pub fn spawn_retention(state: AppState, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            sweep(&state).await;
        }
    })
}

/// One pass of every retention rule: [`run_retention`], logged. Failures are
/// logged and retried next pass.
pub async fn sweep(state: &AppState) {
    if let Err(err) = run_retention(state, false, &mut |_| {}).await {
        tracing::warn!(error = %err, "retention: not run (the audit log is unavailable); will retry");
    }
}

/// Runs every context's retention sweep at the clock's time, as the system (the
/// `retention` component, for oversight), reporting each step to `progress`.
///
/// The run is audited first, once: an [`AuditAction::Erase`] (a dry run: an
/// [`AuditAction::Read`]) of resource [`RETENTION_RUN`] with a nil id and no
/// subject, so a run the audit log cannot record deletes nothing (fail closed).
/// Then one log line gives the totals and one line per category what was done,
/// with the run's request id; counts only, never a record or a person. A failing
/// context is logged and reported, and does not stop the others.
///
/// # Errors
/// [`AuditError`]: the run could not be audited, and nothing was swept.
pub async fn run_retention(
    state: &AppState,
    dry_run: bool,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<RetentionReport, AuditError> {
    let ctx = RequestContext::system(RETENTION_COMPONENT, Purpose::Oversight, state.clock().now());
    let action = if dry_run {
        AuditAction::Read
    } else {
        AuditAction::Erase
    };
    state
        .audit()
        .sink()
        .record(AuditEvent::new(
            &ctx,
            action,
            ResourceRef::new(RETENTION_RUN, uuid::Uuid::nil()),
            None,
            AuditOutcome::Allowed,
        ))
        .await?;
    let report = RetentionRun::new(state.retention_sweeps())
        .run(&ctx, dry_run, progress)
        .await;
    let request = ctx.request_id().as_uuid();
    for (context, expired) in report.lines().filter(|(_, e)| e.records > 0) {
        tracing::info!(
            %request,
            dry_run,
            context,
            category = expired.category.as_str(),
            action = expired.action.as_str(),
            records = expired.records,
            "retention: expired records"
        );
    }
    for (context, error) in &report.failures {
        tracing::warn!(%request, context, error = %error, "retention: context not swept; will retry");
    }
    tracing::info!(
        %request,
        dry_run,
        deleted = report.total(ExpiryAction::Deleted),
        anonymised = report.total(ExpiryAction::Anonymised),
        failed = report.failures.len(),
        "retention: run done"
    );
    Ok(report)
}

/// How many subscriptions one pass of the billing job steps at most; the next
/// pass continues.
pub const BILLING_BATCH: u32 = 500;

/// Starts the billing job on `state`, every `every`: [`billing_pass`]. Abort the
/// handle to stop it.
#[must_use]
pub fn spawn_billing(state: AppState, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            billing_pass(&state).await;
        }
    })
}

/// One pass of the billing job, as the system: the work due now (renewals, trial
/// ends, cancellations at period end, dunning retries), then the purge of
/// `Idempotency-Key`s past their 24 hours. Failures are logged and retried next
/// pass; with several server processes each runs it, and every step is one
/// optimistic transaction, so a subscription is stepped once.
pub async fn billing_pass(state: &AppState) {
    let now = state.clock().now();
    let ctx = RequestContext::system("billing", Purpose::Payment, now);
    match state.billing().run_due(&ctx, BILLING_BATCH).await {
        Ok(report) if report == billing::service::RunReport::default() => {}
        Ok(report) => tracing::info!(
            renewed = report.renewed,
            converted = report.converted,
            failed = report.failed,
            canceled = report.canceled,
            expired = report.expired,
            "billing: due work done"
        ),
        Err(err) => tracing::warn!(error = %err, "billing: due work not done; will retry"),
    }
    match state.idempotency().purge(now).await {
        Ok(0) => {}
        Ok(purged) => tracing::info!(purged, "billing: expired idempotency keys deleted"),
        Err(err) => {
            tracing::warn!(error = %err, "billing: idempotency keys not purged; will retry");
        }
    }
}
